//! Settings, read from the guide's environment variables over the values chosen in the app's
//! Settings screen. Secrets are not part of the config: only whether one is present, which decides
//! the default of test mode.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use crate::{Error, Preset, Result};

/// The variables the Settings screen may store. Everything else (fal's hosts, timings) is for
/// operators and tests, and comes from the environment only.
pub const SETTINGS: &[&str] = &[
    "FAL_TRAINING_TEST_MODE",
    "FAL_MOCK_TRAINING_DURATION",
    "FAL_ENABLE_WEBHOOK_SIMULATION",
    "FAL_WEBHOOK_URL",
    "RELAY_URL",
    "S3_ENDPOINT",
    "S3_BUCKET",
    "S3_REGION",
    "S3_ACCESS_KEY",
    "AVATAR_TRAINING_SET_S3_ONLY",
    "AVATAR_KEEP_S3_UPLOADS",
    "AVATAR_MONTHLY_BUDGET_USD",
    "AVATAR_MIN_PHOTOS",
    "AVATAR_MAX_PHOTOS",
    "PHOTO_MAX_SIZE",
    "AVATAR_DEFAULT_PRESET",
    "AVATAR_LANGUAGE",
];

/// The languages the UI speaks.
pub const LANGUAGES: [&str; 2] = ["en", "ru"];

/// The variables holding fal's key: the config records only whether one is present.
const FAL_KEY_VARS: [&str; 2] = ["FAL_API_KEY", "FAL_KEY"];

/// Points the app and the CLI at a library folder other than the platform default.
pub const ENV_LIBRARY: &str = "AVATAR_STUDIO_LIBRARY";

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The folder holding the database and the photo files.
    pub library_dir: PathBuf,
    /// No request reaches fal; training is simulated (`FAL_TRAINING_TEST_MODE`).
    pub test_mode: bool,
    /// Whether `FAL_TRAINING_TEST_MODE` was given; otherwise a fal key anywhere turns it off.
    pub test_mode_chosen: bool,
    /// The simulator delivers its webhooks through the real webhook path (`FAL_ENABLE_WEBHOOK_SIMULATION`).
    pub webhook_simulation: bool,
    /// How long a simulated training takes (`FAL_MOCK_TRAINING_DURATION`, seconds).
    pub mock_training_duration: Duration,
    /// fal's LoRA inference endpoint for sample packs (`FAL_GENERATION_ENDPOINT`).
    pub generation_endpoint: String,
    /// Where fal should deliver webhooks (`FAL_WEBHOOK_URL`).
    pub fal_webhook_url: Option<String>,
    /// The webhook relay whose feed the app follows (`RELAY_URL`); its token is a secret.
    pub relay_url: Option<String>,
    /// Accepted photos an avatar needs before training (`AVATAR_MIN_PHOTOS`).
    pub min_photos: u32,
    /// Accepted photos an avatar may hold (`AVATAR_MAX_PHOTOS`).
    pub max_photos: u32,
    /// Largest photo file accepted, in bytes (`PHOTO_MAX_SIZE`).
    pub photo_max_size: u64,
    /// fal's queue and REST hosts (`FAL_QUEUE_URL`, `FAL_REST_URL`).
    pub fal_endpoints: fal::Endpoints,
    /// Trainer endpoint ids, when not fal's defaults (`FAL_PORTRAIT_TRAINER`, `FAL_STYLE_TRAINER`).
    pub portrait_trainer: Option<String>,
    pub style_trainer: Option<String>,
    /// The library's copies of training photos and sets; training sets go to fal from here when
    /// fal can fetch from it, else through fal storage.
    pub s3: Option<S3Location>,
    /// Refuse to send a training set through fal storage: only S3 will do
    /// (`AVATAR_TRAINING_SET_S3_ONLY`).
    pub training_set_s3_only: bool,
    /// Keep the training set and photo copies in S3 after a training ends
    /// (`AVATAR_KEEP_S3_UPLOADS`); by default they are deleted then.
    pub keep_s3_uploads: bool,
    /// Paid starts that would take this month's spending past it are refused
    /// (`AVATAR_MONTHLY_BUDGET_USD`).
    pub monthly_budget_usd: Option<f64>,
    /// The first pause between status polls (`FAL_POLL_INTERVAL_MS`); it grows while nothing changes.
    pub poll_interval: Duration,
    /// Pauses between retries of a failed call start here (`FAL_RETRY_BASE_MS`).
    pub retry_base: Duration,
    /// How long one process may work on a job's upload or download before another may take over
    /// (`AVATAR_STUDIO_JOB_LEASE_SECS`); the worker renews it while alive.
    pub job_lease: Duration,
    /// How long a transfer (upload, model download) may go without a byte before it is given
    /// up and tried again (`FAL_READ_TIMEOUT_MS`; fal's own downloader allows 30 s).
    pub read_timeout: Duration,
    /// How long fal's request history may take to list a request it received
    /// (`FAL_HISTORY_DELAY_MS`, 10 min): a lost submit not listed by then was not received.
    pub history_delay: Duration,
    /// The largest model file downloaded when fal announces no size (`AVATAR_MAX_MODEL_BYTES`).
    pub max_model_bytes: u64,
    /// The preset the training panel starts on (`AVATAR_DEFAULT_PRESET`).
    pub default_preset: Preset,
    /// The UI's language (`AVATAR_LANGUAGE`); none follows the system's.
    pub language: Option<String>,
    /// What the environment said, so stored settings can be laid under it again later.
    /// Secret variables are never recorded here.
    environment: BTreeMap<String, String>,
    fal_key_in_environment: bool,
}

/// A MinIO/S3 bucket, without the secret key (that comes from the keychain or `S3_SECRET_KEY`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Location {
    pub endpoint: String,
    pub bucket: String,
    pub region: String,
    pub access_key: String,
}

impl Config {
    /// Reads the process environment. `library_override` is the `--library` flag, which wins
    /// over `AVATAR_STUDIO_LIBRARY`, which wins over the platform's data directory.
    pub fn from_env(library_override: Option<PathBuf>) -> Result<Self> {
        Self::from_lookup(library_override, |name| std::env::var(name).ok())
    }

    pub fn from_lookup(
        library_override: Option<PathBuf>,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Self> {
        let environment = RefCell::new(BTreeMap::new());
        let var = |name: &str| {
            let value = lookup(name).filter(|value| !value.trim().is_empty());
            if let Some(value) = &value
                && !FAL_KEY_VARS.contains(&name)
            {
                environment
                    .borrow_mut()
                    .insert(name.to_string(), value.clone());
            }
            value
        };
        let library_dir = match library_override.or_else(|| var(ENV_LIBRARY).map(PathBuf::from)) {
            Some(dir) => dir,
            None => default_library_dir()?,
        };
        // Every setting is asked for, so each one the environment sets is known to override,
        // even when the value is not needed (S3's access key without an endpoint).
        for name in SETTINGS {
            var(name);
        }
        let has_fal_key = var("FAL_API_KEY").or_else(|| var("FAL_KEY")).is_some();
        let chosen_test_mode = var("FAL_TRAINING_TEST_MODE");
        let test_mode_chosen = chosen_test_mode.is_some();
        let test_mode = match chosen_test_mode {
            Some(value) => parse_bool("FAL_TRAINING_TEST_MODE", &value)?,
            None => !has_fal_key,
        };
        let webhook_simulation = match var("FAL_ENABLE_WEBHOOK_SIMULATION") {
            Some(value) => parse_bool("FAL_ENABLE_WEBHOOK_SIMULATION", &value)?,
            None => false,
        };
        let flag = |name: &str| match var(name) {
            Some(value) => parse_bool(name, &value),
            None => Ok(false),
        };
        let number = |name: &str, default: u64| match var(name) {
            Some(value) => value.trim().parse::<u64>().map_err(|_| {
                Error::InvalidConfig(format!("{name} must be a whole number, not {value:?}"))
            }),
            None => Ok(default),
        };
        let default_preset = match var("AVATAR_DEFAULT_PRESET") {
            Some(name) => Preset::parse(name.trim()).ok_or_else(|| {
                Error::InvalidConfig(format!(
                    "AVATAR_DEFAULT_PRESET must be fast, balanced or quality, not {name:?}"
                ))
            })?,
            None => Preset::Balanced,
        };
        let language = match var("AVATAR_LANGUAGE") {
            Some(code) if LANGUAGES.contains(&code.trim()) => Some(code.trim().to_string()),
            Some(code) => {
                return Err(Error::InvalidConfig(format!(
                    "AVATAR_LANGUAGE must be one of {}, not {code:?}",
                    LANGUAGES.join(", ")
                )));
            }
            None => None,
        };
        let mut config = Self {
            library_dir,
            test_mode,
            test_mode_chosen,
            webhook_simulation,
            mock_training_duration: Duration::from_secs(number("FAL_MOCK_TRAINING_DURATION", 30)?),
            generation_endpoint: var("FAL_GENERATION_ENDPOINT")
                .unwrap_or_else(|| crate::generation::DEFAULT_GENERATION_ENDPOINT.to_string()),
            fal_webhook_url: var("FAL_WEBHOOK_URL").map(webhook_url).transpose()?,
            relay_url: var("RELAY_URL").map(relay_url).transpose()?,
            min_photos: to_u32("AVATAR_MIN_PHOTOS", number("AVATAR_MIN_PHOTOS", 10)?)?,
            max_photos: to_u32("AVATAR_MAX_PHOTOS", number("AVATAR_MAX_PHOTOS", 20)?)?,
            photo_max_size: number("PHOTO_MAX_SIZE", 20 * 1024 * 1024)?,
            fal_endpoints: fal::Endpoints {
                queue_url: var("FAL_QUEUE_URL")
                    .unwrap_or_else(|| fal::Endpoints::default().queue_url),
                rest_url: var("FAL_REST_URL").unwrap_or_else(|| fal::Endpoints::default().rest_url),
                platform_url: var("FAL_PLATFORM_URL")
                    .unwrap_or_else(|| fal::Endpoints::default().platform_url),
            },
            portrait_trainer: var("FAL_PORTRAIT_TRAINER"),
            style_trainer: var("FAL_STYLE_TRAINER"),
            s3: s3_location(&var)?,
            training_set_s3_only: flag("AVATAR_TRAINING_SET_S3_ONLY")?,
            keep_s3_uploads: flag("AVATAR_KEEP_S3_UPLOADS")?,
            monthly_budget_usd: var("AVATAR_MONTHLY_BUDGET_USD")
                .map(|value| budget(&value))
                .transpose()?,
            poll_interval: Duration::from_millis(number("FAL_POLL_INTERVAL_MS", 1000)?.max(10)),
            retry_base: Duration::from_millis(number("FAL_RETRY_BASE_MS", 1000)?),
            job_lease: Duration::from_secs(number("AVATAR_STUDIO_JOB_LEASE_SECS", 30)?.max(1)),
            read_timeout: Duration::from_millis(number("FAL_READ_TIMEOUT_MS", 30_000)?.max(100)),
            history_delay: Duration::from_millis(number("FAL_HISTORY_DELAY_MS", 600_000)?),
            max_model_bytes: number("AVATAR_MAX_MODEL_BYTES", 2 * 1024 * 1024 * 1024)?,
            default_preset,
            language,
            environment: BTreeMap::new(),
            fal_key_in_environment: has_fal_key,
        };
        config.environment = environment.into_inner();
        if config.min_photos == 0 || config.min_photos > config.max_photos {
            return Err(Error::InvalidConfig(format!(
                "AVATAR_MIN_PHOTOS ({}) must be at least 1 and at most AVATAR_MAX_PHOTOS ({})",
                config.min_photos, config.max_photos
            )));
        }
        Ok(config)
    }

    /// This config's environment over `stored` settings (names outside [`SETTINGS`] are
    /// ignored), checked as a whole: a value that fails names its variable.
    pub fn with_settings(&self, stored: &BTreeMap<String, String>) -> Result<Self> {
        let mut layered = Self::from_lookup(Some(self.library_dir.clone()), |name| {
            if FAL_KEY_VARS.contains(&name) {
                return self.fal_key_in_environment.then(|| "present".to_string());
            }
            self.environment.get(name).cloned().or_else(|| {
                SETTINGS
                    .contains(&name)
                    .then(|| stored.get(name).cloned())
                    .flatten()
            })
        })?;
        // What the environment said stays apart from what the library supplied.
        layered.environment = self.environment.clone();
        Ok(layered)
    }

    /// A fal key kept in the keychain counts like one in the environment: it ends test mode
    /// unless test mode was chosen. `has_key` is asked only when that could matter.
    pub fn counting_keychain_key(mut self, has_key: impl FnOnce() -> bool) -> Self {
        if self.test_mode && !self.test_mode_chosen && has_key() {
            self.test_mode = false;
        }
        self
    }

    /// This config as if the environment set none of the settings (operators' variables and
    /// the fal key's presence stay).
    pub fn without_environment(&self) -> Self {
        let mut environment = self.environment.clone();
        environment.retain(|name, _| !SETTINGS.contains(&name.as_str()));
        Self {
            environment,
            ..self.clone()
        }
    }

    /// The environment's value for a setting, which wins over the stored one.
    pub fn from_environment(&self, name: &str) -> Option<&str> {
        self.environment.get(name).map(String::as_str)
    }

    /// A setting's value in force, as the text its variable would hold.
    pub fn in_force(&self, name: &str) -> Option<String> {
        let s3 = self.s3.as_ref();
        match name {
            "FAL_TRAINING_TEST_MODE" => Some(self.test_mode.to_string()),
            "FAL_MOCK_TRAINING_DURATION" => Some(self.mock_training_duration.as_secs().to_string()),
            "FAL_ENABLE_WEBHOOK_SIMULATION" => Some(self.webhook_simulation.to_string()),
            "FAL_WEBHOOK_URL" => self.fal_webhook_url.clone(),
            "RELAY_URL" => self.relay_url.clone(),
            "S3_ENDPOINT" => s3.map(|s3| s3.endpoint.clone()),
            "S3_BUCKET" => s3.map(|s3| s3.bucket.clone()),
            "S3_REGION" => s3.map(|s3| s3.region.clone()),
            "S3_ACCESS_KEY" => s3.map(|s3| s3.access_key.clone()),
            "AVATAR_TRAINING_SET_S3_ONLY" => Some(self.training_set_s3_only.to_string()),
            "AVATAR_KEEP_S3_UPLOADS" => Some(self.keep_s3_uploads.to_string()),
            "AVATAR_MONTHLY_BUDGET_USD" => self.monthly_budget_usd.map(|budget| budget.to_string()),
            "AVATAR_MIN_PHOTOS" => Some(self.min_photos.to_string()),
            "AVATAR_MAX_PHOTOS" => Some(self.max_photos.to_string()),
            "PHOTO_MAX_SIZE" => Some(self.photo_max_size.to_string()),
            "AVATAR_DEFAULT_PRESET" => Some(self.default_preset.as_str().to_string()),
            "AVATAR_LANGUAGE" => self.language.clone(),
            _ => None,
        }
    }
}

/// The relay receives the relay token with every request, so it must be reached over HTTPS;
/// plain HTTP is allowed only on this machine (a relay under test, or behind a local proxy).
fn relay_url(url: String) -> Result<String> {
    secure_url(
        "RELAY_URL",
        url,
        "the relay token travels with every request",
    )
}

/// fal posts every training's outcome there, and test mode its simulated events: the same rule
/// as the relay's.
fn webhook_url(url: String) -> Result<String> {
    secure_url("FAL_WEBHOOK_URL", url, "training results travel to it")
}

/// `url` without a trailing slash when it is `https`, or `http` on this machine.
fn secure_url(name: &str, url: String, why: &str) -> Result<String> {
    let url = url.trim().trim_end_matches('/').to_string();
    let parsed = url::Url::parse(&url).map_err(|error| {
        Error::InvalidConfig(format!("{name} is not a web address ({error}): {url:?}"))
    })?;
    let loopback = match parsed.host() {
        Some(url::Host::Domain(name)) => name == "localhost",
        Some(url::Host::Ipv4(address)) => address.is_loopback(),
        Some(url::Host::Ipv6(address)) => address.is_loopback(),
        None => false,
    };
    match parsed.scheme() {
        "https" => Ok(url),
        "http" if loopback => Ok(url),
        _ => Err(Error::InvalidConfig(format!(
            "{name} must start with https:// ({why}), not {url:?}"
        ))),
    }
}

/// S3 is used when an endpoint and a bucket are set; then the access key must be too.
fn s3_location(var: &impl Fn(&str) -> Option<String>) -> Result<Option<S3Location>> {
    let (Some(endpoint), Some(bucket)) = (var("S3_ENDPOINT"), var("S3_BUCKET")) else {
        return Ok(None);
    };
    let access_key = var("S3_ACCESS_KEY").ok_or_else(|| {
        Error::InvalidConfig("S3_ENDPOINT and S3_BUCKET are set but S3_ACCESS_KEY is not".into())
    })?;
    Ok(Some(S3Location {
        endpoint,
        bucket,
        region: var("S3_REGION").unwrap_or_else(|| "us-east-1".to_string()),
        access_key,
    }))
}

fn default_library_dir() -> Result<PathBuf> {
    dirs::data_dir()
        .map(|dir| dir.join("avatar-studio"))
        .ok_or_else(|| {
            Error::InvalidConfig(format!(
                "this system has no data directory; set {ENV_LIBRARY} or pass --library"
            ))
        })
}

fn parse_bool(name: &str, value: &str) -> Result<bool> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err(Error::InvalidConfig(format!(
            "{name} must be true or false, not {value:?}"
        ))),
    }
}

/// A budget in US dollars: a positive number.
fn budget(value: &str) -> Result<f64> {
    match value.trim().parse::<f64>() {
        Ok(budget) if budget.is_finite() && budget > 0.0 => Ok(budget),
        _ => Err(Error::InvalidConfig(format!(
            "AVATAR_MONTHLY_BUDGET_USD must be an amount in US dollars above 0, not {value:?}"
        ))),
    }
}

fn to_u32(name: &str, value: u64) -> Result<u32> {
    u32::try_from(value).map_err(|_| Error::InvalidConfig(format!("{name} is too large: {value}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(vars: &[(&str, &str)]) -> Result<Config> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect();
        Config::from_lookup(Some(PathBuf::from("/lib")), |name| vars.get(name).cloned())
    }

    #[test]
    fn defaults_follow_the_guide() {
        let config = config(&[]).expect("defaults");
        assert!(config.test_mode, "no fal key means test mode");
        assert_eq!((config.min_photos, config.max_photos), (10, 20));
        assert_eq!(config.photo_max_size, 20_971_520);
        assert_eq!(config.mock_training_duration, Duration::from_secs(30));
    }

    #[test]
    fn a_fal_key_turns_test_mode_off_unless_asked_for() {
        assert!(!config(&[("FAL_KEY", "k")]).expect("key").test_mode);
        assert!(!config(&[("FAL_API_KEY", "k")]).expect("key").test_mode);
        let forced = config(&[("FAL_API_KEY", "k"), ("FAL_TRAINING_TEST_MODE", "true")]);
        assert!(forced.expect("forced").test_mode);
    }

    #[test]
    fn the_library_flag_wins_over_the_environment() {
        let from_env = Config::from_lookup(None, |name| {
            (name == ENV_LIBRARY).then(|| "/from-env".to_string())
        });
        assert_eq!(
            from_env.expect("env").library_dir,
            PathBuf::from("/from-env")
        );
        let flag = Config::from_lookup(Some(PathBuf::from("/flag")), |name| {
            (name == ENV_LIBRARY).then(|| "/from-env".to_string())
        });
        assert_eq!(flag.expect("flag").library_dir, PathBuf::from("/flag"));
    }

    #[test]
    fn bad_values_name_the_variable() {
        let error = config(&[("AVATAR_MAX_PHOTOS", "twenty")]).expect_err("not a number");
        assert!(error.to_string().contains("AVATAR_MAX_PHOTOS"), "{error}");
        let error = config(&[("FAL_TRAINING_TEST_MODE", "maybe")]).expect_err("not a bool");
        assert!(
            error.to_string().contains("FAL_TRAINING_TEST_MODE"),
            "{error}"
        );
        let error = config(&[("AVATAR_MIN_PHOTOS", "30")]).expect_err("min over max");
        assert!(error.to_string().contains("AVATAR_MIN_PHOTOS"), "{error}");
    }

    fn stored(settings: &[(&str, &str)]) -> BTreeMap<String, String> {
        settings
            .iter()
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect()
    }

    #[test]
    fn the_relay_and_the_webhook_are_reached_over_https_or_on_this_machine() {
        for name in ["RELAY_URL", "FAL_WEBHOOK_URL"] {
            for good in [
                "https://relay.example",
                "http://127.0.0.1:8080",
                "http://localhost:9",
            ] {
                assert!(config(&[(name, good)]).is_ok(), "{name} {good}");
            }
            for bad in [
                "http://relay.example",
                "ftp://relay.example",
                "relay.example",
            ] {
                let error = config(&[(name, bad)]).expect_err(bad);
                assert!(error.to_string().contains(name), "{error}");
            }
        }
    }

    #[test]
    fn s3_variables_in_the_environment_override_even_when_the_bucket_is_stored() {
        let base = config(&[("S3_ACCESS_KEY", "from-env")]).expect("env");
        assert_eq!(base.from_environment("S3_ACCESS_KEY"), Some("from-env"));
        let layered = base
            .with_settings(&stored(&[
                ("S3_ENDPOINT", "http://minio:9000"),
                ("S3_BUCKET", "avatars"),
                ("S3_ACCESS_KEY", "stored"),
            ]))
            .expect("layered");
        assert_eq!(layered.s3.expect("s3").access_key, "from-env");
    }

    #[test]
    fn the_environment_overrides_stored_settings() {
        let base =
            config(&[("AVATAR_MAX_PHOTOS", "15"), ("FAL_QUEUE_URL", "http://q")]).expect("env");
        let layered = base
            .with_settings(&stored(&[
                ("AVATAR_MAX_PHOTOS", "40"),
                ("AVATAR_MIN_PHOTOS", "12"),
                ("AVATAR_DEFAULT_PRESET", "quality"),
            ]))
            .expect("layered");
        assert_eq!(layered.max_photos, 15, "the environment wins");
        assert_eq!(layered.min_photos, 12, "a stored setting fills a gap");
        assert_eq!(layered.default_preset, Preset::Quality);
        assert_eq!(
            layered.fal_endpoints.queue_url, "http://q",
            "operators' variables stay"
        );
        assert_eq!(layered.from_environment("AVATAR_MAX_PHOTOS"), Some("15"));
        assert_eq!(layered.from_environment("AVATAR_MIN_PHOTOS"), None);
        assert_eq!(layered.in_force("AVATAR_MIN_PHOTOS").as_deref(), Some("12"));
    }

    #[test]
    fn only_settings_are_taken_from_storage_and_secrets_are_never_recorded() {
        let base = config(&[("FAL_KEY", "secret-value")]).expect("env");
        assert!(!format!("{base:?}").contains("secret-value"));
        let layered = base
            .with_settings(&stored(&[("FAL_QUEUE_URL", "http://elsewhere")]))
            .expect("layered");
        assert_eq!(layered.fal_endpoints, fal::Endpoints::default());
        assert!(
            !layered.test_mode,
            "the key in the environment still counts"
        );
    }

    #[test]
    fn a_stored_value_that_does_not_fit_is_refused_by_name() {
        let base = config(&[]).expect("env");
        let error = base
            .with_settings(&stored(&[("AVATAR_MIN_PHOTOS", "30")]))
            .expect_err("min over max");
        assert!(error.to_string().contains("AVATAR_MIN_PHOTOS"), "{error}");
    }
}
