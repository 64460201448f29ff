//! The broker's shared state and the publish path: topic -> matching sessions (one delivery per
//! client, at the highest subscribed QoS, carrying every subscription identifier), retained
//! messages, wills (with v5 delay) and session expiry.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use parking_lot::Mutex;

use super::auth::Authorizer;
use super::codec::ProtocolVersion;
use super::codec::QoS;
use super::session::{Message, Session, Will};
use super::store::{SessionRecord, Store, StoreError};
use super::sys::Stats;
use super::topic::{delivery_qos, parse_filter, Match, SubscriptionTree};
use crate::config::Config;
use crate::security::identity::Identity;

pub struct Broker {
    pub config: Arc<Config>,
    pub auth: Arc<dyn Authorizer>,
    pub store: Arc<dyn Store>,
    pub subs: SubscriptionTree<Arc<Session>>,
    pub sessions: Mutex<HashMap<Arc<str>, Arc<Session>>>,
    pub stats: Stats,
    pub started: Instant,
    next_auto_id: AtomicU64,
    shutting_down: AtomicBool,
}

impl Broker {
    pub fn new(config: Arc<Config>, auth: Arc<dyn Authorizer>, store: Arc<dyn Store>) -> Broker {
        Broker {
            config,
            auth,
            store,
            subs: SubscriptionTree::default(),
            sessions: Mutex::new(HashMap::new()),
            stats: Stats::default(),
            started: Instant::now(),
            next_auto_id: AtomicU64::new(1),
            shutting_down: AtomicBool::new(false),
        }
    }

    /// A client id for a client that sent none: prefix + a number + randomness, so it cannot be
    /// guessed and taken over by another client.
    pub fn assign_client_id(&self) -> String {
        let n = self.next_auto_id.fetch_add(1, Ordering::Relaxed);
        let r: u64 = rand::random();
        format!("{}{n}-{r:016x}", self.config.client_ids.auto_id_prefix)
    }

    /// Route one message. Returns how many clients it was queued for.
    pub fn publish(&self, msg: &Arc<Message>) -> usize {
        if msg.retain && self.config.limits.retain_available {
            if msg.payload.is_empty() {
                self.store.set_retained(&msg.topic, None);
            } else {
                self.store.set_retained(&msg.topic, Some(msg.clone()));
            }
        }
        let mut matches: Vec<Match<Arc<Session>>> = Vec::new();
        self.subs
            .matches(&msg.topic, |s| s.is_online(), &mut matches);
        if matches.is_empty() {
            return 0;
        }
        if matches.len() > 1 {
            // Group each client's non-shared matches together; shared ones stand alone.
            matches.sort_by_key(|m| (m.shared, Arc::as_ptr(&m.target) as usize));
        }
        let mut delivered = 0;
        let mut i = 0;
        while i < matches.len() {
            let m = &matches[i];
            if m.shared {
                if self.deliver(
                    &m.target,
                    msg,
                    m.opts.options.qos,
                    m.opts.options.retain_as_published,
                    opt_vec(m.opts.subscription_id),
                ) {
                    delivered += 1;
                }
                i += 1;
                continue;
            }
            let mut j = i;
            let mut qos: Option<QoS> = None;
            let mut rap = false;
            let mut ids = Vec::new();
            while j < matches.len()
                && !matches[j].shared
                && Arc::ptr_eq(&matches[j].target, &m.target)
            {
                let o = &matches[j].opts;
                let own =
                    o.options.no_local && msg.origin.as_deref() == Some(&*matches[j].client_id);
                if !own {
                    qos = Some(qos.map_or(o.options.qos, |q| q.max(o.options.qos)));
                    rap |= o.options.retain_as_published;
                    if let Some(id) = o.subscription_id {
                        ids.push(id);
                    }
                }
                j += 1;
            }
            if let Some(q) = qos {
                if self.deliver(&m.target, msg, q, rap, ids) {
                    delivered += 1;
                }
            }
            i = j;
        }
        delivered
    }

    fn deliver(
        &self,
        s: &Arc<Session>,
        msg: &Arc<Message>,
        sub_qos: QoS,
        rap: bool,
        ids: Vec<u32>,
    ) -> bool {
        let qos = delivery_qos(msg.qos, sub_qos);
        let retain = rap && msg.retain;
        let r = s.enqueue(msg, qos, retain, ids, &self.config.limits, |who| {
            self.auth.deliver(who, &msg.topic, qos, retain, None)
        });
        match r {
            Ok(Some(seq)) => {
                self.store.message_queued(&s.client_id, seq, msg, qos);
                true
            }
            Ok(None) => true,
            Err(_) => {
                self.stats.dropped.fetch_add(1, Ordering::Relaxed);
                false
            }
        }
    }

    /// Queue the retained messages matching a new subscription. `filter` is the one the caller
    /// already parsed, without a `$share/` prefix (shared subscriptions get no retained messages).
    pub fn send_retained(&self, s: &Arc<Session>, filter: &str, sub_qos: QoS, sub_id: Option<u32>) {
        let mut found = Vec::new();
        self.store.retained_matching(filter, &mut found);
        for msg in found {
            let qos = delivery_qos(msg.qos, sub_qos);
            let _ = s.enqueue(
                &msg,
                qos,
                true,
                opt_vec(sub_id),
                &self.config.limits,
                |who| self.auth.deliver(who, &msg.topic, qos, true, None),
            );
        }
    }

    /// Send a will now (its publisher's authorization was checked when the will was accepted).
    pub fn publish_will(&self, will: &Will) {
        self.stats.wills.fetch_add(1, Ordering::Relaxed);
        self.publish(&will.msg);
    }

    /// Remove a session for good: its subscriptions, queue and record; a delayed will goes now.
    pub fn end_session(&self, s: &Arc<Session>) {
        {
            let mut map = self.sessions.lock();
            if map.get(&s.client_id).is_some_and(|cur| Arc::ptr_eq(cur, s)) {
                map.remove(&s.client_id);
            }
        }
        let (filters, will) = {
            let mut st = s.state.lock();
            let filters: Vec<String> = std::mem::take(&mut st.subscriptions).into_keys().collect();
            st.queue.clear();
            st.inflight.clear();
            (filters, st.delayed_will.take().map(|(_, w)| w))
        };
        for f in &filters {
            if let Ok(pf) = parse_filter(f, usize::MAX) {
                self.subs.unsubscribe(&pf, &s.client_id);
            }
        }
        self.store.session_removed(&s.client_id);
        if let Some(w) = will {
            self.publish_will(&w);
        }
    }

    /// Record a persistent session's subscriptions and expiry with the store.
    pub fn save_session(&self, s: &Session) {
        let rec = {
            let st = s.state.lock();
            if st.expiry_interval == 0 {
                return;
            }
            SessionRecord {
                client_id: s.client_id.to_string(),
                username: st.identity.as_ref().and_then(|i| i.username.clone()),
                expiry_interval: st.expiry_interval,
                subscriptions: st
                    .subscriptions
                    .iter()
                    .map(|(f, o)| (f.clone(), *o))
                    .collect(),
            }
        };
        self.store.session_saved(&rec);
    }

    /// Recreate the persistent sessions the store kept (offline, expiry counting from now).
    pub fn restore_sessions(&self) -> Result<(), StoreError> {
        let now = Instant::now();
        for rec in self.store.load_sessions()? {
            let cid: Arc<str> = Arc::from(rec.client_id.as_str());
            let s = Arc::new(Session::new(
                cid.clone(),
                ProtocolVersion::V5,
                rec.expiry_interval,
            ));
            {
                let mut st = s.state.lock();
                st.disconnected_at = Some(now);
                st.identity = Some(Arc::new(match rec.username {
                    Some(u) => Identity::with_username(rec.client_id.as_str(), u),
                    None => Identity::anonymous(rec.client_id.as_str()),
                }));
                for (f, o) in rec.subscriptions {
                    if let Ok(pf) = parse_filter(&f, usize::MAX) {
                        self.subs.subscribe(&pf, &cid, s.clone(), o);
                        st.subscriptions.insert(f, o);
                    }
                }
            }
            self.sessions.lock().insert(cid, s);
        }
        Ok(())
    }

    /// Milliseconds since the broker started: the clock of keep-alive bookkeeping.
    pub fn now_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Once a second: close connections whose keep alive ran out, send delayed wills that are
    /// due, end expired offline sessions.
    pub fn housekeeping(&self, now: Instant) {
        let now_ms = self.now_ms();
        let sessions: Vec<Arc<Session>> = self.sessions.lock().values().cloned().collect();
        for s in sessions {
            let (will, expired) = {
                let mut st = s.state.lock();
                if let Some(ctl) = &st.attached {
                    if ctl.keep_alive_expired(now_ms) && ctl.kicked().is_none() {
                        ctl.kick(super::codec::reason::v5::KEEP_ALIVE_TIMEOUT);
                    }
                    continue;
                }
                let due = st.delayed_will.as_ref().is_some_and(|(t, _)| *t <= now);
                let will = if due {
                    st.delayed_will.take().map(|(_, w)| w)
                } else {
                    None
                };
                (will, st.expires_at().is_some_and(|t| t <= now))
            };
            if let Some(w) = will {
                self.publish_will(&w);
            }
            if expired {
                self.end_session(&s);
            }
        }
    }

    /// Tell every connected client that the broker is stopping (v5 DISCONNECT 0x8B).
    pub fn begin_shutdown(&self) {
        self.shutting_down.store(true, Ordering::SeqCst);
        let sessions: Vec<Arc<Session>> = self.sessions.lock().values().cloned().collect();
        for s in sessions {
            if let Some(ctl) = s.state.lock().attached.clone() {
                ctl.kick(super::codec::reason::v5::SERVER_SHUTTING_DOWN);
            }
        }
    }

    pub fn shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::SeqCst)
    }

    pub fn connected_clients(&self) -> usize {
        self.stats.connected.load(Ordering::Relaxed) as usize
    }
}

fn opt_vec(id: Option<u32>) -> Vec<u32> {
    id.map(|i| vec![i]).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::auth::AllowAnonymous;
    use crate::broker::codec::{Properties, ProtocolVersion, SubscriptionOptions};
    use crate::broker::session::{ConnCtl, Outbound};
    use crate::broker::store::MemoryStore;
    use crate::broker::topic::SubOpts;
    use bytes::Bytes;

    fn broker() -> Broker {
        Broker::new(
            Arc::new(crate::config::defaults::embedded()),
            Arc::new(AllowAnonymous {
                clientid_prefixes: vec![],
            }),
            Arc::new(MemoryStore::new()),
        )
    }

    fn client(b: &Broker, id: &str) -> Arc<Session> {
        let s = Arc::new(Session::new(id.into(), ProtocolVersion::V5, 0));
        {
            let mut st = s.state.lock();
            st.epoch = 1;
            st.attached = Some(Arc::new(ConnCtl::default()));
            st.identity = Some(Arc::new(Identity::anonymous(id)));
        }
        s.set_online(true);
        b.sessions.lock().insert(s.client_id.clone(), s.clone());
        s
    }

    fn sub(b: &Broker, s: &Arc<Session>, filter: &str, qos: QoS, no_local: bool, id: Option<u32>) {
        let f = parse_filter(filter, 200).unwrap();
        let opts = SubOpts {
            options: SubscriptionOptions {
                qos,
                no_local,
                ..Default::default()
            },
            subscription_id: id,
        };
        b.subs.subscribe(&f, &s.client_id, s.clone(), opts);
        s.state
            .lock()
            .subscriptions
            .insert(filter.to_string(), opts);
    }

    fn msg(topic: &str, qos: QoS, retain: bool, origin: Option<&str>) -> Arc<Message> {
        Arc::new(Message::new(
            topic.into(),
            Bytes::from_static(b"p"),
            qos,
            retain,
            Properties::default(),
            None,
            origin.map(Arc::from),
        ))
    }

    fn drain(s: &Session) -> Vec<(QoS, Vec<u32>)> {
        let (mut out, mut done) = (Vec::new(), Vec::new());
        s.take_ready(1, 1000, &mut out, &mut done);
        out.into_iter()
            .filter_map(|o| match o {
                Outbound::Publish { delivery, .. } => Some((delivery.qos, delivery.sub_ids)),
                Outbound::PubRel(_) => None,
            })
            .collect()
    }

    #[test]
    fn overlapping_subscriptions_deliver_once_at_max_qos() {
        let b = broker();
        let a = client(&b, "a");
        sub(&b, &a, "x/+", QoS::AtMostOnce, false, Some(1));
        sub(&b, &a, "x/#", QoS::ExactlyOnce, false, Some(2));
        assert_eq!(b.publish(&msg("x/y", QoS::ExactlyOnce, false, None)), 1);
        let got = drain(&a);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].0, QoS::ExactlyOnce);
        let mut ids = got[0].1.clone();
        ids.sort();
        assert_eq!(ids, vec![1, 2]);
    }

    #[test]
    fn no_local_and_retained() {
        let b = broker();
        let a = client(&b, "a");
        sub(&b, &a, "t", QoS::AtLeastOnce, true, None);
        assert_eq!(b.publish(&msg("t", QoS::AtLeastOnce, true, Some("a"))), 0);
        assert_eq!(b.store.retained_count(), 1);
        let c = client(&b, "c");
        b.send_retained(&c, "#", QoS::AtMostOnce, None);
        assert_eq!(drain(&c).len(), 1);
        b.publish(&Arc::new(Message::new(
            "t".into(),
            Bytes::new(),
            QoS::AtMostOnce,
            true,
            Properties::default(),
            None,
            None,
        )));
        assert_eq!(b.store.retained_count(), 0);
    }

    #[test]
    fn end_session_removes_subscriptions_and_sends_delayed_will() {
        let b = broker();
        let a = client(&b, "a");
        let w = client(&b, "watcher");
        sub(&b, &a, "x", QoS::AtMostOnce, false, None);
        sub(&b, &w, "will/#", QoS::AtMostOnce, false, None);
        {
            let mut st = a.state.lock();
            st.attached = None;
            st.disconnected_at = Some(Instant::now());
            st.delayed_will = Some((
                Instant::now() + std::time::Duration::from_secs(3600),
                Will {
                    msg: msg("will/a", QoS::AtMostOnce, false, Some("a")),
                    delay: 3600,
                },
            ));
        }
        b.housekeeping(Instant::now());
        assert!(
            b.sessions.lock().get("a").is_none(),
            "expiry 0 ends at once"
        );
        assert_eq!(b.subs.len(), 1, "only the watcher's subscription is left");
        assert_eq!(drain(&w).len(), 1, "will sent when the session ends first");
    }
}
