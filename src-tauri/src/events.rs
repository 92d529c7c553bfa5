//! The core's background events, forwarded to the webview under the names the UI listens for.

use std::sync::Arc;

use studio::{AvatarId, CoreEvent, EventSink, GenerationView, JobView, Studio};
use tauri::{AppHandle, Emitter};

use crate::commands::ImportUpdate;

/// The UI listens for this event; its payload is the changed job's `JobView`.
pub const TRAINING_EVENT: &str = "training";
/// A sample pack moved on (an image made, its end); its payload is its `GenerationView`.
pub const GENERATION_EVENT: &str = "generation";
/// Sent when training news starts or stops arriving through the relay; its payload is the
/// `UpdateChannel` now live.
pub const CHANNEL_EVENT: &str = "update-channel";
/// A verdict on a new file in a watched folder; its payload is a `WatchedUpdate`.
pub const WATCHED_PHOTO_EVENT: &str = "watched-photo";
/// Sent when a creator clicks a training notification; its payload is the avatar's id.
pub const OPEN_AVATAR_EVENT: &str = "open-avatar";

/// A verdict on a file in an avatar's watched folder.
#[derive(Debug, Clone, serde::Serialize, ts_rs::TS)]
pub struct WatchedUpdate {
    pub avatar_id: AvatarId,
    pub update: ImportUpdate,
}

/// The sink the core's background work sends its events into.
pub fn forward_to(app: AppHandle, studio: &Arc<Studio>) -> EventSink {
    let studio = Arc::downgrade(studio);
    Arc::new(move |event| {
        let sent = match event {
            CoreEvent::Training(job) => app.emit(TRAINING_EVENT, JobView::from(&job)),
            CoreEvent::Channel(channel) => app.emit(CHANNEL_EVENT, channel),
            CoreEvent::Generation(generation) => {
                app.emit(GENERATION_EVENT, GenerationView::from(&generation))
            }
            CoreEvent::WatchedPhoto { avatar_id, result } => {
                let Some(studio) = studio.upgrade() else {
                    return;
                };
                let update = WatchedUpdate {
                    avatar_id,
                    update: ImportUpdate::new(&studio, result),
                };
                app.emit(WATCHED_PHOTO_EVENT, update)
            }
        };
        if let Err(error) = sent {
            eprintln!("an event did not reach the window: {error}");
        }
    })
}
