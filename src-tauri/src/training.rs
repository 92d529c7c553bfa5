//! Training in the app: jobs are followed in the background for as long as the app runs (also
//! with the window hidden), every change is sent to the UI as a `training` event, and the end of
//! a job raises a desktop notification.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use studio::{JobState, Notice, Notifier, Studio};
use tauri::{AppHandle, Emitter, Manager};

use crate::state::AppState;
use crate::words::Words;
use uuid::Uuid;

/// The UI listens for this event; its payload is the changed `TrainingJob`.
pub const TRAINING_EVENT: &str = "training";
/// Sent when training news starts or stops arriving through the relay; its payload is the
/// `UpdateChannel` now live.
pub const CHANNEL_EVENT: &str = "update-channel";
/// Sent when a creator clicks a training notification; its payload is the avatar's id.
pub const OPEN_AVATAR_EVENT: &str = "open-avatar";
/// How often the app looks for jobs it does not follow yet (started by the CLI, or whose
/// follower stopped on an error such as a network cut).
const SWEEP_INTERVAL: Duration = Duration::from_secs(20);

/// The jobs this process follows, so each is followed once.
#[derive(Default)]
pub struct Followers(Mutex<HashSet<Uuid>>);

impl Followers {
    fn claim(&self, job_id: Uuid) -> bool {
        self.lock().insert(job_id)
    }

    fn release(&self, job_id: Uuid) {
        self.lock().remove(&job_id);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashSet<Uuid>> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Follows a job to its end in the background, unless this process already does.
pub fn follow(app: &AppHandle, studio: &Arc<Studio>, followers: &Arc<Followers>, job_id: Uuid) {
    if !followers.claim(job_id) {
        return;
    }
    let (app, studio, followers) = (app.clone(), studio.clone(), followers.clone());
    tauri::async_runtime::spawn(async move {
        let outcome = studio
            .follow(job_id, |job| {
                let _ = app.emit(TRAINING_EVENT, job);
                true
            })
            .await;
        if let Err(error) = outcome {
            eprintln!("training {job_id} paused: {error}; it is picked up again shortly");
        }
        followers.release(job_id);
    });
}

/// Picks up every unfinished job now and then again every little while.
pub fn follow_unfinished(app: AppHandle, studio: Arc<Studio>, followers: Arc<Followers>) {
    tauri::async_runtime::spawn(async move {
        loop {
            match studio.unfinished_jobs() {
                Ok(jobs) => {
                    for job in jobs {
                        follow(&app, &studio, &followers, job.id);
                    }
                }
                Err(error) => eprintln!("cannot read the training ledger: {error}"),
            }
            tokio::time::sleep(SWEEP_INTERVAL).await;
        }
    });
}

/// Reads the webhook relay's feed whenever one is configured (also when set later in Settings);
/// polling fal goes on beside it.
pub fn follow_relay(app: AppHandle, studio: Arc<Studio>) {
    tauri::async_runtime::spawn(async move {
        studio
            .follow_relay(|channel| {
                eprintln!("training updates now arrive by {channel:?}");
                let _ = app.emit(CHANNEL_EVENT, channel);
            })
            .await;
    });
}

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
        let (title, body) = match notice.outcome {
            JobState::Completed => (
                words.plain("notify.completed.title"),
                words.text("notify.completed.body", &name),
            ),
            JobState::Cancelled => (
                words.plain("notify.cancelled.title"),
                words.text("notify.cancelled.body", &name),
            ),
            _ => {
                let reason = match &notice.failure {
                    Some(failure) => words.failure(failure),
                    None => words.plain("training.failedUnknown"),
                };
                (
                    words.plain("notify.failed.title"),
                    words.text(
                        "notify.failed.body",
                        &[("name", notice.avatar_name.as_str()), ("reason", &reason)],
                    ),
                )
            }
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
fn open_avatar_on_click(app: AppHandle, handle: notify_rust::NotificationHandle, avatar: Uuid) {
    std::thread::spawn(move || {
        handle.wait_for_action(|action| {
            if action == "default" {
                crate::tray::show_main_window(&app);
                let _ = app.emit(OPEN_AVATAR_EVENT, avatar.to_string());
            }
        });
    });
}

#[cfg(not(all(unix, not(target_os = "macos"))))]
fn open_avatar_on_click(_: AppHandle, _: notify_rust::NotificationHandle, _: Uuid) {}
