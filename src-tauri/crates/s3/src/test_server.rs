//! A real S3 server for tests: `s3s-fs` on a free loopback port, storing into a temporary folder.
//! It checks SigV4 signatures (headers and presigned URLs), expiry and body checksums like a real
//! server does. Install it with `bash src-tauri/scripts/setup.sh`.

use std::fs::File;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::S3Settings;

const ACCESS_KEY: &str = "studio-test-access";
const SECRET_KEY: &str = "studio-test-secret-7f3a9c1e";
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// A running `s3s-fs`, killed when dropped.
pub struct S3TestServer {
    child: Child,
    port: u16,
    data_dir: PathBuf,
    /// Holds `data/` (the server's storage) and `s3s-fs.log`; removed on drop.
    _folder: TempDir,
}

impl S3TestServer {
    /// Starts `s3s-fs` on a free port over a new temporary folder and waits until it answers.
    ///
    /// # Panics
    /// When `s3s-fs` is not installed or does not come up.
    pub fn start() -> S3TestServer {
        let binary = find_binary();
        let folder = tempfile::tempdir().expect("create a temporary folder for s3s-fs");
        let data_dir = folder.path().join("data");
        std::fs::create_dir(&data_dir).expect("create the s3s-fs data folder");
        let log_path = folder.path().join("s3s-fs.log");
        // The port is free when probed but may be taken before s3s-fs binds it: then try another.
        for _ in 0..5 {
            let port = free_port();
            let log = File::create(&log_path).expect("create the s3s-fs log");
            let mut child = Command::new(&binary)
                .args(["--host", "127.0.0.1", "--port", &port.to_string()])
                .args(["--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY])
                .arg(&data_dir)
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("share the s3s-fs log"))
                .stderr(log)
                .spawn()
                .unwrap_or_else(|error| panic!("cannot start {}: {error}", binary.display()));
            if wait_until_up(&mut child, port) {
                return S3TestServer {
                    child,
                    port,
                    data_dir,
                    _folder: folder,
                };
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        let log = std::fs::read_to_string(&log_path).unwrap_or_default();
        panic!("s3s-fs did not start; its output:\n{log}");
    }

    /// Settings that reach this server with its keys, for `bucket`.
    pub fn settings(&self, bucket: &str) -> S3Settings {
        S3Settings {
            endpoint: format!("http://127.0.0.1:{}", self.port),
            bucket: bucket.to_owned(),
            region: "us-east-1".to_owned(),
            access_key: ACCESS_KEY.to_owned(),
            secret_key: SECRET_KEY.to_owned(),
        }
    }

    /// Where the server keeps buckets (one folder each) and objects (one file each).
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// Freezes the server (SIGSTOP): the kernel still accepts connections but nothing answers,
    /// which holds a client at a known point of its work.
    #[cfg(unix)]
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    /// Lets a paused server go on.
    #[cfg(unix)]
    pub fn resume(&self) {
        self.signal("-CONT");
    }

    /// Waits until a request has reached the paused server and lies there unread: the client is
    /// then held at a known point. Blocks the thread, so call it from a multi-threaded runtime.
    /// Linux only: it reads the kernel's socket table.
    ///
    /// # Panics
    /// When no request arrives within 10 seconds.
    #[cfg(target_os = "linux")]
    pub fn wait_for_unread_request(&self) {
        let deadline = Instant::now() + START_TIMEOUT;
        while !self.has_unread_request() {
            assert!(Instant::now() < deadline, "no request reached s3s-fs");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Whether one of the server's established connections has received bytes it has not read.
    #[cfg(target_os = "linux")]
    fn has_unread_request(&self) -> bool {
        const ESTABLISHED: &str = "01";
        let table = std::fs::read_to_string("/proc/net/tcp").expect("read /proc/net/tcp");
        let server_side = format!(":{:04X}", self.port);
        table.lines().skip(1).any(|line| {
            // Columns: slot, local address, remote address, state, tx_queue:rx_queue, …
            let columns: Vec<&str> = line.split_whitespace().collect();
            columns.len() > 4
                && columns[1].ends_with(&server_side)
                && columns[3] == ESTABLISHED
                && columns[4]
                    .split_once(':')
                    .is_some_and(|(_, unread)| u64::from_str_radix(unread, 16).is_ok_and(|n| n > 0))
        })
    }

    #[cfg(unix)]
    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill {signal} s3s-fs failed: {status}");
    }
}

impl Drop for S3TestServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `s3s-fs` on `PATH`, else where `cargo install` puts it.
fn find_binary() -> PathBuf {
    let name = format!("s3s-fs{}", std::env::consts::EXE_SUFFIX);
    let path_dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).collect())
        .unwrap_or_default();
    let cargo_bins = [
        std::env::var_os("CARGO_HOME").map(|home| PathBuf::from(home).join("bin")),
        std::env::var_os("HOME").map(|home| Path::new(&home).join(".cargo").join("bin")),
    ];
    path_dirs
        .into_iter()
        .chain(cargo_bins.into_iter().flatten())
        .map(|dir| dir.join(&name))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| {
            panic!(
                "s3s-fs, the S3 server the tests run against, is not installed: \
                 run `bash src-tauri/scripts/setup.sh`"
            )
        })
}

fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|listener| listener.local_addr())
        .expect("find a free loopback port")
        .port()
}

/// An anonymous `GET /` answered with 403 means the server is up and checking signatures.
fn wait_until_up(child: &mut Child, port: u16) -> bool {
    let deadline = Instant::now() + START_TIMEOUT;
    while Instant::now() < deadline {
        if child.try_wait().ok().flatten().is_some() {
            return false;
        }
        if anonymous_get_is_refused(port) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    false
}

fn anonymous_get_is_refused(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect((Ipv4Addr::LOCALHOST, port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
    let request = "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    let mut status_line = [0; 12];
    stream.write_all(request.as_bytes()).is_ok()
        && stream.read_exact(&mut status_line).is_ok()
        && status_line.ends_with(b" 403")
}
