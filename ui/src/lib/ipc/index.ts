// The only module that talks to the Rust side. Everything else imports typed functions from here.
import { Channel, convertFileSrc, invoke } from "@tauri-apps/api/core";
import { listen } from "@tauri-apps/api/event";
import { getCurrentWebview } from "@tauri-apps/api/webview";

import { EVENTS } from "./bindings";
import type {
  CommandArgs,
  CommandReplies,
  EventPayloads,
  Preset,
  AppInfo,
  Command,
  AvatarView,
  AvatarCard,
  ConnectionReport,
  DeletedAvatar,
  Diagnosis,
  ErrorCode,
  ErrorReport,
  Gender,
  CurateProgress,
  CurateResult,
  GalleryView,
  GenerationView,
  GenerationPlan,
  GenerationRequest,
  ImportUpdate,
  PhotoSet,
  SettingsView,
  Spending,
  JobView,
  TrainingPlan,
  TrainingType,
  UpdateChannel,
  WatchedUpdate,
} from "./bindings";

export type * from "./bindings";
export { PRESETS } from "./bindings";

/** The guide's presets, as `plan_training` and `start_training` accept them (generated from Rust). */
export type TrainingPreset = Preset;

/** What a creator asks for: a preset and, optionally, their own steps and learning rate. */
export interface TrainingRequest {
  preset: TrainingPreset;
  /** Null keeps the preset's value. */
  steps: number | null;
  /** Null keeps the preset's value; the style trainer takes none. */
  learningRate: number | null;
}

/** A failed command, with the code to branch on and a message for the creator. */
export class IpcError extends Error {
  readonly code: ErrorCode;

  constructor(report: ErrorReport) {
    super(report.message);
    this.name = "IpcError";
    this.code = report.code;
  }
}

// A record rather than a list, so the type-check fails when Rust adds a code this file lacks.
const ERROR_CODES: Record<ErrorCode, true> = {
  invalid_input: true,
  not_found: true,
  invalid_config: true,
  library_too_new: true,
  library_unavailable: true,
  internal: true,
  conflict: true,
  wrong_key: true,
  rejected: true,
  remote_unavailable: true,
  cancelled: true,
};

function isErrorCode(code: unknown): code is ErrorCode {
  return typeof code === "string" && Object.hasOwn(ERROR_CODES, code);
}

/** Turns whatever a rejected command carried into an IpcError. */
export function toIpcError(reason: unknown): IpcError {
  if (reason instanceof IpcError) return reason;
  if (typeof reason === "object" && reason !== null && "code" in reason && "message" in reason) {
    const { code, message } = reason as { code: unknown; message: unknown };
    if (isErrorCode(code) && typeof message === "string") {
      return new IpcError({ code, message });
    }
  }
  return new IpcError({ code: "internal", message: String(reason) });
}

/**
 * Calls a command with the arguments its Rust function takes and resolves to its reply; both
 * types are generated from the function (`CommandArgs`, `CommandReplies`).
 */
async function call<C extends Command>(
  command: C,
  ...args: {} extends CommandArgs[C] ? [] : [CommandArgs[C]]
): Promise<CommandReplies[C]> {
  try {
    return await invoke<CommandReplies[C]>(command, args[0]);
  } catch (reason) {
    throw toIpcError(reason);
  }
}

export const backend = {
  appInfo: () => call("app_info"),
  listAvatars: () => call("list_avatars"),
  createAvatar: (name: string, gender: Gender, trainingType: TrainingType) =>
    call("create_avatar", { name, gender, trainingType }),
  renameAvatar: (id: string, name: string) => call("rename_avatar", { id, name }),
  /** Deletes the avatar with its photos, models and S3 objects; says how many of each went. */
  deleteAvatar: (id: string) => call("delete_avatar", { id }),
  listPhotos: (avatarId: string) => call("list_photos", { avatarId }),
  /** Checks and stores photos; `onResult` sees each verdict as soon as it is known. */
  addPhotos: (avatarId: string, paths: string[], onUpdate: (update: ImportUpdate) => void) => {
    const channel = new Channel<ImportUpdate>();
    channel.onmessage = onUpdate;
    return call("add_photos", { avatarId, paths, onResult: channel });
  },
  removePhoto: (avatarId: string, photoId: string) => call("remove_photo", { avatarId, photoId }),
  pickPhotos: (folder: boolean) => call("pick_photos", { folder }),
  /** Picks the best photos of the avatar's person from files and folders; stores nothing. */
  curatePhotos: (avatarId: string, paths: string[], onProgress: (progress: CurateProgress) => void) => {
    const channel = new Channel<CurateProgress>();
    channel.onmessage = onProgress;
    return call("curate_photos", { avatarId, paths, onProgress: channel });
  },
  /** Stops the running curation; its call then fails with `cancelled`. */
  cancelCuration: () => call("cancel_curation"),
  cancelImport: () => call("cancel_import"),
  /** Makes the avatar watch `folder` for new photos, or, with null, no folder. */
  setWatchFolder: (avatarId: string, folder: string | null) =>
    call("set_watch_folder", { avatarId, folder }),
  /** The run a request gives, with its expected time and cost; nothing starts. */
  planTraining: (avatarId: string, request: TrainingRequest) =>
    call("plan_training", { avatarId, ...request }),
  /**
   * Starts exactly the plan the creator confirmed (a paid one is confirmed once more in a native
   * dialog); `conflict` when the plan in force changed since. The backend follows the job and
   * reports through `onTrainingChange`.
   */
  startTraining: (plan: TrainingPlan) => call("start_training", { plan }),
  /** The avatar's newest job, or null when it never trained. */
  trainingStatus: (avatarId: string) => call("training_status", { avatarId }),
  cancelTraining: (avatarId: string) => call("cancel_training", { avatarId }),
  /** Whether training news arrives through the webhook relay or by polling fal. */
  updateChannel: () => call("update_channel"),
  /** Checks the relay step by step: health, a test event through it, fal's webhook URL. */
  checkConnection: () => call("check_connection"),
  /** Every setting (stored, from the environment, in force) and whether each secret is set. */
  settings: () => call("settings"),
  /** Saves settings by variable name; null or "" returns one to its default. */
  saveSettings: (changes: Record<string, string | null>) => call("save_settings", { changes }),
  /** Keeps a secret in the system keychain; it is never read back into the UI. */
  setSecret: (name: string, value: string) => call("set_secret", { name, value }),
  deleteSecret: (name: string) => call("delete_secret", { name }),
  /** Asks fal, the training-set storage, the keychain and the library. */
  diagnose: () => call("diagnose"),
  /** Paid requests by month, what this month has spent or committed, and the monthly budget. */
  spending: () => call("spending"),
  /** Shows the avatar's trained model file in the file manager. */
  showModel: (avatarId: string) => call("show_model", { avatarId }),
  /** The sample pack a request gives, with its images and cost; nothing starts. */
  planGeneration: (avatarId: string, request: GenerationRequest) =>
    call("plan_generation", { avatarId, request }),
  /** Starts exactly the pack the creator confirmed; its images arrive through `onGenerationChange`. */
  startGeneration: (plan: GenerationPlan) => call("start_generation", { plan }),
  cancelGeneration: (generationId: string) => call("cancel_generation", { generationId }),
  gallery: (avatarId: string) => call("gallery", { avatarId }),
  setFavourite: (avatarId: string, imageId: string, favourite: boolean) =>
    call("set_favourite", { avatarId, imageId, favourite }),
  deleteGalleryImage: (avatarId: string, imageId: string) =>
    call("delete_gallery_image", { avatarId, imageId }),
  showGalleryImage: (imageId: string) => call("show_gallery_image", { imageId }),
  /** Copies the favourites into a folder the creator picks; the files written. */
  exportFavourites: (avatarId: string) => call("export_favourites", { avatarId }),
};

/** Listens for one of the backend's events, its payload typed as Rust declares it. */
function on<K extends keyof EventPayloads>(key: K, handler: (payload: EventPayloads[K]) => void): Promise<() => void> {
  return listen<EventPayloads[K]>(EVENTS[key], (event) => handler(event.payload));
}

/** Every change of any sample pack (an image made, its end). */
export const onGenerationChange = (handler: (generation: EventPayloads["generation"]) => void) =>
  on("generation", handler);

/** Every photo a watched folder brings, for any avatar; resolves to a function that stops listening. */
export const onWatchedPhoto = (handler: (update: EventPayloads["watchedPhoto"]) => void) => on("watchedPhoto", handler);

/** An avatar's watched folder can no longer be watched (with why), or can be again (no problem). */
export const onWatchChange = (handler: (change: EventPayloads["watch"]) => void) => on("watch", handler);

/** Every change of any training job; resolves to a function that stops listening. */
export const onTrainingChange = (handler: (job: EventPayloads["training"]) => void) => on("training", handler);

/** Each change of the channel training news arrives by. */
export const onUpdateChannelChange = (handler: (channel: EventPayloads["channel"]) => void) => on("channel", handler);

/** A click on a training notification: the avatar to show. */
export const onOpenAvatarRequest = (handler: (avatarId: EventPayloads["openAvatar"]) => void) =>
  on("openAvatar", handler);

/** A URL the webview can load a thumbnail or a gallery image from (the asset protocol, scoped to those folders). */
export const thumbnailUrl = (path: string): string => convertFileSrc(path);

export interface FileDropHandlers {
  hovering: (over: boolean) => void;
  dropped: (paths: string[]) => void;
}

/** Files and folders dragged onto the window; resolves to a function that stops listening. */
export function onFileDrop(handlers: FileDropHandlers): Promise<() => void> {
  return getCurrentWebview().onDragDropEvent(({ payload }) => {
    if (payload.type === "enter" || payload.type === "over") handlers.hovering(true);
    else if (payload.type === "leave") handlers.hovering(false);
    else {
      handlers.hovering(false);
      handlers.dropped(payload.paths);
    }
  });
}
