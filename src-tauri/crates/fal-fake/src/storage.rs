//! fal's REST storage upload (fal-protocol.md §3, §7.2): initiate hands out an upload URL and a
//! public file URL, a PUT to the first stores the bytes (or, for a multipart upload, parts and a
//! `complete` call do; see `multipart.rs`), and a GET of the second serves them. Files live in a
//! temporary folder and stream through in chunks, so tests can upload hundreds of megabytes.

use std::io;
use std::path::{Path, PathBuf};

use axum::body::{Body, BodyDataStream, to_bytes};
use axum::extract::Request;
use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE, ETAG};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::{StreamExt, stream};
use md5::{Digest, Md5};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;

use crate::Upload;
use crate::jobs::validation_item;
use crate::lifecycle::{self, LIFECYCLE_PREFERENCE, OBJECT_LIFECYCLE};
use crate::multipart::{self, MultipartUpload};
use crate::server::{json_response, not_found};
use crate::state::Shared;

const READ_CHUNK_BYTES: usize = 64 * 1024;

pub(crate) struct StoredObject {
    file_name: String,
    content_type: String,
    file_url: String,
    lifecycle: Option<Value>,
    lifecycle_preference: Option<Value>,
    /// `Some` for an object initiated as a multipart upload.
    pub multipart: Option<MultipartUpload>,
    /// `None` until the bytes are in.
    stored: Option<StoredFile>,
}

struct StoredFile {
    size: u64,
    /// When the upload's lifecycle expires the file (fal-protocol.md §7.3).
    expires_at: Option<Instant>,
}

impl StoredObject {
    pub fn is_stored(&self) -> bool {
        self.stored.is_some()
    }

    /// Records the object's bytes as stored now, which starts its lifecycle's clock, and
    /// returns the record of the upload.
    pub fn store(&mut self, size: u64, multipart_parts: Option<u32>) -> Upload {
        // Only `X-Fal-Object-Lifecycle` sets the expiry; UNCONFIRMED which of the two headers
        // the REST initiate honours (fal-protocol.md §7.3: fal-js sends only this one).
        let lifetime = lifecycle::lifetime(self.lifecycle.as_ref());
        self.stored = Some(StoredFile {
            size,
            expires_at: lifetime.map(|lifetime| Instant::now() + lifetime),
        });
        Upload {
            file_name: self.file_name.clone(),
            content_type: self.content_type.clone(),
            bytes: size,
            file_url: self.file_url.clone(),
            multipart_parts,
            lifecycle: self.lifecycle.clone(),
            lifecycle_preference: self.lifecycle_preference.clone(),
        }
    }

    /// The size of the stored file, while it is there to serve.
    fn servable_size(&self, now: Instant) -> Option<u64> {
        let stored = self.stored.as_ref()?;
        let expired = stored
            .expires_at
            .is_some_and(|expires_at| now >= expires_at);
        (!expired).then_some(stored.size)
    }
}

/// Which upload flow an initiate call starts.
pub(crate) enum UploadFlow {
    /// `POST /storage/upload/initiate`, then one PUT (fal-protocol.md §7.2 A).
    Single,
    /// `POST /storage/upload/initiate-multipart`, then parts and `complete` (§7.2 B).
    Multipart,
}

/// `POST /storage/upload/initiate[-multipart]?storage_type=…` with `{content_type, file_name}`
/// and optional lifecycle headers (fal-protocol.md §7.2, §7.3).
pub(crate) async fn initiate(shared: &Shared, request: Request, flow: UploadFlow) -> Response {
    let (parts, body) = request.into_parts();
    let lifecycle = match lifecycle::parse(&parts.headers, OBJECT_LIFECYCLE) {
        Ok(lifecycle) => lifecycle,
        Err(rejection) => return rejection.into_response(),
    };
    let lifecycle_preference = match lifecycle::parse(&parts.headers, LIFECYCLE_PREFERENCE) {
        Ok(preference) => preference,
        Err(rejection) => return rejection.into_response(),
    };
    // `dispatch` has read the body already and enforced its limit.
    let Ok(body) = to_bytes(body, usize::MAX).await else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let field = |name: &str| body.get(name).and_then(Value::as_str).map(str::to_owned);
    let (Some(content_type), Some(file_name)) = (field("content_type"), field("file_name")) else {
        let missing: Vec<Value> = ["content_type", "file_name"]
            .into_iter()
            .filter(|name| field(name).is_none())
            .map(|name| validation_item(&["body", name], "field required", "value_error.missing"))
            .collect();
        return json_response(
            StatusCode::UNPROCESSABLE_ENTITY,
            json!({ "detail": missing }),
        );
    };

    let key = uuid::Uuid::new_v4().simple().to_string();
    let file_url = format!("{}/files/{key}/{}", shared.base_url, url_safe(&file_name));
    let (upload_url, multipart) = match flow {
        UploadFlow::Single => (format!("{}/uploads/{key}", shared.base_url), None),
        UploadFlow::Multipart => {
            let upload = MultipartUpload::new();
            (multipart::upload_url(shared, &key, &upload), Some(upload))
        }
    };
    shared.state().stored_objects.insert(
        key,
        StoredObject {
            file_name,
            content_type,
            file_url: file_url.clone(),
            lifecycle,
            lifecycle_preference,
            multipart,
            stored: None,
        },
    );
    json_response(
        StatusCode::OK,
        json!({ "upload_url": upload_url, "file_url": file_url }),
    )
}

/// The file name as it appears in the file URL; characters a URL path would need escaped become
/// `_`, as CDNs commonly do.
fn url_safe(file_name: &str) -> String {
    file_name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// `PUT` of a single upload URL: no fal auth, the URL itself is the permission. A body over the
/// single-upload limit is refused with 413 (fal-protocol.md §6 Storage, §7.2; UNCONFIRMED: the
/// real limit and answer): at once when its `Content-Length` says so, else as soon as the
/// streamed bytes pass it. Nothing is stored then.
pub(crate) async fn upload(shared: &Shared, key: &str, request: Request) -> Response {
    let limit = {
        let state = shared.state();
        match state.stored_objects.get(key) {
            Some(object) if object.multipart.is_none() => state.single_upload_limit,
            _ => return not_found(),
        }
    };
    let (parts, body) = request.into_parts();
    if content_length(&parts.headers).is_some_and(|length| length > limit) {
        return ReceiveError::TooLarge { limit }.refuse(shared, Some(body.into_data_stream()));
    }
    let received = match receive(
        shared,
        body,
        &shared.storage_dir.path().join(key),
        Some(limit),
    )
    .await
    {
        Ok(received) => received,
        Err((error, rest)) => return error.refuse(shared, rest),
    };
    let mut state = shared.state();
    let Some(object) = state.stored_objects.get_mut(key) else {
        return not_found();
    };
    let upload = object.store(received.bytes, None);
    state.uploads.push(upload);
    ([(ETAG, received.etag)], StatusCode::OK).into_response()
}

fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// A body written to disk.
pub(crate) struct Received {
    pub bytes: u64,
    /// The body's MD5 in quotes, as S3 writes an ETag.
    pub etag: String,
}

pub(crate) enum ReceiveError {
    TooLarge { limit: u64 },
    BrokeOff(io::Error),
}

impl ReceiveError {
    /// The answer to a body that was not stored. What is left of a body refused for its size is
    /// read and dropped in the background, so the client, still sending, gets the 413 instead
    /// of a reset connection.
    pub fn refuse(self, shared: &Shared, rest: Option<BodyDataStream>) -> Response {
        match self {
            ReceiveError::TooLarge { limit } => {
                if let Some(mut rest) = rest {
                    shared.spawn(async move { while rest.next().await.is_some() {} });
                }
                let detail = format!(
                    "The upload is larger than the single-upload limit of {limit} bytes; use a \
                     multipart upload"
                );
                json_response(StatusCode::PAYLOAD_TOO_LARGE, json!({ "detail": detail }))
            }
            ReceiveError::BrokeOff(error) => json_response(
                StatusCode::BAD_REQUEST,
                json!({ "detail": format!("The upload broke off: {error}") }),
            ),
        }
    }
}

/// Streams `body` into `destination` through a temporary file beside it, so a body that breaks
/// off or runs over `limit` stores nothing and leaves an earlier file in place. On failure the
/// unread rest of the body comes back with the error.
pub(crate) async fn receive(
    shared: &Shared,
    body: Body,
    destination: &Path,
    limit: Option<u64>,
) -> Result<Received, (ReceiveError, Option<BodyDataStream>)> {
    let incoming = incoming_path(shared, destination);
    let mut chunks = body.into_data_stream();
    let written = write_chunks(&incoming, &mut chunks, limit).await;
    let result = match written {
        Ok(received) => tokio::fs::rename(&incoming, destination)
            .await
            .map(|()| received)
            .map_err(|error| (ReceiveError::BrokeOff(error), None)),
        Err(ReceiveError::TooLarge { limit }) => {
            Err((ReceiveError::TooLarge { limit }, Some(chunks)))
        }
        Err(error) => Err((error, None)),
    };
    if result.is_err() {
        // Absent when the file could not even be created.
        let _ = tokio::fs::remove_file(&incoming).await;
    }
    result
}

fn incoming_path(shared: &Shared, destination: &Path) -> PathBuf {
    let name = destination
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    shared
        .storage_dir
        .path()
        .join(format!("{name}.incoming-{}", uuid::Uuid::new_v4().simple()))
}

async fn write_chunks(
    path: &Path,
    chunks: &mut BodyDataStream,
    limit: Option<u64>,
) -> Result<Received, ReceiveError> {
    let mut file = tokio::fs::File::create(path)
        .await
        .map_err(ReceiveError::BrokeOff)?;
    let mut hasher = Md5::new();
    let mut bytes = 0;
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk.map_err(|error| ReceiveError::BrokeOff(io::Error::other(error)))?;
        bytes += chunk.len() as u64;
        if let Some(limit) = limit
            && bytes > limit
        {
            return Err(ReceiveError::TooLarge { limit });
        }
        hasher.update(&chunk);
        file.write_all(&chunk)
            .await
            .map_err(ReceiveError::BrokeOff)?;
    }
    file.flush().await.map_err(ReceiveError::BrokeOff)?;
    let digest: String = hasher
        .finalize()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    Ok(Received {
        bytes,
        etag: format!("\"{digest}\""),
    })
}

/// `GET` of an uploaded file's URL, or `None` when `key` names no upload. A file not yet
/// uploaded, or past its lifecycle's expiry, answers 404 (UNCONFIRMED: the real CDN's answer
/// for an expired file).
pub(crate) async fn download(shared: &Shared, key: &str) -> Option<Response> {
    let (content_type, size) = {
        let state = shared.state();
        let object = state.stored_objects.get(key)?;
        (
            object.content_type.clone(),
            object.servable_size(state.now()),
        )
    };
    let Some(size) = size else {
        return Some(not_found());
    };
    let Ok(file) = tokio::fs::File::open(shared.storage_dir.path().join(key)).await else {
        return Some(not_found());
    };
    Some(
        (
            [
                (CONTENT_TYPE, content_type),
                (CONTENT_LENGTH, size.to_string()),
            ],
            Body::from_stream(file_chunks(file)),
        )
            .into_response(),
    )
}

/// A file's bytes in chunks, read as the client consumes them.
fn file_chunks(file: tokio::fs::File) -> impl futures_util::Stream<Item = io::Result<Bytes>> {
    stream::unfold(Some(file), |file| async move {
        let mut file = file?;
        let mut buffer = vec![0; READ_CHUNK_BYTES];
        match file.read(&mut buffer).await {
            Ok(0) => None,
            Ok(read) => {
                buffer.truncate(read);
                Some((Ok(Bytes::from(buffer)), Some(file)))
            }
            Err(error) => Some((Err(error), None)),
        }
    })
}
