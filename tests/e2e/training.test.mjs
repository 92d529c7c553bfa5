// A creator trains an avatar in test mode in the real window: progress moves, the end arrives as a
// notification on a real session bus and a click on it opens the avatar, the result survives a
// restart, and a second run is cancelled.
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
