//! Benchmark: a training set of more than 150 MB packed and uploaded to the fake fal's storage by
//! multipart (the app's path: 10 MiB parts, one at a time, as fal-js), against a raw single
//! streamed PUT of the same bytes in the same run, with the peak memory of each.
//!
//! usage: `cargo run --release -p studio --example bench_fal_upload -- DIR`
//! where DIR holds the photos (tests/bench/fal_upload.sh makes 20 photos of 12 MP).

// The benchmark's own client, the baseline the app is compared with.
#![allow(clippy::disallowed_methods)]

mod common;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use fal_fake::FakeFal;
use studio::{DatasetStore, FalDatasetStore};

#[tokio::main]
async fn main() {
    let dir = PathBuf::from(
        std::env::args()
            .nth(1)
            .expect("usage: bench_fal_upload PHOTO_DIR"),
    );
    let paths = common::jpegs_in(&dir);
    let work = tempfile::tempdir().expect("work dir");
    let zip = work.path().join("set.zip");
    let packed = studio::pack(&paths, None, &zip).expect("pack");
    let mb = packed as f64 / 1e6;
    println!("{} photos packed into {mb:.1} MB", paths.len());

    let fake = FakeFal::start().await;
    let client = fal::FalClient::new(
        fal::Endpoints {
            queue_url: fake.base_url(),
            rest_url: fake.base_url(),
            platform_url: fake.platform_url(),
        },
        fake.api_key().to_string(),
        fal::RetryPolicy::DEFAULT,
    );

    reset_peak_rss();
    let started = Instant::now();
    let url = FalDatasetStore(client)
        .upload(&zip, "bench/set.zip", "application/zip")
        .await
        .expect("multipart upload");
    let multipart = started.elapsed();
    let multipart_peak = common::peak_rss_mib();
    let upload = &fake.uploads()[0];
    assert_eq!(
        (upload.bytes, upload.file_url.as_str()),
        (packed, url.as_str())
    );
    println!(
        "multipart ({} parts of 10 MiB): {:.2} s = {:.1} MB/s, peak memory {multipart_peak} MiB (VmHWM)",
        upload.multipart_parts.unwrap_or(0),
        multipart.as_secs_f64(),
        mb / multipart.as_secs_f64()
    );

    // The same bytes in one streamed PUT, which fal's storage would refuse above 100 MiB: the
    // fake's limit is lifted for the comparison.
    fake.set_single_upload_limit(u64::MAX);
    reset_peak_rss();
    let single = raw_single_put(&fake, &zip).await;
    let single_peak = common::peak_rss_mib();
    println!(
        "raw single streamed PUT of the same bytes: {:.2} s = {:.1} MB/s, peak memory {single_peak} MiB (VmHWM)",
        single.as_secs_f64(),
        mb / single.as_secs_f64()
    );
    println!(
        "multipart throughput = {:.0}% of the single PUT",
        100.0 * single.as_secs_f64() / multipart.as_secs_f64()
    );
}

async fn raw_single_put(fake: &FakeFal, zip: &std::path::Path) -> Duration {
    let http = reqwest::Client::new();
    let initiated: serde_json::Value = http
        .post(format!(
            "{}/storage/upload/initiate?storage_type=fal-cdn-v3",
            fake.base_url()
        ))
        .header("Authorization", format!("Key {}", fake.api_key()))
        .json(&serde_json::json!({"content_type": "application/zip", "file_name": "raw.zip"}))
        .send()
        .await
        .expect("initiate")
        .json()
        .await
        .expect("initiated");
    let length = std::fs::metadata(zip).expect("zip").len();
    let started = Instant::now();
    let file = tokio::fs::File::open(zip).await.expect("zip");
    http.put(initiated["upload_url"].as_str().expect("upload url"))
        .header("Content-Type", "application/zip")
        .header("Content-Length", length)
        .body(reqwest::Body::from(file))
        .send()
        .await
        .expect("put")
        .error_for_status()
        .expect("2xx");
    started.elapsed()
}

/// Resets the process's peak resident size (Linux `clear_refs` 5), so each phase reports its own.
fn reset_peak_rss() {
    std::fs::write("/proc/self/clear_refs", "5").expect("reset the peak RSS");
}
