//! Typed command arguments sent as text: ids and presets. Each is parsed once, when the command
//! is called, and a malformed one is refused in the one error shape `{code, message}` (Tauri's
//! own refusal of an argument is a bare sentence).

use std::fmt::Display;
use std::str::FromStr;

use serde::Deserialize;
use studio::{ErrorCode, ErrorReport};
use tauri::Runtime;
use tauri::ipc::{CommandArg, CommandItem, InvokeError};

/// A value the UI sent as text: an `AvatarId`, `PhotoId` or `JobId`, a pack's or image's UUID,
/// or a `Preset`.
pub struct Parsed<T>(pub T);

impl<'de, T, R> CommandArg<'de, R> for Parsed<T>
where
    T: FromStr,
    T::Err: Display,
    R: Runtime,
{
    fn from_command(command: CommandItem<'de, R>) -> Result<Self, InvokeError> {
        let key = command.key;
        let refused = |why: String| ErrorReport {
            code: ErrorCode::InvalidInput,
            message: format!("{key}: {why}"),
        };
        let text = String::deserialize(command).map_err(|error| refused(error.to_string()))?;
        text.parse()
            .map(Parsed)
            .map_err(|error: T::Err| refused(error.to_string()).into())
    }
}
