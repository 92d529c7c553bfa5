//! The folder each avatar watches for new photos, when it has one.

use std::path::PathBuf;

use rusqlite::params;
use uuid::Uuid;

use crate::avatars::parse_id;
use crate::{Library, Result};

impl Library {
    /// Every avatar's watched folder.
    pub fn watch_folders(&self) -> Result<Vec<(Uuid, PathBuf)>> {
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

    /// Sets (or, with `None`, clears) the folder an avatar watches.
    pub fn set_watch_folder(&self, avatar_id: Uuid, folder: Option<&str>) -> Result<()> {
        let connection = self.connection();
        match folder {
            Some(folder) => connection.execute(
                "INSERT INTO avatar_watch_folders (avatar_id, folder) VALUES (?1, ?2)
                 ON CONFLICT (avatar_id) DO UPDATE SET folder = excluded.folder",
                params![avatar_id.to_string(), folder],
            )?,
            None => connection.execute(
                "DELETE FROM avatar_watch_folders WHERE avatar_id = ?1",
                [avatar_id.to_string()],
            )?,
        };
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Avatar, Gender, TrainingType};

    #[test]
    fn a_watched_folder_is_kept_replaced_cleared_and_goes_with_its_avatar() {
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

        reopened.set_watch_folder(ben.id, None).unwrap();
        assert_eq!(
            reopened.watch_folders().unwrap(),
            [(anna.id, PathBuf::from("/photos/anna 2"))]
        );
        reopened.delete_avatar(anna.id).unwrap();
        assert!(reopened.watch_folders().unwrap().is_empty());
    }
}
