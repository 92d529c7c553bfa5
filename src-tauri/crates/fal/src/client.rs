//! The HTTP client for fal's queue and storage. Every call retries transient failures the way
//! fal's clients do (429/502/503/504 and network errors, capped exponential backoff with jitter),
//! never retries a validation error, and never repeats a submit that may have reached fal.

use std::path::Path;
use std::time::Duration;

use futures_util::StreamExt;
use reqwest::header::{ACCEPT, AUTHORIZATION, HeaderMap};
use reqwest::{RequestBuilder, Response, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;

use crate::{FalError, RetryPolicy};

/// Where fal lives; both are configurable for tests and self-hosting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoints {
    /// `FAL_QUEUE_URL`, default `https://queue.fal.run`.
    pub queue_url: String,
    /// `FAL_REST_URL`, default `https://rest.fal.ai` (storage).
    pub rest_url: String,
    /// `FAL_PLATFORM_URL`, default `https://api.fal.ai/v1` (pricing, request history, payloads).
    pub platform_url: String,
}

impl Default for Endpoints {
    fn default() -> Self {
        Self {
            queue_url: "https://queue.fal.run".to_string(),
            rest_url: "https://rest.fal.ai".to_string(),
            platform_url: "https://api.fal.ai/v1".to_string(),
        }
    }
}

/// A submitted request, as fal's queue acknowledged it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Submitted {
    pub request_id: String,
    pub status_url: String,
    pub response_url: String,
    pub cancel_url: String,
    #[serde(default)]
    pub queue_position: Option<u32>,
}

/// fal's three queue states; a failed or cancelled request is COMPLETED with an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum QueueState {
    InQueue,
    InProgress,
    Completed,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct LogEntry {
    pub message: String,
    #[serde(default)]
    pub timestamp: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct QueueStatus {
    #[serde(rename = "status")]
    pub state: QueueState,
    #[serde(default)]
    pub queue_position: Option<u32>,
    /// The entries of a moving time window, not a growing prefix.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub logs: Vec<LogEntry>,
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    pub error_type: Option<String>,
}

fn null_as_empty<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Vec<LogEntry>, D::Error> {
    Ok(Option::<Vec<LogEntry>>::deserialize(deserializer)?.unwrap_or_default())
}

/// What fal said to a cancel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CancelAnswer {
    /// Accepted; the request may still finish if it was about to.
    Requested,
    /// Too late: the request had already completed.
    AlreadyCompleted,
    /// fal knows no such request (any more): nothing is left to cancel.
    NotFound,
}

/// How long fal keeps the files a request generates (`X-Fal-Object-Lifecycle-Preference`): long
/// enough for an app that was closed when a training ended to fetch its model on the next
/// start, short enough that a face model does not stay public for the account's default
/// (which may be forever).
pub const OUTPUT_LIFETIME: Duration = Duration::from_secs(7 * 24 * 3600);

/// The start deadline every submit carries (`X-Fal-Request-Timeout`, fal-protocol.md §1.3): a
/// request fal has not started within it ends with a 504 and is never run or billed. It bounds
/// how long a request whose submit answer was lost can stay unfinished, and so absent from the
/// request history, which lists finished requests only (§8.2).
pub const START_DEADLINE: Duration = Duration::from_secs(2 * 3600);

/// How long fal keeps a request's payloads, and so its result, when `X-Fal-Store-IO` is not 0:
/// "Payloads are stored for 30 days by default" (fal-protocol.md §7.3, §8.1).
pub const PAYLOAD_STORAGE_PERIOD: Duration = Duration::from_secs(30 * 24 * 3600);

/// A fal client holding the key. `Debug` never shows the key.
#[derive(Clone)]
pub struct FalClient {
    pub(crate) http: reqwest::Client,
    pub(crate) endpoints: Endpoints,
    key: String,
    pub(crate) retry: RetryPolicy,
    pub(crate) read_timeout: Duration,
    /// fal's hosts for these endpoints, read once.
    hosts: FalHosts,
}

impl std::fmt::Debug for FalClient {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("FalClient")
            .field("endpoints", &self.endpoints)
            .field("key", &"<set>")
            .finish()
    }
}

/// How long one status poll may take; fal's Python client allows 120 s.
pub(crate) const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a transfer may go without a byte by default; fal's own downloader allows 30 s per
/// blocking operation (`ssrf.py`).
pub const DEFAULT_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// fal's own file hosts: its CDN (`v3.fal.media`, `v3b.fal.media`, …) and its services.
const FAL_DOMAINS: [&str; 3] = ["fal.media", "fal.ai", "fal.run"];
/// fal's buckets on Google Cloud Storage: its LoRA trainers have named their outputs
/// `https://storage.googleapis.com/fal-flux-lora/…_pytorch_lora_weights.safetensors`.
const FAL_BUCKETS: [&str; 2] = ["fal-flux-lora", "falserverless"];
/// The most redirects a call follows, as fal's own downloader does (fal-protocol.md §7.1).
const MAX_REDIRECTS: usize = 5;

/// Where the app fetches from and follows redirects to: https on fal's domains, and the
/// configured origins (fal's endpoints, or a stand-in for fal on this machine).
#[derive(Debug, Clone)]
struct FalHosts {
    origins: Vec<String>,
}

impl FalHosts {
    fn of(endpoints: &Endpoints) -> Self {
        let origins = [
            &endpoints.queue_url,
            &endpoints.rest_url,
            &endpoints.platform_url,
        ]
        .into_iter()
        .filter_map(|url| reqwest::Url::parse(url).ok())
        .map(|url| url.origin().ascii_serialization())
        .collect();
        Self { origins }
    }

    fn allows(&self, url: &reqwest::Url) -> bool {
        if self.origins.contains(&url.origin().ascii_serialization()) {
            return true;
        }
        let in_fal_bucket = || {
            url.domain() == Some("storage.googleapis.com")
                && url
                    .path_segments()
                    .and_then(|mut segments| segments.next())
                    .is_some_and(|bucket| FAL_BUCKETS.contains(&bucket))
        };
        url.scheme() == "https"
            && (in_fal_bucket()
                || url.domain().is_some_and(|host| {
                    FAL_DOMAINS.iter().any(|domain| {
                        host == *domain
                            || host
                                .strip_suffix(domain)
                                .is_some_and(|prefix| prefix.ends_with('.'))
                    })
                }))
    }
}

impl FalClient {
    pub fn new(endpoints: Endpoints, key: String, retry: RetryPolicy) -> Self {
        let hosts = FalHosts::of(&endpoints);
        Self {
            http: http_client(DEFAULT_READ_TIMEOUT, hosts.clone()),
            hosts,
            endpoints,
            key,
            retry,
            read_timeout: DEFAULT_READ_TIMEOUT,
        }
    }

    /// How many times a call or a download is tried before it fails.
    pub fn attempts(&self) -> u32 {
        self.retry.max_retries + 1
    }

    /// Whether `url` is one of fal's file addresses the app may fetch: https on fal's domains
    /// (`fal.media`, `fal.ai`, `fal.run` and their subdomains), or on a configured origin (a
    /// stand-in for fal). Anything else could lead the creator's model, or a download, to a host
    /// that is not fal's.
    pub fn is_fal_file(&self, url: &str) -> bool {
        reqwest::Url::parse(url).is_ok_and(|url| self.hosts.allows(&url))
    }

    /// The same client (the same connection pool) with another retry policy.
    pub fn with_retry(self, retry: RetryPolicy) -> Self {
        Self { retry, ..self }
    }

    /// The same client with another limit on how long any read may wait for a byte: a stalled
    /// answer or download fails after it and is retried like a broken connection.
    pub fn with_read_timeout(self, read_timeout: Duration) -> Self {
        Self {
            http: http_client(read_timeout, self.hosts.clone()),
            read_timeout,
            ..self
        }
    }

    pub(crate) fn authorised(&self, builder: RequestBuilder) -> RequestBuilder {
        builder
            .header(AUTHORIZATION, format!("Key {}", self.key))
            .header(ACCEPT, "application/json")
    }

    /// A queue call. No `X-Fal-Store-IO: 0`: with it fal keeps a finished request's result
    /// for an hour only (6 minutes from 10 KB, fal-protocol.md §8.1), and a creator whose
    /// laptop slept through that hour would lose a paid model. fal keeps the payloads for its
    /// storage period instead; the app deletes them once the outputs are safe in the library.
    fn queue_call(&self, builder: RequestBuilder) -> RequestBuilder {
        self.authorised(builder).timeout(REQUEST_TIMEOUT)
    }

    /// The queue addresses of a request known only by its id (found in fal's request history):
    /// status, result and cancel use `owner/app` only (fal-protocol.md §1.2).
    pub fn adopt(&self, endpoint: &str, request_id: &str) -> Submitted {
        let owner_app: Vec<&str> = endpoint.splitn(3, '/').take(2).collect();
        let base = format!(
            "{}/{}/requests/{request_id}",
            self.endpoints.queue_url.trim_end_matches('/'),
            owner_app.join("/")
        );
        Submitted {
            request_id: request_id.to_string(),
            status_url: format!("{base}/status"),
            response_url: base.clone(),
            cancel_url: format!("{base}/cancel"),
            queue_position: None,
        }
    }

    /// Puts a request in fal's queue. A submit is repeated only when fal answered that it did not
    /// take it (429, 503…) or the connection was never made: a lost answer could hide a queued,
    /// billed job, and submitting it again would pay twice.
    pub async fn submit(
        &self,
        endpoint: &str,
        input: &Value,
        webhook_url: Option<&str>,
    ) -> Result<Submitted, FalError> {
        let url = format!(
            "{}/{}",
            self.endpoints.queue_url.trim_end_matches('/'),
            endpoint
        );
        let outputs = json!({
            "expiration_duration_seconds": OUTPUT_LIFETIME.as_secs()
        })
        .to_string();
        let response = self
            .send(false, || {
                let builder = self
                    .queue_call(self.http.post(&url))
                    .header("X-Fal-Queue-Priority", "normal")
                    .header(
                        "X-Fal-Request-Timeout",
                        START_DEADLINE.as_secs().to_string(),
                    )
                    .header("X-Fal-Object-Lifecycle-Preference", &outputs)
                    .json(input);
                match webhook_url {
                    Some(webhook) => builder.query(&[("fal_webhook", webhook)]),
                    None => builder,
                }
            })
            .await?;
        let submitted: Submitted = parse_json(response).await?;
        // The key goes with every status, result and cancel call: addresses off fal's queue
        // are not used, the request's own are built from its id instead.
        let queue = reqwest::Url::parse(&self.endpoints.queue_url)
            .map(|url| url.origin().ascii_serialization())
            .unwrap_or_default();
        let on_queue = |url: &str| {
            reqwest::Url::parse(url).is_ok_and(|url| url.origin().ascii_serialization() == queue)
        };
        if [
            &submitted.status_url,
            &submitted.response_url,
            &submitted.cancel_url,
        ]
        .into_iter()
        .all(|url| on_queue(url))
        {
            Ok(submitted)
        } else {
            Ok(Submitted {
                queue_position: submitted.queue_position,
                ..self.adopt(endpoint, &submitted.request_id)
            })
        }
    }

    pub async fn status(&self, status_url: &str, logs: bool) -> Result<QueueStatus, FalError> {
        let response = self
            .send(true, || {
                self.queue_call(self.http.get(status_url))
                    .query(&[("logs", if logs { "1" } else { "0" })])
            })
            .await?;
        parse_json(response).await
    }

    /// The bare model output of a completed request. A model error comes back as the error it was.
    pub async fn result(&self, response_url: &str) -> Result<Value, FalError> {
        let response = self
            .send(true, || self.queue_call(self.http.get(response_url)))
            .await?;
        parse_json(response).await
    }

    pub async fn cancel(&self, cancel_url: &str) -> Result<CancelAnswer, FalError> {
        let request = || self.queue_call(self.http.put(cancel_url));
        match self.send(true, request).await {
            Ok(_) => Ok(CancelAnswer::Requested),
            Err(FalError::Invalid { message, .. }) if message.contains("ALREADY_COMPLETED") => {
                Ok(CancelAnswer::AlreadyCompleted)
            }
            Err(FalError::NotFound(_)) => Ok(CancelAnswer::NotFound),
            Err(error) => Err(error),
        }
    }

    /// Streams a public file (a LoRA on fal's CDN) of at most `max_bytes` into `destination`,
    /// starting it afresh on each retry, and returns its length. The caller owns the file's
    /// naming and renaming.
    pub async fn download(
        &self,
        url: &str,
        destination: &Path,
        max_bytes: u64,
    ) -> Result<u64, FalError> {
        if !self.is_fal_file(url) {
            return Err(not_fals(url));
        }
        let mut attempt = 0;
        loop {
            match self.download_once(url, destination, max_bytes).await {
                Ok(length) => return Ok(length),
                Err(error) if error.is_transient() && attempt < self.retry.max_retries => {
                    attempt += 1;
                    tokio::time::sleep(self.retry.delay(attempt)).await;
                }
                Err(error) => return Err(error),
            }
        }
    }

    /// Whether fal's file server still serves `url` (a LoRA a pack will name): a 404, 403 or
    /// 410 says it expired or is no longer public. A GET whose body is never read: whether fal's
    /// CDN answers HEAD is not documented.
    pub async fn still_served(&self, url: &str) -> Result<bool, FalError> {
        if !self.is_fal_file(url) {
            return Err(not_fals(url));
        }
        let response = self
            .http
            .get(url)
            .send()
            .await
            .map_err(|error| FalError::network(&error))?;
        match check_file(response).await {
            Ok(_) => Ok(true),
            Err(FalError::FileUnavailable { .. }) => Ok(false),
            Err(error) => Err(error),
        }
    }

    async fn download_once(
        &self,
        url: &str,
        destination: &Path,
        max_bytes: u64,
    ) -> Result<u64, FalError> {
        let response = self
            .http
            .get(url)
            .send()
            .await
            .map_err(|error| FalError::network(&error))?;
        let response = check_file(response).await?;
        let too_large = FalError::TooLarge { limit: max_bytes };
        let response_length = response.content_length();
        if response_length.is_some_and(|length| length > max_bytes) {
            return Err(too_large);
        }
        let mut file = tokio::fs::File::create(destination)
            .await
            .map_err(|error| file_error(destination, &error))?;
        let mut stream = response.bytes_stream();
        let mut length = 0u64;
        // Besides the read timeout on every chunk, the whole transfer has a deadline: a trickle
        // that never quite stalls ends too.
        let deadline = tokio::time::Instant::now()
            + crate::storage::transfer_deadline(response_length.unwrap_or(max_bytes));
        loop {
            let chunk = match tokio::time::timeout_at(deadline, stream.next()).await {
                Ok(Some(chunk)) => chunk.map_err(|error| {
                    FalError::transfer(&error, || {
                        format!(
                            "the download stalled: no data for {} s",
                            self.read_timeout.as_secs_f64()
                        )
                    })
                })?,
                Ok(None) => break,
                Err(_) => {
                    return Err(FalError::Network {
                        message: "the download did not finish in time".into(),
                        not_sent: false,
                    });
                }
            };
            length += chunk.len() as u64;
            if length > max_bytes {
                return Err(too_large);
            }
            file.write_all(&chunk)
                .await
                .map_err(|error| file_error(destination, &error))?;
        }
        file.sync_all()
            .await
            .map_err(|error| file_error(destination, &error))?;
        Ok(length)
    }

    /// Sends a request built by `request`, retrying transient failures. `idempotent` calls retry
    /// every transient failure; others only those that prove the request was not taken.
    pub(crate) async fn send(
        &self,
        idempotent: bool,
        request: impl Fn() -> RequestBuilder,
    ) -> Result<Response, FalError> {
        let mut attempt = 0;
        loop {
            let outcome = match request().send().await {
                Ok(response) => check(response, idempotent).await,
                Err(error) => Err(FalError::network(&error)),
            };
            let repeatable = match &outcome {
                Err(FalError::Network { not_sent, .. }) => idempotent || *not_sent,
                Err(error) => error.is_transient() && !matches!(error, FalError::NotReady),
                Ok(_) => false,
            };
            if !repeatable || attempt >= self.retry.max_retries {
                return outcome;
            }
            attempt += 1;
            tokio::time::sleep(self.retry.delay(attempt)).await;
        }
    }
}

// The fal port's one place that builds a client.
#[allow(clippy::disallowed_methods)]
fn http_client(read_timeout: Duration, hosts: FalHosts) -> reqwest::Client {
    reqwest::Client::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .read_timeout(read_timeout)
        .user_agent(concat!("avatar-studio/", env!("CARGO_PKG_VERSION")))
        // A redirect is followed only to fal's hosts: a file of fal's must not lead the
        // download, or the key, anywhere else.
        .redirect(reqwest::redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() >= MAX_REDIRECTS {
                attempt.error(format!("more than {MAX_REDIRECTS} redirects"))
            } else if hosts.allows(attempt.url()) {
                attempt.follow()
            } else {
                let to = attempt.url().origin().ascii_serialization();
                attempt.error(format!("a redirect off fal's hosts, to {to}"))
            }
        }))
        .build()
        .expect("a client with no custom TLS settings always builds")
}

fn not_fals(url: &str) -> FalError {
    FalError::Protocol(format!(
        "the file address {url:?} is not one of fal's https addresses; it was not fetched"
    ))
}

pub(crate) fn file_error(path: &Path, error: &std::io::Error) -> FalError {
    FalError::File {
        path: path.display().to_string(),
        message: error.to_string(),
    }
}

pub(crate) async fn parse_json<T: serde::de::DeserializeOwned>(
    response: Response,
) -> Result<T, FalError> {
    let bytes = response
        .bytes()
        .await
        .map_err(|error| FalError::network(&error))?;
    serde_json::from_slice(&bytes).map_err(|error| {
        FalError::Protocol(format!("{error} in {}", String::from_utf8_lossy(&bytes)))
    })
}

/// Passes a success through and turns anything else into the matching [`FalError`].
async fn check(response: Response, idempotent: bool) -> Result<Response, FalError> {
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let headers = response.headers().clone();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    Err(classify(status, &headers, &body, idempotent))
}

/// A file server's answer: the key never goes to it, so a 401, 403, 404 or 410 says the file is
/// private or gone, never that the key is wrong.
async fn check_file(response: Response) -> Result<Response, FalError> {
    match response.status().as_u16() {
        status @ (401 | 403 | 404 | 410) => Err(FalError::FileUnavailable { status }),
        _ => check(response, true).await,
    }
}

/// A refusal from fal storage's upload host, which takes no fal key: a 401/403 there is an
/// upload address that expired or was refused, a 413 a file too large for one request, never the
/// key's fault.
pub(crate) fn storage_refusal(status: u16, body: &Value) -> FalError {
    FalError::Storage {
        status,
        message: describe(body).unwrap_or_else(|| {
            StatusCode::from_u16(status)
                .ok()
                .and_then(|code| code.canonical_reason())
                .unwrap_or("no explanation")
                .to_string()
        }),
        retryable: matches!(status, 408 | 429 | 500 | 502 | 503 | 504),
    }
}

fn classify(status: StatusCode, headers: &HeaderMap, body: &Value, idempotent: bool) -> FalError {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .map(str::to_string)
    };
    let message = describe(body).unwrap_or_else(|| {
        status
            .canonical_reason()
            .unwrap_or("no explanation")
            .to_string()
    });
    let code = status.as_u16();
    match code {
        401 | 403 => FalError::WrongKey { status: code },
        404 => FalError::NotFound(message),
        400 if message.to_ascii_lowercase().contains("still in progress") => FalError::NotReady,
        400 | 422 => FalError::Invalid {
            status: code,
            message,
        },
        _ => {
            let error_type = body["error_type"]
                .as_str()
                .map(str::to_string)
                .or_else(|| header("x-fal-error-type"));
            // A timeout the caller set on purpose is final (fal's clients agree).
            let user_timeout =
                code == 504 && header("x-fal-request-timeout-type").as_deref() == Some("user");
            let retryable = if idempotent {
                !user_timeout && matches!(code, 408 | 429 | 500 | 502 | 503 | 504)
            } else {
                // A request that left may have been taken even when the answer is an error: only
                // a 429, or a 503 in fal's own words from before any request was created, proves
                // it was not. A gateway's 408/500/502/504 can follow an accepted submit.
                code == 429
                    || (code == 503
                        && header("x-fal-request-id").is_none()
                        && body.get("detail").is_some())
            };
            FalError::Unavailable {
                status: code,
                error_type,
                message,
                retryable,
            }
        }
    }
}

/// The words in an error body: `detail` as a string or as pydantic's list, `status`, or `message`.
fn describe(body: &Value) -> Option<String> {
    match &body["detail"] {
        Value::String(text) => return Some(text.clone()),
        Value::Array(items) if !items.is_empty() => {
            let parts: Vec<String> = items
                .iter()
                .map(|item| {
                    let location: Vec<String> = item["loc"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter(|part| part.as_str() != Some("body"))
                        .map(|part| part.as_str().map_or(part.to_string(), str::to_string))
                        .collect();
                    let message = item["msg"].as_str().unwrap_or("is not valid");
                    if location.is_empty() {
                        message.to_string()
                    } else {
                        format!("{}: {message}", location.join("."))
                    }
                })
                .collect();
            return Some(parts.join("; "));
        }
        _ => {}
    }
    if let Some(message) = body["error"]["message"].as_str() {
        // The platform APIs' envelope: `{"error": {"type", "message"}}`.
        return Some(message.to_string());
    }
    ["status", "message", "error"]
        .into_iter()
        .find_map(|field| body[field].as_str().map(str::to_string))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn classified(code: u16, body: Value, headers: &[(&'static str, &'static str)]) -> FalError {
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            map.insert(*name, value.parse().expect("header"));
        }
        classify(StatusCode::from_u16(code).expect("code"), &map, &body, true)
    }

    #[test]
    fn failures_are_sorted_by_what_can_be_done_about_them() {
        assert!(matches!(
            classified(401, Value::Null, &[]),
            FalError::WrongKey { .. }
        ));
        let invalid = classified(
            422,
            json!({"detail":[{"loc":["body","steps"],"msg":"ensure this value is less than 10000","type":"value_error"}]}),
            &[],
        );
        assert_eq!(
            invalid.to_string(),
            "fal rejected the training request: steps: ensure this value is less than 10000"
        );
        assert!(!invalid.is_transient());
        assert!(classified(429, json!({"detail":"Too many requests"}), &[]).is_transient());
        let busy = classified(
            503,
            json!({"detail":"No runner","error_type":"runner_scheduling_failure"}),
            &[],
        );
        assert!(busy.is_transient());
        assert!(busy.to_string().contains("runner_scheduling_failure"));
        let user_timeout = classified(
            504,
            json!({"detail":"Request timed out"}),
            &[("x-fal-request-timeout-type", "user")],
        );
        assert!(!user_timeout.is_transient());
        assert!(matches!(
            classified(400, json!({"detail":"Request is still in progress"}), &[]),
            FalError::NotReady
        ));
        assert!(matches!(
            classified(400, json!({"status":"ALREADY_COMPLETED"}), &[]),
            FalError::Invalid { message, .. } if message == "ALREADY_COMPLETED"
        ));
    }

    #[test]
    fn a_submit_is_repeatable_only_when_the_answer_proves_fal_did_not_take_it() {
        let submit = |code: u16, body: Value, headers: &[(&'static str, &'static str)]| {
            let mut map = HeaderMap::new();
            for (name, value) in headers {
                map.insert(*name, value.parse().expect("header"));
            }
            classify(
                StatusCode::from_u16(code).expect("code"),
                &map,
                &body,
                false,
            )
            .is_transient()
        };
        let fal_busy = json!({"detail": "No runner", "error_type": "runner_scheduling_failure"});
        assert!(submit(429, json!({"detail": "Too many requests"}), &[]));
        assert!(submit(503, fal_busy.clone(), &[]));
        assert!(
            !submit(503, fal_busy, &[("x-fal-request-id", "req-1")]),
            "a request id means the request exists"
        );
        assert!(
            !submit(503, Value::Null, &[]),
            "a gateway's 503 without fal's body"
        );
        for code in [408, 500, 502, 504] {
            assert!(!submit(code, json!({"detail": "gateway"}), &[]), "{code}");
        }
    }

    #[test]
    fn the_key_never_shows_in_debug_output() {
        let client = FalClient::new(
            Endpoints::default(),
            "secret-key-123".into(),
            RetryPolicy::DEFAULT,
        );
        assert!(!format!("{client:?}").contains("secret-key-123"));
    }
}
