//! Creating, listing, renaming and deleting avatars.

use crate::views::AvatarView;
use crate::{Avatar, AvatarId, AvatarRef, Error, Gender, Result, Studio, TrainingType};

/// Longest avatar name, in characters.
pub const MAX_NAME_CHARS: usize = 100;

/// What a creator fills in to make an avatar.
#[derive(Debug, Clone)]
pub struct NewAvatar {
    pub name: String,
    pub gender: Gender,
    pub training_type: TrainingType,
}

impl Studio {
    pub fn create_avatar(&self, new: NewAvatar) -> Result<Avatar> {
        let avatar = Avatar::draft(
            valid_name(&new.name)?,
            new.gender,
            new.training_type,
            self.clock.now(),
        );
        self.library.insert_avatar(&avatar)?;
        Ok(avatar)
    }

    pub fn list_avatars(&self) -> Result<Vec<Avatar>> {
        Ok(self.library.avatars()?)
    }

    /// Each avatar's cover, by avatar id: the thumbnail of its first photo.
    pub fn cover_thumbnails(
        &self,
    ) -> Result<std::collections::HashMap<AvatarId, std::path::PathBuf>> {
        Ok(self
            .library
            .covers()?
            .into_iter()
            .map(|(avatar, hash)| (avatar, self.library.thumbnail_path(&hash)))
            .collect())
    }

    /// Finds an avatar by its id, or by what a creator typed: the full id or a prefix of it that
    /// names exactly one avatar.
    pub fn avatar<'a>(&self, reference: impl Into<AvatarRef<'a>>) -> Result<Avatar> {
        let reference = reference.into();
        let typed = match reference {
            AvatarRef::Id(id) => {
                return self.library.avatar(id)?.ok_or_else(|| no_avatar(reference));
            }
            AvatarRef::Typed(text) => text.trim(),
        };
        if let Some(id) = AvatarId::parse(typed) {
            return self.library.avatar(id)?.ok_or_else(|| no_avatar(reference));
        }
        let reference = typed;
        const MIN_PREFIX: usize = 4;
        if reference.len() < MIN_PREFIX {
            return Err(Error::InvalidInput(format!(
                "{reference:?} is not an avatar id; give the id or at least its first {MIN_PREFIX} characters"
            )));
        }
        let prefix = reference.to_ascii_lowercase();
        let mut matches = self
            .library
            .avatars()?
            .into_iter()
            .filter(|avatar| avatar.id.to_string().starts_with(&prefix));
        match (matches.next(), matches.next()) {
            (Some(avatar), None) => Ok(avatar),
            (None, _) => Err(no_avatar(AvatarRef::Typed(reference))),
            (Some(_), Some(_)) => Err(Error::InvalidInput(format!(
                "{reference:?} matches more than one avatar; give more of the id"
            ))),
        }
    }

    pub fn rename_avatar<'a>(
        &self,
        reference: impl Into<AvatarRef<'a>>,
        name: &str,
    ) -> Result<Avatar> {
        let reference = reference.into();
        let name = valid_name(name)?;
        let avatar = self.avatar(reference)?;
        if !self
            .library
            .rename_avatar(avatar.id, &name, self.clock.now())?
        {
            return Err(no_avatar(reference));
        }
        self.avatar(avatar.id)
    }

    /// Deletes an avatar and everything kept for it: its objects in S3 first, then its rows, model
    /// files, photo files and thumbnails, at once. An avatar whose training has not ended is
    /// refused: its job must stay in the ledger until fal confirms the end, or a paid run would
    /// be lost from view.
    pub async fn delete_avatar<'a>(
        &self,
        reference: impl Into<AvatarRef<'a>>,
    ) -> Result<DeletedAvatar> {
        let reference = reference.into();
        let avatar = self.avatar(reference)?;
        if let Some(job) = self.library.latest_job(avatar.id)?
            && !job.state.is_final()
        {
            return Err(Error::Conflict(format!(
                "{} is still training; cancel the training and wait until it has ended, then delete the avatar",
                avatar.name
            )));
        }
        // A pack's queued requests are paid work on fal: they are cancelled and ended first.
        if self
            .library
            .generations(avatar.id)?
            .iter()
            .any(|generation| !generation.state.is_final())
        {
            return Err(Error::Conflict(format!(
                "{} is still making a sample pack; stop the pack and wait until it has ended, then delete the avatar",
                avatar.name
            )));
        }
        let s3_objects = match self.s3_store()? {
            Some(store) => store
                .delete_prefix(&format!("avatars/{}/", avatar.id))
                .await
                .map_err(crate::dataset::s3_error)?,
            None => 0,
        };
        let photos = avatar.photo_count;
        let files = self
            .library
            .delete_avatar(avatar.id)?
            .ok_or_else(|| no_avatar(reference))?;
        self.rewatch_in_background();
        Ok(DeletedAvatar {
            avatar: AvatarView::from(&avatar),
            photos,
            files: files.files as u32,
            models: files.models as u32,
            s3_objects: s3_objects as u32,
        })
    }
}

/// What deleting an avatar removed.
#[derive(Debug, Clone, PartialEq, serde::Serialize, ts_rs::TS)]
pub struct DeletedAvatar {
    pub avatar: AvatarView,
    /// Photo rows.
    pub photos: u32,
    /// Photo files and thumbnails no other avatar held.
    pub files: u32,
    /// Trained model files.
    pub models: u32,
    /// Objects in the S3 bucket (training sets and photo copies).
    pub s3_objects: u32,
}

fn no_avatar(reference: AvatarRef<'_>) -> Error {
    Error::NotFound(format!("there is no avatar {:?}", reference.to_string()))
}

/// Trims a name and checks it is one a creator could mean.
fn valid_name(name: &str) -> Result<String> {
    let name = name.trim();
    if name.is_empty() {
        return Err(Error::InvalidInput("give the avatar a name".into()));
    }
    let chars = name.chars().count();
    if chars > MAX_NAME_CHARS {
        return Err(Error::InvalidInput(format!(
            "a name can have at most {MAX_NAME_CHARS} characters; this one has {chars}"
        )));
    }
    if name.chars().any(char::is_control) {
        return Err(Error::InvalidInput(
            "a name cannot contain line breaks or other control characters".into(),
        ));
    }
    Ok(name.to_owned())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use chrono::{DateTime, Duration};

    use super::*;
    use crate::{ErrorCode, ManualClock, TestStudio};

    fn studio(dir: &std::path::Path) -> (Studio, Arc<ManualClock>) {
        let clock = Arc::new(ManualClock::new(
            DateTime::from_timestamp(1_750_000_000, 0).expect("valid time"),
        ));
        let studio = TestStudio::new(dir)
            .clock(clock.clone())
            .open()
            .expect("open");
        (studio, clock)
    }

    fn new(name: &str) -> NewAvatar {
        NewAvatar {
            name: name.into(),
            gender: Gender::Other,
            training_type: TrainingType::Style,
        }
    }

    #[test]
    fn a_created_avatar_is_a_draft_listed_in_creation_order() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (studio, clock) = studio(dir.path());
        let first = studio.create_avatar(new("  Nika  ")).expect("create");
        clock.advance(Duration::seconds(1));
        let second = studio.create_avatar(new("Sea")).expect("create");
        assert_eq!(first.name, "Nika", "names are trimmed");
        assert_eq!(first.status, crate::AvatarStatus::Draft);
        assert_eq!(first.fal_mode, TrainingType::Style);
        let names: Vec<_> = studio
            .list_avatars()
            .expect("list")
            .into_iter()
            .map(|a| a.name)
            .collect();
        assert_eq!(names, ["Nika", "Sea"]);
        assert_eq!(
            studio
                .avatar(&second.id.to_string()[..8])
                .expect("by prefix"),
            second
        );
    }

    #[test]
    fn bad_names_are_refused_with_a_typed_error() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (studio, _) = studio(dir.path());
        for name in ["", "   ", &"я".repeat(MAX_NAME_CHARS + 1), "two\nlines"] {
            let error = studio.create_avatar(new(name)).expect_err("refused");
            assert_eq!(error.code(), ErrorCode::InvalidInput, "{name:?}: {error}");
        }
        assert!(
            studio
                .create_avatar(new(&"я".repeat(MAX_NAME_CHARS)))
                .is_ok()
        );
        assert_eq!(
            studio.list_avatars().expect("list").len(),
            1,
            "nothing refused was stored"
        );
    }

    #[test]
    fn rename_and_delete_find_avatars_or_say_not_found() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (studio, clock) = studio(dir.path());
        let avatar = studio.create_avatar(new("Old")).expect("create");
        clock.advance(Duration::minutes(1));
        let renamed = studio.rename_avatar(avatar.id, "New").expect("rename");
        assert_eq!(renamed.name, "New");
        assert!(renamed.updated_at > avatar.updated_at);
        assert_eq!(
            studio
                .rename_avatar(avatar.id, "")
                .expect_err("empty")
                .code(),
            ErrorCode::InvalidInput
        );
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        runtime
            .block_on(studio.delete_avatar(avatar.id))
            .expect("delete");
        let missing = runtime
            .block_on(studio.delete_avatar(avatar.id))
            .expect_err("gone");
        assert_eq!(missing.code(), ErrorCode::NotFound);
        assert_eq!(
            studio.avatar("ab").expect_err("short").code(),
            ErrorCode::InvalidInput
        );
    }
}
