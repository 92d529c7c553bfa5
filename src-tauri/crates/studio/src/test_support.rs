//! What tests and benchmarks build a studio with (the `test-support` feature): one builder over a
//! library folder with a cleared environment (only the variables given), secrets in memory, a
//! clock of the test's choice and a notifier that records.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use chrono::{DateTime, Duration, Utc};

use crate::{
    Clock, Config, Notice, Notifier, Ports, Result, SecretName, SecretSource, Secrets, Studio,
    SystemClock,
};

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A studio for a test: nothing from the developer's environment or keychain reaches it.
pub struct TestStudio {
    library: PathBuf,
    vars: Vec<(String, String)>,
    secrets: MemorySecrets,
    clock: Arc<dyn Clock>,
}

impl TestStudio {
    pub fn new(library: &Path) -> Self {
        Self {
            library: library.to_path_buf(),
            vars: Vec::new(),
            secrets: MemorySecrets::default(),
            clock: Arc::new(SystemClock),
        }
    }

    /// A setting as if it were set in the environment; a later value for the same name wins.
    pub fn var(mut self, name: &str, value: impl Into<String>) -> Self {
        self.vars.push((name.to_string(), value.into()));
        self
    }

    pub fn vars<'a>(self, vars: impl IntoIterator<Item = (&'a str, String)>) -> Self {
        vars.into_iter()
            .fold(self, |builder, (name, value)| builder.var(name, value))
    }

    pub fn secret(mut self, name: SecretName, value: &str) -> Self {
        self.secrets = self.secrets.with(name, value);
        self
    }

    pub fn secrets(mut self, secrets: MemorySecrets) -> Self {
        self.secrets = secrets;
        self
    }

    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The studio and the notifier that records what it tells the creator.
    pub fn open_recording(self) -> Result<(Studio, Arc<RecordingNotifier>)> {
        let vars = self.vars;
        let config = Config::from_lookup(Some(self.library), |name| {
            vars.iter()
                .rev()
                .find(|(key, _)| key == name)
                .map(|(_, value)| value.clone())
        })?;
        let notifier = Arc::new(RecordingNotifier::default());
        let studio = Studio::open(
            config,
            Ports {
                clock: self.clock,
                secrets: Arc::new(self.secrets),
                notifier: notifier.clone(),
            },
        )?;
        Ok((studio, notifier))
    }

    pub fn open(self) -> Result<Studio> {
        self.open_recording().map(|(studio, _)| studio)
    }
}

/// A clock that moves only when told to, for tests: its sleeps end when [`ManualClock::advance`]
/// passes their end, whatever the real time.
pub struct ManualClock {
    now: tokio::sync::watch::Sender<DateTime<Utc>>,
    /// How many sleeps are waiting.
    sleeping: Arc<tokio::sync::watch::Sender<usize>>,
    /// How many sleeps have begun since the clock was made.
    begun: Arc<tokio::sync::watch::Sender<usize>>,
}

impl ManualClock {
    pub fn new(start: DateTime<Utc>) -> Self {
        Self {
            now: tokio::sync::watch::Sender::new(start),
            sleeping: Arc::new(tokio::sync::watch::Sender::new(0)),
            begun: Arc::new(tokio::sync::watch::Sender::new(0)),
        }
    }

    pub fn advance(&self, by: Duration) {
        self.now.send_modify(|now| *now += by);
    }

    /// Waits until at least `count` sleeps wait on this clock: a test knows the code it drives
    /// has come to a wait before it moves time or acts.
    pub async fn wait_for_sleepers(&self, count: usize) {
        let mut sleeping = self.sleeping.subscribe();
        let _ = sleeping.wait_for(|sleeping| *sleeping >= count).await;
    }

    /// Waits until `total` sleeps have begun on this clock since it was made: a loop that sleeps
    /// once per round has finished its rounds before the `total`-th.
    pub async fn wait_for_sleeps_begun(&self, total: usize) {
        let mut begun = self.begun.subscribe();
        let _ = begun.wait_for(|begun| *begun >= total).await;
    }
}

/// Counts one waiting sleep while it lives.
struct Sleeping(Arc<tokio::sync::watch::Sender<usize>>);

impl Sleeping {
    fn new(
        count: Arc<tokio::sync::watch::Sender<usize>>,
        begun: &tokio::sync::watch::Sender<usize>,
    ) -> Self {
        count.send_modify(|sleeping| *sleeping += 1);
        begun.send_modify(|begun| *begun += 1);
        Self(count)
    }
}

impl Drop for Sleeping {
    fn drop(&mut self) {
        self.0.send_modify(|sleeping| *sleeping -= 1);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.now.borrow()
    }

    fn sleep(&self, duration: std::time::Duration) -> crate::ports::Sleep {
        let end = self.now() + Duration::from_std(duration).unwrap_or(Duration::MAX);
        let mut now = self.now.subscribe();
        let (count, begun) = (self.sleeping.clone(), self.begun.clone());
        Box::pin(async move {
            let _sleeping = Sleeping::new(count, &begun);
            // The clock is gone only with the studio: then nothing is left to wake.
            let _ = now.wait_for(|now| *now >= end).await;
        })
    }

    fn pause(&self, duration: std::time::Duration) {
        block_on(self.sleep(duration));
    }
}

/// Runs a future to its end on this thread: the manual clock's sleeps need no runtime, only a
/// wake when the clock moves.
fn block_on<F: std::future::Future>(future: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl std::task::Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Arc::new(Unpark(std::thread::current())).into();
    let mut context = std::task::Context::from_waker(&waker);
    let mut future = std::pin::pin!(future);
    loop {
        if let std::task::Poll::Ready(output) = future.as_mut().poll(&mut context) {
            return output;
        }
        std::thread::park();
    }
}

/// Secrets held in memory, for tests.
#[derive(Default)]
pub struct MemorySecrets(Mutex<HashMap<SecretName, String>>);

impl MemorySecrets {
    pub fn with(self, name: SecretName, value: &str) -> Self {
        lock(&self.0).insert(name, value.to_string());
        self
    }
}

impl Secrets for MemorySecrets {
    fn get(&self, name: SecretName) -> Option<String> {
        lock(&self.0).get(&name).cloned()
    }

    fn set(&self, name: SecretName, value: &str) -> crate::Result<()> {
        lock(&self.0).insert(name, value.to_string());
        Ok(())
    }

    fn delete(&self, name: SecretName) -> crate::Result<()> {
        lock(&self.0).remove(&name);
        Ok(())
    }

    fn source(&self, name: SecretName) -> crate::Result<Option<SecretSource>> {
        Ok(lock(&self.0)
            .contains_key(&name)
            .then_some(SecretSource::Keychain))
    }

    fn reach_store(&self) -> crate::Result<()> {
        Ok(())
    }
}

/// Keeps every notice, for tests.
#[derive(Default)]
pub struct RecordingNotifier(Mutex<Vec<Notice>>);

impl RecordingNotifier {
    pub fn notices(&self) -> Vec<Notice> {
        lock(&self.0).clone()
    }
}

impl Notifier for RecordingNotifier {
    fn notify(&self, notice: &Notice) {
        lock(&self.0).push(notice.clone());
    }
}
