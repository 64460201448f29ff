//! `mqsec auth-server`: the password file and the ACL of `serve`, answered over the HTTP
//! authentication interfaces of clustered brokers (RabbitMQ's `rabbitmq_auth_backend_http`,
//! EMQX 5's HTTP authenticator and authorizer, VerneMQ's webhooks), so a fleet keeps one policy
//! whichever broker it runs on.
//!
//! Every engine's question comes down to two engine-neutral ones asked here: [`AuthServer::login`]
//! (the password check `serve` makes at CONNECT: same throttle, same bounded pool, same cache)
//! and [`AuthServer::authorize`] (the ACL matcher `serve` and `acl-check` use). The engine
//! modules only translate requests and answers. Access tokens are one more credential kind in
//! `login` (`serve`'s verifier); their claims are remembered by username for `authorize`,
//! because an engine's topic questions carry the username, never the token.

pub mod emqx;
pub mod http;
pub mod rabbitmq;
pub mod vernemq;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use arc_swap::ArcSwap;
use parking_lot::Mutex;
use zeroize::Zeroizing;

use crate::config::model::{FileOption, Security, TokenConfig};
use crate::security::acl::ClaimRules;
use crate::security::acl::{validate_name, validate_subscription, Access, Acl, AclRequest};
use crate::security::identity::Identity;
use crate::security::passwd::Verifier;
use crate::security::password_gate::{Checked, Origin, PasswordGate};
use crate::security::policy::{
    denied, load_acl, load_once, load_passwords, load_tokens, token_refused, KeptOld, PolicyError,
};
use crate::security::tokens::{self, TokenVerifier};

/// The files in force: swapped whole on reload, so a request sees one consistent pair.
#[derive(Debug)]
pub struct Files {
    pub passwords: Arc<Verifier>,
    pub acl: Arc<Acl>,
    /// `--token-conf`: the keys tokens are verified with.
    pub tokens: Option<Arc<TokenVerifier>>,
}

/// What the service was started with.
#[derive(Debug, Clone)]
pub struct Settings {
    pub password_file: FileOption,
    pub acl_file: FileOption,
    /// The password pool and the brute-force throttle (`serve`'s `auth_*` settings).
    pub security: Security,
    /// RabbitMQ: the exchange MQTT is published through (`mqtt.exchange`, `amq.topic` by default).
    pub rabbitmq_exchange: String,
    /// Access tokens accepted as passwords (`--token-conf`).
    pub tokens: Option<TokenConfig>,
}

/// The claims of the last valid token a username logged in with, until the token expires.
struct Scope {
    rules: Option<Arc<ClaimRules>>,
    valid_until: u64,
}

/// Usernames whose token claims are remembered at most; beyond it, expired ones are dropped,
/// then all (their clients' topic questions fall back to the ACL file until they log in again).
const MAX_SCOPES: usize = 100_000;

/// An answer to an authorization question.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    pub allowed: bool,
    /// When allowed: the highest QoS the deciding rules grant (2 without a limit).
    pub max_qos: u8,
}

impl Verdict {
    const DENY: Verdict = Verdict {
        allowed: false,
        max_qos: 0,
    };
}

/// Counters for `/health`.
#[derive(Debug, Default)]
pub struct Stats {
    pub logins: AtomicU64,
    pub logins_refused: AtomicU64,
    pub decisions: AtomicU64,
    pub decisions_denied: AtomicU64,
    pub rate_limited: AtomicU64,
    pub reloads: AtomicU64,
    /// Time from a request's headers to its answer (engine endpoints only).
    pub latency: Latency,
}

/// A latency histogram: buckets a quarter of a power of two wide (in microseconds), so a
/// percentile read from it is within 19% of the truth; recording is one atomic add.
#[derive(Debug)]
pub struct Latency {
    buckets: [AtomicU64; LATENCY_BUCKETS],
}

/// Up to 2^24 µs (16 s); slower answers count in the last bucket.
const LATENCY_BUCKETS: usize = 24 * 4;

impl Default for Latency {
    fn default() -> Self {
        Latency {
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }
}

impl Latency {
    fn index(us: u64) -> usize {
        let us = us.max(1);
        let log = 63 - us.leading_zeros() as usize;
        let quarter = if log >= 2 { (us >> (log - 2)) & 3 } else { 0 } as usize;
        (log * 4 + quarter).min(LATENCY_BUCKETS - 1)
    }

    /// The upper edge of bucket `i`, in microseconds.
    fn upper(i: usize) -> u64 {
        let (log, quarter) = (i / 4, (i % 4) as u64);
        if log < 2 {
            return 1 << (log + 1);
        }
        (1u64 << log) + (quarter + 1) * (1u64 << (log - 2))
    }

    pub fn record(&self, d: std::time::Duration) {
        let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        self.buckets[Self::index(us)].fetch_add(1, Ordering::Relaxed);
    }

    /// `(upper edge in µs, count)` of every bucket holding something, for harnesses that want
    /// the percentiles of one interval (the difference of two readings).
    pub fn buckets(&self) -> Vec<(u64, u64)> {
        self.buckets
            .iter()
            .enumerate()
            .map(|(i, b)| (Self::upper(i), b.load(Ordering::Relaxed)))
            .filter(|(_, c)| *c > 0)
            .collect()
    }

    pub fn count(&self) -> u64 {
        self.buckets.iter().map(|b| b.load(Ordering::Relaxed)).sum()
    }

    /// The `q` quantile (0..=1) in microseconds (a bucket's upper edge); `None` before any.
    pub fn quantile(&self, q: f64) -> Option<u64> {
        let counts: Vec<u64> = self
            .buckets
            .iter()
            .map(|b| b.load(Ordering::Relaxed))
            .collect();
        let total: u64 = counts.iter().sum();
        if total == 0 {
            return None;
        }
        let rank = ((q.clamp(0.0, 1.0) * total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, c) in counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return Some(Self::upper(i));
            }
        }
        Some(Self::upper(LATENCY_BUCKETS - 1))
    }
}

/// The service's state: cheap to share between connections.
pub struct AuthServer {
    settings: Settings,
    files: ArcSwap<Files>,
    gate: PasswordGate,
    reloading: Mutex<()>,
    scopes: Mutex<HashMap<String, Scope>>,
    pub stats: Stats,
}

impl std::fmt::Debug for AuthServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthServer")
            .field("password_file", &self.settings.password_file.path)
            .field("acl_file", &self.settings.acl_file.path)
            .finish()
    }
}

impl AuthServer {
    /// Read both files (an error names the file and line) and start the password workers.
    pub fn start(settings: Settings) -> Result<AuthServer, PolicyError> {
        let files = load_files(&settings, None)?.0;
        let gate = PasswordGate::new(&settings.security)
            .map_err(|e| PolicyError(format!("cannot start the password workers: {e}")))?;
        Ok(AuthServer {
            settings,
            files: ArcSwap::from_pointee(files),
            gate,
            reloading: Mutex::new(()),
            scopes: Mutex::new(HashMap::new()),
            stats: Stats::default(),
        })
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    pub fn files(&self) -> Arc<Files> {
        self.files.load_full()
    }

    /// Re-read both files; one that fails keeps its previous version (returned, for the log).
    /// Cached password successes are forgotten.
    pub fn reload(&self) -> Vec<KeptOld> {
        let _one = self.reloading.lock();
        let old = self.files.load_full();
        let kept = match load_files(&self.settings, Some(&old)) {
            Ok((new, kept)) => {
                self.files.store(Arc::new(new));
                kept
            }
            // Only without a previous version can loading fail as a whole.
            Err(e) => vec![KeptOld {
                file: self.settings.password_file.path.display().to_string(),
                error: e,
            }],
        };
        self.gate.clear_cache();
        // Claims of tokens whose key may be gone: a client's next login brings them back.
        self.scopes.lock().clear();
        self.stats.reloads.fetch_add(1, Ordering::Relaxed);
        kept
    }

    /// Whether `user` is in the password file now.
    pub fn known_user(&self, user: &str) -> bool {
        self.files.load().passwords.stored(user).is_some()
    }

    /// Check a username and password exactly as `serve` does at CONNECT.
    pub async fn login(
        &self,
        user: &str,
        password: Zeroizing<Vec<u8>>,
        from: Origin<'_>,
    ) -> Checked {
        let files = self.files.load_full();
        if let Some(v) = files.tokens.as_ref() {
            if tokens::looks_like_jwt(&password) {
                let r = self.token_login(v, user, &password, &from);
                self.stats.logins.fetch_add(1, Ordering::Relaxed);
                if r != Checked::Valid {
                    self.stats.logins_refused.fetch_add(1, Ordering::Relaxed);
                }
                return r;
            }
        }
        let passwords = files.passwords.clone();
        let r = self.gate.check(&passwords, user, password, from).await;
        self.stats.logins.fetch_add(1, Ordering::Relaxed);
        if r != Checked::Valid {
            self.stats.logins_refused.fetch_add(1, Ordering::Relaxed);
        }
        r
    }

    /// A token as the password: `serve`'s verification (signature, times, audience, issuer). The
    /// username is required and must be the token's: the engine's later topic questions carry
    /// only the username, and that is what the token's claims are remembered by.
    fn token_login(
        &self,
        v: &TokenVerifier,
        user: &str,
        token: &[u8],
        from: &Origin<'_>,
    ) -> Checked {
        let refused = |reason: &dyn std::fmt::Display| {
            token_refused(from.client_id, Some(user), from.peer, from.listener, reason);
            Checked::Invalid
        };
        if user.is_empty() {
            return refused(&"no username (it must be the token's username claim)");
        }
        match v.verify(token, Some(user)) {
            Ok(grant) => {
                let mut scopes = self.scopes.lock();
                if scopes.len() >= MAX_SCOPES && !scopes.contains_key(user) {
                    let now = tokens::now_unix();
                    scopes.retain(|_, s| s.valid_until >= now);
                    if scopes.len() >= MAX_SCOPES {
                        scopes.clear();
                    }
                }
                scopes.insert(
                    grant.username,
                    Scope {
                        rules: grant.scope,
                        valid_until: grant.valid_until,
                    },
                );
                Checked::Valid
            }
            Err(e) => refused(&e),
        }
    }

    /// The claims `username`'s last token granted, while it is valid.
    fn scope_of(&self, username: Option<&str>) -> Option<Arc<ClaimRules>> {
        let u = username?;
        let scopes = self.scopes.lock();
        let s = scopes.get(u)?;
        if s.valid_until < tokens::now_unix() {
            return None;
        }
        s.rules.clone()
    }

    /// Ask the ACL, as `acl-check` would for the same client, access and topic. A topic that is
    /// not valid for the access (a wildcard in a name, a malformed filter) is denied. Denials are
    /// security events (`acl_denied`).
    pub fn authorize(
        &self,
        who: &Identity,
        access: Access,
        topic: &str,
        qos: u8,
        retain: bool,
    ) -> Verdict {
        self.stats.decisions.fetch_add(1, Ordering::Relaxed);
        let valid = match access {
            Access::Read | Access::Write => validate_name(topic),
            Access::Subscribe | Access::SubscribeAll => validate_subscription(topic),
        };
        let req = AclRequest {
            access,
            topic,
            qos,
            retain,
        };
        if let Err(e) = valid {
            tracing::debug!(topic, error = %e, "refused a malformed topic");
            self.stats.decisions_denied.fetch_add(1, Ordering::Relaxed);
            return Verdict::DENY;
        }
        let files = self.files.load();
        // No lock on the decision path of a service that takes no tokens.
        let scope = files
            .tokens
            .as_ref()
            .and_then(|_| self.scope_of(who.username.as_deref()));
        let d = files.acl.decide_with(who, scope.as_deref(), &req);
        if !d.allowed {
            self.stats.decisions_denied.fetch_add(1, Ordering::Relaxed);
            denied(who, &req, None, &d);
            return Verdict::DENY;
        }
        Verdict {
            allowed: true,
            max_qos: d.max_qos,
        }
    }
}

/// The client an engine asks about.
pub fn identity(username: Option<&str>, client_id: Option<&str>, peer: Option<IpAddr>) -> Identity {
    let mut id = match username.filter(|u| !u.is_empty()) {
        Some(u) => Identity::with_username(client_id.unwrap_or_default(), u),
        None => Identity::anonymous(client_id.unwrap_or_default()),
    };
    id.set_peer(peer.map(|ip| std::net::SocketAddr::new(ip, 0)));
    id
}

fn load_files(
    s: &Settings,
    previous: Option<&Files>,
) -> Result<(Files, Vec<KeptOld>), PolicyError> {
    let mut kept = Vec::new();
    let passwords = load_once(
        &s.password_file,
        &mut HashMap::new(),
        load_passwords,
        previous.map(|p| p.passwords.clone()),
        &mut kept,
    )?;
    let acl = load_once(
        &s.acl_file,
        &mut HashMap::new(),
        load_acl,
        previous.map(|p| p.acl.clone()),
        &mut kept,
    )?;
    let tokens = match &s.tokens {
        None => None,
        Some(tc) => Some(load_tokens(
            tc,
            s.security.auth_cache_size,
            previous.and_then(|p| p.tokens.clone()),
            &mut kept,
        )?),
    };
    Ok((
        Files {
            passwords,
            acl,
            tokens,
        },
        kept,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn latency_buckets_bound_the_value_within_a_quarter_power_of_two() {
        for us in [
            1u64,
            2,
            3,
            4,
            5,
            7,
            8,
            100,
            999,
            1000,
            1023,
            1024,
            65_000,
            1 << 23,
        ] {
            let i = Latency::index(us);
            assert!(
                Latency::upper(i) > us,
                "{us}: bucket {i} ends at {}",
                Latency::upper(i)
            );
            if i > 0 {
                assert!(
                    Latency::upper(i - 1) <= us,
                    "{us}: bucket {i} starts too late"
                );
            }
            if us >= 8 {
                assert!(Latency::upper(i) as f64 <= us as f64 * 1.25, "{us}");
            }
        }
        let l = Latency::default();
        assert_eq!(l.quantile(0.99), None);
        for _ in 0..99 {
            l.record(Duration::from_micros(100));
        }
        l.record(Duration::from_millis(50));
        assert_eq!(l.count(), 100);
        assert!((100..=112).contains(&l.quantile(0.5).unwrap()));
        assert!((100..=112).contains(&l.quantile(0.99).unwrap()));
        assert!(l.quantile(1.0).unwrap() >= 50_000);
    }
}

#[cfg(test)]
mod engine_tests;
