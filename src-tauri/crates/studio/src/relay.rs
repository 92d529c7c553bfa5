//! Following the webhook relay: fal's webhooks (and the test-mode simulator's) reach the relay,
//! and the app reads them from its feed, resuming at the stored cursor after a restart or a network
//! cut. Events go through the same ledger path as polling, so a job ends once whichever channel
//! reports first; polling goes on regardless, so a relay that is down loses nothing.

use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::{Value, json};
use ts_rs::TS;

use crate::{Error, JobId, Result, Studio};

/// How long one long-poll waits for news before asking again.
const LONG_POLL: Duration = Duration::from_secs(25);

/// Which channel brings training news right now, for the UI and diagnostics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum UpdateChannel {
    /// The relay answered the last long-poll.
    Relay,
    /// No relay is configured, or it cannot be reached: fal is polled directly.
    Polling,
}

impl Studio {
    /// The relay's URL (kept without a trailing slash) and token, as the config in force has
    /// them.
    pub(crate) fn relay(&self) -> Option<(String, String)> {
        self.in_force().relay.clone()
    }

    /// Reads the relay's feed once (waiting up to a long-poll for news), applies every event and
    /// stores the cursor. Returns how many events were applied.
    pub async fn read_relay_once(&self, wait: Duration) -> Result<usize> {
        Ok(self.read_feed(wait).await?.applied)
    }

    async fn read_feed(&self, wait: Duration) -> Result<FeedRead> {
        let Some((url, token)) = self.relay() else {
            return Err(Error::InvalidConfig(
                "no relay is configured: set RELAY_URL and the relay token".into(),
            ));
        };
        let after = self.library.relay_cursor()?;
        let response = relay_http()
            .get(format!("{url}/api/events"))
            .query(&[
                ("after", after.to_string()),
                ("timeout", wait.as_secs().to_string()),
            ])
            .bearer_auth(token)
            .timeout(wait + Duration::from_secs(15))
            .send()
            .await
            .map_err(|error| {
                Error::Remote(format!("the relay at {url} cannot be reached: {error}"))
            })?;
        match response.status().as_u16() {
            200 => {}
            401 | 403 => {
                return Err(Error::WrongKey(
                    "the relay refused the token: check the relay token in Settings or RELAY_TOKEN"
                        .into(),
                ));
            }
            status => {
                return Err(Error::Remote(format!("the relay answered HTTP {status}")));
            }
        }
        let feed: relay_wire::FeedPage = response.json().await.map_err(|error| {
            Error::Remote(format!("the relay sent something unreadable: {error}"))
        })?;
        let mut read = FeedRead::default();
        for event in feed.events {
            if self.apply_feed_event(&event)?.is_some() {
                read.applied += 1;
            }
            read.request_ids.push(event.request_id);
        }
        self.library.set_relay_cursor(feed.next)?;
        if read.applied > 0 {
            self.news.notify_waiters();
        }
        Ok(read)
    }

    /// The channel that brought training news last.
    pub fn update_channel(&self) -> UpdateChannel {
        *self
            .channel
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn set_update_channel(&self, channel: UpdateChannel) -> bool {
        let mut live = self
            .channel
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        std::mem::replace(&mut *live, channel) != channel
    }

    /// Follows a job like [`Studio::follow`], reading the relay's feed beside the polls when a
    /// relay is configured, so news arrives as soon as the relay has it.
    pub async fn follow_with_relay(
        &self,
        job_id: JobId,
        watch: impl FnMut(&library::TrainingJob) -> bool,
    ) -> Result<library::TrainingJob> {
        if self.relay().is_none() {
            return self.follow(job_id, watch).await;
        }
        tokio::select! {
            job = self.follow(job_id, watch) => job,
            () = self.follow_relay(|_| {}) => unreachable!("following the relay never ends"),
        }
    }

    /// Follows the relay for as long as the caller keeps the future, calling `on_change` when
    /// the live channel changes.
    pub async fn follow_relay(&self, mut on_change: impl FnMut(UpdateChannel)) {
        let mut pause = Duration::from_secs(1);
        loop {
            let channel = match self.read_relay_once(LONG_POLL).await {
                Ok(_) => UpdateChannel::Relay,
                Err(_) => UpdateChannel::Polling,
            };
            if self.set_update_channel(channel) {
                on_change(channel);
            }
            match channel {
                UpdateChannel::Relay => pause = Duration::from_secs(1),
                UpdateChannel::Polling => {
                    // A relay just set in Settings is tried at once, not after the pause.
                    let reconfigured = tokio::select! {
                        () = self.clock.sleep(pause) => false,
                        () = self.config_changed.notified() => true,
                    };
                    pause = if reconfigured {
                        Duration::from_secs(1)
                    } else {
                        (pause * 2).min(Duration::from_secs(60))
                    };
                }
            }
        }
    }
}

#[derive(Default)]
struct FeedRead {
    applied: usize,
    request_ids: Vec<String>,
}

/// One step of "Check connection", in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum ConnectionStep {
    /// `RELAY_URL` and the relay token are set.
    Configured,
    /// The relay's `/health` answers.
    Health,
    /// A test event sent with the token is accepted.
    Token,
    /// The test event comes back through the feed.
    Feed,
    /// fal is told to deliver its webhooks to this relay.
    WebhookUrl,
}

/// What went wrong, for the UI to explain in the creator's language.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum ConnectionProblem {
    NotConfigured,
    /// No answer at the address: a wrong URL, DNS, a firewall, or the host is down.
    Unreachable,
    /// The host answered but nothing listens on the port: the relay is not running.
    NotRunning,
    /// Something answered that is not a working relay (a proxy error page, another server).
    NotARelay,
    TokenWrong,
    /// The event was accepted but never came back through the feed.
    FeedSilent,
    WebhookUrlMissing,
    /// `FAL_WEBHOOK_URL` points somewhere other than this relay.
    WebhookUrlElsewhere,
}

#[derive(Debug, Clone, Serialize, TS)]
pub struct ConnectionCheck {
    pub step: ConnectionStep,
    pub passed: bool,
    pub problem: Option<ConnectionProblem>,
    /// Facts in plain words: the relay's version, an HTTP status, the network error.
    pub detail: String,
}

#[derive(Debug, Clone, Serialize, TS)]
pub struct ConnectionReport {
    /// The channel training news arrives by right now.
    pub channel: UpdateChannel,
    /// The steps that ran; the first failure ends the relay's steps.
    pub checks: Vec<ConnectionCheck>,
}

impl ConnectionCheck {
    fn passed(step: ConnectionStep, detail: impl Into<String>) -> Self {
        Self {
            step,
            passed: true,
            problem: None,
            detail: detail.into(),
        }
    }

    fn failed(step: ConnectionStep, problem: ConnectionProblem, detail: impl Into<String>) -> Self {
        Self {
            step,
            passed: false,
            problem: Some(problem),
            detail: detail.into(),
        }
    }
}

/// How long "Check connection" waits for each answer.
const CHECK_TIMEOUT: Duration = Duration::from_secs(10);

/// Whether a request failed because nothing listens at the address (as opposed to no answer).
fn refused(error: &reqwest::Error) -> bool {
    let mut source: Option<&dyn std::error::Error> = Some(error);
    while let Some(error) = source {
        if let Some(io) = error.downcast_ref::<std::io::Error>()
            && io.kind() == std::io::ErrorKind::ConnectionRefused
        {
            return true;
        }
        source = error.source();
    }
    false
}

fn unreachable(step: ConnectionStep, error: &reqwest::Error) -> ConnectionCheck {
    let problem = if refused(error) {
        ConnectionProblem::NotRunning
    } else {
        ConnectionProblem::Unreachable
    };
    ConnectionCheck::failed(step, problem, error.to_string())
}

impl Studio {
    /// "Check connection": the relay's health, a test event sent with the token and read back
    /// through the feed, and whether fal is told to deliver to this relay. Every failure names
    /// the guide's case it is (address unreachable, relay not running, token wrong).
    pub async fn check_connection(&self) -> ConnectionReport {
        let checks = self.connection_checks().await;
        ConnectionReport {
            channel: self.update_channel(),
            checks,
        }
    }

    async fn connection_checks(&self) -> Vec<ConnectionCheck> {
        use ConnectionProblem as Problem;
        use ConnectionStep as Step;
        let Some((url, token)) = self.relay() else {
            let missing = match self.config().relay_url.as_ref() {
                None => "RELAY_URL is not set",
                Some(_) => "the relay token is not set",
            };
            return vec![ConnectionCheck::failed(
                Step::Configured,
                Problem::NotConfigured,
                missing,
            )];
        };
        let mut checks = vec![ConnectionCheck::passed(Step::Configured, url.clone())];
        let client = relay_http();

        // With the token, the relay's health says how many events it holds.
        let health = client
            .get(format!("{url}/health"))
            .bearer_auth(&token)
            .timeout(CHECK_TIMEOUT)
            .send()
            .await;
        let health = match health {
            Err(error) => {
                checks.push(unreachable(Step::Health, &error));
                return checks;
            }
            Ok(response) => {
                let status = response.status();
                let body: Value = response.json().await.unwrap_or(Value::Null);
                match body["version"].as_str() {
                    Some(version) if status.is_success() => ConnectionCheck::passed(
                        Step::Health,
                        format!("avatar-relay {version}, {} events stored", body["events"]),
                    ),
                    Some(version) => ConnectionCheck::failed(
                        Step::Health,
                        Problem::NotARelay,
                        format!(
                            "avatar-relay {version} reports a broken store: {}",
                            body["store"]
                        ),
                    ),
                    None => ConnectionCheck::failed(
                        Step::Health,
                        Problem::NotARelay,
                        format!("HTTP {status}, and not a relay's health report"),
                    ),
                }
            }
        };
        let healthy = health.passed;
        checks.push(health);
        if !healthy {
            return checks;
        }

        let request_id = format!("self-test-{}", uuid::Uuid::new_v4().simple());
        let sent = client
            .post(format!("{url}/api/avatar/status_update"))
            .query(&[("training_type", "portrait")])
            .bearer_auth(token)
            .json(&json!({
                "request_id": request_id,
                "status": "in_progress",
                "progress": 0,
                "training_type": "portrait",
            }))
            .timeout(CHECK_TIMEOUT)
            .send()
            .await;
        let sent_at = Instant::now();
        let token_check = match sent {
            Err(error) => unreachable(Step::Token, &error),
            Ok(response) => match response.status().as_u16() {
                200..=299 => ConnectionCheck::passed(Step::Token, "the relay took a test event"),
                401 | 403 => ConnectionCheck::failed(
                    Step::Token,
                    Problem::TokenWrong,
                    format!("HTTP {}", response.status().as_u16()),
                ),
                status => ConnectionCheck::failed(
                    Step::Token,
                    Problem::NotARelay,
                    format!("HTTP {status}"),
                ),
            },
        };
        let accepted = token_check.passed;
        checks.push(token_check);
        if !accepted {
            return checks;
        }

        checks.push(self.await_test_event(&request_id, sent_at).await);
        checks.push(self.webhook_url_check(&url));
        checks
    }

    async fn await_test_event(&self, request_id: &str, sent_at: Instant) -> ConnectionCheck {
        let deadline = sent_at + CHECK_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.read_feed(left.min(Duration::from_secs(2))).await {
                Ok(read) if read.request_ids.iter().any(|seen| seen == request_id) => {
                    self.set_update_channel(UpdateChannel::Relay);
                    return ConnectionCheck::passed(
                        ConnectionStep::Feed,
                        format!(
                            "the test event came back in {} ms",
                            sent_at.elapsed().as_millis()
                        ),
                    );
                }
                Ok(_) if !left.is_zero() => {}
                Ok(_) => {
                    return ConnectionCheck::failed(
                        ConnectionStep::Feed,
                        ConnectionProblem::FeedSilent,
                        format!("no test event after {} s", CHECK_TIMEOUT.as_secs()),
                    );
                }
                Err(error) => {
                    let problem = match error.code() {
                        crate::ErrorCode::WrongKey => ConnectionProblem::TokenWrong,
                        _ => ConnectionProblem::FeedSilent,
                    };
                    return ConnectionCheck::failed(
                        ConnectionStep::Feed,
                        problem,
                        error.to_string(),
                    );
                }
            }
        }
    }

    fn webhook_url_check(&self, relay_url: &str) -> ConnectionCheck {
        let expected = format!("{relay_url}/api/avatar/status_update");
        match self.config().fal_webhook_url.as_deref() {
            None => ConnectionCheck::failed(
                ConnectionStep::WebhookUrl,
                ConnectionProblem::WebhookUrlMissing,
                format!("set FAL_WEBHOOK_URL to {expected}"),
            ),
            Some(url) if url.trim_end_matches('/') == expected => {
                ConnectionCheck::passed(ConnectionStep::WebhookUrl, url)
            }
            Some(url) => ConnectionCheck::failed(
                ConnectionStep::WebhookUrl,
                ConnectionProblem::WebhookUrlElsewhere,
                format!("FAL_WEBHOOK_URL is {url}; this relay receives at {expected}"),
            ),
        }
    }
}

/// The relay port's client: one connection pool for the feed, the connection check and test
/// mode's simulated webhook, for the whole process.
#[allow(clippy::disallowed_methods)]
pub(crate) fn relay_http() -> &'static reqwest::Client {
    static CLIENT: std::sync::OnceLock<reqwest::Client> = std::sync::OnceLock::new();
    CLIENT.get_or_init(reqwest::Client::new)
}
