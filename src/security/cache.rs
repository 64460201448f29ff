//! A bounded map of recent successful verifications, keyed by a keyed hash of the credential
//! (never the credential): the password pool's and the token verifier's. The oldest entry goes
//! first when it is full.

use std::collections::{HashMap, VecDeque};

pub type CacheKey = [u8; 32];

pub struct BoundedCache<V> {
    capacity: usize,
    map: HashMap<CacheKey, V>,
    order: VecDeque<CacheKey>,
}

impl<V> BoundedCache<V> {
    /// `capacity` 0: nothing is ever remembered.
    pub fn new(capacity: usize) -> Self {
        BoundedCache {
            capacity,
            map: HashMap::new(),
            order: VecDeque::new(),
        }
    }

    pub fn get(&self, k: &CacheKey) -> Option<&V> {
        self.map.get(k)
    }

    pub fn insert(&mut self, k: CacheKey, v: V) {
        if self.capacity == 0 || self.map.contains_key(&k) {
            return;
        }
        while self.order.len() >= self.capacity {
            if let Some(old) = self.order.pop_front() {
                self.map.remove(&old);
            }
        }
        self.map.insert(k, v);
        self.order.push_back(k);
    }

    pub fn remove(&mut self, k: &CacheKey) {
        if self.map.remove(k).is_some() {
            self.order.retain(|o| o != k);
        }
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    pub fn clear(&mut self) {
        self.map.clear();
        self.order.clear();
    }
}
