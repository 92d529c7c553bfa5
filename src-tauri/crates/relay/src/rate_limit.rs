//! Requests per client, as token buckets: each client may send a minute's allowance at once,
//! and the allowance refills evenly over the minute.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

pub struct RateLimiter {
    per_minute: u32,
    buckets: Mutex<HashMap<IpAddr, Bucket>>,
}

struct Bucket {
    tokens: f64,
    updated: Instant,
}

impl RateLimiter {
    /// `per_minute` 0 lets everything through.
    pub fn new(per_minute: u32) -> Self {
        Self {
            per_minute,
            buckets: Mutex::default(),
        }
    }

    /// Takes one request from `client`'s allowance, or says how long until there is one.
    pub fn admit(&self, client: IpAddr, now: Instant) -> Result<(), Duration> {
        if self.per_minute == 0 {
            return Ok(());
        }
        let capacity = f64::from(self.per_minute);
        let mut buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        let bucket = buckets.entry(client_key(client)).or_insert(Bucket {
            tokens: capacity,
            updated: now,
        });
        let refilled =
            now.saturating_duration_since(bucket.updated).as_secs_f64() * self.per_second();
        bucket.tokens = (bucket.tokens + refilled).min(capacity);
        bucket.updated = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64(
                (1.0 - bucket.tokens) / self.per_second(),
            ))
        }
    }

    /// Forgets clients whose allowance has refilled: they are as if never seen.
    pub fn forget_idle(&self, now: Instant) {
        let capacity = f64::from(self.per_minute);
        let per_second = self.per_second();
        self.buckets
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|_, bucket| {
                let idle = now.saturating_duration_since(bucket.updated).as_secs_f64();
                bucket.tokens + idle * per_second < capacity
            });
    }

    fn per_second(&self) -> f64 {
        f64::from(self.per_minute) / 60.0
    }
}

/// IPv6 clients are limited per /64: one host usually holds a whole /64 and could otherwise
/// take a fresh address for every request.
fn client_key(client: IpAddr) -> IpAddr {
    match client {
        IpAddr::V4(_) => client,
        IpAddr::V6(address) => {
            let segments = address.segments();
            IpAddr::from([
                segments[0],
                segments[1],
                segments[2],
                segments[3],
                0,
                0,
                0,
                0,
            ])
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CLIENT: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(203, 0, 113, 7));

    #[test]
    fn a_burst_of_a_minutes_allowance_passes_then_waits_for_the_refill() {
        let limiter = RateLimiter::new(60);
        let start = Instant::now();
        for _ in 0..60 {
            assert!(limiter.admit(CLIENT, start).is_ok());
        }
        let wait = limiter.admit(CLIENT, start).unwrap_err();
        assert_eq!(
            wait,
            Duration::from_secs(1),
            "60 a minute refill one a second"
        );
        assert!(
            limiter
                .admit(CLIENT, start + Duration::from_secs(1))
                .is_ok()
        );
        assert!(
            limiter
                .admit(IpAddr::from([198, 51, 100, 1]), start)
                .is_ok(),
            "another client has its own allowance"
        );
    }

    #[test]
    fn addresses_of_one_ipv6_network_share_an_allowance() {
        let limiter = RateLimiter::new(1);
        let now = Instant::now();
        let first: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let neighbour: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        assert!(limiter.admit(first, now).is_ok());
        assert!(limiter.admit(neighbour, now).is_err());
    }

    #[test]
    fn refilled_clients_are_forgotten() {
        let limiter = RateLimiter::new(60);
        let start = Instant::now();
        limiter.admit(CLIENT, start).unwrap();
        limiter.forget_idle(start);
        assert_eq!(limiter.buckets.lock().unwrap().len(), 1);
        limiter.forget_idle(start + Duration::from_secs(2));
        assert!(limiter.buckets.lock().unwrap().is_empty());
    }

    #[test]
    fn zero_means_unlimited() {
        let limiter = RateLimiter::new(0);
        let now = Instant::now();
        assert!((0..10_000).all(|_| limiter.admit(CLIENT, now).is_ok()));
    }
}
