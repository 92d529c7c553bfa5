// The presets' names; what each trains and how long it takes come from the backend
// (`AppInfo.training`), so the preset cards, the comparison and the estimate show the same figures.
import type { PresetInfo, TrainingChoices, TrainingPreset, TrainingType } from "../../lib/ipc";

export type Preset = TrainingPreset;
export const PRESETS: readonly Preset[] = ["fast", "balanced", "quality"];

/** A preset of an avatar type as the backend defines it. */
export function presetOf(choices: TrainingChoices | undefined, type: TrainingType, preset: Preset): PresetInfo | undefined {
  return choices?.presets.find((info) => info.training_type === type && info.preset === preset);
}
