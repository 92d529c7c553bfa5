//! How a caller names a record: the app by the id it was given, the CLI by what a creator typed
//! (the id, or a prefix of it that names exactly one). An id is looked up once; typed text is
//! resolved by the operation that takes it.

use crate::{AvatarId, PhotoId};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reference<'a, Id> {
    Id(Id),
    Typed(&'a str),
}

/// An avatar, by id or as typed.
pub type AvatarRef<'a> = Reference<'a, AvatarId>;
/// A photo, by id or as typed.
pub type PhotoRef<'a> = Reference<'a, PhotoId>;

impl From<AvatarId> for AvatarRef<'_> {
    fn from(id: AvatarId) -> Self {
        Self::Id(id)
    }
}

impl From<PhotoId> for PhotoRef<'_> {
    fn from(id: PhotoId) -> Self {
        Self::Id(id)
    }
}

impl<'a, Id> From<&'a str> for Reference<'a, Id> {
    fn from(text: &'a str) -> Self {
        Self::Typed(text)
    }
}

impl<'a, Id> From<&'a String> for Reference<'a, Id> {
    fn from(text: &'a String) -> Self {
        Self::Typed(text)
    }
}

impl<Id: std::fmt::Display> std::fmt::Display for Reference<'_, Id> {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Id(id) => id.fmt(formatter),
            Self::Typed(text) => text.trim().fmt(formatter),
        }
    }
}
