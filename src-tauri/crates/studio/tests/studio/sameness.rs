//! The avatar's stored photos judged again as one set: the photo of someone else is named,
//! whichever order the photos were stored in.

use std::path::PathBuf;

use crate::common::{enlarged, new_avatar, studio};
use studio::{PhotoCode, TrainingType, Verdict};

#[test]
fn the_stored_photo_of_someone_else_is_named() {
    let library = tempfile::tempdir().expect("temp dir");
    let files = tempfile::tempdir().expect("files");
    let studio = studio(library.path(), &[]);
    let avatar = new_avatar(&studio, TrainingType::Portrait);
    // The stranger is stored first.
    let paths: Vec<PathBuf> = [
        "biden_official.jpg",
        "obama_official.jpg",
        "obama_podium.jpg",
        "obama_crop.jpg",
    ]
    .iter()
    .map(|name| enlarged(name, files.path()))
    .collect();
    for path in &paths {
        let mut accepted = false;
        studio
            .add_photos(&avatar, std::slice::from_ref(path), |result| {
                accepted = result.verdict == Verdict::Accepted;
                assert!(accepted, "{result:?}");
            })
            .expect("add");
        assert!(accepted);
    }
    // The readiness line names it from the stored identities, without decoding a photo again.
    let readiness = studio.readiness(&avatar).expect("readiness");
    let named: Vec<&str> = readiness
        .different_person
        .iter()
        .map(|photo| photo.name.as_str())
        .collect();
    assert_eq!(named, ["biden_official.jpg"], "{readiness:?}");
    assert_eq!(readiness.different_person[0].others, 3);
    let judged = studio.judge_stored_photos(&avatar).expect("judge");
    assert_eq!(judged.len(), 4);
    for photo in &judged {
        assert_eq!(
            photo.different_person,
            photo.name == "biden_official.jpg",
            "{judged:?}"
        );
        // The stranger is measured against the three photos of the person, each of those
        // against the two others.
        let others = if photo.different_person { 3 } else { 2 };
        assert_eq!(photo.sameness.map(|sameness| sameness.others), Some(others));
    }
}

#[test]
fn a_photo_of_someone_else_is_refused_once_the_set_can_tell() {
    let library = tempfile::tempdir().expect("temp dir");
    let files = tempfile::tempdir().expect("files");
    let studio = studio(library.path(), &[]);
    let avatar = new_avatar(&studio, TrainingType::Portrait);
    let person: Vec<PathBuf> = ["obama_official.jpg", "obama_podium.jpg", "obama_crop.jpg"]
        .iter()
        .map(|name| enlarged(name, files.path()))
        .collect();
    studio
        .add_photos(&avatar, &person, |result| {
            assert_eq!(result.verdict, Verdict::Accepted, "{result:?}");
        })
        .expect("add");
    let stranger = enlarged("biden_official.jpg", files.path());
    let mut results = Vec::new();
    let readiness = studio
        .add_photos(&avatar, &[stranger], |result| results.push(result))
        .expect("add");
    assert_eq!(results.len(), 1);
    assert_eq!(results[0].verdict, Verdict::Rejected, "{:?}", results[0]);
    assert!(results[0].reasons.contains(&PhotoCode::DifferentPerson));
    let sameness = results[0].sameness.expect("measured");
    assert_eq!(sameness.others, 3);
    assert!(sameness.distance > 0.55, "{sameness:?}");
    assert_eq!(readiness.photos, 3, "the stranger was not stored");
    assert!(readiness.different_person.is_empty());
}

#[test]
fn curation_picks_the_person_shows_previews_of_the_choices_and_stops_when_asked() {
    let library = tempfile::tempdir().expect("temp dir");
    let files = tempfile::tempdir().expect("files");
    let studio = studio(library.path(), &[]);
    let avatar = new_avatar(&studio, TrainingType::Portrait);
    for name in [
        "obama_official.jpg",
        "obama_podium.jpg",
        "obama_crop.jpg",
        "biden_official.jpg",
    ] {
        enlarged(name, files.path());
    }
    let folder = vec![files.path().to_path_buf()];

    let mut seen = Vec::new();
    let mut curation = studio
        .curate_photos(
            &avatar,
            &folder,
            Some(2),
            |progress| seen.push(progress.checked),
            &|| true,
        )
        .expect("curate");
    assert_eq!(seen, [1, 2, 3, 4], "progress after every file");
    let picked: Vec<&str> = curation
        .results
        .iter()
        .filter(|result| result.picked)
        .map(|result| result.path.as_str())
        .collect();
    assert_eq!(picked.len(), 2, "{:?}", curation.results);
    assert!(
        picked.iter().all(|path| path.contains("obama")),
        "{picked:?}"
    );
    let biden = curation
        .results
        .iter()
        .find(|result| result.path.contains("biden"))
        .expect("biden");
    assert_eq!(biden.reasons, [PhotoCode::DifferentPerson]);

    studio
        .add_previews(&mut curation.results, 5)
        .expect("previews");
    for result in &curation.results {
        let swappable = result.reasons == [PhotoCode::LimitReached];
        assert_eq!(
            result.preview.is_some(),
            result.picked || swappable,
            "the picked and the swappable photos have a thumbnail, the others none: {result:?}"
        );
    }
    assert!(
        curation
            .results
            .iter()
            .any(|result| result.reasons == [PhotoCode::LimitReached]),
        "the third photo of the person is an alternate to swap in"
    );

    let stopped = studio
        .curate_photos(&avatar, &folder, None, |_| {}, &|| false)
        .expect_err("stopped");
    assert_eq!(stopped.code(), studio::ErrorCode::Cancelled);
}

#[test]
fn curation_stopped_mid_roll_returns_at_once_and_reports_nothing_more() {
    let library = tempfile::tempdir().expect("temp dir");
    let files = tempfile::tempdir().expect("files");
    let studio = studio(library.path(), &[]);
    let avatar = new_avatar(&studio, TrainingType::Portrait);
    let original = enlarged("obama_official.jpg", files.path());
    for copy in 0..16 {
        std::fs::copy(&original, files.path().join(format!("copy {copy:02}.jpg"))).expect("copy");
    }
    let stop = std::sync::atomic::AtomicBool::new(false);
    let stopped_at = std::cell::Cell::new(None);
    let progress_after_stop = std::cell::Cell::new(0);
    let outcome = studio.curate_photos(
        &avatar,
        &[files.path().to_path_buf()],
        None,
        |_| {
            if stopped_at.get().is_some() {
                progress_after_stop.set(progress_after_stop.get() + 1);
            } else {
                // The first file is checked: the creator presses Stop.
                stop.store(true, std::sync::atomic::Ordering::SeqCst);
                stopped_at.set(Some(std::time::Instant::now()));
            }
        },
        &|| !stop.load(std::sync::atomic::Ordering::SeqCst),
    );
    let returned_after = stopped_at.get().expect("stopped").elapsed();
    println!("curation returned {returned_after:?} after Stop");
    assert_eq!(
        outcome.expect_err("stopped").code(),
        studio::ErrorCode::Cancelled
    );
    assert_eq!(
        progress_after_stop.get(),
        0,
        "no file is reported after Stop"
    );
    assert!(
        returned_after < std::time::Duration::from_secs(2),
        "{returned_after:?}"
    );
}

#[test]
fn photos_stored_before_identities_were_kept_are_judged_once_their_identities_are_read() {
    let library = tempfile::tempdir().expect("temp dir");
    let files = tempfile::tempdir().expect("files");
    let studio = studio(library.path(), &[]);
    let avatar = new_avatar(&studio, TrainingType::Portrait);
    for name in [
        "biden_official.jpg",
        "obama_official.jpg",
        "obama_podium.jpg",
        "obama_crop.jpg",
    ] {
        let path = enlarged(name, files.path());
        studio.add_photos(&avatar, &[path], |_| {}).expect("add");
    }
    drop(studio);
    // As a library written before identities were kept: none on any photo.
    let database =
        rusqlite::Connection::open(library.path().join(studio::DATABASE_FILE)).expect("database");
    database
        .execute("UPDATE avatar_photos SET identities = NULL", [])
        .expect("forget");
    drop(database);

    let studio = crate::common::studio(library.path(), &[]);
    let named: Vec<String> = studio
        .readiness(&avatar)
        .expect("readiness")
        .different_person
        .into_iter()
        .map(|photo| photo.name)
        .collect();
    assert_eq!(
        named,
        ["biden_official.jpg"],
        "read from the files, then judged"
    );
}
