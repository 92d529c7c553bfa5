//! Every validation case in tests/fixtures/cases (made by make_photos.py) gets exactly the reason
//! codes its manifest expects, for a portrait and for a style avatar.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use photos::{Checker, Limits, Report, Subject};
use serde_json::Value;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../tests/fixtures/cases")
}

fn codes(report: &Report, field: &str) -> BTreeSet<String> {
    let value = serde_json::to_value(report).expect("report serialises");
    value[field]
        .as_array()
        .expect("codes are an array")
        .iter()
        .map(|code| code.as_str().expect("code is text").to_owned())
        .collect()
}

fn strings(value: &Value) -> BTreeSet<String> {
    value
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|item| item.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn every_case_gets_the_reasons_its_manifest_expects() {
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(fixtures().join("cases.json")).expect("manifest"))
            .expect("manifest is JSON");
    let checker = Checker::new(Limits::default()).expect("checker");
    let mut failures = Vec::new();
    for (name, case) in manifest["cases"].as_object().expect("cases") {
        if !strings(&case["requires"]).is_empty() {
            continue; // duplicates are judged against other photos, in the application core
        }
        let bytes = std::fs::read(fixtures().join(name)).expect("fixture");
        let extension = Path::new(name).extension().and_then(|e| e.to_str());
        let also_ok = strings(&case["also_ok"]);
        for (subject, key) in [(Subject::Portrait, "portrait"), (Subject::Style, "style")] {
            let report = checker.check(&bytes, extension, subject);
            let got = codes(&report, "reasons");
            let expected = strings(&case["expect"][key]);
            let missing: Vec<_> = expected.difference(&got).collect();
            let unexpected: Vec<_> = got
                .difference(&expected)
                .filter(|code| !also_ok.contains(*code))
                .collect();
            if !missing.is_empty() || !unexpected.is_empty() {
                failures.push(format!(
                    "{name} as {key}: missing {missing:?}, unexpected {unexpected:?} (faces {:?}, quality {:?}, detail {:?})",
                    report.faces, report.quality, report.detail
                ));
            }
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

/// A PNG of `width` × `height` black RGBA pixels: a few hundred kilobytes, a huge image.
fn small_file_huge_image(width: u32, height: u32) -> Vec<u8> {
    let mut bytes = Vec::new();
    let image = image::RgbaImage::new(width, height);
    image::DynamicImage::ImageRgba8(image)
        .write_to(
            &mut std::io::Cursor::new(&mut bytes),
            image::ImageFormat::Png,
        )
        .expect("encode");
    bytes
}

#[test]
fn a_small_file_that_decodes_to_a_huge_image_is_refused_from_its_header() {
    // 9,000 × 9,000 is under the pixel limit, but as RGBA it needs about 560 MB to open.
    let bytes = small_file_huge_image(9000, 9000);
    assert!(bytes.len() < 2 * 1024 * 1024, "{} bytes", bytes.len());
    let checker = Checker::new(Limits::default()).expect("checker");
    let report = checker.check(&bytes, Some("png"), Subject::Portrait);
    assert_eq!(
        codes(&report, "reasons"),
        BTreeSet::from(["dimensions_too_large".to_owned()])
    );
    let detail = report.detail.clone().unwrap_or_default();
    assert!(detail.contains("MB of memory"), "{detail}");
}
