//! TLS on a listener: the rustls server configuration built from the listener's options, and
//! swapped whole on reload (SIGHUP), so new handshakes use the new certificate, CA and CRL while
//! running connections keep theirs.
//!
//! What is loaded is checked the way a client will check it: the key belongs to the certificate,
//! the chain the server sends is completed from `cafile`/`capath` (a leaf-only `certfile` works,
//! as with OpenSSL), that chain verifies, and each CRL is issued by a CA the listener trusts and
//! has not expired.

use std::collections::{HashMap, HashSet};
use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use arc_swap::ArcSwap;
use rustls::crypto::CryptoProvider;
use rustls::server::danger::ClientCertVerifier;
use rustls::{CertificateError, RootCertStore, ServerConfig, SupportedCipherSuite};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use tokio_rustls::TlsAcceptor;

use super::{Expiry, Upgrade, UpgradeFuture, Upgraded};
use crate::config::model::{ConfLoc, ListenerConfig, Located, TlsMinVersion};
use crate::pki::{inspect, load};
use crate::security::identity::PeerCert;

/// ALPN on an MQTT-over-TLS listener (the IANA-registered id).
pub const ALPN_MQTT: &[&[u8]] = &[b"mqtt"];
/// ALPN on a WebSocket-over-TLS listener: it speaks HTTP/1.1 until the upgrade.
pub const ALPN_HTTP: &[&[u8]] = &[b"http/1.1"];

/// The longest chain completed from `cafile`/`capath` (a loop in a bad bundle stops here).
const MAX_CHAIN: usize = 8;
/// `capath` files larger than this are not certificates.
const MAX_CAPATH_FILE: u64 = 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file option's content is unusable.
    #[error("{at}: `{option}`: {message}")]
    At {
        at: ConfLoc,
        option: &'static str,
        message: String,
    },
    /// The listener has no certfile/keyfile (the config reader does not let this through).
    #[error("{origin}: a TLS listener needs certfile and keyfile")]
    NotTls { origin: String },
}

fn at<T>(opt: &Located<T>, option: &'static str, message: impl Into<String>) -> TlsError {
    TlsError::At {
        at: opt.at.clone(),
        option,
        message: message.into(),
    }
}

/// Serials revoked by the CRLs of a listener, by issuer.
#[derive(Debug, Default)]
pub struct Revocations {
    by_issuer: HashMap<String, HashSet<String>>,
}

impl Revocations {
    /// Whether the loaded CRLs revoke this certificate.
    pub fn is_revoked(&self, cert: &PeerCert) -> bool {
        self.by_issuer
            .get(&cert.issuer)
            .is_some_and(|s| s.contains(&cert.serial))
    }
}

/// Everything loaded from a listener's TLS files.
pub struct Material {
    server: Arc<ServerConfig>,
    pub revocations: Revocations,
    /// Worth an operator's attention, not a reason to refuse to start (`--check` prints them,
    /// `serve` logs them).
    pub warnings: Vec<String>,
    /// The server certificate, the CAs and the CRLs, with the moment each stops being valid.
    pub expiries: Vec<Expiry>,
}

/// `file`'s certificate, named for a log line, and when it expires (`None`: unreadable).
fn cert_expiry(option: &str, file: &Path, der: &CertificateDer<'_>) -> Option<Expiry> {
    let c = inspect::parse(der, file).ok()?;
    Some(Expiry {
        what: format!(
            "{option} {} ({})",
            file.display(),
            inspect::rfc4514(c.subject())
        ),
        at: c.validity().not_after.to_datetime(),
        crl: false,
    })
}

/// Load and check a listener's TLS material. `alpn`: [`ALPN_MQTT`] or [`ALPN_HTTP`].
pub fn load(l: &ListenerConfig, alpn: &[&[u8]]) -> Result<Material, TlsError> {
    let t = &l.tls;
    let (Some(certfile), Some(keyfile)) = (&t.certfile, &t.keyfile) else {
        return Err(TlsError::NotTls {
            origin: l.origin.clone(),
        });
    };
    let material = load::server_material(&certfile.value, &keyfile.value).map_err(|e| {
        if e.path() == keyfile.value {
            at(keyfile, "keyfile", e.to_string())
        } else {
            at(certfile, "certfile", e.to_string())
        }
    })?;
    let mut warnings = Vec::new();
    let mut expiries: Vec<Expiry> = material
        .chain
        .first()
        .and_then(|leaf| cert_expiry("certfile", &certfile.value, leaf))
        .into_iter()
        .collect();

    let mut pool: Vec<CertificateDer<'static>> = Vec::new();
    if let Some(ca) = &t.cafile {
        let certs =
            inspect::read_pem_certs(&ca.value).map_err(|e| at(ca, "cafile", e.to_string()))?;
        expiries.extend(
            certs
                .iter()
                .filter_map(|c| cert_expiry("cafile", &ca.value, c)),
        );
        pool.extend(certs);
    }
    if let Some(dir) = &t.capath {
        let certs = read_capath(&dir.value).map_err(|m| at(dir, "capath", m))?;
        expiries.extend(
            certs
                .iter()
                .filter_map(|c| cert_expiry("capath", &dir.value, c)),
        );
        pool.extend(certs);
    }
    dedup(&mut pool);

    let mut chain = material.chain;
    complete_chain(&mut chain, &pool);
    if let Some(w) = check_chain(&chain, &pool).map_err(|m| at(certfile, "certfile", m))? {
        warnings.push(format!("{}: `certfile`: {w}", certfile.at));
    }

    let mut revocations = Revocations::default();
    let verifier: Option<Arc<dyn ClientCertVerifier>> = match &t.require_certificate {
        None => None,
        Some(_) => {
            let (origin, opt, name) = match (&t.cafile, &t.capath) {
                (Some(c), _) => (&c.value, c, "cafile"),
                (None, Some(p)) => (&p.value, p, "capath"),
                (None, None) => {
                    return Err(TlsError::NotTls {
                        origin: l.origin.clone(),
                    })
                }
            };
            let mut crls = Vec::new();
            if let Some(crlfile) = &t.crlfile {
                let subjects: HashSet<String> = pool
                    .iter()
                    .filter_map(|c| inspect::parse(c, origin).ok())
                    .map(|c| inspect::rfc4514(c.subject()))
                    .collect();
                let now = time::OffsetDateTime::now_utc();
                for (der, info) in load::read_crls(&crlfile.value)
                    .map_err(|e| at(crlfile, "crlfile", e.to_string()))?
                {
                    if !subjects.contains(&info.issuer) {
                        return Err(at(
                            crlfile,
                            "crlfile",
                            format!(
                                "{}: the CRL is issued by `{}`, which is not a CA in cafile/capath: no client certificate could be checked against it",
                                crlfile.value.display(),
                                info.issuer
                            ),
                        ));
                    }
                    if let Some(next) = info.next_update.filter(|n| *n < now) {
                        return Err(at(
                            crlfile,
                            "crlfile",
                            format!(
                                "{}: the CRL expired at {} (nextUpdate): every client certificate of `{}` would be refused; issue a new one (mqsec gen-crl)",
                                crlfile.value.display(),
                                inspect::fmt_time(next),
                                info.issuer
                            ),
                        ));
                    }
                    if let Some(next) = info.next_update {
                        expiries.push(Expiry {
                            what: format!(
                                "crlfile {} (issued by {}; nextUpdate)",
                                crlfile.value.display(),
                                info.issuer
                            ),
                            at: next,
                            crl: true,
                        });
                    }
                    revocations
                        .by_issuer
                        .entry(info.issuer)
                        .or_default()
                        .extend(info.revoked);
                    crls.push(der);
                }
            }
            Some(
                load::client_verifier_for(pool.clone(), origin, crls)
                    .map_err(|e| at(opt, name, e.to_string()))?,
            )
        }
    };

    let provider = provider_for(l, keyfile, &material.key)?;
    let versions: &[&'static rustls::SupportedProtocolVersion] =
        match t.min_version.as_ref().map(|v| v.value) {
            Some(TlsMinVersion::Tls13) => &[&rustls::version::TLS13],
            _ => &[&rustls::version::TLS12, &rustls::version::TLS13],
        };
    let builder = ServerConfig::builder_with_provider(Arc::new(provider))
        .with_protocol_versions(versions)
        .map_err(|e| at(certfile, "certfile", format!("TLS settings: {e}")))?;
    let builder = match verifier {
        Some(v) => builder.with_client_cert_verifier(v),
        None => builder.with_no_client_auth(),
    };
    let mut server = builder.with_single_cert(chain, material.key).map_err(|e| {
        at(
            keyfile,
            "keyfile",
            format!("unusable with this certificate: {e}"),
        )
    })?;
    server.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(Material {
        server: Arc::new(server),
        revocations,
        warnings,
        expiries,
    })
}

/// The aws-lc-rs provider with the listener's cipher suites (in the order written).
fn provider_for(
    l: &ListenerConfig,
    keyfile: &Located<std::path::PathBuf>,
    key: &rustls_pki_types::PrivateKeyDer<'_>,
) -> Result<CryptoProvider, TlsError> {
    let mut provider = rustls::crypto::aws_lc_rs::default_provider();
    let all = std::mem::take(&mut provider.cipher_suites);
    let pick = |want: &Option<Located<Vec<rustls::CipherSuite>>>, tls13: bool| {
        let of_version =
            |s: &SupportedCipherSuite| matches!(s, SupportedCipherSuite::Tls13(_)) == tls13;
        match want {
            None => all.iter().copied().filter(of_version).collect::<Vec<_>>(),
            Some(w) => w
                .value
                .iter()
                .filter_map(|cs| {
                    all.iter()
                        .copied()
                        .find(|s| s.suite() == *cs && of_version(s))
                })
                .collect(),
        }
    };
    let tls12 = pick(&l.tls.ciphers, false);
    let tls13 = pick(&l.tls.ciphers_tls13, true);
    let tls12_on = l.tls.min_version.as_ref().map(|v| v.value) != Some(TlsMinVersion::Tls13);
    if let (Some(w), true) = (&l.tls.ciphers, tls12_on) {
        // TLS 1.2 suites are tied to the certificate's key type: a list without one for this key
        // would fail every TLS 1.2 handshake.
        let signer = provider
            .key_provider
            .load_private_key(key.clone_key())
            .map_err(|e| at(keyfile, "keyfile", format!("unusable private key: {e}")))?;
        let ecdsa_key = matches!(
            signer.algorithm(),
            rustls::SignatureAlgorithm::ECDSA | rustls::SignatureAlgorithm::ED25519
        );
        let fits = tls12.iter().any(|s| {
            let name = s.suite().as_str().unwrap_or("");
            name.contains("_ECDSA_") == ecdsa_key
        });
        if !fits {
            let kind = if ecdsa_key { "ECDSA/Ed25519" } else { "RSA" };
            return Err(at(
                w,
                "ciphers",
                format!("none of these suites works with the certificate's {kind} key: every TLS 1.2 handshake would fail"),
            ));
        }
    }
    provider.cipher_suites = tls12.into_iter().chain(tls13).collect();
    Ok(provider)
}

/// Every certificate of the PEM files in a directory (OpenSSL's hashed `capath` layout, or any
/// directory of `.pem`/`.crt` files); files without a certificate are skipped.
fn read_capath(dir: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut files: Vec<_> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    files.sort();
    let mut out = Vec::new();
    for f in files {
        // Follows the hash symlinks; directories and oversized files are not certificates.
        let Ok(meta) = std::fs::metadata(&f) else {
            continue;
        };
        if !meta.is_file() || meta.len() > MAX_CAPATH_FILE {
            continue;
        }
        let bytes = std::fs::read(&f).map_err(|e| format!("{}: {e}", f.display()))?;
        for item in CertificateDer::pem_slice_iter(&bytes) {
            match item {
                Ok(c) => out.push(c),
                Err(e) => return Err(format!("{}: malformed PEM certificate: {e}", f.display())),
            }
        }
    }
    if out.is_empty() {
        return Err(format!(
            "{}: no PEM certificate in this directory",
            dir.display()
        ));
    }
    Ok(out)
}

fn dedup(certs: &mut Vec<CertificateDer<'static>>) {
    let mut seen = HashSet::new();
    certs.retain(|c| seen.insert(c.as_ref().to_vec()));
}

/// Append to `chain` the issuers found in `pool`, up to (not including) a self-signed root:
/// clients hold the root, and need the intermediates the server sends.
fn complete_chain(chain: &mut Vec<CertificateDer<'static>>, pool: &[CertificateDer<'static>]) {
    let origin = Path::new("cafile");
    while chain.len() < MAX_CHAIN {
        let Some(last) = chain.last().and_then(|c| inspect::parse(c, origin).ok()) else {
            return;
        };
        if last.subject().as_raw() == last.issuer().as_raw() {
            return;
        }
        let aki = authority_key_id(&last);
        let issuer = pool.iter().find(|c| {
            !chain.contains(c)
                && inspect::parse(c, origin).is_ok_and(|p| {
                    p.subject().as_raw() == last.issuer().as_raw()
                        && match (&aki, subject_key_id(&p)) {
                            (Some(a), Some(s)) => *a == s,
                            _ => true,
                        }
                })
        });
        let Some(issuer) = issuer.cloned() else {
            return;
        };
        let self_signed = inspect::parse(&issuer, origin)
            .is_ok_and(|p| p.subject().as_raw() == p.issuer().as_raw());
        if self_signed {
            return;
        }
        chain.push(issuer);
    }
}

fn authority_key_id(c: &x509_parser::certificate::X509Certificate<'_>) -> Option<Vec<u8>> {
    use x509_parser::extensions::ParsedExtension;
    c.extensions()
        .iter()
        .find_map(|e| match e.parsed_extension() {
            ParsedExtension::AuthorityKeyIdentifier(a) => {
                a.key_identifier.as_ref().map(|k| k.0.to_vec())
            }
            _ => None,
        })
}

fn subject_key_id(c: &x509_parser::certificate::X509Certificate<'_>) -> Option<Vec<u8>> {
    use x509_parser::extensions::ParsedExtension;
    c.extensions()
        .iter()
        .find_map(|e| match e.parsed_extension() {
            ParsedExtension::SubjectKeyIdentifier(k) => Some(k.0.to_vec()),
            _ => None,
        })
}

/// Verify the chain the server will send as a client would (signatures, validity, key usage),
/// against `pool`, else the system's CAs. Err: clients will refuse it. Ok(Some): it chains to
/// nothing this host knows, which is legitimate when clients trust the issuer some other way.
fn check_chain(
    chain: &[CertificateDer<'static>],
    pool: &[CertificateDer<'static>],
) -> Result<Option<String>, String> {
    use rustls::client::danger::ServerCertVerifier;
    let verify = |roots: RootCertStore| -> Result<(), rustls::Error> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let verifier =
            rustls::client::WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| rustls::Error::General(e.to_string()))?;
        // The name is the client's business (it depends on how it is reached): any name will
        // do, and "not valid for this name" means every other check passed.
        let name = ServerName::try_from("mqsec-check.invalid")
            .map_err(|e| rustls::Error::General(e.to_string()))?;
        match verifier.verify_server_cert(&chain[0], &chain[1..], &name, &[], UnixTime::now()) {
            Ok(_) => Ok(()),
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(()),
            Err(e) => Err(e),
        }
    };
    let unknown = |e: &rustls::Error| {
        matches!(
            e,
            rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer)
                | rustls::Error::General(_)
        )
    };
    let mut roots = RootCertStore::empty();
    roots.add_parsable_certificates(pool.iter().cloned());
    let first = if roots.is_empty() {
        Err(rustls::Error::InvalidCertificate(
            CertificateError::UnknownIssuer,
        ))
    } else {
        verify(roots)
    };
    match first {
        Ok(()) => return Ok(None),
        Err(e) if !unknown(&e) => {
            return Err(format!("the server certificate chain is not valid: {e}"))
        }
        Err(_) => {}
    }
    let mut system = RootCertStore::empty();
    system.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
    match verify(system) {
        Ok(()) => Ok(None),
        Err(e) if !unknown(&e) => Err(format!("the server certificate chain is not valid: {e}")),
        Err(_) => Ok(Some(
            "the server certificate does not chain to cafile/capath or to a CA of this system: clients must trust its issuer some other way"
                .into(),
        )),
    }
}

/// A client certificate as the connection carries it (`None`: not a certificate).
pub fn peer_cert(der: &CertificateDer<'_>) -> Option<PeerCert> {
    let c = inspect::parse(der, Path::new("client certificate")).ok()?;
    Some(PeerCert {
        subject: inspect::rfc4514(c.subject()),
        common_name: inspect::first_common_name(c.subject()),
        issuer: inspect::rfc4514(c.issuer()),
        serial: inspect::serial_hex(c.raw_serial()),
        not_after: c.validity().not_after.to_datetime(),
    })
}

/// The TLS upgrade of one listener.
pub struct TlsLayer {
    listener: Arc<ListenerConfig>,
    alpn: &'static [&'static [u8]],
    current: ArcSwap<Material>,
}

impl TlsLayer {
    pub fn new(
        listener: Arc<ListenerConfig>,
        alpn: &'static [&'static [u8]],
    ) -> Result<TlsLayer, TlsError> {
        let material = load(&listener, alpn)?;
        for w in &material.warnings {
            tracing::warn!(listener = %listener.origin, "{w}");
        }
        Ok(TlsLayer {
            listener,
            alpn,
            current: ArcSwap::from_pointee(material),
        })
    }
}

impl Upgrade for TlsLayer {
    fn upgrade(&self, io: Upgraded, _peer: SocketAddr) -> UpgradeFuture {
        let acceptor = TlsAcceptor::from(self.current.load().server.clone());
        Box::pin(async move {
            let tls = acceptor.accept(io.stream).await.map_err(explain)?;
            let peer_cert = match tls.get_ref().1.peer_certificates().and_then(|c| c.first()) {
                None => None,
                Some(der) => Some(peer_cert(der).ok_or_else(|| {
                    io::Error::new(
                        io::ErrorKind::InvalidData,
                        "the client certificate cannot be read",
                    )
                })?),
            };
            Ok(Upgraded {
                stream: Box::new(tls),
                peer_cert,
            })
        })
    }

    fn revokes(&self, cert: &PeerCert) -> bool {
        self.current.load().revocations.is_revoked(cert)
    }

    fn expiries(&self) -> Vec<Expiry> {
        self.current.load().expiries.clone()
    }

    fn reload(&self) -> Option<Result<(), String>> {
        Some(match load(&self.listener, self.alpn) {
            Ok(m) => {
                for w in &m.warnings {
                    tracing::warn!(listener = %self.listener.origin, "{w}");
                }
                self.current.store(Arc::new(m));
                Ok(())
            }
            Err(e) => Err(e.to_string()),
        })
    }
}

/// A handshake failure in words that say what to fix.
fn explain(e: io::Error) -> io::Error {
    use rustls::Error as E;
    let Some(tls) = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) else {
        if e.kind() == io::ErrorKind::UnexpectedEof {
            return io::Error::new(e.kind(), "the client left during the TLS handshake");
        }
        return e;
    };
    let what = match tls {
        E::NoCertificatesPresented => {
            "the client sent no certificate (require_certificate is true)".to_string()
        }
        E::InvalidCertificate(CertificateError::UnknownIssuer) => {
            "the client certificate is not issued by a CA in cafile/capath".to_string()
        }
        E::InvalidCertificate(CertificateError::Revoked) => {
            "the client certificate is revoked (crlfile)".to_string()
        }
        E::InvalidCertificate(CertificateError::UnknownRevocationStatus) => {
            "no CRL in crlfile covers the client certificate's issuer".to_string()
        }
        E::InvalidCertificate(
            CertificateError::ExpiredRevocationList
            | CertificateError::ExpiredRevocationListContext { .. },
        ) => "crlfile has expired: client certificates are refused until a new CRL is loaded"
            .to_string(),
        E::NoApplicationProtocol => {
            "the client's ALPN list has no protocol this listener speaks".to_string()
        }
        // Our own explanations (an X.509 v1 client certificate), whose Debug form rustls prints.
        E::InvalidCertificate(CertificateError::Other(o)) => o.0.to_string(),
        E::InvalidMessage(_) => {
            "not a TLS handshake (a plain MQTT or HTTP client on a TLS port?)".to_string()
        }
        E::PeerIncompatible(p) => format!(
            "the client offers no protocol version or cipher suite this listener accepts ({p:?})"
        ),
        other => other.to_string(),
    };
    io::Error::new(e.kind(), what)
}
