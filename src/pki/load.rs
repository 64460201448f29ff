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
    let mut roots = RootCertStore::empty();
    for c in pem_certs(ca_file)? {
        roots
            .add(c)
            .map_err(|e| invalid(ca_file, format!("unusable CA certificate: {e}")))?;
    }
    let mut crls = Vec::new();
    for f in crl_files {
        let bytes = read(f)?;
        let found = CertificateRevocationListDer::pem_slice_iter(&bytes)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| invalid(f, format!("malformed PEM CRL: {e}")))?;
        if found.is_empty() {
            return Err(invalid(f, "no PEM \"X509 CRL\" block found"));
        }
        crls.extend(found);
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut builder = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
    if !crls.is_empty() {
        builder = builder.with_crls(crls).only_check_end_entity_revocation();
    }
    builder
        .build()
        .map_err(|e| invalid(ca_file, format!("cannot build the client verifier: {e}")))
}

/// The PKI error message without its leading "path: " (the caller names the path itself).
fn strip(e: &super::PkiError, path: &Path) -> String {
    let s = e.to_string();
    let prefix = format!("{}: ", path.display());
    s.strip_prefix(&prefix).map(str::to_string).unwrap_or(s)
}
