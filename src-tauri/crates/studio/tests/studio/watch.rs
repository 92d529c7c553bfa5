//! A watched folder on a real file system: files already there, a file written in two halves, a
//! download renamed into place, and a folder moved in are each imported once, and only complete;
//! a later start passes over what was judged before. The watcher's time is its studio's manual
//! clock, so settling is measured look by look, not by sleeping.

use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::common::{cases, new_avatar, studio};
use studio::{
    ManualClock, PhotoCode, PhotoResult, Studio, TestStudio, TrainingType, Verdict,
    WatchProblemCode, WatchedFolder,
};

/// A watch driven by its studio's manual clock: time moves only when the test moves it, and the
/// watcher looks at the folder once between two pauses.
struct Watch<'a> {
    clock: &'a ManualClock,
    results: &'a Mutex<Vec<PhotoResult>>,
    runtime: tokio::runtime::Runtime,
    /// The watcher's looks at the folder so far.
    looks: usize,
}

impl Watch<'_> {
    /// Waits until the watcher has looked at the folder `looks` times in all. Real time bounds
    /// the wait only so that a watcher that stopped fails the test rather than holding it.
    fn wait_for_looks(&mut self, looks: usize) {
        self.looks = looks;
        let clock = self.clock;
        let looked = self.runtime.block_on(async {
            tokio::time::timeout(Duration::from_secs(10), clock.wait_for_sleeps_begun(looks)).await
        });
        assert!(looked.is_ok(), "the watcher stopped looking at the folder");
    }

    /// Moves the clock on by `by` and waits for the watcher's next look at the folder.
    fn pass(&mut self, by: Duration) {
        self.clock
            .advance(chrono::TimeDelta::from_std(by).expect("duration"));
        self.wait_for_looks(self.looks + 1);
    }

    fn verdict_of(&self, name: &str) -> Option<PhotoResult> {
        let results = self.results.lock().expect("lock");
        results.iter().find(|r| r.path.ends_with(name)).cloned()
    }

    /// Lets the clock run look by look until `name` has its verdict. A file that appears while
    /// watched is known from the file system's hint, which arrives on a thread of its own: real
    /// time bounds the wait.
    fn verdict(&mut self, name: &str) -> PhotoResult {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(found) = self.verdict_of(name) {
                return found;
            }
            assert!(Instant::now() < deadline, "{name} was not imported");
            self.pass(LOOK);
        }
    }

    fn count(&self) -> usize {
        self.results.lock().expect("lock").len()
    }
}

/// Clock time between two looks: the watcher pauses for less.
const LOOK: Duration = Duration::from_millis(250);

/// A studio whose clock moves only when a test moves it.
fn clocked_studio(library: &Path, vars: &[(&str, &str)]) -> (Studio, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
    let studio = TestStudio::new(library)
        .vars(vars.iter().map(|(name, value)| (*name, value.to_string())))
        .clock(clock.clone())
        .open()
        .expect("studio");
    (studio, clock)
}

#[test]
fn photos_appearing_in_a_watched_folder_are_imported_once_and_only_when_complete() {
    let library = tempfile::tempdir().expect("temp dir");
    let watched = tempfile::tempdir().expect("temp dir");
    let elsewhere = tempfile::tempdir().expect("temp dir");
    std::fs::copy(
        cases().join("good_portrait.jpg"),
        watched.path().join("already_there.jpg"),
    )
    .expect("copy");
    // A file whose copy stopped halfway: its first half is there when the watch starts.
    let bytes = std::fs::read(cases().join("rotated_exif.jpg")).expect("case");
    let half = bytes.len() / 2;
    let mut slow = std::fs::File::create(watched.path().join("slow_copy.jpg")).expect("create");
    slow.write_all(&bytes[..half]).expect("first half");
    slow.flush().expect("flush");

    let (studio, clock) = clocked_studio(library.path(), &[]);
    let avatar = new_avatar(&studio, TrainingType::Portrait);

    let results = watching(&studio, &clock, &avatar, watched.path(), |watch| {
        // Seen at the first look, taken once still for the settle time, not a look before.
        assert_eq!(watch.count(), 0);
        watch.pass(studio::SETTLE_TIME / 2);
        assert_eq!(watch.count(), 0, "taken before it held still long enough");
        watch.pass(studio::SETTLE_TIME / 2);
        let first = watch.verdict_of("already_there.jpg").expect("taken");
        assert_eq!(
            first.verdict,
            Verdict::Accepted,
            "files present at start are scanned"
        );

        // The half-written file holds still for three settle times and is still not taken.
        for _ in 0..6 {
            watch.pass(studio::SETTLE_TIME / 2);
        }
        assert!(
            watch.verdict_of("slow_copy.jpg").is_none(),
            "a half-written file must never be imported"
        );
        slow.write_all(&bytes[half..]).expect("second half");
        slow.sync_all().expect("sync");
        let finished = watch.verdict("slow_copy.jpg");
        assert_eq!(finished.verdict, Verdict::Accepted, "{finished:?}");

        // A browser download: written as .part, renamed when done.
        std::fs::copy(
            cases().join("noisy.jpg"),
            watched.path().join("download.jpg.part"),
        )
        .expect("copy");
        for _ in 0..4 {
            watch.pass(studio::SETTLE_TIME / 2);
        }
        std::fs::rename(
            watched.path().join("download.jpg.part"),
            watched.path().join("download.jpg"),
        )
        .expect("rename");
        assert_eq!(watch.verdict("download.jpg").verdict, Verdict::Accepted);

        // A whole folder moved in gives one event for the folder and none for its files.
        let album = elsewhere.path().join("album");
        std::fs::create_dir(&album).expect("album");
        std::fs::copy(cases().join("png_good.png"), album.join("from_album.png")).expect("copy");
        std::fs::rename(&album, watched.path().join("album")).expect("move in");
        assert_eq!(watch.verdict("from_album.png").verdict, Verdict::Accepted);
        // The folder moved in is watched in its turn.
        std::fs::copy(
            cases().join("webp_good.webp"),
            watched.path().join("album/later.webp"),
        )
        .expect("copy");
        assert_eq!(watch.verdict("later.webp").verdict, Verdict::Accepted);
    });

    let paths: Vec<&str> = results.iter().map(|r| r.path.as_str()).collect();
    assert_eq!(
        results.len(),
        5,
        "each file exactly once, nothing partial: {paths:?}"
    );
    assert!(!paths.iter().any(|p| p.ends_with(".part")));
    assert_eq!(studio.list_photos(&avatar).expect("photos").len(), 5);
}

/// Watches `folder` for `avatar` while `meanwhile` drives the clock, then for two settle times
/// more, look by look, and stops; returns every verdict.
fn watching(
    studio: &Studio,
    clock: &ManualClock,
    avatar: &str,
    folder: &Path,
    meanwhile: impl FnOnce(&mut Watch),
) -> Vec<PhotoResult> {
    let results = Mutex::new(Vec::new());
    let running = AtomicBool::new(true);
    std::thread::scope(|scope| {
        let watcher = scope.spawn(|| {
            studio.watch_folder(
                avatar,
                folder,
                &|| running.load(Ordering::Relaxed),
                |result| results.lock().expect("lock").push(result),
            )
        });
        let mut watch = Watch {
            clock,
            results: &results,
            runtime: tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .build()
                .expect("runtime"),
            looks: 0,
        };
        let checked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            watch.wait_for_looks(1);
            meanwhile(&mut watch);
            // Anything more, such as a file imported twice, would come in these looks.
            for _ in 0..8 {
                watch.pass(LOOK);
            }
        }));
        // The watcher is stopped whatever happened, so a failed check fails the test.
        running.store(false, Ordering::Relaxed);
        while !watcher.is_finished() {
            clock.advance(chrono::TimeDelta::from_std(LOOK).expect("duration"));
            std::thread::yield_now();
        }
        let ended = watcher.join().expect("watcher thread");
        if let Err(failed) = checked {
            std::panic::resume_unwind(failed);
        }
        ended.expect("watch ends cleanly");
    });
    results.into_inner().expect("lock")
}

/// Watches `folder` for `avatar` until `count` verdicts came, then two settle times more.
fn watch_until(
    studio: &Studio,
    clock: &ManualClock,
    avatar: &str,
    folder: &Path,
    count: usize,
) -> Vec<PhotoResult> {
    watching(studio, clock, avatar, folder, |watch| {
        let deadline = Instant::now() + Duration::from_secs(10);
        while watch.count() < count {
            assert!(Instant::now() < deadline, "fewer than {count} verdicts");
            watch.pass(LOOK);
        }
    })
}

fn names(results: &[PhotoResult]) -> Vec<&str> {
    let mut names: Vec<&str> = results
        .iter()
        .map(|result| result.path.rsplit('/').next().unwrap_or_default())
        .collect();
    names.sort();
    names
}

#[test]
fn a_later_start_passes_over_files_judged_before_and_a_removed_photo_stays_removed() {
    let library = tempfile::tempdir().expect("temp dir");
    let watched = tempfile::tempdir().expect("temp dir");
    let put = |case: &str, name: &str| {
        std::fs::copy(cases().join(case), watched.path().join(name)).expect("copy");
    };
    let open = || {
        let set_of_two = [("AVATAR_MIN_PHOTOS", "1"), ("AVATAR_MAX_PHOTOS", "2")];
        clocked_studio(library.path(), &set_of_two)
    };
    let (studio, clock) = open();
    let avatar = new_avatar(&studio, TrainingType::Portrait);
    let photo_of = |results: &[PhotoResult], name: &str| {
        results
            .iter()
            .find(|result| result.path.ends_with(name))
            .and_then(|result| result.photo_id)
            .unwrap_or_else(|| panic!("{name} stored"))
            .to_string()
    };
    put("good_portrait.jpg", "kept.jpg");
    put("dark.jpg", "dark.jpg");

    let first = watch_until(&studio, &clock, &avatar, watched.path(), 2);
    assert_eq!(names(&first), ["dark.jpg", "kept.jpg"]);
    studio
        .remove_photo(&avatar, &photo_of(&first, "kept.jpg"))
        .expect("remove");

    // The app starts again with two more photos in the folder: only they are news.
    drop(studio);
    let (studio, clock) = open();
    put("png_good.png", "new.png");
    put("webp_good.webp", "more.webp");
    let second = watch_until(&studio, &clock, &avatar, watched.path(), 2);
    assert_eq!(names(&second), ["more.webp", "new.png"]);
    assert!(
        second
            .iter()
            .all(|result| result.verdict == Verdict::Accepted)
    );
    assert_eq!(
        studio.list_photos(&avatar).expect("photos").len(),
        2,
        "the photo removed from the avatar did not come back"
    );

    // A file changed since its verdict is judged again; a new one finds the set full.
    put("bright.jpg", "dark.jpg");
    put("rotated_exif.jpg", "extra.jpg");
    let third = watch_until(&studio, &clock, &avatar, watched.path(), 2);
    assert_eq!(names(&third), ["dark.jpg", "extra.jpg"]);
    let reasons = |name: &str| {
        let result = third.iter().find(|result| result.path.ends_with(name));
        result
            .map(|result| result.reasons.clone())
            .unwrap_or_default()
    };
    assert_eq!(reasons("dark.jpg"), [PhotoCode::TooBright]);
    assert_eq!(reasons("extra.jpg"), [PhotoCode::LimitReached]);

    // Once a photo leaves the avatar, the next start tries the one that found no room.
    studio
        .remove_photo(&avatar, &photo_of(&second, "new.png"))
        .expect("remove");
    drop(studio);
    let (studio, clock) = open();
    let fourth = watch_until(&studio, &clock, &avatar, watched.path(), 1);
    assert_eq!(names(&fourth), ["extra.jpg"]);
    assert_eq!(fourth[0].verdict, Verdict::Accepted);
}

#[test]
fn an_avatar_keeps_its_watched_folder_refuses_one_it_cannot_watch_and_reports_one_gone() {
    let library = tempfile::tempdir().expect("temp dir");
    let watched = tempfile::tempdir().expect("temp dir");
    let studio = studio(library.path(), &[]);
    let avatar = new_avatar(&studio, TrainingType::Style);
    assert_eq!(studio.watch_folder_of(&avatar).expect("read"), None);

    // Kept absolute, with links resolved, across a reopening.
    let relative_link = watched.path().join("link");
    std::os::unix::fs::symlink(watched.path(), &relative_link).expect("link");
    let kept = studio
        .set_watch_folder(&avatar, Some(&relative_link))
        .expect("set");
    let canonical = std::fs::canonicalize(watched.path()).expect("canonical");
    assert_eq!(kept.as_deref(), Some(canonical.as_path()));
    drop(studio);
    let (studio, clock) = clocked_studio(library.path(), &[]);
    let kept = |studio: &Studio| studio.watch_folder_of(&avatar).expect("read");
    assert_eq!(
        kept(&studio),
        Some(WatchedFolder {
            folder: canonical.clone(),
            problem: None
        })
    );

    // A missing folder and a file are refused in words, and the folder kept stays.
    for (path, words) in [
        (watched.path().join("gone"), "cannot be found"),
        (cases().join("good_portrait.jpg"), "is not a folder"),
    ] {
        let error = studio
            .set_watch_folder(&avatar, Some(&path))
            .expect_err("refused");
        assert!(error.to_string().contains(words), "{error}");
    }
    assert_eq!(kept(&studio).map(|watched| watched.folder), Some(canonical));

    // A folder that goes away while watched ends the watch with a reason, and is reported.
    let going = tempfile::tempdir().expect("temp dir");
    let going_path = going.path().to_path_buf();
    studio
        .set_watch_folder(&avatar, Some(&going_path))
        .expect("set");
    let ended = std::thread::scope(|scope| {
        let watcher = scope.spawn(|| studio.watch_folder(&avatar, &going_path, &|| true, |_| {}));
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        runtime.block_on(clock.wait_for_sleeps_begun(1));
        drop(going);
        clock.advance(chrono::TimeDelta::from_std(LOOK).expect("duration"));
        watcher.join().expect("watcher thread")
    });
    let error = ended.expect_err("the watch ends when the folder goes");
    assert!(error.to_string().contains("is no longer there"), "{error}");
    let problem = kept(&studio).and_then(|watched| watched.problem);
    assert!(
        problem
            .as_ref()
            .is_some_and(|problem| problem.code == WatchProblemCode::Missing),
        "{problem:?}"
    );

    studio.set_watch_folder(&avatar, None).expect("clear");
    assert!(studio.watch_folders().expect("list").is_empty());
}

/// Starts the studio's background work on this runtime; its events arrive on the receiver.
fn background_events(studio: &Arc<Studio>) -> std::sync::mpsc::Receiver<studio::CoreEvent> {
    let (sender, events) = std::sync::mpsc::channel();
    let sender = Mutex::new(sender);
    studio.start_background(
        tokio::runtime::Handle::current(),
        Arc::new(move |event| {
            let _ = sender.lock().expect("sender").send(event);
        }),
    );
    events
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_background_watches_an_avatars_folder_while_it_has_one_and_only_then() {
    let library = tempfile::tempdir().expect("library");
    let studio = Arc::new(studio(library.path(), &[]));
    let events = background_events(&studio);
    let avatar = new_avatar(&studio, TrainingType::Portrait);
    let id = studio::AvatarId::parse(&avatar).expect("id");
    let inbox = tempfile::tempdir().expect("inbox");
    assert!(studio.watched_in_background().is_empty());

    let kept = studio
        .set_watch_folder(&avatar, Some(inbox.path()))
        .expect("watch")
        .expect("folder");
    assert_eq!(studio.watched_in_background(), vec![(id, kept.clone())]);
    std::fs::copy(
        cases().join("good_portrait.jpg"),
        inbox.path().join("new.jpg"),
    )
    .expect("copy");
    let event = events
        .recv_timeout(Duration::from_secs(20))
        .expect("the new photo is news");
    match event {
        studio::CoreEvent::WatchedPhoto { avatar_id, result } => {
            assert_eq!(avatar_id, id);
            assert!(result.path.ends_with("new.jpg"), "{result:?}");
        }
        other => panic!("not a watched photo: {other:?}"),
    }

    studio.set_watch_folder(&avatar, None).expect("unwatch");
    assert!(studio.watched_in_background().is_empty());
    studio
        .set_watch_folder(&avatar, Some(inbox.path()))
        .expect("watch again");
    studio.delete_avatar(&avatar).await.expect("delete");
    assert!(
        studio.watched_in_background().is_empty(),
        "a deleted avatar's folder is not watched"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_background_says_when_a_watched_folder_goes_and_when_it_is_back() {
    let library = tempfile::tempdir().expect("library");
    let (studio, clock) = clocked_studio(library.path(), &[]);
    let studio = Arc::new(studio);
    let events = background_events(&studio);
    let avatar = new_avatar(&studio, TrainingType::Portrait);
    let id = studio::AvatarId::parse(&avatar).expect("id");
    let drive = tempfile::tempdir().expect("drive");
    let inbox = drive.path().join("inbox");
    std::fs::create_dir(&inbox).expect("inbox");
    studio
        .set_watch_folder(&avatar, Some(&inbox))
        .expect("watch");

    // Moves the clock a second at a time until the background says what became of the folder;
    // real time bounds the wait only so that silence fails the test.
    let next_change = || {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            assert!(Instant::now() < deadline, "the background said nothing");
            clock.advance(chrono::TimeDelta::seconds(1));
            if let Ok(studio::CoreEvent::WatchChanged { avatar_id, problem }) =
                events.recv_timeout(Duration::from_millis(20))
            {
                assert_eq!(avatar_id, id);
                return problem;
            }
        }
    };
    std::fs::remove_dir(&inbox).expect("unplugged");
    let problem = next_change().expect("a problem");
    assert_eq!(problem.code, WatchProblemCode::Missing, "{problem:?}");
    std::fs::create_dir(&inbox).expect("plugged in again");
    assert_eq!(next_change(), None, "watched again");
}

#[test]
fn a_file_whose_check_stopped_the_app_is_passed_over_at_the_next_start_and_said_once() {
    let library = tempfile::tempdir().expect("temp dir");
    let watched = tempfile::tempdir().expect("temp dir");
    let stopper = watched.path().join("stopper.jpg");
    std::fs::copy(cases().join("good_portrait.jpg"), &stopper).expect("copy");
    std::fs::copy(
        cases().join("png_good.png"),
        watched.path().join("fine.png"),
    )
    .expect("copy");
    let (studio, clock) = clocked_studio(library.path(), &[]);
    let avatar = new_avatar(&studio, TrainingType::Portrait);
    // What the watcher writes before it checks a file: an app that stopped during the check
    // (killed, or brought down by a decoder) leaves the library just so.
    let metadata = std::fs::metadata(&stopper).expect("metadata");
    let modified_ns = metadata
        .modified()
        .expect("modified")
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_nanos() as i64;
    let begun = library::WatchedFile {
        path: stopper.display().to_string(),
        size: metadata.len(),
        modified_ns,
    };
    let avatar_id = avatar.parse().expect("an avatar id");
    library::Library::open(library.path())
        .expect("library")
        .begin_watched_files(avatar_id, [&begun])
        .expect("begun");

    let results = watch_until(&studio, &clock, &avatar, watched.path(), 2);
    assert_eq!(names(&results), ["fine.png", "stopper.jpg"]);
    let stopped = results
        .iter()
        .find(|result| result.path.ends_with("stopper.jpg"))
        .expect("stopper.jpg said");
    assert_eq!(stopped.reasons, [PhotoCode::CheckStopped]);
    assert_eq!(stopped.verdict, Verdict::Rejected);
    assert_eq!(studio.list_photos(&avatar).expect("photos").len(), 1);

    drop(studio);
    let (studio, clock) = clocked_studio(library.path(), &[]);
    let again = watching(&studio, &clock, &avatar, watched.path(), |_| {});
    assert!(again.is_empty(), "said once: {:?}", names(&again));
}
