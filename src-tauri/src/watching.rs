//! The app's watched folders: one thread per avatar that has a folder, from the app's start and
//! for as long as the folder is set. Each photo the folder brings reaches the UI as a
//! `watched-photo` event.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use studio::Studio;
use tauri::{AppHandle, Emitter};
use uuid::Uuid;

use crate::commands::ImportUpdate;

pub const WATCHED_PHOTO_EVENT: &str = "watched-photo";
/// How long a watcher whose folder is missing waits before looking for it again.
const RETRY_PAUSE: Duration = Duration::from_secs(5);

/// A verdict on a file in an avatar's watched folder.
#[derive(Debug, Clone, serde::Serialize, ts_rs::TS)]
pub struct WatchedUpdate {
    pub avatar_id: String,
    pub update: ImportUpdate,
}

/// The running watchers, each with the switch that stops it.
#[derive(Default)]
pub struct Watchers {
    running: Mutex<HashMap<Uuid, Arc<AtomicBool>>>,
}

impl Watchers {
    /// Watches every avatar's folder.
    pub fn start_all(&self, app: &AppHandle, studio: &Arc<Studio>) {
        match studio.watch_folders() {
            Ok(folders) => {
                for (avatar, folder) in folders {
                    self.start(app, studio, avatar, folder);
                }
            }
            Err(error) => eprintln!("the watched folders could not be read: {error}"),
        }
    }

    /// Watches `folder` for `avatar`, in place of what it watched before.
    pub fn start(&self, app: &AppHandle, studio: &Arc<Studio>, avatar: Uuid, folder: PathBuf) {
        let keep_going = Arc::new(AtomicBool::new(true));
        self.switch(avatar, Some(keep_going.clone()));
        let (app, studio) = (app.clone(), studio.clone());
        std::thread::spawn(move || {
            let keep_going = || keep_going.load(Ordering::Relaxed);
            while keep_going() {
                let watched =
                    studio.watch_folder(&avatar.to_string(), &folder, &keep_going, |result| {
                        // A copy under another name, or a photo added before its folder was
                        // watched: not news.
                        if result.is_already_held() {
                            return;
                        }
                        let update = WatchedUpdate {
                            avatar_id: avatar.to_string(),
                            update: ImportUpdate::new(&studio, result),
                        };
                        let _ = app.emit(WATCHED_PHOTO_EVENT, update);
                    });
                // A folder that is gone (an unplugged drive) is watched again once it is back;
                // the detail screen says why it is not watched meanwhile.
                if let Err(error) = watched {
                    eprintln!("not watching {} for now: {error}", folder.display());
                    std::thread::sleep(RETRY_PAUSE);
                }
            }
        });
    }

    pub fn stop(&self, avatar: Uuid) {
        self.switch(avatar, None);
    }

    /// Stops the avatar's running watcher, if any, and records the next one.
    fn switch(&self, avatar: Uuid, next: Option<Arc<AtomicBool>>) {
        let mut running = self
            .running
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let previous = match next {
            Some(next) => running.insert(avatar, next),
            None => running.remove(&avatar),
        };
        if let Some(previous) = previous {
            previous.store(false, Ordering::Relaxed);
        }
    }
}
