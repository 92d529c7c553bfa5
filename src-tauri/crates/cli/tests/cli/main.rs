//! `avatar-cli` as real processes. One test binary for the crate, to link once.

mod cli;
mod secrets;
mod training;
