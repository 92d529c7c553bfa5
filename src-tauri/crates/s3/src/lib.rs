//! Training sets on MinIO or any S3-compatible store: bucket setup, uploads from disk (multipart with
//! parallel parts for large files), presigned GET URLs for fal to download from, removal by prefix,
//! and a connection check whose errors a creator can act on.
//!
//! The SDK is configured only from [`S3Settings`]: it never reads `~/.aws` or `AWS_*` variables,
//! so what the app shows in Settings is exactly what it uses.
//!
//! The `test-support` feature adds `test_server::S3TestServer`, a real S3 server (s3s-fs) that tests
//! in any crate can start.

mod error;
mod parts;
mod settings;
mod store;
#[cfg(feature = "test-support")]
pub mod test_server;

use std::time::Duration;

pub use error::S3Error;
pub use settings::S3Settings;
pub use store::S3Store;

/// Size of each part of a multipart upload, and the size above which a file is uploaded in parts.
///
/// S3 requires at least 5 MiB for every part but the last. 8 MiB is the AWS CLI's default: a failed
/// part costs little to resend on a home uplink, [`PARALLEL_PARTS`] of them in memory stay small
/// (32 MiB), and a typical training set of a few dozen MiB still spreads over several parallel parts.
pub const PART_SIZE: u64 = 8 * 1024 * 1024;

/// How many parts of one multipart upload are read and sent at the same time.
///
/// A few concurrent streams are enough to fill a typical uplink and hide per-request latency; more
/// add memory (one part each) and contention on small machines without making the upload faster.
pub const PARALLEL_PARTS: usize = 4;

/// The longest validity of a presigned URL: SigV4 caps `X-Amz-Expires` at 7 days, and S3 and MinIO
/// refuse URLs that ask for more.
pub const MAX_PRESIGNED_EXPIRY: Duration = Duration::from_secs(7 * 24 * 60 * 60);
