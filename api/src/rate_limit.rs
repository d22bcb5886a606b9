//! Throttling of logins and sign-ups in fixed windows; past a limit, requests get 429 with
//! Retry-After until the window ends.
//!
//! An attempt is *reserved* before the password is checked: every bucket it belongs to is counted
//! up at once, under one lock, or none is when any of them is used up. So concurrent attempts can
//! never exceed a limit, however many arrive together. A successful login then refunds its attempt
//! (and forgives the account's earlier failures), so a user who types their password right is never
//! slowed down; only failures stay counted.
//!
//! Login buckets are per account (the user id when the account exists, so a username and an email
//! share one; else the lowercased name given) and per client address (IPv6 per /64, which is what
//! one subscriber usually gets). State is per process (a scaled-out deployment limits per node).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Beyond this many tracked keys, expired windows are swept on the next reservation.
const SWEEP_ABOVE_ENTRIES: usize = 1024;

#[derive(Clone, Copy)]
struct Window {
    started: Instant,
    count: u32,
}

/// Counts attempts per key in fixed windows.
pub struct RateLimiter {
    window: Duration,
    windows: Mutex<HashMap<String, Window>>,
}

/// Attempts taken by [`RateLimiter::reserve`]; give them back with [`RateLimiter::refund`].
#[must_use = "a reservation is either kept (the attempt counts) or refunded"]
pub struct Reservation {
    taken: Vec<(String, Instant)>,
}

impl RateLimiter {
    pub fn new(window: Duration) -> Self {
        Self { window, windows: Mutex::new(HashMap::new()) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Window>> {
        // The map holds only counters: one left half-updated by a panicking thread is still usable.
        self.windows.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Takes one attempt from each `(key, limit)` bucket, or, when any of them is used up, none
    /// and `Err(how long until the last blocking window ends)`. A limit of 0 blocks every attempt.
    pub fn reserve(&self, buckets: &[(String, u32)], now: Instant) -> Result<Reservation, Duration> {
        let mut windows = self.lock();
        if windows.len() > SWEEP_ABOVE_ENTRIES {
            windows.retain(|_, w| now < w.started + self.window);
        }
        let mut wait = Duration::ZERO;
        for (key, limit) in buckets {
            let current = windows.get(key).filter(|w| now < w.started + self.window);
            let (count, ends) = current.map_or((0, now + self.window), |w| (w.count, w.started + self.window));
            if count >= *limit {
                wait = wait.max(ends - now);
            }
        }
        if !wait.is_zero() {
            return Err(wait);
        }
        let mut taken = Vec::with_capacity(buckets.len());
        for (key, _) in buckets {
            let entry = windows.entry(key.clone()).or_insert(Window { started: now, count: 0 });
            if now >= entry.started + self.window {
                *entry = Window { started: now, count: 0 };
            }
            entry.count += 1;
            taken.push((key.clone(), entry.started));
        }
        Ok(Reservation { taken })
    }

    /// Gives the attempts back (to windows that are still the ones they were taken from).
    pub fn refund(&self, reservation: Reservation) {
        let mut windows = self.lock();
        for (key, started) in reservation.taken {
            if let Some(window) = windows.get_mut(&key).filter(|w| w.started == started) {
                window.count = window.count.saturating_sub(1);
            }
        }
    }

    /// Forgets a key's window altogether.
    pub fn forgive(&self, key: &str) {
        self.lock().remove(key);
    }
}

/// The address bucket of a client: IPv4 addresses one by one, IPv6 per /64 (an IPv4-mapped IPv6
/// address counts as the IPv4 address).
pub fn address_bucket(address: IpAddr) -> String {
    match address.to_canonical() {
        IpAddr::V4(v4) => format!("address:{v4}"),
        IpAddr::V6(v6) => {
            let s = v6.segments();
            format!("address:{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
    }
}

/// Whole seconds to put in Retry-After: rounded up, so a client that waits that long is let in.
pub fn retry_after_secs(wait: Duration) -> u64 {
    (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1)
}

/// Login attempts, per account and per address.
pub struct LoginLimiter {
    limiter: RateLimiter,
    max_per_account: u32,
    max_per_address: u32,
}

impl LoginLimiter {
    pub fn new(window: Duration, max_per_account: u32, max_per_address: u32) -> Self {
        Self { limiter: RateLimiter::new(window), max_per_account, max_per_address }
    }

    fn account_bucket(account: &str) -> String {
        format!("account:{account}")
    }

    /// Reserves one attempt for `account` (see the module doc for what names an account) from
    /// `address`; `Err(retry_after)` when either has used up its attempts.
    pub fn reserve(&self, account: &str, address: IpAddr, now: Instant) -> Result<Reservation, Duration> {
        let buckets = [(Self::account_bucket(account), self.max_per_account), (address_bucket(address), self.max_per_address)];
        self.limiter.reserve(&buckets, now)
    }

    /// A successful login: its attempt is given back and the account's earlier failures are
    /// forgiven (the address's stay counted).
    pub fn succeeded(&self, reservation: Reservation, account: &str) {
        self.limiter.refund(reservation);
        self.limiter.forgive(&Self::account_bucket(account));
    }
}

/// Sign-ups per address (each one costs a password hash and creates an account).
pub struct SignupLimiter {
    limiter: RateLimiter,
    max_per_address: u32,
}

impl SignupLimiter {
    pub fn new(window: Duration, max_per_address: u32) -> Self {
        Self { limiter: RateLimiter::new(window), max_per_address }
    }

    /// Counts one sign-up from `address`; `Err(retry_after)` when the address has used up its budget.
    pub fn reserve(&self, address: IpAddr, now: Instant) -> Result<(), Duration> {
        self.limiter.reserve(&[(address_bucket(address), self.max_per_address)], now).map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOCAL: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

    #[test]
    fn blocks_after_the_limit_until_the_window_ends() {
        let limiter = LoginLimiter::new(Duration::from_secs(60), 2, 100);
        let t0 = Instant::now();
        let _ = limiter.reserve("alice", LOCAL, t0).expect("first");
        let _ = limiter.reserve("alice", LOCAL, t0).expect("second");
        let wait = limiter.reserve("alice", LOCAL, t0 + Duration::from_secs(10)).err().expect("blocked");
        assert_eq!(wait, Duration::from_secs(50));
        assert!(limiter.reserve("bob", LOCAL, t0).is_ok(), "other accounts are not blocked by alice's failures");
        assert!(limiter.reserve("alice", LOCAL, t0 + Duration::from_secs(61)).is_ok());
    }

    #[test]
    fn a_blocked_attempt_takes_nothing_from_the_other_bucket() {
        let limiter = LoginLimiter::new(Duration::from_secs(60), 1, 2);
        let t0 = Instant::now();
        let _ = limiter.reserve("alice", LOCAL, t0).expect("alice");
        for _ in 0..5 {
            assert!(limiter.reserve("alice", LOCAL, t0).is_err(), "alice is used up");
        }
        assert!(limiter.reserve("bob", LOCAL, t0).is_ok(), "the refused attempts did not count against the address");
    }

    #[test]
    fn concurrent_attempts_never_exceed_the_limit() {
        let limiter = LoginLimiter::new(Duration::from_secs(60), 3, 100);
        let t0 = Instant::now();
        let start = std::sync::Barrier::new(16);
        let granted = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..16)
                .map(|_| {
                    scope.spawn(|| {
                        start.wait();
                        limiter.reserve("alice", LOCAL, t0).is_ok()
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().expect("thread")).filter(|ok| *ok).count()
        });
        assert_eq!(granted, 3);
    }

    #[test]
    fn one_address_is_limited_across_accounts_and_ipv6_per_64() {
        let limiter = LoginLimiter::new(Duration::from_secs(60), 100, 3);
        let t0 = Instant::now();
        let ip: IpAddr = [10, 0, 0, 7].into();
        for name in ["a", "b", "c"] {
            let _ = limiter.reserve(name, ip, t0).expect("under the limit");
        }
        assert!(limiter.reserve("d", ip, t0).is_err());
        assert!(limiter.reserve("d", [10, 0, 0, 8].into(), t0).is_ok());

        let v6 = |s: &str| -> IpAddr { s.parse().expect("address") };
        for host in ["2001:db8:1:2::1", "2001:db8:1:2::2", "2001:db8:1:2:ffff::9"] {
            let _ = limiter.reserve("e", v6(host), t0).expect("under the limit");
        }
        assert!(limiter.reserve("e", v6("2001:db8:1:2:abcd::1"), t0).is_err(), "the same /64");
        assert!(limiter.reserve("e", v6("2001:db8:1:3::1"), t0).is_ok(), "another /64");
        assert_eq!(address_bucket(v6("::ffff:10.0.0.7")), address_bucket(ip), "IPv4-mapped is IPv4");
    }

    #[test]
    fn success_refunds_and_forgives_the_account() {
        let limiter = LoginLimiter::new(Duration::from_secs(60), 2, 3);
        let t0 = Instant::now();
        let _ = limiter.reserve("alice", LOCAL, t0).expect("a failure");
        let attempt = limiter.reserve("alice", LOCAL, t0).expect("the right password");
        limiter.succeeded(attempt, "alice");
        let _ = limiter.reserve("alice", LOCAL, t0).expect("forgiven");
        let _ = limiter.reserve("alice", LOCAL, t0).expect("forgiven");
        // The address saw one failure, one refunded success and two more attempts: 3 of 3.
        assert!(limiter.reserve("bob", LOCAL, t0).is_err());
    }

    #[test]
    fn retry_after_is_rounded_up() {
        assert_eq!(retry_after_secs(Duration::from_millis(1500)), 2);
        assert_eq!(retry_after_secs(Duration::from_secs(3)), 3);
        assert_eq!(retry_after_secs(Duration::from_millis(1)), 1);
    }

    #[test]
    fn signups_are_limited_per_address() {
        let limiter = SignupLimiter::new(Duration::from_secs(60), 2);
        let t0 = Instant::now();
        assert!(limiter.reserve(LOCAL, t0).is_ok());
        assert!(limiter.reserve(LOCAL, t0).is_ok());
        assert!(limiter.reserve(LOCAL, t0).is_err());
        assert!(limiter.reserve([10, 0, 0, 1].into(), t0).is_ok());
    }
}
