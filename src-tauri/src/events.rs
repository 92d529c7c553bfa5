//! The core's background events, forwarded to the webview under the names the UI listens for.

use std::marker::PhantomData;
use std::sync::Arc;

use serde::Serialize;
use studio::{
    AvatarId, CoreEvent, EventSink, GenerationView, JobView, Studio, UpdateChannel, WatchProblem,
};
use tauri::{AppHandle, Emitter};

use crate::commands::ImportUpdate;

/// An event the webview listens for: its name, the key the UI knows it by, and the one payload
/// type it carries. The UI's `EVENTS` and `EventPayloads` are generated from these.
pub struct Event<T> {
    pub name: &'static str,
    /// Read by the bindings generator (a test) only.
    #[cfg_attr(not(test), expect(dead_code))]
    pub key: &'static str,
    payload: PhantomData<fn(T)>,
}

impl<T: Serialize + Clone> Event<T> {
    const fn new(name: &'static str, key: &'static str) -> Self {
        Self {
            name,
            key,
            payload: PhantomData,
        }
    }

    pub fn emit(&self, app: &AppHandle, payload: T) -> tauri::Result<()> {
        app.emit(self.name, payload)
    }
}

/// A training job changed.
pub const TRAINING: Event<JobView> = Event::new("training", "training");
/// A sample pack moved on (an image made, its end).
pub const GENERATION: Event<GenerationView> = Event::new("generation", "generation");
/// Training news started or stopped arriving through the relay.
pub const CHANNEL: Event<UpdateChannel> = Event::new("update-channel", "channel");
/// A verdict on a new file in a watched folder.
pub const WATCHED_PHOTO: Event<WatchedUpdate> = Event::new("watched-photo", "watchedPhoto");
/// An avatar's watched folder can no longer be watched, or can be again.
pub const WATCH: Event<WatchChange> = Event::new("watch-changed", "watch");
/// A creator clicked a training notification: the avatar to show.
pub const OPEN_AVATAR: Event<AvatarId> = Event::new("open-avatar", "openAvatar");

/// Whether an avatar's watched folder can be watched: why not, or none when it can again.
#[derive(Debug, Clone, serde::Serialize, ts_rs::TS)]
pub struct WatchChange {
    pub avatar_id: AvatarId,
    pub problem: Option<WatchProblem>,
}

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
            CoreEvent::Training(job) => TRAINING.emit(&app, JobView::from(&job)),
            CoreEvent::Channel(channel) => CHANNEL.emit(&app, channel),
            CoreEvent::Generation(generation) => {
                GENERATION.emit(&app, GenerationView::from(&generation))
            }
            CoreEvent::WatchedPhoto { avatar_id, result } => {
                let Some(studio) = studio.upgrade() else {
                    return;
                };
                let update = WatchedUpdate {
                    avatar_id,
                    update: ImportUpdate::new(&studio, result),
                };
                WATCHED_PHOTO.emit(&app, update)
            }
            CoreEvent::WatchChanged { avatar_id, problem } => {
                WATCH.emit(&app, WatchChange { avatar_id, problem })
            }
        };
        if let Err(error) = sent {
            eprintln!("an event did not reach the window: {error}");
        }
    })
}
