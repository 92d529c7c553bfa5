//! The fake fal over real HTTP on loopback. One test binary for the crate, to link once.

// The tests talk to the fake as any HTTP client would.
#![allow(clippy::disallowed_methods)]

mod fake;
mod inference;
