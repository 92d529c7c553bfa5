//! Benchmark: how long a stalled transfer takes to be noticed and sent again, and to end with a
//! reason, with the client's read timeout (`FAL_READ_TIMEOUT_MS`, 30 s by default) against the
//! fake fal: an upload PUT whose server stops reading, and a LoRA download whose body stops.
//!
//! usage: `cargo run --release -p fal --example bench_stalls -- [READ_TIMEOUT_MS]`

use std::time::{Duration, Instant};

use fal::{Endpoints, FalClient, Lifetime, RetryPolicy, UploadFile};
use fal_fake::{FakeFal, Fault, Route};

#[tokio::main]
async fn main() {
    let read_timeout = Duration::from_millis(
        std::env::args()
            .nth(1)
            .map_or(30_000, |millis| millis.parse().expect("milliseconds")),
    );
    let fake = FakeFal::start().await;
    let client = FalClient::new(
        Endpoints {
            queue_url: fake.base_url(),
            rest_url: fake.base_url(),
            platform_url: fake.platform_url(),
        },
        fake.api_key().to_string(),
        RetryPolicy::DEFAULT,
    )
    .with_read_timeout(read_timeout);
    let work = tempfile::tempdir().expect("work dir");
    let set = work.path().join("set.zip");
    // Larger than the socket buffers, so a server that stops reading stalls the sender.
    std::fs::write(&set, vec![7u8; 48 * 1024 * 1024]).expect("set");
    let upload = |path| UploadFile {
        path,
        content_type: "application/zip",
        file_name: "set.zip",
        lifetime: Lifetime(Duration::from_secs(86_400)),
    };
    println!("read timeout {:.1} s", read_timeout.as_secs_f64());

    // One stall, then the PUT goes through.
    fake.push_fault(Fault::StallUpload {
        route: Route::StorageUpload,
        bytes: 1024 * 1024,
    });
    let (retried, ended) = timed(&fake, Route::StorageUpload, client.upload(upload(&set))).await;
    println!("upload: stall to retry {retried:.1} s, stall to success {ended:.1} s");

    // Every try stalls: the client gives up with its reason.
    for _ in 0..=RetryPolicy::DEFAULT.max_retries {
        fake.push_fault(Fault::StallUpload {
            route: Route::StorageUpload,
            bytes: 1024 * 1024,
        });
    }
    let before = fake.request_count(Route::StorageUpload);
    let began = Instant::now();
    let error = client
        .upload(upload(&set))
        .await
        .expect_err("every try stalls");
    println!(
        "upload stalling every time: {} tries, stall to the final reason {:.1} s: {error}",
        fake.request_count(Route::StorageUpload) - before,
        began.elapsed().as_secs_f64()
    );

    // The same for a download: the file is the set just uploaded.
    let url = client.upload(upload(&set)).await.expect("upload");
    let destination = work.path().join("model.partial");
    fake.push_fault(Fault::StallBody {
        route: Route::FileDownload,
        bytes: 1024 * 1024,
    });
    let (retried, ended) = timed(
        &fake,
        Route::FileDownload,
        client.download(&url, &destination, u64::MAX),
    )
    .await;
    println!("download: stall to retry {retried:.1} s, stall to success {ended:.1} s");
    for _ in 0..=RetryPolicy::DEFAULT.max_retries {
        fake.push_fault(Fault::StallBody {
            route: Route::FileDownload,
            bytes: 1024 * 1024,
        });
    }
    let before = fake.request_count(Route::FileDownload);
    let began = Instant::now();
    let error = client
        .download(&url, &destination, u64::MAX)
        .await
        .expect_err("every try stalls");
    println!(
        "download stalling every time: {} tries, stall to the final reason {:.1} s: {error}",
        fake.request_count(Route::FileDownload) - before,
        began.elapsed().as_secs_f64()
    );
}

/// Seconds from the start of a transfer that stalls once to its second request, and to its end.
async fn timed<T, E: std::fmt::Debug>(
    fake: &FakeFal,
    route: Route,
    transfer: impl std::future::Future<Output = Result<T, E>>,
) -> (f64, f64) {
    let before = fake.request_count(route);
    let began = Instant::now();
    let mut retried = None;
    let mut transfer = std::pin::pin!(transfer);
    loop {
        tokio::select! {
            outcome = &mut transfer => {
                outcome.expect("the retry went through");
                let ended = began.elapsed().as_secs_f64();
                return (retried.unwrap_or(ended), ended);
            }
            () = fake.wait_for(route, before + 2), if retried.is_none() => {
                retried = Some(began.elapsed().as_secs_f64());
            }
        }
    }
}
