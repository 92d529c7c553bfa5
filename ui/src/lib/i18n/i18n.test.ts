import { describe, expect, it } from "vitest";

import en from "./en.json";
import ru from "./ru.json";
import { format, systemLocale, tn, translate } from "./index.svelte";

describe("translations", () => {
  it("have the same keys in every language", () => {
    expect(Object.keys(ru).sort()).toEqual(Object.keys(en).sort());
  });

  it("fill in parameters and leave unknown ones visible", () => {
    expect(format("{count} of {max}", { count: 3, max: 20 })).toBe("3 of 20");
    expect(format("{missing}")).toBe("{missing}");
  });

  it("choose Russian plural forms", () => {
    expect(tn("menu.count", 1, "ru")).toBe("У вас 1 аватар");
    expect(tn("menu.count", 3, "ru")).toBe("У вас 3 аватара");
    expect(tn("menu.count", 5, "ru")).toBe("У вас 5 аватаров");
    expect(tn("menu.count", 1, "en")).toBe("You have 1 avatar");
    expect(tn("menu.count", 2, "en")).toBe("You have 2 avatars");
  });

  it("follow the system language when the app speaks it", () => {
    expect(systemLocale(["ru-RU", "en-US"])).toBe("ru");
    expect(systemLocale(["de-DE", "en-GB"])).toBe("en");
    expect(systemLocale(["fr"])).toBe("en");
    expect(translate("ru", "menu.create")).toBe("Создать аватар");
  });
});
