//! Helpers shared by the photo tests: the fixture cases, a studio over a library folder, an avatar.

pub mod fal;

use std::path::{Path, PathBuf};

use studio::{Gender, NewAvatar, Studio, TestStudio, TrainingType};

pub fn cases() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../tests/fixtures/cases")
}

/// The studio over `library`, with settings as if `vars` were set in the environment and nothing
/// else: no keychain, no fal key from the developer's environment, no notifications.
pub fn studio(library: &Path, vars: &[(&str, &str)]) -> Studio {
    TestStudio::new(library)
        .vars(vars.iter().map(|(name, value)| (*name, value.to_string())))
        .open()
        .expect("studio")
}

/// A new avatar's id.
pub fn new_avatar(studio: &Studio, training_type: TrainingType) -> String {
    studio
        .create_avatar(NewAvatar {
            name: "Anna".into(),
            gender: Gender::Female,
            training_type,
        })
        .expect("avatar")
        .id
        .to_string()
}

/// An identity fixture enlarged to a size the import accepts.
pub fn enlarged(name: &str, folder: &Path) -> PathBuf {
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
