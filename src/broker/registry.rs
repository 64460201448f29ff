//! Every session by client id, in shards.
//!
//! A shard's lock is also the order of one client id's life: attach, detach and end of a session
//! all happen under the lock of the shard that holds its client id, so a reconnecting client can
//! never see a session that its old connection is about to end (or the reverse). Shards keep a
//! connect storm of many different clients from queuing on one lock.

use std::borrow::Borrow;
use std::collections::HashSet;
use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use parking_lot::{Mutex, MutexGuard};

use super::session::Session;

const SHARDS: usize = 64;

/// A set of sessions found by client id, not a map from a copy of the id: a bucket is 8 bytes
/// instead of 24 (memory per idle connection is a goal).
type Shard = HashSet<ById>;

/// A session, hashed and compared by its client id.
struct ById(Arc<Session>);

impl Borrow<str> for ById {
    fn borrow(&self) -> &str {
        &self.0.client_id
    }
}

impl Hash for ById {
    fn hash<H: Hasher>(&self, h: &mut H) {
        // As `str` hashes: `Borrow<str>` lookups must find it.
        self.0.client_id[..].hash(h);
    }
}

impl PartialEq for ById {
    fn eq(&self, other: &ById) -> bool {
        self.0.client_id == other.0.client_id
    }
}

impl Eq for ById {}

pub struct Registry {
    shards: Box<[Mutex<Shard>]>,
    hasher: std::collections::hash_map::RandomState,
    count: AtomicUsize,
}

impl Default for Registry {
    fn default() -> Self {
        Registry {
            shards: (0..SHARDS).map(|_| Mutex::new(HashSet::new())).collect(),
            hasher: std::collections::hash_map::RandomState::new(),
            count: AtomicUsize::new(0),
        }
    }
}

/// One shard, locked: the client ids in it cannot attach, detach or end meanwhile.
pub struct Locked<'a> {
    map: MutexGuard<'a, Shard>,
    count: &'a AtomicUsize,
}

impl Locked<'_> {
    pub fn get(&self, client_id: &str) -> Option<&Arc<Session>> {
        self.map.get(client_id).map(|b| &b.0)
    }

    pub fn insert(&mut self, s: Arc<Session>) {
        if self.map.replace(ById(s)).is_none() {
            self.count.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Remove `s` if it is still the session of its client id.
    pub fn remove(&mut self, s: &Arc<Session>) -> bool {
        let current = self
            .map
            .get(&*s.client_id)
            .is_some_and(|c| Arc::ptr_eq(&c.0, s));
        if current {
            self.map.remove(&*s.client_id);
            self.count.fetch_sub(1, Ordering::Relaxed);
        }
        current
    }
}

impl Registry {
    pub fn lock(&self, client_id: &str) -> Locked<'_> {
        let i = (self.hasher.hash_one(client_id) as usize) % self.shards.len();
        Locked {
            map: self.shards[i].lock(),
            count: &self.count,
        }
    }

    pub fn get(&self, client_id: &str) -> Option<Arc<Session>> {
        self.lock(client_id).get(client_id).cloned()
    }

    /// Number of sessions (online and offline).
    pub fn len(&self) -> usize {
        self.count.load(Ordering::Relaxed)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A snapshot of every session, one shard locked at a time (for shutdown and reloads, not
    /// for anything periodic).
    pub fn snapshot(&self) -> Vec<Arc<Session>> {
        let mut out = Vec::with_capacity(self.len());
        for shard in self.shards.iter() {
            out.extend(shard.lock().iter().map(|b| b.0.clone()));
        }
        out
    }
}
