//! Uploads to fal storage the way fal's official clients do (fal-protocol.md §7.2): one PUT up
//! to [`MULTIPART_THRESHOLD`], multipart in [`PART_SIZE`] parts above it, each part tried alone
//! [`PART_TRIES`] times. A multipart upload keeps a journal beside the file, so an upload cut off
//! by a crash or a suspend goes on from its last finished part. Every PUT has a stall watch (no
//! byte taken for the read timeout), a read timeout on its answer and a total deadline.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use futures_util::{StreamExt, stream};
use reqwest::header::CONTENT_TYPE;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio::time::Instant;

use crate::client::{FalClient, file_error, parse_json};
use crate::{FalError, RetryPolicy};

/// Above this, fal-js switches to multipart (`storage.ts`: `file.size > 90 * 1024 * 1024`).
pub const MULTIPART_THRESHOLD: u64 = 90 * 1024 * 1024;
/// fal-js and fal's SDK both cut 10 MiB parts.
pub const PART_SIZE: u64 = 10 * 1024 * 1024;
/// How long an unfinished multipart upload may be resumed: half the life of a training set on
/// fal storage, so a resumed upload still has most of its life ahead.
const JOURNAL_LIFETIME: Duration = Duration::from_secs(12 * 3600);
/// fal-js tries each part three times.
const PART_TRIES: u32 = 3;
/// The smallest pace a transfer is allowed on top of [`BASE_DEADLINE`]: a slow but steady line
/// finishes; a connection that trickles for ever is given up.
const MIN_BYTES_PER_SECOND: u64 = 128 * 1024;
/// fal's SDK gives an upload PUT five minutes (`PUT_REQUEST_TIMEOUT`).
const BASE_DEADLINE: Duration = Duration::from_secs(300);
/// How the body of a PUT is cut for the stall watch.
const BODY_CHUNK_BYTES: usize = 64 * 1024;

/// How long fal keeps an uploaded file, sent as `X-Fal-Object-Lifecycle` (and `-Preference`, as
/// fal's Python clients do, for the older storage backend) on the initiate call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lifetime(pub Duration);

impl Lifetime {
    fn header_value(self) -> String {
        json!({ "expiration_duration_seconds": self.0.as_secs().max(1) }).to_string()
    }
}

/// What the caller uploads.
#[derive(Debug, Clone, Copy)]
pub struct UploadFile<'a> {
    pub path: &'a Path,
    pub content_type: &'a str,
    pub file_name: &'a str,
    pub lifetime: Lifetime,
}

#[derive(Deserialize)]
struct Initiated {
    upload_url: String,
    file_url: String,
}

/// A multipart upload in flight, written after every finished part.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Journal {
    /// The file it belongs to: a different length or modification time starts afresh.
    length: u64,
    modified_nanos: u128,
    /// When the upload was initiated (Unix seconds): an older journal starts afresh, since its
    /// file would expire soon after it completes.
    initiated_at: u64,
    upload_url: String,
    file_url: String,
    parts: Vec<FinishedPart>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct FinishedPart {
    #[serde(rename = "partNumber")]
    part_number: u32,
    etag: String,
}

impl FalClient {
    /// Uploads a file to fal storage and returns the public URL fal's runners fetch.
    pub async fn upload(&self, file: UploadFile<'_>) -> Result<String, FalError> {
        let length = tokio::fs::metadata(file.path)
            .await
            .map_err(|error| file_error(file.path, &error))?
            .len();
        if length > MULTIPART_THRESHOLD {
            return self.upload_multipart(file, length).await;
        }
        let initiated = self.initiate(&file, "initiate").await?;
        let mut tries = 0;
        loop {
            let body = FileSlice {
                path: file.path,
                offset: 0,
                length,
            };
            match self
                .put(&initiated.upload_url, Some(file.content_type), body)
                .await
            {
                Ok(_) => return Ok(initiated.file_url),
                Err(error) if error.is_transient() && tries < self.retry.max_retries => {
                    tries += 1;
                    tokio::time::sleep(self.retry.delay(tries)).await;
                }
                Err(error) => return Err(error),
            }
        }
    }

    async fn initiate(&self, file: &UploadFile<'_>, route: &str) -> Result<Initiated, FalError> {
        let url = format!(
            "{}/storage/upload/{route}",
            self.endpoints.rest_url.trim_end_matches('/')
        );
        let lifecycle = file.lifetime.header_value();
        let body = json!({"content_type": file.content_type, "file_name": file.file_name});
        let response = self
            .send(true, || {
                self.authorised(self.http.post(&url))
                    .query(&[("storage_type", "fal-cdn-v3")])
                    .header("X-Fal-Object-Lifecycle", &lifecycle)
                    .header("X-Fal-Object-Lifecycle-Preference", &lifecycle)
                    .timeout(crate::client::REQUEST_TIMEOUT)
                    .json(&body)
            })
            .await?;
        parse_json(response).await
    }

    /// fal-js's multipart flow, resumed from the journal when one matches the file and is
    /// recent; an upload address that no longer takes parts is given up for a fresh one, once.
    async fn upload_multipart(
        &self,
        file: UploadFile<'_>,
        length: u64,
    ) -> Result<String, FalError> {
        let journal_path = upload_journal_path(file.path);
        let modified_nanos = modified_nanos(file.path).await?;
        let resumable = read_journal(&journal_path).await.filter(|journal| {
            journal.length == length
                && journal.modified_nanos == modified_nanos
                && unix_now().saturating_sub(journal.initiated_at) < JOURNAL_LIFETIME.as_secs()
        });
        if let Some(journal) = resumable {
            match self.send_parts(&file, journal, &journal_path).await {
                Err(FalError::Storage {
                    status: 403 | 404, ..
                }) => remove_journal(&journal_path).await,
                finished => return finished,
            }
        }
        let initiated = self.initiate(&file, "initiate-multipart").await?;
        let journal = Journal {
            length,
            modified_nanos,
            initiated_at: unix_now(),
            upload_url: initiated.upload_url,
            file_url: initiated.file_url,
            parts: Vec::new(),
        };
        self.send_parts(&file, journal, &journal_path).await
    }

    /// Sends the parts the journal does not hold yet, one at a time, then completes the upload.
    /// The journal goes once the upload is complete or can never be.
    async fn send_parts(
        &self,
        file: &UploadFile<'_>,
        mut journal: Journal,
        journal_path: &Path,
    ) -> Result<String, FalError> {
        write_journal(journal_path, &journal).await?;
        let part_count = journal.length.div_ceil(PART_SIZE) as u32;
        for part_number in 1..=part_count {
            if journal
                .parts
                .iter()
                .any(|part| part.part_number == part_number)
            {
                continue;
            }
            let offset = u64::from(part_number - 1) * PART_SIZE;
            let body = FileSlice {
                path: file.path,
                offset,
                length: PART_SIZE.min(journal.length - offset),
            };
            let etag = self
                .upload_part(&journal.upload_url, part_number, body)
                .await
                .inspect_err(|error| forget_if_final(error, journal_path))?;
            journal.parts.push(FinishedPart { part_number, etag });
            write_journal(journal_path, &journal).await?;
        }
        journal.parts.sort_by_key(|part| part.part_number);
        let complete_url = part_url(&journal.upload_url, "complete")?;
        let body = json!({ "parts": journal.parts });
        self.send(true, || {
            self.http
                .post(&complete_url)
                .header(reqwest::header::ACCEPT, "application/json")
                .timeout(crate::client::REQUEST_TIMEOUT)
                .json(&body)
        })
        .await
        .map_err(storage_failure)
        .inspect_err(|error| forget_if_final(error, journal_path))?;
        remove_journal(journal_path).await;
        Ok(journal.file_url)
    }

    /// One part, tried alone up to [`PART_TRIES`] times; returns its etag.
    async fn upload_part(
        &self,
        upload_url: &str,
        part_number: u32,
        body: FileSlice<'_>,
    ) -> Result<String, FalError> {
        let url = part_url(upload_url, &part_number.to_string())?;
        let mut tries = 1;
        loop {
            match self.put(&url, None, body).await {
                Ok(response) => return part_etag(response).await,
                Err(error) if tries < PART_TRIES && !matches!(error, FalError::File { .. }) => {
                    tries += 1;
                    tokio::time::sleep(
                        RetryPolicy::DEFAULT
                            .delay(tries - 1)
                            .min(self.retry.max_delay),
                    )
                    .await;
                }
                Err(error) => return Err(error),
            }
        }
    }

    /// One PUT of a slice of a file to a pre-signed address (no fal key), watched for stalls.
    async fn put(
        &self,
        url: &str,
        content_type: Option<&str>,
        slice: FileSlice<'_>,
    ) -> Result<reqwest::Response, FalError> {
        let watch = Arc::new(BodyWatch::new());
        let body = slice.stream(watch.clone()).await?;
        let deadline = transfer_deadline(slice.length);
        let mut request = self
            .http
            .put(url)
            .header(reqwest::header::CONTENT_LENGTH, slice.length)
            .timeout(deadline)
            .body(body);
        if let Some(content_type) = content_type {
            request = request.header(CONTENT_TYPE, content_type);
        }
        let sent = tokio::select! {
            sent = request.send() => sent,
            stalled = watch.stalled(self.read_timeout) => return Err(stalled),
        };
        let response = sent.map_err(|error| {
            FalError::transfer(&error, || {
                format!(
                    "the upload stalled: fal storage gave no answer within {} s",
                    self.read_timeout.as_secs_f64()
                )
            })
        })?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let body: Value = response.json().await.unwrap_or(Value::Null);
        Err(crate::client::storage_refusal(status.as_u16(), &body))
    }
}

/// How long a transfer of `length` bytes may take in all.
pub(crate) fn transfer_deadline(length: u64) -> Duration {
    BASE_DEADLINE + Duration::from_secs(length / MIN_BYTES_PER_SECOND)
}

/// The etag of a finished part: fal-js reads the JSON body, fal's SDK the `ETag` header.
async fn part_etag(response: reqwest::Response) -> Result<String, FalError> {
    let header = response
        .headers()
        .get(reqwest::header::ETAG)
        .and_then(|value| value.to_str().ok())
        .map(str::to_string);
    let body: Value = parse_json(response).await.unwrap_or(Value::Null);
    body["etag"]
        .as_str()
        .map(str::to_string)
        .or(header)
        .ok_or_else(|| FalError::Protocol("fal storage named no etag for an uploaded part".into()))
}

/// `{upload_url path}/{suffix}{upload_url query}`, as fal-js builds part and complete addresses.
fn part_url(upload_url: &str, suffix: &str) -> Result<String, FalError> {
    let mut url = reqwest::Url::parse(upload_url)
        .map_err(|error| FalError::Protocol(format!("upload address {upload_url:?}: {error}")))?;
    let path = format!("{}/{suffix}", url.path().trim_end_matches('/'));
    url.set_path(&path);
    Ok(url.to_string())
}

/// A `complete` that failed for good: whatever fal storage answered, the upload cannot finish.
fn storage_failure(error: FalError) -> FalError {
    let status = match &error {
        FalError::WrongKey { status } | FalError::Invalid { status, .. } => *status,
        FalError::NotFound(_) => 404,
        _ => return error,
    };
    FalError::Storage {
        status,
        message: "fal storage did not accept the finished upload".into(),
        retryable: false,
    }
}

/// An upload that can never finish leaves no journal to resume from. The journal holds the
/// pre-signed upload address, so it is not kept longer than needed either.
fn forget_if_final(error: &FalError, journal_path: &Path) {
    if matches!(
        error,
        FalError::Storage {
            retryable: false,
            ..
        }
    ) {
        // Synchronous on purpose: `inspect_err` cannot await, and the file is tiny.
        let _ = std::fs::remove_file(journal_path);
    }
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_secs())
}

/// A byte range of a file, read in small chunks as the connection takes them.
#[derive(Debug, Clone, Copy)]
struct FileSlice<'a> {
    path: &'a Path,
    offset: u64,
    length: u64,
}

impl FileSlice<'_> {
    async fn stream(&self, watch: Arc<BodyWatch>) -> Result<reqwest::Body, FalError> {
        let mut file = tokio::fs::File::open(self.path)
            .await
            .map_err(|error| file_error(self.path, &error))?;
        file.seek(std::io::SeekFrom::Start(self.offset))
            .await
            .map_err(|error| file_error(self.path, &error))?;
        let path = self.path.to_path_buf();
        let chunks = stream::unfold(
            (file, self.length, watch),
            move |(mut file, remaining, watch)| {
                let path = path.clone();
                async move {
                    watch.touch();
                    if remaining == 0 {
                        watch.finish();
                        return None;
                    }
                    let mut buffer = vec![0; BODY_CHUNK_BYTES.min(remaining as usize)];
                    match file.read_exact(&mut buffer).await {
                        Ok(_) => {
                            let left = remaining - buffer.len() as u64;
                            if left == 0 {
                                // With a Content-Length the connection may never ask again.
                                watch.finish();
                            }
                            Some((Ok(Bytes::from(buffer)), (file, left, watch)))
                        }
                        Err(error) => Some((Err(file_error(&path, &error)), (file, 0, watch))),
                    }
                }
            },
        );
        Ok(reqwest::Body::wrap_stream(chunks.boxed()))
    }
}

/// When the connection last took a piece of a request body, and whether it has taken all of it.
struct BodyWatch {
    started: Instant,
    last_taken_millis: AtomicU64,
    finished: AtomicBool,
}

impl BodyWatch {
    fn new() -> Self {
        Self {
            started: Instant::now(),
            last_taken_millis: AtomicU64::new(0),
            finished: AtomicBool::new(false),
        }
    }

    fn touch(&self) {
        let elapsed = self.started.elapsed().as_millis() as u64;
        self.last_taken_millis.store(elapsed, Ordering::Relaxed);
    }

    fn finish(&self) {
        self.finished.store(true, Ordering::Relaxed);
    }

    /// Resolves when no piece of the body was taken for `limit`; never once it is all sent
    /// (the answer's own read timeout takes over then).
    async fn stalled(&self, limit: Duration) -> FalError {
        let check_every = (limit / 4).max(Duration::from_millis(10));
        loop {
            tokio::time::sleep(check_every).await;
            if self.finished.load(Ordering::Relaxed) {
                return std::future::pending().await;
            }
            let last = Duration::from_millis(self.last_taken_millis.load(Ordering::Relaxed));
            if self.started.elapsed().saturating_sub(last) >= limit {
                return FalError::Network {
                    message: format!(
                        "the upload stalled: fal storage took no data for {} s",
                        limit.as_secs_f64()
                    ),
                    not_sent: false,
                };
            }
        }
    }
}

/// Where the journal of an unfinished multipart upload of `path` is kept.
pub fn upload_journal_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_os_string();
    name.push(".fal-upload.json");
    PathBuf::from(name)
}

async fn modified_nanos(path: &Path) -> Result<u128, FalError> {
    let metadata = tokio::fs::metadata(path)
        .await
        .map_err(|error| file_error(path, &error))?;
    Ok(metadata
        .modified()
        .ok()
        .and_then(|time| time.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |since| since.as_nanos()))
}

async fn read_journal(path: &Path) -> Option<Journal> {
    let bytes = tokio::fs::read(path).await.ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Written through a temporary name, so a crash leaves the old journal or the new one.
async fn write_journal(path: &Path, journal: &Journal) -> Result<(), FalError> {
    let temporary = path.with_extension("json.partial");
    let bytes =
        serde_json::to_vec(journal).map_err(|error| FalError::Protocol(error.to_string()))?;
    tokio::fs::write(&temporary, bytes)
        .await
        .map_err(|error| file_error(&temporary, &error))?;
    tokio::fs::rename(&temporary, path)
        .await
        .map_err(|error| file_error(path, &error))
}

async fn remove_journal(path: &Path) {
    // A journal that outlives its upload only costs a fresh initiate next time.
    let _ = tokio::fs::remove_file(path).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn part_addresses_keep_the_upload_query() {
        assert_eq!(
            part_url("https://up.example/multipart/abc?upload_id=1&sig=x", "3").expect("url"),
            "https://up.example/multipart/abc/3?upload_id=1&sig=x"
        );
        assert_eq!(
            part_url("https://up.example/multipart/abc?upload_id=1", "complete").expect("url"),
            "https://up.example/multipart/abc/complete?upload_id=1"
        );
    }

    #[test]
    fn lifetimes_travel_in_seconds() {
        assert_eq!(
            Lifetime(Duration::from_secs(86_400)).header_value(),
            r#"{"expiration_duration_seconds":86400}"#
        );
    }
}
