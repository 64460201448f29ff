//! Brute-force protection for password logins.
//!
//! Failed logins are counted per username and per source address (an IPv6 client by its /64:
//! one host usually owns the whole prefix). From `delay_after` failures on, each further failure
//! is answered later and later (250 ms, doubling, at most 4 s: the connection holds its slot
//! meanwhile, so a guesser gets few tries per connection slot). At `user_limit` failures for a
//! username, or `address_limit` from an address, that username or address is refused outright
//! for `time`, without the password being checked. Attempts while it is locked are not counted,
//! so the lock always ends `time` after it started: a device with the right password gets in
//! then (there is no permanent lockout, which an attacker could otherwise inflict on purpose).
//! A count is forgotten `time` after its last failure; a successful login clears its
//! username's count.
//!
//! Memory is bounded: each table holds at most `capacity` records, keyed by a keyed 64-bit hash
//! (never the username itself, which may be 64 KiB long); when full, expired records go first,
//! then the least recently failed tenth.

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::config::model::ThrottleSettings;

/// Records per table before the oldest are dropped.
pub const DEFAULT_CAPACITY: usize = 100_000;
const FIRST_DELAY: Duration = Duration::from_millis(250);
const MAX_DELAY: Duration = Duration::from_secs(4);

/// What is locked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Locked {
    User,
    Address,
}

impl Locked {
    pub fn as_str(self) -> &'static str {
        match self {
            Locked::User => "too many failed logins for this username",
            Locked::Address => "too many failed logins from this address",
        }
    }
}

/// The outcome of recording a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Failure {
    /// How long to wait before answering.
    pub delay: Duration,
    /// Set when this failure started a lock.
    pub locked: Option<Locked>,
}

#[derive(Debug, Clone, Copy)]
struct Record {
    failures: u32,
    last: Instant,
    locked_until: Option<Instant>,
}

struct Table {
    map: HashMap<u64, Record>,
    capacity: usize,
}

impl Table {
    fn new(capacity: usize) -> Table {
        Table {
            map: HashMap::new(),
            capacity: capacity.max(1),
        }
    }

    /// The live record for `key`: an expired or finished one is dropped first.
    fn live(&mut self, key: u64, now: Instant, time: Duration) -> Option<&mut Record> {
        let expired = self.map.get(&key).is_some_and(|r| stale(r, now, time));
        if expired {
            self.map.remove(&key);
        }
        self.map.get_mut(&key)
    }

    fn locked(&mut self, key: u64, now: Instant, time: Duration) -> bool {
        self.live(key, now, time)
            .is_some_and(|r| r.locked_until.is_some_and(|t| now < t))
    }

    /// Count a failure; returns the count and whether a lock started.
    fn fail(&mut self, key: u64, now: Instant, s: &ThrottleSettings, limit: u32) -> (u32, bool) {
        if self.live(key, now, s.time).is_none() {
            self.make_room(now, s.time);
            self.map.insert(
                key,
                Record {
                    failures: 0,
                    last: now,
                    locked_until: None,
                },
            );
        }
        let Some(r) = self.map.get_mut(&key) else {
            return (0, false);
        };
        r.failures = r.failures.saturating_add(1);
        r.last = now;
        let lock = limit > 0 && r.failures >= limit && r.locked_until.is_none();
        if lock {
            r.locked_until = now.checked_add(s.time);
        }
        (r.failures, lock)
    }

    fn make_room(&mut self, now: Instant, time: Duration) {
        if self.map.len() < self.capacity {
            return;
        }
        self.map.retain(|_, r| !stale(r, now, time));
        if self.map.len() < self.capacity {
            return;
        }
        let mut ages: Vec<(Instant, u64)> = self.map.iter().map(|(k, r)| (r.last, *k)).collect();
        let drop_n = (self.capacity / 10).max(1).min(ages.len());
        ages.select_nth_unstable(drop_n - 1);
        for (_, k) in &ages[..drop_n] {
            self.map.remove(k);
        }
    }
}

/// Forgotten: its lock has ended, or (never locked) its last failure is `time` old.
fn stale(r: &Record, now: Instant, time: Duration) -> bool {
    match r.locked_until {
        Some(t) => now >= t,
        None => now.saturating_duration_since(r.last) >= time,
    }
}

/// The failure counters of one broker.
pub struct Throttle {
    settings: ThrottleSettings,
    keys: RandomState,
    users: Mutex<Table>,
    addresses: Mutex<Table>,
}

impl std::fmt::Debug for Throttle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Throttle")
            .field("settings", &self.settings)
            .finish()
    }
}

impl Throttle {
    pub fn new(settings: ThrottleSettings, capacity: usize) -> Throttle {
        Throttle {
            settings,
            keys: RandomState::new(),
            users: Mutex::new(Table::new(capacity)),
            addresses: Mutex::new(Table::new(capacity)),
        }
    }

    fn user_key(&self, user: &str) -> u64 {
        self.keys.hash_one(("user", user))
    }

    fn address_key(&self, ip: IpAddr) -> u64 {
        match ip.to_canonical() {
            IpAddr::V4(v4) => self.keys.hash_one(("v4", v4.octets())),
            IpAddr::V6(v6) => {
                let o = v6.octets();
                let mut prefix = [0u8; 8];
                prefix.copy_from_slice(&o[..8]);
                self.keys.hash_one(("v6/64", prefix))
            }
        }
    }

    /// Before checking a password: is this username or address locked? Without an address
    /// (`auth-server` asked by a broker that does not pass the device's), only the username
    /// counts: the broker's own address must never be locked for its devices' failures.
    pub fn check(
        &self,
        user: &str,
        ip: impl Into<Option<IpAddr>>,
        now: Instant,
    ) -> Result<(), Locked> {
        let ip = ip.into();
        let t = self.settings.time;
        if self.settings.user_limit > 0 && self.users.lock().locked(self.user_key(user), now, t) {
            return Err(Locked::User);
        }
        if let Some(ip) = ip.filter(|_| self.settings.address_limit > 0) {
            if self.addresses.lock().locked(self.address_key(ip), now, t) {
                return Err(Locked::Address);
            }
        }
        Ok(())
    }

    /// After a wrong password or an unknown username.
    pub fn failure(&self, user: &str, ip: impl Into<Option<IpAddr>>, now: Instant) -> Failure {
        let s = &self.settings;
        let (nu, lock_u) = self
            .users
            .lock()
            .fail(self.user_key(user), now, s, s.user_limit);
        let (na, lock_a) = match ip.into() {
            Some(ip) => self
                .addresses
                .lock()
                .fail(self.address_key(ip), now, s, s.address_limit),
            None => (0, false),
        };
        let n = nu.max(na);
        let delay = if s.delay_after > 0 && n >= s.delay_after {
            let steps = (n - s.delay_after).min(16);
            FIRST_DELAY.saturating_mul(1 << steps).min(MAX_DELAY)
        } else {
            Duration::ZERO
        };
        let locked = if lock_u {
            Some(Locked::User)
        } else if lock_a {
            Some(Locked::Address)
        } else {
            None
        };
        Failure { delay, locked }
    }

    /// After a successful login: the username starts afresh (its address count stays: one good
    /// account must not reset the count of an address that guesses others).
    pub fn success(&self, user: &str) {
        self.users.lock().map.remove(&self.user_key(user));
    }

    /// Records held (users, addresses).
    pub fn len(&self) -> (usize, usize) {
        (self.users.lock().map.len(), self.addresses.lock().map.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == (0, 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn settings() -> ThrottleSettings {
        ThrottleSettings {
            delay_after: 2,
            user_limit: 4,
            address_limit: 6,
            time: Duration::from_secs(60),
        }
    }

    const A: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
    const B: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2));

    #[test]
    fn delays_then_locks_the_username_then_lets_it_in_after_the_window() {
        let th = Throttle::new(settings(), 100);
        let t0 = Instant::now();
        let delays: Vec<Duration> = (0..3).map(|_| th.failure("u", A, t0).delay).collect();
        assert_eq!(
            delays,
            [Duration::ZERO, FIRST_DELAY, FIRST_DELAY * 2],
            "slowed from the second failure on"
        );
        assert_eq!(th.check("u", B, t0), Ok(()));
        let f = th.failure("u", B, t0);
        assert_eq!(f.locked, Some(Locked::User));
        // Locked from any address, even with the right password (check comes first) ...
        assert_eq!(th.check("u", B, t0), Err(Locked::User));
        // ... and other users from the same addresses are not.
        assert_eq!(th.check("v", A, t0), Ok(()));
        // Attempts while locked are refused before any check, so they cannot extend the lock.
        let t1 = t0 + Duration::from_secs(59);
        assert_eq!(th.check("u", A, t1), Err(Locked::User));
        let t2 = t0 + Duration::from_secs(60);
        assert_eq!(th.check("u", A, t2), Ok(()));
        // After the lock the count starts again from zero.
        assert_eq!(th.failure("u", A, t2).delay, Duration::ZERO);
    }

    #[test]
    fn the_address_is_locked_across_usernames_and_ipv6_by_prefix() {
        let th = Throttle::new(settings(), 100);
        let t = Instant::now();
        let mut locked = None;
        for i in 0..6 {
            locked = locked.or(th.failure(&format!("user{i}"), A, t).locked);
        }
        assert_eq!(locked, Some(Locked::Address));
        assert_eq!(th.check("someone-else", A, t), Err(Locked::Address));
        assert_eq!(th.check("someone-else", B, t), Ok(()));
        // An IPv4-mapped IPv6 address is the IPv4 address.
        let mapped = IpAddr::V6(Ipv4Addr::new(192, 0, 2, 1).to_ipv6_mapped());
        assert_eq!(th.check("x", mapped, t), Err(Locked::Address));
        // Addresses in one /64 share a count.
        let th = Throttle::new(settings(), 100);
        for i in 0..6u16 {
            let ip = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 1, 0, 0, 0, i));
            th.failure(&format!("u{i}"), ip, t);
        }
        let same_64 = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 1, 9, 9, 9, 9));
        let other_64 = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 2, 0, 0, 0, 1));
        assert_eq!(th.check("n", same_64, t), Err(Locked::Address));
        assert_eq!(th.check("n", other_64, t), Ok(()));
    }

    #[test]
    fn success_clears_the_username_and_counts_expire() {
        let th = Throttle::new(settings(), 100);
        let t = Instant::now();
        for _ in 0..3 {
            th.failure("u", A, t);
        }
        th.success("u");
        assert_eq!(th.failure("u", B, t).delay, Duration::ZERO);
        let later = t + Duration::from_secs(61);
        // The address A count (3) expired a window after its last failure.
        assert_eq!(th.failure("w", A, later).delay, Duration::ZERO);
    }

    #[test]
    fn zero_disables_each_part() {
        let th = Throttle::new(
            ThrottleSettings {
                delay_after: 0,
                user_limit: 0,
                address_limit: 0,
                time: Duration::from_secs(60),
            },
            100,
        );
        let t = Instant::now();
        for _ in 0..100 {
            let f = th.failure("u", A, t);
            assert_eq!((f.delay, f.locked), (Duration::ZERO, None));
        }
        assert_eq!(th.check("u", A, t), Ok(()));
    }

    #[test]
    fn memory_is_bounded() {
        let th = Throttle::new(settings(), 50);
        let t = Instant::now();
        for i in 0..1000u32 {
            let ip = IpAddr::V4(Ipv4Addr::from(i));
            th.failure(
                &format!("user-{i}"),
                ip,
                t + Duration::from_millis(u64::from(i)),
            );
        }
        let (u, a) = th.len();
        assert!(u <= 50 && a <= 50, "{u} {a}");
        // The most recent ones survive the evictions.
        let last = IpAddr::V4(Ipv4Addr::from(999u32));
        assert_eq!(
            th.failure("user-999", last, t + Duration::from_secs(1))
                .delay,
            FIRST_DELAY
        );
    }
}
