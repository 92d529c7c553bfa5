//! Secrets in the OS keychain (the Secret Service on Linux, through keyring-core), with the
//! guide's environment variables taking precedence. The keychain is reached on first use, so
//! commands that need no secret never touch it.

use std::sync::{Arc, OnceLock};

use keyring_core::api::CredentialStoreApi;

use crate::ports::{SecretName, SecretSource, Secrets, secret_from_env};
use crate::{Error, Result, Studio};

/// The keychain service every item of this app is filed under.
const SERVICE: &str = "avatar-studio";

#[derive(Default)]
pub struct KeychainSecrets {
    store: OnceLock<std::result::Result<Arc<dyn CredentialStoreApi + Send + Sync>, String>>,
}

impl KeychainSecrets {
    fn entry(&self, name: SecretName) -> Result<keyring_core::Entry> {
        let store = self.store.get_or_init(open_store).as_ref().map_err(|reason| {
            Error::InvalidConfig(format!(
                "the system keychain cannot be used ({reason}); unlock it (on Linux, a Secret Service such as gnome-keyring in the session) or set {} instead",
                name.env_vars().join(" or ")
            ))
        })?;
        store
            .build(SERVICE, name.id(), None)
            .map_err(|error| keychain_error(name, &error))
    }

    fn stored(&self, name: SecretName) -> Result<Option<String>> {
        match self.entry(name)?.get_password() {
            Ok(value) => Ok(Some(value)),
            Err(keyring_core::Error::NoEntry) => Ok(None),
            Err(error) => Err(keychain_error(name, &error)),
        }
    }
}

#[cfg(target_os = "linux")]
fn open_store() -> std::result::Result<Arc<dyn CredentialStoreApi + Send + Sync>, String> {
    zbus_secret_service_keyring_store::Store::new()
        .map(|store| store as Arc<dyn CredentialStoreApi + Send + Sync>)
        .map_err(|error| error.to_string())
}

#[cfg(not(target_os = "linux"))]
fn open_store() -> std::result::Result<Arc<dyn CredentialStoreApi + Send + Sync>, String> {
    Err("this build reads the keychain only on Linux".into())
}

/// Keychain errors carry no secret values, only what went wrong.
fn keychain_error(name: SecretName, error: &keyring_core::Error) -> Error {
    let fix = match error {
        keyring_core::Error::NoStorageAccess(_) => {
            "the keychain is locked or absent: unlock it, or set the environment variable instead"
        }
        _ => "try again, or set the environment variable instead",
    };
    Error::InvalidConfig(format!(
        "the keychain refused the {} ({error}); {fix} ({})",
        name.id(),
        name.env_vars().join(" or ")
    ))
}

impl Secrets for KeychainSecrets {
    fn get(&self, name: SecretName) -> Option<String> {
        secret_from_env(name).or_else(|| self.stored(name).ok().flatten())
    }

    fn set(&self, name: SecretName, value: &str) -> Result<()> {
        if value.trim().is_empty() {
            return Err(Error::InvalidInput(format!("the {} is empty", name.id())));
        }
        self.entry(name)?
            .set_password(value.trim())
            .map_err(|error| keychain_error(name, &error))
    }

    fn delete(&self, name: SecretName) -> Result<()> {
        match self.entry(name)?.delete_credential() {
            Ok(()) | Err(keyring_core::Error::NoEntry) => Ok(()),
            Err(error) => Err(keychain_error(name, &error)),
        }
    }

    fn source(&self, name: SecretName) -> Result<Option<SecretSource>> {
        if secret_from_env(name).is_some() {
            return Ok(Some(SecretSource::Environment));
        }
        Ok(self.stored(name)?.map(|_| SecretSource::Keychain))
    }

    fn reach_store(&self) -> Result<()> {
        self.stored(SecretName::FalKey).map(drop)
    }
}

/// Whether a secret is set and where, for Settings and `avatar-cli secret status`. Never the value.
#[derive(Debug, Clone, serde::Serialize, ts_rs::TS)]
pub struct SecretStatus {
    /// `fal-key`, `s3-secret-key` or `relay-token`.
    pub name: String,
    pub source: Option<SecretSource>,
    /// Why the keychain could not be read, with the fix.
    pub problem: Option<String>,
}

impl Studio {
    pub fn secret_status(&self) -> Vec<SecretStatus> {
        SecretName::ALL
            .into_iter()
            .map(|name| {
                let (source, problem) = match self.secrets.source(name) {
                    Ok(source) => (source, None),
                    Err(error) => (None, Some(error.to_string())),
                };
                SecretStatus {
                    name: name.id().to_string(),
                    source,
                    problem,
                }
            })
            .collect()
    }

    /// Stores a secret; a fal key turns test mode off unless test mode was chosen.
    pub fn set_secret(&self, name: &str, value: &str) -> Result<()> {
        self.secrets.set(secret_name(name)?, value)?;
        self.reload_config()
    }

    pub fn delete_secret(&self, name: &str) -> Result<()> {
        self.secrets.delete(secret_name(name)?)?;
        self.reload_config()
    }
}

pub(crate) fn secret_name(id: &str) -> Result<SecretName> {
    SecretName::parse(id).ok_or_else(|| {
        let known: Vec<&str> = SecretName::ALL.iter().map(|name| name.id()).collect();
        Error::InvalidInput(format!("{id:?} is not one of: {}", known.join(", ")))
    })
}
