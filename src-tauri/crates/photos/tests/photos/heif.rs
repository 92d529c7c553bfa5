//! HEIC and AVIF photos, read through libheif: upright by their container's own transform (not
//! turned again by the EXIF orientation an iPhone also writes), checked like any photo, and
//! exported as metadata-free JPEG. Fixtures made by tests/fixtures/heif/make_heif.py.

use std::path::{Path, PathBuf};

use photos::{Checker, Code, Format, Limits, Subject};

fn fixture(folder: &str, name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../tests/fixtures")
        .join(folder)
        .join(name);
    std::fs::read(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

fn check(name: &str) -> photos::Report {
    let checker = Checker::new(Limits::default()).expect("checker");
    let extension = Path::new(name).extension().and_then(|e| e.to_str());
    checker.check(&fixture("heif", name), extension, Subject::Portrait)
}

/// Mean absolute difference per channel of two images of (nearly) the same size, over the area
/// both cover.
fn mean_difference(a: &image::RgbImage, b: &image::RgbImage) -> f64 {
    let (width, height) = (a.width().min(b.width()), a.height().min(b.height()));
    let mut sum = 0u64;
    for y in 0..height {
        for x in 0..width {
            let (p, q) = (a.get_pixel(x, y), b.get_pixel(x, y));
            sum += (0..3).map(|c| u64::from(p[c].abs_diff(q[c]))).sum::<u64>();
        }
    }
    sum as f64 / (f64::from(width) * f64::from(height) * 3.0)
}

#[test]
fn an_iphone_heic_is_read_upright_once_and_passes_as_a_portrait() {
    let report = check("iphone_portrait.heic");
    assert_eq!(report.format, Some(Format::Heic));
    assert_eq!(report.reasons, Vec::<Code>::new(), "{:?}", report.detail);
    // Stored 1365×1024 with irot and EXIF Orientation 6: upright once is 1024×1365.
    assert_eq!((report.width, report.height), (1024, 1365));
    assert_eq!(report.faces.len(), 1, "one upright face");
    assert!(!report.identities.is_empty(), "the face has an identity");
}

#[test]
fn an_avif_is_read_and_passes_as_a_portrait() {
    let report = check("portrait.avif");
    assert_eq!(report.format, Some(Format::Avif));
    assert_eq!(report.reasons, Vec::<Code>::new(), "{:?}", report.detail);
    assert_eq!((report.width, report.height), (1024, 1280));
    assert_eq!(report.faces.len(), 1);
}

#[test]
fn a_cut_short_heic_is_corrupt_with_libheifs_words() {
    let report = check("truncated.heic");
    assert_eq!(report.reasons, vec![Code::Corrupt]);
    let detail = report.detail.expect("a detail");
    assert!(detail.contains("libheif"), "{detail}");
}

#[test]
fn a_heic_in_a_codec_without_a_decoder_is_an_unsupported_format() {
    let report = check("unknown_codec.heic");
    assert_eq!(
        report.reasons,
        vec![Code::UnsupportedFormat],
        "{:?}",
        report.detail
    );
    assert!(report.detail.is_some());
}

#[test]
fn a_heic_leaves_as_an_upright_jpeg_with_no_metadata_and_the_same_picture() {
    let heic = fixture("heif", "iphone_portrait.heic");
    assert!(heic.windows(4).any(|window| window == b"Exif"));
    let copy = photos::training_copy(&heic, Vec::new()).expect("copy");
    assert_eq!(copy.extension, "jpg");
    assert_eq!(Format::sniff(&copy.bytes), Some(Format::Jpeg));
    assert!(
        !copy.bytes.windows(4).any(|window| window == b"Exif"),
        "the EXIF block (orientation, GPS) must be gone"
    );
    let exported = image::load_from_memory(&copy.bytes)
        .expect("jpeg")
        .to_rgb8();
    assert_eq!(exported.dimensions(), (1024, 1365));
    // The same photo as a JPEG with EXIF orientation, turned upright the JPEG way.
    let jpeg = photos::training_copy(&fixture("cases", "rotated_exif.jpg"), Vec::new())
        .expect("jpeg copy");
    let upright = image::load_from_memory(&jpeg.bytes)
        .expect("jpeg")
        .to_rgb8();
    let same = mean_difference(&exported, &upright);
    let turned = image::imageops::rotate180(&upright);
    let upside_down = mean_difference(&exported, &turned);
    assert!(same < 8.0, "the HEIC shows the JPEG's picture: {same:.1}");
    assert!(
        upside_down > same * 3.0,
        "and not turned twice: {upside_down:.1} vs {same:.1}"
    );
}

#[test]
fn a_heic_that_decodes_larger_than_it_says_is_refused_by_its_limited_decoder() {
    // 18 KB that says 512 × 512 and codes 8192 × 8192: decoded, 390 MB in libheif. The child
    // that opens it may use what 512 × 512 needs, so it stops early.
    let report = check("lying_size.heic");
    assert_eq!(report.format, Some(Format::Heic));
    assert_eq!((report.width, report.height), (512, 512), "what it says");
    assert_eq!(report.reasons, vec![Code::Corrupt], "{:?}", report.detail);
    let detail = report.detail.expect("a detail");
    assert!(detail.contains("larger than the 512 × 512"), "{detail}");
}
