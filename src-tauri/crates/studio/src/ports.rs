//! The outside world, behind small traits with a real implementation and a fake.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, Utc};

/// Where the application reads the time; business logic never calls `Utc::now()` itself.
pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
}

pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that moves only when told to, for tests.
pub struct ManualClock(Mutex<DateTime<Utc>>);

impl ManualClock {
    pub fn new(start: DateTime<Utc>) -> Self {
        Self(Mutex::new(start))
    }

    pub fn advance(&self, by: Duration) {
        *self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Every outside system the application talks to.
pub struct Ports {
    pub clock: Arc<dyn Clock>,
}

impl Ports {
    /// The real outside world.
    pub fn system() -> Self {
        Self {
            clock: Arc::new(SystemClock),
        }
    }
}
