// A creator trains an avatar in test mode in the real window: progress moves, the end arrives as a
// notification on a real session bus and a click on it opens the avatar, the result survives a
// restart, and a second run is cancelled. A Russian-speaking creator reads no English on the way.
import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, test } from "node:test";

import { byTestId, cli, newLibrary, openApp, repoRoot, screenshot, startDriver, startNotificationServer } from "./harness.mjs";

// Two photos make an avatar ready here, and a simulated run lasts a few seconds.
const environment = { AVATAR_MIN_PHOTOS: "2", FAL_MOCK_TRAINING_DURATION: "6", FAL_TRAINING_TEST_MODE: "true" };
Object.assign(process.env, environment);

let driver;
let notifications;
before(async () => {
  notifications = await startNotificationServer();
  driver = await startDriver(environment);
});
after(() => {
  driver?.stop();
  notifications?.stop();
});

async function openAvatar(app) {
  await (await byTestId(app, "menu-my-avatars")).click();
  await (await byTestId(app, "open-avatar")).click();
  return byTestId(app, "training-panel");
}

async function startFast(app) {
  await (await byTestId(app, "preset-fast")).click();
  await byTestId(app, "training-estimate");
  const start = await byTestId(app, "start-training");
  await app.waitUntil(() => start.isEnabled(), { timeout: 10_000, timeoutMsg: "Start never became enabled" });
  await start.click();
  await (await byTestId(app, "confirm-training")).click();
}

const progressOf = async (app) => Number(await (await byTestId(app, "training-progress")).getAttribute("aria-valuenow"));

test("a test-mode training moves, notifies on the session bus, opens the avatar on a click, survives a restart, and a second one is cancelled", async () => {
  const library = newLibrary();
  const cases = join(repoRoot, "tests", "fixtures", "cases");
  const avatar = JSON.parse(cli(library, "--json", "avatar", "create", "--name", "Trainee", "--type", "portrait", "--gender", "female"));
  cli(library, "photos", "add", avatar.id, join(cases, "good_portrait.jpg"), join(cases, "rotated_exif.jpg"));

  let app = await openApp(driver, library);
  try {
    await openAvatar(app);
    await startFast(app);
    const first = await progressOf(app);
    await app.waitUntil(async () => (await progressOf(app)) > first, {
      timeout: 15_000,
      timeoutMsg: "the progress bar never moved",
    });
    assert.match(await (await byTestId(app, "training-status")).getText(), /Training/);
    await screenshot(app, "training");
    const model = await byTestId(app, "training-model", 30_000);
    assert.match(await model.getText(), /\.safetensors/);
    await app.waitUntil(async () => notifications.notifications().some((line) => line.includes("Training completed")), {
      timeout: 10_000,
      timeoutMsg: `no completion notification on the bus: ${notifications.notifications().join(" | ")}`,
    });
    await (await byTestId(app, "nav-menu")).click();
    await byTestId(app, "menu-create");
    const completed = notifications.notifications().findIndex((line) => line.includes("Training completed"));
    notifications.click(completed + 1);
    const detail = await byTestId(app, "avatar-detail", 10_000);
    assert.match(await detail.getText(), /Trainee/);
  } finally {
    await app.deleteSession();
  }

  app = await openApp(driver, library);
  try {
    await openAvatar(app);
    assert.match(await (await byTestId(app, "training-model")).getText(), /\.safetensors/);
    await (await byTestId(app, "train-again")).click();
    await startFast(app);
    await (await byTestId(app, "cancel-training")).click();
    await app.waitUntil(async () => /Cancelled/.test(await (await byTestId(app, "training-status")).getText()), {
      timeout: 20_000,
      timeoutMsg: "the second training was not cancelled",
    });
  } finally {
    await app.deleteSession();
  }
  const jobs = JSON.parse(cli(library, "--json", "jobs"));
  assert.deepEqual(
    jobs.map((job) => job.status),
    ["cancelled", "completed"],
  );
});

/** Words in Latin letters in the visible text, except technical text (paths and fal's own log
 * lines sit in <code>) and the creator's own names (`translate="no"`: file and avatar names). */
async function englishWords(app) {
  const text = await app.execute(() => {
    const parts = [];
    const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
    while (walker.nextNode()) {
      const element = walker.currentNode.parentElement;
      if (!element || element.closest('code, script, style, [translate="no"]')) continue;
      if (element.getClientRects().length === 0 || getComputedStyle(element).visibility === "hidden") continue;
      parts.push(walker.currentNode.textContent);
    }
    return parts.join(" ");
  });
  const names = new Set(["fal", "fal.ai", "avatar", "studio", "s3", "lora", "minio", "flux", "id"]);
  return (text.match(/[A-Za-z][A-Za-z.]*/g) ?? []).filter((word) => !names.has(word.toLowerCase()));
}

test("a Russian-speaking creator trains in test mode and reads Russian on screen and in the notification", async () => {
  const russian = await startDriver({ ...environment, AVATAR_LANGUAGE: "ru" });
  const library = newLibrary();
  const cases = join(repoRoot, "tests", "fixtures", "cases");
  const avatar = JSON.parse(cli(library, "--json", "avatar", "create", "--name", "Анна", "--type", "portrait", "--gender", "female"));
  cli(library, "photos", "add", avatar.id, join(cases, "good_portrait.jpg"), join(cases, "rotated_exif.jpg"));
  const before = notifications.notifications().length;
  const app = await openApp(russian, library);
  try {
    await openAvatar(app);
    assert.deepEqual(await englishWords(app), [], "the avatar's page before the start");
    await startFast(app);
    const status = await byTestId(app, "training-status");
    await app.waitUntil(async () => /Обучение: шаг \d+ из \d+ \(тестовый режим\)/.test(await status.getText()), {
      timeout: 15_000,
      timeoutMsg: "the status line never showed a training step in Russian",
    });
    assert.deepEqual(await englishWords(app), [], "the page while training");
    await byTestId(app, "training-model", 30_000);
    assert.equal(await (await byTestId(app, "training-status")).getText(), "Модель сохранена");
    assert.deepEqual(await englishWords(app), [], "the page after the training");
    await app.waitUntil(async () => notifications.notifications().length > before, {
      timeout: 10_000,
      timeoutMsg: "no notification on the bus",
    });
    const notice = notifications.notifications().slice(before).join("\n");
    assert.match(notice, /Обучение завершено/);
    assert.match(notice, /Аватар «Анна» готов/);
    assert.match(notice, /Открыть/);
    assert.doesNotMatch(notice, /Training|ready|Open/);
  } finally {
    await app.deleteSession();
    russian.stop();
  }
});

test("a test-mode sample pack is made in the app: the gallery shows each image's likeness in words, keeps a favourite, and the end is notified", async () => {
  const library = newLibrary();
  const cases = join(repoRoot, "tests", "fixtures", "cases");
  const avatar = JSON.parse(cli(library, "--json", "avatar", "create", "--name", "Sampler", "--type", "portrait", "--gender", "female"));
  cli(library, "photos", "add", avatar.id, join(cases, "good_portrait.jpg"), join(cases, "rotated_exif.jpg"));
  cli(library, "--json", "train", avatar.id, "--preset", "fast", "--wait");
  const before = notifications.notifications().length;

  const app = await openApp(driver, library);
  try {
    await openAvatar(app);
    const generate = await byTestId(app, "generate-pack");
    await generate.scrollIntoView({ block: "center" });
    await generate.click();
    const history = await byTestId(app, "pack-history", 30_000);
    await app.waitUntil(async () => /Portrait starter \(Fast training\): 8 images, median likeness \d\.\d\d/.test(await history.getText()), {
      timeout: 30_000,
      timeoutMsg: `the pack did not finish: ${await history.getText()}`,
    });
    const cards = await app.$$('[data-testid="gallery-card"]');
    assert.ok(cards.length >= 4, "the gallery shows the pack's images (virtualised: the visible rows)");
    const likeness = await (await byTestId(app, "gallery-likeness")).getText();
    assert.match(likeness, /^(Likeness \d\.\d\d: (looks like them|somewhat|does not look like them)|No face in this image)$/);
    assert.match(await cards[0].getText(), /Simulated/);
    const shown = await app.execute(() =>
      [...document.querySelectorAll('[data-testid="gallery-card"] img')].every((img) => img.complete && img.naturalWidth > 0),
    );
    assert.ok(shown, "the images load from the library's gallery through the asset protocol");
    const star = await byTestId(app, "gallery-favourite");
    await star.scrollIntoView({ block: "center" });
    await star.click();
    await app.waitUntil(async () => (await (await byTestId(app, "gallery-favourite")).getAttribute("aria-pressed")) === "true", {
      timeout: 5_000,
      timeoutMsg: "the favourite was not kept",
    });
    await screenshot(app, "gallery");
    await app.waitUntil(async () => notifications.notifications().slice(before).some((line) => line.includes("Sample pack ready")), {
      timeout: 10_000,
      timeoutMsg: `no pack notification: ${notifications.notifications().slice(before).join(" | ")}`,
    });
    assert.ok(notifications.notifications().slice(before).some((line) => line.includes("8 images of Sampler")));
    // The pack's median likeness is on the avatar's card, to compare trainings by.
    await (await byTestId(app, "nav-avatars")).click();
    assert.match(await (await byTestId(app, "avatar-likeness")).getText(), /^Likeness \d\.\d\d: (looks like them|somewhat|does not look like them)$/);
  } finally {
    await app.deleteSession();
  }
  const gallery = JSON.parse(cli(library, "--json", "gallery", avatar.id));
  assert.equal(gallery.length, 8);
  assert.equal(gallery.filter((image) => image.favourite).length, 1);
});
