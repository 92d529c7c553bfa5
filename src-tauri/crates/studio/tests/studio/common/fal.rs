//! Helpers shared by the tests that train and make packs on the fake fal: a studio over a
//! library talking to the fake, an avatar ready to train, a plan started as confirmed.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use fal_fake::{FakeFal, Outcome, Script};
use studio::{
    Gender, JobState, MemorySecrets, NewAvatar, Overrides, Preset, RecordingNotifier, SecretName,
    Studio, SystemClock, TestStudio, TrainingJob, TrainingType,
};

use super::cases;

/// A studio on `library` talking to `fake`, with quick polls and retries so tests stay short.
pub struct Setup {
    pub studio: Studio,
    pub notifier: Arc<RecordingNotifier>,
}

pub fn open(library: &Path, fake: Option<&FakeFal>, key: &str, vars: &[(&str, String)]) -> Setup {
    open_with(
        library,
        fake,
        MemorySecrets::default().with(SecretName::FalKey, key),
        vars,
    )
}

pub fn open_with(
    library: &Path,
    fake: Option<&FakeFal>,
    secrets: MemorySecrets,
    vars: &[(&str, String)],
) -> Setup {
    open_with_clock(library, fake, secrets, vars, Arc::new(SystemClock))
}

pub fn open_with_clock(
    library: &Path,
    fake: Option<&FakeFal>,
    secrets: MemorySecrets,
    vars: &[(&str, String)],
    clock: Arc<dyn studio::Clock>,
) -> Setup {
    let mut all: Vec<(String, String)> = vec![
        ("AVATAR_MIN_PHOTOS".into(), "2".into()),
        ("FAL_POLL_INTERVAL_MS".into(), "40".into()),
        ("FAL_RETRY_BASE_MS".into(), "20".into()),
        ("AVATAR_STUDIO_JOB_LEASE_SECS".into(), "1".into()),
        ("FAL_MOCK_TRAINING_DURATION".into(), "1".into()),
    ];
    if let Some(fake) = fake {
        all.push(("FAL_QUEUE_URL".into(), fake.base_url()));
        all.push(("FAL_REST_URL".into(), fake.base_url()));
        all.push(("FAL_PLATFORM_URL".into(), fake.platform_url()));
        all.push(("FAL_TRAINING_TEST_MODE".into(), "false".into()));
    }
    all.extend(
        vars.iter()
            .map(|(name, value)| (name.to_string(), value.clone())),
    );
    let (studio, notifier) = TestStudio::new(library)
        .vars(
            all.iter()
                .map(|(name, value)| (name.as_str(), value.clone())),
        )
        .secrets(secrets)
        .clock(clock)
        .open_recording()
        .expect("studio");
    Setup { studio, notifier }
}

/// An avatar holding two accepted photos (the tests lower the minimum to two).
pub fn avatar_with_photos(studio: &Studio, training_type: TrainingType) -> String {
    let avatar = studio
        .create_avatar(NewAvatar {
            name: "Anna".into(),
            gender: Gender::Female,
            training_type,
        })
        .expect("avatar");
    let files = match training_type {
        TrainingType::Portrait => ["good_portrait.jpg", "rotated_exif.jpg"],
        TrainingType::Style => ["good_style.jpg", "webp_good.webp"],
    };
    let paths: Vec<PathBuf> = files.iter().map(|name| cases().join(name)).collect();
    let readiness = studio
        .add_photos(&avatar.id.to_string(), &paths, |_| {})
        .expect("photos");
    assert!(readiness.ready, "{readiness:?}");
    avatar.id.to_string()
}

/// Starts the plan the creator would have confirmed for `preset`.
pub async fn start(studio: &Studio, avatar: &str, preset: Preset) -> studio::Result<TrainingJob> {
    let plan = studio
        .plan_training(avatar, preset, Overrides::default())
        .await?;
    studio.start_training(&plan).await
}

pub async fn train(studio: &Studio, avatar: &str, preset: Preset) -> TrainingJob {
    let job = start(studio, avatar, preset).await.expect("start");
    studio.drive(job.id).await.expect("drive")
}

pub fn quick_script(outcome: Outcome) -> Script {
    Script {
        queue_time: Duration::from_millis(150),
        run_time: Duration::from_millis(500),
        outcome,
        ..Script::default()
    }
}

pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return found;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(files_under(&path));
        } else {
            found.push(path);
        }
    }
    found
}

pub fn no_partial_files(library: &Path) {
    for dir in ["models", "work"] {
        let leftovers: Vec<PathBuf> = files_under(&library.join(dir))
            .into_iter()
            .filter(|path| path.to_string_lossy().ends_with(".partial") || dir == "work")
            .collect();
        assert!(leftovers.is_empty(), "left behind: {leftovers:?}");
    }
}

/// A portrait trained on the fake, ready for sample packs.
pub async fn trained_on_fal(fake: &FakeFal, library: &Path) -> (Setup, String, TrainingJob) {
    let setup = open(library, Some(fake), fake.api_key(), &[]);
    let avatar = avatar_with_photos(&setup.studio, TrainingType::Portrait);
    let job = train(&setup.studio, &avatar, Preset::Fast).await;
    assert_eq!(job.state, JobState::Completed, "{job:?}");
    (setup, avatar, job)
}

pub async fn start_pack(
    studio: &Studio,
    avatar: &str,
    prompts: &[&str],
    count: u32,
) -> studio::Generation {
    let request = studio::GenerationRequest {
        pack: None,
        prompts: prompts.iter().map(|prompt| prompt.to_string()).collect(),
        count: Some(count),
        seed: Some(11),
    };
    let plan = studio
        .plan_generation(avatar, &request)
        .await
        .expect("plan");
    studio.start_generation(&plan).await.expect("start")
}

/// fal takes the next submit, and its answer is lost on the way back (a gateway's 504).
pub fn lose_next_submit_answer(fake: &FakeFal) {
    fake.push_fault(fal_fake::Fault::AcceptThenAnswer {
        route: fal_fake::Route::Submit,
        status: 504,
        body: r#"{"detail": "upstream failed"}"#.into(),
        headers: Vec::new(),
    });
}

pub fn inference_submissions(fake: &FakeFal) -> Vec<fal_fake::Submission> {
    fake.submissions()
        .into_iter()
        .filter(|submission| submission.endpoint_id == studio::DEFAULT_GENERATION_ENDPOINT)
        .collect()
}

/// Advances `generation` until `count` of its requests have reached the fake, and stops there,
/// as a process killed at that moment would; the caller drops the studio.
pub async fn advance_until_sent(
    studio: &Studio,
    fake: &FakeFal,
    generation: uuid::Uuid,
    count: usize,
) {
    let sent = async {
        while inference_submissions(fake).len() < count {
            tokio::task::yield_now().await;
        }
    };
    // `sent` is looked at first whenever the task wakes: the fake records a submit before it
    // answers, so the pack stops before it can claim its next request on that answer.
    tokio::select! {
        biased;
        () = sent => {}
        outcome = studio.advance_generation(generation, |_| {}) => {
            panic!("the pack should still be running: {outcome:?}")
        }
    }
}
