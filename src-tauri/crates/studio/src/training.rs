//! Training on fal: plan (preset, estimate), start (a ledger row before anything leaves the
//! machine), and drive a job through pack → upload → submit → follow → download → verify. Every
//! step reads the job from the ledger and writes it back, so a killed process loses nothing: the
//! next start of the app or the CLI picks the job up where it stopped. Test mode simulates fal.

use std::path::{Path, PathBuf};
use std::time::Duration;

use avatar_library::{
    JobFailure, JobInsert, JobState, JobStep, PARTIAL_SUFFIX, TrainingJob, Transfer,
};
use fal::{FalClient, FalError, Overrides, Preset, QueueState, TrainerKind, TrainerSpec};
use serde::Serialize;
use ts_rs::TS;
use uuid::Uuid;

use crate::dataset::{self, DatasetStore, FalDatasetStore, S3DatasetStore};
use crate::{Error, Notice, Result, SecretName, Studio, TrainingType};

/// The trigger phrase the LoRA learns; prompts name the avatar with it.
pub const TRIGGER_PHRASE: &str = "TOK";
/// Why a step stopped at a fence; the step's caller follows the job from the library instead.
const STALE_WRITE: &str = "another process moved this training on";
const LEASE_LOST: &str = "another process took this training over";
/// An upload or a model download that failed this many times ends the job.
const MAX_TRANSFER_ATTEMPTS: u32 = 3;
/// Polls slow down while nothing changes, up to this.
const MAX_POLL_INTERVAL: Duration = Duration::from_secs(15);
/// Progress points: packing and uploading take the first tenth, the download the last twentieth.
pub(crate) const PROGRESS_SUBMITTED: u8 = 10;
pub(crate) const PROGRESS_TRAINED: u8 = 95;

/// What a training run will be, shown before a paid start and handed back to start it.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize, TS)]
pub struct TrainingPlan {
    #[ts(type = "string")]
    pub avatar_id: Uuid,
    pub avatar_name: String,
    pub training_type: TrainingType,
    pub preset: String,
    pub trainer: String,
    pub steps: u32,
    pub learning_rate: Option<f64>,
    pub min_minutes: u32,
    pub max_minutes: u32,
    /// Zero in test mode.
    pub cost_usd: f64,
    pub assumptions: String,
    pub test_mode: bool,
    pub photos: u32,
    /// Where fal fetches the training set from: `s3`, `fal` or `none` (test mode).
    pub storage: String,
    /// Why the set does not go where the settings suggest, as a code: `s3_not_public` (fal
    /// cannot fetch from the S3 endpoint, so the set goes through fal storage; the photo
    /// copies stay in S3).
    pub storage_notice: Option<String>,
    /// Where the cost came from: `fal` (its pricing API), `static` (the built-in table) or
    /// `none` (test mode).
    pub price_source: String,
    /// This month's paid requests and confirmed starts so far, before this one.
    pub spent_this_month_usd: f64,
    pub monthly_budget_usd: Option<f64>,
}

/// One preset of one avatar type, with what it trains and how long the guide says it takes.
#[derive(Debug, Clone, PartialEq, Serialize, TS)]
pub struct PresetInfo {
    pub training_type: TrainingType,
    #[ts(type = "\"fast\" | \"balanced\" | \"quality\"")]
    pub preset: Preset,
    pub steps: u32,
    pub learning_rate: Option<f64>,
    pub min_minutes: u32,
    pub max_minutes: u32,
}

/// The presets and the ranges the trainers accept: the one table every screen reads.
#[derive(Debug, Clone, PartialEq, Serialize, TS)]
pub struct TrainingChoices {
    pub presets: Vec<PresetInfo>,
    pub min_steps: u32,
    pub max_steps: u32,
    pub min_learning_rate: f64,
    pub max_learning_rate: f64,
}

/// The stored parameters of a job.
#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize)]
struct JobParams {
    steps: u32,
    learning_rate: Option<f64>,
}

impl Studio {
    fn trainer(&self, training_type: TrainingType) -> TrainerSpec {
        match training_type {
            TrainingType::Portrait => TrainerSpec::new(
                TrainerKind::Portrait,
                self.config().portrait_trainer.clone(),
            ),
            TrainingType::Style => {
                TrainerSpec::new(TrainerKind::Style, self.config().style_trainer.clone())
            }
        }
    }

    /// Every preset of both avatar types with the trainers in force, and the accepted ranges.
    pub fn training_choices(&self) -> TrainingChoices {
        let presets = [TrainingType::Portrait, TrainingType::Style]
            .into_iter()
            .flat_map(|training_type| {
                let trainer = self.trainer(training_type);
                Preset::ALL.into_iter().map(move |preset| {
                    let params = trainer.preset(preset);
                    let (min_minutes, max_minutes) = trainer.preset_minutes(preset);
                    PresetInfo {
                        training_type,
                        preset,
                        steps: params.steps,
                        learning_rate: params.learning_rate,
                        min_minutes,
                        max_minutes,
                    }
                })
            })
            .collect();
        TrainingChoices {
            presets,
            min_steps: *fal::STEP_RANGE.start(),
            max_steps: *fal::STEP_RANGE.end(),
            min_learning_rate: *fal::LEARNING_RATE_RANGE.start(),
            max_learning_rate: *fal::LEARNING_RATE_RANGE.end(),
        }
    }

    /// The run a preset and overrides give for an avatar, with its expected time and cost, and
    /// where fal will fetch its training set from. Refused when the creator asked for S3 only
    /// and fal cannot fetch from that S3.
    pub async fn plan_training(
        &self,
        avatar_reference: &str,
        preset: Preset,
        overrides: Overrides,
    ) -> Result<TrainingPlan> {
        let avatar = self.avatar(avatar_reference)?;
        let trainer = self.trainer(avatar.training_type);
        let params = trainer
            .params(preset, overrides)
            .map_err(Error::InvalidInput)?;
        let estimate = trainer.estimate(params);
        let test_mode = self.config().test_mode;
        let (storage, storage_notice) = self.training_set_route().await?;
        let (cost_usd, price_source) = self
            .training_cost(&trainer.endpoint, params.steps, estimate.cost_usd)
            .await;
        let this_month = crate::pricing::month_of(self.clock.now());
        Ok(TrainingPlan {
            avatar_id: avatar.id,
            avatar_name: avatar.name,
            training_type: avatar.training_type,
            preset: preset.as_str().to_string(),
            trainer: trainer.endpoint,
            steps: params.steps,
            learning_rate: params.learning_rate,
            min_minutes: estimate.minutes.0,
            max_minutes: estimate.minutes.1,
            cost_usd,
            assumptions: estimate.assumptions.to_string(),
            test_mode,
            photos: avatar.photo_count,
            storage: storage.to_string(),
            storage_notice: storage_notice.map(str::to_string),
            price_source: price_source.as_str().to_string(),
            spent_this_month_usd: crate::pricing::dollars(
                self.library.committed_in_month(&this_month)?,
            ),
            monthly_budget_usd: self.config().monthly_budget_usd,
        })
    }

    /// Where fal will fetch the training set from, and why when it is not the S3 the settings
    /// name: fal's runners refuse addresses that are not on the internet (fal-protocol.md
    /// §7.1), so a MinIO on this machine or the local network keeps the library's copies while
    /// the set itself goes through fal storage, unless the creator chose S3 only.
    async fn training_set_route(&self) -> Result<(&'static str, Option<&'static str>)> {
        let config = self.config();
        if config.test_mode {
            return Ok(("none", None));
        }
        let Some(s3) = &config.s3 else {
            if config.training_set_s3_only {
                return Err(Error::InvalidConfig(
                    "Training sets are to go through S3 only (AVATAR_TRAINING_SET_S3_ONLY), but no S3 is set up".into(),
                ));
            }
            return Ok(("fal", None));
        };
        match fal::fal_can_fetch(&s3.endpoint).await {
            Ok(()) => Ok(("s3", None)),
            Err(_) if !config.training_set_s3_only => Ok(("fal", Some("s3_not_public"))),
            Err(unreachable) => Err(Error::InvalidConfig(format!(
                "fal cannot fetch a training set from S3_ENDPOINT {}: {}. fal's servers download it from the internet, so a MinIO on this computer or the local network cannot serve it. Give S3 an address on the internet, or turn off \"S3 only\" (AVATAR_TRAINING_SET_S3_ONLY) to send the set through fal storage.",
                s3.endpoint,
                match unreachable {
                    fal::Unreachable::NotPublic(address) =>
                        format!("it is at {address}, which only this computer or network can reach"),
                    fal::Unreachable::Unresolved => "its name does not resolve".to_string(),
                    fal::Unreachable::NotWebAddress => "it is not a web address".to_string(),
                }
            ))),
        }
    }

    /// Writes a job for the plan the creator confirmed to the ledger and returns it; nothing has
    /// left the machine yet. [`Studio::drive`] carries it on. When the plan in force differs from
    /// the confirmed one (the settings, the photos or a price changed since), nothing starts and
    /// the answer is `conflict`: the creator confirms the new plan first.
    pub async fn start_training(&self, confirmed: &TrainingPlan) -> Result<TrainingJob> {
        let preset = Preset::parse(&confirmed.preset).ok_or_else(|| {
            Error::InvalidInput(format!("{:?} is not a preset", confirmed.preset))
        })?;
        let overrides = Overrides {
            steps: Some(confirmed.steps),
            learning_rate: confirmed.learning_rate,
        };
        let plan = self
            .plan_training(&confirmed.avatar_id.to_string(), preset, overrides)
            .await?;
        // What the month has spent is shown, not confirmed: another avatar's start moves it.
        let comparable = TrainingPlan {
            spent_this_month_usd: confirmed.spent_this_month_usd,
            ..plan.clone()
        };
        if comparable != *confirmed {
            return Err(Error::Conflict(format!(
                "the training plan for {} changed since it was confirmed ({}); review the new plan and confirm it again",
                plan.avatar_name,
                plan_changes(confirmed, &plan)
            )));
        }
        let photos = self.library.photos(plan.avatar_id)?;
        let count = photos.len() as u32;
        if count < self.config().min_photos {
            return Err(Error::InvalidInput(format!(
                "{} has {count} accepted photos; training needs at least {}",
                plan.avatar_name,
                self.config().min_photos
            )));
        }
        if !self.config().test_mode {
            // Fail before writing a job that could never be submitted.
            self.fal_client()?;
            self.dataset_store(&plan.storage)?;
            self.s3_copies()?;
        }
        let now = self.clock.now();
        let params = JobParams {
            steps: plan.steps,
            learning_rate: plan.learning_rate,
        };
        let job = TrainingJob {
            id: Uuid::new_v4(),
            avatar_id: plan.avatar_id,
            idempotency_key: Uuid::new_v4().simple().to_string(),
            training_set_hash: dataset::training_set_hash(&photos),
            trainer: plan.trainer,
            training_type: plan.training_type,
            preset: plan.preset,
            params: serde_json::to_string(&params).map_err(internal)?,
            test_mode: plan.test_mode,
            state: JobState::Preparing,
            request_id: None,
            status_url: None,
            response_url: None,
            cancel_url: None,
            storage: None,
            dataset_key: None,
            dataset_url: None,
            progress: 0,
            queue_position: None,
            step: Some(JobStep::Preparing),
            last_log: None,
            failure: None,
            model_path: None,
            model_url: None,
            config_url: None,
            cancel_requested: false,
            created_at: now,
            updated_at: now,
            submitted_at: None,
            finished_at: None,
            confirmed_cost_usd: plan.cost_usd,
            price_source: plan.price_source,
            paid_request: false,
            billed_cost_usd: None,
            fal_outputs: None,
            upload_attempts: 0,
            download_attempts: 0,
            revision: 0,
        };
        let budget = self.config().monthly_budget_usd.filter(|_| !plan.test_mode);
        match self.library.insert_job(&job, budget)? {
            JobInsert::Inserted => {
                self.follow_in_background(job.id);
                Ok(job)
            }
            JobInsert::AvatarBusy => Err(Error::Conflict(format!(
                "{} is already training; wait for it to end or cancel it first",
                plan.avatar_name
            ))),
            JobInsert::OverBudget { committed_usd } => Err(self.over_budget(
                job.confirmed_cost_usd,
                committed_usd,
                budget.unwrap_or_default(),
            )),
        }
    }

    /// The avatar's newest job, if it ever trained.
    pub fn training_status(&self, avatar_reference: &str) -> Result<Option<TrainingJob>> {
        let avatar = self.avatar(avatar_reference)?;
        Ok(self.library.latest_job(avatar.id)?)
    }

    /// The avatar's newest trained model file.
    pub fn model_file(&self, avatar_reference: &str) -> Result<std::path::PathBuf> {
        let avatar = self.avatar(avatar_reference)?;
        self.library
            .jobs()?
            .into_iter()
            .filter(|job| job.avatar_id == avatar.id && job.state == JobState::Completed)
            .find_map(|job| job.model_path.map(std::path::PathBuf::from))
            .filter(|path| path.is_file())
            .ok_or_else(|| Error::NotFound(format!("{} has no trained model yet", avatar.name)))
    }

    /// Every job, newest first.
    pub fn jobs(&self) -> Result<Vec<TrainingJob>> {
        Ok(self.library.jobs()?)
    }

    pub fn unfinished_jobs(&self) -> Result<Vec<TrainingJob>> {
        Ok(self.library.unfinished_jobs()?)
    }

    /// Asks for the avatar's running job to be cancelled. Whoever drives the job sends fal's
    /// cancel and follows the job until fal confirms an end.
    pub fn request_cancel(&self, avatar_reference: &str) -> Result<TrainingJob> {
        let avatar = self.avatar(avatar_reference)?;
        let job = self
            .library
            .latest_job(avatar.id)?
            .filter(|job| !job.state.is_final())
            .ok_or_else(|| Error::Conflict(format!("{} has no training to cancel", avatar.name)))?;
        self.library.request_cancel(job.id)?;
        self.follow_in_background(job.id);
        self.load_job(job.id)
    }

    fn load_job(&self, job_id: Uuid) -> Result<TrainingJob> {
        self.library
            .job(job_id)?
            .ok_or_else(|| Error::NotFound(format!("there is no training job {job_id}")))
    }

    /// Carries a job to a final state and returns it. Safe to run in several processes at once.
    pub async fn drive(&self, job_id: Uuid) -> Result<TrainingJob> {
        self.follow(job_id, |_| true).await
    }

    /// Carries a job on, calling `watch` with every new state of it, until the job is final or
    /// `watch` returns `false`.
    pub async fn follow(
        &self,
        job_id: Uuid,
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
                    () = tokio::time::sleep(pause) => {}
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
    async fn step(&self, job_id: Uuid, follower: &mut Follower) -> Result<(TrainingJob, bool)> {
        let was_final = self.load_job(job_id)?.state.is_final();
        let stepped = self.step_once(job_id, follower).await;
        if let Ok((job, _)) = &stepped
            && job.state.is_final()
            && !was_final
        {
            self.remove_training_uploads(job).await;
        }
        match stepped {
            // Another process moved the job on or took it over: this step stopped at the fence,
            // and the job is followed from what the library now holds.
            Err(Error::Conflict(reason)) if reason == STALE_WRITE || reason == LEASE_LOST => {
                Ok((self.load_job(job_id)?, false))
            }
            other => other,
        }
    }

    async fn step_once(
        &self,
        job_id: Uuid,
        follower: &mut Follower,
    ) -> Result<(TrainingJob, bool)> {
        let job = self.load_job(job_id)?;
        match job.state {
            state if state.is_final() => Ok((job, false)),
            JobState::Queued | JobState::Running => {
                let job = if job.test_mode {
                    self.simulate(job).await?
                } else {
                    self.poll(job, follower).await?
                };
                Ok((job, false))
            }
            _ => {
                if !self.take_lease(job.id)? {
                    // Another process is uploading or downloading this job; watch it.
                    return Ok((job, false));
                }
                let outcome = self.holding_lease(job.id, self.work(job)).await;
                self.library.release_lease(job_id, &self.lease_owner)?;
                outcome.map(|job| (job, true))
            }
        }
    }

    fn take_lease(&self, job_id: Uuid) -> Result<bool> {
        let now = self.clock.now();
        let until = now + chrono::Duration::from_std(self.config().job_lease).map_err(internal)?;
        Ok(self
            .library
            .take_lease(job_id, &self.lease_owner, now, until)?)
    }

    /// Runs `work` while renewing the job's lease, so no other process takes the job over while
    /// this one is alive, and one that died is replaced within a lease period.
    async fn holding_lease<T>(
        &self,
        job_id: Uuid,
        work: impl std::future::Future<Output = Result<T>>,
    ) -> Result<T> {
        let renew = async {
            loop {
                tokio::time::sleep(self.config().job_lease / 3).await;
                match self.take_lease(job_id) {
                    Ok(true) => {}
                    // Another process took the job over while this one was away (suspended,
                    // say): the work stops at once.
                    Ok(false) => return Error::Conflict(LEASE_LOST.into()),
                    Err(error) => return error,
                }
            }
        };
        tokio::select! {
            result = work => result,
            error = renew => Err(error),
        }
    }

    async fn work(&self, job: TrainingJob) -> Result<TrainingJob> {
        match job.state {
            JobState::Preparing => self.prepare_and_submit(job).await,
            // Test mode sends nothing, so a simulated send that was cut off is simply made again.
            JobState::Submitting if job.test_mode => {
                let mut job = job;
                job.state = JobState::Preparing;
                job = self.save(job, JobStep::Preparing)?;
                self.prepare_and_submit(job).await
            }
            // The process stopped between "about to submit" and "fal answered": fal's request
            // history tells whether the request arrived. It is never sent again unasked.
            JobState::Submitting => self.settle_unanswered_submit(job).await,
            JobState::Downloading => self.download(job).await,
            _ => Ok(job),
        }
    }

    async fn prepare_and_submit(&self, mut job: TrainingJob) -> Result<TrainingJob> {
        if job.cancel_requested {
            return self.conclude(job, JobState::Cancelled, None);
        }
        let avatar = self
            .library
            .avatar(job.avatar_id)?
            .ok_or_else(|| Error::NotFound(format!("the avatar of job {} is gone", job.id)))?;
        if !job.test_mode && job.dataset_url.is_none() {
            job = match self.upload_training_set(job.clone()).await {
                Ok(job) => job,
                // Settings the creator must fix: trying again later cannot help. The upload
                // wrote the job meanwhile, so it ends from what the ledger holds now.
                Err(
                    Error::WrongKey(reason)
                    | Error::InvalidConfig(reason)
                    | Error::Rejected(reason),
                ) => {
                    let latest = self.load_job(job.id)?;
                    let failure = JobFailure::Settings { detail: reason };
                    return self.conclude(latest, JobState::Failed, Some(failure));
                }
                // Another process moved the job on: this step stops at the fence.
                Err(error @ Error::Conflict(_)) => return Err(error),
                // Anything else (fal or S3 unreachable, an address gone, a file unreadable)
                // counts as a failed round, so the job cannot be retried for ever.
                Err(error) => {
                    let latest = self.load_job(job.id)?;
                    return self.transfer_failed(latest, Transfer::Upload, error);
                }
            };
        }
        // A cancel may have come in while the set was uploading.
        let latest = self.load_job(job.id)?;
        if latest.cancel_requested {
            return self.conclude(job, JobState::Cancelled, None);
        }
        if job.test_mode {
            job.state = JobState::Submitting;
            job = self.save(job, JobStep::Sending)?;
            let request_id = format!(
                "test_{}_{}",
                &avatar.id.simple().to_string()[..8],
                &Uuid::new_v4().simple().to_string()[..8]
            );
            job.last_log = Some(format!(
                "TEST MODE: skipping submission for avatar {}; generated test request_id {request_id}; simulating {} training, completes in {} s",
                avatar.name,
                job.training_type,
                self.config().mock_training_duration.as_secs()
            ));
            job.request_id = Some(request_id);
            job.state = JobState::Queued;
            job.submitted_at = Some(self.clock.now());
            job.progress = PROGRESS_SUBMITTED;
            return self.save(job, JobStep::Queued { place: None });
        }
        // Everything that can fail without fal is settled before the job is marked as being sent,
        // so a missing key never leaves a job whose fate cannot be told.
        let client = match self.fal_client() {
            Ok(client) => client,
            Err(Error::InvalidConfig(reason)) => {
                let failure = JobFailure::Settings { detail: reason };
                return self.conclude(job, JobState::Failed, Some(failure));
            }
            Err(error) => return Err(error),
        };
        let params: JobParams = serde_json::from_str(&job.params).map_err(internal)?;
        let trainer = self.trainer(job.training_type);
        let input = TrainerSpec {
            endpoint: job.trainer.clone(),
            ..trainer
        }
        .input(
            job.dataset_url.as_deref().unwrap_or_default(),
            TRIGGER_PHRASE,
            fal::TrainingParams {
                steps: params.steps,
                learning_rate: params.learning_rate,
            },
        );
        let webhook = self.webhook_url(job.training_type);
        // The fence before money moves: only the lease holder gets past it. From here on the
        // request counts as spent until fal's answer or its request history says otherwise.
        job.state = JobState::Submitting;
        job.paid_request = true;
        // Until fal answers, this is when sending began: the lookup of a lost answer starts here.
        job.submitted_at = Some(self.clock.now());
        job = self.save(job, JobStep::Sending)?;
        match client
            .submit(&job.trainer, &input, webhook.as_deref())
            .await
        {
            Ok(submitted) => {
                job.request_id = Some(submitted.request_id);
                job.status_url = Some(submitted.status_url);
                job.response_url = Some(submitted.response_url);
                job.cancel_url = Some(submitted.cancel_url);
                job.queue_position = submitted.queue_position;
                job.submitted_at = Some(self.clock.now());
                job.state = JobState::Queued;
                job.progress = PROGRESS_SUBMITTED;
                let place = job.queue_position.map(|position| position + 1);
                self.save(job, JobStep::Queued { place })
            }
            Err(error @ (FalError::WrongKey { .. } | FalError::Invalid { .. })) => {
                // Refused before it was queued: nothing runs, nothing is billed.
                job.paid_request = false;
                let failure = JobFailure::Refused {
                    detail: error.to_string(),
                };
                self.conclude(job, JobState::Failed, Some(failure))
            }
            Err(error) if submit_not_taken(&error) => {
                // fal's answer proves it did not take the job: it waits for a later attempt.
                job.state = JobState::Preparing;
                job.paid_request = false;
                job.submitted_at = None;
                let detail = error.to_string();
                self.save(job, JobStep::NotSent { detail })?;
                Err(error.into())
            }
            // The request left and no answer proves fal did not take it (a gateway's 408, 500,
            // 502 or 504, a timeout, a broken connection, an answer that does not parse): a
            // second submit could be a second paid run, so fal's request history settles it.
            Err(error) => {
                job.last_log = Some(format!("fal's answer was lost: {error}"));
                self.settle_unanswered_submit(job).await
            }
        }
    }

    async fn upload_training_set(&self, mut job: TrainingJob) -> Result<TrainingJob> {
        let (route, _) = self.training_set_route().await?;
        let store = self.dataset_store(route)?;
        let photos: Vec<(avatar_library::Photo, PathBuf)> = self
            .library
            .photos(job.avatar_id)?
            .into_iter()
            .map(|photo| {
                let path = self.library.photo_path(&photo.file_hash, &photo.format);
                (photo, path)
            })
            .collect();
        let zip_path = self.library.dataset_path(job.id);
        // A set packed before a crash or a suspend is whole (it is renamed into place when
        // written) and keeps its upload journal valid, so the upload goes on where it stopped.
        let packed = match std::fs::metadata(&zip_path) {
            Ok(metadata) => metadata.len(),
            Err(_) => {
                job.progress = 2;
                let count = photos.len() as u32;
                job = self.save(job, JobStep::Packing { photos: count })?;
                let files: Vec<PathBuf> = photos.iter().map(|(_, path)| path.clone()).collect();
                let zip_path = zip_path.clone();
                tokio::task::spawn_blocking(move || dataset::pack(&files, None, &zip_path))
                    .await
                    .map_err(internal)??
            }
        };
        job.progress = 5;
        let megabytes = (packed as f64 / 1e5).round() / 10.0;
        let store_kind = store.kind().to_string();
        job = self.save(
            job,
            JobStep::Uploading {
                megabytes,
                store: store_kind,
            },
        )?;
        let prefix = format!("avatars/{}", job.avatar_id);
        if let Some(copies) = self.s3_copies()? {
            // Each photo is kept as its own object too (the guide's `minio_key`): the same
            // upright, metadata-free copy the zip holds, never the original file.
            let copy_path = self.library.dataset_path(job.id).with_extension("photo");
            for (photo, path) in &photos {
                let extension = {
                    let (path, copy_path) = (path.clone(), copy_path.clone());
                    tokio::task::spawn_blocking(move || {
                        dataset::write_training_copy(&path, &copy_path)
                    })
                    .await
                    .map_err(internal)??
                };
                let key = format!("{prefix}/photos/{}.{extension}", photo.file_hash);
                let content_type = if extension == "png" {
                    "image/png"
                } else {
                    "image/jpeg"
                };
                let uploaded = copies.upload(&copy_path, &key, content_type).await;
                remove_if_present(&copy_path)?;
                uploaded?;
                self.library.set_photo_key(photo.id, &key)?;
            }
        }
        let key = format!("{prefix}/training/{}.zip", job.idempotency_key);
        let url = store.upload(&zip_path, &key, "application/zip").await?;
        remove_if_present(&zip_path)?;
        job.storage = Some(store.kind().to_string());
        job.dataset_key = Some(key);
        job.dataset_url = Some(url);
        job.progress = 8;
        self.save(job, JobStep::Uploaded)
    }

    /// One status poll: queue position, progress from the logs, and the end.
    async fn poll(&self, mut job: TrainingJob, follower: &mut Follower) -> Result<TrainingJob> {
        let client = self.fal_client()?;
        let (Some(status_url), Some(cancel_url)) = (job.status_url.clone(), job.cancel_url.clone())
        else {
            return self.conclude(job, JobState::Failed, Some(JobFailure::NoRequest));
        };
        if job.cancel_requested && !follower.cancel_sent {
            // A cancel that fails is sent again at the next poll; the status is read either way,
            // so a job whose cancel keeps failing still reaches its end.
            match client.cancel(&cancel_url).await {
                Ok(_) => follower.cancel_sent = true,
                Err(error) => job.last_log = Some(format!("cancel not confirmed yet: {error}")),
            }
        }
        let status = match client.status(&status_url, true).await {
            Ok(status) => status,
            // A cancelled request that fal then forgets was removed from its queue.
            Err(FalError::NotFound(_)) if job.cancel_requested => {
                return self.conclude(job, JobState::Cancelled, None);
            }
            Err(FalError::NotFound(_)) => {
                return self.conclude(job, JobState::Failed, Some(JobFailure::Forgotten));
            }
            Err(error) if error.is_transient() => {
                let detail = error.to_string();
                return self.save_if_changed(job, JobStep::Unreachable { detail });
            }
            Err(error) => return Err(error.into()),
        };
        if let Some(entry) = status.logs.last() {
            job.last_log = Some(entry.message.clone());
        }
        let step = match status.state {
            QueueState::InQueue => {
                job.state = JobState::Queued;
                job.queue_position = status.queue_position;
                JobStep::Queued {
                    place: status.queue_position.map(|position| position + 1),
                }
            }
            QueueState::InProgress => {
                job.state = JobState::Running;
                job.queue_position = None;
                let steps = status
                    .logs
                    .iter()
                    .rev()
                    .find_map(|entry| fal::step_progress(&entry.message));
                if let Some(steps) = steps {
                    job.progress = progress_at(steps.fraction());
                }
                JobStep::Training {
                    done: steps.map(|steps| steps.done),
                    total: steps.map(|steps| steps.total),
                }
            }
            QueueState::Completed => {
                job.queue_position = None;
                if let Some(error) = status.error {
                    let cancelled = job.cancel_requested
                        || status.error_type.as_deref() == Some("client_cancelled");
                    let state = if cancelled {
                        JobState::Cancelled
                    } else {
                        JobState::Failed
                    };
                    // The status says only "Invalid status code: 422"; the result carries the
                    // app's own words (a validation error's `detail` list).
                    let error = match (cancelled, job.response_url.as_deref()) {
                        (false, Some(response_url)) => match client.result(response_url).await {
                            Err(FalError::Invalid { message, .. }) => message,
                            _ => error,
                        },
                        _ => error,
                    };
                    let failure = JobFailure::FalFailed {
                        kind: status.error_type,
                        detail: error,
                    };
                    return self.conclude(job, state, (!cancelled).then_some(failure));
                }
                job.state = JobState::Downloading;
                job.progress = PROGRESS_TRAINED;
                JobStep::Downloading {
                    after_cancel: job.cancel_requested,
                }
            }
        };
        self.save_if_changed(job, step)
    }

    /// Test mode: progress moves with the clock from the simulated submit to the configured
    /// duration; the job survives restarts because its time is in the ledger.
    async fn simulate(&self, mut job: TrainingJob) -> Result<TrainingJob> {
        if job.cancel_requested {
            return self.conclude(job, JobState::Cancelled, None);
        }
        let started = job.submitted_at.unwrap_or(job.created_at);
        let elapsed = (self.clock.now() - started).to_std().unwrap_or_default();
        let duration = self.config().mock_training_duration;
        let fraction = if duration.is_zero() {
            1.0
        } else {
            elapsed.as_secs_f64() / duration.as_secs_f64()
        };
        if fraction >= 1.0 {
            job.state = JobState::Downloading;
            job.progress = PROGRESS_TRAINED;
            return self.save(
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
        self.save_if_changed(job, step)
    }

    /// Fetches the result as soon as fal reports completion (results expire), downloads the
    /// LoRA file under a partial name, verifies it, and only then moves it into place. The model's
    /// address always comes from fal's own result. A download that keeps failing ends the job
    /// with its reason after [`MAX_TRANSFER_ATTEMPTS`]; one that can never succeed ends it at once.
    async fn download(&self, mut job: TrainingJob) -> Result<TrainingJob> {
        if job.cancel_requested {
            // The training ended at fal; the creator no longer wants its model.
            return self.conclude(job, JobState::Cancelled, None);
        }
        let model_path = self.library.model_path(job.avatar_id, job.id);
        let partial = with_suffix(&model_path, PARTIAL_SUFFIX);
        remove_if_present(&partial)?;
        if let Some(parent) = model_path.parent() {
            std::fs::create_dir_all(parent).map_err(|error| file_error(parent, &error))?;
        }
        let mut expected_size = None;
        if job.test_mode {
            simulated_model(&partial, &job)?;
            self.send_simulated_webhook(&mut job).await;
        } else {
            let client = self.fal_client()?;
            let response_url = job.response_url.clone().unwrap_or_default();
            let output = match self.fetch_result(&client, &response_url).await {
                Ok(result) => fal::LoraOutput::from_result(&result)
                    .map_err(|detail| JobFailure::ResultUnusable { detail }),
                Err(FalError::NotFound(_)) => Err(JobFailure::ResultExpired),
                Err(error @ (FalError::Invalid { .. } | FalError::WrongKey { .. })) => {
                    Err(JobFailure::ResultUnusable {
                        detail: error.to_string(),
                    })
                }
                Err(error) => {
                    return self.transfer_failed(
                        job,
                        Transfer::Download,
                        Error::Remote(error.to_string()),
                    );
                }
            };
            let output = match output {
                Ok(output) => output,
                Err(failure) => return self.conclude(job, JobState::Failed, Some(failure)),
            };
            if !fal::is_fetchable_url(&output.lora_url) {
                let failure = JobFailure::ModelNotHttps {
                    url: output.lora_url,
                };
                return self.conclude(job, JobState::Failed, Some(failure));
            }
            expected_size = output.lora_size;
            if job.model_url.as_deref() != Some(output.lora_url.as_str()) {
                job.model_url = Some(output.lora_url);
                job.config_url = output.config_url;
                job = self.save(
                    job,
                    JobStep::Downloading {
                        after_cancel: false,
                    },
                )?;
            }
            let limit = expected_size.unwrap_or(self.config().max_model_bytes);
            let url = job.model_url.clone().unwrap_or_default();
            let downloaded = client.download(&url, &partial, limit).await;
            if let Err(error) = downloaded {
                remove_if_present(&partial)?;
                return match error {
                    FalError::NotFound(_) => {
                        self.conclude(job, JobState::Failed, Some(JobFailure::ModelGone))
                    }
                    FalError::WrongKey { status } => self.conclude(
                        job,
                        JobState::Failed,
                        Some(JobFailure::ModelPrivate { status }),
                    ),
                    error => self.transfer_failed(
                        job,
                        Transfer::Download,
                        Error::Remote(error.to_string()),
                    ),
                };
            }
        }
        if let Err(reason) = verify_safetensors(&partial, expected_size) {
            remove_if_present(&partial)?;
            return self.transfer_failed(
                job,
                Transfer::Download,
                Error::Remote(format!("the downloaded model is damaged ({reason})")),
            );
        }
        std::fs::rename(&partial, &model_path).map_err(|error| file_error(&model_path, &error))?;
        job.model_path = Some(model_path.display().to_string());
        job.progress = 100;
        if !job.test_mode {
            self.settle_on_fal(&mut job).await;
        }
        self.conclude(job, JobState::Completed, None)
    }

    /// Counts a failed upload round or model download (each already retried the way fal's
    /// clients do): tried again later, or the end of the job once the tries are used up, with
    /// the last reason.
    fn transfer_failed(
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

    /// The result, waiting briefly if fal answers "still in progress" just after COMPLETED.
    async fn fetch_result(
        &self,
        client: &FalClient,
        response_url: &str,
    ) -> std::result::Result<serde_json::Value, FalError> {
        let mut attempts = 0;
        loop {
            match client.result(response_url).await {
                Err(FalError::NotReady) if attempts < 10 => {
                    attempts += 1;
                    tokio::time::sleep(self.config().poll_interval).await;
                }
                other => return other,
            }
        }
    }

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
        let mut request = reqwest::Client::new().post(&url).json(&body);
        // The relay token goes to the relay only, never to another host named as the webhook.
        if same_origin(&url, self.config().relay_url.as_deref())
            && let Some(token) = self.secrets.get(SecretName::RelayToken)
        {
            request = request.bearer_auth(token);
        }
        let line = match request.timeout(Duration::from_secs(10)).send().await {
            Ok(response) => format!("test webhook sent: {}", response.status().as_u16()),
            Err(error) => format!("test webhook failed: {error}"),
        };
        job.last_log = Some(line);
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
            });
            return Ok(job);
        }
        // Another process finished it first: report what it wrote. Or another process moved
        // it on meanwhile: this step stops at the fence.
        let stored = self.load_job(job.id)?;
        if stored.state.is_final() {
            return Ok(stored);
        }
        Err(Error::Conflict(STALE_WRITE.into()))
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
            return Err(Error::Conflict(STALE_WRITE.into()));
        }
        self.load_job(job.id)
    }

    fn save_if_changed(&self, mut job: TrainingJob, step: JobStep) -> Result<TrainingJob> {
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

    /// The fal client of the config in force.
    pub(crate) fn fal_client(&self) -> Result<FalClient> {
        self.fal
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
            .ok_or_else(|| {
                Error::InvalidConfig(
                    "No fal key is set: add it in Settings (it is kept in the system keychain) or set FAL_KEY, or turn on test mode".into(),
                )
            })
    }

    pub(crate) fn fal_client_retrying(&self, retry: fal::RetryPolicy) -> Result<FalClient> {
        Ok(self.fal_client()?.with_retry(retry))
    }

    /// The store for a training set: `s3` (the configured bucket, which fal can fetch from) or
    /// `fal` (fal storage).
    fn dataset_store(&self, route: &str) -> Result<Box<dyn DatasetStore>> {
        Ok(match route {
            "s3" => match self.s3_copies()? {
                Some(store) => Box::new(store),
                None => return Err(Error::InvalidConfig("S3 is not set up".into())),
            },
            _ => Box::new(FalDatasetStore(self.fal_client()?)),
        })
    }

    /// The S3 bucket that keeps the library's copies of training photos, when one is set up.
    fn s3_copies(&self) -> Result<Option<S3DatasetStore>> {
        if let Some(s3) = self.config().s3.as_ref()
            && !dataset::is_encrypted_or_local(&s3.endpoint)
        {
            return Err(Error::InvalidConfig(format!(
                "S3_ENDPOINT {} is plain http to another machine: the photos of faces in the training set would cross the network unencrypted. Use an https address for S3, or leave S3 unset to use fal storage.",
                s3.endpoint
            )));
        }
        Ok(self.s3_store()?.map(S3DatasetStore))
    }

    /// The configured MinIO/S3 bucket, or `None` when training sets go to fal storage.
    pub(crate) fn s3_store(&self) -> Result<Option<s3::S3Store>> {
        let config = self.config();
        let Some(location) = &config.s3 else {
            return Ok(None);
        };
        let secret_key = self.secrets.get(SecretName::S3SecretKey).ok_or_else(|| {
            Error::InvalidConfig(
                "S3 is configured but its secret key is not set: add it in Settings or set S3_SECRET_KEY".into(),
            )
        })?;
        Ok(Some(s3::S3Store::new(s3::S3Settings {
            endpoint: location.endpoint.clone(),
            bucket: location.bucket.clone(),
            region: location.region.clone(),
            access_key: location.access_key.clone(),
            secret_key,
        })))
    }

    /// `FAL_WEBHOOK_URL` with the guide's `training_type` parameter.
    fn webhook_url(&self, training_type: TrainingType) -> Option<String> {
        let config = self.config();
        let base = config.fal_webhook_url.as_deref()?;
        let separator = if base.contains('?') { '&' } else { '?' };
        Some(format!("{base}{separator}training_type={training_type}"))
    }
}

/// The job's count of failed rounds of a transfer.
fn attempts(job: &mut TrainingJob, transfer: Transfer) -> &mut u32 {
    match transfer {
        Transfer::Upload => &mut job.upload_attempts,
        Transfer::Download => &mut job.download_attempts,
    }
}

/// What one follower remembers between polls.
#[derive(Default)]
struct Follower {
    cancel_sent: bool,
}

/// Whether `url` is on the same scheme, host and port as `other`.
fn same_origin(url: &str, other: Option<&str>) -> bool {
    let origin = |text: &str| url::Url::parse(text).ok().map(|url| url.origin());
    match (origin(url), other.and_then(origin)) {
        (Some(url), Some(other)) => url.is_tuple() && url == other,
        _ => false,
    }
}

/// What differs between two plans, named by their fields.
fn plan_changes(confirmed: &TrainingPlan, current: &TrainingPlan) -> String {
    let differences: [(&str, bool); 7] = [
        ("test mode", confirmed.test_mode != current.test_mode),
        ("trainer", confirmed.trainer != current.trainer),
        ("steps", confirmed.steps != current.steps),
        (
            "learning rate",
            confirmed.learning_rate != current.learning_rate,
        ),
        ("storage", confirmed.storage != current.storage),
        ("cost", confirmed.cost_usd != current.cost_usd),
        ("photos", confirmed.photos != current.photos),
    ];
    let changed: Vec<&str> = differences
        .iter()
        .filter(|(_, differs)| *differs)
        .map(|(name, _)| *name)
        .collect();
    if changed.is_empty() {
        "its avatar".to_string()
    } else {
        changed.join(", ")
    }
}

/// Whether a failed submit certainly did not reach fal's queue: the connection was never made,
/// or fal answered in a way only a request it did not take gets (see `FalClient::submit`).
fn submit_not_taken(error: &FalError) -> bool {
    match error {
        FalError::Network { not_sent, .. } => *not_sent,
        FalError::Unavailable { retryable, .. } => *retryable,
        _ => false,
    }
}

fn progress_at(fraction: f64) -> u8 {
    let span = f64::from(PROGRESS_TRAINED - PROGRESS_SUBMITTED);
    PROGRESS_SUBMITTED + (fraction.clamp(0.0, 1.0) * span) as u8
}

fn internal(error: impl std::fmt::Display) -> Error {
    Error::Internal(error.to_string())
}

fn file_error(path: &Path, error: &std::io::Error) -> Error {
    Error::Internal(format!("{}: {error}", path.display()))
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

fn remove_if_present(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Err(error) if error.kind() != std::io::ErrorKind::NotFound => Err(file_error(path, &error)),
        _ => Ok(()),
    }
}

/// A safetensors file: an 8-byte little-endian header length, a JSON object header, then the
/// tensor data the header's offsets cover.
pub fn verify_safetensors(
    path: &Path,
    expected_size: Option<u64>,
) -> std::result::Result<(), String> {
    use std::io::Read;
    let mut file = std::fs::File::open(path).map_err(|error| error.to_string())?;
    let size = file.metadata().map_err(|error| error.to_string())?.len();
    if let Some(expected) = expected_size
        && expected != size
    {
        return Err(format!("{size} bytes where fal announced {expected}"));
    }
    let mut length = [0u8; 8];
    file.read_exact(&mut length)
        .map_err(|_| "shorter than a safetensors header".to_string())?;
    let header_length = u64::from_le_bytes(length);
    if header_length == 0 || header_length > size - 8 || header_length > 100 * 1024 * 1024 {
        return Err(format!(
            "a header length of {header_length} bytes does not fit the file"
        ));
    }
    let mut header = vec![0u8; header_length as usize];
    file.read_exact(&mut header)
        .map_err(|error| error.to_string())?;
    let header: serde_json::Value = serde_json::from_slice(&header)
        .map_err(|error| format!("the header is not JSON: {error}"))?;
    let tensors = header
        .as_object()
        .ok_or("the header is not a JSON object")?;
    let data_length = size - 8 - header_length;
    for (name, tensor) in tensors.iter().filter(|(name, _)| *name != "__metadata__") {
        let end = tensor["data_offsets"][1]
            .as_u64()
            .ok_or_else(|| format!("tensor {name} has no data offsets"))?;
        if end > data_length {
            return Err(format!("tensor {name} runs past the end of the file"));
        }
    }
    Ok(())
}

/// The stand-in model a simulated training ends with: a valid safetensors file with no tensors.
fn simulated_model(path: &Path, job: &TrainingJob) -> Result<()> {
    let header = serde_json::json!({"__metadata__": {
        "format": "pt",
        "avatar_studio_test_mode": "true",
        "request_id": job.request_id.clone().unwrap_or_default(),
    }})
    .to_string();
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(header.as_bytes());
    std::fs::write(path, bytes).map_err(|error| file_error(path, &error))
}
