//! The app's side: `GET /api/events` (long-poll) and `GET /api/events/stream` (SSE).

use std::time::{Duration, Instant};

use fal::webhook::WebhookSigner;
use relay::wire::FeedEvent;
use relay::{Relay, RunningRelay};
use serde_json::json;

use crate::{KeyServer, TOKEN, TestRelay, error_of, feed, http, within};

/// Stores a guide-format completion of `request_id` through the relay's endpoint.
async fn report_completed(relay: &RunningRelay, request_id: &str) {
    let response = http()
        .post(format!(
            "{}/api/avatar/status_update?training_type=portrait",
            relay.url()
        ))
        .bearer_auth(TOKEN)
        .json(&json!({ "request_id": request_id, "status": "completed" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

fn request_ids(events: &[FeedEvent]) -> Vec<&str> {
    events
        .iter()
        .map(|event| event.request_id.as_str())
        .collect()
}

#[tokio::test]
async fn the_feed_resumes_from_its_cursor_after_the_relay_restarts() {
    let keys = KeyServer::start(&WebhookSigner::generate()).await;
    let first = TestRelay::start(&keys.url).await;
    for id in ["r-1", "r-2", "r-3"] {
        report_completed(&first.relay, id).await;
    }
    let page = feed(&first.relay.url(), 0, 0).await;
    assert_eq!(request_ids(&page.events), ["r-1", "r-2", "r-3"]);
    assert_eq!(page.next, 3);
    // The app handled the first two when the network went away.
    let resume_at = page.events[1].cursor;

    let config = first.config.clone();
    let TestRelay { relay, dir, .. } = first;
    relay.stop().await;
    let restarted = Relay::start(config)
        .await
        .expect("the relay restarts on its store");
    report_completed(&restarted, "r-4").await;

    let page = feed(&restarted.url(), resume_at, 0).await;
    assert_eq!(
        request_ids(&page.events),
        ["r-3", "r-4"],
        "exactly the events after the cursor, none lost or repeated"
    );
    assert_eq!(page.next, 4);
    let page = feed(&restarted.url(), page.next, 0).await;
    assert!(page.events.is_empty());
    assert_eq!(page.next, 4, "an empty page keeps the cursor");
    restarted.stop().await;
    drop(dir);
}

#[tokio::test]
async fn a_long_poll_returns_as_soon_as_an_event_arrives() {
    let keys = KeyServer::start(&WebhookSigner::generate()).await;
    let relay = TestRelay::start(&keys.url).await;
    let url = relay.relay.url();

    let started = Instant::now();
    let poll = tokio::spawn(async move { feed(&url, 0, 30).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!poll.is_finished(), "nothing to return yet: the poll waits");
    report_completed(&relay.relay, "r-1").await;

    let page = within("the long-poll", poll).await.unwrap();
    assert_eq!(request_ids(&page.events), ["r-1"]);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "returned when the event arrived, not at its 30 s timeout"
    );
    relay.relay.stop().await;
}

#[tokio::test]
async fn a_long_poll_with_nothing_new_ends_empty_at_its_timeout() {
    let keys = KeyServer::start(&WebhookSigner::generate()).await;
    let relay = TestRelay::start(&keys.url).await;
    report_completed(&relay.relay, "r-1").await;

    let started = Instant::now();
    let page = feed(&relay.relay.url(), 1, 1).await;
    let waited = started.elapsed();
    assert!(page.events.is_empty());
    assert_eq!(page.next, 1);
    assert!(
        (Duration::from_millis(900)..Duration::from_secs(5)).contains(&waited),
        "waited {waited:?} for a 1 s timeout"
    );
    relay.relay.stop().await;
}

/// Reads server-sent events from `response` until `count` have arrived: (id, data) pairs.
async fn read_sse(response: &mut reqwest::Response, count: usize) -> Vec<(i64, FeedEvent)> {
    let mut text = String::new();
    let mut events = Vec::new();
    within("the event stream", async {
        while events.len() < count {
            let chunk = response
                .chunk()
                .await
                .unwrap()
                .expect("the stream stays open");
            text.push_str(std::str::from_utf8(&chunk).unwrap());
            while let Some(end) = text.find("\n\n") {
                let block: String = text.drain(..end + 2).collect();
                let field = |name: &str| {
                    block
                        .lines()
                        .find_map(|line| line.strip_prefix(name))
                        .map(str::to_owned)
                };
                // Keep-alive comments carry neither field.
                if let (Some(id), Some(data)) = (field("id: "), field("data: ")) {
                    events.push((id.parse().unwrap(), serde_json::from_str(&data).unwrap()));
                }
            }
        }
    })
    .await;
    events
}

#[tokio::test]
async fn the_event_stream_sends_stored_events_then_new_ones_and_honours_last_event_id() {
    let keys = KeyServer::start(&WebhookSigner::generate()).await;
    let relay = TestRelay::start(&keys.url).await;
    let url = format!("{}/api/events/stream", relay.relay.url());
    report_completed(&relay.relay, "r-1").await;
    report_completed(&relay.relay, "r-2").await;

    let mut stream = http()
        .get(&url)
        .query(&[("after", 1)])
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    assert_eq!(stream.headers()["content-type"], "text/event-stream");
    let stored = read_sse(&mut stream, 1).await;
    assert_eq!(stored[0].0, 2);
    assert_eq!(
        stored[0].1.request_id, "r-2",
        "only events after the cursor"
    );

    report_completed(&relay.relay, "r-3").await;
    let new = read_sse(&mut stream, 1).await;
    assert_eq!((new[0].0, new[0].1.request_id.as_str()), (3, "r-3"));
    drop(stream);

    // A reconnecting EventSource repeats its URL and says where it stopped.
    let mut resumed = http()
        .get(&url)
        .query(&[("after", 0)])
        .header("Last-Event-ID", "2")
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    let events = read_sse(&mut resumed, 1).await;
    assert_eq!(
        events[0].1.request_id, "r-3",
        "Last-Event-ID wins over after"
    );

    within("stopping with a stream open", relay.relay.stop()).await;
}

#[tokio::test]
async fn the_feed_needs_the_relay_token() {
    let keys = KeyServer::start(&WebhookSigner::generate()).await;
    let relay = TestRelay::start(&keys.url).await;
    for path in ["/api/events", "/api/events/stream"] {
        let url = format!("{}{path}", relay.relay.url());
        let response = http().get(&url).send().await.unwrap();
        assert_eq!(response.status(), 401, "{path} without a token");
        let response = http()
            .get(&url)
            .bearer_auth("a-wrong-token-of-some-length")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 401, "{path} with a wrong token");
        assert!(error_of(response).await.contains("not this relay's token"));
    }
    relay.relay.stop().await;
}
