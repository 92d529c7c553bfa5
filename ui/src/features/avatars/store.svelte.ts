// The avatars the UI shows, loaded from the library and refreshed after every change.
import { backend, type AvatarCard } from "../../lib/ipc";

export const avatars = $state({ list: [] as AvatarCard[], loaded: false });

export async function refreshAvatars(): Promise<void> {
  avatars.list = await backend.listAvatars();
  avatars.loaded = true;
}
