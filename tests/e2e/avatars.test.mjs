// A creator creates an avatar in the real window, sees it listed, and finds it again after a restart.
import assert from "node:assert/strict";
import { copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, test } from "node:test";

import {
  byTestId,
  cli,
  dropFiles,
  newLibrary,
  openApp,
  repoRoot,
  scratchDir,
  screenshot,
  startDriver,
} from "./harness.mjs";

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
    await (await byTestId(app, "compare-types-open")).click();
    assert.match(await (await byTestId(app, "compare-types")).getText(), /Flux LoRA/);
    await screenshot(app, "create-compare-types");
    await (await byTestId(app, "type-portrait")).click();
    await (await byTestId(app, "gender-female")).click();
    const name = await byTestId(app, "avatar-name");
    await name.setValue("Ника в студии");
    await (await byTestId(app, "create-submit")).click();
    await byTestId(app, "avatar-detail"); // the wizard goes on to the photos step

    await (await byTestId(app, "nav-avatars")).click();
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
    // The IPC contract: an id is parsed when the command is called, and every refusal has one
    // shape, {code, message}, whether the id is malformed or names nothing.
    const refusal = (command, args) =>
      app.execute(
        (command, args) =>
          window.__TAURI_INTERNALS__.invoke(command, args).then(
            () => null,
            (error) => error,
          ),
        command,
        args,
      );
    assert.deepEqual(await refusal("rename_avatar", { id: "sea-shells", name: "Shells" }), {
      code: "invalid_input",
      message: 'id: "sea-shells" is not an avatar id',
    });
    const unknown = await refusal("list_photos", { avatarId: "00000000-0000-4000-8000-000000000000" });
    assert.equal(unknown.code, "not_found");
    const listed = await app.execute(() => window.__TAURI_INTERNALS__.invoke("list_avatars"));
    assert.equal(listed.length, 1);
    assert.equal(listed[0].name, "Sea shells");
    assert.equal("revision" in listed[0] || "fal_mode" in listed[0], false, "library columns are not the contract");
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

test("photos dropped on an avatar get a verdict each, in words, and the accepted ones show", async () => {
  const library = newLibrary();
  const inbox = scratchDir("avatar-studio-drop-");
  const cases = join(repoRoot, "tests", "fixtures", "cases");
  for (const name of ["good_portrait.jpg", "webp_good.webp", "blurry.jpg", "tiny.jpg", "text_named_jpg.jpg"]) {
    copyFileSync(join(cases, name), join(inbox, name));
  }
  copyFileSync(join(cases, "good_portrait.jpg"), join(inbox, "z_copy_of_good.jpg"));

  const app = await openApp(driver, library);
  try {
    await (await byTestId(app, "menu-create")).click();
    await (await byTestId(app, "type-portrait")).click();
    await (await byTestId(app, "gender-male")).click();
    await (await byTestId(app, "avatar-name")).setValue("Drop test");
    await (await byTestId(app, "create-submit")).click();
    await byTestId(app, "avatar-detail"); // the wizard's last step leads to the photos

    await dropFiles(app, [inbox]);
    const summary = await byTestId(app, "import-summary");
    await app.waitUntil(async () => /Last import: 2 accepted, 4 rejected/.test(await summary.getText()), {
      timeout: 30_000,
      timeoutMsg: `import did not finish as expected: ${await summary.getText()}`,
    });
    const rejected = await byTestId(app, "rejected-list");
    const text = await rejected.getText();
    assert.match(text, /blurry\.jpg\s+Blurry/);
    assert.match(text, /tiny\.jpg\s+Too small/);
    assert.match(text, /text_named_jpg\.jpg\s+This file type cannot be used/);
    assert.match(text, /z_copy_of_good\.jpg\s+This exact photo is already in the set/);
    assert.match(await (await byTestId(app, "readiness")).getText(), /2 \/ 10–20 photos/);

    const cards = await app.$$('[data-testid="photo-card"]');
    assert.equal(cards.length, 2);
    const loaded = await app.execute(() =>
      [...document.querySelectorAll('[data-testid="photo-card"] img')].every((img) => img.complete && img.naturalWidth > 0),
    );
    assert.ok(loaded, "thumbnails load from the library through the asset protocol");
    const pairs = await app.$$('[data-testid="duplicate-pair"]');
    assert.equal(pairs.length, 1, "the duplicate is shown beside the photo kept");
    const pairShown = await app.execute(() =>
      [...document.querySelectorAll('[data-testid="duplicate-pair"] img')].every((img) => img.complete && img.naturalWidth > 0),
    );
    assert.ok(pairShown, "both photos of the pair are on screen");
    await screenshot(app, "avatar-photos");
  } finally {
    await app.deleteSession();
  }
});

test("a watched folder brings in photos saved into it, skips unfinished ones, is watched after a restart, and again once it is back", async () => {
  const library = newLibrary();
  const folder = scratchDir("avatar-studio-watched-");
  const cases = join(repoRoot, "tests", "fixtures", "cases");
  const avatar = JSON.parse(cli(library, "avatar", "create", "--name", "Watcher", "--type", "portrait", "--gender", "female", "--json"));
  const openDetail = async (app) => {
    await (await byTestId(app, "nav-avatars")).click();
    await (await byTestId(app, "open-avatar")).click();
    return byTestId(app, "avatar-detail");
  };
  const cardCount = async (app) => (await app.$$('[data-testid="photo-card"]')).length;

  let app = await openApp(driver, library);
  try {
    await openDetail(app);
    await byTestId(app, "watch-folder-pick");
    // The native folder picker cannot be driven here; the window calls what its button calls.
    await app.execute(
      (avatarId, chosen) => window.__TAURI_INTERNALS__.invoke("set_watch_folder", { avatarId, folder: chosen }),
      avatar.id,
      folder,
    );
    await openDetail(app);
    assert.match(await (await byTestId(app, "watching")).getText(), /Watching .*avatar-studio-watched-/);

    // A download still in progress, then the photo saved whole.
    writeFileSync(join(folder, "incoming.jpg.part"), readFileSync(join(cases, "good_portrait.jpg")).subarray(0, 5000));
    copyFileSync(join(cases, "good_portrait.jpg"), join(folder, "portrait.jpg"));
    copyFileSync(join(cases, "blurry.jpg"), join(folder, "blurry.jpg"));
    await app.waitUntil(async () => (await cardCount(app)) === 1, {
      timeout: 20_000,
      timeoutMsg: "the photo saved into the watched folder did not appear",
    });
    const rejected = await byTestId(app, "rejected-list");
    await app.waitUntil(async () => /blurry\.jpg\s+Blurry/.test(await rejected.getText()), { timeout: 10_000 });
    assert.doesNotMatch(await rejected.getText(), /incoming/, "an unfinished download is left alone");
  } finally {
    await app.deleteSession();
  }

  // Saved while the app was closed: taken at the next start, as the folder is still watched.
  copyFileSync(join(cases, "png_good.png"), join(folder, "saved_meanwhile.png"));
  app = await openApp(driver, library);
  try {
    await openDetail(app);
    assert.match(await (await byTestId(app, "watching")).getText(), /avatar-studio-watched-/);
    await app.waitUntil(async () => (await cardCount(app)) === 2, {
      timeout: 20_000,
      timeoutMsg: "a photo saved while the app was closed was not taken at the start",
    });
  } finally {
    await app.deleteSession();
  }

  // The folder is gone (an unplugged drive): the screen says so, and watching resumes once it is back.
  rmSync(folder, { recursive: true });
  app = await openApp(driver, library);
  try {
    await openDetail(app);
    assert.match(await (await byTestId(app, "watch-problem")).getText(), /Not watched for now: .*cannot be found/);
    mkdirSync(folder);
    copyFileSync(join(cases, "webp_good.webp"), join(folder, "back_again.webp"));
    await app.waitUntil(async () => (await cardCount(app)) === 3, {
      timeout: 30_000,
      timeoutMsg: "the folder was not watched again once it was back",
    });
    await (await byTestId(app, "stop-watching")).click();
    await app.waitUntil(async () => !(await (await app.$('[data-testid="watching"]')).isExisting()), {
      timeout: 5_000,
      timeoutMsg: "the folder still shows as watched",
    });
  } finally {
    await app.deleteSession();
  }
  const photos = JSON.parse(cli(library, "photos", "list", avatar.id, "--json"));
  assert.deepEqual(photos.map((photo) => photo.original_name).sort(), ["back_again.webp", "portrait.jpg", "saved_meanwhile.png"]);
});

test("Pick the best… finds the person in a camera roll, says why, lets the creator swap, and adds the chosen photos", async () => {
  const library = newLibrary();
  const roll = scratchDir("avatar-studio-roll-");
  const fixtures = join(repoRoot, "tests", "fixtures");
  const files = [
    ["cases", "good_portrait.jpg"],
    ["cases", "rotated_exif.jpg"],
    ["heif", "iphone_portrait.heic"],
    ["cases", "no_face.jpg"],
    ["cases", "good_style.jpg"],
    ["cases", "multiple_faces.jpg"],
    ["cases", "blurry.jpg"],
    ["cases", "tiny.jpg"],
  ];
  for (const [folder, name] of files) copyFileSync(join(fixtures, folder, name), join(roll, name));

  const app = await openApp(driver, library);
  try {
    await (await byTestId(app, "menu-create")).click();
    await (await byTestId(app, "type-portrait")).click();
    await (await byTestId(app, "gender-female")).click();
    await (await byTestId(app, "avatar-name")).setValue("Camera roll");
    await (await byTestId(app, "create-submit")).click();
    await byTestId(app, "avatar-detail");

    await (await byTestId(app, "curate-open")).click();
    await byTestId(app, "curate-choose"); // the panel asks for a folder, or a drop
    await dropFiles(app, [roll]);
    const summary = await byTestId(app, "curate-summary");
    const match = /Picked (\d+) of (\d+) photos/.exec(await summary.getText());
    assert.ok(match, await summary.getText());
    const [count, total] = [Number(match[1]), Number(match[2])];
    assert.equal(total, files.length, "every file in the roll was considered");
    assert.ok(count >= 1, "the astronaut is found");
    const picked = await app.$$('[data-testid="curate-picked"]');
    assert.equal(picked.length, count);
    const previews = await app.execute(() =>
      [...document.querySelectorAll('[data-testid="curate-picked"] img')].every((img) => img.complete && img.naturalWidth > 0),
    );
    assert.ok(previews, "each picked photo is shown");
    assert.match(await picked[0].getText(), /frontal|three-quarter|profile/, "and why: its pose");
    const leftOut = await (await byTestId(app, "curate-left-out")).getText();
    assert.match(leftOut, /No face/i, leftOut);
    await screenshot(app, "curate-picked");

    // Leaving one out and taking it back again changes what will be added.
    const add = await byTestId(app, "curate-add");
    await picked[0].click();
    assert.equal(await picked[0].getAttribute("aria-pressed"), "false");
    assert.equal(await add.getText(), `Add ${count - 1} photos`);
    await picked[0].click();
    assert.equal(await add.getText(), `Add ${count} photos`);

    await add.click();
    const importSummary = await byTestId(app, "import-summary");
    await app.waitUntil(async () => new RegExp(`Last import: ${count} accepted`).test(await importSummary.getText()), {
      timeout: 30_000,
      timeoutMsg: `the chosen photos were not added: ${await importSummary.getText()}`,
    });
    assert.equal((await app.$$('[data-testid="photo-card"]')).length, count);
    assert.equal((await app.$$('[data-testid="curate-panel"]')).length, 0, "the panel closes");
  } finally {
    await app.deleteSession();
  }
});
