//! The avatar's stored photos judged again as one set: the photo of someone else is named,
//! whichever order the photos were stored in.

// Only some of the shared helpers are used here.
#[allow(dead_code)]
mod common;

use std::path::{Path, PathBuf};

use common::{new_avatar, studio};
use studio::{TrainingType, Verdict};

/// An identity fixture enlarged to a size the import accepts.
fn enlarged(name: &str, folder: &Path) -> PathBuf {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../tests/fixtures/identity")
        .join(name);
    let image = image::open(fixture).expect("fixture").into_rgb8();
    let scale = 900.0 / image.width().min(image.height()) as f32;
    let large = image::imageops::resize(
        &image,
        (image.width() as f32 * scale).round() as u32,
        (image.height() as f32 * scale).round() as u32,
        image::imageops::FilterType::Lanczos3,
    );
    let path = folder.join(name);
    large.save(&path).expect("write");
    path
}

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
