//! Importing real files into a real library: verdicts, duplicates, limits, folders and links.

use std::path::PathBuf;

use crate::common::{cases, new_avatar, studio};
use studio::{PhotoCode, PhotoResult, Studio, TrainingType, Verdict};

fn add(studio: &Studio, avatar: &str, paths: &[PathBuf]) -> Vec<PhotoResult> {
    let mut results = Vec::new();
    studio
        .add_photos(avatar, paths, |result| results.push(result))
        .expect("add");
    results
}

fn named<'a>(results: &'a [PhotoResult], name: &str) -> &'a PhotoResult {
    results
        .iter()
        .find(|result| result.path.ends_with(name))
        .unwrap_or_else(|| panic!("no result for {name}"))
}

#[test]
fn a_mixed_folder_is_sorted_into_accepted_and_rejected_with_reasons() {
    let library = tempfile::tempdir().expect("temp dir");
    let studio = studio(library.path(), &[]);
    let avatar = new_avatar(&studio, TrainingType::Portrait);
    let results = add(&studio, &avatar, &[cases()]);

    // The byte-identical copy sorts first by name, so it is the one kept.
    let kept = named(&results, "duplicate_of_good_portrait.jpg");
    assert_eq!(kept.verdict, Verdict::Accepted, "{kept:?}");
    assert_eq!((kept.width, kept.height, kept.faces), (1024, 1280, 1));
    let copy = named(&results, "/good_portrait.jpg");
    assert_eq!(copy.reasons, [PhotoCode::Duplicate]);
    let photo_id = kept.photo_id.expect("stored").to_string();
    assert_eq!(
        copy.duplicate_of.as_deref(),
        Some(photo_id.as_str()),
        "it names the copy kept"
    );
    let near = named(&results, "near_duplicate_of_good_portrait.jpg");
    assert!(near.reasons.contains(&PhotoCode::NearDuplicate), "{near:?}");
    for duplicate in [copy, near] {
        let preview = duplicate.preview.as_deref().unwrap_or_default();
        assert!(
            preview.starts_with("data:image/jpeg;base64,/9j/"),
            "a duplicate carries its own thumbnail to show beside the one kept"
        );
    }
    assert_eq!(kept.preview, None, "only duplicates carry one");
    assert!(
        named(&results, "truncated.jpg")
            .reasons
            .contains(&PhotoCode::Corrupt)
    );
    assert!(
        named(&results, "cases.json")
            .reasons
            .contains(&PhotoCode::UnsupportedFormat)
    );
    let rotated = named(&results, "rotated_exif.jpg");
    assert!(
        rotated.height > rotated.width,
        "EXIF orientation is applied: {rotated:?}"
    );

    let accepted: Vec<_> = results
        .iter()
        .filter(|r| r.verdict == Verdict::Accepted)
        .collect();
    let stored = studio.list_photos(&avatar).expect("list");
    assert_eq!(
        stored.len(),
        accepted.len(),
        "exactly the accepted photos are stored"
    );
    for result in &results {
        assert_eq!(
            result.stored.as_ref().map(|photo| photo.id),
            result.photo_id,
            "each verdict carries the photo it stored, for the app to show at once: {result:?}"
        );
        if let Some(photo) = &result.stored {
            assert!(stored.contains(photo), "the photo sent is the one stored");
        }
    }
    for photo in &stored {
        let file = library
            .path()
            .join("photos")
            .join(&photo.file_hash[..2])
            .join(format!("{}.{}", photo.file_hash, photo.format));
        let bytes = std::fs::read(&file).expect("stored file exists");
        assert_eq!(
            photos::md5_hex(&bytes),
            photo.file_hash,
            "content-addressed copy is intact"
        );
        assert!(
            library
                .path()
                .join("thumbnails")
                .join(format!("{}.jpg", photo.file_hash))
                .exists()
        );
    }

    // The set's coverage counts the stored photos with a face, each by its own look.
    let looks = studio.photo_looks(&avatar).expect("looks");
    assert_eq!(looks.len(), stored.len());
    let with_face = looks.iter().filter(|(_, look)| look.pose.is_some()).count();
    let coverage = studio
        .readiness(&avatar)
        .expect("readiness")
        .coverage
        .expect("a portrait set has coverage");
    assert_eq!(coverage.photos as usize, with_face);
    let poses = coverage.poses;
    assert_eq!(
        (poses.frontal + poses.three_quarter + poses.profile) as usize,
        with_face
    );
    let rotated_look = looks
        .iter()
        .find(|(id, _)| Some(*id) == rotated.photo_id)
        .map(|(_, look)| *look)
        .expect("the rotated photo is stored");
    assert_eq!(
        rotated_look.pose,
        Some(studio::Pose::Frontal),
        "the astronaut faces the camera once the photo is upright"
    );
    if coverage.poses.profile == 0 {
        assert!(coverage.missing.contains(&studio::CoverageGap::NoProfile));
    }

    // Adding the same folder again stores nothing new: everything is a duplicate now.
    let again = add(&studio, &avatar, &[cases()]);
    assert!(again.iter().all(|r| r.verdict == Verdict::Rejected));
    assert_eq!(
        studio.list_photos(&avatar).expect("list").len(),
        stored.len()
    );
}

#[test]
fn the_better_of_two_near_duplicates_is_kept_whichever_comes_first() {
    let library = tempfile::tempdir().expect("temp dir");
    let studio = studio(library.path(), &[]);
    let avatar = new_avatar(&studio, TrainingType::Portrait);
    let worse = cases().join("near_duplicate_of_good_portrait.jpg");
    let better = cases().join("good_portrait.jpg");

    // Across imports: the smaller copy is in the set, the full-size one replaces it.
    let first = add(&studio, &avatar, std::slice::from_ref(&worse));
    let worse_id = first[0].photo_id.expect("stored").to_string();
    let second = add(&studio, &avatar, std::slice::from_ref(&better));
    assert_eq!(second[0].verdict, Verdict::Accepted, "{:?}", second[0]);
    assert_eq!(second[0].replaces.as_deref(), Some(worse_id.as_str()));
    assert_eq!(
        second[0].replaces_name.as_deref(),
        Some("near_duplicate_of_good_portrait.jpg"),
        "the result names the copy replaced"
    );
    let kept = studio.list_photos(&avatar).expect("list");
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0].original_name, "good_portrait.jpg");
    let worse_hash = &first[0].md5;
    let shard = library.path().join("photos").join(&worse_hash[..2]);
    let left: Vec<_> = std::fs::read_dir(&shard)
        .map(|entries| entries.flatten().map(|entry| entry.file_name()).collect())
        .unwrap_or_default();
    assert!(
        !left
            .iter()
            .any(|name| name.to_string_lossy().starts_with(worse_hash.as_str())),
        "the replaced copy's file is gone: {left:?}"
    );

    // Within one import, the worse copy first by name: the better one still wins.
    let folder = tempfile::tempdir().expect("temp dir");
    std::fs::copy(&worse, folder.path().join("a_small.jpg")).expect("copy");
    std::fs::copy(&better, folder.path().join("b_full.jpg")).expect("copy");
    let other = new_avatar(&studio, TrainingType::Portrait);
    let results = add(&studio, &other, &[folder.path().to_path_buf()]);
    let small_id = named(&results, "a_small.jpg").photo_id.expect("stored");
    let full = named(&results, "b_full.jpg");
    assert_eq!(full.replaces, Some(small_id.to_string()));
    let kept = studio.list_photos(&other).expect("list");
    assert_eq!(
        kept.iter().map(|photo| photo.id).collect::<Vec<_>>(),
        [full.photo_id.expect("stored")]
    );

    // A check without storing says the same.
    let mut checked = Vec::new();
    studio
        .check_photos(
            &[folder.path().to_path_buf()],
            TrainingType::Portrait,
            |result| checked.push(result),
        )
        .expect("check");
    let full = named(&checked, "b_full.jpg");
    assert_eq!(full.verdict, Verdict::Accepted);
    assert_eq!(
        full.replaces.as_deref(),
        Some(named(&checked, "a_small.jpg").path.as_str())
    );
}

#[test]
fn the_avatar_limit_and_the_size_limit_are_enforced() {
    let library = tempfile::tempdir().expect("temp dir");
    let studio = studio(
        library.path(),
        &[
            ("AVATAR_MIN_PHOTOS", "1"),
            ("AVATAR_MAX_PHOTOS", "2"),
            ("PHOTO_MAX_SIZE", "1000000"),
        ],
    );
    let avatar = new_avatar(&studio, TrainingType::Portrait);
    let names = [
        "good_portrait.jpg",
        "png_good.png",
        "rotated_exif.jpg",
        "webp_good.webp",
    ];
    let results = add(&studio, &avatar, &names.map(|name| cases().join(name)));
    assert_eq!(results[0].verdict, Verdict::Accepted);
    assert_eq!(
        results[1].reasons,
        [PhotoCode::FileTooLarge],
        "the PNG is over 1 MB"
    );
    assert_eq!(results[2].verdict, Verdict::Accepted);
    assert_eq!(results[3].reasons, [PhotoCode::LimitReached]);
    let readiness = studio.readiness(&avatar).expect("readiness");
    assert_eq!((readiness.photos, readiness.ready), (2, true));
}

#[test]
fn folders_are_walked_once_despite_link_loops_and_unfinished_files_are_skipped() {
    let library = tempfile::tempdir().expect("temp dir");
    let folder = tempfile::tempdir().expect("temp dir");
    let nested = folder.path().join("trip/day1");
    std::fs::create_dir_all(&nested).expect("dirs");
    std::fs::copy(cases().join("good_portrait.jpg"), nested.join("a.jpg")).expect("copy");
    std::fs::copy(
        cases().join("webp_good.webp"),
        nested.join("b.jpg.crdownload"),
    )
    .expect("copy");
    std::fs::copy(cases().join("webp_good.webp"), nested.join(".hidden.webp")).expect("copy");
    std::os::unix::fs::symlink(folder.path(), nested.join("loop")).expect("link loop");
    std::os::unix::fs::symlink(
        folder.path().join("missing.jpg"),
        folder.path().join("dangling.jpg"),
    )
    .expect("link");

    let studio = studio(library.path(), &[]);
    let mut results = Vec::new();
    studio
        .check_photos(
            &[folder.path().to_path_buf()],
            TrainingType::Portrait,
            |r| results.push(r),
        )
        .expect("check");
    let paths: Vec<_> = results.iter().map(|r| r.path.clone()).collect();
    assert_eq!(
        results.len(),
        2,
        "one photo and one unreadable link, nothing twice: {paths:?}"
    );
    assert!(named(&results, "a.jpg").verdict == Verdict::Accepted);
    let dangling = named(&results, "dangling.jpg");
    assert_eq!(dangling.reasons, [PhotoCode::Unreadable]);
    assert!(dangling.detail.is_some(), "the system's reason is kept");
    assert!(
        studio.list_avatars().expect("list").is_empty(),
        "check stores nothing"
    );
}

#[test]
fn removing_a_photo_deletes_its_files_unless_another_avatar_holds_them() {
    let library = tempfile::tempdir().expect("temp dir");
    let studio = studio(library.path(), &[]);
    let first = new_avatar(&studio, TrainingType::Portrait);
    let second = new_avatar(&studio, TrainingType::Portrait);
    let photo = [cases().join("good_portrait.jpg")];
    let one = add(&studio, &first, &photo)[0]
        .photo_id
        .expect("stored")
        .to_string();
    let two = add(&studio, &second, &photo)[0]
        .photo_id
        .expect("stored")
        .to_string();
    let stored = studio.list_photos(&first).expect("list")[0].clone();
    let file = library
        .path()
        .join("photos")
        .join(&stored.file_hash[..2])
        .join(format!("{}.jpeg", stored.file_hash));

    studio.remove_photo(&first, &one).expect("remove");
    assert!(file.exists(), "the other avatar still uses the file");
    studio
        .remove_photo(&second, &two[..8])
        .expect("remove by prefix");
    assert!(!file.exists(), "no avatar uses it any more");
    assert!(studio.list_photos(&first).expect("list").is_empty());
}

#[test]
fn iphone_and_avif_photos_are_stored_as_they_came_and_packed_as_jpeg() {
    let library = tempfile::tempdir().expect("temp dir");
    let studio = studio(library.path(), &[]);
    let avatar = new_avatar(&studio, TrainingType::Portrait);
    let heif = cases().join("../heif");
    let results = add(
        &studio,
        &avatar,
        &[
            heif.join("iphone_portrait.heic"),
            heif.join("portrait.avif"),
        ],
    );
    for result in &results {
        assert_eq!(result.verdict, Verdict::Accepted, "{result:?}");
    }
    let heic = named(&results, "iphone_portrait.heic");
    assert_eq!((heic.width, heic.height), (1024, 1365), "upright once");
    let stored = studio.list_photos(&avatar).expect("list");
    let mut formats: Vec<_> = stored.iter().map(|photo| photo.format.as_str()).collect();
    formats.sort_unstable();
    assert_eq!(
        formats,
        ["avif", "heic"],
        "the originals are kept as they came"
    );

    let files: Vec<PathBuf> = stored
        .iter()
        .map(|photo| {
            library
                .path()
                .join("photos")
                .join(&photo.file_hash[..2])
                .join(format!("{}.{}", photo.file_hash, photo.format))
        })
        .collect();
    let zip_path = library.path().join("set.zip");
    studio::pack(&files, None, &zip_path).expect("pack");
    let mut zip = zip::ZipArchive::new(std::fs::File::open(&zip_path).expect("zip")).expect("zip");
    assert_eq!(zip.len(), 2);
    for index in 0..zip.len() {
        let mut entry = zip.by_index(index).expect("entry");
        assert!(entry.name().ends_with(".jpg"), "{}", entry.name());
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut bytes).expect("read");
        assert_eq!(photos::Format::sniff(&bytes), Some(photos::Format::Jpeg));
        assert!(!bytes.windows(4).any(|window| window == b"Exif"));
    }
}

#[test]
fn a_folder_with_files_that_never_end_is_checked_without_reading_them() {
    let library = tempfile::tempdir().expect("temp dir");
    let folder = tempfile::tempdir().expect("folder");
    std::fs::copy(
        cases().join("good_portrait.jpg"),
        folder.path().join("good_portrait.jpg"),
    )
    .expect("copy");
    // Size 0, streams 256 GiB; a device that never ends; a pipe no one writes to.
    std::os::unix::fs::symlink("/proc/self/pagemap", folder.path().join("pagemap.jpg"))
        .expect("link");
    std::os::unix::fs::symlink("/dev/zero", folder.path().join("zero.jpg")).expect("link");
    let made = std::process::Command::new("mkfifo")
        .arg(folder.path().join("pipe.jpg"))
        .status()
        .expect("mkfifo");
    assert!(made.success());
    let studio = studio(library.path(), &[]);
    let avatar = new_avatar(&studio, TrainingType::Portrait);
    let results = add(&studio, &avatar, &[folder.path().to_path_buf()]);
    assert_eq!(
        named(&results, "good_portrait.jpg").verdict,
        Verdict::Accepted
    );
    for name in ["pagemap.jpg", "zero.jpg"] {
        let result = named(&results, name);
        assert_eq!(result.verdict, Verdict::Rejected, "{name}: {result:?}");
        assert_eq!(result.reasons, vec![PhotoCode::Unreadable], "{name}");
    }
    assert!(
        results
            .iter()
            .all(|result| !result.path.ends_with("pipe.jpg")),
        "a pipe in a folder is passed over, never opened"
    );
    // Named on its own, a pipe is refused without waiting for a writer.
    let pipe = add(&studio, &avatar, &[folder.path().join("pipe.jpg")]);
    assert_eq!(pipe[0].reasons, vec![PhotoCode::Unreadable], "{pipe:?}");
}

#[test]
fn an_import_stopped_after_its_first_photo_keeps_that_photo_and_reports_nothing_more() {
    let library = tempfile::tempdir().expect("temp dir");
    let studio = studio(library.path(), &[]);
    let avatar_id = new_avatar(&studio, TrainingType::Portrait);
    let avatar = studio.avatar(avatar_id.as_str()).expect("avatar");
    let paths: Vec<PathBuf> = ["good_portrait.jpg", "rotated_exif.jpg", "png_good.png"]
        .iter()
        .map(|name| cases().join(name))
        .collect();
    let stop = std::sync::atomic::AtomicBool::new(false);
    let mut results = Vec::new();
    let outcome = studio.add_photos_until(
        &avatar,
        &paths,
        &|| !stop.load(std::sync::atomic::Ordering::SeqCst),
        |result| {
            results.push(result);
            // The creator presses Stop as the first verdict shows.
            stop.store(true, std::sync::atomic::Ordering::SeqCst);
        },
    );
    assert_eq!(
        outcome.expect_err("stopped").code(),
        studio::ErrorCode::Cancelled
    );
    assert_eq!(results.len(), 1, "nothing after Stop");
    assert_eq!(results[0].verdict, Verdict::Accepted);
    assert_eq!(
        studio
            .list_photos(avatar_id.as_str())
            .expect("photos")
            .len(),
        1,
        "the photo stored before Stop stays"
    );
}
