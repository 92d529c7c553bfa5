//! Photo and thumbnail files, named by the MD5 of the photo's bytes. A file is always complete
//! before a row points at it (written to a temporary name, synced, renamed); files no row points
//! at, left by a crash or a deletion, are swept away.

use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};

use uuid::Uuid;

use crate::{Library, LibraryError, MODELS_DIR, PHOTOS_DIR, Result, THUMBNAILS_DIR, WORK_DIR};

/// Marks a file still being written; a crash leaves only such names behind.
pub const PARTIAL_SUFFIX: &str = ".partial";

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
    pub fn model_path(&self, avatar_id: Uuid, job_id: Uuid) -> PathBuf {
        self.root
            .join(MODELS_DIR)
            .join(avatar_id.to_string())
            .join(format!("{job_id}.safetensors"))
    }

    /// Where a job's training-set zip is packed before upload: `work/<job>.zip`.
    pub fn dataset_path(&self, job_id: Uuid) -> PathBuf {
        self.root.join(WORK_DIR).join(format!("{job_id}.zip"))
    }

    /// Removes files that no photo row refers to, and half-written ones.
    pub(crate) fn sweep_unreferenced_files(&self) -> Result<()> {
        let referenced: HashSet<String> = {
            let connection = self.connection();
            let mut statement =
                connection.prepare("SELECT DISTINCT file_hash FROM avatar_photos")?;
            statement
                .query_map([], |row| row.get::<_, String>(0))?
                .collect::<rusqlite::Result<_>>()?
        };
        for dir in [PHOTOS_DIR, THUMBNAILS_DIR] {
            sweep(&self.root.join(dir), &referenced).map_err(|source| LibraryError::Folder {
                path: self.root.join(dir),
                source,
            })?;
        }
        Ok(())
    }
}

fn sweep(dir: &Path, referenced: &HashSet<String>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        if entry.file_type()?.is_dir() {
            sweep(&path, referenced)?;
            continue;
        }
        let name = entry.file_name().to_string_lossy().into_owned();
        let hash = name.split('.').next().unwrap_or_default();
        if name.ends_with(PARTIAL_SUFFIX) || !referenced.contains(hash) {
            std::fs::remove_file(&path)?;
        }
    }
    Ok(())
}

/// Writes `bytes` to `path` so that `path` is either absent or complete, even across a crash.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let mut partial = path.as_os_str().to_owned();
    partial.push(PARTIAL_SUFFIX);
    let partial = PathBuf::from(partial);
    let mut file = std::fs::File::create(&partial)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&partial, path)
}
