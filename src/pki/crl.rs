//! Revocation: mark certificates revoked in the CA index and write `DIR/crl.pem`, the file a
//! broker's `crlfile` points at. Each CRL carries a number one higher than the last.

use std::path::{Path, PathBuf};

use rcgen::{CertificateRevocationListParams, KeyIdMethod, RevokedCertParams, SerialNumber};
use serde::Serialize;
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::ParsedExtension;

use super::ca::{now_seconds, write, Ca, CRL};
use super::index::{Entry, Index, Kind};
use super::inspect::{self, fmt_time, ser_time};
use super::{PkiError, Result};
use crate::fsutil;

pub const DEFAULT_CRL_DAYS: u32 = 30;

/// What `gen-crl` was asked for.
#[derive(Debug, Clone)]
pub struct CrlRequest {
    pub ca_dir: PathBuf,
    pub revoke_files: Vec<PathBuf>,
    /// As typed by the user; normalised here.
    pub revoke_serials: Vec<String>,
    pub crl_days: u32,
}

/// One revoked certificate as reported.
#[derive(Debug, Clone, Serialize)]
pub struct Revoked {
    pub serial: String,
    pub subject: String,
    pub revoked_at: String,
}

/// What `gen-crl` did.
#[derive(Debug, Clone, Serialize)]
pub struct CrlOutcome {
    pub path: PathBuf,
    pub issuer: String,
    pub crl_number: u64,
    #[serde(serialize_with = "ser_time")]
    pub this_update: OffsetDateTime,
    #[serde(serialize_with = "ser_time")]
    pub next_update: OffsetDateTime,
    pub sha256_fingerprint: String,
    /// Revoked by this run.
    pub newly_revoked: Vec<Revoked>,
    /// Asked for, but already revoked before.
    pub already_revoked: Vec<Revoked>,
    /// Every serial the CRL lists.
    pub revoked_total: usize,
}

enum Target {
    Serial(String),
    /// A certificate file checked to be signed by this CA: its serial and index entry.
    Cert {
        serial: String,
        entry: Entry,
    },
}

/// Revoke what was asked and write a fresh CRL (also with nothing to revoke: refreshing
/// nextUpdate is the routine use).
pub fn gen_crl(req: &CrlRequest) -> Result<CrlOutcome> {
    if req.crl_days == 0 || req.crl_days > 3650 {
        return Err(PkiError::field("--crl-days", "must be between 1 and 3650"));
    }
    let mut targets = Vec::new();
    for s in &req.revoke_serials {
        let serial = inspect::parse_serial(s).ok_or_else(|| {
            PkiError::field(
                "--revoke-serial",
                format!("{s:?} is not a hexadecimal serial number"),
            )
        })?;
        targets.push(Target::Serial(serial));
    }
    let ca = Ca::load(&req.ca_dir)?;
    let ca_path = ca.dir.join(super::ca::CA_CERT);
    let ca_parsed = inspect::parse(&ca.cert_der, &ca_path)?;
    if let Ok(Some(ku)) = ca_parsed.key_usage() {
        if !ku.value.crl_sign() {
            return Err(PkiError::file(
                &ca_path,
                "keyUsage lacks cRLSign: this CA may not sign revocation lists",
            ));
        }
    }
    let now = now_seconds();
    for f in &req.revoke_files {
        targets.push(cert_target(f, &ca, &ca_parsed, now)?);
    }

    let (_lock, mut idx) = Index::lock(&ca.dir)?;
    let mut newly_revoked = Vec::new();
    let mut already_revoked = Vec::new();
    for t in targets {
        let serial = match t {
            Target::Serial(s) => {
                if idx.find(&s).is_none() {
                    return Err(PkiError::field(
                        "--revoke-serial",
                        format!(
                            "{s} is not in {} (use --revoke CERT_FILE for a certificate \
                             this CA issued before its index existed)",
                            Index::path(&ca.dir).display()
                        ),
                    ));
                }
                s
            }
            Target::Cert { serial, entry } => {
                if idx.find(&serial).is_none() {
                    idx.entries.push(entry);
                }
                serial
            }
        };
        let Some(e) = idx.find_mut(&serial) else {
            continue;
        };
        let report = |e: &Entry| Revoked {
            serial: e.serial.clone(),
            subject: e.subject.clone(),
            revoked_at: e.revoked_at.clone().unwrap_or_default(),
        };
        if e.revoked {
            if !already_revoked.iter().any(|r: &Revoked| r.serial == serial)
                && !newly_revoked.iter().any(|r: &Revoked| r.serial == serial)
            {
                already_revoked.push(report(e));
            }
        } else {
            e.revoked = true;
            e.revoked_at = Some(fmt_time(now));
            newly_revoked.push(report(e));
        }
    }

    let mut revoked_certs = Vec::new();
    for e in idx.entries.iter().filter(|e| e.revoked) {
        let serial = hex::decode(if e.serial.len() % 2 == 1 {
            format!("0{}", e.serial)
        } else {
            e.serial.clone()
        })
        .map_err(|_| {
            PkiError::file(
                &Index::path(&ca.dir),
                format!("field \"serial\": {:?} is not hexadecimal", e.serial),
            )
        })?;
        let revocation_time = e
            .revoked_at
            .as_deref()
            .and_then(|t| OffsetDateTime::parse(t, &Rfc3339).ok())
            .ok_or_else(|| {
                PkiError::file(
                    &Index::path(&ca.dir),
                    format!(
                        "field \"revoked_at\" of serial {}: missing or not an RFC 3339 time",
                        e.serial
                    ),
                )
            })?;
        revoked_certs.push(RevokedCertParams {
            serial_number: SerialNumber::from_slice(&serial),
            revocation_time,
            reason_code: None,
            invalidity_date: None,
        });
    }
    let revoked_total = revoked_certs.len();
    idx.crl_number += 1;
    let ski = ca_parsed
        .extensions()
        .iter()
        .find_map(|x| match x.parsed_extension() {
            ParsedExtension::SubjectKeyIdentifier(k) => Some(k.0.to_vec()),
            _ => None,
        });
    let next_update = now + Duration::days(i64::from(req.crl_days));
    let params = CertificateRevocationListParams {
        this_update: now,
        next_update,
        crl_number: SerialNumber::from(idx.crl_number),
        issuing_distribution_point: None,
        revoked_certs,
        key_identifier_method: ski.map_or(KeyIdMethod::Sha256, KeyIdMethod::PreSpecified),
    };
    let crl = params.signed_by(&ca.issuer()?)?;
    let crl_pem = crl
        .pem()
        .map_err(|e| PkiError::file(&ca.dir.join(CRL), format!("cannot encode the CRL: {e}")))?;
    // The index first: a CRL is never published for revocations the index does not hold.
    idx.save(&ca.dir)?;
    let path = ca.dir.join(CRL);
    write(&path, crl_pem.as_bytes(), fsutil::MODE_PUBLIC)?;
    Ok(CrlOutcome {
        path,
        issuer: ca.info.subject.clone(),
        crl_number: idx.crl_number,
        this_update: now,
        next_update,
        sha256_fingerprint: inspect::fingerprint(crl.der()),
        newly_revoked,
        already_revoked,
        revoked_total,
    })
}

/// A certificate file to revoke: it must be signed by this CA (so a file from another CA cannot
/// put a foreign serial on this CA's list).
fn cert_target(
    path: &Path,
    ca: &Ca,
    ca_parsed: &X509Certificate<'_>,
    now: OffsetDateTime,
) -> Result<Target> {
    let certs = inspect::read_pem_certs(path)?;
    if certs[0] == ca.cert_der {
        return Err(PkiError::file(
            path,
            "is the CA's own certificate: a CA cannot revoke itself (revoke an intermediate \
             from its parent's directory)",
        ));
    }
    let cert = inspect::parse(&certs[0], path)?;
    if cert.issuer().as_raw() != ca_parsed.subject().as_raw()
        || cert.verify_signature(Some(ca_parsed.public_key())).is_err()
    {
        return Err(PkiError::file(
            path,
            format!(
                "not issued by the CA in {} (issuer {})",
                ca.dir.display(),
                cert.issuer()
            ),
        ));
    }
    let info = inspect::info(&certs[0], path)?;
    let kind = if info.is_ca {
        Kind::IntermediateCa
    } else if info.extended_key_usage.iter().any(|e| e == "serverAuth") {
        Kind::Server
    } else {
        Kind::Client
    };
    let entry = Entry::new(&info, kind, now);
    Ok(Target::Cert {
        serial: info.serial,
        entry,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pki::ca::{gen_ca, CaRequest};
    use crate::pki::issue::{prepare, LeafKind, LeafRequest};
    use crate::pki::keys::KeyType;
    use rustls_pki_types::pem::PemObject;
    use x509_parser::prelude::FromDer;
    use x509_parser::revocation_list::CertificateRevocationList;

    #[test]
    fn revocations_accumulate_and_crl_numbers_increase() {
        let dir = tempfile::tempdir().unwrap();
        let ca_dir = dir.path().join("ca");
        gen_ca(&CaRequest {
            out: ca_dir.clone(),
            cn: Some("Unit CA".into()),
            days: 30,
            key_type: KeyType::EcdsaP256,
            path_len: None,
            parent: None,
            force: false,
        })
        .unwrap();
        let issue = |name: &str| {
            prepare(LeafRequest {
                ca_dir: ca_dir.clone(),
                out: dir.path().join("out"),
                name: name.into(),
                kind: LeafKind::Client,
                days: 10,
                allow_long_validity: false,
                key_type: KeyType::EcdsaP256,
                p12: false,
                force: false,
            })
            .unwrap()
            .issue(None)
            .unwrap()
        };
        let a = issue("a");
        let b = issue("b");
        let req = |files: Vec<PathBuf>, serials: Vec<String>| CrlRequest {
            ca_dir: ca_dir.clone(),
            revoke_files: files,
            revoke_serials: serials,
            crl_days: 2,
        };
        let first = gen_crl(&req(vec![dir.path().join("out/a.crt")], vec![])).unwrap();
        assert_eq!(first.crl_number, 1);
        let second = gen_crl(&req(vec![], vec![b.info.serial.to_uppercase()])).unwrap();
        assert_eq!(second.crl_number, 2);
        assert_eq!(second.revoked_total, 2);
        assert_eq!(second.next_update - second.this_update, Duration::days(2));

        let pem = std::fs::read(ca_dir.join(CRL)).unwrap();
        let der = rustls_pki_types::CertificateRevocationListDer::pem_slice_iter(&pem)
            .next()
            .unwrap()
            .unwrap();
        let (_, crl) = CertificateRevocationList::from_der(&der).unwrap();
        assert_eq!(crl.crl_number().map(|n| n.to_string()), Some("2".into()));
        let mut listed: Vec<String> = crl
            .iter_revoked_certificates()
            .map(|r| inspect::serial_hex(r.raw_serial()))
            .collect();
        listed.sort();
        let mut want = vec![a.info.serial.clone(), b.info.serial.clone()];
        want.sort();
        assert_eq!(listed, want);
        let ca = Ca::load(&ca_dir).unwrap();
        let ca_cert = inspect::parse(&ca.cert_der, &ca_dir).unwrap();
        crl.verify_signature(ca_cert.public_key()).unwrap();
    }
}
