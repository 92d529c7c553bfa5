//! Settings chosen in the app: stored in the library, checked as a whole, overridden by the
//! environment, applied at once; and Diagnostics asking a fake fal and a real S3 server.

use std::collections::BTreeMap;
use std::path::Path;

use fal_fake::FakeFal;
use studio::{Diagnosis, Finding, MemorySecrets, SecretName, Service, Studio, TestStudio};

fn open(library: &Path, secrets: MemorySecrets, env: &[(&str, String)]) -> Studio {
    TestStudio::new(library)
        .vars(env.iter().map(|(name, value)| (*name, value.clone())))
        .secrets(secrets)
        .open()
        .expect("studio")
}

fn changes(pairs: &[(&str, Option<&str>)]) -> BTreeMap<String, Option<String>> {
    pairs
        .iter()
        .map(|(name, value)| (name.to_string(), value.map(str::to_string)))
        .collect()
}

fn setting(studio: &Studio, name: &str) -> studio::Setting {
    let view = studio.settings().expect("settings");
    view.settings
        .into_iter()
        .find(|setting| setting.name == name)
        .expect("listed")
}

#[test]
fn a_saved_setting_applies_at_once_and_after_a_restart() {
    let library = tempfile::tempdir().expect("library");
    let studio = open(library.path(), MemorySecrets::default(), &[]);
    assert_eq!(studio.config().max_photos, 20);
    studio
        .save_settings(changes(&[
            ("AVATAR_MAX_PHOTOS", Some("24")),
            ("AVATAR_DEFAULT_PRESET", Some("fast")),
        ]))
        .expect("saved");
    assert_eq!(studio.config().max_photos, 24, "applied without a restart");
    drop(studio);

    let reopened = open(library.path(), MemorySecrets::default(), &[]);
    assert_eq!(reopened.config().max_photos, 24);
    assert_eq!(reopened.config().default_preset, studio::Preset::Fast);
    let max = setting(&reopened, "AVATAR_MAX_PHOTOS");
    assert_eq!(max.stored.as_deref(), Some("24"));
    assert_eq!(max.in_force.as_deref(), Some("24"));

    reopened
        .save_settings(changes(&[("AVATAR_MAX_PHOTOS", None)]))
        .expect("cleared");
    assert_eq!(
        reopened.config().max_photos,
        20,
        "back to the guide's default"
    );
}

#[test]
fn the_environment_wins_and_the_screen_says_so() {
    let library = tempfile::tempdir().expect("library");
    let env = [("AVATAR_MIN_PHOTOS", "5".to_string())];
    let studio = open(library.path(), MemorySecrets::default(), &env);
    studio
        .save_settings(changes(&[("AVATAR_MIN_PHOTOS", Some("8"))]))
        .expect("saved");
    let min = setting(&studio, "AVATAR_MIN_PHOTOS");
    assert_eq!(min.stored.as_deref(), Some("8"));
    assert_eq!(min.environment.as_deref(), Some("5"));
    assert_eq!(min.in_force.as_deref(), Some("5"));
    assert_eq!(studio.config().min_photos, 5);

    let error = studio
        .save_settings(changes(&[("AVATAR_MIN_PHOTOS", Some("five"))]))
        .expect_err("hidden by the environment today, in force the day it is unset");
    assert!(error.to_string().contains("AVATAR_MIN_PHOTOS"), "{error}");
}

#[test]
fn a_value_that_does_not_fit_is_refused_and_nothing_is_written() {
    let library = tempfile::tempdir().expect("library");
    let studio = open(library.path(), MemorySecrets::default(), &[]);
    let error = studio
        .save_settings(changes(&[
            ("AVATAR_MAX_PHOTOS", Some("30")),
            ("AVATAR_MIN_PHOTOS", Some("40")),
        ]))
        .expect_err("min over max");
    assert!(error.to_string().contains("AVATAR_MIN_PHOTOS"), "{error}");
    assert_eq!(setting(&studio, "AVATAR_MAX_PHOTOS").stored, None);

    let error = studio
        .save_settings(changes(&[
            ("S3_ENDPOINT", Some("http://minio:9000")),
            ("S3_BUCKET", Some("b")),
        ]))
        .expect_err("no access key");
    assert!(error.to_string().contains("S3_ACCESS_KEY"), "{error}");

    let error = studio
        .save_settings(changes(&[("FAL_QUEUE_URL", Some("http://elsewhere"))]))
        .expect_err("not a setting");
    assert_eq!(error.code(), studio::ErrorCode::InvalidInput);
}

#[test]
fn a_fal_key_in_the_keychain_ends_test_mode_unless_test_mode_was_chosen() {
    let library = tempfile::tempdir().expect("library");
    let studio = open(library.path(), MemorySecrets::default(), &[]);
    assert!(studio.config().test_mode, "no key: test mode");
    studio.set_secret("fal-key", "k-123").expect("stored");
    assert!(!studio.config().test_mode, "a key: real trainings");
    studio
        .save_settings(changes(&[("FAL_TRAINING_TEST_MODE", Some("true"))]))
        .expect("chosen");
    assert!(studio.config().test_mode, "chosen in Settings");
    studio
        .save_settings(changes(&[("FAL_TRAINING_TEST_MODE", None)]))
        .expect("unchosen");
    studio.delete_secret("fal-key").expect("deleted");
    assert!(studio.config().test_mode, "the key is gone");
}

#[test]
fn secrets_never_reach_the_library() {
    let library = tempfile::tempdir().expect("library");
    let studio = open(library.path(), MemorySecrets::default(), &[]);
    studio
        .set_secret("relay-token", "tok-secret-987")
        .expect("stored");
    studio
        .save_settings(changes(&[("RELAY_URL", Some("https://relay.example"))]))
        .expect("saved");
    drop(studio);
    for entry in std::fs::read_dir(library.path()).expect("list") {
        let path = entry.expect("entry").path();
        if path.is_file() {
            let bytes = std::fs::read(&path).expect("read");
            let text = String::from_utf8_lossy(&bytes);
            assert!(!text.contains("tok-secret-987"), "{}", path.display());
        }
    }
}

fn finding(report: &[Diagnosis], service: Service) -> &Diagnosis {
    report
        .iter()
        .find(|diagnosis| diagnosis.service == service)
        .expect("checked")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn diagnostics_ask_fal_and_the_bucket_and_name_what_is_wrong() {
    let library = tempfile::tempdir().expect("library");
    let fake = FakeFal::start().await;
    let s3 = s3::test_server::S3TestServer::start();
    let bucket = s3.settings("avatars");
    s3::S3Store::new(bucket.clone())
        .ensure_bucket()
        .await
        .expect("bucket");
    let env = |bucket_name: &str| {
        vec![
            ("FAL_QUEUE_URL", fake.base_url()),
            ("FAL_REST_URL", fake.base_url()),
            ("FAL_TRAINING_TEST_MODE", "false".to_string()),
            ("S3_ENDPOINT", bucket.endpoint.clone()),
            ("S3_BUCKET", bucket_name.to_string()),
            ("S3_ACCESS_KEY", bucket.access_key.clone()),
            ("S3_REGION", bucket.region.clone()),
        ]
    };
    let good = MemorySecrets::default()
        .with(SecretName::FalKey, fake.api_key())
        .with(SecretName::S3SecretKey, &bucket.secret_key);
    let report = open(library.path(), good, &env("avatars")).diagnose().await;
    assert_eq!(finding(&report, Service::Fal).finding, Finding::FalAnswered);
    // The bucket answered, but fal's servers cannot fetch from 127.0.0.1: the sets go through
    // fal storage.
    let storage = finding(&report, Service::Storage);
    assert_eq!(storage.finding, Finding::StorageNotPublic);
    assert_eq!(storage.detail, bucket.endpoint);
    assert_eq!(
        finding(&report, Service::FalRetention).finding,
        Finding::RetentionMinimal
    );
    // The system's libheif, whichever it is, opened by the child program beside the tests.
    let heif = finding(&report, Service::HeifDecoder);
    assert!(
        matches!(
            heif.finding,
            Finding::HeifDecoderReady | Finding::HeifDecoderOld
        ),
        "{heif:?}"
    );
    assert!(heif.detail.starts_with('1'), "a libheif version: {heif:?}");
    assert!(
        report.iter().all(|diagnosis| diagnosis.passed),
        "{report:?}"
    );
    let mut s3_only = env("avatars");
    s3_only.push(("AVATAR_TRAINING_SET_S3_ONLY", "true".to_string()));
    let good = MemorySecrets::default()
        .with(SecretName::FalKey, fake.api_key())
        .with(SecretName::S3SecretKey, &bucket.secret_key);
    let report = open(library.path(), good, &s3_only).diagnose().await;
    let storage = finding(&report, Service::Storage);
    assert_eq!(storage.finding, Finding::StorageNotPublicS3Only);
    assert!(!storage.passed, "paid starts would be refused");

    let wrong = MemorySecrets::default()
        .with(SecretName::FalKey, "not-the-key")
        .with(SecretName::S3SecretKey, &bucket.secret_key);
    let report = open(library.path(), wrong, &env("missing-bucket"))
        .diagnose()
        .await;
    let fal = finding(&report, Service::Fal);
    assert_eq!(fal.finding, Finding::FalKeyWrong, "{fal:?}");
    assert!(!fal.detail.contains("not-the-key"), "{fal:?}");
    let storage = finding(&report, Service::Storage);
    assert_eq!(storage.finding, Finding::StorageFailed);
    assert!(storage.detail.contains("missing-bucket"), "{storage:?}");

    let no_secret = MemorySecrets::default().with(SecretName::FalKey, fake.api_key());
    let report = open(library.path(), no_secret, &env("avatars"))
        .diagnose()
        .await;
    assert_eq!(
        finding(&report, Service::Storage).finding,
        Finding::StorageSecretMissing
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn diagnostics_in_test_mode_and_with_fal_out_of_reach() {
    let library = tempfile::tempdir().expect("library");
    let report = open(library.path(), MemorySecrets::default(), &[])
        .diagnose()
        .await;
    assert_eq!(finding(&report, Service::Fal).finding, Finding::FalTestMode);
    assert_eq!(
        finding(&report, Service::Storage).finding,
        Finding::StorageFal
    );

    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("port");
    let address = closed.local_addr().expect("address");
    drop(closed);
    let env = [
        ("FAL_QUEUE_URL", format!("http://{address}")),
        ("FAL_TRAINING_TEST_MODE", "false".to_string()),
    ];
    let key = MemorySecrets::default().with(SecretName::FalKey, "k");
    let report = open(library.path(), key, &env).diagnose().await;
    assert_eq!(
        finding(&report, Service::Fal).finding,
        Finding::FalUnreachable
    );

    let report = open(library.path(), MemorySecrets::default(), &env)
        .diagnose()
        .await;
    assert_eq!(
        finding(&report, Service::Fal).finding,
        Finding::FalKeyMissing
    );
}

#[test]
fn changes_that_send_money_or_data_somewhere_new_are_named_for_the_native_dialog() {
    use studio::GuardedChange;
    let library = tempfile::tempdir().expect("temp dir");
    let relay_from_env = [("RELAY_URL", "https://relay.env.example".to_string())];
    let studio = open(library.path(), MemorySecrets::default(), &[]);
    let guarded = |pairs: &[(&str, Option<&str>)]| studio.guarded_settings_changes(&changes(pairs));

    assert_eq!(guarded(&[("AVATAR_MAX_PHOTOS", Some("25"))]), []);
    assert_eq!(
        guarded(&[("AVATAR_MONTHLY_BUDGET_USD", Some("20"))]),
        [GuardedChange::Budget {
            from: None,
            to: Some(20.0)
        }]
    );
    assert_eq!(
        guarded(&[("RELAY_URL", Some("https://relay.example.org:8443/"))]),
        [GuardedChange::RelayAddress {
            host: Some("relay.example.org:8443".into())
        }]
    );
    let s3 = [
        ("S3_ENDPOINT", Some("https://s3.example.net")),
        ("S3_BUCKET", Some("faces")),
        ("S3_ACCESS_KEY", Some("AKIA1")),
    ];
    assert_eq!(
        guarded(&s3),
        [
            GuardedChange::StorageAddress {
                host: Some("s3.example.net".into()),
                bucket: Some("faces".into())
            },
            GuardedChange::StorageAccount {
                host: Some("s3.example.net".into()),
                access_key: Some("AKIA1".into())
            }
        ]
    );
    assert_eq!(
        guarded(&[("AVATAR_MONTHLY_BUDGET_USD", Some("-1"))]),
        [],
        "refused anyway"
    );
    studio
        .save_settings(changes(&[("AVATAR_MONTHLY_BUDGET_USD", Some("20"))]))
        .expect("saved");
    assert_eq!(
        guarded(&[("AVATAR_MONTHLY_BUDGET_USD", None)]),
        [GuardedChange::Budget {
            from: Some(20.0),
            to: None
        }],
        "clearing the budget is asked about too"
    );
    assert_eq!(
        guarded(&[("AVATAR_MONTHLY_BUDGET_USD", Some("20"))]),
        [],
        "no change"
    );

    assert_eq!(
        studio
            .guarded_secret_change("fal-key", "key-id-1:secret-half")
            .expect("known"),
        GuardedChange::FalKey {
            key_id: Some("key-id-1".into())
        },
        "the public half only"
    );
    drop(studio);

    // What the environment sets wins: a stored change it hides redirects nothing.
    let studio = open(library.path(), MemorySecrets::default(), &relay_from_env);
    assert_eq!(
        studio.guarded_settings_changes(&changes(&[(
            "RELAY_URL",
            Some("https://elsewhere.example")
        )])),
        []
    );
    assert_eq!(
        studio
            .guarded_secret_change("relay-token", "a-new-token")
            .expect("known"),
        GuardedChange::RelayToken {
            host: Some("relay.env.example".into())
        }
    );
}
