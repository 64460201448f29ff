//! Admission at accept time, before a connection costs a handshake: the process's
//! file-descriptor budget (the default `max_connections`), the connections one source may hold
//! (`max_connections_per_source`) and the per-source-address connection rate
//! (`connection_rate_limit`).

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use parking_lot::Mutex;

use crate::config::model::{ListenerConfig, RateLimit};

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

/// Connection slots held in the whole process (every listener): file descriptors are shared.
static OPEN: AtomicUsize = AtomicUsize::new(0);

/// Connections over the limit that are still told so (MQTT CONNACK "quota exceeded" / "server
/// unavailable") rather than just closed; beyond this many at once, the socket is closed at
/// accept. Each is bounded by the handshake deadline.
const MAX_REFUSING: usize = 16;

/// A listener at run time: its settings and its connection count.
pub struct ListenerRt {
    pub config: Arc<ListenerConfig>,
    pub local: SocketAddr,
    connections: AtomicUsize,
    refusing: AtomicUsize,
    /// Set while the listener is full, so a flood logs one line.
    full: AtomicBool,
    per_source: Option<PerSource>,
}

/// `max_connections_per_source`: what each source holds at once on this listener.
struct PerSource {
    limit: u32,
    /// Sources are counted under a 32-bit key (a keyed hash: at worst two sources share a
    /// count and are limited together), so a connection carries 4 bytes for it, not 16.
    hasher: RandomState,
    /// Key -> (connections held, refusals were logged since it was last under the limit).
    held: Mutex<HashMap<NonZeroU32, (u32, bool)>>,
}

impl PerSource {
    fn key(&self, ip: IpAddr) -> NonZeroU32 {
        let h = self.hasher.hash_one(Source::of(ip)) as u32;
        NonZeroU32::new(h).unwrap_or(NonZeroU32::MIN)
    }
}

/// One connection slot of a listener (and of its source, when sources are counted). Not freed
/// on drop: the connection's context (`connection::Ctx`) holds it next to its listener and gives
/// it back with `ListenerRt::leave` (one pointer per connection for both, not two).
#[must_use]
pub struct Slot {
    source: Option<NonZeroU32>,
}

/// Why `ListenerRt::enter` gave no slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Full {
    /// `max_connections` or the process's descriptor budget.
    Listener,
    /// `max_connections_per_source`.
    Source,
}

/// Holds one of the `MAX_REFUSING` places of connections being refused.
pub struct Refusal(Arc<ListenerRt>);

impl Drop for Refusal {
    fn drop(&mut self) {
        self.0.refusing.fetch_sub(1, Ordering::AcqRel);
    }
}

impl ListenerRt {
    pub fn new(config: Arc<ListenerConfig>, local: SocketAddr) -> Arc<ListenerRt> {
        Arc::new(ListenerRt {
            connections: AtomicUsize::new(0),
            refusing: AtomicUsize::new(0),
            full: AtomicBool::new(false),
            per_source: config.max_connections_per_source.map(|limit| PerSource {
                limit,
                hasher: RandomState::new(),
                held: Mutex::new(HashMap::new()),
            }),
            config,
            local,
        })
    }

    /// Take a connection slot for a connection from `peer`; refused when `max_connections`,
    /// the process's descriptor budget or `max_connections_per_source` is reached.
    pub fn enter(&self, peer: IpAddr) -> Result<Slot, Full> {
        let n = self.connections.fetch_add(1, Ordering::AcqRel);
        let total = OPEN.fetch_add(1, Ordering::AcqRel);
        let mut slot = Slot { source: None };
        let limit = self.config.max_connections.unwrap_or(usize::MAX);
        let budget = fd_budget();
        if n >= limit || total >= budget {
            self.leave(slot);
            if !self.full.swap(true, Ordering::Relaxed) {
                let why = if n >= limit {
                    "max_connections"
                } else {
                    "the process's file-descriptor budget (ulimit -n)"
                };
                tracing::warn!(listener = %self.local, connections = n, "connection limit reached ({why}): refusing new connections");
            }
            return Err(Full::Listener);
        }
        self.full.store(false, Ordering::Relaxed);
        if let Some(ps) = &self.per_source {
            let key = ps.key(peer);
            let mut held = ps.held.lock();
            let (count, logged) = held.entry(key).or_insert((0, false));
            if *count >= ps.limit {
                if !std::mem::replace(logged, true) {
                    tracing::warn!(listener = %self.local, peer = %peer, limit = ps.limit, "max_connections_per_source reached: refusing new connections from this source");
                }
                drop(held);
                self.leave(slot);
                return Err(Full::Source);
            }
            *count += 1;
            slot.source = Some(key);
        }
        Ok(slot)
    }

    /// Give a slot back (the connection has ended).
    pub fn leave(&self, slot: Slot) {
        self.connections.fetch_sub(1, Ordering::AcqRel);
        OPEN.fetch_sub(1, Ordering::AcqRel);
        if let (Some(key), Some(ps)) = (slot.source, &self.per_source) {
            let mut held = ps.held.lock();
            if let Some((count, logged)) = held.get_mut(&key) {
                *count = count.saturating_sub(1);
                *logged = false;
                if *count == 0 {
                    held.remove(&key);
                }
            }
        }
    }

    pub(crate) fn refusal(self: &Arc<Self>) -> Option<Refusal> {
        let n = self.refusing.fetch_add(1, Ordering::AcqRel);
        let r = Refusal(self.clone());
        (n < MAX_REFUSING).then_some(r)
    }

    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::Relaxed)
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

    fn listener(per_source: Option<u32>) -> Arc<ListenerRt> {
        let mut c = ListenerConfig::new(1883, None, "test");
        c.max_connections_per_source = per_source;
        ListenerRt::new(Arc::new(c), "127.0.0.1:1883".parse().unwrap())
    }

    #[test]
    fn each_source_holds_at_most_its_share() {
        let rt = listener(Some(2));
        let a = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
        let b = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2));
        let a1 = rt.enter(a).unwrap();
        let a2 = rt.enter(a).unwrap();
        assert_eq!(rt.enter(a).err(), Some(Full::Source));
        assert_eq!(rt.connections(), 2, "a refusal holds nothing");
        // Another source has its own share; one IPv6 /64 is one source.
        let b1 = rt.enter(b).unwrap();
        let x: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let y: IpAddr = "2001:db8:1:2::2".parse().unwrap();
        let (x1, x2) = (rt.enter(x).unwrap(), rt.enter(y).unwrap());
        assert_eq!(rt.enter(x).err(), Some(Full::Source));
        // A slot given back is free for the same source again.
        rt.leave(a1);
        let a3 = rt.enter(a).unwrap();
        assert_eq!(rt.enter(a).err(), Some(Full::Source));
        for s in [a2, a3, b1, x1, x2] {
            rt.leave(s);
        }
        assert_eq!(rt.connections(), 0);
        let held = rt.per_source.as_ref().map(|p| p.held.lock().len());
        assert_eq!(held, Some(0), "sources without connections are forgotten");
    }

    #[test]
    fn without_the_option_sources_are_not_counted() {
        let rt = listener(None);
        let a = IpAddr::V4(Ipv4Addr::LOCALHOST);
        let slots: Vec<Slot> = (0..100).map(|_| rt.enter(a).unwrap()).collect();
        assert_eq!(rt.connections(), 100);
        for s in slots {
            rt.leave(s);
        }
        assert_eq!(rt.connections(), 0);
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
