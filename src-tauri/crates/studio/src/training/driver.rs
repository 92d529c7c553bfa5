//! Carrying a job on: the follow loop, one step at a time, and the lease that lets one process
//! upload, submit or download a job.

use super::*;

impl Studio {
    /// Carries a job to a final state and returns it. Safe to run in several processes at once.
    pub async fn drive(&self, job_id: JobId) -> Result<TrainingJob> {
        self.follow(job_id, |_| true).await
    }

    /// Carries a job on, calling `watch` with every new state of it, until the job is final or
    /// `watch` returns `false`.
    pub async fn follow(
        &self,
        job_id: JobId,
        mut watch: impl FnMut(&TrainingJob) -> bool,
    ) -> Result<TrainingJob> {
        let mut follower = Follower::default();
        let mut pause = self.config().poll_interval;
        let mut seen: Option<TrainingJob> = None;
        loop {
            let (job, worked) = self.step(job_id, &mut follower).await?;
            let changed = seen.as_ref() != Some(&job);
            if changed {
                let keep_going = watch(&job);
                seen = Some(job.clone());
                if !keep_going {
                    return Ok(job);
                }
            }
            if job.state.is_final() {
                return Ok(job);
            }
            let local_work_next = matches!(job.state, JobState::Preparing | JobState::Downloading);
            if changed {
                pause = self.config().poll_interval;
            }
            if !(worked || (changed && local_work_next)) {
                tokio::select! {
                    () = self.clock.sleep(pause) => {}
                    () = self.news.notified() => {}
                }
                pause = pause.mul_f64(1.5).min(MAX_POLL_INTERVAL);
            }
        }
    }

    /// Takes one step on every unfinished job (what each start of the app or the CLI does), and
    /// returns the jobs with any error met on the way.
    pub async fn advance_unfinished(&self) -> Result<Vec<(TrainingJob, Option<Error>)>> {
        let jobs = self.library.unfinished_jobs()?;
        let steps = jobs.into_iter().map(|job| async move {
            let mut follower = Follower::default();
            match self.step(job.id, &mut follower).await {
                Ok((job, _)) => (job, None),
                Err(error) => (job, Some(error)),
            }
        });
        Ok(futures_util::future::join_all(steps).await)
    }

    /// Does the next piece of work on a job. Returns the job as it now stands, and whether work
    /// was done (so the caller need not wait before the next step).
    pub(super) async fn step(
        &self,
        job_id: JobId,
        follower: &mut Follower,
    ) -> Result<(TrainingJob, bool)> {
        let was_final = self.load_job(job_id)?.state.is_final();
        let stepped = self.step_once(job_id, follower).await;
        if let Ok((job, _)) = &stepped
            && job.state.is_final()
            && !was_final
        {
            self.trainer_of(job.test_mode).ended(self, job).await;
        }
        match stepped {
            // Another process moved the job on or took it over: this step stopped at the fence,
            // and the job is followed from what the library now holds.
            Err(Error::Fenced(Fence::StaleWrite | Fence::TrainingTaken)) => {
                Ok((self.load_job(job_id)?, false))
            }
            other => other,
        }
    }

    pub(super) async fn step_once(
        &self,
        job_id: JobId,
        follower: &mut Follower,
    ) -> Result<(TrainingJob, bool)> {
        let job = self.load_job(job_id)?;
        match job.state {
            state if state.is_final() => Ok((job, false)),
            JobState::Queued | JobState::Running => {
                let job = self
                    .trainer_of(job.test_mode)
                    .poll(self, job, follower)
                    .await?;
                Ok((job, false))
            }
            _ => {
                if !self.take_lease(job.id)? {
                    // Another process is uploading or downloading this job; watch it.
                    return Ok((job, false));
                }
                let outcome = self
                    .holding_lease(
                        || self.take_lease(job_id),
                        Fence::TrainingTaken,
                        self.work(job),
                    )
                    .await;
                self.library.release_lease(job_id, &self.lease_owner)?;
                outcome.map(|job| (job, true))
            }
        }
    }

    pub(super) fn take_lease(&self, job_id: JobId) -> Result<bool> {
        let (now, until) = self.lease_period()?;
        Ok(self
            .library
            .take_lease(job_id, &self.lease_owner, now, until)?)
    }

    /// From now to when a lease taken now runs out.
    pub(crate) fn lease_period(
        &self,
    ) -> Result<(chrono::DateTime<chrono::Utc>, chrono::DateTime<chrono::Utc>)> {
        let now = self.clock.now();
        let until = now + chrono::Duration::from_std(self.config().job_lease).map_err(internal)?;
        Ok((now, until))
    }

    /// Runs `work` while renewing its lease with `renew`, so no other process takes the work
    /// over while this one is alive, and one that died is replaced within a lease period. When
    /// another process took it over (this one was suspended, say), the work stops at once,
    /// fenced by `lost`.
    pub(crate) async fn holding_lease<T>(
        &self,
        renew: impl Fn() -> Result<bool>,
        lost: Fence,
        work: impl std::future::Future<Output = Result<T>>,
    ) -> Result<T> {
        let renewing = async {
            loop {
                self.clock.sleep(self.config().job_lease / 3).await;
                match renew() {
                    Ok(true) => {}
                    Ok(false) => return Error::Fenced(lost),
                    Err(error) => return error,
                }
            }
        };
        tokio::select! {
            result = work => result,
            error = renewing => Err(error),
        }
    }

    pub(super) async fn work(&self, job: TrainingJob) -> Result<TrainingJob> {
        match job.state {
            JobState::Preparing => self.prepare_and_submit(job).await,
            JobState::Submitting => {
                let trainer = self.trainer_of(job.test_mode);
                trainer.settle_unanswered(self, job).await
            }
            JobState::Downloading => self.download(job).await,
            _ => Ok(job),
        }
    }
}
