//! Photos in: gather files from paths and folders, check them on every core, judge duplicates and
//! the avatar's limit against what it already holds, and store the accepted ones.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;

use base64::prelude::{BASE64_STANDARD, Engine as _};
use library::{Photo, PhotoDetails};
use photos::{Code, Report, Subject};
use serde::Serialize;
use ts_rs::TS;
use uuid::Uuid;

use crate::{AvatarId, AvatarRef, Error, PhotoId, PhotoRef, Result, Studio, TrainingType};

/// Difference hashes this close (in bits) are the same picture re-encoded, resized or retouched.
pub const NEAR_DUPLICATE_BITS: u32 = 8;

/// File names that are never photos, or not finished yet: partial downloads and copies, dotfiles.
const UNFINISHED_SUFFIXES: &[&str] =
    &[".part", ".partial", ".tmp", ".crdownload", ".download", "~"];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Accepted,
    Rejected,
}

/// The verdict on one file: one line of `avatar-cli photos add|check --json`.
#[derive(Debug, Clone, Serialize, TS)]
pub struct PhotoResult {
    pub path: String,
    pub verdict: Verdict,
    pub reasons: Vec<Code>,
    pub warnings: Vec<Code>,
    pub md5: String,
    pub width: u32,
    pub height: u32,
    pub faces: u32,
    pub quality_score: Option<f32>,
    /// The stored photo id (or, within one import, the path) this one duplicates.
    pub duplicate_of: Option<String>,
    /// The stored photo id (or, within one import, the path) of a worse copy of the same picture
    /// that this one replaces: the better of two near duplicates is kept.
    pub replaces: Option<String>,
    /// A rejected duplicate's thumbnail as a `data:` URL, so the app can show the pair side by
    /// side (the photo itself is not stored, so it has no thumbnail file).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub preview: Option<String>,
    /// The id under which an accepted photo was stored.
    pub photo_id: Option<PhotoId>,
    /// The stored photo itself, for a UI to show it at once.
    #[serde(skip)]
    #[ts(skip)]
    pub stored: Option<Photo>,
    /// Portraits judged as one set: how far this photo's face is from the set's person, and
    /// from how many other photos (absent while the set is too small to tell).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[ts(skip)]
    pub sameness: Option<photos::Sameness>,
    /// The identity of each face that could be the subject, for judging a set.
    #[serde(skip)]
    #[ts(skip)]
    pub identities: Vec<photos::FaceIdentity>,
    /// The file name of the worse copy this one replaces, for a front end's words.
    pub replaces_name: Option<String>,
    /// A decoder's or the file system's own words, when there are any.
    pub detail: Option<String>,
}

impl PhotoResult {
    /// A watched file passed over because checking it stopped the app before.
    pub(crate) fn check_stopped(path: &Path) -> Self {
        Self {
            path: path.display().to_string(),
            verdict: Verdict::Rejected,
            reasons: vec![Code::CheckStopped],
            warnings: Vec::new(),
            md5: String::new(),
            width: 0,
            height: 0,
            faces: 0,
            quality_score: None,
            duplicate_of: None,
            replaces: None,
            preview: None,
            photo_id: None,
            stored: None,
            sameness: None,
            identities: Vec::new(),
            replaces_name: None,
            detail: None,
        }
    }

    /// Whether the avatar already holds this file byte for byte: its only reason is a duplicate
    /// of a stored photo (an id), not of another file in the same import (a path).
    pub fn is_already_held(&self) -> bool {
        self.reasons == [Code::Duplicate]
            && self
                .duplicate_of
                .as_deref()
                .is_some_and(|id| Uuid::parse_str(id).is_ok())
    }
}

/// How far an avatar's photo set is from training.
#[derive(Debug, Clone, Serialize, TS)]
pub struct Readiness {
    pub photos: u32,
    pub min: u32,
    pub max: u32,
    pub ready: bool,
    /// Stored portraits that look like a different person than the rest of the set (judged
    /// again as the set grows, so an early photo of someone else is named once the set can tell).
    pub different_person: Vec<NotFitting>,
    /// Portraits: the poses, framings and light the set covers, and what it lacks.
    pub coverage: Option<photos::Coverage>,
}

/// An avatar's photos with how far they are from training and the folder it watches.
#[derive(Debug, Clone)]
pub struct PhotoSetState {
    pub photos: Vec<Photo>,
    pub readiness: Readiness,
    pub watch_folder: Option<crate::WatchedFolder>,
}

/// A stored photo that does not fit its portrait set.
#[derive(Debug, Clone, PartialEq, Serialize, TS)]
pub struct NotFitting {
    pub photo_id: PhotoId,
    pub name: String,
    /// From the median face of the other photos (0.55 and more: someone else).
    pub distance: f32,
    /// How many other photos that median was made from.
    pub others: u32,
}

/// A photo already accepted (stored or earlier in this import), for duplicate checks.
struct Known {
    md5: String,
    difference_hash: Option<u64>,
    /// The photo id when stored, the path otherwise: what results name it by.
    label: String,
    /// The file name, for messages.
    name: String,
    pixels: u64,
    quality_score: Option<f32>,
    stored_id: Option<PhotoId>,
}

impl Known {
    fn stored(photo: &Photo) -> Self {
        Self {
            md5: photo.file_hash.clone(),
            difference_hash: photo.difference_hash,
            label: photo.id.to_string(),
            name: photo.original_name.clone(),
            pixels: photo.width as u64 * photo.height as u64,
            quality_score: photo.quality_score,
            stored_id: Some(photo.id),
        }
    }

    fn checked(path: &Path, result: &PhotoResult, difference_hash: Option<u64>) -> Self {
        Self {
            md5: result.md5.clone(),
            difference_hash,
            label: result.path.clone(),
            name: file_name(path),
            pixels: result.width as u64 * result.height as u64,
            quality_score: result.quality_score,
            stored_id: None,
        }
    }

    /// Whether a photo of `pixels` and `quality_score` is a better copy of the same picture:
    /// more pixels, or as many and a clearly higher quality score.
    fn is_worse_than(&self, pixels: u64, quality_score: Option<f32>) -> bool {
        match pixels.cmp(&self.pixels) {
            std::cmp::Ordering::Greater => true,
            std::cmp::Ordering::Less => false,
            std::cmp::Ordering::Equal => {
                quality_score.unwrap_or(0.0) > self.quality_score.unwrap_or(0.0) + BETTER_QUALITY
            }
        }
    }
}

/// How soon a check that was told to stop returns.
pub(crate) const CANCEL_LATENCY: std::time::Duration = std::time::Duration::from_millis(200);

/// A near duplicate with as many pixels replaces the earlier copy only when its quality score is
/// higher by more than this: small differences are noise of the measurement.
const BETTER_QUALITY: f32 = 0.05;

impl Studio {
    /// Checks photos for an avatar of `training_type` without storing anything.
    pub fn check_photos(
        &self,
        paths: &[PathBuf],
        training_type: TrainingType,
        mut on_result: impl FnMut(PhotoResult),
    ) -> Result<()> {
        let mut known = Vec::new();
        let checker = Arc::new(self.checker()?.without_thumbnails());
        self.check_files(&checker, paths, training_type, &|| true, |path, report| {
            let difference_hash = report.difference_hash;
            let (result, replaced) = judge(path, report, &known, None);
            if result.verdict == Verdict::Accepted {
                let entry = Known::checked(path, &result, difference_hash);
                replace_or_push(&mut known, replaced, entry);
            }
            on_result(result);
            Ok(())
        })
    }

    /// Checks photos and stores the accepted ones in the avatar. Results arrive as each photo
    /// is done, so a UI can show them at once.
    pub fn add_photos<'a>(
        &self,
        avatar_reference: impl Into<AvatarRef<'a>>,
        paths: &[PathBuf],
        on_result: impl FnMut(PhotoResult),
    ) -> Result<Readiness> {
        let avatar = self.avatar(avatar_reference)?;
        self.add_photos_to(&avatar, paths, on_result)?;
        let photo_count = self.library.photos(avatar.id)?.len() as u32;
        self.readiness_with(&avatar, photo_count)
    }

    /// [`Studio::add_photos`] for an avatar already found.
    pub fn add_photos_to(
        &self,
        avatar: &library::Avatar,
        paths: &[PathBuf],
        on_result: impl FnMut(PhotoResult),
    ) -> Result<()> {
        self.add_photos_until(avatar, paths, &|| true, on_result)
    }

    /// [`Studio::add_photos_to`] that stops (`cancelled`) once `keep_going` says so; the photos
    /// stored by then stay.
    pub fn add_photos_until(
        &self,
        avatar: &library::Avatar,
        paths: &[PathBuf],
        keep_going: &dyn Fn() -> bool,
        mut on_result: impl FnMut(PhotoResult),
    ) -> Result<()> {
        let mut known: Vec<Known> = self
            .library
            .photos(avatar.id)?
            .iter()
            .map(Known::stored)
            .collect();
        let max = self.config().max_photos as usize;
        let checker = Arc::new(self.checker()?);
        self.backfill_identities(avatar)?;
        // The faces of the set so far, each photo judged against them before it is stored.
        let mut identities: Vec<Vec<photos::Descriptor>> = match avatar.training_type {
            TrainingType::Portrait => self
                .library
                .photo_identities(avatar.id)?
                .into_iter()
                .map(|(_, json)| descriptors(json.as_deref()))
                .collect(),
            TrainingType::Style => Vec::new(),
        };
        self.check_files(
            &checker,
            paths,
            avatar.training_type,
            keep_going,
            |path, report| {
                let room = known.len() < max;
                let (mut result, replaced) = judge(path, report.clone(), &known, Some(room));
                let faces: Vec<photos::Descriptor> = result
                    .identities
                    .iter()
                    .map(|identity| identity.descriptor)
                    .collect();
                if result.verdict == Verdict::Accepted
                    && avatar.training_type == TrainingType::Portrait
                    && !faces.is_empty()
                {
                    identities.push(faces.clone());
                    let judgement = photos::judge_set(&identities)
                        .pop()
                        .expect("one judgement per photo");
                    if judgement.different_person {
                        identities.pop();
                        refuse_as_someone_else(&mut result, &judgement);
                    }
                }
                if result.verdict == Verdict::Accepted {
                    // Read again rather than kept from the check: results wait here in path
                    // order, and holding every waiting file's bytes behind one slow file would
                    // grow with the folder.
                    let bytes = photos::read_photo_file(path, self.config().photo_max_size)
                        .ok()
                        .filter(|bytes| photos::md5_hex(bytes) == report.md5)
                        .ok_or_else(|| {
                            Error::InvalidInput(format!(
                                "{} changed or went away while it was checked; add it again",
                                result.path
                            ))
                        })?;
                    let photo = self.stored_photo(avatar.id, path, &report);
                    // A portrait's identities are kept even when it has none: `[]` says they were
                    // looked for, which a photo stored before identities were kept cannot say.
                    let identities_json = (avatar.training_type == TrainingType::Portrait)
                        .then(|| identities_json(&faces));
                    let details = PhotoDetails {
                        faces_json: &json(&report.faces),
                        quality_json: &json(&report.quality),
                        identities_json: identities_json.as_deref(),
                    };
                    self.library.store_photo(
                        &photo,
                        details,
                        &bytes,
                        report.thumbnail.as_deref(),
                    )?;
                    // The better copy is stored before the worse one goes: a crash in between
                    // leaves both, never neither.
                    if let Some(worse) = replaced.and_then(|index| known[index].stored_id) {
                        self.library.remove_photo(avatar.id, worse)?;
                    }
                    result.photo_id = Some(photo.id);
                    replace_or_push(&mut known, replaced, Known::stored(&photo));
                    result.stored = Some(photo);
                }
                on_result(result);
                Ok(())
            },
        )
    }

    /// An avatar already found: its photos, how far they are from training, and its watched
    /// folder, read together (one read of each).
    pub fn photo_set(&self, avatar: &library::Avatar) -> Result<PhotoSetState> {
        let photos = self.library.photos(avatar.id)?;
        let readiness = self.readiness_with(avatar, photos.len() as u32)?;
        let watch_folder = self.watch_folder_for(avatar.id)?;
        Ok(PhotoSetState {
            photos,
            readiness,
            watch_folder,
        })
    }

    pub fn list_photos<'a>(
        &self,
        avatar_reference: impl Into<AvatarRef<'a>>,
    ) -> Result<Vec<Photo>> {
        let avatar = self.avatar(avatar_reference)?;
        Ok(self.library.photos(avatar.id)?)
    }

    /// Removes a photo from an avatar: the app names it by its id, the CLI by what a creator
    /// typed (the full id or a prefix of it that names exactly one of the avatar's photos).
    pub fn remove_photo<'a, 'b>(
        &self,
        avatar_reference: impl Into<AvatarRef<'a>>,
        photo_reference: impl Into<PhotoRef<'b>>,
    ) -> Result<Photo> {
        let avatar = self.avatar(avatar_reference)?;
        let photo_reference = photo_reference.into();
        let photos = self.library.photos(avatar.id)?;
        let mut matches = photos.into_iter().filter(|photo| match photo_reference {
            PhotoRef::Id(id) => photo.id == id,
            PhotoRef::Typed(text) => {
                let wanted = text.trim().to_ascii_lowercase();
                wanted.len() >= 4 && photo.id.to_string().starts_with(&wanted)
            }
        });
        let photo = match (matches.next(), matches.next()) {
            (Some(photo), None) => photo,
            (Some(_), Some(_)) => {
                return Err(Error::InvalidInput(format!(
                    "{:?} matches more than one photo; give more of the id",
                    photo_reference.to_string()
                )));
            }
            (None, _) => {
                return Err(Error::NotFound(format!(
                    "avatar {:?} has no photo {:?}",
                    avatar.name,
                    photo_reference.to_string()
                )));
            }
        };
        self.library.remove_photo(avatar.id, photo.id)?;
        Ok(photo)
    }

    pub fn readiness<'a>(&self, avatar_reference: impl Into<AvatarRef<'a>>) -> Result<Readiness> {
        let avatar = self.avatar(avatar_reference)?;
        self.readiness_with(&avatar, avatar.photo_count)
    }

    /// The readiness of an avatar already found that holds `photo_count` photos.
    fn readiness_with(&self, avatar: &library::Avatar, photo_count: u32) -> Result<Readiness> {
        self.backfill_identities(avatar)?;
        let (different_person, coverage) = match avatar.training_type {
            TrainingType::Portrait => {
                let looks: Vec<photos::Look> = self
                    .looks_of(avatar.id)?
                    .into_iter()
                    .map(|(_, look)| look)
                    .collect();
                (
                    self.photos_of_someone_else(avatar.id)?,
                    Some(photos::Coverage::of(&looks)),
                )
            }
            TrainingType::Style => (Vec::new(), None),
        };
        Ok(Readiness {
            photos: photo_count,
            min: self.config().min_photos,
            max: self.config().max_photos,
            ready: photo_count >= self.config().min_photos,
            different_person,
            coverage,
        })
    }

    /// How each of an avatar's photos shows its person (pose, framing, light), from what its
    /// checks stored, in the order added.
    pub fn photo_looks<'a>(
        &self,
        avatar_reference: impl Into<AvatarRef<'a>>,
    ) -> Result<Vec<(PhotoId, photos::Look)>> {
        let avatar = self.avatar(avatar_reference)?;
        self.looks_of(avatar.id)
    }

    fn looks_of(&self, avatar_id: AvatarId) -> Result<Vec<(PhotoId, photos::Look)>> {
        Ok(self
            .library
            .photo_checks(avatar_id)?
            .into_iter()
            .map(|checks| {
                let faces: Vec<photos::Face> =
                    serde_json::from_str(&checks.faces_json).unwrap_or_default();
                let quality: Option<photos::Quality> =
                    serde_json::from_str(&checks.quality_json).unwrap_or_default();
                let look = photos::Look::of(&faces, checks.height, quality.as_ref());
                (checks.photo_id, look)
            })
            .collect())
    }

    /// The stored portraits that look like someone else than the rest, from their stored
    /// identities (no photo is decoded again).
    fn photos_of_someone_else(&self, avatar_id: AvatarId) -> Result<Vec<NotFitting>> {
        let stored = self.library.photo_identities(avatar_id)?;
        let faces: Vec<Vec<photos::Descriptor>> = stored
            .iter()
            .map(|(_, json)| descriptors(json.as_deref()))
            .collect();
        let judged = photos::judge_set(&faces);
        if !judged.iter().any(|judgement| judgement.different_person) {
            return Ok(Vec::new());
        }
        let names: std::collections::HashMap<PhotoId, String> = self
            .library
            .photos(avatar_id)?
            .into_iter()
            .map(|photo| (photo.id, photo.original_name))
            .collect();
        Ok(stored
            .iter()
            .zip(judged)
            .filter(|(_, judgement)| judgement.different_person)
            .map(|((photo_id, _), judgement)| NotFitting {
                photo_id: *photo_id,
                name: names.get(photo_id).cloned().unwrap_or_default(),
                distance: judgement.distance.unwrap_or_default(),
                others: judgement.others as u32,
            })
            .collect())
    }

    /// Checks every file under `paths` on all cores and hands each report, with the bytes it
    /// was made from, to `consume` on this thread as soon as it is ready. At most a few files
    /// are in memory at once. Once `keep_going` says stop, the walk and the checks stop and
    /// this returns `cancelled` within [`CANCEL_LATENCY`], even while a worker is stuck
    /// reading a file (a stalled network mount): that worker is left to end on its own.
    pub(crate) fn check_files(
        &self,
        checker: &Arc<photos::Checker>,
        paths: &[PathBuf],
        training_type: TrainingType,
        keep_going: &dyn Fn() -> bool,
        mut consume: impl FnMut(&Path, Report) -> Result<()>,
    ) -> Result<()> {
        let cancelled = || Error::Cancelled("the photo check was stopped".into());
        let Gathered {
            files, unreadable, ..
        } = gather(paths, keep_going);
        if !keep_going() {
            return Err(cancelled());
        }
        for (path, error) in unreadable {
            consume(&path, Report::unreadable(error))?;
        }
        let subject = match training_type {
            TrainingType::Portrait => Subject::Portrait,
            TrainingType::Style => Subject::Style,
        };
        let workers = std::thread::available_parallelism()
            .map(usize::from)
            .unwrap_or(2)
            .min(files.len().max(1));
        let files = Arc::new(files);
        let next = Arc::new(AtomicUsize::new(0));
        let (sender, receiver) = mpsc::sync_channel(workers);
        for _ in 0..workers {
            let (sender, next, files, checker) =
                (sender.clone(), next.clone(), files.clone(), checker.clone());
            // Not scoped: a worker stuck in a read must not hold up a stop.
            let spawned = std::thread::Builder::new()
                .name("photo check".into())
                .spawn(move || {
                    loop {
                        let index = next.fetch_add(1, Ordering::Relaxed);
                        let Some(path) = files.get(index) else { break };
                        let report = checker.check_file(path, subject);
                        if sender.send((index, report)).is_err() {
                            break; // the consumer stopped
                        }
                    }
                });
            if let Err(error) = spawned {
                return Err(Error::Internal(format!(
                    "cannot start a photo check: {error}"
                )));
            }
        }
        drop(sender);
        // Results are judged in path order, whatever order the threads finish in, so the first
        // of two duplicates is always the one kept.
        let mut waiting = BTreeMap::new();
        let mut due = 0;
        while due < files.len() {
            if !keep_going() {
                return Err(cancelled());
            }
            match receiver.recv_timeout(CANCEL_LATENCY) {
                Ok((index, report)) => {
                    waiting.insert(index, report);
                    while let Some(report) = waiting.remove(&due) {
                        // Stop may come from `consume` itself: nothing is handed on after it.
                        if !keep_going() {
                            return Err(cancelled());
                        }
                        consume(&files[due], report)?;
                        due += 1;
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    return Err(Error::Internal(format!(
                        "the check of {} ended unexpectedly",
                        files[due].display()
                    )));
                }
            }
        }
        Ok(())
    }

    fn stored_photo(&self, avatar_id: AvatarId, path: &Path, report: &Report) -> Photo {
        Photo {
            id: PhotoId::new(),
            avatar_id,
            minio_key: None,
            file_hash: report.md5.clone(),
            file_size: report.file_size,
            validation_status: "valid".into(),
            has_face: !report.faces.is_empty(),
            face_count: report.faces.len() as u32,
            quality_score: report.quality.map(|quality| quality.score),
            width: report.width,
            height: report.height,
            original_name: file_name(path),
            format: report
                .format
                .map(|format| json(&format).trim_matches('"').to_owned())
                .unwrap_or_default(),
            difference_hash: report.difference_hash,
            warnings: report
                .warnings
                .iter()
                .map(|code| json(code).trim_matches('"').to_owned())
                .collect(),
            created_at: self.clock.now(),
        }
    }
}

/// Adds the verdicts that depend on other photos: duplicates, and the avatar's limit
/// (`room` is `None` when there is no avatar to fill). A better copy of a known photo is
/// accepted in its place: the index of the one it replaces comes back with the result.
fn judge(
    path: &Path,
    mut report: Report,
    known: &[Known],
    room: Option<bool>,
) -> (PhotoResult, Option<usize>) {
    let mut duplicate_of = None;
    let mut replaced = None;
    if !report.md5.is_empty() {
        if let Some(same) = known.iter().find(|other| other.md5 == report.md5) {
            report.reasons.push(Code::Duplicate);
            duplicate_of = Some(same.label.clone());
        } else if let Some(hash) = report.difference_hash
            && let Some(index) = known.iter().position(|other| {
                other
                    .difference_hash
                    .is_some_and(|other| (other ^ hash).count_ones() <= NEAR_DUPLICATE_BITS)
            })
        {
            let pixels = report.width as u64 * report.height as u64;
            let quality_score = report.quality.map(|quality| quality.score);
            if report.reasons.is_empty() && known[index].is_worse_than(pixels, quality_score) {
                replaced = Some(index);
            } else {
                report.reasons.push(Code::NearDuplicate);
                duplicate_of = Some(known[index].label.clone());
            }
        }
    }
    if report.reasons.is_empty() && room == Some(false) && replaced.is_none() {
        report.reasons.push(Code::LimitReached);
    }
    let result = PhotoResult {
        path: path.display().to_string(),
        verdict: if report.reasons.is_empty() {
            Verdict::Accepted
        } else {
            Verdict::Rejected
        },
        md5: report.md5,
        width: report.width,
        height: report.height,
        faces: report.faces.len() as u32,
        quality_score: report.quality.map(|quality| quality.score),
        preview: duplicate_of
            .as_ref()
            .and(report.thumbnail.as_deref())
            .map(jpeg_data_url),
        duplicate_of,
        replaces: replaced.map(|index| known[index].label.clone()),
        replaces_name: replaced.map(|index| known[index].name.clone()),
        photo_id: None,
        stored: None,
        sameness: None,
        identities: report.identities,
        detail: report.detail,
        reasons: report.reasons,
        warnings: report.warnings,
    };
    (result, replaced)
}

/// Judges portraits as one set: the photos whose face is someone else than the set's main
/// person are refused with `different_person`, wherever they are in the set. Copies of another
/// photo of the set (duplicates) and photos without an identified face are left out of the set.
/// With fewer than three photos to compare nothing changes.
pub fn judge_portrait_set(results: &mut [PhotoResult]) {
    let members: Vec<usize> = (0..results.len())
        .filter(|&index| {
            let result = &results[index];
            !result.identities.is_empty()
                && !result
                    .reasons
                    .iter()
                    .any(|code| matches!(code, Code::Duplicate | Code::NearDuplicate))
        })
        .collect();
    let set: Vec<Vec<photos::Descriptor>> = members
        .iter()
        .map(|&index| {
            results[index]
                .identities
                .iter()
                .map(|identity| identity.descriptor)
                .collect()
        })
        .collect();
    for (&index, judgement) in members.iter().zip(photos::judge_set(&set)) {
        let result = &mut results[index];
        let Some(distance) = judgement.distance else {
            continue;
        };
        if judgement.different_person && !result.reasons.contains(&Code::DifferentPerson) {
            refuse_as_someone_else(result, &judgement);
        } else {
            result.sameness = Some(photos::Sameness {
                distance,
                others: judgement.others,
            });
        }
    }
}

impl Studio {
    /// Gives the identities to a portrait avatar's photos stored before they were kept, from
    /// their files, once: the set's judgement then counts them too.
    pub(crate) fn backfill_identities(&self, avatar: &library::Avatar) -> Result<()> {
        if avatar.training_type != TrainingType::Portrait {
            return Ok(());
        }
        let missing: Vec<PhotoId> = self
            .library
            .photo_identities(avatar.id)?
            .into_iter()
            .filter(|(_, json)| json.is_none())
            .map(|(id, _)| id)
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        let checker = self.checker()?.without_thumbnails();
        for photo in self.library.photos(avatar.id)? {
            if !missing.contains(&photo.id) {
                continue;
            }
            let path = self.library.photo_path(&photo.file_hash, &photo.format);
            let report = checker.check_file(&path, photos::Subject::Portrait);
            let faces: Vec<photos::Descriptor> = report
                .identities
                .iter()
                .map(|identity| identity.descriptor)
                .collect();
            self.library
                .set_photo_identities(photo.id, &identities_json(&faces))?;
        }
        Ok(())
    }
}

/// Face identities as the library keeps them: a JSON array of descriptors.
fn identities_json(faces: &[photos::Descriptor]) -> String {
    let arrays: Vec<Vec<f32>> = faces.iter().map(|face| face.0.to_vec()).collect();
    json(&arrays)
}

/// The descriptors stored with a photo (none for a photo stored before identities were kept).
pub(crate) fn descriptors(json: Option<&str>) -> Vec<photos::Descriptor> {
    let arrays: Vec<Vec<f32>> = json
        .and_then(|json| serde_json::from_str(json).ok())
        .unwrap_or_default();
    arrays
        .into_iter()
        .filter_map(|array| <[f32; photos::DESCRIPTOR_LEN]>::try_from(array).ok())
        .map(photos::Descriptor)
        .collect()
}

/// Refuses a photo whose face is someone else than the set's person.
fn refuse_as_someone_else(result: &mut PhotoResult, judgement: &photos::PhotoJudgement) {
    result.sameness = judgement.distance.map(|distance| photos::Sameness {
        distance,
        others: judgement.others,
    });
    result.reasons.push(Code::DifferentPerson);
    result.verdict = Verdict::Rejected;
}

/// Records an accepted photo as known, in place of the one it replaced.
fn replace_or_push(known: &mut Vec<Known>, replaced: Option<usize>, entry: Known) {
    match replaced {
        Some(index) => known[index] = entry,
        None => known.push(entry),
    }
}

/// The last part of a path: a photo's original name, and how messages name it.
fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// How many files an import of `paths` will report on (photos found plus unreadable paths),
/// for progress bars. Counts what it walked before `keep_going` said stop.
pub fn count_inputs(paths: &[PathBuf], keep_going: &dyn Fn() -> bool) -> usize {
    let gathered = gather(paths, keep_going);
    gathered.files.len() + gathered.unreadable.len()
}

/// What a walk through files and folders found.
#[derive(Default)]
pub(crate) struct Gathered {
    /// Every file that could be a finished photo, in a stable order.
    pub files: Vec<PathBuf>,
    /// The paths that could not be read, with the system's reason.
    pub unreadable: Vec<(PathBuf, String)>,
    /// Every folder whose content was listed.
    pub folders: Vec<PathBuf>,
}

/// Walks `paths`. Symbolic links are followed, each folder visited once (no loops). The walk
/// ends early, with what it found so far, once `keep_going` says stop.
pub(crate) fn gather(paths: &[PathBuf], keep_going: &dyn Fn() -> bool) -> Gathered {
    let mut walk = Walk {
        gathered: Gathered::default(),
        visited: HashSet::new(),
        keep_going,
    };
    for path in paths {
        walk.visit(path, true);
    }
    walk.gathered
}

struct Walk<'a> {
    gathered: Gathered,
    visited: HashSet<PathBuf>,
    keep_going: &'a dyn Fn() -> bool,
}

impl Walk<'_> {
    fn visit(&mut self, path: &Path, named: bool) {
        // Files named one by one are taken as asked; inside folders, skip hidden and unfinished
        // ones.
        if !(self.keep_going)() || (!named && is_hidden_or_unfinished(path)) {
            return;
        }
        let gathered = &mut self.gathered;
        // A link into the kernel's files (procfs, sysfs, devices) leads to no photo, and some of
        // those files never end: it is reported, never walked or read.
        if photos::is_kernel_file(path) {
            gathered.unreadable.push((
                path.to_path_buf(),
                "this is one of the system's own files, not a photo".into(),
            ));
            return;
        }
        let metadata = match std::fs::metadata(path) {
            Ok(metadata) => metadata,
            Err(error) => {
                gathered
                    .unreadable
                    .push((path.to_path_buf(), error.to_string()));
                return;
            }
        };
        if !metadata.is_dir() {
            if metadata.is_file() {
                gathered.files.push(path.to_path_buf());
            } else if named {
                // A pipe or a device asked for by name: said so, never opened (a pipe would wait).
                gathered.unreadable.push((
                    path.to_path_buf(),
                    "this is not a regular file (a pipe or a device)".into(),
                ));
            }
            return;
        }
        let Ok(canonical) = std::fs::canonicalize(path) else {
            return;
        };
        if !self.visited.insert(canonical) {
            return; // a folder seen before, through a link: following it again would loop
        }
        let mut entries: Vec<PathBuf> = match std::fs::read_dir(path) {
            Ok(entries) => entries
                .filter_map(|entry| entry.ok().map(|entry| entry.path()))
                .collect(),
            Err(error) => {
                gathered
                    .unreadable
                    .push((path.to_path_buf(), error.to_string()));
                return;
            }
        };
        gathered.folders.push(path.to_path_buf());
        entries.sort();
        for entry in entries {
            self.visit(&entry, false);
        }
    }
}

/// Dotfiles and the names browsers and copy tools give files they are still writing.
pub(crate) fn is_hidden_or_unfinished(path: &Path) -> bool {
    let name = path
        .file_name()
        .map(|name| name.to_string_lossy())
        .unwrap_or_default();
    name.starts_with('.')
        || UNFINISHED_SUFFIXES
            .iter()
            .any(|suffix| name.ends_with(suffix))
}

fn json(value: &impl Serialize) -> String {
    serde_json::to_string(value)
        .unwrap_or_else(|error| unreachable!("plain data always serialises: {error}"))
}

/// A JPEG as a data URL the UI can show without reading a file.
pub(crate) fn jpeg_data_url(jpeg: &[u8]) -> String {
    format!("data:image/jpeg;base64,{}", BASE64_STANDARD.encode(jpeg))
}
