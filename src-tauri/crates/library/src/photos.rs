//! Photo rows and their files.

use rusqlite::{Row, params};

use crate::avatars::{parse_id, parse_time};
use crate::blobs::write_atomically;
use crate::{AvatarId, PhotoId};
use crate::{Library, LibraryError, Photo, Result};

/// What a stored photo's checks found, as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredChecks {
    pub photo_id: PhotoId,
    pub faces_json: String,
    pub quality_json: String,
    /// Upright, pixels.
    pub height: u32,
}

/// What the checks measured, kept beside the row as JSON for the UI and for cropping.
pub struct PhotoDetails<'a> {
    pub faces_json: &'a str,
    pub quality_json: &'a str,
    /// The face identities of a portrait, JSON; none for other photos.
    pub identities_json: Option<&'a str>,
}

const SELECT_PHOTO: &str =
    "SELECT id, avatar_id, minio_key, file_hash, file_size, validation_status,
        has_face, face_count, quality_score, width, height, original_name, format, difference_hash,
        warnings, created_at
    FROM avatar_photos";

impl Library {
    /// Stores a photo: its bytes and thumbnail first, then the row, so a crash at any moment
    /// leaves either nothing or a complete photo (stray files are swept at the next open).
    pub fn store_photo(
        &self,
        photo: &Photo,
        details: PhotoDetails<'_>,
        bytes: &[u8],
        thumbnail: Option<&[u8]>,
    ) -> Result<()> {
        self.storing(|| self.store_photo_files_and_row(photo, &details, bytes, thumbnail))
    }

    fn store_photo_files_and_row(
        &self,
        photo: &Photo,
        details: &PhotoDetails<'_>,
        bytes: &[u8],
        thumbnail: Option<&[u8]>,
    ) -> Result<()> {
        let io_error =
            |path: std::path::PathBuf| move |source| LibraryError::Folder { path, source };
        let path = self.photo_path(&photo.file_hash, &photo.format);
        if !path.exists() {
            write_atomically(&path, bytes).map_err(io_error(path.clone()))?;
        }
        if let Some(thumbnail) = thumbnail {
            let path = self.thumbnail_path(&photo.file_hash);
            write_atomically(&path, thumbnail).map_err(io_error(path.clone()))?;
        }
        let warnings = serde_json::to_string(&photo.warnings)
            .map_err(|error| LibraryError::Corrupt(format!("warnings: {error}")))?;
        self.connection().execute(
            "INSERT INTO avatar_photos (id, avatar_id, minio_key, file_hash, file_size, validation_status,
                has_face, face_count, quality_score, width, height, original_name, format, difference_hash,
                faces, quality, warnings, created_at, identities)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19)",
            params![
                photo.id.to_string(),
                photo.avatar_id.to_string(),
                photo.minio_key,
                photo.file_hash,
                photo.file_size as i64,
                photo.validation_status,
                photo.has_face,
                photo.face_count,
                photo.quality_score,
                photo.width,
                photo.height,
                photo.original_name,
                photo.format,
                photo.difference_hash.map(|hash| hash as i64),
                details.faces_json,
                details.quality_json,
                warnings,
                photo.created_at.to_rfc3339(),
                details.identities_json,
            ],
        )?;
        Ok(())
    }

    /// Each of an avatar's photos with what its checks found (faces and quality as JSON) and its
    /// upright height, in the order added.
    pub fn photo_checks(&self, avatar_id: AvatarId) -> Result<Vec<StoredChecks>> {
        let connection = self.connection();
        let mut statement = connection.prepare_cached(
            "SELECT id, faces, quality, height FROM avatar_photos WHERE avatar_id = ?1
             ORDER BY created_at, rowid",
        )?;
        let rows = statement.query_map([avatar_id.to_string()], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, String>(2)?,
                row.get::<_, u32>(3)?,
            ))
        })?;
        rows.map(|row| {
            let (id, faces_json, quality_json, height) = row?;
            Ok(StoredChecks {
                photo_id: parse_id("photo id", &id)?,
                faces_json,
                quality_json,
                height,
            })
        })
        .collect()
    }

    /// Records the face identities (JSON) of a photo stored before they were kept.
    pub fn set_photo_identities(&self, photo_id: PhotoId, identities_json: &str) -> Result<()> {
        self.connection().execute(
            "UPDATE avatar_photos SET identities = ?2 WHERE id = ?1",
            params![photo_id.to_string(), identities_json],
        )?;
        Ok(())
    }

    /// Each of an avatar's photos with its stored face identities (JSON), in the order added.
    pub fn photo_identities(&self, avatar_id: AvatarId) -> Result<Vec<(PhotoId, Option<String>)>> {
        let connection = self.connection();
        let mut statement = connection.prepare_cached(
            "SELECT id, identities FROM avatar_photos WHERE avatar_id = ?1 ORDER BY created_at, rowid",
        )?;
        let rows = statement.query_map([avatar_id.to_string()], |row| {
            Ok((row.get::<_, String>(0)?, row.get::<_, Option<String>>(1)?))
        })?;
        rows.map(|row| {
            let (id, identities) = row?;
            Ok((crate::avatars::parse_id("photo id", &id)?, identities))
        })
        .collect()
    }

    /// An avatar's photos, in the order they were added.
    pub fn photos(&self, avatar_id: AvatarId) -> Result<Vec<Photo>> {
        let connection = self.connection();
        let mut statement = connection.prepare_cached(&format!(
            "{SELECT_PHOTO} WHERE avatar_id = ?1 ORDER BY created_at, rowid"
        ))?;
        let rows = statement.query_map([avatar_id.to_string()], read_photo)?;
        rows.map(|row| row?).collect()
    }

    /// Each avatar's first photo (its cover), by avatar: the hash naming its thumbnail.
    pub fn covers(&self) -> Result<std::collections::HashMap<AvatarId, String>> {
        let connection = self.connection();
        // SQLite takes the bare column from the row holding the MIN.
        let mut statement = connection.prepare_cached(
            "SELECT avatar_id, file_hash, MIN(created_at) FROM avatar_photos GROUP BY avatar_id",
        )?;
        let rows = statement.query_map([], |row| {
            Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
        })?;
        rows.map(|row| {
            let (avatar, hash) = row?;
            Ok((parse_id("avatar id", &avatar)?, hash))
        })
        .collect()
    }

    /// Records where a photo's copy was uploaded (the guide's `minio_key`).
    pub fn set_photo_key(&self, photo_id: PhotoId, key: &str) -> Result<()> {
        self.connection().execute(
            "UPDATE avatar_photos SET minio_key = ?2 WHERE id = ?1",
            rusqlite::params![photo_id.to_string(), key],
        )?;
        Ok(())
    }

    /// Forgets the S3 keys of the avatar's photos, once their objects were deleted.
    pub fn clear_photo_keys(&self, avatar_id: AvatarId) -> Result<()> {
        self.connection().execute(
            "UPDATE avatar_photos SET minio_key = NULL WHERE avatar_id = ?1",
            [avatar_id.to_string()],
        )?;
        Ok(())
    }

    /// Removes a photo's row, then its files when no other avatar holds the same bytes. Files
    /// the avatar's watched folder brought while the set was full are then tried again.
    pub fn remove_photo(&self, avatar_id: AvatarId, photo_id: PhotoId) -> Result<bool> {
        let removed = {
            let mut connection = self.connection();
            let transaction = connection.transaction()?;
            let removed = transaction.execute(
                "DELETE FROM avatar_photos WHERE id = ?1 AND avatar_id = ?2",
                params![photo_id.to_string(), avatar_id.to_string()],
            )?;
            transaction.execute(
                "DELETE FROM watched_files WHERE avatar_id = ?1 AND waiting_for_room = 1",
                [avatar_id.to_string()],
            )?;
            transaction.commit()?;
            removed
        };
        if removed == 1 {
            self.sweep_unreferenced_files_now()?;
        }
        Ok(removed == 1)
    }
}

fn read_photo(row: &Row<'_>) -> rusqlite::Result<Result<Photo>> {
    let id: String = row.get(0)?;
    let avatar_id: String = row.get(1)?;
    let created_at: String = row.get(15)?;
    let parsed = (|| {
        Ok((
            parse_id("photo id", &id)?,
            parse_id("avatar id", &avatar_id)?,
            parse_time(&created_at)?,
        ))
    })();
    let (id, avatar_id, created_at) = match parsed {
        Ok(values) => values,
        Err(error) => return Ok(Err(error)),
    };
    let warnings: String = row.get(14)?;
    let difference_hash: Option<i64> = row.get(13)?;
    let file_size: i64 = row.get(4)?;
    Ok(Ok(Photo {
        id,
        avatar_id,
        minio_key: row.get(2)?,
        file_hash: row.get(3)?,
        file_size: file_size.max(0) as u64,
        validation_status: row.get(5)?,
        has_face: row.get(6)?,
        face_count: row.get(7)?,
        quality_score: row.get::<_, Option<f64>>(8)?.map(|score| score as f32),
        width: row.get(9)?,
        height: row.get(10)?,
        original_name: row.get(11)?,
        format: row.get(12)?,
        difference_hash: difference_hash.map(|hash| hash as u64),
        warnings: serde_json::from_str(&warnings).unwrap_or_default(),
        created_at,
    }))
}
