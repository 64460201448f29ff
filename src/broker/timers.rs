//! Deadlines the broker acts on: keep-alive checks, session expiry, delayed wills, token expiry.
//!
//! Ordered by due time, so the once-a-second sweep touches only what is due (cost grows with what
//! expires, not with the number of sessions). Entries hold weak references: a connection or
//! session that went away leaves a dead entry that is dropped when it comes due. An entry that is
//! no longer right when it comes due (the client was active, the session was resumed) is checked
//! against the live state then, which is simpler than cancelling it.

use std::collections::BTreeMap;
use std::sync::Weak;

use parking_lot::Mutex;

use super::session::{ConnCtl, Session};

pub enum Timer {
    /// Check a connection's keep alive.
    KeepAlive(Weak<ConnCtl>),
    /// Check a connection whose write buffer is full for progress.
    WriteStall(Weak<ConnCtl>),
    /// Close a connection whose access token has run out.
    TokenExpiry(Weak<ConnCtl>),
    /// Ask a connection that has been idle since the last check to park.
    Park(Weak<ConnCtl>),
    /// End an offline session whose expiry interval has passed.
    Expiry(Weak<Session>),
    /// Send a delayed will.
    Will(Weak<Session>),
}

/// Deadlines are kept per whole second (rounded up): the sweep runs once a second anyway, and
/// 10,000 connections then share a few hundred buckets instead of each having its own entry
/// (memory per idle connection is a goal).
const BUCKET_MS: u64 = 1000;

#[derive(Default)]
pub struct Timers {
    /// Due second (milliseconds on the broker's clock, a multiple of `BUCKET_MS`) -> what is due.
    queue: Mutex<BTreeMap<u64, Vec<Timer>>>,
}

impl Timers {
    /// Act on `t` at `at_ms` (up to a second later).
    pub fn schedule(&self, at_ms: u64, t: Timer) {
        let bucket = at_ms.div_ceil(BUCKET_MS).saturating_mul(BUCKET_MS);
        self.queue.lock().entry(bucket).or_default().push(t);
    }

    /// Take everything due at or before `now_ms`.
    pub fn due(&self, now_ms: u64) -> Vec<Timer> {
        let mut q = self.queue.lock();
        let later = q.split_off(&now_ms.saturating_add(1));
        let due = std::mem::replace(&mut *q, later);
        due.into_values().flatten().collect()
    }

    pub fn len(&self) -> usize {
        self.queue.lock().values().map(Vec::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.queue.lock().is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn only_due_entries_are_taken() {
        let t = Timers::default();
        let c = Arc::new(ConnCtl::default());
        t.schedule(1000, Timer::KeepAlive(Arc::downgrade(&c)));
        t.schedule(1500, Timer::KeepAlive(Arc::downgrade(&c)));
        t.schedule(2000, Timer::KeepAlive(Arc::downgrade(&c)));
        assert_eq!(t.due(999).len(), 0);
        assert_eq!(t.due(1000).len(), 1);
        assert_eq!(t.len(), 2);
        assert_eq!(
            t.due(1999).len(),
            0,
            "1500 is rounded up to the next second"
        );
        assert_eq!(t.due(2000).len(), 2);
        assert!(t.is_empty());
    }
}
