//! Photo and thumbnail files, named by the MD5 of the photo's bytes. A file is always complete
//! before a row points at it (written to a temporary name, synced, renamed); files no row points
//! at, left by a crash or a deletion, are swept away.
//!
//! Several processes (the app, any number of CLIs) share a library. Storing a photo holds a
//! shared lock on `files.lock` from the first byte written until its row is committed, and the
//! sweep runs only under the exclusive lock, so it never sees a file another process has written
//! but not yet recorded; when the lock is busy, the sweep waits for a later open.

use std::collections::HashSet;
use std::fs::{File, OpenOptions, TryLockError};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::{AvatarId, JobId};
use crate::{Library, LibraryError, MODELS_DIR, PHOTOS_DIR, Result, THUMBNAILS_DIR, WORK_DIR};

/// Marks a file still being written; a crash leaves only such names behind.
pub const PARTIAL_SUFFIX: &str = ".partial";
/// The lock file that keeps the sweep away from files being stored.
const FILES_LOCK: &str = "files.lock";

impl Library {
    /// Where a photo's bytes live: `photos/ab/abcdef….jpeg`, spread over 256 folders.
    pub fn photo_path(&self, file_hash: &str, format: &str) -> PathBuf {
        let shard = file_hash.get(..2).unwrap_or("00");
        self.root
            .join(PHOTOS_DIR)
            .join(shard)
            .join(format!("{file_hash}.{format}"))
    }

    pub fn thumbnail_path(&self, file_hash: &str) -> PathBuf {
        self.root
            .join(THUMBNAILS_DIR)
            .join(format!("{file_hash}.jpg"))
    }

    /// Where a job's verified LoRA file lives: `models/<avatar>/<job>.safetensors`.
    pub fn model_path(&self, avatar_id: AvatarId, job_id: JobId) -> PathBuf {
        self.root
            .join(MODELS_DIR)
            .join(avatar_id.to_string())
            .join(format!("{job_id}.safetensors"))
    }

    /// A file in the work folder (created if missing), for downloads on their way in.
    pub fn work_file(&self, name: &str) -> PathBuf {
        let dir = self.root.join(WORK_DIR);
        // A missing folder shows when the file is written, with its path.
        let _ = std::fs::create_dir_all(&dir);
        dir.join(name)
    }

    /// Where a job's training-set zip is packed before upload: `work/<job>.zip`.
    pub fn dataset_path(&self, job_id: JobId) -> PathBuf {
        self.root.join(WORK_DIR).join(format!("{job_id}.zip"))
    }

    /// The library's file lock, opened anew: flock locks belong to one open file, so each
    /// holder opens its own.
    pub(crate) fn files_lock(&self) -> Result<File> {
        let path = self.root.join(FILES_LOCK);
        OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|source| LibraryError::Folder { path, source })
    }

    /// Holds the shared file lock while `store` writes files and records their rows.
    pub(crate) fn storing<T>(&self, store: impl FnOnce() -> Result<T>) -> Result<T> {
        let lock = self.files_lock()?;
        lock.lock_shared().map_err(|source| LibraryError::Folder {
            path: self.root.join(FILES_LOCK),
            source,
        })?;
        let outcome = store();
        drop(lock);
        outcome
    }

    /// Removes files that no photo or gallery row refers to, and half-written ones, when no
    /// process is storing one; otherwise leaves them for a later sweep.
    pub(crate) fn sweep_unreferenced_files(&self) -> Result<()> {
        let lock = self.files_lock()?;
        match lock.try_lock() {
            Ok(()) => self.sweep_locked().map(drop),
            Err(TryLockError::WouldBlock) => Ok(()),
            Err(TryLockError::Error(source)) => Err(LibraryError::Folder {
                path: self.root.join(FILES_LOCK),
                source,
            }),
        }
    }

    /// Removes the files no photo row refers to now, waiting for stores in other processes to
    /// finish first; returns how many it removed.
    pub(crate) fn sweep_unreferenced_files_now(&self) -> Result<usize> {
        let lock = self.files_lock()?;
        lock.lock().map_err(|source| LibraryError::Folder {
            path: self.root.join(FILES_LOCK),
            source,
        })?;
        self.sweep_locked()
    }

    /// The sweep itself, under the exclusive file lock.
    fn sweep_locked(&self) -> Result<usize> {
        let referenced: HashSet<String> = {
            let connection = self.connection();
            let mut statement = connection.prepare(
                "SELECT file_hash FROM avatar_photos UNION SELECT file_hash FROM gallery_images",
            )?;
            statement
                .query_map([], |row| row.get::<_, String>(0))?
                .collect::<rusqlite::Result<_>>()?
        };
        let mut removed = 0;
        for dir in [PHOTOS_DIR, THUMBNAILS_DIR, crate::GALLERY_DIR] {
            let path = self.root.join(dir);
            if !path.exists() {
                continue;
            }
            removed += sweep(&path, &referenced).map_err(|source| LibraryError::Folder {
                path: self.root.join(dir),
                source,
            })?;
        }
        Ok(removed)
    }
}

/// What deleting an avatar removed from the library folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeletedFiles {
    /// Trained model files.
    pub models: usize,
    /// Photo files and thumbnails no other avatar held.
    pub files: usize,
}

fn sweep(dir: &Path, referenced: &HashSet<String>) -> std::io::Result<usize> {
    let mut removed = 0;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        if entry.file_type()?.is_dir() {
            removed += sweep(&path, referenced)?;
            continue;
        }
        let name = entry.file_name().to_string_lossy().into_owned();
        let hash = name.split('.').next().unwrap_or_default();
        if name.ends_with(PARTIAL_SUFFIX) || !referenced.contains(hash) {
            std::fs::remove_file(&path)?;
            removed += 1;
        }
    }
    Ok(removed)
}

/// Writes `bytes` to `path` so that `path` is either absent or complete, even across a crash.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    // A name of its own, so two writers of the same bytes never write into one file.
    static WRITES: AtomicU64 = AtomicU64::new(0);
    let mut partial = path.as_os_str().to_owned();
    partial.push(format!(
        ".{}-{}{PARTIAL_SUFFIX}",
        std::process::id(),
        WRITES.fetch_add(1, Ordering::Relaxed)
    ));
    let partial = PathBuf::from(partial);
    let mut file = std::fs::File::create(&partial)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&partial, path)
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicBool;

    use chrono::Utc;

    use super::*;
    use crate::{Avatar, Gender, Photo, PhotoDetails, TrainingType};

    fn photo(avatar_id: AvatarId, number: u32) -> (Photo, Vec<u8>) {
        let bytes = format!("photo number {number}").repeat(2000).into_bytes();
        let photo = Photo {
            id: crate::PhotoId::new(),
            avatar_id,
            minio_key: None,
            file_hash: format!("{number:032x}"),
            file_size: bytes.len() as u64,
            validation_status: "accepted".into(),
            has_face: true,
            face_count: 1,
            quality_score: Some(0.9),
            width: 1024,
            height: 1024,
            original_name: format!("{number}.jpg"),
            format: "jpeg".into(),
            difference_hash: None,
            warnings: Vec::new(),
            created_at: Utc::now(),
        };
        (photo, bytes)
    }

    #[test]
    fn photos_stored_beside_other_opens_and_removals_always_keep_their_files() {
        let dir = tempfile::tempdir().expect("dir");
        let library = Library::open(dir.path()).expect("library");
        let avatar = Avatar::draft(
            "Anna".into(),
            Gender::Female,
            TrainingType::Portrait,
            Utc::now(),
        );
        library.insert_avatar(&avatar).expect("avatar");
        let storing_done = AtomicBool::new(false);
        std::thread::scope(|scope| {
            let storers: Vec<_> = (0..4u32)
                .map(|worker| {
                    let root = dir.path();
                    scope.spawn(move || {
                        // Each worker is a library opened on its own, as another process has.
                        let library = Library::open(root).expect("open");
                        for index in 0..60 {
                            let (photo, bytes) = photo(avatar.id, worker * 1000 + index);
                            let details = PhotoDetails {
                                faces_json: "[]",
                                quality_json: "{}",
                                identities_json: None,
                            };
                            library
                                .store_photo(&photo, details, &bytes, Some(b"thumbnail"))
                                .expect("store");
                            if index % 7 == 0 {
                                library.remove_photo(avatar.id, photo.id).expect("remove");
                            }
                        }
                    })
                })
                .collect();
            for _ in 0..2 {
                scope.spawn(|| {
                    while !storing_done.load(Ordering::Relaxed) {
                        Library::open(dir.path()).expect("open sweeps");
                    }
                });
            }
            for storer in storers {
                storer.join().expect("storer");
            }
            storing_done.store(true, Ordering::Relaxed);
        });
        let photos = library.photos(avatar.id).expect("photos");
        assert_eq!(
            photos.len(),
            4 * (60 - 9),
            "every photo not removed is kept"
        );
        for photo in photos {
            let number = u32::from_str_radix(&photo.file_hash, 16).expect("number");
            let (_, bytes) = self::photo(avatar.id, number);
            let stored = std::fs::read(library.photo_path(&photo.file_hash, &photo.format));
            assert_eq!(stored.ok(), Some(bytes), "photo {number} lost its file");
            assert!(
                library.thumbnail_path(&photo.file_hash).is_file(),
                "photo {number} lost its thumbnail"
            );
        }
    }
}
