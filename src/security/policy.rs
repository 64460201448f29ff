//! The security policy `serve` enforces: who may connect to each listener (anonymous clients,
//! the password file, client certificates, `clientid_prefixes`) and what each client may do (the
//! ACL file), with the password pool, the brute-force throttle and the security event log.
//!
//! Files are loaded into a [`PolicySet`] (one [`ListenerPolicy`] per listener; without
//! `per_listener_settings` they share their files) that is swapped atomically on reload: a
//! decision loads the current set without a lock, and a connection that is mid-decision keeps the
//! set it started with. A broken file at reload keeps its previous version in force.
//!
//! Per-client permissions are compiled once per client from the current ACL ([`Grants`]) and
//! kept in its [`Identity`] ([`AuthzCache`]); a reload swaps the ACL and each client recompiles
//! on its next decision. PUBLISH and delivery decisions therefore take no lock, do no I/O and
//! look only at the rules that can apply to that client.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use arc_swap::{ArcSwap, ArcSwapOption};
use parking_lot::Mutex;
use zeroize::Zeroizing;

use crate::broker::auth::{
    ConnectDecision, ConnectDenial, ConnectRequest, Recheck, SubscribeDecision,
};
use crate::broker::codec::QoS;
use crate::config::model::{Config, FileOption, ListenerConfig, TokenConfig};
use crate::security::acl::{Access, Acl, AclError, AclRequest, Decision, Grants};
use crate::security::events::{self, Event};
use crate::security::identity::{AuthMethod, Identity, PeerCert};
use crate::security::passwd::{LineKind, PasswordFile, Verifier};
use crate::security::password_gate::{Checked, Origin, PasswordGate};
use crate::security::tokens::{self, TokenError, TokenGrant, TokenSession, TokenVerifier};
use crate::security::verify_pool::VerifyPool;

/// A file that cannot be used, named with its line where there is one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PolicyError(pub String);

/// Which part of a verified client certificate becomes the username (a listener's
/// `use_identity_as_username` / `use_subject_as_username`): the config's own type.
pub use crate::config::model::CertUsername as CertName;

/// What one listener admits.
#[derive(Debug, Clone)]
pub struct ListenerPolicy {
    /// Clients without credentials (or with credentials on a listener without a password file)
    /// are admitted as anonymous.
    pub anonymous: bool,
    pub password_file: Option<FileOption>,
    pub passwords: Option<Arc<Verifier>>,
    pub acl_file: Option<FileOption>,
    /// `None`: every topic is allowed (Mosquitto without an `acl_file`).
    pub acl: Option<Arc<Acl>>,
    /// Set on TLS listeners with `use_identity_as_username` / `use_subject_as_username`: the
    /// certificate names the client and no password is checked.
    pub cert_name: Option<CertName>,
    /// `token_*`: access tokens accepted here, and the verifier loaded from them.
    pub token_config: Option<TokenConfig>,
    pub tokens: Option<Arc<TokenVerifier>>,
}

/// The loaded files of every listener, indexed like `Config::listeners`.
#[derive(Debug, Clone)]
pub struct PolicySet {
    pub listeners: Vec<Arc<ListenerPolicy>>,
}

/// A file that stays as it was at a reload, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeptOld {
    pub file: String,
    pub error: PolicyError,
}

impl KeptOld {
    /// One error line and one `reload_failed` event (`serve` and `auth-server` at SIGHUP).
    pub fn report(&self) {
        tracing::error!(
            "reload: {}; the previous version of {} stays in force",
            self.error,
            self.file
        );
        events::emit(
            Event::new("reload_failed")
                .file(&self.file)
                .reason(self.error.to_string()),
        );
    }
}

impl PolicySet {
    /// Load every file the configuration names (each file once, however many listeners share
    /// it). With `previous` (a reload), a file that fails keeps its previous version and is
    /// reported in the second value; without it (startup, `--check`) it is an error.
    pub fn load(
        config: &Config,
        previous: Option<&PolicySet>,
    ) -> Result<(PolicySet, Vec<KeptOld>), PolicyError> {
        let mut passwords: HashMap<PathBuf, Arc<Verifier>> = HashMap::new();
        let mut acls: HashMap<PathBuf, Arc<Acl>> = HashMap::new();
        let mut verifiers: Vec<(TokenConfig, Arc<TokenVerifier>)> = Vec::new();
        let mut kept = Vec::new();
        let mut listeners = Vec::with_capacity(config.listeners.len());
        for (i, l) in config.listeners.iter().enumerate() {
            let prev = previous.and_then(|p| p.listeners.get(i));
            let pw = match &l.auth.password_file {
                None => None,
                Some(f) => Some(load_once(
                    f,
                    &mut passwords,
                    load_passwords,
                    prev.and_then(|p| p.passwords.clone()),
                    &mut kept,
                )?),
            };
            let acl = match &l.auth.acl_file {
                None => None,
                Some(f) => Some(load_once(
                    f,
                    &mut acls,
                    load_acl,
                    prev.and_then(|p| p.acl.clone()),
                    &mut kept,
                )?),
            };
            let tokens = match &l.auth.token {
                None => None,
                Some(tc) => Some(match verifiers.iter().find(|(c, _)| c == tc) {
                    Some((_, v)) => v.clone(),
                    None => {
                        let v = load_tokens(
                            tc,
                            config.security.auth_cache_size,
                            prev.and_then(|p| p.tokens.clone()),
                            &mut kept,
                        )?;
                        verifiers.push((tc.clone(), v.clone()));
                        v
                    }
                }),
            };
            listeners.push(Arc::new(ListenerPolicy {
                token_config: l.auth.token.clone(),
                tokens,
                anonymous: l.anonymous_allowed(),
                password_file: l.auth.password_file.clone(),
                passwords: pw,
                acl_file: l.auth.acl_file.clone(),
                acl,
                // A TLS listener's use_identity_as_username / use_subject_as_username.
                cert_name: l.cert_username(),
            }));
        }
        Ok((PolicySet { listeners }, kept))
    }
}

/// Load `f` once per path (listeners naming the same file share it). A file that fails to load
/// keeps `previous` in force when there is one (a reload), recorded in `kept`; at start-up the
/// error stands.
pub(crate) fn load_once<T>(
    f: &FileOption,
    loaded: &mut HashMap<PathBuf, Arc<T>>,
    load: impl Fn(&FileOption) -> Result<T, PolicyError>,
    previous: Option<Arc<T>>,
    kept: &mut Vec<KeptOld>,
) -> Result<Arc<T>, PolicyError> {
    if let Some(v) = loaded.get(&f.path) {
        return Ok(v.clone());
    }
    let v = or_previous(load(f), previous, &f.path, kept)?;
    loaded.insert(f.path.clone(), v.clone());
    Ok(v)
}

/// What was `loaded` from `file` or, when that failed at a reload, the `previous` version, kept
/// in force and recorded in `kept`; at start-up (no previous version) the error stands.
fn or_previous<T>(
    loaded: Result<T, PolicyError>,
    previous: Option<Arc<T>>,
    file: &std::path::Path,
    kept: &mut Vec<KeptOld>,
) -> Result<Arc<T>, PolicyError> {
    match (loaded, previous) {
        (Ok(v), _) => Ok(Arc::new(v)),
        (Err(error), Some(old)) => {
            kept.push(KeptOld {
                file: file.display().to_string(),
                error,
            });
            Ok(old)
        }
        (Err(e), None) => Err(e),
    }
}

/// The token keys of `tc`, or at a reload that fails to read them, the `previous` ones (as
/// [`load_once`] does for files).
pub(crate) fn load_tokens(
    tc: &TokenConfig,
    cache_size: usize,
    previous: Option<Arc<TokenVerifier>>,
    kept: &mut Vec<KeptOld>,
) -> Result<Arc<TokenVerifier>, PolicyError> {
    let loaded = TokenVerifier::load(tc, cache_size).map_err(PolicyError);
    or_previous(loaded, previous, &tc.key.file().path, kept)
}

/// Read a password file for the broker. Stricter than `mqsec passwd` (which must be able to open
/// any file to repair it): a line that is not `USER:HASH`, a clear-text password or a hash that
/// cannot be decoded refuses the file, naming the line, because such an entry would silently
/// lock its user out (or betray a file that was never hashed).
pub fn load_passwords(f: &FileOption) -> Result<Verifier, PolicyError> {
    let file = PasswordFile::load(&f.path)
        .map_err(|e| PolicyError(format!("{}: password_file {e}", f.origin)))?;
    let name = f.path.display();
    for line in file.lines() {
        match &line.kind {
            LineKind::Malformed(reason) => {
                return Err(PolicyError(format!("{name}:{}: {reason}", line.number)))
            }
            LineKind::Entry(e) => {
                if let Err(h) = &e.hash {
                    let user: String = e.user.chars().take(64).collect();
                    return Err(PolicyError(format!(
                        "{name}:{}: user {user:?}: {h}",
                        line.number
                    )));
                }
            }
            LineKind::Blank | LineKind::Comment => {}
        }
    }
    Ok(Verifier::new(&file))
}

pub fn load_acl(f: &FileOption) -> Result<Acl, PolicyError> {
    Acl::load(&f.path).map_err(|e| match e {
        // Already `file:line: message`.
        AclError::Syntax { .. } => PolicyError(e.to_string()),
        _ => PolicyError(format!("{}: acl_file {e}", f.origin)),
    })
}

/// Per-client cache of compiled permissions, kept in the client's [`Identity`] (which also
/// says which listener's policy applies: [`Identity::listener_index`]). A clone starts empty,
/// and a cache never makes two identities differ.
#[derive(Default)]
pub struct AuthzCache {
    /// The first compilation: most clients never see a reload, and reading this is one
    /// acquire load (an `ArcSwap` load costs several times that, on every message).
    first: OnceLock<Arc<Compiled>>,
    /// Compilations after a reload.
    later: ArcSwapOption<Compiled>,
}

/// A client's permissions under one generation of the policy set.
struct Compiled {
    generation: u64,
    /// The client's token epoch when compiled (0 without a token): a re-authentication with
    /// another token makes the entry stale.
    token_epoch: u64,
    /// `None`: the listener has no ACL (everything is allowed).
    grants: Option<Grants>,
}

impl Clone for AuthzCache {
    fn clone(&self) -> Self {
        AuthzCache::default()
    }
}

impl PartialEq for AuthzCache {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for AuthzCache {}

impl std::fmt::Debug for AuthzCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthzCache").finish_non_exhaustive()
    }
}

/// May `new` resume or take over the session owned by `owner`? The same username and the same
/// certificate subject; two identities with neither (anonymous clients) count as the same.
pub fn same_principal(owner: &Identity, new: &Identity) -> bool {
    let anonymous = |i: &Identity| i.username.is_none() && i.cert_subject().is_none();
    if anonymous(owner) || anonymous(new) {
        return anonymous(owner) && anonymous(new);
    }
    owner.username == new.username && owner.cert_subject() == new.cert_subject()
}

struct Inner {
    config: Arc<Config>,
    set: ArcSwap<PolicySet>,
    /// Bumped after every swap of `set`: a client's cached permissions tagged with the current
    /// generation are current, so a decision costs one atomic load to validate them.
    generation: AtomicU64,
    gate: PasswordGate,
    /// One reload at a time.
    reloading: Mutex<()>,
}

/// The broker's policy: cheap to clone (a handle).
#[derive(Clone)]
pub struct Policy(Arc<Inner>);

impl std::fmt::Debug for Policy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Policy")
            .field("listeners", &self.0.set.load().listeners.len())
            .field("pool", self.0.gate.pool())
            .finish()
    }
}

impl Policy {
    /// Load the files the configuration names and start the password workers.
    pub fn new(config: Arc<Config>) -> Result<Policy, PolicyError> {
        let (set, _) = PolicySet::load(&config, None)?;
        Policy::with_set(config, set)
    }

    /// A policy from an already loaded set (tests build sets by hand).
    pub fn with_set(config: Arc<Config>, set: PolicySet) -> Result<Policy, PolicyError> {
        let gate = PasswordGate::new(&config.security)
            .map_err(|e| PolicyError(format!("cannot start the password workers: {e}")))?;
        Ok(Policy(Arc::new(Inner {
            config,
            set: ArcSwap::from_pointee(set),
            generation: AtomicU64::new(0),
            gate,
            reloading: Mutex::new(()),
        })))
    }

    pub fn set(&self) -> Arc<PolicySet> {
        self.0.set.load_full()
    }

    pub fn pool(&self) -> &VerifyPool {
        self.0.gate.pool()
    }

    /// Re-read every password and ACL file. A file that fails keeps its previous version (one
    /// entry each in the result; the caller logs them). The verification cache is cleared.
    pub fn reload(&self) -> Result<Vec<KeptOld>, PolicyError> {
        let _one = self.0.reloading.lock();
        let old = self.0.set.load_full();
        let (new, kept) = PolicySet::load(&self.0.config, Some(&old))?;
        self.0.set.store(Arc::new(new));
        self.0.generation.fetch_add(1, Ordering::Release);
        self.0.gate.clear_cache();
        Ok(kept)
    }

    fn listener_index(&self, l: &ListenerConfig) -> Option<usize> {
        self.0.config.listeners.iter().position(|c| c == l)
    }

    /// The policy that applies to a client: that of the listener it connected to. An identity
    /// without one (a session restored from the store) is judged by the listener of its port
    /// when that is unambiguous.
    fn policy_for<'s>(&self, set: &'s PolicySet, who: &Identity) -> Option<&'s ListenerPolicy> {
        let i = who.listener_index().or_else(|| {
            let port = who.listener_port()?;
            let mut it = self
                .0
                .config
                .listeners
                .iter()
                .enumerate()
                .filter(|(_, l)| l.port == port);
            let (first, _) = it.next()?;
            let same = it.all(|(j, _)| {
                Arc::ptr_eq(&set.listeners[j], &set.listeners[first])
                    || same_files(&set.listeners[j], &set.listeners[first])
            });
            same.then_some(first)
        })?;
        set.listeners.get(i).map(|l| &**l)
    }

    /// Run `f` with `who`'s compiled permissions (`None`: no ACL, everything allowed), compiling
    /// them first when the cache is empty or from an older generation. `None` when no policy
    /// applies to `who` (an identity of no known listener).
    fn with_grants<R>(&self, who: &Identity, f: impl FnOnce(Option<&Grants>) -> R) -> Option<R> {
        // Read before the set: a reload between the two only makes this entry look stale.
        let generation = self.0.generation.load(Ordering::Acquire);
        let token_epoch = who.token_epoch();
        let cache = &who.authz;
        if let Some(c) = cache.first.get() {
            if c.generation == generation && c.token_epoch == token_epoch {
                return Some(f(c.grants.as_ref()));
            }
            let later = cache.later.load();
            if let Some(c) = later.as_ref() {
                if c.generation == generation && c.token_epoch == token_epoch {
                    return Some(f(c.grants.as_ref()));
                }
            }
        }
        let set = self.0.set.load();
        let lp = self.policy_for(&set, who)?;
        // A token with `acl` or `roles` claims is scoped: without an ACL file it may do what
        // its claims grant and nothing else. So is a token identity restored from the store,
        // whose claims were never stored.
        let scoped =
            who.auth == AuthMethod::Token && (who.token().is_none() || who.claims().is_some());
        let grants = match &lp.acl {
            Some(acl) => Some(Grants::new(acl.clone(), who)),
            None if scoped => Some(Grants::new(empty_acl(), who)),
            None => None,
        };
        let fresh = Arc::new(Compiled {
            generation,
            token_epoch,
            grants,
        });
        if let Err(fresh) = cache.first.set(fresh.clone()) {
            cache.later.store(Some(fresh));
        }
        Some(f(fresh.grants.as_ref()))
    }

    /// Admit a client and say who it is, or refuse it. Password checks run on the pool.
    pub async fn authenticate(&self, req: ConnectRequest) -> ConnectDecision {
        let set = self.0.set.load_full();
        let Some(index) = self.listener_index(&req.listener) else {
            return ConnectDecision::Deny(ConnectDenial::NotAuthorized);
        };
        let Some(lp) = set.listeners.get(index).cloned() else {
            return ConnectDecision::Deny(ConnectDenial::NotAuthorized);
        };
        let prefixes = &self.0.config.client_ids.clientid_prefixes;
        if !prefixes.is_empty()
            && !prefixes
                .iter()
                .any(|p| req.client_id.starts_with(p.as_str()))
        {
            return ConnectDecision::Deny(ConnectDenial::ClientIdRejected);
        }
        let identity = |username: Option<String>, auth: AuthMethod| {
            let mut id = Identity::anonymous(req.client_id.clone());
            id.username = username.map(String::into_boxed_str);
            id.auth = auth;
            id.set_cert_subject(req.cert.as_ref().map(|c| c.subject.clone()));
            id.set_listener_port(req.listener.port);
            id.set_peer(Some(req.peer));
            id.set_listener_index(index);
            id
        };
        if let Some(mode) = lp.cert_name {
            // The verified certificate is the credential (Mosquitto then ignores the password
            // file): without one, or without a usable CN, the client has no credential.
            return match cert_username(mode, req.cert.as_ref()) {
                Some(u) => {
                    tracing::info!(client_id = ?req.client_id, username = ?u, "username taken from the client certificate");
                    ConnectDecision::Allow(identity(Some(u), AuthMethod::Certificate))
                }
                None => ConnectDecision::Deny(ConnectDenial::BadCredentials),
            };
        }
        if let Some(verifier) = &lp.tokens {
            // A password of the JWT compact form is a token here (docs: "tokens and passwords
            // on one listener"); anything else goes on to the password file.
            if let Some(p) = req
                .password
                .as_deref()
                .filter(|p| tokens::looks_like_jwt(p))
            {
                return match verifier.verify(p, req.username.as_deref()) {
                    Ok(grant) => {
                        tracing::debug!(client_id = ?req.client_id, username = ?grant.username, "token accepted");
                        let mut id = identity(Some(grant.username.clone()), AuthMethod::Token);
                        id.set_token(Some(Arc::new(TokenSession::new(grant))));
                        ConnectDecision::Allow(id)
                    }
                    Err(e) => {
                        token_refused(
                            Some(&req.client_id),
                            req.username.as_deref(),
                            Some(req.peer),
                            Some(req.listener.port),
                            &e,
                        );
                        ConnectDecision::Deny(ConnectDenial::BadCredentials)
                    }
                };
            }
        }
        let (Some(user), Some(verifier)) = (&req.username, &lp.passwords) else {
            // No password file here: credentials cannot be checked, so they are not taken as
            // proof of anything; the client is admitted as anonymous where that is allowed.
            return if lp.anonymous {
                ConnectDecision::Allow(identity(None, AuthMethod::Anonymous))
            } else {
                ConnectDecision::Deny(ConnectDenial::NotAuthorized)
            };
        };
        let password = req
            .password
            .clone()
            .unwrap_or_else(|| Zeroizing::new(Vec::new()));
        let from = Origin {
            device: Some(req.peer.ip()),
            peer: Some(req.peer),
            listener: Some(req.listener.port),
            client_id: Some(&req.client_id),
        };
        match self.0.gate.check(verifier, user, password, from).await {
            Checked::Valid => {
                ConnectDecision::Allow(identity(Some(user.clone()), AuthMethod::Password))
            }
            Checked::Invalid => ConnectDecision::Deny(ConnectDenial::BadCredentials),
            Checked::Locked => ConnectDecision::Deny(ConnectDenial::Throttled),
            Checked::Busy => ConnectDecision::Deny(ConnectDenial::ServerBusy),
        }
    }

    /// MQTT 5 re-authentication of a live token client: verify `token` with the keys of its
    /// listener; it must name the same user. On success the client's token (expiry and
    /// permissions) is replaced in place and its new end (Unix seconds) returned.
    pub fn reauthenticate(&self, who: &Identity, token: &[u8]) -> Result<u64, TokenError> {
        let set = self.0.set.load();
        let (Some(lp), Some(session)) = (self.policy_for(&set, who), who.token()) else {
            return Err(TokenError::UnknownKey(
                "tokens are not accepted here".into(),
            ));
        };
        let Some(v) = &lp.tokens else {
            return Err(TokenError::UnknownKey(
                "tokens are not accepted here".into(),
            ));
        };
        let grant: TokenGrant = v.verify(token, who.username.as_deref())?;
        let until = grant.valid_until;
        session.replace(grant);
        Ok(until)
    }

    fn decide<R>(
        &self,
        who: &Identity,
        req: &AclRequest,
        no_acl: R,
        f: impl FnOnce(&Decision) -> R,
    ) -> Option<R> {
        self.with_grants(who, |g| match g {
            None => no_acl,
            Some(g) => f(&g.decide(who, req)),
        })
    }

    pub fn publish(&self, who: &Identity, topic: &str, qos: QoS, retain: bool) -> bool {
        let req = AclRequest {
            access: Access::Write,
            topic,
            qos: qos as u8,
            retain,
        };
        self.decide(who, &req, true, |d| {
            if !d.allowed {
                denied(who, &req, None, d);
            }
            d.allowed
        })
        .unwrap_or(false)
    }

    /// `filter` without any `$share/GROUP/` prefix.
    pub fn subscribe(
        &self,
        who: &Identity,
        filter: &str,
        share_group: Option<&str>,
        qos: QoS,
    ) -> SubscribeDecision {
        let req = AclRequest {
            access: Access::Subscribe,
            topic: filter,
            qos: qos as u8,
            retain: false,
        };
        self.decide(who, &req, SubscribeDecision::Granted(qos), |d| {
            if d.allowed {
                let cap = QoS::from_u8(d.max_qos).unwrap_or(QoS::AtMostOnce);
                SubscribeDecision::Granted(qos.min(cap))
            } else {
                denied(who, &req, share_group, d);
                SubscribeDecision::Denied
            }
        })
        .unwrap_or(SubscribeDecision::Denied)
    }

    /// Every delivery (live, queued, retained, will): no lock, no I/O, nothing logged (a
    /// wildcard subscriber meeting topics it may not read is normal filtering, not an attack).
    pub fn deliver(&self, who: &Identity, topic: &str, qos: QoS, retain: bool) -> bool {
        let req = AclRequest {
            access: Access::Read,
            topic,
            qos: qos as u8,
            retain,
        };
        self.decide(who, &req, true, |d| d.allowed).unwrap_or(false)
    }

    /// After a reload: may this live client stay, and which of its subscriptions (raw filters,
    /// `$share/GROUP/` included, with their granted QoS) may it keep, and at what QoS?
    pub fn recheck(&self, who: &Identity, subs: &[(String, QoS)]) -> Recheck {
        let set = self.0.set.load();
        let Some(lp) = self.policy_for(&set, who) else {
            return Recheck::Keep;
        };
        if who.auth == AuthMethod::Password {
            let still_there = match (&who.username, &lp.passwords) {
                (Some(u), Some(v)) => v.stored(u).is_some(),
                _ => false,
            };
            if !still_there {
                return Recheck::Disconnect;
            }
        }
        if who.auth == AuthMethod::Anonymous && !lp.anonymous {
            return Recheck::Disconnect;
        }
        if who.auth == AuthMethod::Token {
            // Tokens are no longer accepted here, or the key that verified this one is gone
            // (a JWK set rotated by SIGHUP). A restored identity holds no token: it is judged
            // when its client comes back.
            let keep = match (who.token(), &lp.tokens) {
                (Some(t), Some(v)) => v.has_key(&t.current().key_id),
                (None, Some(_)) => true,
                (_, None) => false,
            };
            if !keep {
                return Recheck::Disconnect;
            }
        }
        let (mut drop, mut cap) = (Vec::new(), Vec::new());
        for (f, granted) in subs {
            let req = AclRequest::new(Access::Subscribe, f);
            // Some(max) when allowed, None when denied; no ACL caps nothing.
            match self.decide(who, &req, Some(2), |d| d.allowed.then_some(d.max_qos)) {
                Some(None) => drop.push(f.clone()),
                Some(Some(max)) if (*granted as u8) > max => {
                    cap.push((f.clone(), QoS::from_u8(max).unwrap_or(QoS::AtMostOnce)));
                }
                _ => {}
            }
        }
        if drop.is_empty() && cap.is_empty() {
            Recheck::Keep
        } else {
            Recheck::Narrow { drop, cap }
        }
    }
}

/// The ACL of a listener without an ACL file, for token clients whose claims are all they may do.
fn empty_acl() -> Arc<Acl> {
    static EMPTY: OnceLock<Arc<Acl>> = OnceLock::new();
    EMPTY
        .get_or_init(|| Arc::new(Acl::empty("(no acl_file)")))
        .clone()
}

fn same_files(a: &ListenerPolicy, b: &ListenerPolicy) -> bool {
    a.token_config == b.token_config
        && a.acl_file == b.acl_file
        && a.password_file == b.password_file
        && a.anonymous == b.anonymous
        && a.cert_name == b.cert_name
}

/// The username a verified certificate gives under `mode` (`use_identity_as_username`: the CN,
/// `use_subject_as_username`: the subject); None without a certificate or a CN.
pub fn cert_username(mode: CertName, cert: Option<&PeerCert>) -> Option<String> {
    let cert = cert?;
    match mode {
        CertName::CommonName => cert.common_name.clone(),
        CertName::Subject => Some(cert.subject.clone()),
    }
}

/// Log a refused token: the reason, never the token.
/// Log a refused token (`serve`'s CONNECT, `auth-server`'s login): the reason, never the token.
pub(crate) fn token_refused(
    client_id: Option<&str>,
    username: Option<&str>,
    peer: Option<std::net::SocketAddr>,
    listener: Option<u16>,
    reason: &dyn std::fmt::Display,
) {
    tracing::info!(client_id, username, peer = ?peer, reason = %reason, "token refused");
    if events::enabled() {
        let mut e = Event::new("auth_failure")
            .username(username)
            .reason(format!("token: {reason}"));
        if let Some(id) = client_id {
            e = e.client_id(id);
        }
        if let Some(p) = peer {
            e = e.peer(p);
        }
        if let Some(l) = listener {
            e = e.listener(l);
        }
        events::emit(e);
    }
}

pub(crate) fn denied(who: &Identity, req: &AclRequest, share_group: Option<&str>, d: &Decision) {
    tracing::debug!(client_id = ?who.client_id, access = req.access.as_str(), topic = req.topic, reason = d.reason.as_str(), "denied by the ACL");
    if events::enabled() {
        events::emit(
            Event::new("acl_denied")
                .who(who)
                .topic(req.access.as_str(), req.topic)
                .share_group(share_group)
                .reason(d.reason.as_str())
                .rule(d.rule_ref().map(|r| r.to_string())),
        );
    }
}

#[cfg(test)]
#[path = "policy_tests.rs"]
mod tests;
