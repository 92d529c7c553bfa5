//! Benchmark: packing and uploading a training set to a local S3 server (s3s-fs), against a raw
//! aws-sdk-s3 multipart upload of the same bytes in the same run, and the peak memory of the
//! packing and upload.
//!
//! usage: `cargo run -p studio --example bench_upload -- DIR`
//! where DIR holds the photos (tests/bench/upload.sh makes 20 photos of about 20 MB).

mod common;

use std::path::PathBuf;
use std::time::Instant;

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use studio::{DatasetStore, S3DatasetStore};

#[tokio::main]
async fn main() {
    let dir = PathBuf::from(
        std::env::args()
            .nth(1)
            .expect("usage: bench_upload PHOTO_DIR"),
    );
    let paths = common::jpegs_in(&dir);
    let photo_bytes: u64 = paths
        .iter()
        .map(|path| std::fs::metadata(path).expect("photo").len())
        .sum();

    let server = s3::test_server::S3TestServer::start();
    let settings = server.settings("bench");
    let work = tempfile::tempdir().expect("work dir");
    let zip = work.path().join("set.zip");

    let started = Instant::now();
    let packed = studio::pack(&paths, None, &zip).expect("pack");
    let packing = started.elapsed();
    let store = S3DatasetStore(s3::S3Store::new(settings.clone()));
    store
        .upload(&zip, "bench/training/set.zip", "application/zip")
        .await
        .expect("upload");
    let ours = started.elapsed();
    let peak_rss = common::peak_rss_mib();

    let raw = raw_multipart(&settings, &std::fs::read(&zip).expect("zip")).await;

    let mb = packed as f64 / 1e6;
    println!(
        "{} photos, {:.1} MB of photos, zip {mb:.1} MB",
        paths.len(),
        photo_bytes as f64 / 1e6
    );
    println!(
        "pack + upload: {:.2} s (pack {:.2} s) = {:.1} MB/s",
        ours.as_secs_f64(),
        packing.as_secs_f64(),
        mb / ours.as_secs_f64()
    );
    println!(
        "raw aws-sdk-s3 multipart of the same bytes (from memory, {} MiB parts, {} in parallel): {:.2} s = {:.1} MB/s",
        s3::PART_SIZE / (1024 * 1024),
        s3::PARALLEL_PARTS,
        raw.as_secs_f64(),
        mb / raw.as_secs_f64()
    );
    println!(
        "pack + upload throughput = {:.0}% of raw multipart",
        100.0 * raw.as_secs_f64() / ours.as_secs_f64()
    );
    println!("peak memory during pack + upload: {peak_rss} MiB (VmHWM)");
}

/// The same bytes through aws-sdk-s3 directly: parts of the same size, as many at once.
async fn raw_multipart(settings: &s3::S3Settings, bytes: &[u8]) -> std::time::Duration {
    let config = aws_sdk_s3::Config::builder()
        .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
        .endpoint_url(&settings.endpoint)
        .region(aws_sdk_s3::config::Region::new(settings.region.clone()))
        .credentials_provider(aws_sdk_s3::config::Credentials::new(
            &settings.access_key,
            &settings.secret_key,
            None,
            None,
            "bench",
        ))
        .force_path_style(true)
        .build();
    let client = aws_sdk_s3::Client::from_conf(config);
    let key = "bench/raw/set.zip";
    let started = Instant::now();
    let upload = client
        .create_multipart_upload()
        .bucket(&settings.bucket)
        .key(key)
        .send()
        .await
        .expect("create");
    let upload_id = upload.upload_id().expect("upload id").to_string();
    let chunks: Vec<(i32, Vec<u8>)> = bytes
        .chunks(s3::PART_SIZE as usize)
        .enumerate()
        .map(|(index, chunk)| (index as i32 + 1, chunk.to_vec()))
        .collect();
    let mut parts = Vec::new();
    for batch in chunks.chunks(s3::PARALLEL_PARTS) {
        let sends = batch.iter().map(|(number, chunk)| {
            let request = client
                .upload_part()
                .bucket(&settings.bucket)
                .key(key)
                .upload_id(&upload_id)
                .part_number(*number)
                .body(ByteStream::from(chunk.clone()));
            async move {
                let output = request.send().await.expect("part");
                CompletedPart::builder()
                    .part_number(*number)
                    .set_e_tag(output.e_tag().map(str::to_string))
                    .build()
            }
        });
        parts.extend(futures_util::future::join_all(sends).await);
    }
    client
        .complete_multipart_upload()
        .bucket(&settings.bucket)
        .key(key)
        .upload_id(&upload_id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(parts))
                .build(),
        )
        .send()
        .await
        .expect("complete");
    started.elapsed()
}
