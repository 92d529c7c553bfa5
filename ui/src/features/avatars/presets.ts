// The guide's expected training times per type and preset, in minutes.
import type { TrainingPreset, TrainingType } from "../../lib/ipc";

export type Preset = TrainingPreset;
export const PRESETS: readonly Preset[] = ["fast", "balanced", "quality"];

export const EXPECTED_MINUTES: Record<TrainingType, Record<Preset, [number, number]>> = {
  portrait: { fast: [3, 5], balanced: [5, 15], quality: [15, 30] },
  style: { fast: [5, 10], balanced: [10, 20], quality: [20, 45] },
};
