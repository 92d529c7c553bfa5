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
    let copy = photos::training_copy(&original, Vec::new()).expect("copy");
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
fn an_upright_jpeg_keeps_its_compressed_data_and_loses_metadata_and_trailers() {
    let plain = case("good_portrait.jpg");
    // The photo as a phone writes it: EXIF with an upright orientation and a position, a
    // comment, and a motion-photo video after the end of the image.
    let mut exif = b"Exif\0\0MM\0\x2a\0\0\0\x08GPS 48.8584 N 2.2945 E".to_vec();
    exif.resize(64, 0);
    let mut phone = plain[..2].to_vec();
    phone.extend(segment(0xE1, &exif));
    phone.extend(segment(0xFE, b"Taken by Anna"));
    phone.extend_from_slice(&plain[2..]);
    phone.extend_from_slice(b"ftypmp42 video bytes");

    let copy = photos::training_copy(&phone, Vec::new()).expect("copy");
    assert_eq!(copy.extension, "jpg");
    for secret in [&b"GPS"[..], b"Exif", b"Taken by Anna", b"ftypmp42"] {
        assert!(
            !copy
                .bytes
                .windows(secret.len())
                .any(|window| window == secret),
            "{} must be gone",
            String::from_utf8_lossy(secret)
        );
    }
    assert!(copy.bytes.ends_with(&[0xFF, 0xD9]));
    let before = image::load_from_memory(&plain).expect("original").to_rgb8();
    let after = image::load_from_memory(&copy.bytes)
        .expect("copy")
        .to_rgb8();
    assert!(before == after, "the same pixels, not re-encoded");
    let scan = |bytes: &[u8]| {
        let start = bytes
            .windows(2)
            .position(|pair| pair == [0xFF, 0xDA])
            .expect("scan");
        bytes[start..].to_vec()
    };
    assert_eq!(
        scan(&copy.bytes),
        scan(&plain),
        "compressed data copied as it is"
    );
}

fn segment(marker: u8, payload: &[u8]) -> Vec<u8> {
    let length = u16::try_from(payload.len() + 2).expect("short segment");
    let mut bytes = vec![0xFF, marker];
    bytes.extend(length.to_be_bytes());
    bytes.extend_from_slice(payload);
    bytes
}

#[test]
fn other_formats_become_png_with_the_same_pixels() {
    let original = case("webp_good.webp");
    let copy = photos::training_copy(&original, Vec::new()).expect("copy");
    assert_eq!(copy.extension, "png");
    let before = image::load_from_memory(&original).expect("webp").to_rgb8();
    let after = image::load_from_memory(&copy.bytes).expect("png").to_rgb8();
    assert_eq!(before.dimensions(), after.dimensions());
    assert!(before.as_raw() == after.as_raw(), "lossless re-encode");
}

#[test]
fn a_corrupt_file_is_refused_with_a_reason() {
    let error = photos::training_copy(b"not an image at all", Vec::new())
        .err()
        .expect("refused");
    assert!(!error.is_empty());
}

fn dimensions(bytes: &[u8]) -> (usize, usize) {
    let image = image::load_from_memory(bytes).expect("a readable JPEG");
    (image.width() as usize, image.height() as usize)
}
