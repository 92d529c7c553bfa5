//! fal's multipart upload as fal-js and the `fal` SDK drive it (fal-protocol.md §7.2 B): the
//! initiate call hands out an `upload_url` with a query string; each part is a `PUT` of
//! `{upload_url path}/{partNumber}{upload_url query}` answered with `{"partNumber", "etag"}` and
//! an `ETag` header; `POST {upload_url path}/complete{upload_url query}` with
//! `{"parts": [{"partNumber", "etag"}, …]}` joins the parts in part-number order into the file
//! at `file_url`. Parts stream to the storage folder, never whole into memory.

use std::collections::BTreeMap;
use std::path::PathBuf;

use axum::body::to_bytes;
use axum::extract::{Query, Request};
use axum::http::header::ETAG;
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use tokio::io::AsyncWriteExt;

use crate::server::{Rejection, json_response};
use crate::state::Shared;
use crate::storage;

/// The first path segment of multipart upload URLs.
pub(crate) const PATH: &str = "multipart";
/// S3's part-number range.
const MAX_PART_NUMBER: u32 = 10_000;

/// A multipart upload's parts, until `complete` joins them.
pub(crate) struct MultipartUpload {
    /// The upload URL's `upload_id` query parameter: a part or `complete` URL without it is
    /// refused, so a client must keep the query when it builds them.
    upload_id: String,
    parts: BTreeMap<u32, StoredPart>,
}

struct StoredPart {
    etag: String,
    bytes: u64,
}

impl MultipartUpload {
    pub fn new() -> Self {
        Self {
            upload_id: uuid::Uuid::new_v4().to_string(),
            parts: BTreeMap::new(),
        }
    }
}

pub(crate) fn upload_url(shared: &Shared, key: &str, upload: &MultipartUpload) -> String {
    format!(
        "{}/{PATH}/{key}?upload_id={}",
        shared.base_url, upload.upload_id
    )
}

fn part_path(shared: &Shared, key: &str, part_number: u32) -> PathBuf {
    shared
        .storage_dir
        .path()
        .join(format!("{key}.part-{part_number}"))
}

/// Where a part or `complete` URL leads.
enum UploadState {
    InProgress { upload_id: String },
    Completed,
}

/// The multipart upload `key` names, when the URL's query carries its `upload_id`. An unknown
/// upload answers 404, a missing or wrong query 403, as a pre-signed URL with a broken signature
/// would (UNCONFIRMED: the real answers).
fn find_upload(shared: &Shared, key: &str, uri: &Uri) -> Result<UploadState, Rejection> {
    let state = shared.state();
    let Some((object, upload)) = state
        .stored_objects
        .get(key)
        .and_then(|object| Some((object, object.multipart.as_ref()?)))
    else {
        return Err(Rejection::detail(
            StatusCode::NOT_FOUND,
            "No such multipart upload",
        ));
    };
    let query_id = Query::<BTreeMap<String, String>>::try_from_uri(uri)
        .ok()
        .and_then(|Query(mut query)| query.remove("upload_id"));
    if query_id.as_deref() != Some(upload.upload_id.as_str()) {
        return Err(Rejection::detail(
            StatusCode::FORBIDDEN,
            "The upload URL's query is missing or does not match the upload",
        ));
    }
    Ok(if object.is_stored() {
        UploadState::Completed
    } else {
        UploadState::InProgress {
            upload_id: upload.upload_id.clone(),
        }
    })
}

/// `PUT {upload_url path}/{partNumber}{upload_url query}` with the raw chunk; no fal auth. Parts
/// may come in any order, and a part sent again replaces the earlier one.
pub(crate) async fn upload_part(
    shared: &Shared,
    key: &str,
    part_number: &str,
    request: Request,
) -> Response {
    let upload_id = match find_upload(shared, key, request.uri()) {
        Ok(UploadState::InProgress { upload_id }) => upload_id,
        Ok(UploadState::Completed) => {
            return json_response(
                StatusCode::NOT_FOUND,
                json!({ "detail": "The multipart upload is already complete" }),
            );
        }
        Err(rejection) => return rejection.into_response(),
    };
    let Some(part_number) = part_number
        .parse::<u32>()
        .ok()
        .filter(|number| (1..=MAX_PART_NUMBER).contains(number))
    else {
        return json_response(
            StatusCode::BAD_REQUEST,
            json!({ "detail": format!("Part numbers run from 1 to {MAX_PART_NUMBER}") }),
        );
    };
    let destination = part_path(shared, key, part_number);
    let received = match storage::receive(shared, request.into_body(), &destination, None).await {
        Ok(received) => received,
        Err((error, rest)) => return error.refuse(shared, rest),
    };
    let mut state = shared.state();
    let Some(upload) = state
        .stored_objects
        .get_mut(key)
        .and_then(|object| object.multipart.as_mut())
    else {
        return StatusCode::NOT_FOUND.into_response();
    };
    upload.parts.insert(
        part_number,
        StoredPart {
            etag: received.etag.clone(),
            bytes: received.bytes,
        },
    );
    state
        .part_uploads
        .push((upload_id, part_number, received.bytes));
    // fal-js reads the etag from the JSON, the `fal` SDK from the header (§7.2 B).
    (
        [(ETAG, received.etag.clone())],
        json_response(
            StatusCode::OK,
            json!({ "partNumber": part_number, "etag": received.etag }),
        ),
    )
        .into_response()
}

#[derive(Deserialize)]
struct CompleteBody {
    parts: Vec<ListedPart>,
}

#[derive(Deserialize)]
struct ListedPart {
    #[serde(rename = "partNumber")]
    part_number: u32,
    etag: String,
}

/// `POST {upload_url path}/complete{upload_url query}` with the parts in any order. The list
/// must number the parts 1..N with no gap or repeat, each uploaded with that etag (quoted or
/// not, as S3 accepts); otherwise 400 with a `detail` (UNCONFIRMED: the real answers). Uploaded
/// parts past N are left out, as S3 does. Completing again answers as the first time did.
pub(crate) async fn complete(shared: &Shared, key: &str, request: Request) -> Response {
    match find_upload(shared, key, request.uri()) {
        Ok(UploadState::InProgress { .. }) => {}
        Ok(UploadState::Completed) => return json_response(StatusCode::OK, json!({})),
        Err(rejection) => return rejection.into_response(),
    }
    // `dispatch` has read the body already and enforced its limit.
    let body = to_bytes(request.into_body(), usize::MAX)
        .await
        .unwrap_or_default();
    let Ok(CompleteBody { mut parts }) = serde_json::from_slice(&body) else {
        return bad_completion(
            "The body must be {\"parts\": [{\"partNumber\": n, \"etag\": \"…\"}, …]}".into(),
        );
    };
    parts.sort_by_key(|part| part.part_number);
    if parts.is_empty()
        || parts
            .iter()
            .zip(1..)
            .any(|(part, expected)| part.part_number != expected)
    {
        return bad_completion("The parts must be numbered 1 to N, each once".into());
    }
    let mut size = 0;
    {
        let state = shared.state();
        let Some(upload) = state
            .stored_objects
            .get(key)
            .and_then(|object| object.multipart.as_ref())
        else {
            return StatusCode::NOT_FOUND.into_response();
        };
        for listed in &parts {
            let Some(stored) = upload.parts.get(&listed.part_number) else {
                return bad_completion(format!("Part {} was not uploaded", listed.part_number));
            };
            if stored.etag.trim_matches('"') != listed.etag.trim_matches('"') {
                return bad_completion(format!(
                    "The etag of part {} does not match",
                    listed.part_number
                ));
            }
            size += stored.bytes;
        }
    }
    let sources: Vec<PathBuf> = parts
        .iter()
        .map(|part| part_path(shared, key, part.part_number))
        .collect();
    if let Err(error) = join(shared, key, &sources).await {
        return json_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            json!({ "detail": format!("The parts could not be joined: {error}") }),
        );
    }
    {
        let mut state = shared.state();
        let part_count = parts.len() as u32;
        if let Some(object) = state.stored_objects.get_mut(key)
            && !object.is_stored()
        {
            let upload = object.store(size, Some(part_count));
            state.uploads.push(upload);
        }
    }
    for source in sources {
        // The parts are joined; a part file already gone changes nothing.
        let _ = tokio::fs::remove_file(source).await;
    }
    json_response(StatusCode::OK, json!({}))
}

/// Concatenates the part files into the object's file, through a temporary name.
async fn join(shared: &Shared, key: &str, sources: &[PathBuf]) -> std::io::Result<()> {
    let destination = shared.storage_dir.path().join(key);
    let joining = shared
        .storage_dir
        .path()
        .join(format!("{key}.joining-{}", uuid::Uuid::new_v4().simple()));
    let mut file = tokio::fs::File::create(&joining).await?;
    for source in sources {
        let mut part = tokio::fs::File::open(source).await?;
        tokio::io::copy(&mut part, &mut file).await?;
    }
    file.flush().await?;
    tokio::fs::rename(&joining, &destination).await
}

fn bad_completion(detail: String) -> Response {
    json_response(StatusCode::BAD_REQUEST, json!({ "detail": detail }))
}
