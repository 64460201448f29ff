//! Who a client is. Every connection carries one `Identity` from CONNECT on; every authorization
//! question (CONNECT, PUBLISH, SUBSCRIBE, each delivery) is asked about it.

use std::net::SocketAddr;

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
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub client_id: String,
    /// The authenticated username; `None` for anonymous clients (Mosquitto's "anonymous list").
    pub username: Option<String>,
    /// The subject of a verified client certificate, RFC 4514 form.
    pub cert_subject: Option<String>,
    /// Roles granted to this client (from the ACL file's role assignments or token claims).
    pub roles: Vec<String>,
    pub auth: AuthMethod,
    /// The listener (port) the client came in on: `per_listener_settings` decisions use it.
    pub listener_port: Option<u16>,
    pub peer: Option<SocketAddr>,
    /// The verified client certificate of the live connection (issuer and serial included), so
    /// a reloaded CRL can cut the client off; `None` for a session restored from the store.
    pub peer_cert: Option<std::sync::Arc<PeerCert>>,
    /// This client's compiled permissions and the listener whose policy applies to it (see
    /// `security::policy`). A clone starts with an empty cache.
    pub authz: AuthzCache,
    /// The live token of a client that authenticated with one (`AuthMethod::Token`): its expiry
    /// and claims, replaced in place by a v5 re-authentication. `None` for a session restored
    /// from the store (the token is never stored): such an identity is judged by the ACL file
    /// alone, and without one it may do nothing.
    pub token: Option<Arc<TokenSession>>,
}

impl Identity {
    pub fn anonymous(client_id: impl Into<String>) -> Identity {
        Identity {
            client_id: client_id.into(),
            username: None,
            cert_subject: None,
            roles: Vec::new(),
            auth: AuthMethod::Anonymous,
            listener_port: None,
            peer: None,
            peer_cert: None,
            authz: AuthzCache::default(),
            token: None,
        }
    }

    /// The permissions the client's current token grants (`None`: no token, or a token without
    /// `acl` or `roles` claims, which is judged like a password client).
    pub fn claims(&self) -> Option<Arc<ClaimRules>> {
        self.token.as_ref().and_then(|t| t.current().scope.clone())
    }

    /// Changes whenever the client's token is replaced: cached permissions compiled under
    /// another value are stale.
    pub fn token_epoch(&self) -> u64 {
        self.token.as_ref().map_or(0, |t| t.epoch())
    }

    pub fn with_username(client_id: impl Into<String>, username: impl Into<String>) -> Identity {
        Identity {
            username: Some(username.into()),
            auth: AuthMethod::Password,
            ..Identity::anonymous(client_id)
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
