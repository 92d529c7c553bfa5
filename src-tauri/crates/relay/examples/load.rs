//! Load test on loopback: starts a relay with a local key server, sends signed webhooks from
//! concurrent clients, then reads the whole feed back and checks that every accepted webhook is
//! in it exactly once. Prints the sustained rate of accepted webhooks and their latency.
//!
//! `cargo run -p relay --example load -- --webhooks 5000 --clients 32 2>/tmp/relay-load.log`
//! (the relay logs one line per stored event on stderr).

// A load generator, not part of the app.
#![allow(clippy::disallowed_methods)]

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail, ensure};
use axum::Router;
use axum::routing::get;
use clap::Parser;
use fal::webhook::WebhookSigner;
use relay::wire::FeedPage;
use relay::{Relay, RelayConfig};
use serde_json::json;
use tokio::net::TcpListener;
use tokio::task::JoinSet;

#[derive(Parser)]
struct Args {
    /// How many webhooks to send, each for a different request.
    #[arg(long, default_value_t = 5000)]
    webhooks: usize,
    /// How many clients send at once.
    #[arg(long, default_value_t = 32)]
    clients: usize,
    /// The most the sending may take before the test gives up.
    #[arg(long, default_value_t = 300)]
    time_limit_secs: u64,
}

const TOKEN: &str = "load-test-relay-token-0123456789";

/// One webhook as a client saw it.
struct Sent {
    request_id: String,
    latency: Duration,
    stored: bool,
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    ensure!(
        args.webhooks > 0 && args.clients > 0,
        "send at least one webhook from one client"
    );
    let dir = tempfile::tempdir()?;
    let signer = Arc::new(WebhookSigner::generate());
    let jwks_url = serve_keys(&signer).await?;
    let config = RelayConfig {
        listen: "127.0.0.1:0".parse()?,
        jwks_url,
        // Every client here shares one address; the limit would measure itself, not the relay.
        rate_limit_per_minute: 0,
        ..RelayConfig::new(dir.path().join("relay.sqlite3"), TOKEN.to_owned())
    };
    let relay = Relay::start(config).await?;
    let status_url = format!(
        "{}/api/avatar/status_update?training_type=portrait",
        relay.url()
    );
    let http = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(args.clients)
        .build()?;

    let next = Arc::new(AtomicUsize::new(0));
    let mut clients = JoinSet::new();
    let started = Instant::now();
    for _ in 0..args.clients {
        let (http, signer, next, url) = (
            http.clone(),
            signer.clone(),
            next.clone(),
            status_url.clone(),
        );
        let total = args.webhooks;
        clients.spawn(async move {
            let mut sent = Vec::new();
            loop {
                let index = next.fetch_add(1, Ordering::Relaxed);
                if index >= total {
                    return Ok::<_, anyhow::Error>(sent);
                }
                sent.push(send_webhook(&http, &signer, &url, &format!("load-{index}")).await?);
            }
        });
    }
    let sending = async {
        let mut all = Vec::with_capacity(args.webhooks);
        while let Some(client) = clients.join_next().await {
            all.extend(client??);
        }
        Ok::<_, anyhow::Error>(all)
    };
    let sent = tokio::time::timeout(Duration::from_secs(args.time_limit_secs), sending)
        .await
        .context("the webhooks were not all answered within the time limit")??;
    let sending_took = started.elapsed();

    let accepted: HashSet<&str> = sent
        .iter()
        .filter(|sent| sent.stored)
        .map(|sent| sent.request_id.as_str())
        .collect();
    let mut latencies: Vec<Duration> = sent.iter().map(|sent| sent.latency).collect();
    latencies.sort_unstable();

    let (in_feed, events) = read_feed(&http, &relay.url()).await?;
    let lost = accepted
        .difference(&in_feed.iter().map(String::as_str).collect())
        .count();
    relay.stop().await;

    println!(
        "webhooks sent       {} from {} concurrent clients",
        sent.len(),
        args.clients
    );
    println!("accepted (200)      {}", accepted.len());
    println!("sending took        {:.2} s", sending_took.as_secs_f64());
    println!(
        "sustained rate      {:.0} accepted webhooks/s",
        accepted.len() as f64 / sending_took.as_secs_f64()
    );
    println!(
        "latency p50         {:.1} ms",
        millis(percentile(&latencies, 50.0))
    );
    println!(
        "latency p99         {:.1} ms",
        millis(percentile(&latencies, 99.0))
    );
    println!(
        "latency max         {:.1} ms",
        millis(latencies[latencies.len() - 1])
    );
    println!("events in the feed  {events}");
    println!("lost                {lost}");
    if lost > 0 || accepted.len() != args.webhooks || events != args.webhooks {
        bail!("not every webhook was accepted and stored exactly once");
    }
    Ok(())
}

async fn send_webhook(
    http: &reqwest::Client,
    signer: &WebhookSigner,
    url: &str,
    request_id: &str,
) -> Result<Sent> {
    let body = json!({
        "request_id": request_id,
        "gateway_request_id": request_id,
        "status": "OK",
        "payload": { "diffusers_lora_file": { "url": format!("https://v3.fal.media/files/{request_id}.safetensors") } },
    })
    .to_string();
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs() as i64;
    let signed = signer.sign(request_id, "load-user", now, body.as_bytes());
    let mut request = http
        .post(url)
        .header("Content-Type", "application/json")
        .body(body);
    for (name, value) in signed.pairs() {
        request = request.header(name, value);
    }
    let sent_at = Instant::now();
    let response = request.send().await?;
    let status = response.status();
    let answer: serde_json::Value = response.json().await?;
    Ok(Sent {
        request_id: request_id.to_owned(),
        latency: sent_at.elapsed(),
        stored: status == 200 && answer["status"] == "stored",
    })
}

/// Every request id in the feed, and how many events carry them.
async fn read_feed(http: &reqwest::Client, relay_url: &str) -> Result<(HashSet<String>, usize)> {
    let mut request_ids = HashSet::new();
    let mut events = 0;
    let mut after = 0;
    loop {
        let page: FeedPage = http
            .get(format!("{relay_url}/api/events"))
            .query(&[("after", after)])
            .bearer_auth(TOKEN)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        if page.events.is_empty() {
            return Ok((request_ids, events));
        }
        events += page.events.len();
        request_ids.extend(page.events.into_iter().map(|event| event.request_id));
        after = page.next;
    }
}

async fn serve_keys(signer: &WebhookSigner) -> Result<String> {
    let jwks = signer.jwks();
    let app = Router::new().route(
        "/.well-known/jwks.json",
        get(move || async move { axum::Json(jwks) }),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/.well-known/jwks.json", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(url)
}

fn percentile(sorted: &[Duration], percent: f64) -> Duration {
    let rank = ((percent / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}
