//! What a delivery's body says, in either format the status endpoint accepts:
//! - fal's webhook (fal-protocol.md §2.1): `{request_id, gateway_request_id, status: OK|ERROR,
//!   payload, error?}`, only ever sent when a request has finished;
//! - the guide's own format: `{request_id, status: in_progress|completed|failed, progress,
//!   training_type, result}`.

use serde_json::{Map, Value};

use crate::wire::{EventKind, TrainingType};

/// The parts of a body the store indexes.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    pub request_id: String,
    pub kind: EventKind,
    /// Only for progress reports.
    pub progress: Option<f64>,
    pub training_type: Option<TrainingType>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BadDelivery(String);

pub fn fal_webhook(body: &[u8]) -> Result<Delivery, BadDelivery> {
    let fields = json_object(body)?;
    let kind = match fields.get("status").and_then(Value::as_str) {
        Some("OK") => EventKind::Completed,
        Some("ERROR") => EventKind::Failed,
        _ => {
            return Err(BadDelivery(
                "a fal webhook's \"status\" is \"OK\" or \"ERROR\"".to_owned(),
            ));
        }
    };
    Ok(Delivery {
        request_id: request_id(&fields)?,
        kind,
        progress: None,
        training_type: None,
    })
}

pub fn guide_status(body: &[u8]) -> Result<Delivery, BadDelivery> {
    let fields = json_object(body)?;
    let kind = fields
        .get("status")
        .and_then(Value::as_str)
        .and_then(EventKind::parse)
        .ok_or_else(|| {
            BadDelivery(
                "\"status\" is one of \"in_progress\", \"completed\" or \"failed\"".to_owned(),
            )
        })?;
    let progress = match fields.get("progress") {
        None | Some(Value::Null) => None,
        Some(progress) => Some(
            progress
                .as_f64()
                .ok_or_else(|| BadDelivery("\"progress\" is a number when present".to_owned()))?,
        ),
    };
    let training_type = match fields.get("training_type") {
        None | Some(Value::Null) => None,
        Some(value) => Some(training_type(value.as_str().unwrap_or_default())?),
    };
    Ok(Delivery {
        request_id: request_id(&fields)?,
        kind,
        progress: progress.filter(|_| kind == EventKind::InProgress),
        training_type,
    })
}

pub fn training_type(text: &str) -> Result<TrainingType, BadDelivery> {
    TrainingType::parse(text).ok_or_else(|| {
        BadDelivery(format!(
            "training_type is \"portrait\" or \"style\", not {text:?}"
        ))
    })
}

fn json_object(body: &[u8]) -> Result<Map<String, Value>, BadDelivery> {
    match serde_json::from_slice(body) {
        Ok(Value::Object(fields)) => Ok(fields),
        Ok(_) => Err(BadDelivery("the body is not a JSON object".to_owned())),
        Err(error) => Err(BadDelivery(format!("the body is not JSON: {error}"))),
    }
}

fn request_id(fields: &Map<String, Value>) -> Result<String, BadDelivery> {
    match fields.get("request_id").and_then(Value::as_str) {
        Some(id) if !id.trim().is_empty() => Ok(id.to_owned()),
        _ => Err(BadDelivery(
            "the body has no \"request_id\" string".to_owned(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fal_statuses_map_to_completed_and_failed() {
        let ok = br#"{"request_id":"r-1","gateway_request_id":"g","status":"OK","payload":{}}"#;
        assert_eq!(
            fal_webhook(ok).unwrap(),
            Delivery {
                request_id: "r-1".into(),
                kind: EventKind::Completed,
                progress: None,
                training_type: None,
            }
        );
        let error = br#"{"request_id":"r-1","status":"ERROR","error":"Invalid status code: 422","payload":null}"#;
        assert_eq!(fal_webhook(error).unwrap().kind, EventKind::Failed);
        assert!(fal_webhook(br#"{"request_id":"r-1","status":"COMPLETED"}"#).is_err());
        assert!(fal_webhook(br#"{"status":"OK"}"#).is_err());
    }

    #[test]
    fn the_guide_format_keeps_progress_only_on_progress_reports() {
        let running =
            br#"{"request_id":"r-1","status":"in_progress","progress":40,"training_type":"style"}"#;
        assert_eq!(
            guide_status(running).unwrap(),
            Delivery {
                request_id: "r-1".into(),
                kind: EventKind::InProgress,
                progress: Some(40.0),
                training_type: Some(TrainingType::Style),
            }
        );
        let done = br#"{"request_id":"r-1","status":"completed","progress":100,"result":{}}"#;
        assert_eq!(guide_status(done).unwrap().progress, None);
    }

    #[test]
    fn malformed_bodies_say_what_is_wrong() {
        for (body, says) in [
            (&b"{"[..], "not JSON"),
            (b"[1]", "not a JSON object"),
            (br#"{"request_id":"r","status":"done"}"#, "\"status\""),
            (br#"{"request_id":"","status":"failed"}"#, "request_id"),
            (
                br#"{"request_id":"r","status":"in_progress","progress":"half"}"#,
                "progress",
            ),
            (
                br#"{"request_id":"r","status":"failed","training_type":"video"}"#,
                "training_type",
            ),
        ] {
            let error = guide_status(body).unwrap_err();
            assert!(error.to_string().contains(says), "{error} lacks {says}");
        }
    }
}
