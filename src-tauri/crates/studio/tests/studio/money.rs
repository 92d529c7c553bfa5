//! Paid work on a real account, as fal documents it (fal-protocol.md §8): a result collected
//! hours or days after the app was closed, a lost submit settled only once fal's history can
//! know, a pack that always ends, payload deletion that is believed only when verified, and
//! private storage read through signed URLs.

use std::sync::Arc;
use std::time::Duration;

use fal_fake::{Acl, FakeFal, Fault, LORA_FILE_NAME, Outcome, Route, Script};
use studio::{
    GenerationState, JobFailure, JobState, JobStep, ManualClock, MemorySecrets, Preset, SecretName,
    TrainingType,
};

use crate::common::fal::*;

const HOUR: Duration = Duration::from_secs(3600);
const DAY: Duration = Duration::from_secs(24 * 3600);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_training_that_ends_while_the_app_is_closed_is_collected_hours_or_days_later() {
    for later in [2 * HOUR, 6 * DAY] {
        let library = tempfile::tempdir().expect("library");
        let fake = FakeFal::start().await;
        fake.set_script(quick_script(Outcome::Success { lora_bytes: 4096 }));
        let first = open(library.path(), Some(&fake), fake.api_key(), &[]);
        let avatar = avatar_with_photos(&first.studio, TrainingType::Portrait);
        let job = start(&first.studio, &avatar, Preset::Fast)
            .await
            .expect("start");
        let queued = first
            .studio
            .follow(job.id, |job| job.state != JobState::Queued)
            .await
            .expect("queued");
        assert_eq!(queued.state, JobState::Queued);
        // The lid closes: the app stops while fal trains, and opens again long after the end.
        drop(first);
        fake.wait_for_completions(1).await;
        fake.advance_clock(later);

        let second = open(library.path(), Some(&fake), fake.api_key(), &[]);
        let job = second.studio.drive(job.id).await.expect("collected");
        assert_eq!(job.state, JobState::Completed, "{later:?} later: {job:?}");
        studio::verify_safetensors(
            std::path::Path::new(job.model_path.as_deref().expect("model")),
            Some(4096),
        )
        .expect("a whole model");
        let submissions = fake.submissions();
        assert_eq!(submissions.len(), 1, "one submit");
        assert_ne!(
            submissions[0].store_io.as_deref(),
            Some("0"),
            "fal keeps the result for its storage period"
        );
        assert_eq!(
            submissions[0].request_timeout,
            Some(fal::START_DEADLINE),
            "and a start deadline bounds an unanswered submit"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pack_that_ends_while_the_app_is_closed_is_collected_two_hours_later() {
    let library = tempfile::tempdir().expect("library");
    let fake = FakeFal::start().await;
    fake.set_script(quick_script(Outcome::Success { lora_bytes: 4096 }));
    let (setup, avatar, _) = trained_on_fal(&fake, library.path()).await;
    let generation = start_pack(&setup.studio, &avatar, &["on a boat", "at the beach"], 2).await;
    advance_until_sent(&setup.studio, &fake, generation.id, 2).await;
    drop(setup);
    // The training and both requests end while the app is closed.
    fake.wait_for_completions(3).await;
    fake.advance_clock(2 * HOUR);

    let next = open(library.path(), Some(&fake), fake.api_key(), &[]);
    let done = next
        .studio
        .advance_generation(generation.id, |_| {})
        .await
        .expect("pack");
    assert_eq!(done.state, GenerationState::Completed, "{done:?}");
    let gallery = next.studio.gallery(&avatar).expect("gallery");
    assert_eq!(gallery.len(), 4, "every image in the gallery");
    assert_eq!(
        inference_submissions(&fake).len(),
        2,
        "each request sent once"
    );
    for pair in gallery.chunks(2) {
        assert!(
            gallery
                .iter()
                .filter(|image| image.seed == pair[0].seed)
                .count()
                >= 2,
            "fal answers one seed per request: {gallery:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_submit_is_adopted_once_fal_lists_it_after_it_finishes() {
    let library = tempfile::tempdir().expect("library");
    let fake = FakeFal::start().await;
    // Long enough that the first looks at the history come before it ends.
    fake.set_script(Script {
        run_time: Duration::from_millis(1500),
        ..quick_script(Outcome::Success { lora_bytes: 4096 })
    });
    lose_next_submit_answer(&fake);
    let setup = open(library.path(), Some(&fake), fake.api_key(), &[]);
    let avatar = avatar_with_photos(&setup.studio, TrainingType::Portrait);
    let job = start(&setup.studio, &avatar, Preset::Fast)
        .await
        .expect("start");
    let mut steps = Vec::new();
    let job = setup
        .studio
        .follow(job.id, |job| {
            steps.extend(job.step.clone());
            true
        })
        .await
        .expect("followed");
    assert_eq!(job.state, JobState::Completed, "{job:?}");
    assert!(
        steps.contains(&JobStep::AwaitingHistory),
        "not listed while it ran: {steps:?}"
    );
    assert!(steps.contains(&JobStep::Adopted), "{steps:?}");
    assert_eq!(fake.submissions().len(), 1, "one submit");
    assert_eq!(
        job.request_id.as_deref(),
        Some(fake.submissions()[0].request_id.as_str())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_submit_that_never_reached_fal_is_called_never_received_only_after_the_bound() {
    let library = tempfile::tempdir().expect("library");
    let fake = FakeFal::start().await;
    fake.set_script(quick_script(Outcome::Success { lora_bytes: 2048 }));
    // The connection breaks after the request left, and fal never took it.
    fake.push_fault(Fault::DropConnection {
        route: Route::Submit,
    });
    let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
    let setup = open_with_clock(
        library.path(),
        Some(&fake),
        MemorySecrets::default().with(SecretName::FalKey, fake.api_key()),
        &[],
        clock.clone(),
    );
    let avatar = avatar_with_photos(&setup.studio, TrainingType::Portrait);
    start(&setup.studio, &avatar, Preset::Fast)
        .await
        .expect("start");
    let step = || async {
        let mut stepped = setup.studio.advance_unfinished().await.expect("advance");
        stepped.remove(0).0
    };
    let pending = step().await;
    assert_eq!(pending.state, JobState::Submitting, "{pending:?}");
    assert_eq!(pending.step, Some(JobStep::AwaitingHistory));
    assert!(pending.paid_request, "counted until proven otherwise");
    // The start deadline, the longest run and the history's delay: 5 h 10 min by default.
    let bound = Duration::from_secs((2 * 60 + 3 * 60 + 10) * 60);
    clock.advance(chrono::Duration::from_std(bound - Duration::from_secs(120)).expect("time"));
    let still = step().await;
    assert_eq!(
        still.state,
        JobState::Submitting,
        "not yet proven: {still:?}"
    );
    clock.advance(chrono::Duration::minutes(3));
    let settled = step().await;
    assert_eq!(settled.state, JobState::Failed, "{settled:?}");
    assert_eq!(
        settled.failure,
        Some(JobFailure::NeverReceived {
            minutes: bound.as_secs() as u32 / 60
        })
    );
    assert!(!settled.paid_request, "nothing was charged");
    assert!(fake.submissions().is_empty(), "0 charges");
    assert!(setup.studio.spending().expect("ledger").months.is_empty());
}

/// The next submit is taken but its answer lost, and fal's request history answers 500 to the
/// lookup that follows (the client's tries included).
fn lose_the_answer_while_the_history_is_down(fake: &FakeFal) {
    fake.push_fault(Fault::AcceptThenDrop {
        route: Route::Submit,
    });
    for _ in 0..4 {
        fake.push_fault(Fault::Status {
            route: Route::RequestsByEndpoint,
            status: 500,
            body: serde_json::json!({"error": {"type": "server_error", "message": "down"}}),
            headers: Vec::new(),
        });
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_submit_the_history_cannot_settle_says_check_the_dashboard_with_its_time() {
    let fake = FakeFal::start().await;
    fake.set_script(quick_script(Outcome::Success { lora_bytes: 2048 }));
    lose_the_answer_while_the_history_is_down(&fake);
    let library = tempfile::tempdir().expect("library");
    let setup = open(library.path(), Some(&fake), fake.api_key(), &[]);
    let avatar = avatar_with_photos(&setup.studio, TrainingType::Portrait);
    let job = train(&setup.studio, &avatar, Preset::Fast).await;
    assert_eq!(job.state, JobState::Failed, "{job:?}");
    let Some(JobFailure::Unsettled { sent_at, .. }) = job.failure else {
        panic!("{job:?}");
    };
    assert_eq!(
        sent_at, job.submitted_at,
        "the time to look for on the dashboard"
    );
    assert!(job.paid_request, "it may have been charged");
    assert_eq!(fake.submissions().len(), 1, "never sent twice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pack_ends_when_one_request_is_forgotten_and_one_image_is_gone_for_good() {
    let library = tempfile::tempdir().expect("library");
    let fake = FakeFal::start().await;
    fake.set_script(quick_script(Outcome::Success { lora_bytes: 4096 }));
    let (setup, avatar, _) = trained_on_fal(&fake, library.path()).await;
    let generation = start_pack(
        &setup.studio,
        &avatar,
        &["on a boat", "at the beach", "in the snow"],
        1,
    )
    .await;
    let sabotage = async {
        while inference_submissions(&fake).len() < 3 {
            tokio::task::yield_now().await;
        }
        let sent = inference_submissions(&fake);
        // fal forgets the first request (its status answers 404), and the second's image is
        // gone from the CDN for good.
        fake.forget_request(&sent[0].request_id);
        fake.delete_output_files(&sent[1].request_id);
    };
    let (done, ()) = tokio::join!(
        setup.studio.advance_generation(generation.id, |_| {}),
        sabotage
    );
    let done = done.expect("the pack ends");
    assert!(done.state.is_final(), "{done:?}");
    let gallery = setup.studio.gallery(&avatar).expect("gallery");
    assert_eq!(gallery.len(), 1, "the third request's image is kept");
    assert!(gallery[0].prompt.ends_with("in the snow"), "{gallery:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outputs_are_called_deleted_on_fal_only_when_every_file_went() {
    let library = tempfile::tempdir().expect("library");
    let fake = FakeFal::start().await;
    fake.set_script(quick_script(Outcome::Success { lora_bytes: 4096 }));
    fake.set_admin_key(true);
    let setup = open(library.path(), Some(&fake), fake.api_key(), &[]);
    let avatar = avatar_with_photos(&setup.studio, TrainingType::Portrait);
    let job = train(&setup.studio, &avatar, Preset::Fast).await;
    assert_eq!(job.fal_outputs.as_deref(), Some("deleted"), "{job:?}");

    fake.fail_deletion_of(LORA_FILE_NAME);
    let job = train(&setup.studio, &avatar, Preset::Fast).await;
    assert_eq!(job.state, JobState::Completed);
    assert_eq!(
        job.fal_outputs.as_deref(),
        Some("kept"),
        "fal answered an exception for the LoRA file"
    );
    let diagnosis = setup.studio.diagnose().await;
    assert!(
        diagnosis
            .iter()
            .any(|line| line.finding == studio::Finding::RetentionOutputsKept),
        "{diagnosis:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_with_private_storage_downloads_its_model_through_a_signed_url() {
    for acl in [Acl::Forbid, Acl::Hide] {
        let library = tempfile::tempdir().expect("library");
        let fake = FakeFal::start().await;
        fake.set_script(quick_script(Outcome::Success { lora_bytes: 4096 }));
        fake.set_output_acl(acl);
        let setup = open(library.path(), Some(&fake), fake.api_key(), &[]);
        let avatar = avatar_with_photos(&setup.studio, TrainingType::Portrait);
        let job = train(&setup.studio, &avatar, Preset::Fast).await;
        assert_eq!(job.state, JobState::Completed, "{acl:?}: {job:?}");
        assert_eq!(fake.request_count(Route::SignFileUrl), 1, "{acl:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_price_of_zero_is_not_fals_and_one_that_agrees_with_the_table_is() {
    let library = tempfile::tempdir().expect("library");
    let fake = FakeFal::start().await;
    let trainer = "fal-ai/flux-lora-portrait-trainer";
    fake.set_price(trainer, 0.0, "steps");
    let setup = open(library.path(), Some(&fake), fake.api_key(), &[]);
    let avatar = avatar_with_photos(&setup.studio, TrainingType::Portrait);
    let plan = |steps: u32| {
        let overrides = studio::Overrides {
            steps: Some(steps),
            learning_rate: None,
        };
        setup.studio.plan_training(&avatar, Preset::Fast, overrides)
    };
    let free = plan(1000).await.expect("plan");
    assert_eq!(free.price_source, "static", "$0 is not a price: {free:?}");
    assert!((free.cost_usd - 2.4).abs() < 1e-9, "{free:?}");
    // fal's estimate endpoint answers for the exact request, at the account's price.
    fake.set_price(trainer, 0.0025, "steps");
    let agreed = plan(1200).await.expect("plan");
    assert_eq!(agreed.price_source, "fal", "{agreed:?}");
    assert!(!agreed.price_unverified);
    assert!((agreed.cost_usd - 3.0).abs() < 1e-9, "{agreed:?}");

    // A pack: a live price far under the documented $0.035 per megapixel is not used either.
    let (setup, avatar, _) = trained_on_fal(&fake, library.path()).await;
    let request = studio::GenerationRequest {
        prompts: vec!["on a boat".into()],
        count: Some(2),
        ..studio::GenerationRequest::default()
    };
    fake.set_price(studio::DEFAULT_GENERATION_ENDPOINT, 0.0001, "megapixels");
    let cheap = setup
        .studio
        .plan_generation(&avatar, &request)
        .await
        .expect("plan");
    assert_eq!(cheap.price_source, "static", "{cheap:?}");
    assert!((cheap.cost_usd - 0.07).abs() < 1e-9, "{cheap:?}");
    fake.set_price(studio::DEFAULT_GENERATION_ENDPOINT, 0.03, "megapixels");
    // A price read is kept for an hour: a new start reads it again.
    let setup = open(library.path(), Some(&fake), fake.api_key(), &[]);
    let near = setup
        .studio
        .plan_generation(&avatar, &request)
        .await
        .expect("plan");
    assert_eq!(near.price_source, "fal", "{near:?}");
    assert!((near.cost_usd - 0.06).abs() < 1e-9, "{near:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_start_adopts_an_earlier_unsettled_request_fal_now_lists_instead_of_paying_again() {
    let fake = FakeFal::start().await;
    fake.set_script(Script {
        run_time: Duration::from_millis(1500),
        ..quick_script(Outcome::Success { lora_bytes: 4096 })
    });
    // The answer is lost and fal's history cannot be read then: the job ends unsettled.
    lose_the_answer_while_the_history_is_down(&fake);
    let library = tempfile::tempdir().expect("library");
    let setup = open(library.path(), Some(&fake), fake.api_key(), &[]);
    let avatar = avatar_with_photos(&setup.studio, TrainingType::Portrait);
    let unsettled = train(&setup.studio, &avatar, Preset::Fast).await;
    assert!(
        matches!(unsettled.failure, Some(JobFailure::Unsettled { .. })),
        "{unsettled:?}"
    );
    // While fal still trains it, the history cannot tell: nothing new starts.
    let refused = start(&setup.studio, &avatar, Preset::Fast)
        .await
        .expect_err("not yet known");
    assert_eq!(refused.code(), studio::ErrorCode::Conflict, "{refused}");
    assert!(
        refused.to_string().contains("never paid twice"),
        "{refused}"
    );

    fake.wait_for_completions(1).await;
    let adopted = start(&setup.studio, &avatar, Preset::Fast)
        .await
        .expect("adopted");
    assert_eq!(adopted.step, Some(JobStep::Adopted));
    let done = setup.studio.drive(adopted.id).await.expect("drive");
    assert_eq!(done.state, JobState::Completed, "{done:?}");
    assert_eq!(
        done.request_id.as_deref(),
        Some(fake.submissions()[0].request_id.as_str())
    );
    assert_eq!(fake.submissions().len(), 1, "never a second paid submit");
    let spending = setup.studio.spending().expect("ledger");
    assert_eq!(spending.months.len(), 1);
    assert_eq!(
        spending.months[0].requests, 1,
        "the request is counted once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_an_avatar_waits_for_its_pack_and_keeps_its_paid_runs_in_the_ledger() {
    let library = tempfile::tempdir().expect("library");
    let fake = FakeFal::start().await;
    fake.set_script(quick_script(Outcome::Success { lora_bytes: 4096 }));
    let (setup, avatar, _) = trained_on_fal(&fake, library.path()).await;
    let studio = &setup.studio;
    let before = studio.spending().expect("ledger");
    assert_eq!(before.months[0].requests, 1, "{before:?}");

    let pack = start_pack(studio, &avatar, &["on a boat"], 1).await;
    let refused = studio
        .delete_avatar(avatar.as_str())
        .await
        .expect_err("a pack is under way");
    assert_eq!(refused.code(), studio::ErrorCode::Conflict, "{refused}");
    studio.cancel_generation(pack.id).expect("cancel");
    let ended = studio
        .advance_generation(pack.id, |_| {})
        .await
        .expect("pack");
    assert_eq!(ended.state, GenerationState::Cancelled);

    studio
        .delete_avatar(avatar.as_str())
        .await
        .expect("deleted");
    let after = studio.spending().expect("ledger");
    assert_eq!(
        after.months, before.months,
        "the paid run stays in the ledger"
    );
    assert_eq!(
        after.committed_this_month_usd, before.committed_this_month_usd,
        "and the budget still counts it"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resumed_pack_whose_lora_expired_meanwhile_sends_the_librarys_copy() {
    let library = tempfile::tempdir().expect("library");
    let fake = FakeFal::start().await;
    fake.set_script(quick_script(Outcome::Success { lora_bytes: 4096 }));
    let (setup, avatar, training) = trained_on_fal(&fake, library.path()).await;
    let generation = start_pack(&setup.studio, &avatar, &["on a boat", "at the beach"], 1).await;
    // The app stops as the first request reaches fal, its answer held: the second is not sent.
    fake.push_fault(Fault::Delay {
        route: Route::Submit,
        delay: Duration::from_secs(60),
    });
    advance_until_sent(&setup.studio, &fake, generation.id, 1).await;
    drop(setup);
    // The first request ends; then the training's LoRA goes from fal's CDN.
    fake.wait_for_completions(2).await;
    let training_request = training.request_id.clone().expect("request");
    fake.delete_output_files(&training_request);
    let uploads_before = fake.uploads().len();

    let next = open(library.path(), Some(&fake), fake.api_key(), &[]);
    let done = next
        .studio
        .advance_generation(generation.id, |_| {})
        .await
        .expect("pack");
    assert_eq!(done.state, GenerationState::Completed, "{done:?}");
    let sent = inference_submissions(&fake);
    assert_eq!(sent.len(), 2, "each request sent once");
    assert_ne!(
        sent[1].input["loras"][0]["path"].as_str(),
        training.model_url.as_deref(),
        "never the dead address"
    );
    assert_eq!(
        fake.uploads().len(),
        uploads_before + 1,
        "the library's copy"
    );
    assert_eq!(next.studio.gallery(&avatar).expect("gallery").len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_advancing_one_pack_send_each_request_once() {
    let library = tempfile::tempdir().expect("library");
    let fake = FakeFal::start().await;
    fake.set_script(quick_script(Outcome::Success { lora_bytes: 4096 }));
    let (app, avatar, _) = trained_on_fal(&fake, library.path()).await;
    let prompts = ["on a boat", "at the beach", "in the snow", "in a cafe"];
    let generation = start_pack(&app.studio, &avatar, &prompts, 1).await;
    // The app in the tray and `avatar-cli generate` at the same moment.
    let cli = open(library.path(), Some(&fake), fake.api_key(), &[]);
    let (first, second) = tokio::join!(
        app.studio.advance_generation(generation.id, |_| {}),
        cli.studio.advance_generation(generation.id, |_| {})
    );
    let (first, second) = (first.expect("app"), second.expect("cli"));
    assert!(first.state.is_final() && second.state.is_final());
    let sent = inference_submissions(&fake);
    assert_eq!(sent.len(), prompts.len(), "0 double sends");
    assert_eq!(
        app.studio.gallery(&avatar).expect("gallery").len(),
        prompts.len()
    );
    let image_downloads = fake
        .output_downloads()
        .into_iter()
        .filter(|path| sent.iter().any(|sent| path.contains(&sent.request_id)))
        .count();
    assert_eq!(image_downloads, prompts.len(), "one download per image");
    let pack_ends = |setup: &Setup| {
        setup
            .notifier
            .notices()
            .iter()
            .filter(|notice| notice.pack_images.is_some())
            .count()
    };
    assert_eq!(
        pack_ends(&app) + pack_ends(&cli),
        1,
        "the pack's end is told once, by the process that made it"
    );
}
