//! The Settings screen's model: each setting's stored value, the environment's value that
//! overrides it, and the value in force. Saving checks the whole config before writing a row.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Serialize;
use ts_rs::TS;

use crate::config::SETTINGS;
use crate::{Error, Result, S3Access, SecretName, SecretStatus, Studio};

/// One setting, by the guide's variable name.
#[derive(Debug, Clone, Serialize, TS)]
pub struct Setting {
    pub name: String,
    /// Chosen in Settings and kept in the library.
    pub stored: Option<String>,
    /// Set in the environment, which wins over the stored value.
    pub environment: Option<String>,
    /// What the app uses now.
    pub in_force: Option<String>,
    /// What it would be without the stored value.
    pub default: Option<String>,
}

/// Everything the Settings screen shows.
#[derive(Debug, Clone, Serialize, TS)]
pub struct SettingsView {
    pub settings: Vec<Setting>,
    /// Why the stored settings are not in force, when they are not.
    pub problem: Option<String>,
    pub secrets: Vec<SecretStatus>,
}

impl Studio {
    pub fn settings(&self) -> Result<SettingsView> {
        let stored = self.library.settings()?;
        let config = self.config();
        let keychain_key = std::cell::OnceCell::new();
        let has_keychain_key =
            || *keychain_key.get_or_init(|| self.secrets.get(SecretName::FalKey).is_some());
        let settings = SETTINGS
            .iter()
            .map(|&name| {
                let mut others = stored.clone();
                others.remove(name);
                Setting {
                    name: name.to_string(),
                    stored: stored.get(name).cloned(),
                    environment: config.from_environment(name).map(str::to_string),
                    in_force: config.in_force(name),
                    default: self
                        .environment
                        .with_settings(&others)
                        .ok()
                        .and_then(|without| {
                            without
                                .counting_keychain_key(has_keychain_key)
                                .in_force(name)
                        }),
                }
            })
            .collect();
        Ok(SettingsView {
            settings,
            problem: self.lock_settings_problem().clone(),
            secrets: self.secret_status(),
        })
    }

    /// Applies `changes` (an empty or absent value returns a setting to its default) after
    /// checking the resulting config as a whole; nothing is written when any value is refused.
    pub fn save_settings(&self, changes: BTreeMap<String, Option<String>>) -> Result<SettingsView> {
        let _one_change_at_a_time = self.lock_settings_change();
        let mut stored = self.library.settings()?;
        for (name, value) in changes {
            if !SETTINGS.contains(&name.as_str()) {
                return Err(Error::InvalidInput(format!(
                    "{name:?} is not a setting; settings are: {}",
                    SETTINGS.join(", ")
                )));
            }
            match value.map(|value| value.trim().to_string()) {
                Some(value) if !value.is_empty() => stored.insert(name, value),
                _ => stored.remove(&name),
            };
        }
        // Checked alone too, so values hidden by the environment today cannot break the app
        // the day that variable is unset.
        self.environment
            .without_environment()
            .with_settings(&stored)?;
        self.environment.with_settings(&stored)?;
        self.library.replace_settings(&stored)?;
        self.apply_config()?;
        self.settings()
    }

    /// Rebuilds the config in force from the environment, the stored settings and the keychain.
    pub(crate) fn reload_config(&self) -> Result<()> {
        let _one_change_at_a_time = self.lock_settings_change();
        self.apply_config()
    }

    fn apply_config(&self) -> Result<()> {
        let stored = self.library.settings()?;
        let (config, problem) = match self.environment.with_settings(&stored) {
            Ok(config) => (config, None),
            Err(error) => (self.environment.clone(), Some(error.to_string())),
        };
        // The keys are read once per config (a keychain read is a D-Bus round trip), and the one
        // fal client, S3 client and relay token serve every call until the config changes.
        // Test mode chosen outright needs no key, so the keychain is not asked then.
        let key = if config.test_mode && config.test_mode_chosen {
            None
        } else {
            self.secrets.get(SecretName::FalKey)
        };
        let config = config.counting_keychain_key(|| key.is_some());
        let client = key.map(|key| {
            let retry = fal::RetryPolicy {
                base_delay: config.retry_base,
                ..fal::RetryPolicy::DEFAULT
            };
            fal::FalClient::new(config.fal_endpoints.clone(), key, retry)
                .with_read_timeout(config.read_timeout)
        });
        let s3 = match &config.s3 {
            None => S3Access::NotConfigured,
            Some(location) => match self.secrets.get(SecretName::S3SecretKey) {
                None => S3Access::NoSecretKey,
                Some(secret_key) => S3Access::Ready(s3::S3Store::new(s3::S3Settings {
                    endpoint: location.endpoint.clone(),
                    bucket: location.bucket.clone(),
                    region: location.region.clone(),
                    access_key: location.access_key.clone(),
                    secret_key,
                })),
            },
        };
        let relay = config.relay_url.clone().and_then(|url| {
            let token = self.secrets.get(SecretName::RelayToken)?;
            Some((url, token))
        });
        *self
            .fal
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = client;
        *self
            .relay
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = relay;
        *self
            .s3
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = s3;
        *self.lock_settings_problem() = problem;
        *self
            .config
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Arc::new(config);
        // The relay follower is the one waiter; a permit waits for it if it is busy reading.
        self.config_changed.notify_one();
        Ok(())
    }

    fn lock_settings_change(&self) -> std::sync::MutexGuard<'_, ()> {
        self.settings_change
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn lock_settings_problem(&self) -> std::sync::MutexGuard<'_, Option<String>> {
        self.settings_problem
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
