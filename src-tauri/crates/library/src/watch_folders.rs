//! The folder each avatar watches for new photos, when it has one, and the files it has already
//! brought to a verdict.

use std::path::PathBuf;

use rusqlite::params;

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

    /// Whether the avatar's watched folder has already brought this file, unchanged, to a verdict.
    pub fn has_watched_file(&self, avatar_id: AvatarId, file: &WatchedFile) -> Result<bool> {
        let connection = self.connection();
        let mut statement = connection.prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM watched_files
             WHERE avatar_id = ?1 AND path = ?2 AND size = ?3 AND modified_ns = ?4)",
        )?;
        Ok(statement.query_row(
            params![
                avatar_id.to_string(),
                file.path,
                file.size,
                file.modified_ns
            ],
            |row| row.get(0),
        )?)
    }

    /// Records that the avatar's watched folder brought this file to a verdict; one refused for
    /// a full set is `waiting_for_room`, forgotten when a photo leaves the avatar.
    pub fn remember_watched_file(
        &self,
        avatar_id: AvatarId,
        file: &WatchedFile,
        waiting_for_room: bool,
    ) -> Result<()> {
        self.connection().execute(
            "INSERT INTO watched_files (avatar_id, path, size, modified_ns, waiting_for_room)
             VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (avatar_id, path) DO UPDATE SET size = excluded.size,
                 modified_ns = excluded.modified_ns, waiting_for_room = excluded.waiting_for_room",
            params![
                avatar_id.to_string(),
                file.path,
                file.size,
                file.modified_ns,
                waiting_for_room
            ],
        )?;
        Ok(())
    }
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
        assert!(reopened.has_watched_file(ben.id, &seen).unwrap());
        assert!(!reopened.has_watched_file(anna.id, &seen).unwrap());
        let changed = WatchedFile {
            modified_ns: 2,
            ..seen.clone()
        };
        assert!(!reopened.has_watched_file(ben.id, &changed).unwrap());
        reopened
            .remember_watched_file(ben.id, &changed, false)
            .unwrap();
        assert!(reopened.has_watched_file(ben.id, &changed).unwrap());

        reopened.set_watch_folder(ben.id, None).unwrap();
        assert!(
            !reopened.has_watched_file(ben.id, &changed).unwrap(),
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
