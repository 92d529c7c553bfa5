import { describe, expect, it } from "vitest";

import en from "../../lib/i18n/en.json";
import ru from "../../lib/i18n/ru.json";
import type { Setting } from "../../lib/ipc";
import { GROUPS, changesOf, draftsOf, fromDraft, toDraft } from "./settings";

const setting = (name: string, stored: string | null): Setting => ({
  name,
  stored,
  environment: null,
  in_force: stored,
  default: null,
});

describe("settings", () => {
  it("show sizes in MiB and store them in bytes", () => {
    expect(toDraft("megabytes", "20971520")).toBe("20");
    expect(fromDraft("megabytes", "20")).toBe("20971520");
    expect(fromDraft("megabytes", "1,5")).toBe("1572864");
    expect(fromDraft("megabytes", "big")).toBe("big");
    expect(fromDraft("number", " 12 ")).toBe("12");
  });

  it("take a budget in dollars with cents, a decimal comma or a dollar sign", () => {
    expect(fromDraft("dollars", "25.5")).toBe("25.5");
    expect(fromDraft("dollars", "25,50")).toBe("25.5");
    expect(fromDraft("dollars", "$ 40")).toBe("40");
    expect(fromDraft("dollars", "12,75 $")).toBe("12.75");
    expect(fromDraft("dollars", "  ")).toBe("");
    // Not an amount: sent as typed, so the backend's message names the variable.
    expect(fromDraft("dollars", "lots")).toBe("lots");
    expect(fromDraft("dollars", "-5")).toBe("-5");
    expect(toDraft("dollars", "25.5")).toBe("25.5");
  });

  it("see no change in a budget typed differently from how it is stored", () => {
    const settings = [setting("AVATAR_MONTHLY_BUDGET_USD", "25.5")];
    const drafts = draftsOf(settings);
    expect(drafts.AVATAR_MONTHLY_BUDGET_USD).toBe("25.5");
    drafts.AVATAR_MONTHLY_BUDGET_USD = "25,50";
    expect(changesOf(settings, drafts)).toEqual({});
    drafts.AVATAR_MONTHLY_BUDGET_USD = "30";
    expect(changesOf(settings, drafts)).toEqual({ AVATAR_MONTHLY_BUDGET_USD: "30" });
    drafts.AVATAR_MONTHLY_BUDGET_USD = "";
    expect(changesOf(settings, drafts)).toEqual({ AVATAR_MONTHLY_BUDGET_USD: null });
  });

  it("offer the S3 switches with the storage settings and the budget with spending", () => {
    const fields = (id: string) => GROUPS.find((group) => group.id === id)?.fields.map((field) => `${field.name}:${field.kind}`);
    expect(fields("storage")).toEqual(
      expect.arrayContaining(["AVATAR_TRAINING_SET_S3_ONLY:switch", "AVATAR_KEEP_S3_UPLOADS:switch"]),
    );
    expect(fields("spending")).toEqual(["AVATAR_MONTHLY_BUDGET_USD:dollars"]);
  });

  it("have a label for every group and field, in both languages", () => {
    const keys = GROUPS.flatMap((group) => [
      `settings.group.${group.id}`,
      ...group.fields.map((field) => `settings.field.${field.name}`),
    ]);
    for (const dictionary of [en, ru]) {
      expect(keys.filter((key) => !(key in dictionary))).toEqual([]);
    }
  });

  it("send only what changed, and an emptied field as a return to the default", () => {
    const settings = [setting("AVATAR_MAX_PHOTOS", "25"), setting("PHOTO_MAX_SIZE", "20971520"), setting("RELAY_URL", null)];
    const drafts = draftsOf(settings);
    expect(changesOf(settings, drafts)).toEqual({});
    drafts.AVATAR_MAX_PHOTOS = "";
    drafts.RELAY_URL = "https://relay.example";
    drafts.PHOTO_MAX_SIZE = "20";
    expect(changesOf(settings, drafts)).toEqual({ AVATAR_MAX_PHOTOS: null, RELAY_URL: "https://relay.example" });
  });

  it("cover each secret once", () => {
    const secrets = GROUPS.flatMap((group) => group.secrets).sort();
    expect(secrets).toEqual(["fal-key", "relay-token", "s3-secret-key"]);
  });
});
