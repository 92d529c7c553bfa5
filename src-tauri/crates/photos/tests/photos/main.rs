//! The photo checks on the fixture photos. One test binary for the crate, to link once.

mod cases;
mod export;
mod faces;
mod heif;
mod identity;
mod likeness;
