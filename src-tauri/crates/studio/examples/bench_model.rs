//! Benchmark: from fal reporting COMPLETED to the LoRA file verified in the library, with a
//! 90 MB LoRA served by the fake fal on loopback.
//!
//! usage: `cargo run -p studio --example bench_model`

use std::time::{Duration, Instant};

use fal_fake::{FakeFal, Outcome, Script};
use studio::{JobState, Overrides, Preset};

// Only some of the shared helpers are used here.
#[allow(dead_code)]
mod common;

/// The size of a real flux-lora-fast-training LoRA (fal-protocol.md §3).
const LORA_BYTES: u64 = 89_745_224;

#[tokio::main]
async fn main() {
    let fake = FakeFal::start().await;
    fake.set_script(Script {
        queue_time: Duration::from_millis(100),
        run_time: Duration::from_millis(300),
        outcome: Outcome::Success {
            lora_bytes: LORA_BYTES,
        },
        ..Script::default()
    });
    let library = tempfile::tempdir().expect("library");
    let (studio, avatar) = common::studio_on_fake(&fake, library.path(), 100);
    let plan = studio
        .plan_training(&avatar, Preset::Fast, Overrides::default())
        .await
        .expect("plan");
    let job = studio.start_training(&plan).await.expect("start");
    let mut completed_seen: Option<Instant> = None;
    let job = studio
        .follow(job.id, |job| {
            if job.state == JobState::Downloading && completed_seen.is_none() {
                completed_seen = Some(Instant::now());
            }
            true
        })
        .await
        .expect("training");
    let verified = Instant::now();
    assert_eq!(job.state, JobState::Completed, "{job:?}");
    let seen = completed_seen.expect("the job passed through downloading");
    println!(
        "COMPLETED seen by a poll → {:.1} MB LoRA downloaded, verified and in place: {:.3} s (polls every 0.1 s, so at most 0.1 s more from fal's COMPLETED)",
        LORA_BYTES as f64 / 1e6,
        (verified - seen).as_secs_f64()
    );
}
