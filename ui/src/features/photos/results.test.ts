import { describe, expect, it } from "vitest";

import type { PhotoResult } from "../../lib/ipc";
import { fileName, summarise } from "./results";

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
