//! The relay's feed JSON: what `GET /api/events` and `GET /api/events/stream` send. The relay
//! writes these types and the app reads them, so the two cannot drift apart; the relay classifies
//! each delivery once (`kind`), and the app acts on that. Errors of the relay's HTTP API are
//! `{"error": message}`, a public API of its own.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// What happened to a training request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    InProgress,
    Completed,
    Failed,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::InProgress => "in_progress",
            EventKind::Completed => "completed",
            EventKind::Failed => "failed",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [Self::InProgress, Self::Completed, Self::Failed]
            .into_iter()
            .find(|kind| kind.as_str() == text)
    }
}

/// Who sent an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventSource {
    /// A webhook whose signature verified against fal's published keys.
    Fal,
    /// The guide's own status format, sent with the relay token (the app's test-mode simulator
    /// or another sender the creator trusts).
    Trusted,
}

impl EventSource {
    pub fn as_str(self) -> &'static str {
        match self {
            EventSource::Fal => "fal",
            EventSource::Trusted => "trusted",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [Self::Fal, Self::Trusted]
            .into_iter()
            .find(|source| source.as_str() == text)
    }
}

/// The guide's two trainings, named in the webhook URL's `training_type` query parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TrainingType {
    Portrait,
    Style,
}

impl TrainingType {
    pub fn as_str(self) -> &'static str {
        match self {
            TrainingType::Portrait => "portrait",
            TrainingType::Style => "style",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [Self::Portrait, Self::Style]
            .into_iter()
            .find(|training_type| training_type.as_str() == text)
    }
}

/// One stored event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeedEvent {
    /// Increases with every stored event and is never reused: ask for events `after` the last
    /// cursor seen to resume exactly there.
    pub cursor: i64,
    /// fal's queue request id, from the body.
    pub request_id: String,
    pub kind: EventKind,
    /// A progress report's percentage, as the relay read it from the body (only for
    /// [`EventKind::InProgress`]); a relay from before this field sends none.
    #[serde(default)]
    pub progress: Option<f64>,
    pub training_type: Option<TrainingType>,
    pub source: EventSource,
    /// The delivery's JSON body, as received.
    pub body: Value,
    pub received_at: DateTime<Utc>,
}

/// One answer of `GET /api/events`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeedPage {
    /// Oldest first, at most one page (the relay's `FEED_PAGE_SIZE`).
    pub events: Vec<FeedEvent>,
    /// The cursor to ask `after` next time.
    pub next: i64,
}
