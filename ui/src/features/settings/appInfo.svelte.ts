// What the running app said about itself last (test mode, limits, default preset, language);
// reloaded at start and after every change in Settings.
import { backend, type AppInfo } from "../../lib/ipc";

export const app = $state({ info: null as AppInfo | null });

export async function reloadAppInfo(): Promise<AppInfo> {
  const info = await backend.appInfo();
  app.info = info;
  return info;
}
