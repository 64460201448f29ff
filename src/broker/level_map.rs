//! A map keyed by topic level name (a subscription tree node's children, or its share groups):
//! a few entries in a vector, many in a persistent map.
//!
//! The persistent map (`imbl`) is what keeps a subscribe beside 100k siblings at O(log n), but
//! its first entry allocates a whole 32-slot node (about 1.2 KB). Most nodes have one child (the
//! `cmd` under each device's own `dev/ID/`), so each device's subscription cost about 2.6 KB
//! against Mosquitto's 1 KB. Small maps are copied whole on change, which at this size is as
//! cheap as copying a path through the persistent one, and a linear scan finds a level as fast
//! as a hash lookup.

use std::sync::Arc;

/// Beyond this many entries the map turns persistent.
const SMALL: usize = 8;

#[derive(Debug, Clone)]
pub enum LevelMap<V: Clone> {
    Small(Vec<(Arc<str>, V)>),
    Large(imbl::HashMap<Arc<str>, V>),
}

impl<V: Clone> Default for LevelMap<V> {
    fn default() -> Self {
        LevelMap::Small(Vec::new())
    }
}

impl<V: Clone> LevelMap<V> {
    pub fn get(&self, key: &str) -> Option<&V> {
        match self {
            LevelMap::Small(v) => v.iter().find(|(k, _)| &**k == key).map(|(_, x)| x),
            LevelMap::Large(m) => m.get(key),
        }
    }

    pub fn get_mut(&mut self, key: &str) -> Option<&mut V> {
        match self {
            LevelMap::Small(v) => v.iter_mut().find(|(k, _)| &**k == key).map(|(_, x)| x),
            LevelMap::Large(m) => m.get_mut(key),
        }
    }

    /// Insert or replace.
    pub fn insert(&mut self, key: Arc<str>, value: V) {
        match self {
            LevelMap::Small(v) => {
                if let Some(slot) = v.iter_mut().find(|(k, _)| *k == key) {
                    slot.1 = value;
                } else if v.len() < SMALL {
                    v.push((key, value));
                } else {
                    let mut m: imbl::HashMap<Arc<str>, V> = v.drain(..).collect();
                    m.insert(key, value);
                    *self = LevelMap::Large(m);
                }
            }
            LevelMap::Large(m) => {
                m.insert(key, value);
            }
        }
    }

    pub fn remove(&mut self, key: &str) -> Option<V> {
        match self {
            LevelMap::Small(v) => {
                let i = v.iter().position(|(k, _)| &**k == key)?;
                Some(v.swap_remove(i).1)
            }
            LevelMap::Large(m) => {
                let old = m.remove(key);
                if m.len() <= SMALL / 2 {
                    // Back to a vector once few are left (hysteresis: not at every crossing).
                    *self =
                        LevelMap::Small(m.iter().map(|(k, x)| (k.clone(), x.clone())).collect());
                }
                old
            }
        }
    }

    pub fn len(&self) -> usize {
        match self {
            LevelMap::Small(v) => v.len(),
            LevelMap::Large(m) => m.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn iter(&self) -> Box<dyn Iterator<Item = (&Arc<str>, &V)> + '_> {
        match self {
            LevelMap::Small(v) => Box::new(v.iter().map(|(k, x)| (k, x))),
            LevelMap::Large(m) => Box::new(m.iter()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    use proptest::prelude::*;

    proptest! {
        /// Whatever the sequence of inserts and removes, it answers like an ordinary map, and it
        /// is a vector whenever it holds at most `SMALL / 2` entries.
        #[test]
        fn behaves_like_a_map(ops in proptest::collection::vec((any::<bool>(), 0u8..24, any::<u16>()), 0..200)) {
            let mut m: LevelMap<u16> = LevelMap::default();
            let mut model = BTreeMap::new();
            for (insert, k, v) in ops {
                let key = format!("l{k}");
                if insert {
                    m.insert(Arc::from(key.as_str()), v);
                    model.insert(key, v);
                } else {
                    prop_assert_eq!(m.remove(&key), model.remove(&key));
                }
                prop_assert_eq!(m.len(), model.len());
                if m.len() <= SMALL / 2 {
                    prop_assert!(matches!(m, LevelMap::Small(_)));
                }
            }
            for (k, v) in &model {
                prop_assert_eq!(m.get(k), Some(v));
            }
            prop_assert_eq!(m.iter().count(), model.len());
            prop_assert_eq!(m.get("absent"), None);
        }
    }

    #[test]
    fn get_mut_changes_in_place_in_both_forms() {
        let mut m: LevelMap<u32> = LevelMap::default();
        for i in 0..20u32 {
            m.insert(Arc::from(format!("k{i}").as_str()), i);
            if let Some(v) = m.get_mut("k0") {
                *v += 100;
            }
        }
        assert!(matches!(m, LevelMap::Large(_)));
        assert_eq!(m.get("k0"), Some(&2000));
        assert_eq!(m.get("k19"), Some(&19));
    }
}
