// The Settings screen's model: which settings it shows in which group, how each is edited, and
// which values changed. Pure, so it is tested without a window.
import type { MessageKey } from "../../lib/i18n/index.svelte";
import type { Setting } from "../../lib/ipc";

/** `dollars` is an amount in US dollars, cents allowed; `number` is stored as typed. */
export type FieldKind = "text" | "url" | "number" | "dollars" | "megabytes" | "switch" | "preset" | "language";

export interface Field {
  /** The guide's variable name, as the backend stores it. */
  name: string;
  kind: FieldKind;
  /** What the field does, shown under it, when its label cannot say it all. */
  help?: MessageKey;
}

export interface Group {
  id: "general" | "fal" | "spending" | "storage" | "relay" | "photos";
  fields: Field[];
  /** Secrets edited in this group (kept in the keychain, never shown back). */
  secrets: string[];
  /** What to know about the group as a whole, shown under its title. */
  help?: MessageKey;
}

export const GROUPS: readonly Group[] = [
  {
    id: "general",
    fields: [
      { name: "AVATAR_LANGUAGE", kind: "language" },
      { name: "AVATAR_DEFAULT_PRESET", kind: "preset" },
    ],
    secrets: [],
  },
  {
    id: "fal",
    fields: [
      { name: "FAL_TRAINING_TEST_MODE", kind: "switch" },
      { name: "FAL_MOCK_TRAINING_DURATION", kind: "number" },
      { name: "FAL_ENABLE_WEBHOOK_SIMULATION", kind: "switch" },
    ],
    secrets: ["fal-key"],
  },
  {
    id: "spending",
    fields: [{ name: "AVATAR_MONTHLY_BUDGET_USD", kind: "dollars", help: "settings.help.AVATAR_MONTHLY_BUDGET_USD" }],
    secrets: [],
  },
  {
    id: "storage",
    fields: [
      { name: "S3_ENDPOINT", kind: "url" },
      { name: "S3_BUCKET", kind: "text" },
      { name: "S3_REGION", kind: "text" },
      { name: "S3_ACCESS_KEY", kind: "text" },
      { name: "AVATAR_TRAINING_SET_S3_ONLY", kind: "switch", help: "settings.help.AVATAR_TRAINING_SET_S3_ONLY" },
      { name: "AVATAR_KEEP_S3_UPLOADS", kind: "switch", help: "settings.help.AVATAR_KEEP_S3_UPLOADS" },
    ],
    secrets: ["s3-secret-key"],
    help: "settings.help.storage",
  },
  {
    id: "relay",
    fields: [
      { name: "RELAY_URL", kind: "url" },
      { name: "FAL_WEBHOOK_URL", kind: "url" },
    ],
    secrets: ["relay-token"],
  },
  {
    id: "photos",
    fields: [
      { name: "AVATAR_MIN_PHOTOS", kind: "number" },
      { name: "AVATAR_MAX_PHOTOS", kind: "number" },
      { name: "PHOTO_MAX_SIZE", kind: "megabytes" },
    ],
    secrets: [],
  },
];

const MEBIBYTE = 1024 * 1024;

/** A stored value as the form shows it: sizes in MiB, everything else as stored. */
export function toDraft(kind: FieldKind, stored: string | null): string {
  if (stored === null) return "";
  if (kind === "megabytes") {
    const bytes = Number(stored);
    return Number.isFinite(bytes) ? String(Math.round((bytes / MEBIBYTE) * 100) / 100) : stored;
  }
  return stored;
}

/** A form value as the backend stores it; "" means "back to the default". A size or an amount
 * that is not a number goes through unchanged, so the backend's message names the variable. */
export function fromDraft(kind: FieldKind, draft: string): string {
  const value = draft.trim();
  if (value === "") return value;
  if (kind === "megabytes") {
    const megabytes = Number(value.replace(",", "."));
    return Number.isFinite(megabytes) ? String(Math.round(megabytes * MEBIBYTE)) : value;
  }
  if (kind === "dollars") {
    // "$25.5", "25,50 $" (a Russian decimal comma) and "25.5" are all 25.5.
    const amount = value.replace(/^\$\s*|\s*\$$/g, "").replace(",", ".");
    return /^(\d+\.?\d*|\.\d+)$/.test(amount) ? String(Number(amount)) : value;
  }
  return value;
}

/** The drafts of every field, from what the backend holds. */
export function draftsOf(settings: readonly Setting[]): Record<string, string> {
  const drafts: Record<string, string> = {};
  for (const group of GROUPS) {
    for (const field of group.fields) {
      const setting = settings.find((candidate) => candidate.name === field.name);
      drafts[field.name] = toDraft(field.kind, setting?.stored ?? null);
    }
  }
  return drafts;
}

/** What to send to `save_settings`: only the fields whose value differs from the stored one. */
export function changesOf(
  settings: readonly Setting[],
  drafts: Record<string, string>,
): Record<string, string | null> {
  const changes: Record<string, string | null> = {};
  for (const group of GROUPS) {
    for (const field of group.fields) {
      const stored = settings.find((candidate) => candidate.name === field.name)?.stored ?? null;
      const next = fromDraft(field.kind, drafts[field.name] ?? "");
      // Compared as shown, so a size that only round-trips through MiB is not a change.
      if (toDraft(field.kind, next || null) !== toDraft(field.kind, stored)) {
        changes[field.name] = next === "" ? null : next;
      }
    }
  }
  return changes;
}
