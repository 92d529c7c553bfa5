//! Capped exponential backoff with jitter, the way fal's own clients retry.

use std::time::Duration;

use rand::Rng;

/// How often and how patiently a call is repeated after a transient failure.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// Attempts after the first one.
    pub max_retries: u32,
    pub base_delay: Duration,
    pub max_delay: Duration,
}

impl RetryPolicy {
    /// fal-js: 3 retries, 1 s base, doubling, capped at 30 s.
    pub const DEFAULT: Self = Self {
        max_retries: 3,
        base_delay: Duration::from_secs(1),
        max_delay: Duration::from_secs(30),
    };

    /// The pause before retry number `attempt` (1-based): base × 2^(attempt-1), capped, ±25 %.
    pub fn delay(&self, attempt: u32) -> Duration {
        let exponential = self
            .base_delay
            .saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1)));
        let capped = exponential.min(self.max_delay);
        let jitter = rand::thread_rng().gen_range(0.75..=1.25);
        capped.mul_f64(jitter)
    }
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self::DEFAULT
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_then_stop_at_the_cap_with_bounded_jitter() {
        let policy = RetryPolicy {
            max_retries: 10,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(1000),
        };
        for (attempt, nominal) in [(1, 100), (2, 200), (3, 400), (4, 800), (5, 1000), (9, 1000)] {
            let delay = policy.delay(attempt).as_secs_f64() * 1000.0;
            let nominal = f64::from(nominal);
            assert!(
                (nominal * 0.75..=nominal * 1.25).contains(&delay),
                "attempt {attempt}: {delay} ms"
            );
        }
    }
}
