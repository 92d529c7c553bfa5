//! What can go wrong talking to fal, in words a creator understands.

/// A failed call to fal. Messages never contain the key.
#[derive(Debug, Clone, thiserror::Error)]
pub enum FalError {
    #[error("fal refused the API key (HTTP {status}); check the fal key in Settings or FAL_KEY")]
    WrongKey { status: u16 },
    #[error("fal rejected the training request: {message}")]
    Invalid { status: u16, message: String },
    #[error("fal has no request {0}; it may have expired")]
    NotFound(String),
    #[error("fal has not finished this request yet")]
    NotReady,
    #[error("fal is busy or unavailable (HTTP {status}{}): {message}", error_type.as_deref().map(|kind| format!(", {kind}")).unwrap_or_default())]
    Unavailable {
        status: u16,
        error_type: Option<String>,
        message: String,
        /// Whether the same request may be sent again.
        retryable: bool,
    },
    #[error("fal answered something this app does not understand: {0}")]
    Protocol(String),
    #[error("cannot reach fal: {message}")]
    Network {
        message: String,
        /// True when the request certainly never reached the server, so even a submit may be repeated.
        not_sent: bool,
    },
    #[error("fal storage refused the file (HTTP {status}): {message}")]
    Storage {
        status: u16,
        message: String,
        retryable: bool,
    },
    #[error("the fal key may not do this (it needs the admin scope): {0}")]
    NotPermitted(String),
    #[error(
        "fal's file server does not serve this file (HTTP {status}): it is private, expired or deleted"
    )]
    FileUnavailable { status: u16 },
    #[error("the file is larger than the {limit} bytes expected of it")]
    TooLarge { limit: u64 },
    #[error("cannot read or write {path}: {message}")]
    File { path: String, message: String },
}

impl FalError {
    pub(crate) fn network(error: &reqwest::Error) -> Self {
        let mut message = error.to_string();
        let mut source = std::error::Error::source(error);
        while let Some(inner) = source {
            message = format!("{message}: {inner}");
            source = inner.source();
        }
        Self::Network {
            message,
            not_sent: error.is_connect(),
        }
    }

    /// A transfer's failure; a timeout is named as the stall it is, in `stalled`'s words.
    pub(crate) fn transfer(error: &reqwest::Error, stalled: impl FnOnce() -> String) -> Self {
        if error.is_timeout() {
            Self::Network {
                message: stalled(),
                not_sent: false,
            }
        } else {
            Self::network(error)
        }
    }

    /// Whether retrying the same idempotent call may succeed.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Unavailable { retryable, .. } | Self::Storage { retryable, .. } => *retryable,
            Self::Network { .. } | Self::NotReady => true,
            _ => false,
        }
    }
}
