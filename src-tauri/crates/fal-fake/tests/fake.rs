//! The fake driven over HTTP with plain reqwest, the way the real client talks to fal.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use fal_fake::{
    FakeFal, Fault, LORA_FILE_NAME, Outcome, Route, Script, WEBHOOK_ATTEMPTS, WEBHOOK_USER_ID,
};
use serde_json::{Value, json};

const TRAINER: &str = "fal-ai/flux-lora-portrait-trainer";
/// The smallest valid zip: an empty archive's end-of-central-directory record.
const EMPTY_ZIP: &[u8] = b"PK\x05\x06\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0";
const PATIENCE: Duration = Duration::from_secs(10);

fn http() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
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
    assert_eq!(body["status"], "NOT_FOUND");

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
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Receiver {
            // A query of its own, as a relay token would be: fal_webhook must carry it encoded.
            url: format!("http://{address}/hooks/fal?token=a%2Bb&kind=portrait"),
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
