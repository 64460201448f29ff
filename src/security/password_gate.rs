//! A password check as every mqsec service makes it (`serve` at CONNECT, `auth-server` for a
//! broker's HTTP question): the brute-force throttle first, then the bounded verification pool
//! with its cache of recent successes; a failure is counted, logged and reported as a security
//! event, and answered after the throttle's delay.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use zeroize::Zeroizing;

use crate::config::model::Security;
use crate::security::events::{self, Event};
use crate::security::passwd::Verifier;
use crate::security::throttle::{self, Throttle};
use crate::security::verify_pool::{VerifyError, VerifyPool};

/// What the attempt says about where it came from (for the throttle and the event log).
#[derive(Debug, Clone, Copy, Default)]
pub struct Origin<'a> {
    /// The device's address: counted by the throttle's address limit. `None` when it is not
    /// known (a broker that does not pass it): then only the username is counted.
    pub device: Option<IpAddr>,
    /// The peer the question came from, for the event log (the device itself in `serve`; the
    /// broker node asking `auth-server`).
    pub peer: Option<SocketAddr>,
    /// `serve`'s listener port.
    pub listener: Option<u16>,
    pub client_id: Option<&'a str>,
}

/// The outcome of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Checked {
    Valid,
    /// Unknown user or wrong password (the same answer for both).
    Invalid,
    /// The username or the address is locked after too many failures: not checked.
    Locked,
    /// Every worker is busy and the queue is full: not checked.
    Busy,
}

/// The pool and the throttle of one process.
#[derive(Debug)]
pub struct PasswordGate {
    pool: VerifyPool,
    throttle: Throttle,
    lock_secs: u64,
}

impl PasswordGate {
    /// Start the password workers with `s`'s pool and throttle settings.
    pub fn new(s: &Security) -> std::io::Result<PasswordGate> {
        Ok(PasswordGate {
            pool: VerifyPool::new(s.auth_workers, s.auth_queue_limit, s.auth_cache_size)?,
            throttle: Throttle::new(s.throttle, throttle::DEFAULT_CAPACITY),
            lock_secs: s.throttle.time.as_secs(),
        })
    }

    pub fn pool(&self) -> &VerifyPool {
        &self.pool
    }

    /// Forget cached successes (after the password file was reloaded).
    pub fn clear_cache(&self) {
        self.pool.clear_cache();
    }

    /// Check `user`'s password against `verifier`; the computation runs on the pool, never on
    /// the calling reactor thread.
    pub async fn check(
        &self,
        verifier: &Arc<Verifier>,
        user: &str,
        password: Zeroizing<Vec<u8>>,
        from: Origin<'_>,
    ) -> Checked {
        if let Err(locked) = self.throttle.check(user, from.device, Instant::now()) {
            tracing::debug!(peer = ?from.peer, reason = locked.as_str(), "login refused while locked");
            return Checked::Locked;
        }
        match self.pool.verify(verifier.clone(), user, password).await {
            Ok(true) => {
                self.throttle.success(user);
                return Checked::Valid;
            }
            Ok(false) => {}
            Err(VerifyError::Busy) | Err(VerifyError::Stopped) => return Checked::Busy,
        }
        let failure = self.throttle.failure(user, from.device, Instant::now());
        let why = if verifier.stored(user).is_some() {
            "wrong password"
        } else {
            "unknown user"
        };
        tracing::info!(client_id = ?from.client_id, peer = ?from.peer, reason = why, "authentication failed");
        if events::enabled() {
            let with_origin = |mut e: Event| {
                if let Some(p) = from.peer {
                    e = e.peer(p);
                }
                if let Some(l) = from.listener {
                    e = e.listener(l);
                }
                e.username(Some(user))
            };
            let mut e = with_origin(Event::new("auth_failure")).reason(why);
            if let Some(c) = from.client_id {
                e = e.client_id(c);
            }
            events::emit(e);
            if let Some(l) = failure.locked {
                events::emit(with_origin(Event::new("auth_locked")).reason(format!(
                    "{}; refused for {} s",
                    l.as_str(),
                    self.lock_secs
                )));
            }
        }
        if !failure.delay.is_zero() {
            tokio::time::sleep(failure.delay).await;
        }
        Checked::Invalid
    }
}
