//! The writer thread: group commit. While one transaction commits (and syncs), new batches
//! queue up; the next transaction takes all of them, so many publishes share one sync.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use redb::Durability;

use super::redb_store::Db;
use super::{Batch, Job, Op, SyncPolicy};

/// Batches per transaction at most: a bound on the latency of the first one in a burst.
const MAX_GROUP: usize = 4096;

/// Mark a batch's fate and wake whoever waits: the publisher, and the subscribers whose copies
/// were held back.
pub(super) fn settle(b: &Batch, ok: bool) {
    if let Some(p) = &b.pending {
        p.set(ok);
    }
    for op in &b.ops {
        if let Op::Queue { session, .. } = op {
            session.ring();
        }
    }
    if let Some(n) = &b.notify {
        n.ring();
    }
}

pub(super) fn run(
    db: Db,
    path: PathBuf,
    policy: SyncPolicy,
    rx: Receiver<Job>,
    healthy: Arc<AtomicBool>,
) {
    let durability = match policy {
        SyncPolicy::Ack => Durability::Immediate,
        SyncPolicy::Every(_) => Durability::None,
    };
    // Commits not yet synced (interval policy), and when the last sync was.
    let mut unsynced = false;
    let mut last_sync = Instant::now();
    let mut group: Vec<Batch> = Vec::new();
    loop {
        let first = match policy {
            SyncPolicy::Every(every) if unsynced => {
                let wait = every.saturating_sub(last_sync.elapsed());
                match rx.recv_timeout(wait.max(Duration::from_millis(1))) {
                    Ok(j) => Some(j),
                    Err(RecvTimeoutError::Timeout) => None,
                    Err(RecvTimeoutError::Disconnected) => return,
                }
            }
            _ => match rx.recv() {
                Ok(j) => Some(j),
                Err(_) => return,
            },
        };
        let mut close = None;
        if let Some(j) = first {
            match j {
                Job::Batch(b) => group.push(b),
                Job::Close(reply) => close = Some(reply),
            }
        }
        while close.is_none() && group.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(Job::Batch(b)) => group.push(b),
                Ok(Job::Close(reply)) => close = Some(reply),
                Err(_) => break,
            }
        }
        let mut ok = healthy.load(Ordering::Acquire);
        if ok && !group.is_empty() {
            // A panic inside the database must not leave acknowledgements waiting forever.
            let applied = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                db.apply(group.iter(), durability)
            }))
            .unwrap_or_else(|_| Err(redb::Error::Corrupted("panic while writing".into())));
            if let Err(e) = applied {
                fail(&healthy, &path, &e);
                ok = false;
            } else if matches!(policy, SyncPolicy::Every(_)) {
                unsynced = true;
            }
        }
        let sync_due = match policy {
            SyncPolicy::Every(every) => unsynced && last_sync.elapsed() >= every,
            SyncPolicy::Ack => false,
        };
        if ok && (sync_due || (close.is_some() && unsynced)) {
            match db.sync() {
                Ok(()) => {
                    unsynced = false;
                    last_sync = Instant::now();
                }
                Err(e) => {
                    fail(&healthy, &path, &e);
                    ok = false;
                }
            }
        }
        for b in group.drain(..) {
            settle(&b, ok);
        }
        if let Some(reply) = close {
            let _ = reply.send(ok);
            return;
        }
    }
}

/// The first failure is logged (one line: which file, what went wrong, what follows); the store
/// stays failed until a restart, so what is on disk stays a consistent past state.
fn fail(healthy: &AtomicBool, path: &std::path::Path, e: &redb::Error) {
    if healthy.swap(false, Ordering::AcqRel) {
        tracing::error!(path = %path.display(), error = %e, "persistence: cannot write the store; QoS 1/2 publishes are refused until mqsec is restarted (free space or fix the disk first)");
    }
}
