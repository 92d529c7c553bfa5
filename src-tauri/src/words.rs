//! The words the shell shows outside the webview (desktop notifications, the tray menu, the
//! paid-start dialog, the file picker's filter). They come from the UI's own dictionary, in the
//! language found by one rule, so the app says one thing in one language everywhere.

use std::collections::HashMap;

use serde_json::Value;
use studio::{JobFailure, Studio};

const ENGLISH: &str = include_str!("../../ui/src/lib/i18n/en.json");
const RUSSIAN: &str = include_str!("../../ui/src/lib/i18n/ru.json");

/// One language's dictionary.
pub struct Words(HashMap<String, String>);

impl Words {
    /// The creator's language: the one chosen in Settings, else the system's, as the UI picks it.
    pub fn of(studio: Option<&Studio>) -> Self {
        let chosen = studio.and_then(|studio| studio.config().language.clone());
        Self::for_language(&chosen.unwrap_or_else(system_language))
    }

    pub fn for_language(language: &str) -> Self {
        let source = if language == "ru" { RUSSIAN } else { ENGLISH };
        Self(serde_json::from_str(source).expect("the UI's dictionaries are flat JSON objects"))
    }

    /// The message for `key`, with `{name}` placeholders filled from `params`.
    pub fn text(&self, key: &str, params: &[(impl AsRef<str>, impl AsRef<str>)]) -> String {
        let Some(template) = self.0.get(key) else {
            return key.to_string();
        };
        params.iter().fold(template.clone(), |text, (name, value)| {
            text.replace(&format!("{{{}}}", name.as_ref()), value.as_ref())
        })
    }

    /// A message that takes no parameters.
    pub fn plain(&self, key: &str) -> String {
        self.text(key, &[] as &[(&str, &str)])
    }

    /// Why a job failed: `jobFailure.<code>` (and `.<transfer>` for a transfer), filled with the
    /// failure's parameters. The UI words failures by the same rule (`features/training`).
    pub fn failure(&self, failure: &JobFailure) -> String {
        self.text(&failure_key(failure), &failure_params(failure))
            .trim()
            .to_string()
    }
}

pub fn failure_key(failure: &JobFailure) -> String {
    let fields = serde_json::to_value(failure).unwrap_or(Value::Null);
    let code = fields["code"].as_str().unwrap_or("other");
    match fields["transfer"].as_str() {
        Some(transfer) => format!("jobFailure.{code}.{transfer}"),
        None => format!("jobFailure.{code}"),
    }
}

fn failure_params(failure: &JobFailure) -> Vec<(String, String)> {
    let fields = serde_json::to_value(failure).unwrap_or(Value::Null);
    let Value::Object(fields) = fields else {
        return Vec::new();
    };
    fields
        .into_iter()
        .filter(|(name, _)| name != "code")
        .map(|(name, value)| {
            let value = match value {
                Value::String(text) => text,
                Value::Null => String::new(),
                other => other.to_string(),
            };
            (name, value)
        })
        .collect()
}

/// The first of the system's languages the app speaks, in the order GLib (and so the webview)
/// reads them; English otherwise.
fn system_language() -> String {
    ["LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG"]
        .iter()
        .filter_map(|name| std::env::var(name).ok())
        .flat_map(|value| {
            value
                .split(':')
                .map(|entry| entry.to_lowercase())
                .collect::<Vec<_>>()
        })
        .find_map(|entry| {
            let base = entry.split(['_', '.', '@', '-']).next().unwrap_or_default();
            ["en", "ru"].contains(&base).then(|| base.to_string())
        })
        .unwrap_or_else(|| "en".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use studio::Transfer;

    fn every_failure() -> Vec<JobFailure> {
        let detail = || "technical detail".to_string();
        vec![
            JobFailure::Settings { detail: detail() },
            JobFailure::Refused { detail: detail() },
            JobFailure::FalFailed {
                kind: None,
                detail: detail(),
            },
            JobFailure::NoRequest,
            JobFailure::Forgotten,
            JobFailure::ResultExpired,
            JobFailure::ResultUnusable { detail: detail() },
            JobFailure::ModelNotHttps { url: detail() },
            JobFailure::ModelGone,
            JobFailure::ModelPrivate { status: 403 },
            JobFailure::TransferGaveUp {
                transfer: Transfer::Upload,
                tries: 3,
                detail: detail(),
            },
            JobFailure::TransferGaveUp {
                transfer: Transfer::Download,
                tries: 3,
                detail: detail(),
            },
            JobFailure::NeverReceived { minutes: 10 },
            serde_json::from_value(serde_json::json!({
                "code": "unsettled",
                "detail": detail(),
                "sent_at": "2026-12-07T21:58:00Z",
            }))
            .expect("an unsettled failure"),
            JobFailure::ImageUnavailable { status: 404 },
            JobFailure::Other { detail: detail() },
        ]
    }

    #[test]
    fn every_failure_is_worded_in_both_languages_with_its_parameters_filled() {
        for language in ["en", "ru"] {
            let words = Words::for_language(language);
            for failure in every_failure() {
                let key = failure_key(&failure);
                assert!(words.0.contains_key(&key), "{language} lacks {key}");
                let text = words.failure(&failure);
                assert!(!text.contains('{'), "{language} {key}: {text}");
            }
        }
    }

    #[test]
    fn notifications_and_the_tray_speak_russian() {
        let words = Words::for_language("ru");
        let title = words.plain("notify.completed.title");
        assert_eq!(title, "Обучение завершено");
        let body = words.text("notify.completed.body", &[("name", "Анна")]);
        assert!(body.contains("Анна"), "{body}");
        let failure = words.failure(&JobFailure::NeverReceived { minutes: 10 });
        assert!(failure.contains("10"), "{failure}");
        assert!(!failure.contains("fal never"), "{failure}");
        assert_eq!(words.plain("tray.quit"), "Выйти");
    }
}
