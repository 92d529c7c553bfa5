//! fal.ai as the app meets it: the queue (submit, status, result, cancel), storage uploads, file
//! downloads, the trainers' inputs and outputs, and webhook signatures. Wire facts come from
//! `docs/fal-protocol.md`; there is no official Rust client.

mod client;
mod error;
mod logs;
mod retry;
mod trainers;
pub mod webhook;

pub use client::{
    CancelAnswer, Endpoints, FalClient, LogEntry, QueueState, QueueStatus, Submitted,
    is_fetchable_url,
};
pub use error::FalError;
pub use logs::{StepProgress, step_progress};
pub use retry::RetryPolicy;
pub use trainers::{
    Estimate, LoraOutput, Overrides, Preset, TrainerKind, TrainerSpec, TrainingParams,
};
