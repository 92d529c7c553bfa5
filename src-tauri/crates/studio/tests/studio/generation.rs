//! Trying the avatar in test mode: a sample pack made on the device from the avatar's photos,
//! through the generations ledger, into the gallery, each image scored for likeness; carried on
//! after a crash without making an image twice; stopped when asked.

use std::sync::Arc;

use crate::common::enlarged;
use studio::{
    GenerationRequest, GenerationState, Overrides, Preset, RecordingNotifier, Studio, TestStudio,
    TrainingType,
};

const PERSON: [&str; 4] = [
    "obama_official.jpg",
    "obama_podium.jpg",
    "obama_crop.jpg",
    "obama_dim_mirror.jpg",
];

fn open(library: &std::path::Path) -> (Studio, Arc<RecordingNotifier>) {
    TestStudio::new(library)
        .var("AVATAR_MIN_PHOTOS", "3")
        .var("FAL_MOCK_TRAINING_DURATION", "0")
        // A process that dies holding a pack's lease holds it this long.
        .var("AVATAR_STUDIO_JOB_LEASE_SECS", "1")
        .open_recording()
        .expect("studio")
}

/// A portrait avatar with a trained (test-mode) model.
async fn trained_avatar(studio: &Studio, files: &std::path::Path) -> String {
    let avatar = crate::common::new_avatar(studio, TrainingType::Portrait);
    let paths: Vec<_> = PERSON.iter().map(|name| enlarged(name, files)).collect();
    studio.add_photos(&avatar, &paths, |_| {}).expect("add");
    let plan = studio
        .plan_training(&avatar, Preset::Fast, Overrides::default())
        .await
        .expect("plan");
    let job = studio.start_training(&plan).await.expect("start");
    let job = studio.drive(job.id).await.expect("train");
    assert_eq!(job.state, studio::JobState::Completed, "{job:?}");
    avatar
}

#[tokio::test]
async fn a_test_mode_pack_fills_the_gallery_with_scored_simulated_images_and_notifies() {
    let library = tempfile::tempdir().expect("library");
    let files = tempfile::tempdir().expect("files");
    let (studio, notifier) = open(library.path());
    let avatar = trained_avatar(&studio, files.path()).await;

    let plan = studio
        .plan_generation(&avatar, &GenerationRequest::default())
        .await
        .expect("plan");
    assert_eq!(
        plan.pack, "portrait_starter",
        "a portrait gets the portrait pack"
    );
    assert_eq!((plan.images, plan.cost_usd, plan.test_mode), (8, 0.0, true));
    assert!(plan.prompts.iter().all(|prompt| prompt.contains("TOK")));
    let generation = studio.start_generation(&plan).await.expect("start");
    assert_eq!(
        generation.state,
        GenerationState::Pending,
        "written before anything is made"
    );

    let mut told = 0;
    let done = studio
        .advance_generation(generation.id, |_| told += 1)
        .await
        .expect("generate");
    assert_eq!(done.state, GenerationState::Completed);
    assert_eq!(told, 8, "each image is told as it is stored");
    let gallery = studio.gallery(&avatar).expect("gallery");
    assert_eq!(gallery.len(), 8);
    for (position, image) in gallery.iter().enumerate() {
        assert_eq!(image.position as usize, position);
        assert!(image.simulated);
        assert_eq!(
            image.seed,
            plan.seed + position as u64,
            "a fixed seed per place"
        );
        assert!(studio.gallery_file(image).exists());
        let score = image.likeness.expect("a face of the person");
        assert!((0.0..=1.0).contains(&score));
    }
    let summary = &studio.generations(&avatar).expect("generations")[0];
    let median = summary.median_likeness.expect("a median");
    assert!(
        median >= 0.6,
        "crops of the person's own photos look like them: {median}"
    );
    let notice = notifier.notices().pop().expect("a notice");
    assert_eq!(notice.pack_images, Some(8));
    assert_eq!(notice.outcome, studio::JobState::Completed);

    // Favourites leave for a folder; a deleted image's file goes with it.
    studio
        .set_favourite(gallery[0].id, true)
        .expect("favourite");
    let exported = studio
        .export_favourites(&avatar, &files.path().join("favourites"))
        .expect("export");
    assert_eq!(exported.len(), 1);
    let deleted = studio.delete_gallery_image(gallery[1].id).expect("delete");
    assert!(!studio.gallery_file(&deleted).exists(), "its file is gone");
    assert_eq!(studio.gallery(&avatar).expect("gallery").len(), 7);

    // The avatar goes with its gallery, files and all.
    let kept = studio.gallery_file(&gallery[0]);
    studio.delete_avatar(&avatar).await.expect("delete");
    assert!(!kept.exists(), "no gallery file outlives its avatar");
}

#[tokio::test]
async fn a_pack_cut_off_by_a_crash_is_finished_by_the_next_start_without_an_image_twice() {
    let library = tempfile::tempdir().expect("library");
    let files = tempfile::tempdir().expect("files");
    let (studio, _) = open(library.path());
    let avatar = trained_avatar(&studio, files.path()).await;
    let plan = studio
        .plan_generation(&avatar, &GenerationRequest::default())
        .await
        .expect("plan");
    let generation = studio.start_generation(&plan).await.expect("start");

    // The process dies after the third image is stored.
    let studio = Arc::new(studio);
    let crashed = tokio::spawn({
        let studio = studio.clone();
        async move {
            let mut stored = 0;
            studio
                .advance_generation(generation.id, |_| {
                    stored += 1;
                    assert!(stored < 3, "the process dies here");
                })
                .await
        }
    })
    .await;
    assert!(crashed.expect_err("it died").is_panic());
    drop(studio);

    let (studio, _) = open(library.path());
    let unfinished = studio.unfinished_generations().expect("unfinished");
    assert_eq!(unfinished.len(), 1, "the next start finds the pack");
    let mut made = 0;
    let done = studio
        .advance_generation(generation.id, |_| made += 1)
        .await
        .expect("carry on");
    assert_eq!(done.state, GenerationState::Completed);
    assert_eq!(made, 5, "only the missing places are made");
    let positions: Vec<u32> = studio
        .gallery(&avatar)
        .expect("gallery")
        .iter()
        .map(|image| image.position)
        .collect();
    assert_eq!(positions, (0..8).collect::<Vec<_>>());
}

#[tokio::test]
async fn a_cancelled_pack_stops_after_the_image_being_made() {
    let library = tempfile::tempdir().expect("library");
    let files = tempfile::tempdir().expect("files");
    let (studio, _) = open(library.path());
    let avatar = trained_avatar(&studio, files.path()).await;
    let plan = studio
        .plan_generation(
            &avatar,
            &GenerationRequest {
                prompts: vec!["on a boat at sea".into()],
                count: Some(3),
                ..GenerationRequest::default()
            },
        )
        .await
        .expect("plan");
    assert_eq!(plan.pack, "custom");
    assert_eq!(
        plan.prompts,
        ["TOK, on a boat at sea"],
        "the trigger phrase is added"
    );
    let generation = studio.start_generation(&plan).await.expect("start");
    let done = studio
        .advance_generation(generation.id, |_| {
            studio.cancel_generation(generation.id).expect("cancel");
        })
        .await
        .expect("generate");
    assert_eq!(done.state, GenerationState::Cancelled);
    assert_eq!(studio.gallery(&avatar).expect("gallery").len(), 1);
    let again = studio.cancel_generation(generation.id).expect("again");
    assert_eq!(
        again.state,
        GenerationState::Cancelled,
        "an ended pack stays as it ended"
    );
}

#[tokio::test]
async fn a_pack_needs_a_trained_model() {
    let library = tempfile::tempdir().expect("library");
    let (studio, _) = open(library.path());
    let avatar = crate::common::new_avatar(&studio, TrainingType::Portrait);
    let error = studio
        .plan_generation(&avatar, &GenerationRequest::default())
        .await
        .expect_err("no model");
    assert_eq!(error.code(), studio::ErrorCode::InvalidInput);
}

#[tokio::test]
async fn a_seed_whose_images_would_pass_the_largest_seed_is_refused_at_plan_time() {
    let library = tempfile::tempdir().expect("library");
    let files = tempfile::tempdir().expect("files");
    let (studio, _) = open(library.path());
    let avatar = trained_avatar(&studio, files.path()).await;
    let request = |seed: u64| GenerationRequest {
        prompts: vec!["on a boat".into()],
        count: Some(4),
        seed: Some(seed),
        ..GenerationRequest::default()
    };
    let error = studio
        .plan_generation(&avatar, &request(u64::MAX - 1))
        .await
        .expect_err("overflows");
    assert_eq!(error.code(), studio::ErrorCode::InvalidInput, "{error}");
    let largest = i64::MAX as u64 - 4;
    let plan = studio
        .plan_generation(&avatar, &request(largest))
        .await
        .expect("the largest seed that fits");
    assert_eq!(plan.seed, largest);
}
