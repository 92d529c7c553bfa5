//! Training against a faithful fake of fal on loopback and a real S3 server (s3s-fs): full runs,
//! progress from logs, failures, cancels, retries, a wrong key, an expired result, and a process
//! that stops at every stage and is replaced by a fresh one that finishes the job.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use fal_fake::{FakeFal, Fault, Outcome, Route, Script};
use studio::{
    Config, Gender, JobState, MemorySecrets, NewAvatar, Overrides, Ports, Preset,
    RecordingNotifier, SecretName, Studio, SystemClock, TrainingJob, TrainingType,
};

fn cases() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../tests/fixtures/cases")
}

/// A studio on `library` talking to `fake`, with quick polls and retries so tests stay short.
struct Setup {
    studio: Studio,
    notifier: Arc<RecordingNotifier>,
}

fn open(library: &Path, fake: Option<&FakeFal>, key: &str, vars: &[(&str, String)]) -> Setup {
    open_with(
        library,
        fake,
        MemorySecrets::default().with(SecretName::FalKey, key),
        vars,
    )
}

fn open_with(
    library: &Path,
    fake: Option<&FakeFal>,
    secrets: MemorySecrets,
    vars: &[(&str, String)],
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
        all.push(("FAL_TRAINING_TEST_MODE".into(), "false".into()));
    }
    all.extend(
        vars.iter()
            .map(|(name, value)| (name.to_string(), value.clone())),
    );
    let config = Config::from_lookup(Some(library.to_path_buf()), |name| {
        all.iter()
            .rev()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.clone())
    })
    .expect("config");
    let notifier = Arc::new(RecordingNotifier::default());
    let studio = Studio::open(
        config,
        Ports {
            clock: Arc::new(SystemClock),
            secrets: Arc::new(secrets),
            notifier: notifier.clone(),
        },
    )
    .expect("studio");
    Setup { studio, notifier }
}

/// An avatar holding two accepted photos (the tests lower the minimum to two).
fn avatar_with_photos(studio: &Studio, training_type: TrainingType) -> String {
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

async fn train(studio: &Studio, avatar: &str, preset: Preset) -> TrainingJob {
    let job = studio
        .start_training(avatar, preset, Overrides::default())
        .expect("start");
    studio.drive(job.id).await.expect("drive")
}

fn quick_script(outcome: Outcome) -> Script {
    Script {
        queue_time: Duration::from_millis(150),
        run_time: Duration::from_millis(500),
        outcome,
        ..Script::default()
    }
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
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

fn no_partial_files(library: &Path) {
    for dir in ["models", "work"] {
        let leftovers: Vec<PathBuf> = files_under(&library.join(dir))
            .into_iter()
            .filter(|path| path.to_string_lossy().ends_with(".partial") || dir == "work")
            .collect();
        assert!(leftovers.is_empty(), "left behind: {leftovers:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_portrait_run_uploads_to_fal_storage_follows_the_logs_and_saves_a_verified_model() {
    let library = tempfile::tempdir().expect("library");
    let fake = FakeFal::start().await;
    fake.set_script(quick_script(Outcome::Success {
        lora_bytes: 64 * 1024,
    }));
    let setup = open(
        library.path(),
        Some(&fake),
        fake.api_key(),
        &[(
            "FAL_WEBHOOK_URL",
            "https://relay.example/api/avatar/status_update".into(),
        )],
    );
    let avatar = avatar_with_photos(&setup.studio, TrainingType::Portrait);
    let job = setup
        .studio
        .start_training(&avatar, Preset::Fast, Overrides::default())
        .expect("start");
    let mut seen = Vec::new();
    let job = setup
        .studio
        .follow(job.id, |job| {
            seen.push(job.clone());
            true
        })
        .await
        .expect("drive");

    assert_eq!(job.state, JobState::Completed, "{job:?}");
    assert_eq!(job.progress, 100);
    assert_eq!(job.storage.as_deref(), Some("fal"));
    let model = PathBuf::from(job.model_path.as_deref().expect("model path"));
    assert_eq!(std::fs::metadata(&model).expect("model").len(), 64 * 1024);
    studio::verify_safetensors(&model, Some(64 * 1024)).expect("valid safetensors");
    assert!(
        job.model_url
            .as_deref()
            .is_some_and(|url| url.starts_with(&fake.base_url()))
    );
    no_partial_files(library.path());

    let submissions = fake.submissions();
    assert_eq!(submissions.len(), 1);
    let input = &submissions[0].input;
    assert_eq!(
        submissions[0].endpoint_id,
        "fal-ai/flux-lora-portrait-trainer"
    );
    assert_eq!(input["steps"], 500);
    assert_eq!(input["learning_rate"], 0.0003);
    assert_eq!(input["trigger_phrase"], studio::TRIGGER_PHRASE);
    assert_eq!(
        submissions[0].webhook_url.as_deref(),
        Some("https://relay.example/api/avatar/status_update?training_type=portrait")
    );
    let uploads = fake.uploads();
    assert_eq!(uploads.len(), 1, "one zip");
    assert_eq!(uploads[0].content_type, "application/zip");

    let states: Vec<JobState> = seen.iter().map(|job| job.state).collect();
    for state in [JobState::Queued, JobState::Running, JobState::Downloading] {
        assert!(states.contains(&state), "never {state}: {states:?}");
    }
    let stepped = seen.iter().find(|job| {
        job.status_text
            .as_deref()
            .is_some_and(|text| text.starts_with("Training: step"))
    });
    let stepped = stepped.expect("progress read from the trainer's logs");
    assert!((10..95).contains(&stepped.progress), "{stepped:?}");
    assert!(seen.iter().any(|job| job.queue_position.is_some()));

    let avatar = setup.studio.avatar(&avatar).expect("avatar");
    assert_eq!(avatar.status, studio::AvatarStatus::Completed);
    assert_eq!(avatar.finetune_id, job.request_id);
    let notices = setup.notifier.notices();
    assert_eq!(notices.len(), 1);
    assert_eq!(notices[0].outcome, JobState::Completed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_style_run_goes_through_s3_with_a_presigned_url_the_trainer_can_fetch() {
    let library = tempfile::tempdir().expect("library");
    let s3 = s3::test_server::S3TestServer::start();
    let settings = s3.settings("avatars");
    let fake = FakeFal::start().await;
    fake.set_script(quick_script(Outcome::Success { lora_bytes: 4096 }));
    let secrets = MemorySecrets::default()
        .with(SecretName::FalKey, fake.api_key())
        .with(SecretName::S3SecretKey, &settings.secret_key);
    let vars = [
        ("S3_ENDPOINT", settings.endpoint.clone()),
        ("S3_BUCKET", settings.bucket.clone()),
        ("S3_REGION", settings.region.clone()),
        ("S3_ACCESS_KEY", settings.access_key.clone()),
    ];
    let setup = open_with(library.path(), Some(&fake), secrets, &vars);
    let avatar = avatar_with_photos(&setup.studio, TrainingType::Style);
    let job = train(&setup.studio, &avatar, Preset::Quality).await;

    assert_eq!(job.state, JobState::Completed, "{job:?}");
    assert_eq!(job.storage.as_deref(), Some("s3"));
    let key = job.dataset_key.as_deref().expect("zip key");
    assert!(
        key.starts_with(&format!("avatars/{avatar}/training/")),
        "{key}"
    );
    let input = &fake.submissions()[0].input;
    assert_eq!(
        fake.submissions()[0].endpoint_id,
        "fal-ai/flux-lora-fast-training"
    );
    assert_eq!(input["is_style"], true);
    assert_eq!(input["steps"], 1000);
    assert!(fake.uploads().is_empty(), "nothing went to fal storage");
    let photos = setup.studio.list_photos(&avatar).expect("photos");
    for photo in &photos {
        let key = photo
            .minio_key
            .as_deref()
            .expect("each photo keeps its object key");
        let stored = s3.data_dir().join("avatars").join(key);
        assert!(stored.exists(), "{}", stored.display());
    }
    assert_eq!(setup.notifier.notices().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_run_records_the_reason_in_words_and_notifies() {
    let library = tempfile::tempdir().expect("library");
    let fake = FakeFal::start().await;
    fake.set_script(quick_script(Outcome::Failure {
        status: 422,
        error: "Not enough faces were found in the training images".into(),
        error_type: "validation_error".into(),
        detail: serde_json::json!([{"loc": ["body", "images_data_url"], "msg": "Not enough faces were found in the training images", "type": "value_error"}]),
    }));
    let setup = open(library.path(), Some(&fake), fake.api_key(), &[]);
    let avatar = avatar_with_photos(&setup.studio, TrainingType::Portrait);
    let job = train(&setup.studio, &avatar, Preset::Balanced).await;
    assert_eq!(job.state, JobState::Failed);
    let error = job.error.expect("reason");
    assert!(error.contains("Not enough faces"), "{error}");
    assert!(job.model_path.is_none());
    let notices = setup.notifier.notices();
    assert_eq!(notices.len(), 1);
    assert_eq!(notices[0].outcome, JobState::Failed);
    let avatar = setup.studio.avatar(&avatar).expect("avatar");
    assert_eq!(avatar.status, studio::AvatarStatus::Error);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_while_queued_ends_the_job_cancelled_once_fal_confirms() {
    let library = tempfile::tempdir().expect("library");
    let fake = FakeFal::start().await;
    fake.set_script(Script {
        queue_time: Duration::from_secs(30),
        ..Script::default()
    });
    let setup = open(library.path(), Some(&fake), fake.api_key(), &[]);
    let avatar = avatar_with_photos(&setup.studio, TrainingType::Portrait);
    let job = setup
        .studio
        .start_training(&avatar, Preset::Fast, Overrides::default())
        .expect("start");
    let queued = setup
        .studio
        .follow(job.id, |job| job.state != JobState::Queued)
        .await
        .expect("queued");
    assert_eq!(queued.state, JobState::Queued);
    setup.studio.request_cancel(&avatar).expect("cancel");
    let job = setup.studio.drive(job.id).await.expect("drive");
    assert_eq!(job.state, JobState::Cancelled, "{job:?}");
    assert_eq!(
        fake.cancel_requests(),
        vec![job.request_id.clone().expect("id")]
    );
    assert_eq!(setup.notifier.notices()[0].outcome, JobState::Cancelled);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_while_running_is_followed_until_the_trainer_stops() {
    let library = tempfile::tempdir().expect("library");
    let fake = FakeFal::start().await;
    fake.set_script(Script {
        queue_time: Duration::from_millis(50),
        run_time: Duration::from_secs(30),
        honour_cancel_while_running: true,
        ..Script::default()
    });
    let setup = open(library.path(), Some(&fake), fake.api_key(), &[]);
    let avatar = avatar_with_photos(&setup.studio, TrainingType::Portrait);
    let job = setup
        .studio
        .start_training(&avatar, Preset::Fast, Overrides::default())
        .expect("start");
    setup
        .studio
        .follow(job.id, |job| job.state != JobState::Running)
        .await
        .expect("running");
    setup.studio.request_cancel(&avatar).expect("cancel");
    let job = setup.studio.drive(job.id).await.expect("drive");
    assert_eq!(job.state, JobState::Cancelled, "{job:?}");
    assert!(job.error.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn busy_answers_and_server_errors_are_retried_and_submit_only_once() {
    let library = tempfile::tempdir().expect("library");
    let fake = FakeFal::start().await;
    fake.set_script(quick_script(Outcome::Success { lora_bytes: 2048 }));
    let busy = |route, status| Fault::Status {
        route,
        status,
        body: serde_json::json!({"detail": "busy", "error_type": "runner_scheduling_failure"}),
        headers: vec![(
            "X-Fal-Error-Type".into(),
            "runner_scheduling_failure".into(),
        )],
    };
    fake.push_fault(busy(Route::Submit, 429));
    fake.push_fault(busy(Route::Submit, 503));
    fake.push_fault(busy(Route::Status, 502));
    fake.push_fault(busy(Route::Result, 504));
    fake.push_fault(Fault::DropConnection {
        route: Route::Status,
    });
    let setup = open(library.path(), Some(&fake), fake.api_key(), &[]);
    let avatar = avatar_with_photos(&setup.studio, TrainingType::Portrait);
    let job = train(&setup.studio, &avatar, Preset::Fast).await;
    assert_eq!(job.state, JobState::Completed, "{job:?}");
    assert_eq!(
        fake.request_count(Route::Submit),
        3,
        "two refusals, then taken"
    );
    assert_eq!(fake.submissions().len(), 1, "taken once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_key_fails_the_job_and_says_so() {
    let library = tempfile::tempdir().expect("library");
    let fake = FakeFal::start().await;
    let setup = open(library.path(), Some(&fake), "not-the-key", &[]);
    let avatar = avatar_with_photos(&setup.studio, TrainingType::Portrait);
    let job = train(&setup.studio, &avatar, Preset::Fast).await;
    assert_eq!(job.state, JobState::Failed);
    let error = job.error.expect("reason");
    assert!(error.contains("refused the API key"), "{error}");
    assert!(
        !error.contains("not-the-key"),
        "the key never appears: {error}"
    );
    assert!(fake.submissions().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_result_fails_the_job_with_an_explanation() {
    let library = tempfile::tempdir().expect("library");
    let fake = FakeFal::start().await;
    fake.set_script(quick_script(Outcome::Success { lora_bytes: 2048 }));
    fake.push_fault(Fault::ResultExpired);
    let setup = open(library.path(), Some(&fake), fake.api_key(), &[]);
    let avatar = avatar_with_photos(&setup.studio, TrainingType::Portrait);
    let job = train(&setup.studio, &avatar, Preset::Fast).await;
    assert_eq!(job.state, JobState::Failed);
    assert!(
        job.error
            .expect("reason")
            .contains("no longer keeps its result")
    );
    no_partial_files(library.path());
}

/// Runs a job in one studio until `stop_at` arrives at the fake, drops it there (what a killed
/// process leaves behind), then lets a fresh studio on the same library finish the job.
async fn stop_and_resume(stop_at: Route, count: usize, hold: Option<Fault>) {
    let library = tempfile::tempdir().expect("library");
    let fake = FakeFal::start().await;
    // The fake's own fetch of the training set would count as a file download too.
    fake.set_script(Script {
        download_dataset: false,
        ..quick_script(Outcome::Success {
            lora_bytes: 256 * 1024,
        })
    });
    if let Some(hold) = hold {
        fake.push_fault(hold);
    }
    let first = open(library.path(), Some(&fake), fake.api_key(), &[]);
    let avatar = avatar_with_photos(&first.studio, TrainingType::Portrait);
    let job = first
        .studio
        .start_training(&avatar, Preset::Fast, Overrides::default())
        .expect("start");
    tokio::select! {
        outcome = first.studio.drive(job.id) => panic!("the job ended before the stop: {outcome:?}"),
        () = fake.wait_for(stop_at, count) => {}
    }
    drop(first);

    let second = open(library.path(), Some(&fake), fake.api_key(), &[]);
    let job = second.studio.drive(job.id).await.expect("resumed");
    assert_eq!(
        job.state,
        JobState::Completed,
        "stopped at {stop_at:?}: {job:?}"
    );
    assert!(fake.submissions().len() <= 1, "never submitted twice");
    let model = PathBuf::from(job.model_path.expect("model"));
    studio::verify_safetensors(&model, Some(256 * 1024)).expect("whole model");
    no_partial_files(library.path());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_during_the_upload_is_resumed_without_a_second_submit() {
    let hold = Fault::Delay {
        route: Route::StorageUpload,
        delay: Duration::from_secs(60),
    };
    stop_and_resume(Route::StorageUpload, 1, Some(hold)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_while_following_is_resumed_from_the_ledger() {
    stop_and_resume(Route::Status, 2, None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_while_downloading_leaves_no_half_file_and_is_resumed() {
    let hold = Fault::Delay {
        route: Route::FileDownload,
        delay: Duration::from_secs(60),
    };
    stop_and_resume(Route::FileDownload, 1, Some(hold)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_mode_simulates_a_run_that_survives_a_restart() {
    let library = tempfile::tempdir().expect("library");
    let first = open_with(library.path(), None, MemorySecrets::default(), &[]);
    assert!(first.studio.config().test_mode);
    let avatar = avatar_with_photos(&first.studio, TrainingType::Portrait);
    let job = first
        .studio
        .start_training(&avatar, Preset::Fast, Overrides::default())
        .expect("start");
    let running = first
        .studio
        .follow(job.id, |job| job.state != JobState::Running)
        .await
        .expect("running");
    assert!(
        running
            .request_id
            .as_deref()
            .is_some_and(|id| id.starts_with("test_"))
    );
    assert!(running.last_log.is_some());
    drop(first);
    let second = open_with(library.path(), None, MemorySecrets::default(), &[]);
    let job = second.studio.drive(job.id).await.expect("finished");
    assert_eq!(job.state, JobState::Completed);
    studio::verify_safetensors(Path::new(job.model_path.as_deref().expect("model")), None)
        .expect("a valid model file");
    assert_eq!(second.notifier.notices().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_training_of_the_same_avatar_waits_for_the_first() {
    let library = tempfile::tempdir().expect("library");
    let setup = open_with(library.path(), None, MemorySecrets::default(), &[]);
    let avatar = avatar_with_photos(&setup.studio, TrainingType::Style);
    setup
        .studio
        .start_training(&avatar, Preset::Fast, Overrides::default())
        .expect("first");
    let error = setup
        .studio
        .start_training(&avatar, Preset::Fast, Overrides::default())
        .expect_err("second");
    assert_eq!(error.code(), studio::ErrorCode::Conflict);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_delivered_twice_finishes_the_job_once() {
    let library = tempfile::tempdir().expect("library");
    let fake = FakeFal::start().await;
    fake.set_script(quick_script(Outcome::Success { lora_bytes: 4096 }));
    fake.push_fault(Fault::DuplicateWebhook);
    let hook = format!("{}/hook", fake.base_url());
    let setup = open(
        library.path(),
        Some(&fake),
        fake.api_key(),
        &[("FAL_WEBHOOK_URL", hook)],
    );
    let avatar = avatar_with_photos(&setup.studio, TrainingType::Portrait);
    let job = setup
        .studio
        .start_training(&avatar, Preset::Fast, Overrides::default())
        .expect("start");
    setup
        .studio
        .follow(job.id, |job| job.state != JobState::Queued)
        .await
        .expect("submitted");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let bodies = loop {
        let deliveries = fake.webhook_deliveries();
        if deliveries.len() >= 2 {
            break deliveries;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no webhooks: {deliveries:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(bodies[0].body, bodies[1].body, "the same event twice");
    for delivery in &bodies {
        let applied = setup
            .studio
            .apply_status_event(&delivery.body)
            .expect("applied")
            .expect("the job is known by its request id");
        assert_eq!(applied.state, JobState::Downloading);
        assert!(applied.model_url.is_some());
    }
    let job = setup.studio.drive(job.id).await.expect("drive");
    assert_eq!(job.state, JobState::Completed);
    let again = setup
        .studio
        .apply_status_event(&bodies[0].body)
        .expect("applied")
        .expect("known");
    let stored = setup
        .studio
        .training_status(&avatar)
        .expect("status")
        .expect("job");
    assert_eq!(again, stored, "a late duplicate changes nothing");
    assert_eq!(
        stored.finished_at.map(|at| at.timestamp_millis()),
        job.finished_at.map(|at| at.timestamp_millis())
    );
    assert_eq!(setup.notifier.notices().len(), 1, "finished exactly once");
}

const RELAY_TOKEN: &str = "relay-token-for-the-tests-0123456789";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fal_webhooks_reach_the_app_through_the_relay_and_the_cursor_survives_a_restart() {
    let library = tempfile::tempdir().expect("library");
    let relay_dir = tempfile::tempdir().expect("relay store");
    let fake = FakeFal::start().await;
    fake.set_script(quick_script(Outcome::Success { lora_bytes: 4096 }));
    let relay = start_relay(&fake, relay_dir.path()).await;
    let secrets = || relay_secrets(fake.api_key(), RELAY_TOKEN);
    let mut vars = relay_vars(&relay.url());
    // Polling would also see the end; a long pause leaves the relay as the only channel.
    vars.push(("FAL_POLL_INTERVAL_MS", "60000".into()));
    let setup = open_with(library.path(), Some(&fake), secrets(), &vars);
    let avatar = avatar_with_photos(&setup.studio, TrainingType::Portrait);
    let job = setup
        .studio
        .start_training(&avatar, Preset::Fast, Overrides::default())
        .expect("start");
    let submitted = setup
        .studio
        .follow(job.id, |job| job.request_id.is_none())
        .await
        .expect("submitted");
    assert!(!submitted.state.is_final(), "{submitted:?}");

    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let mut applied = 0;
    while applied == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "no event came through the relay"
        );
        applied = setup
            .studio
            .read_relay_once(Duration::from_secs(5))
            .await
            .expect("feed read");
    }
    let reported = setup
        .studio
        .training_status(&avatar)
        .expect("status")
        .expect("job");
    assert_eq!(reported.state, JobState::Downloading, "{reported:?}");
    assert!(
        reported.model_url.is_some(),
        "the webhook carried the model"
    );
    let finished = setup.studio.drive(job.id).await.expect("drive");
    assert_eq!(finished.state, JobState::Completed, "{finished:?}");
    assert_eq!(setup.notifier.notices().len(), 1);
    drop(setup);

    // A fresh process resumes after the last event it applied: nothing is applied twice.
    let reopened = open_with(library.path(), Some(&fake), secrets(), &vars);
    let again = reopened
        .studio
        .read_relay_once(Duration::from_secs(1))
        .await
        .expect("feed read after a restart");
    assert_eq!(again, 0);
    assert!(reopened.notifier.notices().is_empty());

    let wrong_token = relay_secrets(fake.api_key(), "not-the-relay-token");
    let stranger = open_with(library.path(), Some(&fake), wrong_token, &vars);
    let refused = stranger
        .studio
        .read_relay_once(Duration::ZERO)
        .await
        .expect_err("a wrong token is refused");
    assert_eq!(refused.code(), studio::ErrorCode::WrongKey, "{refused}");
    assert!(!refused.to_string().contains("not-the-relay-token"));

    let url = relay.url();
    relay.stop().await;
    let unreachable = reopened
        .studio
        .read_relay_once(Duration::ZERO)
        .await
        .expect_err("a stopped relay is reported");
    assert_eq!(unreachable.code(), studio::ErrorCode::RemoteUnavailable);
    assert!(unreachable.to_string().contains(&url), "{unreachable}");
}

/// A relay on loopback that checks webhooks against `fake`'s keys.
async fn start_relay(fake: &FakeFal, store: &Path) -> relay::RunningRelay {
    relay::Relay::start(relay::RelayConfig {
        listen: "127.0.0.1:0".parse().expect("address"),
        jwks_url: fake.jwks_url(),
        ..relay::RelayConfig::new(store.join("relay.sqlite3"), RELAY_TOKEN.into())
    })
    .await
    .expect("relay")
}

fn relay_vars(relay_url: &str) -> Vec<(&'static str, String)> {
    vec![
        (
            "FAL_WEBHOOK_URL",
            format!("{relay_url}/api/avatar/status_update"),
        ),
        ("RELAY_URL", relay_url.to_string()),
    ]
}

fn relay_secrets(fal_key: &str, relay_token: &str) -> MemorySecrets {
    MemorySecrets::default()
        .with(SecretName::FalKey, fal_key)
        .with(SecretName::RelayToken, relay_token)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_reported_by_both_the_relay_and_polling_finishes_once() {
    let library = tempfile::tempdir().expect("library");
    let relay_dir = tempfile::tempdir().expect("relay store");
    let fake = FakeFal::start().await;
    fake.set_script(quick_script(Outcome::Success { lora_bytes: 4096 }));
    let relay = start_relay(&fake, relay_dir.path()).await;
    let setup = open_with(
        library.path(),
        Some(&fake),
        relay_secrets(fake.api_key(), RELAY_TOKEN),
        &relay_vars(&relay.url()),
    );
    let avatar = avatar_with_photos(&setup.studio, TrainingType::Portrait);
    let job = setup
        .studio
        .start_training(&avatar, Preset::Fast, Overrides::default())
        .expect("start");
    let read_relay = async {
        let mut applied = 0;
        while applied == 0 {
            applied = setup
                .studio
                .read_relay_once(Duration::from_secs(5))
                .await
                .expect("feed read");
        }
    };
    let (driven, ()) = tokio::join!(setup.studio.drive(job.id), read_relay);
    let driven = driven.expect("drive");
    assert_eq!(driven.state, JobState::Completed, "{driven:?}");
    assert_eq!(setup.notifier.notices().len(), 1, "notified once");
    let finished = setup.studio.training_status(&avatar).expect("status");
    assert_eq!(finished.map(|job| job.state), Some(JobState::Completed));
    assert_eq!(fake.submissions().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_connection_names_each_case_of_the_guides_troubleshooting() {
    use studio::{ConnectionProblem as Problem, ConnectionStep as Step, UpdateChannel};
    let library = tempfile::tempdir().expect("library");
    let relay_dir = tempfile::tempdir().expect("relay store");
    let fake = FakeFal::start().await;
    let relay = start_relay(&fake, relay_dir.path()).await;
    let url = relay.url();
    let check = |secrets: MemorySecrets, vars: Vec<(&'static str, String)>| {
        let setup = open_with(library.path(), Some(&fake), secrets, &vars);
        async move { setup.studio.check_connection().await }
    };
    let outcome = |report: &studio::ConnectionReport| -> Vec<(Step, Option<Problem>)> {
        report
            .checks
            .iter()
            .map(|check| (check.step, check.problem))
            .collect()
    };

    let unconfigured = check(relay_secrets(fake.api_key(), RELAY_TOKEN), vec![]).await;
    assert_eq!(
        outcome(&unconfigured),
        [(Step::Configured, Some(Problem::NotConfigured))]
    );
    assert_eq!(unconfigured.channel, UpdateChannel::Polling);

    let healthy = check(relay_secrets(fake.api_key(), RELAY_TOKEN), relay_vars(&url)).await;
    assert!(
        healthy.checks.iter().all(|check| check.passed),
        "{healthy:?}"
    );
    assert_eq!(healthy.checks.len(), 5, "{healthy:?}");
    assert_eq!(healthy.channel, UpdateChannel::Relay);

    let mut elsewhere = relay_vars(&url);
    elsewhere[0].1 = "https://old-relay.example/api/avatar/status_update".into();
    let misdirected = check(relay_secrets(fake.api_key(), RELAY_TOKEN), elsewhere).await;
    assert_eq!(
        outcome(&misdirected).last(),
        Some(&(Step::WebhookUrl, Some(Problem::WebhookUrlElsewhere)))
    );

    let wrong = check(
        relay_secrets(fake.api_key(), "a-token-the-relay-never-issued"),
        relay_vars(&url),
    )
    .await;
    assert_eq!(
        outcome(&wrong).last(),
        Some(&(Step::Token, Some(Problem::TokenWrong)))
    );
    assert!(
        wrong
            .checks
            .iter()
            .all(|check| !check.detail.contains("never-issued")),
        "the token is never shown: {wrong:?}"
    );

    relay.stop().await;
    let stopped = check(relay_secrets(fake.api_key(), RELAY_TOKEN), relay_vars(&url)).await;
    assert_eq!(
        outcome(&stopped).last(),
        Some(&(Step::Health, Some(Problem::NotRunning)))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_set_in_settings_is_followed_without_waiting_out_the_pause() {
    use studio::UpdateChannel;
    let library = tempfile::tempdir().expect("library");
    let relay_dir = tempfile::tempdir().expect("relay store");
    let fake = FakeFal::start().await;
    let relay = start_relay(&fake, relay_dir.path()).await;
    let setup = open_with(
        library.path(),
        Some(&fake),
        relay_secrets(fake.api_key(), RELAY_TOKEN),
        &[],
    );
    let studio = &setup.studio;
    let (sender, mut changes) = tokio::sync::mpsc::unbounded_channel();
    let follow = studio.follow_relay(move |channel| {
        let _ = sender.send(channel);
    });
    let configure = async {
        // No relay yet: the follower pauses 1 s, then 2 s, then 4 s between looks.
        tokio::time::sleep(Duration::from_millis(3500)).await;
        let saved_at = std::time::Instant::now();
        studio
            .save_settings(
                [("RELAY_URL".to_string(), Some(relay.url()))]
                    .into_iter()
                    .collect(),
            )
            .expect("saved");
        // Something in the feed, so the follower's first long-poll answers at once.
        reqwest::Client::new()
            .post(format!(
                "{}/api/avatar/status_update?training_type=portrait",
                relay.url()
            ))
            .bearer_auth(RELAY_TOKEN)
            .json(&serde_json::json!({
                "request_id": "not-a-job-of-this-library",
                "status": "in_progress",
                "progress": 10,
                "training_type": "portrait",
            }))
            .send()
            .await
            .expect("event sent")
            .error_for_status()
            .expect("event accepted");
        let channel = tokio::time::timeout(Duration::from_secs(10), changes.recv())
            .await
            .expect("the relay was followed")
            .expect("channel open");
        (channel, saved_at.elapsed())
    };
    let (channel, took) = tokio::select! {
        () = follow => unreachable!("following never ends"),
        outcome = configure => outcome,
    };
    assert_eq!(channel, UpdateChannel::Relay);
    assert!(
        took < Duration::from_secs(2),
        "followed {took:?} after saving, not after the 4 s pause"
    );
}
