//! The CLI contract, run as a real process against a real library folder.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

fn cli(library: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_avatar-cli"))
        .arg("--library")
        .arg(library)
        .args(args)
        .env_remove("AVATAR_STUDIO_LIBRARY")
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
