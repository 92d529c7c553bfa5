//! fal's REST storage upload (fal-protocol.md §3): initiate hands out an upload URL and a public
//! file URL, a PUT to the first stores the bytes, a GET of the second serves them. Files live in
//! a temporary folder so that tests can upload tens of megabytes.

use std::io;
use std::path::PathBuf;

use axum::body::{Body, to_bytes};
use axum::extract::Request;
use axum::http::StatusCode;
use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::{StreamExt, stream};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::Upload;
use crate::jobs::validation_item;
use crate::server::{json_response, not_found};
use crate::state::Shared;

const READ_CHUNK_BYTES: usize = 64 * 1024;

pub(crate) struct StoredObject {
    file_name: String,
    content_type: String,
    file_url: String,
    /// `None` until the upload arrives.
    size: Option<u64>,
}

/// `POST /storage/upload/initiate?storage_type=…` with `{content_type, file_name}`.
pub(crate) async fn initiate(shared: &Shared, request: Request) -> Response {
    // `dispatch` has read the body already and enforced its limit.
    let Ok(body) = to_bytes(request.into_body(), usize::MAX).await else {
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
    let upload_url = format!("{}/uploads/{key}", shared.base_url);
    shared.state().stored_objects.insert(
        key,
        StoredObject {
            file_name,
            content_type,
            file_url: file_url.clone(),
            size: None,
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

/// `PUT` of an upload URL: no fal auth, the URL itself is the permission.
pub(crate) async fn upload(shared: &Shared, key: &str, body: Body) -> Response {
    if !shared.state().stored_objects.contains_key(key) {
        return not_found();
    }
    let size = match write_file(shared.storage_dir.path().join(key), body).await {
        Ok(size) => size,
        Err(error) => {
            return json_response(
                StatusCode::BAD_REQUEST,
                json!({ "detail": format!("The upload broke off: {error}") }),
            );
        }
    };
    let mut state = shared.state();
    let Some(object) = state.stored_objects.get_mut(key) else {
        return not_found();
    };
    object.size = Some(size);
    let upload = Upload {
        file_name: object.file_name.clone(),
        content_type: object.content_type.clone(),
        bytes: size,
        file_url: object.file_url.clone(),
    };
    state.uploads.push(upload);
    StatusCode::OK.into_response()
}

async fn write_file(path: PathBuf, body: Body) -> io::Result<u64> {
    let mut file = tokio::fs::File::create(path).await?;
    let mut chunks = body.into_data_stream();
    let mut size = 0;
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk.map_err(io::Error::other)?;
        file.write_all(&chunk).await?;
        size += chunk.len() as u64;
    }
    file.flush().await?;
    Ok(size)
}

/// `GET` of an uploaded file's URL, or `None` when `key` names no upload.
pub(crate) async fn download(shared: &Shared, key: &str) -> Option<Response> {
    let (content_type, size) = {
        let state = shared.state();
        let object = state.stored_objects.get(key)?;
        (object.content_type.clone(), object.size)
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
