//! `POST /api/avatar/status_update`: fal's signed webhooks and the guide's own format.

use std::time::Duration;

use fal::webhook::{REQUEST_ID_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, USER_ID_HEADER};
use fal::webhook::{SignedHeaders, WebhookSigner};
use fal_fake::{Delivery, FakeFal, Fault, Outcome, Script};
use relay::wire::{EventKind, EventSource, TrainingType};
use serde_json::{Value, json};

use crate::{KeyServer, TOKEN, TestRelay, error_of, fal_body, http, now_secs, post_signed, within};

const TRAINER: &str = "fal-ai/flux-lora-portrait-trainer";

/// Submits a job to the fake with its webhook pointing at the relay, and waits until the fake
/// has made `deliveries` webhook attempts.
async fn train_on_fake(fake: &FakeFal, relay: &TestRelay, deliveries: usize) -> Vec<Delivery> {
    http()
        .post(format!("{}/{TRAINER}", fake.base_url()))
        .query(&[("fal_webhook", relay.status_url())])
        .header("Authorization", format!("Key {}", fake.api_key()))
        .json(&json!({ "images_data_url": "https://example.invalid/train.zip" }))
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap();
    within("the fake's webhook deliveries", async {
        loop {
            let made = fake.webhook_deliveries();
            if made.len() >= deliveries {
                return made;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
}

fn quick_script(outcome: Outcome) -> Script {
    Script {
        queue_time: Duration::from_millis(10),
        run_time: Duration::from_millis(40),
        download_dataset: false,
        outcome,
        ..Script::default()
    }
}

#[tokio::test]
async fn a_webhook_signed_with_fals_published_key_is_stored() {
    let signer = WebhookSigner::generate();
    let keys = KeyServer::start(&signer).await;
    let relay = TestRelay::start(&keys.url).await;
    let body = fal_body("req-1");

    let response = post_signed(&relay.status_url(), &signer, &body, now_secs()).await;
    assert_eq!(response.status(), 200);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer, json!({ "status": "stored", "cursor": 1 }));

    let events = relay.events().await;
    assert_eq!(events.len(), 1);
    let event = &events[0];
    assert_eq!(event.cursor, 1);
    assert_eq!(
        event.request_id, "req-1",
        "correlated on the body's request_id"
    );
    assert_eq!(event.kind, EventKind::Completed, "fal's OK is a completion");
    assert_eq!(event.training_type, Some(TrainingType::Portrait));
    assert_eq!(event.source, EventSource::Fal);
    assert_eq!(event.body, serde_json::from_str::<Value>(&body).unwrap());
    relay.relay.stop().await;
}

#[tokio::test]
async fn the_fake_fals_deliveries_are_stored_once_even_when_delivered_twice() {
    let fake = FakeFal::start().await;
    fake.set_script(quick_script(Outcome::Success { lora_bytes: 4096 }));
    let relay = TestRelay::start(&fake.jwks_url()).await;

    fake.push_fault(Fault::DuplicateWebhook);
    let deliveries = train_on_fake(&fake, &relay, 2).await;
    assert_eq!(
        deliveries
            .iter()
            .map(|delivery| delivery.status)
            .collect::<Vec<_>>(),
        [Some(200), Some(200)],
        "a duplicate is answered 200, so fal stops retrying it"
    );
    let events = relay.events().await;
    assert_eq!(events.len(), 1, "the duplicate is stored once: {events:?}");
    assert_eq!(events[0].request_id, deliveries[0].request_id);
    assert_eq!(events[0].kind, EventKind::Completed);
    assert_eq!(events[0].body, deliveries[0].body);

    fake.set_script(quick_script(Outcome::Failure {
        status: 422,
        error: "Invalid input".into(),
        error_type: "validation_error".into(),
        detail: json!([]),
    }));
    let deliveries = train_on_fake(&fake, &relay, 3).await;
    let events = relay.events().await;
    assert_eq!(events.len(), 2);
    assert_eq!(events[1].request_id, deliveries[2].request_id);
    assert_eq!(
        events[1].kind,
        EventKind::Failed,
        "fal's ERROR is a failure"
    );
    relay.relay.stop().await;
}

fn header_lookup(signed: &SignedHeaders) -> Vec<(&'static str, String)> {
    signed
        .pairs()
        .iter()
        .map(|(name, value)| (*name, value.to_string()))
        .collect()
}

async fn post_with_headers(url: &str, headers: &[(&str, String)], body: &str) -> reqwest::Response {
    let mut request = http().post(url).body(body.to_owned());
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    request.send().await.unwrap()
}

#[tokio::test]
async fn forged_stale_and_incomplete_deliveries_are_refused_and_not_stored() {
    let signer = WebhookSigner::generate();
    let keys = KeyServer::start(&signer).await;
    let relay = TestRelay::start(&keys.url).await;
    let url = relay.status_url();
    let body = fal_body("req-1");

    let tampered = body.replace("req-1", "req-2");
    let signed = signer.sign("req-1", "user-1", now_secs(), body.as_bytes());
    let response = post_with_headers(&url, &header_lookup(&signed), &tampered).await;
    assert_eq!(response.status(), 401, "a tampered body");
    assert!(error_of(response).await.contains("matches none"));

    let impostor = WebhookSigner::generate();
    let response = post_signed(&url, &impostor, &body, now_secs()).await;
    assert_eq!(response.status(), 401, "a key fal does not publish");

    for missing in [
        REQUEST_ID_HEADER,
        USER_ID_HEADER,
        TIMESTAMP_HEADER,
        SIGNATURE_HEADER,
    ] {
        let signed = signer.sign("req-1", "user-1", now_secs(), body.as_bytes());
        let mut headers = header_lookup(&signed);
        headers.retain(|(name, _)| *name != missing);
        let response = post_with_headers(&url, &headers, &body).await;
        assert_eq!(response.status(), 401, "without {missing}");
        assert!(error_of(response).await.contains(missing));
    }

    for skew in [-301, 301] {
        let response = post_signed(&url, &signer, &body, now_secs() + skew).await;
        assert_eq!(response.status(), 401, "signed {skew} s away from now");
        assert!(error_of(response).await.contains("signed at"));
    }

    let mut garbled = header_lookup(&signed);
    garbled.retain(|(name, _)| *name != SIGNATURE_HEADER);
    garbled.push((SIGNATURE_HEADER, "not hex".to_owned()));
    let response = post_with_headers(&url, &garbled, &body).await;
    assert_eq!(response.status(), 401, "a signature that is not hex");

    assert!(relay.events().await.is_empty(), "nothing refused is stored");
    relay.relay.stop().await;
}

#[tokio::test]
async fn a_replayed_signature_is_refused_unless_the_delivery_is_byte_identical() {
    let signer = WebhookSigner::generate();
    let keys = KeyServer::start(&signer).await;
    let relay = TestRelay::start(&keys.url).await;
    let url = relay.status_url();
    let body = fal_body("req-1");
    let captured = header_lookup(&signer.sign("req-1", "user-1", now_secs(), body.as_bytes()));

    let response = post_with_headers(&url, &captured, &body).await;
    assert_eq!(response.status(), 200, "the original delivery");

    let replayed_on_other_body = fal_body("req-2");
    let response = post_with_headers(&url, &captured, &replayed_on_other_body).await;
    assert_eq!(
        response.status(),
        401,
        "a captured signature on another body"
    );

    for (header, value) in [
        (REQUEST_ID_HEADER, "req-2".to_owned()),
        (TIMESTAMP_HEADER, (now_secs() + 1).to_string()),
    ] {
        let mut replayed = captured.clone();
        replayed.retain(|(name, _)| *name != header);
        replayed.push((header, value));
        let response = post_with_headers(&url, &replayed, &body).await;
        assert_eq!(
            response.status(),
            401,
            "a captured signature under another {header}"
        );
    }

    let response = post_with_headers(&url, &captured, &body).await;
    assert_eq!(response.status(), 200, "an identical replay is a duplicate");
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["status"], "duplicate");

    let events = relay.events().await;
    assert_eq!(events.len(), 1, "only the original is stored: {events:?}");
    assert_eq!(events[0].request_id, "req-1");
    relay.relay.stop().await;
}

#[tokio::test]
async fn keys_rotated_by_fal_are_fetched_again_at_their_first_delivery() {
    let retired = WebhookSigner::generate();
    let keys = KeyServer::start(&retired).await;
    let relay = TestRelay::start(&keys.url).await;

    let response = post_signed(
        &relay.status_url(),
        &retired,
        &fal_body("req-1"),
        now_secs(),
    )
    .await;
    assert_eq!(
        response.status(),
        200,
        "the relay fetched and cached the first key"
    );

    let current = WebhookSigner::generate();
    keys.publish(&current);
    // The relay fetches again after a mismatch only once a second has passed since its last
    // fetch.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let response = post_signed(
        &relay.status_url(),
        &current,
        &fal_body("req-2"),
        now_secs(),
    )
    .await;
    assert_eq!(response.status(), 200, "the rotated key was fetched");
    assert_eq!(relay.events().await.len(), 2);
    relay.relay.stop().await;
}

#[tokio::test]
async fn unreachable_keys_answer_503_so_fal_retries_later() {
    let signer = WebhookSigner::generate();
    // A port that was free a moment ago: nothing listens there.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let relay = TestRelay::start(&format!("http://{closed}/.well-known/jwks.json")).await;
    let response = post_signed(&relay.status_url(), &signer, &fal_body("req-1"), now_secs()).await;
    assert_eq!(response.status(), 503);
    assert!(error_of(response).await.contains("could not be fetched"));
    assert!(relay.events().await.is_empty());
    relay.relay.stop().await;
}

#[tokio::test]
async fn the_guide_format_is_accepted_with_the_relay_token_only() {
    let signer = WebhookSigner::generate();
    let keys = KeyServer::start(&signer).await;
    let relay = TestRelay::start(&keys.url).await;
    let url = format!("{}/api/avatar/status_update", relay.relay.url());
    let progress = |percent: u32| {
        json!({
            "request_id": "test_avatar_1",
            "status": "in_progress",
            "progress": percent,
            "training_type": "style",
        })
    };

    let response = http().post(&url).json(&progress(10)).send().await.unwrap();
    assert_eq!(response.status(), 401, "without a token");
    assert!(error_of(response).await.contains("Bearer"));
    let response = http()
        .post(&url)
        .bearer_auth("not-the-relay-token-at-all")
        .json(&progress(10))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401, "with a wrong token");
    assert!(relay.events().await.is_empty());

    for percent in [10, 50, 50] {
        let response = http()
            .post(&url)
            .bearer_auth(TOKEN)
            .json(&progress(percent))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }
    let completed = json!({
        "request_id": "test_avatar_1",
        "status": "completed",
        "progress": 100,
        "result": { "diffusers_lora_file": { "url": "https://example.invalid/lora.safetensors", "file_name": "lora.safetensors" } },
    });
    let response = http()
        .post(format!("{url}?training_type=style"))
        .bearer_auth(TOKEN)
        .json(&completed)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);

    let events = relay.events().await;
    let summary: Vec<_> = events
        .iter()
        .map(|event| (event.kind, event.progress, event.source))
        .collect();
    assert_eq!(
        summary,
        [
            (EventKind::InProgress, Some(10.0), EventSource::Trusted),
            (EventKind::InProgress, Some(50.0), EventSource::Trusted),
            (EventKind::Completed, None, EventSource::Trusted),
        ],
        "the repeated 50 % report is stored once; the feed carries the progress the relay read, \
         and an end carries none (fal's own result ends a job)"
    );
    assert!(
        events
            .iter()
            .all(|event| event.training_type == Some(TrainingType::Style))
    );
    relay.relay.stop().await;
}

#[tokio::test]
async fn malformed_bodies_are_refused_with_400_once_authenticated() {
    let signer = WebhookSigner::generate();
    let keys = KeyServer::start(&signer).await;
    let relay = TestRelay::start(&keys.url).await;
    let url = relay.status_url();
    let trusted = |body: &'static str| {
        http()
            .post(&url)
            .bearer_auth(TOKEN)
            .header("Content-Type", "application/json")
            .body(body)
            .send()
    };

    let response = trusted("{not json").await.unwrap();
    assert_eq!(response.status(), 400);
    assert!(error_of(response).await.contains("not JSON"));
    let response = trusted(r#"{"request_id":"r","status":"done"}"#)
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let response = trusted(r#"{"request_id":"r","status":"failed","training_type":"style"}"#)
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        400,
        "the body says style where the query says portrait"
    );

    let response = post_signed(&url, &signer, "{not json", now_secs()).await;
    assert_eq!(response.status(), 400, "signed by fal, but not JSON");

    let response = http()
        .post(format!(
            "{}/api/avatar/status_update?training_type=video",
            relay.relay.url()
        ))
        .bearer_auth(TOKEN)
        .json(&json!({ "request_id": "r", "status": "failed" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert!(error_of(response).await.contains("training_type"));

    assert!(relay.events().await.is_empty());
    relay.relay.stop().await;
}
