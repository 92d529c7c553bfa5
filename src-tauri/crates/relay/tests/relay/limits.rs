//! What protects the relay: the body limit, the rate limit, authentication, the configuration
//! checks; and the health check.

use fal::webhook::WebhookSigner;
use relay::{Relay, RelayError};
use serde_json::{Value, json};

use crate::{KeyServer, TOKEN, TestRelay, config, error_of, fal_body, http, now_secs, post_signed};

#[tokio::test]
async fn a_body_over_the_limit_is_refused_with_413_and_not_stored() {
    let signer = WebhookSigner::generate();
    let keys = KeyServer::start(&signer).await;
    let relay = TestRelay::start_with(&keys.url, |config| config.body_limit = 1024).await;
    let oversized = json!({
        "request_id": "r-1",
        "status": "completed",
        "result": { "padding": "x".repeat(2048) },
    });

    let response = http()
        .post(relay.status_url())
        .bearer_auth(TOKEN)
        .json(&oversized)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);
    assert!(error_of(response).await.contains("1024 bytes"));

    let response = post_signed(
        &relay.status_url(),
        &signer,
        &oversized.to_string(),
        now_secs(),
    )
    .await;
    assert_eq!(
        response.status(),
        413,
        "a signed delivery is held to the limit too"
    );

    let fitting = json!({ "request_id": "r-1", "status": "completed" });
    let response = http()
        .post(relay.status_url())
        .bearer_auth(TOKEN)
        .json(&fitting)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(relay.events().await.len(), 1);
    relay.relay.stop().await;
}

#[tokio::test]
async fn a_client_over_its_rate_is_told_to_retry_later() {
    let keys = KeyServer::start(&WebhookSigner::generate()).await;
    let relay = TestRelay::start_with(&keys.url, |config| config.rate_limit_per_minute = 5).await;
    let health = format!("{}/health", relay.relay.url());
    for _ in 0..5 {
        assert_eq!(http().get(&health).send().await.unwrap().status(), 200);
    }
    let response = http().get(&health).send().await.unwrap();
    assert_eq!(response.status(), 429);
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(retry_after, 12, "5 a minute refill one every 12 s");
    assert!(error_of(response).await.contains("too many requests"));
    relay.relay.stop().await;
}

#[tokio::test]
async fn behind_a_proxy_the_forwarded_address_is_limited() {
    let keys = KeyServer::start(&WebhookSigner::generate()).await;
    let relay = TestRelay::start_with(&keys.url, |config| {
        config.rate_limit_per_minute = 1;
        config.trust_forwarded_for = true;
    })
    .await;
    let health = format!("{}/health", relay.relay.url());
    let from = |address: &str| {
        http()
            .get(&health)
            .header("X-Forwarded-For", format!("192.0.2.99, {address}"))
            .send()
    };
    assert_eq!(from("198.51.100.1").await.unwrap().status(), 200);
    assert_eq!(
        from("198.51.100.2").await.unwrap().status(),
        200,
        "another client behind the same proxy has its own allowance"
    );
    assert_eq!(
        from("198.51.100.1").await.unwrap().status(),
        429,
        "the address the proxy appended counts, not the one the client claimed"
    );
    relay.relay.stop().await;
}

#[tokio::test]
async fn a_request_with_neither_signature_nor_token_is_refused() {
    let keys = KeyServer::start(&WebhookSigner::generate()).await;
    let relay = TestRelay::start(&keys.url).await;
    let response = http()
        .post(relay.status_url())
        .json(&json!({ "request_id": "r-1", "status": "OK" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    assert!(error_of(response).await.contains("X-Fal-Webhook"));
    assert!(relay.events().await.is_empty());
    relay.relay.stop().await;
}

#[tokio::test]
async fn health_reports_the_version_and_the_store_to_anyone_and_the_event_count_to_the_token() {
    let keys = KeyServer::start(&WebhookSigner::generate()).await;
    let relay = TestRelay::start(&keys.url).await;
    let health = |token: Option<&str>| {
        let mut request = http().get(format!("{}/health", relay.relay.url()));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        async move {
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), 200, "health needs no token");
            response.json::<Value>().await.unwrap()
        }
    };
    let public = json!({
        "status": "ok",
        "version": env!("CARGO_PKG_VERSION"),
        "store": "ok",
    });
    assert_eq!(health(None).await, public, "no count for anyone");
    assert_eq!(health(Some("not-the-token")).await, public);
    assert_eq!(health(Some(TOKEN)).await["events"], 0);
    http()
        .post(relay.status_url())
        .bearer_auth(TOKEN)
        .json(&json!({ "request_id": "r-1", "status": "failed" }))
        .send()
        .await
        .unwrap();
    assert_eq!(health(Some(TOKEN)).await["events"], 1);
    relay.relay.stop().await;
}

#[tokio::test]
async fn a_relay_without_a_usable_token_or_with_long_cached_keys_does_not_start() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("relay.sqlite3");
    let jwks = "http://127.0.0.1:9/.well-known/jwks.json";

    for token in ["", "   ", "short"] {
        let mut with_token = config(&db, jwks);
        with_token.token = token.to_owned();
        let error = Relay::start(with_token).await.err().expect("refused");
        assert!(matches!(error, RelayError::Config(_)), "{error}");
        assert!(error.to_string().contains("token"), "{error}");
    }

    let mut caching_too_long = config(&db, jwks);
    caching_too_long.jwks_cache = std::time::Duration::from_secs(25 * 60 * 60);
    let error = Relay::start(caching_too_long).await.err().expect("refused");
    assert!(error.to_string().contains("at most 24 hours"), "{error}");

    assert!(
        !format!("{:?}", config(&db, jwks)).contains(TOKEN),
        "the token stays out of debug output"
    );
}

#[tokio::test]
async fn fals_headers_skip_no_limit_and_only_verified_deliveries_go_uncharged() {
    let signer = WebhookSigner::generate();
    let keys = KeyServer::start(&signer).await;
    let relay = TestRelay::start_with(&keys.url, |config| config.rate_limit_per_minute = 60).await;
    let feed = format!("{}/api/events", relay.relay.url());
    let mut refused = 0;
    for _ in 0..200 {
        let response = http()
            .get(&feed)
            .header("X-Fal-Webhook-Signature", "00")
            .send()
            .await
            .unwrap();
        refused += usize::from(response.status() == 429);
    }
    assert!(
        refused >= 130,
        "{refused} of 200 over the limit refused on the feed"
    );

    // Forged deliveries from another address are charged like any other request.
    let forged = TestRelay::start_with(&keys.url, |config| config.rate_limit_per_minute = 60).await;
    let impostor = WebhookSigner::generate();
    let mut refused = 0;
    for index in 0..200 {
        let response = post_signed(
            &forged.status_url(),
            &impostor,
            &fal_body(&format!("req-{index}")),
            now_secs(),
        )
        .await;
        refused += usize::from(response.status() == 429);
    }
    assert!(refused >= 130, "{refused} of 200 forged deliveries refused");
    // fal's own deliveries still pass, whatever the forgers used up.
    let response = post_signed(
        &forged.status_url(),
        &signer,
        &fal_body("req-header-id"),
        now_secs(),
    )
    .await;
    assert_eq!(response.status(), 200);
    relay.relay.stop().await;
    forged.relay.stop().await;
}

#[tokio::test]
async fn the_relay_refuses_to_start_without_the_fal_accounts_it_serves() {
    let dir = tempfile::tempdir().unwrap();
    let relay = |extra: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_avatar-relay"))
            .args(["--listen", "127.0.0.1:0", "--db"])
            .arg(dir.path().join("events.sqlite3"))
            .args(extra)
            .env_clear()
            .env("RELAY_TOKEN", TOKEN)
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap()
    };
    let open = relay(&[]);
    assert!(!open.status.success(), "an open relay does not start");
    let said = String::from_utf8_lossy(&open.stderr);
    assert!(
        said.contains("--fal-user-id") && said.contains("--any-fal-account"),
        "{said}"
    );
    let both = relay(&["--fal-user-id", "user-1", "--any-fal-account"]);
    assert!(!both.status.success(), "one or the other");
}

#[tokio::test]
async fn a_client_that_trickles_its_headers_is_cut_off_and_others_are_served() {
    use std::time::{Duration, Instant};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let keys = KeyServer::start(&WebhookSigner::generate()).await;
    let relay = TestRelay::start_with(&keys.url, |config| {
        config.header_read_timeout = Duration::from_secs(1);
    })
    .await;
    let address = relay.relay.addr();
    let mut slow = tokio::net::TcpStream::connect(address).await.unwrap();
    let began = Instant::now();
    // Half a request line, and then nothing more: the relay must not wait for the rest.
    slow.write_all(b"GET /health HTTP/1.1\r\nHost: relay\r\nX-Slow: ")
        .await
        .unwrap();
    let mut answer = Vec::new();
    let read = crate::within("the relay closing a trickling connection", async {
        slow.read_to_end(&mut answer).await
    })
    .await;
    let held = began.elapsed();
    // Closed (EOF or reset), having answered nothing but, at most, a 408.
    let answered = String::from_utf8_lossy(&answer);
    assert!(
        read.is_err() || answer.is_empty() || answered.starts_with("HTTP/1.1 408"),
        "{answered}"
    );
    println!("a trickling connection was held {held:?}");
    let health = http()
        .get(format!("{}/health", relay.relay.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
}
