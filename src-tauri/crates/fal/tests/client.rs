//! The real client against the fake fal, which refuses what fal refuses: the privacy headers on
//! every queue call, single and multipart uploads (a part retried alone, an upload resumed after
//! a stop, a stall given up and retried), refusals of the storage host, cancels of forgotten
//! requests, and the platform APIs (request history, prices, payload deletion by scope).

use std::future::Future;
use std::path::Path;
use std::time::{Duration, Instant};

use fal::{
    CancelAnswer, Endpoints, FalClient, FalError, Lifetime, RequestQuery, RetryPolicy, UploadFile,
};
use fal_fake::{FakeFal, Fault, Outcome, Route, Script};
use serde_json::{Value, json};

const TRAINER: &str = "fal-ai/flux-lora-portrait-trainer";

fn client(fake: &FakeFal) -> FalClient {
    FalClient::new(
        Endpoints {
            queue_url: fake.base_url(),
            rest_url: fake.base_url(),
            platform_url: fake.platform_url(),
        },
        fake.api_key().to_string(),
        RetryPolicy {
            max_retries: 3,
            base_delay: Duration::from_millis(10),
            max_delay: Duration::from_millis(50),
        },
    )
}

async fn within<T>(what: &str, future: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(60), future)
        .await
        .unwrap_or_else(|_| panic!("{what} took more than a minute"))
}

/// A file of `length` bytes whose content differs from part to part.
fn file_of(dir: &Path, length: usize) -> std::path::PathBuf {
    let path = dir.join("set.zip");
    let bytes: Vec<u8> = (0..length)
        .map(|index| (index / 7919 % 251) as u8)
        .collect();
    std::fs::write(&path, bytes).expect("write");
    path
}

fn zip_upload(path: &Path) -> UploadFile<'_> {
    UploadFile {
        path,
        content_type: "application/zip",
        file_name: "set.zip",
        lifetime: Lifetime(Duration::from_secs(86_400)),
    }
}

async fn fetched(url: &str) -> Vec<u8> {
    reqwest::get(url)
        .await
        .expect("get")
        .error_for_status()
        .expect("2xx")
        .bytes()
        .await
        .expect("body")
        .to_vec()
}

fn quick() -> Script {
    Script {
        queue_time: Duration::from_millis(100),
        run_time: Duration::from_millis(200),
        outcome: Outcome::Success { lora_bytes: 4096 },
        ..Script::default()
    }
}

/// Uploads an empty zip archive (its end record alone) and returns a trainer input naming it.
async fn training_set(client: &FalClient, dir: &Path) -> Value {
    let path = dir.join("set.zip");
    let mut empty_zip = b"PK\x05\x06".to_vec();
    empty_zip.resize(22, 0);
    std::fs::write(&path, empty_zip).expect("write");
    let url = client.upload(zip_upload(&path)).await.expect("upload");
    json!({"images_data_url": url, "steps": 1000})
}

#[tokio::test]
async fn every_submit_lets_fal_keep_its_result_with_a_start_deadline_and_outputs_for_a_week_at_most()
 {
    let fake = FakeFal::start().await;
    fake.set_script(quick());
    let client = client(&fake);
    let dir = tempfile::tempdir().expect("dir");
    let input = training_set(&client, dir.path()).await;
    let upload = &fake.uploads()[0];
    assert_eq!(
        upload.lifecycle,
        Some(json!({"expiration_duration_seconds": 86_400}))
    );
    assert_eq!(upload.lifecycle_preference, upload.lifecycle);

    let submitted = client.submit(TRAINER, &input, None).await.expect("submit");
    let submission = &fake.submissions()[0];
    assert_eq!(
        submission.store_io, None,
        "fal keeps the result for its storage period, not an hour (fal-protocol.md §8.1)"
    );
    assert_eq!(submission.request_timeout, Some(fal::START_DEADLINE));
    assert_eq!(
        submission.lifecycle_preference,
        Some(json!({"expiration_duration_seconds": 7 * 24 * 3600}))
    );
    let status = client
        .status(&submitted.status_url, true)
        .await
        .expect("status");
    assert!(status.error.is_none());
}

#[tokio::test]
async fn a_set_above_the_threshold_goes_up_in_parts_and_a_failed_part_is_retried_alone() {
    let fake = FakeFal::start().await;
    let client = client(&fake);
    let dir = tempfile::tempdir().expect("dir");
    let length = fal::MULTIPART_THRESHOLD as usize + 5 * 1024 * 1024;
    let path = file_of(dir.path(), length);
    fake.push_fault(Fault::Status {
        route: Route::StoragePart,
        status: 502,
        body: json!({"detail": "bad gateway"}),
        headers: Vec::new(),
    });

    let url = within("the upload", client.upload(zip_upload(&path)))
        .await
        .expect("upload");

    let parts = length.div_ceil(fal::PART_SIZE as usize);
    assert_eq!(
        fake.request_count(Route::StorageInitiate),
        0,
        "no single PUT"
    );
    assert_eq!(fake.request_count(Route::StorageInitiateMultipart), 1);
    assert_eq!(
        fake.request_count(Route::StoragePart),
        parts + 1,
        "every part once, the failed one twice"
    );
    let upload = &fake.uploads()[0];
    assert_eq!(upload.multipart_parts, Some(parts as u32));
    assert_eq!(upload.bytes, length as u64);
    assert!(fetched(&url).await == std::fs::read(&path).expect("read"));
    assert!(
        !path.with_extension("zip.fal-upload.json").exists(),
        "the journal goes with a finished upload"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_multipart_upload_stopped_midway_goes_on_from_its_last_finished_part() {
    let fake = FakeFal::start().await;
    let dir = tempfile::tempdir().expect("dir");
    let length = fal::MULTIPART_THRESHOLD as usize + 1024;
    let path = file_of(dir.path(), length);
    let first = client(&fake);
    let stopped = tokio::spawn({
        let path = path.clone();
        async move { first.upload(zip_upload(&path)).await }
    });
    // Stop the process while its fourth part is on the way.
    within("part 4", fake.wait_for(Route::StoragePart, 4)).await;
    stopped.abort();
    let _ = stopped.await;

    let url = within(
        "the resumed upload",
        client(&fake).upload(zip_upload(&path)),
    )
    .await
    .expect("resumed");
    let parts = length.div_ceil(fal::PART_SIZE as usize);
    assert_eq!(
        fake.request_count(Route::StorageInitiateMultipart),
        1,
        "one upload"
    );
    assert!(
        fake.request_count(Route::StoragePart) <= parts + 1,
        "parts 1–3 were not sent again: {} part requests for {parts} parts",
        fake.request_count(Route::StoragePart)
    );
    assert!(fetched(&url).await == std::fs::read(&path).expect("read"));
}

#[tokio::test]
async fn the_storage_host_refusing_a_file_is_not_blamed_on_the_key_and_not_retried() {
    let fake = FakeFal::start().await;
    fake.set_single_upload_limit(1024 * 1024);
    let client = client(&fake);
    let dir = tempfile::tempdir().expect("dir");
    let path = file_of(dir.path(), 2 * 1024 * 1024);
    let error = client
        .upload(zip_upload(&path))
        .await
        .expect_err("too large for one PUT");
    assert!(
        matches!(
            error,
            FalError::Storage {
                status: 413,
                retryable: false,
                ..
            }
        ),
        "{error:?}"
    );
    assert!(!error.to_string().contains("key"), "{error}");
    assert_eq!(fake.request_count(Route::StorageUpload), 1, "not repeated");
    assert!(fake.uploads().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_that_stalls_is_given_up_after_the_read_timeout_and_sent_again() {
    let fake = FakeFal::start().await;
    let read_timeout = Duration::from_millis(500);
    let client = client(&fake).with_read_timeout(read_timeout);
    let dir = tempfile::tempdir().expect("dir");
    // Large enough to fill the socket buffers once the server stops reading.
    let path = file_of(dir.path(), 32 * 1024 * 1024);
    fake.push_fault(Fault::StallUpload {
        route: Route::StorageUpload,
        bytes: 1024 * 1024,
    });
    let began = Instant::now();
    let url = within("the upload", client.upload(zip_upload(&path)))
        .await
        .expect("the second PUT went through");
    assert!(began.elapsed() >= read_timeout, "{:?}", began.elapsed());
    assert_eq!(fake.request_count(Route::StorageUpload), 2);
    assert_eq!(fetched(&url).await.len(), 32 * 1024 * 1024);
}

#[tokio::test]
async fn a_cancel_of_a_request_fal_forgot_answers_not_found() {
    let fake = FakeFal::start().await;
    fake.set_script(Script {
        queue_time: Duration::from_secs(60),
        ..quick()
    });
    let client = client(&fake);
    let dir = tempfile::tempdir().expect("dir");
    let input = training_set(&client, dir.path()).await;
    let submitted = client.submit(TRAINER, &input, None).await.expect("submit");
    fake.forget_request(&submitted.request_id);
    assert_eq!(
        client.cancel(&submitted.cancel_url).await.expect("answer"),
        CancelAnswer::NotFound
    );
    assert!(matches!(
        client.status(&submitted.status_url, false).await,
        Err(FalError::NotFound(_))
    ));
}

#[tokio::test]
async fn a_request_known_only_by_its_id_is_followed_on_owner_and_app() {
    let fake = FakeFal::start().await;
    fake.set_script(quick());
    let client = client(&fake);
    let dir = tempfile::tempdir().expect("dir");
    let input = training_set(&client, dir.path()).await;
    let submitted = client
        .submit("fal-ai/flux-lora-portrait-trainer/v2", &input, None)
        .await
        .expect("submit");
    let adopted = client.adopt(
        "fal-ai/flux-lora-portrait-trainer/v2",
        &submitted.request_id,
    );
    assert_eq!(adopted.status_url, submitted.status_url);
    assert_eq!(adopted.cancel_url, submitted.cancel_url);
    client
        .status(&adopted.status_url, false)
        .await
        .expect("status");
}

#[tokio::test]
async fn the_request_history_shows_a_finished_submit_with_its_payload() {
    let fake = FakeFal::start().await;
    fake.set_script(quick());
    let client = client(&fake);
    let dir = tempfile::tempdir().expect("dir");
    let input = training_set(&client, dir.path()).await;
    let before = chrono::Utc::now() - chrono::Duration::seconds(5);
    let submitted = client.submit(TRAINER, &input, None).await.expect("submit");
    fake.wait_for_completions(1).await;
    let records = client
        .requests(&RequestQuery {
            endpoint_id: TRAINER,
            start: Some(before),
            with_payloads: true,
            ..RequestQuery::default()
        })
        .await
        .expect("history");
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0].request_id, submitted.request_id);
    assert!(records[0].sent_at >= before);
    assert_eq!(
        records[0].json_input.as_ref(),
        Some(&input),
        "fal kept the input: a lost submit is told apart by it"
    );
    let other = client
        .requests(&RequestQuery {
            endpoint_id: "fal-ai/flux-lora-fast-training",
            ..RequestQuery::default()
        })
        .await
        .expect("history");
    assert!(other.is_empty());
}

#[tokio::test]
async fn prices_billing_and_payload_deletion_follow_the_keys_scope() {
    let fake = FakeFal::start().await;
    fake.set_script(quick());
    fake.set_price(TRAINER, 0.0024, "steps");
    let client = client(&fake);
    let prices = client.prices(&[TRAINER]).await.expect("prices");
    assert_eq!(prices.len(), 1);
    assert_eq!(
        (prices[0].unit_price, prices[0].unit.as_str()),
        (0.0024, "steps")
    );
    assert!(matches!(
        client.prices(&["fal-ai/unknown"]).await,
        Err(FalError::NotFound(_))
    ));

    let dir = tempfile::tempdir().expect("dir");
    let input = training_set(&client, dir.path()).await;
    let submitted = client.submit(TRAINER, &input, None).await.expect("submit");
    // Polled as fal's clients poll, with a deadline.
    within("the training", async {
        while client
            .status(&submitted.status_url, false)
            .await
            .expect("status")
            .state
            != fal::QueueState::Completed
        {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    let result = client
        .result(&submitted.response_url)
        .await
        .expect("result");
    let lora = result["diffusers_lora_file"]["url"]
        .as_str()
        .expect("lora")
        .to_string();

    let refused = client
        .delete_payloads(&submitted.request_id, "job-1")
        .await
        .expect_err("an ordinary key may not delete");
    assert!(matches!(refused, FalError::NotPermitted(_)), "{refused:?}");
    assert!(matches!(
        client.billing_events(&submitted.request_id).await,
        Err(FalError::NotPermitted(_))
    ));

    fake.set_admin_key(true);
    let events = client
        .billing_events(&submitted.request_id)
        .await
        .expect("billing");
    assert_eq!(events.len(), 1);
    assert!((events[0].cost_usd() - 2.4).abs() < 1e-6, "{events:?}");
    let deleted = client
        .delete_payloads(&submitted.request_id, "job-1")
        .await
        .expect("deleted");
    assert!(
        deleted
            .cdn_delete_results
            .iter()
            .any(|file| file.link == lora && file.exception.is_none()),
        "{deleted:?}"
    );
    let gone = reqwest::get(&lora).await.expect("get").status();
    assert_eq!(gone.as_u16(), 404);
    // A repeat after a lost answer is harmless.
    assert_eq!(
        client
            .delete_payloads(&submitted.request_id, "job-1")
            .await
            .expect("replayed"),
        deleted
    );
    assert_eq!(fake.deleted_payloads(), vec![submitted.request_id.clone()]);
}

/// A server on loopback that answers every request with `response` (a whole HTTP/1.1 answer)
/// and counts the requests; returns its address and the count.
async fn answering(response: String) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    let hits = std::sync::Arc::new(AtomicUsize::new(0));
    let counted = hits.clone();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            counted.fetch_add(1, Ordering::SeqCst);
            let response = response.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") && socket.read(&mut byte).await.unwrap_or(0) == 1
                {
                    head.push(byte[0]);
                }
                let _ = socket.write_all(response.as_bytes()).await;
            });
        }
    });
    (url, hits)
}

#[tokio::test]
async fn files_are_fetched_only_from_fals_hosts_and_never_through_a_redirect_off_them() {
    use std::sync::atomic::Ordering;
    let (stray, stray_hits) =
        answering("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello".into())
            .await;
    let (redirector, redirects) = answering(format!(
        "HTTP/1.1 302 Found\r\nLocation: {stray}/model\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    ))
    .await;
    let fake = FakeFal::start().await;
    // The redirector stands in for one of fal's configured hosts.
    let client = FalClient::new(
        Endpoints {
            queue_url: fake.base_url(),
            rest_url: redirector.clone(),
            platform_url: fake.platform_url(),
        },
        fake.api_key().to_string(),
        RetryPolicy {
            max_retries: 0,
            base_delay: Duration::from_millis(10),
            max_delay: Duration::from_millis(10),
        },
    );
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("file");
    for url in [
        "https://example.com/model.safetensors".to_string(),
        format!("{stray}/model"),
        "http://v3.fal.media/files/model.safetensors".to_string(),
    ] {
        let refused = client.download(&url, &path, 1024).await;
        assert!(
            matches!(refused, Err(FalError::Protocol(_))),
            "{url}: {refused:?}"
        );
    }
    let redirected = client
        .download(&format!("{redirector}/files/model"), &path, 1024)
        .await;
    assert!(redirected.is_err(), "{redirected:?}");
    assert_eq!(
        redirects.load(Ordering::SeqCst),
        1,
        "the allowed host was asked"
    );
    assert_eq!(
        stray_hits.load(Ordering::SeqCst),
        0,
        "0 bytes fetched off fal's hosts"
    );
    assert!(client.is_fal_file("https://v3.fal.media/files/a/b.png"));
    assert!(client.is_fal_file("https://fal.media/files/a/b.png"));
    assert!(!client.is_fal_file("https://evilfal.media/files/a/b.png"));
    assert!(!client.is_fal_file("https://v3.fal.media.example.com/x"));
    assert!(client.is_fal_file(
        "https://storage.googleapis.com/fal-flux-lora/abc_pytorch_lora_weights.safetensors"
    ));
    assert!(!client.is_fal_file("https://storage.googleapis.com/someone-else/x.safetensors"));
}
