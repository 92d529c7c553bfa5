//! Times each stage of one photo's check, to see where the time goes.
//!
//! usage: cargo run --release --example stage_times -p photos -- PHOTO.jpg [FOLDER]

use std::time::Instant;

fn main() {
    let path = std::env::args().nth(1).expect("usage: stage_times PHOTO");
    let bytes = std::fs::read(&path).expect("read");
    let checker = photos::Checker::new(photos::Limits::default()).expect("checker");
    let detector = photos::FaceDetector::load().expect("models");
    let time = |label: &str, work: &mut dyn FnMut()| {
        work();
        let start = Instant::now();
        for _ in 0..10 {
            work();
        }
        println!(
            "{label:>18}: {:7.1} ms",
            start.elapsed().as_secs_f64() * 100.0
        );
    };
    time("md5", &mut || drop(photos::md5_hex(&bytes)));
    time("scaled decode", &mut || {
        drop(photos::decode_working_copy(&bytes))
    });
    let working = image::RgbImage::new(480, 360);
    time("faces (portrait)", &mut || drop(detector.detect(&working)));
    time("whole check style", &mut || {
        drop(checker.check(&bytes, Some("jpg"), photos::Subject::Style))
    });
    time("whole check portrait", &mut || {
        drop(checker.check(&bytes, Some("jpg"), photos::Subject::Portrait))
    });
    if let Some(dir) = std::env::args().nth(2) {
        let files: Vec<_> = std::fs::read_dir(dir)
            .expect("dir")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        for subject in [photos::Subject::Style, photos::Subject::Portrait] {
            for threads in [1, 2] {
                let checker = photos::Checker::new(photos::Limits::default()).expect("checker");
                let start = Instant::now();
                std::thread::scope(|scope| {
                    for share in files.chunks(files.len().div_ceil(threads)) {
                        let checker = &checker;
                        scope.spawn(move || {
                            for file in share {
                                drop(checker.check_file(file, subject));
                            }
                        });
                    }
                });
                println!(
                    "folder, {subject:?}, {threads} thread(s): {:7.1} ms per photo; CPU time by stage {:?}",
                    start.elapsed().as_secs_f64() * 1000.0 / files.len() as f64,
                    checker.stage_times()
                );
            }
        }
    }
}
