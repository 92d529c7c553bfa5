//! A faithful fake of fal.ai on loopback, for tests and benchmarks that drive the real client.
//! It follows `docs/fal-protocol.md` §1–§3, §4.4, §7.1–§7.4 and the §6 checklist on two origins:
//! [`FakeFal::base_url`] serves the queue routes, the REST storage upload (single PUT and
//! multipart), file downloads and the webhook key set, and sends signed webhooks;
//! [`FakeFal::platform_url`] stands in for `https://api.fal.ai/v1` (pricing, request history,
//! payload deletion, billing events).
//!
//! The fake plays one LoRA trainer and one LoRA inference endpoint. `fal-ai/flux-lora` (and any
//! endpoint [`FakeFal::serve_inference_endpoint`] adds) takes `fal-ai/flux-lora`'s input and
//! yields images; every other endpoint takes the portrait trainer's input (`images_data_url`)
//! and yields `diffusers_lora_file` and `config_file`. Both go through the same queue, webhooks,
//! request history and output-file expiry. A [`Script`] decides how the next jobs behave,
//! [`Fault`]s inject one-shot failures, and the recorders ([`FakeFal::submissions`],
//! [`FakeFal::uploads`], …) show what the client did.
//!
//! There is no model: an inference's images are cut from the photos its LoRA was trained on, so
//! a face-likeness check can be tested end to end. A training keeps the dataset zip it
//! downloaded; the LoRA it serves names the training in its safetensors `__metadata__`
//! (`{"fake_training_request": "<request_id>"}`), so an inference that fetches the LoRA, from the
//! training's output URL or from a copy uploaded to the fake's storage, finds the photos (the
//! zip's JPEG and PNG files, in archive order). Image `i` comes from photo `(seed + i) % count`:
//! an 85% crop at a seed-dependent offset, scaled to cover the size and centre-cropped to it. A
//! request without LoRAs, or whose LoRAs lead to no photos, gets plain grey images.
//!
//! What it enforces, as fal does:
//! - A job fetches its dataset when it starts running, the way fal's download helper does
//!   (§7.1): http(s) only, every address the host resolves to globally routable, redirects
//!   followed by hand up to 5 hops and each hop checked again. The fake's own origin (where its
//!   storage serves uploads) is the one test-only exception; [`FakeFal::allow_dataset_origin`]
//!   adds others.
//! - A single upload PUT over [`FakeFal::set_single_upload_limit`] (100 MiB by default, the
//!   largest single PUT an official client sends, §7.2) is refused with 413 and stores nothing.
//! - Lifecycle expiries (§7.3), on uploads and on a job's output files, run on tokio's clock.
//! - An inference fetches each `loras[].path` when it starts running, by the same download rules
//!   as a dataset (§4.4), from the fake's own output files or storage like any other URL: an
//!   expired or deleted LoRA is not there to fetch.
//! - `fal-ai/flux-lora`'s input (§4.4): `prompt` required; `loras` of `{path, scale?}`;
//!   `image_size` a preset or `{width, height}` (512 each by default), `landscape_4_3` by
//!   default; `num_images` 1–4; `seed` an integer (a random one reported when absent);
//!   `enable_safety_checker` (or `enable_safety_checks`) a boolean, on by default;
//!   `output_format` `jpeg` (default) or `png`; `num_inference_steps` 1–50; `guidance_scale`
//!   0–35. The safety checker flags the images [`Script::flag_images`] lists: each becomes a
//!   black image of its size, marked in `has_nsfw_concepts`.
//! - The pricing API knows `fal-ai/flux-lora` from the start: 0.035 USD per megapixel.
//!
//! Choices the protocol document leaves open (each marked UNCONFIRMED where it is made):
//! - Input validation happens when a job starts running, as in a fal app: the submit is accepted
//!   and the job completes with a 422 error, which the result route and the webhook carry.
//! - A cancelled job completes with `error_type: "client_cancelled"` and its result answers 499.
//! - A refused dataset URL fails the job with [`Script::dataset_refusal`] (422
//!   `file_download_error` by default) and a pydantic-style `detail` naming `images_data_url`.
//! - The single-upload limit answers 413 `{"detail": …}`; a multipart `complete` with a missing
//!   part, a gap in the part numbers or a wrong etag answers 400 `{"detail": …}`; a part URL
//!   without the upload's query answers 403.
//! - An upload expires after `expiration_duration_seconds` of `X-Fal-Object-Lifecycle` (not of
//!   `X-Fal-Object-Lifecycle-Preference`, which is only recorded), counted from when its bytes
//!   are stored; expired files answer 404.
//! - Request history: finished requests only, by `ended_at`, newest first (fal-protocol.md
//!   §8.2: fal documents no other); a window filters on `sent_at`; `duration` is `ended_at -
//!   started_at`; forgotten requests ([`FakeFal::forget_request`]) stay in the history. Billing
//!   events exist for successful jobs only.
//! - Results (§8.1): with `X-Fal-Store-IO: 0` a finished request's result answers for an hour
//!   after completion, 6 minutes when it is 10 KB or larger; otherwise for the payload storage
//!   period (30 days), until its payloads are deleted. [`FakeFal::advance_clock`] moves the clock
//!   these, the output files' and the uploads' lifetimes and the history's stamps read.
//! - Payload deletion (§8.3) answers per file with its `exception` ([`FakeFal::fail_deletion_of`]
//!   makes one fail and the file stay) and finds nothing when no output was stored.
//! - Private storage (§8.4): under [`FakeFal::set_output_acl`] `forbid` a job's output files
//!   answer 403 and under `hide` 404 (UNCONFIRMED: the codes), except through a URL from
//!   `POST /v1/storage/files/sign` (any key, 1 s to 7 days).
//! - Inference input faults are all reported at once, in pydantic v1's messages and types; a
//!   custom `image_size` side is at most 4096. A LoRA that cannot be fetched (refused, not 2xx,
//!   cut short) fails the job with 422 `file_download_error`, and one that is not a safetensors
//!   file with 422 `lora_load_error`, each with a `detail` item at `["body", "loras", i, "path"]`.
//!   A LoRA the fake did not make contributes no photos. An inference follows
//!   [`Script::outcome`]'s failure like a training, after its run time. The price unit is named
//!   `megapixels`; each image bills its pixels rounded up to whole millions, flagged ones
//!   included.

// A stand-in for fal's servers, not part of the app: it fetches datasets and LoRAs as fal does.
#![allow(clippy::disallowed_methods)]

mod connections;
mod download;
mod inference;
mod jobs;
mod lifecycle;
mod lora;
mod multipart;
mod platform;
mod public_address;
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
pub use state::SIGNED_URL_PARAMETER;
pub use webhooks::{WEBHOOK_ATTEMPTS, WEBHOOK_RETRY_DELAY, WEBHOOK_USER_ID};

use server::Origin;
use state::Shared;

/// The only API key the fake accepts, sent as `Authorization: Key fake-key`.
pub const API_KEY: &str = "fake-key";

/// The largest single upload PUT the fake takes unless told otherwise: 100 MiB, the most an
/// official client sends in one PUT (fal-protocol.md §7.2).
pub const DEFAULT_SINGLE_UPLOAD_LIMIT: u64 = 100 * 1024 * 1024;

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
    /// `POST /storage/upload/initiate-multipart` (fal-protocol.md §7.2 B).
    StorageInitiateMultipart,
    /// `PUT {upload_url path}/{partNumber}{upload_url query}`: one part of a multipart upload.
    StoragePart,
    /// `POST {upload_url path}/complete{upload_url query}`
    StorageComplete,
    /// `GET /files/…`: uploaded files and job outputs. The fake's own downloads, of datasets
    /// (see [`Script::download_dataset`]) and of an inference's LoRAs, count here too when they
    /// point at the fake.
    FileDownload,
    /// `GET /.well-known/jwks.json`
    Jwks,
    /// `GET /v1/models/pricing` on the platform origin.
    Pricing,
    /// `POST /v1/models/pricing/estimate` on the platform origin.
    PricingEstimate,
    /// `GET /v1/models/requests/by-endpoint` on the platform origin.
    RequestsByEndpoint,
    /// `DELETE /v1/models/requests/{request_id}/payloads` on the platform origin.
    DeletePayloads,
    /// `GET /v1/models/billing-events` on the platform origin.
    BillingEvents,
    /// `POST /v1/storage/files/sign?url=…` on the platform origin.
    SignFileUrl,
}

/// An account's default access rule for the files its requests generate (fal-protocol.md §7.3,
/// §8.4): `allow` serves them to anyone with the URL; `forbid` answers 403 and `hide` 404
/// (UNCONFIRMED: the codes), except through a signed URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acl {
    Allow,
    Forbid,
    Hide,
}

/// How jobs submitted after [`FakeFal::set_script`] behave. Times run on tokio's clock from
/// the submit.
#[derive(Debug, Clone, PartialEq)]
pub struct Script {
    /// Time spent `IN_QUEUE`; `queue_position` counts down evenly over it.
    pub queue_time: Duration,
    /// Time spent `IN_PROGRESS`, during which the logs report training steps (or, for an
    /// inference, before the images are made).
    pub run_time: Duration,
    /// The step count the logs report, as in "Training step 120/1000, loss 0.0412".
    pub total_steps: u32,
    /// A training's outcome; an inference yields its images on [`Outcome::Success`] and fails
    /// as a training would on [`Outcome::Failure`].
    pub outcome: Outcome,
    /// Whether a running job stops soon after a cancel. Queued jobs always stop; running ones
    /// depend on the app ("the model app decides how to stop the work"), and trainers may not.
    pub honour_cancel_while_running: bool,
    /// Whether a job fetches its `images_data_url` when it starts running, as a real runner
    /// does. A failed fetch (refused, not 2xx, cut short, or not a zip) fails the job.
    pub download_dataset: bool,
    /// How a job fails when fal's download rules refuse its `images_data_url` (fal-protocol.md
    /// §7.1, §6 "Dataset download").
    pub dataset_refusal: Refusal,
    /// The indexes of an inference's images the safety checker flags: with
    /// `enable_safety_checker` on, each is replaced by a black image of its size and its
    /// `has_nsfw_concepts` entry is `true` (fal-protocol.md §4.4).
    pub flag_images: Vec<u32>,
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
            dataset_refusal: Refusal::default(),
            flag_images: Vec::new(),
        }
    }
}

/// The answer a job gives when its dataset URL is refused: the result route answers `status`
/// with `{"detail": [{"loc": ["body", "images_data_url"], "msg": <reason>, "type": error_type}]}`
/// and the status shows `error_type`. UNCONFIRMED: what a hosted trainer answers then (the
/// status code, the error type, whether it bills); the default is 422 `file_download_error`,
/// one of fal's model error types.
#[derive(Debug, Clone, PartialEq)]
pub struct Refusal {
    pub status: u16,
    pub error_type: String,
}

impl Default for Refusal {
    fn default() -> Self {
        Self {
            status: 422,
            error_type: "file_download_error".to_owned(),
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
    /// Read the first `bytes` of the request body of the next request of `route` (an upload:
    /// [`Route::StorageUpload`] or [`Route::StoragePart`]), then stop reading it without
    /// answering or closing: the client's write blocks once the socket buffers are full
    /// (fal-protocol.md §6 "Stall mid-body", on the upload side). Nothing is stored. The body
    /// arrives in chunks, so a little more than `bytes` may be read.
    StallUpload { route: Route, bytes: usize },
    /// Read the first `bytes` of the request body of the next request of `route` (an upload,
    /// as for [`Fault::StallUpload`]), then close the connection. Nothing is stored.
    DropUpload { route: Route, bytes: usize },
    /// The next webhook is not sent at all.
    DropWebhook,
    /// The next webhook is delivered twice, one full delivery after the other.
    DuplicateWebhook,
    /// The next result fetch of a completed job, or download of a job's output file, finds the
    /// job expired: from then on its result answers 404 `{"detail":"Request not found"}` and its
    /// files 404 too, as after fal's retention period (UNCONFIRMED: what fal answers then).
    ResultExpired,
}

impl Fault {
    /// The route whose next request the fault takes; `None` for webhook and retention faults.
    fn route(&self) -> Option<Route> {
        match self {
            Fault::Status { route, .. }
            | Fault::Delay { route, .. }
            | Fault::DropConnection { route }
            | Fault::AcceptThenAnswer { route, .. }
            | Fault::AcceptThenDrop { route }
            | Fault::StallBody { route, .. }
            | Fault::TruncateBody { route, .. }
            | Fault::StallUpload { route, .. }
            | Fault::DropUpload { route, .. } => Some(*route),
            Fault::DropWebhook | Fault::DuplicateWebhook | Fault::ResultExpired => None,
        }
    }
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
    /// The `X-Fal-Store-IO` header; `"0"` keeps the request's payloads out of the request
    /// history (fal-protocol.md §7.3).
    pub store_io: Option<String>,
    /// The `X-Fal-Object-Lifecycle-Preference` header's JSON; its `expiration_duration_seconds`
    /// expires the job's output files (fal-protocol.md §7.3).
    pub lifecycle_preference: Option<Value>,
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

/// A completed storage upload: a single PUT or a completed multipart upload.
#[derive(Debug, Clone, PartialEq)]
pub struct Upload {
    pub file_name: String,
    pub content_type: String,
    pub bytes: u64,
    pub file_url: String,
    /// How many parts a multipart upload was completed from; `None` for a single PUT.
    pub multipart_parts: Option<u32>,
    /// The `X-Fal-Object-Lifecycle` header's JSON sent on the initiate call (fal-protocol.md
    /// §7.3); its `expiration_duration_seconds` expires the file.
    pub lifecycle: Option<Value>,
    /// The `X-Fal-Object-Lifecycle-Preference` header's JSON sent on the initiate call.
    pub lifecycle_preference: Option<Value>,
}

/// A running fake. Dropping it stops the servers, cuts every open connection and stops the jobs.
pub struct FakeFal {
    shared: Arc<Shared>,
    servers: [JoinHandle<()>; 2],
}

impl FakeFal {
    /// Starts a fake on `127.0.0.1` on two free ports (fal's hosts, and its platform API),
    /// accepting [`API_KEY`].
    pub async fn start() -> FakeFal {
        let fal = bind_loopback().await;
        let platform = bind_loopback().await;
        let address = |listener: &TcpListener| {
            listener
                .local_addr()
                .expect("a bound socket has an address")
        };
        let shared = Arc::new(Shared::new(
            format!("http://{}", address(&fal)),
            format!("http://{}/v1", address(&platform)),
            API_KEY.to_owned(),
        ));
        let servers = [
            tokio::spawn(server::serve(fal, shared.clone(), Origin::Fal)),
            tokio::spawn(server::serve(platform, shared.clone(), Origin::Platform)),
        ];
        FakeFal { shared, servers }
    }

    /// `http://127.0.0.1:PORT`: the queue host, the REST host and the file host at once.
    pub fn base_url(&self) -> String {
        self.shared.base_url.clone()
    }

    /// `http://127.0.0.1:PORT2/v1`, standing in for `https://api.fal.ai/v1` (fal-protocol.md
    /// §7.4). Faults on queue routes leave it alone.
    pub fn platform_url(&self) -> String {
        self.shared.platform_url.clone()
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
    /// or refusal status that is not an HTTP status code.
    pub fn set_script(&self, script: Script) {
        match &script.outcome {
            Outcome::Success { lora_bytes } => assert!(
                *lora_bytes >= MIN_LORA_BYTES,
                "a safetensors file needs at least {MIN_LORA_BYTES} bytes, not {lora_bytes}"
            ),
            Outcome::Failure { status, .. } => assert_status_code(*status),
        }
        assert_status_code(script.dataset_refusal.status);
        self.shared.state().script = script;
    }

    /// Queues a one-shot fault.
    ///
    /// # Panics
    /// When a [`Fault::Status`] or [`Fault::AcceptThenAnswer`] carries an invalid status code or
    /// header, or a [`Fault::StallUpload`] or [`Fault::DropUpload`] names a route that is not
    /// an upload.
    pub fn push_fault(&self, fault: Fault) {
        match &fault {
            Fault::Status {
                status, headers, ..
            }
            | Fault::AcceptThenAnswer {
                status, headers, ..
            } => {
                assert_status_code(*status);
                for (name, value) in headers {
                    assert!(
                        HeaderName::try_from(name.as_str()).is_ok()
                            && HeaderValue::try_from(value.as_str()).is_ok(),
                        "{name}: {value} is not a valid header"
                    );
                }
            }
            Fault::StallUpload { route, .. } | Fault::DropUpload { route, .. } => assert!(
                matches!(route, Route::StorageUpload | Route::StoragePart),
                "{route:?} carries no upload body"
            ),
            _ => {}
        }
        self.shared.state().faults.push(fault);
    }

    pub fn submissions(&self) -> Vec<Submission> {
        self.shared.state().submissions.clone()
    }

    /// Each output file served (a LoRA, a config, an inference's image), by URL path, once per
    /// download.
    pub fn output_downloads(&self) -> Vec<String> {
        self.shared.state().output_downloads.clone()
    }

    pub fn webhook_deliveries(&self) -> Vec<Delivery> {
        self.shared.state().deliveries.clone()
    }

    pub fn uploads(&self) -> Vec<Upload> {
        self.shared.state().uploads.clone()
    }

    /// Every multipart part stored, in arrival order, as `(upload_id, part_number, bytes)`; the
    /// upload id is the `upload_id` query parameter of the upload URL. A part sent again is
    /// listed again.
    pub fn part_uploads(&self) -> Vec<(String, u32, u64)> {
        self.shared.state().part_uploads.clone()
    }

    /// The largest body a single upload PUT may carry; a larger one is refused with 413
    /// (fal-protocol.md §6 Storage, §7.2). [`DEFAULT_SINGLE_UPLOAD_LIMIT`] until set.
    pub fn set_single_upload_limit(&self, bytes: u64) {
        self.shared.state().single_upload_limit = bytes;
    }

    /// Admits dataset downloads from `origin` (`scheme://host:port`) even though it is not
    /// public, as the fake's own origin is: a test-only allowance (fal-protocol.md §6 "Dataset
    /// download").
    ///
    /// # Panics
    /// When `origin` is not a URL.
    pub fn allow_dataset_origin(&self, origin: &str) {
        let origin = reqwest::Url::parse(origin)
            .unwrap_or_else(|error| panic!("{origin:?} is not an origin: {error}"))
            .origin()
            .ascii_serialization();
        self.shared.state().dataset_origins.push(origin);
    }

    /// Makes `endpoint_id` (the full id submits use) an inference endpoint played like
    /// `fal-ai/flux-lora`, which is one from the start.
    pub fn serve_inference_endpoint(&self, endpoint_id: &str) {
        self.shared
            .state()
            .inference_endpoints
            .insert(endpoint_id.to_owned());
    }

    /// How many requests of `route` have arrived so far, answered or not.
    pub fn request_count(&self, route: Route) -> usize {
        self.shared.arrivals(route)
    }

    /// Resolves once `count` requests of `route` have arrived, before the last is answered.
    /// A request arrives when its body is in (an upload's or a part's, when its head is), and
    /// from then on it is handled to the end even if its client is gone: killing a client here
    /// after a submit leaves the job submitted.
    pub async fn wait_for(&self, route: Route, count: usize) {
        self.shared.wait_for_arrivals(route, count).await;
    }

    /// The request ids whose cancel was accepted (answered 202).
    pub fn cancel_requests(&self) -> Vec<String> {
        self.shared.state().cancel_requests.clone()
    }

    /// Forgets `request_id` as fal does after its retention period (fal-protocol.md §1.7): from
    /// now on its status, result and cancel answer 404. Its output files and its entry in the
    /// request history stay.
    ///
    /// # Panics
    /// When no such request was submitted.
    pub fn forget_request(&self, request_id: &str) {
        let mut state = self.shared.state();
        let job = state
            .jobs
            .get_mut(request_id)
            .unwrap_or_else(|| panic!("no request {request_id} was submitted"));
        job.forgotten = true;
    }

    /// Removes `request_id`'s output files from the CDN for good (as its lifecycle or a
    /// deletion would): they answer 404 from now on; its result still names them.
    ///
    /// # Panics
    /// When no such request was submitted.
    pub fn delete_output_files(&self, request_id: &str) {
        let mut state = self.shared.state();
        let job = state
            .jobs
            .get_mut(request_id)
            .unwrap_or_else(|| panic!("no request {request_id} was submitted"));
        job.delete_output_files();
    }

    /// Makes the fake's key count as an admin key on the platform API (fal-protocol.md §7.4):
    /// billing events and payload deletion need one. A plain key until set.
    pub fn set_admin_key(&self, admin: bool) {
        self.shared.state().admin_key = admin;
    }

    /// The price the platform API gives for `endpoint_id` (fal-protocol.md §7.4), in USD per
    /// `unit`. Endpoints without a price answer 404 there.
    pub fn set_price(&self, endpoint_id: &str, unit_price: f64, unit: &str) {
        self.shared.state().prices.insert(
            endpoint_id.to_owned(),
            platform::Price {
                unit_price,
                unit: unit.to_owned(),
            },
        );
    }

    /// Moves the fake's clock of retention and history on by `by`, as if that much time had
    /// passed with the app closed: results, output files and uploads expire by it, and the
    /// request history stamps and windows read it. Jobs run on tokio's clock, unmoved.
    pub fn advance_clock(&self, by: Duration) {
        self.shared.state().clock_offset += by;
    }

    /// Resolves once `count` jobs have completed (with their output or an error), before their
    /// webhooks go out.
    pub async fn wait_for_completions(&self, count: usize) {
        self.shared.wait_for_completions(count).await;
    }

    /// Makes the CDN's deletion of output files named `file_name` fail: payload deletion then
    /// answers an `exception` for it and the file stays (fal-protocol.md §8.3).
    pub fn fail_deletion_of(&self, file_name: &str) {
        self.shared
            .state()
            .undeletable_files
            .insert(file_name.to_owned());
    }

    /// Sets the account's default access rule for the files requests generate from now on and
    /// before (fal-protocol.md §8.4). [`Acl::Allow`] until set.
    pub fn set_output_acl(&self, acl: Acl) {
        self.shared.state().output_acl = acl;
    }

    /// The request ids whose payloads the platform API deleted, once per deletion (an
    /// idempotent replay adds nothing).
    pub fn deleted_payloads(&self) -> Vec<String> {
        self.shared.state().deleted_payloads.clone()
    }
}

impl Drop for FakeFal {
    fn drop(&mut self) {
        for server in &self.servers {
            server.abort();
        }
        self.shared.stop();
    }
}

async fn bind_loopback() -> TcpListener {
    TcpListener::bind("127.0.0.1:0")
        .await
        .expect("the fake fal server binds a loopback port")
}

fn assert_status_code(status: u16) {
    assert!(
        StatusCode::from_u16(status).is_ok(),
        "{status} is not an HTTP status code"
    );
}
