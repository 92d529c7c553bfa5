//! Diagnostics: one look at everything training depends on — fal, the training-set storage, the
//! keychain and the library — each answered by really asking it, with the fix in words. The relay
//! has its own, longer check ("Check connection").

use serde::Serialize;
use ts_rs::TS;
use uuid::Uuid;

use crate::Studio;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum Service {
    Fal,
    Storage,
    Keychain,
    Library,
    /// What stays on fal's servers after a training, and for how long.
    FalRetention,
    /// What fal billed against what the creator confirmed.
    FalBilling,
    /// The program that opens HEIC and AVIF files, and the libheif it uses.
    HeifDecoder,
}

/// How far what fal billed for a training may be from what the creator confirmed before
/// Diagnostics says so.
const BILLED_TOLERANCE: f64 = 0.2;

/// What a check found; the UI words each one, `detail` carries the specifics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum Finding {
    /// Test mode: nothing is sent to fal, so fal is not asked.
    FalTestMode,
    FalKeyMissing,
    FalKeyWrong,
    FalUnreachable,
    FalAnswered,
    /// No S3 bucket is configured: training sets go to fal storage.
    StorageFal,
    StorageSecretMissing,
    StorageFailed,
    /// `S3_ENDPOINT` is plain `http` to another machine: photos of faces would cross the network
    /// unencrypted, so training sets are not uploaded there.
    StorageUnencrypted,
    StorageAnswered,
    /// S3 answered, but fal cannot fetch from its address (this machine or the local network):
    /// training sets go through fal storage, the photo copies stay in S3.
    StorageNotPublic,
    /// As above, and the creator chose S3 only: paid starts are refused until S3 has an address
    /// on the internet.
    StorageNotPublicS3Only,
    KeychainAvailable,
    KeychainUnavailable,
    LibraryOpen,
    /// Nothing of the library's trainings is kept by fal beyond the lifetimes the app asks for
    /// (training sets one day, outputs deleted once the model is saved).
    RetentionMinimal,
    /// fal keeps what `detail`'s first number of trainings left (their request records for its
    /// storage period, their model files seven days), the last until `detail`'s date
    /// (`YYYY-MM-DD`): the key may not delete them (an admin key may), or fal could not.
    RetentionOutputsKept,
    /// Every training whose billing could be read was billed within 20% of what was confirmed.
    BilledAsConfirmed,
    /// fal billed `detail` trainings more than 20% away from what the creator confirmed.
    BilledDiffers,
    /// HEIC and AVIF files are opened in a limited child process, with libheif `detail`.
    HeifDecoderReady,
    /// As above, but libheif `detail` is older than the first release without the published
    /// flaws in reading HEIF files (a distribution may have patched it). A notice, not a
    /// failure: the limited child is what keeps a bad file from the app.
    HeifDecoderOld,
    /// The child process that opens HEIC and AVIF files is missing: they are refused.
    HeifDecoderMissing,
}

impl Finding {
    pub fn passed(self) -> bool {
        !matches!(
            self,
            Self::FalKeyMissing
                | Self::FalKeyWrong
                | Self::FalUnreachable
                | Self::StorageSecretMissing
                | Self::StorageFailed
                | Self::StorageUnencrypted
                | Self::StorageNotPublicS3Only
                | Self::KeychainUnavailable
                | Self::BilledDiffers
                | Self::HeifDecoderMissing
        )
    }
}

#[derive(Debug, Clone, Serialize, TS)]
pub struct Diagnosis {
    pub service: Service,
    pub finding: Finding,
    pub passed: bool,
    /// The address asked, the error in words, or what is in use.
    pub detail: String,
}

impl Diagnosis {
    fn new(service: Service, finding: Finding, detail: impl Into<String>) -> Self {
        Self {
            service,
            finding,
            passed: finding.passed(),
            detail: detail.into(),
        }
    }
}

impl Studio {
    /// Asks fal, the storage, the keychain and the library, each once and without retries:
    /// the creator is waiting for the answer.
    pub async fn diagnose(&self) -> Vec<Diagnosis> {
        vec![
            self.diagnose_fal().await,
            self.diagnose_storage().await,
            self.diagnose_keychain(),
            self.diagnose_library(),
            self.diagnose_retention(),
            self.diagnose_billing(),
            diagnose_heif_decoder(),
        ]
    }

    async fn diagnose_fal(&self) -> Diagnosis {
        let config = self.config();
        let queue = config.fal_endpoints.queue_url.trim_end_matches('/');
        if config.test_mode {
            return Diagnosis::new(Service::Fal, Finding::FalTestMode, queue);
        }
        let client = match self.fal_client_retrying(fal::RetryPolicy {
            max_retries: 0,
            ..fal::RetryPolicy::DEFAULT
        }) {
            Ok(client) => client,
            Err(error) => {
                return Diagnosis::new(Service::Fal, Finding::FalKeyMissing, error.to_string());
            }
        };
        // fal checks the key before it looks the request up, so a request that cannot exist
        // tells a good key (404) from a wrong one (401/403) without starting anything.
        let trainer =
            fal::TrainerSpec::new(fal::TrainerKind::Portrait, config.portrait_trainer.clone());
        let probe = client
            .adopt(&trainer.endpoint, &Uuid::new_v4().to_string())
            .status_url;
        match client.status(&probe, false).await {
            Ok(_) | Err(fal::FalError::NotFound(_)) => {
                Diagnosis::new(Service::Fal, Finding::FalAnswered, queue)
            }
            Err(error @ fal::FalError::WrongKey { .. }) => {
                Diagnosis::new(Service::Fal, Finding::FalKeyWrong, error.to_string())
            }
            Err(error) => Diagnosis::new(Service::Fal, Finding::FalUnreachable, error.to_string()),
        }
    }

    async fn diagnose_storage(&self) -> Diagnosis {
        let config = self.config();
        let store = match self.s3_store() {
            Ok(Some(store)) => store,
            Ok(None) => {
                return Diagnosis::new(
                    Service::Storage,
                    Finding::StorageFal,
                    &config.fal_endpoints.rest_url,
                );
            }
            Err(error) => {
                return Diagnosis::new(
                    Service::Storage,
                    Finding::StorageSecretMissing,
                    error.to_string(),
                );
            }
        };
        if let Some(s3) = config.s3.as_ref()
            && !crate::dataset::is_encrypted_or_local(&s3.endpoint)
        {
            return Diagnosis::new(
                Service::Storage,
                Finding::StorageUnencrypted,
                s3.endpoint.clone(),
            );
        }
        let fal_can_fetch = match config.s3.as_ref() {
            Some(s3) => fal::fal_can_fetch(&s3.endpoint).await.is_ok(),
            None => true,
        };
        match store.check().await {
            Ok(()) if !fal_can_fetch => {
                let finding = if config.training_set_s3_only {
                    Finding::StorageNotPublicS3Only
                } else {
                    Finding::StorageNotPublic
                };
                let endpoint = config.s3.as_ref().map(|s3| s3.endpoint.clone());
                Diagnosis::new(Service::Storage, finding, endpoint.unwrap_or_default())
            }
            Ok(()) => {
                let place = config
                    .s3
                    .as_ref()
                    .map(|s3| format!("{}/{}", s3.endpoint, s3.bucket))
                    .unwrap_or_default();
                Diagnosis::new(Service::Storage, Finding::StorageAnswered, place)
            }
            Err(error) => {
                Diagnosis::new(Service::Storage, Finding::StorageFailed, error.to_string())
            }
        }
    }

    fn diagnose_keychain(&self) -> Diagnosis {
        match self.secrets.reach_store() {
            Ok(()) => Diagnosis::new(Service::Keychain, Finding::KeychainAvailable, ""),
            Err(error) => Diagnosis::new(
                Service::Keychain,
                Finding::KeychainUnavailable,
                error.to_string(),
            ),
        }
    }

    fn diagnose_retention(&self) -> Diagnosis {
        let now = self.clock.now();
        // Payloads stay for fal's storage period (the output files their shorter lifetime).
        let period = chrono::Duration::from_std(fal::PAYLOAD_STORAGE_PERIOD)
            .unwrap_or_else(|_| chrono::Duration::days(30));
        let kept_until: Vec<chrono::DateTime<chrono::Utc>> = self
            .library
            .jobs()
            .map(|jobs| {
                jobs.iter()
                    .filter(|job| job.fal_outputs.as_deref() == Some("kept"))
                    .filter_map(|job| job.finished_at.map(|finished| finished + period))
                    .filter(|until| *until > now)
                    .collect()
            })
            .unwrap_or_default();
        match kept_until.iter().max() {
            None => Diagnosis::new(Service::FalRetention, Finding::RetentionMinimal, ""),
            Some(until) => Diagnosis::new(
                Service::FalRetention,
                Finding::RetentionOutputsKept,
                format!("{} {}", kept_until.len(), until.format("%Y-%m-%d")),
            ),
        }
    }

    /// Trainings fal billed more than [`BILLED_TOLERANCE`] away from what the creator confirmed.
    fn diagnose_billing(&self) -> Diagnosis {
        let differing = self
            .library
            .jobs()
            .map(|jobs| {
                jobs.iter()
                    .filter(|job| {
                        job.billed_cost_usd.is_some_and(|billed| {
                            (billed - job.confirmed_cost_usd).abs()
                                > BILLED_TOLERANCE * job.confirmed_cost_usd.max(0.01)
                        })
                    })
                    .count()
            })
            .unwrap_or_default();
        match differing {
            0 => Diagnosis::new(Service::FalBilling, Finding::BilledAsConfirmed, ""),
            count => Diagnosis::new(
                Service::FalBilling,
                Finding::BilledDiffers,
                count.to_string(),
            ),
        }
    }

    fn diagnose_library(&self) -> Diagnosis {
        Diagnosis::new(
            Service::Library,
            Finding::LibraryOpen,
            self.config().library_dir.display().to_string(),
        )
    }
}

fn diagnose_heif_decoder() -> Diagnosis {
    if !photos::heif_decoder_installed() {
        return Diagnosis::new(
            Service::HeifDecoder,
            Finding::HeifDecoderMissing,
            photos::HEIF_DECODER_NAME,
        );
    }
    match photos::libheif_version() {
        Some((version, true)) => {
            Diagnosis::new(Service::HeifDecoder, Finding::HeifDecoderReady, version)
        }
        Some((version, false)) => {
            Diagnosis::new(Service::HeifDecoder, Finding::HeifDecoderOld, version)
        }
        None => Diagnosis::new(Service::HeifDecoder, Finding::HeifDecoderReady, "?"),
    }
}
