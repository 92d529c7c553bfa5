//! One error type for the application, with a closed set of codes the UI and scripts can match on.

use library::LibraryError;
use serde::{Deserialize, Serialize};
use ts_rs::TS;

/// What kind of failure happened; the UI and scripts branch on this, never on the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The request itself is wrong (an empty name, an unknown value).
    InvalidInput,
    /// The named thing does not exist.
    NotFound,
    /// A setting or environment variable has a value that cannot be used.
    InvalidConfig,
    /// The library was written by a newer version of the app.
    LibraryTooNew,
    /// The library folder or database cannot be read or written.
    LibraryUnavailable,
    /// The request conflicts with what is going on (a training already running).
    Conflict,
    /// fal, S3 or the relay refused the key or secret.
    WrongKey,
    /// fal refused the request's content (a validation error); sending it again will not help.
    Rejected,
    /// fal, S3 or the relay cannot be reached or is busy; trying later may work.
    RemoteUnavailable,
    /// Something failed that the creator cannot fix; the message says what.
    Internal,
    /// The work was stopped because the creator asked.
    Cancelled,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    InvalidInput(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    InvalidConfig(String),
    #[error(transparent)]
    Library(#[from] LibraryError),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    WrongKey(String),
    #[error("{0}")]
    Rejected(String),
    #[error("{0}")]
    Remote(String),
    #[error("{0}")]
    Internal(String),
    #[error("{0}")]
    Cancelled(String),
    /// Another process moved the work on, or took it over: this one stops and watches. Matched
    /// by its kind, never by its words; it crosses a boundary as `conflict`.
    #[error("{0}")]
    Fenced(Fence),
}

/// Why a process's work on a job or pack was fenced off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Fence {
    #[error("another process moved this training on")]
    StaleWrite,
    #[error("another process took this training over")]
    TrainingTaken,
    #[error("another process took this sample pack over")]
    PackTaken,
}

impl From<fal::FalError> for Error {
    fn from(error: fal::FalError) -> Self {
        use fal::FalError;
        let message = error.to_string();
        match error {
            FalError::WrongKey { .. } | FalError::NotPermitted(_) => Self::WrongKey(message),
            // The upload host refused the file itself (too large, address expired): sending the
            // same upload again will not help.
            FalError::Storage {
                retryable: false, ..
            } => Self::Rejected(message),
            FalError::Invalid { .. } => Self::Rejected(message),
            FalError::NotFound(_) => Self::NotFound(message),
            FalError::NotReady
            | FalError::Network { .. }
            | FalError::Unavailable { .. }
            | FalError::Storage { .. }
            | FalError::Protocol(_)
            | FalError::TooLarge { .. }
            | FalError::FileUnavailable { .. } => Self::Remote(message),
            FalError::File { .. } => Self::Internal(message),
        }
    }
}

impl Error {
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::InvalidInput(_) => ErrorCode::InvalidInput,
            Self::NotFound(_) => ErrorCode::NotFound,
            Self::InvalidConfig(_) => ErrorCode::InvalidConfig,
            Self::Library(LibraryError::TooNew { .. }) => ErrorCode::LibraryTooNew,
            Self::Library(_) => ErrorCode::LibraryUnavailable,
            Self::Conflict(_) | Self::Fenced(_) => ErrorCode::Conflict,
            Self::WrongKey(_) => ErrorCode::WrongKey,
            Self::Rejected(_) => ErrorCode::Rejected,
            Self::Remote(_) => ErrorCode::RemoteUnavailable,
            Self::Internal(_) => ErrorCode::Internal,
            Self::Cancelled(_) => ErrorCode::Cancelled,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An error as it crosses a boundary (IPC, the CLI's JSON): the code to branch on and a message
/// a creator understands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct ErrorReport {
    pub code: ErrorCode,
    pub message: String,
}

impl ErrorReport {
    pub fn internal(message: impl Into<String>) -> Self {
        Self {
            code: ErrorCode::Internal,
            message: message.into(),
        }
    }
}

impl From<Error> for ErrorReport {
    fn from(error: Error) -> Self {
        Self {
            code: error.code(),
            message: error.to_string(),
        }
    }
}
