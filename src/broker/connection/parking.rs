//! The parking lot: idle plain-TCP connections without a tokio task.
//!
//! An idle connection in a tokio task costs the task cell (the connection future plus tokio's
//! header, 512 bytes) and tokio's I/O registration (`ScheduledIo`, 256 bytes): more than
//! Mosquitto's whole connection. A connection with nothing buffered, nothing in flight towards
//! the store and nothing to write gives both up here: its socket leaves tokio's driver, its small
//! state is kept in a slot of this lot, and one thread waits on all parked sockets with a
//! `mio::Poll`. The connection comes back to a task (`super::resume`) when
//! - its socket becomes readable (a packet, or the peer closed it), or
//! - its bell rings: a delivery was queued, or the broker kicked it (keep alive, takeover,
//!   shutdown, a revoked certificate, a full queue...). The bell's waker is this lot's
//!   `Parked`, so everything that reaches a waiting task reaches a parked connection the same way.
//!
//! A new connection is asked to park `FIRST_PARK` after CONNACK; a woken one once it has moved
//! no bytes for a second or two (`Broker::park_later`): busy connections never park.
//!
//! TLS and WebSocket connections are never parked: their state lives inside the stream layers
//! (rustls, tungstenite), which cannot leave a task without their buffers.

use std::collections::VecDeque;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::task::{Wake, Waker};
use std::time::{Duration, Instant};

use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Registry, Token};
use parking_lot::Mutex;

use super::ParkedConn;
use crate::broker::session::ConnCtl;

/// The token of the lot's own waker (rings, shutdown); every other token is a slot.
const WAKE: Token = Token(usize::MAX);

/// How long a new connection stays in its task before it is asked to park. Long enough that a
/// client that connects and goes on at once (SUBSCRIBE, PUBLISH, DISCONNECT after CONNACK) is
/// not parked and woken for it (that halved the connect rate); short enough that a connect storm
/// of clients that then wait never holds many tasks at once: memory freed after the fact is
/// seldom given back to the system, so the peak is what RSS keeps.
const FIRST_PARK: Duration = Duration::from_millis(20);

/// One parking thread and its parked connections. Dropping the last handle stops the thread
/// (every parked connection holds one, so that happens only once none is parked).
pub struct Lot {
    shared: Arc<Shared>,
}

struct Shared {
    registry: Registry,
    waker: mio::Waker,
    slots: Mutex<Slots>,
    /// Parked connections whose bell rang since the thread last looked.
    rung: Mutex<Vec<Arc<Parked>>>,
    /// New connections to ask to park, in the order they are due (one delay for all).
    soon: Mutex<VecDeque<(Instant, Weak<ConnCtl>)>>,
    runtime: tokio::runtime::Handle,
    closed: AtomicBool,
}

#[derive(Default)]
struct Slots {
    entries: Vec<Option<Arc<Parked>>>,
    free: Vec<usize>,
}

impl Slots {
    fn insert(&mut self, make: impl FnOnce(usize) -> Arc<Parked>) -> Arc<Parked> {
        let i = self.free.pop().unwrap_or_else(|| {
            self.entries.push(None);
            self.entries.len() - 1
        });
        let p = make(i);
        self.entries[i] = Some(p.clone());
        p
    }

    /// Take slot `i` if it holds `expected` (any parked connection when None).
    fn take(&mut self, i: usize, expected: Option<&Arc<Parked>>) -> Option<Arc<Parked>> {
        let e = self.entries.get_mut(i)?;
        if !e
            .as_ref()
            .is_some_and(|p| expected.is_none_or(|x| Arc::ptr_eq(x, p)))
        {
            return None;
        }
        self.free.push(i);
        e.take()
    }
}

/// One parked connection, and the waker its bell holds while it is parked.
pub(super) struct Parked {
    token: usize,
    /// Taken by whoever resumes it (once).
    conn: Mutex<Option<ParkedConn>>,
}

impl Wake for Parked {
    fn wake(self: Arc<Self>) {
        // The lot is reached through the connection's own handle (no second pointer in every
        // parked connection). Once resumed, a late ring has nothing left to do here. The lock
        // is only tried: `Lot::park` holds it while it hands the bell over (a wake from inside
        // that hand-over would deadlock), and then reads the bell's flag itself; the lot
        // thread holds it only to take the connection, whose new task sees the flag.
        let Some(lot) = self
            .conn
            .try_lock()
            .and_then(|c| c.as_ref().and_then(|c| c.lot()).map(|l| l.shared.clone()))
        else {
            return;
        };
        lot.rung.lock().push(self);
        let _ = lot.waker.wake();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.clone().wake();
    }
}

impl Lot {
    /// Start the parking thread. Must run inside the tokio runtime that resumed connections go
    /// back to.
    pub fn start() -> std::io::Result<Arc<Lot>> {
        let poll = Poll::new()?;
        let registry = poll.registry().try_clone()?;
        let waker = mio::Waker::new(poll.registry(), WAKE)?;
        let shared = Arc::new(Shared {
            registry,
            waker,
            slots: Mutex::new(Slots::default()),
            rung: Mutex::new(Vec::new()),
            soon: Mutex::new(VecDeque::new()),
            runtime: tokio::runtime::Handle::current(),
            closed: AtomicBool::new(false),
        });
        let s = shared.clone();
        std::thread::Builder::new()
            .name("mqsec-parking".into())
            .spawn(move || s.run(poll))?;
        Ok(Arc::new(Lot { shared }))
    }

    /// Ask the new connection of `ctl` to park once `FIRST_PARK` has passed (at its first idle
    /// moment from then on).
    pub fn park_soon(&self, ctl: &Arc<ConnCtl>) {
        let mut soon = self.shared.soon.lock();
        soon.push_back((Instant::now() + FIRST_PARK, Arc::downgrade(ctl)));
        if soon.len() == 1 {
            // The thread may be waiting without a timeout.
            drop(soon);
            let _ = self.shared.waker.wake();
        }
    }

    /// Park `conn`, whose bell is `ctl`. Err gives it back when it cannot be parked (the bell
    /// has rung meanwhile, or the socket could not be registered): it must go on in a task.
    pub(super) fn park(&self, conn: ParkedConn, ctl: &ConnCtl) -> Result<(), ParkedConn> {
        let fd = conn.io.as_raw_fd();
        let mut slots = self.shared.slots.lock();
        let p = slots.insert(|token| {
            Arc::new(Parked {
                token,
                conn: Mutex::new(None),
            })
        });
        // Held until the bell is this slot's: a readable socket may resume the connection as
        // soon as it is registered, and the new task's waker must not be replaced by ours.
        let mut held = p.conn.lock();
        let registered =
            self.shared
                .registry
                .register(&mut SourceFd(&fd), Token(p.token), Interest::READABLE);
        if let Err(e) = registered {
            tracing::debug!(error = %e, "cannot park a connection");
            slots.take(p.token, Some(&p));
            return Err(conn);
        }
        *held = Some(conn);
        drop(slots);
        let waker = Waker::from(p.clone());
        ctl.register_bell(&waker);
        drop(held);
        // Rang before the bell was ours, or while `held` kept the ring's wake from reaching the
        // lot (it only tries the lock): resume at once (the ring stays set for the task).
        if ctl.is_rung() {
            waker.wake();
        }
        Ok(())
    }
}

impl Drop for Lot {
    fn drop(&mut self) {
        self.shared.closed.store(true, Ordering::Release);
        let _ = self.shared.waker.wake();
    }
}

impl Shared {
    fn run(self: Arc<Self>, mut poll: Poll) {
        let mut events = Events::with_capacity(1024);
        loop {
            let timeout = self
                .soon
                .lock()
                .front()
                .map(|(at, _)| at.saturating_duration_since(Instant::now()));
            if let Err(e) = poll.poll(&mut events, timeout) {
                if e.kind() == std::io::ErrorKind::Interrupted {
                    continue;
                }
                tracing::error!(error = %e, "parking lot: poll failed; resuming every parked connection");
                self.closed.store(true, Ordering::Release);
            }
            for ev in events.iter() {
                if ev.token() != WAKE {
                    self.resume(ev.token().0, None);
                }
            }
            let rung = std::mem::take(&mut *self.rung.lock());
            for p in rung {
                self.resume(p.token, Some(&p));
            }
            self.ask_new_ones_to_park();
            if self.closed.load(Ordering::Acquire) {
                // The last handle went (or polling broke): nothing should be parked, but
                // whatever is goes back to a task, which ends it properly.
                let n = self.slots.lock().entries.len();
                for i in 0..n {
                    self.resume(i, None);
                }
                return;
            }
        }
    }

    fn ask_new_ones_to_park(&self) {
        let now = Instant::now();
        loop {
            let due = {
                let mut soon = self.soon.lock();
                match soon.front() {
                    Some((at, _)) if *at <= now => soon.pop_front(),
                    _ => None,
                }
            };
            let Some((_, ctl)) = due else { return };
            // Gone already (the client left): nothing to ask.
            if let Some(ctl) = ctl.upgrade() {
                ctl.request_park();
                ctl.ring();
            }
        }
    }

    /// Give slot `token`'s connection (if it still holds `expected`) back to a task.
    fn resume(&self, token: usize, expected: Option<&Arc<Parked>>) {
        let Some(p) = self.slots.lock().take(token, expected) else {
            return;
        };
        let Some(conn) = p.conn.lock().take() else {
            return;
        };
        let _ = self
            .registry
            .deregister(&mut SourceFd(&conn.io.as_raw_fd()));
        let _rt = self.runtime.enter();
        conn.resume();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn empty(token: usize) -> Arc<Parked> {
        Arc::new(Parked {
            token,
            conn: Mutex::new(None),
        })
    }

    #[test]
    fn a_slot_is_taken_once_and_only_by_its_own_connection() {
        let mut s = Slots::default();
        let a = s.insert(empty);
        let b = s.insert(empty);
        assert_ne!(a.token, b.token);
        // A stale wake of another connection in the same slot takes nothing.
        let stranger = empty(a.token);
        assert!(s.take(a.token, Some(&stranger)).is_none());
        assert!(s
            .take(a.token, Some(&a))
            .is_some_and(|p| Arc::ptr_eq(&p, &a)));
        assert!(s.take(a.token, Some(&a)).is_none(), "taken once");
        assert!(s.take(a.token, None).is_none());
        // The freed slot is used again; the other one is untouched.
        let c = s.insert(empty);
        assert_eq!(c.token, a.token);
        assert!(s.take(b.token, None).is_some_and(|p| Arc::ptr_eq(&p, &b)));
        assert!(s.take(99, None).is_none(), "no such slot");
    }

    /// What every parked connection costs besides its session and identity: 104 bytes with its
    /// Arc counts, jemalloc's (and glibc's) 112-byte size.
    #[test]
    fn a_parked_connection_fits_its_heap_chunk() {
        assert!(std::mem::size_of::<Parked>() <= 88);
    }
}
