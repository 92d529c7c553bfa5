import { describe, expect, it } from "vitest";

import { back, chooseGender, chooseType, MAX_NAME_CHARS, nameProblem, newWizard, submission } from "./wizard";

describe("create wizard", () => {
  it("walks type → gender → name and submits the trimmed name", () => {
    let wizard = chooseType(newWizard(), "portrait");
    expect(wizard.step).toBe("gender");
    wizard = chooseGender(wizard, "female");
    expect(wizard.step).toBe("name");
    expect(submission({ ...wizard, name: "  Anna " })).toEqual({
      name: "Anna",
      gender: "female",
      trainingType: "portrait",
    });
  });

  it("goes back one step at a time and keeps what was chosen", () => {
    const atName = chooseGender(chooseType(newWizard(), "style"), "other");
    const atGender = back(atName);
    expect(atGender?.step).toBe("gender");
    expect(atGender?.trainingType).toBe("style");
    expect(back(newWizard())).toBeNull();
  });

  it("refuses empty and over-long names like the core does", () => {
    expect(nameProblem("   ")).toBe("empty");
    expect(nameProblem("я".repeat(MAX_NAME_CHARS))).toBeNull();
    expect(nameProblem("я".repeat(MAX_NAME_CHARS + 1))).toBe("too_long");
    expect(submission({ ...newWizard(), name: "Anna" })).toBeNull();
  });
});
