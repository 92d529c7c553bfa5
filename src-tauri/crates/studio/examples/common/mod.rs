//! What the benchmarks share: the photos of a folder, the process's peak memory, and a studio
//! on the fake fal with a portrait avatar ready to train.

use std::path::{Path, PathBuf};

/// The folder's JPEGs, in name order.
pub fn jpegs_in(dir: &Path) -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("photo folder")
        .map(|entry| entry.expect("entry").path())
        .filter(|path| path.extension().is_some_and(|extension| extension == "jpg"))
        .collect();
    paths.sort();
    paths
}

/// The process's peak resident size so far (`VmHWM`), in MiB.
pub fn peak_rss_mib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|line| line.starts_with("VmHWM:"))
                .and_then(|line| line.split_whitespace().nth(1))
                .and_then(|kib| kib.parse::<u64>().ok())
        })
        .map_or(0, |kib| kib / 1024)
}

/// A studio on `library` paying the fake fal, polling every `poll_ms`, with a portrait avatar
/// holding two photos; returns the studio and the avatar's id.
#[allow(dead_code)] // not every benchmark trains
pub fn studio_on_fake(
    fake: &fal_fake::FakeFal,
    library: &Path,
    poll_ms: u64,
) -> (studio::Studio, String) {
    let studio = studio::TestStudio::new(library)
        .var("AVATAR_MIN_PHOTOS", "2")
        .var("FAL_TRAINING_TEST_MODE", "false")
        .var("FAL_QUEUE_URL", fake.base_url())
        .var("FAL_REST_URL", fake.base_url())
        .var("FAL_PLATFORM_URL", fake.platform_url())
        .var("FAL_POLL_INTERVAL_MS", poll_ms.to_string())
        .secret(studio::SecretName::FalKey, fake.api_key())
        .open()
        .expect("studio");
    let avatar = studio
        .create_avatar(studio::NewAvatar {
            name: "Bench".into(),
            gender: studio::Gender::Other,
            training_type: studio::TrainingType::Portrait,
        })
        .expect("avatar")
        .id
        .to_string();
    let cases = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../tests/fixtures/cases");
    let photos = [
        cases.join("good_portrait.jpg"),
        cases.join("rotated_exif.jpg"),
    ];
    studio.add_photos(&avatar, &photos, |_| {}).expect("photos");
    (studio, avatar)
}
