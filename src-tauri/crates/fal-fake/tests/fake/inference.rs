//! The fake's LoRA inference endpoint, `fal-ai/flux-lora` (fal-protocol.md §4.4), driven over
//! HTTP with plain reqwest after a training on the same fake.

use std::future::Future;
use std::io::{Cursor, Write};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::StatusCode;
use fal_fake::{FakeFal, Script};
use image::{ImageFormat, Rgb, RgbImage};
use serde_json::{Value, json};
use tokio::sync::mpsc;

const TRAINER: &str = "fal-ai/flux-lora-portrait-trainer";
const FLUX_LORA: &str = "fal-ai/flux-lora";
const PATIENCE: Duration = Duration::from_secs(20);
/// Each training photo is dominated by one channel: red, green, blue, in archive order.
const PHOTO_CHANNELS: usize = 3;

fn http() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

async fn within<T>(what: &str, future: impl Future<Output = T>) -> T {
    tokio::time::timeout(PATIENCE, future)
        .await
        .unwrap_or_else(|_| panic!("{what} took longer than {PATIENCE:?}"))
}

fn quick_script() -> Script {
    Script {
        queue_time: Duration::from_millis(20),
        run_time: Duration::from_millis(60),
        ..Script::default()
    }
}

/// A 400×300 photo whose `channel` is bright everywhere and whose other channels rise from left
/// to right, so any crop of it is neither uniform nor mistaken for another photo.
fn photo(channel: usize, format: ImageFormat) -> Vec<u8> {
    let pixels = RgbImage::from_fn(400, 300, |x, _| {
        let mut pixel = Rgb([(x / 4) as u8; 3]);
        pixel[channel] = 230;
        pixel
    });
    let mut bytes = Vec::new();
    pixels
        .write_to(&mut Cursor::new(&mut bytes), format)
        .unwrap();
    bytes
}

/// A training zip of three photos (a PNG among JPEGs) with a caption beside each.
fn dataset() -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default();
    for channel in 0..PHOTO_CHANNELS {
        let (name, format) = if channel == 1 {
            ("photo_1.PNG".to_owned(), ImageFormat::Png)
        } else {
            (format!("photo_{channel}.jpg"), ImageFormat::Jpeg)
        };
        zip.start_file(name, options).unwrap();
        zip.write_all(&photo(channel, format)).unwrap();
        zip.start_file(format!("photo_{channel}.txt"), options)
            .unwrap();
        zip.write_all(b"a photo of ohwx person").unwrap();
    }
    zip.finish().unwrap().into_inner()
}

/// Uploads `bytes` through the fake's storage and returns the public file URL.
async fn upload(fake: &FakeFal, bytes: Vec<u8>, file_name: &str, content_type: &str) -> String {
    let http = http();
    let initiated: Value = http
        .post(format!("{}/storage/upload/initiate", fake.base_url()))
        .query(&[("storage_type", "fal-cdn-v3")])
        .header("Authorization", format!("Key {}", fake.api_key()))
        .json(&json!({ "content_type": content_type, "file_name": file_name }))
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap()
        .json()
        .await
        .unwrap();
    http.put(initiated["upload_url"].as_str().unwrap())
        .header("Content-Type", content_type)
        .body(bytes)
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap();
    initiated["file_url"].as_str().unwrap().to_owned()
}

/// Submits `input` to `endpoint_id` with `headers` and returns the submit answer.
async fn submit_with(
    fake: &FakeFal,
    endpoint_id: &str,
    input: &Value,
    headers: &[(&str, &str)],
) -> Value {
    let mut request = http()
        .post(format!("{}/{endpoint_id}", fake.base_url()))
        .header("Authorization", format!("Key {}", fake.api_key()))
        .json(input);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

async fn submit(fake: &FakeFal, endpoint_id: &str, input: &Value) -> Value {
    submit_with(fake, endpoint_id, input, &[]).await
}

async fn get(fake: &FakeFal, url: &str) -> (StatusCode, Value) {
    let response = http()
        .get(url)
        .header("Authorization", format!("Key {}", fake.api_key()))
        .send()
        .await
        .unwrap();
    (
        response.status(),
        response.json().await.unwrap_or(Value::Null),
    )
}

/// Polls the status until it shows `status`, and returns that answer.
async fn status_until(fake: &FakeFal, submitted: &Value, status: &str) -> Value {
    let url = format!("{}?logs=1", submitted["status_url"].as_str().unwrap());
    within("polling", async {
        loop {
            let (_, body) = get(fake, &url).await;
            if body["status"] == status {
                return body;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
}

/// Runs the job to completion and returns its result's status and body.
async fn finished(fake: &FakeFal, submitted: &Value) -> (StatusCode, Value) {
    status_until(fake, submitted, "COMPLETED").await;
    get(fake, submitted["response_url"].as_str().unwrap()).await
}

/// Trains on [`dataset`] and returns the training's request id and its LoRA URL.
async fn train(fake: &FakeFal, headers: &[(&str, &str)]) -> (String, String) {
    let dataset = upload(fake, dataset(), "train.zip", "application/zip").await;
    let input = json!({ "images_data_url": dataset, "trigger_phrase": "ohwx person" });
    let submitted = submit_with(fake, TRAINER, &input, headers).await;
    let (status, output) = finished(fake, &submitted).await;
    assert_eq!(status, StatusCode::OK, "{output}");
    (
        submitted["request_id"].as_str().unwrap().to_owned(),
        output["diffusers_lora_file"]["url"]
            .as_str()
            .unwrap()
            .to_owned(),
    )
}

async fn download(url: &str) -> Bytes {
    let response = http().get(url).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK, "{url}");
    response.bytes().await.unwrap()
}

/// The mean of each channel over the image.
fn mean_colour(pixels: &RgbImage) -> [f64; 3] {
    let count = f64::from(pixels.width() * pixels.height());
    let mut sums = [0.0; 3];
    for pixel in pixels.pixels() {
        for (sum, value) in sums.iter_mut().zip(pixel.0) {
            *sum += f64::from(value);
        }
    }
    sums.map(|sum| sum / count)
}

/// Which training photo an image was made from: its brightest channel.
fn source_photo(pixels: &RgbImage) -> usize {
    let mean = mean_colour(pixels);
    (0..3).max_by(|a, b| mean[*a].total_cmp(&mean[*b])).unwrap()
}

/// Downloads the image at `url`, checks it is a `format` file, and decodes it.
async fn image_at(url: &str, format: ImageFormat) -> RgbImage {
    let bytes = download(url).await;
    assert_eq!(image::guess_format(&bytes).unwrap(), format, "{url}");
    image::load_from_memory(&bytes).unwrap().to_rgb8()
}

/// Checks the images of `output` are made from the training photos, photo `(seed + i) % 3` for
/// image `i`, at `width`×`height`.
async fn assert_made_from_the_photos(output: &Value, seed: u64, width: u32, height: u32) {
    for (index, image) in output["images"].as_array().unwrap().iter().enumerate() {
        let pixels = image_at(image["url"].as_str().unwrap(), ImageFormat::Jpeg).await;
        assert_eq!(pixels.dimensions(), (width, height));
        assert_eq!(
            source_photo(&pixels),
            (seed as usize + index) % PHOTO_CHANNELS,
            "image {index}"
        );
        let columns = [
            pixels.get_pixel(0, height / 2),
            pixels.get_pixel(width - 1, height / 2),
        ];
        let other = (source_photo(&pixels) + 1) % 3;
        assert!(
            columns[1][other] > columns[0][other] + 20,
            "a crop of the photo's gradient, not a flat colour: {columns:?}"
        );
    }
}

#[tokio::test]
async fn an_inference_with_a_trained_lora_shows_the_training_photos() {
    let fake = FakeFal::start().await;
    fake.set_script(quick_script());
    let (_, lora_url) = train(&fake, &[]).await;

    let (webhooks, mut received) = mpsc::unbounded_channel::<Value>();
    let receiver = axum::Router::new().fallback(move |body: Bytes| {
        let webhooks = webhooks.clone();
        async move {
            webhooks
                .send(serde_json::from_slice(&body).unwrap())
                .unwrap();
            StatusCode::OK
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let webhook_url = format!("http://{}/hooks/fal", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, receiver).await });

    let input = json!({
        "prompt": "ohwx person on a beach",
        "loras": [{ "path": lora_url, "scale": 1.0 }],
        "image_size": { "width": 320, "height": 240 },
        "num_images": 2,
        "seed": 7,
    });
    let submitted: Value = http()
        .post(format!("{}/{FLUX_LORA}", fake.base_url()))
        .query(&[("fal_webhook", &webhook_url)])
        .header("Authorization", format!("Key {}", fake.api_key()))
        .json(&input)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let request_id = submitted["request_id"].as_str().unwrap();
    assert_eq!(
        submitted["response_url"],
        format!("{}/{FLUX_LORA}/requests/{request_id}", fake.base_url())
    );
    let completed = status_until(&fake, &submitted, "COMPLETED").await;
    assert!(completed.get("error").is_none(), "{completed}");
    let messages: Vec<&str> = completed["logs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|log| log["message"].as_str().unwrap())
        .collect();
    assert!(messages.contains(&"Generated 2 image(s)"), "{messages:?}");

    let (status, output) = get(&fake, submitted["response_url"].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{output}");
    assert_eq!(output["seed"], 7);
    assert_eq!(output["prompt"], "ohwx person on a beach");
    assert_eq!(output["has_nsfw_concepts"], json!([false, false]));
    assert!(output["timings"]["inference"].as_f64().unwrap() > 0.0);
    let files = format!("{}/files/{request_id}", fake.base_url());
    for (index, image) in output["images"].as_array().unwrap().iter().enumerate() {
        let file_name = format!("image_{index}.jpg");
        assert_eq!(image["url"], format!("{files}/{file_name}"));
        assert_eq!(image["file_name"], file_name.as_str());
        assert_eq!(image["content_type"], "image/jpeg");
        assert_eq!(
            (image["width"].as_u64(), image["height"].as_u64()),
            (Some(320), Some(240))
        );
        let bytes = download(image["url"].as_str().unwrap()).await;
        assert_eq!(image["file_size"], bytes.len());
    }
    assert_made_from_the_photos(&output, 7, 320, 240).await;

    let webhook = within("the webhook", received.recv()).await.unwrap();
    assert_eq!(webhook["status"], "OK");
    assert_eq!(webhook["payload"], output);
    let history: Value = http()
        .get(format!(
            "{}/models/requests/by-endpoint",
            fake.platform_url()
        ))
        .query(&[("endpoint_id", FLUX_LORA), ("expand", "payloads")])
        .header("Authorization", format!("Key {}", fake.api_key()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(history["items"][0]["request_id"], request_id);
    assert_eq!(history["items"][0]["json_input"], input);
    assert_eq!(history["items"][0]["json_output"], output);
}

#[tokio::test]
async fn flux_lora_is_priced_per_megapixel_and_bills_its_images() {
    let fake = FakeFal::start().await;
    fake.set_script(quick_script());
    fake.set_admin_key(true);
    let platform = |path: &str| {
        http()
            .get(format!("{}/{path}", fake.platform_url()))
            .header("Authorization", format!("Key {}", fake.api_key()))
    };
    let prices: Value = platform(&format!("models/pricing?endpoint_id={FLUX_LORA}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        prices["prices"],
        json!([{ "endpoint_id": FLUX_LORA, "unit_price": 0.035, "unit": "megapixels", "currency": "USD" }])
    );

    let submitted = submit(
        &fake,
        FLUX_LORA,
        &json!({ "prompt": "a lake", "image_size": "square_hd", "num_images": 2 }),
    )
    .await;
    let (status, output) = finished(&fake, &submitted).await;
    assert_eq!(status, StatusCode::OK, "{output}");
    let events: Value = platform(&format!(
        "models/billing-events?request_id={}",
        submitted["request_id"].as_str().unwrap()
    ))
    .send()
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let event = &events["billing_events"][0];
    assert_eq!(
        event["output_units"], 4.0,
        "1024×1024 rounds up to 2 megapixels, twice"
    );
    assert_eq!(event["cost_estimate_nano_usd"], 140_000_000i64);
}

#[tokio::test]
async fn invalid_inference_input_fails_with_a_validation_error_naming_each_field() {
    let fake = FakeFal::start().await;
    fake.set_script(quick_script());
    let submitted = submit(
        &fake,
        FLUX_LORA,
        &json!({
            "num_images": 9,
            "loras": [{ "scale": 1 }],
            "image_size": "huge",
            "output_format": "webp",
        }),
    )
    .await;
    let completed = status_until(&fake, &submitted, "COMPLETED").await;
    assert_eq!(completed["error_type"], "validation_error");
    assert!(
        completed["error"]
            .as_str()
            .unwrap()
            .contains("loras.0.path: field required"),
        "{completed}"
    );

    let (status, body) = get(&fake, submitted["response_url"].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let presets = "'square_hd', 'square', 'portrait_4_3', 'portrait_16_9', 'landscape_4_3', \
                   'landscape_16_9'";
    assert_eq!(
        body,
        json!({ "detail": [
            { "loc": ["body", "prompt"], "msg": "field required", "type": "value_error.missing" },
            { "loc": ["body", "loras", 0, "path"], "msg": "field required", "type": "value_error.missing" },
            {
                "loc": ["body", "image_size"],
                "msg": format!("value is not a valid enumeration member; permitted: {presets}"),
                "type": "type_error.enum",
            },
            {
                "loc": ["body", "num_images"],
                "msg": "ensure this value is less than or equal to 4",
                "type": "value_error.number.not_le",
            },
            {
                "loc": ["body", "output_format"],
                "msg": "value is not a valid enumeration member; permitted: 'jpeg', 'png'",
                "type": "type_error.enum",
            },
        ] })
    );

    let wrong_types = submit(
        &fake,
        FLUX_LORA,
        &json!({ "prompt": 3, "seed": "seven", "image_size": { "width": 0 }, "guidance_scale": 40 }),
    )
    .await;
    let (status, body) = finished(&fake, &wrong_types).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let faults: Vec<(Value, &str)> = body["detail"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| (item["loc"].clone(), item["type"].as_str().unwrap()))
        .collect();
    assert_eq!(
        faults,
        vec![
            (json!(["body", "prompt"]), "type_error.str"),
            (
                json!(["body", "image_size", "width"]),
                "value_error.number.not_ge"
            ),
            (json!(["body", "seed"]), "type_error.integer"),
            (
                json!(["body", "guidance_scale"]),
                "value_error.number.not_le"
            ),
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn a_lora_whose_outputs_expired_cannot_be_downloaded() {
    let fake = FakeFal::start().await;
    fake.set_script(quick_script());
    let preference = json!({ "expiration_duration_seconds": 600 }).to_string();
    let (_, lora_url) = train(
        &fake,
        &[("X-Fal-Object-Lifecycle-Preference", preference.as_str())],
    )
    .await;
    tokio::time::advance(Duration::from_secs(600)).await;

    let input = json!({ "prompt": "ohwx person", "loras": [{ "path": lora_url }] });
    let submitted = submit(&fake, FLUX_LORA, &input).await;
    let completed = status_until(&fake, &submitted, "COMPLETED").await;
    assert_eq!(completed["error_type"], "file_download_error");
    let (status, body) = get(&fake, submitted["response_url"].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let item = &body["detail"][0];
    assert_eq!(item["loc"], json!(["body", "loras", 0, "path"]));
    assert_eq!(item["type"], "file_download_error");
    let message = item["msg"].as_str().unwrap();
    assert!(
        message.contains(&lora_url) && message.contains("HTTP 404"),
        "{message}"
    );
}

#[tokio::test]
async fn the_safety_checker_blacks_out_flagged_images() {
    let fake = FakeFal::start().await;
    fake.set_script(Script {
        flag_images: vec![1],
        ..quick_script()
    });
    let input = json!({ "prompt": "a lake", "num_images": 2, "output_format": "png" });
    let (status, checked) = finished(&fake, &submit(&fake, FLUX_LORA, &input).await).await;
    assert_eq!(status, StatusCode::OK, "{checked}");
    assert_eq!(checked["has_nsfw_concepts"], json!([false, true]));
    let images = checked["images"].as_array().unwrap();
    assert_eq!(images[1]["content_type"], "image/png");
    assert!(images[1]["url"].as_str().unwrap().ends_with("/image_1.png"));
    let plain = image_at(images[0]["url"].as_str().unwrap(), ImageFormat::Png).await;
    let flagged = image_at(images[1]["url"].as_str().unwrap(), ImageFormat::Png).await;
    assert_eq!(plain.dimensions(), (1024, 768), "landscape_4_3 by default");
    assert_eq!(flagged.dimensions(), (1024, 768), "black at the same size");
    assert!(
        plain.pixels().all(|pixel| *pixel == Rgb([128, 128, 128])),
        "no LoRA, no photos: plain grey"
    );
    assert!(flagged.pixels().all(|pixel| *pixel == Rgb([0, 0, 0])));

    let unchecked_input = json!({
        "prompt": "a lake",
        "num_images": 2,
        "image_size": "square",
        "enable_safety_checker": false,
    });
    let (_, unchecked) = finished(&fake, &submit(&fake, FLUX_LORA, &unchecked_input).await).await;
    assert_eq!(unchecked["has_nsfw_concepts"], json!([false, false]));
    let kept = image_at(
        unchecked["images"][1]["url"].as_str().unwrap(),
        ImageFormat::Jpeg,
    )
    .await;
    assert_eq!(kept.dimensions(), (512, 512));
    let mean = mean_colour(&kept);
    assert!(
        mean.iter().all(|channel| (channel - 128.0).abs() < 2.0),
        "not blacked out: {mean:?}"
    );
}

#[tokio::test]
async fn a_reuploaded_lora_leads_back_to_its_training() {
    let fake = FakeFal::start().await;
    fake.set_script(quick_script());
    let (training_id, lora_url) = train(&fake, &[]).await;
    let lora = download(&lora_url).await;
    let header_len = u64::from_le_bytes(lora[..8].try_into().unwrap()) as usize;
    let header: Value = serde_json::from_slice(&lora[8..8 + header_len]).unwrap();
    assert_eq!(
        header["__metadata__"]["fake_training_request"],
        training_id.as_str()
    );

    let copy = upload(
        &fake,
        lora.to_vec(),
        "avatar.safetensors",
        "application/octet-stream",
    )
    .await;
    assert!(!copy.contains(&training_id), "a URL of the fake's storage");
    let input = json!({
        "prompt": "ohwx person",
        "loras": [{ "path": copy }],
        "image_size": "portrait_16_9",
        "num_images": 3,
        "seed": 11,
    });
    let (status, output) = finished(&fake, &submit(&fake, FLUX_LORA, &input).await).await;
    assert_eq!(status, StatusCode::OK, "{output}");
    assert_made_from_the_photos(&output, 11, 576, 1024).await;

    let not_a_lora = upload(&fake, dataset(), "avatar.safetensors", "application/zip").await;
    let input = json!({ "prompt": "ohwx person", "loras": [{ "path": not_a_lora }] });
    let (status, body) = finished(&fake, &submit(&fake, FLUX_LORA, &input).await).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        body["detail"][0]["loc"],
        json!(["body", "loras", 0, "path"])
    );
    assert_eq!(body["detail"][0]["type"], "lora_load_error");
}

#[tokio::test]
async fn an_inference_stops_on_cancel_while_queued_or_running() {
    for phase in ["IN_QUEUE", "IN_PROGRESS"] {
        let fake = FakeFal::start().await;
        fake.set_script(Script {
            queue_time: if phase == "IN_QUEUE" {
                Duration::from_secs(30)
            } else {
                Duration::ZERO
            },
            run_time: Duration::from_secs(30),
            ..Script::default()
        });
        let submitted = submit(&fake, FLUX_LORA, &json!({ "prompt": "a lake" })).await;
        status_until(&fake, &submitted, phase).await;
        let cancelled = http()
            .put(submitted["cancel_url"].as_str().unwrap())
            .header("Authorization", format!("Key {}", fake.api_key()))
            .send()
            .await
            .unwrap();
        assert_eq!(cancelled.status(), StatusCode::ACCEPTED);
        let completed = status_until(&fake, &submitted, "COMPLETED").await;
        assert_eq!(completed["error_type"], "client_cancelled", "{phase}");
    }
}

#[tokio::test]
async fn another_endpoint_can_be_served_as_an_inference() {
    let fake = FakeFal::start().await;
    fake.set_script(quick_script());
    fake.serve_inference_endpoint("fal-ai/flux-2/lora");
    let submitted = submit(&fake, "fal-ai/flux-2/lora", &json!({ "prompt": "a lake" })).await;
    let (status, output) = finished(&fake, &submitted).await;
    assert_eq!(status, StatusCode::OK, "{output}");
    assert_eq!(output["images"].as_array().unwrap().len(), 1);
}
