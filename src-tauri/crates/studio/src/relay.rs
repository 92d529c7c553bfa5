//! Following the webhook relay: fal's webhooks (and the test-mode simulator's) reach the relay,
//! and the app reads them from its feed, resuming at the stored cursor after a restart or a network
//! cut. Events go through the same ledger path as polling, so a job ends once whichever channel
//! reports first; polling goes on regardless, so a relay that is down loses nothing.

use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

use crate::{Error, Result, SecretName, Studio};

/// How long one long-poll waits for news before asking again.
const LONG_POLL: Duration = Duration::from_secs(25);

#[derive(Deserialize)]
struct Feed {
    events: Vec<FeedEvent>,
    next: i64,
}

#[derive(Deserialize)]
struct FeedEvent {
    body: Value,
}

/// Which channel brings training news right now, for the UI and diagnostics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, ts_rs::TS)]
#[serde(rename_all = "snake_case")]
pub enum UpdateChannel {
    /// The relay answered the last long-poll.
    Relay,
    /// No relay is configured, or it cannot be reached: fal is polled directly.
    Polling,
}

impl Studio {
    fn relay(&self) -> Option<(String, String)> {
        let url = self.config.relay_url.clone()?;
        let token = self.secrets.get(SecretName::RelayToken)?;
        Some((url.trim_end_matches('/').to_string(), token))
    }

    /// Reads the relay's feed once (waiting up to a long-poll for news), applies every event and
    /// stores the cursor. Returns how many events were applied.
    pub async fn read_relay_once(&self, wait: Duration) -> Result<usize> {
        let Some((url, token)) = self.relay() else {
            return Err(Error::InvalidConfig(
                "no relay is configured: set RELAY_URL and the relay token".into(),
            ));
        };
        let after = self.library.relay_cursor()?;
        let response = reqwest::Client::new()
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
        let feed: Feed = response.json().await.map_err(|error| {
            Error::Remote(format!("the relay sent something unreadable: {error}"))
        })?;
        let mut applied = 0;
        for event in &feed.events {
            if self.apply_status_event(&event.body)?.is_some() {
                applied += 1;
            }
        }
        self.library.set_relay_cursor(feed.next)?;
        Ok(applied)
    }

    /// Follows the relay for as long as the caller keeps the future, reporting the live channel.
    pub async fn follow_relay(&self, mut on_channel: impl FnMut(UpdateChannel)) {
        let mut pause = Duration::from_secs(1);
        loop {
            match self.read_relay_once(LONG_POLL).await {
                Ok(_) => {
                    on_channel(UpdateChannel::Relay);
                    pause = Duration::from_secs(1);
                }
                Err(_) => {
                    on_channel(UpdateChannel::Polling);
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_secs(60));
                }
            }
        }
    }
}
