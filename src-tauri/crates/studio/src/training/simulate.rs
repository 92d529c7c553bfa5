//! Test mode: a simulated training that moves with the clock, and its simulated webhook.

use super::*;

impl Studio {
    /// With `FAL_ENABLE_WEBHOOK_SIMULATION`, tells `FAL_WEBHOOK_URL` about the end in the guide's
    /// own status format, the way a relay hears about real jobs.
    async fn send_simulated_webhook(&self, job: &mut TrainingJob) {
        let (true, Some(url)) = (
            self.config().webhook_simulation,
            self.webhook_url(job.training_type),
        ) else {
            return;
        };
        // Nothing of this machine travels with it: no path, no file address.
        let body = serde_json::json!({
            "request_id": job.request_id,
            "status": "completed",
            "progress": 100,
            "training_type": job.training_type.as_str(),
        });
        let mut request = crate::relay::relay_http().post(&url).json(&body);
        // The relay token goes to the relay only, never to another host named as the webhook.
        if let Some((relay_url, token)) = self.relay()
            && same_origin(&url, Some(&relay_url))
        {
            request = request.bearer_auth(token);
        }
        let line = match request.timeout(Duration::from_secs(10)).send().await {
            Ok(response) => format!("test webhook sent: {}", response.status().as_u16()),
            Err(error) => format!("test webhook failed: {error}"),
        };
        job.last_log = Some(line);
    }
}

#[async_trait::async_trait]
impl Trainer for SimulatedTrainer {
    fn ready(&self, _studio: &Studio, _storage: &str) -> Result<()> {
        Ok(())
    }

    /// The set never leaves the machine.
    async fn upload(&self, _studio: &Studio, job: TrainingJob) -> Result<TrainingJob> {
        Ok(job)
    }

    async fn submit(
        &self,
        studio: &Studio,
        mut job: TrainingJob,
        avatar: &library::Avatar,
    ) -> Result<TrainingJob> {
        job.state = JobState::Submitting;
        job = studio.save(job, JobStep::Sending)?;
        let request_id = format!(
            "test_{}_{}",
            &avatar.id.simple().to_string()[..8],
            &Uuid::new_v4().simple().to_string()[..8]
        );
        job.last_log = Some(format!(
            "TEST MODE: skipping submission for avatar {}; generated test request_id {request_id}; simulating {} training, completes in {} s",
            avatar.name,
            job.training_type,
            studio.config().mock_training_duration.as_secs()
        ));
        job.request_id = Some(request_id);
        job.state = JobState::Queued;
        job.submitted_at = Some(studio.clock.now());
        job.progress = PROGRESS_SUBMITTED;
        studio.save(job, JobStep::Queued { place: None })
    }

    /// Nothing was sent, so a simulated send that was cut off is simply made again.
    async fn settle_unanswered(
        &self,
        studio: &Studio,
        mut job: TrainingJob,
    ) -> Result<TrainingJob> {
        job.state = JobState::Preparing;
        job = studio.save(job, JobStep::Preparing)?;
        studio.prepare_and_submit(job).await
    }

    /// Progress moves with the clock from the simulated submit to the configured duration; the
    /// job survives restarts because its time is in the ledger.
    async fn poll(
        &self,
        studio: &Studio,
        mut job: TrainingJob,
        _follower: &mut Follower,
    ) -> Result<TrainingJob> {
        if job.cancel_requested {
            return studio.conclude(job, JobState::Cancelled, None);
        }
        let started = job.submitted_at.unwrap_or(job.created_at);
        let elapsed = (studio.clock.now() - started).to_std().unwrap_or_default();
        let duration = studio.config().mock_training_duration;
        let fraction = if duration.is_zero() {
            1.0
        } else {
            elapsed.as_secs_f64() / duration.as_secs_f64()
        };
        if fraction >= 1.0 {
            job.state = JobState::Downloading;
            job.progress = PROGRESS_TRAINED;
            return studio.save(
                job,
                JobStep::Downloading {
                    after_cancel: false,
                },
            );
        }
        let total = serde_json::from_str::<JobParams>(&job.params)
            .map(|params| params.steps)
            .unwrap_or(1000);
        let done = (fraction * f64::from(total)) as u32;
        job.state = JobState::Running;
        job.progress = progress_at(fraction);
        job.last_log = Some(format!("Training step {done}/{total} (simulated)"));
        let step = JobStep::Training {
            done: Some(done),
            total: Some(total),
        };
        studio.save_if_changed(job, step)
    }

    async fn fetch_model(
        &self,
        studio: &Studio,
        mut job: TrainingJob,
        partial: &Path,
    ) -> Result<Fetched> {
        simulated_model(partial, &job)?;
        studio.send_simulated_webhook(&mut job).await;
        Ok(Fetched::Model {
            job,
            expected_size: None,
        })
    }

    async fn completed(&self, _studio: &Studio, _job: &mut TrainingJob) {}

    /// Nothing left the machine.
    async fn ended(&self, _studio: &Studio, _job: &TrainingJob) {}
}
