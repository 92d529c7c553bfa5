//! The training copy: upright pixels, no metadata.

use std::path::PathBuf;

fn case(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../tests/fixtures/cases")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

#[test]
fn a_rotated_jpeg_is_turned_upright_and_loses_its_gps() {
    let original = case("rotated_exif.jpg");
    assert!(original.windows(4).any(|window| window == b"Exif"));
    let copy = photos::training_copy(&original).expect("copy");
    assert_eq!(copy.extension, "jpg");
    let header = dimensions(&copy.bytes);
    // Stored 1365×1024 and meant to be seen 1024×1365; trimming may drop a partial block.
    assert!((1016..=1024).contains(&header.0), "{header:?}");
    assert!((1360..=1365).contains(&header.1), "{header:?}");
    assert!(
        !copy.bytes.windows(4).any(|window| window == b"Exif"),
        "EXIF, and the GPS position in it, must be gone"
    );
}

#[test]
fn other_formats_become_png_with_the_same_pixels() {
    let original = case("webp_good.webp");
    let copy = photos::training_copy(&original).expect("copy");
    assert_eq!(copy.extension, "png");
    let before = image::load_from_memory(&original).expect("webp").to_rgb8();
    let after = image::load_from_memory(&copy.bytes).expect("png").to_rgb8();
    assert_eq!(before.dimensions(), after.dimensions());
    assert!(before.as_raw() == after.as_raw(), "lossless re-encode");
}

#[test]
fn a_corrupt_file_is_refused_with_a_reason() {
    let error = photos::training_copy(b"not an image at all")
        .err()
        .expect("refused");
    assert!(!error.is_empty());
}

fn dimensions(bytes: &[u8]) -> (usize, usize) {
    let image = image::load_from_memory(bytes).expect("a readable JPEG");
    (image.width() as usize, image.height() as usize)
}
