import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";

import type { PhotoEntry, PhotoResult } from "../../lib/ipc";
import { applyUpdate, fileName, summarise, throttled } from "./results";

const result = (path: string, verdict: PhotoResult["verdict"]): PhotoResult => ({
  path,
  verdict,
  reasons: verdict === "rejected" ? ["blurry"] : [],
  warnings: [],
  md5: "",
  width: 0,
  height: 0,
  faces: 0,
  quality_score: null,
  duplicate_of: null,
  replaces: null,
  photo_id: null,
  replaces_name: null,
  detail: null,
});

describe("import results", () => {
  it("count accepted photos and keep the rejected ones in order", () => {
    const summary = summarise([result("a", "accepted"), result("b", "rejected"), result("c", "rejected")]);
    expect(summary.accepted).toBe(1);
    expect(summary.rejected.map((r) => r.path)).toEqual(["b", "c"]);
  });

  it("name files on every system", () => {
    expect(fileName("/home/anna/photos/IMG_1.jpg")).toBe("IMG_1.jpg");
    expect(fileName("C:\\Users\\anna\\IMG_2.jpg")).toBe("IMG_2.jpg");
  });
});

describe("import updates", () => {
  const entry = (id: string): PhotoEntry => ({
    photo: {
      id,
      avatar_id: "avatar",
      file_hash: id,
      file_size: 1n,
      has_face: true,
      face_count: 1,
      quality_score: 0.8,
      width: 1024,
      height: 1280,
      original_name: `${id}.jpg`,
      format: "jpeg",
      warnings: [],
      created_at: "2026-01-01T00:00:00Z",
    },
    thumbnail_path: `/thumbnails/${id}.jpg`,
  });
  const stored = (path: string, id: string) => ({ ...result(path, "accepted"), photo_id: id });

  it("show each verdict and the photo it stored", () => {
    const results: PhotoResult[] = [];
    const photos: PhotoEntry[] = [];
    applyUpdate(results, photos, { result: stored("a.jpg", "A"), stored: entry("A") });
    applyUpdate(results, photos, { result: result("b.jpg", "rejected"), stored: null });
    expect(results.map((r) => r.path)).toEqual(["a.jpg", "b.jpg"]);
    expect(photos.map((p) => p.photo.id)).toEqual(["A"]);
  });

  it("put a better copy in the place of the photo it replaces", () => {
    const results: PhotoResult[] = [];
    const photos = [entry("OLD")];
    applyUpdate(results, photos, { result: stored("small.jpg", "A"), stored: entry("A") });
    applyUpdate(results, photos, { result: { ...stored("large.jpg", "B"), replaces: "A" }, stored: entry("B") });
    applyUpdate(results, photos, { result: { ...stored("sharp.jpg", "C"), replaces: "OLD" }, stored: entry("C") });
    expect(photos.map((p) => p.photo.id)).toEqual(["B", "C"]);
    expect(summarise(results).accepted).toBe(2);
    expect(results[0]).toMatchObject({ verdict: "rejected", reasons: ["near_duplicate"], duplicate_of: "B", photo_id: null });
  });
});

describe("throttled", () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it("applies the first item at once, then the rest in one batch per interval", () => {
    const batches: number[][] = [];
    const updates = throttled<number>(250, (items) => batches.push(items));
    updates.push(1);
    expect(batches).toEqual([[1]]);
    updates.push(2);
    updates.push(3);
    expect(batches).toEqual([[1]]);
    vi.advanceTimersByTime(250);
    expect(batches).toEqual([[1], [2, 3]]);
    updates.push(4);
    expect(batches).toEqual([[1], [2, 3]]);
    vi.advanceTimersByTime(250);
    expect(batches).toEqual([[1], [2, 3], [4]]);
  });

  it("applies what is pending on flush, and nothing twice", () => {
    const batches: number[][] = [];
    const updates = throttled<number>(250, (items) => batches.push(items));
    updates.push(1);
    updates.push(2);
    updates.flush();
    vi.advanceTimersByTime(1000);
    updates.flush();
    expect(batches).toEqual([[1], [2]]);
  });
});
