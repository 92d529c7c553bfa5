//! Training against a faithful fake of fal on loopback and a real S3 server (s3s-fs): full runs,
//! progress from logs, failures, cancels, retries, a wrong key, an expired result, and a process
//! that stops at every stage and is replaced by a fresh one that finishes the job.

// The tests read the relay as a client of their own.
#![allow(clippy::disallowed_methods)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use fal_fake::{FakeFal, Fault, Outcome, Route, Script};

use crate::common::cases;
use crate::common::fal::*;
use studio::{
    Gender, JobFailure, JobState, JobStep, MemorySecrets, NewAvatar, Overrides, Ports, Preset,
    SecretName, Studio, SystemClock, TrainingJob, TrainingType, Transfer,
};

/// A studio with a real S3 server (s3s-fs) on this machine, training on the fake fal: fal cannot
/// fetch from it, so it keeps the library's photo copies while the sets go through fal storage.
async fn open_with_s3(
    library: &Path,
    extra: &[(&str, String)],
) -> (s3::test_server::S3TestServer, FakeFal, Setup) {
    let s3 = s3::test_server::S3TestServer::start();
    let settings = s3.settings("avatars");
    let fake = FakeFal::start().await;
    fake.set_script(quick_script(Outcome::Success { lora_bytes: 4096 }));
    let secrets = MemorySecrets::default()
        .with(SecretName::FalKey, fake.api_key())
        .with(SecretName::S3SecretKey, &settings.secret_key);
    let mut vars = vec![
        ("S3_ENDPOINT", settings.endpoint.clone()),
        ("S3_BUCKET", settings.bucket.clone()),
        ("S3_REGION", settings.region.clone()),
        ("S3_ACCESS_KEY", settings.access_key.clone()),
    ];
    vars.extend_from_slice(extra);
    let setup = open_with(library, Some(&fake), secrets, &vars);
    (s3, fake, setup)
}

/// A portrait job followed until fal queues it, then asked to be cancelled.
async fn queued_and_cancelled(setup: &Setup) -> TrainingJob {
    let avatar = avatar_with_photos(&setup.studio, TrainingType::Portrait);
    let job = start(&setup.studio, &avatar, Preset::Fast)
        .await
        .expect("start");
    let queued = setup
        .studio
        .follow(job.id, |job| job.state != JobState::Queued)
        .await
        .expect("queued");
    assert_eq!(queued.state, JobState::Queued);
    setup.studio.request_cancel(&avatar).expect("cancel");
    queued
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
    let job = start(&setup.studio, &avatar, Preset::Fast)
        .await
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
        matches!(
            job.step,
            Some(JobStep::Training {
                done: Some(_),
                total: Some(_)
            })
        )
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
async fn a_local_s3_keeps_the_photo_copies_while_fal_fetches_the_set_from_fal_storage() {
    let library = tempfile::tempdir().expect("library");
    let (s3, fake, setup) = open_with_s3(library.path(), &[]).await;
    let avatar = avatar_with_photos(&setup.studio, TrainingType::Style);
    let plan = setup
        .studio
        .plan_training(&avatar, Preset::Quality, Overrides::default())
        .await
        .expect("plan");
    assert_eq!(
        (plan.storage.as_str(), plan.storage_notice.as_deref()),
        ("fal", Some("s3_not_public")),
        "fal cannot fetch from an S3 on this machine"
    );
    let job = setup.studio.start_training(&plan).await.expect("start");
    let copies = Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = copies.clone();
    let s3_dir = s3.data_dir().join("avatars");
    let job = setup
        .studio
        .follow(job.id, |job| {
            let mut seen = seen.lock().expect("copies");
            if job.state == JobState::Queued && seen.is_empty() {
                *seen = files_under(&s3_dir);
            }
            true
        })
        .await
        .expect("drive");

    assert_eq!(job.state, JobState::Completed, "{job:?}");
    assert_eq!(job.storage.as_deref(), Some("fal"));
    let uploads = fake.uploads();
    assert_eq!(uploads.len(), 1, "the zip went to fal storage: {uploads:?}");
    assert_eq!(
        uploads[0]
            .lifecycle
            .as_ref()
            .map(|value| value["expiration_duration_seconds"].clone()),
        Some(serde_json::json!(86_400)),
        "the set expires on fal after a day"
    );
    let submission = &fake.submissions()[0];
    assert_eq!(submission.endpoint_id, "fal-ai/flux-lora-fast-training");
    assert_eq!(
        submission.input["images_data_url"],
        uploads[0].file_url.as_str()
    );
    assert_eq!(
        submission.store_io, None,
        "fal keeps the result until the model is safe"
    );
    assert_eq!(
        copies.lock().expect("copies").len(),
        2,
        "one copy per photo while it trained"
    );
    // The training ended: the copies are deleted, and the photos no longer name them.
    assert!(
        files_under(&s3_dir).is_empty(),
        "{:?}",
        files_under(&s3_dir)
    );
    for photo in setup.studio.list_photos(&avatar).expect("photos") {
        assert_eq!(photo.minio_key, None);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_only_refuses_a_store_fal_cannot_fetch_from() {
    let library = tempfile::tempdir().expect("library");
    let only = [("AVATAR_TRAINING_SET_S3_ONLY", "true".to_string())];
    let (_s3, fake, setup) = open_with_s3(library.path(), &only).await;
    let avatar = avatar_with_photos(&setup.studio, TrainingType::Portrait);
    let error = setup
        .studio
        .plan_training(&avatar, Preset::Fast, Overrides::default())
        .await
        .expect_err("fal cannot fetch from 127.0.0.1");
    assert_eq!(error.code(), studio::ErrorCode::InvalidConfig);
    assert!(error.to_string().contains("127.0.0.1"), "{error}");
    assert!(fake.submissions().is_empty() && fake.uploads().is_empty());
}

/// Private words a photo can carry in its metadata, and the JPEG segments that carry them.
const PRIVATE_WORDS: &[&[u8]] = &[
    b"Exif\0\0",
    b"http://ns.adobe.com/xap",
    b"Photoshop 3.0",
    b"GPSLatitude 55.7558",
    b"a private comment",
];

/// `good_portrait.jpg` with XMP (a GPS position), IPTC and a comment added after its start.
fn portrait_with_private_metadata(dir: &Path) -> PathBuf {
    let original = std::fs::read(cases().join("good_portrait.jpg")).expect("fixture");
    let segment = |marker: u8, payload: &[u8]| {
        let mut bytes = vec![0xFF, marker];
        bytes.extend_from_slice(&((payload.len() + 2) as u16).to_be_bytes());
        bytes.extend_from_slice(payload);
        bytes
    };
    let mut tagged = original[..2].to_vec();
    tagged.extend(segment(
        0xE1,
        b"http://ns.adobe.com/xap/1.0/\0<x:xmpmeta><GPSLatitude 55.7558/></x:xmpmeta>",
    ));
    tagged.extend(segment(0xED, b"Photoshop 3.0\08BIM\x04\x04\0\0\0\0\0\0"));
    tagged.extend(segment(0xFE, b"a private comment"));
    tagged.extend_from_slice(&original[2..]);
    let path = dir.join("tagged_portrait.jpg");
    std::fs::write(&path, tagged).expect("write");
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_stripped_copies_reach_the_bucket() {
    let library = tempfile::tempdir().expect("library");
    let photos_dir = tempfile::tempdir().expect("photos");
    let keep = [("AVATAR_KEEP_S3_UPLOADS", "true".to_string())];
    let (s3, _fake, setup) = open_with_s3(library.path(), &keep).await;
    let avatar = setup
        .studio
        .create_avatar(NewAvatar {
            name: "Anna".into(),
            gender: Gender::Female,
            training_type: TrainingType::Portrait,
        })
        .expect("avatar");
    let paths = [
        portrait_with_private_metadata(photos_dir.path()),
        cases().join("rotated_exif.jpg"),
    ];
    for path in &paths {
        let original = std::fs::read(path).expect("read");
        assert!(
            PRIVATE_WORDS.iter().any(|word| contains(&original, word)),
            "{} carries metadata",
            path.display()
        );
    }
    let avatar = avatar.id.to_string();
    let readiness = setup
        .studio
        .add_photos(&avatar, &paths, |_| {})
        .expect("photos");
    assert!(readiness.ready, "{readiness:?}");
    let job = train(&setup.studio, &avatar, Preset::Fast).await;
    assert_eq!(job.state, JobState::Completed, "{job:?}");

    let objects = files_under(&s3.data_dir().join("avatars"));
    assert_eq!(objects.len(), 2, "one copy per photo: {objects:?}");
    for object in &objects {
        let bytes = std::fs::read(object).expect("object");
        for word in PRIVATE_WORDS {
            assert!(
                !contains(&bytes, word),
                "{} carries {:?}",
                object.display(),
                String::from_utf8_lossy(word)
            );
        }
    }
    for photo in setup.studio.list_photos(&avatar).expect("photos") {
        let key = photo.minio_key.expect("each photo keeps its object key");
        assert!(
            objects.contains(&s3.data_dir().join("avatars").join(&key)),
            "{key} names a stripped object"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_an_avatar_removes_its_files_models_and_objects_and_waits_for_its_training() {
    let library = tempfile::tempdir().expect("library");
    let keep = [("AVATAR_KEEP_S3_UPLOADS", "true".to_string())];
    let (s3, _fake, setup) = open_with_s3(library.path(), &keep).await;
    let avatar = avatar_with_photos(&setup.studio, TrainingType::Portrait);
    let job = start(&setup.studio, &avatar, Preset::Fast)
        .await
        .expect("start");
    let refused = setup
        .studio
        .delete_avatar(&avatar)
        .await
        .expect_err("training");
    assert_eq!(refused.code(), studio::ErrorCode::Conflict, "{refused}");
    let job = setup.studio.drive(job.id).await.expect("drive");
    assert_eq!(job.state, JobState::Completed, "{job:?}");
    let model = PathBuf::from(job.model_path.expect("model"));
    assert!(model.is_file());
    assert!(!files_under(&s3.data_dir().join("avatars")).is_empty());

    let deleted = setup.studio.delete_avatar(&avatar).await.expect("delete");
    assert_eq!(
        (
            deleted.photos,
            deleted.files,
            deleted.models,
            deleted.s3_objects
        ),
        (2, 4, 1, 2),
        "two photos with their thumbnails, one model and two photo copies"
    );
    assert!(!model.exists());
    for dir in ["photos", "thumbnails", "models"] {
        let left = files_under(&library.path().join(dir));
        assert!(left.is_empty(), "{dir}: {left:?}");
    }
    let left = files_under(&s3.data_dir().join("avatars"));
    assert!(left.is_empty(), "in S3: {left:?}");
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
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
    let failure = job.failure.expect("reason");
    assert!(
        matches!(&failure, JobFailure::FalFailed { detail, .. } if detail.contains("Not enough faces")),
        "{failure:?}"
    );
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
    let queued = queued_and_cancelled(&setup).await;
    let job = setup.studio.drive(queued.id).await.expect("drive");
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
    let job = start(&setup.studio, &avatar, Preset::Fast)
        .await
        .expect("start");
    setup
        .studio
        .follow(job.id, |job| job.state != JobState::Running)
        .await
        .expect("running");
    setup.studio.request_cancel(&avatar).expect("cancel");
    let job = setup.studio.drive(job.id).await.expect("drive");
    assert_eq!(job.state, JobState::Cancelled, "{job:?}");
    assert!(job.failure.is_none());
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
async fn a_submit_whose_answer_was_lost_is_found_in_fals_history_and_never_sent_again() {
    let answer = |status: u16, body: &str, headers: &[(&str, &str)]| Fault::AcceptThenAnswer {
        route: Route::Submit,
        status,
        body: body.into(),
        headers: headers
            .iter()
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect(),
    };
    let gateway = r#"{"detail": "upstream failed"}"#;
    let ingress = "<html><body><center>nginx</center></body></html>";
    let cases = [
        ("408", answer(408, gateway, &[])),
        ("500", answer(500, gateway, &[])),
        ("502", answer(502, ingress, &[])),
        (
            "503 with a request id",
            answer(503, gateway, &[("x-fal-request-id", "r")]),
        ),
        ("504", answer(504, gateway, &[])),
        (
            "2xx that does not parse",
            answer(200, "{\"status\": \"IN_QUE", &[]),
        ),
        (
            "answer lost",
            Fault::AcceptThenDrop {
                route: Route::Submit,
            },
        ),
    ];
    for (case, fault) in cases {
        // A fake of its own per case: fal's history holds this library's request only.
        let fake = FakeFal::start().await;
        fake.set_script(quick_script(Outcome::Success { lora_bytes: 2048 }));
        let library = tempfile::tempdir().expect("library");
        fake.push_fault(fault);
        let setup = open(library.path(), Some(&fake), fake.api_key(), &[]);
        let avatar = avatar_with_photos(&setup.studio, TrainingType::Portrait);
        let job = train(&setup.studio, &avatar, Preset::Fast).await;
        assert_eq!(job.state, JobState::Completed, "{case}: {job:?}");
        assert_eq!(
            job.request_id.as_deref(),
            Some(fake.submissions()[0].request_id.as_str()),
            "{case}: the request fal took was adopted"
        );
        assert!(job.paid_request, "{case}: it counts as spent");
        // A later start of the app or the CLI does not send it either.
        let again = open(library.path(), Some(&fake), fake.api_key(), &[]);
        again.studio.advance_unfinished().await.expect("advance");
        assert_eq!(fake.submissions().len(), 1, "{case}: taken once, sent once");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_is_bound_to_the_plan_the_creator_confirmed() {
    let library = tempfile::tempdir().expect("library");
    let fake = FakeFal::start().await;
    let setup = open(library.path(), Some(&fake), fake.api_key(), &[]);
    let studio = &setup.studio;
    let avatar = avatar_with_photos(studio, TrainingType::Portrait);
    let plan = studio
        .plan_training(&avatar, Preset::Fast, Overrides::default())
        .await
        .expect("plan");
    assert!(plan.cost_usd > 0.0, "{plan:?}");

    let cheaper = studio::TrainingPlan {
        cost_usd: 0.01,
        ..plan.clone()
    };
    let error = studio
        .start_training(&cheaper)
        .await
        .expect_err("a plan the creator never saw");
    assert_eq!(error.code(), studio::ErrorCode::Conflict);
    assert!(error.to_string().contains("cost"), "{error}");
    let more_steps = studio::TrainingPlan {
        steps: 5000,
        ..plan.clone()
    };
    let error = studio
        .start_training(&more_steps)
        .await
        .expect_err("other steps");
    assert_eq!(error.code(), studio::ErrorCode::Conflict);

    // A photo removed after the confirmation changes the plan in force.
    let photo = studio.list_photos(&avatar).expect("photos")[1]
        .id
        .to_string();
    studio.remove_photo(&avatar, &photo).expect("remove");
    let error = studio
        .start_training(&plan)
        .await
        .expect_err("the set changed");
    assert_eq!(error.code(), studio::ErrorCode::Conflict);
    assert!(error.to_string().contains("photos"), "{error}");
    assert!(studio.jobs().expect("jobs").is_empty(), "nothing started");
    studio
        .add_photos(&avatar, &[cases().join("rotated_exif.jpg")], |_| {})
        .expect("photo back");

    let confirmed = studio
        .plan_training(&avatar, Preset::Fast, Overrides::default())
        .await
        .expect("plan");
    let job = studio.start_training(&confirmed).await.expect("start");
    assert_eq!(job.confirmed_cost_usd, confirmed.cost_usd);
    assert_eq!(
        studio.jobs().expect("jobs")[0].confirmed_cost_usd,
        confirmed.cost_usd,
        "the confirmed cost is kept with the job"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_gone_before_the_send_fails_the_job_plainly_and_sends_nothing() {
    let library = tempfile::tempdir().expect("library");
    let fake = FakeFal::start().await;
    let with_key = open(library.path(), Some(&fake), fake.api_key(), &[]);
    let avatar = avatar_with_photos(&with_key.studio, TrainingType::Portrait);
    let job = start(&with_key.studio, &avatar, Preset::Fast)
        .await
        .expect("start");
    drop(with_key);
    let without_key = open_with(library.path(), Some(&fake), MemorySecrets::default(), &[]);
    let job = without_key.studio.drive(job.id).await.expect("drive");
    assert_eq!(job.state, JobState::Failed, "{job:?}");
    let failure = job.failure.expect("reason");
    assert!(
        matches!(&failure, JobFailure::Settings { detail } if detail.contains("No fal key")),
        "{failure:?}"
    );
    assert!(fake.submissions().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_key_fails_the_job_and_says_so() {
    let library = tempfile::tempdir().expect("library");
    let fake = FakeFal::start().await;
    let setup = open(library.path(), Some(&fake), "not-the-key", &[]);
    let avatar = avatar_with_photos(&setup.studio, TrainingType::Portrait);
    let job = train(&setup.studio, &avatar, Preset::Fast).await;
    assert_eq!(job.state, JobState::Failed);
    let error = format!("{:?}", job.failure.expect("reason"));
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
    assert_eq!(job.failure, Some(JobFailure::ResultExpired));
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
    let job = start(&first.studio, &avatar, Preset::Fast)
        .await
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
    let job = start(&first.studio, &avatar, Preset::Fast)
        .await
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
    start(&setup.studio, &avatar, Preset::Fast)
        .await
        .expect("first");
    let error = start(&setup.studio, &avatar, Preset::Fast)
        .await
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
    let job = start(&setup.studio, &avatar, Preset::Fast)
        .await
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
        assert!(
            !applied.state.is_final(),
            "an end is confirmed with fal first"
        );
        assert!(
            applied.model_url.is_none(),
            "the event never names the model"
        );
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_event_cannot_end_a_job_or_choose_its_model() {
    let library = tempfile::tempdir().expect("library");
    let fake = FakeFal::start().await;
    fake.set_script(quick_script(Outcome::Success { lora_bytes: 4096 }));
    let setup = open(library.path(), Some(&fake), fake.api_key(), &[]);
    let avatar = avatar_with_photos(&setup.studio, TrainingType::Portrait);
    let job = start(&setup.studio, &avatar, Preset::Fast)
        .await
        .expect("start");
    let queued = setup
        .studio
        .follow(job.id, |job| job.state == JobState::Preparing)
        .await
        .expect("submitted");
    let request_id = queued.request_id.clone().expect("request id");
    let forged_model = "http://attacker.example/lora.safetensors";
    for forged in [
        serde_json::json!({"request_id": request_id, "status": "completed",
            "result": {"diffusers_lora_file": {"url": forged_model}}}),
        serde_json::json!({"request_id": request_id, "status": "OK",
            "payload": {"diffusers_lora_file": {"url": forged_model}}}),
        serde_json::json!({"request_id": request_id, "status": "failed", "error": "forged"}),
    ] {
        let applied = setup
            .studio
            .apply_status_event(&forged)
            .expect("applied")
            .expect("known");
        assert!(!applied.state.is_final(), "{forged}: {applied:?}");
        assert_eq!(applied.model_url, None, "{forged}");
    }
    let job = setup.studio.drive(job.id).await.expect("drive");
    assert_eq!(job.state, JobState::Completed, "{job:?}");
    assert!(
        job.model_url
            .as_deref()
            .is_some_and(|url| url.starts_with(&fake.base_url())),
        "the model comes from fal's result: {job:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_download_is_retried_and_one_that_keeps_failing_ends_with_its_reason() {
    let fake = FakeFal::start().await;
    fake.set_script(Script {
        download_dataset: false,
        ..quick_script(Outcome::Success {
            lora_bytes: 256 * 1024,
        })
    });
    let quick_timeout = [("FAL_READ_TIMEOUT_MS", "300".to_string())];

    // A stream that stalls halfway is given up after the read timeout and fetched again.
    let library = tempfile::tempdir().expect("library");
    fake.push_fault(Fault::StallBody {
        route: Route::FileDownload,
        bytes: 64 * 1024,
    });
    let setup = open(library.path(), Some(&fake), fake.api_key(), &quick_timeout);
    let avatar = avatar_with_photos(&setup.studio, TrainingType::Portrait);
    let job = train(&setup.studio, &avatar, Preset::Fast).await;
    assert_eq!(job.state, JobState::Completed, "{job:?}");
    studio::verify_safetensors(
        Path::new(job.model_path.as_deref().expect("model")),
        Some(256 * 1024),
    )
    .expect("whole model");

    // A body that is always cut short ends the job after a bounded number of tries.
    let library = tempfile::tempdir().expect("library");
    for _ in 0..100 {
        fake.push_fault(Fault::TruncateBody {
            route: Route::FileDownload,
            bytes: 1000,
        });
    }
    let setup = open(library.path(), Some(&fake), fake.api_key(), &quick_timeout);
    let avatar = avatar_with_photos(&setup.studio, TrainingType::Portrait);
    let job = start(&setup.studio, &avatar, Preset::Fast)
        .await
        .expect("start");
    let mut tries = 0;
    let job = loop {
        tries += 1;
        match setup.studio.drive(job.id).await {
            Ok(job) => break job,
            Err(error) => assert!(tries < 10, "never ends: {error}"),
        }
    };
    assert_eq!(job.state, JobState::Failed, "{job:?}");
    let failure = job.failure.expect("reason");
    assert!(
        matches!(
            failure,
            JobFailure::TransferGaveUp {
                transfer: Transfer::Download,
                tries: 3,
                ..
            }
        ),
        "{failure:?}"
    );
    no_partial_files(library.path());

    // Cancel ends a job that is downloading.
    let library = tempfile::tempdir().expect("library");
    let setup = open(library.path(), Some(&fake), fake.api_key(), &quick_timeout);
    let avatar = avatar_with_photos(&setup.studio, TrainingType::Portrait);
    let job = start(&setup.studio, &avatar, Preset::Fast)
        .await
        .expect("start");
    let downloading = setup
        .studio
        .follow(job.id, |job| job.state != JobState::Downloading)
        .await
        .expect("trained");
    assert_eq!(downloading.state, JobState::Downloading, "{downloading:?}");
    setup.studio.request_cancel(&avatar).expect("cancel");
    let mut tries = 0;
    let job = loop {
        tries += 1;
        match setup.studio.drive(job.id).await {
            Ok(job) => break job,
            Err(error) => assert!(tries < 10, "never ends: {error}"),
        }
    };
    assert_eq!(job.state, JobState::Cancelled, "{job:?}");
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
    // A long pause between polls: the relay's event is what brings the end to the app's notice.
    vars.push(("FAL_POLL_INTERVAL_MS", "60000".into()));
    let setup = open_with(library.path(), Some(&fake), secrets(), &vars);
    let avatar = avatar_with_photos(&setup.studio, TrainingType::Portrait);
    let job = start(&setup.studio, &avatar, Preset::Fast)
        .await
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
    // The event wakes the follower; the end and the model come from fal's own answers.
    assert!(!reported.state.is_final(), "{reported:?}");
    assert!(
        reported.model_url.is_none(),
        "the event never names the model"
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
    let job = start(&setup.studio, &avatar, Preset::Fast)
        .await
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
    // Time moves only by hand, and this test never moves it: a pause never ends by itself.
    let start = chrono::Utc::now();
    let clock = Arc::new(studio::ManualClock::new(start));
    let setup = open_with_clock(
        library.path(),
        Some(&fake),
        relay_secrets(fake.api_key(), RELAY_TOKEN),
        &[],
        clock.clone(),
    );
    let studio = &setup.studio;
    let (sender, mut changes) = tokio::sync::mpsc::unbounded_channel();
    let follow = studio.follow_relay(move |channel| {
        let _ = sender.send(channel);
    });
    let configure = async {
        // No relay yet: the follower pauses before it looks again.
        clock.wait_for_sleepers(1).await;
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
        tokio::time::timeout(Duration::from_secs(10), changes.recv())
            .await
            .expect("the relay was followed")
            .expect("channel open")
    };
    let channel = tokio::select! {
        () = follow => unreachable!("following never ends"),
        channel = configure => channel,
    };
    assert_eq!(channel, UpdateChannel::Relay);
    assert_eq!(
        studio::Clock::now(clock.as_ref()),
        start,
        "followed on the change of settings, with the pause not over"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_simulated_webhook_carries_no_local_path_and_the_token_only_to_the_relay() {
    let fake = FakeFal::start().await;
    let relay_dir = tempfile::tempdir().expect("relay store");
    let relay = start_relay(&fake, relay_dir.path()).await;
    let other_dir = tempfile::tempdir().expect("other store");
    let other = start_relay(&fake, other_dir.path()).await;
    for (webhook_host, expect_stored) in [(relay.url(), true), (other.url(), false)] {
        let library = tempfile::tempdir().expect("library");
        let mut vars = relay_vars(&relay.url());
        vars.retain(|(name, _)| *name != "FAL_WEBHOOK_URL");
        vars.push((
            "FAL_WEBHOOK_URL",
            format!("{webhook_host}/api/avatar/status_update"),
        ));
        vars.push(("FAL_ENABLE_WEBHOOK_SIMULATION", "true".into()));
        // Test mode: no fal key, no fake fal.
        let setup = open_with(
            library.path(),
            None,
            MemorySecrets::default().with(SecretName::RelayToken, RELAY_TOKEN),
            &vars,
        );
        let avatar = avatar_with_photos(&setup.studio, TrainingType::Portrait);
        let job = train(&setup.studio, &avatar, Preset::Fast).await;
        assert_eq!(job.state, JobState::Completed, "{job:?}");
        let request_id = job.request_id.expect("simulated request id");
        let page = reqwest::Client::new()
            .get(format!("{webhook_host}/api/events"))
            .bearer_auth(RELAY_TOKEN)
            .send()
            .await
            .expect("feed")
            .json::<relay::wire::FeedPage>()
            .await
            .expect("page");
        let event = page
            .events
            .iter()
            .find(|event| event.request_id == request_id);
        assert_eq!(
            event.is_some(),
            expect_stored,
            "to {webhook_host}: the token goes to the relay only"
        );
        if let Some(event) = event {
            let body = event.body.to_string();
            let library_path = library.path().display().to_string();
            assert!(
                !body.contains("file://") && !body.contains(&library_path),
                "{body}"
            );
        }
    }
    relay.stop().await;
    other.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_that_fails_never_stops_the_status_reads_and_a_forgotten_cancelled_job_ends_cancelled()
 {
    let library = tempfile::tempdir().expect("library");
    let fake = FakeFal::start().await;
    fake.set_script(Script {
        queue_time: Duration::from_secs(600),
        ..quick_script(Outcome::Success { lora_bytes: 2048 })
    });
    let setup = open(library.path(), Some(&fake), fake.api_key(), &[]);
    let queued = queued_and_cancelled(&setup).await;
    // Every try of the cancel fails; then fal forgets the request it removed from its queue.
    for _ in 0..4 {
        fake.push_fault(Fault::Status {
            route: Route::Cancel,
            status: 500,
            body: serde_json::json!({"detail": "internal error"}),
            headers: Vec::new(),
        });
    }
    let request_id = queued.request_id.clone().expect("request id");
    fake.forget_request(&request_id);
    let statuses = fake.request_count(Route::Status);
    let job = setup.studio.drive(queued.id).await.expect("drive");
    assert_eq!(job.state, JobState::Cancelled, "{job:?}");
    assert_eq!(job.failure, None);
    assert!(fake.request_count(Route::Cancel) >= 4);
    assert!(
        fake.request_count(Route::Status) > statuses,
        "the status was read although the cancel failed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_price_read_from_fal_is_used_for_an_hour_of_the_studios_clock() {
    let library = tempfile::tempdir().expect("library");
    let fake = FakeFal::start().await;
    let trainer = "fal-ai/flux-lora-portrait-trainer";
    fake.set_price(trainer, 0.003, "steps");
    let clock = Arc::new(studio::ManualClock::new(chrono::Utc::now()));
    let secrets = MemorySecrets::default().with(SecretName::FalKey, fake.api_key());
    let setup = open_with_clock(library.path(), Some(&fake), secrets, &[], clock.clone());
    let avatar = avatar_with_photos(&setup.studio, TrainingType::Portrait);
    let cost = || async {
        let plan = setup
            .studio
            .plan_training(&avatar, Preset::Fast, Overrides::default())
            .await
            .expect("plan");
        assert_eq!(plan.price_source, "fal");
        plan.cost_usd
    };
    assert_eq!(cost().await, 1.5, "500 steps at $0.003");
    fake.set_price(trainer, 0.004, "steps");
    clock.advance(chrono::TimeDelta::minutes(59));
    assert_eq!(
        cost().await,
        1.5,
        "the price read 59 minutes ago still holds"
    );
    clock.advance(chrono::TimeDelta::minutes(2));
    assert_eq!(cost().await, 2.0, "after an hour the price is read again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_prices_the_monthly_budget_and_what_stays_on_fal() {
    let library = tempfile::tempdir().expect("library");
    let fake = FakeFal::start().await;
    fake.set_script(quick_script(Outcome::Success { lora_bytes: 2048 }));
    fake.set_price("fal-ai/flux-lora-portrait-trainer", 0.003, "steps");
    let budget = [("AVATAR_MONTHLY_BUDGET_USD", "3.5".to_string())];
    let setup = open(library.path(), Some(&fake), fake.api_key(), &budget);
    let named = |name: &str| {
        let avatar = setup
            .studio
            .create_avatar(NewAvatar {
                name: name.into(),
                gender: Gender::Female,
                training_type: TrainingType::Portrait,
            })
            .expect("avatar");
        let paths = [
            cases().join("good_portrait.jpg"),
            cases().join("rotated_exif.jpg"),
        ];
        setup
            .studio
            .add_photos(&avatar.id.to_string(), &paths, |_| {})
            .expect("photos");
        avatar.id.to_string()
    };
    let first = named("Anna");
    let plan = setup
        .studio
        .plan_training(&first, Preset::Fast, Overrides::default())
        .await
        .expect("plan");
    assert_eq!((plan.cost_usd, plan.price_source.as_str()), (1.5, "fal"));
    assert_eq!(plan.monthly_budget_usd, Some(3.5));
    let job = setup.studio.start_training(&plan).await.expect("start");
    let job = setup.studio.drive(job.id).await.expect("drive");
    assert_eq!(job.state, JobState::Completed, "{job:?}");
    // An ordinary key may not delete the outputs or read the billing: fal keeps them until
    // they expire, and Diagnostics says so.
    assert_eq!(job.fal_outputs.as_deref(), Some("kept"));
    assert_eq!(job.billed_cost_usd, None);
    let report = setup.studio.diagnose().await;
    let retention = report
        .iter()
        .find(|diagnosis| diagnosis.service == studio::Service::FalRetention)
        .expect("retention");
    let until = (job.finished_at.expect("finished") + chrono::Duration::days(30))
        .format("%Y-%m-%d")
        .to_string();
    assert_eq!(
        (retention.finding, retention.detail.clone()),
        (studio::Finding::RetentionOutputsKept, format!("1 {until}")),
        "one training's request record and files stay, until fal's storage period ends"
    );

    fake.set_admin_key(true);
    let second = named("Bella");
    let job = start(&setup.studio, &second, Preset::Fast)
        .await
        .expect("within the budget");
    let job = setup.studio.drive(job.id).await.expect("drive");
    assert_eq!(job.fal_outputs.as_deref(), Some("deleted"));
    assert_eq!(job.billed_cost_usd, Some(1.5));
    assert_eq!(
        fake.deleted_payloads(),
        vec![job.request_id.clone().expect("request id")]
    );

    let third = named("Clara");
    let refused = start(&setup.studio, &third, Preset::Fast)
        .await
        .expect_err("past the budget");
    assert_eq!(refused.code(), studio::ErrorCode::Conflict);
    assert!(refused.to_string().contains("monthly budget"), "{refused}");
    let spending = setup.studio.spending().expect("ledger");
    assert_eq!(spending.months.len(), 1);
    let month = &spending.months[0];
    assert_eq!(
        (
            month.requests,
            month.confirmed_usd,
            month.billed_usd,
            month.billed_requests
        ),
        (2, 3.0, Some(1.5), 1)
    );
    assert_eq!(spending.committed_this_month_usd, 3.0);
    assert_eq!(
        fake.submissions().len(),
        2,
        "the refused start sent nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_that_keeps_stalling_is_retried_then_ends_the_job_with_its_reason() {
    let library = tempfile::tempdir().expect("library");
    let fake = FakeFal::start().await;
    fake.set_script(quick_script(Outcome::Success { lora_bytes: 2048 }));
    // Every PUT of every round stalls: three rounds of a first try and three retries.
    for _ in 0..12 {
        fake.push_fault(Fault::StallUpload {
            route: Route::StorageUpload,
            bytes: 1024,
        });
    }
    let quick_stall = [("FAL_READ_TIMEOUT_MS", "300".to_string())];
    let setup = open(library.path(), Some(&fake), fake.api_key(), &quick_stall);
    let avatar = avatar_with_photos(&setup.studio, TrainingType::Portrait);
    let job = start(&setup.studio, &avatar, Preset::Fast)
        .await
        .expect("start");
    let mut outcome = setup.studio.drive(job.id).await;
    while let Err(error) = &outcome {
        // Each round ends in an error the next step takes up, as a later start would.
        assert_eq!(
            error.code(),
            studio::ErrorCode::RemoteUnavailable,
            "{error}"
        );
        outcome = setup.studio.drive(job.id).await;
    }
    let job = outcome.expect("ended");
    assert_eq!(job.state, JobState::Failed, "{job:?}");
    assert_eq!(job.upload_attempts, 3);
    let failure = job.failure.expect("reason");
    assert!(
        matches!(
            &failure,
            JobFailure::TransferGaveUp {
                transfer: Transfer::Upload,
                tries: 3,
                detail,
            } if detail.contains("stalled")
        ),
        "{failure:?}"
    );
    assert_eq!(fake.request_count(Route::StorageUpload), 12);
    assert!(fake.submissions().is_empty(), "nothing was sent to train");
    assert!(!job.paid_request);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_background_follows_a_started_job_to_its_end_and_tells_the_sink() {
    let library = tempfile::tempdir().expect("library");
    let setup = open_with(library.path(), None, MemorySecrets::default(), &[]);
    let studio = Arc::new(setup.studio);
    let (sender, mut events) = tokio::sync::mpsc::unbounded_channel();
    studio.start_background(
        tokio::runtime::Handle::current(),
        Arc::new(move |event| {
            let _ = sender.send(event);
        }),
    );
    let avatar = avatar_with_photos(&studio, TrainingType::Portrait);
    // Nobody follows the job but the background, which started with the studio.
    let job = start(&studio, &avatar, Preset::Fast).await.expect("start");
    let mut states = Vec::new();
    let finished = loop {
        match events
            .recv()
            .await
            .expect("events go on until the job ends")
        {
            studio::CoreEvent::Training(seen) if seen.id == job.id => {
                states.push(seen.state);
                if seen.state.is_final() {
                    break seen;
                }
            }
            _ => {}
        }
    };
    assert_eq!(finished.state, JobState::Completed, "{states:?}");
    assert!(states.contains(&JobState::Running), "{states:?}");
    assert_eq!(setup.notifier.notices().len(), 1);
}

/// Counts the reads of each secret, for the tests that check the keychain is not asked per poll.
#[derive(Default)]
struct CountingSecrets {
    inner: MemorySecrets,
    reads: std::sync::Mutex<std::collections::HashMap<SecretName, usize>>,
}

impl CountingSecrets {
    fn reads(&self) -> std::collections::HashMap<SecretName, usize> {
        self.reads.lock().expect("reads").clone()
    }
}

impl studio::Secrets for CountingSecrets {
    fn get(&self, name: SecretName) -> Option<String> {
        *self.reads.lock().expect("reads").entry(name).or_default() += 1;
        self.inner.get(name)
    }
    fn set(&self, name: SecretName, value: &str) -> studio::Result<()> {
        self.inner.set(name, value)
    }
    fn delete(&self, name: SecretName) -> studio::Result<()> {
        self.inner.delete(name)
    }
    fn source(&self, name: SecretName) -> studio::Result<Option<studio::SecretSource>> {
        self.inner.source(name)
    }
    fn reach_store(&self) -> studio::Result<()> {
        self.inner.reach_store()
    }
}

/// Opens the setup's studio again, on the same config, with secrets that count their reads.
fn reopen_counting(setup: &mut Setup, secrets: &Arc<CountingSecrets>) {
    setup.studio = Studio::open(
        setup.studio.config().as_ref().clone(),
        Ports {
            clock: Arc::new(SystemClock),
            secrets: secrets.clone(),
            notifier: setup.notifier.clone(),
        },
    )
    .expect("studio");
}

#[tokio::test]
async fn the_keys_are_read_once_per_config_not_per_poll_or_upload() {
    let library = tempfile::tempdir().expect("library");
    // The copies stay after the job, to show they went through S3.
    let keep = [("AVATAR_KEEP_S3_UPLOADS", "true".to_string())];
    let (s3, fake, mut setup) = open_with_s3(library.path(), &keep).await;
    let secrets = Arc::new(CountingSecrets {
        inner: MemorySecrets::default()
            .with(SecretName::FalKey, fake.api_key())
            .with(SecretName::S3SecretKey, &s3.settings("avatars").secret_key),
        ..CountingSecrets::default()
    });
    reopen_counting(&mut setup, &secrets);
    let reads_at_open = secrets.reads();
    assert_eq!(reads_at_open.get(&SecretName::FalKey), Some(&1));
    assert_eq!(reads_at_open.get(&SecretName::S3SecretKey), Some(&1));
    let avatar = avatar_with_photos(&setup.studio, TrainingType::Portrait);
    let job = train(&setup.studio, &avatar, Preset::Fast).await;
    assert_eq!(job.state, JobState::Completed, "{job:?}");
    let polls = fake.request_count(Route::Status);
    assert!(polls >= 3, "the job was polled {polls} times");
    let copies = files_under(&s3.data_dir().join("avatars"));
    assert_eq!(copies.len(), 2, "one S3 copy per photo: {copies:?}");
    assert_eq!(
        secrets.reads(),
        reads_at_open,
        "no poll, upload, download or S3 call read a key again"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_relay_token_is_read_once_per_config_not_per_feed_read() {
    let library = tempfile::tempdir().expect("library");
    let relay_dir = tempfile::tempdir().expect("relay store");
    let fake = FakeFal::start().await;
    let relay = start_relay(&fake, relay_dir.path()).await;
    let mut setup = open(
        library.path(),
        Some(&fake),
        fake.api_key(),
        &[("RELAY_URL", relay.url())],
    );
    let secrets = Arc::new(CountingSecrets {
        inner: relay_secrets(fake.api_key(), RELAY_TOKEN),
        ..CountingSecrets::default()
    });
    reopen_counting(&mut setup, &secrets);
    assert_eq!(secrets.reads().get(&SecretName::RelayToken), Some(&1));
    for _ in 0..3 {
        setup
            .studio
            .read_relay_once(Duration::from_millis(10))
            .await
            .expect("the relay's feed, read with the token");
    }
    assert_eq!(
        secrets.reads().get(&SecretName::RelayToken),
        Some(&1),
        "no feed read asked the keychain again"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pack_on_fal_sends_each_prompt_once_and_brings_its_images_with_likeness_and_flags() {
    let library = tempfile::tempdir().expect("library");
    let fake = FakeFal::start().await;
    fake.set_script(quick_script(Outcome::Success { lora_bytes: 4096 }));
    let (setup, avatar, training) = trained_on_fal(&fake, library.path()).await;
    fake.set_script(Script {
        flag_images: vec![1],
        ..quick_script(Outcome::Success { lora_bytes: 4096 })
    });

    let request = studio::GenerationRequest {
        prompts: vec!["on a boat".into(), "TOK in the snow".into()],
        count: Some(2),
        ..studio::GenerationRequest::default()
    };
    let plan = setup
        .studio
        .plan_generation(&avatar, &request)
        .await
        .expect("plan");
    assert_eq!((plan.images, plan.test_mode), (4, false));
    assert_eq!(
        plan.price_source, "fal",
        "fal's pricing API names the price"
    );
    assert!(
        (plan.cost_usd - 0.14).abs() < 1e-9,
        "4 images of one megapixel at $0.035: {}",
        plan.cost_usd
    );
    let generation = setup.studio.start_generation(&plan).await.expect("start");
    let done = setup
        .studio
        .advance_generation(generation.id, |_| {})
        .await
        .expect("pack");
    assert_eq!(done.state, studio::GenerationState::Completed, "{done:?}");

    let sent = inference_submissions(&fake);
    assert_eq!(sent.len(), 2, "one request per prompt");
    for (index, submission) in sent.iter().enumerate() {
        assert_eq!(submission.input["prompt"], plan.prompts[index]);
        assert_eq!(submission.input["num_images"], 2);
        assert_eq!(
            submission.input["loras"][0]["path"],
            training.model_url.clone().expect("url").as_str()
        );
        assert!(submission.webhook_url.is_none());
    }
    let gallery = setup.studio.gallery(&avatar).expect("gallery");
    assert_eq!(gallery.len(), 4);
    let flagged: Vec<_> = gallery.iter().filter(|image| image.flagged).collect();
    assert_eq!(
        flagged.len(),
        2,
        "image 1 of each request is flagged by the safety checker"
    );
    assert!(
        flagged.iter().all(|image| image.likeness.is_none()),
        "a black square is not scored"
    );
    for image in gallery.iter().filter(|image| !image.flagged) {
        assert!(!image.simulated);
        let likeness = image.likeness.expect("the person's face");
        assert!(
            likeness >= 0.6,
            "made from the training photos, it looks like them: {likeness}"
        );
        assert!(setup.studio.gallery_file(image).is_file());
    }
    let again = open(library.path(), Some(&fake), fake.api_key(), &[]);
    again
        .studio
        .advance_generation(generation.id, |_| {})
        .await
        .expect("again");
    assert_eq!(
        inference_submissions(&fake).len(),
        2,
        "a finished pack sends nothing more"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pack_request_whose_answer_was_lost_is_adopted_from_fals_history_not_sent_again() {
    let library = tempfile::tempdir().expect("library");
    let fake = FakeFal::start().await;
    fake.set_script(quick_script(Outcome::Success { lora_bytes: 4096 }));
    let (setup, avatar, _) = trained_on_fal(&fake, library.path()).await;
    lose_next_submit_answer(&fake);
    let generation = start_pack(&setup.studio, &avatar, &["on a boat"], 1).await;
    let done = setup
        .studio
        .advance_generation(generation.id, |_| {})
        .await
        .expect("pack");
    assert_eq!(done.state, studio::GenerationState::Completed, "{done:?}");
    assert_eq!(
        inference_submissions(&fake).len(),
        1,
        "taken once, sent once"
    );
    assert_eq!(setup.studio.gallery(&avatar).expect("gallery").len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_pack_request_never_adopts_the_identical_request_of_another_pack() {
    // Comparing versions: two packs of one model with the same prompt and seed. fal's history
    // lists both requests with the same inputs; only the library knows which is whose.
    let library = tempfile::tempdir().expect("library");
    let fake = FakeFal::start().await;
    fake.set_script(quick_script(Outcome::Success { lora_bytes: 4096 }));
    let (setup, avatar, _) = trained_on_fal(&fake, library.path()).await;
    let first = start_pack(&setup.studio, &avatar, &["on a boat"], 1).await;
    let first = setup
        .studio
        .advance_generation(first.id, |_| {})
        .await
        .expect("first pack");
    assert_eq!(first.state, studio::GenerationState::Completed);
    lose_next_submit_answer(&fake);
    let second = start_pack(&setup.studio, &avatar, &["on a boat"], 1).await;
    let second = setup
        .studio
        .advance_generation(second.id, |_| {})
        .await
        .expect("second pack");
    assert_eq!(
        second.state,
        studio::GenerationState::Completed,
        "{second:?}"
    );
    let sent = inference_submissions(&fake);
    assert_eq!(sent.len(), 2, "each pack's request sent once");
    let records = library::Library::open(library.path()).expect("library");
    let request_of = |generation: &studio::Generation| {
        records
            .generation_requests(generation.id)
            .expect("requests")[0]
            .request_id
            .clone()
            .expect("settled")
    };
    assert_eq!(request_of(&first), sent[0].request_id);
    assert_eq!(
        request_of(&second),
        sent[1].request_id,
        "the lost request is the second pack's own"
    );
    assert_eq!(setup.studio.gallery(&avatar).expect("gallery").len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pack_cut_off_while_fal_works_is_finished_by_the_next_start() {
    let library = tempfile::tempdir().expect("library");
    let fake = FakeFal::start().await;
    fake.set_script(quick_script(Outcome::Success { lora_bytes: 4096 }));
    let (setup, avatar, _) = trained_on_fal(&fake, library.path()).await;
    let generation = start_pack(&setup.studio, &avatar, &["on a boat", "at the beach"], 1).await;
    // The first process stops the moment its first request reaches fal: whether it had
    // written down fal's answer or not, the next start must not send that request again.
    advance_until_sent(&setup.studio, &fake, generation.id, 1).await;
    drop(setup);
    let next = open(library.path(), Some(&fake), fake.api_key(), &[]);
    let done = next
        .studio
        .advance_generation(generation.id, |_| {})
        .await
        .expect("finish");
    assert_eq!(done.state, studio::GenerationState::Completed);
    assert_eq!(
        inference_submissions(&fake).len(),
        2,
        "each request sent once across both starts"
    );
    assert_eq!(next.studio.gallery(&avatar).expect("gallery").len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_pack_cancels_its_requests_on_fal_and_one_cancelled_before_sending_sends_nothing()
 {
    let library = tempfile::tempdir().expect("library");
    let fake = FakeFal::start().await;
    fake.set_script(quick_script(Outcome::Success { lora_bytes: 4096 }));
    let (setup, avatar, _) = trained_on_fal(&fake, library.path()).await;
    fake.set_script(Script {
        queue_time: Duration::from_secs(30),
        ..quick_script(Outcome::Success { lora_bytes: 4096 })
    });
    let studio = &setup.studio;

    let unsent = start_pack(studio, &avatar, &["on a boat"], 1).await;
    studio.cancel_generation(unsent.id).expect("cancel");
    let ended = studio
        .advance_generation(unsent.id, |_| {})
        .await
        .expect("pack");
    assert_eq!(ended.state, studio::GenerationState::Cancelled);
    assert!(inference_submissions(&fake).is_empty(), "nothing was sent");

    let generation = start_pack(studio, &avatar, &["on a boat", "at the beach"], 1).await;
    let cancelling = async {
        while inference_submissions(&fake).len() < 2 {
            tokio::task::yield_now().await;
        }
        studio.cancel_generation(generation.id).expect("cancel");
    };
    let (done, ()) = tokio::join!(studio.advance_generation(generation.id, |_| {}), cancelling);
    let done = done.expect("pack");
    assert_eq!(done.state, studio::GenerationState::Cancelled, "{done:?}");
    assert_eq!(
        fake.cancel_requests().len(),
        2,
        "fal was asked to cancel each queued request"
    );
    assert_eq!(
        inference_submissions(&fake).len(),
        2,
        "and nothing more was sent"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_lora_is_uploaded_again_from_the_library_before_the_pack_is_sent() {
    let library = tempfile::tempdir().expect("library");
    let fake = FakeFal::start().await;
    fake.set_script(quick_script(Outcome::Success { lora_bytes: 4096 }));
    let (setup, avatar, training) = trained_on_fal(&fake, library.path()).await;
    fake.push_fault(Fault::ResultExpired);
    let uploads_before = fake.uploads().len();
    let generation = start_pack(&setup.studio, &avatar, &["on a boat"], 1).await;
    let done = setup
        .studio
        .advance_generation(generation.id, |_| {})
        .await
        .expect("pack");
    assert_eq!(done.state, studio::GenerationState::Completed, "{done:?}");
    assert_eq!(
        fake.uploads().len(),
        uploads_before + 1,
        "the library's copy went to fal storage"
    );
    let path = inference_submissions(&fake)[0].input["loras"][0]["path"]
        .as_str()
        .expect("path")
        .to_string();
    assert_ne!(
        Some(path.as_str()),
        training.model_url.as_deref(),
        "the fresh copy is named"
    );
    assert_eq!(setup.studio.gallery(&avatar).expect("gallery").len(), 1);
}
