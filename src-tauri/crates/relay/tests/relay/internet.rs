//! The relay facing the internet: other fal accounts, token holders posting ahead of fal,
//! forgers beside fal's own deliveries, fal's key server down, and feed pages of large events.

use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use fal::webhook::WebhookSigner;
use relay::wire::EventSource;
use serde_json::json;

use crate::{KeyServer, TOKEN, TestRelay, error_of, fal_body, feed, http, now_secs, post_signed};

/// Posts `body` signed by `signer` as fal account `user_id`.
async fn post_as(
    url: &str,
    signer: &WebhookSigner,
    user_id: &str,
    request_id: &str,
) -> reqwest::Response {
    let body = fal_body(request_id);
    let signed = signer.sign(request_id, user_id, now_secs(), body.as_bytes());
    let mut request = http()
        .post(url)
        .header("Content-Type", "application/json")
        .body(body);
    for (name, value) in signed.pairs() {
        request = request.header(name.to_string(), value.to_string());
    }
    request.send().await.unwrap()
}

#[tokio::test]
async fn signed_deliveries_of_other_fal_accounts_are_refused_and_not_stored() {
    let signer = WebhookSigner::generate();
    let keys = KeyServer::start(&signer).await;
    let relay = TestRelay::start_with(&keys.url, |config| {
        config.fal_user_ids = vec!["creator-account".into(), "studio-account".into()];
    })
    .await;
    let url = relay.status_url();
    let response = post_as(&url, &signer, "someone-else", "req-1").await;
    assert_eq!(response.status(), 401);
    assert!(error_of(response).await.contains("someone-else"));
    assert!(relay.events().await.is_empty(), "not stored");
    for (account, request) in [("creator-account", "req-2"), ("studio-account", "req-3")] {
        let response = post_as(&url, &signer, account, request).await;
        assert_eq!(response.status(), 200, "{account}");
    }
    assert_eq!(relay.events().await.len(), 2);
    relay.relay.stop().await;
}

#[tokio::test]
async fn an_event_a_token_holder_posts_first_does_not_mask_fals_own_delivery() {
    let signer = WebhookSigner::generate();
    let keys = KeyServer::start(&signer).await;
    let relay = TestRelay::start(&keys.url).await;
    let url = relay.status_url();
    let forged = json!({
        "request_id": "req-1",
        "status": "completed",
        "progress": 100,
        "result": { "diffusers_lora_file": { "url": "http://attacker.example/lora.safetensors" } },
    });
    let response = http()
        .post(&url)
        .bearer_auth(TOKEN)
        .json(&forged)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let response = post_as(&url, &signer, "user-1", "req-1").await;
    let answer: serde_json::Value = response.json().await.unwrap();
    assert_eq!(
        answer["status"], "stored",
        "fal's delivery is its own event: {answer}"
    );
    let sources: Vec<EventSource> = relay
        .events()
        .await
        .iter()
        .map(|event| event.source)
        .collect();
    assert_eq!(sources, [EventSource::Trusted, EventSource::Fal]);
    relay.relay.stop().await;
}

#[tokio::test]
async fn forgers_are_limited_and_fals_verified_deliveries_are_not() {
    let signer = WebhookSigner::generate();
    let keys = KeyServer::start(&signer).await;
    let relay = TestRelay::start_with(&keys.url, |config| config.rate_limit_per_minute = 2).await;
    let url = relay.status_url();
    let impostor = WebhookSigner::generate();
    let mut statuses = Vec::new();
    for _ in 0..3 {
        statuses.push(
            post_signed(&url, &impostor, &fal_body("req-x"), now_secs())
                .await
                .status(),
        );
    }
    assert_eq!(statuses, [401, 401, 429], "a forger's allowance runs out");
    // fal's own deliveries come from the same few addresses, far more often than the limit.
    for index in 0..10 {
        let response = post_as(&url, &signer, "user-1", &format!("req-{index}")).await;
        assert_eq!(response.status(), 200, "delivery {index}");
    }
    relay.relay.stop().await;
}

#[tokio::test]
async fn while_fals_key_server_is_down_forged_deliveries_do_not_each_cause_a_fetch() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    let fetches = Arc::new(AtomicUsize::new(0));
    let counted = fetches.clone();
    // A key server that takes connections and closes them unanswered.
    std::thread::spawn(move || {
        for connection in listener.incoming() {
            counted.fetch_add(1, Ordering::SeqCst);
            drop(connection);
        }
    });
    let relay = TestRelay::start(&format!("http://{address}/.well-known/jwks.json")).await;
    let impostor = WebhookSigner::generate();
    let started = std::time::Instant::now();
    for _ in 0..20 {
        let response = post_signed(
            &relay.status_url(),
            &impostor,
            &fal_body("req-1"),
            now_secs(),
        )
        .await;
        assert_eq!(response.status(), 503);
    }
    // At most one fetch a second, however many deliveries arrive.
    let allowed = started.elapsed().as_secs() as usize + 1;
    let fetched = fetches.load(Ordering::SeqCst);
    assert!(
        (1..=allowed).contains(&fetched),
        "{fetched} fetches for twenty deliveries in {:?}",
        started.elapsed()
    );
    relay.relay.stop().await;
}

#[tokio::test]
async fn a_feed_page_is_capped_in_bytes_and_the_rest_follows() {
    let signer = WebhookSigner::generate();
    let keys = KeyServer::start(&signer).await;
    let relay = TestRelay::start(&keys.url).await;
    let url = format!("{}/api/avatar/status_update", relay.relay.url());
    let padding = "x".repeat(200 * 1024);
    for index in 0..30 {
        let event = json!({
            "request_id": format!("test_{index}"),
            "status": "in_progress",
            "progress": 10,
            "note": padding,
        });
        let response = http()
            .post(&url)
            .bearer_auth(TOKEN)
            .json(&event)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "event {index}");
    }
    let first = feed(&relay.relay.url(), 0, 0).await;
    let bytes: usize = first
        .events
        .iter()
        .map(|event| event.body.to_string().len())
        .sum();
    assert!(bytes <= relay::FEED_PAGE_BYTES, "{bytes} bytes in one page");
    assert!(first.events.len() < 30);
    let second = feed(&relay.relay.url(), first.next, 0).await;
    assert_eq!(
        second.events.first().map(|event| event.cursor),
        Some(first.next + 1),
        "the next page starts where the first ended"
    );
    relay.relay.stop().await;
}
