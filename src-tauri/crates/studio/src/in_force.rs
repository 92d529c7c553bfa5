//! What is in force: the config and the clients made from it (fal, the S3 bucket, the relay),
//! each with the key read for that config. Built whole when a config is applied and swapped in
//! one write, so an operation that takes one snapshot never pairs the config of one change with
//! a client of another.

use std::sync::Arc;

use fal::FalClient;

use crate::{Config, Error, Result};

pub(crate) struct InForce {
    pub config: Arc<Config>,
    /// One connection pool for every fal call, when a key is set.
    pub fal: Option<FalClient>,
    pub s3: S3Access,
    /// The relay's URL and token, when both are set.
    pub relay: Option<(String, String)>,
}

/// The configured MinIO/S3 bucket, as the config in force leaves it.
pub(crate) enum S3Access {
    /// Training sets go to fal storage.
    NotConfigured,
    /// S3 is configured, but its secret key is not set.
    NoSecretKey,
    Ready(s3::S3Store),
}

impl InForce {
    /// Before any config is applied: the environment's config and no client.
    pub fn bare(config: Config) -> Self {
        Self {
            config: Arc::new(config),
            fal: None,
            s3: S3Access::NotConfigured,
            relay: None,
        }
    }

    pub fn fal_client(&self) -> Result<FalClient> {
        self.fal.clone().ok_or_else(|| {
            Error::InvalidConfig(
                "No fal key is set: add it in Settings (it is kept in the system keychain) or set FAL_KEY, or turn on test mode".into(),
            )
        })
    }

    /// The configured MinIO/S3 bucket, or `None` when training sets go to fal storage.
    pub fn s3_store(&self) -> Result<Option<s3::S3Store>> {
        match &self.s3 {
            S3Access::NotConfigured => Ok(None),
            S3Access::NoSecretKey => Err(Error::InvalidConfig(
                "S3 is configured but its secret key is not set: add it in Settings or set S3_SECRET_KEY".into(),
            )),
            S3Access::Ready(store) => Ok(Some(store.clone())),
        }
    }
}
