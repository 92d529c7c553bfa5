//! A submit whose answer was lost (a gateway error, a timeout, a process stopped mid-send) is
//! settled with fal's request history (fal-protocol.md §7.4 "Requests by endpoint"), never by
//! sending it again: the job adopts the request fal holds, or ends saying that fal never
//! received it (nothing was charged, the creator may start again), or, only when the history
//! cannot be read, ends with the advice to look at fal's dashboard.

use std::collections::HashSet;

use avatar_library::{JobFailure, JobState, JobStep, TrainingJob};
use chrono::Duration;

use crate::{Error, Result, Studio};

/// How far from the moment the job was marked as being sent fal's stamp of its arrival may be:
/// the clocks differ a little, and a submit waits at most its timeout for an answer.
const CLOCK_SKEW: Duration = Duration::seconds(30);
const LONGEST_SEND: Duration = Duration::seconds(150);

/// What fal's history says about a submit.
enum Finding {
    Arrived(fal::RequestRecord),
    NotArrived,
    NotYetKnown,
    /// Why the request cannot be told apart.
    Ambiguous(String),
}

impl Studio {
    pub(crate) async fn settle_unanswered_submit(&self, job: TrainingJob) -> Result<TrainingJob> {
        let client = match self.fal_client() {
            Ok(client) => client,
            Err(error) => return self.settle_impossible(job, &error.to_string()),
        };
        let sent_from = sending_began(&job) - CLOCK_SKEW;
        let query = fal::RequestQuery {
            endpoint_id: &job.trainer,
            start: Some(sent_from),
            end: None,
            request_id: None,
            with_payloads: true,
        };
        let records = match client.requests(&query).await {
            Ok(records) => records,
            // The client has already retried a busy or unreachable history.
            Err(error) => return self.settle_impossible(job, &error.to_string()),
        };
        let jobs = self.library.jobs()?;
        let known: HashSet<String> = jobs
            .iter()
            .filter_map(|other| other.request_id.clone())
            .collect();
        // Another job of this library being sent to the same trainer could own the request.
        let others_sending = jobs.iter().any(|other| {
            other.id != job.id
                && other.state == JobState::Submitting
                && other.trainer == job.trainer
        });
        let finding = self.judge(&job, records, &known, others_sending);
        match finding {
            Finding::Arrived(record) => {
                let submitted = client.adopt(&job.trainer, &record.request_id);
                let mut job = job;
                job.request_id = Some(submitted.request_id);
                job.status_url = Some(submitted.status_url);
                job.response_url = Some(submitted.response_url);
                job.cancel_url = Some(submitted.cancel_url);
                job.submitted_at = Some(record.sent_at);
                job.state = JobState::Queued;
                job.progress = crate::training::PROGRESS_SUBMITTED;
                job.last_log = Some(format!(
                    "fal's request history shows this training arrived as {}",
                    record.request_id
                ));
                self.save(job, JobStep::Adopted)
            }
            Finding::NotArrived => {
                let mut job = job;
                job.paid_request = false;
                self.conclude(
                    job,
                    JobState::Failed,
                    Some(JobFailure::NeverReceived {
                        minutes: self.config().history_delay.as_secs().div_ceil(60) as u32,
                    }),
                )
            }
            Finding::NotYetKnown => {
                self.save(job, JobStep::AwaitingHistory)?;
                Err(Error::Remote(
                    "fal's answer was lost; waiting for fal's request history to show whether the training arrived".into(),
                ))
            }
            Finding::Ambiguous(why) => self.settle_impossible(job, &why),
        }
    }

    /// Which of the endpoint's requests since the job was sent is this job's: one whose input
    /// names the job's training set, or the only request no other job of this library holds
    /// (fal keeps no inputs of requests sent with `X-Fal-Store-IO: 0`).
    fn judge(
        &self,
        job: &TrainingJob,
        records: Vec<fal::RequestRecord>,
        known: &HashSet<String>,
        others_sending: bool,
    ) -> Finding {
        let sent_from = sending_began(job) - CLOCK_SKEW;
        let candidates: Vec<fal::RequestRecord> = records
            .into_iter()
            .filter(|record| {
                record.sent_at >= sent_from
                    && record.sent_at <= sending_began(job) + LONGEST_SEND
                    && !known.contains(&record.request_id)
            })
            .collect();
        let dataset_url = job.dataset_url.as_deref();
        if let Some(record) = candidates.iter().find(|record| {
            record.json_input.as_ref().and_then(|input| {
                input["images_data_url"]
                    .as_str()
                    .or_else(|| input["data_url"].as_str())
            }) == dataset_url
                && dataset_url.is_some()
        }) {
            return Finding::Arrived(record.clone());
        }
        // Requests whose input shows another training set are not this one.
        let unmarked: Vec<fal::RequestRecord> = candidates
            .into_iter()
            .filter(|record| record.json_input.is_none())
            .collect();
        match unmarked.len() {
            1 if others_sending => Finding::Ambiguous(
                "another training of this library was being sent to the same trainer at that time"
                    .into(),
            ),
            1 => Finding::Arrived(unmarked.into_iter().next().expect("one request")),
            0 if self.clock.now() - sending_began(job) < self.history_delay() => {
                Finding::NotYetKnown
            }
            0 => Finding::NotArrived,
            count => Finding::Ambiguous(format!(
                "{count} requests to this trainer arrived at that time, and none can be told apart as this one"
            )),
        }
    }

    /// How long fal's history may take to list a request it took; before that, "not listed" is
    /// not yet an answer.
    fn history_delay(&self) -> Duration {
        Duration::from_std(self.config().history_delay).unwrap_or(Duration::MAX)
    }

    /// The history cannot answer: the creator checks fal's dashboard.
    fn settle_impossible(&self, job: TrainingJob, why: &str) -> Result<TrainingJob> {
        self.conclude(
            job,
            JobState::Failed,
            Some(JobFailure::Unsettled {
                detail: why.to_string(),
            }),
        )
    }
}

/// When the job was marked as being sent, just before the request left.
fn sending_began(job: &TrainingJob) -> chrono::DateTime<chrono::Utc> {
    job.submitted_at.unwrap_or(job.updated_at)
}
