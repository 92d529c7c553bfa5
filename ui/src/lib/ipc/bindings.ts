// Generated from the Rust types by `UPDATE_BINDINGS=1 cargo test -p avatar-studio bindings`.
// Do not edit by hand.

import type { Channel } from "@tauri-apps/api/core";

export type AppInfo = { version: string, 
/**
 * Trainings are simulated: nothing reaches fal and nothing is paid for.
 */
test_mode: boolean, library_dir: string, min_photos: number, max_photos: number, 
/**
 * The preset the training panel starts on.
 */
default_preset: Preset, 
/**
 * `en` or `ru` when chosen in Settings; none follows the system's language.
 */
language: string | null, 
/**
 * The presets, their expected times and the accepted ranges, for every screen to show alike.
 */
training: TrainingChoices, 
/**
 * The built-in sample packs.
 */
packs: Array<Pack>, };

export type AvatarView = { id: AvatarId, name: string, gender: Gender, training_type: TrainingType, status: AvatarStatus, 
/**
 * 0–100.
 */
training_progress: number, 
/**
 * The fal request id of the latest training, once submitted.
 */
finetune_id: string | null, photo_count: number, created_at: string, updated_at: string, };

export type AvatarId = string;

export type PhotoId = string;

export type JobId = string;

export type AvatarCard = { 
/**
 * The first photo's thumbnail, when the avatar has photos.
 */
cover_path: string | null, 
/**
 * The median likeness of the newest finished sample pack, and its words.
 */
likeness: number | null, likeness_band: LikenessBand | null, id: AvatarId, name: string, gender: Gender, training_type: TrainingType, status: AvatarStatus, 
/**
 * 0–100.
 */
training_progress: number, 
/**
 * The fal request id of the latest training, once submitted.
 */
finetune_id: string | null, photo_count: number, created_at: string, updated_at: string, };

export type AvatarStatus = "draft" | "uploading" | "training" | "completed" | "error" | "cancelled";

export type ConnectionCheck = { step: ConnectionStep, passed: boolean, problem: ConnectionProblem | null, 
/**
 * Facts in plain words: the relay's version, an HTTP status, the network error.
 */
detail: string, };

export type GalleryEntry = { image: GalleryImageView, file_path: string, 
/**
 * The likeness in plain words, for the UI to say.
 */
band: LikenessBand | null, };

export type GalleryImageView = { id: string, generation_id: string, avatar_id: AvatarId, training_job_id: JobId, 
/**
 * Its place in the pack: prompt by prompt, image by image.
 */
position: number, prompt: string, seed: number, 
/**
 * MD5 of the file's bytes.
 */
file_hash: string, format: string, width: number, height: number, 
/**
 * fal's safety checker replaced it with a black image.
 */
flagged: boolean, 
/**
 * Made on the device in test mode, not by a model.
 */
simulated: boolean, 
/**
 * 0–1; `None` for a style avatar, an image with no face, or a flagged one.
 */
likeness: number | null, likeness_distance: number | null, 
/**
 * The training photo this image nearly copies.
 */
copy_of: PhotoId | null, favourite: boolean, created_at: string, };

export type GalleryView = { images: Array<GalleryEntry>, generations: Array<GenerationSummary>, };

export type GenerationView = { id: string, avatar_id: AvatarId, 
/**
 * The training whose model made it.
 */
training_job_id: JobId, 
/**
 * A built-in pack's name, or `custom`.
 */
pack: string, 
/**
 * The prompts, the trigger phrase in each.
 */
prompts: Array<string>, images_per_prompt: number, 
/**
 * The first image's seed; each next image adds one.
 */
seed: number, image_size: string, endpoint: string, test_mode: boolean, state: GenerationState, confirmed_cost_usd: number, price_source: string, failure: JobFailure | null, cancel_requested: boolean, created_at: string, finished_at: string | null, };

export type GenerationPlan = { avatar_id: AvatarId, avatar_name: string, 
/**
 * The training whose model makes the images.
 */
training_job_id: JobId, pack: string, prompts: Array<string>, images_per_prompt: number, seed: number, image_size: string, endpoint: string, images: number, 
/**
 * Zero in test mode.
 */
cost_usd: number, 
/**
 * `none` in test mode.
 */
price_source: string, test_mode: boolean, };

export type GenerationRequest = { pack: string | null, prompts: Array<string>, 
/**
 * Images per prompt (1–4); 1 by default.
 */
count: number | null, seed: number | null, };

export type GenerationState = "pending" | "running" | "completed" | "failed" | "cancelled";

export type GenerationSummary = { generation: GenerationView, images: number, 
/**
 * The median of the images' likeness; `None` when no image has one.
 */
median_likeness: number | null, median_band: LikenessBand | null, 
/**
 * The preset of the training that made the model, to compare trainings by.
 */
training_preset: string | null, };

export type LikenessBand = "looks_like_them" | "somewhat" | "does_not";

export type Pack = { name: string, training_type: TrainingType, 
/**
 * Fixed, so two trainings of one avatar are compared on the same images.
 */
seed: number, prompts: Array<string>, };

export type CurateProgress = { checked: number, total: number, };

export type CurateResult = { path: string, picked: boolean, 
/**
 * Why it was not picked: the checks' refusals, `different_person`, `duplicate`,
 * `near_duplicate`, or `limit_reached` (better or more varied photos filled the set).
 */
reasons: Array<PhotoCode>, warnings: Array<PhotoCode>, 
/**
 * Curation's account of its decision in English, for the CLI's line (empty when the
 * checks refused the file: the CLI words their codes). The app words `reasons` and
 * `warnings` instead.
 */
why: string, quality_score: number | null, 
/**
 * How far its face is from the main person's.
 */
distance: number | null, pose: Pose | null, framing: Framing | null, lighting: Lighting | null, 
/**
 * The better copy of the same picture, which was considered instead.
 */
copy_of: string | null, 
/**
 * A small JPEG as a data URL, for the photos the app shows (see [`Studio::add_previews`]).
 */
preview?: string, };

export type Coverage = { 
/**
 * Photos with a face, the ones counted.
 */
photos: number, poses: PoseCounts, framings: FramingCounts, lightings: LightingCounts, 
/**
 * Empty until the set has [`MIN_PHOTOS_FOR_ADVICE`] photos with a face.
 */
missing: Array<CoverageGap>, };

export type CoverageGap = { "code": "no_profile" } | { "code": "no_three_quarter" } | { "code": "one_framing", framing: Framing, } | { "code": "one_light", lighting: Lighting, };

export type Framing = "close_up" | "shoulders" | "half_body";

export type FramingCounts = { close_up: number, shoulders: number, half_body: number, };

export type Lighting = "low" | "even" | "bright";

export type LightingCounts = { low: number, even: number, bright: number, };

export type Pose = "frontal" | "three_quarter" | "profile";

export type PoseCounts = { frontal: number, three_quarter: number, profile: number, };

export type ConnectionProblem = "not_configured" | "unreachable" | "not_running" | "not_a_relay" | "token_wrong" | "feed_silent" | "webhook_url_missing" | "webhook_url_elsewhere";

export type ConnectionReport = { 
/**
 * The channel training news arrives by right now.
 */
channel: UpdateChannel, 
/**
 * The steps that ran; the first failure ends the relay's steps.
 */
checks: Array<ConnectionCheck>, };

export type DeletedAvatar = { avatar: AvatarView, 
/**
 * Photo rows.
 */
photos: number, 
/**
 * Photo files and thumbnails no other avatar held.
 */
files: number, 
/**
 * Trained model files.
 */
models: number, 
/**
 * Objects in the S3 bucket (training sets and photo copies).
 */
s3_objects: number, };

export type ConnectionStep = "configured" | "health" | "token" | "feed" | "webhook_url";

export type Diagnosis = { service: Service, finding: Finding, passed: boolean, 
/**
 * The address asked, the error in words, or what is in use.
 */
detail: string, };

export type ErrorCode = "invalid_input" | "not_found" | "invalid_config" | "library_too_new" | "library_unavailable" | "conflict" | "wrong_key" | "rejected" | "remote_unavailable" | "internal" | "cancelled";

export type ErrorReport = { code: ErrorCode, message: string, };

export type Finding = "fal_test_mode" | "fal_key_missing" | "fal_key_wrong" | "fal_unreachable" | "fal_answered" | "storage_fal" | "storage_secret_missing" | "storage_failed" | "storage_unencrypted" | "storage_answered" | "storage_not_public" | "storage_not_public_s3_only" | "keychain_available" | "keychain_unavailable" | "library_open" | "retention_minimal" | "retention_outputs_kept" | "billed_as_confirmed" | "billed_differs" | "heif_decoder_ready" | "heif_decoder_old" | "heif_decoder_missing";

export type Gender = "male" | "female" | "other";

export type ImportUpdate = { result: PhotoResult, stored: PhotoEntry | null, };

export type JobFailure = { "code": "settings", detail: string, } | { "code": "refused", detail: string, } | { "code": "fal_failed", kind: string | null, detail: string, } | { "code": "no_request" } | { "code": "forgotten" } | { "code": "result_expired" } | { "code": "result_unusable", detail: string, } | { "code": "model_not_https", url: string, } | { "code": "model_gone" } | { "code": "model_private", status: number, } | { "code": "transfer_gave_up", transfer: Transfer, tries: number, detail: string, } | { "code": "never_received", minutes: number, } | { "code": "unsettled", detail: string, 
/**
 * When it was sent; absent in failures recorded by an older version.
 */
sent_at: string | null, } | { "code": "image_unavailable", status: number, } | { "code": "other", detail: string, };

export type JobState = "preparing" | "submitting" | "queued" | "running" | "downloading" | "completed" | "failed" | "cancelled";

export type JobStep = { "code": "preparing" } | { "code": "packing", photos: number, } | { "code": "uploading", megabytes: number, store: string, } | { "code": "uploaded" } | { "code": "sending" } | { "code": "queued", place: number | null, } | { "code": "training", done: number | null, total: number | null, } | { "code": "downloading", after_cancel: boolean, } | { "code": "retrying", transfer: Transfer, detail: string, } | { "code": "unreachable", detail: string, } | { "code": "not_sent", detail: string, } | { "code": "awaiting_history" } | { "code": "adopted" } | { "code": "completed" } | { "code": "cancelled" } | { "code": "failed" };

export type NotFitting = { photo_id: PhotoId, name: string, 
/**
 * From the median face of the other photos (0.55 and more: someone else).
 */
distance: number, 
/**
 * How many other photos that median was made from.
 */
others: number, };

export type PhotoView = { id: PhotoId, avatar_id: AvatarId, 
/**
 * The file's name where it was imported from.
 */
original_name: string, 
/**
 * jpeg, png, webp, …
 */
format: string, file_size: bigint, 
/**
 * MD5 of the file's bytes, hex.
 */
file_hash: string, width: number, height: number, has_face: boolean, face_count: number, quality_score: number | null, 
/**
 * Warning codes.
 */
warnings: Array<string>, created_at: string, };

export type PhotoCode = "unsupported_format" | "corrupt" | "file_too_large" | "resolution_too_low" | "dimensions_too_large" | "no_face" | "multiple_faces" | "face_too_small" | "blurry" | "too_dark" | "too_bright" | "low_contrast" | "duplicate" | "near_duplicate" | "limit_reached" | "unreadable" | "check_stopped" | "extension_mismatch" | "noisy" | "background_faces" | "different_person";

export type PhotoEntry = { photo: PhotoView, thumbnail_path: string, };

export type PhotoResult = { path: string, verdict: Verdict, reasons: Array<PhotoCode>, warnings: Array<PhotoCode>, md5: string, width: number, height: number, faces: number, quality_score: number | null, 
/**
 * The stored photo id (or, within one import, the path) this one duplicates.
 */
duplicate_of: string | null, 
/**
 * The stored photo id (or, within one import, the path) of a worse copy of the same picture
 * that this one replaces: the better of two near duplicates is kept.
 */
replaces: string | null, 
/**
 * A rejected duplicate's thumbnail as a `data:` URL, so the app can show the pair side by
 * side (the photo itself is not stored, so it has no thumbnail file).
 */
preview?: string, 
/**
 * The id under which an accepted photo was stored.
 */
photo_id: PhotoId | null, 
/**
 * The file name of the worse copy this one replaces, for a front end's words.
 */
replaces_name: string | null, 
/**
 * A decoder's or the file system's own words, when there are any.
 */
detail: string | null, };

export type PhotoSet = { photos: Array<PhotoEntry>, readiness: Readiness, 
/**
 * The folder the avatar watches for new photos, if any.
 */
watch_folder: WatchFolder | null, };

export type PresetInfo = { training_type: TrainingType, preset: Preset, steps: number, learning_rate: number | null, min_minutes: number, max_minutes: number, };

export type Readiness = { photos: number, min: number, max: number, ready: boolean, 
/**
 * Stored portraits that look like a different person than the rest of the set (judged
 * again as the set grows, so an early photo of someone else is named once the set can tell).
 */
different_person: Array<NotFitting>, 
/**
 * Portraits: the poses, framings and light the set covers, and what it lacks.
 */
coverage: Coverage | null, };

export type SecretSource = "environment" | "keychain";

export type SecretStatus = { 
/**
 * `fal-key`, `s3-secret-key` or `relay-token`.
 */
name: string, source: SecretSource | null, 
/**
 * Why the keychain could not be read, with the fix.
 */
problem: string | null, };

export type Service = "fal" | "storage" | "keychain" | "library" | "fal_retention" | "fal_billing" | "heif_decoder";

export type Setting = { name: string, 
/**
 * Chosen in Settings and kept in the library.
 */
stored: string | null, 
/**
 * Set in the environment, which wins over the stored value.
 */
environment: string | null, 
/**
 * What the app uses now.
 */
in_force: string | null, 
/**
 * What it would be without the stored value.
 */
default: string | null, };

export type SettingsView = { settings: Array<Setting>, 
/**
 * Why the stored settings are not in force, when they are not.
 */
problem: string | null, secrets: Array<SecretStatus>, };

export type TrainingChoices = { presets: Array<PresetInfo>, min_steps: number, max_steps: number, min_learning_rate: number, max_learning_rate: number, };

export type JobView = { id: JobId, avatar_id: AvatarId, training_type: TrainingType, preset: string, 
/**
 * The fal endpoint id.
 */
trainer: string, 
/**
 * Simulated: nothing reaches fal.
 */
test_mode: boolean, state: JobState, 
/**
 * fal's request id, once submitted.
 */
request_id: string | null, 
/**
 * 0–100.
 */
progress: number, queue_position: number | null, 
/**
 * Where the job is, as a code the UI words.
 */
step: JobStep | null, 
/**
 * fal's newest log line (its own words), or the app's technical note.
 */
last_log: string | null, 
/**
 * Why the job failed, as a code the UI words, with the technical detail.
 */
failure: JobFailure | null, 
/**
 * The verified LoRA file in the library. fal's address of it stays inside: whoever holds
 * it can fetch the creator's face model.
 */
model_path: string | null, cancel_requested: boolean, 
/**
 * The cost the creator confirmed before the start, in US dollars; 0 in test mode.
 */
confirmed_cost_usd: number, 
/**
 * Where the confirmed cost came from: `fal` (its pricing API), `static` or `none`.
 */
price_source: string, 
/**
 * Whether the paid request left the machine, or may have (its answer was lost).
 */
paid_request: boolean, 
/**
 * What fal billed, when its billing events could be read.
 */
billed_cost_usd: number | null, created_at: string, 
/**
 * When the job last changed: of two copies of one job, the later is the newer state.
 */
updated_at: string, submitted_at: string | null, finished_at: string | null, };

export type TrainingPlan = { avatar_id: AvatarId, avatar_name: string, training_type: TrainingType, preset: string, trainer: string, steps: number, learning_rate: number | null, min_minutes: number, max_minutes: number, 
/**
 * Zero in test mode.
 */
cost_usd: number, test_mode: boolean, photos: number, 
/**
 * Where fal fetches the training set from: `s3`, `fal` or `none` (test mode).
 */
storage: string, 
/**
 * Why the set does not go where the settings suggest, as a code: `s3_not_public` (fal
 * cannot fetch from the S3 endpoint, so the set goes through fal storage; the photo
 * copies stay in S3).
 */
storage_notice: string | null, 
/**
 * Where the cost came from: `fal` (its pricing API), `static` (the built-in table) or
 * `none` (test mode).
 */
price_source: string, 
/**
 * fal's figure and the documented table's differ by more than three times: both are
 * shown, and `cost_usd` is the higher.
 */
price_unverified: boolean, 
/**
 * fal's figure, when unverified.
 */
cost_usd_fal: number | null, 
/**
 * The documented table's figure, when unverified.
 */
cost_usd_table: number | null, 
/**
 * This month's paid requests and confirmed starts so far, before this one.
 */
spent_this_month_usd: number, monthly_budget_usd: number | null, };

export type TrainingType = "portrait" | "style";

export type Transfer = "upload" | "download";

export type UpdateChannel = "relay" | "polling";

export type Spending = { 
/**
 * Paid requests by month, newest first.
 */
months: Array<MonthSpending>, 
/**
 * `YYYY-MM` of today, in UTC.
 */
this_month: string, 
/**
 * This month's paid requests and the paid starts not sent yet.
 */
committed_this_month_usd: number, monthly_budget_usd: number | null, };

export type MonthSpending = { 
/**
 * `YYYY-MM`, in UTC.
 */
month: string, 
/**
 * What the creator confirmed for the requests sent.
 */
confirmed_usd: number, 
/**
 * What fal billed, summed over the requests whose billing could be read.
 */
billed_usd: number | null, 
/**
 * Paid requests sent (or possibly sent: their answer was lost).
 */
requests: number, 
/**
 * Of those, how many have a billed cost.
 */
billed_requests: number, };

export type Verdict = "accepted" | "rejected";

export type WatchFolder = { path: string, problem: WatchProblem | null, };

export type WatchedUpdate = { avatar_id: AvatarId, update: ImportUpdate, };

export type WatchChange = { avatar_id: AvatarId, problem: WatchProblem | null, };

export type WatchProblem = { code: WatchProblemCode, detail: string, };

export type WatchProblemCode = "missing" | "not_a_folder" | "unreadable";

export type Command = "app_info" | "list_avatars" | "create_avatar" | "rename_avatar" | "delete_avatar" | "list_photos" | "add_photos" | "cancel_import" | "remove_photo" | "set_watch_folder" | "pick_photos" | "curate_photos" | "cancel_curation" | "plan_training" | "start_training" | "training_status" | "cancel_training" | "update_channel" | "check_connection" | "settings" | "save_settings" | "set_secret" | "delete_secret" | "diagnose" | "spending" | "show_model" | "plan_generation" | "start_generation" | "cancel_generation" | "gallery" | "set_favourite" | "delete_gallery_image" | "show_gallery_image" | "export_favourites";

export type CommandArgs = {
  app_info: {};
  list_avatars: {};
  create_avatar: { name: string; gender: Gender; trainingType: TrainingType };
  rename_avatar: { id: AvatarId; name: string };
  delete_avatar: { id: AvatarId };
  list_photos: { avatarId: AvatarId };
  add_photos: { avatarId: AvatarId; paths: Array<string>; onResult: Channel<ImportUpdate> };
  cancel_import: {};
  remove_photo: { avatarId: AvatarId; photoId: PhotoId };
  set_watch_folder: { avatarId: AvatarId; folder: string | null };
  pick_photos: { folder: boolean };
  curate_photos: { avatarId: AvatarId; paths: Array<string>; onProgress: Channel<CurateProgress> };
  cancel_curation: {};
  plan_training: { avatarId: AvatarId; preset: Preset; steps: number | null; learningRate: number | null };
  start_training: { plan: TrainingPlan };
  training_status: { avatarId: AvatarId };
  cancel_training: { avatarId: AvatarId };
  update_channel: {};
  check_connection: {};
  settings: {};
  save_settings: { changes: Record<string, string | null> };
  set_secret: { name: string; value: string };
  delete_secret: { name: string };
  diagnose: {};
  spending: {};
  show_model: { avatarId: AvatarId };
  plan_generation: { avatarId: AvatarId; request: GenerationRequest };
  start_generation: { plan: GenerationPlan };
  cancel_generation: { generationId: string };
  gallery: { avatarId: AvatarId };
  set_favourite: { avatarId: AvatarId; imageId: string; favourite: boolean };
  delete_gallery_image: { avatarId: AvatarId; imageId: string };
  show_gallery_image: { imageId: string };
  export_favourites: { avatarId: AvatarId };
};

export type CommandReplies = {
  app_info: AppInfo;
  list_avatars: Array<AvatarCard>;
  create_avatar: AvatarView;
  rename_avatar: AvatarView;
  delete_avatar: DeletedAvatar;
  list_photos: PhotoSet;
  add_photos: PhotoSet;
  cancel_import: null;
  remove_photo: PhotoSet;
  set_watch_folder: PhotoSet;
  pick_photos: Array<string>;
  curate_photos: Array<CurateResult>;
  cancel_curation: null;
  plan_training: TrainingPlan;
  start_training: JobView;
  training_status: JobView | null;
  cancel_training: JobView;
  update_channel: UpdateChannel;
  check_connection: ConnectionReport;
  settings: SettingsView;
  save_settings: SettingsView;
  set_secret: SettingsView;
  delete_secret: SettingsView;
  diagnose: Array<Diagnosis>;
  spending: Spending;
  show_model: null;
  plan_generation: GenerationPlan;
  start_generation: GenerationView;
  cancel_generation: GenerationView;
  gallery: GalleryView;
  set_favourite: GalleryView;
  delete_gallery_image: GalleryView;
  show_gallery_image: null;
  export_favourites: Array<string>;
};

export type Preset = "fast" | "balanced" | "quality";

export const PRESETS: readonly Preset[] = ["fast", "balanced", "quality"];

export const EVENTS = { training: "training", generation: "generation", channel: "update-channel", watchedPhoto: "watched-photo", watch: "watch-changed", openAvatar: "open-avatar" } as const;

export type EventPayloads = { training: JobView, generation: GenerationView, channel: UpdateChannel, watchedPhoto: WatchedUpdate, watch: WatchChange, openAvatar: AvatarId };
