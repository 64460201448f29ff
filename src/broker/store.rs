//! The storage boundary: retained messages, persistent session records and queued messages.
//!
//! The engine talks to state that must outlive a process only through `Store`. Retained messages
//! live behind it entirely; for sessions the engine keeps the live objects (that is the hot path)
//! and reports every change that a durable store must record (write-through), and reads the
//! records back at start-up. What must survive a crash (`persistence true`) goes through
//! `durable` instead: batches with completions, fallible, group-committed to redb.

use std::collections::HashMap;
use std::ops::ControlFlow;
use std::sync::Arc;

use parking_lot::RwLock;

use super::codec::QoS;
use super::message::Message;
use super::retained::{RetainedIndex, Visit};
use super::topic::SubOpts;
use crate::security::identity::Identity;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store: {0}")]
    Io(String),
}

/// What a durable store records of a persistent session (its queue is recorded message by message).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    pub client_id: String,
    /// Who owns the session (username, certificate subject, roles, how it authenticated; no
    /// peer address): a restored session is authorized as before and can only be resumed by the
    /// same identity.
    pub owner: Option<Identity>,
    /// Seconds after disconnect; u32::MAX = never.
    pub expiry_interval: u32,
    pub subscriptions: Vec<(String, SubOpts)>,
}

pub trait Store: Send + Sync {
    /// Set (Some) or delete (None) the retained message of `topic`.
    fn set_retained(&self, topic: &str, msg: Option<Arc<Message>>);
    /// Hand every unexpired retained message whose topic matches `filter` (no `$share` prefix)
    /// to `visit`, until it breaks: a subscriber whose queue is full stops the lookup, so the
    /// cost of a wildcard is bounded by what can be delivered. `visit` may be called under the
    /// store's lock: it must not call back into the store.
    fn visit_retained(&self, filter: &str, visit: &mut Visit<'_>);
    /// Every unexpired retained message whose topic matches `filter` (no `$share` prefix).
    fn retained_matching(&self, filter: &str, out: &mut Vec<Arc<Message>>) {
        self.visit_retained(filter, &mut |m| {
            out.push(m.clone());
            ControlFlow::Continue(())
        });
    }
    fn retained_count(&self) -> usize;
    /// Memory the retained messages hold (`Message::cost` summed): what `max_retained_bytes`
    /// bounds.
    fn retained_bytes(&self) -> usize;
    /// Whether `topic` has a retained message now (replacing one does not add to the count).
    fn has_retained(&self, topic: &str) -> bool;

    /// A persistent session was created or its subscriptions/expiry changed.
    fn session_saved(&self, rec: &SessionRecord);
    /// A session ended (clean disconnect, expiry, clean start).
    fn session_removed(&self, client_id: &str);
    /// A QoS 1/2 message was queued for a persistent session (`seq` is unique per session).
    fn message_queued(&self, client_id: &str, seq: u64, msg: &Arc<Message>, qos: QoS);
    /// The message `seq` was acknowledged by the client, expired or was dropped.
    fn message_done(&self, client_id: &str, seq: u64);
    /// Session records to restore at start-up.
    fn load_sessions(&self) -> Result<Vec<SessionRecord>, StoreError>;
    /// Make everything recorded so far durable (called at shutdown).
    fn flush(&self) -> Result<(), StoreError>;
}

/// Process memory: retained messages and session records last as long as the process. Queued
/// messages live in the sessions themselves, so there is nothing more to keep for them here.
#[derive(Default)]
pub struct MemoryStore {
    retained: RwLock<RetainedIndex>,
    sessions: RwLock<HashMap<String, SessionRecord>>,
}

impl MemoryStore {
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }
}

impl Store for MemoryStore {
    fn set_retained(&self, topic: &str, msg: Option<Arc<Message>>) {
        let mut r = self.retained.write();
        match msg {
            Some(m) => {
                r.insert(topic, m);
            }
            None => {
                r.remove(topic);
            }
        }
    }

    fn visit_retained(&self, filter: &str, visit: &mut Visit<'_>) {
        let now = std::time::Instant::now();
        // Expired messages are dropped lazily, when a lookup meets them.
        let mut expired: Vec<Arc<str>> = Vec::new();
        self.retained.read().visit(filter, &mut |m| {
            if m.expired(now) {
                expired.push(m.topic.clone());
                ControlFlow::Continue(())
            } else {
                visit(m)
            }
        });
        if !expired.is_empty() {
            let mut r = self.retained.write();
            for t in expired {
                if r.get(&t).is_some_and(|m| m.expired(now)) {
                    r.remove(&t);
                }
            }
        }
    }

    fn retained_count(&self) -> usize {
        self.retained.read().len()
    }

    fn retained_bytes(&self) -> usize {
        self.retained.read().bytes()
    }

    fn has_retained(&self, topic: &str) -> bool {
        self.retained.read().get(topic).is_some()
    }

    fn session_saved(&self, rec: &SessionRecord) {
        self.sessions
            .write()
            .insert(rec.client_id.clone(), rec.clone());
    }

    fn session_removed(&self, client_id: &str) {
        self.sessions.write().remove(client_id);
    }

    fn message_queued(&self, _client_id: &str, _seq: u64, _msg: &Arc<Message>, _qos: QoS) {}

    fn message_done(&self, _client_id: &str, _seq: u64) {}

    fn load_sessions(&self) -> Result<Vec<SessionRecord>, StoreError> {
        Ok(self.sessions.read().values().cloned().collect())
    }

    fn flush(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use std::time::{Duration, Instant};

    fn msg(topic: &str, expires: Option<Instant>) -> Arc<Message> {
        Arc::new(Message::new(
            topic.into(),
            Bytes::from_static(b"x"),
            QoS::AtMostOnce,
            true,
            Default::default(),
            expires,
            None,
        ))
    }

    #[test]
    fn retained_set_replace_delete_and_expire() {
        let s = MemoryStore::new();
        s.set_retained("a/b", Some(msg("a/b", None)));
        s.set_retained("a/c", Some(msg("a/c", None)));
        s.set_retained("$SYS/x", Some(msg("$SYS/x", None)));
        let mut out = Vec::new();
        s.retained_matching("a/+", &mut out);
        assert_eq!(out.len(), 2);
        out.clear();
        s.retained_matching("#", &mut out);
        assert_eq!(out.len(), 2, "# must not match $SYS");
        s.set_retained("a/b", None);
        out.clear();
        s.retained_matching("a/b", &mut out);
        assert!(out.is_empty());
        let past = Instant::now() - Duration::from_secs(1);
        s.set_retained("old", Some(msg("old", Some(past))));
        out.clear();
        s.retained_matching("old", &mut out);
        assert!(out.is_empty());
        assert_eq!(s.retained_count(), 2);
    }

    #[test]
    fn a_visit_stops_early_and_drops_expired_messages_it_meets() {
        let s = MemoryStore::new();
        let past = Instant::now() - Duration::from_secs(1);
        for i in 0..10 {
            let t = format!("v/{i}");
            let expires = (i % 2 == 0).then_some(past);
            s.set_retained(&t, Some(msg(&t, expires)));
        }
        assert_eq!(s.retained_count(), 10);
        let mut live = 0;
        s.visit_retained("v/+", &mut |m| {
            assert!(!m.expired(Instant::now()));
            live += 1;
            ControlFlow::Continue(())
        });
        assert_eq!(live, 5);
        assert_eq!(s.retained_count(), 5, "the expired ones met are gone");
        let mut seen = 0;
        s.visit_retained("#", &mut |_| {
            seen += 1;
            ControlFlow::Break(())
        });
        assert_eq!(seen, 1);
    }

    #[test]
    fn session_records_round_trip() {
        let s = MemoryStore::new();
        let rec = SessionRecord {
            client_id: "c".into(),
            owner: Some(Identity::with_username("c", "alice")),
            expiry_interval: 60,
            subscriptions: vec![],
        };
        s.session_saved(&rec);
        assert_eq!(s.load_sessions().unwrap(), vec![rec]);
        s.session_removed("c");
        assert!(s.load_sessions().unwrap().is_empty());
    }
}
