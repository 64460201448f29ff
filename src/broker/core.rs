//! The broker core: the shared state and the small API a connection uses.
//!
//! A connection speaks MQTT and nothing else; everything that touches sessions, their owners and
//! the store goes through here: `attach` (lookup, ownership, takeover, wills), `detach`,
//! `subscribe`/`unsubscribe`, `acknowledge`, and `publish` (in `router`). Every change of a client
//! id's session happens under that client id's registry lock, so attach and detach of one client
//! id are ordered (a reconnect can never resume a session its old connection is ending).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use super::auth::Authorizer;
use super::codec::reason::v5;
use super::codec::QoS;
use super::durable::{clock, Batch, Durable, Op, Pending, Restored};
use super::registry::{Locked, Registry};
use super::session::{
    AckKind, AckOutcome, Attachment, ConnCtl, Epoch, ImageChange, RestoredSession, Session, Will,
    NEVER_EXPIRES,
};
use super::stats::Stats;
use super::store::{Store, StoreError};
use super::timers::{Timer, Timers};
use super::topic::{parse_filter, Filter, SubOpts, SubscriptionTree};
use crate::config::Config;
use crate::security::identity::Identity;

pub struct Broker {
    pub config: Arc<Config>,
    pub auth: Arc<dyn Authorizer>,
    pub store: Arc<dyn Store>,
    /// The durable store (`persistence true`); None keeps everything in memory.
    pub durable: Option<Arc<Durable>>,
    pub subs: SubscriptionTree<Arc<Session>>,
    pub sessions: Registry,
    pub stats: Stats,
    pub started: Instant,
    timers: Timers,
    next_auto_id: AtomicU64,
    shutting_down: AtomicBool,
}

/// A connection asking for its session.
pub struct AttachRequest {
    pub client_id: Arc<str>,
    pub identity: Arc<Identity>,
    pub clean_start: bool,
    /// The connection's settings for the session (expiry already capped by the broker).
    pub attachment: Attachment,
    /// Keep alive in seconds (0 = none): the broker checks it.
    pub keep_alive: u16,
}

/// A connection's hold on its session.
pub struct Attached {
    pub session: Arc<Session>,
    pub epoch: Epoch,
    /// Whether an existing session was resumed (CONNACK Session Present).
    pub present: bool,
}

/// How long a connection must have moved no bytes before it parks (at most twice this, the
/// timers being checked once a second).
const PARK_AFTER_MS: u64 = 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttachError {
    /// The session belongs to another identity (v5 0x87, v3 5).
    NotOwner,
    /// A new session would exceed `max_sessions` (v5 0x97, v3 3).
    TooManySessions,
}

/// Why a subscription was not added.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubscribeError {
    /// The connection no longer holds the session.
    TakenOver,
    /// It would start a shared group beyond `max_shared_groups`.
    SharedGroupQuota,
}

/// How a connection ended, as far as its session is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Departure {
    /// Normal DISCONNECT (no will), or DISCONNECT 0x04 (`with_will`).
    Graceful { with_will: bool },
    /// The peer went away, broke a rule or timed out: the will is sent.
    Abnormal,
    /// Another connection took the session: nothing to do.
    TakenOver,
    /// The broker is stopping: no will, the session stays as it is.
    Shutdown,
}

impl Broker {
    pub fn new(config: Arc<Config>, auth: Arc<dyn Authorizer>, store: Arc<dyn Store>) -> Broker {
        Broker::with_durable(config, auth, store, None)
    }

    /// A broker whose state is also kept by `durable` (restore it with `restore_durable`).
    pub fn with_durable(
        config: Arc<Config>,
        auth: Arc<dyn Authorizer>,
        store: Arc<dyn Store>,
        durable: Option<Arc<Durable>>,
    ) -> Broker {
        Broker {
            config,
            auth,
            store,
            durable,
            subs: SubscriptionTree::default(),
            sessions: Registry::default(),
            stats: Stats::default(),
            started: Instant::now(),
            timers: Timers::default(),
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

    /// The copy of `client_id` a connecting client keeps (in its identity and will, and in a
    /// session it creates): the existing session's when there is one, so that a client
    /// resuming or taking over a session does not hold a second copy of its id.
    pub fn shared_client_id(&self, client_id: &str) -> Arc<str> {
        match self.sessions.get(client_id) {
            Some(s) => s.client_id.clone(),
            None => Arc::from(client_id),
        }
    }

    /// Milliseconds since the broker started: the clock of keep-alive bookkeeping and timers.
    pub fn now_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn ms_at(&self, t: Instant) -> u64 {
        u64::try_from(t.saturating_duration_since(self.started).as_millis()).unwrap_or(u64::MAX)
    }

    /// Give a connection its session: resume the existing one (clean start 0, still alive, same
    /// owner) or start a new one, taking it over from a live connection if there is one.
    pub fn attach(&self, req: AttachRequest) -> Result<Attached, AttachError> {
        let now = Instant::now();
        let AttachRequest {
            client_id,
            identity,
            clean_start,
            mut attachment,
            keep_alive,
        } = req;
        let ctl = attachment.ctl.clone();
        ctl.keep_alive_ms
            .store(u32::from(keep_alive) * 1500, Ordering::Relaxed);
        ctl.last_seen_ms.store(self.now_ms(), Ordering::Relaxed);
        attachment.identity = identity.clone();
        let mut wills = Vec::new();
        let mut kicks = Vec::new();
        let (attached, replaced) = {
            let mut shard = self.sessions.lock(&client_id);
            let existing = shard.get(&client_id).cloned();
            if let Some(old) = &existing {
                if let Some(owner) = old.owner() {
                    if !self.auth.may_take_session(&owner, &identity) {
                        return Err(AttachError::NotOwner);
                    }
                }
            }
            let resume = existing.filter(|old| !clean_start && !old.is_over(now));
            let max = self.config.limits.max_sessions;
            if resume.is_none()
                && max != 0
                && self.sessions.len() >= max
                && shard.get(&client_id).is_none()
            {
                return Err(AttachError::TooManySessions);
            }
            let (session, present) = match resume {
                Some(s) => (s, true),
                None => {
                    if let Some(old) = shard.get(&client_id).cloned() {
                        // A clean start, or a session that ends with its connection: the old
                        // session ends here and its will (live or delayed) goes now.
                        let ended = self.end_locked(&mut shard, &old);
                        kicks.extend(ended.0);
                        wills.extend(ended.1);
                    }
                    let s = Arc::new(Session::new(
                        client_id.clone(),
                        attachment.version,
                        attachment.expiry,
                    ));
                    shard.insert(s.clone());
                    (s, false)
                }
            };
            let replaced = session.attach(attachment);
            // Under the client id's lock: the store sees this session's record after the
            // removal of the one it replaced.
            self.save_session(&session);
            (
                Attached {
                    session,
                    epoch: replaced.epoch,
                    present,
                },
                replaced,
            )
        };
        if let Some(old) = replaced.old_conn {
            kicks.push(old);
        }
        // Taken over before its delay ran out, the old connection's will is not sent (the
        // session goes on); without a delay it goes now.
        if let Some(w) = replaced.old_will {
            if w.delay == 0 {
                wills.push(w);
            }
        }
        for k in kicks {
            k.kick(v5::SESSION_TAKEN_OVER);
        }
        // Shutdown kicks every attached connection; one that attached after that sweep sees the
        // flag here (the registry lock orders the two).
        if self.shutting_down() {
            ctl.kick(v5::SERVER_SHUTTING_DOWN);
        }
        if keep_alive > 0 {
            self.timers.schedule(
                self.now_ms() + u64::from(keep_alive) * 1500,
                Timer::KeepAlive(Arc::downgrade(&ctl)),
            );
        }
        for w in wills {
            self.publish_will(&w);
        }
        Ok(attached)
    }

    /// The connection holding `epoch` has ended. Decides the will, and whether the session ends
    /// now or waits (offline) for its expiry.
    pub fn detach(&self, session: &Arc<Session>, epoch: Epoch, how: Departure) {
        if how == Departure::TakenOver {
            return;
        }
        let now = Instant::now();
        let keep_will = matches!(
            how,
            Departure::Abnormal | Departure::Graceful { with_will: true }
        );
        let mut wills = Vec::new();
        {
            let mut shard = self.sessions.lock(&session.client_id);
            let Some(d) = session.detach(epoch, now, keep_will) else {
                return;
            };
            wills.extend(d.will_now);
            if d.expiry == 0 {
                let (_, will) = self.end_locked(&mut shard, session);
                wills.extend(will);
            } else {
                if d.expiry != NEVER_EXPIRES {
                    let at = now + Duration::from_secs(u64::from(d.expiry));
                    self.timers
                        .schedule(self.ms_at(at), Timer::Expiry(Arc::downgrade(session)));
                }
                if let Some(at) = d.will_at {
                    self.timers
                        .schedule(self.ms_at(at), Timer::Will(Arc::downgrade(session)));
                }
                self.save_session(session);
            }
        }
        for w in wills {
            self.publish_will(&w);
        }
    }

    /// End `s` while its client id's registry lock is held: out of the registry and the
    /// subscription tree, record removed. Returns the connection to kick and the will to send.
    fn end_locked(
        &self,
        shard: &mut Locked<'_>,
        s: &Arc<Session>,
    ) -> (Option<Arc<ConnCtl>>, Option<Will>) {
        shard.remove(s);
        let ended = s.end();
        for f in &ended.filters {
            if let Ok(pf) = parse_filter(f, usize::MAX) {
                self.subs.unsubscribe(&pf, &s.client_id);
            }
        }
        self.store.session_removed(&s.client_id);
        if ended.was_stored {
            self.record(Op::RemoveSession(s.client_id.clone()));
        }
        (ended.conn, ended.will)
    }

    /// End a session for good (expiry, administrative removal); its will goes now.
    pub fn end_session(&self, s: &Arc<Session>) {
        let (conn, will) = {
            let mut shard = self.sessions.lock(&s.client_id);
            if !shard.get(&s.client_id).is_some_and(|c| Arc::ptr_eq(c, s)) {
                return;
            }
            self.end_locked(&mut shard, s)
        };
        if let Some(c) = conn {
            c.kick(v5::ADMINISTRATIVE_ACTION);
        }
        if let Some(w) = will {
            self.publish_will(&w);
        }
    }

    /// Add a subscription for the connection holding `epoch`. Returns whether it is new, or
    /// None if that connection no longer holds the session.
    pub fn subscribe(
        &self,
        session: &Arc<Session>,
        epoch: Epoch,
        raw: &str,
        filter: &Filter<'_>,
        opts: SubOpts,
    ) -> Result<bool, SubscribeError> {
        let max_groups = self.config.limits.max_shared_groups;
        let added = session.subscribe(Some(epoch), raw, opts, || {
            self.subs.subscribe_within(
                filter,
                &session.client_id,
                session.clone(),
                opts,
                max_groups,
            )
        });
        match added {
            None => Err(SubscribeError::TakenOver),
            Some(None) => Err(SubscribeError::SharedGroupQuota),
            Some(Some(new)) => Ok(new),
        }
    }

    /// Lower an existing subscription's granted QoS to `max` (a reloaded ACL caps it); true if it
    /// changed. The tree entry is replaced under the session's lock, as `subscribe` does.
    pub fn cap_subscription(&self, session: &Arc<Session>, raw: &str, max: QoS) -> bool {
        session.cap_subscription(raw, max, |opts| {
            if let Ok(pf) = parse_filter(raw, usize::MAX) {
                self.subs
                    .subscribe(&pf, &session.client_id, session.clone(), opts);
            }
        })
    }

    /// Remove a subscription; true if it existed.
    pub fn unsubscribe(&self, session: &Arc<Session>, raw: &str) -> bool {
        session.unsubscribe(raw, || match parse_filter(raw, usize::MAX) {
            Ok(pf) => self.subs.unsubscribe(&pf, &session.client_id),
            Err(_) => false,
        })
    }

    /// A client acknowledged a message the broker sent; the store forgets what it completes.
    /// A PUBREC of a stored QoS 2 delivery is recorded first: the PUBREL waits for the
    /// returned `Pending` (a restart must send PUBREL, not the message again).
    pub fn acknowledge(
        &self,
        session: &Session,
        pid: u16,
        ack: AckKind,
        notify: Option<&Arc<ConnCtl>>,
    ) -> (AckOutcome, Option<Arc<Pending>>) {
        let outcome = session.acknowledged(pid, ack);
        let mut pending = None;
        match outcome {
            AckOutcome::Completed(Some(seq)) => self.done(session, seq),
            AckOutcome::Received(Some(seq)) => {
                if let Some(d) = &self.durable {
                    let p = Pending::new();
                    session.set_released(pid, p.clone());
                    d.submit(Batch {
                        ops: vec![Op::Released {
                            client_id: session.client_id.clone(),
                            seq,
                        }],
                        pending: Some(p.clone()),
                        notify: notify.cloned(),
                    });
                    pending = Some(p);
                }
            }
            // A repeated PUBREC: its PUBREL waits for the first one's record too.
            AckOutcome::Received(None) => pending = session.released_pending(pid),
            _ => {}
        }
        (outcome, pending)
    }

    fn done(&self, session: &Session, seq: u64) {
        self.store.message_done(&session.client_id, seq);
        self.record(Op::Done {
            client_id: session.client_id.clone(),
            seq,
        });
    }

    /// A change nobody waits for.
    fn record(&self, op: Op) {
        if let Some(d) = &self.durable {
            d.record(op);
        }
    }

    /// The store op that records an incoming QoS 2 packet id (with the publish it belongs to),
    /// for a session the store keeps.
    pub fn incoming_qos2_op(&self, session: &Session, pid: u16) -> Option<Op> {
        (self.durable.is_some() && session.is_persistent()).then(|| Op::IncomingQos2 {
            client_id: session.client_id.clone(),
            pid,
            waiting: true,
        })
    }

    /// PUBREL for an incoming QoS 2 id: the store forgets it before PUBCOMP goes (otherwise a
    /// restart would take the client's next message with that id for a duplicate).
    pub fn incoming_qos2_released(
        &self,
        session: &Session,
        pid: u16,
        notify: &Arc<ConnCtl>,
    ) -> Option<Arc<Pending>> {
        let d = self.durable.as_ref()?;
        if !session.is_persistent() {
            return None;
        }
        let p = Pending::new();
        d.submit(Batch {
            ops: vec![Op::IncomingQos2 {
                client_id: session.client_id.clone(),
                pid,
                waiting: false,
            }],
            pending: Some(p.clone()),
            notify: Some(notify.clone()),
        });
        Some(p)
    }

    /// False when the durable store can no longer write: QoS 1/2 publishes are refused.
    pub fn store_writable(&self) -> bool {
        self.durable.as_ref().is_none_or(|d| d.healthy())
    }

    /// A delivery in flight that will never be acknowledged (too large for the client): the
    /// spec says to behave as if it had been delivered.
    pub fn drop_inflight(&self, session: &Session, pid: u16) {
        if let Some(seq) = session.discard(pid) {
            self.done(session, seq);
        }
    }

    /// Deliveries that left the session without an acknowledgement (expired, or too large for the
    /// client): the store forgets them.
    pub fn delivered_without_ack(&self, session: &Session, seqs: &mut Vec<u64>) {
        for seq in seqs.drain(..) {
            self.done(session, seq);
        }
    }

    /// Record a persistent session's subscriptions, expiry and will with the store.
    pub fn save_session(&self, s: &Session) {
        if let Some(rec) = s.record() {
            self.store.session_saved(&rec);
        }
        if self.durable.is_some() {
            s.image(|change| match change {
                ImageChange::Save(img) => self.record(Op::SaveSession(img)),
                ImageChange::Forget => self.record(Op::RemoveSession(s.client_id.clone())),
            });
        }
    }

    /// Recreate the persistent sessions the store kept (offline, expiry counting from now).
    pub fn restore_sessions(&self) -> Result<(), StoreError> {
        let now = Instant::now();
        for rec in self.store.load_sessions()? {
            let cid: Arc<str> = Arc::from(rec.client_id.as_str());
            let identity = restored_owner(rec.owner, &cid);
            let s = Arc::new(Session::restored(
                cid.clone(),
                identity,
                rec.expiry_interval,
                now,
            ));
            for (f, o) in rec.subscriptions {
                if let Ok(pf) = parse_filter(&f, usize::MAX) {
                    s.subscribe(None, &f, o, || {
                        Some(self.subs.subscribe(&pf, &cid, s.clone(), o))
                    });
                }
            }
            if rec.expiry_interval != NEVER_EXPIRES {
                let at = now + Duration::from_secs(u64::from(rec.expiry_interval));
                self.timers
                    .schedule(self.ms_at(at), Timer::Expiry(Arc::downgrade(&s)));
            }
            self.sessions.lock(&cid).insert(s);
        }
        Ok(())
    }

    /// Bring back what the durable store kept: retained messages, and every persistent session
    /// (offline) with its queue, its QoS 2 exchanges and its will. Clocks go on from where they
    /// were: a session whose expiry passed while the broker was down ends now and a will whose
    /// delay ran out goes now. A session that was online at the crash lost its connection then:
    /// its will is handled as for any lost connection. Queues are cut to today's limits.
    /// Returns how many sessions and retained messages were restored.
    pub fn restore_durable(&self, restored: Restored) -> (usize, usize) {
        let now = Instant::now();
        let now_wall = clock::now_ms();
        let retained = restored.retained.len();
        for m in restored.retained {
            let topic = m.topic.clone();
            self.store.set_retained(&topic, Some(m));
        }
        let limits = &self.config.limits;
        let cap = limits
            .persistent_client_expiration
            .map(|c| u32::try_from(c.as_secs()).unwrap_or(NEVER_EXPIRES - 1));
        let mut wills = Vec::new();
        let mut sessions = 0;
        for s in restored.sessions {
            let img = s.image;
            let cid: Arc<str> = Arc::from(img.record.client_id.as_str());
            let expiry = cap.map_or(img.record.expiry_interval, |c| {
                img.record.expiry_interval.min(c)
            });
            let gone_ms = img.offline_since.map_or(0, |t| now_wall.saturating_sub(t));
            let left = if expiry == NEVER_EXPIRES {
                Some(NEVER_EXPIRES)
            } else {
                (u64::from(expiry) * 1000)
                    .checked_sub(gone_ms)
                    .filter(|&l| l > 0)
                    .map(|l| u32::try_from(l.div_ceil(1000)).unwrap_or(NEVER_EXPIRES - 1))
            };
            let mut will_now = None;
            let mut delayed = None;
            if let Some(w) = img.will {
                match img.will_due {
                    Some(due) if due <= now_wall => will_now = Some(w),
                    Some(due) => delayed = Some((clock::instant_at(due), w)),
                    None if w.delay == 0 => will_now = Some(w),
                    None => {
                        let wait = w.delay.min(left.unwrap_or(0));
                        delayed = Some((now + Duration::from_secs(u64::from(wait)), w));
                    }
                }
            }
            let Some(left) = left else {
                // Expired while the broker was down: the session ends, its will goes.
                wills.extend(will_now.or(delayed.map(|(_, w)| w)));
                self.record(Op::RemoveSession(cid));
                continue;
            };
            wills.extend(will_now);
            // Copies queued after the session record was last saved have higher seqs: new
            // ones must not reuse (and overwrite) them.
            let next_seq = s
                .rows
                .iter()
                .map(|r| r.delivery.seq + 1)
                .fold(img.next_seq, u64::max);
            let (mut count, mut bytes) = (0usize, 0usize);
            let mut queue = Vec::with_capacity(s.rows.len());
            for row in s.rows {
                let released = row.stage == super::durable::codec::STAGE_RELEASED;
                let cost = row.delivery.cost();
                let drop = !released
                    && (row.expires.is_some_and(|t| t <= now_wall)
                        || (limits.max_queued_messages != 0
                            && count >= limits.max_queued_messages)
                        || (limits.max_queued_bytes != 0
                            && bytes + cost > limits.max_queued_bytes));
                if drop {
                    self.record(Op::Done {
                        client_id: cid.clone(),
                        seq: row.delivery.seq,
                    });
                    continue;
                }
                if !released {
                    count += 1;
                    bytes += cost;
                }
                queue.push((row.delivery, released));
            }
            let identity = restored_owner(img.record.owner, &cid);
            let will_at = delayed.as_ref().map(|(at, _)| *at);
            let session = Arc::new(Session::from_store(RestoredSession {
                client_id: cid.clone(),
                identity,
                version: img.version,
                expiry_interval: left,
                gen: img.gen,
                next_seq,
                queue,
                incoming_qos2: s.incoming_qos2,
                delayed_will: delayed,
                now,
            }));
            for (f, o) in img.record.subscriptions {
                if let Ok(pf) = parse_filter(&f, usize::MAX) {
                    session.subscribe(None, &f, o, || {
                        Some(self.subs.subscribe(&pf, &cid, session.clone(), o))
                    });
                }
            }
            if left != NEVER_EXPIRES {
                let at = now + Duration::from_secs(u64::from(left));
                self.timers
                    .schedule(self.ms_at(at), Timer::Expiry(Arc::downgrade(&session)));
            }
            if let Some(at) = will_at {
                self.timers
                    .schedule(self.ms_at(at), Timer::Will(Arc::downgrade(&session)));
            }
            let mut shard = self.sessions.lock(&cid);
            shard.insert(session.clone());
            // What is true now (offline since now with what is left of its expiry, the will
            // that went) replaces what was stored.
            self.save_session(&session);
            drop(shard);
            sessions += 1;
        }
        for w in wills {
            self.publish_will(&w);
        }
        (sessions, retained)
    }

    /// Act on every deadline that is due: keep alives that ran out, delayed wills, expired
    /// offline sessions. Cost grows with what is due, not with the number of sessions.
    pub fn housekeeping(&self, now: Instant) {
        let now_ms = self.ms_at(now).max(self.now_ms());
        for t in self.timers.due(now_ms) {
            match t {
                Timer::KeepAlive(w) => self.check_keep_alive(w, now_ms),
                Timer::WriteStall(w) => self.check_write_stall(w, now_ms),
                Timer::TokenExpiry(w) => self.check_token(w, now_ms),
                Timer::Park(w) => self.check_idle(w, now_ms),
                Timer::Will(w) => {
                    if let Some(s) = w.upgrade() {
                        if let Some(will) = s.take_due_will(now) {
                            self.publish_will(&will);
                            self.save_session(&s);
                        }
                    }
                }
                Timer::Expiry(w) => {
                    let Some(s) = w.upgrade() else { continue };
                    // Resumed meanwhile, or its expiry changed: act on what is true now.
                    match s.expires_at() {
                        Some(at) if at <= now => self.end_session(&s),
                        Some(at) => self.timers.schedule(self.ms_at(at), Timer::Expiry(w)),
                        None => {}
                    }
                }
            }
        }
    }

    fn check_keep_alive(&self, w: Weak<ConnCtl>, now_ms: u64) {
        let Some(ctl) = w.upgrade() else { return };
        if ctl.kicked().is_some() {
            return;
        }
        let ka = u64::from(ctl.keep_alive_ms.load(Ordering::Relaxed));
        if ka == 0 {
            return;
        }
        let due = ctl.last_seen_ms.load(Ordering::Relaxed).saturating_add(ka);
        if now_ms > due {
            ctl.kick(v5::KEEP_ALIVE_TIMEOUT);
        } else {
            self.timers.schedule(due + 1, Timer::KeepAlive(w));
        }
    }

    /// Close the connection of `ctl` when its access token runs out at `valid_until` (Unix
    /// seconds, wall clock): v5 DISCONNECT 0xA0 (maximum connect time). Called at CONNECT and
    /// after each re-authentication; a later deadline only moves the mark (the pending timer
    /// finds it), an earlier one adds a timer.
    pub fn token_deadline(&self, ctl: &Arc<ConnCtl>, valid_until: u64) {
        let left_ms = valid_until
            .saturating_mul(1000)
            .saturating_sub(clock::now_ms());
        let due = self.now_ms().saturating_add(left_ms).max(1);
        let old = ctl.token_deadline_ms.swap(due, Ordering::AcqRel);
        if old == 0 || due < old {
            self.timers
                .schedule(due, Timer::TokenExpiry(Arc::downgrade(ctl)));
        }
    }

    fn check_token(&self, w: Weak<ConnCtl>, now_ms: u64) {
        let Some(ctl) = w.upgrade() else { return };
        let due = ctl.token_deadline_ms.load(Ordering::Acquire);
        if due == 0 || ctl.kicked().is_some() {
            return;
        }
        if now_ms >= due {
            ctl.kick(v5::MAXIMUM_CONNECT_TIME);
        } else {
            self.timers.schedule(due, Timer::TokenExpiry(w));
        }
    }

    /// Ask the connection of `ctl` to park if it stays idle until the next check: it must then
    /// have moved no bytes for at least `PARK_AFTER`, so busy connections never pay for parking
    /// and resuming. Only a connection that can park (plain TCP) asks for this.
    pub fn park_later(&self, ctl: &Arc<ConnCtl>) {
        self.timers.schedule(
            self.now_ms() + PARK_AFTER_MS,
            Timer::Park(Arc::downgrade(ctl)),
        );
    }

    fn check_idle(&self, w: Weak<ConnCtl>, now_ms: u64) {
        let Some(ctl) = w.upgrade() else { return };
        if ctl.kicked().is_some() {
            return;
        }
        if ctl.take_active() {
            self.timers.schedule(now_ms + PARK_AFTER_MS, Timer::Park(w));
        } else {
            // Quiet since the last check: the connection parks at its first idle moment.
            ctl.request_park();
            ctl.ring();
        }
    }

    /// A connection's write buffer is full (it stopped reading from its client): from now on
    /// its output must make progress within `write_stall_timeout`, or it is closed.
    pub fn write_stalled(&self, ctl: &Arc<ConnCtl>) {
        let now = self.now_ms().max(1);
        ctl.write_stalled_ms.store(now, Ordering::Relaxed);
        let timeout = self.stall_timeout_ms();
        self.timers
            .schedule(now + timeout, Timer::WriteStall(Arc::downgrade(ctl)));
    }

    fn stall_timeout_ms(&self) -> u64 {
        u64::try_from(self.config.limits.write_stall_timeout.as_millis()).unwrap_or(u64::MAX)
    }

    fn check_write_stall(&self, w: Weak<ConnCtl>, now_ms: u64) {
        let Some(ctl) = w.upgrade() else { return };
        let since = ctl.write_stalled_ms.load(Ordering::Relaxed);
        if since == 0 || ctl.kicked().is_some() {
            return;
        }
        let due = since.saturating_add(self.stall_timeout_ms());
        if now_ms >= due {
            self.stats.write_stalls.fetch_add(1, Ordering::Relaxed);
            ctl.kick(v5::QUOTA_EXCEEDED);
        } else {
            self.timers.schedule(due, Timer::WriteStall(w));
        }
    }

    /// Tell every connected client that the broker is stopping (v5 DISCONNECT 0x8B).
    pub fn begin_shutdown(&self) {
        self.shutting_down.store(true, Ordering::SeqCst);
        for s in self.sessions.snapshot() {
            s.kick(v5::SERVER_SHUTTING_DOWN);
        }
    }

    pub fn shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::SeqCst)
    }

    pub fn connected_clients(&self) -> usize {
        self.stats.connected.load(Ordering::Relaxed) as usize
    }

    /// Pending deadlines (keep-alive checks, expiries, delayed wills): for tests and `$SYS`.
    pub fn pending_timers(&self) -> usize {
        self.timers.len()
    }
}

/// The owner of a session restored from the store (an anonymous one when none was stored),
/// holding the session's own client id rather than a second copy of it.
fn restored_owner(owner: Option<Identity>, client_id: &Arc<str>) -> Arc<Identity> {
    let mut id = owner.unwrap_or_else(|| Identity::anonymous(client_id.clone()));
    if id.client_id == *client_id {
        id.client_id = client_id.clone();
    }
    Arc::new(id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::codec::{ProtocolVersion, QoS};
    use crate::broker::router::tests::{broker, connect, drain, msg};
    use crate::broker::session::Outbound;

    fn connect_as(
        b: &Broker,
        id: &str,
        user: Option<&str>,
        clean_start: bool,
        expiry: u32,
    ) -> Result<Attached, AttachError> {
        let identity = Arc::new(match user {
            Some(u) => Identity::with_username(id, u),
            None => Identity::anonymous(id),
        });
        b.attach(AttachRequest {
            client_id: id.into(),
            identity: identity.clone(),
            clean_start,
            attachment: Attachment {
                ctl: Arc::new(ConnCtl::default()),
                identity,
                version: ProtocolVersion::V5,
                window: 20,
                expiry,
                will: None,
            },
            keep_alive: 0,
        })
    }

    fn subscribe(b: &Broker, a: &Attached, filter: &str) {
        let f = parse_filter(filter, 200).unwrap();
        let opts = SubOpts {
            options: crate::broker::codec::SubscriptionOptions {
                qos: QoS::AtLeastOnce,
                ..Default::default()
            },
            subscription_id: None,
        };
        assert_eq!(b.subscribe(&a.session, a.epoch, filter, &f, opts), Ok(true));
    }

    #[test]
    fn a_live_clean_session_is_not_resumed_by_a_takeover() {
        // A is connected with a session that ends with its connection; B asks to resume.
        let b = broker();
        let a = connect(&b, "c", true, 0, None);
        let a_conn = a.session.conn().unwrap();
        subscribe(&b, &a, "t");
        let bb = connect(&b, "c", false, 3600, None);
        assert!(!bb.present, "A's session ended with A's connection");
        assert!(!Arc::ptr_eq(&a.session, &bb.session));
        assert_eq!(b.subs.len(), 0, "A's subscriptions ended with it");
        assert_eq!(a_conn.kicked(), Some(v5::SESSION_TAKEN_OVER));
        // A's connection, told to go, detaches late: B's session is untouched.
        b.detach(&a.session, a.epoch, Departure::Abnormal);
        assert!(b
            .sessions
            .get("c")
            .is_some_and(|s| Arc::ptr_eq(&s, &bb.session)));
    }

    #[test]
    fn a_persistent_session_is_resumed_and_the_old_connection_kicked() {
        let b = broker();
        let a = connect(&b, "c", true, 3600, None);
        let ctl = a.session.conn().unwrap();
        subscribe(&b, &a, "t");
        let n = connect(&b, "c", false, 3600, None);
        assert!(n.present);
        assert!(Arc::ptr_eq(&a.session, &n.session));
        assert_eq!(ctl.kicked(), Some(v5::SESSION_TAKEN_OVER));
        // The stale connection can neither detach nor subscribe the session it lost.
        b.detach(&a.session, a.epoch, Departure::Abnormal);
        assert!(n.session.is_online());
        let f = parse_filter("u", 200).unwrap();
        let opts = SubOpts {
            options: Default::default(),
            subscription_id: None,
        };
        assert_eq!(
            b.subscribe(&a.session, a.epoch, "u", &f, opts),
            Err(SubscribeError::TakenOver)
        );
        assert_eq!(b.subs.len(), 1);
    }

    #[test]
    fn reconnects_after_a_close_see_the_right_session_every_time() {
        let b = broker();
        for round in 0..200u32 {
            let persistent = round % 2 == 0;
            let expiry = if persistent { 3600 } else { 0 };
            let a = connect(&b, "r", false, expiry, None);
            if !a.present {
                subscribe(&b, &a, "t");
            }
            // The old connection's clean-up may run before or after the new attach.
            let n = if round % 3 == 0 {
                let n = connect(&b, "r", false, expiry, None);
                b.detach(&a.session, a.epoch, Departure::Abnormal);
                n
            } else {
                b.detach(&a.session, a.epoch, Departure::Abnormal);
                connect(&b, "r", false, expiry, None)
            };
            assert_eq!(n.present, persistent, "round {round}");
            assert_eq!(
                n.session.subscription_count(),
                usize::from(persistent),
                "round {round}"
            );
            assert_eq!(b.subs.len(), usize::from(persistent), "round {round}");
            b.detach(
                &n.session,
                n.epoch,
                Departure::Graceful { with_will: false },
            );
            b.end_session(&n.session);
        }
    }

    #[test]
    fn another_identity_cannot_take_a_session() {
        let b = broker();
        let a = connect_as(&b, "dev1", Some("alice"), false, 3600).unwrap();
        b.detach(&a.session, a.epoch, Departure::Abnormal);
        assert_eq!(
            connect_as(&b, "dev1", Some("mallory"), false, 3600).err(),
            Some(AttachError::NotOwner)
        );
        assert_eq!(
            connect_as(&b, "dev1", None, true, 0).err(),
            Some(AttachError::NotOwner),
            "not even with a clean start"
        );
        assert!(
            connect_as(&b, "dev1", Some("alice"), false, 3600)
                .unwrap()
                .present
        );
    }

    #[test]
    fn a_client_shares_its_sessions_client_id() {
        let b = broker();
        let a = connect(&b, "p", false, 3600, None);
        b.detach(&a.session, a.epoch, Departure::Abnormal);
        assert!(Arc::ptr_eq(&b.shared_client_id("p"), &a.session.client_id));
        assert_eq!(&*b.shared_client_id("q"), "q");
    }

    #[test]
    fn offline_sessions_expire_by_timer_and_queue_until_then() {
        let b = broker();
        let a = connect(&b, "p", true, 2, None);
        subscribe(&b, &a, "t");
        b.detach(&a.session, a.epoch, Departure::Abnormal);
        assert_eq!(b.publish(&msg("t", QoS::AtLeastOnce, false, None)), 1);
        assert_eq!(a.session.queue_len(), 1);
        b.housekeeping(Instant::now());
        assert!(b.sessions.get("p").is_some(), "not yet expired");
        b.housekeeping(Instant::now() + Duration::from_secs(3));
        assert!(b.sessions.get("p").is_none(), "expired");
        assert_eq!(b.subs.len(), 0);
        assert_eq!(b.pending_timers(), 0);
    }

    #[test]
    fn keep_alive_is_checked_by_timer() {
        let b = broker();
        let ctl = Arc::new(ConnCtl::default());
        let identity = Arc::new(Identity::anonymous("k"));
        let a = b
            .attach(AttachRequest {
                client_id: "k".into(),
                identity: identity.clone(),
                clean_start: true,
                attachment: Attachment {
                    ctl: ctl.clone(),
                    identity,
                    version: ProtocolVersion::V5,
                    window: 20,
                    expiry: 0,
                    will: None,
                },
                keep_alive: 1,
            })
            .unwrap();
        assert_eq!(b.pending_timers(), 1);
        b.housekeeping(Instant::now() + Duration::from_millis(1000));
        assert_eq!(ctl.kicked(), None, "within 1.5 x keep alive");
        // 1.5 s, acted on by the sweep of the next whole second.
        b.housekeeping(Instant::now() + Duration::from_millis(2100));
        assert_eq!(ctl.kicked(), Some(v5::KEEP_ALIVE_TIMEOUT));
        let mut out = Vec::new();
        assert!(!a
            .session
            .take_ready(a.epoch + 1, 1, usize::MAX, &mut out, &mut Vec::new()));
        assert!(drain(&a.session, a.epoch).is_empty());
        assert!(out.iter().all(|o| matches!(o, Outbound::PubRel(_))));
    }

    #[test]
    fn a_restored_session_keeps_its_whole_owner() {
        let store = Arc::new(crate::broker::store::MemoryStore::new());
        let make = || {
            Broker::new(
                Arc::new(crate::config::defaults::embedded()),
                Arc::new(crate::broker::auth::AllowAnonymous {
                    clientid_prefixes: vec![],
                }),
                store.clone(),
            )
        };
        let owner = Identity::with_username("m7", "meter-7")
            .with_cert_subject(Some("CN=meter-7".into()))
            .with_roles(vec!["meters".into()]);
        let b = make();
        let attach = |b: &Broker, who: &Identity| {
            let id = Arc::new(who.clone());
            b.attach(AttachRequest {
                client_id: "m7".into(),
                identity: id.clone(),
                clean_start: false,
                attachment: Attachment {
                    ctl: Arc::new(ConnCtl::default()),
                    identity: id,
                    version: ProtocolVersion::V5,
                    window: 20,
                    expiry: 3600,
                    will: None,
                },
                keep_alive: 0,
            })
        };
        let a = attach(&b, &owner).unwrap();
        b.detach(&a.session, a.epoch, Departure::Abnormal);
        // A broker started from the same store.
        let b2 = make();
        b2.restore_sessions().unwrap();
        let restored = b2.sessions.get("m7").unwrap().owner().unwrap();
        assert_eq!(restored.cert_subject(), Some("CN=meter-7"));
        assert_eq!(restored.roles(), ["meters".to_string()]);
        // The restored owner shares the session's client id.
        assert!(Arc::ptr_eq(
            &restored.client_id,
            &b2.sessions.get("m7").unwrap().client_id
        ));
        let other_cert = owner.clone().with_cert_subject(Some("CN=intruder".into()));
        assert_eq!(attach(&b2, &other_cert).err(), Some(AttachError::NotOwner));
        assert!(attach(&b2, &owner).unwrap().present);
    }
}
