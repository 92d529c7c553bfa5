//! The fake fal over real HTTP on loopback. One test binary for the crate, to link once.

mod fake;
mod inference;
