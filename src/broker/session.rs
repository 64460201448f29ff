//! Per-client session state: subscriptions, the outbound queue (online and offline are one
//! queue), the inflight window with packet ids, incoming QoS 2 ids, expiry and wills.
//!
//! Each session has its own short mutex: the publish path of another client locks it only to
//! push a delivery, the owning connection only to take a batch, so sessions never contend with
//! each other.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::task::AtomicWaker;
use parking_lot::Mutex;

use super::codec::{ProtocolVersion, QoS};
use super::durable::{clock, Pending, PendingState, SessionImage, StoredDelivery};
pub use super::message::Message;
use super::store::SessionRecord;
use super::topic::SubOpts;
use crate::config::model::Limits;
use crate::security::identity::Identity;

/// v5 session expiry value meaning "never".
pub const NEVER_EXPIRES: u32 = u32::MAX;

/// One message on its way to one client.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub msg: Arc<Message>,
    pub qos: QoS,
    pub retain: bool,
    pub sub_ids: Vec<u32>,
    /// Unique within the session; the durable store's key for this queued message.
    pub seq: u64,
    /// A copy kept by the durable store has its packet id from the moment it is queued (stored
    /// with it), so a restart resends it under the same id: a QoS 2 receiver recognizes it.
    pub pid: Option<u16>,
    /// While its batch is being written: not sent before it is durable (a message is recorded
    /// before any subscriber can be told about it), dropped if the write failed.
    pub pending: Option<Arc<Pending>>,
}

impl Delivery {
    /// Memory this delivery holds while queued: its message (shared, but held by this queue
    /// too) and its own bookkeeping.
    pub fn cost(&self) -> usize {
        std::mem::size_of::<Delivery>() + self.msg.cost + self.sub_ids.len() * 4
    }

    /// Whether the durable store keeps this delivery (and must be told when it is done).
    pub fn stored(&self) -> bool {
        self.pid.is_some()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// QoS 1 sent, waiting for PUBACK.
    AwaitAck,
    /// QoS 2 sent, waiting for PUBREC.
    AwaitRec,
    /// PUBREL sent, waiting for PUBCOMP.
    AwaitComp,
}

#[derive(Debug)]
pub struct Inflight {
    pub delivery: Delivery,
    pub stage: Stage,
    order: u64,
    /// The batch recording its PUBREC (a stored QoS 2 delivery), until that is durable: PUBREL
    /// may not go before it.
    released: Option<Arc<Pending>>,
}

/// What the connection must write for the session.
#[derive(Debug)]
pub enum Outbound {
    Publish {
        delivery: Delivery,
        packet_id: Option<u16>,
        dup: bool,
    },
    PubRel(u16),
}

/// A will waiting for its connection to end (or, once it has, for its delay to pass).
#[derive(Debug, Clone)]
pub struct Will {
    pub msg: Arc<Message>,
    pub delay: u32,
    /// Who published it: its write permission is checked again when it is sent (the ACL may
    /// have changed meanwhile). `None` for a will restored from the store, whose session's owner
    /// is no longer known as a live identity; it was checked when it was accepted.
    pub owner: Option<Arc<Identity>>,
}

/// The attached connection's doorbell: rung when a delivery is queued for it, and when the
/// broker tells it to go (session takeover, shutdown). A flag and a waker rather than a tokio
/// `Notify`: the connection polls the bell inside its one I/O future, so no 64-byte `Notified`
/// future sits in every idle connection.
#[derive(Debug, Default)]
pub struct ConnCtl {
    /// Rung since the connection last looked (a delivery or a kick is waiting).
    rung: AtomicBool,
    waker: AtomicWaker,
    /// The v5 DISCONNECT reason to send; 0 = not kicked.
    pub reason: AtomicU8,
    /// Keep alive × 1.5 in milliseconds (0 = none; at most 98,302,500, so 32 bits, which keeps
    /// this block in a smaller heap chunk) and when the client was last heard from
    /// (milliseconds since the broker started). The broker's once-a-second sweep checks them, so
    /// a connection needs no timer of its own.
    pub keep_alive_ms: AtomicU32,
    pub last_seen_ms: AtomicU64,
    /// While the connection's write buffer is full: when its output last made progress
    /// (milliseconds since the broker started); 0 when it is not full.
    pub write_stalled_ms: AtomicU64,
    /// When the client's access token runs out (milliseconds since the broker started); 0: it
    /// authenticated without one. A v5 re-authentication moves it.
    pub token_deadline_ms: AtomicU64,
    /// The broker asks an idle connection to park (give up its task, see
    /// `connection::parking`).
    park: AtomicBool,
    /// The connection read or wrote since the broker last looked: it is not idle.
    active: AtomicBool,
}

impl ConnCtl {
    pub fn kick(&self, reason: u8) {
        self.reason.store(reason, Ordering::Release);
        self.ring();
    }

    /// Wake the connection; like `Notify::notify_one`, a ring with nobody waiting is kept.
    pub fn ring(&self) {
        self.rung.store(true, Ordering::Release);
        self.waker.wake();
    }

    /// Ready once the bell has rung since the last Ready (that ring is taken).
    pub fn poll_rung(&self, cx: &mut std::task::Context<'_>) -> std::task::Poll<()> {
        if self.rung.swap(false, Ordering::AcqRel) {
            return std::task::Poll::Ready(());
        }
        self.waker.register(cx.waker());
        // A ring between the first look and the registration would otherwise be missed.
        if self.rung.swap(false, Ordering::AcqRel) {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    }

    /// Make `waker` the bell's (a parked connection's). A ring already waiting is left for
    /// whoever polls next (see `is_rung`).
    pub fn register_bell(&self, waker: &std::task::Waker) {
        self.waker.register(waker);
    }

    /// Whether a ring is waiting to be taken.
    pub fn is_rung(&self) -> bool {
        self.rung.load(Ordering::Acquire)
    }

    /// Ask the connection to park at its first idle moment.
    pub fn request_park(&self) {
        self.park.store(true, Ordering::Relaxed);
    }

    /// Whether the connection was asked to park.
    pub fn park_requested(&self) -> bool {
        self.park.load(Ordering::Relaxed)
    }

    /// The connection parked: the request is done.
    pub fn parked(&self) {
        self.park.store(false, Ordering::Relaxed);
    }

    /// The connection moved bytes: it is not idle.
    pub fn mark_active(&self) {
        // Read first: a busy connection would otherwise write a shared line on every turn.
        if !self.active.load(Ordering::Relaxed) {
            self.active.store(true, Ordering::Relaxed);
        }
    }

    /// Whether the connection moved bytes since the last call.
    pub fn take_active(&self) -> bool {
        self.active.swap(false, Ordering::Relaxed)
    }

    /// Whether the keep alive has run out at `now_ms`.
    pub fn keep_alive_expired(&self, now_ms: u64) -> bool {
        let ka = u64::from(self.keep_alive_ms.load(Ordering::Relaxed));
        ka > 0 && now_ms.saturating_sub(self.last_seen_ms.load(Ordering::Relaxed)) > ka
    }

    pub fn kicked(&self) -> Option<u8> {
        match self.reason.load(Ordering::Acquire) {
            0 => None,
            r => Some(r),
        }
    }
}

/// The session's will: live (sent if its connection ends abnormally) or, once the connection
/// has ended, delayed until `due`.
#[derive(Debug)]
struct WillSlot {
    due: Option<Instant>,
    will: Will,
}

/// State that most sessions hold only now and then: 8 bytes while unused.
#[derive(Debug, Default)]
struct Sparse<T>(Option<Box<T>>);

impl<T: Default> Sparse<T> {
    fn get(&self) -> Option<&T> {
        self.0.as_deref()
    }

    fn get_mut(&mut self) -> Option<&mut T> {
        self.0.as_deref_mut()
    }

    fn make(&mut self) -> &mut T {
        self.0.get_or_insert_with(Box::default)
    }

    fn clear(&mut self) {
        self.0 = None;
    }

    fn take(&mut self) -> T {
        self.0.take().map(|b| *b).unwrap_or_default()
    }
}

/// A session's subscriptions, raw filter (with any `$share/GROUP/` prefix) -> options, in
/// filter order. A few are a sorted vector: one filter costs its entry (48 bytes) where a
/// B-tree's first leaf has room for 11 (about 450), and most devices subscribe to one or two.
#[derive(Debug)]
enum Subscriptions {
    Few(Vec<(String, SubOpts)>),
    Many(BTreeMap<String, SubOpts>),
}

/// Beyond this many, a B-tree (a subscribe among 10,000 filters stays O(log n)).
const FEW_SUBSCRIPTIONS: usize = 8;

impl Default for Subscriptions {
    fn default() -> Self {
        Subscriptions::Few(Vec::new())
    }
}

impl Subscriptions {
    fn find(v: &[(String, SubOpts)], raw: &str) -> Result<usize, usize> {
        v.binary_search_by(|(f, _)| f.as_str().cmp(raw))
    }

    fn get(&self, raw: &str) -> Option<&SubOpts> {
        match self {
            Subscriptions::Few(v) => Self::find(v, raw).ok().map(|i| &v[i].1),
            Subscriptions::Many(m) => m.get(raw),
        }
    }

    fn get_mut(&mut self, raw: &str) -> Option<&mut SubOpts> {
        match self {
            Subscriptions::Few(v) => match Self::find(v, raw) {
                Ok(i) => Some(&mut v[i].1),
                Err(_) => None,
            },
            Subscriptions::Many(m) => m.get_mut(raw),
        }
    }

    /// Add or replace.
    fn insert(&mut self, raw: &str, opts: SubOpts) {
        match self {
            Subscriptions::Few(v) => match Self::find(v, raw) {
                Ok(i) => v[i].1 = opts,
                Err(i) if v.len() < FEW_SUBSCRIPTIONS => v.insert(i, (raw.to_string(), opts)),
                Err(_) => {
                    let mut m: BTreeMap<String, SubOpts> = v.drain(..).collect();
                    m.insert(raw.to_string(), opts);
                    *self = Subscriptions::Many(m);
                }
            },
            Subscriptions::Many(m) => {
                m.insert(raw.to_string(), opts);
            }
        }
    }

    fn remove(&mut self, raw: &str) {
        match self {
            Subscriptions::Few(v) => {
                if let Ok(i) = Self::find(v, raw) {
                    v.remove(i);
                }
            }
            Subscriptions::Many(m) => {
                m.remove(raw);
            }
        }
    }

    fn len(&self) -> usize {
        match self {
            Subscriptions::Few(v) => v.len(),
            Subscriptions::Many(m) => m.len(),
        }
    }

    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn iter(&self) -> Box<dyn Iterator<Item = (&str, &SubOpts)> + '_> {
        match self {
            Subscriptions::Few(v) => Box::new(v.iter().map(|(f, o)| (f.as_str(), o))),
            Subscriptions::Many(m) => Box::new(m.iter().map(|(f, o)| (f.as_str(), o))),
        }
    }

    fn into_filters(self) -> Vec<String> {
        match self {
            Subscriptions::Few(v) => v.into_iter().map(|(f, _)| f).collect(),
            Subscriptions::Many(m) => m.into_keys().collect(),
        }
    }
}

/// What a session holds while messages are on their way: the queue, the inflight window and the
/// packet ids in use. Boxed, made on first use and given back once all of it is done
/// (`Session::trim`, when the connection goes idle): an idle session keeps 8 bytes of it, not
/// 120 (RSS per idle connection is a goal of the broker). B-trees rather than hash maps: 24
/// bytes each when empty instead of 48 (the sets are small: a window of inflight ids).
#[derive(Debug, Default)]
struct Flow {
    queue: VecDeque<Delivery>,
    queued_bytes: usize,
    inflight: BTreeMap<u16, Inflight>,
    inflight_order: u64,
    next_pid: u16,
    /// QoS 2 packet ids received (PUBREC sent), waiting for PUBREL.
    /// With the batch that records it, while that is being written (a failed one frees the id).
    incoming_qos2: BTreeMap<u16, Option<Arc<Pending>>>,
    /// Packet ids given to queued deliveries that the durable store keeps (not yet in flight).
    reserved: BTreeSet<u16>,
}

/// A session's epoch: which attach a connection made. 32 bits: it only has to tell the live
/// connection from the ones it replaced.
pub type Epoch = u32;

#[derive(Debug)]
enum Presence {
    Online(Arc<ConnCtl>),
    /// Since when (None: never attached yet, or ended).
    Offline(Option<Instant>),
}

#[derive(Debug)]
struct SessionState {
    /// Increments on every attach: a connection whose epoch is stale has been taken over.
    epoch: Epoch,
    /// The session has ended: nothing may be queued or subscribed any more.
    ended: bool,
    /// The attached connection, or since when none has been (one field for both: 16 bytes).
    presence: Presence,
    /// Who owns the session: the identity of the connection that last attached it.
    identity: Option<Arc<Identity>>,
    version: ProtocolVersion,
    /// Raw filter (with any `$share/GROUP/` prefix) -> options; boxed while there are any, so
    /// a session without subscriptions (a device that only publishes) fits a smaller heap size.
    subscriptions: Sparse<Subscriptions>,
    flow: Sparse<Flow>,
    /// Outbound window: the client's receive maximum (v5) or max_inflight_messages.
    window: u16,
    expiry_interval: u32,
    /// Boxed: most clients have no will (8 bytes in every session instead of 64).
    will: Option<Box<WillSlot>>,
    next_seq: u64,
    /// Tells this session's rows in the durable store from those of an earlier session of the
    /// same client id (random, kept across restarts).
    gen: u64,
    /// The durable store holds a record of this session (so a change to a session that ends
    /// with its connection must remove it).
    stored: bool,
}

pub struct Session {
    pub client_id: Arc<str>,
    state: Mutex<SessionState>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("client_id", &self.client_id)
            .finish()
    }
}

/// Why `enqueue` did not queue a delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// QoS 0 for an offline client (and `queue_qos0_messages` is off).
    Offline,
    QueueFull,
    NotAuthorized,
    /// The session has ended.
    Ended,
}

/// A connection joining a session.
pub struct Attachment {
    pub ctl: Arc<ConnCtl>,
    pub identity: Arc<Identity>,
    pub version: ProtocolVersion,
    /// Outbound window (the client's receive maximum, capped by the broker).
    pub window: u16,
    /// Session expiry interval after the cap (0 = ends with the connection).
    pub expiry: u32,
    pub will: Option<Will>,
}

/// What attaching replaced.
pub struct Replaced {
    pub epoch: Epoch,
    /// The connection that had the session until now: it must be told to go.
    pub old_conn: Option<Arc<ConnCtl>>,
    /// That connection's will (the caller decides whether it is sent).
    pub old_will: Option<Will>,
}

/// What detaching a connection left to do.
pub struct Detached {
    /// A will to send now.
    pub will_now: Option<Will>,
    /// A will held back until this time (the session goes on meanwhile).
    pub will_at: Option<Instant>,
    /// The session's expiry interval: 0 means it ends now.
    pub expiry: u32,
}

/// What ending a session left to do.
pub struct Ended {
    /// Every raw filter it held: to be removed from the subscription tree.
    pub filters: Vec<String>,
    /// The connection still attached, if any: it must be told to go.
    pub conn: Option<Arc<ConnCtl>>,
    /// The will (live or delayed) that goes now because the session ends.
    pub will: Option<Will>,
    /// The durable store held a record of it (to be removed).
    pub was_stored: bool,
}

/// See `Session::image`.
pub enum ImageChange {
    Save(Box<SessionImage>),
    Forget,
}

/// Everything `Session::from_store` needs (times already turned into this process's clock).
pub struct RestoredSession {
    pub client_id: Arc<str>,
    pub identity: Arc<Identity>,
    pub version: ProtocolVersion,
    /// What is left of the expiry interval, counted from `now`.
    pub expiry_interval: u32,
    pub gen: u64,
    pub next_seq: u64,
    /// Stored deliveries in seq order; true for a QoS 2 exchange waiting for PUBCOMP.
    pub queue: Vec<(Delivery, bool)>,
    pub incoming_qos2: Vec<u16>,
    pub delayed_will: Option<(Instant, Will)>,
    pub now: Instant,
}

/// An acknowledgement the client sent for a message the broker sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AckKind {
    PubAck,
    /// PUBREC with a success code.
    PubRec,
    /// PUBREC with an error code: the exchange ends.
    PubRecFailed,
    PubComp,
}

/// What an acknowledgement did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AckOutcome {
    /// The delivery is complete (its seq, when the durable store keeps it).
    Completed(Option<u64>),
    /// PUBREC accepted: answer PUBREL (after the durable store has recorded it, for the seq
    /// given).
    Received(Option<u64>),
    /// No message in flight with that packet id.
    Unknown,
    /// The packet id is in flight, but in another flow: a protocol error.
    WrongType,
}

/// An incoming QoS 2 packet id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IncomingQos2 {
    /// Already received (PUBREC sent): acknowledge again, do not route twice.
    Duplicate,
    /// New, but the client has too many unreleased ones.
    TooMany,
    New,
}

impl Session {
    pub fn new(client_id: Arc<str>, version: ProtocolVersion, expiry_interval: u32) -> Session {
        Session {
            client_id,
            state: Mutex::new(SessionState {
                epoch: 0,
                ended: false,
                presence: Presence::Offline(None),
                identity: None,
                version,
                subscriptions: Sparse::default(),
                flow: Sparse::default(),
                window: 20,
                expiry_interval,
                will: None,
                next_seq: 0,
                gen: rand::random(),
                stored: false,
            }),
        }
    }

    /// A session brought back from the store: offline since `now`, owned by `identity`.
    pub fn restored(
        client_id: Arc<str>,
        identity: Arc<Identity>,
        expiry_interval: u32,
        now: Instant,
    ) -> Session {
        let s = Session::new(client_id, ProtocolVersion::V5, expiry_interval);
        {
            let mut st = s.state.lock();
            st.identity = Some(identity);
            st.presence = Presence::Offline(Some(now));
        }
        s
    }

    pub fn is_online(&self) -> bool {
        self.state.lock().attached().is_some()
    }

    /// The owner of a session whose client is connected (one lock for both questions).
    pub fn online_owner(&self) -> Option<Arc<Identity>> {
        let st = self.state.lock();
        st.attached().and(st.identity.clone())
    }

    /// The identity that owns the session (None before the first attach).
    pub fn owner(&self) -> Option<Arc<Identity>> {
        self.state.lock().identity.clone()
    }

    /// Whether the session ends when its connection does (v3 clean session, v5 expiry 0), or
    /// has already ended, or (offline) has outlived its expiry at `now`.
    pub fn is_over(&self, now: Instant) -> bool {
        let st = self.state.lock();
        st.ended
            || (st.attached().is_some() && st.expiry_interval == 0)
            || st.expires_at().is_some_and(|t| t <= now)
    }

    /// Join a connection to the session; the caller holds the registry lock of its client id.
    pub fn attach(&self, a: Attachment) -> Replaced {
        let mut st = self.state.lock();
        st.epoch = st.epoch.wrapping_add(1);
        let old_conn = match std::mem::replace(&mut st.presence, Presence::Online(a.ctl)) {
            Presence::Online(c) => Some(c),
            Presence::Offline(_) => None,
        };
        let old_will = st.take_live_will();
        st.identity = Some(a.identity);
        st.version = a.version;
        st.window = a.window;
        st.expiry_interval = a.expiry;
        // Replaces a delayed will too: resumed before its delay ran out, the session goes on
        // and that will is not sent.
        st.will = a.will.map(|will| Box::new(WillSlot { due: None, will }));
        Replaced {
            epoch: st.epoch,
            old_conn,
            old_will,
        }
    }

    /// Leave the session (the connection of `epoch` ended). None when that connection had already
    /// been replaced. `keep_will` false drops the will (normal DISCONNECT, shutdown).
    pub fn detach(&self, epoch: Epoch, now: Instant, keep_will: bool) -> Option<Detached> {
        let mut st = self.state.lock();
        if st.epoch != epoch || st.ended {
            return None;
        }
        st.presence = Presence::Offline(Some(now));
        let will = st.take_live_will().filter(|_| keep_will);
        let expiry = st.expiry_interval;
        let mut d = Detached {
            will_now: None,
            will_at: None,
            expiry,
        };
        if let Some(w) = will {
            if w.delay > 0 && expiry > 0 {
                let wait = w.delay.min(expiry);
                // u32 seconds always fit in an Instant on supported platforms.
                if let Some(at) = now.checked_add(Duration::from_secs(u64::from(wait))) {
                    st.will = Some(Box::new(WillSlot {
                        due: Some(at),
                        will: w,
                    }));
                    d.will_at = Some(at);
                }
            } else {
                d.will_now = Some(w);
            }
        }
        Some(d)
    }

    /// End the session for good: no connection, queue, inflight or subscriptions are left.
    /// The caller holds the registry lock of its client id and removes the filters from the tree.
    pub fn end(&self) -> Ended {
        let mut st = self.state.lock();
        st.ended = true;
        st.epoch = st.epoch.wrapping_add(1);
        st.flow.clear();
        let was_stored = std::mem::take(&mut st.stored);
        let conn = match std::mem::replace(&mut st.presence, Presence::Offline(None)) {
            Presence::Online(c) => Some(c),
            Presence::Offline(_) => None,
        };
        let will = st.will.take().map(|s| s.will);
        Ended {
            filters: st.subscriptions.take().into_filters(),
            conn,
            will,
            was_stored,
        }
    }

    /// The delayed will, if it is due at `now`.
    pub fn take_due_will(&self, now: Instant) -> Option<Will> {
        let mut st = self.state.lock();
        if st
            .will
            .as_ref()
            .is_some_and(|s| s.due.is_some_and(|t| t <= now))
        {
            st.will.take().map(|s| s.will)
        } else {
            None
        }
    }

    /// When this offline session ends, or None if it does not (online, or never expires).
    pub fn expires_at(&self) -> Option<Instant> {
        self.state.lock().expires_at()
    }

    /// The attached connection's control block, if a connection is attached.
    pub fn conn(&self) -> Option<Arc<ConnCtl>> {
        self.state.lock().attached().cloned()
    }

    /// What a durable store keeps of the session; None for a session that ends with its
    /// connection (nothing to keep).
    pub fn record(&self) -> Option<SessionRecord> {
        let st = self.state.lock();
        if st.expiry_interval == 0 || st.ended {
            return None;
        }
        Some(SessionRecord {
            client_id: self.client_id.to_string(),
            owner: st.identity.as_ref().map(|i| {
                let mut owner = (**i).clone();
                owner.set_peer(None);
                owner
            }),
            expiry_interval: st.expiry_interval,
            subscriptions: st.subscription_list(),
        })
    }

    /// Tell `record` what the durable store must do about this session now: save its image (it
    /// outlives its connection) or forget it (it was kept, and now ends with its connection).
    /// `record` runs under the session lock: a save can never reach the store after the removal
    /// that ending the session sends (`end` takes the same lock first).
    pub fn image(&self, record: impl FnOnce(ImageChange)) {
        let mut st = self.state.lock();
        if st.ended {
            return;
        }
        if st.expiry_interval == 0 {
            if std::mem::take(&mut st.stored) {
                record(ImageChange::Forget);
            }
            return;
        }
        st.stored = true;
        let (will, will_due) = match st.will.as_deref() {
            Some(s) => (Some(s.will.clone()), s.due.map(clock::wall_ms)),
            None => (None, None),
        };
        record(ImageChange::Save(Box::new(SessionImage {
            record: SessionRecord {
                client_id: self.client_id.to_string(),
                owner: st.identity.as_ref().map(|i| {
                    let mut owner = (**i).clone();
                    owner.set_peer(None);
                    owner
                }),
                expiry_interval: st.expiry_interval,
                subscriptions: st.subscription_list(),
            },
            gen: st.gen,
            next_seq: st.next_seq,
            version: st.version,
            offline_since: match st.presence {
                Presence::Offline(Some(t)) => Some(clock::wall_ms(t)),
                _ => None,
            },
            will,
            will_due,
        })));
    }

    /// A session brought back from the durable store, offline: its queue (in order, packet ids
    /// reserved), the QoS 2 exchanges waiting for PUBCOMP, incoming QoS 2 ids, a delayed will.
    pub fn from_store(r: RestoredSession) -> Session {
        let s = Session::new(r.client_id, r.version, r.expiry_interval);
        {
            let mut st = s.state.lock();
            st.identity = Some(r.identity);
            st.presence = Presence::Offline(Some(r.now));
            st.gen = r.gen;
            st.next_seq = r.next_seq;
            st.stored = true;
            st.will = r.delayed_will.map(|(at, will)| {
                Box::new(WillSlot {
                    due: Some(at),
                    will,
                })
            });
            let f = st.flow.make();
            f.incoming_qos2 = r.incoming_qos2.into_iter().map(|p| (p, None)).collect();
            for (d, awaiting_comp) in r.queue {
                let Some(pid) = d.pid else { continue };
                if awaiting_comp {
                    let order = f.inflight_order;
                    f.inflight_order += 1;
                    f.inflight.insert(
                        pid,
                        Inflight {
                            delivery: d,
                            stage: Stage::AwaitComp,
                            order,
                            released: None,
                        },
                    );
                } else {
                    f.reserved.insert(pid);
                    f.queued_bytes += d.cost();
                    f.queue.push_back(d);
                }
            }
            if f.is_done() {
                st.flow.clear();
            }
        }
        s
    }

    /// Wake the attached connection (a held-back delivery became durable).
    pub fn ring(&self) {
        if let Some(c) = self.state.lock().attached() {
            c.ring();
        }
    }

    /// Whether the session outlives its connection (its state is kept durably).
    pub fn is_persistent(&self) -> bool {
        self.state.lock().expiry_interval != 0
    }

    /// Record a subscription, if `epoch` is still the session's connection (a connection that was
    /// replaced must not add to the session it lost): None then. `add` puts it in the
    /// subscription tree, or refuses it (a quota) with None, and then it is not recorded either;
    /// it runs under the session lock, so ending the session cannot miss it.
    pub fn subscribe<R>(
        &self,
        epoch: Option<Epoch>,
        raw: &str,
        opts: SubOpts,
        add: impl FnOnce() -> Option<R>,
    ) -> Option<Option<R>> {
        let mut st = self.state.lock();
        if st.ended || epoch.is_some_and(|e| e != st.epoch) {
            return None;
        }
        let r = add();
        if r.is_some() {
            st.subscriptions.make().insert(raw, opts);
        }
        Some(r)
    }

    /// Forget a subscription; `remove` takes it out of the subscription tree.
    pub fn unsubscribe<R>(&self, raw: &str, remove: impl FnOnce() -> R) -> R {
        let mut st = self.state.lock();
        if let Some(m) = st.subscriptions.get_mut() {
            m.remove(raw);
            if m.is_empty() {
                st.subscriptions.clear();
            }
        }
        remove()
    }

    /// The raw filters (with any `$share/GROUP/` prefix) the session holds and the QoS each was
    /// granted.
    pub fn subscriptions_granted(&self) -> Vec<(String, QoS)> {
        self.state
            .lock()
            .subscription_list()
            .into_iter()
            .map(|(f, o)| (f, o.options.qos))
            .collect()
    }

    /// Lower the granted QoS of subscription `raw` to `max`; `update` re-files it in the
    /// subscription tree with the new options. False if there is no such subscription or it
    /// already is at or below `max`.
    pub fn cap_subscription(&self, raw: &str, max: QoS, update: impl FnOnce(SubOpts)) -> bool {
        let mut st = self.state.lock();
        let Some(opts) = st.subscriptions.get_mut().and_then(|m| m.get_mut(raw)) else {
            return false;
        };
        if opts.options.qos <= max {
            return false;
        }
        opts.options.qos = max;
        update(*opts);
        true
    }

    pub fn has_subscription(&self, raw: &str) -> bool {
        self.state
            .lock()
            .subscriptions
            .get()
            .is_some_and(|m| m.get(raw).is_some())
    }

    pub fn subscription_count(&self) -> usize {
        self.state
            .lock()
            .subscriptions
            .get()
            .map_or(0, Subscriptions::len)
    }

    /// Set the expiry interval (v5 DISCONNECT may change it).
    pub fn set_expiry(&self, e: u32) {
        self.state.lock().expiry_interval = e;
    }

    /// Classify an incoming QoS 2 packet id; `max` is how many may await PUBREL at once.
    pub fn incoming_qos2(&self, pid: u16, max: usize) -> IncomingQos2 {
        let mut st = self.state.lock();
        let Some(f) = st.flow.get_mut() else {
            return if max == 0 {
                IncomingQos2::TooMany
            } else {
                IncomingQos2::New
            };
        };
        match f.incoming_qos2.get(&pid) {
            // Its message was never kept (the store failed, perhaps after the connection that
            // would have said so had gone): a resend is a new message.
            Some(Some(p)) if p.state() == PendingState::Failed => {
                f.incoming_qos2.remove(&pid);
            }
            Some(_) => return IncomingQos2::Duplicate,
            None => {}
        }
        if f.incoming_qos2.len() >= max {
            IncomingQos2::TooMany
        } else {
            IncomingQos2::New
        }
    }

    /// PUBREC was (or will be, once `pending` is durable) sent for `pid`: remember it until
    /// PUBREL.
    pub fn remember_qos2(&self, pid: u16, pending: Option<Arc<Pending>>) {
        self.state
            .lock()
            .flow
            .make()
            .incoming_qos2
            .insert(pid, pending);
    }

    /// PUBREL: forget `pid`. False if it was not known.
    pub fn release_qos2(&self, pid: u16) -> bool {
        self.state
            .lock()
            .flow
            .get_mut()
            .and_then(|f| f.incoming_qos2.remove(&pid))
            .is_some()
    }

    /// Tell the attached connection to go with a v5 reason code.
    pub fn kick(&self, reason: u8) {
        if let Some(c) = self.state.lock().attached() {
            c.kick(reason);
        }
    }

    /// Queue a delivery. `allowed` is the authorization check, run under the session lock with
    /// the session's current identity (None when no client was ever attached: refuse).
    /// `pending` is the batch of a publish that the durable store records: a QoS 1/2 delivery to
    /// a session that outlives its connection joins it (it gets its packet id now and is held
    /// back until the batch is durable), and is returned so the caller can add it to the batch.
    #[allow(clippy::too_many_arguments)]
    pub fn enqueue(
        &self,
        msg: &Arc<Message>,
        qos: QoS,
        retain: bool,
        sub_ids: Vec<u32>,
        limits: &Limits,
        pending: Option<&Arc<Pending>>,
        allowed: impl FnOnce(&Identity) -> bool,
    ) -> Result<Option<StoredDelivery>, Refused> {
        let mut guard = self.state.lock();
        let st = &mut *guard;
        if st.ended {
            return Err(Refused::Ended);
        }
        let online = st.attached().is_some();
        if !online && qos == QoS::AtMostOnce && !limits.queue_qos0_messages {
            return Err(Refused::Offline);
        }
        match &st.identity {
            Some(id) if allowed(id) => {}
            _ => return Err(Refused::NotAuthorized),
        }
        let mut d = Delivery {
            msg: msg.clone(),
            qos,
            retain,
            sub_ids,
            seq: st.next_seq,
            pid: None,
            pending: None,
        };
        let cost = d.cost();
        let (len, bytes) = st
            .flow
            .get()
            .map_or((0, 0), |f| (f.queue.len(), f.queued_bytes));
        let full = (limits.max_queued_messages != 0 && len >= limits.max_queued_messages)
            || (limits.max_queued_bytes != 0 && bytes + cost > limits.max_queued_bytes);
        if full {
            return Err(Refused::QueueFull);
        }
        let durable = pending.filter(|_| qos != QoS::AtMostOnce && st.expiry_interval != 0);
        let f = st.flow.make();
        if let Some(p) = durable {
            let Some(pid) = f.alloc_pid() else {
                return Err(Refused::QueueFull);
            };
            f.reserved.insert(pid);
            d.pid = Some(pid);
            d.pending = Some(p.clone());
        }
        st.next_seq += 1;
        f.queued_bytes += cost;
        let stored = durable.map(|_| StoredDelivery {
            gen: st.gen,
            delivery: d.clone(),
        });
        f.queue.push_back(d);
        if let Some(c) = st.attached() {
            c.ring();
        }
        Ok(stored)
    }

    /// Move ready deliveries into `out`, assigning packet ids within the window: at most `max`
    /// of them, and no more once their cost reaches `max_bytes` (the first always goes), so a
    /// connection's write buffer cannot overshoot its bound by a whole batch of large messages.
    /// Expired messages are dropped (their seqs are pushed to `done`). Returns false if `epoch`
    /// is no longer the attached connection's.
    pub fn take_ready(
        &self,
        epoch: Epoch,
        max: usize,
        max_bytes: usize,
        out: &mut Vec<Outbound>,
        done: &mut Vec<u64>,
    ) -> bool {
        let mut guard = self.state.lock();
        let st = &mut *guard;
        if st.epoch != epoch || st.attached().is_none() {
            return false;
        }
        let Some(f) = st.flow.get_mut() else {
            return true;
        };
        let mut now: Option<Instant> = None;
        let mut bytes = 0usize;
        while out.len() < max && (bytes < max_bytes || out.is_empty()) {
            let Some(front) = f.queue.front() else { break };
            if let Some(p) = &front.pending {
                match p.state() {
                    PendingState::Durable => {}
                    PendingState::Waiting => break,
                    PendingState::Failed => {
                        // The publisher was refused: as if it had never been published.
                        if let Some(d) = f.queue.pop_front() {
                            f.queued_bytes = f.queued_bytes.saturating_sub(d.cost());
                            if let Some(pid) = d.pid {
                                f.reserved.remove(&pid);
                            }
                        }
                        continue;
                    }
                }
            }
            if front.msg.expires_at.is_some() {
                let n = *now.get_or_insert_with(Instant::now);
                if front.msg.expired(n) {
                    if let Some(d) = f.queue.pop_front() {
                        f.queued_bytes = f.queued_bytes.saturating_sub(d.cost());
                        if let Some(pid) = d.pid {
                            f.reserved.remove(&pid);
                            done.push(d.seq);
                        }
                    }
                    continue;
                }
            }
            if front.qos != QoS::AtMostOnce && f.inflight.len() >= usize::from(st.window) {
                break;
            }
            let Some(d) = f.queue.pop_front() else { break };
            f.queued_bytes = f.queued_bytes.saturating_sub(d.cost());
            bytes += d.cost();
            if d.qos == QoS::AtMostOnce {
                out.push(Outbound::Publish {
                    delivery: d,
                    packet_id: None,
                    dup: false,
                });
                continue;
            }
            let pid = match d.pid {
                Some(pid) => {
                    f.reserved.remove(&pid);
                    pid
                }
                None => {
                    let Some(pid) = f.alloc_pid() else {
                        // Every id in use (window of 65535): put it back and wait for acks.
                        f.queued_bytes += d.cost();
                        f.queue.push_front(d);
                        break;
                    };
                    pid
                }
            };
            let order = f.inflight_order;
            f.inflight_order += 1;
            let stage = if d.qos == QoS::AtLeastOnce {
                Stage::AwaitAck
            } else {
                Stage::AwaitRec
            };
            f.inflight.insert(
                pid,
                Inflight {
                    delivery: d.clone(),
                    stage,
                    order,
                    released: None,
                },
            );
            out.push(Outbound::Publish {
                delivery: d,
                packet_id: Some(pid),
                dup: false,
            });
        }
        true
    }

    /// Everything unacknowledged, in the order first sent: PUBLISH again with DUP, or PUBREL.
    pub fn resend_all(&self) -> Vec<Outbound> {
        let mut st = self.state.lock();
        let Some(f) = st.flow.get_mut() else {
            return Vec::new();
        };
        for i in f.inflight.values_mut() {
            // A PUBREC the store has not recorded (yet, or ever) did not happen as far as a
            // restart knows: ask for it again with the message rather than send PUBREL early.
            if i.released
                .as_ref()
                .is_some_and(|p| p.state() != PendingState::Durable)
            {
                i.stage = Stage::AwaitRec;
                i.released = None;
            }
        }
        let mut v: Vec<(&u16, &Inflight)> = f.inflight.iter().collect();
        v.sort_by_key(|(_, i)| i.order);
        v.into_iter()
            .map(|(pid, i)| match i.stage {
                Stage::AwaitAck | Stage::AwaitRec => Outbound::Publish {
                    delivery: i.delivery.clone(),
                    packet_id: Some(*pid),
                    dup: true,
                },
                Stage::AwaitComp => Outbound::PubRel(*pid),
            })
            .collect()
    }

    /// The batch recording the PUBREC of `pid` (see `Inflight`).
    pub fn set_released(&self, pid: u16, p: Arc<Pending>) {
        if let Some(i) = self
            .state
            .lock()
            .flow
            .get_mut()
            .and_then(|f| f.inflight.get_mut(&pid))
        {
            i.released = Some(p);
        }
    }

    /// The batch a repeated PUBREC's PUBREL must wait for, if it is not durable yet.
    pub fn released_pending(&self, pid: u16) -> Option<Arc<Pending>> {
        self.state
            .lock()
            .flow
            .get()
            .and_then(|f| f.inflight.get(&pid))
            .and_then(|i| i.released.clone())
            .filter(|p| p.state() != PendingState::Durable)
    }

    /// An acknowledgement from the client for the inflight message `pid`: what it completes,
    /// or that it does not fit that message's flow (a PUBREC for a QoS 1 message, a PUBACK for a
    /// QoS 2 one: a protocol error).
    pub fn acknowledged(&self, pid: u16, ack: AckKind) -> AckOutcome {
        let mut st = self.state.lock();
        let Some(f) = st.flow.get_mut() else {
            return AckOutcome::Unknown;
        };
        let Some(i) = f.inflight.get_mut(&pid) else {
            return AckOutcome::Unknown;
        };
        match (ack, i.stage) {
            (AckKind::PubAck, Stage::AwaitAck) | (AckKind::PubComp, Stage::AwaitComp) => {
                f.inflight.remove(&pid).map_or(AckOutcome::Unknown, |i| {
                    AckOutcome::Completed(i.delivery.stored().then_some(i.delivery.seq))
                })
            }
            // A repeated PUBREC (our PUBREL was lost) is answered with PUBREL again.
            (AckKind::PubRec, Stage::AwaitRec | Stage::AwaitComp) => {
                // The durable store must know before PUBREL goes (a restart then sends PUBREL,
                // not the message again); a repeat needs no second record.
                let record = i.stage == Stage::AwaitRec && i.delivery.stored();
                i.stage = Stage::AwaitComp;
                AckOutcome::Received(record.then_some(i.delivery.seq))
            }
            (AckKind::PubRecFailed, Stage::AwaitRec) => {
                f.inflight.remove(&pid).map_or(AckOutcome::Unknown, |i| {
                    AckOutcome::Completed(i.delivery.stored().then_some(i.delivery.seq))
                })
            }
            _ => AckOutcome::WrongType,
        }
    }

    /// Drop an inflight delivery (too large for the client, or refused with an error code).
    /// Returns its seq when the durable store keeps it.
    pub fn discard(&self, pid: u16) -> Option<u64> {
        self.state
            .lock()
            .flow
            .get_mut()
            .and_then(|f| f.inflight.remove(&pid))
            .filter(|i| i.delivery.stored())
            .map(|i| i.delivery.seq)
    }

    pub fn queue_len(&self) -> usize {
        self.state.lock().flow.get().map_or(0, |f| f.queue.len())
    }

    /// Memory held by the queue, as `max_queued_bytes` counts it.
    pub fn queued_bytes(&self) -> usize {
        self.state.lock().flow.get().map_or(0, |f| f.queued_bytes)
    }

    /// Give back the delivery state of a session with nothing on its way (its connection is
    /// going idle); it is made again by the next delivery.
    pub fn trim(&self) {
        let mut st = self.state.lock();
        if st.flow.get().is_some_and(Flow::is_done) {
            st.flow.clear();
        }
    }
}

impl Flow {
    /// Nothing queued, in flight or awaiting PUBREL, and no packet id reserved.
    fn is_done(&self) -> bool {
        self.queue.is_empty()
            && self.inflight.is_empty()
            && self.incoming_qos2.is_empty()
            && self.reserved.is_empty()
    }

    fn alloc_pid(&mut self) -> Option<u16> {
        if self.inflight.len() + self.reserved.len() >= usize::from(u16::MAX) {
            return None;
        }
        loop {
            self.next_pid = self.next_pid.wrapping_add(1);
            if self.next_pid == 0 {
                continue;
            }
            if !self.inflight.contains_key(&self.next_pid)
                && !self.reserved.contains(&self.next_pid)
            {
                return Some(self.next_pid);
            }
        }
    }
}

impl SessionState {
    fn subscription_list(&self) -> Vec<(String, SubOpts)> {
        self.subscriptions
            .get()
            .map(|m| m.iter().map(|(f, o)| (f.to_string(), *o)).collect())
            .unwrap_or_default()
    }

    fn attached(&self) -> Option<&Arc<ConnCtl>> {
        match &self.presence {
            Presence::Online(c) => Some(c),
            Presence::Offline(_) => None,
        }
    }

    /// The will of the attached connection (not a delayed one).
    fn take_live_will(&mut self) -> Option<Will> {
        if self.will.as_ref().is_some_and(|s| s.due.is_none()) {
            self.will.take().map(|s| s.will)
        } else {
            None
        }
    }

    /// When this offline session ends, or None if it never does.
    fn expires_at(&self) -> Option<Instant> {
        if self.expiry_interval == NEVER_EXPIRES {
            return None;
        }
        let Presence::Offline(since) = self.presence else {
            return None;
        };
        since.and_then(|t| t.checked_add(Duration::from_secs(u64::from(self.expiry_interval))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::codec::Properties;
    use bytes::Bytes;

    fn msg(qos: QoS) -> Arc<Message> {
        Arc::new(Message::new(
            "t".into(),
            Bytes::from_static(b"hello"),
            qos,
            false,
            Properties::default(),
            None,
            None,
        ))
    }

    /// Queue one message at `qos` with default limits, allowed.
    fn queue(s: &Session, qos: QoS) {
        s.enqueue(
            &msg(qos),
            qos,
            false,
            vec![],
            &Limits::default(),
            None,
            |_| true,
        )
        .unwrap();
    }

    fn attached(window: u16) -> Session {
        let s = Session::new("c".into(), ProtocolVersion::V5, 0);
        let r = s.attach(Attachment {
            ctl: Arc::new(ConnCtl::default()),
            identity: Arc::new(Identity::anonymous("c")),
            version: ProtocolVersion::V5,
            window,
            expiry: 0,
            will: None,
        });
        assert_eq!(r.epoch, 1);
        s
    }

    #[test]
    fn window_limits_inflight_and_acks_open_it() {
        let s = attached(2);
        for _ in 0..3 {
            queue(&s, QoS::AtLeastOnce);
        }
        let (mut out, mut done) = (Vec::new(), Vec::new());
        assert!(s.take_ready(1, 100, usize::MAX, &mut out, &mut done));
        assert_eq!(out.len(), 2);
        let pid = match &out[0] {
            Outbound::Publish { packet_id, .. } => packet_id.unwrap(),
            _ => panic!(),
        };
        assert_eq!(
            s.acknowledged(pid, AckKind::PubAck),
            AckOutcome::Completed(None)
        );
        assert_eq!(s.acknowledged(pid, AckKind::PubAck), AckOutcome::Unknown);
        out.clear();
        s.take_ready(1, 100, usize::MAX, &mut out, &mut done);
        assert_eq!(out.len(), 1);
        assert!(
            !s.take_ready(2, 100, usize::MAX, &mut out, &mut done),
            "stale epoch"
        );
    }

    /// A few subscriptions are a sorted vector, many a B-tree; both answer alike and list
    /// filters in order.
    #[test]
    fn subscriptions_few_and_many_agree() {
        let opts = |q: QoS| SubOpts {
            options: crate::broker::codec::SubscriptionOptions {
                qos: q,
                ..Default::default()
            },
            subscription_id: None,
        };
        let mut subs = Subscriptions::default();
        for i in (0..20).rev() {
            subs.insert(&format!("f/{i:02}"), opts(QoS::AtMostOnce));
            assert_eq!(subs.len(), 20 - i);
            assert_eq!(
                matches!(subs, Subscriptions::Few(_)),
                subs.len() <= FEW_SUBSCRIPTIONS
            );
            let listed: Vec<&str> = subs.iter().map(|(f, _)| f).collect();
            let mut sorted = listed.clone();
            sorted.sort();
            assert_eq!(listed, sorted);
        }
        subs.insert("f/05", opts(QoS::ExactlyOnce));
        assert_eq!(subs.len(), 20, "replaced, not added");
        assert_eq!(
            subs.get("f/05").map(|o| o.options.qos),
            Some(QoS::ExactlyOnce)
        );
        if let Some(o) = subs.get_mut("f/06") {
            o.options.qos = QoS::AtLeastOnce;
        }
        assert_eq!(
            subs.get("f/06").map(|o| o.options.qos),
            Some(QoS::AtLeastOnce)
        );
        subs.remove("f/00");
        subs.remove("absent");
        assert_eq!(subs.len(), 19);
        assert!(subs.get("f/00").is_none());
        let mut few = Subscriptions::default();
        few.insert("b", opts(QoS::AtMostOnce));
        few.insert("a", opts(QoS::AtMostOnce));
        few.remove("b");
        assert_eq!(few.into_filters(), vec!["a".to_string()]);
    }

    /// `trim` (a connection going idle) gives back the delivery state only once nothing in it
    /// is left to finish: an unacknowledged delivery or a QoS 2 id awaiting PUBREL survives it.
    #[test]
    fn trim_keeps_what_is_unfinished() {
        let s = attached(10);
        let take = |s: &Session| {
            let (mut out, mut done) = (Vec::new(), Vec::new());
            assert!(s.take_ready(1, 100, usize::MAX, &mut out, &mut done));
            out
        };
        queue(&s, QoS::AtLeastOnce);
        s.trim();
        assert_eq!(s.queue_len(), 1, "a queued delivery survives");
        let out = take(&s);
        s.trim();
        assert_eq!(s.resend_all().len(), 1, "an inflight delivery survives");
        let Outbound::Publish {
            packet_id: Some(pid),
            ..
        } = out[0]
        else {
            panic!("a QoS 1 publish")
        };
        assert_eq!(
            s.acknowledged(pid, AckKind::PubAck),
            AckOutcome::Completed(None)
        );
        s.remember_qos2(7, None);
        s.trim();
        assert_eq!(s.incoming_qos2(7, 10), IncomingQos2::Duplicate);
        assert!(s.release_qos2(7));
        s.trim();
        assert!(s.state.lock().flow.get().is_none(), "all done: given back");
        assert_eq!(s.incoming_qos2(7, 10), IncomingQos2::New);
        assert_eq!(s.incoming_qos2(7, 0), IncomingQos2::TooMany);
        // And made again by the next delivery.
        queue(&s, QoS::AtLeastOnce);
        assert_eq!(take(&s).len(), 1);
    }

    #[test]
    fn qos2_flow_and_resend_order() {
        let s = attached(10);
        queue(&s, QoS::ExactlyOnce);
        queue(&s, QoS::AtLeastOnce);
        let (mut out, mut done) = (Vec::new(), Vec::new());
        s.take_ready(1, 100, usize::MAX, &mut out, &mut done);
        assert_eq!(
            s.acknowledged(2, AckKind::PubRec),
            AckOutcome::WrongType,
            "QoS 1"
        );
        assert_eq!(
            s.acknowledged(1, AckKind::PubAck),
            AckOutcome::WrongType,
            "QoS 2"
        );
        assert_eq!(
            s.acknowledged(1, AckKind::PubComp),
            AckOutcome::WrongType,
            "before PUBREC"
        );
        assert_eq!(
            s.acknowledged(1, AckKind::PubRec),
            AckOutcome::Received(None)
        );
        let again = s.resend_all();
        assert!(matches!(again[0], Outbound::PubRel(1)));
        assert!(matches!(
            again[1],
            Outbound::Publish {
                dup: true,
                packet_id: Some(2),
                ..
            }
        ));
        assert_eq!(
            s.acknowledged(1, AckKind::PubRec),
            AckOutcome::Received(None),
            "again"
        );
        assert_eq!(
            s.acknowledged(1, AckKind::PubComp),
            AckOutcome::Completed(None)
        );
        assert_eq!(s.acknowledged(2, AckKind::PubComp), AckOutcome::WrongType);
    }

    #[test]
    fn queue_limits_and_offline_qos0() {
        let s = Session::restored(
            "c".into(),
            Arc::new(Identity::anonymous("c")),
            NEVER_EXPIRES,
            Instant::now(),
        );
        let limits = Limits {
            max_queued_messages: 2,
            ..Limits::default()
        };
        let m = msg(QoS::AtLeastOnce);
        assert_eq!(
            s.enqueue(&m, QoS::AtMostOnce, false, vec![], &limits, None, |_| true)
                .err(),
            Some(Refused::Offline)
        );
        assert!(s
            .enqueue(&m, QoS::AtLeastOnce, false, vec![], &limits, None, |_| true)
            .is_ok());
        assert!(s
            .enqueue(&m, QoS::AtLeastOnce, false, vec![], &limits, None, |_| true)
            .is_ok());
        assert_eq!(
            s.enqueue(&m, QoS::AtLeastOnce, false, vec![], &limits, None, |_| true)
                .err(),
            Some(Refused::QueueFull)
        );
        assert_eq!(
            s.enqueue(&m, QoS::AtLeastOnce, false, vec![], &limits, None, |_| {
                false
            })
            .err(),
            Some(Refused::NotAuthorized)
        );
        assert_eq!(s.queue_len(), 2);
    }

    #[test]
    fn expired_messages_are_not_sent() {
        let s = attached(10);
        let m = Arc::new(Message::new(
            "t".into(),
            Bytes::new(),
            QoS::AtLeastOnce,
            false,
            Properties::default(),
            Some(Instant::now() - Duration::from_millis(1)),
            None,
        ));
        s.enqueue(
            &m,
            QoS::AtLeastOnce,
            false,
            vec![],
            &Limits::default(),
            None,
            |_| true,
        )
        .unwrap();
        let (mut out, mut done) = (Vec::new(), Vec::new());
        s.take_ready(1, 100, usize::MAX, &mut out, &mut done);
        assert!(out.is_empty());
        assert!(
            done.is_empty(),
            "not a stored delivery: nothing for the store"
        );
    }
}

#[cfg(test)]
mod cost_tests {
    use super::*;
    use crate::broker::codec::Properties;
    use bytes::Bytes;

    fn fat(user_bytes: usize) -> Arc<Message> {
        let props = Properties {
            user_properties: vec![("k".into(), "v".repeat(user_bytes))],
            ..Properties::default()
        };
        Arc::new(Message::new(
            "t".into(),
            Bytes::from_static(b"x"),
            QoS::AtLeastOnce,
            false,
            props,
            None,
            None,
        ))
    }

    #[test]
    fn cost_counts_properties_and_topic_not_only_payload() {
        let m = fat(10_000);
        assert!(m.cost > 10_000, "cost {}", m.cost);
        let s = Session::restored(
            "c".into(),
            Arc::new(Identity::anonymous("c")),
            NEVER_EXPIRES,
            Instant::now(),
        );
        let limits = Limits {
            max_queued_bytes: 50_000,
            ..Limits::default()
        };
        let mut queued = 0;
        while s
            .enqueue(&m, QoS::AtLeastOnce, false, vec![], &limits, None, |_| true)
            .is_ok()
        {
            queued += 1;
        }
        assert_eq!(queued, 4, "four 10 KB messages fit in 50 KB");
        assert!(s.queued_bytes() <= 50_000);
    }

    #[test]
    fn take_ready_stops_at_its_byte_budget() {
        let s = Session::new("c".into(), ProtocolVersion::V5, 0);
        s.attach(Attachment {
            ctl: Arc::new(ConnCtl::default()),
            identity: Arc::new(Identity::anonymous("c")),
            version: ProtocolVersion::V5,
            window: 100,
            expiry: 0,
            will: None,
        });
        let m = fat(10_000);
        for _ in 0..10 {
            s.enqueue(
                &m,
                QoS::AtLeastOnce,
                false,
                vec![],
                &Limits::default(),
                None,
                |_| true,
            )
            .unwrap();
        }
        let (mut out, mut done) = (Vec::new(), Vec::new());
        assert!(s.take_ready(1, 64, 25_000, &mut out, &mut done));
        assert_eq!(out.len(), 3, "stops once 25 KB are taken");
        out.clear();
        assert!(s.take_ready(1, 64, 0, &mut out, &mut done));
        assert_eq!(out.len(), 1, "the first always goes");
        assert_eq!(s.queue_len(), 6);
    }
}
#[cfg(test)]
mod size_tests {
    /// RSS per idle connection is a goal: an idle session with its Arc counts is 120 bytes,
    /// jemalloc's 128-byte size class, and a field added without thought would take the next
    /// (160).
    #[test]
    fn an_idle_session_fits_its_heap_chunk() {
        assert!(std::mem::size_of::<super::Session>() <= 104);
    }

    /// Every connection has one, shared with its session and the broker's timers: 72 bytes
    /// with its Arc counts, jemalloc's (and glibc's) 80-byte size, where 16 more would take 96.
    #[test]
    fn a_connection_control_block_fits_its_heap_chunk() {
        assert!(std::mem::size_of::<super::ConnCtl>() <= 56);
    }
}
