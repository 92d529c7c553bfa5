//! The lifecycle headers (fal-protocol.md §7.3): `X-Fal-Object-Lifecycle` and
//! `X-Fal-Object-Lifecycle-Preference`, JSON such as `{"expiration_duration_seconds": 3600}`.

use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};
use serde_json::Value;

use crate::server::Rejection;

pub(crate) const OBJECT_LIFECYCLE: &str = "x-fal-object-lifecycle";
pub(crate) const LIFECYCLE_PREFERENCE: &str = "x-fal-object-lifecycle-preference";

/// A lifecycle header's JSON, `None` when the header is absent. A value that is not a JSON
/// object, or whose `expiration_duration_seconds` is not a whole number of seconds, is refused
/// with 400 (UNCONFIRMED: how fal refuses a bad lifecycle header).
pub(crate) fn parse(headers: &HeaderMap, name: &str) -> Result<Option<Value>, Rejection> {
    let Some(value) = headers.get(name) else {
        return Ok(None);
    };
    let lifecycle = value
        .to_str()
        .ok()
        .and_then(|text| serde_json::from_str::<Value>(text).ok())
        .filter(|lifecycle| lifecycle.is_object() && lifetime_field(lifecycle).is_ok());
    match lifecycle {
        Some(lifecycle) => Ok(Some(lifecycle)),
        None => Err(Rejection::detail(
            StatusCode::BAD_REQUEST,
            format!("{name} must be a JSON object with an integer expiration_duration_seconds"),
        )),
    }
}

/// How long an object kept under `lifecycle` lives; `None` is for ever. fal treats an absent,
/// null or zero `expiration_duration_seconds` as no expiry (fal-protocol.md §7.3).
pub(crate) fn lifetime(lifecycle: Option<&Value>) -> Option<Duration> {
    lifecycle
        .and_then(|lifecycle| lifetime_field(lifecycle).ok().flatten())
        .filter(|lifetime| !lifetime.is_zero())
}

fn lifetime_field(lifecycle: &Value) -> Result<Option<Duration>, ()> {
    match lifecycle.get("expiration_duration_seconds") {
        None | Some(Value::Null) => Ok(None),
        Some(seconds) => seconds
            .as_u64()
            .map(Duration::from_secs)
            .map(Some)
            .ok_or(()),
    }
}
