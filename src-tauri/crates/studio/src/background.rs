//! The work a long-running front end (the app) keeps doing while it is open: every unfinished job
//! is followed to its end, the relay's feed is read, and each avatar's watched folder is watched.
//! It lives in the core, not in the shell, so its rules are kept in one place and tested without
//! a window: a started or cancelled job is followed, each job by one follower; a watcher runs
//! while, and only while, an avatar has a folder. The front end gets a closed set of events.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use library::{Generation, TrainingJob};
use uuid::Uuid;

use crate::{AvatarId, JobId, PhotoResult, Studio, UpdateChannel, WatchProblem};

/// How often unfinished jobs nobody here follows are looked for (started by the CLI, or whose
/// follower stopped on an error such as a network cut).
const SWEEP_INTERVAL: Duration = Duration::from_secs(20);
/// How long a watcher whose folder is missing waits before looking for it again.
const WATCH_RETRY: Duration = Duration::from_secs(5);

/// What the background work tells the front end.
#[derive(Debug, Clone)]
pub enum CoreEvent {
    /// A job moved on.
    Training(TrainingJob),
    /// Training news now arrives by another channel.
    Channel(UpdateChannel),
    /// A sample pack moved on (an image made, its end).
    Generation(Generation),
    /// A new file in an avatar's watched folder was judged (copies already held are not news).
    WatchedPhoto {
        avatar_id: AvatarId,
        result: PhotoResult,
    },
    /// An avatar's watched folder can no longer be watched (`problem`), or can be again (none).
    WatchChanged {
        avatar_id: AvatarId,
        problem: Option<WatchProblem>,
    },
}

/// Where events go; called from any thread.
pub type EventSink = Arc<dyn Fn(CoreEvent) + Send + Sync>;

pub(crate) struct Background {
    studio: Weak<Studio>,
    sink: EventSink,
    runtime: tokio::runtime::Handle,
    /// The jobs and generations followed now, so each is followed once.
    followed: Mutex<HashSet<Uuid>>,
    /// Each watching avatar's folder, with the switch that stops its watcher.
    watchers: Mutex<HashMap<AvatarId, (PathBuf, Arc<AtomicBool>)>>,
}

impl Studio {
    /// Starts the background work on `runtime`; its events go to `sink`. Once per studio: a
    /// second call does nothing.
    pub fn start_background(self: &Arc<Self>, runtime: tokio::runtime::Handle, sink: EventSink) {
        let background = Arc::new(Background {
            studio: Arc::downgrade(self),
            sink,
            runtime,
            followed: Mutex::default(),
            watchers: Mutex::default(),
        });
        if self.background.set(background.clone()).is_err() {
            return;
        }
        background.sync_watchers();
        let sweeper = background.clone();
        let clock = self.clock.clone();
        background.runtime.spawn(async move {
            while sweeper.sweep().await {
                clock.sleep(SWEEP_INTERVAL).await;
            }
        });
        let relay = background.clone();
        // Without a thread for it, news comes by polling.
        background.off_workers("relay follower", async move {
            let Some(studio) = relay.studio.upgrade() else {
                return;
            };
            studio
                .follow_relay(|channel| (relay.sink)(CoreEvent::Channel(channel)))
                .await;
        });
    }

    /// Has the background follow a job it may not follow yet (a start, a cancel).
    pub(crate) fn follow_in_background(&self, job_id: JobId) {
        if let Some(background) = self.background.get() {
            background.follow(job_id);
        }
    }

    /// Has the background make a generation's images (a start; a restart finds it by the sweep).
    pub(crate) fn generate_in_background(&self, generation_id: Uuid) {
        if let Some(background) = self.background.get() {
            background.generate(generation_id);
        }
    }

    /// Brings the watchers in line with the avatars' folders (a folder set, cleared, an avatar
    /// deleted).
    pub(crate) fn rewatch_in_background(&self) {
        if let Some(background) = self.background.get() {
            background.sync_watchers();
        }
    }

    /// The avatars watched in the background now, with their folders.
    pub fn watched_in_background(&self) -> Vec<(AvatarId, PathBuf)> {
        let Some(background) = self.background.get() else {
            return Vec::new();
        };
        let mut watched: Vec<(AvatarId, PathBuf)> = lock(&background.watchers)
            .iter()
            .map(|(avatar, (folder, _))| (*avatar, folder.clone()))
            .collect();
        watched.sort();
        watched
    }
}

impl Background {
    /// Follows every unfinished job nobody here follows; false once the studio is gone.
    async fn sweep(self: &Arc<Self>) -> bool {
        let Some(studio) = self.studio.upgrade() else {
            return false;
        };
        // The ledger is read off the async workers.
        let unfinished = tokio::task::spawn_blocking(move || studio.unfinished_jobs()).await;
        match unfinished {
            Ok(Ok(jobs)) => jobs.into_iter().for_each(|job| self.follow(job.id)),
            Ok(Err(error)) => eprintln!("cannot read the training ledger: {error}"),
            Err(error) => eprintln!("cannot read the training ledger: {error}"),
        }
        let Some(studio) = self.studio.upgrade() else {
            return false;
        };
        match tokio::task::spawn_blocking(move || studio.unfinished_generations()).await {
            Ok(Ok(generations)) => generations
                .into_iter()
                .for_each(|generation| self.generate(generation.id)),
            Ok(Err(error)) => eprintln!("cannot read the generations: {error}"),
            Err(error) => eprintln!("cannot read the generations: {error}"),
        }
        true
    }

    /// Makes a generation's images, telling the sink of each image and of the end.
    fn generate(self: &Arc<Self>, generation_id: Uuid) {
        let Some(claim) = self.claim(generation_id) else {
            return;
        };
        let background = self.clone();
        // Decoding and the identity model are CPU work too, done on the same thread.
        self.off_workers("sample pack", async move {
            let _claim = claim;
            if let Some(studio) = background.studio.upgrade() {
                let sink = background.sink.clone();
                let outcome = studio
                    .advance_generation(generation_id, |_| {
                        if let Ok(generation) = studio.load_generation(generation_id) {
                            sink(CoreEvent::Generation(generation));
                        }
                    })
                    .await;
                match outcome {
                    Ok(generation) => sink(CoreEvent::Generation(generation)),
                    Err(error) => eprintln!(
                        "generation {generation_id} paused: {error}; it is picked up again shortly"
                    ),
                }
            }
        });
    }

    fn follow(self: &Arc<Self>, job_id: JobId) {
        let Some(claim) = self.claim(job_id.0) else {
            return;
        };
        let background = self.clone();
        self.off_workers("training follower", async move {
            let _claim = claim;
            if let Some(studio) = background.studio.upgrade() {
                let outcome = studio
                    .follow(job_id, |job| {
                        (background.sink)(CoreEvent::Training(job.clone()));
                        true
                    })
                    .await;
                if let Err(error) = outcome {
                    eprintln!("training {job_id} paused: {error}; it is picked up again shortly");
                }
            }
        });
    }

    /// Marks a job or generation as followed here, or None when it already is. The mark goes
    /// when the claim is dropped: at the follower's end, when its thread could not start, or
    /// when it panicked — so the next sweep picks the work up again.
    fn claim(self: &Arc<Self>, id: Uuid) -> Option<FollowClaim> {
        lock(&self.followed).insert(id).then(|| FollowClaim {
            background: self.clone(),
            id,
        })
    }

    /// Runs `work` to its end on a thread of its own, with the runtime's timers and sockets: the
    /// core's async work reads and writes the library (SQLite) and may reach the keychain over
    /// D-Bus, which must not hold up the runtime's workers (the front end's commands are
    /// answered there). When no thread can be started, `work` is dropped unrun.
    fn off_workers(
        &self,
        name: &str,
        work: impl std::future::Future<Output = ()> + Send + 'static,
    ) {
        let runtime = self.runtime.clone();
        let spawned = std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || runtime.block_on(work));
        if let Err(error) = spawned {
            eprintln!("cannot start the {name}: {error}");
        }
    }

    /// Starts a watcher for each avatar with a folder and stops the others: the one place that
    /// decides what is watched.
    fn sync_watchers(self: &Arc<Self>) {
        let Some(studio) = self.studio.upgrade() else {
            return;
        };
        let wanted: HashMap<AvatarId, PathBuf> = match studio.watch_folders() {
            Ok(folders) => folders.into_iter().collect(),
            Err(error) => {
                eprintln!("the watched folders could not be read: {error}");
                return;
            }
        };
        let mut running = lock(&self.watchers);
        running.retain(|avatar, (folder, keep_going)| {
            let keep = wanted.get(avatar) == Some(folder);
            if !keep {
                keep_going.store(false, Ordering::Relaxed);
            }
            keep
        });
        for (avatar, folder) in wanted {
            if running.contains_key(&avatar) {
                continue;
            }
            let keep_going = Arc::new(AtomicBool::new(true));
            running.insert(avatar, (folder.clone(), keep_going.clone()));
            self.watch(avatar, folder, keep_going);
        }
    }

    /// Watches one folder on its own thread (the watch blocks) until switched off; a folder that
    /// is gone (an unplugged drive) is looked for again every little while.
    fn watch(&self, avatar: AvatarId, folder: PathBuf, keep_going: Arc<AtomicBool>) {
        let (studio, sink) = (self.studio.clone(), self.sink.clone());
        std::thread::spawn(move || {
            let going = || keep_going.load(Ordering::Relaxed);
            // Whether the front end was told the folder cannot be watched.
            let mut told_problem = false;
            while going() {
                let Some(studio) = studio.upgrade() else {
                    return;
                };
                let problem = || {
                    studio
                        .watch_folder_of(avatar)
                        .ok()
                        .flatten()
                        .and_then(|watched| watched.problem)
                };
                if told_problem && problem().is_none() {
                    told_problem = false;
                    sink(CoreEvent::WatchChanged {
                        avatar_id: avatar,
                        problem: None,
                    });
                }
                let watched = studio.watch_folder(avatar, &folder, &going, |result| {
                    if !result.is_already_held() {
                        sink(CoreEvent::WatchedPhoto {
                            avatar_id: avatar,
                            result,
                        });
                    }
                });
                if watched.is_err()
                    && !told_problem
                    && let Some(problem) = problem()
                {
                    told_problem = true;
                    sink(CoreEvent::WatchChanged {
                        avatar_id: avatar,
                        problem: Some(problem),
                    });
                }
                let clock = studio.clock.clone();
                drop(studio);
                if let Err(error) = watched {
                    eprintln!("not watching {} for now: {error}", folder.display());
                    clock.pause(WATCH_RETRY);
                }
            }
        });
    }
}

/// A job or generation followed by one follower; see [`Background::claim`].
struct FollowClaim {
    background: Arc<Background>,
    id: Uuid,
}

impl Drop for FollowClaim {
    fn drop(&mut self) {
        lock(&self.background.followed).remove(&self.id);
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn work_whose_follower_panicked_is_followed_again() {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let background = Arc::new(Background {
            studio: Weak::new(),
            sink: Arc::new(|_| {}),
            runtime: runtime.handle().clone(),
            followed: Mutex::default(),
            watchers: Mutex::default(),
        });
        let id = Uuid::new_v4();
        let claim = background.claim(id).expect("nobody follows it yet");
        assert!(background.claim(id).is_none(), "one follower at a time");
        let follower = std::thread::spawn(move || {
            let _claim = claim;
            panic!("a follower fails unexpectedly");
        });
        assert!(follower.join().is_err());
        assert!(
            background.claim(id).is_some(),
            "the next sweep can follow it again"
        );
    }
}
