//! Training on fal: plan (preset, estimate), start (a ledger row before anything leaves the
//! machine), and drive a job through pack → upload → submit → follow → download → verify. Every
//! step reads the job from the ledger and writes it back, so a killed process loses nothing: the
//! next start of the app or the CLI picks the job up where it stopped. Test mode simulates fal.

use std::path::{Path, PathBuf};
use std::time::Duration;

use fal::{FalClient, FalError, Overrides, Preset, QueueState, TrainerKind, TrainerSpec};
use library::{JobFailure, JobInsert, JobState, JobStep, PARTIAL_SUFFIX, TrainingJob, Transfer};
use serde::Serialize;
use ts_rs::TS;
use uuid::Uuid;

use crate::dataset::{self, DatasetStore, FalDatasetStore, S3DatasetStore};
use crate::error::Fence;
use crate::{AvatarId, AvatarRef, Error, InForce, JobId, Notice, Result, Studio, TrainingType};

mod driver;
mod ledger;
mod simulate;
mod steps;
mod trainer;

use trainer::{FalTrainer, Fetched, SimulatedTrainer, Trainer};

/// The trigger phrase the LoRA learns; prompts name the avatar with it.
pub const TRIGGER_PHRASE: &str = "TOK";
/// Why a step stopped at a fence; the step's caller follows the job from the library instead.
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
    pub avatar_id: AvatarId,
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
    /// fal's figure and the documented table's differ by more than three times: both are
    /// shown, and `cost_usd` is the higher.
    pub price_unverified: bool,
    /// fal's figure, when unverified.
    pub cost_usd_fal: Option<f64>,
    /// The documented table's figure, when unverified.
    pub cost_usd_table: Option<f64>,
    /// This month's paid requests and confirmed starts so far, before this one.
    pub spent_this_month_usd: f64,
    pub monthly_budget_usd: Option<f64>,
}

/// One preset of one avatar type, with what it trains and how long the guide says it takes.
#[derive(Debug, Clone, PartialEq, Serialize, TS)]
pub struct PresetInfo {
    pub training_type: TrainingType,
    #[ts(type = "Preset")]
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

    /// A new job that follows the request an earlier, unsettled job sent, which fal's history
    /// now lists: it costs what was confirmed for that request, the charge moves to it (so the
    /// ledger counts the request once), and nothing is uploaded or sent.
    fn adopt_earlier_request(
        &self,
        mut job: TrainingJob,
        earlier: TrainingJob,
        record: fal::RequestRecord,
    ) -> Result<TrainingJob> {
        let client = self.fal_client()?;
        job.confirmed_cost_usd = earlier.confirmed_cost_usd;
        job.price_source = earlier.price_source.clone();
        // No new money: the budget already counts the earlier job's request.
        match self.library.insert_job(&job, None)? {
            JobInsert::Inserted => {}
            _ => {
                return Err(Error::Conflict(
                    "the avatar is already training; wait for it to end or cancel it first".into(),
                ));
            }
        }
        let submitted = client.adopt(&job.trainer, &record.request_id);
        job.request_id = Some(submitted.request_id);
        job.status_url = Some(submitted.status_url);
        job.response_url = Some(submitted.response_url);
        job.cancel_url = Some(submitted.cancel_url);
        job.storage = earlier.storage;
        job.dataset_key = earlier.dataset_key;
        job.dataset_url = earlier.dataset_url;
        job.submitted_at = Some(record.sent_at);
        job.paid_request = true;
        job.state = JobState::Queued;
        job.progress = PROGRESS_SUBMITTED;
        // A new job is in a leased state: only the lease holder may move it on.
        let job_id = job.id;
        if !self.take_lease(job_id)? {
            return Err(Error::Fenced(Fence::StaleWrite));
        }
        let saved = self.save(job, JobStep::Adopted);
        self.library.release_lease(job_id, &self.lease_owner)?;
        let job = saved?;
        // Counted twice rather than never, should the process stop between the two writes.
        self.library.hand_over_charge(earlier.id)?;
        self.follow_in_background(job.id);
        Ok(job)
    }

    /// Refuses a trainer id (`flux1-portrait`, `flux1-fast`) that does not train this avatar's
    /// type; each type has one trainer for now.
    pub fn check_trainer<'a>(
        &self,
        avatar_reference: impl Into<AvatarRef<'a>>,
        trainer_id: &str,
    ) -> Result<()> {
        let avatar = self.avatar(avatar_reference)?;
        let Some(kind) = fal::TrainerKind::from_id(trainer_id) else {
            let known: Vec<&str> = fal::TrainerKind::ALL.iter().map(|kind| kind.id()).collect();
            return Err(Error::InvalidInput(format!(
                "{trainer_id:?} is not a trainer; the trainers are {}",
                known.join(", ")
            )));
        };
        let own = self.trainer(avatar.training_type).kind;
        if kind != own {
            return Err(Error::InvalidInput(format!(
                "{trainer_id} does not train {} avatars like {}; their trainer is {}",
                avatar.training_type,
                avatar.name,
                own.id()
            )));
        }
        Ok(())
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
    pub async fn plan_training<'a>(
        &self,
        avatar_reference: impl Into<AvatarRef<'a>>,
        preset: Preset,
        overrides: Overrides,
    ) -> Result<TrainingPlan> {
        let avatar = self.avatar(avatar_reference)?;
        let trainer = self.trainer(avatar.training_type);
        let params = trainer
            .params(preset, overrides)
            .map_err(Error::InvalidInput)?;
        let estimate = trainer.estimate(params);
        // One snapshot: the plan's mode, route, price and budget come from one change.
        let in_force = self.in_force();
        let test_mode = in_force.config.test_mode;
        let (storage, storage_notice) = self.training_set_route(&in_force).await?;
        let cost = self
            .training_cost(
                &in_force,
                &trainer.endpoint,
                params.steps,
                estimate.cost_usd,
            )
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
            cost_usd: cost.usd,
            test_mode,
            photos: avatar.photo_count,
            storage: storage.to_string(),
            storage_notice: storage_notice.map(str::to_string),
            price_source: cost.source.as_str().to_string(),
            price_unverified: cost.unverified.is_some(),
            cost_usd_fal: cost.unverified.map(|(fal, _)| fal),
            cost_usd_table: cost.unverified.map(|(_, table)| table),
            spent_this_month_usd: crate::pricing::dollars(
                self.library.committed_in_month(&this_month)?,
            ),
            monthly_budget_usd: in_force.config.monthly_budget_usd,
        })
    }

    /// Where fal will fetch the training set from, and why when it is not the S3 the settings
    /// name: fal's runners refuse addresses that are not on the internet (fal-protocol.md
    /// §7.1), so a MinIO on this machine or the local network keeps the library's copies while
    /// the set itself goes through fal storage, unless the creator chose S3 only.
    async fn training_set_route(
        &self,
        in_force: &InForce,
    ) -> Result<(&'static str, Option<&'static str>)> {
        let config = &in_force.config;
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
            .plan_training(confirmed.avatar_id, preset, overrides)
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
        // Fail before writing a job that could never be submitted.
        self.trainer_of(plan.test_mode).ready(self, &plan.storage)?;
        // An earlier submit of this avatar whose fate was not proven is asked about first: when
        // fal now lists it, the new job follows that request instead of paying for another.
        let adopting = if plan.test_mode {
            None
        } else {
            self.recheck_unsettled(plan.avatar_id).await?
        };
        let now = self.clock.now();
        let params = JobParams {
            steps: plan.steps,
            learning_rate: plan.learning_rate,
        };
        let job = TrainingJob {
            id: JobId::new(),
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
        if let Some((earlier, record)) = adopting {
            return self.adopt_earlier_request(job, earlier, record);
        }
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
    pub fn training_status<'a>(
        &self,
        avatar_reference: impl Into<AvatarRef<'a>>,
    ) -> Result<Option<TrainingJob>> {
        let avatar = self.avatar(avatar_reference)?;
        Ok(self.library.latest_job(avatar.id)?)
    }

    /// The avatar's newest trained model file.
    pub fn model_file<'a>(
        &self,
        avatar_reference: impl Into<AvatarRef<'a>>,
    ) -> Result<std::path::PathBuf> {
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
    pub fn request_cancel<'a>(
        &self,
        avatar_reference: impl Into<AvatarRef<'a>>,
    ) -> Result<TrainingJob> {
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

    fn load_job(&self, job_id: JobId) -> Result<TrainingJob> {
        self.library
            .job(job_id)?
            .ok_or_else(|| Error::NotFound(format!("there is no training job {job_id}")))
    }

    /// The fal client of the config in force.
    pub(crate) fn fal_client(&self) -> Result<FalClient> {
        self.in_force().fal_client()
    }

    pub(crate) fn fal_client_retrying(&self, retry: fal::RetryPolicy) -> Result<FalClient> {
        Ok(self.fal_client()?.with_retry(retry))
    }

    /// The configured MinIO/S3 bucket, or `None` when training sets go to fal storage.
    pub(crate) fn s3_store(&self) -> Result<Option<s3::S3Store>> {
        self.in_force().s3_store()
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
pub(crate) struct Follower {
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
pub(crate) fn submit_not_taken(error: &FalError) -> bool {
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

/// The store for a training set under `in_force`: `s3` (the configured bucket, which fal can
/// fetch from) or `fal` (fal storage).
fn dataset_store(in_force: &InForce, route: &str) -> Result<Box<dyn DatasetStore>> {
    Ok(match route {
        "s3" => match s3_copies(in_force)? {
            Some(store) => Box::new(store),
            None => return Err(Error::InvalidConfig("S3 is not set up".into())),
        },
        _ => Box::new(FalDatasetStore(in_force.fal_client()?)),
    })
}

/// The S3 bucket that keeps the library's copies of training photos under `in_force`, when one
/// is set up.
fn s3_copies(in_force: &InForce) -> Result<Option<S3DatasetStore>> {
    if let Some(s3) = in_force.config.s3.as_ref()
        && !dataset::is_encrypted_or_local(&s3.endpoint)
    {
        return Err(Error::InvalidConfig(format!(
            "S3_ENDPOINT {} is plain http to another machine: the photos of faces in the training set would cross the network unencrypted. Use an https address for S3, or leave S3 unset to use fal storage.",
            s3.endpoint
        )));
    }
    Ok(in_force.s3_store()?.map(S3DatasetStore))
}
