//! A watched folder: photos that appear in it, copied, saved, downloaded or moved in, are added to
//! an avatar once they are complete. File-system events are only hints (a folder moved in gives
//! one event and none for its files, and a file is announced while still being written), so
//! every hinted path is rescanned and a file is taken only when its size and modification time
//! have held still for a while and its content ends the way its format says it must.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, SystemTime};

use chrono::{DateTime, Utc};

use notify::{RecursiveMode, Watcher};

use crate::import::{Gathered, gather, is_hidden_or_unfinished};
use library::{WatchedFile, WatchedFileState};

use crate::{AvatarId, AvatarRef, Error, PhotoCode, PhotoResult, Result, Studio};

/// How long a file must stay unchanged before it is taken.
pub const SETTLE_TIME: Duration = Duration::from_secs(1);
/// How often waiting files are looked at again.
const POLL_INTERVAL: Duration = Duration::from_millis(200);

/// An avatar's watched folder as it stands.
#[derive(Debug, Clone, PartialEq)]
pub struct WatchedFolder {
    pub folder: PathBuf,
    /// Why it cannot be watched now (gone, unmounted, unreadable).
    pub problem: Option<WatchProblem>,
}

/// Why a folder cannot be watched: a code the UI words, and the system's technical detail.
#[derive(Debug, Clone, PartialEq, serde::Serialize, ts_rs::TS)]
pub struct WatchProblem {
    pub code: WatchProblemCode,
    pub detail: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, ts_rs::TS)]
#[serde(rename_all = "snake_case")]
pub enum WatchProblemCode {
    /// Gone, moved or unmounted.
    Missing,
    NotAFolder,
    /// This user may not read it.
    Unreadable,
}

/// What a file looked like when last seen, and since when.
struct Sighting {
    size: u64,
    modified: Option<SystemTime>,
    /// On the studio's clock.
    since: DateTime<Utc>,
}

impl Studio {
    /// Every avatar's watched folder, for the app to watch from its start.
    pub fn watch_folders(&self) -> Result<Vec<(AvatarId, PathBuf)>> {
        Ok(self.library.watch_folders()?)
    }

    /// The folder an avatar watches, if any, and why it cannot be watched now, if it cannot.
    pub fn watch_folder_of<'a>(
        &self,
        avatar_reference: impl Into<AvatarRef<'a>>,
    ) -> Result<Option<WatchedFolder>> {
        let avatar = self.avatar(avatar_reference)?;
        self.watch_folder_for(avatar.id)
    }

    /// [`Studio::watch_folder_of`] for an avatar already found.
    pub(crate) fn watch_folder_for(&self, avatar_id: AvatarId) -> Result<Option<WatchedFolder>> {
        Ok(self
            .watch_folders()?
            .into_iter()
            .find_map(|(id, folder)| (id == avatar_id).then_some(folder))
            .map(|folder| WatchedFolder {
                problem: check_watchable(&folder).err(),
                folder,
            }))
    }

    /// Makes an avatar watch `folder`, which must be a folder this user can read, or, with
    /// `None`, no folder. Returns the folder as kept: absolute, with links resolved.
    pub fn set_watch_folder<'a>(
        &self,
        avatar_reference: impl Into<AvatarRef<'a>>,
        folder: Option<&Path>,
    ) -> Result<Option<PathBuf>> {
        let avatar = self.avatar(avatar_reference)?;
        let folder = folder.map(watchable).transpose()?;
        let text = folder
            .as_deref()
            .map(|folder| {
                folder.to_str().ok_or_else(|| {
                    Error::InvalidInput(format!(
                        "{} has characters the library cannot keep: rename the folder",
                        folder.display()
                    ))
                })
            })
            .transpose()?;
        self.library.set_watch_folder(avatar.id, text)?;
        self.rewatch_in_background();
        Ok(folder)
    }

    /// Watches `folder` and adds what appears in it (and what is there already) to the avatar,
    /// until `keep_going` returns false. Each verdict goes to `on_result`.
    pub fn watch_folder<'a>(
        &self,
        avatar_reference: impl Into<AvatarRef<'a>>,
        folder: &Path,
        keep_going: &dyn Fn() -> bool,
        mut on_result: impl FnMut(PhotoResult),
    ) -> Result<()> {
        let avatar = self.avatar(avatar_reference)?;
        let avatar_id = avatar.id;
        let unwatchable = |error: notify::Error| {
            Error::InvalidInput(format!("{} cannot be watched: {error}", folder.display()))
        };
        let (sender, hints) = mpsc::channel();
        let mut watcher =
            notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
                if let Ok(event) = event {
                    let _ = sender.send(event.paths);
                }
            })
            .map_err(unwatchable)?;
        // Folder by folder, not recursively: a recursive watch fails whole on one folder this
        // user may not open (a drive's lost+found, another account's folder).
        watcher
            .watch(folder, RecursiveMode::NonRecursive)
            .map_err(unwatchable)?;
        let mut watched: HashSet<PathBuf> = HashSet::new();

        let mut waiting: HashMap<PathBuf, Sighting> = HashMap::new();
        let mut taken: HashSet<WatchedFile> = HashSet::new();
        let mut reported_unreadable: HashSet<PathBuf> = HashSet::new();
        let mut rescan = vec![folder.to_path_buf()];
        while keep_going() {
            // A folder deleted or unmounted takes its watch with it: say so, so the caller can
            // watch it again when it is back.
            if !folder.is_dir() {
                return Err(Error::InvalidInput(format!(
                    "{} is no longer there",
                    folder.display()
                )));
            }
            // Everything hinted at, and whole folders that appear, are looked through again.
            while let Ok(paths) = hints.try_recv() {
                rescan.extend(paths);
            }
            let Gathered {
                files,
                unreadable,
                folders,
            } = gather(&std::mem::take(&mut rescan), keep_going);
            for walked in folders {
                match watcher.watch(&walked, RecursiveMode::NonRecursive) {
                    // Files put in a new folder before its watch began are found by one more look.
                    Ok(()) if watched.insert(walked.clone()) => rescan.push(walked),
                    Ok(()) => {}
                    Err(error) if matches!(error.kind, notify::ErrorKind::PathNotFound) => {}
                    Err(error) => return Err(unwatchable(error)),
                }
            }
            // A folder this user may not open is said once; one that vanished meanwhile is not.
            let mut ready: Vec<PathBuf> = unreadable
                .into_iter()
                .map(|(path, _)| path)
                .filter(|path| path.exists() && reported_unreadable.insert(path.clone()))
                .collect();
            let now = self.clock.now();
            for file in files
                .into_iter()
                .filter(|file| !is_hidden_or_unfinished(file))
            {
                waiting.entry(file).or_insert(Sighting {
                    size: u64::MAX,
                    modified: None,
                    since: now,
                });
            }
            // Files brought to a verdict before, by an earlier start, are passed over unread; one
            // whose check began and never ended stopped that start, and is said once.
            let mut settled = HashMap::new();
            for (path, file) in settle(&mut waiting, &mut taken, now) {
                match self.library.watched_file_state(avatar_id, &file)? {
                    None => {
                        ready.push(path);
                        settled.insert(file.path.clone(), file);
                    }
                    Some(WatchedFileState::Checking) => {
                        self.library
                            .remember_watched_file(avatar_id, &file, false)?;
                        on_result(PhotoResult::check_stopped(&path));
                    }
                    Some(WatchedFileState::Judged) => {}
                }
            }
            if !ready.is_empty() {
                self.library
                    .begin_watched_files(avatar_id, settled.values())?;
                let mut judged = Vec::new();
                let outcome = self.add_photos_until(&avatar, &ready, keep_going, |result| {
                    if let Some(file) = settled.remove(&result.path) {
                        judged.push((file, result.reasons.clone()));
                    }
                    on_result(result);
                });
                for (file, reasons) in &judged {
                    if reasons.contains(&PhotoCode::Unreadable) {
                        // A file that cannot be read now may be later: it is not remembered.
                        self.library.forget_watched_file(avatar_id, file)?;
                    } else {
                        let waiting_for_room = reasons.contains(&PhotoCode::LimitReached);
                        self.library
                            .remember_watched_file(avatar_id, file, waiting_for_room)?;
                    }
                }
                // Files the import did not reach (it failed) were not checked.
                for file in settled.values() {
                    self.library.forget_watched_file(avatar_id, file)?;
                }
                match outcome {
                    // Told to stop: the files it did not reach are looked at next time.
                    Err(Error::Cancelled(_)) if !keep_going() => return Ok(()),
                    outcome => outcome?,
                }
            }
            self.clock.pause(POLL_INTERVAL);
        }
        Ok(())
    }
}

/// `folder` made absolute, once it is known to be a folder that can be read.
fn watchable(folder: &Path) -> Result<PathBuf> {
    check_watchable(folder).map_err(|problem| Error::InvalidInput(problem.detail))
}

/// The folder as kept (absolute, links resolved), or why it cannot be watched.
fn check_watchable(folder: &Path) -> std::result::Result<PathBuf, WatchProblem> {
    let problem = |code, reason: String| WatchProblem {
        code,
        detail: format!("{} {reason}", folder.display()),
    };
    let canonical = std::fs::canonicalize(folder).map_err(|error| {
        problem(
            WatchProblemCode::Missing,
            format!("cannot be found: {error}"),
        )
    })?;
    if !canonical.is_dir() {
        return Err(problem(
            WatchProblemCode::NotAFolder,
            "is not a folder".into(),
        ));
    }
    std::fs::read_dir(&canonical).map_err(|error| {
        problem(
            WatchProblemCode::Unreadable,
            format!("cannot be read: {error}"),
        )
    })?;
    Ok(canonical)
}

/// Moves files that have held still for [`SETTLE_TIME`] and look complete out of `waiting`, with
/// what they look like, in a stable order.
fn settle(
    waiting: &mut HashMap<PathBuf, Sighting>,
    taken: &mut HashSet<WatchedFile>,
    now: DateTime<Utc>,
) -> Vec<(PathBuf, WatchedFile)> {
    let mut ready = Vec::new();
    waiting.retain(|path, sighting| {
        let Ok(metadata) = std::fs::metadata(path) else {
            return false; // gone (moved away or deleted) before it settled
        };
        let modified = metadata.modified().ok();
        if metadata.len() != sighting.size || modified != sighting.modified {
            *sighting = Sighting {
                size: metadata.len(),
                modified,
                since: now,
            };
            return true;
        }
        let held_still = (now - sighting.since).to_std().unwrap_or_default();
        if held_still < SETTLE_TIME || !looks_complete(path) {
            return true;
        }
        let file = WatchedFile {
            path: path.display().to_string(),
            size: metadata.len(),
            modified_ns: modified
                .and_then(|time| time.duration_since(SystemTime::UNIX_EPOCH).ok())
                .map_or(-1, |since| since.as_nanos() as i64),
        };
        if taken.insert(file.clone()) {
            ready.push((path.clone(), file));
        }
        false
    });
    ready.sort_by(|(a, _), (b, _)| a.cmp(b));
    ready
}

/// Whether a file ends as its format requires: a JPEG with its end-of-image marker, a PNG with
/// its IEND chunk. Other files are judged by their stillness alone, and a file the account may
/// not read is as complete as it will get.
fn looks_complete(path: &Path) -> bool {
    use std::io::{Read, Seek, SeekFrom};
    // Not a photo at all (a pipe, a device, a kernel file that never ends): nothing to wait
    // for; the check refuses it without reading it.
    if !std::fs::metadata(path).is_ok_and(|metadata| metadata.is_file())
        || photos::is_kernel_file(path)
    {
        return true;
    }
    let mut file = match std::fs::File::open(path) {
        Ok(file) => file,
        // Waiting will not make it readable: let the import say it cannot be read.
        Err(error) => return error.kind() == std::io::ErrorKind::PermissionDenied,
    };
    let mut head = [0u8; 8];
    if file.read_exact(&mut head).is_err() {
        return false;
    }
    let tail_length = 12u64;
    let mut tail = Vec::new();
    let length = file.metadata().map(|metadata| metadata.len()).unwrap_or(0);
    if file
        .seek(SeekFrom::Start(length.saturating_sub(tail_length)))
        .is_err()
        || file
            .by_ref()
            .take(tail_length)
            .read_to_end(&mut tail)
            .is_err()
    {
        return false;
    }
    if head.starts_with(&[0xFF, 0xD8]) {
        // Some cameras pad after the marker; allow a few zero bytes.
        let trimmed: &[u8] = {
            let end = tail
                .iter()
                .rposition(|&byte| byte != 0)
                .map_or(0, |index| index + 1);
            &tail[..end]
        };
        trimmed.ends_with(&[0xFF, 0xD9])
    } else if head.starts_with(b"\x89PNG") {
        tail.windows(4).any(|window| window == b"IEND")
    } else {
        true
    }
}
