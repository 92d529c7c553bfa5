//! `train`, `status`, `cancel`, `jobs`, `generate` and `gallery` as real processes: in test mode,
//! and against the fake fal with the process killed while it follows a job.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use fal_fake::{FakeFal, Fault, Outcome, Route, Script};
use serde_json::Value;

fn cases() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../tests/fixtures/cases")
}

fn command(library: &Path, vars: &[(&str, String)], args: &[&str]) -> Command {
    let mut command = crate::isolated(env!("CARGO_BIN_EXE_avatar-cli"));
    command
        .arg("--library")
        .arg(library)
        .args(args)
        .env("AVATAR_MIN_PHOTOS", "2")
        .env("FAL_MOCK_TRAINING_DURATION", "1")
        .env("FAL_POLL_INTERVAL_MS", "50")
        .env("FAL_RETRY_BASE_MS", "20")
        .env("AVATAR_STUDIO_JOB_LEASE_SECS", "1")
        .stdin(Stdio::null());
    for (name, value) in vars {
        command.env(name, value);
    }
    command
}

fn run(library: &Path, vars: &[(&str, String)], args: &[&str]) -> Output {
    command(library, vars, args)
        .output()
        .expect("avatar-cli runs")
}

fn json_ok(library: &Path, vars: &[(&str, String)], args: &[&str]) -> Value {
    let output = run(library, vars, args);
    assert!(
        output.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("stdout is one JSON value")
}

/// The variables of a paid run against `fake`.
fn paid_vars(fake: &FakeFal) -> Vec<(&'static str, String)> {
    vec![
        ("FAL_KEY", fake.api_key().to_string()),
        ("FAL_QUEUE_URL", fake.base_url()),
        ("FAL_REST_URL", fake.base_url()),
        ("FAL_PLATFORM_URL", fake.platform_url()),
        ("FAL_TRAINING_TEST_MODE", "false".to_string()),
    ]
}

/// A portrait avatar trained on fal with the fast preset; returns its id.
fn trained_on_fal(library: &Path, vars: &[(&str, String)]) -> String {
    let avatar = ready_avatar(library);
    let trained = json_ok(
        library,
        vars,
        &[
            "train", &avatar, "--preset", "fast", "--yes", "--wait", "--json",
        ],
    );
    assert_eq!(trained["status"], "completed", "{trained}");
    avatar
}

/// A portrait avatar with two accepted photos; returns its id.
fn ready_avatar(library: &Path) -> String {
    let avatar = json_ok(
        library,
        &[],
        &[
            "--json", "avatar", "create", "--name", "Anna", "--type", "portrait", "--gender",
            "female",
        ],
    );
    let id = avatar["id"].as_str().expect("id").to_string();
    let good = cases().join("good_portrait.jpg");
    let rotated = cases().join("rotated_exif.jpg");
    let output = run(
        library,
        &[],
        &[
            "photos",
            "add",
            &id,
            good.to_str().expect("path"),
            rotated.to_str().expect("path"),
        ],
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    id
}

#[test]
fn a_test_mode_training_runs_to_a_model_and_a_second_one_is_cancelled() {
    let library = tempfile::tempdir().expect("library");
    let avatar = ready_avatar(library.path());

    let done = json_ok(
        library.path(),
        &[],
        &["train", &avatar, "--preset", "fast", "--wait", "--json"],
    );
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["progress"], 100);
    assert_eq!(done["test_mode"], true);
    assert!(
        done["request_id"]
            .as_str()
            .is_some_and(|id| id.starts_with("test_"))
    );
    let model = done["model_path"].as_str().expect("model path");
    assert!(Path::new(model).is_file());
    for field in ["queue_position", "last_log", "error"] {
        assert!(done.get(field).is_some(), "status carries {field}");
    }
    assert!(
        done.get("model_url").is_none(),
        "fal's bearer address of the face model stays inside: {done}"
    );
    let status = json_ok(library.path(), &[], &["status", &avatar, "--json"]);
    assert_eq!(status["job_id"], done["job_id"]);

    let queued = json_ok(library.path(), &[], &["train", &avatar, "--json"]);
    assert!(
        matches!(queued["status"].as_str(), Some("queued" | "running")),
        "without --wait it returns once the job is held: {queued}"
    );
    let cancelled = json_ok(library.path(), &[], &["cancel", &avatar, "--json"]);
    assert_eq!(cancelled["status"], "cancelled", "{cancelled}");

    let jobs = json_ok(library.path(), &[], &["jobs", "--json"]);
    let states: Vec<&str> = jobs
        .as_array()
        .expect("list")
        .iter()
        .map(|job| job["status"].as_str().expect("status"))
        .collect();
    assert_eq!(states, ["cancelled", "completed"]);
}

#[test]
fn a_paid_start_needs_yes_when_no_one_can_be_asked() {
    let library = tempfile::tempdir().expect("library");
    let avatar = ready_avatar(library.path());
    let vars = [
        ("FAL_KEY", "some-key".to_string()),
        ("FAL_QUEUE_URL", "http://127.0.0.1:9".to_string()),
        ("FAL_REST_URL", "http://127.0.0.1:9".to_string()),
    ];
    let output = run(library.path(), &vars, &["train", &avatar, "--json"]);
    assert!(!output.status.success());
    let error: Value = serde_json::from_slice(&output.stderr).expect("one JSON error");
    assert_eq!(error["code"], "invalid_input");
    assert!(
        error["message"]
            .as_str()
            .expect("message")
            .contains("--yes")
    );
    let jobs = json_ok(library.path(), &vars, &["jobs", "--json"]);
    assert_eq!(jobs, Value::Array(vec![]), "nothing was started");
}

#[test]
fn a_process_killed_while_following_is_finished_by_the_next_start() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let fake = runtime.block_on(FakeFal::start());
    fake.set_script(Script {
        queue_time: Duration::from_millis(200),
        run_time: Duration::from_millis(1500),
        outcome: Outcome::Success { lora_bytes: 8192 },
        ..Script::default()
    });
    let vars = paid_vars(&fake);
    let library = tempfile::tempdir().expect("library");
    let avatar = ready_avatar(library.path());

    let mut follower = command(
        library.path(),
        &vars,
        &[
            "train", &avatar, "--preset", "fast", "--yes", "--wait", "--json",
        ],
    )
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()
    .expect("train starts");
    runtime.block_on(async {
        tokio::time::timeout(Duration::from_secs(30), fake.wait_for(Route::Status, 3))
            .await
            .expect("the job is being followed")
    });
    follower.kill().expect("kill");
    follower.wait().expect("reaped");

    let status = json_ok(
        library.path(),
        &vars,
        &["status", &avatar, "--wait", "--json"],
    );
    assert_eq!(status["status"], "completed", "{status}");
    assert!(Path::new(status["model_path"].as_str().expect("model")).is_file());
    assert!(
        !status.to_string().contains(&fake.base_url()),
        "no fal address in the JSON: {status}"
    );
    assert_eq!(fake.submissions().len(), 1, "submitted once");

    // The paid run is in the spending ledger, once.
    let spend = json_ok(library.path(), &vars, &["spend", "--json"]);
    let months = spend["months"].as_array().expect("months");
    assert_eq!(months.len(), 1, "{spend}");
    assert_eq!(months[0]["requests"], 1);
    assert_eq!(months[0]["confirmed_usd"], status["confirmed_cost_usd"]);
    assert_eq!(spend["this_month"], months[0]["month"]);
    assert!(spend["monthly_budget_usd"].is_null());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_connection_passes_against_a_running_relay_and_explains_a_wrong_token() {
    let library = tempfile::tempdir().expect("library");
    let store = tempfile::tempdir().expect("relay store");
    let fake = FakeFal::start().await;
    let token = "a-relay-token-for-the-cli-tests";
    let relay = relay::Relay::start(relay::RelayConfig {
        listen: "127.0.0.1:0".parse().expect("address"),
        jwks_url: fake.jwks_url(),
        ..relay::RelayConfig::new(store.path().join("relay.sqlite3"), token.into())
    })
    .await
    .expect("relay");
    let vars = |token: &str| {
        vec![
            ("RELAY_URL", relay.url()),
            ("RELAY_TOKEN", token.to_string()),
            (
                "FAL_WEBHOOK_URL",
                format!("{}/api/avatar/status_update", relay.url()),
            ),
        ]
    };
    let (path, good) = (library.path().to_path_buf(), vars(token));
    let report =
        tokio::task::spawn_blocking(move || json_ok(&path, &good, &["--json", "check-connection"]))
            .await
            .expect("check");
    assert_eq!(report["channel"], "relay", "{report}");
    let checks = report["checks"].as_array().expect("checks");
    assert_eq!(checks.len(), 5, "{report}");
    assert!(
        checks.iter().all(|check| check["passed"] == true),
        "{report}"
    );

    let (path, wrong) = (library.path().to_path_buf(), vars("not-the-token-at-all"));
    let output = tokio::task::spawn_blocking(move || run(&path, &wrong, &["check-connection"]))
        .await
        .expect("check");
    assert!(!output.status.success());
    let text = String::from_utf8_lossy(&output.stdout).to_string()
        + &String::from_utf8_lossy(&output.stderr);
    assert!(text.contains("refused the token"), "{text}");
    assert!(!text.contains("not-the-token-at-all"), "{text}");
}

fn signal(child: &std::process::Child, name: &str) {
    let status = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(child.id().to_string())
        .status()
        .expect("kill runs");
    assert!(status.success(), "kill -{name}");
}

#[test]
fn a_process_suspended_mid_upload_and_taken_over_never_submits_twice() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let fake = runtime.block_on(FakeFal::start());
    fake.set_script(Script {
        queue_time: Duration::from_millis(300),
        run_time: Duration::from_millis(2000),
        outcome: Outcome::Success { lora_bytes: 8192 },
        ..Script::default()
    });
    // The first process's upload is answered late: it is suspended before the answer comes.
    fake.push_fault(Fault::Delay {
        route: Route::StorageUpload,
        delay: Duration::from_secs(2),
    });
    let vars = paid_vars(&fake);
    let library = tempfile::tempdir().expect("library");
    let avatar = ready_avatar(library.path());
    let train_args = [
        "train", &avatar, "--preset", "fast", "--yes", "--wait", "--json",
    ];
    let first = command(library.path(), &vars, &train_args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("train starts");
    runtime.block_on(async {
        tokio::time::timeout(
            Duration::from_secs(30),
            fake.wait_for(Route::StorageUpload, 1),
        )
        .await
        .expect("the first process uploads")
    });
    signal(&first, "STOP");

    // A second process takes the job over once the suspended one's lease runs out.
    let second = command(
        library.path(),
        &vars,
        &["status", &avatar, "--wait", "--json"],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .expect("status --wait starts");
    runtime.block_on(async {
        tokio::time::timeout(Duration::from_secs(30), fake.wait_for(Route::Submit, 1))
            .await
            .expect("the second process submits")
    });
    // The first one wakes up while the job is training, with its upload's answer waiting.
    signal(&first, "CONT");

    for (name, child) in [("first", first), ("second", second)] {
        let output = child.wait_with_output().expect("ends");
        assert!(
            output.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let status: Value = serde_json::from_slice(&output.stdout).expect("JSON");
        assert_eq!(status["status"], "completed", "{name}: {status}");
    }
    let submissions = fake.submissions();
    assert_eq!(submissions.len(), 1, "one paid submit");
    let jobs = json_ok(library.path(), &vars, &["jobs", "--json"]);
    assert_eq!(
        jobs[0]["request_id"].as_str(),
        Some(submissions[0].request_id.as_str()),
        "the ledger holds the request fal has"
    );
}

#[test]
fn commands_that_read_never_upload_submit_or_download_and_advance_reports_its_errors() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let fake = runtime.block_on(FakeFal::start());
    let library = tempfile::tempdir().expect("library");
    let avatar = ready_avatar(library.path());
    // fal storage is unreachable: the paid job is written and stays unfinished.
    let mut unreachable = paid_vars(&fake);
    unreachable.push(("FAL_REST_URL", "http://127.0.0.1:9".to_string()));
    let output = run(
        library.path(),
        &unreachable,
        &["train", &avatar, "--yes", "--json"],
    );
    assert!(!output.status.success());

    let reachable = paid_vars(&fake);
    for args in [
        vec!["avatar", "list", "--json"],
        vec!["avatar", "show", &avatar, "--json"],
        vec!["jobs", "--json"],
        vec!["status", &avatar, "--json"],
        vec!["secret", "status", "--json"],
        vec!["photos", "list", &avatar, "--json"],
    ] {
        json_ok(library.path(), &reachable, &args);
        for route in [Route::StorageInitiate, Route::StorageUpload, Route::Submit] {
            assert_eq!(fake.request_count(route), 0, "{args:?} moved the job");
        }
    }

    let output = run(
        library.path(),
        &unreachable,
        &["jobs", "--advance", "--json"],
    );
    assert!(output.status.success());
    let error: Value = serde_json::from_slice(&output.stderr).expect("one JSON error line");
    assert_eq!(error["code"], "remote_unavailable", "{error}");
    let jobs: Value = serde_json::from_slice(&output.stdout).expect("the jobs");
    assert_eq!(error["job_id"], jobs[0]["job_id"]);

    let moved = json_ok(library.path(), &reachable, &["jobs", "--advance", "--json"]);
    assert_eq!(fake.submissions().len(), 1, "--advance sends it: {moved}");
}

#[test]
fn a_test_mode_pack_fills_the_gallery_and_gallery_json_keeps_its_contract() {
    let library = tempfile::tempdir().expect("library");
    let avatar = ready_avatar(library.path());
    let refused = run(library.path(), &[], &["generate", &avatar, "--json"]);
    assert!(!refused.status.success(), "no model yet");
    json_ok(
        library.path(),
        &[],
        &["train", &avatar, "--preset", "fast", "--wait", "--json"],
    );

    let pack = json_ok(library.path(), &[], &["generate", &avatar, "--json"]);
    assert_eq!(pack["generation"]["state"], "completed", "{pack}");
    assert_eq!(pack["images"].as_array().expect("images").len(), 8);
    let custom = json_ok(
        library.path(),
        &[],
        &[
            "generate",
            &avatar,
            "--prompt",
            "on a boat",
            "--prompt",
            "TOK in the snow",
            "--count",
            "2",
            "--seed",
            "7",
            "--json",
        ],
    );
    let images = custom["images"].as_array().expect("images");
    assert_eq!(images.len(), 4, "two prompts, two images each");
    assert_eq!(images[0]["prompt"], "TOK, on a boat");
    assert_eq!(images[2]["prompt"], "TOK in the snow");
    assert_eq!(images[3]["seed"], 10);

    let gallery = json_ok(library.path(), &[], &["gallery", &avatar, "--json"]);
    let gallery = gallery.as_array().expect("an array");
    assert_eq!(gallery.len(), 12);
    for image in gallery {
        for field in [
            "id",
            "path",
            "prompt",
            "seed",
            "likeness",
            "copy_of",
            "favourite",
            "training",
        ] {
            assert!(image.get(field).is_some(), "{field} in {image}");
        }
        assert!(Path::new(image["path"].as_str().expect("path")).is_file());
        let likeness = image["likeness"].as_f64();
        assert!(
            likeness.is_none_or(|score| (0.0..=1.0).contains(&score)),
            "{image}"
        );
    }
    assert_eq!(
        gallery[0]["prompt"], "TOK, on a boat",
        "the newest pack first"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paid_pack_needs_yes_and_then_fills_the_gallery_from_fal() {
    let fake = FakeFal::start().await;
    fake.set_script(Script {
        queue_time: Duration::from_millis(50),
        run_time: Duration::from_millis(200),
        ..Script::default()
    });
    let library = tempfile::tempdir().expect("library");
    let vars = paid_vars(&fake);
    let avatar = trained_on_fal(library.path(), &vars);

    let refused = run(
        library.path(),
        &vars,
        &["generate", &avatar, "--prompt", "on a boat", "--json"],
    );
    assert!(!refused.status.success());
    let error: Value = serde_json::from_slice(&refused.stderr).expect("one JSON error");
    assert!(
        error["message"]
            .as_str()
            .expect("message")
            .contains("--yes"),
        "{error}"
    );
    let sent = |fake: &FakeFal| {
        fake.submissions()
            .iter()
            .filter(|submission| submission.endpoint_id == "fal-ai/flux-lora")
            .count()
    };
    assert_eq!(sent(&fake), 0, "nothing was sent without --yes");

    let pack = json_ok(
        library.path(),
        &vars,
        &[
            "generate",
            &avatar,
            "--prompt",
            "on a boat",
            "--count",
            "2",
            "--yes",
            "--json",
        ],
    );
    assert_eq!(pack["generation"]["state"], "completed", "{pack}");
    assert_eq!(sent(&fake), 1);
    let gallery = json_ok(library.path(), &vars, &["gallery", &avatar, "--json"]);
    assert_eq!(gallery.as_array().expect("images").len(), 2);
    assert!(gallery[0]["likeness"].is_number(), "{}", gallery[0]);
    assert_eq!(gallery[0]["simulated"], false);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plan_shows_what_a_start_would_confirm_and_a_price_fal_cannot_stand_behind_as_unverified()
{
    let fake = FakeFal::start().await;
    // A public snapshot of fal's pricing API gives the trainers ten times their model pages'
    // price (fal-protocol.md §8.5).
    fake.set_price("fal-ai/flux-lora-portrait-trainer", 0.02, "steps");
    let library = tempfile::tempdir().expect("library");
    let avatar = ready_avatar(library.path());
    let vars = paid_vars(&fake);
    let plan = json_ok(
        library.path(),
        &vars,
        &["plan", &avatar, "--steps", "1000", "--json"],
    );
    assert_eq!(plan["price_source"], "fal", "{plan}");
    assert_eq!(plan["price_unverified"], true, "{plan}");
    assert_eq!(plan["cost_usd_fal"], 20.0);
    assert_eq!(plan["cost_usd_table"], 2.4);
    assert_eq!(
        plan["cost_usd"], 20.0,
        "the higher is confirmed and counted, and never silently"
    );
    assert_eq!(
        fake.request_count(Route::PricingEstimate),
        1,
        "fal's own estimate"
    );

    let own = json_ok(
        library.path(),
        &vars,
        &["plan", &avatar, "--trainer", "flux1-portrait", "--json"],
    );
    assert_eq!(own["trainer"], "fal-ai/flux-lora-portrait-trainer");
    let other = run(
        library.path(),
        &vars,
        &["plan", &avatar, "--trainer", "flux1-fast", "--json"],
    );
    assert!(!other.status.success());
    let error: Value = serde_json::from_slice(&other.stderr).expect("one JSON error");
    assert_eq!(error["code"], "invalid_input", "{error}");
    assert!(fake.submissions().is_empty(), "a plan starts nothing");
}

#[test]
fn jobs_advance_finishes_a_pack_cut_off_by_a_killed_process() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let fake = runtime.block_on(FakeFal::start());
    fake.set_script(Script {
        queue_time: Duration::from_millis(50),
        run_time: Duration::from_millis(1500),
        ..Script::default()
    });
    let library = tempfile::tempdir().expect("library");
    let vars = paid_vars(&fake);
    let avatar = trained_on_fal(library.path(), &vars);
    let mut generate = command(
        library.path(),
        &vars,
        &[
            "generate",
            &avatar,
            "--prompt",
            "on a boat",
            "--count",
            "2",
            "--yes",
            "--json",
        ],
    )
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()
    .expect("generate starts");
    let polled = fake.request_count(Route::Status);
    runtime.block_on(async {
        tokio::time::timeout(
            Duration::from_secs(30),
            fake.wait_for(Route::Status, polled + 2),
        )
        .await
        .expect("the pack's request is being followed")
    });
    generate.kill().expect("kill");
    generate.wait().expect("reaped");

    let advanced = run(library.path(), &vars, &["jobs", "--advance", "--json"]);
    assert!(
        advanced.status.success(),
        "{}",
        String::from_utf8_lossy(&advanced.stderr)
    );
    let gallery = json_ok(library.path(), &vars, &["gallery", &avatar, "--json"]);
    assert_eq!(gallery.as_array().expect("images").len(), 2, "{gallery}");
    let packs = fake
        .submissions()
        .iter()
        .filter(|submission| submission.endpoint_id == "fal-ai/flux-lora")
        .count();
    assert_eq!(packs, 1, "the pack's request was sent once");
}
