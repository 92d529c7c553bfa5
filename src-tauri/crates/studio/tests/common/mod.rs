//! Helpers shared by the photo tests: the fixture cases, a studio over a library folder, an avatar.

use std::path::{Path, PathBuf};

use studio::{Config, Gender, NewAvatar, Ports, Studio, TrainingType};

pub fn cases() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../tests/fixtures/cases")
}

/// The studio over `library`, with settings as if `vars` were set in the environment.
pub fn studio(library: &Path, vars: &[(&str, &str)]) -> Studio {
    let lookup = |name: &str| {
        vars.iter()
            .find(|(key, _)| *key == name)
            .map(|(_, value)| value.to_string())
    };
    let config = Config::from_lookup(Some(library.to_path_buf()), lookup).expect("config");
    Studio::open(config, Ports::system()).expect("studio")
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
