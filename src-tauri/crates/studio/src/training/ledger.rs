//! Writing a job back to the ledger: every write over the revision it read, a final state once,
//! bounded retries of transfers.

use super::*;

impl Studio {
    /// Counts a failed upload round or model download (each already retried the way fal's
    /// clients do): tried again later, or the end of the job once the tries are used up, with
    /// the last reason.
    pub(super) fn transfer_failed(
        &self,
        mut job: TrainingJob,
        transfer: Transfer,
        error: Error,
    ) -> Result<TrainingJob> {
        let attempts = attempts(&mut job, transfer);
        *attempts += 1;
        let tries = *attempts;
        let detail = error.to_string();
        if tries >= MAX_TRANSFER_ATTEMPTS {
            let failure = JobFailure::TransferGaveUp {
                transfer,
                tries,
                detail,
            };
            return self.conclude(job, JobState::Failed, Some(failure));
        }
        self.save(job, JobStep::Retrying { transfer, detail })?;
        Err(error)
    }

    /// Moves a job to a final state; the process whose write lands first notifies, once.
    pub(crate) fn conclude(
        &self,
        mut job: TrainingJob,
        state: JobState,
        failure: Option<JobFailure>,
    ) -> Result<TrainingJob> {
        let now = self.clock.now();
        job.state = state;
        job.queue_position = None;
        job.step = Some(match state {
            JobState::Completed => JobStep::Completed,
            JobState::Cancelled => JobStep::Cancelled,
            _ => JobStep::Failed,
        });
        job.failure = failure;
        job.updated_at = now;
        job.finished_at = Some(now);
        if self.library.save_job(&job, &self.lease_owner, now)? {
            let zip = self.library.dataset_path(job.id);
            remove_if_present(&zip)?;
            // An unfinished upload's journal holds a pre-signed address: it goes with the job.
            remove_if_present(&fal::upload_journal_path(&zip))?;
            let avatar_name = self
                .library
                .avatar(job.avatar_id)?
                .map(|avatar| avatar.name)
                .unwrap_or_default();
            self.notifier.notify(&Notice {
                avatar_id: job.avatar_id,
                avatar_name,
                outcome: state,
                failure: job.failure.clone(),
                pack_images: None,
            });
            return Ok(job);
        }
        // Another process finished it first: report what it wrote. Or another process moved
        // it on meanwhile: this step stops at the fence.
        let stored = self.load_job(job.id)?;
        if stored.state.is_final() {
            return Ok(stored);
        }
        Err(Error::Fenced(Fence::StaleWrite))
    }

    /// Writes the job over the revision it was read at. A write that does not land (another
    /// process moved the job on, or took over its lease) ends the step that tried it, before it
    /// can act on a state that is no longer true: see [`Studio::step`].
    pub(crate) fn save(&self, mut job: TrainingJob, step: JobStep) -> Result<TrainingJob> {
        job.step = Some(step);
        job.updated_at = self.clock.now();
        if !self
            .library
            .save_job(&job, &self.lease_owner, job.updated_at)?
        {
            return Err(Error::Fenced(Fence::StaleWrite));
        }
        self.load_job(job.id)
    }

    pub(crate) fn save_if_changed(
        &self,
        mut job: TrainingJob,
        step: JobStep,
    ) -> Result<TrainingJob> {
        job.step = Some(step.clone());
        let stored = self.load_job(job.id)?;
        let unchanged = TrainingJob {
            updated_at: stored.updated_at,
            cancel_requested: stored.cancel_requested,
            revision: stored.revision,
            ..job.clone()
        } == stored;
        if unchanged {
            return Ok(stored);
        }
        self.save(job, step)
    }
}
