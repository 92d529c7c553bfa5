// The desktop figures (see desktop.sh): run by it, with the seeded libraries and the photo folder.
// usage: node tests/bench/desktop.mjs AVATARS_LIBRARY PHOTOS_LIBRARY PHOTO_FOLDER
import { readdirSync, readFileSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";

import { byTestId, cli, dropFiles, newLibrary, openApp, startDriver } from "../e2e/harness.mjs";

const [avatarsLibrary, photosLibrary, photoFolder] = process.argv.slice(2);
const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
const percentile = (values, p) => [...values].sort((a, b) => a - b)[Math.min(values.length - 1, Math.floor(values.length * p))];
const ms = (value) => `${value.toFixed(1)} ms`;

/** Resident memory of the app and every process it started (WebKit's web and network processes). */
function appMemoryMiB(library) {
  const processes = readdirSync("/proc").filter((name) => /^\d+$/.test(name));
  const parentOf = new Map();
  const commandOf = new Map();
  for (const pid of processes) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
      parentOf.set(pid, stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      commandOf.set(pid, readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0"));
    } catch {
      // gone meanwhile
    }
  }
  const app = [...commandOf].find(([, argv]) => argv[0].endsWith("avatar-studio") && argv.includes(library))?.[0];
  if (!app) throw new Error("the app's process was not found");
  const family = new Set([app]);
  for (let grown = true; grown; ) {
    grown = false;
    for (const [pid, parent] of parentOf) {
      if (family.has(parent) && !family.has(pid)) {
        family.add(pid);
        grown = true;
      }
    }
  }
  let kib = 0;
  for (const pid of family) {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    kib += Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
  }
  return { mib: kib / 1024, processes: family.size };
}

const driver = await startDriver({ AVATAR_MAX_PHOTOS: "200" });
try {
  // 1. Cold start with 1,000 avatars: first paint (the menu) and an interactive My avatars list.
  const paint = [];
  const interactive = [];
  for (let run = 0; run < 5; run += 1) {
    const app = await openApp(driver, avatarsLibrary);
    await byTestId(app, "menu-create", 30_000);
    paint.push(await app.execute(() => performance.now()));
    await (await byTestId(app, "nav-avatars")).click();
    await byTestId(app, "avatar-card", 30_000);
    await app.waitUntil(() => app.execute(() => document.querySelector('[data-testid="open-avatar"]') !== null), { interval: 5 });
    interactive.push(await app.execute(() => performance.now()));
    await app.deleteSession();
  }
  console.log(`cold start, 1,000 avatars: first paint median ${ms(median(paint))}, interactive My avatars median ${ms(median(interactive))} (webview clock from navigation start; runs: ${interactive.map((v) => v.toFixed(0)).join(", ")})`);

  // 2. Scrolling an avatar holding 20,000 photos, one frame at a time.
  {
    const app = await openApp(driver, photosLibrary);
    await (await byTestId(app, "nav-avatars", 30_000)).click();
    await (await byTestId(app, "open-avatar", 30_000)).click();
    await byTestId(app, "photo-card", 60_000);
    // A wheel's pace (40 px a frame) and a fling's (240 px a frame), each from the top.
    for (const step of [40, 240]) {
      const result = await app.execute(
        (pixels) =>
          new Promise((resolve) => {
            const scroller = document.querySelector('[data-testid="virtual-scroll"]');
            scroller.scrollTop = 0;
            const frames = [];
            let last = performance.now();
            const next = (now) => {
              frames.push(now - last);
              last = now;
              scroller.scrollTop += pixels;
              if (frames.length < 400) requestAnimationFrame(next);
              else resolve({ frames: frames.slice(1), scrolled: scroller.scrollTop, height: scroller.scrollHeight, cards: document.querySelectorAll('[data-testid="photo-card"]').length });
            };
            requestAnimationFrame(next);
          }),
        step,
      );
      const over = result.frames.filter((frame) => frame > 1000 / 60 + 1).length;
      console.log(`scrolling 20,000 photos at ${step} px a frame: ${result.frames.length} frames, median ${ms(median(result.frames))}, p95 ${ms(percentile(result.frames, 0.95))}, max ${ms(Math.max(...result.frames))}, ${over} frames over 17.7 ms; scrolled ${result.scrolled} of ${result.height} px with ${result.cards} cards in the DOM`);
    }
    await app.deleteSession();
  }

  // 3. Memory at rest, then after importing 200 photos into an avatar.
  {
    const library = newLibrary();
    const avatar = JSON.parse(cli(library, "--json", "avatar", "create", "--name", "Memory", "--type", "style", "--gender", "other"));
    const app = await openApp(driver, library);
    await (await byTestId(app, "nav-avatars", 30_000)).click();
    await (await byTestId(app, "open-avatar")).click();
    await byTestId(app, "avatar-detail");
    await sleep(5_000);
    const rest = appMemoryMiB(library);
    await dropFiles(app, [photoFolder]);
    await app.waitUntil(
      () => app.execute(() => document.querySelector('[data-testid="import-summary"]')?.textContent?.startsWith("Last import") ?? false),
      { timeout: 600_000, interval: 200 },
    );
    await sleep(5_000);
    const imported = appMemoryMiB(library);
    const stored = JSON.parse(cli(library, "--json", "photos", "list", avatar.id)).length;
    console.log(`memory (app + WebKit processes, RSS): at rest ${rest.mib.toFixed(0)} MiB in ${rest.processes} processes; after importing ${stored} of 200 photos ${imported.mib.toFixed(0)} MiB`);
    await app.deleteSession();
  }
} finally {
  driver.stop();
}
