//! The application core. [`Studio`] is built from a [`Config`] and [`Ports`] (the outside world)
//! and offers every operation the desktop shell and the CLI expose. It knows nothing of Tauri.

mod avatars;
mod background;
mod config;
mod curate;
mod dataset;
mod diagnostics;
mod error;
mod events;
mod fal_pack;
mod generation;
mod import;
mod in_force;
mod keychain;
mod ports;
mod pricing;
mod reference;
mod relay;
mod settings;
mod settle;
#[cfg(any(test, feature = "test-support"))]
mod test_support;
mod tidy;
mod training;
mod views;
mod watch;

use std::sync::{Arc, Mutex, OnceLock, RwLock};

pub use avatars::{DeletedAvatar, MAX_NAME_CHARS, NewAvatar};
pub use background::{CoreEvent, EventSink};
pub use config::{Config, ENV_LIBRARY, S3Location, SETTINGS};
pub use curate::{CurateProgress, CurateResult, Curation, StoredSameness};
pub use dataset::{DatasetStore, FalDatasetStore, S3DatasetStore, pack, training_set_hash};
pub use diagnostics::{Diagnosis, Finding, Service};
pub use error::{Error, ErrorCode, ErrorReport, Result};
pub use fal::{Overrides, Preset};
pub use generation::{
    DEFAULT_GENERATION_ENDPOINT, GenerationPlan, GenerationRequest, GenerationSummary, PACKS, Pack,
};
pub use import::{
    NEAR_DUPLICATE_BITS, NotFitting, PhotoResult, PhotoSetState, Readiness, Verdict, count_inputs,
    judge_portrait_set,
};
pub use keychain::{KeychainSecrets, SecretStatus};
pub use library::{
    Avatar, AvatarId, AvatarStatus, DATABASE_FILE, GALLERY_DIR, GalleryImage, Gender, Generation,
    GenerationState, JobFailure, JobId, JobState, JobStep, Library, MonthSpending, Photo, PhotoId,
    THUMBNAILS_DIR, TrainingJob, TrainingType, Transfer,
};
pub use photos::Code as PhotoCode;
pub use photos::{
    Coverage, CoverageGap, Framing, FramingCounts, Lighting, LightingCounts, LikenessBand, Look,
    MIN_PHOTOS_FOR_ADVICE, Pose, PoseCounts, likeness_band,
};
pub use ports::{
    Clock, Notice, Notifier, Ports, SecretName, SecretSource, Secrets, SilentNotifier, Sleep,
    SystemClock,
};
#[cfg(any(test, feature = "test-support"))]
pub use test_support::{ManualClock, MemorySecrets, RecordingNotifier, TestStudio};

use in_force::{InForce, S3Access};
pub use pricing::Spending;
pub use reference::{AvatarRef, PhotoRef, Reference};
pub use relay::{
    ConnectionCheck, ConnectionProblem, ConnectionReport, ConnectionStep, UpdateChannel,
};
pub use settings::{GuardedChange, Setting, SettingsView};
pub use training::{PresetInfo, TRIGGER_PHRASE, TrainingChoices, TrainingPlan, verify_safetensors};
pub use views::{AvatarView, GalleryImageView, GenerationView, JobView, PhotoView};
pub use watch::{SETTLE_TIME, WatchProblem, WatchProblemCode, WatchedFolder};

/// The application object: one per open library.
pub struct Studio {
    /// The environment's config as given to [`Studio::open`]; stored settings are laid under it.
    environment: Config,
    /// The config and clients in force now: replaced as a whole when settings or a key change.
    in_force: RwLock<Arc<InForce>>,
    /// Why the stored settings could not be used, when they could not (the environment's
    /// config is in force then).
    settings_problem: Mutex<Option<String>>,
    /// Held while settings are saved or the config rebuilt, so changes apply in order.
    settings_change: Mutex<()>,
    library: Library,
    clock: Arc<dyn Clock>,
    secrets: Arc<dyn Secrets>,
    notifier: Arc<dyn Notifier>,
    /// Names this process in job leases.
    lease_owner: String,
    /// Loaded on first use: the face models take a moment, and many commands never need them.
    checker: OnceLock<photos::Checker>,
    /// Which channel brought training news last.
    channel: Mutex<UpdateChannel>,
    /// Woken when the relay moved a job, so followers look at once instead of at their next poll.
    news: tokio::sync::Notify,
    /// Woken when the config in force changes, so a relay set in Settings is followed at once.
    config_changed: tokio::sync::Notify,
    /// Trainer prices read from fal's pricing API.
    prices: pricing::PriceCache,
    /// The app's background work, once started.
    background: OnceLock<Arc<background::Background>>,
}

impl Studio {
    pub fn open(config: Config, ports: Ports) -> Result<Self> {
        let library = Library::open(&config.library_dir)?;
        let studio = Self {
            in_force: RwLock::new(Arc::new(InForce::bare(config.clone()))),
            environment: config,
            settings_problem: Mutex::new(None),
            settings_change: Mutex::new(()),
            library,
            clock: ports.clock,
            secrets: ports.secrets,
            notifier: ports.notifier,
            lease_owner: format!("{}-{}", std::process::id(), uuid::Uuid::new_v4().simple()),
            checker: OnceLock::new(),
            channel: Mutex::new(UpdateChannel::Polling),
            news: tokio::sync::Notify::new(),
            config_changed: tokio::sync::Notify::new(),
            prices: pricing::PriceCache::default(),
            background: OnceLock::new(),
        };
        studio.reload_config()?;
        Ok(studio)
    }

    /// The settings in force now, replaced as a whole when they change.
    pub fn config(&self) -> Arc<Config> {
        self.in_force().config.clone()
    }

    /// The config and clients in force now, as one snapshot: an operation that needs both
    /// takes it once.
    pub(crate) fn in_force(&self) -> Arc<InForce> {
        self.in_force
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// Where the UI finds a stored photo's thumbnail.
    pub fn thumbnail_path(&self, photo: &Photo) -> std::path::PathBuf {
        self.library.thumbnail_path(&photo.file_hash)
    }

    /// Loads the face models now rather than on the first photo, so a first drop is answered at
    /// full speed. Safe to call from any thread, any number of times.
    pub fn prepare_photo_checks(&self) -> Result<()> {
        self.checker().map(drop)
    }

    /// The photo checker with the limits in force now; the face models load once.
    fn checker(&self) -> Result<photos::Checker> {
        let limits = photos::Limits {
            max_file_size: self.config().photo_max_size,
            ..photos::Limits::default()
        };
        if let Some(checker) = self.checker.get() {
            return Ok(checker.with_limits(limits));
        }
        let checker = photos::Checker::new(limits.clone())
            .map_err(|error| Error::Internal(error.to_string()))?;
        Ok(self.checker.get_or_init(|| checker).with_limits(limits))
    }
}
