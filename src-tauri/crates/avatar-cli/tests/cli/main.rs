//! `avatar-cli` as real processes. One test binary for the crate, to link once.

mod cli;
mod secrets;
mod training;

use std::ffi::OsStr;
use std::process::Command;

/// A command with an environment of the test's own: nothing from the developer's shell (no fal
/// key, no settings, no language) and no session keychain, unless the test gives them.
fn isolated(program: impl AsRef<OsStr>) -> Command {
    let mut command = Command::new(program);
    command
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent/bus");
    command
}
