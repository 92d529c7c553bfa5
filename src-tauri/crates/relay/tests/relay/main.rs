//! The relay started on loopback and driven over HTTP, with fal's keys served locally: by the
//! fake fal, or by a small key server for a signer the test holds.

// The tests talk to the relay as fal and the app would.
#![allow(clippy::disallowed_methods)]

mod feed;
mod internet;
mod limits;
mod webhooks;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::routing::get;
use fal::webhook::WebhookSigner;
use relay::wire::FeedPage;
use relay::{Relay, RelayConfig, RunningRelay};
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

pub const TOKEN: &str = "test-relay-token-0123456789abcdef";
pub const PATIENCE: Duration = Duration::from_secs(10);

pub async fn within<T>(what: &str, future: impl Future<Output = T>) -> T {
    tokio::time::timeout(PATIENCE, future)
        .await
        .unwrap_or_else(|_| panic!("{what} took longer than {PATIENCE:?}"))
}

pub fn http() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

pub fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A relay on a free loopback port with its store in a temporary folder.
pub struct TestRelay {
    pub relay: RunningRelay,
    pub config: RelayConfig,
    pub dir: tempfile::TempDir,
}

impl TestRelay {
    pub async fn start(jwks_url: &str) -> Self {
        Self::start_with(jwks_url, |_| {}).await
    }

    pub async fn start_with(jwks_url: &str, adjust: impl FnOnce(&mut RelayConfig)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut config = config(&dir.path().join("relay.sqlite3"), jwks_url);
        adjust(&mut config);
        let relay = Relay::start(config.clone()).await.unwrap();
        Self { relay, config, dir }
    }

    pub fn status_url(&self) -> String {
        format!(
            "{}/api/avatar/status_update?training_type=portrait",
            self.relay.url()
        )
    }

    /// Every stored event, read through the feed.
    pub async fn events(&self) -> Vec<relay::wire::FeedEvent> {
        feed(&self.relay.url(), 0, 0).await.events
    }
}

pub fn config(db: &Path, jwks_url: &str) -> RelayConfig {
    RelayConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        jwks_url: jwks_url.to_owned(),
        ..RelayConfig::new(PathBuf::from(db), TOKEN.to_owned())
    }
}

/// `GET /api/events?after=…&timeout=…` with the token.
pub async fn feed(relay_url: &str, after: i64, timeout_secs: u64) -> FeedPage {
    let response = http()
        .get(format!("{relay_url}/api/events"))
        .query(&[("after", after), ("timeout", timeout_secs as i64)])
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "the feed answers the token");
    response.json().await.unwrap()
}

/// Serves a key set at `/.well-known/jwks.json` as fal does; the set can be replaced, as when
/// fal rotates its keys.
pub struct KeyServer {
    pub url: String,
    jwks: Arc<Mutex<Value>>,
    server: JoinHandle<()>,
}

impl KeyServer {
    pub async fn start(signer: &WebhookSigner) -> Self {
        let jwks = Arc::new(Mutex::new(signer.jwks()));
        let served = jwks.clone();
        let app = Router::new().route(
            "/.well-known/jwks.json",
            get(move || {
                let jwks = served.lock().unwrap().clone();
                async move { axum::Json(jwks) }
            }),
        );
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!(
            "http://{}/.well-known/jwks.json",
            listener.local_addr().unwrap()
        );
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self { url, jwks, server }
    }

    pub fn publish(&self, signer: &WebhookSigner) {
        *self.jwks.lock().unwrap() = signer.jwks();
    }
}

impl Drop for KeyServer {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// fal's webhook body for a request that ended with a LoRA.
pub fn fal_body(request_id: &str) -> String {
    serde_json::json!({
        "request_id": request_id,
        "gateway_request_id": request_id,
        "status": "OK",
        "payload": { "diffusers_lora_file": { "url": "https://v3.fal.media/files/lora.safetensors" } },
    })
    .to_string()
}

/// Posts `body` to `url` with fal's signature headers, signed by `signer` at `timestamp`.
pub async fn post_signed(
    url: &str,
    signer: &WebhookSigner,
    body: &str,
    timestamp: i64,
) -> reqwest::Response {
    let signed = signer.sign("req-header-id", "user-1", timestamp, body.as_bytes());
    let mut request = http()
        .post(url)
        .header("Content-Type", "application/json")
        .body(body.to_owned());
    for (name, value) in signed.pairs() {
        request = request.header(name, value);
    }
    request.send().await.unwrap()
}

/// The `{"error": …}` of a refusal.
pub async fn error_of(response: reqwest::Response) -> String {
    let body: Value = response.json().await.unwrap();
    body["error"]
        .as_str()
        .unwrap_or_else(|| panic!("an error answer carries \"error\": {body}"))
        .to_owned()
}
