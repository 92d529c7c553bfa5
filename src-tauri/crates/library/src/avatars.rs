//! Avatar rows.

use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, Row, params};
use uuid::Uuid;

use crate::AvatarId;
use crate::blobs::DeletedFiles;
use crate::{Avatar, AvatarStatus, Gender, Library, LibraryError, Result, TrainingType};

const SELECT_AVATAR: &str =
    "SELECT a.id, a.name, a.gender, a.training_type, a.status, a.training_progress,
        a.finetune_id, a.fal_mode, a.created_at, a.updated_at,
        (SELECT COUNT(*) FROM avatar_photos p WHERE p.avatar_id = a.id)
    FROM avatars a";

impl Library {
    pub fn insert_avatar(&self, avatar: &Avatar) -> Result<()> {
        self.connection().execute(
            "INSERT INTO avatars (id, name, gender, training_type, status, training_progress,
                finetune_id, fal_mode, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            params![
                avatar.id.to_string(),
                avatar.name,
                avatar.gender.as_str(),
                avatar.training_type.as_str(),
                avatar.status.as_str(),
                avatar.training_progress,
                avatar.finetune_id,
                avatar.fal_mode.as_str(),
                avatar.created_at.to_rfc3339(),
                avatar.updated_at.to_rfc3339(),
            ],
        )?;
        Ok(())
    }

    /// All avatars, oldest first (the order a creator made them in).
    pub fn avatars(&self) -> Result<Vec<Avatar>> {
        let connection = self.connection();
        let mut statement =
            connection.prepare_cached(&format!("{SELECT_AVATAR} ORDER BY a.created_at, a.id"))?;
        let rows = statement.query_map([], read_avatar)?;
        rows.map(|row| row?).collect()
    }

    pub fn avatar(&self, id: AvatarId) -> Result<Option<Avatar>> {
        let connection = self.connection();
        let mut statement =
            connection.prepare_cached(&format!("{SELECT_AVATAR} WHERE a.id = ?1"))?;
        statement
            .query_row([id.to_string()], read_avatar)
            .optional()?
            .transpose()
    }

    /// Renames an avatar; `false` when there is no such avatar.
    pub fn rename_avatar(&self, id: AvatarId, name: &str, now: DateTime<Utc>) -> Result<bool> {
        let changed = self.connection().execute(
            "UPDATE avatars SET name = ?2, updated_at = ?3 WHERE id = ?1",
            params![id.to_string(), name, now.to_rfc3339()],
        )?;
        Ok(changed == 1)
    }

    /// Deletes an avatar with its photo rows, jobs and gallery, then at once its model files and
    /// the photo files, thumbnails and gallery images no other avatar holds; `None` when there is
    /// no such avatar.
    pub fn delete_avatar(&self, id: AvatarId) -> Result<Option<DeletedFiles>> {
        let mut connection = self.connection();
        let transaction = connection.transaction()?;
        // The avatar's paid requests stay in the ledger: the budget counts money spent, whatever
        // was deleted since.
        let paid = crate::jobs::PAID_REQUESTS
            .replace("{avatar}", "AND avatar_id = ?1")
            .replace("{avatar_of_pack}", "AND packs.avatar_id = ?1");
        transaction.execute(
            &format!(
                "INSERT INTO deleted_spending (month, confirmed, billed, deleted_at)
                 SELECT month, confirmed, billed, ?2 FROM ({paid})"
            ),
            rusqlite::params![id.to_string(), crate::jobs::timestamp(chrono::Utc::now())],
        )?;
        let changed = transaction.execute("DELETE FROM avatars WHERE id = ?1", [id.to_string()])?;
        transaction.commit()?;
        drop(connection);
        if changed == 0 {
            return Ok(None);
        }
        let models_dir = self.root.join(crate::MODELS_DIR).join(id.to_string());
        let models = std::fs::read_dir(&models_dir).map_or(0, |entries| entries.count());
        match std::fs::remove_dir_all(&models_dir) {
            Err(source) if source.kind() != std::io::ErrorKind::NotFound => {
                return Err(LibraryError::Folder {
                    path: models_dir,
                    source,
                });
            }
            _ => {}
        }
        let files = self.sweep_unreferenced_files_now()?;
        Ok(Some(DeletedFiles { models, files }))
    }
}

/// Reads one avatar row. The outer result is SQLite's, the inner one says whether the stored
/// values make sense to this version.
fn read_avatar(row: &Row<'_>) -> rusqlite::Result<Result<Avatar>> {
    let id: String = row.get(0)?;
    let gender: String = row.get(2)?;
    let training_type: String = row.get(3)?;
    let status: String = row.get(4)?;
    let fal_mode: String = row.get(7)?;
    let created_at: String = row.get(8)?;
    let updated_at: String = row.get(9)?;
    let name: String = row.get(1)?;
    let progress: i64 = row.get(5)?;
    let finetune_id: Option<String> = row.get(6)?;
    let photo_count: i64 = row.get(10)?;
    Ok((|| {
        Ok(Avatar {
            id: parse_id("avatar id", &id)?,
            name,
            gender: Gender::parse(&gender).ok_or_else(|| corrupt("gender", &gender))?,
            training_type: TrainingType::parse(&training_type)
                .ok_or_else(|| corrupt("training type", &training_type))?,
            status: AvatarStatus::parse(&status)
                .ok_or_else(|| corrupt("avatar status", &status))?,
            training_progress: progress.clamp(0, 100) as u8,
            finetune_id,
            fal_mode: TrainingType::parse(&fal_mode)
                .ok_or_else(|| corrupt("fal mode", &fal_mode))?,
            photo_count: photo_count.max(0) as u32,
            created_at: parse_time(&created_at)?,
            updated_at: parse_time(&updated_at)?,
        })
    })())
}

pub(crate) fn parse_id<Id: From<Uuid>>(what: &str, text: &str) -> Result<Id> {
    Uuid::parse_str(text)
        .map(Id::from)
        .map_err(|_| corrupt(what, text))
}

pub(crate) fn parse_time(text: &str) -> Result<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .map(|time| time.with_timezone(&Utc))
        .map_err(|_| corrupt("timestamp", text))
}

fn corrupt(what: &str, value: &str) -> LibraryError {
    LibraryError::Corrupt(format!("{what} {value:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn avatar(name: &str, created_at: DateTime<Utc>) -> Avatar {
        Avatar::draft(
            name.to_owned(),
            Gender::Female,
            TrainingType::Portrait,
            created_at,
        )
    }

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_750_000_000 + seconds, 0).expect("valid timestamp")
    }

    #[test]
    fn avatars_round_trip_through_a_reopened_library() {
        let dir = tempfile::tempdir().expect("temp dir");
        let first = avatar("Anna", at(0));
        let second = avatar("Boris", at(10));
        {
            let library = Library::open(dir.path()).expect("open");
            library.insert_avatar(&second).expect("insert");
            library.insert_avatar(&first).expect("insert");
        }
        let library = Library::open(dir.path()).expect("reopen");
        assert_eq!(
            library.avatars().expect("list"),
            vec![first.clone(), second]
        );
        assert_eq!(library.avatar(first.id).expect("get"), Some(first));
        assert_eq!(library.avatar(AvatarId::new()).expect("get missing"), None);
    }

    #[test]
    fn rename_and_delete_report_whether_the_avatar_existed() {
        let dir = tempfile::tempdir().expect("temp dir");
        let library = Library::open(dir.path()).expect("open");
        let anna = avatar("Anna", at(0));
        library.insert_avatar(&anna).expect("insert");

        assert!(
            library
                .rename_avatar(anna.id, "Anya", at(5))
                .expect("rename")
        );
        let renamed = library.avatar(anna.id).expect("get").expect("present");
        assert_eq!((renamed.name.as_str(), renamed.updated_at), ("Anya", at(5)));
        assert!(
            !library
                .rename_avatar(AvatarId::new(), "x", at(5))
                .expect("rename missing")
        );

        assert!(library.delete_avatar(anna.id).expect("delete").is_some());
        assert!(
            library
                .delete_avatar(anna.id)
                .expect("delete again")
                .is_none()
        );
        assert!(library.avatars().expect("list").is_empty());
    }

    #[test]
    fn an_unknown_stored_value_is_reported_not_guessed() {
        let dir = tempfile::tempdir().expect("temp dir");
        let library = Library::open(dir.path()).expect("open");
        let anna = avatar("Anna", at(0));
        library.insert_avatar(&anna).expect("insert");
        library
            .connection()
            .execute("UPDATE avatars SET status = 'hibernating'", [])
            .expect("tamper");
        let error = library.avatars().expect_err("unknown status");
        assert!(error.to_string().contains("hibernating"), "{error}");
    }
}
