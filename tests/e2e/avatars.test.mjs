// A creator creates an avatar in the real window, sees it listed, and finds it again after a restart.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import { byTestId, cli, newLibrary, openApp, screenshot, startDriver } from "./harness.mjs";

let driver;
before(async () => {
  driver = await startDriver();
});
after(() => driver?.stop());

test("create an avatar through the wizard, see it listed, and still there after a restart", async () => {
  const library = newLibrary();
  let app = await openApp(driver, library);
  try {
    const count = await byTestId(app, "avatar-count");
    assert.match(await count.getText(), /0 avatars/);
    await byTestId(app, "test-mode-badge"); // no fal key configured: test mode is on and says so
    await screenshot(app, "avatars-menu");

    await (await byTestId(app, "menu-create")).click();
    await (await byTestId(app, "type-portrait")).click();
    await (await byTestId(app, "gender-female")).click();
    const name = await byTestId(app, "avatar-name");
    await name.setValue("Ника в студии");
    await (await byTestId(app, "create-submit")).click();

    const list = await byTestId(app, "avatar-list");
    await app.waitUntil(async () => (await list.getText()).includes("Ника в студии"), {
      timeout: 10_000,
      timeoutMsg: "the new avatar never appeared in My avatars",
    });
    await screenshot(app, "my-avatars");
  } finally {
    await app.deleteSession();
  }

  app = await openApp(driver, library);
  try {
    await (await byTestId(app, "menu-my-avatars")).click();
    await byTestId(app, "avatar-list");
    const labels = await app.$$('[data-testid="avatar-name-label"]');
    const names = await Promise.all([...labels].map((label) => label.getText()));
    assert.deepEqual(names, ["Ника в студии"], "the avatar survives a restart of the app");
  } finally {
    await app.deleteSession();
  }

  const listed = JSON.parse(cli(library, "avatar", "list", "--json"));
  assert.equal(listed.length, 1, "the CLI sees what the app wrote to the same library");
  assert.equal(listed[0].name, "Ника в студии");
  assert.equal(listed[0].training_type, "portrait");
  assert.equal(listed[0].gender, "female");
});

test("an avatar made by the CLI shows up in the app, and a bad name is explained", async () => {
  const library = newLibrary();
  cli(library, "avatar", "create", "--name", "Sea shells", "--type", "style", "--gender", "other");
  const app = await openApp(driver, library);
  try {
    assert.match(await (await byTestId(app, "menu-my-avatars")).getText(), /\(1\)/);
    await (await byTestId(app, "menu-create")).click();
    await (await byTestId(app, "type-style")).click();
    await (await byTestId(app, "gender-other")).click();
    const submit = await byTestId(app, "create-submit");
    assert.equal(await submit.isEnabled(), false, "an empty name cannot be submitted");
    await (await byTestId(app, "avatar-name")).setValue("x".repeat(101));
    assert.equal(await submit.isEnabled(), false, "a 101-character name cannot be submitted");
  } finally {
    await app.deleteSession();
  }
});
