//! Typed ids: an avatar's, a photo's and a training job's id are different types, so one cannot
//! be passed for another. Each is a UUID, stored as text and sent to the UI as a string.

use serde::{Deserialize, Serialize};
use ts_rs::TS;
use uuid::Uuid;

macro_rules! id_type {
    ($(#[$meta:meta])* $name:ident, $noun:literal) => {
        $(#[$meta])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, TS,
        )]
        #[serde(transparent)]
        pub struct $name(#[ts(type = "string")] pub Uuid);

        impl $name {
            /// A new, random id.
            pub fn new() -> Self {
                Self(Uuid::new_v4())
            }

            /// The id from its text form; `None` when the text is not a UUID.
            pub fn parse(text: &str) -> Option<Self> {
                Uuid::parse_str(text.trim()).ok().map(Self)
            }

            /// The 32 hex digits without hyphens.
            pub fn simple(self) -> uuid::fmt::Simple {
                self.0.simple()
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl From<Uuid> for $name {
            fn from(id: Uuid) -> Self {
                Self(id)
            }
        }

        impl std::str::FromStr for $name {
            type Err = String;

            fn from_str(text: &str) -> Result<Self, String> {
                Self::parse(text).ok_or_else(|| format!("{text:?} is not {}", $noun))
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.fmt(formatter)
            }
        }
    };
}

id_type!(
    /// An avatar's id.
    AvatarId,
    "an avatar id"
);
id_type!(
    /// A stored photo's id.
    PhotoId,
    "a photo id"
);
id_type!(
    /// A training job's id.
    JobId,
    "a training job id"
);
