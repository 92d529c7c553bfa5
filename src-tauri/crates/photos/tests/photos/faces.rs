//! Face detection measured on the labelled fixtures (tests/fixtures/faces): recall per category,
//! false boxes on photos without people. Prints the table the README quotes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use photos::{Face, FaceDetector};
use serde_json::Value;

/// A detection counts as a labelled face when the boxes overlap this much.
const MATCH_IOU: f32 = 0.3;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../tests/fixtures/faces")
}

fn boxes(value: &Value) -> Vec<[f32; 4]> {
    value
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|item| {
                    let numbers: Vec<f32> = item
                        .as_array()?
                        .iter()
                        .filter_map(|n| n.as_f64().map(|n| n as f32))
                        .collect();
                    numbers.try_into().ok()
                })
                .collect()
        })
        .unwrap_or_default()
}

fn iou(face: &Face, [x, y, width, height]: [f32; 4]) -> f32 {
    let left = face.x.max(x);
    let top = face.y.max(y);
    let right = (face.x + face.width).min(x + width);
    let bottom = (face.y + face.height).min(y + height);
    let overlap = (right - left).max(0.0) * (bottom - top).max(0.0);
    overlap / (face.width * face.height + width * height - overlap)
}

#[derive(Default)]
struct Tally {
    photos: usize,
    labelled: usize,
    found: usize,
    false_boxes: usize,
}

#[test]
fn detection_meets_its_goals_on_the_labelled_fixtures() {
    let labels: Value =
        serde_json::from_slice(&std::fs::read(fixtures().join("labels.json")).expect("labels"))
            .expect("JSON");
    let detector = FaceDetector::load().expect("models");
    let mut tallies: BTreeMap<String, Tally> = BTreeMap::new();
    for (name, label) in labels["images"].as_object().expect("images") {
        let image = image::open(fixtures().join(name))
            .expect("fixture")
            .into_rgb8();
        let faces = detector.detect(&image).expect("detect");
        let truth = boxes(&label["faces"]);
        let ignore = boxes(&label["ignore"]);
        let tally = tallies
            .entry(label["category"].as_str().expect("category").to_owned())
            .or_default();
        tally.photos += 1;
        tally.labelled += truth.len();
        tally.found += truth
            .iter()
            .filter(|&&labelled| faces.iter().any(|face| iou(face, labelled) >= MATCH_IOU))
            .count();
        tally.false_boxes += faces
            .iter()
            .filter(|face| {
                !truth
                    .iter()
                    .chain(&ignore)
                    .any(|&labelled| iou(face, labelled) >= MATCH_IOU.min(0.1))
            })
            .count();
    }
    println!("| category | photos | faces | found | recall | false boxes |");
    println!("|---|---|---|---|---|---|");
    let (mut found, mut labelled, mut false_boxes) = (0, 0, 0);
    for (category, tally) in &tallies {
        let recall = if tally.labelled > 0 {
            tally.found as f32 / tally.labelled as f32
        } else {
            f32::NAN
        };
        println!(
            "| {category} | {} | {} | {} | {recall:.2} | {} |",
            tally.photos, tally.labelled, tally.found, tally.false_boxes
        );
        found += tally.found;
        labelled += tally.labelled;
        false_boxes += tally.false_boxes;
    }
    let precision = found as f32 / (found + false_boxes).max(1) as f32;
    println!(
        "| all | | {labelled} | {found} | {:.2} | {false_boxes} (precision {precision:.2}) |",
        found as f32 / labelled as f32
    );

    let single = &tallies["single"];
    assert!(
        single.found as f32 / single.labelled as f32 >= 0.95,
        "recall on single clear faces below 0.95"
    );
    assert_eq!(
        tallies["none"].false_boxes, 0,
        "a face was found on a photo without people"
    );
}
