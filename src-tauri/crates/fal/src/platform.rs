//! fal's platform APIs (`https://api.fal.ai/v1`, fal-protocol.md §7.4): live prices, the request
//! history (did a submit whose answer was lost reach fal?), a request's billing events, and the
//! deletion of a request's stored outputs. Errors come in the `{"error": {type, message}}`
//! envelope; a 403 means the key lacks the scope (billing and deletion need an admin key).

use chrono::{DateTime, SecondsFormat, Utc};
use reqwest::StatusCode;
use serde::Deserialize;
use serde_json::Value;

use crate::FalError;
use crate::client::{FalClient, parse_json};

/// The most pages of request history read for one question; a busy endpoint's last day fits.
const MAX_HISTORY_PAGES: usize = 20;

/// One endpoint's price (`GET /models/pricing`). `unit` is fal's word for the billing unit
/// ("image", a GPU unit, …): shown as given, never assumed.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Price {
    pub endpoint_id: String,
    pub unit_price: f64,
    pub unit: String,
    pub currency: String,
}

/// What to look for in the request history of one endpoint.
#[derive(Debug, Clone, Default)]
pub struct RequestQuery<'a> {
    pub endpoint_id: &'a str,
    pub start: Option<DateTime<Utc>>,
    pub end: Option<DateTime<Utc>>,
    pub request_id: Option<&'a str>,
    /// Ask for the inputs and outputs too (absent for requests sent with `X-Fal-Store-IO: 0`).
    pub with_payloads: bool,
}

/// One request as fal's history shows it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct RequestRecord {
    pub request_id: String,
    pub endpoint_id: String,
    pub sent_at: DateTime<Utc>,
    #[serde(default)]
    pub ended_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub status_code: Option<u16>,
    #[serde(default)]
    pub json_input: Option<Value>,
}

/// What fal billed for one request (`GET /models/billing-events`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct BillingEvent {
    pub request_id: String,
    pub output_units: f64,
    pub unit_price: f64,
    #[serde(default)]
    pub percent_discount: Option<f64>,
    pub cost_estimate_nano_usd: i64,
}

impl BillingEvent {
    pub fn cost_usd(&self) -> f64 {
        self.cost_estimate_nano_usd as f64 / 1e9
    }
}

/// The answer to a payload deletion: each stored output file and whether it went.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct PayloadDeletion {
    pub cdn_delete_results: Vec<DeletedFile>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct DeletedFile {
    pub link: String,
    #[serde(default)]
    pub exception: Option<String>,
}

#[derive(Deserialize)]
struct Estimate {
    total_cost: f64,
    currency: String,
}

#[derive(Deserialize)]
struct Page<T> {
    #[serde(alias = "prices", alias = "items", alias = "billing_events")]
    entries: Vec<T>,
    #[serde(default)]
    next_cursor: Option<String>,
    #[serde(default)]
    has_more: bool,
}

fn timestamp(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Secs, true)
}

impl FalClient {
    fn platform_url(&self, path: &str) -> String {
        format!(
            "{}/{path}",
            self.endpoints.platform_url.trim_end_matches('/')
        )
    }

    /// Every page of a listing, up to [`MAX_HISTORY_PAGES`].
    async fn pages<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<Vec<T>, FalError> {
        let url = self.platform_url(path);
        let mut entries = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..MAX_HISTORY_PAGES {
            let response = self
                .send(true, || {
                    let mut request = self
                        .authorised(self.http.get(&url))
                        .timeout(crate::client::REQUEST_TIMEOUT)
                        .query(query);
                    if let Some(cursor) = &cursor {
                        request = request.query(&[("cursor", cursor)]);
                    }
                    request
                })
                .await
                .map_err(platform_error)?;
            let page: Page<T> = parse_json(response).await?;
            entries.extend(page.entries);
            match page.next_cursor {
                Some(next) if page.has_more => cursor = Some(next),
                _ => return Ok(entries),
            }
        }
        // A listing cut short could hide what is looked for: no answer is better than a wrong one.
        Err(FalError::Protocol(format!(
            "fal's {path} listing runs past {MAX_HISTORY_PAGES} pages"
        )))
    }

    /// The account's prices for these endpoints.
    pub async fn prices(&self, endpoint_ids: &[&str]) -> Result<Vec<Price>, FalError> {
        self.pages("models/pricing", &[("endpoint_id", endpoint_ids.join(","))])
            .await
    }

    /// fal's own estimate of what `unit_quantity` billing units of `endpoint_id` cost, in USD:
    /// `POST /models/pricing/estimate` with `estimate_type: unit_price` (fal-protocol.md §7.4).
    pub async fn estimate_cost(
        &self,
        endpoint_id: &str,
        unit_quantity: f64,
    ) -> Result<f64, FalError> {
        let url = self.platform_url("models/pricing/estimate");
        let body = serde_json::json!({
            "estimate_type": "unit_price",
            "endpoints": { endpoint_id: { "unit_quantity": unit_quantity } },
        });
        let response = self
            .send(true, || {
                self.authorised(self.http.post(&url))
                    .json(&body)
                    .timeout(crate::client::REQUEST_TIMEOUT)
            })
            .await
            .map_err(platform_error)?;
        let estimate: Estimate = parse_json(response).await?;
        if estimate.currency != "USD" {
            return Err(FalError::Protocol(format!(
                "fal's estimate is in {}, not USD",
                estimate.currency
            )));
        }
        Ok(estimate.total_cost)
    }

    /// Requests to one endpoint in fal's history (24 h by default, 90 days when asking for one
    /// request id).
    pub async fn requests(&self, query: &RequestQuery<'_>) -> Result<Vec<RequestRecord>, FalError> {
        let mut parameters = vec![
            ("endpoint_id", query.endpoint_id.to_string()),
            ("limit", "100".to_string()),
        ];
        if let Some(start) = query.start {
            parameters.push(("start", timestamp(start)));
        }
        if let Some(end) = query.end {
            parameters.push(("end", timestamp(end)));
        }
        if let Some(request_id) = query.request_id {
            parameters.push(("request_id", request_id.to_string()));
        }
        if query.with_payloads {
            parameters.push(("expand", "payloads".to_string()));
        }
        self.pages("models/requests/by-endpoint", &parameters).await
    }

    /// What fal billed for a request (admin keys only).
    pub async fn billing_events(&self, request_id: &str) -> Result<Vec<BillingEvent>, FalError> {
        self.pages(
            "models/billing-events",
            &[("request_id", request_id.to_string())],
        )
        .await
    }

    /// Deletes a request's stored outputs and their files on fal's CDN (admin keys only). The
    /// idempotency key makes a repeat after a lost answer harmless.
    pub async fn delete_payloads(
        &self,
        request_id: &str,
        idempotency_key: &str,
    ) -> Result<PayloadDeletion, FalError> {
        let url = self.platform_url(&format!("models/requests/{request_id}/payloads"));
        let response = self
            .send(true, || {
                self.authorised(self.http.delete(&url))
                    .header("Idempotency-Key", idempotency_key)
                    .timeout(crate::client::REQUEST_TIMEOUT)
            })
            .await
            .map_err(platform_error)?;
        parse_json(response).await
    }
}

/// How long a signed URL for a private file is asked for: enough for one download.
const SIGNED_URL_LIFETIME: std::time::Duration = std::time::Duration::from_secs(3600);

#[derive(Deserialize)]
struct Signed {
    signed_url: String,
}

impl FalClient {
    /// A URL that reads a file of this account's fal storage whatever its access rule, for an
    /// hour: `POST /storage/files/sign?url=…` (permission `assets:read`, fal-protocol.md §8.4).
    /// Used when the account keeps its files private (`forbid`/`hide`).
    pub async fn signed_url(&self, file_url: &str) -> Result<String, FalError> {
        let url = self.platform_url("storage/files/sign");
        let body = serde_json::json!({ "expiration_seconds": SIGNED_URL_LIFETIME.as_secs() });
        let response = self
            .send(true, || {
                self.authorised(self.http.post(&url))
                    .query(&[("url", file_url)])
                    .json(&body)
                    .timeout(crate::client::REQUEST_TIMEOUT)
            })
            .await
            .map_err(platform_error)?;
        let signed: Signed = parse_json(response).await?;
        if !self.is_fal_file(&signed.signed_url) {
            return Err(FalError::Protocol(format!(
                "fal signed the file at {:?}, which is not one of fal's https addresses",
                signed.signed_url
            )));
        }
        Ok(signed.signed_url)
    }
}

/// A 403 from the platform APIs is a key without the scope, not a wrong key.
fn platform_error(error: FalError) -> FalError {
    match error {
        FalError::WrongKey { status } if status == StatusCode::FORBIDDEN.as_u16() => {
            FalError::NotPermitted("fal answered 403 Forbidden".into())
        }
        other => other,
    }
}
