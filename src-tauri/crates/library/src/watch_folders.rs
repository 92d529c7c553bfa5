//! The folder each avatar watches for new photos, when it has one, and the files it has already
//! brought to a verdict.

use std::path::PathBuf;

use rusqlite::{OptionalExtension, params};

use crate::AvatarId;
use crate::avatars::parse_id;
use crate::{Library, Result};

impl Library {
    /// Every avatar's watched folder.
    pub fn watch_folders(&self) -> Result<Vec<(AvatarId, PathBuf)>> {
        let connection = self.connection();
        let mut statement =
            connection.prepare_cached("SELECT avatar_id, folder FROM avatar_watch_folders")?;
        let rows = statement.query_map([], |row| {
            Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
        })?;
        rows.map(|row| {
            let (avatar, folder) = row?;
            Ok((parse_id("avatar id", &avatar)?, PathBuf::from(folder)))
        })
        .collect()
    }

    /// Sets (or, with `None`, clears) the folder an avatar watches, and forgets the files the
    /// folder it watched before brought.
    pub fn set_watch_folder(&self, avatar_id: AvatarId, folder: Option<&str>) -> Result<()> {
        let mut connection = self.connection();
        let transaction = connection.transaction()?;
        let avatar = avatar_id.to_string();
        match folder {
            Some(folder) => transaction.execute(
                "INSERT INTO avatar_watch_folders (avatar_id, folder) VALUES (?1, ?2)
                 ON CONFLICT (avatar_id) DO UPDATE SET folder = excluded.folder",
                params![avatar, folder],
            )?,
            None => transaction.execute(
                "DELETE FROM avatar_watch_folders WHERE avatar_id = ?1",
                [&avatar],
            )?,
        };
        transaction.execute("DELETE FROM watched_files WHERE avatar_id = ?1", [&avatar])?;
        transaction.commit()?;
        Ok(())
    }

    /// What the avatar's watched folder has done with this file, unchanged: nothing yet, brought
    /// it to a verdict, or begun its check (and, when seen at a start, never ended it).
    pub fn watched_file_state(
        &self,
        avatar_id: AvatarId,
        file: &WatchedFile,
    ) -> Result<Option<WatchedFileState>> {
        let connection = self.connection();
        let mut statement = connection.prepare_cached(
            "SELECT checking FROM watched_files
             WHERE avatar_id = ?1 AND path = ?2 AND size = ?3 AND modified_ns = ?4",
        )?;
        Ok(statement
            .query_row(
                params![
                    avatar_id.to_string(),
                    file.path,
                    file.size,
                    file.modified_ns
                ],
                |row| row.get::<_, bool>(0),
            )
            .optional()?
            .map(|checking| {
                if checking {
                    WatchedFileState::Checking
                } else {
                    WatchedFileState::Judged
                }
            }))
    }

    /// Records, before their check, that these files are being checked.
    pub fn begin_watched_files<'a>(
        &self,
        avatar_id: AvatarId,
        files: impl IntoIterator<Item = &'a WatchedFile>,
    ) -> Result<()> {
        let mut connection = self.connection();
        let transaction = connection.transaction()?;
        for file in files {
            upsert_watched_file(&transaction, avatar_id, file, false, true)?;
        }
        transaction.commit()?;
        Ok(())
    }

    /// Records that the avatar's watched folder brought this file to a verdict; one refused for
    /// a full set is `waiting_for_room`, forgotten when a photo leaves the avatar.
    pub fn remember_watched_file(
        &self,
        avatar_id: AvatarId,
        file: &WatchedFile,
        waiting_for_room: bool,
    ) -> Result<()> {
        upsert_watched_file(&self.connection(), avatar_id, file, waiting_for_room, false)
    }

    /// Forgets a file begun but not brought to a verdict (it could not be read now; it may be
    /// later).
    pub fn forget_watched_file(&self, avatar_id: AvatarId, file: &WatchedFile) -> Result<()> {
        self.connection().execute(
            "DELETE FROM watched_files WHERE avatar_id = ?1 AND path = ?2",
            params![avatar_id.to_string(), file.path],
        )?;
        Ok(())
    }
}

fn upsert_watched_file(
    connection: &rusqlite::Connection,
    avatar_id: AvatarId,
    file: &WatchedFile,
    waiting_for_room: bool,
    checking: bool,
) -> Result<()> {
    connection.execute(
        "INSERT INTO watched_files (avatar_id, path, size, modified_ns, waiting_for_room, checking)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (avatar_id, path) DO UPDATE SET size = excluded.size,
             modified_ns = excluded.modified_ns, waiting_for_room = excluded.waiting_for_room,
             checking = excluded.checking",
        params![
            avatar_id.to_string(),
            file.path,
            file.size,
            file.modified_ns,
            waiting_for_room,
            checking
        ],
    )?;
    Ok(())
}

/// What a watched folder has done with one of its files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WatchedFileState {
    /// Brought to a verdict: passed over from now on.
    Judged,
    /// Its check began and has not ended: at a later start, the check stopped the app.
    Checking,
}

/// A file in a watched folder as it was when it was brought to a verdict.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct WatchedFile {
    pub path: String,
    pub size: u64,
    /// Its modification time in nanoseconds since 1970.
    pub modified_ns: i64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Avatar, Gender, TrainingType};

    #[test]
    fn a_watched_folder_and_its_files_are_kept_replaced_cleared_and_go_with_the_avatar() {
        let dir = tempfile::tempdir().unwrap();
        let library = Library::open(dir.path()).unwrap();
        let now = chrono::Utc::now();
        let anna = Avatar::draft("Anna".into(), Gender::Female, TrainingType::Portrait, now);
        let ben = Avatar::draft("Ben".into(), Gender::Male, TrainingType::Style, now);
        library.insert_avatar(&anna).unwrap();
        library.insert_avatar(&ben).unwrap();

        library
            .set_watch_folder(anna.id, Some("/photos/anna"))
            .unwrap();
        library
            .set_watch_folder(anna.id, Some("/photos/anna 2"))
            .unwrap();
        library
            .set_watch_folder(ben.id, Some("/photos/ben"))
            .unwrap();
        let reopened = Library::open(dir.path()).unwrap();
        let mut folders = reopened.watch_folders().unwrap();
        folders.sort();
        let mut expected = vec![
            (anna.id, PathBuf::from("/photos/anna 2")),
            (ben.id, PathBuf::from("/photos/ben")),
        ];
        expected.sort();
        assert_eq!(folders, expected);

        let seen = WatchedFile {
            path: "/photos/ben/a.jpg".into(),
            size: 10,
            modified_ns: 1,
        };
        reopened
            .remember_watched_file(ben.id, &seen, false)
            .unwrap();
        let state = |avatar: AvatarId, file: &WatchedFile| {
            reopened.watched_file_state(avatar, file).unwrap()
        };
        assert_eq!(state(ben.id, &seen), Some(WatchedFileState::Judged));
        assert_eq!(state(anna.id, &seen), None);
        let changed = WatchedFile {
            modified_ns: 2,
            ..seen.clone()
        };
        assert_eq!(state(ben.id, &changed), None);
        reopened.begin_watched_files(ben.id, [&changed]).unwrap();
        assert_eq!(state(ben.id, &changed), Some(WatchedFileState::Checking));
        reopened.forget_watched_file(ben.id, &changed).unwrap();
        assert_eq!(state(ben.id, &changed), None, "not read now: tried again");
        reopened.begin_watched_files(ben.id, [&changed]).unwrap();
        reopened
            .remember_watched_file(ben.id, &changed, false)
            .unwrap();
        assert_eq!(state(ben.id, &changed), Some(WatchedFileState::Judged));

        reopened.set_watch_folder(ben.id, None).unwrap();
        assert_eq!(
            state(ben.id, &changed),
            None,
            "another folder, or none, starts afresh"
        );
        assert_eq!(
            reopened.watch_folders().unwrap(),
            [(anna.id, PathBuf::from("/photos/anna 2"))]
        );
        reopened.delete_avatar(anna.id).unwrap();
        assert!(reopened.watch_folders().unwrap().is_empty());
    }
}
