//! `S3Store` against a real S3 server (s3s-fs), which checks signatures, expiry and checksums.

use std::path::Path;
use std::time::Duration;

use futures_util::{StreamExt, TryStreamExt, stream};
use s3::test_server::S3TestServer;
use s3::{PART_SIZE, S3Error, S3Settings, S3Store};

const MIB: usize = 1024 * 1024;
const AN_HOUR: Duration = Duration::from_secs(60 * 60);

/// Bytes that differ along the whole length, so a misplaced or repeated part shows.
fn varied_bytes(len: usize) -> Vec<u8> {
    (0..len as u32)
        .map(|index| (index.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect()
}

async fn ready_store(server: &S3TestServer, bucket: &str) -> S3Store {
    let store = S3Store::new(server.settings(bucket));
    store.ensure_bucket().await.expect("create the bucket");
    store
}

/// A store for a ready bucket that holds no open connection. Its first request opens one, which
/// a paused server's kernel accepts and fills while the server reads nothing; a connection kept
/// from earlier requests does not always carry the next request to a paused server.
async fn store_without_connections(server: &S3TestServer, bucket: &str) -> S3Store {
    ready_store(server, bucket).await;
    S3Store::new(server.settings(bucket))
}

async fn get(url: &str) -> reqwest::Response {
    reqwest::get(url).await.expect("GET the presigned URL")
}

/// Whether `key` can be downloaded, judged by what a presigned GET answers.
async fn exists(store: &S3Store, key: &str) -> bool {
    let url = store.presigned_get(key, AN_HOUR).await.expect("presign");
    match get(&url).await.status().as_u16() {
        200 => true,
        404 => false,
        status => panic!("unexpected HTTP {status} for {key}"),
    }
}

fn assert_free_of_secret(error: &S3Error, secret: &str) {
    let shown = format!("{error} {error:?}");
    assert!(!shown.contains(secret), "the secret key leaked: {shown}");
}

/// No multipart upload left open on the server: s3s-fs keeps one `.upload*` file per open upload
/// and per stored part in its data folder.
fn assert_no_open_uploads(data_dir: &Path) {
    let open: Vec<String> = std::fs::read_dir(data_dir)
        .expect("read the server's data folder")
        .map(|entry| {
            entry
                .expect("a folder entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|name| name.starts_with(".upload"))
        .collect();
    assert!(
        open.is_empty(),
        "the multipart upload was not aborted: {open:?}"
    );
}

#[tokio::test]
async fn uploads_read_back_byte_identical_through_presigned_urls() {
    let server = S3TestServer::start();
    let store = S3Store::new(server.settings("training-sets"));
    store.ensure_bucket().await.expect("create the bucket");
    store
        .ensure_bucket()
        .await
        .expect("an existing bucket is fine");
    store.check().await.expect("the connection checks out");

    let folder = tempfile::tempdir().expect("a temporary folder");
    let small = varied_bytes(300 * 1024);
    let large = varied_bytes(30 * MIB);
    assert!(
        large.len() as u64 > 3 * PART_SIZE,
        "the large file needs parallel parts"
    );
    let small_path = folder.path().join("captions.json");
    let large_path = folder.path().join("set.zip");
    std::fs::write(&small_path, &small).expect("write the small file");
    std::fs::write(&large_path, &large).expect("write the large file");

    let uploaded = store
        .upload_file(&small_path, "avatars/1/captions.json", "application/json")
        .await
        .expect("upload the small file");
    assert_eq!(uploaded, small.len() as u64);
    let uploaded = store
        .upload_file(&large_path, "avatars/1/set.zip", "application/zip")
        .await
        .expect("upload the large file");
    assert_eq!(uploaded, large.len() as u64);
    store
        .put_bytes("avatars/1/notes.txt", b"hello".to_vec(), "text/plain")
        .await
        .expect("put bytes");

    for (key, expected, content_type) in [
        ("avatars/1/captions.json", &small, "application/json"),
        ("avatars/1/set.zip", &large, "application/zip"),
        ("avatars/1/notes.txt", &b"hello".to_vec(), "text/plain"),
    ] {
        let url = store.presigned_get(key, AN_HOUR).await.expect("presign");
        let response = get(&url).await;
        assert_eq!(response.status(), 200, "{key}");
        assert_eq!(response.headers()["content-type"], content_type, "{key}");
        if key.ends_with("set.zip") {
            // A multipart object's ETag ends with its part count: 30 MiB in 8 MiB parts is 4.
            let etag = response.headers()["etag"]
                .to_str()
                .expect("an ASCII ETag")
                .to_owned();
            assert!(
                etag.trim_matches('"').ends_with("-4"),
                "not multipart: {etag}"
            );
        }
        let body = response.bytes().await.expect("read the body");
        assert!(
            body.as_ref() == expected.as_slice(),
            "{key} differs from what was uploaded"
        );
    }
}

#[tokio::test]
async fn presigned_urls_are_capped_at_seven_days_and_refused_when_tampered_with() {
    let server = S3TestServer::start();
    let store = ready_store(&server, "links").await;
    store
        .put_bytes("set.zip", b"training set".to_vec(), "application/zip")
        .await
        .expect("put");

    let url = store
        .presigned_get("set.zip", Duration::from_secs(30 * 24 * 60 * 60))
        .await
        .expect("presign for 30 days");
    assert!(
        url.contains("X-Amz-Expires=604800"),
        "not capped at 7 days: {url}"
    );
    assert_eq!(get(&url).await.status(), 200);

    let longer = url.replace("X-Amz-Expires=604800", "X-Amz-Expires=604799");
    assert_eq!(
        get(&longer).await.status(),
        403,
        "a changed expiry must void the signature"
    );
    let other_key = url.replace("/set.zip?", "/other.zip?");
    assert_eq!(
        get(&other_key).await.status(),
        403,
        "the signature covers the key"
    );
}

#[tokio::test]
async fn a_wrong_key_is_named_as_such_without_showing_the_secret() {
    let server = S3TestServer::start();
    ready_store(&server, "avatars").await;
    let right = server.settings("avatars");

    let wrong_secret = S3Settings {
        secret_key: "not-the-right-secret-1234".to_owned(),
        ..right.clone()
    };
    let store = S3Store::new(wrong_secret.clone());
    let shown = format!("{store:?} {wrong_secret:?}");
    assert!(
        !shown.contains(&wrong_secret.secret_key),
        "Debug shows the secret: {shown}"
    );
    let checked = store
        .check()
        .await
        .expect_err("a wrong secret must fail the check");
    let put = store
        .put_bytes("a.txt", b"a".to_vec(), "text/plain")
        .await
        .expect_err("a wrong secret must fail a put");
    for error in [&checked, &put] {
        assert!(
            matches!(error, S3Error::WrongCredentials { .. }),
            "{error:?}"
        );
        assert!(error.to_string().contains(&right.access_key), "{error}");
        assert_free_of_secret(error, &wrong_secret.secret_key);
        assert_free_of_secret(error, &right.secret_key);
    }

    let wrong_access_key = S3Settings {
        access_key: "nobody".to_owned(),
        ..right.clone()
    };
    let error = S3Store::new(wrong_access_key)
        .put_bytes("a.txt", b"a".to_vec(), "text/plain")
        .await
        .expect_err("an unknown access key must fail");
    assert!(
        matches!(error, S3Error::WrongCredentials { .. }),
        "{error:?}"
    );
    assert_free_of_secret(&error, &right.secret_key);
}

#[tokio::test]
async fn an_unreachable_endpoint_is_named_as_such_without_showing_the_secret() {
    let closed_port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port();
    let settings = S3Settings {
        endpoint: format!("http://127.0.0.1:{closed_port}"),
        bucket: "avatars".to_owned(),
        region: "us-east-1".to_owned(),
        access_key: "studio".to_owned(),
        secret_key: "unreachable-secret-5678".to_owned(),
    };
    let store = S3Store::new(settings.clone());
    let checked = store.check().await.expect_err("nothing listens there");
    let put = store
        .put_bytes("a.txt", b"a".to_vec(), "text/plain")
        .await
        .expect_err("nothing listens there");
    for error in [&checked, &put] {
        assert!(matches!(error, S3Error::Unreachable { .. }), "{error:?}");
        let message = error.to_string();
        assert!(message.contains(&settings.endpoint), "{message}");
        assert!(
            message.to_lowercase().contains("connection refused"),
            "{message}"
        );
        assert_free_of_secret(error, &settings.secret_key);
    }

    let without_scheme = S3Settings {
        endpoint: "minio.local:9000".to_owned(),
        ..settings
    };
    let error = S3Store::new(without_scheme)
        .check()
        .await
        .expect_err("an endpoint without a scheme is not a URL");
    assert!(
        matches!(error, S3Error::InvalidEndpoint { .. }),
        "{error:?}"
    );
    assert!(
        error.to_string().contains("http://"),
        "the message shows the form: {error}"
    );
}

#[tokio::test]
async fn a_missing_bucket_is_named_as_such() {
    let server = S3TestServer::start();
    let store = S3Store::new(server.settings("never-created"));
    let checked = store.check().await.expect_err("the bucket does not exist");
    // A listing: s3s-fs, unlike S3 and MinIO, creates a missing bucket on PutObject.
    let listed = store
        .delete_prefix("sets/")
        .await
        .expect_err("the bucket does not exist");
    for error in [&checked, &listed] {
        assert!(matches!(error, S3Error::BucketMissing { .. }), "{error:?}");
        assert!(error.to_string().contains("never-created"), "{error}");
    }
}

#[tokio::test]
async fn delete_prefix_removes_exactly_the_objects_under_it() {
    let server = S3TestServer::start();
    let store = ready_store(&server, "cleanup").await;
    let doomed = ["sets/a/1.jpg", "sets/a/2.jpg", "sets/a/deeper/3.jpg"];
    let kept = ["sets/ab/4.jpg", "sets/b/5.jpg", "other/sets/a/6.jpg"];
    for key in doomed.iter().chain(&kept) {
        store
            .put_bytes(key, key.as_bytes().to_vec(), "image/jpeg")
            .await
            .expect("put");
    }

    let deleted = store
        .delete_prefix("sets/a/")
        .await
        .expect("delete the prefix");
    assert_eq!(deleted, doomed.len());
    for key in doomed {
        assert!(!exists(&store, key).await, "{key} should be gone");
    }
    for key in kept {
        assert!(
            exists(&store, key).await,
            "{key} is outside the prefix and must stay"
        );
    }
    assert_eq!(
        store.delete_prefix("sets/a/").await.expect("delete again"),
        0
    );

    let error = store
        .delete_prefix("")
        .await
        .expect_err("an empty prefix is every object");
    assert!(matches!(error, S3Error::EmptyPrefix), "{error:?}");
    assert!(exists(&store, kept[0]).await);
}

#[tokio::test]
async fn delete_prefix_goes_past_the_first_page_of_the_listing() {
    let server = S3TestServer::start();
    let store = ready_store(&server, "many").await;
    // A listing page holds at most 1,000 keys.
    let keys: Vec<String> = (0..1_050)
        .map(|index| format!("photos/{index:04}.jpg"))
        .collect();
    stream::iter(&keys)
        .map(|key| store.put_bytes(key, vec![1], "image/jpeg"))
        .buffer_unordered(16)
        .try_collect::<Vec<()>>()
        .await
        .expect("put every photo");

    assert_eq!(
        store.delete_prefix("photos/").await.expect("delete"),
        keys.len()
    );
    assert!(!exists(&store, &keys[0]).await);
    assert!(!exists(&store, &keys[keys.len() - 1]).await);
}

// Multi-threaded: the test thread blocks in `wait_for_unread_request` while the upload runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_that_shrinks_mid_upload_leaves_no_object_and_says_why() {
    let server = S3TestServer::start();
    let store = store_without_connections(&server, "shrinking").await;
    let folder = tempfile::tempdir().expect("a temporary folder");
    let path = folder.path().join("set.zip");
    std::fs::write(&path, varied_bytes(30 * MIB)).expect("write the file");

    // Hold the upload at its first request, after it measured the file; shorten the file, then
    // let it go on: the first part still reads, a later one finds the file too short.
    server.pause();
    let upload = {
        let path = path.clone();
        tokio::spawn(async move { store.upload_file(&path, "set.zip", "application/zip").await })
    };
    server.wait_for_unread_request();
    std::fs::File::options()
        .write(true)
        .open(&path)
        .and_then(|file| file.set_len(10 * MIB as u64))
        .expect("shorten the file");
    server.resume();

    let error = upload
        .await
        .expect("the upload task ran")
        .expect_err("a file that shrank must not upload");
    assert!(matches!(error, S3Error::FileChanged { .. }), "{error:?}");
    assert!(error.to_string().contains("set.zip"), "{error}");
    let store = S3Store::new(server.settings("shrinking"));
    assert!(
        !exists(&store, "set.zip").await,
        "no object may be completed"
    );
    assert_no_open_uploads(server.data_dir());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_dies_mid_upload_gives_a_clear_error() {
    let server = S3TestServer::start();
    let store = store_without_connections(&server, "dying").await;
    let folder = tempfile::tempdir().expect("a temporary folder");
    let path = folder.path().join("set.zip");
    std::fs::write(&path, varied_bytes(30 * MIB)).expect("write the file");

    server.pause();
    let upload =
        tokio::spawn(async move { store.upload_file(&path, "set.zip", "application/zip").await });
    server.wait_for_unread_request();
    drop(server);

    let error = upload
        .await
        .expect("the upload task ran")
        .expect_err("the server is gone");
    assert!(matches!(error, S3Error::Unreachable { .. }), "{error:?}");
}
