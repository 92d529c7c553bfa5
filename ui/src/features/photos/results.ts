// Summaries of an import's verdicts, for the detail screen.
import type { PhotoResult } from "../../lib/ipc";

export function summarise(results: readonly PhotoResult[]): { accepted: number; rejected: PhotoResult[] } {
  const rejected = results.filter((result) => result.verdict === "rejected");
  return { accepted: results.length - rejected.length, rejected };
}

/** The last part of a path, whichever separator the system uses. */
export function fileName(path: string): string {
  return path.split(/[\\/]/).pop() ?? path;
}
