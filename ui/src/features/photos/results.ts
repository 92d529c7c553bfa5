// Summaries of an import's verdicts, for the detail screen.
import type { ImportUpdate, PhotoEntry, PhotoResult } from "../../lib/ipc";

export function summarise(results: readonly PhotoResult[]): { accepted: number; rejected: PhotoResult[] } {
  const rejected = results.filter((result) => result.verdict === "rejected");
  return { accepted: results.length - rejected.length, rejected };
}

/**
 * Puts one import update on screen: its verdict, and the photo it stored. A better copy takes the
 * place of the photo it replaces, whose verdict, when it came in the same import, turns into the
 * near duplicate it now is.
 */
export function applyUpdate(results: PhotoResult[], photos: PhotoEntry[] | undefined, update: ImportUpdate): void {
  const { result, stored } = update;
  if (result.replaces !== null) {
    const worse = results.find((earlier) => earlier.photo_id === result.replaces);
    if (worse) {
      Object.assign(worse, {
        verdict: "rejected",
        reasons: ["near_duplicate"],
        duplicate_of: result.photo_id,
        photo_id: null,
      } satisfies Partial<PhotoResult>);
    }
    const index = photos?.findIndex((entry) => entry.photo.id === result.replaces) ?? -1;
    if (index >= 0) photos?.splice(index, 1);
  }
  results.push(result);
  if (stored) photos?.push(stored);
}

/** The last part of a path, whichever separator the system uses. */
export function fileName(path: string): string {
  return path.split(/[\\/]/).pop() ?? path;
}

/**
 * Hands pushed items to `apply` together, the first at once and then at most once per
 * `intervalMs`: every redraw of the page takes CPU from the photo checks running beside it.
 */
export function throttled<T>(intervalMs: number, apply: (items: T[]) => void) {
  let pending: T[] = [];
  let timer: ReturnType<typeof setTimeout> | undefined;
  let applied = -Infinity;
  const flush = () => {
    clearTimeout(timer);
    timer = undefined;
    applied = performance.now();
    if (pending.length === 0) return;
    const items = pending;
    pending = [];
    apply(items);
  };
  return {
    push(item: T) {
      pending.push(item);
      if (timer !== undefined) return;
      const wait = applied + intervalMs - performance.now();
      if (wait <= 0) flush();
      else timer = setTimeout(flush, wait);
    },
    /** Applies what is pending now. */
    flush,
  };
}
