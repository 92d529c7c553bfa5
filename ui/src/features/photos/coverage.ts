// A portrait set's coverage in the creator's language: the counts, and each gap as advice.
import { locale, translate, type Locale, type MessageKey } from "../../lib/i18n/index.svelte";
import type { Coverage, CoverageGap } from "../../lib/ipc";

export function coverageCounts(coverage: Coverage, target: Locale = locale()): string {
  return translate(target, "coverage.counts", {
    frontal: coverage.poses.frontal,
    threeQuarter: coverage.poses.three_quarter,
    profile: coverage.poses.profile,
    closeUp: coverage.framings.close_up,
    shoulders: coverage.framings.shoulders,
    halfBody: coverage.framings.half_body,
    low: coverage.lightings.low,
    even: coverage.lightings.even,
    bright: coverage.lightings.bright,
  });
}

export function gapText(gap: CoverageGap, target: Locale = locale()): string {
  const word = (key: string) => translate(target, key as MessageKey);
  switch (gap.code) {
    case "one_framing":
      return translate(target, "coverage.gap.one_framing", { framing: word(`coverage.framing.${gap.framing}`) });
    case "one_light":
      return translate(target, "coverage.gap.one_light", { lighting: word(`coverage.lighting.${gap.lighting}`) });
    default:
      return translate(target, `coverage.gap.${gap.code}`);
  }
}
