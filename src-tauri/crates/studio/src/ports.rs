//! The outside world, behind small traits with a real implementation; the fakes tests use are
//! in `test_support`.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::Serialize;
use ts_rs::TS;

use crate::{AvatarId, JobState};

/// A wait on a [`Clock`].
pub type Sleep = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

/// Where the application reads the time and waits; business logic never calls `Utc::now()` or
/// starts a timer itself, so tests can move time by hand.
pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
    /// Ends once `duration` has passed on this clock.
    fn sleep(&self, duration: std::time::Duration) -> Sleep;
    /// Blocks this thread until `duration` has passed on this clock: the wait of a thread that is
    /// not async (a folder watcher).
    fn pause(&self, duration: std::time::Duration);
}

pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }

    fn sleep(&self, duration: std::time::Duration) -> Sleep {
        Box::pin(tokio::time::sleep(duration))
    }

    fn pause(&self, duration: std::time::Duration) {
        std::thread::sleep(duration);
    }
}

/// The secrets the app needs; they never live in the library or the config.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SecretName {
    FalKey,
    S3SecretKey,
    RelayToken,
}

impl SecretName {
    pub const ALL: [SecretName; 3] = [Self::FalKey, Self::S3SecretKey, Self::RelayToken];

    /// How the keychain and the CLI name it.
    pub fn id(self) -> &'static str {
        match self {
            Self::FalKey => "fal-key",
            Self::S3SecretKey => "s3-secret-key",
            Self::RelayToken => "relay-token",
        }
    }

    pub fn parse(id: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|name| name.id() == id)
    }

    /// The guide's environment variables, in order of preference.
    pub fn env_vars(self) -> &'static [&'static str] {
        match self {
            Self::FalKey => &["FAL_API_KEY", "FAL_KEY"],
            Self::S3SecretKey => &["S3_SECRET_KEY"],
            Self::RelayToken => &["RELAY_TOKEN"],
        }
    }
}

/// Where secrets are kept: the environment (the guide's variables, which win) and a store.
pub trait Secrets: Send + Sync {
    fn get(&self, name: SecretName) -> Option<String>;
    /// Keeps a secret in the store. Never written anywhere else.
    fn set(&self, name: SecretName, value: &str) -> crate::Result<()>;
    /// Forgets a stored secret; forgetting one that is not there is fine.
    fn delete(&self, name: SecretName) -> crate::Result<()>;
    /// Where the secret in use comes from, or why the store cannot be read.
    fn source(&self, name: SecretName) -> crate::Result<Option<SecretSource>>;
    /// Reaches the store itself, whatever the environment holds, and says why it cannot.
    fn reach_store(&self) -> crate::Result<()>;
}

/// Where a secret in use comes from (its value is never shown back).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, ts_rs::TS)]
#[serde(rename_all = "snake_case")]
pub enum SecretSource {
    Environment,
    Keychain,
}

/// The secret from the guide's environment variables, if one is set.
pub fn secret_from_env(name: SecretName) -> Option<String> {
    name.env_vars().iter().find_map(|var| {
        std::env::var(var)
            .ok()
            .filter(|value| !value.trim().is_empty())
    })
}

/// A training's or a sample pack's end, told to the creator.
#[derive(Debug, Clone, PartialEq, Serialize, TS)]
pub struct Notice {
    pub avatar_id: AvatarId,
    pub avatar_name: String,
    pub outcome: JobState,
    /// Why it failed, when it did.
    pub failure: Option<library::JobFailure>,
    /// For a sample pack, how many images it brought; `None` for a training.
    pub pack_images: Option<u32>,
}

/// Raises desktop notifications.
pub trait Notifier: Send + Sync {
    fn notify(&self, notice: &Notice);
}

/// Tells no one: the CLI reports on its own output.
pub struct SilentNotifier;

impl Notifier for SilentNotifier {
    fn notify(&self, _notice: &Notice) {}
}

/// Every outside system the application talks to.
pub struct Ports {
    pub clock: Arc<dyn Clock>,
    pub secrets: Arc<dyn Secrets>,
    pub notifier: Arc<dyn Notifier>,
}

impl Ports {
    /// The real outside world, with secrets from the environment and the OS keychain, and no
    /// notifications.
    pub fn system() -> Self {
        Self {
            clock: Arc::new(SystemClock),
            secrets: Arc::new(crate::keychain::KeychainSecrets::default()),
            notifier: Arc::new(SilentNotifier),
        }
    }
}
