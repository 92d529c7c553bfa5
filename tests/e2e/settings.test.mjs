// Settings in the real window: a secret goes into a real Secret Service (gnome-keyring on the
// session bus, started by session.sh) and is known to be set after a restart without ever reaching the disk in plain
// text; a setting applies at once and stays; Russian replaces English; Diagnostics answers.
import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";

import { answerNativeDialog, byTestId, keyringHome, newLibrary, openApp, screenshot, startDriver } from "./harness.mjs";

const FAL_KEY = "fal-key-typed-into-settings-93b7e1";

let driver;
before(async () => {
  driver = await startDriver({ FAL_TRAINING_TEST_MODE: "", FAL_KEY: "", FAL_API_KEY: "" });
});
after(() => driver?.stop());

/** Every file under `dir` whose bytes contain `needle`. */
function filesContaining(dir, needle) {
  if (!existsSync(dir)) return [];
  const found = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    const stat = statSync(path, { throwIfNoEntry: false });
    if (stat?.isDirectory()) found.push(...filesContaining(path, needle));
    else if (stat?.isFile() && readFileSync(path).includes(needle)) found.push(path);
  }
  return found;
}

const secretSource = async (app) => (await byTestId(app, "secret-fal-key-status")).getAttribute("data-source");

async function openSettings(app) {
  await (await byTestId(app, "nav-settings")).click();
  return byTestId(app, "settings");
}

test("a fal key kept in the keychain from Settings is set after a restart and never on disk", async () => {
  const library = newLibrary();
  let app = await openApp(driver, library);
  try {
    await byTestId(app, "test-mode-badge");
    await openSettings(app);
    assert.equal(await secretSource(app), "none");
    await (await byTestId(app, "secret-fal-key-input")).setValue(FAL_KEY);
    // A new fal key pays for what follows: the window's click alone does not store it. Refused
    // in the native dialog, nothing is stored and nothing is said.
    await (await byTestId(app, "secret-fal-key-save")).click();
    answerNativeDialog("Confirm the change", { accept: false });
    // Enabled again once the refusal came back.
    await (await byTestId(app, "secret-fal-key-save")).waitForEnabled({ timeout: 10_000 });
    assert.equal(await secretSource(app), "none", "refused natively: not stored");
    assert.equal(await (await app.$('[data-testid="secret-error"]')).isExisting(), false, "a refusal is no error");
    await (await byTestId(app, "secret-fal-key-save")).click();
    answerNativeDialog("Confirm the change", { accept: true });
    await app.waitUntil(async () => (await secretSource(app)) === "keychain", {
      timeout: 10_000,
      timeoutMsg: "the key never showed as kept in the keychain",
    });
    assert.equal(await (await byTestId(app, "secret-fal-key-input")).getValue(), "", "the field is emptied");
    // A fal key ends test mode, at once.
    await app.waitUntil(async () => !(await (await app.$('[data-testid="test-mode-badge"]')).isExisting()), {
      timeout: 5_000,
      timeoutMsg: "test mode stayed on with a fal key",
    });

    await (await byTestId(app, "setting-AVATAR_MAX_PHOTOS")).setValue("25");
    await (await byTestId(app, "settings-save")).click();
    await byTestId(app, "settings-saved");
    await (await byTestId(app, "settings")).scrollIntoView();
    await screenshot(app, "settings");
  } finally {
    await app.deleteSession();
  }

  const places = [library, join(homedir(), ".local/share/app.avatarstudio.desktop"), join(homedir(), ".config/app.avatarstudio.desktop"), join(homedir(), ".cache/app.avatarstudio.desktop"), keyringHome()];
  for (const place of places) {
    assert.deepEqual(filesContaining(place, FAL_KEY), [], `the key in plain text under ${place}`);
  }

  app = await openApp(driver, library);
  try {
    await openSettings(app);
    assert.equal(await secretSource(app), "keychain", "known to be set after a restart");
    assert.equal(await (await byTestId(app, "setting-AVATAR_MAX_PHOTOS")).getValue(), "25");
    const page = await app.getPageSource();
    assert.ok(!page.includes(FAL_KEY), "the key is never sent back to the window");

    await (await app.$('[data-testid="secret-fal-key"] button.danger-text')).click();
    await app.waitUntil(async () => (await secretSource(app)) === "none", {
      timeout: 10_000,
      timeoutMsg: "the key was not removed",
    });
    await byTestId(app, "test-mode-badge");

    await (await byTestId(app, "nav-diagnostics")).click();
    const fal = await byTestId(app, "diagnosis-fal", 20_000);
    assert.equal(await fal.getAttribute("data-finding"), "fal_test_mode");
    assert.equal(await (await byTestId(app, "diagnosis-keychain")).getAttribute("data-finding"), "keychain_available");
    await screenshot(app, "diagnostics");
  } finally {
    await app.deleteSession();
  }
});

test("switching the language to Russian translates the menu, and it stays after a restart", async () => {
  const library = newLibrary();
  let app = await openApp(driver, library);
  try {
    assert.equal(await (await byTestId(app, "nav-menu")).getText(), "Avatars");
    await openSettings(app);
    await (await byTestId(app, "setting-language")).selectByAttribute("value", "ru");
    await (await byTestId(app, "settings-save")).click();
    await app.waitUntil(async () => (await (await byTestId(app, "nav-menu")).getText()) === "Аватары", {
      timeout: 5_000,
      timeoutMsg: "the menu stayed in English",
    });
  } finally {
    await app.deleteSession();
  }
  app = await openApp(driver, library);
  try {
    await (await byTestId(app, "nav-menu")).click();
    assert.equal(await (await byTestId(app, "menu-create")).getText(), "Создать аватар");
    assert.equal(await (await byTestId(app, "nav-settings")).getText(), "Настройки");
  } finally {
    await app.deleteSession();
  }
});
