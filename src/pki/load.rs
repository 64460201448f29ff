//! Reading certificate material back for rustls: what `mqsec serve` loads for its TLS listener
//! (chain + key) and for `require_certificate` (client CA + CRLs).
//!
//! The errors say what is wrong in words a Mosquitto user recognises: in particular the X.509 v1
//! certificates without subjectAltName made by the `openssl` recipe in `mosquitto-tls(7)`, which
//! OpenSSL and Mosquitto accept and rustls (webpki) rejects.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::server::danger::ClientCertVerifier;
use rustls::server::WebPkiClientVerifier;
use rustls::RootCertStore;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer};
use x509_parser::x509::X509Version;

use super::inspect;

/// Why certificate material cannot be used with rustls.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: {what}", path.display())]
    Invalid { path: PathBuf, what: String },
    #[error(
        "{}: X.509 v1 certificate (no extensions, no subjectAltName), as made by the openssl recipe \
         in mosquitto-tls(7): OpenSSL accepts it but rustls does not; reissue it with \
         `mqsec gen-server-cert --dns HOST --ip ADDR`",
        path.display()
    )]
    V1Certificate { path: PathBuf },
    #[error(
        "{}: the certificate has no subjectAltName: TLS clients check the host name there, not in \
         the CN; reissue it with `mqsec gen-server-cert --dns HOST --ip ADDR`",
        path.display()
    )]
    NoSubjectAltName { path: PathBuf },
    #[error("{}: the private key does not belong to the certificate in {}", key.display(), cert.display())]
    KeyMismatch { cert: PathBuf, key: PathBuf },
}

impl LoadError {
    /// The file the error is about (for a key that does not match: the key).
    pub fn path(&self) -> &Path {
        match self {
            LoadError::Io { path, .. }
            | LoadError::Invalid { path, .. }
            | LoadError::V1Certificate { path }
            | LoadError::NoSubjectAltName { path } => path,
            LoadError::KeyMismatch { key, .. } => key,
        }
    }
}

fn invalid(path: &Path, what: impl Into<String>) -> LoadError {
    LoadError::Invalid {
        path: path.to_path_buf(),
        what: what.into(),
    }
}

/// A server's certificate chain and key, checked to belong together and to be acceptable to
/// rustls clients. Feed to `ServerConfig::builder()...with_single_cert(chain, key)`.
#[derive(Debug)]
pub struct ServerMaterial {
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
}

fn read(path: &Path) -> Result<Vec<u8>, LoadError> {
    std::fs::read(path).map_err(|source| LoadError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// [`inspect::read_pem_certs`], with its error as a [`LoadError`].
fn pem_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, LoadError> {
    inspect::read_pem_certs(path).map_err(|e| match e {
        super::PkiError::Io { path, source } => LoadError::Io { path, source },
        other => invalid(path, strip(&other, path)),
    })
}

/// Load `cert` (leaf first, then intermediates, PEM) and `key` (PEM) for a TLS server.
pub fn server_material(cert: &Path, key: &Path) -> Result<ServerMaterial, LoadError> {
    let chain = pem_certs(cert)?;
    {
        let leaf = inspect::parse(&chain[0], cert).map_err(|e| invalid(cert, strip(&e, cert)))?;
        if leaf.version() != X509Version::V3 {
            return Err(LoadError::V1Certificate {
                path: cert.to_path_buf(),
            });
        }
        if !matches!(leaf.subject_alternative_name(), Ok(Some(_))) {
            return Err(LoadError::NoSubjectAltName {
                path: cert.to_path_buf(),
            });
        }
    }
    let key_bytes = zeroize::Zeroizing::new(read(key)?);
    let key_der = PrivateKeyDer::from_pem_slice(&key_bytes).map_err(|_| {
        invalid(
            key,
            "no usable PEM private key (PKCS#8, SEC1 or PKCS#1) found",
        )
    })?;
    let provider = rustls::crypto::aws_lc_rs::default_provider();
    match rustls::sign::CertifiedKey::from_der(chain.clone(), key_der.clone_key(), &provider) {
        Ok(_) => {}
        Err(rustls::Error::InconsistentKeys(_)) => {
            return Err(LoadError::KeyMismatch {
                cert: cert.to_path_buf(),
                key: key.to_path_buf(),
            });
        }
        Err(e) => return Err(invalid(key, format!("unusable private key: {e}"))),
    }
    Ok(ServerMaterial {
        chain,
        key: key_der,
    })
}

/// A verifier that requires a client certificate chaining to a certificate in `ca_file`, and,
/// when CRL files are given, not revoked. As Mosquitto's `crlfile`, only the client's own
/// certificate is checked against the CRLs, and a CRL for its issuer must be present.
pub fn client_verifier(
    ca_file: &Path,
    crl_files: &[&Path],
) -> Result<Arc<dyn ClientCertVerifier>, LoadError> {
    let mut crls = Vec::new();
    for f in crl_files {
        crls.extend(read_crls(f)?.into_iter().map(|(der, _)| der));
    }
    client_verifier_for(pem_certs(ca_file)?, ca_file, crls)
}

/// [`client_verifier`] from certificates already read (`cafile` and `capath` of a listener);
/// `origin` names them in errors. As OpenSSL with a CRL, an expired CRL refuses every client
/// certificate its CA issued: an attacker who can block CRL updates must not get revoked
/// certificates back in.
pub fn client_verifier_for(
    ca_certs: Vec<CertificateDer<'static>>,
    origin: &Path,
    crls: Vec<CertificateRevocationListDer<'static>>,
) -> Result<Arc<dyn ClientCertVerifier>, LoadError> {
    let mut roots = RootCertStore::empty();
    for c in ca_certs {
        roots
            .add(c)
            .map_err(|e| invalid(origin, format!("unusable CA certificate: {e}")))?;
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut builder = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
    if !crls.is_empty() {
        builder = builder
            .with_crls(crls)
            .only_check_end_entity_revocation()
            .enforce_revocation_expiration();
    }
    let inner = builder
        .build()
        .map_err(|e| invalid(origin, format!("cannot build the client verifier: {e}")))?;
    Ok(Arc::new(Explaining(inner)))
}

/// What a CRL says, read with x509-parser.
#[derive(Debug, Clone)]
pub struct CrlInfo {
    /// RFC 4514, as [`inspect::rfc4514`] writes names.
    pub issuer: String,
    pub next_update: Option<time::OffsetDateTime>,
    /// Canonical serials ([`inspect::serial_hex`]).
    pub revoked: Vec<String>,
}

/// Every CRL of a PEM file, for rustls and as facts. Errors if there is none.
pub fn read_crls(
    path: &Path,
) -> Result<Vec<(CertificateRevocationListDer<'static>, CrlInfo)>, LoadError> {
    use x509_parser::prelude::FromDer;
    use x509_parser::revocation_list::CertificateRevocationList;
    let bytes = read(path)?;
    let found = CertificateRevocationListDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid(path, format!("malformed PEM CRL: {e}")))?;
    if found.is_empty() {
        return Err(invalid(path, "no PEM \"X509 CRL\" block found"));
    }
    let mut out = Vec::new();
    for der in found {
        let info = match CertificateRevocationList::from_der(&der) {
            Ok(([], crl)) => CrlInfo {
                issuer: inspect::rfc4514(crl.issuer()),
                next_update: crl.next_update().map(|t| t.to_datetime()),
                revoked: crl
                    .iter_revoked_certificates()
                    .map(|r| inspect::serial_hex(r.raw_serial()))
                    .collect(),
            },
            Ok(_) => return Err(invalid(path, "trailing bytes after the CRL")),
            Err(e) => return Err(invalid(path, format!("not a valid X.509 CRL ({e})"))),
        };
        out.push((der, info));
    }
    Ok(out)
}

/// The webpki verifier, with the one refusal rustls cannot explain by itself spelled out: an
/// X.509 v1 client certificate (the `mosquitto-tls(7)` openssl recipe) fails as a bare "bad
/// certificate" otherwise.
#[derive(Debug)]
struct Explaining(Arc<dyn ClientCertVerifier>);

#[derive(Debug, thiserror::Error)]
#[error(
    "the client certificate is X.509 v1 (no extensions), as made by the openssl recipe in \
     mosquitto-tls(7): OpenSSL accepts it but rustls does not; reissue it with \
     `mqsec gen-client-cert`"
)]
struct V1ClientCert;

impl ClientCertVerifier for Explaining {
    fn offer_client_auth(&self) -> bool {
        self.0.offer_client_auth()
    }

    fn client_auth_mandatory(&self) -> bool {
        self.0.client_auth_mandatory()
    }

    fn root_hint_subjects(&self) -> &[rustls::DistinguishedName] {
        self.0.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: rustls_pki_types::UnixTime,
    ) -> Result<rustls::server::danger::ClientCertVerified, rustls::Error> {
        self.0
            .verify_client_cert(end_entity, intermediates, now)
            .map_err(|e| {
                let v1 = inspect::parse(end_entity, Path::new("client"))
                    .is_ok_and(|c| c.version() == X509Version::V1);
                if v1 {
                    rustls::Error::InvalidCertificate(rustls::CertificateError::Other(
                        rustls::OtherError(Arc::new(V1ClientCert)),
                    ))
                } else {
                    e
                }
            })
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// The PKI error message without its leading "path: " (the caller names the path itself).
fn strip(e: &super::PkiError, path: &Path) -> String {
    let s = e.to_string();
    let prefix = format!("{}: ", path.display());
    s.strip_prefix(&prefix).map(str::to_string).unwrap_or(s)
}
