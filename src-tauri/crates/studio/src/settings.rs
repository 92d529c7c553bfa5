//! The Settings screen's model: each setting's stored value, the environment's value that
//! overrides it, and the value in force. Saving checks the whole config before writing a row.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Serialize;
use ts_rs::TS;

use crate::config::SETTINGS;
use crate::{Error, InForce, Result, S3Access, SecretName, SecretStatus, Studio};

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

/// A change that sends the creator's data or money somewhere it did not go before. Asked about
/// in a native dialog before a change from the app's window is saved: a script in the webview
/// can call the commands, but cannot answer the dialog. The shell words it; hosts and ids are
/// its parameters.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum GuardedChange {
    /// The monthly budget, in US dollars; None is no limit.
    Budget { from: Option<f64>, to: Option<f64> },
    /// Where the relay token is sent and training news read from; None is no relay.
    RelayAddress { host: Option<String> },
    /// Where the next training sets' photos go; None is fal storage.
    StorageAddress {
        host: Option<String>,
        bucket: Option<String>,
    },
    /// The S3 account (access key id) used at `host`.
    StorageAccount {
        host: Option<String>,
        access_key: Option<String>,
    },
    /// Another fal key: what fal is asked, and who pays. `key_id` is the key's public half.
    FalKey { key_id: Option<String> },
    /// Another S3 secret key, for `host`.
    StorageSecret { host: Option<String> },
    /// Another relay token, sent to `host`.
    RelayToken { host: Option<String> },
}

impl Studio {
    /// What saving `changes` would change of the guarded settings in force (the environment
    /// still wins, so a change it hides changes nothing). Empty when the change is refused
    /// anyway: saving says why.
    pub fn guarded_settings_changes(
        &self,
        changes: &BTreeMap<String, Option<String>>,
    ) -> Vec<GuardedChange> {
        let Ok(mut stored) = self.library.settings() else {
            return Vec::new();
        };
        for (name, value) in changes {
            match value.as_deref().map(str::trim) {
                Some(value) if !value.is_empty() => stored.insert(name.clone(), value.to_owned()),
                _ => stored.remove(name),
            };
        }
        let Ok(after) = self.environment.with_settings(&stored) else {
            return Vec::new();
        };
        let before = self.config();
        let mut guarded = Vec::new();
        if before.monthly_budget_usd != after.monthly_budget_usd {
            guarded.push(GuardedChange::Budget {
                from: before.monthly_budget_usd,
                to: after.monthly_budget_usd,
            });
        }
        if before.relay_url != after.relay_url {
            guarded.push(GuardedChange::RelayAddress {
                host: after.relay_url.as_deref().map(host_of),
            });
        }
        let location = |config: &crate::Config| {
            config.s3.as_ref().map(|s3| {
                (
                    host_of(&s3.endpoint),
                    s3.bucket.clone(),
                    s3.access_key.clone(),
                )
            })
        };
        let (was, will) = (location(&before), location(&after));
        let host = will.as_ref().map(|(host, _, _)| host.clone());
        if was.as_ref().map(|(host, bucket, _)| (host, bucket))
            != will.as_ref().map(|(host, bucket, _)| (host, bucket))
        {
            guarded.push(GuardedChange::StorageAddress {
                host: host.clone(),
                bucket: will.as_ref().map(|(_, bucket, _)| bucket.clone()),
            });
        }
        if was.as_ref().map(|(_, _, key)| key) != will.as_ref().map(|(_, _, key)| key) {
            guarded.push(GuardedChange::StorageAccount {
                host,
                access_key: will.map(|(_, _, key)| key),
            });
        }
        guarded
    }

    /// What storing `value` as secret `name` would change, as [`GuardedChange`].
    pub fn guarded_secret_change(&self, name: &str, value: &str) -> Result<GuardedChange> {
        let config = self.config();
        Ok(match crate::keychain::secret_name(name)? {
            SecretName::FalKey => GuardedChange::FalKey {
                // fal's keys are `KEY_ID:KEY_SECRET`; the id alone names the key on fal's
                // dashboard and gives nothing away.
                key_id: value.trim().split_once(':').map(|(id, _)| id.to_owned()),
            },
            SecretName::S3SecretKey => GuardedChange::StorageSecret {
                host: config.s3.as_ref().map(|s3| host_of(&s3.endpoint)),
            },
            SecretName::RelayToken => GuardedChange::RelayToken {
                host: config.relay_url.as_deref().map(host_of),
            },
        })
    }

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
        *self.lock_settings_problem() = problem;
        // One write: a reader takes the config and its clients from the same change.
        *self
            .in_force
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Arc::new(InForce {
            config: Arc::new(config),
            fal: client,
            s3,
            relay,
        });
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

/// The host (and port, when it is not the scheme's) of an address, or the address itself when it
/// does not parse.
fn host_of(address: &str) -> String {
    url::Url::parse(address)
        .ok()
        .and_then(|url| {
            let host = url.host_str()?.to_owned();
            Some(match url.port() {
                Some(port) => format!("{host}:{port}"),
                None => host,
            })
        })
        .unwrap_or_else(|| address.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::TestStudio;

    #[test]
    fn a_reader_never_sees_the_config_of_one_change_with_the_clients_of_another() {
        let library = tempfile::tempdir().expect("temp dir");
        let studio = TestStudio::new(library.path())
            .secret(SecretName::RelayToken, "relay-token-0123456789")
            .open()
            .expect("studio");
        let relays = ["https://relay-a.example", "https://relay-b.example"];
        let changes = 200;
        let mut snapshots = 0;
        std::thread::scope(|scope| {
            let writer = scope.spawn(|| {
                for change in 0..changes {
                    let relay = relays[change % 2];
                    let settings =
                        BTreeMap::from([("RELAY_URL".to_owned(), Some(relay.to_owned()))]);
                    studio.save_settings(settings).expect("saved");
                    // The fal key comes and goes too: test mode and the fal client with it.
                    if change % 2 == 0 {
                        studio.set_secret("fal-key", "key-id:secret").expect("key");
                    } else {
                        studio.delete_secret("fal-key").expect("no key");
                    }
                }
            });
            while !writer.is_finished() {
                let in_force = studio.in_force();
                let relay_url = in_force.relay.as_ref().map(|(url, _)| url);
                assert_eq!(relay_url, in_force.config.relay_url.as_ref());
                assert_eq!(in_force.config.test_mode, in_force.fal.is_none());
                snapshots += 1;
            }
            writer.join().expect("writer");
        });
        println!("{snapshots} snapshots during {changes} changes, each whole");
        assert!(snapshots > 0);
    }
}
