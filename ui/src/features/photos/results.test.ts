import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";

import type { PhotoResult } from "../../lib/ipc";
import { fileName, summarise, throttled } from "./results";

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
  photo_id: null,
  message: "",
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
