//! The ceiling for photo checking: read, MD5 and DCT-scaled JPEG decode alone, on every core,
//! over the same files `avatar-cli photos check` is timed on.
//!
//! usage: cargo run --example decode_limit -p photos -- DIR

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

fn main() {
    let dir = std::env::args().nth(1).expect("usage: decode_limit DIR");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("read dir")
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| {
            path.extension()
                .is_some_and(|ext| ext.eq_ignore_ascii_case("jpg"))
        })
        .collect();
    files.sort();
    let workers = std::thread::available_parallelism()
        .map(usize::from)
        .unwrap_or(2);
    let next = AtomicUsize::new(0);
    let start = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                while let Some(path) = files.get(next.fetch_add(1, Ordering::Relaxed)) {
                    let bytes = std::fs::read(path).expect("read");
                    let md5 = photos::md5_hex(&bytes);
                    let pixels = photos::decode_working_copy(&bytes).expect("decode");
                    assert!(!md5.is_empty() && pixels > 0);
                }
            });
        }
    });
    let seconds = start.elapsed().as_secs_f64();
    println!(
        "decode + md5 limit: {} photos in {seconds:.2} s = {:.2} photos/s",
        files.len(),
        files.len() as f64 / seconds
    );
}
