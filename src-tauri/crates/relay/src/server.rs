//! The HTTP side: routes, authentication, the rate limit, and the feed's waiting.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::fmt::Display;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{ConnectInfo, DefaultBodyLimit, FromRequest, Query, Request, State};
use axum::http::header::RETRY_AFTER;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use chrono::{TimeDelta, Utc};
use fal::webhook::{self, WebhookError};
use futures_util::{Stream, stream};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::keys::{FalKeys, KeysUnavailable};
use crate::rate_limit::RateLimiter;
use crate::store::{NewEvent, Store, StoreError, Stored};
use crate::token::{self, BearerToken};
use crate::wire::{EventSource, FeedEvent, FeedPage, TrainingType};
use crate::{
    BODY_READ_TIMEOUT, FEED_PAGE_BYTES, FEED_PAGE_SIZE, MAX_LONG_POLL, RelayConfig, RelayError,
    intake,
};

const VERSION: &str = env!("CARGO_PKG_VERSION");
/// A comment line this often keeps proxies from closing a quiet event stream.
const STREAM_KEEP_ALIVE: Duration = Duration::from_secs(15);
/// How often old events are deleted and idle clients forgotten.
const MAINTENANCE_INTERVAL: Duration = Duration::from_secs(60);
/// Every fal signature header starts so (fal-protocol.md §2.2).
const FAL_HEADER_PREFIX: &str = "x-fal-webhook-";
/// Where fal and token holders deliver status updates.
const STATUS_ROUTE: &str = "/api/avatar/status_update";
/// How long to wait after a failed accept before the next.
const ACCEPT_RETRY: Duration = Duration::from_millis(100);

pub(crate) struct AppState {
    pub store: Store,
    keys: FalKeys,
    token: BearerToken,
    rate_limiter: RateLimiter,
    /// Charged only by deliveries whose fal signature did not verify: fal's own deliveries all
    /// come from fal's few addresses and must not be starved by a per-address limit.
    fal_user_ids: Vec<String>,
    body_limit: usize,
    trust_forwarded_for: bool,
    header_read_timeout: Duration,
    stopping: watch::Receiver<bool>,
}

impl AppState {
    pub fn new(
        config: &RelayConfig,
        store: Store,
        stopping: watch::Receiver<bool>,
    ) -> Result<Self, RelayError> {
        Ok(Self {
            store,
            keys: FalKeys::new(config.jwks_url.clone(), config.jwks_cache)?,
            token: BearerToken::new(&config.token),
            rate_limiter: RateLimiter::new(config.rate_limit_per_minute),
            fal_user_ids: config.fal_user_ids.clone(),
            body_limit: config.body_limit,
            trust_forwarded_for: config.trust_forwarded_for,
            header_read_timeout: config.header_read_timeout,
            stopping,
        })
    }

    /// Resolves once the relay is stopping.
    async fn stopped(&self) {
        let mut stopping = self.stopping.clone();
        // The sender lives in `RunningRelay`; once it is gone the relay is stopping anyway.
        let _ = stopping.wait_for(|&stopping| stopping).await;
    }
}

/// One line on stderr. Callers never pass the token or a request's headers.
fn log(line: impl Display) {
    eprintln!(
        "{} avatar-relay: {line}",
        Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    );
}

/// Accepts connections until the relay stops, then lets each finish its request. hyper, not
/// `axum::serve`, so that a client trickling its headers is cut off after
/// the configured header-read timeout instead of holding a connection for ever.
pub(crate) async fn serve(listener: TcpListener, state: Arc<AppState>) {
    let app = Router::new()
        .route("/health", get(health))
        .route(STATUS_ROUTE, post(status_update))
        .route("/api/events", get(events))
        .route("/api/events/stream", get(event_stream))
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "no such route") })
        .layer(DefaultBodyLimit::max(state.body_limit))
        .layer(middleware::from_fn_with_state(state.clone(), limit_rate))
        .with_state(state.clone());
    let mut connections = tokio::task::JoinSet::new();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = state.stopped() => break,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                // Out of file descriptors and the like: wait a moment rather than spin.
                log(format!("could not accept a connection: {error}"));
                tokio::time::sleep(ACCEPT_RETRY).await;
                continue;
            }
        };
        let service = TowerToHyperService::new(app.clone().layer(Extension(ConnectInfo(peer))));
        let state = state.clone();
        connections.spawn(async move {
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(state.header_read_timeout)
                .serve_connection(TokioIo::new(stream), service);
            tokio::pin!(connection);
            tokio::select! {
                _ = connection.as_mut() => return,
                () = state.stopped() => {}
            }
            connection.as_mut().graceful_shutdown();
            let _ = connection.await;
        });
        // Finished connections are reaped as new ones come, so the set stays small.
        while connections.try_join_next().is_some() {}
    }
    while connections.join_next().await.is_some() {}
}

/// Deletes events past their retention and forgets idle clients, once a minute.
pub(crate) async fn maintain(state: Arc<AppState>, retention: Duration) {
    let retention = TimeDelta::from_std(retention).unwrap_or(TimeDelta::MAX);
    let mut ticks = tokio::time::interval(MAINTENANCE_INTERVAL);
    loop {
        ticks.tick().await;
        state.rate_limiter.forget_idle(Instant::now());
        let Some(cutoff) = Utc::now().checked_sub_signed(retention) else {
            continue;
        };
        match state.store.delete_received_before(cutoff).await {
            Ok(0) => {}
            Ok(deleted) => log(format!("deleted {deleted} events received before {cutoff}")),
            Err(error) => log(format!("could not delete old events: {error}")),
        }
    }
}

/// An error answer: `{"error": message}`.
struct ApiError {
    status: StatusCode,
    message: String,
    /// Seconds for `Retry-After`, on a 429.
    retry_after: Option<u64>,
}

impl ApiError {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            retry_after: None,
        }
    }

    fn too_many_requests(client: IpAddr, wait: Duration) -> Self {
        let seconds = wait.as_secs_f64().ceil().max(1.0) as u64;
        Self {
            retry_after: Some(seconds),
            ..Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                format!("too many requests from {client}; retry in {seconds} s"),
            )
        }
    }

    fn unavailable(error: impl Display) -> Self {
        log(&error);
        Self::new(StatusCode::SERVICE_UNAVAILABLE, error.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(json!({ "error": self.message }))).into_response();
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        ApiError::unavailable(error)
    }
}

/// The address a request came from, as the rate limit and the log know it.
#[derive(Debug, Clone, Copy)]
struct Client(IpAddr);

async fn limit_rate(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    mut request: Request,
    next: Next,
) -> Response {
    let client = client_address(&state, peer.ip(), request.headers());
    // A delivery to the status route signed like fal's is always verified (an Ed25519 check is
    // cheap), so fal's own deliveries are never held back by the address they share with
    // others; it is charged in `status_update` unless it verifies for an account this relay
    // serves. Every other request, fal's headers or not, takes from its address's allowance.
    let fal_delivery = request.uri().path() == STATUS_ROUTE && signed_like_fal(request.headers());
    if !fal_delivery && let Err(wait) = state.rate_limiter.admit(client, Instant::now()) {
        return too_many_requests(client, wait);
    }
    request.extensions_mut().insert(Client(client));
    next.run(request).await
}

fn signed_like_fal(headers: &HeaderMap) -> bool {
    headers
        .keys()
        .any(|name| name.as_str().starts_with(FAL_HEADER_PREFIX))
}

fn too_many_requests(client: IpAddr, wait: Duration) -> Response {
    ApiError::too_many_requests(client, wait).into_response()
}

fn client_address(state: &AppState, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
    if !state.trust_forwarded_for {
        return peer;
    }
    // The proxy appends the address it saw; entries before it are whatever the client claimed.
    headers
        .get_all("x-forwarded-for")
        .iter()
        .next_back()
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.rsplit(',').next())
        .and_then(|address| address.trim().parse().ok())
        .unwrap_or(peer)
}

/// `GET /health`: the version and whether the store answers, to anyone; how many events it
/// holds only to the token holder.
async fn health(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    match state.store.count().await {
        Ok(events) => {
            let mut report = json!({ "status": "ok", "version": VERSION, "store": "ok" });
            if state.token.authorizes(&headers) {
                report["events"] = json!(events);
            }
            Json(report).into_response()
        }
        Err(error) => {
            log(format!("health check: {error}"));
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({
                    "status": "error",
                    "version": VERSION,
                    "store": error.to_string(),
                })),
            )
                .into_response()
        }
    }
}

#[derive(Debug, Deserialize)]
struct StatusUpdateQuery {
    training_type: Option<String>,
}

/// `POST /api/avatar/status_update`: fal's signed webhooks and the guide's own format.
async fn status_update(
    State(state): State<Arc<AppState>>,
    Extension(Client(client)): Extension<Client>,
    request: Request,
) -> Result<Json<Value>, ApiError> {
    let received_at = Utc::now();
    let headers = request.headers().clone();
    let fal_signed = signed_like_fal(&headers);
    let refuse = |reason: &dyn Display| {
        // A delivery signed like fal's was not charged on the way in: a refused one is, and
        // one past its address's allowance is told to wait, unlogged, so refusals cannot flood
        // the log.
        if fal_signed && let Err(wait) = state.rate_limiter.admit(client, Instant::now()) {
            return ApiError::too_many_requests(client, wait);
        }
        log(format!("refused a status update from {client}: {reason}"));
        ApiError::new(StatusCode::UNAUTHORIZED, reason.to_string())
    };
    let source = if fal_signed {
        EventSource::Fal
    } else if !token::is_presented(&headers) {
        return Err(refuse(
            &"neither fal's X-Fal-Webhook-* signature headers nor Authorization: Bearer <relay token>",
        ));
    } else if state.token.authorizes(&headers) {
        EventSource::Trusted
    } else {
        return Err(refuse(&"the bearer token is not this relay's token"));
    };
    let query = Query::<StatusUpdateQuery>::try_from_uri(request.uri())
        .map_err(|rejection| ApiError::new(StatusCode::BAD_REQUEST, rejection.body_text()))?;

    let body = tokio::time::timeout(BODY_READ_TIMEOUT, Bytes::from_request(request, &state))
        .await
        .map_err(|_| {
            ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                format!(
                    "the body did not arrive within {} s",
                    BODY_READ_TIMEOUT.as_secs()
                ),
            )
        })?
        .map_err(|rejection| match rejection.status() {
            StatusCode::PAYLOAD_TOO_LARGE => ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("the body is larger than {} bytes", state.body_limit),
            ),
            status => ApiError::new(status, rejection.body_text()),
        })?;
    let delivery = match source {
        EventSource::Fal => {
            match verify_signature(&state.keys, &headers, &body, received_at.timestamp()).await {
                Ok(verified) if accepts_account(&state.fal_user_ids, &verified.user_id) => {}
                Ok(verified) => {
                    return Err(refuse(&format!(
                        "fal account {} is not one this relay serves",
                        verified.user_id
                    )));
                }
                Err(Refusal::Signature(reason)) => return Err(refuse(&reason)),
                Err(Refusal::KeysUnavailable(error)) => {
                    if let Err(wait) = state.rate_limiter.admit(client, Instant::now()) {
                        return Err(ApiError::too_many_requests(client, wait));
                    }
                    return Err(ApiError::unavailable(error));
                }
            }
            intake::fal_webhook(&body)
        }
        EventSource::Trusted => intake::guide_status(&body),
    }
    .map_err(|error| ApiError::new(StatusCode::BAD_REQUEST, error.to_string()))?;

    let training_type = match (query.0.training_type.as_deref(), delivery.training_type) {
        (None, in_body) => in_body,
        (Some(in_query), in_body) => {
            let in_query = intake::training_type(in_query)
                .map_err(|error| ApiError::new(StatusCode::BAD_REQUEST, error.to_string()))?;
            if in_body.is_some_and(|in_body| in_body != in_query) {
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "training_type differs between the query and the body",
                ));
            }
            Some(in_query)
        }
    };
    let event = NewEvent {
        request_id: delivery.request_id,
        kind: delivery.kind,
        progress: delivery.progress,
        training_type,
        source,
        // Parsed as a JSON object above, so it is UTF-8.
        body: String::from_utf8_lossy(&body).into_owned(),
        received_at,
    };
    let what = format!(
        "{} of request {} ({}) from {}",
        event.kind.as_str(),
        event.request_id,
        training_type.map_or("training type not given", TrainingType::as_str),
        source.as_str(),
    );
    match state.store.insert(event).await? {
        Stored::New(cursor) => {
            log(format!("stored {what} as event {cursor}"));
            Ok(Json(json!({ "status": "stored", "cursor": cursor })))
        }
        Stored::Duplicate => {
            log(format!("{what} was stored before"));
            Ok(Json(json!({ "status": "duplicate" })))
        }
    }
}

fn accepts_account(allowed: &[String], user_id: &str) -> bool {
    allowed.is_empty() || allowed.iter().any(|allowed| allowed == user_id)
}

enum Refusal {
    Signature(WebhookError),
    KeysUnavailable(KeysUnavailable),
}

/// Checks fal's signature with the cached keys, and once more with fresh keys when none of
/// them verifies, in case fal rotated its keys.
///
/// Replays need no list of seen signatures: inside the five minutes a timestamp is accepted, a
/// replay either is byte for byte a delivery already stored, and so a duplicate like fal's own
/// retries, or has changed something the signature covers, and fails here.
async fn verify_signature(
    keys: &FalKeys,
    headers: &HeaderMap,
    body: &[u8],
    now_secs: i64,
) -> Result<webhook::VerifiedWebhook, Refusal> {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned)
    };
    let tried = keys.cached().await;
    let first = webhook::verify(
        header,
        body,
        now_secs,
        tried.as_ref().map_or(&[], |set| &set.keys),
    );
    let verified = match first {
        Err(WebhookError::NoKeys | WebhookError::SignatureMismatch(_)) => {
            match keys
                .refresh(tried.as_ref())
                .await
                .map_err(Refusal::KeysUnavailable)?
            {
                Some(fresh) => webhook::verify(header, body, now_secs, &fresh.keys),
                None => first,
            }
        }
        other => other,
    };
    verified.map_err(Refusal::Signature)
}

/// The feed's routes answer only the relay token.
fn authorize_feed(state: &AppState, client: IpAddr, headers: &HeaderMap) -> Result<(), ApiError> {
    if state.token.authorizes(headers) {
        return Ok(());
    }
    let reason = if token::is_presented(headers) {
        "the bearer token is not this relay's token"
    } else {
        "the feed needs Authorization: Bearer <relay token>"
    };
    log(format!("refused a feed request from {client}: {reason}"));
    Err(ApiError::new(StatusCode::UNAUTHORIZED, reason))
}

#[derive(Debug, Deserialize)]
struct FeedQuery {
    after: Option<i64>,
    /// Seconds to wait for an event when none is newer than `after`.
    timeout: Option<u64>,
}

fn feed_query(query: Result<Query<FeedQuery>, QueryRejection>) -> Result<FeedQuery, ApiError> {
    query
        .map(|Query(query)| query)
        .map_err(|rejection| ApiError::new(StatusCode::BAD_REQUEST, rejection.body_text()))
}

/// `GET /api/events?after=CURSOR&timeout=SECONDS`: a long-poll.
async fn events(
    State(state): State<Arc<AppState>>,
    Extension(Client(client)): Extension<Client>,
    headers: HeaderMap,
    query: Result<Query<FeedQuery>, QueryRejection>,
) -> Result<Json<FeedPage>, ApiError> {
    authorize_feed(&state, client, &headers)?;
    let query = feed_query(query)?;
    let after = query.after.unwrap_or(0);
    let wait = Duration::from_secs(query.timeout.unwrap_or(0)).min(MAX_LONG_POLL);
    let mut latest = state.store.latest();
    tokio::select! {
        _ = latest.wait_for(|&newest| newest > after) => {}
        () = tokio::time::sleep(wait) => {}
        () = state.stopped() => {}
    }
    Ok(Json(read_page(&state.store, after).await?))
}

/// The events after `after`, and where to go on from.
async fn read_page(store: &Store, after: i64) -> Result<FeedPage, StoreError> {
    // Read before the query: every event up to it is committed, so when the query finds none,
    // the ones up to it are gone (retention) and the next page can start past them.
    let newest = *store.latest().borrow();
    // The rest comes on the next page; one event always fits, whatever its size.
    let events = store
        .events_after(after, FEED_PAGE_SIZE, FEED_PAGE_BYTES)
        .await?;
    let next = events
        .last()
        .map_or(newest.max(after), |event| event.cursor);
    Ok(FeedPage { events, next })
}

/// `GET /api/events/stream?after=CURSOR`: server-sent events, `id: CURSOR` and `data: EVENT`.
/// A reconnecting `EventSource` sends `Last-Event-ID`, which wins over `after`.
async fn event_stream(
    State(state): State<Arc<AppState>>,
    Extension(Client(client)): Extension<Client>,
    headers: HeaderMap,
    query: Result<Query<FeedQuery>, QueryRejection>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    authorize_feed(&state, client, &headers)?;
    let query = feed_query(query)?;
    let last_event_id = headers
        .get("last-event-id")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().parse().ok());
    let after = last_event_id.or(query.after).unwrap_or(0);
    Ok(Sse::new(follow(state, after)).keep_alive(KeepAlive::new().interval(STREAM_KEEP_ALIVE)))
}

struct Follower {
    state: Arc<AppState>,
    after: i64,
    pending: VecDeque<FeedEvent>,
    latest: watch::Receiver<i64>,
}

/// Every event after `after`, then each new one as it is stored, until the relay stops.
fn follow(state: Arc<AppState>, after: i64) -> impl Stream<Item = Result<Event, Infallible>> {
    let follower = Follower {
        latest: state.store.latest(),
        state,
        after,
        pending: VecDeque::new(),
    };
    stream::unfold(follower, |mut follower| async move {
        loop {
            if let Some(event) = follower.pending.pop_front() {
                let data = serde_json::to_string(&event).expect("feed events serialise");
                let event = Event::default().id(event.cursor.to_string()).data(data);
                return Some((Ok(event), follower));
            }
            let after = follower.after;
            let newer = tokio::select! {
                newer = follower.latest.wait_for(|&newest| newest > after) => newer.is_ok(),
                () = follower.state.stopped() => false,
            };
            if !newer {
                return None;
            }
            match read_page(&follower.state.store, after).await {
                Ok(page) => {
                    follower.after = page.next;
                    follower.pending = page.events.into();
                }
                Err(error) => {
                    log(format!("an event stream ended: {error}"));
                    return None;
                }
            }
        }
    })
}
