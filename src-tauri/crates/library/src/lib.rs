//! The avatar library: one folder holding a SQLite database and the content-addressed photo files
//! that belong to it. Everything here is synchronous; callers that live in async code move calls
//! onto a blocking thread.

mod avatars;
mod blobs;
mod gallery;
mod ids;
mod jobs;
mod migrations;
mod model;
mod photos;
mod settings;
mod watch_folders;

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::Connection;

pub use blobs::{DeletedFiles, PARTIAL_SUFFIX};
pub use gallery::{GALLERY_DIR, GenerationInsert};
pub use ids::{AvatarId, JobId, PhotoId};
pub use jobs::JobInsert;
pub use migrations::SCHEMA_VERSION;
pub use model::{
    Avatar, AvatarStatus, GalleryImage, Gender, Generation, GenerationRequest, GenerationState,
    JobFailure, JobState, JobStep, MonthSpending, Photo, RequestState, TrainingJob, TrainingType,
    Transfer,
};
pub use photos::{PhotoDetails, StoredChecks};
pub use watch_folders::{WatchedFile, WatchedFileState};

/// The database file inside a library folder.
pub const DATABASE_FILE: &str = "library.sqlite3";
/// The folder, inside a library folder, holding photo files named by their content hash.
pub const PHOTOS_DIR: &str = "photos";
/// The folder, inside a library folder, holding the UI's thumbnails, named like the photos.
pub const THUMBNAILS_DIR: &str = "thumbnails";
/// The folder, inside a library folder, holding trained LoRA files, one folder per avatar.
pub const MODELS_DIR: &str = "models";
/// The folder, inside a library folder, holding training-set zips while they are uploaded.
pub const WORK_DIR: &str = "work";

#[derive(Debug, thiserror::Error)]
pub enum LibraryError {
    #[error("the library folder {path} cannot be used: {source}")]
    Folder {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "this library was written by a newer version of Avatar Studio (schema {found}, this version knows up to {supported}); update the app to open it"
    )]
    TooNew { found: i64, supported: i64 },
    #[error("the library database failed: {0}")]
    Database(#[from] rusqlite::Error),
    #[error("the library holds a value this version does not understand: {0}")]
    Corrupt(String),
}

pub type Result<T, E = LibraryError> = std::result::Result<T, E>;

/// An open library. One connection guarded by a mutex: SQLite serialises writers anyway, and
/// WAL lets other processes (the CLI beside the app) read and write the same file.
pub struct Library {
    root: PathBuf,
    connection: Mutex<Connection>,
}

impl Library {
    /// Opens the library in `root`, creating the folder and the database when missing and
    /// migrating a database written by an older version.
    pub fn open(root: &Path) -> Result<Self> {
        let folder_error = |source| LibraryError::Folder {
            path: root.to_path_buf(),
            source,
        };
        for dir in [PHOTOS_DIR, THUMBNAILS_DIR, MODELS_DIR, WORK_DIR] {
            std::fs::create_dir_all(root.join(dir)).map_err(folder_error)?;
        }
        let mut connection = Connection::open(root.join(DATABASE_FILE))?;
        configure(&connection)?;
        migrations::apply(&mut connection)?;
        let library = Self {
            root: root.to_path_buf(),
            connection: Mutex::new(connection),
        };
        library.sweep_unreferenced_files()?;
        Ok(library)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn connection(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave SQLite half-written (transactions roll
        // back), so a poisoned lock is still safe to use.
        self.connection
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn configure(connection: &Connection) -> rusqlite::Result<()> {
    connection.busy_timeout(Duration::from_secs(5))?;
    connection.pragma_update(None, "journal_mode", "WAL")?;
    // FULL syncs the WAL at every commit: the ledger row that says a paid request is being sent
    // survives a power cut, not only a crash of the process.
    connection.pragma_update(None, "synchronous", "FULL")?;
    connection.pragma_update(None, "foreign_keys", "ON")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_commit_reaches_the_disk_before_it_returns() {
        let dir = tempfile::tempdir().expect("dir");
        let library = Library::open(dir.path()).expect("library");
        let connection = library.connection();
        let synchronous: i64 = connection
            .pragma_query_value(None, "synchronous", |row| row.get(0))
            .expect("pragma");
        let journal: String = connection
            .pragma_query_value(None, "journal_mode", |row| row.get(0))
            .expect("pragma");
        assert_eq!((synchronous, journal.as_str()), (2, "wal"), "FULL over WAL");
    }
}
