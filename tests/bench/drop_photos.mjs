// Time from dropping photos on an avatar to every verdict and thumbnail on screen, in the real
// app under Xvfb (median of 3, each on a new library and a freshly started app).
// usage: xvfb-run -a dbus-run-session -- node tests/bench/drop_photos.mjs portrait|style PHOTO...
import { byTestId, dropCommand, newLibrary, openApp, startDriver } from "../e2e/harness.mjs";

const [type, ...photos] = process.argv.slice(2);
const runs = 3;
const driver = await startDriver();
const times = [];
try {
  for (let run = 0; run < runs; run += 1) {
    const app = await openApp(driver, newLibrary());
    await (await byTestId(app, "menu-create")).click();
    await (await byTestId(app, `type-${type}`)).click();
    await (await byTestId(app, "gender-other")).click();
    await (await byTestId(app, "avatar-name")).setValue("Bench");
    await (await byTestId(app, "create-submit")).click();
    await byTestId(app, "avatar-detail");
    // Timed inside the page, checked on every frame, so that polling from outside neither adds
    // its round trips nor takes CPU from the checks.
    const elapsed = await app.execute(
      async (command, args, count) => {
        const shown = () => {
          const summary = document.querySelector('[data-testid="import-summary"]')?.textContent ?? "";
          const images = [...document.querySelectorAll('[data-testid="photo-card"] img')];
          const rejected = document.querySelectorAll('[data-testid="rejected-photo"]').length;
          return (
            summary.startsWith("Last import") &&
            images.length + rejected === count &&
            // Thumbnails load lazily: the ones on screen must have arrived.
            images
              .filter((img) => img.getBoundingClientRect().top < window.innerHeight)
              .every((img) => img.complete && img.naturalWidth > 0)
          );
        };
        const start = performance.now();
        await window.__TAURI_INTERNALS__.invoke(command, args);
        while (!shown()) await new Promise((frame) => requestAnimationFrame(frame));
        return performance.now() - start;
      },
      ...dropCommand(photos),
      photos.length,
    );
    times.push(elapsed);
    await app.deleteSession();
  }
} finally {
  driver.stop();
}
const median = [...times].sort((a, b) => a - b)[Math.floor(runs / 2)];
console.log(`${photos.length} photos dropped on a ${type} avatar: all verdicts and thumbnails shown in median ${median.toFixed(0)} ms (${times.map((t) => t.toFixed(0)).join(", ")})`);
