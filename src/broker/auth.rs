//! THE authorization hook. Every CONNECT, PUBLISH, SUBSCRIBE and every single delivery (live,
//! queued or retained) asks the one `Authorizer` the broker was built with, about the
//! `Identity` attached to the connection. Password files, ACLs, certificates and tokens of later
//! releases are new implementations of this trait; the protocol code does not change.

use std::net::SocketAddr;

use crate::broker::codec::{Connect, QoS};
use crate::config::model::{CertUsername, ListenerConfig};
use crate::security::identity::{AuthMethod, Identity, PeerCert};

/// What the broker knows about a connection when its CONNECT arrives.
pub struct ConnectInfo<'a> {
    pub connect: &'a Connect,
    /// The client id the session will use (assigned by the broker when the client sent none).
    pub client_id: &'a str,
    pub peer: SocketAddr,
    pub listener: &'a ListenerConfig,
    /// The client certificate a TLS listener verified.
    pub cert: Option<&'a PeerCert>,
}

/// Why a CONNECT is refused; the connection maps it to the right v3 return / v5 reason code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectDenial {
    /// v3 0x04 / v5 0x86.
    BadCredentials,
    /// v3 0x05 / v5 0x87.
    NotAuthorized,
    /// v3 0x02 / v5 0x85.
    ClientIdRejected,
    /// v3 0x03 / v5 0x8A.
    Banned,
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

pub trait Authorizer: Send + Sync {
    /// Admit a client and say who it is, or refuse it.
    fn connect(&self, info: &ConnectInfo<'_>) -> ConnectDecision;

    /// True when `connect` does expensive work (password hashing): the broker then calls it on the
    /// blocking pool so a login storm cannot stall the reactor threads.
    fn connect_is_expensive(&self) -> bool {
        false
    }

    /// May this client publish to `topic` (also asked for its will when it is sent)?
    fn publish(&self, who: &Identity, topic: &str, qos: QoS, retain: bool) -> bool;

    /// May this client subscribe to `filter` (without any `$share/GROUP/` prefix)?
    fn subscribe(&self, who: &Identity, filter: &str, qos: QoS) -> SubscribeDecision;

    /// May this message be delivered to this client? Asked for every delivery.
    fn deliver(&self, who: &Identity, topic: &str, qos: QoS, retain: bool) -> bool;

    /// May `new` resume or take over a session owned by `owner`? A client id alone proves
    /// nothing: by default the same username and the same certificate subject are required.
    fn may_take_session(&self, owner: &Identity, new: &Identity) -> bool {
        owner.username == new.username && owner.cert_subject == new.cert_subject
    }
}

/// The default: admits clients only on listeners where anonymous access is allowed (by default,
/// listeners bound to loopback) or that take the username from a verified client certificate
/// (`use_identity_as_username`, `use_subject_as_username`), applies `clientid_prefixes`, and
/// allows every topic.
pub struct AllowAnonymous {
    pub clientid_prefixes: Vec<String>,
}

impl Authorizer for AllowAnonymous {
    fn connect(&self, info: &ConnectInfo<'_>) -> ConnectDecision {
        if !self.clientid_prefixes.is_empty()
            && !self
                .clientid_prefixes
                .iter()
                .any(|p| info.client_id.starts_with(p.as_str()))
        {
            return ConnectDecision::Deny(ConnectDenial::NotAuthorized);
        }
        if let Some(kind) = info.listener.cert_username() {
            // The verified certificate is the credential, as in Mosquitto (where the password
            // file is then not consulted): no certificate, or no usable CN, is a bad credential.
            let name = info.cert.and_then(|c| match kind {
                CertUsername::CommonName => c.common_name.clone(),
                CertUsername::Subject => Some(c.subject.clone()),
            });
            let Some(name) = name else {
                return ConnectDecision::Deny(ConnectDenial::BadCredentials);
            };
            tracing::info!(client_id = ?info.client_id, username = ?name, "username taken from the client certificate");
            let mut id = Identity::with_username(info.client_id, name);
            id.auth = AuthMethod::Certificate;
            id.listener_port = Some(info.listener.port);
            id.peer = Some(info.peer);
            id.cert_subject = info.cert.map(|c| c.subject.clone());
            return ConnectDecision::Allow(id);
        }
        if !info.listener.anonymous_allowed() {
            // No credential check exists yet, so nobody can be admitted here.
            return ConnectDecision::Deny(ConnectDenial::NotAuthorized);
        }
        if info.connect.username.is_some() || info.connect.password.is_some() {
            // Credentials we cannot check must not be taken as proof of anything: the client is
            // admitted as anonymous, exactly as it would be without them.
            tracing::debug!("credentials ignored: no password_file configured");
        }
        let mut id = Identity::anonymous(info.client_id);
        id.listener_port = Some(info.listener.port);
        id.peer = Some(info.peer);
        id.cert_subject = info.cert.map(|c| c.subject.clone());
        ConnectDecision::Allow(id)
    }

    fn publish(&self, _who: &Identity, _topic: &str, _qos: QoS, _retain: bool) -> bool {
        true
    }

    fn subscribe(&self, _who: &Identity, _filter: &str, qos: QoS) -> SubscribeDecision {
        SubscribeDecision::Granted(qos)
    }

    fn deliver(&self, _who: &Identity, _topic: &str, _qos: QoS, _retain: bool) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::codec::{Properties, ProtocolVersion};
    use std::net::{IpAddr, Ipv4Addr};

    fn connect() -> Connect {
        Connect {
            protocol: ProtocolVersion::V5,
            clean_start: true,
            keep_alive: 60,
            client_id: "c1".into(),
            will: None,
            username: None,
            password: None,
            properties: Properties::default(),
        }
    }

    #[test]
    fn anonymous_only_where_allowed() {
        let a = AllowAnonymous {
            clientid_prefixes: vec![],
        };
        let c = connect();
        let peer = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 5);
        let local = ListenerConfig::new(1883, Some(IpAddr::V4(Ipv4Addr::LOCALHOST)), "t");
        let open = ListenerConfig::new(1883, None, "t");
        let info = |l| ConnectInfo {
            connect: &c,
            client_id: "c1",
            peer,
            listener: l,
            cert: None,
        };
        match a.connect(&info(&local)) {
            ConnectDecision::Allow(id) => {
                assert_eq!(id.client_id, "c1");
                assert_eq!(id.listener_port, Some(1883));
            }
            d => panic!("{d:?}"),
        }
        assert_eq!(
            a.connect(&info(&open)),
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
        };
        let with_cert = ConnectInfo {
            cert: Some(&cert),
            ..info(&mtls)
        };
        match a.connect(&with_cert) {
            ConnectDecision::Allow(id) => {
                assert_eq!(id.username.as_deref(), Some("dev-1"));
                assert_eq!(id.auth, AuthMethod::Certificate);
                assert_eq!(id.cert_subject.as_deref(), Some("CN=dev-1,O=Acme"));
            }
            d => panic!("{d:?}"),
        }
        assert_eq!(
            a.connect(&info(&mtls)),
            ConnectDecision::Deny(ConnectDenial::BadCredentials)
        );
        let mut by_subject = mtls.clone();
        by_subject.tls.cert_username.as_mut().unwrap().value = CertUsername::Subject;
        let with_cert = ConnectInfo {
            cert: Some(&cert),
            ..info(&by_subject)
        };
        match a.connect(&with_cert) {
            ConnectDecision::Allow(id) => {
                assert_eq!(id.username.as_deref(), Some("CN=dev-1,O=Acme"))
            }
            d => panic!("{d:?}"),
        }
        let p = AllowAnonymous {
            clientid_prefixes: vec!["C1-".into()],
        };
        assert_eq!(
            p.connect(&info(&local)),
            ConnectDecision::Deny(ConnectDenial::NotAuthorized)
        );
    }
}
