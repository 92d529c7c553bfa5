//! What the app and the CLI's JSON show of the library's records: the contract at the boundary.
//! The library's rows are not serialisable, so a column added for bookkeeping (a revision, a
//! status URL, an idempotency key) reaches no screen or script until a view names it.

use chrono::{DateTime, Utc};
use serde::Serialize;
use ts_rs::TS;
use uuid::Uuid;

use library::{
    Avatar, AvatarId, AvatarStatus, GalleryImage, Gender, Generation, GenerationState, JobFailure,
    JobId, JobState, JobStep, Photo, PhotoId, TrainingJob, TrainingType,
};

/// An avatar with the guide's fields and the number of photos it holds.
#[derive(Debug, Clone, PartialEq, Serialize, TS)]
pub struct AvatarView {
    pub id: AvatarId,
    pub name: String,
    pub gender: Gender,
    pub training_type: TrainingType,
    pub status: AvatarStatus,
    /// 0–100.
    pub training_progress: u8,
    /// The fal request id of the latest training, once submitted.
    pub finetune_id: Option<String>,
    pub photo_count: u32,
    #[ts(type = "string")]
    pub created_at: DateTime<Utc>,
    #[ts(type = "string")]
    pub updated_at: DateTime<Utc>,
}

impl From<&Avatar> for AvatarView {
    fn from(avatar: &Avatar) -> Self {
        Self {
            id: avatar.id,
            name: avatar.name.clone(),
            gender: avatar.gender,
            training_type: avatar.training_type,
            status: avatar.status,
            training_progress: avatar.training_progress,
            finetune_id: avatar.finetune_id.clone(),
            photo_count: avatar.photo_count,
            created_at: avatar.created_at,
            updated_at: avatar.updated_at,
        }
    }
}

/// A stored photo and what the checks found.
#[derive(Debug, Clone, PartialEq, Serialize, TS)]
pub struct PhotoView {
    pub id: PhotoId,
    pub avatar_id: AvatarId,
    /// The file's name where it was imported from.
    pub original_name: String,
    /// jpeg, png, webp, …
    pub format: String,
    pub file_size: u64,
    /// MD5 of the file's bytes, hex.
    pub file_hash: String,
    pub width: u32,
    pub height: u32,
    pub has_face: bool,
    pub face_count: u32,
    pub quality_score: Option<f32>,
    /// Warning codes.
    pub warnings: Vec<String>,
    #[ts(type = "string")]
    pub created_at: DateTime<Utc>,
}

impl From<&Photo> for PhotoView {
    fn from(photo: &Photo) -> Self {
        Self {
            id: photo.id,
            avatar_id: photo.avatar_id,
            original_name: photo.original_name.clone(),
            format: photo.format.clone(),
            file_size: photo.file_size,
            file_hash: photo.file_hash.clone(),
            width: photo.width,
            height: photo.height,
            has_face: photo.has_face,
            face_count: photo.face_count,
            quality_score: photo.quality_score,
            warnings: photo.warnings.clone(),
            created_at: photo.created_at,
        }
    }
}

/// A training run as the creator follows it: where it is, what it cost, where its model is.
#[derive(Debug, Clone, PartialEq, Serialize, TS)]
pub struct JobView {
    pub id: JobId,
    pub avatar_id: AvatarId,
    pub training_type: TrainingType,
    pub preset: String,
    /// The fal endpoint id.
    pub trainer: String,
    /// Simulated: nothing reaches fal.
    pub test_mode: bool,
    pub state: JobState,
    /// fal's request id, once submitted.
    pub request_id: Option<String>,
    /// 0–100.
    pub progress: u8,
    pub queue_position: Option<u32>,
    /// Where the job is, as a code the UI words.
    pub step: Option<JobStep>,
    /// fal's newest log line (its own words), or the app's technical note.
    pub last_log: Option<String>,
    /// Why the job failed, as a code the UI words, with the technical detail.
    pub failure: Option<JobFailure>,
    /// The verified LoRA file in the library. fal's address of it stays inside: whoever holds
    /// it can fetch the creator's face model.
    pub model_path: Option<String>,
    pub cancel_requested: bool,
    /// The cost the creator confirmed before the start, in US dollars; 0 in test mode.
    pub confirmed_cost_usd: f64,
    /// Where the confirmed cost came from: `fal` (its pricing API), `static` or `none`.
    pub price_source: String,
    /// Whether the paid request left the machine, or may have (its answer was lost).
    pub paid_request: bool,
    /// What fal billed, when its billing events could be read.
    pub billed_cost_usd: Option<f64>,
    #[ts(type = "string")]
    pub created_at: DateTime<Utc>,
    /// When the job last changed: of two copies of one job, the later is the newer state.
    #[ts(type = "string")]
    pub updated_at: DateTime<Utc>,
    #[ts(type = "string | null")]
    pub submitted_at: Option<DateTime<Utc>>,
    #[ts(type = "string | null")]
    pub finished_at: Option<DateTime<Utc>>,
}

impl From<&TrainingJob> for JobView {
    fn from(job: &TrainingJob) -> Self {
        Self {
            id: job.id,
            avatar_id: job.avatar_id,
            training_type: job.training_type,
            preset: job.preset.clone(),
            trainer: job.trainer.clone(),
            test_mode: job.test_mode,
            state: job.state,
            request_id: job.request_id.clone(),
            progress: job.progress,
            queue_position: job.queue_position,
            step: job.step.clone(),
            last_log: job.last_log.clone(),
            failure: job.failure.clone(),
            model_path: job.model_path.clone(),
            cancel_requested: job.cancel_requested,
            confirmed_cost_usd: job.confirmed_cost_usd,
            price_source: job.price_source.clone(),
            paid_request: job.paid_request,
            billed_cost_usd: job.billed_cost_usd,
            created_at: job.created_at,
            updated_at: job.updated_at,
            submitted_at: job.submitted_at,
            finished_at: job.finished_at,
        }
    }
}

/// A sample pack made with an avatar's trained model.
#[derive(Debug, Clone, PartialEq, Serialize, TS)]
pub struct GenerationView {
    #[ts(type = "string")]
    pub id: Uuid,
    pub avatar_id: AvatarId,
    /// The training whose model made it.
    pub training_job_id: JobId,
    /// A built-in pack's name, or `custom`.
    pub pack: String,
    /// The prompts, the trigger phrase in each.
    pub prompts: Vec<String>,
    pub images_per_prompt: u32,
    /// The first image's seed; each next image adds one.
    #[ts(type = "number")]
    pub seed: u64,
    pub image_size: String,
    pub endpoint: String,
    pub test_mode: bool,
    pub state: GenerationState,
    pub confirmed_cost_usd: f64,
    pub price_source: String,
    pub failure: Option<JobFailure>,
    pub cancel_requested: bool,
    #[ts(type = "string")]
    pub created_at: DateTime<Utc>,
    #[ts(type = "string | null")]
    pub finished_at: Option<DateTime<Utc>>,
}

impl From<&Generation> for GenerationView {
    fn from(generation: &Generation) -> Self {
        Self {
            id: generation.id,
            avatar_id: generation.avatar_id,
            training_job_id: generation.training_job_id,
            pack: generation.pack.clone(),
            prompts: generation.prompts.clone(),
            images_per_prompt: generation.images_per_prompt,
            seed: generation.seed,
            image_size: generation.image_size.clone(),
            endpoint: generation.endpoint.clone(),
            test_mode: generation.test_mode,
            state: generation.state,
            confirmed_cost_usd: generation.confirmed_cost_usd,
            price_source: generation.price_source.clone(),
            failure: generation.failure.clone(),
            cancel_requested: generation.cancel_requested,
            created_at: generation.created_at,
            finished_at: generation.finished_at,
        }
    }
}

/// One image a sample pack brought, with how much it looks like the avatar's person.
#[derive(Debug, Clone, PartialEq, Serialize, TS)]
pub struct GalleryImageView {
    #[ts(type = "string")]
    pub id: Uuid,
    #[ts(type = "string")]
    pub generation_id: Uuid,
    pub avatar_id: AvatarId,
    pub training_job_id: JobId,
    /// Its place in the pack: prompt by prompt, image by image.
    pub position: u32,
    pub prompt: String,
    #[ts(type = "number")]
    pub seed: u64,
    /// MD5 of the file's bytes.
    pub file_hash: String,
    pub format: String,
    pub width: u32,
    pub height: u32,
    /// fal's safety checker replaced it with a black image.
    pub flagged: bool,
    /// Made on the device in test mode, not by a model.
    pub simulated: bool,
    /// 0–1; `None` for a style avatar, an image with no face, or a flagged one.
    pub likeness: Option<f32>,
    pub likeness_distance: Option<f32>,
    /// The training photo this image nearly copies.
    pub copy_of: Option<PhotoId>,
    pub favourite: bool,
    #[ts(type = "string")]
    pub created_at: DateTime<Utc>,
}

impl From<&GalleryImage> for GalleryImageView {
    fn from(image: &GalleryImage) -> Self {
        Self {
            id: image.id,
            generation_id: image.generation_id,
            avatar_id: image.avatar_id,
            training_job_id: image.training_job_id,
            position: image.position,
            prompt: image.prompt.clone(),
            seed: image.seed,
            file_hash: image.file_hash.clone(),
            format: image.format.clone(),
            width: image.width,
            height: image.height,
            flagged: image.flagged,
            simulated: image.simulated,
            likeness: image.likeness,
            likeness_distance: image.likeness_distance,
            copy_of: image.copy_of,
            favourite: image.favourite,
            created_at: image.created_at,
        }
    }
}
