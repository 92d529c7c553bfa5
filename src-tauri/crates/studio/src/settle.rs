//! A submit whose answer was lost (a gateway error, a timeout, a process stopped mid-send) is
//! settled with fal's request history (fal-protocol.md §7.4 "Requests by endpoint"), never by
//! sending it again: the job adopts the request fal holds, or ends saying that fal never
//! received it (nothing was charged, the creator may start again), or, only when the history
//! cannot be read or cannot tell, ends with the advice to look at fal's dashboard.
//!
//! The history lists finished requests only (§8.2), so "not listed" means "not yet known"
//! until every request sent then must have finished: the [`settle_bound`].

use std::collections::HashSet;

use chrono::Duration;
use library::{JobFailure, JobState, JobStep, TrainingJob};

use crate::{Result, Studio};

/// How far from the moment the job was marked as being sent fal's stamp of its arrival may be:
/// the clocks differ a little, and a submit waits at most its timeout for an answer.
const CLOCK_SKEW: Duration = Duration::seconds(30);
const LONGEST_SEND: Duration = Duration::seconds(150);
/// How far back fal's request history answers for one request (fal-protocol.md §7.4).
const HISTORY_WINDOW: Duration = Duration::days(90);

/// The longest a training may run once started: four times the guide's longest preset (45
/// minutes for a quality style run). fal documents no run time for its trainers.
pub(crate) const LONGEST_TRAINING_RUN: Duration = Duration::hours(3);
/// The longest one image request of a pack may run once started.
pub(crate) const LONGEST_INFERENCE_RUN: Duration = Duration::minutes(10);

/// How long after sending a request fal's history may still not list it: the start deadline
/// every submit carries (fal drops a request not started by then), its longest run, and the
/// history's own delay in listing a finished request (`FAL_HISTORY_DELAY_MS`). Past it, a
/// request the history does not list was never received.
pub(crate) fn settle_bound(longest_run: Duration, history_delay: std::time::Duration) -> Duration {
    let start_deadline =
        Duration::from_std(fal::START_DEADLINE).expect("the start deadline is a few hours");
    start_deadline + longest_run + Duration::from_std(history_delay).unwrap_or(Duration::days(1))
}

/// What fal's history says about a submit.
pub(crate) enum Finding {
    Arrived(fal::RequestRecord),
    NotArrived,
    NotYetKnown,
    /// Why the request cannot be told apart.
    Ambiguous(String),
}

/// A submit whose answer was lost, as the history is searched for it.
pub(crate) struct LostSubmit<'a> {
    pub sending_began: chrono::DateTime<chrono::Utc>,
    /// The request ids this library already holds.
    pub known: &'a HashSet<String>,
    /// Whether another request of this library was being sent to the same endpoint.
    pub others_sending: bool,
    /// How long the request may run once started ([`LONGEST_TRAINING_RUN`] or
    /// [`LONGEST_INFERENCE_RUN`]).
    pub longest_run: Duration,
    /// What was sent, for the reason given when it cannot be told apart.
    pub what: &'static str,
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
                // The step (adopted) says what happened; the lost answer's detail is done with.
                job.last_log = None;
                self.save(job, JobStep::Adopted)
            }
            Finding::NotArrived => {
                let mut job = job;
                job.paid_request = false;
                let bound = settle_bound(LONGEST_TRAINING_RUN, self.config().history_delay);
                self.conclude(
                    job,
                    JobState::Failed,
                    Some(JobFailure::NeverReceived {
                        minutes: bound.num_minutes() as u32,
                    }),
                )
            }
            // Asked again at the next step: the follow loop's pause grows to a few seconds.
            Finding::NotYetKnown => self.save_if_changed(job, JobStep::AwaitingHistory),
            Finding::Ambiguous(why) => self.settle_impossible(job, &why),
        }
    }

    /// Asks fal's history again about the avatar's latest job when it ended unsettled (its
    /// answer lost and the history silent or unreadable then), before a new start sends
    /// anything: the request fal now lists is returned for the new job to adopt. A start is
    /// refused while the history cannot yet tell; one proven never received, or past the
    /// history's 90 days, goes ahead.
    pub(crate) async fn recheck_unsettled(
        &self,
        avatar_id: library::AvatarId,
    ) -> Result<Option<(TrainingJob, fal::RequestRecord)>> {
        let Some(latest) = self.library.latest_job(avatar_id)? else {
            return Ok(None);
        };
        let unsettled = matches!(latest.failure, Some(JobFailure::Unsettled { .. }));
        let sent = sending_began(&latest);
        if !unsettled
            || !latest.paid_request
            || latest.test_mode
            || self.clock.now() - sent > HISTORY_WINDOW
        {
            return Ok(None);
        }
        let refused = |why: String| {
            crate::Error::Conflict(format!(
                "fal's answer to this avatar's training sent at {} was lost, and {why}. Nothing new is sent until fal's history can tell whether it arrived, so it is never paid twice: try again later, or check your requests on fal's dashboard.",
                sent.format("%Y-%m-%d %H:%M UTC")
            ))
        };
        let client = self.fal_client()?;
        let query = fal::RequestQuery {
            endpoint_id: &latest.trainer,
            start: Some(sent - CLOCK_SKEW),
            end: None,
            request_id: None,
            with_payloads: true,
        };
        let records = client
            .requests(&query)
            .await
            .map_err(|error| refused(format!("fal's request history cannot be read ({error})")))?;
        let known: HashSet<String> = self
            .library
            .jobs()?
            .into_iter()
            .filter_map(|job| job.request_id)
            .collect();
        match self.judge(&latest, records, &known, false) {
            Finding::Arrived(record) => Ok(Some((latest, record))),
            Finding::NotArrived | Finding::Ambiguous(_) => Ok(None),
            Finding::NotYetKnown => {
                let bound = settle_bound(LONGEST_TRAINING_RUN, self.config().history_delay);
                Err(refused(format!(
                    "fal's history, which lists only finished requests, can tell by {}",
                    (sent + bound).format("%Y-%m-%d %H:%M UTC")
                )))
            }
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
        let dataset_url = job.dataset_url.as_deref();
        let names_the_set = |input: &serde_json::Value| {
            dataset_url.is_some()
                && input["images_data_url"]
                    .as_str()
                    .or_else(|| input["data_url"].as_str())
                    == dataset_url
        };
        self.find_lost_request(
            records,
            LostSubmit {
                sending_began: sending_began(job),
                known,
                others_sending,
                longest_run: LONGEST_TRAINING_RUN,
                what: "training",
            },
            names_the_set,
        )
    }

    /// Which of an endpoint's requests is a lost submit: one whose input `is_ours`, or the only
    /// request in its time window no request of this library holds (fal keeps no inputs of
    /// requests sent with `X-Fal-Store-IO: 0`).
    pub(crate) fn find_lost_request(
        &self,
        records: Vec<fal::RequestRecord>,
        lost: LostSubmit<'_>,
        is_ours: impl Fn(&serde_json::Value) -> bool,
    ) -> Finding {
        let sent_from = lost.sending_began - CLOCK_SKEW;
        let candidates: Vec<fal::RequestRecord> = records
            .into_iter()
            .filter(|record| {
                record.sent_at >= sent_from
                    && record.sent_at <= lost.sending_began + LONGEST_SEND
                    && !lost.known.contains(&record.request_id)
            })
            .collect();
        if let Some(record) = candidates
            .iter()
            .find(|record| record.json_input.as_ref().is_some_and(&is_ours))
        {
            return Finding::Arrived(record.clone());
        }
        // Requests whose input shows something else are not this one.
        let unmarked: Vec<fal::RequestRecord> = candidates
            .into_iter()
            .filter(|record| record.json_input.is_none())
            .collect();
        match unmarked.len() {
            1 if lost.others_sending => Finding::Ambiguous(format!(
                "another {} of this library was being sent to the same endpoint at that time",
                lost.what
            )),
            1 => Finding::Arrived(unmarked.into_iter().next().expect("one request")),
            0 if self.clock.now() - lost.sending_began
                < settle_bound(lost.longest_run, self.config().history_delay) =>
            {
                Finding::NotYetKnown
            }
            0 => Finding::NotArrived,
            count => Finding::Ambiguous(format!(
                "{count} requests to this endpoint arrived at that time, and none can be told apart as this {}",
                lost.what
            )),
        }
    }

    /// The history cannot answer: the creator checks fal's dashboard for the request sent then.
    fn settle_impossible(&self, job: TrainingJob, why: &str) -> Result<TrainingJob> {
        let sent_at = Some(sending_began(&job));
        self.conclude(
            job,
            JobState::Failed,
            Some(JobFailure::Unsettled {
                detail: why.to_string(),
                sent_at,
            }),
        )
    }
}

/// When the job was marked as being sent, just before the request left.
fn sending_began(job: &TrainingJob) -> chrono::DateTime<chrono::Utc> {
    job.submitted_at.unwrap_or(job.updated_at)
}
