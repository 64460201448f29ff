//! Durable state (`persistence true`): what a restart must bring back, kept in an embedded
//! database (redb) so a message the broker has acknowledged survives a crash.
//!
//! The boundary: the broker describes each change as an `Op` and submits the ops of one
//! publish (the retained update and every queued copy for a persistent session) as one `Batch`.
//! A writer thread commits many batches per database transaction (group commit) and then marks
//! each batch's `Pending` durable (or failed) and rings the connections that wait for it: the
//! publisher's (which sends PUBACK/PUBREC only then) and the subscribers' (whose copies are held
//! back until then, so a message is recorded before any subscriber can be told about it).
//! Changes nobody waits for (a delivery acknowledged, a session saved) travel the same ordered
//! channel without a `Pending`.
//!
//! Times are stored as wall-clock milliseconds (an `Instant` means nothing after a restart);
//! restore turns them back into the new process's clock.

pub mod clock;
pub mod codec;
pub mod redb_store;
mod writer;

#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::mpsc;
use std::sync::Arc;

use parking_lot::Mutex;

use super::codec::ProtocolVersion;
use super::session::{ConnCtl, Delivery, Message, Session, Will};
use super::store::SessionRecord;
pub use redb_store::{Restored, RestoredSessionRows};

/// The file inside the data directory.
pub const FILE_NAME: &str = "mqsec.redb";

#[derive(Debug, thiserror::Error)]
pub enum DurableError {
    /// The file cannot be used: corrupt, another program's, or a newer format. Never started
    /// empty instead.
    #[error("{path}: {what}")]
    Refused { path: String, what: String },
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

pub use crate::config::model::SyncPolicy;

/// The fate of one batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PendingState {
    Waiting,
    Durable,
    Failed,
}

const WAITING: u8 = 0;
const DURABLE: u8 = 1;
const FAILED: u8 = 2;

/// Shared by a batch, the deliveries it holds back and the acknowledgement that waits for it.
#[derive(Debug, Default)]
pub struct Pending {
    state: AtomicU8,
}

impl Pending {
    pub fn new() -> Arc<Pending> {
        Arc::new(Pending::default())
    }

    pub fn state(&self) -> PendingState {
        match self.state.load(Ordering::Acquire) {
            WAITING => PendingState::Waiting,
            DURABLE => PendingState::Durable,
            _ => PendingState::Failed,
        }
    }

    fn set(&self, ok: bool) {
        self.state
            .store(if ok { DURABLE } else { FAILED }, Ordering::Release);
    }
}

/// A persistent session as the store keeps it.
#[derive(Debug, Clone)]
pub struct SessionImage {
    pub record: SessionRecord,
    pub gen: u64,
    pub next_seq: u64,
    pub version: ProtocolVersion,
    /// Wall-clock milliseconds when it went offline; None while a connection holds it.
    pub offline_since: Option<u64>,
    /// The connection's will, or (with `will_due`) the will waiting for its delay.
    pub will: Option<Will>,
    pub will_due: Option<u64>,
}

/// A delivery queued for a persistent session, as it goes to the store.
#[derive(Debug, Clone)]
pub struct StoredDelivery {
    /// The session generation (see `Session`): rows of an older session of the same client id
    /// are discarded at restore.
    pub gen: u64,
    pub delivery: Delivery,
}

/// One change to durable state.
pub enum Op {
    SaveSession(Box<SessionImage>),
    /// The session, its queue and its incoming QoS 2 ids.
    RemoveSession(Arc<str>),
    Queue {
        session: Arc<Session>,
        stored: StoredDelivery,
    },
    /// PUBREC received for this QoS 2 delivery: a restart sends PUBREL, not the message.
    Released {
        client_id: Arc<str>,
        seq: u64,
    },
    /// Acknowledged, expired or dropped.
    Done {
        client_id: Arc<str>,
        seq: u64,
    },
    Retain {
        topic: Arc<str>,
        msg: Option<Arc<Message>>,
    },
    /// An incoming QoS 2 packet id waiting for PUBREL (true), or released (false).
    IncomingQos2 {
        client_id: Arc<str>,
        pid: u16,
        waiting: bool,
    },
}

/// Ops committed together, and who waits for them.
pub struct Batch {
    pub ops: Vec<Op>,
    pub pending: Option<Arc<Pending>>,
    /// The connection to wake when `pending` is decided.
    pub notify: Option<Arc<ConnCtl>>,
}

enum Job {
    Batch(Batch),
    /// Commit and sync everything before, answer, and stop.
    Close(mpsc::Sender<bool>),
}

/// The handle the broker holds: submit batches, ask whether writes still succeed.
pub struct Durable {
    tx: mpsc::Sender<Job>,
    healthy: Arc<AtomicBool>,
    path: PathBuf,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl Durable {
    /// Open (or create) the store in `dir`, read everything it holds, and start the writer.
    pub fn open(dir: &Path, policy: SyncPolicy) -> Result<(Arc<Durable>, Restored), DurableError> {
        let path = dir.join(FILE_NAME);
        let (db, restored) = redb_store::open(dir, &path)?;
        Ok((Durable::start(db, path, policy), restored))
    }

    fn start(db: redb_store::Db, path: PathBuf, policy: SyncPolicy) -> Arc<Durable> {
        let (tx, rx) = mpsc::channel();
        let healthy = Arc::new(AtomicBool::new(true));
        let h = healthy.clone();
        let p = path.clone();
        let thread = std::thread::Builder::new()
            .name("mqsec-store".into())
            .spawn(move || writer::run(db, p, policy, rx, h))
            .ok();
        if thread.is_none() {
            healthy.store(false, Ordering::SeqCst);
            tracing::error!(path = %path.display(), "persistence: cannot start the store writer thread; QoS 1/2 publishes are refused");
        }
        Arc::new(Durable {
            tx,
            healthy,
            path,
            thread: Mutex::new(thread),
        })
    }

    /// False once a write has failed: from then on new QoS 1/2 publishes are refused (a client
    /// must never be acknowledged for a message that is not kept).
    pub fn healthy(&self) -> bool {
        self.healthy.load(Ordering::Acquire)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Hand a batch to the writer. A batch that cannot be handed over (the writer has stopped)
    /// fails at once.
    pub fn submit(&self, batch: Batch) {
        if let Err(mpsc::SendError(Job::Batch(b))) = self.tx.send(Job::Batch(batch)) {
            self.healthy.store(false, Ordering::Release);
            writer::settle(&b, false);
        }
    }

    /// Submit one op nobody waits for.
    pub fn record(&self, op: Op) {
        self.submit(Batch {
            ops: vec![op],
            pending: None,
            notify: None,
        });
    }

    /// Make everything submitted so far durable and stop the writer (shutdown). False if
    /// something could not be written.
    pub fn close(&self) -> bool {
        let (atx, arx) = mpsc::channel();
        let ok = self.tx.send(Job::Close(atx)).is_ok() && arx.recv().unwrap_or(false);
        if let Some(t) = self.thread.lock().take() {
            let _ = t.join();
        }
        ok && self.healthy()
    }
}

impl Drop for Durable {
    fn drop(&mut self) {
        // The writer ends when its channel closes; wait for what it still commits.
        let (atx, _arx) = mpsc::channel();
        let _ = self.tx.send(Job::Close(atx));
        if let Some(t) = self.thread.lock().take() {
            let _ = t.join();
        }
    }
}
