//! fal's platform API on an origin of its own, standing in for `https://api.fal.ai/v1`
//! (fal-protocol.md §7.4, §6 last bullet): prices and estimates, the request history, payload
//! deletion and billing events. Keys go in `Authorization: Key <key>`; the fake's key is a plain
//! key unless `FakeFal::set_admin_key` makes it an admin key. Errors come in the envelope
//! `{"error": {"type", "message"}}`.

use std::cmp::Ordering;
use std::time::Duration;

use axum::body::to_bytes;
use axum::extract::{Query, Request};
use axum::http::header::AUTHORIZATION;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use chrono::{DateTime, NaiveDate, NaiveDateTime, SecondsFormat, TimeDelta, Utc};
use serde_json::{Value, json};
use tokio::time::Instant;

use crate::jobs::Job;
use crate::server::{Rejection, json_response};
use crate::state::Shared;

/// The most values a multi-valued parameter (`endpoint_id`, `request_id`) takes.
const MAX_IDS: usize = 50;
const DEFAULT_PAGE_SIZE: usize = 50;
const MAX_PAGE_SIZE: usize = 100;
/// "Responses cached for 10 minutes per unique key."
const IDEMPOTENCY_WINDOW: Duration = Duration::from_secs(10 * 60);
/// The request history looks back a day by default, 90 days when asked for one request id.
const DEFAULT_LOOKBACK: TimeDelta = TimeDelta::hours(24);
const ONE_REQUEST_LOOKBACK: TimeDelta = TimeDelta::days(90);

/// An endpoint's price, set by `FakeFal::set_price`.
pub(crate) struct Price {
    pub unit_price: f64,
    pub unit: String,
}

impl Price {
    /// `fal-ai/flux-lora`'s published price, "$0.035 per megapixel" (fal-protocol.md §4.4); the
    /// unit's name is UNCONFIRMED.
    pub fn flux_lora() -> Self {
        Self {
            unit_price: 0.035,
            unit: "megapixels".to_owned(),
        }
    }
}

/// A payload deletion's answer, replayed for the same `Idempotency-Key` within
/// [`IDEMPOTENCY_WINDOW`].
pub(crate) struct ReplayedDeletion {
    answered_at: Instant,
    status: StatusCode,
    body: Value,
}

fn error_body(kind: &str, message: &str) -> Value {
    json!({ "error": { "type": kind, "message": message } })
}

fn error(status: StatusCode, kind: &str, message: &str) -> Rejection {
    Rejection {
        status,
        body: error_body(kind, message),
    }
}

fn invalid(message: &str) -> Rejection {
    error(StatusCode::BAD_REQUEST, "validation_error", message)
}

fn no_price(endpoint_id: &str) -> Rejection {
    error(
        StatusCode::NOT_FOUND,
        "not_found",
        &format!("No pricing found for endpoint {endpoint_id}"),
    )
}

/// The platform origin's answer for a path it does not serve.
pub(crate) fn unknown_route() -> Response {
    error(StatusCode::NOT_FOUND, "not_found", "Not Found").into_response()
}

#[derive(PartialEq)]
enum Scope {
    AnyKey,
    Admin,
}

/// 401 without the fake's key, 403 when the route needs an admin key and the key is not one.
/// UNCONFIRMED: the messages.
fn authorise(shared: &Shared, headers: &HeaderMap, scope: Scope) -> Result<(), Rejection> {
    let unauthorised = |message| error(StatusCode::UNAUTHORIZED, "authorization_error", message);
    match headers.get(AUTHORIZATION) {
        None => return Err(unauthorised("API key must be prefixed with \"Key \"")),
        Some(value) if value.to_str().ok() == Some(&format!("Key {}", shared.api_key)) => {}
        Some(_) => return Err(unauthorised("Invalid API key")),
    }
    if scope == Scope::Admin && !shared.state().admin_key {
        return Err(error(
            StatusCode::FORBIDDEN,
            "authorization_error",
            "This endpoint requires an API key with ADMIN scope",
        ));
    }
    Ok(())
}

fn query_pairs(uri: &Uri) -> Vec<(String, String)> {
    Query::<Vec<(String, String)>>::try_from_uri(uri)
        .map(|Query(pairs)| pairs)
        .unwrap_or_default()
}

/// Every value of a parameter given repeated (`?a=1&a=2`) or comma-separated (`?a=1,2`).
fn values(query: &[(String, String)], name: &str) -> Vec<String> {
    query
        .iter()
        .filter(|(key, _)| key == name)
        .flat_map(|(_, value)| value.split(','))
        .map(str::trim)
        .filter(|value| !value.is_empty())
        .map(str::to_owned)
        .collect()
}

fn single<'a>(query: &'a [(String, String)], name: &str) -> Option<&'a str> {
    query
        .iter()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.as_str())
}

/// The ids of a multi-valued parameter: 1 to 50 of them when `required`, at most 50 otherwise.
fn ids(query: &[(String, String)], name: &str, required: bool) -> Result<Vec<String>, Rejection> {
    let ids = values(query, name);
    if required && ids.is_empty() {
        return Err(invalid(&format!("{name} is required")));
    }
    if ids.len() > MAX_IDS {
        return Err(invalid(&format!(
            "{name} takes at most {MAX_IDS} values, not {}",
            ids.len()
        )));
    }
    Ok(ids)
}

/// `GET /v1/models/pricing?endpoint_id=…` (1–50 ids). An endpoint without a price answers 404.
pub(crate) fn pricing(shared: &Shared, request: &Request) -> Result<Response, Rejection> {
    authorise(shared, request.headers(), Scope::AnyKey)?;
    let endpoint_ids = ids(&query_pairs(request.uri()), "endpoint_id", true)?;
    let state = shared.state();
    let prices = endpoint_ids
        .into_iter()
        .map(|endpoint_id| {
            let price = state
                .prices
                .get(&endpoint_id)
                .ok_or_else(|| no_price(&endpoint_id))?;
            Ok(json!({
                "endpoint_id": endpoint_id,
                "unit_price": price.unit_price,
                "unit": price.unit,
                "currency": "USD",
            }))
        })
        .collect::<Result<Vec<Value>, Rejection>>()?;
    Ok(json_response(
        StatusCode::OK,
        json!({ "prices": prices, "next_cursor": null, "has_more": false }),
    ))
}

/// `POST /v1/models/pricing/estimate` with `{"estimate_type": "unit_price", "endpoints":
/// {"<id>": {"unit_quantity": N}}}`: the sum of price × quantity. The fake cannot price
/// `historical_api_price` (fal's history of per-call prices) and refuses it with 400.
pub(crate) async fn estimate(shared: &Shared, request: Request) -> Result<Response, Rejection> {
    authorise(shared, request.headers(), Scope::AnyKey)?;
    // `dispatch` has read the body already and enforced its limit.
    let body = to_bytes(request.into_body(), usize::MAX)
        .await
        .unwrap_or_default();
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    match body.get("estimate_type").and_then(Value::as_str) {
        Some("unit_price") => {}
        Some("historical_api_price") => {
            return Err(invalid(
                "The fake estimates only estimate_type \"unit_price\"",
            ));
        }
        _ => {
            return Err(invalid(
                "estimate_type must be \"unit_price\" or \"historical_api_price\"",
            ));
        }
    }
    let endpoints = body
        .get("endpoints")
        .and_then(Value::as_object)
        .filter(|endpoints| !endpoints.is_empty())
        .ok_or_else(|| invalid("endpoints must map endpoint ids to {\"unit_quantity\": N}"))?;
    let state = shared.state();
    let mut total_cost = 0.0;
    for (endpoint_id, wanted) in endpoints {
        let quantity = wanted
            .get("unit_quantity")
            .and_then(Value::as_f64)
            .filter(|quantity| *quantity >= 0.000_001)
            .ok_or_else(|| {
                invalid(&format!(
                    "endpoints.{endpoint_id}.unit_quantity must be a number of at least 0.000001"
                ))
            })?;
        let price = state
            .prices
            .get(endpoint_id)
            .ok_or_else(|| no_price(endpoint_id))?;
        total_cost += price.unit_price * quantity;
    }
    Ok(json_response(
        StatusCode::OK,
        json!({
            "estimate_type": "unit_price",
            // Rounded to nano-USD, the unit billing events count in.
            "total_cost": (total_cost * 1e9).round() / 1e9,
            "currency": "USD",
        }),
    ))
}

/// The times a listing covers: from `start` (inclusive) to `end` (exclusive).
struct Window {
    start: DateTime<Utc>,
    /// `None`: up to now.
    end: Option<DateTime<Utc>>,
}

impl Window {
    /// `start` and `end` as ISO 8601 date-times (a time without an offset is UTC) or
    /// `YYYY-MM-DD`; `start` defaults to `lookback` before `now`, `end` to now.
    fn from_query(
        query: &[(String, String)],
        lookback: TimeDelta,
        now: DateTime<Utc>,
    ) -> Result<Window, Rejection> {
        let bound = |name: &str| match single(query, name) {
            None => Ok(None),
            Some(text) => parse_time(text).map(Some).ok_or_else(|| {
                invalid(&format!(
                    "{name} must be an ISO 8601 date-time or YYYY-MM-DD, not {text:?}"
                ))
            }),
        };
        let window = Window {
            start: bound("start")?.unwrap_or(now - lookback),
            end: bound("end")?,
        };
        if window.end.is_some_and(|end| end <= window.start) {
            return Err(invalid("start must be before end"));
        }
        Ok(window)
    }

    /// The request history's window: 24 h back by default, "unless `request_id` is provided, in
    /// which case the default start bound is widened to 90 days".
    fn for_history(query: &[(String, String)], now: DateTime<Utc>) -> Result<Window, Rejection> {
        let lookback = if single(query, "request_id").is_some() {
            ONE_REQUEST_LOOKBACK
        } else {
            DEFAULT_LOOKBACK
        };
        Self::from_query(query, lookback, now)
    }

    fn contains(&self, time: DateTime<Utc>) -> bool {
        time >= self.start && self.end.is_none_or(|end| time < end)
    }
}

fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    if let Ok(time) = DateTime::parse_from_rfc3339(text) {
        return Some(time.with_timezone(&Utc));
    }
    if let Ok(time) = NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f") {
        return Some(time.and_utc());
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .and_then(|date| date.and_hms_opt(0, 0, 0))
        .map(|time| time.and_utc())
}

/// `limit` (1–100, default 50) and the page `cursor` names (base64 of the page number, "Mg=="
/// for page 2).
fn page(query: &[(String, String)]) -> Result<(usize, usize), Rejection> {
    let limit = match single(query, "limit") {
        None => DEFAULT_PAGE_SIZE,
        Some(text) => text
            .parse()
            .ok()
            .filter(|limit| (1..=MAX_PAGE_SIZE).contains(limit))
            .ok_or_else(|| invalid(&format!("limit must be from 1 to {MAX_PAGE_SIZE}")))?,
    };
    let page = match single(query, "cursor") {
        None => 1,
        Some(cursor) => BASE64
            .decode(cursor)
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .and_then(|page| page.parse().ok())
            .filter(|page| *page >= 1)
            .ok_or_else(|| invalid("cursor is not one this API handed out"))?,
    };
    Ok((limit, page))
}

/// The latest ended first (fal's default `sort_by=ended_at`).
fn history_order(a: &&Job, b: &&Job) -> Ordering {
    b.ended_at
        .cmp(&a.ended_at)
        .then_with(|| a.request_id.cmp(&b.request_id))
}

/// `GET /v1/models/requests/by-endpoint?endpoint_id=…[&start][&end][&request_id][&status]
/// [&expand=payloads][&limit][&cursor]`: every finished request, whether or not its submit's
/// answer reached the client (queued and running ones are not listed: fal documents finished
/// requests only, fal-protocol.md §8.2), filtered on `sent_at` (UNCONFIRMED: which time the
/// window applies to).
/// The window starts 24 h back, 90 days back when a `request_id` is given. Requests the queue
/// has forgotten stay here: the history outlives the queue's retention. `status` is `success`
/// (2xx), `user_error` (4xx) or `error` (5xx), and leaves unfinished requests out.
pub(crate) fn requests_by_endpoint(
    shared: &Shared,
    request: &Request,
) -> Result<Response, Rejection> {
    authorise(shared, request.headers(), Scope::AnyKey)?;
    let query = query_pairs(request.uri());
    let endpoint_ids = ids(&query, "endpoint_id", true)?;
    let request_id = single(&query, "request_id");
    let window = Window::for_history(&query, shared.state().wall_now())?;
    let status = single(&query, "status");
    if status.is_some_and(|status| !["success", "error", "user_error"].contains(&status)) {
        return Err(invalid("status must be success, error or user_error"));
    }
    let with_payloads = values(&query, "expand")
        .iter()
        .any(|expand| expand == "payloads");
    let (limit, page) = page(&query)?;

    let state = shared.state();
    let mut jobs: Vec<&Job> = state
        .jobs
        .values()
        .filter(|job| endpoint_ids.contains(&job.endpoint_id))
        // fal documents finished requests only (fal-protocol.md §8.2).
        .filter(|job| job.ended_at.is_some())
        .filter(|job| window.contains(job.sent_at))
        .filter(|job| request_id.is_none_or(|id| job.request_id == id))
        .filter(|job| status.is_none_or(|status| job.status_class() == Some(status)))
        .collect();
    jobs.sort_by(history_order);
    let items: Vec<Value> = jobs
        .iter()
        .skip((page - 1) * limit)
        .take(limit)
        .map(|job| job.history_item(&shared.base_url, with_payloads))
        .collect();
    let has_more = jobs.len() > page * limit;
    let next_cursor = has_more.then(|| BASE64.encode((page + 1).to_string()));
    Ok(json_response(
        StatusCode::OK,
        json!({ "items": items, "next_cursor": next_cursor, "has_more": has_more }),
    ))
}

/// `DELETE /v1/models/requests/{request_id}/payloads` (admin keys only): deletes the request's
/// payloads and the output files its stored output names, not its input files, and answers per
/// file with its `exception` (fal-protocol.md §8.3). A request sent with `X-Fal-Store-IO: 0` has
/// no stored output, so nothing is found. An `Idempotency-Key` replays the first answer given
/// for it within 10 minutes. A second deletion without one lists no files, as none are left
/// (UNCONFIRMED).
pub(crate) fn delete_payloads(
    shared: &Shared,
    request_id: &str,
    request: &Request,
) -> Result<Response, Rejection> {
    authorise(shared, request.headers(), Scope::Admin)?;
    let idempotency_key = request
        .headers()
        .get("idempotency-key")
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    let state = &mut *shared.state();
    let now = state.now();
    state
        .deletions_by_key
        .retain(|_, deletion| now.duration_since(deletion.answered_at) < IDEMPOTENCY_WINDOW);
    if let Some(replay) = idempotency_key
        .as_ref()
        .and_then(|key| state.deletions_by_key.get(key))
    {
        return Ok(json_response(replay.status, replay.body.clone()));
    }
    let (status, body) = match state.jobs.get_mut(request_id) {
        None => (
            StatusCode::NOT_FOUND,
            error_body("not_found", &format!("Request {request_id} not found")),
        ),
        Some(job) => {
            let results: Vec<Value> = job
                .delete_payloads(&shared.base_url, &state.undeletable_files)
                .into_iter()
                .map(|(link, exception)| json!({ "link": link, "exception": exception }))
                .collect();
            state.deleted_payloads.push(request_id.to_owned());
            (StatusCode::OK, json!({ "cdn_delete_results": results }))
        }
    };
    if let Some(key) = idempotency_key {
        state.deletions_by_key.insert(
            key,
            ReplayedDeletion {
                answered_at: now,
                status,
                body: body.clone(),
            },
        );
    }
    Ok(json_response(status, body))
}

/// `GET /v1/models/billing-events[?request_id=…][&start][&end]` (admin keys only): one event per
/// successful request that ended in the window (24 h back by default), the latest first. Failed
/// and cancelled requests bill nothing here (UNCONFIRMED). `output_units` is the job's `steps`
/// input (1000 when absent) when the endpoint's price unit counts steps, the images' megapixels
/// (each rounded up) when it counts megapixels, else 1; `unit_price` is the price set (0
/// without one).
pub(crate) fn billing_events(shared: &Shared, request: &Request) -> Result<Response, Rejection> {
    authorise(shared, request.headers(), Scope::Admin)?;
    let query = query_pairs(request.uri());
    let request_ids = ids(&query, "request_id", false)?;
    let window = Window::from_query(&query, DEFAULT_LOOKBACK, shared.state().wall_now())?;
    let state = shared.state();
    let mut billed: Vec<(&Job, DateTime<Utc>)> = state
        .jobs
        .values()
        .filter(|job| job.succeeded())
        .filter_map(|job| Some((job, job.ended_at?)))
        .filter(|(job, ended_at)| {
            window.contains(*ended_at)
                && (request_ids.is_empty() || request_ids.contains(&job.request_id))
        })
        .collect();
    billed.sort_by(|(_, a), (_, b)| b.cmp(a));
    let events: Vec<Value> = billed
        .into_iter()
        .map(|(job, ended_at)| {
            let (unit_price, unit) = state
                .prices
                .get(&job.endpoint_id)
                .map_or((0.0, ""), |price| (price.unit_price, price.unit.as_str()));
            let output_units = if unit.contains("step") {
                job.steps() as f64
            } else if unit.contains("megapixel") {
                job.billed_megapixels()
            } else {
                1.0
            };
            json!({
                "request_id": job.request_id,
                "endpoint_id": job.endpoint_id,
                "timestamp": ended_at.to_rfc3339_opts(SecondsFormat::Millis, true),
                "output_units": output_units,
                "unit_price": unit_price,
                "percent_discount": null,
                "cost_estimate_nano_usd": (output_units * unit_price * 1e9).round() as i64,
            })
        })
        .collect();
    Ok(json_response(
        StatusCode::OK,
        json!({ "billing_events": events, "next_cursor": null, "has_more": false }),
    ))
}

/// The longest a signed URL may live: "maximum 604800" (7 days).
const MAX_SIGNED_URL_SECONDS: u64 = 604_800;

/// `POST /v1/storage/files/sign?url=<file URL>` with `{"expiration_seconds": 1..=604800}`: a
/// URL that reads the file whatever its access rule, until it expires (fal-protocol.md §8.4).
/// Any valid key may sign; the file must be one the fake serves, named without a query.
pub(crate) async fn sign_file_url(
    shared: &Shared,
    request: Request,
) -> Result<Response, Rejection> {
    authorise(shared, request.headers(), Scope::AnyKey)?;
    let query = query_pairs(request.uri());
    let url = single(&query, "url")
        .ok_or_else(|| invalid("url is required"))?
        .to_owned();
    if url.contains('?') {
        return Err(invalid("url must not contain query parameters"));
    }
    // `dispatch` has read the body already and enforced its limit.
    let body = to_bytes(request.into_body(), usize::MAX)
        .await
        .unwrap_or_default();
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let seconds = body
        .get("expiration_seconds")
        .and_then(Value::as_u64)
        .filter(|seconds| (1..=MAX_SIGNED_URL_SECONDS).contains(seconds))
        .ok_or_else(|| invalid("expiration_seconds must be an integer from 1 to 604800"))?;
    let files = format!("{}/files/", shared.base_url);
    let known = url.strip_prefix(&files).is_some_and(|rest| {
        let state = shared.state();
        rest.split_once('/').is_some_and(|(request_id, file_name)| {
            state
                .jobs
                .get(request_id)
                .is_some_and(|job| job.output_file(file_name).is_some())
        })
    });
    if !known {
        return Err(error(
            StatusCode::NOT_FOUND,
            "not_found",
            "Resource not found",
        ));
    }
    let token = uuid::Uuid::new_v4().simple().to_string();
    let mut state = shared.state();
    let expires_at = state.now() + Duration::from_secs(seconds);
    state
        .signed_urls
        .insert(token.clone(), (url.clone(), expires_at));
    let signed_url = format!("{url}?{}={token}", crate::SIGNED_URL_PARAMETER);
    Ok(json_response(
        StatusCode::OK,
        json!({ "signed_url": signed_url }),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
            .collect()
    }

    fn time(text: &str) -> DateTime<Utc> {
        text.parse().expect("an RFC 3339 time")
    }

    #[test]
    fn the_history_looks_back_a_day_or_90_days_for_one_request() {
        let now = time("2026-03-10T12:00:00Z");
        let day = Window::for_history(&[], now).ok().expect("a window");
        assert_eq!(day.start, time("2026-03-09T12:00:00Z"));
        assert!(day.contains(time("2026-03-09T12:00:00Z")));
        assert!(!day.contains(time("2026-03-09T11:59:59Z")));
        assert!(day.contains(now), "no end: up to now");

        let one_request = Window::for_history(&query(&[("request_id", "r-1")]), now)
            .ok()
            .expect("a window");
        assert_eq!(one_request.start, time("2025-12-10T12:00:00Z"));
        let explicit_start = Window::for_history(
            &query(&[("request_id", "r-1"), ("start", "2026-03-10T06:00:00Z")]),
            now,
        )
        .ok()
        .expect("a window");
        assert_eq!(explicit_start.start, time("2026-03-10T06:00:00Z"));
    }

    #[test]
    fn window_bounds_take_dates_and_date_times_and_end_is_exclusive() {
        let now = time("2026-03-10T12:00:00Z");
        let window = Window::for_history(
            &query(&[("start", "2026-03-01"), ("end", "2026-03-02T06:30:00")]),
            now,
        )
        .ok()
        .expect("a window");
        assert_eq!(window.start, time("2026-03-01T00:00:00Z"));
        assert!(window.contains(time("2026-03-02T06:29:59.999Z")));
        assert!(
            !window.contains(time("2026-03-02T06:30:00Z")),
            "end is exclusive"
        );

        let offset = Window::for_history(&query(&[("start", "2026-03-01T02:00:00+02:00")]), now)
            .ok()
            .expect("a window");
        assert_eq!(offset.start, time("2026-03-01T00:00:00Z"));

        for bad in [
            &[("start", "March")][..],
            &[("start", "2026-03-02"), ("end", "2026-03-01")][..],
        ] {
            assert!(Window::for_history(&query(bad), now).is_err(), "{bad:?}");
        }
    }
}
