//! The HTTP side: which route a request is, the faults and authentication every route shares,
//! and the handlers they lead to.

use std::sync::Arc;

use axum::Router;
use axum::body::{Body, BodyDataStream, to_bytes};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::header::AUTHORIZATION;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use serde_json::{Value, json};
use tokio::net::TcpListener;

use crate::connections::{ConnectionHandle, CuttableListener};
use crate::state::Shared;
use crate::storage::UploadFlow;
use crate::{Fault, Route, multipart, platform, queue, storage};

/// The most a request other than an upload may carry; the fake reads it whole before handling.
const BUFFERED_BODY_LIMIT: usize = 16 * 1024 * 1024;

/// Which of the fake's two origins a listener serves.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Origin {
    /// The queue, REST and file hosts.
    Fal,
    /// The platform API, `https://api.fal.ai/v1` (fal-protocol.md §7.4).
    Platform,
}

pub(crate) async fn serve(listener: TcpListener, shared: Arc<Shared>, origin: Origin) {
    let listener = CuttableListener {
        listener,
        open: shared.connections.clone(),
    };
    // Routing is done by hand in `dispatch`: every route shares counting, faults and auth, and
    // unknown paths must answer fal's 404 body.
    let app = Router::new()
        .fallback(dispatch)
        .with_state((shared, origin));
    let app = app.into_make_service_with_connect_info::<ConnectionHandle>();
    // Serving ends only when the fake drops and aborts this task.
    let _ = axum::serve(listener, app).await;
}

/// A request the fake knows, with what its path says.
enum Target {
    Submit {
        endpoint_id: String,
    },
    Status {
        owner_app: String,
        request_id: String,
    },
    StatusStream {
        owner_app: String,
        request_id: String,
    },
    Result {
        owner_app: String,
        request_id: String,
    },
    Cancel {
        owner_app: String,
        request_id: String,
    },
    StorageInitiate,
    StorageUpload {
        key: String,
    },
    StorageInitiateMultipart,
    StoragePart {
        key: String,
        part_number: String,
    },
    StorageComplete {
        key: String,
    },
    FileDownload {
        key: String,
        file_name: String,
    },
    Jwks,
    Pricing,
    PricingEstimate,
    RequestsByEndpoint,
    DeletePayloads {
        request_id: String,
    },
    BillingEvents,
    SignFileUrl,
}

impl Target {
    fn parse(origin: Origin, method: &Method, path: &str) -> Option<Target> {
        let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        if segments.iter().any(|segment| segment.is_empty()) {
            return None;
        }
        match origin {
            Origin::Fal => Self::parse_fal(method, &segments),
            Origin::Platform => Self::parse_platform(method, &segments),
        }
    }

    fn parse_fal(method: &Method, segments: &[&str]) -> Option<Target> {
        let owner_app = |owner: &str, app: &str| format!("{owner}/{app}");
        let target = match (method.clone(), segments) {
            (Method::GET, [".well-known", "jwks.json"]) => Target::Jwks,
            (Method::POST, ["storage", "upload", "initiate"]) => Target::StorageInitiate,
            (Method::POST, ["storage", "upload", "initiate-multipart"]) => {
                Target::StorageInitiateMultipart
            }
            (Method::PUT, ["uploads", key]) => Target::StorageUpload {
                key: (*key).to_owned(),
            },
            (Method::POST, [multipart::PATH, key, "complete"]) => Target::StorageComplete {
                key: (*key).to_owned(),
            },
            (Method::PUT, [multipart::PATH, key, part_number]) => Target::StoragePart {
                key: (*key).to_owned(),
                part_number: (*part_number).to_owned(),
            },
            (Method::GET, ["files", key, file_name]) => Target::FileDownload {
                key: (*key).to_owned(),
                file_name: (*file_name).to_owned(),
            },
            // Status, result and cancel take `owner/app` only; a URL with the endpoint's
            // sub-path does not match and answers 404, as it does at fal.
            (Method::GET, [owner, app, "requests", id, "status"]) => Target::Status {
                owner_app: owner_app(owner, app),
                request_id: (*id).to_owned(),
            },
            (Method::GET, [owner, app, "requests", id, "status", "stream"]) => {
                Target::StatusStream {
                    owner_app: owner_app(owner, app),
                    request_id: (*id).to_owned(),
                }
            }
            (Method::GET, [owner, app, "requests", id]) => Target::Result {
                owner_app: owner_app(owner, app),
                request_id: (*id).to_owned(),
            },
            (Method::PUT, [owner, app, "requests", id, "cancel"]) => Target::Cancel {
                owner_app: owner_app(owner, app),
                request_id: (*id).to_owned(),
            },
            (Method::POST, [_, _, ..]) => Target::Submit {
                endpoint_id: segments.join("/"),
            },
            _ => return None,
        };
        Some(target)
    }

    fn parse_platform(method: &Method, segments: &[&str]) -> Option<Target> {
        let target = match (method.clone(), segments) {
            (Method::GET, ["v1", "models", "pricing"]) => Target::Pricing,
            (Method::POST, ["v1", "models", "pricing", "estimate"]) => Target::PricingEstimate,
            (Method::GET, ["v1", "models", "requests", "by-endpoint"]) => {
                Target::RequestsByEndpoint
            }
            (Method::DELETE, ["v1", "models", "requests", id, "payloads"]) => {
                Target::DeletePayloads {
                    request_id: (*id).to_owned(),
                }
            }
            (Method::GET, ["v1", "models", "billing-events"]) => Target::BillingEvents,
            (Method::POST, ["v1", "storage", "files", "sign"]) => Target::SignFileUrl,
            _ => return None,
        };
        Some(target)
    }

    fn route(&self) -> Route {
        match self {
            Target::Submit { .. } => Route::Submit,
            Target::Status { .. } => Route::Status,
            Target::StatusStream { .. } => Route::StatusStream,
            Target::Result { .. } => Route::Result,
            Target::Cancel { .. } => Route::Cancel,
            Target::StorageInitiate => Route::StorageInitiate,
            Target::StorageUpload { .. } => Route::StorageUpload,
            Target::StorageInitiateMultipart => Route::StorageInitiateMultipart,
            Target::StoragePart { .. } => Route::StoragePart,
            Target::StorageComplete { .. } => Route::StorageComplete,
            Target::FileDownload { .. } => Route::FileDownload,
            Target::Jwks => Route::Jwks,
            Target::Pricing => Route::Pricing,
            Target::PricingEstimate => Route::PricingEstimate,
            Target::RequestsByEndpoint => Route::RequestsByEndpoint,
            Target::DeletePayloads { .. } => Route::DeletePayloads,
            Target::BillingEvents => Route::BillingEvents,
            Target::SignFileUrl => Route::SignFileUrl,
        }
    }

    /// Upload URLs and file URLs carry their own permission (pre-signed, public CDN); the key
    /// set is public. The platform API checks its key itself, for its own error envelope and
    /// its admin scope.
    fn needs_api_key(&self) -> bool {
        matches!(
            self,
            Target::Submit { .. }
                | Target::Status { .. }
                | Target::StatusStream { .. }
                | Target::Result { .. }
                | Target::Cancel { .. }
                | Target::StorageInitiate
                | Target::StorageInitiateMultipart
        )
    }

    /// Upload bodies stream to disk; every other body is read whole before handling.
    fn streams_body(&self) -> bool {
        matches!(
            self,
            Target::StorageUpload { .. } | Target::StoragePart { .. }
        )
    }
}

async fn dispatch(
    State((shared, origin)): State<(Arc<Shared>, Origin)>,
    ConnectInfo(connection): ConnectInfo<ConnectionHandle>,
    request: Request,
) -> Response {
    let Some(target) = Target::parse(origin, request.method(), request.uri().path()) else {
        return match origin {
            Origin::Fal => not_found(),
            Origin::Platform => platform::unknown_route(),
        };
    };
    // A request arrives once it is complete; from then on it is handled to the end even if its
    // client goes away (as a server that received it would), so a test that kills the client at
    // `FakeFal::wait_for` knows the submit took effect. Uploads stream and arrive with their head.
    let request = if target.streams_body() {
        request
    } else {
        let (parts, body) = request.into_parts();
        let Ok(body) = to_bytes(body, BUFFERED_BODY_LIMIT).await else {
            return json_response(
                StatusCode::PAYLOAD_TOO_LARGE,
                json!({ "detail": "Request body too large" }),
            );
        };
        Request::from_parts(parts, Body::from(body))
    };
    let route = target.route();
    shared.record_arrival(route);
    let fault = shared
        .state()
        .faults
        .take(|fault| fault.route() == Some(route));
    match fault {
        Some(Fault::Status {
            status,
            body,
            headers,
            ..
        }) => fault_response(status, body, &headers),
        Some(Fault::DropConnection { .. }) => {
            connection.cut();
            // Nothing reaches the client: the socket is already shut.
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
        Some(Fault::Delay { delay, .. }) => {
            let response = handle_detached(shared, target, request).await;
            tokio::time::sleep(delay).await;
            response
        }
        Some(Fault::AcceptThenAnswer {
            status,
            body,
            headers,
            ..
        }) => {
            handle_detached(shared, target, request).await;
            raw_response(status, body, &headers)
        }
        Some(Fault::AcceptThenDrop { .. }) => {
            handle_detached(shared, target, request).await;
            connection.cut();
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
        Some(Fault::StallBody { bytes, .. }) => {
            let response = handle_detached(shared, target, request).await;
            cut_short(response, bytes, true)
        }
        Some(Fault::TruncateBody { bytes, .. }) => {
            let response = handle_detached(shared, target, request).await;
            cut_short(response, bytes, false)
        }
        Some(Fault::StallUpload { bytes, .. }) => {
            // Holding the rest of the body unread keeps the connection open and hyper from
            // reading on, so the client's writes back up.
            let _unread = read_at_least(request.into_body(), bytes).await;
            std::future::pending().await
        }
        Some(Fault::DropUpload { bytes, .. }) => {
            drop(read_at_least(request.into_body(), bytes).await);
            connection.cut();
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
        _ => handle_detached(shared, target, request).await,
    }
}

/// Reads and discards at least the first `bytes` of `body` (all of it when shorter) and returns
/// the rest, unread.
async fn read_at_least(body: Body, bytes: usize) -> BodyDataStream {
    let mut chunks = body.into_data_stream();
    let mut read = 0;
    while read < bytes {
        match chunks.next().await {
            Some(Ok(chunk)) => read += chunk.len(),
            _ => break,
        }
    }
    chunks
}

/// Handles the request on a task of its own, which runs on when the connection drops.
async fn handle_detached(shared: Arc<Shared>, target: Target, request: Request) -> Response {
    tokio::spawn(async move { handle(&shared, target, request).await })
        .await
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

async fn handle(shared: &Arc<Shared>, target: Target, request: Request) -> Response {
    if target.needs_api_key()
        && let Some(rejection) = api_key_rejection(request.headers(), &shared.api_key)
    {
        return rejection;
    }
    match target {
        Target::Submit { endpoint_id } => queue::submit(shared, endpoint_id, request).await,
        Target::Status {
            owner_app,
            request_id,
        } => queue::status(shared, &owner_app, &request_id, request.uri()),
        Target::StatusStream {
            owner_app,
            request_id,
        } => queue::status_stream(shared.clone(), owner_app, request_id, request.uri()),
        Target::Result {
            owner_app,
            request_id,
        } => queue::result(shared, &owner_app, &request_id),
        Target::Cancel {
            owner_app,
            request_id,
        } => queue::cancel(shared, &owner_app, &request_id),
        Target::StorageInitiate => storage::initiate(shared, request, UploadFlow::Single).await,
        Target::StorageInitiateMultipart => {
            storage::initiate(shared, request, UploadFlow::Multipart).await
        }
        Target::StorageUpload { key } => storage::upload(shared, &key, request).await,
        Target::StoragePart { key, part_number } => {
            multipart::upload_part(shared, &key, &part_number, request).await
        }
        Target::StorageComplete { key } => multipart::complete(shared, &key, request).await,
        Target::FileDownload { key, file_name } => match storage::download(shared, &key).await {
            Some(response) => response,
            None => queue::output_file(shared, &key, &file_name, request.uri()),
        },
        Target::Jwks => json_response(StatusCode::OK, shared.signer.jwks()),
        Target::Pricing => platform::pricing(shared, &request).into_response(),
        Target::PricingEstimate => platform::estimate(shared, request).await.into_response(),
        Target::RequestsByEndpoint => {
            platform::requests_by_endpoint(shared, &request).into_response()
        }
        Target::DeletePayloads { request_id } => {
            platform::delete_payloads(shared, &request_id, &request).into_response()
        }
        Target::BillingEvents => platform::billing_events(shared, &request).into_response(),
        Target::SignFileUrl => platform::sign_file_url(shared, request)
            .await
            .into_response(),
    }
}

/// The 401 for a request without `Authorization: Key <api_key>`. UNCONFIRMED: the bodies of
/// fal's 401 answers.
fn api_key_rejection(headers: &HeaderMap, api_key: &str) -> Option<Response> {
    let detail = match headers.get(AUTHORIZATION) {
        None => "Missing Authorization header; expected 'Key <FAL_KEY>'",
        Some(value) if value.to_str().ok() == Some(&format!("Key {api_key}")) => return None,
        Some(_) => "Invalid API key",
    };
    Some(json_response(
        StatusCode::UNAUTHORIZED,
        json!({ "detail": detail }),
    ))
}

fn fault_response(status: u16, body: Value, headers: &[(String, String)]) -> Response {
    // `FakeFal::push_fault` checked the status and headers.
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    with_headers(json_response(status, body), headers)
}

fn raw_response(status: u16, body: String, headers: &[(String, String)]) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    with_headers((status, body).into_response(), headers)
}

fn with_headers(mut response: Response, headers: &[(String, String)]) -> Response {
    for (name, value) in headers {
        if let (Ok(name), Ok(value)) = (
            HeaderName::try_from(name.as_str()),
            HeaderValue::try_from(value.as_str()),
        ) {
            response.headers_mut().append(name, value);
        }
    }
    response
}

/// The response's head and its first `bytes`, then silence (`stall`) or an aborted connection.
/// The head keeps its `Content-Length`, so the client waits for the rest.
fn cut_short(response: Response, bytes: usize, stall: bool) -> Response {
    let (parts, body) = response.into_parts();
    let head = futures_util::stream::once(async move {
        let whole = to_bytes(body, usize::MAX).await.unwrap_or_default();
        Ok::<_, std::io::Error>(whole.slice(..bytes.min(whole.len())))
    });
    let tail = futures_util::stream::once(async move {
        if stall {
            std::future::pending::<()>().await;
        }
        // Pending once, so hyper flushes the head and the first bytes before the error in the
        // body makes it abort the connection.
        tokio::task::yield_now().await;
        Err(std::io::Error::other("the body was cut short"))
    });
    Response::from_parts(parts, Body::from_stream(head.chain(tail)))
}

pub(crate) fn json_response(status: StatusCode, body: Value) -> Response {
    (status, axum::Json(body)).into_response()
}

/// An error answer, small enough to travel in a `Result` and turned into a JSON response at the
/// end.
pub(crate) struct Rejection {
    pub status: StatusCode,
    pub body: Value,
}

impl Rejection {
    /// fal's usual error body, `{"detail": …}`.
    pub fn detail(status: StatusCode, detail: impl Into<String>) -> Self {
        Self {
            status,
            body: json!({ "detail": detail.into() }),
        }
    }
}

impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        json_response(self.status, self.body)
    }
}

/// What fal answers for a path it does not serve.
pub(crate) fn not_found() -> Response {
    json_response(StatusCode::NOT_FOUND, json!({ "detail": "Not Found" }))
}

/// UNCONFIRMED: what fal answers for an unknown request id at status and result (only the cancel
/// docs list an answer, `NOT_FOUND`).
pub(crate) fn request_not_found() -> Response {
    json_response(
        StatusCode::NOT_FOUND,
        json!({ "detail": "Request not found" }),
    )
}
