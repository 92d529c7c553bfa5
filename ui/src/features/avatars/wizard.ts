// The create flow of the guide: training type → gender → name. Pure state, so it is unit-tested.
import type { Gender, TrainingType } from "../../lib/ipc";

export const MAX_NAME_CHARS = 100;

export type WizardStep = "type" | "gender" | "name";
export const WIZARD_STEPS: readonly WizardStep[] = ["type", "gender", "name"];

export interface Wizard {
  step: WizardStep;
  trainingType: TrainingType | null;
  gender: Gender | null;
  name: string;
}

export const newWizard = (): Wizard => ({ step: "type", trainingType: null, gender: null, name: "" });

export const chooseType = (wizard: Wizard, trainingType: TrainingType): Wizard => ({
  ...wizard,
  trainingType,
  step: "gender",
});

export const chooseGender = (wizard: Wizard, gender: Gender): Wizard => ({
  ...wizard,
  gender,
  step: "name",
});

/** The previous step, or null when the wizard is on its first step. */
export function back(wizard: Wizard): Wizard | null {
  const index = WIZARD_STEPS.indexOf(wizard.step);
  const previous = WIZARD_STEPS[index - 1];
  return previous ? { ...wizard, step: previous } : null;
}

export type NameProblem = "empty" | "too_long";

/** Mirrors the core's rule, so the form can say what is wrong before anything is sent. */
export function nameProblem(name: string): NameProblem | null {
  const trimmed = name.trim();
  if (trimmed.length === 0) return "empty";
  if ([...trimmed].length > MAX_NAME_CHARS) return "too_long";
  return null;
}

/** What to send once every step is done, or null while something is missing. */
export function submission(
  wizard: Wizard,
): { name: string; gender: Gender; trainingType: TrainingType } | null {
  if (!wizard.trainingType || !wizard.gender || nameProblem(wizard.name)) return null;
  return { name: wizard.name.trim(), gender: wizard.gender, trainingType: wizard.trainingType };
}
