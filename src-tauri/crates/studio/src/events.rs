//! Training news that arrives from outside the poll loop: fal's webhooks (verified by whoever
//! received them) and the guide's own status format. Both go through the same ledger path as
//! polling, so whichever channel reports first moves the job, and a repeated delivery changes
//! nothing.

use avatar_library::{JobState, TrainingJob};
use serde_json::Value;

use crate::training::PROGRESS_TRAINED;
use crate::{Error, Result, Studio};

impl Studio {
    /// Applies one status event to the job it names and returns the job as it now stands, or
    /// `None` when no job has that request id. A completed job still needs driving (the model is
    /// downloaded by [`Studio::drive`]); a failed one ends here.
    pub fn apply_status_event(&self, event: &Value) -> Result<Option<TrainingJob>> {
        let request_id = event["request_id"]
            .as_str()
            .ok_or_else(|| Error::InvalidInput("the event names no request_id".into()))?;
        let Some(mut job) = self.library.job_by_request_id(request_id)? else {
            return Ok(None);
        };
        if job.state.is_final() || job.state == JobState::Downloading {
            return Ok(Some(job));
        }
        let status = event["status"].as_str().unwrap_or_default();
        match status {
            // fal's webhook: the model's output, or the error it ended with.
            "OK" | "completed" => {
                let result = if status == "OK" {
                    &event["payload"]
                } else {
                    &event["result"]
                };
                if let Ok(output) = fal::LoraOutput::from_result(result) {
                    job.model_url = Some(output.lora_url);
                    job.config_url = output.config_url;
                }
                job.state = JobState::Downloading;
                job.progress = PROGRESS_TRAINED;
                job.queue_position = None;
                self.save(job, "Training finished; downloading the model")
                    .map(Some)
            }
            "ERROR" | "failed" => {
                let reason = event["error"]
                    .as_str()
                    .map(str::to_string)
                    .or_else(|| event["payload"]["detail"].as_str().map(str::to_string))
                    .unwrap_or_else(|| "fal reported a failure without a reason".to_string());
                let state = if job.cancel_requested {
                    JobState::Cancelled
                } else {
                    JobState::Failed
                };
                let error = (state == JobState::Failed)
                    .then(|| format!("fal reported a failure: {reason}"));
                self.conclude(job, state, error).map(Some)
            }
            "in_progress" => {
                let progress = event["progress"].as_u64().unwrap_or(0).min(99) as u8;
                if progress > job.progress {
                    job.progress = progress;
                    job.state = JobState::Running;
                    let text = job.status_text.clone().unwrap_or_else(|| "Training".into());
                    return self.save(job, &text).map(Some);
                }
                Ok(Some(job))
            }
            other => Err(Error::InvalidInput(format!(
                "{other:?} is not a status this app knows (OK, ERROR, in_progress, completed, failed)"
            ))),
        }
    }
}
