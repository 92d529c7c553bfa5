//! The records a library holds, as the rest of the program sees them.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use ts_rs::TS;
use uuid::Uuid;

use crate::{AvatarId, JobId, PhotoId};

/// Defines a closed enum stored and exchanged as lower-case text, with the text form in one place.
macro_rules! text_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, TS)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($variant),+ }

        impl $name {
            pub const ALL: &'static [Self] = &[$(Self::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $text),+ }
            }

            /// Parses the text form; `None` for anything else.
            pub fn parse(text: &str) -> Option<Self> {
                match text { $($text => Some(Self::$variant),)+ _ => None }
            }
        }

        impl std::str::FromStr for $name {
            type Err = String;

            fn from_str(text: &str) -> Result<Self, String> {
                Self::parse(text).ok_or_else(|| {
                    let accepted: Vec<&str> = Self::ALL.iter().map(|value| value.as_str()).collect();
                    format!("{text:?} is not one of: {}", accepted.join(", "))
                })
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

text_enum!(
    /// The guide's three genders.
    Gender { Male => "male", Female => "female", Other => "other" }
);

text_enum!(
    /// Portrait trains on faces of one person; style trains on anything else.
    TrainingType { Portrait => "portrait", Style => "style" }
);

text_enum!(
    /// Where an avatar is in its life. The guide's four states plus the ones a desktop job passes through.
    AvatarStatus {
        Draft => "draft",
        Uploading => "uploading",
        Training => "training",
        Completed => "completed",
        Error => "error",
        Cancelled => "cancelled",
    }
);

/// An avatar with the guide's fields, and the number of photos it holds.
#[derive(Debug, Clone, PartialEq)]
pub struct Avatar {
    pub id: AvatarId,
    pub name: String,
    pub gender: Gender,
    pub training_type: TrainingType,
    pub status: AvatarStatus,
    /// 0–100.
    pub training_progress: u8,
    /// The fal request id of the latest training, once submitted.
    pub finetune_id: Option<String>,
    /// The guide's `fal_mode`: which trainer family the avatar uses.
    pub fal_mode: TrainingType,
    pub photo_count: u32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Avatar {
    /// A new avatar: a draft without photos or training.
    pub fn draft(
        name: String,
        gender: Gender,
        training_type: TrainingType,
        now: DateTime<Utc>,
    ) -> Self {
        Self {
            id: AvatarId::new(),
            name,
            gender,
            training_type,
            status: AvatarStatus::Draft,
            training_progress: 0,
            finetune_id: None,
            fal_mode: training_type,
            photo_count: 0,
            created_at: now,
            updated_at: now,
        }
    }
}

/// A stored photo with the guide's fields and what the checks found.
#[derive(Debug, Clone, PartialEq)]
pub struct Photo {
    pub id: PhotoId,
    pub avatar_id: AvatarId,
    /// The object key once uploaded (the guide's `minio_key`).
    pub minio_key: Option<String>,
    /// MD5 of the file's bytes, hex.
    pub file_hash: String,
    pub file_size: u64,
    pub validation_status: String,
    pub has_face: bool,
    pub face_count: u32,
    pub quality_score: Option<f32>,
    pub width: u32,
    pub height: u32,
    /// The file's name where it was imported from.
    pub original_name: String,
    /// jpeg, png, webp, …; also the stored file's extension.
    pub format: String,
    /// Difference hash for near duplicates, 16 hex digits.
    pub difference_hash: Option<u64>,
    /// Warning codes, JSON array.
    pub warnings: Vec<String>,
    pub created_at: DateTime<Utc>,
}

text_enum!(
    /// Where a training job is. A job moves forward only; the last three are final.
    JobState {
        Preparing => "preparing",
        Submitting => "submitting",
        Queued => "queued",
        Running => "running",
        Downloading => "downloading",
        Completed => "completed",
        Failed => "failed",
        Cancelled => "cancelled",
    }
);

impl JobState {
    pub fn is_final(self) -> bool {
        matches!(self, Self::Completed | Self::Failed | Self::Cancelled)
    }

    /// What the avatar shows while its job is in this state.
    pub fn avatar_status(self) -> AvatarStatus {
        match self {
            Self::Preparing | Self::Submitting => AvatarStatus::Uploading,
            Self::Queued | Self::Running | Self::Downloading => AvatarStatus::Training,
            Self::Completed => AvatarStatus::Completed,
            Self::Failed => AvatarStatus::Error,
            Self::Cancelled => AvatarStatus::Cancelled,
        }
    }
}

text_enum!(
    /// A job's transfers that are tried a bounded number of times.
    Transfer { Upload => "upload", Download => "download" }
);

/// Where a job is. A code with parameters: the UI words it in English or Russian, the CLI in
/// English; the ledger stores it as JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum JobStep {
    Preparing,
    Packing {
        photos: u32,
    },
    /// `store`: `s3` or `fal`.
    Uploading {
        megabytes: f64,
        store: String,
    },
    Uploaded,
    Sending,
    /// `place` counts from 1.
    Queued {
        place: Option<u32>,
    },
    Training {
        done: Option<u32>,
        total: Option<u32>,
    },
    /// fal finished; the model is being fetched (`after_cancel`: the cancel came too late).
    Downloading {
        after_cancel: bool,
    },
    /// A transfer failed and is tried again; `detail` is the technical reason.
    Retrying {
        transfer: Transfer,
        detail: String,
    },
    /// fal cannot be reached; polling goes on.
    Unreachable {
        detail: String,
    },
    /// fal's answer proves it did not take the job; it is sent again later.
    NotSent {
        detail: String,
    },
    /// fal's answer to the submit was lost; its request history will tell.
    AwaitingHistory,
    /// fal's request history shows the submit arrived.
    Adopted,
    Completed,
    Cancelled,
    Failed,
}

/// Why a job failed: a code with parameters and the technical detail.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum JobFailure {
    /// A setting the creator must fix (the key, S3, the storage route).
    Settings { detail: String },
    /// fal refused the request before queueing it: nothing ran, nothing was billed.
    Refused { detail: String },
    /// fal ran the job and reported a failure.
    FalFailed {
        kind: Option<String>,
        detail: String,
    },
    /// The job holds no fal request to follow.
    NoRequest,
    /// fal no longer knows the request.
    Forgotten,
    /// fal no longer keeps the result, so the model cannot be fetched.
    ResultExpired,
    /// fal's result cannot be used.
    ResultUnusable { detail: String },
    /// fal's result names the model at an address that is not one of fal's https addresses.
    ModelNotHttps { url: String },
    /// The model file is no longer on fal's servers.
    ModelGone,
    /// fal's file server refused the model's download.
    ModelPrivate { status: u16 },
    /// A transfer failed `tries` times.
    TransferGaveUp {
        transfer: Transfer,
        tries: u32,
        detail: String,
    },
    /// fal's request history never listed the lost submit: nothing was charged.
    NeverReceived { minutes: u32 },
    /// fal's answer was lost and its request history cannot tell whether the job arrived; the
    /// creator looks for the request sent at `sent_at` on fal's dashboard.
    Unsettled {
        detail: String,
        /// When it was sent; absent in failures recorded by an older version.
        #[serde(default)]
        sent_at: Option<chrono::DateTime<chrono::Utc>>,
    },
    /// fal's file server refused a generated image (HTTP `status`: private, expired or
    /// deleted): that image is missing, the rest are kept.
    ImageUnavailable { status: u16 },
    /// A reason recorded in words by an older version.
    Other { detail: String },
}

/// One month of paid requests in the spending ledger, in US dollars.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct MonthSpending {
    /// `YYYY-MM`, in UTC.
    pub month: String,
    /// What the creator confirmed for the requests sent.
    pub confirmed_usd: f64,
    /// What fal billed, summed over the requests whose billing could be read.
    pub billed_usd: Option<f64>,
    /// Paid requests sent (or possibly sent: their answer was lost).
    pub requests: u32,
    /// Of those, how many have a billed cost.
    pub billed_requests: u32,
}

/// One training run: the durable record that lets any start of the app or the CLI carry it to
/// its end. Written before anything is uploaded or submitted.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainingJob {
    pub id: JobId,
    pub avatar_id: AvatarId,
    /// Names the job's uploads, so a repeated upload replaces rather than duplicates.
    pub idempotency_key: String,
    /// MD5 over the photos' hashes: which set this job trained on.
    pub training_set_hash: String,
    /// The fal endpoint id.
    pub trainer: String,
    pub training_type: TrainingType,
    pub preset: String,
    /// The trainer inputs chosen (steps, learning rate), JSON.
    pub params: String,
    /// Simulated: nothing reaches fal.
    pub test_mode: bool,
    pub state: JobState,
    pub request_id: Option<String>,
    pub status_url: Option<String>,
    pub response_url: Option<String>,
    pub cancel_url: Option<String>,
    /// `s3`, `fal` or `none` (test mode).
    pub storage: Option<String>,
    /// The zip's object key (the guide's `minio_key`).
    pub dataset_key: Option<String>,
    pub dataset_url: Option<String>,
    /// 0–100.
    pub progress: u8,
    pub queue_position: Option<u32>,
    /// Where the job is, as a code the UI words.
    pub step: Option<JobStep>,
    /// fal's newest log line (its own words), or the app's technical note.
    pub last_log: Option<String>,
    /// Why the job failed, as a code the UI words, with the technical detail.
    pub failure: Option<JobFailure>,
    /// The verified LoRA file in the library.
    pub model_path: Option<String>,
    /// The LoRA file on fal's CDN.
    pub model_url: Option<String>,
    pub config_url: Option<String>,
    pub cancel_requested: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub submitted_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    /// The cost the creator confirmed before the start, in US dollars; 0 in test mode.
    pub confirmed_cost_usd: f64,
    /// Where the confirmed cost came from: `fal` (its pricing API), `static` or `none`.
    pub price_source: String,
    /// Whether the paid request left the machine, or may have (its answer was lost).
    pub paid_request: bool,
    /// What fal billed, when its billing events could be read.
    pub billed_cost_usd: Option<f64>,
    /// The request's outputs stored on fal after the model was saved: `deleted` or `kept`.
    pub fal_outputs: Option<String>,
    /// Training-set uploads that failed so far.
    pub upload_attempts: u32,
    /// Model downloads that failed so far.
    pub download_attempts: u32,
    /// How many times the job was written; a write is accepted only over the revision it read.
    pub revision: u32,
}

text_enum!(
    /// Where a generation (a sample pack) is. The last three are final.
    GenerationState {
        Pending => "pending",
        Running => "running",
        Completed => "completed",
        Failed => "failed",
        Cancelled => "cancelled",
    }
);

impl GenerationState {
    pub fn is_final(self) -> bool {
        matches!(self, Self::Completed | Self::Failed | Self::Cancelled)
    }
}

/// A sample pack made with an avatar's trained model: written before anything is made or sent.
#[derive(Debug, Clone, PartialEq)]
pub struct Generation {
    pub id: Uuid,
    pub avatar_id: AvatarId,
    /// The training whose model made it.
    pub training_job_id: JobId,
    /// A built-in pack's name, or `custom`.
    pub pack: String,
    /// The prompts, the trigger phrase in each.
    pub prompts: Vec<String>,
    pub images_per_prompt: u32,
    /// The first image's seed; each next image adds one, so a pack is the same every time.
    pub seed: u64,
    pub image_size: String,
    pub endpoint: String,
    /// The LoRA the requests name, once chosen.
    pub lora_url: Option<String>,
    pub test_mode: bool,
    pub state: GenerationState,
    pub confirmed_cost_usd: f64,
    pub price_source: String,
    pub failure: Option<JobFailure>,
    pub cancel_requested: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

/// One image a generation brought, with how much it looks like the avatar's person.
#[derive(Debug, Clone, PartialEq)]
pub struct GalleryImage {
    pub id: Uuid,
    pub generation_id: Uuid,
    pub avatar_id: AvatarId,
    pub training_job_id: JobId,
    /// Its place in the pack: prompt by prompt, image by image.
    pub position: u32,
    pub prompt: String,
    pub seed: u64,
    /// MD5 of the file's bytes; the file is `gallery/ab/<hash>.<format>`.
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
    pub created_at: DateTime<Utc>,
}

text_enum!(
    /// Where one fal request of a sample pack is.
    RequestState {
        Pending => "pending",
        Sending => "sending",
        Queued => "queued",
        Done => "done",
        Failed => "failed",
        Cancelled => "cancelled",
    }
);

impl RequestState {
    pub fn is_final(self) -> bool {
        matches!(self, Self::Done | Self::Failed | Self::Cancelled)
    }
}

/// One fal request of a sample pack (one prompt), written before it is sent.
#[derive(Debug, Clone, PartialEq)]
pub struct GenerationRequest {
    pub generation_id: Uuid,
    pub prompt_index: u32,
    pub state: RequestState,
    pub request_id: Option<String>,
    pub status_url: Option<String>,
    pub response_url: Option<String>,
    pub cancel_url: Option<String>,
    pub sent_at: Option<DateTime<Utc>>,
    pub paid: bool,
    pub cancel_sent: bool,
    pub failure: Option<JobFailure>,
}
