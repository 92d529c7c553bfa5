//! fal.ai as the app meets it: the queue (submit, status, result, cancel), storage uploads, file
//! downloads, the trainers' inputs and outputs, and webhook signatures. Wire facts come from
//! `docs/fal-protocol.md`; there is no official Rust client.

mod client;
mod error;
mod logs;
mod platform;
mod reachable;
mod retry;
mod storage;
mod trainers;
pub mod webhook;

pub use client::{
    CancelAnswer, Endpoints, FalClient, LogEntry, OUTPUT_LIFETIME, PAYLOAD_STORAGE_PERIOD,
    QueueState, QueueStatus, START_DEADLINE, Submitted,
};
pub use error::FalError;
pub use logs::{StepProgress, step_progress};
pub use platform::{BillingEvent, PayloadDeletion, Price, RequestQuery, RequestRecord};
pub use reachable::{Unreachable, fal_can_fetch, is_public};
pub use retry::RetryPolicy;
pub use storage::{Lifetime, MULTIPART_THRESHOLD, PART_SIZE, UploadFile, upload_journal_path};
pub use trainers::{
    Estimate, LEARNING_RATE_RANGE, LoraOutput, Overrides, Preset, STEP_RANGE, TrainerKind,
    TrainerSpec, TrainingParams,
};
