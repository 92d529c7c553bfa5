// A failed command in the creator's language: a line chosen by its code, then the backend's
// message as technical detail (the backend sends codes; words belong to the UI).
import { t } from "./i18n/index.svelte";
import { toIpcError } from "./ipc";

export function errorText(reason: unknown): string {
  const error = toIpcError(reason);
  return `${t(`errorCode.${error.code}`)} ${t("error.detail")}: ${error.message}`;
}
