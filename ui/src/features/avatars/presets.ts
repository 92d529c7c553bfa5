// The presets, their names generated from Rust; what each trains and how long it takes come from
// the backend (`AppInfo.training`), so the preset cards, the comparison and the estimate show the
// same figures.
import type { Preset, PresetInfo, TrainingChoices, TrainingType } from "../../lib/ipc";

export type { Preset };
export { PRESETS } from "../../lib/ipc";

/** A preset of an avatar type as the backend defines it. */
export function presetOf(choices: TrainingChoices | undefined, type: TrainingType, preset: Preset): PresetInfo | undefined {
  return choices?.presets.find((info) => info.training_type === type && info.preset === preset);
}
