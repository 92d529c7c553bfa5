import { describe, expect, it } from "vitest";

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
