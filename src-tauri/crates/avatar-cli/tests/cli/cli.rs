//! The CLI contract, run as a real process against a real library folder.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

const CLI: &str = env!("CARGO_BIN_EXE_avatar-cli");

fn cli(library: &Path, args: &[&str]) -> Output {
    run(crate::isolated(CLI), library, args)
}

fn run(mut command: Command, library: &Path, args: &[&str]) -> Output {
    command
        .arg("--library")
        .arg(library)
        .args(args)
        .env("FAL_TRAINING_TEST_MODE", "true")
        .output()
        .expect("avatar-cli runs")
}

fn json_ok(library: &Path, args: &[&str]) -> Value {
    let output = cli(library, args);
    assert!(
        output.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("stdout is one JSON value")
}

#[test]
fn create_then_list_round_trips_as_json() {
    let library = tempfile::tempdir().expect("temp dir");
    let created = json_ok(
        library.path(),
        &[
            "avatar", "create", "--name", "Ника", "--type", "portrait", "--gender", "female",
            "--json",
        ],
    );
    let id = created["id"].as_str().expect("id is a string");
    assert_eq!(created["name"], "Ника");
    assert_eq!(created["status"], "draft");
    assert_eq!(created["training_type"], "portrait");

    let listed = json_ok(library.path(), &["--json", "avatar", "list"]);
    assert_eq!(listed.as_array().map(Vec::len), Some(1));
    assert_eq!(listed[0], created, "list shows exactly what create printed");

    let renamed = json_ok(
        library.path(),
        &["avatar", "rename", &id[..8], "Nika", "--json"],
    );
    assert_eq!(renamed["name"], "Nika");
    let shown = json_ok(library.path(), &["avatar", "show", id, "--json"]);
    assert_eq!(shown["name"], "Nika");

    let deleted = json_ok(library.path(), &["avatar", "delete", id, "--json"]);
    assert_eq!(deleted["deleted"], id);
    assert_eq!(
        json_ok(library.path(), &["avatar", "list", "--json"]),
        Value::Array(vec![])
    );
}

#[test]
fn errors_exit_non_zero_with_one_json_object_on_stderr() {
    let library = tempfile::tempdir().expect("temp dir");
    let output = cli(
        library.path(),
        &[
            "avatar", "create", "--name", " ", "--type", "style", "--gender", "other", "--json",
        ],
    );
    assert!(!output.status.success());
    assert!(output.stdout.is_empty(), "nothing on stdout on failure");
    let error: Value = serde_json::from_slice(&output.stderr).expect("stderr is JSON");
    assert_eq!(error["code"], "invalid_input");
    assert!(
        error["message"]
            .as_str()
            .is_some_and(|m| m.contains("name"))
    );

    let missing = cli(
        library.path(),
        &[
            "avatar",
            "show",
            "00000000-0000-0000-0000-000000000000",
            "--json",
        ],
    );
    let error: Value = serde_json::from_slice(&missing.stderr).expect("stderr is JSON");
    assert_eq!(error["code"], "not_found");
}

#[test]
fn errors_without_json_are_one_readable_line() {
    let library = tempfile::tempdir().expect("temp dir");
    let output = cli(library.path(), &["avatar", "rename", "nope", "x"]);
    assert!(!output.status.success());
    let stderr = String::from_utf8(output.stderr).expect("utf-8");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with("error: "), "{stderr}");
}

#[test]
fn an_unknown_type_is_refused_before_touching_the_library() {
    let library = tempfile::tempdir().expect("temp dir");
    let output = cli(
        library.path(),
        &[
            "avatar", "create", "--name", "A", "--type", "cartoon", "--gender", "male",
        ],
    );
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("portrait, style"), "{stderr}");
}

#[test]
fn a_library_from_a_newer_version_is_refused_clearly() {
    let library = tempfile::tempdir().expect("temp dir");
    json_ok(library.path(), &["avatar", "list", "--json"]);
    // What a future release would leave behind: a schema version this build does not know.
    rusqlite::Connection::open(library.path().join("library.sqlite3"))
        .and_then(|db| db.pragma_update(None, "user_version", 999))
        .expect("bump schema version");
    let output = cli(library.path(), &["avatar", "list", "--json"]);
    assert!(!output.status.success());
    let error: Value = serde_json::from_slice(&output.stderr).expect("stderr is JSON");
    assert_eq!(error["code"], "library_too_new");
    assert!(
        error["message"]
            .as_str()
            .is_some_and(|m| m.contains("update the app"))
    );
}

fn cases() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../tests/fixtures/cases")
}

fn json_lines(output: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).expect("each line is one JSON object"))
        .collect()
}

#[test]
fn photos_check_prints_one_json_object_per_file_with_the_contract_fields() {
    let library = tempfile::tempdir().expect("temp dir");
    let output = cli(
        library.path(),
        &[
            "photos",
            "check",
            "--type",
            "portrait",
            "--json",
            cases().to_str().expect("utf-8"),
        ],
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let lines = json_lines(&output);
    let files = std::fs::read_dir(cases()).expect("cases").count();
    assert_eq!(lines.len(), files, "one line per file in the folder");
    for line in &lines {
        for field in [
            "path",
            "verdict",
            "reasons",
            "warnings",
            "md5",
            "width",
            "height",
            "faces",
            "quality_score",
            "duplicate_of",
        ] {
            assert!(line.get(field).is_some(), "{field} missing in {line}");
        }
    }
    let tiny = lines
        .iter()
        .find(|l| l["path"].as_str().is_some_and(|p| p.ends_with("tiny.jpg")))
        .expect("tiny");
    assert_eq!(tiny["verdict"], "rejected");
    assert!(
        tiny["reasons"]
            .as_array()
            .is_some_and(|r| r.contains(&Value::from("resolution_too_low")))
    );
}

/// A folder holding a photo (`open.jpg`) beside a folder (`locked/`) and a photo (`secret.webp`)
/// that no one may read; their modes are given back when it is dropped.
struct LockedFolder {
    folder: tempfile::TempDir,
}

impl LockedFolder {
    const LOCKED: [&str; 2] = ["locked", "secret.webp"];

    fn new() -> LockedFolder {
        let folder = tempfile::tempdir().expect("temp dir");
        let locked = folder.path().join("locked");
        std::fs::create_dir(&locked).expect("folder");
        std::fs::copy(cases().join("png_good.png"), locked.join("inside.png")).expect("copy");
        std::fs::copy(
            cases().join("good_portrait.jpg"),
            folder.path().join("open.jpg"),
        )
        .expect("copy");
        std::fs::copy(
            cases().join("webp_good.webp"),
            folder.path().join("secret.webp"),
        )
        .expect("copy");
        let locked = LockedFolder { folder };
        locked.set_modes(0o000);
        locked
    }

    fn path(&self) -> &str {
        self.folder.path().to_str().expect("utf-8")
    }

    fn set_modes(&self, mode: u32) {
        use std::os::unix::fs::PermissionsExt;
        for name in Self::LOCKED {
            let permissions = std::fs::Permissions::from_mode(mode);
            std::fs::set_permissions(self.folder.path().join(name), permissions).expect("chmod");
        }
    }

    /// The CLI, held to file modes. Root reads any file whatever its mode; without these two
    /// capabilities it is held to the mode like any other account, as a creator's own would be.
    fn cli(&self) -> Command {
        if std::fs::read_dir(self.folder.path().join("locked")).is_err() {
            return crate::isolated(CLI);
        }
        let mut command = crate::isolated("setpriv");
        command
            .args(["--bounding-set", "-dac_override,-dac_read_search"])
            .args(["--inh-caps", "-all", CLI]);
        command
    }

    /// The verdicts printed: the photo accepted, the rest refused as unreadable with the reason.
    fn assert_reported(&self, lines: &[Value]) {
        let verdict_of = |name: &str| {
            lines
                .iter()
                .find(|line| line["path"].as_str().is_some_and(|p| p.ends_with(name)))
                .unwrap_or_else(|| panic!("no line for {name} in {lines:?}"))
        };
        assert_eq!(lines.len(), 3, "the folder, the file, the photo: {lines:?}");
        assert_eq!(verdict_of("open.jpg")["verdict"], "accepted");
        for name in Self::LOCKED {
            let line = verdict_of(name);
            assert_eq!(line["verdict"], "rejected", "{line}");
            assert_eq!(line["reasons"], serde_json::json!(["unreadable"]), "{line}");
            assert_eq!(line["message"], "the file or folder could not be read");
            assert!(
                line["detail"]
                    .as_str()
                    .is_some_and(|detail| detail.contains("Permission denied")),
                "the system's reason is kept: {line}"
            );
        }
    }
}

impl Drop for LockedFolder {
    fn drop(&mut self) {
        self.set_modes(0o755);
    }
}

#[test]
fn files_and_folders_that_cannot_be_read_are_reported_and_the_rest_is_checked() {
    let library = tempfile::tempdir().expect("temp dir");
    let folder = LockedFolder::new();
    let output = run(
        folder.cli(),
        library.path(),
        &[
            "photos",
            "check",
            "--type",
            "style",
            "--json",
            folder.path(),
        ],
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    folder.assert_reported(&json_lines(&output));
}

#[test]
fn a_watched_folder_reports_what_cannot_be_read_instead_of_waiting_for_it() {
    use std::io::BufRead;

    let library = tempfile::tempdir().expect("temp dir");
    let avatar = json_ok(
        library.path(),
        &[
            "avatar", "create", "--name", "W", "--type", "style", "--gender", "other", "--json",
        ],
    );
    let folder = LockedFolder::new();
    let mut watcher = folder
        .cli()
        .arg("--library")
        .arg(library.path())
        .args(["photos", "watch", "--json"])
        .args([avatar["id"].as_str().expect("id"), folder.path()])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("avatar-cli runs");
    let stdout = watcher.stdout.take().expect("stdout");
    let (sender, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            let _ = sender.send(line);
        }
    });

    let mut verdicts = Vec::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while verdicts.len() < 3 {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) => verdicts.push(serde_json::from_str(&line).expect("one JSON object")),
            Err(_) => break,
        }
    }
    watcher.kill().expect("stop watching");
    watcher.wait().expect("watcher ends");
    folder.assert_reported(&verdicts);
}

#[test]
fn photos_add_list_and_remove_round_trip() {
    let library = tempfile::tempdir().expect("temp dir");
    let avatar = json_ok(
        library.path(),
        &[
            "avatar", "create", "--name", "A", "--type", "style", "--gender", "male", "--json",
        ],
    );
    let id = avatar["id"].as_str().expect("id");
    let photo = cases().join("good_style.jpg");
    let output = cli(
        library.path(),
        &[
            "photos",
            "add",
            id,
            photo.to_str().expect("utf-8"),
            "--json",
        ],
    );
    let added = json_lines(&output);
    assert_eq!(added[0]["verdict"], "accepted", "{added:?}");
    let listed = json_ok(library.path(), &["photos", "list", id, "--json"]);
    assert_eq!(listed[0]["id"], added[0]["photo_id"]);
    assert_eq!(listed[0]["file_hash"], added[0]["md5"]);
    assert_eq!(
        (&listed[0]["pose"], &listed[0]["framing"]),
        (&Value::Null, &Value::Null),
        "a photo with no face has no pose or framing"
    );
    assert!(listed[0]["lighting"].is_string(), "{}", listed[0]);
    let refused = cli(library.path(), &["photos", "coverage", id, "--json"]);
    assert!(!refused.status.success(), "coverage is for portraits");
    let photo_id = listed[0]["id"].as_str().expect("photo id");
    json_ok(
        library.path(),
        &["photos", "remove", id, photo_id, "--json"],
    );
    assert_eq!(
        json_ok(library.path(), &["photos", "list", id, "--json"]),
        Value::Array(vec![])
    );
}

/// Kills `photos add` at several moments and checks that the library never holds a row
/// without its complete file, a half-written file, or a file without a row.
#[test]
fn a_crash_mid_import_leaves_no_half_stored_photo_and_no_orphan_row() {
    let library = tempfile::tempdir().expect("temp dir");
    let inbox = tempfile::tempdir().expect("temp dir");
    for round in 0..6u8 {
        for name in [
            "good_portrait.jpg",
            "png_good.png",
            "webp_good.webp",
            "rotated_exif.jpg",
        ] {
            let mut bytes = std::fs::read(cases().join(name)).expect("case");
            bytes.extend_from_slice(&[round; 16]); // distinct bytes, same picture
            std::fs::write(inbox.path().join(format!("{round}_{name}")), bytes).expect("write");
        }
    }
    let avatar = json_ok(
        library.path(),
        &[
            "avatar", "create", "--name", "A", "--type", "portrait", "--gender", "male", "--json",
        ],
    );
    let id = avatar["id"].as_str().expect("id");
    for delay_ms in [60, 150, 300, 600, 1200] {
        let mut child = crate::isolated(CLI)
            .args([
                "--library",
                library.path().to_str().expect("utf-8"),
                "photos",
                "add",
                id,
            ])
            .arg(inbox.path())
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("spawn");
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        let _ = child.kill();
        let _ = child.wait();

        // Opening the library (any command) sweeps what a crash left behind.
        let photos = json_ok(library.path(), &["photos", "list", id, "--json"]);
        let rows: Vec<(String, String)> = photos
            .as_array()
            .expect("array")
            .iter()
            .map(|p| {
                (
                    p["file_hash"].as_str().expect("hash").to_owned(),
                    p["format"].as_str().expect("format").to_owned(),
                )
            })
            .collect();
        for (hash, format) in &rows {
            let file = library
                .path()
                .join("photos")
                .join(&hash[..2])
                .join(format!("{hash}.{format}"));
            let bytes = std::fs::read(&file)
                .unwrap_or_else(|_| panic!("row {hash} has no file (delay {delay_ms} ms)"));
            assert_eq!(md5_hex(&bytes), *hash, "stored file is complete");
        }
        let mut stray = Vec::new();
        for dir in ["photos", "thumbnails"] {
            collect_files(&library.path().join(dir), &mut stray);
        }
        stray.retain(|path| {
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default();
            !rows.iter().any(|(hash, _)| name.starts_with(hash.as_str()))
        });
        assert!(
            stray.is_empty(),
            "files without rows after a crash at {delay_ms} ms: {stray:?}"
        );
    }
}

fn collect_files(dir: &Path, into: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read dir").flatten() {
        if entry.path().is_dir() {
            collect_files(&entry.path(), into);
        } else {
            into.push(entry.path());
        }
    }
}

fn md5_hex(bytes: &[u8]) -> String {
    use md5::{Digest, Md5};
    Md5::digest(bytes)
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// Several `photos add` processes at once, beside processes that only open the library (each
/// open sweeps unreferenced files): every import succeeds and every row keeps its whole file and
/// its thumbnail.
#[test]
fn imports_from_several_processes_at_once_lose_no_photo() {
    let library = tempfile::tempdir().expect("temp dir");
    let inboxes: Vec<tempfile::TempDir> = (0..4u8)
        .map(|process| {
            let inbox = tempfile::tempdir().expect("temp dir");
            for name in [
                "good_portrait.jpg",
                "png_good.png",
                "webp_good.webp",
                "rotated_exif.jpg",
                "good_style.jpg",
            ] {
                let mut bytes = std::fs::read(cases().join(name)).expect("case");
                bytes.extend_from_slice(&[process; 16]);
                std::fs::write(inbox.path().join(name), bytes).expect("write");
            }
            inbox
        })
        .collect();
    let avatars: Vec<String> = (0..4)
        .map(|index| {
            let avatar = json_ok(
                library.path(),
                &[
                    "avatar",
                    "create",
                    "--name",
                    &format!("A{index}"),
                    "--type",
                    "style",
                    "--gender",
                    "male",
                    "--json",
                ],
            );
            avatar["id"].as_str().expect("id").to_owned()
        })
        .collect();
    let spawn = |args: &[&str]| {
        crate::isolated(CLI)
            .arg("--library")
            .arg(library.path())
            .args(args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn")
    };
    let mut imports: Vec<_> = avatars
        .iter()
        .zip(&inboxes)
        .map(|(avatar, inbox)| {
            spawn(&[
                "photos",
                "add",
                avatar,
                inbox.path().to_str().expect("utf-8"),
                "--json",
            ])
        })
        .collect();
    let openers: Vec<_> = (0..4)
        .map(|_| spawn(&["avatar", "list", "--json"]))
        .collect();
    imports.extend(openers);
    for child in imports {
        let output = child.wait_with_output().expect("ends");
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let mut rows = 0;
    for avatar in &avatars {
        let photos = json_ok(library.path(), &["photos", "list", avatar, "--json"]);
        for photo in photos.as_array().expect("array") {
            rows += 1;
            let hash = photo["file_hash"].as_str().expect("hash");
            let format = photo["format"].as_str().expect("format");
            let file = library
                .path()
                .join("photos")
                .join(&hash[..2])
                .join(format!("{hash}.{format}"));
            let bytes = std::fs::read(&file).unwrap_or_else(|_| panic!("row {hash} lost its file"));
            assert_eq!(md5_hex(&bytes), hash, "the stored file is whole");
            let thumbnail = library
                .path()
                .join("thumbnails")
                .join(format!("{hash}.jpg"));
            assert!(thumbnail.is_file(), "row {hash} lost its thumbnail");
        }
    }
    assert!(rows >= 4, "photos were stored: {rows}");
}

fn identity_fixture(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../tests/fixtures/identity")
        .join(name)
        .to_str()
        .expect("utf-8")
        .to_owned()
}

#[test]
fn portraits_checked_together_are_judged_as_one_set() {
    let library = tempfile::tempdir().expect("temp dir");
    let files = [
        "biden_official.jpg",
        "obama_official.jpg",
        "obama_podium.jpg",
        "obama_standing.jpg",
    ]
    .map(identity_fixture);
    let mut args = vec!["photos", "check", "--type", "portrait", "--json"];
    args.extend(files.iter().map(String::as_str));
    let output = cli(library.path(), &args);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let lines = json_lines(&output);
    assert_eq!(lines.len(), 4, "one line per file");
    for line in &lines {
        let path = line["path"].as_str().expect("path");
        let different = line["reasons"]
            .as_array()
            .expect("reasons")
            .iter()
            .any(|code| code == "different_person");
        assert_eq!(different, path.ends_with("biden_official.jpg"), "{line}");
        let sameness = &line["sameness"];
        assert!(sameness["distance"].as_f64().is_some(), "{line}");
    }
    let biden = &lines[0];
    assert_eq!(biden["verdict"], "rejected");
    assert_eq!(biden["sameness"]["others"], 3);
    assert!(
        biden["message"]
            .as_str()
            .expect("message")
            .contains("a different person than the other 3 photos"),
        "{biden}"
    );
}

/// A mixed folder like a camera roll: photos of one person (several poses), other people, a group
/// photo, photos without people, and copies. Fixtures are enlarged to a size the import accepts.
fn camera_roll(folder: &Path) {
    let enlarge = |from: &Path, to: &str| {
        let image = image::open(from).expect("fixture").into_rgb8();
        let scale = (900.0 / image.width().min(image.height()) as f32).max(1.0);
        let (width, height) = (
            (image.width() as f32 * scale).round() as u32,
            (image.height() as f32 * scale).round() as u32,
        );
        let large =
            image::imageops::resize(&image, width, height, image::imageops::FilterType::Lanczos3);
        large.save(folder.join(to)).expect("write");
    };
    let identity = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../tests/fixtures/identity");
    let faces = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../tests/fixtures/faces");
    for name in [
        "obama_official.jpg",
        "obama_podium.jpg",
        "obama_standing.jpg",
        "obama_dim_mirror.jpg",
        "biden_official.jpg",
        "collins.jpg",
        "cameraman_mirror_crop.jpg",
        "group_2.jpg",
    ] {
        enlarge(&identity.join(name), &format!("roll_{name}"));
    }
    for name in ["none_coffee.jpg", "none_building.jpg"] {
        enlarge(&faces.join(name), &format!("roll_{name}"));
    }
    std::fs::create_dir(folder.join("older")).expect("sub-folder");
    std::fs::copy(
        folder.join("roll_obama_official.jpg"),
        folder.join("older/copy_of_obama_official.jpg"),
    )
    .expect("copy");
}

#[test]
fn curation_picks_only_the_main_person_in_varied_poses_and_adds_them() {
    let library = tempfile::tempdir().expect("temp dir");
    let roll = tempfile::tempdir().expect("roll");
    camera_roll(roll.path());
    let created = json_ok(
        library.path(),
        &[
            "avatar", "create", "--name", "Roll", "--type", "portrait", "--gender", "male",
            "--json",
        ],
    );
    let id = created["id"].as_str().expect("id");
    let output = cli(
        library.path(),
        &[
            "photos",
            "curate",
            id,
            roll.path().to_str().expect("utf-8"),
            "--count",
            "3",
            "--add",
            "--json",
        ],
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let lines = json_lines(&output);
    assert_eq!(lines.len(), 11, "one line per file");
    let name = |line: &Value| {
        Path::new(line["path"].as_str().expect("path"))
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned()
    };
    let reasons = |line: &Value| -> Vec<String> {
        line["reasons"]
            .as_array()
            .expect("reasons")
            .iter()
            .map(|code| code.as_str().expect("code").to_owned())
            .collect()
    };
    let picked: Vec<&Value> = lines.iter().filter(|line| line["picked"] == true).collect();
    assert_eq!(picked.len(), 3, "{lines:#?}");
    for line in &picked {
        assert!(name(line).contains("obama_"), "{line}");
        assert_eq!(line["added"], true, "{line}");
        assert!(line["why"].as_str().expect("why").starts_with("picked"));
    }
    let poses: std::collections::BTreeSet<&str> = picked
        .iter()
        .map(|line| line["pose"].as_str().expect("pose"))
        .collect();
    assert!(poses.len() >= 2, "varied poses: {poses:?}");
    for line in &lines {
        let file = name(line);
        let reasons = reasons(line);
        for stranger in ["biden", "collins", "cameraman"] {
            if file.contains(stranger) {
                assert!(reasons.contains(&"different_person".to_owned()), "{line}");
            }
        }
        if file.contains("none_") {
            assert!(reasons.contains(&"no_face".to_owned()), "{line}");
        }
        assert!(line.get("warnings").is_some() && line.get("why").is_some());
    }
    // Of the two identical files, one is considered and the other named its copy.
    let copies: Vec<&Value> = lines
        .iter()
        .filter(|line| name(line).contains("obama_official"))
        .collect();
    let duplicates: Vec<&&Value> = copies
        .iter()
        .filter(|line| reasons(line) == ["duplicate"])
        .collect();
    assert_eq!(duplicates.len(), 1, "{copies:#?}");
    assert_eq!(duplicates[0]["picked"], false);
    assert!(duplicates[0]["copy_of"].as_str().is_some());
    let listed = json_ok(library.path(), &["photos", "list", id, "--json"]);
    assert_eq!(listed.as_array().map(Vec::len), Some(3));
}

#[test]
fn a_portrait_sets_coverage_counts_its_listed_photos_and_words_each_gap() {
    let library = tempfile::tempdir().expect("temp dir");
    let avatar = json_ok(
        library.path(),
        &[
            "avatar", "create", "--name", "A", "--type", "portrait", "--gender", "female", "--json",
        ],
    );
    let id = avatar["id"].as_str().expect("id");
    let folder = cases();
    cli(
        library.path(),
        &[
            "photos",
            "add",
            id,
            folder.to_str().expect("utf-8"),
            "--json",
        ],
    );
    let listed = json_ok(library.path(), &["photos", "list", id, "--json"]);
    let listed = listed.as_array().expect("an array");
    let with_face = listed
        .iter()
        .filter(|photo| photo["pose"].is_string())
        .count();
    assert!(with_face >= 3, "enough faces for advice: {listed:?}");
    let coverage = json_ok(library.path(), &["photos", "coverage", id, "--json"]);
    assert_eq!(
        coverage["photos"].as_u64(),
        Some(with_face as u64),
        "{coverage}"
    );
    let frontal = listed
        .iter()
        .filter(|photo| photo["pose"] == "frontal")
        .count();
    assert_eq!(coverage["poses"]["frontal"].as_u64(), Some(frontal as u64));
    let missing = coverage["missing"].as_array().expect("missing");
    let advice = coverage["advice"].as_array().expect("advice");
    assert_eq!(missing.len(), advice.len(), "each gap in words: {coverage}");
    if coverage["poses"]["profile"] == 0 {
        let at = missing
            .iter()
            .position(|gap| gap["code"] == "no_profile")
            .expect("a set with no profile is told so");
        assert!(advice[at].as_str().expect("text").contains("profile"));
    }
}

#[test]
fn a_heic_whose_decoder_crashes_is_a_corrupt_photo_and_the_check_goes_on() {
    use std::os::unix::fs::PermissionsExt;
    let library = tempfile::tempdir().expect("temp dir");
    // A decoder that dies as a crashing libheif would: by a signal, with nothing written.
    let crashing = library.path().join("crashing-decoder");
    std::fs::write(&crashing, "#!/bin/sh\nkill -SEGV $$\n").expect("script");
    std::fs::set_permissions(&crashing, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let heic = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../tests/fixtures/heif/iphone_portrait.heic")
        .to_str()
        .expect("utf-8")
        .to_owned();
    let jpeg = cases()
        .join("good_portrait.jpg")
        .to_str()
        .expect("utf-8")
        .to_owned();
    let mut command = crate::isolated(CLI);
    command.env("AVATAR_HEIF_DECODER", &crashing);
    let args = [
        "photos", "check", "--type", "portrait", "--json", &heic, &jpeg,
    ];
    let output = run(command, library.path(), &args);
    let lines = json_lines(&output);
    assert_eq!(
        lines.len(),
        2,
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let heic_line = &lines[0];
    assert_eq!(
        heic_line["reasons"],
        serde_json::json!(["corrupt"]),
        "{heic_line}"
    );
    assert!(
        heic_line["detail"]
            .as_str()
            .is_some_and(|detail| detail.contains("signal 11")),
        "{heic_line}"
    );
    assert_eq!(lines[1]["verdict"], "accepted", "the next photo is checked");
}
