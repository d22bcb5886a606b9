//! Login throttling: failed attempts are counted per account and per client address in fixed
//! windows; past the limit, further attempts get 429 with Retry-After until the window ends.
//! Counting failures only means a user who types their password right is never slowed down.
//! State is per process (a scaled-out deployment limits per node).

use std::net::IpAddr;
use std::time::{Duration, Instant};

use dashmap::DashMap;

/// Beyond this many tracked keys, expired windows are swept on the next failure.
const SWEEP_ABOVE_ENTRIES: usize = 1024;

#[derive(Clone, Copy)]
struct Window {
    started: Instant,
    failures: u32,
}

pub struct LoginLimiter {
    window: Duration,
    max_per_account: u32,
    max_per_address: u32,
    windows: DashMap<String, Window>,
}

impl LoginLimiter {
    pub fn new(window: Duration, max_per_account: u32, max_per_address: u32) -> Self {
        Self { window, max_per_account, max_per_address, windows: DashMap::new() }
    }

    fn keys(account: &str, address: IpAddr) -> [(String, bool); 2] {
        [(format!("account:{account}"), true), (format!("address:{address}"), false)]
    }

    /// `Err(retry_after)` when either the account or the address has used up its attempts.
    pub fn check(&self, account: &str, address: IpAddr, now: Instant) -> Result<(), Duration> {
        let mut wait = Duration::ZERO;
        for (key, is_account) in Self::keys(account, address) {
            let max = if is_account { self.max_per_account } else { self.max_per_address };
            if let Some(window) = self.windows.get(&key) {
                let ends = window.started + self.window;
                if now < ends && window.failures >= max {
                    wait = wait.max(ends - now);
                }
            }
        }
        if wait.is_zero() {
            Ok(())
        } else {
            Err(wait)
        }
    }

    pub fn record_failure(&self, account: &str, address: IpAddr, now: Instant) {
        if self.windows.len() > SWEEP_ABOVE_ENTRIES {
            self.windows.retain(|_, w| now < w.started + self.window);
        }
        for (key, _) in Self::keys(account, address) {
            let mut entry = self.windows.entry(key).or_insert(Window { started: now, failures: 0 });
            if now >= entry.started + self.window {
                *entry = Window { started: now, failures: 0 };
            }
            entry.failures += 1;
        }
    }

    /// A successful login forgives the account's earlier failures (not the address's).
    pub fn record_success(&self, account: &str) {
        self.windows.remove(&format!("account:{account}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_after_the_limit_until_the_window_ends() {
        let limiter = LoginLimiter::new(Duration::from_secs(60), 2, 100);
        let ip: IpAddr = [127, 0, 0, 1].into();
        let t0 = Instant::now();
        assert!(limiter.check("alice", ip, t0).is_ok());
        limiter.record_failure("alice", ip, t0);
        limiter.record_failure("alice", ip, t0);
        let wait = limiter.check("alice", ip, t0 + Duration::from_secs(10)).expect_err("blocked");
        assert_eq!(wait, Duration::from_secs(50));
        assert!(limiter.check("bob", ip, t0).is_ok(), "other accounts are not blocked by alice's failures");
        assert!(limiter.check("alice", ip, t0 + Duration::from_secs(61)).is_ok());
    }

    #[test]
    fn one_address_is_limited_across_accounts() {
        let limiter = LoginLimiter::new(Duration::from_secs(60), 100, 3);
        let ip: IpAddr = [10, 0, 0, 7].into();
        let t0 = Instant::now();
        for name in ["a", "b", "c"] {
            limiter.record_failure(name, ip, t0);
        }
        assert!(limiter.check("d", ip, t0).is_err());
        assert!(limiter.check("d", [10, 0, 0, 8].into(), t0).is_ok());
    }

    #[test]
    fn success_clears_the_account_window() {
        let limiter = LoginLimiter::new(Duration::from_secs(60), 1, 100);
        let ip: IpAddr = [127, 0, 0, 1].into();
        let t0 = Instant::now();
        limiter.record_failure("alice", ip, t0);
        assert!(limiter.check("alice", ip, t0).is_err());
        limiter.record_success("alice");
        assert!(limiter.check("alice", ip, t0).is_ok());
    }
}
