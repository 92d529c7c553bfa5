//! The memory one checker's decodes may hold at once. Each decode asks for what its header
//! predicts and waits until that fits beside the decodes already running, so the peak memory of
//! an import is bounded by the budget, whatever the files and their order.

use std::sync::{Condvar, Mutex, PoisonError};

pub(crate) struct DecodeBudget {
    limit: u64,
    in_use: Mutex<u64>,
    freed: Condvar,
}

/// Memory held by one decode, given back when dropped.
pub(crate) struct Held<'a> {
    budget: &'a DecodeBudget,
    bytes: u64,
}

impl DecodeBudget {
    pub fn new(limit: u64) -> Self {
        Self {
            limit,
            in_use: Mutex::new(0),
            freed: Condvar::new(),
        }
    }

    pub fn limit(&self) -> u64 {
        self.limit
    }

    /// Waits until `bytes` (at most the limit) fit, and holds them.
    pub fn hold(&self, bytes: u64) -> Held<'_> {
        let bytes = bytes.min(self.limit);
        let in_use = self.in_use.lock().unwrap_or_else(PoisonError::into_inner);
        let mut in_use = self
            .freed
            .wait_while(in_use, |in_use| *in_use + bytes > self.limit)
            .unwrap_or_else(PoisonError::into_inner);
        *in_use += bytes;
        Held {
            budget: self,
            bytes,
        }
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        let mut in_use = self
            .budget
            .in_use
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        *in_use -= self.bytes;
        self.budget.freed.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, Ordering};

    use super::*;

    #[test]
    fn decodes_held_at_once_never_exceed_the_budget() {
        let budget = DecodeBudget::new(100);
        let (in_use, peak) = (AtomicU64::new(0), AtomicU64::new(0));
        std::thread::scope(|scope| {
            for need in [60, 50, 40, 30, 70, 20, 100] {
                let (budget, in_use, peak) = (&budget, &in_use, &peak);
                scope.spawn(move || {
                    let _held = budget.hold(need);
                    let now = in_use.fetch_add(need, Ordering::SeqCst) + need;
                    peak.fetch_max(now, Ordering::SeqCst);
                    std::thread::yield_now();
                    in_use.fetch_sub(need, Ordering::SeqCst);
                });
            }
        });
        assert!(peak.load(Ordering::SeqCst) <= 100);
        assert_eq!(*budget.in_use.lock().expect("lock"), 0, "all given back");
    }
}
