//! The application core driven as the app and the CLI drive it: real SQLite, real files, the fake fal
//! and a real S3 server on loopback. One test binary for the crate, to link once.

mod common;
mod generation;
mod import;
mod money;
mod sameness;
mod settings;
mod training;
mod watch;
