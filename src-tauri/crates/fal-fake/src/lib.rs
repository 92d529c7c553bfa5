//! A faithful fake of fal.ai on loopback, for tests and benchmarks that drive the real client.
//! It follows `docs/fal-protocol.md` §1–§3 and the §6 checklist: the queue routes, the REST
//! storage upload, file downloads, signed webhooks and the webhook key set, all on one port.
//!
//! The fake plays one LoRA trainer: every endpoint takes the portrait trainer's input
//! (`images_data_url`) and yields `diffusers_lora_file` and `config_file`. A [`Script`] decides
//! how the next jobs behave, [`Fault`]s inject one-shot failures, and the recorders
//! ([`FakeFal::submissions`], [`FakeFal::uploads`], …) show what the client did.
//!
//! Choices the protocol document leaves open (each marked UNCONFIRMED where it is made):
//! - Input validation happens when a job starts running, as in a fal app: the submit is accepted
//!   and the job completes with a 422 error, which the result route and the webhook carry.
//! - A cancelled job completes with `error_type: "client_cancelled"` and its result answers 499.

mod connections;
mod jobs;
mod lora;
mod queue;
mod server;
mod state;
mod storage;
mod webhooks;

use std::sync::Arc;
use std::time::Duration;

use axum::http::{HeaderName, HeaderValue, StatusCode};
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

pub use jobs::{CONFIG_FILE_NAME, LORA_FILE_NAME};
pub use lora::MIN_LORA_BYTES;
pub use webhooks::{WEBHOOK_ATTEMPTS, WEBHOOK_RETRY_DELAY, WEBHOOK_USER_ID};

use state::Shared;

/// The only API key the fake accepts, sent as `Authorization: Key fake-key`.
pub const API_KEY: &str = "fake-key";

/// The kinds of request the fake serves, for counting, waiting and faults.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Route {
    /// `POST /{owner}/{app}[/{path…}]`
    Submit,
    /// `GET /{owner}/{app}/requests/{id}/status`
    Status,
    /// `GET /{owner}/{app}/requests/{id}/status/stream`
    StatusStream,
    /// `GET /{owner}/{app}/requests/{id}`
    Result,
    /// `PUT /{owner}/{app}/requests/{id}/cancel`
    Cancel,
    /// `POST /storage/upload/initiate`
    StorageInitiate,
    /// `PUT` of the `upload_url` the initiate call handed out.
    StorageUpload,
    /// `GET /files/…`: uploaded files and job outputs. The fake's own dataset downloads (see
    /// [`Script::download_dataset`]) count here too when they point at the fake.
    FileDownload,
    /// `GET /.well-known/jwks.json`
    Jwks,
}

/// How jobs submitted after [`FakeFal::set_script`] behave. Times run on tokio's clock from
/// the submit.
#[derive(Debug, Clone, PartialEq)]
pub struct Script {
    /// Time spent `IN_QUEUE`; `queue_position` counts down evenly over it.
    pub queue_time: Duration,
    /// Time spent `IN_PROGRESS`, during which the logs report training steps.
    pub run_time: Duration,
    /// The step count the logs report, as in "Training step 120/1000, loss 0.0412".
    pub total_steps: u32,
    pub outcome: Outcome,
    /// Whether a running job stops soon after a cancel. Queued jobs always stop; running ones
    /// depend on the app ("the model app decides how to stop the work"), and trainers may not.
    pub honour_cancel_while_running: bool,
    /// Whether a job fetches its `images_data_url` when it starts running, as a real runner
    /// does. A failed fetch (not 2xx, or not a zip) fails the job.
    pub download_dataset: bool,
}

impl Default for Script {
    fn default() -> Self {
        Self {
            queue_time: Duration::from_millis(200),
            run_time: Duration::from_millis(600),
            total_steps: 1000,
            outcome: Outcome::Success { lora_bytes: 4096 },
            honour_cancel_while_running: true,
            download_dataset: true,
        }
    }
}

/// How a job that runs to the end completes.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The job yields a valid safetensors LoRA of exactly `lora_bytes` bytes (at least
    /// [`MIN_LORA_BYTES`]).
    Success { lora_bytes: u64 },
    /// The status shows `COMPLETED` with `error` and `error_type`; the result route answers
    /// `status` with `{"detail": detail}`.
    Failure {
        status: u16,
        error: String,
        error_type: String,
        detail: Value,
    },
}

/// A one-shot fault, consumed by the next request it matches; several faults matching the same
/// requests are consumed in the order they were pushed.
#[derive(Debug, Clone, PartialEq)]
pub enum Fault {
    /// Answer the next request of `route` with this status, JSON body and headers, before
    /// authentication and without processing it (a gateway error such as 429 or 503).
    Status {
        route: Route,
        status: u16,
        body: Value,
        headers: Vec<(String, String)>,
    },
    /// Process the next request of `route` as usual, then hold the answer for `delay`: a submit
    /// held past the client's timeout has still created its job.
    Delay { route: Route, delay: Duration },
    /// Close the connection of the next request of `route` without processing or answering it.
    DropConnection { route: Route },
    /// Process the next request of `route` as usual (a submit creates its job), then answer this
    /// status and raw body instead: a gateway that loses the real answer (408, 500, 502, 504, an
    /// ingress error page) or a 2xx body that is not what the route returns.
    AcceptThenAnswer {
        route: Route,
        status: u16,
        body: String,
        headers: Vec<(String, String)>,
    },
    /// Process the next request of `route` as usual, then close the connection unanswered.
    AcceptThenDrop { route: Route },
    /// Process the next request of `route` and send its head and the first `bytes` of its body,
    /// then go quiet without closing: a stream that stalls halfway.
    StallBody { route: Route, bytes: usize },
    /// Process the next request of `route` and send its head and the first `bytes` of its body,
    /// then close the connection: a body shorter than its `Content-Length`.
    TruncateBody { route: Route, bytes: usize },
    /// The next webhook is not sent at all.
    DropWebhook,
    /// The next webhook is delivered twice, one full delivery after the other.
    DuplicateWebhook,
    /// The next result fetch of a completed job, or download of a job's output file, finds the
    /// job expired: from then on its result answers 404 `{"detail":"Request not found"}` and its
    /// files 404 too, as after fal's retention period (UNCONFIRMED: what fal answers then).
    ResultExpired,
}

/// An accepted submit.
#[derive(Debug, Clone, PartialEq)]
pub struct Submission {
    /// The full endpoint id from the URL, sub-path included.
    pub endpoint_id: String,
    pub request_id: String,
    pub input: Value,
    /// The decoded `fal_webhook` query parameter.
    pub webhook_url: Option<String>,
    /// The `X-Fal-Queue-Priority` header.
    pub priority: Option<String>,
    /// The `X-Fal-Request-Timeout` header: a job still queued when it runs out fails with 504.
    pub request_timeout: Option<Duration>,
    /// Whether `x-fal-no-retry` was set. The fake never retries, so it is only recorded.
    pub no_retry: bool,
}

/// One webhook POST attempt.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    pub url: String,
    pub request_id: String,
    pub body: Value,
    /// The receiver's HTTP status, or `None` when no answer came (refused, reset, timed out).
    pub status: Option<u16>,
}

/// A completed storage upload.
#[derive(Debug, Clone, PartialEq)]
pub struct Upload {
    pub file_name: String,
    pub content_type: String,
    pub bytes: u64,
    pub file_url: String,
}

/// A running fake. Dropping it stops the server, cuts every open connection and stops the jobs.
pub struct FakeFal {
    shared: Arc<Shared>,
    server: JoinHandle<()>,
}

impl FakeFal {
    /// Starts a fake on `127.0.0.1` on a free port, accepting [`API_KEY`].
    pub async fn start() -> FakeFal {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("the fake fal server binds a loopback port");
        let address = listener
            .local_addr()
            .expect("a bound socket has an address");
        let shared = Arc::new(Shared::new(format!("http://{address}"), API_KEY.to_owned()));
        let server = tokio::spawn(server::serve(listener, shared.clone()));
        FakeFal { shared, server }
    }

    /// `http://127.0.0.1:PORT`: the queue host, the REST host and the file host at once.
    pub fn base_url(&self) -> String {
        self.shared.base_url.clone()
    }

    pub fn api_key(&self) -> &str {
        &self.shared.api_key
    }

    /// Where the fake publishes the key that signs its webhooks.
    pub fn jwks_url(&self) -> String {
        format!("{}/.well-known/jwks.json", self.shared.base_url)
    }

    /// Sets how jobs submitted from now on behave; jobs already submitted keep their script.
    ///
    /// # Panics
    /// When the script cannot be served: a LoRA smaller than [`MIN_LORA_BYTES`] or a failure
    /// status that is not an HTTP status code.
    pub fn set_script(&self, script: Script) {
        match &script.outcome {
            Outcome::Success { lora_bytes } => assert!(
                *lora_bytes >= MIN_LORA_BYTES,
                "a safetensors file needs at least {MIN_LORA_BYTES} bytes, not {lora_bytes}"
            ),
            Outcome::Failure { status, .. } => assert!(
                StatusCode::from_u16(*status).is_ok(),
                "{status} is not an HTTP status code"
            ),
        }
        self.shared.state().script = script;
    }

    /// Queues a one-shot fault.
    ///
    /// # Panics
    /// When a [`Fault::Status`] carries an invalid status code or header.
    pub fn push_fault(&self, fault: Fault) {
        if let Fault::Status {
            status, headers, ..
        }
        | Fault::AcceptThenAnswer {
            status, headers, ..
        } = &fault
        {
            assert!(
                StatusCode::from_u16(*status).is_ok(),
                "{status} is not an HTTP status code"
            );
            for (name, value) in headers {
                assert!(
                    HeaderName::try_from(name.as_str()).is_ok()
                        && HeaderValue::try_from(value.as_str()).is_ok(),
                    "{name}: {value} is not a valid header"
                );
            }
        }
        self.shared.state().faults.push(fault);
    }

    pub fn submissions(&self) -> Vec<Submission> {
        self.shared.state().submissions.clone()
    }

    pub fn webhook_deliveries(&self) -> Vec<Delivery> {
        self.shared.state().deliveries.clone()
    }

    pub fn uploads(&self) -> Vec<Upload> {
        self.shared.state().uploads.clone()
    }

    /// How many requests of `route` have arrived so far, answered or not.
    pub fn request_count(&self, route: Route) -> usize {
        self.shared.arrivals(route)
    }

    /// Resolves once `count` requests of `route` have arrived, before the last is answered.
    /// A request arrives when its body is in (an upload's, when its head is), and from then on
    /// it is handled to the end even if its client is gone: killing a client here after a
    /// submit leaves the job submitted.
    pub async fn wait_for(&self, route: Route, count: usize) {
        self.shared.wait_for_arrivals(route, count).await;
    }

    /// The request ids whose cancel was accepted (answered 202).
    pub fn cancel_requests(&self) -> Vec<String> {
        self.shared.state().cancel_requests.clone()
    }
}

impl Drop for FakeFal {
    fn drop(&mut self) {
        self.server.abort();
        self.shared.stop();
    }
}
