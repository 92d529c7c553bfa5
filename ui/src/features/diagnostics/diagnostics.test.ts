import { describe, expect, it } from "vitest";

import type { Diagnosis } from "../../lib/ipc";
import { diagnosisText } from "./diagnostics";

const diagnosis = (overrides: Partial<Diagnosis>): Diagnosis => ({
  service: "storage",
  finding: "storage_answered",
  passed: true,
  detail: "",
  ...overrides,
});

describe("diagnoses in words", () => {
  it("name the service and keep the detail beneath a finding that does not say it", () => {
    expect(diagnosisText(diagnosis({ detail: "https://s3.example/avatars" }), "en")).toEqual({
      service: "Training-set storage",
      finding: "The S3 bucket answered with these credentials.",
      detail: "https://s3.example/avatars",
    });
    expect(diagnosisText(diagnosis({ service: "keychain", finding: "keychain_available" }), "en").detail).toBeNull();
  });

  it("put the S3 address fal cannot fetch from into the finding", () => {
    const local = diagnosis({ finding: "storage_not_public", detail: "http://192.168.1.5:9000" });
    expect(diagnosisText(local, "en")).toEqual({
      service: "Training-set storage",
      finding:
        "fal cannot fetch from http://192.168.1.5:9000: training sets go through fal storage; the photo copies stay in S3.",
      detail: null,
    });
    const only = diagnosis({ finding: "storage_not_public_s3_only", passed: false, detail: "http://localhost:9000" });
    expect(diagnosisText(only, "en").finding).toMatch(
      /^fal cannot fetch from http:\/\/localhost:9000, and training sets are set to go through S3 only: paid starts are refused/,
    );
    expect(diagnosisText(only, "ru").finding).toMatch(/^fal не может скачивать из http:\/\/localhost:9000, а обучающие наборы/);
  });

  it("say what stays on fal, counting the trainings whose outputs it keeps", () => {
    const minimal = diagnosisText(diagnosis({ service: "fal_retention", finding: "retention_minimal" }), "en");
    expect(minimal.service).toBe("What stays on fal");
    expect(minimal.finding).toMatch(/^fal keeps nothing of your trainings beyond what the app asks/);
    const kept = (detail: string, target: "en" | "ru") =>
      diagnosisText(diagnosis({ service: "fal_retention", finding: "retention_outputs_kept", detail }), target);
    expect(kept("1 2027-01-06", "en").finding).toMatch(/^fal keeps what 1 recent training left on its servers .* until January 6, 2027 at the latest/);
    expect(kept("3 2027-01-06", "en").finding).toMatch(/^fal keeps what 3 recent trainings left on/);
    expect(kept("3 2027-01-06", "en").detail).toBeNull();
    expect(kept("21 2027-01-06", "ru").finding).toMatch(/^fal хранит на своих серверах то, что осталось от 21 недавнего обучения .* 6 января 2027/);
    expect(kept("5 2027-01-06", "ru").finding).toMatch(/^fal хранит на своих серверах то, что осталось от 5 недавних обучений/);
    expect(kept("5 2027-01-06", "ru").service).toBe("Что остаётся на fal");
  });

  it("flag trainings fal billed far from what was confirmed", () => {
    const differs = diagnosisText(diagnosis({ service: "fal_billing", finding: "billed_differs", detail: "2" }), "en");
    expect(differs.service).toBe("What fal billed");
    expect(differs.finding).toMatch(/^fal billed 2 trainings more than 20% away/);
    expect(differs.detail).toBeNull();
    const russian = diagnosisText(diagnosis({ service: "fal_billing", finding: "billed_differs", detail: "1" }), "ru");
    expect(russian.finding).toMatch(/^fal списал за 1 обучение/);
  });
});
