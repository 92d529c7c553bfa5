//! The trainer port: where a job's training runs. [`FalTrainer`] sends it to fal;
//! [`SimulatedTrainer`] (test mode) runs it on the device with the clock. The steps around them
//! (the ledger, the lease, the fence before money moves, verifying the model) are the same for
//! both.

use super::*;

/// Where a job trains. Each job keeps the trainer it was planned with
/// ([`TrainingJob::test_mode`]), so turning test mode on or off never moves a job in flight to
/// the other one.
#[async_trait::async_trait]
pub(crate) trait Trainer: Send + Sync {
    /// Fails before a job is written that could never be sent (no key, no store).
    fn ready(&self, studio: &Studio, storage: &str) -> Result<()>;
    /// Puts the training set where the trainer reads it, unless it is there already.
    async fn upload(&self, studio: &Studio, job: TrainingJob) -> Result<TrainingJob>;
    /// Sends the job, once: it comes back queued, ended, or waiting for a later attempt.
    async fn submit(
        &self,
        studio: &Studio,
        job: TrainingJob,
        avatar: &library::Avatar,
    ) -> Result<TrainingJob>;
    /// A job whose sending began and whose answer never came (the process stopped, or the
    /// answer was lost on the way).
    async fn settle_unanswered(&self, studio: &Studio, job: TrainingJob) -> Result<TrainingJob>;
    /// One look at a queued or running job.
    async fn poll(
        &self,
        studio: &Studio,
        job: TrainingJob,
        follower: &mut Follower,
    ) -> Result<TrainingJob>;
    /// Writes the trained model to `partial`, or ends the job when there is none to write.
    async fn fetch_model(
        &self,
        studio: &Studio,
        job: TrainingJob,
        partial: &Path,
    ) -> Result<Fetched>;
    /// Once the model is in the library.
    async fn completed(&self, studio: &Studio, job: &mut TrainingJob);
    /// Once the job has ended, however it ended: what the run left outside the machine is
    /// tidied.
    async fn ended(&self, studio: &Studio, job: &TrainingJob);
}

/// What fetching a model came to.
pub(crate) enum Fetched {
    /// The model is at the partial path; its size, when the trainer announced one.
    Model {
        job: TrainingJob,
        expected_size: Option<u64>,
    },
    /// The job ended (or waits for another round) without a model.
    Ended(TrainingJob),
}

/// Trains on fal.
pub(crate) struct FalTrainer;

/// Test mode: nothing leaves the machine; the training moves with the clock.
pub(crate) struct SimulatedTrainer;

impl Studio {
    /// The trainer a job was planned with.
    pub(super) fn trainer_of(&self, test_mode: bool) -> &'static dyn Trainer {
        if test_mode {
            &SimulatedTrainer
        } else {
            &FalTrainer
        }
    }
}
