//! What the fake holds while it runs: its jobs, uploads, faults and recorders, behind one mutex
//! that is never held across an await.

use std::collections::{HashMap, HashSet, VecDeque};
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use chrono::{DateTime, Utc};
use fal::webhook::WebhookSigner;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::connections::OpenConnections;
use crate::inference::FLUX_LORA;
use crate::jobs::Job;
use crate::platform::{Price, ReplayedDeletion};
use crate::storage::StoredObject;
use crate::{Acl, DEFAULT_SINGLE_UPLOAD_LIMIT, Delivery, Fault, Route, Script, Submission, Upload};

/// The query parameter a signed URL carries its token in (fal's example: `?identity=…`).
pub const SIGNED_URL_PARAMETER: &str = "identity";

pub(crate) struct Shared {
    pub base_url: String,
    pub platform_url: String,
    pub api_key: String,
    pub signer: WebhookSigner,
    /// The fake's webhook deliveries.
    pub http: reqwest::Client,
    /// Dataset downloads from admitted origins; redirects are followed by hand, each hop
    /// checked (fal-protocol.md §7.1).
    pub dataset_http: reqwest::Client,
    pub storage_dir: tempfile::TempDir,
    pub connections: Arc<OpenConnections>,
    arrivals: watch::Sender<HashMap<Route, usize>>,
    /// How many jobs have completed, successfully or not.
    completions: watch::Sender<usize>,
    tasks: Mutex<JoinSet<()>>,
    state: Mutex<State>,
}

pub(crate) struct State {
    pub script: Script,
    pub faults: Faults,
    pub jobs: HashMap<String, Job>,
    /// Endpoint ids whose jobs are inferences with a LoRA; every other endpoint trains.
    pub inference_endpoints: HashSet<String>,
    pub stored_objects: HashMap<String, StoredObject>,
    pub submissions: Vec<Submission>,
    pub deliveries: Vec<Delivery>,
    pub uploads: Vec<Upload>,
    pub part_uploads: Vec<(String, u32, u64)>,
    pub cancel_requests: Vec<String>,
    /// The output files served, by URL path (`/files/{request_id}/{file}`), once per GET.
    pub output_downloads: Vec<String>,
    pub single_upload_limit: u64,
    /// Origins (`scheme://host:port`) a dataset may come from although they are not public.
    pub dataset_origins: Vec<String>,
    pub admin_key: bool,
    pub prices: HashMap<String, Price>,
    pub deleted_payloads: Vec<String>,
    /// Payload deletions by `Idempotency-Key`.
    pub deletions_by_key: HashMap<String, ReplayedDeletion>,
    /// Output file names whose CDN deletion fails (`FakeFal::fail_deletion_of`).
    pub undeletable_files: HashSet<String>,
    /// How far the fake's clock of retention and history is ahead of tokio's
    /// (`FakeFal::advance_clock`).
    pub clock_offset: Duration,
    /// The account's default access rule for generated files.
    pub output_acl: Acl,
    /// Signed URL tokens handed out: token → (the file's URL without query, when it expires).
    pub signed_urls: HashMap<String, (String, Instant)>,
}

impl Shared {
    pub fn new(base_url: String, platform_url: String, api_key: String) -> Self {
        let state = State {
            script: Script::default(),
            faults: Faults::default(),
            jobs: HashMap::new(),
            inference_endpoints: HashSet::from([FLUX_LORA.to_owned()]),
            stored_objects: HashMap::new(),
            submissions: Vec::new(),
            deliveries: Vec::new(),
            uploads: Vec::new(),
            part_uploads: Vec::new(),
            cancel_requests: Vec::new(),
            output_downloads: Vec::new(),
            single_upload_limit: DEFAULT_SINGLE_UPLOAD_LIMIT,
            // The fake's storage serves uploads from its own origin, on loopback.
            dataset_origins: vec![base_url.clone()],
            admin_key: false,
            prices: HashMap::from([(FLUX_LORA.to_owned(), Price::flux_lora())]),
            deleted_payloads: Vec::new(),
            deletions_by_key: HashMap::new(),
            undeletable_files: HashSet::new(),
            clock_offset: Duration::ZERO,
            output_acl: Acl::Allow,
            signed_urls: HashMap::new(),
        };
        Self {
            base_url,
            platform_url,
            api_key,
            signer: WebhookSigner::generate(),
            http: local_client().build().expect("a plain HTTP client builds"),
            dataset_http: local_client()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("a plain HTTP client builds"),
            storage_dir: tempfile::tempdir().expect("the fake creates a temporary folder"),
            connections: Arc::default(),
            arrivals: watch::Sender::new(HashMap::new()),
            completions: watch::Sender::new(0),
            tasks: Mutex::default(),
            state: Mutex::new(state),
        }
    }

    /// The state; a panic elsewhere while it was held leaves it usable for the next request.
    pub fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn record_arrival(&self, route: Route) {
        self.arrivals
            .send_modify(|counts| *counts.entry(route).or_default() += 1);
    }

    pub fn arrivals(&self, route: Route) -> usize {
        self.arrivals.borrow().get(&route).copied().unwrap_or(0)
    }

    pub async fn wait_for_arrivals(&self, route: Route, count: usize) {
        let mut arrivals = self.arrivals.subscribe();
        // The sender lives in `self`, so waiting cannot fail.
        let _ = arrivals
            .wait_for(|counts| counts.get(&route).copied().unwrap_or(0) >= count)
            .await;
    }

    pub fn record_completion(&self) {
        self.completions.send_modify(|count| *count += 1);
    }

    pub async fn wait_for_completions(&self, count: usize) {
        let mut completions = self.completions.subscribe();
        // The sender lives in `self`, so waiting cannot fail.
        let _ = completions.wait_for(|done| *done >= count).await;
    }

    /// Runs a job or a webhook delivery in the background until it ends or the fake stops.
    pub fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) {
        let mut tasks = self.tasks.lock().unwrap_or_else(PoisonError::into_inner);
        while tasks.try_join_next().is_some() {}
        tasks.spawn(task);
    }

    pub fn stop(&self) {
        self.connections.cut_all();
        self.tasks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .abort_all();
    }
}

/// One-shot faults waiting for the requests they match.
#[derive(Default)]
pub(crate) struct Faults(VecDeque<Fault>);

impl Faults {
    pub fn push(&mut self, fault: Fault) {
        self.0.push_back(fault);
    }

    /// Removes and returns the first fault that `matches` accepts.
    pub fn take(&mut self, matches: impl Fn(&Fault) -> bool) -> Option<Fault> {
        let position = self.0.iter().position(matches)?;
        self.0.remove(position)
    }
}

impl State {
    /// Now on the fake's clock of retention and history: tokio's, moved on by
    /// `FakeFal::advance_clock`. Jobs run on tokio's own.
    pub fn now(&self) -> Instant {
        Instant::now() + self.clock_offset
    }

    /// Whether `uri` may read the generated file at `file_url`: always under [`Acl::Allow`],
    /// else only with an unexpired signed URL's token for that file.
    pub fn may_read_output(&self, file_url: &str, query: Option<&str>) -> bool {
        if self.output_acl == Acl::Allow {
            return true;
        }
        let token = query
            .into_iter()
            .flat_map(|query| query.split('&'))
            .find_map(|pair| {
                pair.strip_prefix(SIGNED_URL_PARAMETER)
                    .and_then(|rest| rest.strip_prefix('='))
            });
        token
            .and_then(|token| self.signed_urls.get(token))
            .is_some_and(|(url, expires_at)| url == file_url && self.now() < *expires_at)
    }

    /// The wall-clock time the history stamps and windows use, moved on likewise.
    pub fn wall_now(&self) -> DateTime<Utc> {
        Utc::now() + self.clock_offset
    }

    /// The job `request_id` as the queue knows it: submitted to an endpoint of `owner_app`, and
    /// not forgotten.
    pub fn job(&self, owner_app: &str, request_id: &str) -> Option<&Job> {
        self.jobs
            .get(request_id)
            .filter(|job| job.owner_app == owner_app && !job.forgotten)
    }
}

fn local_client() -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        // Everything the fake calls is local; a proxy from the environment must not intercept
        // it.
        .no_proxy()
        .connect_timeout(Duration::from_secs(5))
}
