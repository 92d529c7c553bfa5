//! The webhook relay. A desktop cannot receive webhooks, so this small server, run by a creator
//! on any host with a public address, receives them for it:
//!
//! - `POST /api/avatar/status_update?training_type=portrait|style` takes fal's signed webhooks
//!   (verified against fal's published keys, fal-protocol.md §2.2) and the guide's own status
//!   format from senders holding the relay token, and stores each event once, durably, before
//!   answering;
//! - `GET /api/events` (long-poll) and `GET /api/events/stream` (server-sent events) hand the
//!   stored events to the app, in order, from any cursor it resumes at;
//! - `GET /health` says the relay is up and its store works.
//!
//! Tests and the binary start it the same way: [`Relay::start`] with a [`RelayConfig`].

mod intake;
mod keys;
mod rate_limit;
mod server;
mod store;
mod token;
pub use relay_wire as wire;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use keys::KeysUnavailable;
pub use store::{SCHEMA_VERSION, StoreError};

/// Where fal publishes its webhook keys (fal-protocol.md §2.2).
pub const DEFAULT_JWKS_URL: &str = "https://rest.fal.ai/.well-known/jwks.json";
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// Far above a real webhook: fal's bodies hold result URLs, not files.
pub const DEFAULT_BODY_LIMIT: usize = 256 * 1024;
pub const DEFAULT_RATE_LIMIT_PER_MINUTE: u32 = 600;
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(30 * 24 * 60 * 60);
pub const DEFAULT_JWKS_CACHE: Duration = Duration::from_secs(60 * 60);
/// fal-protocol.md §2.2: keys "can change"; cache them for no more than a day.
pub const MAX_JWKS_CACHE: Duration = Duration::from_secs(24 * 60 * 60);
/// fal retries a webhook over two hours; events must outlive that, or a late retry of a deleted
/// event would be stored again.
pub const MIN_RETENTION: Duration = Duration::from_secs(24 * 60 * 60);
/// Shorter tokens are refused: the relay faces the internet.
pub const MIN_TOKEN_LENGTH: usize = 16;
/// The most events one `GET /api/events` answer carries.
pub const FEED_PAGE_SIZE: usize = 500;
/// The most event bytes one feed page carries (a page always carries at least one event).
pub const FEED_PAGE_BYTES: usize = 4 * 1024 * 1024;
/// How long a client may take to send a request's headers, from its first byte or from the end
/// of its previous request.
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a client may take to send a request's body.
pub const BODY_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest a long-poll waits, whatever it asks.
pub const MAX_LONG_POLL: Duration = Duration::from_secs(60);

/// How a relay runs. [`RelayConfig::new`] fills in the defaults.
#[derive(Clone)]
pub struct RelayConfig {
    pub listen: SocketAddr,
    /// The SQLite file holding the events; created when missing.
    pub db: PathBuf,
    /// What the app and trusted senders present as `Authorization: Bearer <token>`.
    pub token: String,
    pub jwks_url: String,
    /// The largest request body accepted, in bytes.
    pub body_limit: usize,
    /// Requests per minute from one client address (an IPv6 client: its /64); 0 for no limit.
    pub rate_limit_per_minute: u32,
    /// Events older than this are deleted.
    pub retention: Duration,
    /// How long fal's keys are used before they are fetched again; at most [`MAX_JWKS_CACHE`].
    pub jwks_cache: Duration,
    /// Take the client address from the last `X-Forwarded-For` entry, as a reverse proxy in
    /// front of the relay appends it. Only behind such a proxy: otherwise clients could pick
    /// their own address and evade the rate limit.
    pub trust_forwarded_for: bool,
    /// The fal accounts whose signed deliveries are stored; empty accepts any fal account's.
    pub fal_user_ids: Vec<String>,
    /// How long a client may take to send a request's headers.
    pub header_read_timeout: Duration,
}

impl RelayConfig {
    pub fn new(db: PathBuf, token: String) -> Self {
        Self {
            listen: DEFAULT_LISTEN.parse().expect("the default address parses"),
            db,
            token,
            jwks_url: DEFAULT_JWKS_URL.to_owned(),
            body_limit: DEFAULT_BODY_LIMIT,
            rate_limit_per_minute: DEFAULT_RATE_LIMIT_PER_MINUTE,
            retention: DEFAULT_RETENTION,
            jwks_cache: DEFAULT_JWKS_CACHE,
            trust_forwarded_for: false,
            fal_user_ids: Vec::new(),
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
        }
    }

    fn validate(&self) -> Result<(), RelayError> {
        let invalid = |message: String| Err(RelayError::Config(message));
        if self.token.trim().is_empty() {
            return invalid(
                "no relay token: set RELAY_TOKEN or RELAY_TOKEN_FILE (for example to the output of `openssl rand -hex 32`)".to_owned(),
            );
        }
        if self.token.chars().count() < MIN_TOKEN_LENGTH {
            return invalid(format!(
                "the relay token is shorter than {MIN_TOKEN_LENGTH} characters; use a long random one (for example `openssl rand -hex 32`)"
            ));
        }
        if self.jwks_cache > MAX_JWKS_CACHE {
            return invalid(format!(
                "fal's keys may be cached for at most {} hours, not {} s",
                MAX_JWKS_CACHE.as_secs() / 3600,
                self.jwks_cache.as_secs()
            ));
        }
        if self.retention < MIN_RETENTION {
            return invalid(format!(
                "events must be kept for at least a day (fal retries a webhook over two hours), not {} s",
                self.retention.as_secs()
            ));
        }
        if self.body_limit == 0 {
            return invalid("the body limit must be above 0 bytes".to_owned());
        }
        Ok(())
    }
}

impl std::fmt::Debug for RelayConfig {
    // The token stays out of logs and panic messages.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RelayConfig")
            .field("listen", &self.listen)
            .field("db", &self.db)
            .field("token", &"<redacted>")
            .field("jwks_url", &self.jwks_url)
            .field("body_limit", &self.body_limit)
            .field("rate_limit_per_minute", &self.rate_limit_per_minute)
            .field("retention", &self.retention)
            .field("jwks_cache", &self.jwks_cache)
            .field("trust_forwarded_for", &self.trust_forwarded_for)
            .field("fal_user_ids", &self.fal_user_ids)
            .finish()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error("{0}")]
    Config(String),
    #[error("the event store {path} cannot be opened: {source}")]
    Store { path: PathBuf, source: StoreError },
    #[error("cannot listen on {address}: {source}")]
    Listen {
        address: SocketAddr,
        source: std::io::Error,
    },
    #[error("{0}")]
    Keys(#[from] keys::KeysUnavailable),
}

/// The relay server; see [`Relay::start`].
pub struct Relay;

impl Relay {
    /// Opens the store, binds `config.listen` and serves until [`RunningRelay::stop`].
    pub async fn start(config: RelayConfig) -> Result<RunningRelay, RelayError> {
        config.validate()?;
        let path = config.db.clone();
        let store = tokio::task::spawn_blocking(move || store::Store::open(&path))
            .await
            .expect("opening the store does not panic")
            .map_err(|source| RelayError::Store {
                path: config.db.clone(),
                source,
            })?;
        let listener =
            TcpListener::bind(config.listen)
                .await
                .map_err(|source| RelayError::Listen {
                    address: config.listen,
                    source,
                })?;
        let addr = listener.local_addr().map_err(|source| RelayError::Listen {
            address: config.listen,
            source,
        })?;
        let (stopping, stop_signal) = watch::channel(false);
        let state = Arc::new(server::AppState::new(&config, store, stop_signal)?);
        let server = tokio::spawn(server::serve(listener, state.clone()));
        let maintenance = tokio::spawn(server::maintain(state.clone(), config.retention));
        Ok(RunningRelay {
            addr,
            state,
            stopping,
            server,
            maintenance,
        })
    }
}

/// A relay serving on its address.
pub struct RunningRelay {
    addr: SocketAddr,
    state: Arc<server::AppState>,
    stopping: watch::Sender<bool>,
    server: JoinHandle<()>,
    maintenance: JoinHandle<()>,
}

impl RunningRelay {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ADDRESS`, without a trailing slash.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops accepting, ends the open feeds, lets requests in flight finish and closes the store.
    pub async fn stop(self) {
        self.stopping.send_replace(true);
        let _ = self.server.await;
        self.maintenance.abort();
        let _ = self.maintenance.await;
        self.state.store.close().await;
    }
}
