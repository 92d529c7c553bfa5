//! Benchmark (issue figure): from fal's COMPLETED for a pack of 8 images (the fake fal on
//! loopback) to every image downloaded into the gallery with its likeness score, as the app
//! polls (every second by default). fal's COMPLETED is the moment the fake's request history
//! says the last request ended.
//!
//! usage: `cargo run --release -p studio --example bench_pack`

use std::time::Duration;

use fal_fake::{FakeFal, Outcome, Script};
use studio::{GenerationRequest, GenerationState, JobState, Overrides, Preset};

// Only some of the shared helpers are used here.
#[allow(dead_code)]
mod common;

/// The app's own poll interval (`FAL_POLL_INTERVAL_MS` unset).
const APP_POLL_MS: u64 = 1000;

#[tokio::main]
async fn main() {
    let fake = FakeFal::start().await;
    fake.set_script(Script {
        queue_time: Duration::from_millis(100),
        run_time: Duration::from_millis(300),
        outcome: Outcome::Success { lora_bytes: 4096 },
        ..Script::default()
    });
    let library = tempfile::tempdir().expect("library");
    let (studio, avatar) = common::studio_on_fake(&fake, library.path(), APP_POLL_MS);
    let plan = studio
        .plan_training(&avatar, Preset::Fast, Overrides::default())
        .await
        .expect("plan");
    let job = studio.start_training(&plan).await.expect("start");
    let job = studio.drive(job.id).await.expect("training");
    assert_eq!(job.state, JobState::Completed, "{job:?}");

    let pack = studio
        .plan_generation(&avatar, &GenerationRequest::default())
        .await
        .expect("plan");
    assert_eq!(pack.images, 8);
    let generation = studio.start_generation(&pack).await.expect("start");
    let done = studio
        .advance_generation(generation.id, |_| {})
        .await
        .expect("pack");
    let on_screen = chrono::Utc::now();
    assert_eq!(done.state, GenerationState::Completed, "{done:?}");

    let client = fal::FalClient::new(
        fal::Endpoints {
            queue_url: fake.base_url(),
            rest_url: fake.base_url(),
            platform_url: fake.platform_url(),
        },
        fake.api_key().to_string(),
        fal::RetryPolicy::default(),
    );
    let history = client
        .requests(&fal::RequestQuery {
            endpoint_id: &pack.endpoint,
            ..fal::RequestQuery::default()
        })
        .await
        .expect("history");
    let completed = history
        .iter()
        .filter_map(|record| record.ended_at)
        .max()
        .expect("the requests ended");
    let gallery = studio.gallery(&avatar).expect("gallery");
    let scored = gallery
        .iter()
        .filter(|image| image.likeness.is_some())
        .count();
    println!(
        "{} requests; last COMPLETED → {} images in the gallery, {scored} with a likeness score: {:.3} s (polls every {:.1} s)",
        history.len(),
        gallery.len(),
        (on_screen - completed).num_milliseconds() as f64 / 1000.0,
        APP_POLL_MS as f64 / 1000.0
    );
}
