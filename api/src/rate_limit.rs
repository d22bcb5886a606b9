//! Throttling of logins and sign-ups in fixed windows; past a limit, requests get 429 with
//! Retry-After until the window ends.
//!
//! An attempt is *reserved* before the password is checked: every bucket it belongs to is counted
//! up at once, under one lock, or none is when any of them is used up. So concurrent attempts can
//! never exceed a limit, however many arrive together. A successful login then refunds its attempt
//! (and forgives the account's earlier failures), so a user who types their password right is never
//! slowed down; only failures stay counted.
//!
//! Login buckets (see [`LoginLimiter`]) are the client address (IPv6 per /64, which is what one
//! subscriber usually gets), the account name *from* that address, and the account name overall
//! with a much higher ceiling. So an attacker guessing one account's password is stopped at his
//! own address after a few tries while the owner, elsewhere, still logs in; only an attack from
//! many addresses at once reaches the account's ceiling. The account is the name as typed
//! (lowercased), never the user id: a 429 must not tell which e-mail belongs to which username.
//!
//! Memory is bounded: keys are stored as 64-bit keyed hashes (a megabyte-long name costs what a
//! short one does), and past `max_entries` the expired windows are swept, then the oldest tenth
//! dropped. State is per process (a scaled-out deployment limits per node).

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Clone, Copy)]
struct Window {
    started: Instant,
    count: u32,
}

/// Counts attempts per key in fixed windows.
pub struct RateLimiter {
    window: Duration,
    max_entries: usize,
    /// Keyed with a per-process random key, so no one can aim two names at one bucket.
    hasher: RandomState,
    windows: Mutex<HashMap<u64, Window>>,
}

/// Attempts taken by [`RateLimiter::reserve`]; give them back with [`RateLimiter::refund`].
#[must_use = "a reservation is either kept (the attempt counts) or refunded"]
pub struct Reservation {
    taken: Vec<(u64, Instant)>,
}

impl RateLimiter {
    pub fn new(window: Duration, max_entries: usize) -> Self {
        Self { window, max_entries: max_entries.max(16), hasher: RandomState::new(), windows: Mutex::new(HashMap::new()) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Window>> {
        // The map holds only counters: one left half-updated by a panicking thread is still usable.
        self.windows.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn key(&self, bucket: &str) -> u64 {
        self.hasher.hash_one(bucket)
    }

    /// Makes room for new keys once `max_entries` are tracked: expired windows go first, then, if
    /// that is not enough, the oldest tenth (a window that old has done most of its work).
    fn make_room(&self, windows: &mut HashMap<u64, Window>, now: Instant) {
        if windows.len() < self.max_entries {
            return;
        }
        windows.retain(|_, w| now < w.started + self.window);
        if windows.len() < self.max_entries {
            return;
        }
        let mut starts: Vec<Instant> = windows.values().map(|w| w.started).collect();
        let cut = starts.len() / 10;
        let (_, oldest_kept, _) = starts.select_nth_unstable(cut);
        let oldest_kept = *oldest_kept;
        windows.retain(|_, w| w.started >= oldest_kept);
        tracing::warn!(entries = windows.len(), "rate limiter full: dropped its oldest windows");
    }

    /// Takes one attempt from each `(bucket, limit)`, or, when any of them is used up, none
    /// and `Err(how long until the last blocking window ends)`. A limit of 0 blocks every attempt.
    pub fn reserve(&self, buckets: &[(String, u32)], now: Instant) -> Result<Reservation, Duration> {
        let keys: Vec<(u64, u32)> = buckets.iter().map(|(bucket, limit)| (self.key(bucket), *limit)).collect();
        let mut windows = self.lock();
        let mut wait = Duration::ZERO;
        for (key, limit) in &keys {
            let current = windows.get(key).filter(|w| now < w.started + self.window);
            let (count, ends) = current.map_or((0, now + self.window), |w| (w.count, w.started + self.window));
            if count >= *limit {
                wait = wait.max(ends - now);
            }
        }
        if !wait.is_zero() {
            return Err(wait);
        }
        self.make_room(&mut windows, now);
        let mut taken = Vec::with_capacity(keys.len());
        for (key, _) in keys {
            let entry = windows.entry(key).or_insert(Window { started: now, count: 0 });
            if now >= entry.started + self.window {
                *entry = Window { started: now, count: 0 };
            }
            entry.count += 1;
            taken.push((key, entry.started));
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

    /// Forgets a bucket's window altogether.
    pub fn forgive(&self, bucket: &str) {
        let key = self.key(bucket);
        self.lock().remove(&key);
    }

    #[cfg(test)]
    fn entries(&self) -> usize {
        self.lock().len()
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

/// How many failed logins each bucket allows per window.
#[derive(Clone, Copy, Debug)]
pub struct LoginLimits {
    /// Failures for one account from one address: the guesser is stopped here.
    pub per_account_and_address: u32,
    /// Failures for one account from everywhere: the ceiling for attacks from many addresses.
    pub per_account: u32,
    /// Failures from one address, whatever the account.
    pub per_address: u32,
}

/// Login attempts; see the module doc for the buckets.
pub struct LoginLimiter {
    limiter: RateLimiter,
    limits: LoginLimits,
}

impl LoginLimiter {
    pub fn new(window: Duration, limits: LoginLimits, max_entries: usize) -> Self {
        Self { limiter: RateLimiter::new(window, max_entries), limits }
    }

    fn account_buckets(account: &str, address: IpAddr) -> [String; 2] {
        [format!("account:{account}"), format!("account:{account}|{}", address_bucket(address))]
    }

    /// Reserves one attempt for the account named `account` (lowercased as typed) from `address`;
    /// `Err(retry_after)` when any bucket has used up its attempts.
    pub fn reserve(&self, account: &str, address: IpAddr, now: Instant) -> Result<Reservation, Duration> {
        let [overall, from_address] = Self::account_buckets(account, address);
        let buckets = [
            (overall, self.limits.per_account),
            (from_address, self.limits.per_account_and_address),
            (address_bucket(address), self.limits.per_address),
        ];
        self.limiter.reserve(&buckets, now)
    }

    /// Reserves an attempt that cannot name any account (a name longer than any we accept): it
    /// counts against the address alone, and nothing of the name is kept.
    pub fn reserve_address_only(&self, address: IpAddr, now: Instant) -> Result<Reservation, Duration> {
        self.limiter.reserve(&[(address_bucket(address), self.limits.per_address)], now)
    }

    /// A successful login: its attempt is given back and the account's earlier failures are
    /// forgiven (the address's stay counted).
    pub fn succeeded(&self, reservation: Reservation, account: &str, address: IpAddr) {
        self.limiter.refund(reservation);
        for bucket in Self::account_buckets(account, address) {
            self.limiter.forgive(&bucket);
        }
    }
}

/// Sign-ups per address (each one costs a password hash and creates an account).
pub struct SignupLimiter {
    limiter: RateLimiter,
    max_per_address: u32,
}

impl SignupLimiter {
    pub fn new(window: Duration, max_per_address: u32, max_entries: usize) -> Self {
        Self { limiter: RateLimiter::new(window, max_entries), max_per_address }
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
    const ELSEWHERE: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 9, 9, 9));

    fn limiter(per_account_and_address: u32, per_account: u32, per_address: u32) -> LoginLimiter {
        LoginLimiter::new(Duration::from_secs(60), LoginLimits { per_account_and_address, per_account, per_address }, 1000)
    }

    #[test]
    fn blocks_after_the_limit_until_the_window_ends() {
        let limiter = limiter(2, 100, 100);
        let t0 = Instant::now();
        let _ = limiter.reserve("alice", LOCAL, t0).expect("first");
        let _ = limiter.reserve("alice", LOCAL, t0).expect("second");
        let wait = limiter.reserve("alice", LOCAL, t0 + Duration::from_secs(10)).err().expect("blocked");
        assert_eq!(wait, Duration::from_secs(50));
        assert!(limiter.reserve("bob", LOCAL, t0).is_ok(), "other accounts are not blocked by alice's failures");
        assert!(limiter.reserve("alice", LOCAL, t0 + Duration::from_secs(61)).is_ok());
    }

    #[test]
    fn a_guesser_is_stopped_at_his_address_not_the_owner_at_hers() {
        let limiter = limiter(5, 12, 100);
        let t0 = Instant::now();
        for _ in 0..5 {
            let _ = limiter.reserve("alice", ELSEWHERE, t0).expect("under the limit");
        }
        assert!(limiter.reserve("alice", ELSEWHERE, t0).is_err(), "the guesser is throttled");
        let owner = limiter.reserve("alice", LOCAL, t0).expect("the owner still gets to try");
        limiter.succeeded(owner, "alice", LOCAL);
        // Many addresses together reach the account's ceiling.
        let mut granted = 0;
        for host in 1..=20u8 {
            granted += usize::from(limiter.reserve("bob", [10, 1, 1, host].into(), t0).is_ok());
        }
        assert_eq!(granted, 12);
    }

    #[test]
    fn a_blocked_attempt_takes_nothing_from_the_other_buckets() {
        let limiter = limiter(1, 100, 2);
        let t0 = Instant::now();
        let _ = limiter.reserve("alice", LOCAL, t0).expect("alice");
        for _ in 0..5 {
            assert!(limiter.reserve("alice", LOCAL, t0).is_err(), "alice is used up");
        }
        assert!(limiter.reserve("bob", LOCAL, t0).is_ok(), "the refused attempts did not count against the address");
    }

    #[test]
    fn concurrent_attempts_never_exceed_the_limit() {
        let limiter = limiter(3, 100, 100);
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
        let limiter = limiter(100, 100, 3);
        let t0 = Instant::now();
        let ip: IpAddr = [10, 0, 0, 7].into();
        for name in ["a", "b", "c"] {
            let _ = limiter.reserve(name, ip, t0).expect("under the limit");
        }
        assert!(limiter.reserve("d", ip, t0).is_err());
        assert!(limiter.reserve_address_only(ip, t0).is_err(), "nameless attempts count against the address too");
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
        let limiter = limiter(2, 100, 3);
        let t0 = Instant::now();
        let _ = limiter.reserve("alice", LOCAL, t0).expect("a failure");
        let attempt = limiter.reserve("alice", LOCAL, t0).expect("the right password");
        limiter.succeeded(attempt, "alice", LOCAL);
        let _ = limiter.reserve("alice", LOCAL, t0).expect("forgiven");
        let _ = limiter.reserve("alice", LOCAL, t0).expect("forgiven");
        // The address saw one failure, one refunded success and two more attempts: 3 of 3.
        assert!(limiter.reserve("bob", LOCAL, t0).is_err());
    }

    #[test]
    fn memory_stays_bounded_whatever_the_names() {
        let limiter = RateLimiter::new(Duration::from_secs(60), 100);
        let t0 = Instant::now();
        let huge = "x".repeat(1 << 20);
        for i in 0..1000u32 {
            let _ = limiter.reserve(&[(format!("{huge}{i}"), 5)], t0 + Duration::from_millis(u64::from(i)));
        }
        assert!(limiter.entries() <= 100, "{} entries", limiter.entries());
        // The newest windows survive the eviction: the last name is still counted.
        let last = format!("{huge}999");
        for _ in 0..4 {
            let _ = limiter.reserve(&[(last.clone(), 5)], t0 + Duration::from_secs(1)).expect("under the limit");
        }
        assert!(limiter.reserve(&[(last, 5)], t0 + Duration::from_secs(1)).is_err());
    }

    #[test]
    fn retry_after_is_rounded_up() {
        assert_eq!(retry_after_secs(Duration::from_millis(1500)), 2);
        assert_eq!(retry_after_secs(Duration::from_secs(3)), 3);
        assert_eq!(retry_after_secs(Duration::from_millis(1)), 1);
    }

    #[test]
    fn signups_are_limited_per_address() {
        let limiter = SignupLimiter::new(Duration::from_secs(60), 2, 1000);
        let t0 = Instant::now();
        assert!(limiter.reserve(LOCAL, t0).is_ok());
        assert!(limiter.reserve(LOCAL, t0).is_ok());
        assert!(limiter.reserve(LOCAL, t0).is_err());
        assert!(limiter.reserve([10, 0, 0, 1].into(), t0).is_ok());
    }
}
