//! Training news that arrives from outside the poll loop: fal's webhooks (verified by whoever
//! received them) and the guide's own status format. An event only moves a job forward: progress
//! is taken from it, but an end (completed or failed) is never taken on its word. It wakes the
//! followers, which ask fal's own status and result, so the model's address always comes from fal
//! and nothing a relay token holder posts can end a job or choose what is downloaded.

use library::{JobState, JobStep, TrainingJob};
use relay_wire::{EventKind, FeedEvent};
use serde_json::Value;

use crate::{Error, Result, Studio};

impl Studio {
    /// Applies one status event to the job it names and returns the job as it now stands, or
    /// `None` when no job has that request id. The caller wakes the followers, which confirm an
    /// end with fal before acting on it.
    pub fn apply_status_event(&self, event: &Value) -> Result<Option<TrainingJob>> {
        let request_id = event["request_id"]
            .as_str()
            .ok_or_else(|| Error::InvalidInput("the event names no request_id".into()))?;
        let kind = match event["status"].as_str().unwrap_or_default() {
            "OK" | "completed" => EventKind::Completed,
            "ERROR" | "failed" => EventKind::Failed,
            "in_progress" => EventKind::InProgress,
            other => {
                return Err(Error::InvalidInput(format!(
                    "{other:?} is not a status this app knows (OK, ERROR, in_progress, completed, failed)"
                )));
            }
        };
        self.apply_event(request_id, kind, event["progress"].as_f64())
    }

    /// Applies an event from the relay's feed: the relay classified the delivery already.
    pub(crate) fn apply_feed_event(&self, event: &FeedEvent) -> Result<Option<TrainingJob>> {
        self.apply_event(&event.request_id, event.kind, event.progress)
    }

    fn apply_event(
        &self,
        request_id: &str,
        kind: EventKind,
        progress: Option<f64>,
    ) -> Result<Option<TrainingJob>> {
        let Some(mut job) = self.library.job_by_request_id(request_id)? else {
            return Ok(None);
        };
        if !matches!(job.state, JobState::Queued | JobState::Running) {
            return Ok(Some(job));
        }
        // Below 100 until fal's own result ends the job; a fraction of a percent is dropped.
        let progress = progress.unwrap_or(0.0).clamp(0.0, 99.0) as u8;
        if kind != EventKind::InProgress || progress <= job.progress {
            return Ok(Some(job));
        }
        job.progress = progress;
        job.state = JobState::Running;
        let step = match job.step.clone() {
            Some(step @ JobStep::Training { .. }) => step,
            _ => JobStep::Training {
                done: None,
                total: None,
            },
        };
        self.save(job, step).map(Some)
    }
}
