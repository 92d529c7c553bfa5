//! The desktop notification at a training's or a sample pack's end, worded in the creator's language; a click on it
//! brings the window back showing the avatar.

use std::sync::OnceLock;

use studio::AvatarId;
use studio::{JobState, Notice, Notifier};
use tauri::{AppHandle, Manager};

use crate::events::OPEN_AVATAR;
use crate::state::AppState;
use crate::words::Words;

/// Raises the system notification at a training's end; clicking it brings the window back
/// showing the avatar. The app handle arrives once the window exists; the core is opened before.
#[derive(Default)]
pub struct DesktopNotifier(OnceLock<AppHandle>);

impl DesktopNotifier {
    pub fn attach(&self, app: AppHandle) {
        let _ = self.0.set(app);
    }
}

impl Notifier for DesktopNotifier {
    fn notify(&self, notice: &Notice) {
        let Some(app) = self.0.get() else {
            return;
        };
        let studio = app.state::<AppState>().studio().ok();
        let words = Words::of(studio.as_deref());
        let name = [("name", notice.avatar_name.as_str())];
        let reason = || match &notice.failure {
            Some(failure) => words.failure(failure),
            None => words.plain("training.failedUnknown"),
        };
        let (title, body) = match (notice.pack_images, notice.outcome) {
            (Some(images), JobState::Completed) => (
                words.plain("notify.packReady.title"),
                words.text(
                    "notify.packReady.body",
                    &[
                        ("name", notice.avatar_name.as_str()),
                        ("count", &images.to_string()),
                    ],
                ),
            ),
            (Some(_), _) => (
                words.plain("notify.packStopped.title"),
                words.text(
                    "notify.packStopped.body",
                    &[("name", notice.avatar_name.as_str()), ("reason", &reason())],
                ),
            ),
            (None, JobState::Completed) => (
                words.plain("notify.completed.title"),
                words.text("notify.completed.body", &name),
            ),
            (None, JobState::Cancelled) => (
                words.plain("notify.cancelled.title"),
                words.text("notify.cancelled.body", &name),
            ),
            (None, _) => (
                words.plain("notify.failed.title"),
                words.text(
                    "notify.failed.body",
                    &[("name", notice.avatar_name.as_str()), ("reason", &reason())],
                ),
            ),
        };
        let shown = notify_rust::Notification::new()
            .appname("Avatar Studio")
            .summary(&title)
            .body(&body)
            // "default" is the action a click on the notification itself invokes.
            .action("default", &words.plain("notify.open"))
            .show();
        match shown {
            Ok(handle) => open_avatar_on_click(app.clone(), handle, notice.avatar_id),
            Err(error) => eprintln!("cannot show a notification: {error}"),
        }
    }
}

/// Waits on its own thread (the wait blocks until the notification is clicked or closed).
#[cfg(all(unix, not(target_os = "macos")))]
fn open_avatar_on_click(app: AppHandle, handle: notify_rust::NotificationHandle, avatar: AvatarId) {
    std::thread::spawn(move || {
        handle.wait_for_action(|action| {
            if action == "default" {
                crate::tray::show_main_window(&app);
                let _ = OPEN_AVATAR.emit(&app, avatar);
            }
        });
    });
}

#[cfg(not(all(unix, not(target_os = "macos"))))]
fn open_avatar_on_click(_: AppHandle, _: notify_rust::NotificationHandle, _: AvatarId) {}
