//! Certificate checks on the chain a broker presents: validity dates, trust (against `--cafile` or
//! the system roots), host name, key strength, signature algorithm.
//!
//! The chain comes from a handshake whose verifier records instead of rejecting, so a broken
//! certificate is still examined and reported instead of ending the audit.

use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::ServerCertVerifier;
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::RootCertStore;
use serde::Serialize;
use x509_parser::prelude::*;
use x509_parser::public_key::PublicKey;

use super::checks::{finding, finding_at, Finding, Severity};

#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    #[error("{path}: cannot read the CA file: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: no PEM certificate found (expected -----BEGIN CERTIFICATE-----)")]
    Empty { path: String },
    #[error("{path}: certificate {index}: {reason}")]
    Bad {
        path: String,
        index: usize,
        reason: String,
    },
}

/// Where trust comes from.
#[derive(Debug, Clone)]
pub struct Trust {
    pub roots: Arc<RootCertStore>,
    /// The DER of every trusted certificate: a leaf listed here is pinned (trusted as itself, the
    /// way OpenSSL clients treat a self-signed server certificate given as their CA file).
    pub pinned: Arc<Vec<Vec<u8>>>,
    /// "--cafile PATH" or "system roots": said in evidence.
    pub source: String,
}

impl Trust {
    pub fn from_cafile(path: &Path) -> Result<Trust, TrustError> {
        let p = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|source| TrustError::Read {
            path: p.clone(),
            source,
        })?;
        let mut roots = RootCertStore::empty();
        let mut pinned = Vec::new();
        for (index, cert) in CertificateDer::pem_slice_iter(&bytes).enumerate() {
            let cert = cert.map_err(|e| TrustError::Bad {
                path: p.clone(),
                index: index + 1,
                reason: e.to_string(),
            })?;
            pinned.push(cert.as_ref().to_vec());
            roots.add(cert).map_err(|e| TrustError::Bad {
                path: p.clone(),
                index: index + 1,
                reason: e.to_string(),
            })?;
        }
        if roots.is_empty() {
            return Err(TrustError::Empty { path: p });
        }
        Ok(Trust {
            roots: Arc::new(roots),
            pinned: Arc::new(pinned),
            source: format!("--cafile {p}"),
        })
    }

    /// The system roots. A machine without any (a bare container) still audits: every chain is then
    /// reported untrusted, and the evidence says why.
    pub fn system() -> Trust {
        let loaded = rustls_native_certs::load_native_certs();
        let mut roots = RootCertStore::empty();
        let (added, _ignored) = roots.add_parsable_certificates(loaded.certs);
        let source = if added == 0 {
            "the system roots (none found on this machine; pass --cafile)".to_string()
        } else {
            "the system roots".to_string()
        };
        Trust {
            roots: Arc::new(roots),
            pinned: Arc::new(Vec::new()),
            source,
        }
    }
}

/// What the report shows about the leaf certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CertSummary {
    pub subject: String,
    pub issuer: String,
    pub not_before: String,
    pub not_after: String,
    pub key: String,
    pub signature: String,
    pub subject_alt_names: Vec<String>,
}

pub struct CertReport {
    pub summary: Option<CertSummary>,
    pub findings: Vec<Finding>,
}

/// Examine `chain` (leaf first, DER) as presented for `host`, at time `now` (Unix seconds).
pub fn check_chain(
    chain: &[Vec<u8>],
    host: &str,
    trust: &Trust,
    warn_days: u32,
    now: i64,
) -> CertReport {
    let mut findings = Vec::new();
    let Some(leaf_der) = chain.first() else {
        return CertReport {
            summary: None,
            findings,
        };
    };
    let leaf = match X509Certificate::from_der(leaf_der) {
        Ok((_, c)) => c,
        Err(e) => {
            findings.push(finding(
                "cert-untrusted",
                format!("the server certificate cannot be parsed: {e}"),
            ));
            return CertReport {
                summary: None,
                findings,
            };
        }
    };
    let validity = leaf.validity();
    let nb = validity.not_before.timestamp();
    let na = validity.not_after.timestamp();
    if now > na {
        findings.push(finding(
            "cert-expired",
            format!(
                "notAfter {} ({} days ago)",
                validity.not_after,
                (now - na) / 86400
            ),
        ));
    } else if now < nb {
        findings.push(finding(
            "cert-not-yet-valid",
            format!(
                "notBefore {} (in {} days)",
                validity.not_before,
                (nb - now) / 86400
            ),
        ));
    } else if na - now < i64::from(warn_days) * 86400 {
        findings.push(finding(
            "cert-expiring-soon",
            format!(
                "notAfter {} is {} days away (--warn-days {warn_days})",
                validity.not_after,
                (na - now) / 86400
            ),
        ));
    }

    // Host name: SANs, or the CN as the legacy fallback (which rustls clients refuse).
    let mut sans = Vec::new();
    let mut san_ips = Vec::new();
    if let Ok(Some(ext)) = leaf.subject_alternative_name() {
        for n in &ext.value.general_names {
            match n {
                GeneralName::DNSName(d) => sans.push(d.to_string()),
                GeneralName::IPAddress(b) => {
                    if let Some(ip) = ip_from_bytes(b) {
                        sans.push(ip.to_string());
                        san_ips.push(ip);
                    }
                }
                _ => {}
            }
        }
    }
    let cn: Vec<String> = leaf
        .subject()
        .iter_common_name()
        .filter_map(|a| a.as_str().ok().map(str::to_string))
        .collect();
    let host_ip: Option<std::net::IpAddr> = host.parse().ok();
    let names_host = |names: &[String]| match host_ip {
        Some(ip) => san_ips.contains(&ip) || names.iter().any(|n| n == &ip.to_string()),
        None => names.iter().any(|n| dns_matches(n, host)),
    };
    if sans.is_empty() {
        findings.push(finding(
            "cert-no-san",
            format!(
                "no subjectAltName extension (X.509 v{}); the host is named only by CN {:?}",
                leaf.version().0 + 1,
                cn
            ),
        ));
        if !names_host(&cn) {
            findings.push(finding(
                "cert-hostname-mismatch",
                format!("target {host:?} is not the certificate's CN {cn:?} (no subjectAltName)"),
            ));
        }
    } else if !names_host(&sans) {
        findings.push(finding(
            "cert-hostname-mismatch",
            format!("target {host:?} is not among subjectAltName {sans:?}"),
        ));
    }

    // Key and signature strength: the leaf and every intermediate (a root's self-signature is
    // never checked by clients, so it is not judged).
    let mut key_desc = String::new();
    for (i, der) in chain.iter().enumerate() {
        let Ok((_, cert)) = X509Certificate::from_der(der) else {
            continue;
        };
        let who = if i == 0 {
            "server certificate".to_string()
        } else {
            format!("chain certificate {} ({})", i, cert.subject())
        };
        let (desc, weak) = key_strength(&cert);
        if i == 0 {
            key_desc = desc.clone();
        }
        if let Some(why) = weak {
            findings.push(finding("cert-weak-key", format!("{who}: {desc}: {why}")));
        }
        let is_root = cert.subject().as_raw() == cert.issuer().as_raw() && i > 0;
        if !is_root {
            let oid = cert.signature_algorithm.algorithm.to_id_string();
            if let Some((name, sev)) = weak_signature(&oid) {
                findings.push(finding_at(
                    "cert-weak-signature",
                    sev,
                    format!("{who} is signed with {name}"),
                ));
            }
        }
    }

    // Trust, judged at a moment inside the leaf's validity so that expiry (reported above) does not
    // hide an untrusted chain, and with the names the certificate itself carries stripped from the
    // decision (host name mismatch is reported above).
    let self_signed = leaf.subject().as_raw() == leaf.issuer().as_raw();
    let mid = nb + (na - nb) / 2;
    let verdict = if trust.pinned.iter().any(|d| d == leaf_der) {
        Ok(())
    } else {
        verify_trust(chain, host, trust, mid.max(0) as u64)
    };
    if let Err(reason) = verdict {
        if self_signed {
            findings.push(finding(
                "cert-self-signed",
                format!(
                    "subject = issuer = {}; not trusted by {}: {reason}",
                    leaf.subject(),
                    trust.source
                ),
            ));
        } else {
            findings.push(finding(
                "cert-untrusted",
                format!(
                    "issuer {}: not trusted by {}: {reason}",
                    leaf.issuer(),
                    trust.source
                ),
            ));
        }
    }

    let summary = CertSummary {
        subject: leaf.subject().to_string(),
        issuer: leaf.issuer().to_string(),
        not_before: validity.not_before.to_string(),
        not_after: validity.not_after.to_string(),
        key: key_desc,
        signature: sig_name(&leaf.signature_algorithm.algorithm.to_id_string()),
        subject_alt_names: sans,
    };
    CertReport {
        summary: Some(summary),
        findings,
    }
}

fn verify_trust(chain: &[Vec<u8>], host: &str, trust: &Trust, at: u64) -> Result<(), String> {
    let verifier = WebPkiServerVerifier::builder_with_provider(
        trust.roots.clone(),
        Arc::new(rustls::crypto::aws_lc_rs::default_provider()),
    )
    .build()
    .map_err(|e| e.to_string())?;
    let leaf = CertificateDer::from(chain[0].clone());
    let inter: Vec<CertificateDer<'static>> = chain[1..]
        .iter()
        .map(|d| CertificateDer::from(d.clone()))
        .collect();
    let name = ServerName::try_from(host.to_string())
        .unwrap_or_else(|_| ServerName::try_from("invalid.invalid").expect("static name"));
    match verifier.verify_server_cert(
        &leaf,
        &inter,
        &name,
        &[],
        UnixTime::since_unix_epoch(std::time::Duration::from_secs(at)),
    ) {
        Ok(_) => Ok(()),
        // The chain is trusted; the name is judged separately.
        Err(rustls::Error::InvalidCertificate(rustls::CertificateError::NotValidForName))
        | Err(rustls::Error::InvalidCertificate(
            rustls::CertificateError::NotValidForNameContext { .. },
        )) => Ok(()),
        Err(e) => Err(trust_failure(&e)),
    }
}

/// Why a chain is not trusted, in words: rustls' own text for webpki errors is a Rust debug
/// string ("Other(OtherError(CaUsedAsEndEntity))") that tells an operator nothing.
fn trust_failure(e: &rustls::Error) -> String {
    use rustls::CertificateError as C;
    let rustls::Error::InvalidCertificate(c) = e else {
        return e.to_string();
    };
    match c {
        C::UnknownIssuer => "issued by a CA that is not among the trusted roots".into(),
        C::BadSignature => "a signature in the chain does not verify".into(),
        C::Expired | C::ExpiredContext { .. } => "a certificate in the chain has expired".into(),
        C::NotValidYet | C::NotValidYetContext { .. } => {
            "a certificate in the chain is not valid yet".into()
        }
        C::InvalidPurpose | C::InvalidPurposeContext { .. } => {
            "the certificate is not issued for TLS server authentication (extendedKeyUsage)".into()
        }
        C::Other(o) => match o.to_string().as_str() {
            "CaUsedAsEndEntity" => {
                "the server certificate is a CA certificate (basicConstraints CA:TRUE) used as the server's own".into()
            }
            "UnsupportedSignatureAlgorithm" | "UnsupportedSignatureAlgorithmForPublicKey" => {
                "the chain is signed with an algorithm modern clients do not accept".into()
            }
            other => format!("rejected by the verifier ({other})"),
        },
        other => format!("rejected by the verifier ({other})"),
    }
}

fn ip_from_bytes(b: &[u8]) -> Option<std::net::IpAddr> {
    match b.len() {
        4 => Some(std::net::IpAddr::from(<[u8; 4]>::try_from(b).ok()?)),
        16 => Some(std::net::IpAddr::from(<[u8; 16]>::try_from(b).ok()?)),
        _ => None,
    }
}

/// RFC 6125 matching: case-insensitive, a wildcard only as the whole left-most label.
pub fn dns_matches(pattern: &str, host: &str) -> bool {
    let p = pattern.trim_end_matches('.').to_ascii_lowercase();
    let h = host.trim_end_matches('.').to_ascii_lowercase();
    if let Some(rest) = p.strip_prefix("*.") {
        match h.split_once('.') {
            Some((first, tail)) => !first.is_empty() && tail == rest && rest.contains('.'),
            None => false,
        }
    } else {
        p == h
    }
}

/// ("RSA 2048", Some(reason) when weak).
fn key_strength(cert: &X509Certificate<'_>) -> (String, Option<String>) {
    let spki = cert.public_key();
    match spki.parsed() {
        Ok(PublicKey::RSA(rsa)) => {
            let bits = rsa.key_size();
            let weak = (bits < 2048).then(|| "RSA keys below 2048 bits are breakable".to_string());
            (format!("RSA {bits}"), weak)
        }
        Ok(PublicKey::EC(ec)) => {
            let curve = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.as_oid().ok())
                .map(|o| curve_name(&o.to_id_string()))
                .unwrap_or_else(|| "unknown curve".to_string());
            let bits = ec.key_size();
            let weak = (bits < 256).then(|| "curves below P-256 are too weak".to_string());
            (format!("EC {curve} ({bits} bits)"), weak)
        }
        Ok(PublicKey::DSA(_)) => (
            "DSA".to_string(),
            Some("DSA is deprecated and limited to SHA-1/1024-bit in practice".to_string()),
        ),
        Ok(PublicKey::Unknown(_)) => {
            let oid = spki.algorithm.algorithm.to_id_string();
            let name = match oid.as_str() {
                "1.3.101.112" => "Ed25519".to_string(),
                "1.3.101.113" => "Ed448".to_string(),
                o => o.to_string(),
            };
            (name, None)
        }
        Ok(_) => ("other".to_string(), None),
        Err(e) => ("unparsable".to_string(), Some(e.to_string())),
    }
}

fn curve_name(oid: &str) -> String {
    match oid {
        "1.2.840.10045.3.1.7" => "P-256",
        "1.3.132.0.34" => "P-384",
        "1.3.132.0.35" => "P-521",
        "1.2.840.10045.3.1.1" => "P-192",
        "1.3.132.0.33" => "P-224",
        "1.3.132.0.10" => "secp256k1",
        other => other,
    }
    .to_string()
}

fn weak_signature(oid: &str) -> Option<(&'static str, Severity)> {
    match oid {
        "1.2.840.113549.1.1.2" => Some(("MD2 with RSA", Severity::High)),
        "1.2.840.113549.1.1.4" => Some(("MD5 with RSA", Severity::High)),
        "1.2.840.113549.1.1.5" => Some(("SHA-1 with RSA", Severity::Medium)),
        "1.2.840.10045.4.1" => Some(("ECDSA with SHA-1", Severity::Medium)),
        "1.2.840.10040.4.3" => Some(("DSA with SHA-1", Severity::Medium)),
        _ => None,
    }
}

fn sig_name(oid: &str) -> String {
    match oid {
        "1.2.840.113549.1.1.11" => "sha256WithRSAEncryption",
        "1.2.840.113549.1.1.12" => "sha384WithRSAEncryption",
        "1.2.840.113549.1.1.13" => "sha512WithRSAEncryption",
        "1.2.840.113549.1.1.10" => "RSASSA-PSS",
        "1.2.840.10045.4.3.2" => "ecdsa-with-SHA256",
        "1.2.840.10045.4.3.3" => "ecdsa-with-SHA384",
        "1.2.840.10045.4.3.4" => "ecdsa-with-SHA512",
        "1.3.101.112" => "Ed25519",
        o => {
            return weak_signature(o)
                .map(|(n, _)| n.to_string())
                .unwrap_or(o.to_string())
        }
    }
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{CertificateParams, DnType, KeyPair};

    fn now() -> i64 {
        ::time::OffsetDateTime::now_utc().unix_timestamp()
    }

    fn self_signed(names: &[&str], days_from: i64, days_to: i64) -> (Vec<u8>, Trust) {
        let mut p = CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
            .unwrap();
        p.distinguished_name.push(DnType::CommonName, "test");
        let t = ::time::OffsetDateTime::now_utc();
        p.not_before = t + ::time::Duration::days(days_from);
        p.not_after = t + ::time::Duration::days(days_to);
        let key = KeyPair::generate().unwrap();
        let cert = p.self_signed(&key).unwrap();
        let der = cert.der().to_vec();
        let mut roots = RootCertStore::empty();
        roots.add(CertificateDer::from(der.clone())).unwrap();
        let trust = Trust {
            roots: Arc::new(roots),
            pinned: Arc::new(Vec::new()),
            source: "test".into(),
        };
        (der, trust)
    }

    fn ids(r: &CertReport) -> Vec<&str> {
        r.findings.iter().map(|f| f.id.as_str()).collect()
    }

    #[test]
    fn good_certificate_trusted_by_cafile_has_no_findings() {
        let (der, trust) = self_signed(&["broker.test"], -1, 365);
        let r = check_chain(&[der], "broker.test", &trust, 30, now());
        assert!(r.findings.is_empty(), "{:?}", r.findings);
        assert!(r.summary.unwrap().key.starts_with("EC P-256"));
    }

    #[test]
    fn dates_names_and_trust() {
        let (der, trust) = self_signed(&["broker.test"], -10, -1);
        let r = check_chain(std::slice::from_ref(&der), "other.test", &trust, 30, now());
        assert!(ids(&r).contains(&"cert-expired"));
        assert!(ids(&r).contains(&"cert-hostname-mismatch"));
        let (der2, trust2) = self_signed(&["broker.test"], 2, 10);
        let r = check_chain(&[der2], "broker.test", &trust2, 30, now());
        assert_eq!(ids(&r), vec!["cert-not-yet-valid"]);
        let (der3, trust3) = self_signed(&["broker.test"], -1, 5);
        let r = check_chain(&[der3], "broker.test", &trust3, 30, now());
        assert_eq!(ids(&r), vec!["cert-expiring-soon"]);
        // Not in the trust store: self-signed.
        let r = check_chain(&[der], "broker.test", &trust2, 30, now());
        assert!(ids(&r).contains(&"cert-self-signed"), "{:?}", r.findings);
    }

    #[test]
    fn no_subject_alt_name() {
        let (der, trust) = self_signed(&[], -1, 365);
        let r = check_chain(std::slice::from_ref(&der), "test", &trust, 30, now());
        assert!(ids(&r).contains(&"cert-no-san"), "{:?}", r.findings);
        // The CN names the host: no mismatch on top.
        assert!(
            !ids(&r).contains(&"cert-hostname-mismatch"),
            "{:?}",
            r.findings
        );
        let r = check_chain(&[der], "broker.test", &trust, 30, now());
        assert!(ids(&r).contains(&"cert-no-san"), "{:?}", r.findings);
        assert!(
            ids(&r).contains(&"cert-hostname-mismatch"),
            "{:?}",
            r.findings
        );
    }

    #[test]
    fn curves_below_p256_are_weak() {
        // rcgen cannot make P-192 keys; OpenSSL still can.
        let dir = tempfile::tempdir().unwrap();
        let (key, crt) = (dir.path().join("k.pem"), dir.path().join("c.der"));
        let out = std::process::Command::new("openssl")
            .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
            .args(["ec_paramgen_curve:prime192v1", "-nodes", "-days", "30"])
            .args([
                "-subj",
                "/CN=x.test",
                "-addext",
                "subjectAltName=DNS:x.test",
            ])
            .args(["-outform", "DER", "-keyout"])
            .arg(&key)
            .arg("-out")
            .arg(&crt)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        let der = std::fs::read(&crt).unwrap();
        let (_, trust) = self_signed(&["x.test"], -1, 10);
        let r = check_chain(&[der], "x.test", &trust, 1, now());
        let weak = r
            .findings
            .iter()
            .find(|f| f.id == "cert-weak-key")
            .unwrap_or_else(|| panic!("{:?}", r.findings));
        assert!(weak.evidence.contains("P-192"), "{}", weak.evidence);
    }

    #[test]
    fn wildcards() {
        assert!(dns_matches("*.example.com", "a.example.com"));
        assert!(!dns_matches("*.example.com", "a.b.example.com"));
        assert!(!dns_matches("*.com", "example.com"));
        assert!(dns_matches("Broker.Example", "broker.example."));
    }

    #[test]
    fn garbage_is_a_finding_not_a_panic() {
        let (_, trust) = self_signed(&["x.test"], -1, 10);
        let r = check_chain(&[vec![0x30, 0x03, 1, 2, 3]], "x.test", &trust, 30, now());
        assert_eq!(ids(&r), vec!["cert-untrusted"]);
    }

    #[test]
    fn trust_failures_read_as_words_not_debug_strings() {
        use rustls::{CertificateError, Error, OtherError};
        let unknown = trust_failure(&Error::InvalidCertificate(CertificateError::UnknownIssuer));
        assert!(unknown.contains("not among the trusted roots"), "{unknown}");
        // webpki's error displays as its variant name.
        #[derive(Debug)]
        struct CaUsedAsEndEntity;
        impl std::fmt::Display for CaUsedAsEndEntity {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "CaUsedAsEndEntity")
            }
        }
        impl std::error::Error for CaUsedAsEndEntity {}
        let ca = trust_failure(&Error::InvalidCertificate(CertificateError::Other(
            OtherError(Arc::new(CaUsedAsEndEntity)),
        )));
        assert!(ca.contains("CA:TRUE"), "{ca}");
        assert!(!ca.contains("OtherError"), "{ca}");
    }
}
