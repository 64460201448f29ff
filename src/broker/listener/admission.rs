//! Admission at accept time, before a connection costs a handshake: the process's
//! file-descriptor budget (the default `max_connections`) and the per-source-address connection
//! rate (`connection_rate_limit`).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::OnceLock;
use std::time::Instant;

use crate::config::model::RateLimit;

/// Descriptors kept back from connections: listeners, the store, log and config files, the
/// runtime's own (epoll, eventfd), and some headroom for a reload.
const RESERVED_FDS: usize = 64;
/// The budget when the limit cannot be read (not Linux, or /proc not mounted): the common
/// default soft limit of 1024, minus the reserve.
const FALLBACK_FDS: usize = 1024;

/// How many connections the process can hold at once: the soft RLIMIT_NOFILE minus a reserve.
/// Read once from /proc/self/limits (std has no getrlimit, and the product crate does not link
/// libc for it). Raising the limit (`ulimit -n`, systemd `LimitNOFILE=`) raises the budget.
pub fn fd_budget() -> usize {
    static BUDGET: OnceLock<usize> = OnceLock::new();
    *BUDGET.get_or_init(|| {
        let soft = std::fs::read_to_string("/proc/self/limits")
            .ok()
            .and_then(|t| soft_nofile(&t))
            .unwrap_or(FALLBACK_FDS);
        soft.saturating_sub(RESERVED_FDS).max(16)
    })
}

/// The soft "Max open files" value of a /proc/<pid>/limits text ("unlimited": no cap the
/// kernel would enforce, so a large one that still keeps counters sane).
fn soft_nofile(limits: &str) -> Option<usize> {
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    let soft = line["Max open files".len()..].split_whitespace().next()?;
    if soft == "unlimited" {
        return Some(1 << 24);
    }
    soft.parse().ok()
}

/// Entries kept at most; beyond this, idle ones are dropped first (see `admit`).
const MAX_TRACKED: usize = 65_536;

/// Where connections come from, for rate limiting: an IPv4 address, or an IPv6 /64 (one host
/// usually holds a whole /64, so counting single IPv6 addresses would count nothing).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Source {
    V4(u32),
    V6(u64),
}

impl Source {
    fn of(ip: IpAddr) -> Source {
        match ip {
            IpAddr::V4(v4) => Source::V4(u32::from(v4)),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Source::V4(u32::from(v4)),
                None => Source::V6((u128::from(v6) >> 64) as u64),
            },
        }
    }
}

struct Bucket {
    tokens: f64,
    last: Instant,
    /// Set while refusing, so a flood from one source logs one line, not one per connection.
    refusing: bool,
}

/// A token bucket per source. Owned by one accept loop, so it needs no lock.
pub struct RateLimiter {
    rate: f64,
    burst: f64,
    buckets: HashMap<Source, Bucket>,
    /// Logged once when the table is full of active sources (then new sources pass unlimited).
    full_logged: bool,
}

/// What the accept loop does with a new connection.
#[derive(Debug, PartialEq, Eq)]
pub enum Admit {
    Yes,
    /// Over the rate; `first` is true for the first refusal of a run (log it).
    No {
        first: bool,
    },
}

impl RateLimiter {
    pub fn new(limit: RateLimit) -> RateLimiter {
        RateLimiter {
            rate: f64::from(limit.per_second),
            burst: f64::from(limit.burst.max(1)),
            buckets: HashMap::new(),
            full_logged: false,
        }
    }

    /// Take one token for `ip` at `now`.
    pub fn admit(&mut self, ip: IpAddr, now: Instant) -> Admit {
        let src = Source::of(ip);
        if !self.buckets.contains_key(&src) && self.buckets.len() >= MAX_TRACKED {
            self.forget_idle(now);
            if self.buckets.len() >= MAX_TRACKED {
                // As many active sources as the table holds: a distributed flood that per-source
                // limits cannot stop anyway; `max_connections` still bounds what it can hold.
                if !self.full_logged {
                    self.full_logged = true;
                    tracing::warn!(
                        sources = MAX_TRACKED,
                        "connection_rate_limit: too many active sources to track; new sources pass unlimited"
                    );
                }
                return Admit::Yes;
            }
            self.full_logged = false;
        }
        let (rate, burst) = (self.rate, self.burst);
        let b = self.buckets.entry(src).or_insert(Bucket {
            tokens: burst,
            last: now,
            refusing: false,
        });
        let elapsed = now.saturating_duration_since(b.last).as_secs_f64();
        b.tokens = (b.tokens + elapsed * rate).min(burst);
        b.last = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            b.refusing = false;
            Admit::Yes
        } else {
            let first = !b.refusing;
            b.refusing = true;
            Admit::No { first }
        }
    }

    /// Drop sources whose bucket has refilled: they carry no state a new bucket would not.
    fn forget_idle(&mut self, now: Instant) {
        let (rate, burst) = (self.rate, self.burst);
        self.buckets.retain(|_, b| {
            let elapsed = now.saturating_duration_since(b.last).as_secs_f64();
            b.tokens + elapsed * rate < burst
        });
    }

    #[cfg(test)]
    fn tracked(&self) -> usize {
        self.buckets.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};
    use std::time::Duration;

    #[test]
    fn reads_the_soft_limit() {
        let t = "Limit                     Soft Limit           Hard Limit           Units     \n\
                 Max open files            1024                 524288               files     \n";
        assert_eq!(soft_nofile(t), Some(1024));
        let t = "Max open files            unlimited            unlimited            files\n";
        assert_eq!(soft_nofile(t), Some(1 << 24));
        assert_eq!(soft_nofile("Max processes 5 5\n"), None);
        assert!(fd_budget() >= 16);
    }

    #[test]
    fn bursts_then_refills_per_source() {
        let mut r = RateLimiter::new(RateLimit {
            per_second: 2,
            burst: 3,
        });
        let a = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
        let b = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2));
        let t0 = Instant::now();
        for _ in 0..3 {
            assert_eq!(r.admit(a, t0), Admit::Yes);
        }
        assert_eq!(r.admit(a, t0), Admit::No { first: true });
        assert_eq!(r.admit(a, t0), Admit::No { first: false });
        // Another source is not affected.
        assert_eq!(r.admit(b, t0), Admit::Yes);
        // Half a second at 2/s gives one token back.
        let t1 = t0 + Duration::from_millis(500);
        assert_eq!(r.admit(a, t1), Admit::Yes);
        assert_eq!(r.admit(a, t1), Admit::No { first: true });
    }

    #[test]
    fn ipv6_counts_per_64_and_mapped_v4_as_v4() {
        let mut r = RateLimiter::new(RateLimit {
            per_second: 1,
            burst: 1,
        });
        let t = Instant::now();
        let x: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let y: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let z: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(r.admit(x, t), Admit::Yes);
        assert_eq!(r.admit(y, t), Admit::No { first: true });
        assert_eq!(r.admit(z, t), Admit::Yes);
        let v4 = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 7));
        let mapped = IpAddr::V6(Ipv4Addr::new(198, 51, 100, 7).to_ipv6_mapped());
        assert_eq!(r.admit(v4, t), Admit::Yes);
        assert_eq!(r.admit(mapped, t), Admit::No { first: true });
        assert_eq!(
            Source::of(IpAddr::V6(Ipv6Addr::LOCALHOST)),
            Source::V6(0),
            "::1 is in ::/64"
        );
    }

    #[test]
    fn the_table_stays_bounded() {
        let mut r = RateLimiter::new(RateLimit {
            per_second: 1,
            burst: 2,
        });
        let t = Instant::now();
        for i in 0..MAX_TRACKED as u32 {
            assert_eq!(r.admit(IpAddr::V4(Ipv4Addr::from(i)), t), Admit::Yes);
        }
        assert_eq!(r.tracked(), MAX_TRACKED);
        // Full of active sources: a new one passes untracked.
        let new = IpAddr::V4(Ipv4Addr::from(u32::MAX));
        assert_eq!(r.admit(new, t), Admit::Yes);
        assert_eq!(r.tracked(), MAX_TRACKED);
        // Once they have refilled they are forgotten, and new sources are tracked again.
        let later = t + Duration::from_secs(5);
        assert_eq!(r.admit(new, later), Admit::Yes);
        assert_eq!(r.tracked(), 1);
    }
}
