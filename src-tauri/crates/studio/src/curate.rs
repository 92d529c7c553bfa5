//! Curating a portrait avatar's training set from files and folders of any size: every photo is
//! checked on all cores, the main person found (the avatar's own photos name them when it has
//! some), and the best, most varied photos of them picked (`photos::curate`).

use crate::PhotoId;
use std::path::{Path, PathBuf};

use photos::{Code, Framing, Lighting, Pose};
use serde::Serialize;
use ts_rs::TS;

use crate::{AvatarRef, Error, Result, Studio, TrainingType};

/// The decision on one file: one line of `avatar-cli photos curate --json`, and what the app's
/// "Pick the best…" shows.
#[derive(Debug, Clone, Serialize, TS)]
pub struct CurateResult {
    pub path: String,
    pub picked: bool,
    /// Why it was not picked: the checks' refusals, `different_person`, `duplicate`,
    /// `near_duplicate`, or `limit_reached` (better or more varied photos filled the set).
    pub reasons: Vec<Code>,
    pub warnings: Vec<Code>,
    /// Curation's account of its decision in English, for the CLI's line (empty when the
    /// checks refused the file: the CLI words their codes). The app words `reasons` and
    /// `warnings` instead.
    pub why: String,
    pub quality_score: Option<f32>,
    /// How far its face is from the main person's.
    pub distance: Option<f32>,
    pub pose: Option<Pose>,
    pub framing: Option<Framing>,
    pub lighting: Option<Lighting>,
    /// The better copy of the same picture, which was considered instead.
    pub copy_of: Option<String>,
    /// A small JPEG as a data URL, for the photos the app shows (see [`Studio::add_previews`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub preview: Option<String>,
}

/// What curation decided, and the time it took by stage.
#[derive(Debug, Clone)]
pub struct Curation {
    pub results: Vec<CurateResult>,
    /// Time in the checks' stages, summed over the cores.
    pub stages: photos::StageTimes,
    /// Wall time of checking every file (all stages on all cores).
    pub checking: std::time::Duration,
    /// Wall time of finding the person and picking.
    pub picking: std::time::Duration,
}

/// A stored photo judged against the avatar's other photos.
#[derive(Debug, Clone, Serialize)]
pub struct StoredSameness {
    pub photo_id: PhotoId,
    pub name: String,
    /// How far its face is from the centre of the other photos, and how many they are; `None`
    /// while fewer than three photos have an identified face.
    pub sameness: Option<photos::Sameness>,
    pub different_person: bool,
}

/// How many files were checked, for progress.
#[derive(Debug, Clone, Copy, Serialize, TS)]
pub struct CurateProgress {
    pub checked: usize,
    pub total: usize,
}

impl Studio {
    /// The avatar's stored photos judged again as one set (is every photo the same person?),
    /// from their files: the photos the readiness line should name as no longer fitting are
    /// those with `different_person`. Photos are judged in no particular order, so the first one
    /// stored has no more weight than the last.
    pub fn judge_stored_photos<'a>(
        &self,
        avatar_reference: impl Into<AvatarRef<'a>>,
    ) -> Result<Vec<StoredSameness>> {
        let avatar = self.avatar(avatar_reference)?;
        let stored = self.library.photos(avatar.id)?;
        let checker = self.checker()?.without_thumbnails();
        let faces: Vec<Vec<photos::Descriptor>> = stored
            .iter()
            .map(|photo| {
                let path = self.library.photo_path(&photo.file_hash, &photo.format);
                checker
                    .check_file(&path, photos::Subject::Portrait)
                    .identities
                    .iter()
                    .map(|identity| identity.descriptor)
                    .collect()
            })
            .collect();
        Ok(stored
            .iter()
            .zip(photos::judge_set(&faces))
            .map(|(photo, judgement)| StoredSameness {
                photo_id: photo.id,
                name: photo.original_name.clone(),
                sameness: judgement.distance.map(|distance| photos::Sameness {
                    distance,
                    others: judgement.others,
                }),
                different_person: judgement.different_person,
            })
            .collect())
    }

    /// Picks at most `count` photos (default: the room left in the avatar) of the avatar's
    /// person from everything under `paths`, without storing anything. `on_progress` hears of
    /// each checked file; returning `false` from `keep_going` stops the work.
    pub fn curate_photos<'a>(
        &self,
        avatar_reference: impl Into<AvatarRef<'a>>,
        paths: &[PathBuf],
        count: Option<usize>,
        mut on_progress: impl FnMut(CurateProgress),
        keep_going: &dyn Fn() -> bool,
    ) -> Result<Curation> {
        let avatar = self.avatar(avatar_reference)?;
        if avatar.training_type != TrainingType::Portrait {
            return Err(Error::InvalidInput(format!(
                "{} is a style avatar: curation picks photos of one person, for portrait avatars",
                avatar.name
            )));
        }
        let stored = self.library.photos(avatar.id)?;
        let room = (self.config().max_photos as usize).saturating_sub(stored.len());
        let count = count.unwrap_or(room);
        let checker = std::sync::Arc::new(
            self.checker()?
                .without_thumbnails()
                .identity_only_for_usable_faces()
                .without_tiled_search(),
        );

        // The avatar's own photos say who the person is, from their stored identities.
        self.backfill_identities(&avatar)?;
        let reference: Vec<photos::Descriptor> = self
            .library
            .photo_identities(avatar.id)?
            .into_iter()
            .filter_map(|(_, json)| crate::import::descriptors(json.as_deref()).first().copied())
            .collect();

        let total = crate::count_inputs(paths, keep_going);
        let started = std::time::Instant::now();
        let mut files: Vec<(String, photos::Candidate, Vec<Code>)> = Vec::new();
        self.check_files(
            &checker,
            paths,
            TrainingType::Portrait,
            keep_going,
            |path: &Path, report| {
                files.push((
                    path.display().to_string(),
                    photos::Candidate::from_report(&report),
                    report.warnings.clone(),
                ));
                on_progress(CurateProgress {
                    checked: files.len(),
                    total,
                });
                Ok(())
            },
        )?;

        let checking = started.elapsed();
        let started = std::time::Instant::now();
        let candidates: Vec<photos::Candidate> = files
            .iter()
            .map(|(_, candidate, _)| candidate.clone())
            .collect();
        let choices = photos::curate(&candidates, count, &reference, keep_going)
            .ok_or_else(|| Error::Cancelled("curation was cancelled".into()))?;
        let picking = started.elapsed();
        let results = files
            .iter()
            .zip(choices)
            .map(|((path, candidate, warnings), choice)| CurateResult {
                path: path.clone(),
                picked: choice.picked,
                reasons: choice.reasons.clone(),
                warnings: warnings.clone(),
                why: choice.why,
                quality_score: (!candidate.faces.is_empty() || candidate.quality > 0.0)
                    .then_some(candidate.quality),
                distance: choice.distance,
                pose: choice.pose,
                framing: choice.framing,
                lighting: choice.lighting,
                copy_of: choice.copy_of.map(|index| files[index].0.clone()),
                preview: None,
            })
            .collect();
        Ok(Curation {
            results,
            stages: checker.stage_times(),
            checking,
            picking,
        })
    }

    /// Gives a thumbnail to the photos the app shows after curation: the picked ones, and the
    /// best `alternates` of those left out only because the set was full (the ones a creator
    /// may swap in). The rest of a camera roll gets none, so memory stays small.
    pub fn add_previews(&self, results: &mut [CurateResult], alternates: usize) -> Result<()> {
        let checker = self.checker()?.without_identity();
        let mut swappable: Vec<usize> = (0..results.len())
            .filter(|&index| results[index].reasons == [Code::LimitReached])
            .collect();
        swappable.sort_by(|&a, &b| {
            let quality = |index: usize| results[index].quality_score.unwrap_or_default();
            quality(b).total_cmp(&quality(a))
        });
        swappable.truncate(alternates);
        let shown: Vec<usize> = (0..results.len())
            .filter(|&index| results[index].picked)
            .chain(swappable)
            .collect();
        for index in shown {
            let report =
                checker.check_file(Path::new(&results[index].path), photos::Subject::Portrait);
            results[index].preview = report
                .thumbnail
                .as_deref()
                .map(crate::import::jpeg_data_url);
        }
        Ok(())
    }
}
