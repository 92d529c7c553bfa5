//! `avatar-cli secret` against a real Secret Service: each run gets its own session bus and a
//! gnome-keyring daemon unlocking the same keyring file, the way a new login would, so a secret
//! stored by one process is read by the next. The value never reaches the library's files.

use std::io::Write;
use std::path::Path;
use std::process::{Output, Stdio};

use serde_json::Value;

const FAL_KEY: &str = "fal-key-kept-in-the-keychain-4c1d";

/// Runs avatar-cli inside a fresh `dbus-run-session` with gnome-keyring unlocked on `home`.
fn in_session(
    library: &Path,
    home: &Path,
    vars: &[(&str, &str)],
    args: &[&str],
    input: &str,
) -> Output {
    let script = "echo -n keyring-password | gnome-keyring-daemon --unlock --components=secrets >/dev/null && exec \"$@\"";
    // Its own runtime folder, so the daemon never finds another session's control socket.
    let runtime = tempfile::tempdir().expect("runtime dir");
    // A session bus of its own replaces the isolated command's unreachable one.
    let mut command = crate::isolated("dbus-run-session");
    command
        .args(["--", "bash", "-c", script, "avatar-cli"])
        .arg(env!("CARGO_BIN_EXE_avatar-cli"))
        .arg("--library")
        .arg(library)
        .args(args)
        .env("HOME", home)
        .env("XDG_DATA_HOME", home)
        .env("XDG_RUNTIME_DIR", runtime.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (name, value) in vars {
        command.env(name, value);
    }
    let mut child = command
        .spawn()
        .expect("dbus-run-session runs (setup.sh installs it)");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("input");
    child.wait_with_output().expect("avatar-cli ends")
}

fn fal_key_source(library: &Path, home: &Path, vars: &[(&str, &str)]) -> Value {
    let output = in_session(library, home, vars, &["--json", "secret", "status"], "");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let statuses: Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|error| {
        panic!(
            "{error}: {:?} / {:?}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    });
    statuses
        .as_array()
        .expect("list")
        .iter()
        .find(|status| status["name"] == "fal-key")
        .expect("fal-key listed")["source"]
        .clone()
}

fn files_containing(dir: &Path, needle: &[u8]) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(files_containing(&path, needle));
        } else if std::fs::read(&path)
            .is_ok_and(|bytes| bytes.windows(needle.len()).any(|window| window == needle))
        {
            found.push(path.display().to_string());
        }
    }
    found
}

#[test]
fn a_fal_key_stored_in_the_keychain_is_read_by_the_next_process_and_never_written_to_disk() {
    let library = tempfile::tempdir().expect("library");
    let home = tempfile::tempdir().expect("keyring home");
    assert_eq!(
        fal_key_source(library.path(), home.path(), &[]),
        Value::Null
    );

    let stored = in_session(
        library.path(),
        home.path(),
        &[],
        &["secret", "set", "fal-key"],
        &format!("{FAL_KEY}\n"),
    );
    assert!(
        stored.status.success(),
        "{}",
        String::from_utf8_lossy(&stored.stderr)
    );

    assert_eq!(fal_key_source(library.path(), home.path(), &[]), "keychain");
    let plan = in_session(library.path(), home.path(), &[], &["--json", "jobs"], "");
    assert!(
        plan.status.success(),
        "{}",
        String::from_utf8_lossy(&plan.stderr)
    );
    assert_eq!(
        fal_key_source(
            library.path(),
            home.path(),
            &[("FAL_KEY", "from-the-environment")]
        ),
        "environment",
        "the guide's variables win"
    );
    for dir in [library.path(), home.path()] {
        assert_eq!(
            files_containing(dir, FAL_KEY.as_bytes()),
            Vec::<String>::new(),
            "plain text on disk"
        );
    }

    let deleted = in_session(
        library.path(),
        home.path(),
        &[],
        &["secret", "delete", "fal-key"],
        "",
    );
    assert!(
        deleted.status.success(),
        "{}",
        String::from_utf8_lossy(&deleted.stderr)
    );
    assert_eq!(
        fal_key_source(library.path(), home.path(), &[]),
        Value::Null
    );
}

#[test]
fn without_a_keychain_storing_a_secret_fails_with_the_fix() {
    let library = tempfile::tempdir().expect("library");
    let mut child = crate::isolated(env!("CARGO_BIN_EXE_avatar-cli"))
        .arg("--library")
        .arg(library.path())
        .args(["secret", "set", "relay-token"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("avatar-cli runs");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"a-relay-token-with-nowhere-to-go\n")
        .expect("input");
    let output = child.wait_with_output().expect("avatar-cli ends");
    assert!(!output.status.success());
    let message = String::from_utf8_lossy(&output.stderr);
    assert!(message.contains("keychain"), "{message}");
    assert!(message.contains("RELAY_TOKEN"), "{message}");
    assert!(!message.contains("nowhere-to-go"), "{message}");
}
