//! A job's life: queued, running (a training with step logs, or an inference), completed with
//! its output (a LoRA, or images) or an error; and the JSON its status, result and webhook show
//! at each point.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::StatusCode;
use bytes::Bytes;
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};
use tokio::sync::Notify;
use tokio::time::{Instant, sleep};

use crate::download::{self, DownloadError};
use crate::inference::{self, Generation};
use crate::lora::lora_file;
use crate::state::Shared;
use crate::{Outcome, Refusal, Script, Submission, lifecycle, webhooks};

pub const LORA_FILE_NAME: &str = "pytorch_lora_weights.safetensors";
pub const CONFIG_FILE_NAME: &str = "config.json";

/// How long fal keeps a result (fal-protocol.md §8.1): its payload storage period ("Payloads are
/// stored for 30 days by default", §7.3); with `X-Fal-Store-IO: 0`, an hour, or 6 minutes from
/// 10 KB.
const PAYLOAD_STORAGE_PERIOD: Duration = Duration::from_secs(30 * 24 * 3600);
const SMALL_RESULT_RETENTION: Duration = Duration::from_secs(3600);
const LARGE_RESULT_RETENTION: Duration = Duration::from_secs(6 * 60);
const SMALL_RESULT_BYTES: usize = 10 * 1024;

/// How many requests pretend to be ahead of a new one; `queue_position` counts down from here
/// to 0 over the queue time.
const QUEUE_AHEAD_AT_SUBMIT: f64 = 3.0;
/// Step lines logged over a run.
const STEP_LOG_LINES: u32 = 20;
/// A status shows only log entries this recent, and at most this many of them: fal's window
/// moves, it is not a growing prefix (fal-protocol.md §1.4).
const LOG_WINDOW: Duration = Duration::from_secs(5);
const LOG_WINDOW_ENTRIES: usize = 8;

/// What a job's endpoint does when the job runs.
#[derive(Clone, Copy)]
pub(crate) enum JobKind {
    /// A LoRA trainer: takes `images_data_url`, yields `diffusers_lora_file` and `config_file`.
    Training,
    /// A LoRA inference endpoint such as `fal-ai/flux-lora`: yields images.
    Inference,
}

pub(crate) struct Job {
    pub request_id: String,
    pub endpoint_id: String,
    kind: JobKind,
    /// The `owner/app` part of the endpoint id, the only part status, result and cancel URLs use.
    pub owner_app: String,
    input: Value,
    script: Script,
    webhook_url: Option<String>,
    request_timeout: Option<Duration>,
    submitted_at: Instant,
    phase: Phase,
    logs: Vec<LogEntry>,
    /// Holds a permit once a cancel is accepted; the job's driver takes it.
    pub cancel: Arc<Notify>,
    /// Past fal's retention: the result and the output files are gone.
    pub expired: bool,
    /// Forgotten by the queue (`FakeFal::forget_request`): status, result and cancel answer 404;
    /// the request history still shows it.
    pub forgotten: bool,
    /// The wall-clock times the request history shows (fal-protocol.md §7.4).
    pub sent_at: DateTime<Utc>,
    started_at: Option<DateTime<Utc>>,
    pub ended_at: Option<DateTime<Utc>>,
    /// Sent with `X-Fal-Store-IO: 0`: fal stores no JSON payloads, and keeps the result only
    /// briefly after completion (fal-protocol.md §7.3, §8.1).
    store_io_off: bool,
    /// The platform API deleted the payloads (fal-protocol.md §7.4).
    payloads_deleted: bool,
    /// When the job completed, on the fake's retention clock.
    completed_at: Option<Instant>,
    /// How long the output files live once the job completes: the submit's
    /// `X-Fal-Object-Lifecycle-Preference` (fal-protocol.md §7.3).
    output_lifetime: Option<Duration>,
    outputs_expire_at: Option<Instant>,
    /// The output files the platform API deleted.
    deleted_files: Vec<String>,
    /// Every output file is gone (`FakeFal::delete_output_files`).
    outputs_gone: bool,
    /// The training zip the job downloaded, whose photos an inference with its LoRA shows.
    dataset: Option<Bytes>,
}

enum Phase {
    Queued,
    Running {
        since: Instant,
    },
    Completed {
        /// How long the job ran; `None` when it never left the queue.
        ran_for: Option<Duration>,
        result: JobResult,
    },
}

pub(crate) enum JobResult {
    Output(Output),
    Error(JobError),
}

/// What a successful job yields.
pub(crate) enum Output {
    Lora { lora_bytes: u64 },
    Images(Generation),
}

impl Output {
    /// The names of the files the output publishes under the job's files URL.
    fn file_names(&self) -> Vec<String> {
        match self {
            Output::Lora { .. } => vec![LORA_FILE_NAME.to_owned(), CONFIG_FILE_NAME.to_owned()],
            Output::Images(generation) => generation
                .images
                .iter()
                .map(|image| image.file_name.clone())
                .collect(),
        }
    }
}

/// A failed job: what its status says, and the answer its result route gives.
pub(crate) struct JobError {
    pub status: StatusCode,
    pub error: String,
    pub error_type: String,
    pub body: Value,
    pub headers: Vec<(&'static str, String)>,
}

impl JobError {
    /// The failure an [`Outcome::Failure`] scripts.
    pub(crate) fn from_outcome(status: u16, error: &str, error_type: &str, detail: &Value) -> Self {
        Self {
            status: StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            error: error.to_owned(),
            error_type: error_type.to_owned(),
            body: json!({ "detail": detail }),
            headers: Vec::new(),
        }
    }

    /// An error of fal's own (not the app's): the type travels in the body and in
    /// `X-Fal-Error-Type` (fal-protocol.md §1.8).
    fn infrastructure(status: StatusCode, error_type: &str, detail: &str) -> Self {
        Self {
            status,
            error: detail.to_owned(),
            error_type: error_type.to_owned(),
            body: json!({ "detail": detail, "error_type": error_type }),
            headers: vec![("x-fal-error-type", error_type.to_owned())],
        }
    }

    /// UNCONFIRMED: what a cancelled request shows. 499 `client_cancelled` is the documented
    /// error type for it.
    pub(crate) fn cancelled() -> Self {
        Self::infrastructure(
            StatusCode::from_u16(499).expect("499 is a valid status code"),
            "client_cancelled",
            "Request cancelled by the client",
        )
    }

    fn timed_out() -> Self {
        let mut error = Self::infrastructure(
            StatusCode::GATEWAY_TIMEOUT,
            "request_timeout",
            "Request timed out",
        );
        error
            .headers
            .push(("x-fal-request-timeout-type", "user".to_owned()));
        error
    }

    /// The runner failed on its own (`runner_server_error`, fal-protocol.md §1.8).
    pub(crate) fn runner_failed(detail: &str) -> Self {
        Self::infrastructure(
            StatusCode::INTERNAL_SERVER_ERROR,
            "runner_server_error",
            detail,
        )
    }

    fn invalid_input(field: &str, message: &str, kind: &str) -> Self {
        Self::validation(vec![validation_item(&["body", field], message, kind)])
    }

    /// The app's input validation failed (FastAPI's 422 shape), one `detail` item per fault;
    /// `error` names each field as `loras.0.path: field required`. UNCONFIRMED: the `error` and
    /// `error_type` a status shows for it.
    pub(crate) fn validation(items: Vec<Value>) -> Self {
        let error = items
            .iter()
            .map(|item| {
                let field: Vec<String> = item["loc"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .skip(1)
                    .map(|part| match part {
                        Value::String(name) => name.clone(),
                        other => other.to_string(),
                    })
                    .collect();
                format!(
                    "{}: {}",
                    field.join("."),
                    item["msg"].as_str().unwrap_or("")
                )
            })
            .collect::<Vec<_>>()
            .join("; ");
        Self {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            error,
            error_type: "validation_error".to_owned(),
            body: json!({ "detail": items }),
            headers: Vec::new(),
        }
    }

    /// fal's download rules refused the dataset URL (fal-protocol.md §7.1); the answer is the
    /// script's, as the real one is UNCONFIRMED.
    fn dataset_refused(refusal: &Refusal, reason: &str) -> Self {
        Self {
            status: StatusCode::from_u16(refusal.status)
                .unwrap_or(StatusCode::UNPROCESSABLE_ENTITY),
            error: reason.to_owned(),
            error_type: refusal.error_type.clone(),
            body: json!({
                "detail": [validation_item(&["body", "images_data_url"], reason, &refusal.error_type)]
            }),
            headers: Vec::new(),
        }
    }

    /// UNCONFIRMED: the error a trainer reports when it cannot fetch its training data; fal's
    /// model error types include `file_download_error`.
    fn dataset_unavailable(reason: &str) -> Self {
        Self {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            error: reason.to_owned(),
            error_type: "file_download_error".to_owned(),
            body: json!({
                "detail": [validation_item(&["body", "images_data_url"], reason, "file_download_error")]
            }),
            headers: Vec::new(),
        }
    }
}

/// One item of a FastAPI validation error's `detail` list.
pub(crate) fn validation_item(location: &[&str], message: &str, kind: &str) -> Value {
    validation_item_at(json!(location), message, kind)
}

/// [`validation_item`] with a location that holds list indexes too: `["body", "loras", 0, "path"]`.
pub(crate) fn validation_item_at(location: Value, message: &str, kind: &str) -> Value {
    json!({ "loc": location, "msg": message, "type": kind })
}

struct LogEntry {
    logged_at: Instant,
    entry: Value,
}

impl Job {
    pub fn new(
        submission: &Submission,
        script: Script,
        kind: JobKind,
        sent_at: DateTime<Utc>,
    ) -> Self {
        let owner_app = submission
            .endpoint_id
            .splitn(3, '/')
            .take(2)
            .collect::<Vec<_>>()
            .join("/");
        Self {
            request_id: submission.request_id.clone(),
            endpoint_id: submission.endpoint_id.clone(),
            kind,
            owner_app,
            input: submission.input.clone(),
            script,
            webhook_url: submission.webhook_url.clone(),
            request_timeout: submission.request_timeout,
            submitted_at: Instant::now(),
            phase: Phase::Queued,
            logs: Vec::new(),
            cancel: Arc::new(Notify::new()),
            expired: false,
            forgotten: false,
            sent_at,
            started_at: None,
            ended_at: None,
            store_io_off: submission.store_io.as_deref().map(str::trim) == Some("0"),
            payloads_deleted: false,
            completed_at: None,
            output_lifetime: lifecycle::lifetime(submission.lifecycle_preference.as_ref()),
            outputs_expire_at: None,
            deleted_files: Vec::new(),
            outputs_gone: false,
            dataset: None,
        }
    }

    /// The `request_id` and the three URLs every queue answer carries.
    fn identity(&self, base_url: &str) -> serde_json::Map<String, Value> {
        let response_url = format!("{base_url}/{}/requests/{}", self.owner_app, self.request_id);
        let mut fields = serde_json::Map::new();
        fields.insert("request_id".into(), json!(self.request_id));
        fields.insert("status_url".into(), json!(format!("{response_url}/status")));
        fields.insert("cancel_url".into(), json!(format!("{response_url}/cancel")));
        fields.insert("response_url".into(), json!(response_url));
        fields
    }

    /// The submit answer.
    pub fn submitted(&self, base_url: &str) -> Value {
        let mut body = self.identity(base_url);
        body.insert("status".into(), json!("IN_QUEUE"));
        body.insert("gateway_request_id".into(), json!(self.request_id));
        body.insert(
            "queue_position".into(),
            json!(self.queue_position(Instant::now())),
        );
        body.into()
    }

    /// The status answer: 202 while queued or running, 200 once completed.
    pub fn status(&self, base_url: &str, with_logs: bool, now: Instant) -> (StatusCode, Value) {
        let mut body = self.identity(base_url);
        let logs = if with_logs {
            self.recent_logs(now)
        } else {
            Value::Null
        };
        let code = match &self.phase {
            Phase::Queued => {
                body.insert("status".into(), json!("IN_QUEUE"));
                body.insert("queue_position".into(), json!(self.queue_position(now)));
                StatusCode::ACCEPTED
            }
            Phase::Running { .. } => {
                body.insert("status".into(), json!("IN_PROGRESS"));
                body.insert("logs".into(), logs);
                StatusCode::ACCEPTED
            }
            Phase::Completed { ran_for, result } => {
                body.insert("status".into(), json!("COMPLETED"));
                body.insert("logs".into(), logs);
                let metrics = match ran_for {
                    Some(ran_for) => json!({ "inference_time": ran_for.as_secs_f64() }),
                    None => json!({}),
                };
                body.insert("metrics".into(), metrics);
                if let JobResult::Error(error) = result {
                    body.insert("error".into(), json!(error.error));
                    body.insert("error_type".into(), json!(error.error_type));
                }
                StatusCode::OK
            }
        };
        (code, body.into())
    }

    /// The result, once the job has completed.
    pub fn result(&self) -> Option<&JobResult> {
        match &self.phase {
            Phase::Completed { result, .. } => Some(result),
            _ => None,
        }
    }

    /// The HTTP status of the result once completed: 200 or the error's.
    fn status_code(&self) -> Option<StatusCode> {
        self.result().map(|result| match result {
            JobResult::Output(_) => StatusCode::OK,
            JobResult::Error(error) => error.status,
        })
    }

    /// Whether the job completed with its output.
    pub fn succeeded(&self) -> bool {
        matches!(self.result(), Some(JobResult::Output(_)))
    }

    /// The megapixels an inference's images bill; 0 for anything else.
    pub fn billed_megapixels(&self) -> f64 {
        match self.result() {
            Some(JobResult::Output(Output::Images(generation))) => generation.billed_megapixels(),
            _ => 0.0,
        }
    }

    /// The training zip a training job downloaded.
    pub fn dataset(&self) -> Option<Bytes> {
        self.dataset.clone()
    }

    /// The training steps asked for: the trainers' `steps` input, or 1000 when absent.
    pub fn steps(&self) -> u64 {
        self.input
            .get("steps")
            .and_then(Value::as_u64)
            .unwrap_or(1000)
    }

    /// Whether fal holds the request's JSON payloads: not sent with `X-Fal-Store-IO: 0`, and not
    /// deleted (fal-protocol.md §7.3, §7.4).
    fn payloads_stored(&self) -> bool {
        !self.store_io_off && !self.payloads_deleted
    }

    /// Whether a completed job's result can still be fetched at `now` (fal-protocol.md §8.1):
    /// for the payload storage period when payloads are stored; with `X-Fal-Store-IO: 0`, an
    /// hour after completion, or 6 minutes when the result is 10 KB or larger. A result whose
    /// payloads were deleted is gone with them.
    pub fn result_available(&self, base_url: &str, now: Instant) -> bool {
        let Some(completed_at) = self.completed_at else {
            return true;
        };
        let kept_for = if self.store_io_off {
            let size = match self.result() {
                Some(JobResult::Output(output)) => self.output(base_url, output).to_string().len(),
                Some(JobResult::Error(error)) => error.body.to_string().len(),
                None => 0,
            };
            if size >= SMALL_RESULT_BYTES {
                LARGE_RESULT_RETENTION
            } else {
                SMALL_RESULT_RETENTION
            }
        } else if self.payloads_deleted {
            return false;
        } else {
            PAYLOAD_STORAGE_PERIOD
        };
        now < completed_at + kept_for
    }

    /// Removes every output file, now and when the job completes later.
    pub fn delete_output_files(&mut self) {
        self.outputs_gone = true;
    }

    /// Whether an output file can still be downloaded: not deleted and not past the submit's
    /// lifecycle expiry.
    pub fn output_available(&self, file_name: &str, now: Instant) -> bool {
        !self.outputs_gone
            && !self
                .deleted_files
                .iter()
                .any(|deleted| deleted == file_name)
            && self
                .outputs_expire_at
                .is_none_or(|expires_at| now < expires_at)
    }

    /// Deletes the request's payloads and the output files found in its stored output
    /// (fal-protocol.md §7.4, §8.3: input files stay), and answers per file: its URL and the
    /// exception that kept it, if any. Nothing is found when no output was stored (`X-Fal-Store-IO:
    /// 0`) or it was deleted before.
    pub fn delete_payloads(
        &mut self,
        base_url: &str,
        undeletable: &HashSet<String>,
    ) -> Vec<(String, Option<String>)> {
        let found = self.payloads_stored();
        self.payloads_deleted = true;
        let Some(JobResult::Output(output)) = self.result().filter(|_| found) else {
            return Vec::new();
        };
        let files = self.files_url(base_url);
        let mut results = Vec::new();
        for file_name in output.file_names() {
            let link = format!("{files}/{file_name}");
            if undeletable.contains(&file_name) {
                results.push((
                    link,
                    Some(format!("could not delete {file_name}: storage error")),
                ));
            } else {
                results.push((link, None));
                self.deleted_files.push(file_name);
            }
        }
        results
    }

    /// One of a completed job's output files as `(content type, size, body)`, whether or not it
    /// is still available.
    pub fn output_file(&self, file_name: &str) -> Option<(&'static str, u64, Body)> {
        let Some(JobResult::Output(output)) = self.result() else {
            return None;
        };
        match output {
            Output::Lora { lora_bytes } if file_name == LORA_FILE_NAME => Some((
                "application/octet-stream",
                *lora_bytes,
                Body::from_stream(lora_file(*lora_bytes, &self.request_id)),
            )),
            Output::Lora { .. } if file_name == CONFIG_FILE_NAME => {
                let config = self.config_file();
                Some((
                    "application/octet-stream",
                    config.len() as u64,
                    Body::from(config),
                ))
            }
            Output::Lora { .. } => None,
            Output::Images(generation) => generation.image(file_name).map(|image| {
                (
                    image.content_type(),
                    image.bytes.len() as u64,
                    Body::from(image.bytes.clone()),
                )
            }),
        }
    }

    /// The class `?status=` filters the request history on; `None` while unfinished.
    pub fn status_class(&self) -> Option<&'static str> {
        let status = self.status_code()?;
        Some(if status.is_success() {
            "success"
        } else if status.is_client_error() {
            "user_error"
        } else {
            "error"
        })
    }

    /// The job as the request history shows it (fal-protocol.md §7.4). `started_at` is
    /// `sent_at` until the job runs, as the field is required (UNCONFIRMED); `ended_at`,
    /// `status_code` and `duration` (seconds from `started_at` to `ended_at`) come once it has
    /// completed; the payloads only when asked for and still stored.
    pub fn history_item(&self, base_url: &str, with_payloads: bool) -> Value {
        let time = |time: DateTime<Utc>| json!(time.to_rfc3339_opts(SecondsFormat::Millis, true));
        let started_at = self.started_at.unwrap_or(self.sent_at);
        let mut item = json!({
            "request_id": self.request_id,
            "endpoint_id": self.endpoint_id,
            "sent_at": time(self.sent_at),
            "started_at": time(started_at),
        });
        if let (Some(ended_at), Some(status)) = (self.ended_at, self.status_code()) {
            let micros = (ended_at - started_at).num_microseconds().unwrap_or(0);
            item["ended_at"] = time(ended_at);
            item["status_code"] = json!(status.as_u16());
            item["duration"] = json!(micros as f64 / 1e6);
        }
        if with_payloads && self.payloads_stored() {
            item["json_input"] = self.input.clone();
            match self.result() {
                Some(JobResult::Output(output)) => {
                    item["json_output"] = self.output(base_url, output);
                }
                Some(JobResult::Error(error)) => item["json_output"] = error.body.clone(),
                None => {}
            }
        }
        item
    }

    /// The 400 a result fetch gets before the job completes.
    pub fn still_in_progress(&self, base_url: &str) -> Value {
        let mut body = self.identity(base_url);
        body.insert("detail".into(), json!("Request is still in progress"));
        body.into()
    }

    fn queue_position(&self, now: Instant) -> u64 {
        let queue_time = self.script.queue_time.as_secs_f64();
        if queue_time == 0.0 {
            return 0;
        }
        let waited = now.duration_since(self.submitted_at).as_secs_f64();
        let remaining = (1.0 - waited / queue_time).clamp(0.0, 1.0);
        (remaining * QUEUE_AHEAD_AT_SUBMIT).floor() as u64
    }

    fn recent_logs(&self, now: Instant) -> Value {
        let recent: Vec<&Value> = self
            .logs
            .iter()
            .filter(|log| now.duration_since(log.logged_at) <= LOG_WINDOW)
            .map(|log| &log.entry)
            .collect();
        json!(recent[recent.len().saturating_sub(LOG_WINDOW_ENTRIES)..])
    }

    /// Where the job's output files are served.
    fn files_url(&self, base_url: &str) -> String {
        format!("{base_url}/files/{}", self.request_id)
    }

    /// The model output: what the result route answers and a webhook carries.
    pub fn output(&self, base_url: &str, output: &Output) -> Value {
        match output {
            Output::Lora { lora_bytes } => self.lora_output(base_url, *lora_bytes),
            Output::Images(generation) => generation.output(&self.files_url(base_url)),
        }
    }

    fn lora_output(&self, base_url: &str, lora_bytes: u64) -> Value {
        let files = self.files_url(base_url);
        json!({
            "diffusers_lora_file": {
                "url": format!("{files}/{LORA_FILE_NAME}"),
                "content_type": "application/octet-stream",
                "file_name": LORA_FILE_NAME,
                "file_size": lora_bytes,
            },
            "config_file": {
                "url": format!("{files}/{CONFIG_FILE_NAME}"),
                "content_type": "application/octet-stream",
                "file_name": CONFIG_FILE_NAME,
                "file_size": self.config_file().len(),
            },
        })
    }

    /// The training configuration file a trainer publishes beside the LoRA.
    pub fn config_file(&self) -> Vec<u8> {
        let config = json!({
            "endpoint_id": self.endpoint_id,
            "input": self.input,
            "steps": self.script.total_steps,
        });
        serde_json::to_vec_pretty(&config).expect("JSON values serialise")
    }

    /// The webhook body for a completed job (fal-protocol.md §2.1).
    fn webhook_payload(&self, base_url: &str, result: &JobResult) -> Value {
        let mut body = json!({
            "request_id": self.request_id,
            "gateway_request_id": self.request_id,
        });
        match result {
            JobResult::Output(output) => {
                body["status"] = json!("OK");
                body["payload"] = self.output(base_url, output);
            }
            JobResult::Error(error) => {
                body["status"] = json!("ERROR");
                body["error"] = json!(format!("Invalid status code: {}", error.status.as_u16()));
                body["payload"] = error.body.clone();
            }
        }
        body
    }

    fn log(&mut self, message: String) {
        self.logs.push(LogEntry {
            logged_at: Instant::now(),
            entry: json!({
                "message": message,
                "level": "INFO",
                "source": "USER",
                "timestamp": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            }),
        });
    }
}

/// Drives job `request_id` from the queue to completion, then sends its webhook.
pub(crate) async fn run(shared: Arc<Shared>, request_id: String) {
    let Some((script, input, cancel, request_timeout, kind)) =
        with_job(&shared, &request_id, |job| {
            (
                job.script.clone(),
                job.input.clone(),
                job.cancel.clone(),
                job.request_timeout,
                job.kind,
            )
        })
    else {
        return;
    };

    let timeout = async {
        match request_timeout {
            Some(timeout) => sleep(timeout).await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        () = sleep(script.queue_time) => {}
        () = cancel.notified() => return complete(&shared, &request_id, JobResult::Error(JobError::cancelled())).await,
        () = timeout => return complete(&shared, &request_id, JobResult::Error(JobError::timed_out())).await,
    }
    {
        let mut state = shared.state();
        let started_at = state.wall_now();
        if let Some(job) = state.jobs.get_mut(&request_id) {
            job.phase = Phase::Running {
                since: Instant::now(),
            };
            job.started_at = Some(started_at);
        }
    }

    let output = match kind {
        JobKind::Training => train(&shared, &request_id, &script, &input, &cancel).await,
        JobKind::Inference => inference::run(&shared, &request_id, &script, &input, &cancel).await,
    };
    let result = match output {
        Ok(output) => JobResult::Output(output),
        Err(error) => JobResult::Error(error),
    };
    complete(&shared, &request_id, result).await;
}

/// A trainer's run: validate, fetch the training data, log steps over the run time.
async fn train(
    shared: &Shared,
    request_id: &str,
    script: &Script,
    input: &Value,
    cancel: &Notify,
) -> Result<Output, JobError> {
    start_training(shared, request_id, script, input).await?;
    let step_time = script.run_time / STEP_LOG_LINES;
    for line in 1..=STEP_LOG_LINES {
        work_for(script, cancel, step_time).await?;
        let step = u64::from(script.total_steps) * u64::from(line) / u64::from(STEP_LOG_LINES);
        let loss = 0.02 + 0.1 / (1.0 + step as f64 / 100.0);
        log(
            shared,
            request_id,
            format!(
                "Training step {step}/{}, loss {loss:.4}",
                script.total_steps
            ),
        );
    }
    log(shared, request_id, "Uploading LoRA weights".to_owned());
    match &script.outcome {
        Outcome::Success { lora_bytes } => Ok(Output::Lora {
            lora_bytes: *lora_bytes,
        }),
        Outcome::Failure {
            status,
            error,
            error_type,
            detail,
        } => Err(JobError::from_outcome(*status, error, error_type, detail)),
    }
}

/// Works for `duration`; a cancel stops the work first when the script honours it while running.
pub(crate) async fn work_for(
    script: &Script,
    cancel: &Notify,
    duration: Duration,
) -> Result<(), JobError> {
    if script.honour_cancel_while_running {
        tokio::select! {
            () = sleep(duration) => Ok(()),
            () = cancel.notified() => Err(JobError::cancelled()),
        }
    } else {
        sleep(duration).await;
        Ok(())
    }
}

/// What a runner does first: validate the input, then fetch the training data and keep it.
async fn start_training(
    shared: &Shared,
    request_id: &str,
    script: &Script,
    input: &Value,
) -> Result<(), JobError> {
    let dataset_url = match input.get("images_data_url") {
        Some(Value::String(url)) => url,
        Some(_) => {
            return Err(JobError::invalid_input(
                "images_data_url",
                "str type expected",
                "type_error.str",
            ));
        }
        None => {
            return Err(JobError::invalid_input(
                "images_data_url",
                "field required",
                "value_error.missing",
            ));
        }
    };
    if script.download_dataset {
        log(shared, request_id, "Downloading training data".to_owned());
        let zip = download::fetch_zip(shared, dataset_url)
            .await
            .map_err(|error| match error {
                DownloadError::Refused(reason) => {
                    JobError::dataset_refused(&script.dataset_refusal, &reason)
                }
                DownloadError::Unavailable(reason) => JobError::dataset_unavailable(&reason),
            })?;
        log(
            shared,
            request_id,
            format!("Downloaded {} bytes of training data", zip.len()),
        );
        with_job(shared, request_id, |job| job.dataset = Some(zip));
    }
    log(shared, request_id, "Preprocessing images".to_owned());
    Ok(())
}

async fn complete(shared: &Shared, request_id: &str, result: JobResult) {
    let webhook = {
        let mut state = shared.state();
        let (now, wall_now) = (state.now(), state.wall_now());
        let Some(job) = state.jobs.get_mut(request_id) else {
            return;
        };
        let webhook = job
            .webhook_url
            .clone()
            .map(|url| (url, job.webhook_payload(&shared.base_url, &result)));
        let ran_for = match job.phase {
            Phase::Running { since } => Some(since.elapsed()),
            _ => None,
        };
        job.phase = Phase::Completed { ran_for, result };
        job.ended_at = Some(wall_now);
        job.completed_at = Some(now);
        job.outputs_expire_at = job.output_lifetime.map(|lifetime| now + lifetime);
        webhook
    };
    shared.record_completion();
    if let Some((url, payload)) = webhook {
        webhooks::deliver(shared, request_id, &url, &payload).await;
    }
}

pub(crate) fn log(shared: &Shared, request_id: &str, message: String) {
    with_job(shared, request_id, |job| job.log(message));
}

fn with_job<T>(shared: &Shared, request_id: &str, change: impl FnOnce(&mut Job) -> T) -> Option<T> {
    shared.state().jobs.get_mut(request_id).map(change)
}
