//! fal's webhook keys, fetched from the JWKS URL and cached for a bounded time ("they can
//! change", fal-protocol.md §2.2). When no cached key verifies a delivery, the keys are fetched
//! again once, so that a rotated key is picked up at its first delivery.

use std::sync::Arc;
use std::time::Duration;

use fal::webhook::{VerifyingKey, parse_jwks};
use tokio::sync::Mutex;
use tokio::time::Instant;

/// The least time between two fetches caused by signatures that did not verify: a stream of
/// forged deliveries costs fal's key server at most one request per interval.
const MIN_REFETCH_INTERVAL: Duration = Duration::from_secs(1);
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);
/// Far above a real key set (a few hundred bytes).
const MAX_JWKS_BYTES: usize = 64 * 1024;

#[derive(Debug, Clone, thiserror::Error)]
#[error("fal's webhook keys could not be fetched from {url}: {reason}")]
pub struct KeysUnavailable {
    url: String,
    reason: String,
}

/// Keys as fetched at one time.
#[derive(Clone)]
pub struct KeySet {
    pub keys: Arc<[VerifyingKey]>,
    fetched_at: Instant,
    generation: u64,
}

pub struct FalKeys {
    url: String,
    http: reqwest::Client,
    max_age: Duration,
    cached: Mutex<Option<KeySet>>,
    /// The last fetch that failed: while fal's key server is down, forged deliveries get its
    /// error instead of each causing a fetch.
    failed: Mutex<Option<(Instant, KeysUnavailable)>>,
}

impl FalKeys {
    // The relay's one client: it fetches fal's public keys and nothing else.
    #[allow(clippy::disallowed_methods)]
    pub fn new(url: String, max_age: Duration) -> Result<Self, KeysUnavailable> {
        let http = reqwest::Client::builder()
            .timeout(FETCH_TIMEOUT)
            .build()
            .map_err(|error| KeysUnavailable {
                url: url.clone(),
                reason: error.to_string(),
            })?;
        Ok(Self {
            url,
            http,
            max_age,
            cached: Mutex::new(None),
            failed: Mutex::new(None),
        })
    }

    /// The cached keys, unless there are none or they are older than the maximum age.
    pub async fn cached(&self) -> Option<KeySet> {
        self.cached
            .lock()
            .await
            .clone()
            .filter(|set| set.fetched_at.elapsed() <= self.max_age)
    }

    /// Keys to try after `tried` (from [`FalKeys::cached`]) verified nothing: the set another
    /// request fetched meanwhile, or a fresh fetch. `None` when `tried` was fetched too recently
    /// to fetch again.
    pub async fn refresh(&self, tried: Option<&KeySet>) -> Result<Option<KeySet>, KeysUnavailable> {
        // Held across the fetch: concurrent deliveries wait for one fetch instead of each
        // making their own.
        let mut cached = self.cached.lock().await;
        if let Some(current) = cached.as_ref() {
            let fresh = current.fetched_at.elapsed() <= self.max_age;
            let newer_than_tried = tried.is_none_or(|tried| tried.generation != current.generation);
            if fresh && newer_than_tried {
                return Ok(Some(current.clone()));
            }
            if fresh && current.fetched_at.elapsed() < MIN_REFETCH_INTERVAL {
                return Ok(None);
            }
        }
        let mut failed = self.failed.lock().await;
        if let Some((at, error)) = failed.as_ref()
            && at.elapsed() < MIN_REFETCH_INTERVAL
        {
            return Err(error.clone());
        }
        let keys = match self.fetch().await {
            Ok(keys) => keys,
            Err(error) => {
                *failed = Some((Instant::now(), error.clone()));
                return Err(error);
            }
        };
        *failed = None;
        let set = KeySet {
            keys: keys.into(),
            fetched_at: Instant::now(),
            generation: cached.as_ref().map_or(0, |set| set.generation + 1),
        };
        *cached = Some(set.clone());
        Ok(Some(set))
    }

    async fn fetch(&self) -> Result<Vec<VerifyingKey>, KeysUnavailable> {
        let unavailable = |reason: String| KeysUnavailable {
            url: self.url.clone(),
            reason,
        };
        let mut response = self
            .http
            .get(&self.url)
            .send()
            .await
            .map_err(|error| unavailable(error.to_string()))?;
        let status = response.status();
        if !status.is_success() {
            return Err(unavailable(format!("the server answered HTTP {status}")));
        }
        let mut document = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|error| unavailable(error.to_string()))?
        {
            if document.len() + chunk.len() > MAX_JWKS_BYTES {
                return Err(unavailable("the key set is implausibly large".to_owned()));
            }
            document.extend_from_slice(&chunk);
        }
        parse_jwks(&document).map_err(|error| unavailable(error.to_string()))
    }
}
