// Cold start to first paint of the real app, median of 5, under Xvfb through tauri-driver.
// "Session" is from asking for a new WebDriver session (which starts the app) to the avatars
// menu on screen, an upper bound that includes WebKitWebDriver's own start; "page" is the
// webview's own clock (performance.now()) at that moment, from its navigation start.
// usage: xvfb-run -a dbus-run-session -- node tests/bench/first_paint.mjs
import { byTestId, newLibrary, openApp, startDriver } from "../e2e/harness.mjs";

const runs = 5;
const driver = await startDriver();
const session = [];
const page = [];
try {
  for (let run = 0; run < runs; run += 1) {
    const library = newLibrary();
    const start = performance.now();
    const app = await openApp(driver, library);
    await byTestId(app, "menu-create", 30_000);
    session.push(performance.now() - start);
    page.push(await app.execute(() => performance.now()));
    await app.deleteSession();
  }
} finally {
  driver.stop();
}
const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
console.log(`first paint over ${runs} cold starts: session median ${median(session).toFixed(0)} ms, page median ${median(page).toFixed(0)} ms`);
console.log(`session: ${session.map((v) => v.toFixed(0)).join(", ")} ms; page: ${page.map((v) => v.toFixed(0)).join(", ")} ms`);
