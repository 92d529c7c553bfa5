//! Face identity measured on the labelled fixtures (tests/fixtures/identity): the model against
//! dlib's own output, alignment, and the set judgement (same person wrongly refused, other people
//! caught, per category). Prints the tables the fixture README quotes.
//!
//! `IDENTITY_EXTRA=DIR` adds a folder of people (one sub-folder of photos per person) to the
//! measurement, for data that cannot be committed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use photos::{
    Checker, DIFFERENT_PERSON_DISTANCE, Descriptor, FaceEmbedder, Limits, Pose, Report, Subject,
    judge_set, judge_set_with,
};
use serde_json::Value;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../tests/fixtures/identity")
}

fn checker() -> &'static Checker {
    static CHECKER: OnceLock<Checker> = OnceLock::new();
    CHECKER.get_or_init(|| {
        Checker::new(Limits::default())
            .expect("models")
            .without_thumbnails()
    })
}

fn check(path: &Path) -> Report {
    checker().check_file(path, Subject::Portrait)
}

/// The descriptors of a photo's candidate faces, strongest first.
fn descriptors(report: &Report) -> Vec<Descriptor> {
    report
        .identities
        .iter()
        .map(|identity| identity.descriptor)
        .collect()
}

fn fixture(name: &str) -> Vec<Descriptor> {
    descriptors(&check(&fixtures().join(name)))
}

fn only_face(name: &str) -> Descriptor {
    let faces = fixture(name);
    assert!(!faces.is_empty(), "no face in {name}");
    faces[0]
}

#[test]
fn the_model_reproduces_dlib_on_its_own_chip() {
    let chip = image::open(fixtures().join("chip_collins_dlib.png"))
        .expect("chip")
        .into_rgb8();
    let expected: Value = serde_json::from_slice(
        &std::fs::read(fixtures().join("chip_collins_dlib.json")).expect("descriptor"),
    )
    .expect("JSON");
    let expected: Vec<f32> = expected["descriptor"]
        .as_array()
        .expect("array")
        .iter()
        .map(|value| value.as_f64().expect("number") as f32)
        .collect();
    let ours = FaceEmbedder::shared()
        .expect("model")
        .describe_chip(&chip)
        .expect("descriptor");
    let worst = ours
        .0
        .iter()
        .zip(&expected)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f32::max);
    assert!(worst < 1e-4, "largest difference from dlib: {worst}");
}

#[test]
fn blazeface_alignment_stays_near_dlibs_own() {
    let expected: Value = serde_json::from_slice(
        &std::fs::read(fixtures().join("chip_collins_dlib.json")).expect("descriptor"),
    )
    .expect("JSON");
    let mut values = [0f32; 128];
    for (value, number) in values
        .iter_mut()
        .zip(expected["descriptor"].as_array().expect("array"))
    {
        *value = number.as_f64().expect("number") as f32;
    }
    let distance = only_face("collins.jpg").distance(&Descriptor(values));
    println!("collins: BlazeFace-aligned vs dlib's 5-point chip: {distance:.3}");
    assert!(distance < 0.3, "{distance}");
}

#[test]
fn copies_of_one_photo_are_close_and_people_in_one_photo_far_apart() {
    let collins = only_face("collins.jpg");
    for copy in ["collins_mirror_dim.jpg", "collins_grey_tilt.jpg"] {
        let distance = collins.distance(&only_face(copy));
        println!("collins.jpg vs {copy}: {distance:.3}");
        assert!(distance < 0.4, "{copy}: {distance}");
    }
    let mut closest = f32::INFINITY;
    for group in 1..=6 {
        let faces = fixture(&format!("group_{group}.jpg"));
        assert!(faces.len() >= 3, "group_{group}.jpg: {} faces", faces.len());
        for (index, a) in faces.iter().enumerate() {
            for b in &faces[index + 1..] {
                closest = closest.min(a.distance(b));
            }
        }
    }
    println!("closest two people in one group photo: {closest:.3}");
    assert!(closest > 0.45, "{closest}");
}

#[test]
fn the_pose_of_a_profile_and_of_a_frontal_face() {
    let pose = |name: &str| check(&fixtures().join(name)).identities[0].pose;
    assert_eq!(pose("obama_official.jpg"), Pose::Frontal);
    assert_eq!(pose("collins.jpg"), Pose::Frontal);
    assert_ne!(pose("cameraman.jpg"), Pose::Frontal);
}

#[test]
fn the_first_photo_being_someone_else_is_refused() {
    let set: Vec<Vec<Descriptor>> = [
        "biden_official.jpg",
        "obama_official.jpg",
        "obama_podium.jpg",
        "obama_standing.jpg",
        "obama_crop.jpg",
    ]
    .iter()
    .map(|name| fixture(name))
    .collect();
    let judged = judge_set(&set);
    let refused: Vec<bool> = judged.iter().map(|photo| photo.different_person).collect();
    assert_eq!(refused, [true, false, false, false, false], "{judged:?}");
    assert_eq!(judged[0].others, 4);
}

#[test]
fn in_a_group_photo_the_subject_is_the_face_that_matches_the_set() {
    let group = check(&fixtures().join("group_with_obama.jpg"));
    let set = vec![
        fixture("obama_official.jpg"),
        descriptors(&group),
        fixture("obama_podium.jpg"),
        fixture("obama_standing.jpg"),
    ];
    assert!(
        set[1].len() >= 2,
        "faces in the group photo: {}",
        set[1].len()
    );
    let judged = judge_set(&set);
    assert!(
        judged.iter().all(|photo| !photo.different_person),
        "{judged:?}"
    );
    let subject = judged[1].subject.expect("a subject");
    let face = group.faces[group.identities[subject].face];
    // Obama is pasted on the left quarter of the picture.
    assert!(
        face.x + face.width / 2.0 < group.width as f32 * 0.3,
        "{face:?} in {} px",
        group.width
    );
}

/// One photo of the measurement: who, what kind, its faces.
struct Photo {
    name: String,
    person: String,
    independent: bool,
    categories: Vec<String>,
    faces: Vec<Descriptor>,
}

fn labelled_photos() -> Vec<Photo> {
    let labels: Value =
        serde_json::from_slice(&std::fs::read(fixtures().join("labels.json")).expect("labels"))
            .expect("JSON");
    let mut photos = Vec::new();
    for (name, label) in labels["images"].as_object().expect("images") {
        let report = check(&fixtures().join(name));
        photos.push(Photo {
            name: name.clone(),
            person: label["person"].as_str().expect("person").to_owned(),
            independent: label["kind"] == "independent",
            categories: label["categories"]
                .as_array()
                .expect("categories")
                .iter()
                .map(|category| category.as_str().expect("category").to_owned())
                .collect(),
            faces: descriptors(&report),
        });
    }
    if let Some(extra) = std::env::var_os("IDENTITY_EXTRA") {
        let mut people: Vec<PathBuf> = std::fs::read_dir(&extra)
            .expect("IDENTITY_EXTRA")
            .map(|entry| entry.expect("entry").path())
            .filter(|path| path.is_dir())
            .collect();
        people.sort();
        for folder in people {
            let person = folder
                .file_name()
                .expect("name")
                .to_string_lossy()
                .into_owned();
            let mut files: Vec<PathBuf> = std::fs::read_dir(&folder)
                .expect("folder")
                .map(|entry| entry.expect("entry").path())
                .collect();
            files.sort();
            for file in files {
                let report = check(&file);
                photos.push(Photo {
                    name: format!("{person}/{}", file.file_name().expect("name").display()),
                    person: person.clone(),
                    independent: true,
                    categories: vec!["extra".into()],
                    faces: descriptors(&report),
                });
            }
        }
    }
    photos
}

#[derive(Default, Clone, Copy)]
struct Tally {
    same: usize,
    refused: usize,
    others: usize,
    caught: usize,
}

/// Same-person photos refused and other people caught, per category, at `threshold`.
/// Each person with three or more photos is a set; each of their photos is judged within the
/// set; each face of every other person (including every face of the group photos) is added to
/// the set alone, as its first photo, and judged.
fn measure(photos: &[Photo], threshold: f32, verbose: bool) -> BTreeMap<String, Tally> {
    let mut tallies: BTreeMap<String, Tally> = BTreeMap::new();
    let mut people: Vec<&str> = photos
        .iter()
        .map(|photo| photo.person.as_str())
        .filter(|person| *person != "*")
        .collect();
    people.sort();
    people.dedup();
    for person in people {
        let members: Vec<&Photo> = photos
            .iter()
            .filter(|photo| photo.person == person && !photo.faces.is_empty())
            .collect();
        if members.len() < 3 {
            continue;
        }
        let set: Vec<Vec<Descriptor>> = members.iter().map(|photo| photo.faces.clone()).collect();
        let judged = judge_set_with(&set, threshold);
        for (photo, judgement) in members.iter().zip(&judged) {
            let kind = if photo.independent {
                "independent"
            } else {
                "edit"
            };
            for category in photo
                .categories
                .iter()
                .map(String::as_str)
                .chain([kind, "all"])
            {
                let tally = tallies.entry(category.to_owned()).or_default();
                tally.same += 1;
                tally.refused += usize::from(judgement.different_person);
            }
            if verbose && judgement.different_person {
                println!(
                    "  refused: {} ({:.3} from the other {})",
                    photo.name,
                    judgement.distance.unwrap_or_default(),
                    judgement.others
                );
            }
        }
        for stranger in photos
            .iter()
            .filter(|photo| photo.person != person && photo.independent)
        {
            for face in &stranger.faces {
                let mut with_stranger = vec![vec![*face]];
                with_stranger.extend(set.iter().cloned());
                let judgement = judge_set_with(&with_stranger, threshold)[0];
                for category in stranger
                    .categories
                    .iter()
                    .map(String::as_str)
                    .chain(["all"])
                {
                    let tally = tallies.entry(category.to_owned()).or_default();
                    tally.others += 1;
                    tally.caught += usize::from(judgement.different_person);
                }
                if verbose && !judgement.different_person {
                    println!(
                        "  missed: a face of {} in {}'s set ({:.3})",
                        stranger.name,
                        person,
                        judgement.distance.unwrap_or_default()
                    );
                }
            }
        }
    }
    tallies
}

fn rate(part: usize, whole: usize) -> String {
    if whole == 0 {
        "–".into()
    } else {
        format!("{:.1}%", 100.0 * part as f32 / whole as f32)
    }
}

#[test]
fn identity_on_the_labelled_fixtures() {
    let photos = labelled_photos();
    let without_face: Vec<&str> = photos
        .iter()
        .filter(|photo| photo.faces.is_empty())
        .map(|photo| photo.name.as_str())
        .collect();
    println!("photos without a face found: {without_face:?}");

    println!("\nthreshold sweep (all categories):");
    println!("| distance | same person wrongly refused | other people caught |");
    println!("|---|---|---|");
    for step in 0..=12 {
        let threshold = 0.40 + step as f32 * 0.025;
        let all = measure(&photos, threshold, false)["all"];
        println!(
            "| {threshold:.3} | {}/{} ({}) | {}/{} ({}) |",
            all.refused,
            all.same,
            rate(all.refused, all.same),
            all.caught,
            all.others,
            rate(all.caught, all.others)
        );
    }

    println!("\nat the chosen distance {DIFFERENT_PERSON_DISTANCE}:");
    let tallies = measure(&photos, DIFFERENT_PERSON_DISTANCE, true);
    println!("| category | same-person photos | wrongly refused | other people's faces | caught |");
    println!("|---|---|---|---|---|");
    for (category, tally) in &tallies {
        println!(
            "| {category} | {} | {} ({}) | {} | {} ({}) |",
            tally.same,
            tally.refused,
            rate(tally.refused, tally.same),
            tally.others,
            tally.caught,
            rate(tally.caught, tally.others)
        );
    }
    let all = tallies["all"];
    assert!(
        all.caught as f32 >= 0.95 * all.others as f32,
        "other people caught: {}/{}",
        all.caught,
        all.others
    );
    let independent = tallies["independent"];
    assert!(
        independent.refused as f32 <= 0.01 * independent.same as f32,
        "independent same-person photos refused: {}/{}",
        independent.refused,
        independent.same
    );
}
