//! Likeness on labelled cases: images of the subject, of other people, of no person, and near
//! copies of a training photo. Prints the table the closing figures quote:
//! `cargo test -p photos --test photos likeness -- --nocapture`.

use std::path::{Path, PathBuf};

use photos::{Checker, Limits, Subject, TrainingPhoto};

fn fixture(folder: &str, name: &str) -> Vec<u8> {
    let path: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../tests/fixtures")
        .join(folder)
        .join(name);
    std::fs::read(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

fn judged(checker: &Checker, bytes: &[u8]) -> (Vec<photos::Descriptor>, Option<u64>) {
    let report = checker.check(bytes, None, Subject::Portrait);
    let faces = report
        .identities
        .iter()
        .map(|identity| identity.descriptor)
        .collect();
    (faces, report.difference_hash)
}

/// The photo scaled to 95% and saved again at a lower quality: what a model that memorised a
/// training photo gives back.
fn near_copy(bytes: &[u8]) -> Vec<u8> {
    let image = image::load_from_memory(bytes).expect("decode").to_rgb8();
    let (width, height) = (image.width() * 95 / 100, image.height() * 95 / 100);
    let smaller =
        image::imageops::resize(&image, width, height, image::imageops::FilterType::Triangle);
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 75)
        .encode_image(&smaller)
        .expect("encode");
    out
}

#[test]
fn likeness_separates_the_subject_from_other_people_no_person_and_copies() {
    let checker = Checker::new(Limits::default()).expect("checker");
    let training_names = ["obama_official.jpg", "obama_podium.jpg", "obama_crop.jpg"];
    let training: Vec<TrainingPhoto> = training_names
        .iter()
        .map(|name| {
            let (faces, difference_hash) = judged(&checker, &fixture("identity", name));
            TrainingPhoto {
                faces,
                difference_hash,
            }
        })
        .collect();

    let score = |label: &str, bytes: &[u8]| {
        let (faces, hash) = judged(&checker, bytes);
        let likeness = photos::likeness(&faces, hash, &training);
        println!(
            "| {label} | {} | {} | {} |",
            likeness
                .score
                .map_or("no face".to_string(), |score| format!("{score:.2}")),
            likeness
                .band
                .map_or("—".to_string(), |band| format!("{band:?}")),
            likeness
                .copy_of
                .map_or("—".to_string(), |index| training_names[index].to_string()),
        );
        likeness
    };
    println!("| image | likeness | band | copy of |\n|---|---|---|---|");
    let subject: Vec<_> = ["obama_standing.jpg", "obama_dim_mirror.jpg"]
        .iter()
        .map(|name| score(&format!("subject: {name}"), &fixture("identity", name)))
        .collect();
    let others: Vec<_> = [
        "biden_official.jpg",
        "biden_mirror_warm.jpg",
        "collins.jpg",
        "cameraman.jpg",
        "messi_closeup_mirror.jpg",
    ]
    .iter()
    .map(|name| {
        score(
            &format!("another person: {name}"),
            &fixture("identity", name),
        )
    })
    .collect();
    let nobody = score("no person: no_face.jpg", &fixture("cases", "no_face.jpg"));
    let copy = score(
        "near copy of obama_official.jpg",
        &near_copy(&fixture("identity", "obama_official.jpg")),
    );

    let lowest_subject = subject
        .iter()
        .map(|likeness| likeness.score.expect("the subject has a face"))
        .fold(f32::MAX, f32::min);
    let highest_other = others
        .iter()
        .map(|likeness| likeness.score.expect("another person has a face"))
        .fold(f32::MIN, f32::max);
    assert!(
        lowest_subject > highest_other,
        "the subject ({lowest_subject:.2}) scores above everyone else ({highest_other:.2})"
    );
    assert!(
        others
            .iter()
            .all(|likeness| likeness.band == Some(photos::LikenessBand::DoesNot))
    );
    assert_eq!(nobody.score, None, "an image with no face says so");
    assert_eq!(
        copy.copy_of,
        Some(0),
        "the near copy names the photo it copies"
    );
    assert!(
        subject
            .iter()
            .chain(&others)
            .all(|likeness| likeness.copy_of.is_none()),
        "other photos are not copies"
    );
}
