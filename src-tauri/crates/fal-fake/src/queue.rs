//! The queue routes (fal-protocol.md §1.3–§1.7) and the downloads of a job's output files.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes, to_bytes};
use axum::extract::{Query, Request};
use axum::http::header::{CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE};
use axum::http::{HeaderName, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use futures_util::stream;
use serde_json::{Value, json};
use tokio::time::Instant;
use uuid::Uuid;

use crate::jobs::{self, Job, JobError, JobKind, JobResult};
use crate::lifecycle::{self, LIFECYCLE_PREFERENCE};
use crate::server::{json_response, not_found, request_not_found};
use crate::state::{Faults, Shared};
use crate::{Acl, Fault, Submission};

/// How often a status stream looks at its job for a change to send.
const STREAM_TICK: Duration = Duration::from_millis(100);
const PING_AFTER_QUIET_TICKS: u32 = 3;

/// `POST /{owner}/{app}[/{path…}]`
pub(crate) async fn submit(
    shared: &Arc<Shared>,
    endpoint_id: String,
    request: Request,
) -> Response {
    let (parts, body) = request.into_parts();
    let header = |name: &str| {
        parts
            .headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned)
    };
    let request_timeout = match header("x-fal-request-timeout") {
        None => None,
        Some(value) => match parse_request_timeout(&value) {
            Some(timeout) => Some(timeout),
            // UNCONFIRMED: how fal rejects a bad timeout header.
            None => {
                return json_response(
                    StatusCode::BAD_REQUEST,
                    json!({
                        "detail": "X-Fal-Request-Timeout must be a number of seconds greater than 1",
                        "error_type": "bad_request",
                    }),
                );
            }
        },
    };
    // UNCONFIRMED: how fal refuses a preference that is not JSON (fal-protocol.md §7.3).
    let lifecycle_preference = match lifecycle::parse(&parts.headers, LIFECYCLE_PREFERENCE) {
        Ok(preference) => preference,
        Err(rejection) => return rejection.into_response(),
    };
    // `dispatch` has read the body already and enforced its limit.
    let Ok(body) = to_bytes(body, usize::MAX).await else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    // The queue stores any JSON; the app validates the fields when the job runs.
    let input: Value = match serde_json::from_slice(&body) {
        Ok(input) => input,
        Err(error) => {
            let item =
                jobs::validation_item(&["body"], &error.to_string(), "value_error.jsondecode");
            return json_response(
                StatusCode::UNPROCESSABLE_ENTITY,
                json!({ "detail": [item] }),
            );
        }
    };
    let request_id = Uuid::new_v4().to_string();
    let submission = Submission {
        endpoint_id,
        request_id: request_id.clone(),
        input,
        webhook_url: query_params(&parts.uri).remove("fal_webhook"),
        priority: header("x-fal-queue-priority"),
        request_timeout,
        no_retry: header("x-fal-no-retry").is_some_and(|value| {
            ["1", "true", "yes"].contains(&value.to_ascii_lowercase().as_str())
        }),
        store_io: header("x-fal-store-io"),
        lifecycle_preference,
    };

    let answer = {
        let mut state = shared.state();
        let kind = if state.inference_endpoints.contains(&submission.endpoint_id) {
            JobKind::Inference
        } else {
            JobKind::Training
        };
        let sent_at = state.wall_now();
        let job = Job::new(&submission, state.script.clone(), kind, sent_at);
        let answer = job.submitted(&shared.base_url);
        state.jobs.insert(request_id.clone(), job);
        state.submissions.push(submission);
        answer
    };
    shared.spawn(jobs::run(shared.clone(), request_id));
    json_response(StatusCode::OK, answer)
}

/// A request timeout header value in seconds; fal requires more than one second.
fn parse_request_timeout(value: &str) -> Option<Duration> {
    let seconds: f64 = value.trim().parse().ok()?;
    (seconds.is_finite() && seconds > 1.0).then(|| Duration::from_secs_f64(seconds))
}

fn query_params(uri: &Uri) -> HashMap<String, String> {
    Query::try_from_uri(uri)
        .map(|Query(params)| params)
        .unwrap_or_default()
}

/// The `logs` query parameter, `None` when it is not a boolean. Clients send `1`/`0` (JS, the fal
/// SDK) or `true`/`false` (Python).
fn wants_logs(uri: &Uri) -> Option<bool> {
    match query_params(uri).get("logs").map(String::as_str) {
        None | Some("0" | "false") => Some(false),
        Some("1" | "true") => Some(true),
        Some(_) => None,
    }
}

fn invalid_logs_parameter() -> Response {
    let item = jobs::validation_item(
        &["query", "logs"],
        "value could not be parsed to a boolean",
        "type_error.bool",
    );
    json_response(
        StatusCode::UNPROCESSABLE_ENTITY,
        json!({ "detail": [item] }),
    )
}

/// `GET /{owner}/{app}/requests/{id}/status?logs=…`
pub(crate) fn status(shared: &Shared, owner_app: &str, request_id: &str, uri: &Uri) -> Response {
    let Some(with_logs) = wants_logs(uri) else {
        return invalid_logs_parameter();
    };
    let state = shared.state();
    let Some(job) = state.job(owner_app, request_id) else {
        return request_not_found();
    };
    let (code, body) = job.status(&shared.base_url, with_logs, Instant::now());
    json_response(code, body)
}

/// `GET /{owner}/{app}/requests/{id}/status/stream?logs=…`: server-sent events, each the status
/// answer as JSON, with `: ping` comments between; the stream ends after `COMPLETED`.
pub(crate) fn status_stream(
    shared: Arc<Shared>,
    owner_app: String,
    request_id: String,
    uri: &Uri,
) -> Response {
    let Some(with_logs) = wants_logs(uri) else {
        return invalid_logs_parameter();
    };
    if shared.state().job(&owner_app, &request_id).is_none() {
        return request_not_found();
    }
    let events = StatusEvents {
        shared,
        owner_app,
        request_id,
        with_logs,
        last_sent: None,
        quiet_ticks: 0,
        completed: false,
    };
    (
        [
            (CONTENT_TYPE, "text/event-stream"),
            (CACHE_CONTROL, "no-cache"),
        ],
        Body::from_stream(stream::unfold(events, StatusEvents::next)),
    )
        .into_response()
}

struct StatusEvents {
    shared: Arc<Shared>,
    owner_app: String,
    request_id: String,
    with_logs: bool,
    last_sent: Option<Value>,
    /// Ticks since the last frame; after a few, a `: ping` keeps the connection alive.
    quiet_ticks: u32,
    completed: bool,
}

impl StatusEvents {
    async fn next(mut self) -> Option<(Result<Bytes, Infallible>, Self)> {
        loop {
            if self.completed {
                return None;
            }
            if self.last_sent.is_some() {
                if self.quiet_ticks == PING_AFTER_QUIET_TICKS {
                    self.quiet_ticks = 0;
                    return Some((Ok(Bytes::from_static(b": ping\n\n")), self));
                }
                tokio::time::sleep(STREAM_TICK).await;
            }
            let status = {
                let state = self.shared.state();
                let job = state.job(&self.owner_app, &self.request_id)?;
                job.status(&self.shared.base_url, self.with_logs, Instant::now())
                    .1
            };
            if self.last_sent.as_ref() == Some(&status) {
                self.quiet_ticks += 1;
                continue;
            }
            self.quiet_ticks = 0;
            self.completed = status["status"] == "COMPLETED";
            let event = Bytes::from(format!("data: {status}\n\n"));
            self.last_sent = Some(status);
            return Some((Ok(event), self));
        }
    }
}

/// `GET /{owner}/{app}/requests/{id}`: the bare model output, or the job's error as the app
/// answered it; `x-fal-request-id` either way.
pub(crate) fn result(shared: &Shared, owner_app: &str, request_id: &str) -> Response {
    let state = &mut *shared.state();
    let now = state.now();
    let Some(job) = state
        .jobs
        .get_mut(request_id)
        .filter(|job| job.owner_app == owner_app && !job.forgotten)
    else {
        return request_not_found();
    };
    if job.result().is_some()
        && (past_retention(job, &mut state.faults) || !job.result_available(&shared.base_url, now))
    {
        return request_not_found();
    }
    let mut response = match job.result() {
        None => {
            return json_response(
                StatusCode::BAD_REQUEST,
                job.still_in_progress(&shared.base_url),
            );
        }
        Some(JobResult::Output(output)) => {
            json_response(StatusCode::OK, job.output(&shared.base_url, output))
        }
        Some(JobResult::Error(error)) => error_response(error),
    };
    if let Ok(request_id) = HeaderValue::from_str(request_id) {
        response
            .headers_mut()
            .insert("x-fal-request-id", request_id);
    }
    response
}

fn error_response(error: &JobError) -> Response {
    let mut response = json_response(error.status, error.body.clone());
    for (name, value) in &error.headers {
        if let Ok(value) = HeaderValue::from_str(value) {
            response
                .headers_mut()
                .insert(HeaderName::from_static(name), value);
        }
    }
    response
}

/// Whether a completed job's result is gone; a pending [`Fault::ResultExpired`] expires it now.
fn past_retention(job: &mut Job, faults: &mut Faults) -> bool {
    if !job.expired
        && faults
            .take(|fault| *fault == Fault::ResultExpired)
            .is_some()
    {
        job.expired = true;
    }
    job.expired
}

/// `PUT /{owner}/{app}/requests/{id}/cancel` (fal-protocol.md §1.7). A queued job leaves the
/// queue; a running one gets the signal and stops or not as its script says (fal leaves that to
/// the app). An unknown or forgotten request answers 404 `{"status": "NOT_FOUND"}`.
pub(crate) fn cancel(shared: &Shared, owner_app: &str, request_id: &str) -> Response {
    let mut state = shared.state();
    let Some(job) = state.job(owner_app, request_id) else {
        return json_response(StatusCode::NOT_FOUND, json!({ "status": "NOT_FOUND" }));
    };
    if job.result().is_some() {
        return json_response(
            StatusCode::BAD_REQUEST,
            json!({ "status": "ALREADY_COMPLETED" }),
        );
    }
    job.cancel.notify_one();
    state.cancel_requests.push(request_id.to_owned());
    json_response(
        StatusCode::ACCEPTED,
        json!({ "status": "CANCELLATION_REQUESTED" }),
    )
}

/// `GET /files/{request_id}/{file}`: a completed job's output file (a LoRA and its config, or
/// an inference's images), public like fal's CDN, until its lifecycle expires or its payloads
/// are deleted (fal-protocol.md §7.3, §7.4). A forgotten request's files stay: CDN files outlive
/// the queue's record.
pub(crate) fn output_file(
    shared: &Shared,
    request_id: &str,
    file_name: &str,
    uri: &Uri,
) -> Response {
    let state = &mut *shared.state();
    let now = state.now();
    let file_url = format!("{}/files/{request_id}/{file_name}", shared.base_url);
    if !state.may_read_output(&file_url, uri.query()) {
        return match state.output_acl {
            Acl::Hide => not_found(),
            _ => json_response(StatusCode::FORBIDDEN, json!({ "detail": "Forbidden" })),
        };
    }
    let Some(job) = state.jobs.get_mut(request_id) else {
        return not_found();
    };
    let Some((content_type, size, body)) = job.output_file(file_name) else {
        return not_found();
    };
    if !job.output_available(file_name, now) || past_retention(job, &mut state.faults) {
        return not_found();
    }
    state
        .output_downloads
        .push(format!("/files/{request_id}/{file_name}"));
    (
        [
            (CONTENT_TYPE, content_type.to_owned()),
            (CONTENT_LENGTH, size.to_string()),
        ],
        body,
    )
        .into_response()
}
