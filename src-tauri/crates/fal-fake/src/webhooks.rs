//! Webhook delivery: a signed JSON POST when a job completes, retried on failure
//! (fal-protocol.md §2). fal retries 10 times over 2 hours; the fake compresses that.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::http::header::CONTENT_TYPE;
use serde_json::Value;
use tokio::time::sleep;

use crate::state::Shared;
use crate::{Delivery, Fault};

/// The user id the fake signs webhooks with.
pub const WEBHOOK_USER_ID: &str = "fake-user";
/// Attempts per webhook before the fake gives up.
pub const WEBHOOK_ATTEMPTS: usize = 3;
pub const WEBHOOK_RETRY_DELAY: Duration = Duration::from_millis(100);
/// UNCONFIRMED: a third-party note gives fal's webhook timeout as 15 s.
const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(15);

pub(crate) async fn deliver(shared: &Shared, request_id: &str, url: &str, payload: &Value) {
    let fault = shared
        .state()
        .faults
        .take(|fault| matches!(fault, Fault::DropWebhook | Fault::DuplicateWebhook));
    let copies = match fault {
        Some(Fault::DropWebhook) => 0,
        Some(Fault::DuplicateWebhook) => 2,
        _ => 1,
    };
    let body = serde_json::to_vec(payload).expect("JSON values serialise");
    for _ in 0..copies {
        deliver_with_retries(shared, request_id, url, payload, &body).await;
    }
}

async fn deliver_with_retries(
    shared: &Shared,
    request_id: &str,
    url: &str,
    payload: &Value,
    body: &[u8],
) {
    for attempt in 1..=WEBHOOK_ATTEMPTS {
        let status = post_signed(shared, request_id, url, body).await;
        shared.state().deliveries.push(Delivery {
            url: url.to_owned(),
            request_id: request_id.to_owned(),
            body: payload.clone(),
            status,
        });
        if status.is_some_and(|status| (200..300).contains(&status)) {
            return;
        }
        if attempt < WEBHOOK_ATTEMPTS {
            sleep(WEBHOOK_RETRY_DELAY).await;
        }
    }
}

async fn post_signed(shared: &Shared, request_id: &str, url: &str, body: &[u8]) -> Option<u16> {
    // Every attempt is signed afresh: fal's retries span two hours, far beyond the five minutes
    // a receiver accepts between the signature's timestamp and its own clock.
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("the clock reads after 1970")
        .as_secs() as i64;
    let signed = shared.signer.sign(request_id, WEBHOOK_USER_ID, now, body);
    let mut request = shared
        .http
        .post(url)
        .timeout(WEBHOOK_TIMEOUT)
        .header(CONTENT_TYPE, "application/json")
        .body(body.to_vec());
    for (name, value) in signed.pairs() {
        request = request.header(name, value);
    }
    let response = request.send().await.ok()?;
    Some(response.status().as_u16())
}
