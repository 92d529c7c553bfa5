// Starts tauri-driver and opens the real app window in it. Each test gets its own library folder.
import { spawn, execFileSync } from "node:child_process";
import { copyFileSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import net from "node:net";

import { remote } from "webdriverio";

const here = dirname(fileURLToPath(import.meta.url));
export const repoRoot = resolve(here, "../..");
const targetDir = process.env.CARGO_TARGET_DIR ?? join(repoRoot, "target");
export const appBinary = process.env.AVATAR_STUDIO_BIN ?? join(targetDir, "debug", "avatar-studio");
export const cliBinary = process.env.AVATAR_CLI_BIN ?? join(targetDir, "debug", "avatar-cli");
export const artifacts = join(here, "artifacts");
mkdirSync(artifacts, { recursive: true });

async function freePort() {
  return new Promise((resolvePort, reject) => {
    const server = net.createServer();
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolvePort(port));
    });
    server.on("error", reject);
  });
}

async function waitForPort(port, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const open = await new Promise((done) => {
      const socket = net.connect(port, "127.0.0.1", () => {
        socket.end();
        done(true);
      });
      socket.on("error", () => done(false));
    });
    if (open) return;
    await sleep(100);
  }
  throw new Error(`tauri-driver did not listen on ${port} within ${timeoutMs} ms`);
}

/** A running tauri-driver; `stop()` ends it and the WebKitWebDriver it started. The app it
 * launches inherits `env` on top of this process's environment. */
export async function startDriver(env = {}) {
  const port = await freePort();
  const nativePort = await freePort();
  const log = openSync(join(artifacts, `tauri-driver-${port}.log`), "w");
  const driver = spawn("tauri-driver", ["--port", String(port), "--native-port", String(nativePort)], {
    detached: true,
    stdio: ["ignore", log, log],
    env: { ...process.env, ...env },
  });
  await waitForPort(port, 15_000);
  return {
    port,
    stop() {
      try {
        process.kill(-driver.pid, "SIGTERM");
      } catch {
        // already gone
      }
    },
  };
}

const scratch = [];
process.on("exit", () => {
  for (const dir of scratch) rmSync(dir, { recursive: true, force: true });
});

/** A new empty folder, removed when the test process ends. */
export function scratchDir(prefix = "avatar-studio-e2e-") {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  scratch.push(dir);
  return dir;
}

export const newLibrary = () => scratchDir();

/** Opens the app on `library`; the first session can race WebKitWebDriver's start, so retry. */
export async function openApp(driver, library) {
  const capabilities = { "tauri:options": { application: appBinary, args: ["--library", library] } };
  let lastError;
  for (let attempt = 0; attempt < 5; attempt += 1) {
    try {
      return await remote({
        hostname: "127.0.0.1",
        port: driver.port,
        logLevel: "error",
        connectionRetryCount: 0,
        capabilities,
      });
    } catch (error) {
      lastError = error;
      await sleep(500 * (attempt + 1));
    }
  }
  throw lastError;
}

export async function byTestId(app, id, timeout = 15_000) {
  const element = await app.$(`[data-testid="${id}"]`);
  await element.waitForDisplayed({ timeout });
  return element;
}

/** Saves a screenshot into artifacts/, and into assets/screenshots/ when UPDATE_SCREENSHOTS is set. */
export async function screenshot(app, name) {
  await sleep(500); // a screenshot right after a DOM change can show the previous frame
  // Without a GPU the app draws without compositing (src-tauri/src/rendering.rs), and there
  // WebKitWebDriver's snapshot waits for the next repaint: ask for a few, invisibly.
  await app.execute(() => {
    [100, 300, 1000, 3000].forEach((delay, index) => {
      setTimeout(() => (document.body.style.outline = index % 2 ? "" : "1px solid transparent"), delay);
    });
  });
  const file = join(artifacts, `${name}.png`);
  await app.saveScreenshot(file);
  if (process.env.UPDATE_SCREENSHOTS) {
    const committed = join(repoRoot, "assets", "screenshots");
    mkdirSync(committed, { recursive: true });
    copyFileSync(file, join(committed, `${name}.png`));
  }
}

export function cli(library, ...args) {
  return execFileSync(cliBinary, ["--library", library, ...args], { encoding: "utf8" });
}

/** Whether a name is owned on the session bus. */
function busNameOwned(name) {
  try {
    const reply = execFileSync(
      "dbus-send",
      ["--session", "--print-reply", "--dest=org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus.NameHasOwner", `string:${name}`],
      { encoding: "utf8" },
    );
    return /boolean true/.test(reply);
  } catch {
    return false;
  }
}

/**
 * A notification server on this session bus (python3-dbusmock's notification_daemon template)
 * that logs every call; `notifications()` returns the logged Notify calls.
 */
export async function startNotificationServer() {
  if (busNameOwned("org.freedesktop.Notifications")) {
    throw new Error("another notification server owns the session bus name; run the suite in its own dbus session");
  }
  const log = join(scratchDir("avatar-studio-notify-"), "notifications.log");
  const server = spawn("/usr/bin/python3", ["-m", "dbusmock", "--session", "--template", "notification_daemon", "-l", log], {
    detached: true,
    stdio: "ignore",
  });
  const deadline = Date.now() + 10_000;
  while (!busNameOwned("org.freedesktop.Notifications")) {
    if (Date.now() > deadline) throw new Error("the notification server did not start");
    await sleep(100);
  }
  return {
    notifications() {
      try {
        return readFileSync(log, "utf8").split("\n").filter((line) => line.includes(" Notify "));
      } catch {
        return [];
      }
    },
    /** Clicks notification `id` (the server numbers them from 1): the signal a desktop's
     * notification server emits when the creator clicks one. */
    click(id) {
      execFileSync("gdbus", [
        "call", "--session", "--dest", "org.freedesktop.Notifications",
        "--object-path", "/org/freedesktop/Notifications",
        "--method", "org.freedesktop.DBus.Mock.EmitSignal",
        "org.freedesktop.Notifications", "ActionInvoked", "us", `[<uint32 ${id}>, <'default'>]`,
      ]);
    },
    stop() {
      try {
        process.kill(-server.pid, "SIGTERM");
      } catch {
        // already gone
      }
    },
  };
}

/** Where the suite's Secret Service (started by session.sh, unlocked, on this session bus) keeps
 * its keyring file. */
export function keyringHome() {
  const home = process.env.E2E_KEYRING_HOME;
  if (!home) throw new Error("no Secret Service for this suite: run it through tests/e2e/session.sh (tests/run.sh does)");
  return home;
}

/**
 * Drops files on the window. WebDriver cannot perform an OS drop, so this sends the event Tauri
 * itself emits for one (`tauri://drag-drop` to the main webview), through the same IPC.
 */
export async function dropFiles(app, paths) {
  await app.execute(async (command, args) => {
    await window.__TAURI_INTERNALS__.invoke(command, args);
  }, ...dropCommand(paths));
}

/** The IPC command and arguments that deliver a drop of `paths` on the window, as the shell does. */
export function dropCommand(paths) {
  return [
    "plugin:event|emit_to",
    {
      target: { kind: "Webview", label: "main" },
      event: "tauri://drag-drop",
      payload: { paths, position: { x: 300, y: 300 } },
    },
  ];
}

/** Answers the app's native dialog titled `title` (a GTK dialog on this X display) as a creator
 * would at the keyboard: `accept` presses the confirming button's mnemonic (Alt and the letter
 * underlined in its label, e.g. "_Save"), otherwise Escape. Through XTEST, not a script in the
 * webview: the point of the dialog is that the webview cannot answer it. */
export function answerNativeDialog(title, { accept, mnemonic = "s" }) {
  const found = execFileSync("xdotool", ["search", "--sync", "--onlyvisible", "--name", `^${title}$`], {
    encoding: "utf8",
    timeout: 15_000,
  });
  const window = found.trim().split("\n")[0];
  execFileSync("xdotool", ["windowfocus", "--sync", window], { timeout: 5_000 });
  execFileSync("xdotool", ["key", "--clearmodifiers", accept ? `alt+${mnemonic}` : "Escape"], { timeout: 5_000 });
}
