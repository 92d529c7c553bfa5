import { describe, expect, it } from "vitest";

import type { Coverage } from "../../lib/ipc";
import { coverageCounts, gapText } from "./coverage";

const closeUpsInOneLight: Coverage = {
  photos: 4,
  poses: { frontal: 4, three_quarter: 0, profile: 0 },
  framings: { close_up: 4, shoulders: 0, half_body: 0 },
  lightings: { low: 0, even: 4, bright: 0 },
  missing: [
    { code: "no_profile" },
    { code: "no_three_quarter" },
    { code: "one_framing", framing: "close_up" },
    { code: "one_light", lighting: "even" },
  ],
};

describe("coverage advice", () => {
  it("words every gap with its parameter in English", () => {
    expect(closeUpsInOneLight.missing.map((gap) => gapText(gap, "en"))).toEqual([
      "No profile views: add a photo or two with the head turned to the side.",
      "No three-quarter views: add photos with the head turned part way.",
      "All photos are close-ups: add some framed closer or further away.",
      "The same light in every photo (even light): add photos taken in other light.",
    ]);
    expect(coverageCounts(closeUpsInOneLight, "en")).toContain("4 frontal");
  });

  it("speaks Russian to a Russian creator, with no placeholder left", () => {
    const texts = closeUpsInOneLight.missing.map((gap) => gapText(gap, "ru"));
    for (const text of [...texts, coverageCounts(closeUpsInOneLight, "ru")]) {
      expect(text).not.toMatch(/[{}]/);
      expect(text).not.toMatch(/[A-Za-z]/);
    }
    expect(gapText({ code: "one_framing", framing: "close_up" }, "ru")).toContain("крупные планы");
  });
});
