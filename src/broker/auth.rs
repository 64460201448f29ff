//! THE authorization hook. Every CONNECT, PUBLISH, SUBSCRIBE and every single delivery (live,
//! queued, retained or a will) asks the one `Authorizer` the broker was built with, about the
//! `Identity` attached to the connection. `serve` runs with [`crate::security::policy::Policy`]
//! (password file, ACL, certificates); [`AllowAnonymous`] admits anonymous clients where the
//! listener allows them and every topic.
//!
//! CONNECT is asynchronous and owned: authentication may wait for the password pool (or, later,
//! a remote backend) without holding the reactor. The other questions are synchronous and must
//! stay cheap: they are asked on every message, some under a session's lock.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use zeroize::Zeroizing;

use crate::broker::codec::reason::{v3, v5};
use crate::broker::codec::{ProtocolVersion, QoS};
use crate::broker::core::Broker;
use crate::config::model::ListenerConfig;
use crate::security::identity::{AuthMethod, Identity, PeerCert};
use crate::security::policy::{same_principal, Policy};

pub type ConnectFuture = Pin<Box<dyn Future<Output = ConnectDecision> + Send + 'static>>;

/// What the broker knows about a client when its CONNECT arrives. Owned, so authentication can
/// run anywhere (a pool, a remote backend).
pub struct ConnectRequest {
    /// The client id the session will use (assigned by the broker when the client sent none).
    pub client_id: Arc<str>,
    pub username: Option<String>,
    /// Wiped when dropped.
    pub password: Option<Zeroizing<Vec<u8>>>,
    pub peer: SocketAddr,
    pub listener: Arc<ListenerConfig>,
    /// The client certificate a TLS listener verified.
    pub cert: Option<PeerCert>,
    pub protocol: ProtocolVersion,
    pub clean_start: bool,
}

/// Why a CONNECT is refused. The codes follow the MQTT specifications' meanings (see
/// [`ConnectDenial::code`]); the same answer for an unknown user and a wrong password.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectDenial {
    /// Unknown username or wrong password (or no certificate where it names the client).
    BadCredentials,
    /// No credentials where they are required, or not allowed on this listener.
    NotAuthorized,
    /// The client id is not allowed (`clientid_prefixes`).
    ClientIdRejected,
    Banned,
    /// Too many failed logins for this username or from this address; try again later.
    Throttled,
    /// The password checks are saturated; try again later.
    ServerBusy,
}

impl ConnectDenial {
    /// The CONNACK code for this refusal.
    ///
    /// | refusal | v5 | v3.1.1 / 3.1 |
    /// |---|---|---|
    /// | BadCredentials | 0x86 bad user name or password | 5 not authorized |
    /// | NotAuthorized | 0x87 not authorized | 5 |
    /// | ClientIdRejected | 0x85 client identifier not valid | 2 identifier rejected |
    /// | Banned | 0x8A banned | 5 |
    /// | Throttled | 0x9F connection rate exceeded | 5 |
    /// | ServerBusy | 0x89 server busy | 3 server unavailable |
    ///
    /// v5 0x86 ("the user name or password is not accepted by the server") is the exact v5 code
    /// for a wrong password (Mosquitto 2.0 sends 0x87). In v3.1.1, return code 4 means the
    /// credentials are *malformed*; a wrong password is "not authorized" (5), as Mosquitto
    /// answers. Throttled and busy clients learn only what a legitimate client needs: to retry
    /// later.
    pub fn code(self, protocol: ProtocolVersion) -> u8 {
        let v5c = protocol.is_v5();
        let pick = |a: u8, b: u8| if v5c { b } else { a };
        match self {
            ConnectDenial::BadCredentials => {
                pick(v3::NOT_AUTHORIZED, v5::BAD_USER_NAME_OR_PASSWORD)
            }
            ConnectDenial::NotAuthorized => pick(v3::NOT_AUTHORIZED, v5::NOT_AUTHORIZED),
            ConnectDenial::ClientIdRejected => {
                pick(v3::IDENTIFIER_REJECTED, v5::CLIENT_IDENTIFIER_NOT_VALID)
            }
            ConnectDenial::Banned => pick(v3::NOT_AUTHORIZED, v5::BANNED),
            ConnectDenial::Throttled => pick(v3::NOT_AUTHORIZED, v5::CONNECTION_RATE_EXCEEDED),
            ConnectDenial::ServerBusy => pick(v3::SERVER_UNAVAILABLE, v5::SERVER_BUSY),
        }
    }

    /// For logs (never sent to the client).
    pub fn as_str(self) -> &'static str {
        match self {
            ConnectDenial::BadCredentials => "bad username or password",
            ConnectDenial::NotAuthorized => "not authorized on this listener",
            ConnectDenial::ClientIdRejected => "client id without a permitted prefix",
            ConnectDenial::Banned => "banned",
            ConnectDenial::Throttled => "too many failed logins; locked for now",
            ConnectDenial::ServerBusy => "password checks saturated",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectDecision {
    Allow(Identity),
    Deny(ConnectDenial),
}

/// The decision for one SUBSCRIBE filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubscribeDecision {
    /// Granted, possibly at a lower QoS than asked.
    Granted(QoS),
    /// v3 SUBACK 0x80 / v5 0x87.
    Denied,
}

/// What a reload means for one live client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recheck {
    Keep,
    /// Its credentials are gone (v5 DISCONNECT 0x98).
    Disconnect,
    /// Some subscriptions (raw filters) are no longer allowed (`drop`) or are allowed at a lower
    /// QoS than they were granted (`cap`: the filter and its new maximum).
    Narrow {
        drop: Vec<String>,
        cap: Vec<(String, QoS)>,
    },
}

pub trait Authorizer: Send + Sync {
    /// Admit a client and say who it is, or refuse it. Never blocks the reactor: slow work
    /// runs elsewhere and the future waits for it.
    fn connect(&self, req: ConnectRequest) -> ConnectFuture;

    /// May this client publish to `topic` (also asked for its will when it is sent)?
    fn publish(&self, who: &Identity, topic: &str, qos: QoS, retain: bool) -> bool;

    /// May this client subscribe to `filter` (without any `$share/GROUP/` prefix; the group is
    /// `share_group`)?
    fn subscribe(
        &self,
        who: &Identity,
        filter: &str,
        share_group: Option<&str>,
        qos: QoS,
    ) -> SubscribeDecision;

    /// May this message be delivered to this client? Asked for every delivery: must not do I/O
    /// or take another session's lock.
    fn deliver(
        &self,
        who: &Identity,
        topic: &str,
        qos: QoS,
        retain: bool,
        share_group: Option<&str>,
    ) -> bool;

    /// May `new` resume or take over a session owned by `owner`? Default: the same username
    /// and the same certificate subject; anonymous clients only take over anonymous sessions.
    fn may_take_session(&self, owner: &Identity, new: &Identity) -> bool {
        same_principal(owner, new)
    }

    /// MQTT 5 re-authentication (AUTH 0x19) of a live client with the authentication data of
    /// `method` (the method its CONNECT used). On success the client's identity has been
    /// updated in place, and the answer is when its new credential ends (Unix seconds), if it
    /// does. The error is the reason, for logs.
    fn reauthenticate(
        &self,
        _who: &Identity,
        method: &str,
        _data: &[u8],
    ) -> Result<Option<u64>, String> {
        Err(format!("authentication method {method:?} is not offered"))
    }

    /// After a reload of the password or ACL files: may this live client stay, and which of its
    /// subscriptions (raw filters, `$share/GROUP/` included, with the QoS they were granted) may
    /// it keep, and at what QoS?
    fn recheck(&self, _who: &Identity, _subs: &[(String, QoS)]) -> Recheck {
        Recheck::Keep
    }
}

impl Authorizer for Policy {
    fn connect(&self, req: ConnectRequest) -> ConnectFuture {
        let p = self.clone();
        Box::pin(async move { p.authenticate(req).await })
    }

    fn publish(&self, who: &Identity, topic: &str, qos: QoS, retain: bool) -> bool {
        Policy::publish(self, who, topic, qos, retain)
    }

    fn subscribe(
        &self,
        who: &Identity,
        filter: &str,
        share_group: Option<&str>,
        qos: QoS,
    ) -> SubscribeDecision {
        Policy::subscribe(self, who, filter, share_group, qos)
    }

    fn deliver(
        &self,
        who: &Identity,
        topic: &str,
        qos: QoS,
        retain: bool,
        _share_group: Option<&str>,
    ) -> bool {
        Policy::deliver(self, who, topic, qos, retain)
    }

    fn recheck(&self, who: &Identity, subs: &[(String, QoS)]) -> Recheck {
        Policy::recheck(self, who, subs)
    }

    fn reauthenticate(
        &self,
        who: &Identity,
        method: &str,
        data: &[u8],
    ) -> Result<Option<u64>, String> {
        if method != crate::security::tokens::AUTH_METHOD {
            return Err(format!("authentication method {method:?} is not offered"));
        }
        Policy::reauthenticate(self, who, data)
            .map(Some)
            .map_err(|e| format!("token: {e}"))
    }
}

/// What [`recheck_sessions`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RecheckReport {
    pub disconnected: usize,
    pub subscriptions_removed: usize,
    pub subscriptions_downgraded: usize,
}

/// After a reload: ask the authorizer about every session's identity and subscriptions;
/// disconnect live clients whose credentials are gone (v5 DISCONNECT 0x98), remove
/// subscriptions that are no longer allowed and lower the QoS of those a rule's `max_qos` now
/// caps (offline persistent sessions included). MQTT has no way to tell a client its granted QoS
/// went down: it sees deliveries at the lower QoS, and the security log says why. Each
/// session's lock is held only to read it and again to change it, never while asking.
pub fn recheck_sessions(broker: &Broker) -> RecheckReport {
    let mut report = RecheckReport::default();
    for s in broker.sessions.snapshot() {
        recheck_session(broker, &s, "after reload", &mut report);
    }
    report
}

/// [`recheck_sessions`] for one session, after `why` ("after reload", "after
/// re-authentication"): the client's permissions changed, so its subscriptions are narrowed to
/// what it may still read, or it is disconnected when its credentials are gone.
pub fn recheck_session(
    broker: &Broker,
    s: &Arc<crate::broker::session::Session>,
    why: &str,
    report: &mut RecheckReport,
) {
    use crate::security::events::{self, Event};
    let Some(who) = s.owner() else { return };
    let subs = s.subscriptions_granted();
    match broker.auth.recheck(&who, &subs) {
        Recheck::Keep => {}
        Recheck::Disconnect => {
            if s.is_online() {
                s.kick(v5::ADMINISTRATIVE_ACTION);
                report.disconnected += 1;
                tracing::info!(client_id = ?who.client_id, username = ?who.username, "disconnected: credentials no longer valid {why}");
                events::emit(
                    Event::new("disconnected")
                        .who(&who)
                        .reason(format!("credentials no longer valid {why}"))
                        .code(v5::ADMINISTRATIVE_ACTION),
                );
            }
        }
        Recheck::Narrow { drop, cap } => {
            for (f, qos) in &cap {
                if broker.cap_subscription(s, f, *qos) {
                    report.subscriptions_downgraded += 1;
                    tracing::info!(client_id = ?who.client_id, filter = f.as_str(), max_qos = *qos as u8, "subscription downgraded: its rule's max_qos is lower {why}");
                    events::emit(
                        Event::new("subscription_downgraded")
                            .who(&who)
                            .topic("subscribe", f)
                            .reason(format!("max_qos {} {why}", *qos as u8)),
                    );
                }
            }
            for f in &drop {
                broker.unsubscribe(s, f);
                report.subscriptions_removed += 1;
                tracing::info!(client_id = ?who.client_id, filter = f.as_str(), "subscription removed: no longer allowed {why}");
                events::emit(
                    Event::new("subscription_removed")
                        .who(&who)
                        .topic("subscribe", f)
                        .reason(format!("no longer allowed {why}")),
                );
            }
            broker.save_session(s);
        }
    }
}

/// Admits clients only on listeners where anonymous access is allowed (by default, listeners
/// bound to loopback), applies `clientid_prefixes`, and allows every topic. For embedding and
/// tests; `serve` runs with [`Policy`], which does the same when no files are configured.
pub struct AllowAnonymous {
    pub clientid_prefixes: Vec<String>,
}

impl Authorizer for AllowAnonymous {
    fn connect(&self, req: ConnectRequest) -> ConnectFuture {
        let prefixes_ok = self.clientid_prefixes.is_empty()
            || self
                .clientid_prefixes
                .iter()
                .any(|p| req.client_id.starts_with(p.as_str()));
        let decision = if !prefixes_ok {
            ConnectDecision::Deny(ConnectDenial::ClientIdRejected)
        } else if let Some(kind) = req.listener.cert_username() {
            // The verified certificate is the credential, as in Mosquitto (where the password
            // file is then not consulted): no certificate, or no usable CN, is a bad credential.
            match crate::security::policy::cert_username(kind, req.cert.as_ref()) {
                None => ConnectDecision::Deny(ConnectDenial::BadCredentials),
                Some(name) => {
                    let mut id = Identity::with_username(req.client_id, name);
                    id.auth = AuthMethod::Certificate;
                    id.set_listener_port(req.listener.port);
                    id.set_peer(Some(req.peer));
                    id.set_cert_subject(req.cert.map(|c| c.subject));
                    ConnectDecision::Allow(id)
                }
            }
        } else if !req.listener.anonymous_allowed() {
            ConnectDecision::Deny(ConnectDenial::NotAuthorized)
        } else {
            // Credentials nobody checks are not taken as proof of anything: the client is
            // admitted as anonymous, exactly as it would be without them.
            let mut id = Identity::anonymous(req.client_id);
            id.set_listener_port(req.listener.port);
            id.set_peer(Some(req.peer));
            id.set_cert_subject(req.cert.map(|c| c.subject));
            ConnectDecision::Allow(id)
        };
        Box::pin(std::future::ready(decision))
    }

    fn publish(&self, _who: &Identity, _topic: &str, _qos: QoS, _retain: bool) -> bool {
        true
    }

    fn subscribe(
        &self,
        _who: &Identity,
        _filter: &str,
        _share_group: Option<&str>,
        qos: QoS,
    ) -> SubscribeDecision {
        SubscribeDecision::Granted(qos)
    }

    fn deliver(
        &self,
        _who: &Identity,
        _topic: &str,
        _qos: QoS,
        _retain: bool,
        _share_group: Option<&str>,
    ) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::model::CertUsername;
    use crate::security::identity::AuthMethod;
    use std::net::{IpAddr, Ipv4Addr};

    fn request(listener: ListenerConfig, client_id: &str) -> ConnectRequest {
        ConnectRequest {
            client_id: client_id.into(),
            username: Some("someone".into()),
            password: Some(Zeroizing::new(b"anything".to_vec())),
            peer: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 5),
            listener: Arc::new(listener),
            cert: None,
            protocol: ProtocolVersion::V5,
            clean_start: true,
        }
    }

    #[tokio::test]
    async fn anonymous_only_where_allowed() {
        let a = AllowAnonymous {
            clientid_prefixes: vec![],
        };
        let local = ListenerConfig::new(1883, Some(IpAddr::V4(Ipv4Addr::LOCALHOST)), "t");
        let open = ListenerConfig::new(1883, None, "t");
        match a.connect(request(local.clone(), "c1")).await {
            ConnectDecision::Allow(id) => {
                assert_eq!(&*id.client_id, "c1");
                assert_eq!(id.listener_port(), Some(1883));
                // The unchecked username is not believed.
                assert_eq!((id.username, id.auth), (None, AuthMethod::Anonymous));
            }
            d => panic!("{d:?}"),
        }
        assert_eq!(
            a.connect(request(open, "c1")).await,
            ConnectDecision::Deny(ConnectDenial::NotAuthorized)
        );
        // A certificate listener: the CN (or subject) is the username, even off loopback.
        let mut mtls = ListenerConfig::new(8883, None, "t");
        mtls.tls.cert_username = Some(crate::config::model::Located {
            value: CertUsername::CommonName,
            at: crate::config::model::ConfLoc {
                file: "t".into(),
                line: 1,
            },
        });
        let cert = PeerCert {
            subject: "CN=dev-1,O=Acme".into(),
            common_name: Some("dev-1".into()),
            issuer: "CN=CA".into(),
            serial: "1f".into(),
            not_after: time::OffsetDateTime::now_utc() + time::Duration::days(365),
        };
        let with_cert = ConnectRequest {
            cert: Some(cert.clone()),
            ..request(mtls.clone(), "c1")
        };
        match a.connect(with_cert).await {
            ConnectDecision::Allow(id) => {
                assert_eq!(id.username.as_deref(), Some("dev-1"));
                assert_eq!(id.auth, AuthMethod::Certificate);
                assert_eq!(id.cert_subject(), Some("CN=dev-1,O=Acme"));
            }
            d => panic!("{d:?}"),
        }
        assert_eq!(
            a.connect(request(mtls.clone(), "c1")).await,
            ConnectDecision::Deny(ConnectDenial::BadCredentials)
        );
        let mut by_subject = mtls.clone();
        by_subject.tls.cert_username.as_mut().unwrap().value = CertUsername::Subject;
        let with_cert = ConnectRequest {
            cert: Some(cert.clone()),
            ..request(by_subject, "c1")
        };
        match a.connect(with_cert).await {
            ConnectDecision::Allow(id) => {
                assert_eq!(id.username.as_deref(), Some("CN=dev-1,O=Acme"))
            }
            d => panic!("{d:?}"),
        }
        let p = AllowAnonymous {
            clientid_prefixes: vec!["C1-".into()],
        };
        assert_eq!(
            p.connect(request(local.clone(), "python2")).await,
            ConnectDecision::Deny(ConnectDenial::ClientIdRejected)
        );
        assert!(matches!(
            p.connect(request(local, "C1-python1")).await,
            ConnectDecision::Allow(_)
        ));
    }

    #[test]
    fn connack_codes_per_version() {
        use ConnectDenial::*;
        let (v3, v31, v5) = (
            ProtocolVersion::V311,
            ProtocolVersion::V31,
            ProtocolVersion::V5,
        );
        let table = [
            (BadCredentials, 0x05, 0x86),
            (NotAuthorized, 0x05, 0x87),
            (ClientIdRejected, 0x02, 0x85),
            (Banned, 0x05, 0x8A),
            (Throttled, 0x05, 0x9F),
            (ServerBusy, 0x03, 0x89),
        ];
        for (d, c3, c5) in table {
            assert_eq!(d.code(v3), c3, "{d:?}");
            assert_eq!(d.code(v31), c3, "{d:?}");
            assert_eq!(d.code(v5), c5, "{d:?}");
        }
    }

    #[test]
    fn sessions_belong_to_the_same_principal() {
        let a = AllowAnonymous {
            clientid_prefixes: vec![],
        };
        let anon = Identity::anonymous("c");
        let alice = Identity::with_username("c", "alice");
        let bob = Identity::with_username("c", "bob");
        let mut alice_cert = alice.clone();
        alice_cert.set_cert_subject(Some("CN=alice".into()));
        let mut cert_only = Identity::anonymous("c");
        cert_only.set_cert_subject(Some("CN=dev".into()));
        let mut other_cert = cert_only.clone();
        other_cert.set_cert_subject(Some("CN=other".into()));
        let yes = [
            (&anon, &anon),
            (&alice, &alice),
            (&alice_cert, &alice_cert),
            (&cert_only, &cert_only),
        ];
        for (o, n) in yes {
            assert!(a.may_take_session(o, n), "{o:?} {n:?}");
        }
        let no = [
            (&anon, &alice),
            (&alice, &anon),
            (&alice, &bob),
            (&alice, &alice_cert),
            (&alice_cert, &alice),
            (&cert_only, &anon),
            (&anon, &cert_only),
            (&cert_only, &other_cert),
        ];
        for (o, n) in no {
            assert!(!a.may_take_session(o, n), "{o:?} {n:?}");
        }
    }
}
