//! Who a client is. Every connection carries one `Identity` from CONNECT on; every authorization
//! question (CONNECT, PUBLISH, SUBSCRIBE, each delivery) is asked about it.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::num::NonZeroU16;
use std::sync::Arc;

use crate::security::acl::ClaimRules;
use crate::security::policy::AuthzCache;
use crate::security::tokens::TokenSession;

/// How the client proved who it is. Later waves add certificates and tokens; the broker and the
/// ACL matcher only ever see this type, so adding a method touches no protocol code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthMethod {
    /// No credentials presented (or none checked).
    Anonymous,
    /// Username and password checked against a password file.
    Password,
    /// A verified TLS client certificate.
    Certificate,
    /// An access token in the CONNECT password field.
    Token,
}

/// The identity of one connected client.
///
/// Held (as `Arc<Identity>`) by every connection and session, parked ones included: kept small
/// (see the size test below). What most clients leave empty (certificate subject, roles, peer
/// certificate, token) lives in one box allocated only for the clients that have any of it; the
/// peer address and listener are stored compactly behind accessors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The session's own client id (the same allocation as `Session::client_id` for a client
    /// that created its session).
    pub client_id: Arc<str>,
    /// The authenticated username; `None` for anonymous clients (Mosquitto's "anonymous list").
    pub username: Option<Box<str>>,
    pub auth: AuthMethod,
    listener: ListenerRef,
    peer: Option<PeerAddr>,
    /// `None` when all of it would be empty; never `Some` of an empty one (equality relies on
    /// it).
    extra: Option<Box<IdentityExtra>>,
    /// This client's compiled permissions (see `security::policy`). A clone starts with an
    /// empty cache.
    pub authz: AuthzCache,
}

/// The fields most clients leave empty.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
struct IdentityExtra {
    /// The subject of a verified client certificate, RFC 4514 form.
    cert_subject: Option<String>,
    /// Roles granted to this client (from the ACL file's role assignments or token claims).
    roles: Vec<String>,
    /// The verified client certificate of the live connection (issuer and serial included), so
    /// a reloaded CRL can cut the client off; `None` for a session restored from the store.
    peer_cert: Option<Arc<PeerCert>>,
    /// The live token of a client that authenticated with one (`AuthMethod::Token`): its expiry
    /// and claims, replaced in place by a v5 re-authentication. `None` for a session restored
    /// from the store (the token is never stored): such an identity is judged by the ACL file
    /// alone, and without one it may do nothing.
    token: Option<Arc<TokenSession>>,
}

impl IdentityExtra {
    fn is_empty(&self) -> bool {
        self.cert_subject.is_none()
            && self.roles.is_empty()
            && self.peer_cert.is_none()
            && self.token.is_none()
    }
}

/// The listener a client came in on: its port (`per_listener_settings` decisions and CRL checks
/// use it; it is what the store keeps) and, for a live connection, its index in
/// `Config::listeners` (two listeners may share a port on different addresses). Both are
/// stored plus one, zero meaning unknown: a configured port is never 0, and an index past
/// 65534 is only unknown (the policy then goes by the port).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct ListenerRef {
    port: Option<NonZeroU16>,
    index: Option<NonZeroU16>,
}

/// A peer's socket address in 19 bytes instead of `SocketAddr`'s 32: an IPv4 address is kept
/// as its IPv6-mapped form and a flag. The IPv6 flow label and scope id are not kept (0 when
/// read back); nothing asks for them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct PeerAddr {
    ip: [u8; 16],
    /// Big-endian; bytes so the type has alignment 1 and packs next to the other small fields.
    port: [u8; 2],
    v4: bool,
}

impl From<SocketAddr> for PeerAddr {
    fn from(a: SocketAddr) -> PeerAddr {
        let (ip, v4) = match a.ip() {
            IpAddr::V4(ip) => (ip.to_ipv6_mapped().octets(), true),
            IpAddr::V6(ip) => (ip.octets(), false),
        };
        PeerAddr {
            ip,
            port: a.port().to_be_bytes(),
            v4,
        }
    }
}

impl From<PeerAddr> for SocketAddr {
    fn from(p: PeerAddr) -> SocketAddr {
        let v6 = Ipv6Addr::from(p.ip);
        let ip = match (p.v4, v6.to_ipv4_mapped()) {
            (true, Some(v4)) => IpAddr::V4(v4),
            _ => IpAddr::V6(v6),
        };
        SocketAddr::new(ip, u16::from_be_bytes(p.port))
    }
}

impl Identity {
    pub fn anonymous(client_id: impl Into<Arc<str>>) -> Identity {
        Identity {
            client_id: client_id.into(),
            username: None,
            auth: AuthMethod::Anonymous,
            listener: ListenerRef::default(),
            peer: None,
            extra: None,
            authz: AuthzCache::default(),
        }
    }

    pub fn with_username(
        client_id: impl Into<Arc<str>>,
        username: impl Into<Box<str>>,
    ) -> Identity {
        Identity {
            username: Some(username.into()),
            auth: AuthMethod::Password,
            ..Identity::anonymous(client_id)
        }
    }

    /// The permissions the client's current token grants (`None`: no token, or a token without
    /// `acl` or `roles` claims, which is judged like a password client).
    pub fn claims(&self) -> Option<Arc<ClaimRules>> {
        self.token().and_then(|t| t.current().scope.clone())
    }

    /// Changes whenever the client's token is replaced: cached permissions compiled under
    /// another value are stale.
    pub fn token_epoch(&self) -> u64 {
        self.token().map_or(0, |t| t.epoch())
    }

    /// The port of the listener the client came in on.
    pub fn listener_port(&self) -> Option<u16> {
        self.listener.port.map(NonZeroU16::get)
    }

    /// Port 0 (never a configured listener's) leaves it unknown.
    pub fn set_listener_port(&mut self, port: u16) {
        self.listener.port = NonZeroU16::new(port);
    }

    /// The index (in `Config::listeners`) of the listener whose policy applies to the client;
    /// `None` for an identity restored from the store.
    pub fn listener_index(&self) -> Option<usize> {
        self.listener.index.map(|i| usize::from(i.get()) - 1)
    }

    pub fn set_listener_index(&mut self, index: usize) {
        self.listener.index = u16::try_from(index)
            .ok()
            .and_then(|i| i.checked_add(1))
            .and_then(NonZeroU16::new);
    }

    /// The address the client connected from; `None` for an identity restored from the store.
    pub fn peer(&self) -> Option<SocketAddr> {
        self.peer.map(SocketAddr::from)
    }

    pub fn set_peer(&mut self, peer: Option<SocketAddr>) {
        self.peer = peer.map(PeerAddr::from);
    }

    /// The subject of a verified client certificate, RFC 4514 form.
    pub fn cert_subject(&self) -> Option<&str> {
        self.extra.as_ref()?.cert_subject.as_deref()
    }

    pub fn set_cert_subject(&mut self, subject: Option<String>) {
        self.update_extra(subject.is_none(), |e| e.cert_subject = subject);
    }

    /// Roles granted to this client (from the ACL file's role assignments or token claims).
    pub fn roles(&self) -> &[String] {
        self.extra.as_ref().map_or(&[], |e| &e.roles)
    }

    pub fn set_roles(&mut self, roles: Vec<String>) {
        self.update_extra(roles.is_empty(), |e| e.roles = roles);
    }

    /// The verified client certificate of the live connection (issuer and serial included), so
    /// a reloaded CRL can cut the client off; `None` for a session restored from the store.
    pub fn peer_cert(&self) -> Option<&Arc<PeerCert>> {
        self.extra.as_ref()?.peer_cert.as_ref()
    }

    pub fn set_peer_cert(&mut self, cert: Option<Arc<PeerCert>>) {
        self.update_extra(cert.is_none(), |e| e.peer_cert = cert);
    }

    /// The live token of a client that authenticated with one (`AuthMethod::Token`): its expiry
    /// and claims, replaced in place by a v5 re-authentication. `None` for a session restored
    /// from the store (the token is never stored): such an identity is judged by the ACL file
    /// alone, and without one it may do nothing.
    pub fn token(&self) -> Option<&Arc<TokenSession>> {
        self.extra.as_ref()?.token.as_ref()
    }

    pub fn set_token(&mut self, token: Option<Arc<TokenSession>>) {
        self.update_extra(token.is_none(), |e| e.token = token);
    }

    pub fn with_cert_subject(mut self, subject: Option<String>) -> Identity {
        self.set_cert_subject(subject);
        self
    }

    pub fn with_roles(mut self, roles: Vec<String>) -> Identity {
        self.set_roles(roles);
        self
    }

    /// Sets one of the boxed fields: no box is made to store an empty value, and a box left
    /// empty is dropped.
    fn update_extra(&mut self, clears: bool, set: impl FnOnce(&mut IdentityExtra)) {
        if clears && self.extra.is_none() {
            return;
        }
        let extra = self.extra.get_or_insert_with(Box::default);
        set(extra);
        if extra.is_empty() {
            self.extra = None;
        }
    }
}

/// A client certificate the TLS layer verified, as the transport hands it to the connection.
/// The authenticator turns it into a username (`use_identity_as_username`: `common_name`;
/// `use_subject_as_username`: `subject`); `issuer` and `serial` let a reload ask whether it has
/// been revoked since.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerCert {
    /// RFC 4514, as OpenSSL's `-nameopt RFC2253` (and so Mosquitto) writes it.
    pub subject: String,
    /// The subject's first CN, when it has one that can be a username.
    pub common_name: Option<String>,
    /// RFC 4514, as `subject`.
    pub issuer: String,
    /// Lower-case hex without leading zeros, as the PKI index and `--revoke-serial` write it.
    pub serial: String,
    /// The end of its validity (notAfter).
    pub not_after: time::OffsetDateTime,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every connection and session, parked ones included, holds an `Arc<Identity>`: at 88
    /// bytes (104 with the Arc's counts) it takes a 112-byte heap block instead of the 224 it
    /// took before the rarely used fields were boxed (issue 17's RSS per idle connection).
    #[test]
    fn identity_stays_small() {
        assert!(std::mem::size_of::<Identity>() <= 88);
    }

    #[test]
    fn peer_addresses_read_back_as_given() {
        let mut id = Identity::anonymous("c");
        assert_eq!(id.peer(), None);
        for a in [
            "127.0.0.1:1883",
            "[::1]:8883",
            "[::ffff:10.0.0.1]:1",
            "255.255.255.255:65535",
            "[2001:db8::7]:0",
        ] {
            let a: SocketAddr = a.parse().unwrap();
            id.set_peer(Some(a));
            assert_eq!(id.peer(), Some(a), "{a}");
        }
        id.set_peer(None);
        assert_eq!(id.peer(), None);
    }

    #[test]
    fn listener_port_and_index() {
        let mut id = Identity::anonymous("c");
        assert_eq!((id.listener_port(), id.listener_index()), (None, None));
        id.set_listener_port(65535);
        id.set_listener_index(0);
        assert_eq!(
            (id.listener_port(), id.listener_index()),
            (Some(65535), Some(0))
        );
        id.set_listener_index(65534);
        assert_eq!(id.listener_index(), Some(65534));
        id.set_listener_index(65535);
        assert_eq!(id.listener_index(), None);
    }

    #[test]
    fn the_box_exists_only_while_something_is_in_it() {
        let plain = Identity::anonymous("c");
        let mut id = plain.clone().with_roles(vec!["r".into()]);
        assert!(id.extra.is_some());
        assert_ne!(id, plain);
        id.set_cert_subject(Some("CN=c".into()));
        id.set_roles(Vec::new());
        assert_eq!(id.roles(), &[] as &[String]);
        assert_eq!(id.cert_subject(), Some("CN=c"));
        id.set_cert_subject(None);
        assert!(id.extra.is_none());
        assert_eq!(id, plain);
    }
}
