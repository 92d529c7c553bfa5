//! The fake driven over HTTP with plain reqwest, the way the real client talks to fal.

use std::future::Future;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use chrono::{DateTime, Utc};
use fal_fake::{
    Acl, DEFAULT_SINGLE_UPLOAD_LIMIT, FakeFal, Fault, LORA_FILE_NAME, Outcome, Refusal, Route,
    Script, Submission, WEBHOOK_ATTEMPTS, WEBHOOK_USER_ID,
};
use md5::{Digest, Md5};
use serde_json::{Value, json};

const TRAINER: &str = "fal-ai/flux-lora-portrait-trainer";
/// The smallest valid zip: an empty archive's end-of-central-directory record.
const EMPTY_ZIP: &[u8] = b"PK\x05\x06\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0";
const PATIENCE: Duration = Duration::from_secs(10);

fn http() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

/// Serves `app` on a loopback port of its own and returns its origin.
async fn serve(app: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{address}")
}

async fn within<T>(what: &str, future: impl Future<Output = T>) -> T {
    tokio::time::timeout(PATIENCE, future)
        .await
        .unwrap_or_else(|_| panic!("{what} took longer than {PATIENCE:?}"))
}

/// Uploads `bytes` through the fake's storage and returns the public file URL.
async fn upload(fake: &FakeFal, bytes: Vec<u8>, file_name: &str) -> String {
    let http = http();
    let initiated: Value = http
        .post(format!("{}/storage/upload/initiate", fake.base_url()))
        .query(&[("storage_type", "fal-cdn-v3")])
        .header("Authorization", format!("Key {}", fake.api_key()))
        .json(&json!({ "content_type": "application/zip", "file_name": file_name }))
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap()
        .json()
        .await
        .unwrap();
    http.put(initiated["upload_url"].as_str().unwrap())
        .header("Content-Type", "application/zip")
        .body(bytes)
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap();
    initiated["file_url"].as_str().unwrap().to_owned()
}

async fn training_input(fake: &FakeFal) -> Value {
    let dataset = upload(fake, EMPTY_ZIP.to_vec(), "train.zip").await;
    json!({ "images_data_url": dataset, "trigger_phrase": "ohwx person", "steps": 1000 })
}

async fn submit_to(fake: &FakeFal, path: &str, input: &Value) -> reqwest::Response {
    http()
        .post(format!("{}/{path}", fake.base_url()))
        .header("Authorization", format!("Key {}", fake.api_key()))
        .json(input)
        .send()
        .await
        .unwrap()
}

/// Submits to the trainer and returns the submit answer.
async fn submit(fake: &FakeFal, input: &Value) -> Value {
    let response = submit_to(fake, TRAINER, input).await;
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

async fn get(fake: &FakeFal, url: &str) -> (StatusCode, HeaderMap, Value) {
    let response = http()
        .get(url)
        .header("Authorization", format!("Key {}", fake.api_key()))
        .send()
        .await
        .unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.json().await.unwrap_or(Value::Null);
    (status, headers, body)
}

async fn cancel(fake: &FakeFal, submitted: &Value) -> (StatusCode, Value) {
    let response = http()
        .put(submitted["cancel_url"].as_str().unwrap())
        .header("Authorization", format!("Key {}", fake.api_key()))
        .send()
        .await
        .unwrap();
    (response.status(), response.json().await.unwrap())
}

/// Polls the status until `done` accepts it, returning every answer seen.
async fn poll_until(
    fake: &FakeFal,
    submitted: &Value,
    logs: &str,
    done: impl Fn(&Value) -> bool,
) -> Vec<(StatusCode, Value)> {
    let url = format!("{}?logs={logs}", submitted["status_url"].as_str().unwrap());
    within("polling", async {
        let mut seen = Vec::new();
        loop {
            let (status, _, body) = get(fake, &url).await;
            let finished = done(&body);
            seen.push((status, body));
            if finished {
                return seen;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
}

async fn completed_status(fake: &FakeFal, submitted: &Value) -> Value {
    let seen = poll_until(fake, submitted, "0", |body| body["status"] == "COMPLETED").await;
    seen.last().unwrap().1.clone()
}

fn quick_script() -> Script {
    Script {
        queue_time: Duration::from_millis(20),
        run_time: Duration::from_millis(60),
        ..Script::default()
    }
}

#[tokio::test]
async fn a_job_queues_runs_and_yields_a_valid_lora() {
    let fake = FakeFal::start().await;
    let lora_bytes = 200_003;
    fake.set_script(Script {
        outcome: Outcome::Success { lora_bytes },
        ..Script::default()
    });
    let input = training_input(&fake).await;
    let submitted = submit(&fake, &input).await;

    let request_id = submitted["request_id"].as_str().unwrap();
    assert_eq!(submitted["status"], "IN_QUEUE");
    assert_eq!(submitted["gateway_request_id"], request_id);
    let request_url = format!("{}/{TRAINER}/requests/{request_id}", fake.base_url());
    assert_eq!(submitted["response_url"], request_url.as_str());
    assert_eq!(submitted["status_url"], format!("{request_url}/status"));
    assert_eq!(submitted["cancel_url"], format!("{request_url}/cancel"));
    assert!(submitted["queue_position"].as_u64().unwrap() > 0);

    let seen = poll_until(&fake, &submitted, "1", |body| body["status"] != "IN_QUEUE").await;
    let positions: Vec<u64> = seen
        .iter()
        .filter(|(_, body)| body["status"] == "IN_QUEUE")
        .map(|(status, body)| {
            assert_eq!(*status, StatusCode::ACCEPTED, "queued answers 202");
            body["queue_position"].as_u64().unwrap()
        })
        .collect();
    assert!(
        positions.windows(2).all(|pair| pair[0] >= pair[1]),
        "the queue position only counts down: {positions:?}"
    );

    let running = poll_until(&fake, &submitted, "1", |body| {
        body["logs"].as_array().is_some_and(|logs| {
            logs.iter().any(|log| {
                log["message"]
                    .as_str()
                    .unwrap()
                    .starts_with("Training step")
            })
        })
    })
    .await;
    let (status, body) = running.last().unwrap();
    assert_eq!(*status, StatusCode::ACCEPTED, "running answers 202");
    assert_eq!(body["status"], "IN_PROGRESS");
    let log = &body["logs"][0];
    assert!(log["timestamp"].is_string() && log["level"].is_string());

    let (_, _, without_logs) = get(&fake, submitted["status_url"].as_str().unwrap()).await;
    assert_eq!(without_logs["status"], "IN_PROGRESS");
    assert_eq!(without_logs["logs"], Value::Null, "logs only when asked");
    let (_, _, logs_false) = get(
        &fake,
        &format!("{}?logs=false", submitted["status_url"].as_str().unwrap()),
    )
    .await;
    assert_eq!(logs_false["logs"], Value::Null);

    let completed = poll_until(&fake, &submitted, "true", |body| {
        body["status"] == "COMPLETED"
    })
    .await;
    let (status, body) = completed.last().unwrap();
    assert_eq!(*status, StatusCode::OK, "completed answers 200");
    assert!(body["metrics"]["inference_time"].as_f64().unwrap() > 0.0);
    assert!(body.get("error").is_none());

    let (status, headers, output) = get(&fake, &request_url).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["x-fal-request-id"], request_id);
    let lora = &output["diffusers_lora_file"];
    assert_eq!(lora["file_name"], LORA_FILE_NAME);
    assert_eq!(lora["file_size"], lora_bytes);
    assert!(output["config_file"]["url"].is_string());

    // The file URLs are public, like fal's CDN: no key.
    let file = http()
        .get(lora["url"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(file.len() as u64, lora_bytes);
    let header_len = u64::from_le_bytes(file[..8].try_into().unwrap()) as usize;
    let header: Value = serde_json::from_slice(&file[8..8 + header_len]).unwrap();
    let data_end = header["lora.weight"]["data_offsets"][1].as_u64().unwrap();
    assert_eq!(8 + header_len as u64 + data_end, lora_bytes);

    let submissions = fake.submissions();
    assert_eq!(submissions.len(), 1);
    assert_eq!(submissions[0].endpoint_id, TRAINER);
    assert_eq!(submissions[0].input, input);
    assert_eq!(submissions[0].request_id, request_id);
}

#[tokio::test]
async fn queue_urls_drop_the_endpoint_sub_path() {
    let fake = FakeFal::start().await;
    let input = training_input(&fake).await;
    let response = submit_to(&fake, "fal-ai/flux-pro/v1.1-ultra-finetuned", &input).await;
    let submitted: Value = response.json().await.unwrap();
    let request_id = submitted["request_id"].as_str().unwrap();
    assert_eq!(
        submitted["status_url"],
        format!(
            "{}/fal-ai/flux-pro/requests/{request_id}/status",
            fake.base_url()
        )
    );
    let with_sub_path = format!(
        "{}/fal-ai/flux-pro/v1.1-ultra-finetuned/requests/{request_id}/status",
        fake.base_url()
    );
    let (status, _, body) = get(&fake, &with_sub_path).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body, json!({ "detail": "Not Found" }));
    let other_app = format!(
        "{}/fal-ai/other/requests/{request_id}/status",
        fake.base_url()
    );
    assert_eq!(get(&fake, &other_app).await.0, StatusCode::NOT_FOUND);
    assert_eq!(
        fake.submissions()[0].endpoint_id,
        "fal-ai/flux-pro/v1.1-ultra-finetuned"
    );
}

#[tokio::test]
async fn a_result_fetched_early_is_still_in_progress() {
    let fake = FakeFal::start().await;
    let submitted = submit(&fake, &training_input(&fake).await).await;
    let (status, _, body) = get(&fake, submitted["response_url"].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["detail"], "Request is still in progress");
    assert_eq!(body["request_id"], submitted["request_id"]);
}

#[tokio::test]
async fn a_cancelled_queued_job_completes_as_client_cancelled() {
    let fake = FakeFal::start().await;
    let submitted = submit(&fake, &training_input(&fake).await).await;
    let (status, body) = cancel(&fake, &submitted).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(body, json!({ "status": "CANCELLATION_REQUESTED" }));
    assert_eq!(
        fake.cancel_requests(),
        vec![submitted["request_id"].as_str().unwrap()]
    );

    let completed = completed_status(&fake, &submitted).await;
    assert_eq!(completed["error_type"], "client_cancelled");
    assert_eq!(completed["metrics"], json!({}), "it never ran");
    let (status, headers, body) = get(&fake, submitted["response_url"].as_str().unwrap()).await;
    assert_eq!(status.as_u16(), 499);
    assert_eq!(headers["x-fal-error-type"], "client_cancelled");
    assert_eq!(body["error_type"], "client_cancelled");

    let (status, body) = cancel(&fake, &submitted).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body, json!({ "status": "ALREADY_COMPLETED" }));
}

#[tokio::test]
async fn a_running_job_stops_on_cancel_only_when_its_script_says_so() {
    for honour in [true, false] {
        let fake = FakeFal::start().await;
        fake.set_script(Script {
            queue_time: Duration::ZERO,
            run_time: Duration::from_secs(1),
            honour_cancel_while_running: honour,
            ..Script::default()
        });
        let submitted = submit(&fake, &training_input(&fake).await).await;
        poll_until(&fake, &submitted, "0", |body| {
            body["status"] == "IN_PROGRESS"
        })
        .await;
        assert_eq!(cancel(&fake, &submitted).await.0, StatusCode::ACCEPTED);

        let completed = completed_status(&fake, &submitted).await;
        if honour {
            assert_eq!(completed["error_type"], "client_cancelled");
        } else {
            assert!(completed.get("error_type").is_none(), "the trainer ran on");
        }
    }
}

#[tokio::test]
async fn a_completed_job_cannot_be_cancelled_and_unknown_ids_are_not_found() {
    let fake = FakeFal::start().await;
    fake.set_script(quick_script());
    let submitted = submit(&fake, &training_input(&fake).await).await;
    completed_status(&fake, &submitted).await;
    assert_eq!(cancel(&fake, &submitted).await.0, StatusCode::BAD_REQUEST);
    assert!(fake.cancel_requests().is_empty());

    let unknown = format!("{}/{TRAINER}/requests/{}", fake.base_url(), "0000-unknown");
    for url in [format!("{unknown}/status"), unknown.clone()] {
        let (status, _, body) = get(&fake, &url).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(body["detail"], "Request not found");
    }
    let unknown_job = json!({ "cancel_url": format!("{unknown}/cancel") });
    let (status, body) = cancel(&fake, &unknown_job).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body, json!({ "status": "NOT_FOUND" }));

    let (status, _, body) = get(&fake, &format!("{}/no/such/route/here", fake.base_url())).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body, json!({ "detail": "Not Found" }));
}

#[tokio::test]
async fn requests_without_the_right_key_are_unauthorised() {
    let fake = FakeFal::start().await;
    let url = format!("{}/{TRAINER}", fake.base_url());
    for authorization in [None, Some("Key wrong-key"), Some("Bearer fake-key")] {
        let mut request = http().post(&url).json(&json!({ "images_data_url": "x" }));
        if let Some(authorization) = authorization {
            request = request.header("Authorization", authorization);
        }
        let response = request.send().await.unwrap();
        assert_eq!(
            response.status(),
            StatusCode::UNAUTHORIZED,
            "{authorization:?}"
        );
        let body: Value = response.json().await.unwrap();
        assert!(body["detail"].is_string());
    }
    let initiate = http()
        .post(format!("{}/storage/upload/initiate", fake.base_url()))
        .json(&json!({ "content_type": "application/zip", "file_name": "a.zip" }))
        .send()
        .await
        .unwrap();
    assert_eq!(initiate.status(), StatusCode::UNAUTHORIZED);
    assert!(fake.submissions().is_empty());
}

#[tokio::test]
async fn bad_input_fails_the_job_with_a_validation_error() {
    let fake = FakeFal::start().await;
    fake.set_script(quick_script());
    let cases = [
        (json!({ "steps": 1000 }), "value_error.missing"),
        (json!({ "images_data_url": 42 }), "type_error.str"),
    ];
    for (input, error_kind) in cases {
        // The queue accepts the submit; the app rejects the input when the job runs.
        let submitted = submit(&fake, &input).await;
        let completed = completed_status(&fake, &submitted).await;
        assert!(
            completed["error"]
                .as_str()
                .unwrap()
                .contains("images_data_url")
        );

        let (status, headers, body) = get(&fake, submitted["response_url"].as_str().unwrap()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(
            headers["x-fal-request-id"],
            submitted["request_id"].as_str().unwrap()
        );
        let item = &body["detail"][0];
        assert_eq!(item["loc"], json!(["body", "images_data_url"]));
        assert_eq!(item["type"], error_kind);
        assert!(item["msg"].is_string());
    }
}

#[tokio::test]
async fn a_failure_outcome_shows_on_the_status_and_the_result() {
    let fake = FakeFal::start().await;
    fake.set_script(Script {
        outcome: Outcome::Failure {
            status: 500,
            error: "Training diverged".into(),
            error_type: "runner_server_error".into(),
            detail: json!("CUDA out of memory"),
        },
        ..quick_script()
    });
    let submitted = submit(&fake, &training_input(&fake).await).await;
    let completed = completed_status(&fake, &submitted).await;
    assert_eq!(completed["error"], "Training diverged");
    assert_eq!(completed["error_type"], "runner_server_error");
    let (status, _, body) = get(&fake, submitted["response_url"].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(body, json!({ "detail": "CUDA out of memory" }));
}

#[tokio::test]
async fn a_dataset_the_runner_cannot_fetch_fails_the_job() {
    let fake = FakeFal::start().await;
    fake.set_script(quick_script());
    let not_a_zip = upload(&fake, b"just text".to_vec(), "train.zip").await;
    let missing = format!("{}/files/nothing-here/train.zip", fake.base_url());
    for (url, reason) in [(not_a_zip, "not a zip"), (missing, "HTTP 404")] {
        let submitted = submit(&fake, &json!({ "images_data_url": url })).await;
        let completed = completed_status(&fake, &submitted).await;
        assert_eq!(completed["error_type"], "file_download_error");
        assert!(
            completed["error"].as_str().unwrap().contains(reason),
            "{}",
            completed["error"]
        );
        let (status, _, _) = get(&fake, submitted["response_url"].as_str().unwrap()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    }

    // A body shorter than its Content-Length fails the download too.
    let dataset = upload(&fake, EMPTY_ZIP.to_vec(), "train.zip").await;
    fake.push_fault(Fault::TruncateBody {
        route: Route::FileDownload,
        bytes: 4,
    });
    let submitted = submit(&fake, &json!({ "images_data_url": dataset })).await;
    let completed = completed_status(&fake, &submitted).await;
    assert_eq!(completed["error_type"], "file_download_error");
    assert!(
        completed["error"].as_str().unwrap().contains("broke off"),
        "{}",
        completed["error"]
    );
}

#[tokio::test]
async fn a_status_fault_answers_once_then_the_route_recovers() {
    let fake = FakeFal::start().await;
    let input = training_input(&fake).await;
    fake.push_fault(Fault::Status {
        route: Route::Submit,
        status: 429,
        body: json!({ "detail": "Too many requests", "error_type": "rate_limited" }),
        headers: vec![("X-Fal-Error-Type".into(), "rate_limited".into())],
    });
    let refused = submit_to(&fake, TRAINER, &input).await;
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(refused.headers()["x-fal-error-type"], "rate_limited");
    assert!(
        fake.submissions().is_empty(),
        "a refused submit creates no job"
    );

    assert_eq!(
        submit_to(&fake, TRAINER, &input).await.status(),
        StatusCode::OK
    );
    assert_eq!(fake.request_count(Route::Submit), 2);
}

#[tokio::test]
async fn a_dropped_connection_gets_no_answer_and_creates_no_job() {
    let fake = FakeFal::start().await;
    let input = training_input(&fake).await;
    fake.push_fault(Fault::DropConnection {
        route: Route::Submit,
    });
    let error = http()
        .post(format!("{}/{TRAINER}", fake.base_url()))
        .header("Authorization", format!("Key {}", fake.api_key()))
        .json(&input)
        .send()
        .await
        .expect_err("the connection closes without an answer");
    assert!(!error.is_status(), "{error}");
    assert!(fake.submissions().is_empty());
    assert_eq!(
        submit_to(&fake, TRAINER, &input).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn wait_for_resolves_while_a_delayed_answer_is_still_held() {
    let fake = FakeFal::start().await;
    let input = training_input(&fake).await;
    fake.push_fault(Fault::Delay {
        route: Route::Submit,
        delay: Duration::from_secs(3),
    });
    let base_url = fake.base_url();
    let held = tokio::spawn(async move {
        http()
            .post(format!("{base_url}/{TRAINER}"))
            .header("Authorization", "Key fake-key")
            .json(&input)
            .timeout(Duration::from_millis(500))
            .send()
            .await
    });
    within("the submit to arrive", fake.wait_for(Route::Submit, 1)).await;
    let outcome = held.await.unwrap();
    assert!(
        outcome.is_err_and(|error| error.is_timeout()),
        "the answer is held past the client's timeout"
    );
    assert_eq!(
        fake.submissions().len(),
        1,
        "a delayed submit still created its job"
    );
}

#[tokio::test]
async fn an_expired_result_and_its_files_are_gone() {
    let fake = FakeFal::start().await;
    fake.set_script(quick_script());
    let submitted = submit(&fake, &training_input(&fake).await).await;
    completed_status(&fake, &submitted).await;
    let (_, _, output) = get(&fake, submitted["response_url"].as_str().unwrap()).await;

    fake.push_fault(Fault::ResultExpired);
    let (status, _, body) = get(&fake, submitted["response_url"].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body, json!({ "detail": "Request not found" }));
    let file = http()
        .get(output["diffusers_lora_file"]["url"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(file.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_job_past_its_request_timeout_in_the_queue_fails_with_504() {
    let fake = FakeFal::start().await;
    fake.set_script(Script {
        queue_time: Duration::from_secs(5),
        ..Script::default()
    });
    let submitted: Value = http()
        .post(format!("{}/{TRAINER}", fake.base_url()))
        .header("Authorization", format!("Key {}", fake.api_key()))
        .header("X-Fal-Request-Timeout", "1.2")
        .header("X-Fal-Queue-Priority", "low")
        .json(&training_input(&fake).await)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let submission = &fake.submissions()[0];
    assert_eq!(submission.priority.as_deref(), Some("low"));
    assert_eq!(
        submission.request_timeout,
        Some(Duration::from_millis(1200))
    );

    let completed = completed_status(&fake, &submitted).await;
    assert_eq!(completed["error_type"], "request_timeout");
    let (status, headers, _) = get(&fake, submitted["response_url"].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::GATEWAY_TIMEOUT);
    assert_eq!(headers["x-fal-request-timeout-type"], "user");
}

#[tokio::test]
async fn the_status_stream_sends_events_and_ends_after_completed() {
    let fake = FakeFal::start().await;
    let submitted = submit(&fake, &training_input(&fake).await).await;
    // Without logs the status stays the same while the job runs, and pings fill the silence.
    let stream_url = format!(
        "{}/stream?logs=0",
        submitted["status_url"].as_str().unwrap()
    );
    let response = http()
        .get(stream_url)
        .header("Authorization", format!("Key {}", fake.api_key()))
        .header("Accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    // The body ends by itself once the job has completed.
    let text = within("the stream to end", response.text()).await.unwrap();

    let events: Vec<Value> = text
        .split("\n\n")
        .filter_map(|event| event.strip_prefix("data: "))
        .map(|data| serde_json::from_str(data).unwrap())
        .collect();
    let states: Vec<&str> = events
        .iter()
        .map(|event| event["status"].as_str().unwrap())
        .collect();
    assert_eq!(states.first(), Some(&"IN_QUEUE"));
    assert!(states.contains(&"IN_PROGRESS"));
    assert_eq!(states.last(), Some(&"COMPLETED"));
    assert!(text.contains(": ping\n\n"));
    assert!(
        events
            .iter()
            .all(|event| event["request_id"] == submitted["request_id"])
    );
}

#[tokio::test]
async fn uploads_round_trip_through_storage() {
    let fake = FakeFal::start().await;
    let bytes: Vec<u8> = (0..3_000_000u32).map(|index| (index % 251) as u8).collect();
    let file_url = upload(&fake, bytes.clone(), "my photos.zip").await;
    assert!(file_url.ends_with("/my_photos.zip"), "{file_url}");

    let response = http().get(&file_url).send().await.unwrap();
    assert_eq!(response.headers()["content-type"], "application/zip");
    assert_eq!(response.bytes().await.unwrap(), bytes);

    let uploads = fake.uploads();
    assert_eq!(uploads.len(), 1);
    assert_eq!(uploads[0].file_name, "my photos.zip");
    assert_eq!(uploads[0].content_type, "application/zip");
    assert_eq!(uploads[0].bytes, 3_000_000);
    assert_eq!(uploads[0].file_url, file_url);
    assert_eq!(uploads[0].multipart_parts, None, "a single PUT");
    assert_eq!(uploads[0].lifecycle, None);
    assert_eq!(fake.request_count(Route::StorageInitiate), 1);
    assert_eq!(fake.request_count(Route::StorageUpload), 1);
}

/// A webhook receiver that records what arrives and answers with `answers` in turn, then 200.
struct Receiver {
    url: String,
    received: Arc<Mutex<Vec<(HeaderMap, Bytes)>>>,
}

impl Receiver {
    async fn start(answers: Vec<u16>) -> Receiver {
        let received = Arc::new(Mutex::new(Vec::new()));
        let recorded = received.clone();
        let answers = Arc::new(Mutex::new(answers.into_iter()));
        let app = axum::Router::new().fallback(move |headers: HeaderMap, body: Bytes| {
            let recorded = recorded.clone();
            let answers = answers.clone();
            async move {
                recorded.lock().unwrap().push((headers, body));
                let answer = answers.lock().unwrap().next().unwrap_or(200);
                StatusCode::from_u16(answer).unwrap()
            }
        });
        let origin = serve(app).await;
        Receiver {
            // A query of its own, as a relay token would be: fal_webhook must carry it encoded.
            url: format!("{origin}/hooks/fal?token=a%2Bb&kind=portrait"),
            received,
        }
    }

    fn received(&self) -> Vec<(HeaderMap, Bytes)> {
        self.received.lock().unwrap().clone()
    }

    async fn wait_for(&self, count: usize) {
        within("webhook deliveries", async {
            while self.received().len() < count {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
    }
}

async fn submit_with_webhook(fake: &FakeFal, input: &Value, webhook_url: &str) -> Value {
    http()
        .post(format!("{}/{TRAINER}", fake.base_url()))
        .query(&[("fal_webhook", webhook_url)])
        .header("Authorization", format!("Key {}", fake.api_key()))
        .json(input)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[tokio::test]
async fn webhooks_are_signed_with_the_published_key() {
    let fake = FakeFal::start().await;
    fake.set_script(quick_script());
    let receiver = Receiver::start(Vec::new()).await;
    let submitted = submit_with_webhook(&fake, &training_input(&fake).await, &receiver.url).await;
    assert_eq!(
        fake.submissions()[0].webhook_url.as_deref(),
        Some(receiver.url.as_str())
    );
    receiver.wait_for(1).await;

    let jwks = http()
        .get(fake.jwks_url())
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let keys = fal::webhook::parse_jwks(&jwks).unwrap();
    let (headers, body) = receiver.received().remove(0);
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned)
    };
    let verified = fal::webhook::verify(header, &body, unix_now(), &keys).unwrap();
    assert_eq!(
        verified.request_id,
        submitted["request_id"].as_str().unwrap()
    );
    assert_eq!(verified.user_id, WEBHOOK_USER_ID);

    let payload: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(payload["status"], "OK");
    assert_eq!(payload["request_id"], submitted["request_id"]);
    let (_, _, output) = get(&fake, submitted["response_url"].as_str().unwrap()).await;
    assert_eq!(payload["payload"], output, "the webhook carries the result");

    let deliveries = fake.webhook_deliveries();
    assert_eq!(deliveries.len(), 1);
    assert_eq!(deliveries[0].status, Some(200));
    assert_eq!(deliveries[0].body, payload);
}

#[tokio::test]
async fn failed_webhooks_are_retried_and_failed_jobs_report_errors() {
    let fake = FakeFal::start().await;
    fake.set_script(quick_script());
    let receiver = Receiver::start(vec![500; WEBHOOK_ATTEMPTS - 1]).await;
    submit_with_webhook(&fake, &json!({ "steps": 10 }), &receiver.url).await;
    receiver.wait_for(WEBHOOK_ATTEMPTS).await;

    let statuses: Vec<Option<u16>> = fake
        .webhook_deliveries()
        .iter()
        .map(|delivery| delivery.status)
        .collect();
    let mut expected = vec![Some(500); WEBHOOK_ATTEMPTS - 1];
    expected.push(Some(200));
    assert_eq!(statuses, expected);

    let payload: Value = serde_json::from_slice(&receiver.received()[0].1).unwrap();
    assert_eq!(payload["status"], "ERROR");
    assert_eq!(payload["error"], "Invalid status code: 422");
    assert_eq!(
        payload["payload"]["detail"][0]["type"],
        "value_error.missing"
    );
}

#[tokio::test]
async fn webhook_faults_duplicate_or_drop_a_delivery() {
    let fake = FakeFal::start().await;
    fake.set_script(quick_script());
    let receiver = Receiver::start(Vec::new()).await;
    let input = training_input(&fake).await;

    fake.push_fault(Fault::DuplicateWebhook);
    submit_with_webhook(&fake, &input, &receiver.url).await;
    receiver.wait_for(2).await;
    let received = receiver.received();
    assert_eq!(received[0].1, received[1].1, "the same body twice");

    fake.push_fault(Fault::DropWebhook);
    let dropped = submit_with_webhook(&fake, &input, &receiver.url).await;
    completed_status(&fake, &dropped).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        receiver.received().len(),
        2,
        "the dropped webhook never came"
    );
    assert_eq!(fake.webhook_deliveries().len(), 2);
}

#[tokio::test]
async fn dropping_the_fake_cuts_open_connections() {
    let fake = FakeFal::start().await;
    let http = http();
    let status_url = format!("{}/{TRAINER}/requests/unknown/status", fake.base_url());
    // The first request leaves a pooled keep-alive connection behind.
    let first = http
        .get(&status_url)
        .header("Authorization", "Key fake-key")
        .send()
        .await
        .unwrap();
    assert_eq!(first.status(), StatusCode::NOT_FOUND);
    first.bytes().await.unwrap();
    drop(fake);
    let after = http
        .get(&status_url)
        .header("Authorization", "Key fake-key")
        .send()
        .await;
    assert!(after.is_err(), "a dropped fake answers nothing: {after:?}");
}

// Dataset downloads by fal's rules (fal-protocol.md §7.1).

/// A dataset host of the test's own on loopback, serving an empty zip and counting requests.
async fn dataset_host() -> (String, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let counted = hits.clone();
    let app = axum::Router::new().fallback(move || {
        counted.fetch_add(1, Ordering::SeqCst);
        async { EMPTY_ZIP }
    });
    (serve(app).await, hits)
}

#[tokio::test]
async fn a_dataset_on_another_loopback_origin_is_refused_unless_allowed() {
    let fake = FakeFal::start().await;
    fake.set_script(quick_script());
    let (host, hits) = dataset_host().await;
    let own_dataset = upload(&fake, EMPTY_ZIP.to_vec(), "train.zip").await;
    // The fake's own file, by a name that resolves to loopback: not the admitted origin.
    let by_name = own_dataset.replace("127.0.0.1", "localhost");
    for (url, reason) in [
        (format!("{host}/train.zip"), "non-routable"),
        (by_name, "non-routable"),
        ("ftp://example.com/train.zip".to_owned(), "scheme 'ftp'"),
    ] {
        let submitted = submit(&fake, &json!({ "images_data_url": url })).await;
        let completed = completed_status(&fake, &submitted).await;
        assert_eq!(completed["error_type"], "file_download_error", "{url}");
        assert!(
            completed["error"].as_str().unwrap().contains(reason),
            "{url}: {}",
            completed["error"]
        );
        let (status, _, body) = get(&fake, submitted["response_url"].as_str().unwrap()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        let item = &body["detail"][0];
        assert_eq!(item["loc"], json!(["body", "images_data_url"]));
        assert_eq!(item["type"], "file_download_error");
    }
    let refused = completed_status(
        &fake,
        &submit(
            &fake,
            &json!({ "images_data_url": format!("{host}/train.zip") }),
        )
        .await,
    )
    .await;
    assert_eq!(
        refused["error"], "Hostname resolves to a non-routable address",
        "fal's own words"
    );
    assert_eq!(hits.load(Ordering::SeqCst), 0, "refused before connecting");

    fake.allow_dataset_origin(&host);
    let submitted = submit(
        &fake,
        &json!({ "images_data_url": format!("{host}/train.zip") }),
    )
    .await;
    let completed = completed_status(&fake, &submitted).await;
    assert!(completed.get("error").is_none(), "{completed}");
    assert_eq!(hits.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_refused_dataset_answers_as_the_script_says() {
    let fake = FakeFal::start().await;
    fake.set_script(Script {
        dataset_refusal: Refusal {
            status: 400,
            error_type: "invalid_url".into(),
        },
        ..quick_script()
    });
    let submitted = submit(
        &fake,
        &json!({ "images_data_url": "http://10.0.0.1/train.zip" }),
    )
    .await;
    let completed = completed_status(&fake, &submitted).await;
    assert_eq!(completed["error_type"], "invalid_url");
    let (status, _, body) = get(&fake, submitted["response_url"].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body["detail"][0]["msg"],
        "Hostname resolves to a non-routable address"
    );
}

#[tokio::test]
async fn dataset_redirects_are_followed_for_five_hops_and_each_hop_is_checked() {
    let fake = FakeFal::start().await;
    fake.set_script(quick_script());
    let dataset = upload(&fake, EMPTY_ZIP.to_vec(), "train.zip").await;
    let final_target = Arc::new(Mutex::new(dataset.clone()));
    let target = final_target.clone();
    // `/chain/N` redirects N more times through itself, then to the target.
    let app = axum::Router::new().fallback(move |uri: axum::http::Uri| {
        let target = target.lock().unwrap().clone();
        async move {
            let left: u32 = uri.path().trim_start_matches("/chain/").parse().unwrap();
            let location = if left == 0 {
                target
            } else {
                format!("/chain/{}", left - 1)
            };
            (
                StatusCode::FOUND,
                [(axum::http::header::LOCATION, location)],
            )
        }
    });
    let redirector = serve(app).await;
    fake.allow_dataset_origin(&redirector);

    let job = |hops_before_target: u32| json!({ "images_data_url": format!("{redirector}/chain/{hops_before_target}") });
    // Five redirects in all: four along the chain and the last to the fake's file.
    let completed = completed_status(&fake, &submit(&fake, &job(4)).await).await;
    assert!(completed.get("error").is_none(), "{completed}");

    let completed = completed_status(&fake, &submit(&fake, &job(5)).await).await;
    assert_eq!(completed["error"], "Too many redirects");

    *final_target.lock().unwrap() = dataset.replace("127.0.0.1", "localhost");
    let completed = completed_status(&fake, &submit(&fake, &job(0)).await).await;
    assert_eq!(
        completed["error"], "Hostname resolves to a non-routable address",
        "the hop after an admitted origin is checked again"
    );
}

// Storage: the single-upload limit, multipart uploads, upload faults, lifecycles
// (fal-protocol.md §6 Storage, §7.2, §7.3).

async fn initiate(fake: &FakeFal, route: &str, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut request = http()
        .post(format!("{}/storage/upload/{route}", fake.base_url()))
        .query(&[("storage_type", "fal-cdn-v3")])
        .header("Authorization", format!("Key {}", fake.api_key()))
        .json(&json!({ "content_type": "application/zip", "file_name": "train.zip" }));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.unwrap()
}

/// Initiates an upload (`initiate` or `initiate-multipart`) and returns `{upload_url, file_url}`.
async fn initiated(fake: &FakeFal, route: &str) -> Value {
    let response = initiate(fake, route, &[]).await;
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

/// `size` bytes in 64 KiB chunks, made as they are sent; `pulled` counts what the client took.
fn generated_body(size: u64, pulled: Arc<AtomicU64>) -> reqwest::Body {
    const CHUNK: u64 = 64 * 1024;
    let chunks = futures_util::stream::iter((0..size.div_ceil(CHUNK)).map(move |index| {
        let length = CHUNK.min(size - index * CHUNK);
        pulled.fetch_add(length, Ordering::SeqCst);
        Ok::<_, std::io::Error>(Bytes::from(vec![7u8; length as usize]))
    }));
    reqwest::Body::wrap_stream(chunks)
}

#[tokio::test]
async fn a_single_upload_over_the_limit_is_refused_and_stores_nothing() {
    let fake = FakeFal::start().await;
    let single = initiated(&fake, "initiate").await;
    let upload_url = single["upload_url"].as_str().unwrap();

    // The default limit, refused on the Content-Length before the body is read.
    let response = http()
        .put(upload_url)
        .header("Content-Length", DEFAULT_SINGLE_UPLOAD_LIMIT + 1)
        .body(generated_body(
            DEFAULT_SINGLE_UPLOAD_LIMIT + 1,
            Arc::default(),
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let body: Value = response.json().await.unwrap();
    assert!(body["detail"].as_str().unwrap().contains("104857600"));

    fake.set_single_upload_limit(1000);
    let sized = http()
        .put(upload_url)
        .body(vec![1u8; 1001])
        .send()
        .await
        .unwrap();
    assert_eq!(sized.status(), StatusCode::PAYLOAD_TOO_LARGE);
    // Chunked, without a Content-Length: the streamed bytes are counted.
    let chunked = http()
        .put(upload_url)
        .body(generated_body(3000, Arc::default()))
        .send()
        .await
        .unwrap();
    assert_eq!(chunked.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert!(fake.uploads().is_empty());
    let file_url = single["file_url"].as_str().unwrap();
    let file = http().get(file_url).send().await.unwrap();
    assert_eq!(file.status(), StatusCode::NOT_FOUND, "nothing was stored");

    let at_limit = http()
        .put(upload_url)
        .body(vec![1u8; 1000])
        .send()
        .await
        .unwrap();
    assert_eq!(at_limit.status(), StatusCode::OK);
    assert_eq!(fake.uploads()[0].bytes, 1000);
}

fn md5_etag(bytes: &[u8]) -> String {
    let digest: String = Md5::digest(bytes)
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    format!("\"{digest}\"")
}

/// `{upload_url path}/{suffix}{upload_url query}`, as fal-js builds part and complete URLs.
fn multipart_url(upload_url: &str, suffix: &str) -> String {
    let mut url = reqwest::Url::parse(upload_url).unwrap();
    let path = format!("{}/{suffix}", url.path());
    url.set_path(&path);
    url.to_string()
}

async fn put_part(upload_url: &str, part_number: u32, bytes: &[u8]) -> reqwest::Response {
    http()
        .put(multipart_url(upload_url, &part_number.to_string()))
        .body(bytes.to_vec())
        .send()
        .await
        .unwrap()
}

async fn complete(upload_url: &str, parts: Value) -> reqwest::Response {
    http()
        .post(multipart_url(upload_url, "complete"))
        .json(&json!({ "parts": parts }))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_multipart_upload_joins_its_parts_in_part_number_order() {
    let fake = FakeFal::start().await;
    let initiated = initiated(&fake, "initiate-multipart").await;
    let upload_url = initiated["upload_url"].as_str().unwrap();
    let upload_id = reqwest::Url::parse(upload_url)
        .unwrap()
        .query_pairs()
        .find(|(name, _)| name == "upload_id")
        .map(|(_, value)| value.into_owned())
        .expect("the upload URL carries a query a client must keep");
    let parts: [Vec<u8>; 3] = [vec![1; 3000], vec![2; 2000], vec![3; 1000]];

    let mut etags = Vec::new();
    // Out of order, and part 2 sent twice: the later one counts.
    put_part(upload_url, 2, b"a first try").await;
    for part_number in [3, 1, 2] {
        let bytes = &parts[part_number as usize - 1];
        let response = put_part(upload_url, part_number, bytes).await;
        assert_eq!(response.status(), StatusCode::OK);
        let etag_header = response.headers()["etag"].to_str().unwrap().to_owned();
        let answer: Value = response.json().await.unwrap();
        assert_eq!(answer["partNumber"], part_number);
        assert_eq!(answer["etag"], etag_header, "the body and the header agree");
        assert_eq!(etag_header, md5_etag(bytes), "quoted MD5, as S3 writes it");
        etags.push(answer);
    }
    assert_eq!(
        fake.part_uploads(),
        vec![
            (upload_id.clone(), 2, 11),
            (upload_id.clone(), 3, 1000),
            (upload_id.clone(), 1, 3000),
            (upload_id.clone(), 2, 2000),
        ]
    );
    let file_url = initiated["file_url"].as_str().unwrap();
    let early = http().get(file_url).send().await.unwrap();
    assert_eq!(early.status(), StatusCode::NOT_FOUND, "not complete yet");

    // The list in any order.
    let response = complete(upload_url, json!(etags)).await;
    assert_eq!(response.status(), StatusCode::OK);
    let file = http()
        .get(file_url)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(file, parts.concat());
    let uploads = fake.uploads();
    assert_eq!(uploads.len(), 1);
    assert_eq!(uploads[0].multipart_parts, Some(3));
    assert_eq!(uploads[0].bytes, 6000);
    assert_eq!(uploads[0].file_url, file_url);

    let again = complete(upload_url, json!(etags)).await;
    assert_eq!(
        again.status(),
        StatusCode::OK,
        "completing twice is harmless"
    );
    assert_eq!(fake.uploads().len(), 1);
    assert_eq!(fake.request_count(Route::StorageInitiateMultipart), 1);
    assert_eq!(fake.request_count(Route::StoragePart), 4);
    assert_eq!(fake.request_count(Route::StorageComplete), 2);
}

#[tokio::test]
async fn multipart_mistakes_are_refused() {
    let fake = FakeFal::start().await;
    let unauthorised = http()
        .post(format!(
            "{}/storage/upload/initiate-multipart",
            fake.base_url()
        ))
        .json(&json!({ "content_type": "application/zip", "file_name": "a.zip" }))
        .send()
        .await
        .unwrap();
    assert_eq!(unauthorised.status(), StatusCode::UNAUTHORIZED);

    let initiated = initiated(&fake, "initiate-multipart").await;
    let upload_url = initiated["upload_url"].as_str().unwrap();
    let mut without_query = reqwest::Url::parse(upload_url).unwrap();
    without_query.set_query(None);
    let mut wrong_query = without_query.clone();
    wrong_query.set_query(Some("upload_id=someone-else"));
    for url in [without_query.as_str(), wrong_query.as_str()] {
        let response = put_part(url, 1, b"part").await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{url}");
    }
    let unknown = upload_url.replace("/multipart/", "/multipart/0000");
    assert_eq!(
        put_part(&unknown, 1, b"part").await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        put_part(upload_url, 0, b"part").await.status(),
        StatusCode::BAD_REQUEST,
        "part numbers start at 1"
    );
    assert!(fake.part_uploads().is_empty());

    let first: Value = put_part(upload_url, 1, b"one").await.json().await.unwrap();
    let third: Value = put_part(upload_url, 3, b"three")
        .await
        .json()
        .await
        .unwrap();
    let wrong_etag = json!({ "partNumber": 1, "etag": "\"0000\"" });
    let missing_part = json!({ "partNumber": 2, "etag": first["etag"] });
    for parts in [
        json!([first, third]),
        json!([first, missing_part]),
        json!([wrong_etag]),
        json!([]),
    ] {
        let response = complete(upload_url, parts.clone()).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{parts}");
        let body: Value = response.json().await.unwrap();
        assert!(body["detail"].is_string(), "{body}");
    }
    assert!(fake.uploads().is_empty());
    let file = http()
        .get(initiated["file_url"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(file.status(), StatusCode::NOT_FOUND);

    // Unquoted etags are accepted, as S3 does.
    let unquoted = first["etag"].as_str().unwrap().trim_matches('"');
    let response = complete(upload_url, json!([{ "partNumber": 1, "etag": unquoted }])).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(fake.uploads()[0].multipart_parts, Some(1));
}

#[tokio::test]
async fn response_faults_hit_multipart_parts() {
    let fake = FakeFal::start().await;
    let initiated = initiated(&fake, "initiate-multipart").await;
    let upload_url = initiated["upload_url"].as_str().unwrap();

    fake.push_fault(Fault::Status {
        route: Route::StoragePart,
        status: 503,
        body: json!({ "detail": "Service Unavailable" }),
        headers: Vec::new(),
    });
    let refused = put_part(upload_url, 1, b"first").await;
    assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        fake.part_uploads().is_empty(),
        "a refused part is not stored"
    );

    fake.push_fault(Fault::AcceptThenDrop {
        route: Route::StoragePart,
    });
    let lost = http()
        .put(multipart_url(upload_url, "1"))
        .body(b"first".to_vec())
        .send()
        .await;
    assert!(lost.is_err(), "the answer is lost: {lost:?}");
    assert_eq!(fake.part_uploads().len(), 1, "but the part was stored");

    fake.push_fault(Fault::TruncateBody {
        route: Route::StoragePart,
        bytes: 5,
    });
    let truncated = put_part(upload_url, 1, b"first").await;
    assert_eq!(truncated.status(), StatusCode::OK);
    assert!(
        truncated.json::<Value>().await.is_err(),
        "the body breaks off"
    );

    // Re-sent alone, the part's answer arrives whole.
    let answer: Value = put_part(upload_url, 1, b"first")
        .await
        .json()
        .await
        .unwrap();
    let parts: Vec<u32> = fake
        .part_uploads()
        .iter()
        .map(|(_, part_number, _)| *part_number)
        .collect();
    assert_eq!(parts, vec![1, 1, 1]);
    assert_eq!(
        complete(upload_url, json!([answer])).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_stalled_upload_stops_reading_without_answering() {
    let fake = FakeFal::start().await;
    let single = initiated(&fake, "initiate").await;
    let upload_url = single["upload_url"].as_str().unwrap().to_owned();
    fake.push_fault(Fault::StallUpload {
        route: Route::StorageUpload,
        bytes: 64 * 1024,
    });
    let size = 256 * 1024 * 1024;
    let pulled = Arc::new(AtomicU64::new(0));
    let body = generated_body(size, pulled.clone());
    let put = http()
        .put(&upload_url)
        .timeout(Duration::from_secs(2))
        .body(body)
        .send();
    let (outcome, ()) = tokio::join!(put, fake.wait_for(Route::StorageUpload, 1));
    assert!(
        outcome.is_err_and(|error| error.is_timeout()),
        "no answer comes"
    );
    let pulled = pulled.load(Ordering::SeqCst);
    assert!(
        (64 * 1024..size / 4).contains(&pulled),
        "the client's writes backed up after {pulled} bytes"
    );
    assert!(fake.uploads().is_empty());

    // The next PUT is served as usual.
    let response = http()
        .put(&upload_url)
        .body(EMPTY_ZIP)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(fake.uploads().len(), 1);
}

#[tokio::test]
async fn a_dropped_upload_cuts_the_connection_and_stores_nothing() {
    let fake = FakeFal::start().await;
    let initiated = initiated(&fake, "initiate-multipart").await;
    let upload_url = initiated["upload_url"].as_str().unwrap();
    fake.push_fault(Fault::DropUpload {
        route: Route::StoragePart,
        bytes: 1000,
    });
    let part = vec![5u8; 4 * 1024 * 1024];
    let cut = http()
        .put(multipart_url(upload_url, "1"))
        .body(part.clone())
        .send()
        .await;
    assert!(cut.is_err_and(|error| !error.is_status()), "no answer");
    assert!(fake.part_uploads().is_empty());

    let response = put_part(upload_url, 1, &part).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(fake.part_uploads().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn an_uploads_lifecycle_expires_its_file() {
    let fake = FakeFal::start().await;
    let lifecycle = json!({ "expiration_duration_seconds": 3600 });
    let preference =
        json!({ "expiration_duration_seconds": 60, "initial_acl": { "default": "allow" } });
    let response = initiate(
        &fake,
        "initiate",
        &[
            ("X-Fal-Object-Lifecycle", &lifecycle.to_string()),
            ("X-Fal-Object-Lifecycle-Preference", &preference.to_string()),
        ],
    )
    .await;
    let initiated: Value = response.json().await.unwrap();
    let put = http()
        .put(initiated["upload_url"].as_str().unwrap())
        .body(EMPTY_ZIP)
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), StatusCode::OK);
    let upload = &fake.uploads()[0];
    assert_eq!(upload.lifecycle, Some(lifecycle));
    assert_eq!(upload.lifecycle_preference, Some(preference));

    let file_url = initiated["file_url"].as_str().unwrap();
    let status = || async { http().get(file_url).send().await.unwrap().status() };
    tokio::time::advance(Duration::from_secs(3599)).await;
    assert_eq!(
        status().await,
        StatusCode::OK,
        "only the lifecycle's expiry counts"
    );
    tokio::time::advance(Duration::from_secs(1)).await;
    assert_eq!(status().await, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_lifecycle_header_that_is_not_json_is_refused() {
    let fake = FakeFal::start().await;
    for header in [
        "X-Fal-Object-Lifecycle",
        "X-Fal-Object-Lifecycle-Preference",
    ] {
        for route in ["initiate", "initiate-multipart"] {
            let response = initiate(&fake, route, &[(header, "one hour")]).await;
            assert_eq!(
                response.status(),
                StatusCode::BAD_REQUEST,
                "{header} on {route}"
            );
        }
    }
    let not_seconds = initiate(
        &fake,
        "initiate",
        &[(
            "X-Fal-Object-Lifecycle",
            r#"{"expiration_duration_seconds": "1h"}"#,
        )],
    )
    .await;
    assert_eq!(not_seconds.status(), StatusCode::BAD_REQUEST);

    let submit = http()
        .post(format!("{}/{TRAINER}", fake.base_url()))
        .header("Authorization", format!("Key {}", fake.api_key()))
        .header("X-Fal-Object-Lifecycle-Preference", "{")
        .json(&json!({ "images_data_url": "x" }))
        .send()
        .await
        .unwrap();
    assert_eq!(submit.status(), StatusCode::BAD_REQUEST);
    assert!(fake.submissions().is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_submits_lifecycle_preference_expires_the_jobs_output_files() {
    let fake = FakeFal::start().await;
    fake.set_script(quick_script());
    let preference = json!({ "expiration_duration_seconds": 600 });
    let submitted: Value = http()
        .post(format!("{}/{TRAINER}", fake.base_url()))
        .header("Authorization", format!("Key {}", fake.api_key()))
        .header("X-Fal-Object-Lifecycle-Preference", preference.to_string())
        .header("X-Fal-Store-IO", "0")
        .json(&training_input(&fake).await)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let submission = &fake.submissions()[0];
    assert_eq!(submission.lifecycle_preference, Some(preference));
    assert_eq!(submission.store_io.as_deref(), Some("0"));

    completed_status(&fake, &submitted).await;
    let (_, _, output) = get(&fake, submitted["response_url"].as_str().unwrap()).await;
    let files = [
        output["diffusers_lora_file"]["url"].as_str().unwrap(),
        output["config_file"]["url"].as_str().unwrap(),
    ];
    for file in files {
        assert_eq!(
            http().get(file).send().await.unwrap().status(),
            StatusCode::OK
        );
    }
    tokio::time::advance(Duration::from_secs(600)).await;
    for file in files {
        let response = http().get(file).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{file}");
    }
}

// Cancel and retention (fal-protocol.md §1.7).

#[tokio::test]
async fn a_forgotten_request_is_unknown_to_the_queue() {
    let fake = FakeFal::start().await;
    fake.set_script(Script {
        queue_time: Duration::from_secs(30),
        ..Script::default()
    });
    let submitted = submit(&fake, &training_input(&fake).await).await;
    assert_eq!(cancel(&fake, &submitted).await.0, StatusCode::ACCEPTED);
    let completed = completed_status(&fake, &submitted).await;
    assert_eq!(completed["error_type"], "client_cancelled");

    let request_id = submitted["request_id"].as_str().unwrap();
    fake.forget_request(request_id);
    for url in [&submitted["status_url"], &submitted["response_url"]] {
        let (status, _, body) = get(&fake, url.as_str().unwrap()).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(body, json!({ "detail": "Request not found" }));
    }
    let (status, body) = cancel(&fake, &submitted).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body, json!({ "status": "NOT_FOUND" }));

    // The request history outlives the queue's retention.
    let (status, history) = platform_get(
        &fake,
        &format!("models/requests/by-endpoint?endpoint_id={TRAINER}&request_id={request_id}"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(history["items"][0]["request_id"], request_id);
    assert_eq!(history["items"][0]["status_code"], 499);
}

// The platform API on its own origin (fal-protocol.md §7.4).

fn platform(fake: &FakeFal, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
    http()
        .request(method, format!("{}/{path}", fake.platform_url()))
        .header("Authorization", format!("Key {}", fake.api_key()))
}

async fn answer(request: reqwest::RequestBuilder) -> (StatusCode, Value) {
    let response = request.send().await.unwrap();
    (
        response.status(),
        response.json().await.unwrap_or(Value::Null),
    )
}

async fn platform_get(fake: &FakeFal, path: &str) -> (StatusCode, Value) {
    answer(platform(fake, reqwest::Method::GET, path)).await
}

fn assert_platform_error(answer: &(StatusCode, Value), status: StatusCode, kind: &str) {
    assert_eq!(answer.0, status, "{}", answer.1);
    assert_eq!(answer.1["error"]["type"], kind, "{}", answer.1);
    assert!(answer.1["error"]["message"].is_string());
}

#[tokio::test]
async fn the_platform_api_prices_endpoints_and_estimates_costs() {
    let fake = FakeFal::start().await;
    assert!(fake.platform_url().ends_with("/v1"));
    assert!(!fake.platform_url().starts_with(&fake.base_url()));
    fake.set_price(TRAINER, 0.0024, "steps");
    fake.set_price("fal-ai/flux-lora", 0.035, "megapixels");

    for query in [
        format!("endpoint_id={TRAINER}&endpoint_id=fal-ai/flux-lora"),
        format!("endpoint_id={TRAINER},fal-ai/flux-lora"),
    ] {
        let (status, body) = platform_get(&fake, &format!("models/pricing?{query}")).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            body,
            json!({
                "prices": [
                    { "endpoint_id": TRAINER, "unit_price": 0.0024, "unit": "steps", "currency": "USD" },
                    { "endpoint_id": "fal-ai/flux-lora", "unit_price": 0.035, "unit": "megapixels", "currency": "USD" },
                ],
                "next_cursor": null,
                "has_more": false,
            })
        );
    }
    let unpriced = platform_get(&fake, "models/pricing?endpoint_id=fal-ai/unpriced").await;
    assert_platform_error(&unpriced, StatusCode::NOT_FOUND, "not_found");
    let missing = platform_get(&fake, "models/pricing").await;
    assert_platform_error(&missing, StatusCode::BAD_REQUEST, "validation_error");
    let too_many = (0..51)
        .map(|index| format!("endpoint_id=owner/app-{index}"))
        .collect::<Vec<_>>()
        .join("&");
    let too_many = platform_get(&fake, &format!("models/pricing?{too_many}")).await;
    assert_platform_error(&too_many, StatusCode::BAD_REQUEST, "validation_error");
    let without_key = answer(http().get(format!(
        "{}/models/pricing?endpoint_id={TRAINER}",
        fake.platform_url()
    )))
    .await;
    assert_platform_error(
        &without_key,
        StatusCode::UNAUTHORIZED,
        "authorization_error",
    );

    let estimate = |endpoints: Value| {
        platform(&fake, reqwest::Method::POST, "models/pricing/estimate")
            .json(&json!({ "estimate_type": "unit_price", "endpoints": endpoints }))
    };
    let (status, body) = answer(estimate(json!({
        TRAINER: { "unit_quantity": 1000 },
        "fal-ai/flux-lora": { "unit_quantity": 10 },
    })))
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!({ "estimate_type": "unit_price", "total_cost": 2.75, "currency": "USD" })
    );
    let unpriced = answer(estimate(
        json!({ "fal-ai/unpriced": { "unit_quantity": 1 } }),
    ))
    .await;
    assert_platform_error(&unpriced, StatusCode::NOT_FOUND, "not_found");
    let no_quantity = answer(estimate(json!({ TRAINER: {} }))).await;
    assert_platform_error(&no_quantity, StatusCode::BAD_REQUEST, "validation_error");
    assert_eq!(fake.request_count(Route::Pricing), 6);
    assert_eq!(fake.request_count(Route::PricingEstimate), 3);
}

/// The status URL of a submission whose answer the client may never have seen.
fn status_url_of(fake: &FakeFal, submission: &Submission) -> Value {
    let status_url = format!(
        "{}/{}/requests/{}/status",
        fake.base_url(),
        submission.endpoint_id,
        submission.request_id
    );
    json!({ "status_url": status_url })
}

#[tokio::test]
async fn the_request_history_lists_every_accepted_submit() {
    let fake = FakeFal::start().await;
    fake.set_script(quick_script());
    let input = training_input(&fake).await;
    submit(&fake, &input).await;
    // Accepted, but the answers were lost on the way back.
    fake.push_fault(Fault::AcceptThenAnswer {
        route: Route::Submit,
        status: 502,
        body: "<html>nginx</html>".into(),
        headers: Vec::new(),
    });
    assert_eq!(
        submit_to(&fake, TRAINER, &input).await.status(),
        StatusCode::BAD_GATEWAY
    );
    fake.push_fault(Fault::AcceptThenDrop {
        route: Route::Submit,
    });
    assert!(
        http()
            .post(format!("{}/{TRAINER}", fake.base_url()))
            .header("Authorization", format!("Key {}", fake.api_key()))
            .json(&input)
            .send()
            .await
            .is_err()
    );
    let unstored = http()
        .post(format!("{}/{TRAINER}", fake.base_url()))
        .header("Authorization", format!("Key {}", fake.api_key()))
        .header("X-Fal-Store-IO", "0")
        .json(&input)
        .send()
        .await
        .unwrap();
    let unstored: Value = unstored.json().await.unwrap();
    submit_to(&fake, "fal-ai/other-trainer", &input).await;

    let submissions = fake.submissions();
    for submission in &submissions {
        completed_status(&fake, &status_url_of(&fake, submission)).await;
    }
    let history = format!("models/requests/by-endpoint?endpoint_id={TRAINER}");
    let (status, body) = platform_get(&fake, &format!("{history}&expand=payloads")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["has_more"], false);
    assert_eq!(body["next_cursor"], Value::Null);
    let items = body["items"].as_array().unwrap();
    assert_eq!(items.len(), 4, "every accepted submit to the trainer");
    let ended: Vec<DateTime<Utc>> = items
        .iter()
        .map(|item| item["ended_at"].as_str().unwrap().parse().unwrap())
        .collect();
    assert!(
        ended.windows(2).all(|pair| pair[0] >= pair[1]),
        "latest ended first: {ended:?}"
    );
    for item in items {
        let sent_at = item["sent_at"].as_str().unwrap();
        assert!(sent_at.ends_with('Z'), "{sent_at}");
        assert!(sent_at.parse::<DateTime<Utc>>().is_ok());
        assert!(item["started_at"].is_string());
        assert_eq!(item["status_code"], 200);
        assert!(item["duration"].as_f64().unwrap() >= 0.0);
        assert_eq!(item["endpoint_id"], TRAINER);
        if item["request_id"] == unstored["request_id"] {
            assert!(item.get("json_input").is_none() && item.get("json_output").is_none());
        } else {
            assert_eq!(item["json_input"], input);
            assert!(item["json_output"]["diffusers_lora_file"]["url"].is_string());
        }
    }
    let (_, without_payloads) = platform_get(&fake, &history).await;
    assert!(without_payloads["items"][0].get("json_input").is_none());

    let (_, first_page) = platform_get(&fake, &format!("{history}&limit=3")).await;
    assert_eq!(first_page["items"].as_array().unwrap().len(), 3);
    assert_eq!(first_page["has_more"], true);
    assert_eq!(first_page["next_cursor"], "Mg==", "base64 of page 2");
    let (_, second_page) = platform_get(&fake, &format!("{history}&limit=3&cursor=Mg==")).await;
    assert_eq!(second_page["items"].as_array().unwrap().len(), 1);
    assert_eq!(second_page["has_more"], false);

    let one = &submissions[1].request_id;
    let (_, only) = platform_get(&fake, &format!("{history}&request_id={one}")).await;
    assert_eq!(only["items"].as_array().unwrap().len(), 1);
    assert_eq!(only["items"][0]["request_id"], one.as_str());
    let (_, errors) = platform_get(&fake, &format!("{history}&status=error")).await;
    assert_eq!(errors["items"], json!([]));
    let (_, both) = platform_get(
        &fake,
        &format!("models/requests/by-endpoint?endpoint_id={TRAINER},fal-ai/other-trainer"),
    )
    .await;
    assert_eq!(both["items"].as_array().unwrap().len(), 5);
    let (_, future) = platform_get(&fake, &format!("{history}&start=2999-01-01")).await;
    assert_eq!(future["items"], json!([]));
    let (_, past) = platform_get(
        &fake,
        &format!("{history}&start=2000-01-01T00:00:00Z&end=2000-01-02"),
    )
    .await;
    assert_eq!(
        past["items"],
        json!([]),
        "end is exclusive and before them all"
    );

    for bad in [
        "limit=101",
        "limit=0",
        "cursor=nonsense",
        "start=yesterday",
        "status=fine",
    ] {
        let refused = platform_get(&fake, &format!("{history}&{bad}")).await;
        assert_platform_error(&refused, StatusCode::BAD_REQUEST, "validation_error");
    }
    let no_endpoint = platform_get(&fake, "models/requests/by-endpoint").await;
    assert_platform_error(&no_endpoint, StatusCode::BAD_REQUEST, "validation_error");
}

#[tokio::test]
async fn an_unfinished_request_is_not_listed_until_it_ends() {
    // fal documents finished requests only (fal-protocol.md §8.2).
    let fake = FakeFal::start().await;
    fake.set_script(Script {
        queue_time: Duration::from_millis(300),
        ..quick_script()
    });
    let submitted = submit(&fake, &training_input(&fake).await).await;
    let history = format!("models/requests/by-endpoint?endpoint_id={TRAINER}");
    let (_, queued) = platform_get(&fake, &history).await;
    assert_eq!(queued["items"], json!([]), "queued: not listed");
    completed_status(&fake, &submitted).await;
    let (_, ended) = platform_get(&fake, &history).await;
    let item = &ended["items"][0];
    assert_eq!(item["request_id"], submitted["request_id"]);
    for field in ["ended_at", "status_code", "duration"] {
        assert!(item.get(field).is_some(), "{field} once completed");
    }
}

#[tokio::test]
async fn deleting_payloads_needs_an_admin_key_and_removes_only_outputs() {
    let fake = FakeFal::start().await;
    fake.set_script(quick_script());
    let input = training_input(&fake).await;
    let submitted = submit(&fake, &input).await;
    completed_status(&fake, &submitted).await;
    let (_, _, output) = get(&fake, submitted["response_url"].as_str().unwrap()).await;
    let request_id = submitted["request_id"].as_str().unwrap();
    let delete = |key: Option<&str>, request_id: &str| {
        let mut request = platform(
            &fake,
            reqwest::Method::DELETE,
            &format!("models/requests/{request_id}/payloads"),
        );
        if let Some(key) = key {
            request = request.header("Idempotency-Key", key);
        }
        answer(request)
    };

    let not_admin = delete(Some("k1"), request_id).await;
    assert_platform_error(&not_admin, StatusCode::FORBIDDEN, "authorization_error");
    fake.set_admin_key(true);
    let unknown = delete(None, "0000-unknown").await;
    assert_platform_error(&unknown, StatusCode::NOT_FOUND, "not_found");
    assert!(fake.deleted_payloads().is_empty());

    let (status, deleted) = delete(Some("k1"), request_id).await;
    assert_eq!(status, StatusCode::OK);
    let outputs = [
        &output["diffusers_lora_file"]["url"],
        &output["config_file"]["url"],
    ];
    assert_eq!(
        deleted,
        json!({ "cdn_delete_results": [
            { "link": outputs[0], "exception": null },
            { "link": outputs[1], "exception": null },
        ] })
    );
    for url in outputs {
        let response = http().get(url.as_str().unwrap()).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{url}");
    }
    let dataset = http()
        .get(input["images_data_url"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(dataset.status(), StatusCode::OK, "input files stay");
    let (_, history) = platform_get(
        &fake,
        &format!("models/requests/by-endpoint?endpoint_id={TRAINER}&expand=payloads"),
    )
    .await;
    assert!(history["items"][0].get("json_input").is_none());
    assert!(history["items"][0].get("json_output").is_none());

    let replayed = delete(Some("k1"), request_id).await;
    assert_eq!(
        replayed,
        (StatusCode::OK, deleted),
        "the first answer again"
    );
    assert_eq!(fake.deleted_payloads(), vec![request_id]);
    let (status, again) = delete(None, request_id).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(again, json!({ "cdn_delete_results": [] }), "nothing left");
    assert_eq!(fake.deleted_payloads(), vec![request_id, request_id]);
    assert_eq!(fake.request_count(Route::DeletePayloads), 5);
    let (status, _, _) = get(&fake, submitted["response_url"].as_str().unwrap()).await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "the result went with the payloads"
    );
}

/// Submits the training input with `X-Fal-Store-IO` as given and waits for the job to end.
async fn completed_with_store_io(fake: &FakeFal, store_io: Option<&str>) -> Value {
    let mut request = http()
        .post(format!("{}/{TRAINER}", fake.base_url()))
        .header("Authorization", format!("Key {}", fake.api_key()))
        .json(&training_input(fake).await);
    if let Some(store_io) = store_io {
        request = request.header("X-Fal-Store-IO", store_io);
    }
    let submitted: Value = request.send().await.unwrap().json().await.unwrap();
    completed_status(fake, &submitted).await;
    submitted
}

#[tokio::test]
async fn a_result_is_kept_an_hour_without_payload_storage_and_for_the_storage_period_with_it() {
    // fal-protocol.md §8.1: 1 hour after completion with `X-Fal-Store-IO: 0` (6 minutes from
    // 10 KB); the payload storage period otherwise.
    let fake = FakeFal::start().await;
    fake.set_script(quick_script());
    let unstored = completed_with_store_io(&fake, Some("0")).await;
    let stored = completed_with_store_io(&fake, None).await;
    let result = |submitted: &Value| {
        let url = submitted["response_url"].as_str().unwrap().to_owned();
        let fake = &fake;
        async move { get(fake, &url).await.0 }
    };
    assert_eq!(result(&unstored).await, StatusCode::OK);
    fake.advance_clock(Duration::from_secs(59 * 60));
    assert_eq!(result(&unstored).await, StatusCode::OK, "within the hour");
    fake.advance_clock(Duration::from_secs(2 * 60));
    assert_eq!(result(&unstored).await, StatusCode::NOT_FOUND, "an hour on");
    assert_eq!(result(&stored).await, StatusCode::OK, "stored: kept");
    fake.advance_clock(Duration::from_secs(6 * 24 * 3600));
    assert_eq!(result(&stored).await, StatusCode::OK, "six days on");
    fake.advance_clock(Duration::from_secs(24 * 24 * 3600));
    assert_eq!(result(&stored).await, StatusCode::NOT_FOUND, "past 30 days");
}

#[tokio::test]
async fn deleting_payloads_answers_per_file_and_finds_nothing_when_nothing_was_stored() {
    let fake = FakeFal::start().await;
    fake.set_script(quick_script());
    fake.set_admin_key(true);
    fake.fail_deletion_of(LORA_FILE_NAME);
    let stored = completed_with_store_io(&fake, None).await;
    let (_, _, output) = get(&fake, stored["response_url"].as_str().unwrap()).await;
    let delete = |submitted: &Value| {
        let path = format!(
            "models/requests/{}/payloads",
            submitted["request_id"].as_str().unwrap()
        );
        answer(platform(&fake, reqwest::Method::DELETE, &path))
    };
    let (status, deleted) = delete(&stored).await;
    assert_eq!(status, StatusCode::OK);
    let results = deleted["cdn_delete_results"].as_array().unwrap();
    assert_eq!(results.len(), 2);
    assert_eq!(results[0]["link"], output["diffusers_lora_file"]["url"]);
    assert!(results[0]["exception"].is_string(), "{deleted}");
    assert_eq!(results[1]["exception"], Value::Null);
    let lora = http()
        .get(output["diffusers_lora_file"]["url"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(lora.status(), StatusCode::OK, "the file that failed stays");

    let unstored = completed_with_store_io(&fake, Some("0")).await;
    let (status, found) = delete(&unstored).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        found,
        json!({ "cdn_delete_results": [] }),
        "no stored output to find"
    );
}

#[tokio::test]
async fn private_output_files_are_read_only_through_a_signed_url() {
    let fake = FakeFal::start().await;
    fake.set_script(quick_script());
    let submitted = completed_with_store_io(&fake, None).await;
    let (_, _, output) = get(&fake, submitted["response_url"].as_str().unwrap()).await;
    let lora = output["diffusers_lora_file"]["url"]
        .as_str()
        .unwrap()
        .to_owned();
    let fetch = |url: String| async move { http().get(url).send().await.unwrap().status() };
    for (acl, refused) in [
        (Acl::Forbid, StatusCode::FORBIDDEN),
        (Acl::Hide, StatusCode::NOT_FOUND),
    ] {
        fake.set_output_acl(acl);
        assert_eq!(fetch(lora.clone()).await, refused, "{acl:?}");
        let sign = platform(
            &fake,
            reqwest::Method::POST,
            &format!("storage/files/sign?url={lora}"),
        )
        .json(&json!({ "expiration_seconds": 60 }));
        let (status, signed) = answer(sign).await;
        assert_eq!(status, StatusCode::OK, "{signed}");
        let signed_url = signed["signed_url"].as_str().unwrap().to_owned();
        assert!(
            signed_url.starts_with(&format!("{lora}?identity=")),
            "{signed_url}"
        );
        assert_eq!(fetch(signed_url.clone()).await, StatusCode::OK, "{acl:?}");
        fake.advance_clock(Duration::from_secs(61));
        assert_eq!(fetch(signed_url).await, refused, "expired");
    }
    let too_long = platform(
        &fake,
        reqwest::Method::POST,
        &format!("storage/files/sign?url={lora}"),
    )
    .json(&json!({ "expiration_seconds": 604_801 }));
    assert_platform_error(
        &answer(too_long).await,
        StatusCode::BAD_REQUEST,
        "validation_error",
    );
}

#[tokio::test]
async fn billing_events_bill_successful_requests_by_their_price_unit() {
    let fake = FakeFal::start().await;
    fake.set_script(quick_script());
    fake.set_price(TRAINER, 0.0024, "steps");
    fake.set_price("fal-ai/other-trainer", 2.0, "training");
    let mut input = training_input(&fake).await;
    input["steps"] = json!(1500);
    let by_steps = submit(&fake, &input).await;
    let other: Value = submit_to(&fake, "fal-ai/other-trainer", &input)
        .await
        .json()
        .await
        .unwrap();
    let failed = submit(&fake, &json!({ "steps": 10 })).await;
    for submitted in [&by_steps, &other, &failed] {
        completed_status(&fake, submitted).await;
    }

    let events_of = |request_id: &Value| {
        format!(
            "models/billing-events?request_id={}",
            request_id.as_str().unwrap()
        )
    };
    let not_admin = platform_get(&fake, &events_of(&by_steps["request_id"])).await;
    assert_platform_error(&not_admin, StatusCode::FORBIDDEN, "authorization_error");
    fake.set_admin_key(true);

    let (status, body) = platform_get(&fake, &events_of(&by_steps["request_id"])).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["has_more"], false);
    let event = &body["billing_events"][0];
    assert_eq!(event["request_id"], by_steps["request_id"]);
    assert_eq!(event["endpoint_id"], TRAINER);
    assert_eq!(event["output_units"], 1500.0);
    assert_eq!(event["unit_price"], 0.0024);
    assert_eq!(event["percent_discount"], Value::Null);
    assert_eq!(event["cost_estimate_nano_usd"], 3_600_000_000i64);
    assert!(event["timestamp"].as_str().unwrap().ends_with('Z'));

    let (_, body) = platform_get(&fake, &events_of(&other["request_id"])).await;
    assert_eq!(
        body["billing_events"][0]["output_units"], 1.0,
        "per training"
    );
    assert_eq!(
        body["billing_events"][0]["cost_estimate_nano_usd"],
        2_000_000_000i64
    );
    let (_, body) = platform_get(&fake, &events_of(&failed["request_id"])).await;
    assert_eq!(
        body["billing_events"],
        json!([]),
        "a failed job bills nothing"
    );
    let (_, all) = platform_get(&fake, "models/billing-events").await;
    assert_eq!(all["billing_events"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn platform_routes_take_faults_and_answer_while_the_queue_is_faulted() {
    let fake = FakeFal::start().await;
    fake.set_price(TRAINER, 0.0024, "steps");
    let pricing = format!("models/pricing?endpoint_id={TRAINER}");
    fake.push_fault(Fault::DropConnection {
        route: Route::Submit,
    });
    fake.push_fault(Fault::Status {
        route: Route::Pricing,
        status: 429,
        body: json!({ "error": { "type": "rate_limited", "message": "Slow down" } }),
        headers: vec![("Retry-After".into(), "1".into())],
    });
    let limited = platform_get(&fake, &pricing).await;
    assert_platform_error(&limited, StatusCode::TOO_MANY_REQUESTS, "rate_limited");
    assert_eq!(platform_get(&fake, &pricing).await.0, StatusCode::OK);

    fake.push_fault(Fault::Status {
        route: Route::RequestsByEndpoint,
        status: 500,
        body: json!({ "error": { "type": "server_error", "message": "Oops" } }),
        headers: Vec::new(),
    });
    let history = format!("models/requests/by-endpoint?endpoint_id={TRAINER}");
    let failed = platform_get(&fake, &history).await;
    assert_platform_error(&failed, StatusCode::INTERNAL_SERVER_ERROR, "server_error");
    let (status, _) = within("the history and its arrival", async {
        tokio::join!(
            platform_get(&fake, &history),
            fake.wait_for(Route::RequestsByEndpoint, 2)
        )
        .0
    })
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(fake.request_count(Route::Pricing), 2);

    let unknown = platform_get(&fake, "models/unknown").await;
    assert_platform_error(&unknown, StatusCode::NOT_FOUND, "not_found");
    // The queue's fault is still waiting for its submit.
    let dropped = http()
        .post(format!("{}/{TRAINER}", fake.base_url()))
        .header("Authorization", format!("Key {}", fake.api_key()))
        .json(&json!({}))
        .send()
        .await;
    assert!(dropped.is_err());
}
