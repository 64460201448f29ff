//! CA directories: creating a root or intermediate CA, and loading one to sign with.
//!
//! A CA directory holds `ca.crt`, `ca.key` (0600), `index.json`, and after `gen-crl`, `crl.pem`.
//! An intermediate's directory also holds `chain.pem` (its own certificate, then any intermediates
//! above it: what is appended to every leaf it issues) and `root.crt` (the trust anchor, the file
//! a broker's `cafile` or a client's `--cafile` points at).

use std::path::{Path, PathBuf};

use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use rustls_pki_types::CertificateDer;
use time::{Duration, OffsetDateTime};

use super::index::{Entry, Index, Kind};
use super::inspect::{self, fmt_time, CertInfo};
use super::issue::{
    base_params, check_out_dir, random_serial, same_path, sign_unique, validate_cn, BACKDATE,
};
use super::keys::{key_matches, key_pem, load_key, KeyType, SecretKey};
use super::{PkiError, Result};
use crate::fsutil;

pub const CA_CERT: &str = "ca.crt";
pub const CA_KEY: &str = "ca.key";
pub const CHAIN: &str = "chain.pem";
pub const ROOT: &str = "root.crt";
pub const CRL: &str = "crl.pem";

/// Default CA lifetime: 10 years.
pub const DEFAULT_CA_DAYS: u32 = 3650;
/// Default pathLenConstraint of a root: one level of intermediates below it.
pub const DEFAULT_ROOT_PATH_LEN: u8 = 1;

/// A loaded, usable CA: certificate, key, and what goes above a leaf it signs.
pub struct Ca {
    pub dir: PathBuf,
    pub cert_der: CertificateDer<'static>,
    pub key: SecretKey,
    pub info: CertInfo,
    /// Certificates to append after a leaf: empty for a root, `chain.pem` for an intermediate.
    pub chain: Vec<CertificateDer<'static>>,
    /// The root certificate (trust anchor) of this CA.
    pub anchor: CertificateDer<'static>,
    pub anchor_path: PathBuf,
}

impl Ca {
    /// Load and check a CA directory: present, parseable, a CA, key matching, valid now.
    pub fn load(dir: &Path) -> Result<Ca> {
        if !dir.is_dir() {
            return Err(PkiError::file(
                dir,
                "no such CA directory (create one with `mqsec gen-ca --out DIR`)",
            ));
        }
        let cert_path = dir.join(CA_CERT);
        let key_path = dir.join(CA_KEY);
        let certs = inspect::read_pem_certs(&cert_path)?;
        let cert_der = certs[0].clone();
        let info = inspect::info(&cert_der, &cert_path)?;
        let key = {
            let parsed = inspect::parse(&cert_der, &cert_path)?;
            if !parsed.is_ca() {
                return Err(PkiError::file(
                    &cert_path,
                    "not a CA certificate (basicConstraints CA:TRUE missing)",
                ));
            }
            if let Ok(Some(ku)) = parsed.key_usage() {
                if !ku.value.key_cert_sign() {
                    return Err(PkiError::file(
                        &cert_path,
                        "keyUsage lacks keyCertSign: this certificate may not sign certificates",
                    ));
                }
            }
            // rcgen can only copy single-attribute RDNs into the issuer field; anything else
            // was not made by mqsec and would be mis-copied.
            if parsed.subject().iter().any(|rdn| rdn.iter().count() != 1) {
                return Err(PkiError::file(
                    &cert_path,
                    "subject has a multi-valued RDN, which mqsec cannot sign under",
                ));
            }
            let key = load_key(&key_path)?;
            if !key_matches(&key, &parsed.public_key().subject_public_key.data) {
                return Err(PkiError::file(
                    &key_path,
                    format!("this key does not belong to {}", cert_path.display()),
                ));
            }
            key
        };
        let now = OffsetDateTime::now_utc();
        if now > info.not_after {
            return Err(PkiError::file(
                &cert_path,
                format!(
                    "the CA certificate expired on {} (field notAfter)",
                    fmt_time(info.not_after)
                ),
            ));
        }
        if now < info.not_before {
            return Err(PkiError::file(
                &cert_path,
                format!(
                    "the CA certificate is not valid before {} (field notBefore)",
                    fmt_time(info.not_before)
                ),
            ));
        }
        let chain_path = dir.join(CHAIN);
        let root_path = dir.join(ROOT);
        let (chain, anchor, anchor_path) = if chain_path.exists() || root_path.exists() {
            let chain = inspect::read_pem_certs(&chain_path)?;
            if chain[0] != cert_der {
                return Err(PkiError::file(
                    &chain_path,
                    format!("does not start with {}", cert_path.display()),
                ));
            }
            let root = inspect::read_pem_certs(&root_path)?;
            (chain, root[0].clone(), root_path)
        } else {
            (Vec::new(), cert_der.clone(), cert_path.clone())
        };
        Ok(Ca {
            dir: dir.to_path_buf(),
            cert_der,
            key,
            info,
            chain,
            anchor,
            anchor_path,
        })
    }

    /// An rcgen issuer over this CA's certificate and key (subject, key identifier, key usages
    /// copied from the certificate, so authorityKeyIdentifier matches its subjectKeyIdentifier).
    pub fn issuer(&self) -> Result<Issuer<'static, &KeyPair>> {
        Issuer::from_ca_cert_der(&self.cert_der, &*self.key).map_err(|e| {
            PkiError::file(
                &self.dir.join(CA_CERT),
                format!("cannot sign under this CA certificate: {e}"),
            )
        })
    }

    /// The pathLenConstraint of this CA (None: unlimited).
    pub fn path_len(&self) -> Option<u32> {
        self.info.path_len
    }
}

/// What `gen-ca` was asked for.
#[derive(Debug, Clone)]
pub struct CaRequest {
    pub out: PathBuf,
    pub cn: Option<String>,
    pub days: u32,
    pub key_type: KeyType,
    /// pathLenConstraint; default: 1 for a root, parent's minus one for an intermediate.
    pub path_len: Option<u8>,
    /// Parent CA directory for an intermediate.
    pub parent: Option<PathBuf>,
    pub force: bool,
}

/// What `gen-ca` did.
#[derive(Debug, Clone)]
pub struct CaOutcome {
    pub info: CertInfo,
    pub written: Vec<PathBuf>,
    /// The file clients and brokers must trust (`cafile`).
    pub trust_anchor: PathBuf,
    pub notes: Vec<String>,
}

/// Create a root CA, or an intermediate signed by `req.parent`. Validates everything before
/// writing anything.
pub fn gen_ca(req: &CaRequest) -> Result<CaOutcome> {
    if req.days == 0 || req.days > 36_500 {
        return Err(PkiError::field("--days", "must be between 1 and 36500"));
    }
    check_out_dir(&req.out)?;
    let parent = match &req.parent {
        Some(p) => Some(Ca::load(p)?),
        None => None,
    };
    let cn = match &req.cn {
        Some(cn) => {
            validate_cn(cn, "--cn")?;
            cn.clone()
        }
        None => {
            // A unique default name: two mqsec CAs with the same subject would confuse chain
            // building (and an intermediate named like its parent looks self-signed).
            let tag = hex::encode(&random_serial()[..4]);
            if parent.is_some() {
                format!("mqsec Intermediate CA {tag}")
            } else {
                format!("mqsec Root CA {tag}")
            }
        }
    };
    let path_len = match (&parent, req.path_len) {
        (None, p) => p.unwrap_or(DEFAULT_ROOT_PATH_LEN),
        (Some(par), requested) => {
            let max = match par.path_len() {
                Some(0) => {
                    return Err(PkiError::file(
                        &par.dir.join(CA_CERT),
                        "the parent CA has path length 0: it may sign only leaf certificates \
                         (recreate it with a larger --path-len)",
                    ));
                }
                Some(n) => (n - 1).min(u8::MAX as u32) as u8,
                None => u8::MAX,
            };
            match requested {
                Some(p) if p > max => {
                    return Err(PkiError::field(
                        "--path-len",
                        format!("must be at most {max} (the parent's path length minus one)"),
                    ));
                }
                Some(p) => p,
                // Under an unconstrained parent, default to the safest: leaves only.
                None if max == u8::MAX => 0,
                None => max,
            }
        }
    };
    if let Some(par) = &parent {
        if par.info.subject == format!("CN={cn}") {
            return Err(PkiError::field(
                "--cn",
                "the intermediate must not have the same name as its parent",
            ));
        }
        if same_path(&par.dir, &req.out) {
            return Err(PkiError::field(
                "--out",
                "the intermediate needs its own directory, not the parent's",
            ));
        }
    }
    let cert_path = req.out.join(CA_CERT);
    let key_path = req.out.join(CA_KEY);
    if let Err(p) = fsutil::refuse_existing(&[&key_path, &cert_path], req.force) {
        return Err(PkiError::Exists { path: p });
    }

    let mut notes = Vec::new();
    let now = now_seconds();
    let mut not_before = now - BACKDATE;
    if let Some(par) = &parent {
        // Validity nests inside the parent's, at both ends.
        not_before = not_before.max(par.info.not_before);
    }
    // Counted from notBefore: --days is the whole validity period.
    let mut not_after = not_before + Duration::days(i64::from(req.days));
    if let Some(par) = &parent {
        if not_after > par.info.not_after {
            not_after = par.info.not_after;
            notes.push(format!(
                "validity shortened to end with the parent CA's, {}",
                fmt_time(not_after)
            ));
        }
    }
    let key = req.key_type.generate()?;
    let mut params: CertificateParams = base_params(&cn, not_before, not_after);
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(path_len));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];

    // An intermediate is recorded in its parent's index last, under the lock taken to pick a
    // unique serial, so a CA whose files could not be written is never recorded as issued.
    let (cert_der, info, trust_anchor, parent_index) = match &parent {
        None => {
            let cert = params.self_signed(&*key)?;
            let info = inspect::info(cert.der(), &cert_path)?;
            (cert.der().clone(), info, cert_path.clone(), None)
        }
        Some(par) => {
            let issuer = par.issuer()?;
            let (lock, idx) = Index::lock(&par.dir)?;
            let (cert, info) = sign_unique(&mut params, &key, &issuer, &idx, &cert_path)?;
            (
                cert.der().clone(),
                info,
                req.out.join(ROOT),
                Some((par, lock, idx)),
            )
        }
    };

    let mut staged = fsutil::Staged::new(&req.out)?;
    let key_pem = key_pem(&key);
    staged.write(&key_path, key_pem.as_bytes(), fsutil::MODE_SECRET)?;
    staged.write(&cert_path, pem(&cert_der).as_bytes(), fsutil::MODE_PUBLIC)?;
    let chain_path = req.out.join(CHAIN);
    let root_path = req.out.join(ROOT);
    match &parent {
        Some(par) => {
            let mut chain = pem(&cert_der);
            for c in &par.chain {
                chain.push_str(&pem(c));
            }
            staged.write(&chain_path, chain.as_bytes(), fsutil::MODE_PUBLIC)?;
            staged.write(&root_path, pem(&par.anchor).as_bytes(), fsutil::MODE_PUBLIC)?;
        }
        None => {
            // A replaced root (--force) must not keep an old intermediate's chain files.
            remove_if_exists(&chain_path)?;
            remove_if_exists(&root_path)?;
        }
    }
    // A new CA starts a new index; an old CRL was signed by the old key and would be rejected.
    remove_if_exists(&req.out.join(CRL))?;
    {
        // Any old index is being replaced, so it is not read: only the lock matters (a
        // concurrent issuer must not save into the new directory's index half-way).
        let p = Index::path(&req.out);
        let _lock = fsutil::FileLock::acquire(&p).map_err(|e| PkiError::io(&p, e))?;
        Index::default().save(&req.out)?;
    }
    let mut written = Vec::new();
    if let Some((par, _lock, mut idx)) = parent_index {
        idx.entries
            .push(Entry::new(&info, Kind::IntermediateCa, now));
        idx.save(&par.dir)?;
        written.push(Index::path(&par.dir));
    }
    written.extend(staged.commit());
    written.push(Index::path(&req.out));
    Ok(CaOutcome {
        info,
        written,
        trust_anchor,
        notes,
    })
}

/// Now, whole seconds (certificates carry no fractions).
pub(crate) fn now_seconds() -> OffsetDateTime {
    let now = OffsetDateTime::now_utc();
    now.replace_nanosecond(0).unwrap_or(now)
}

pub(crate) fn pem(der: &[u8]) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut s = String::from("-----BEGIN CERTIFICATE-----\n");
    for line in b64.as_bytes().chunks(64) {
        s.push_str(std::str::from_utf8(line).unwrap_or_default());
        s.push('\n');
    }
    s.push_str("-----END CERTIFICATE-----\n");
    s
}

pub(crate) fn write(path: &Path, data: &[u8], mode: u32) -> Result<()> {
    fsutil::atomic_write(path, data, mode).map_err(|e| PkiError::io(path, e))
}

fn remove_if_exists(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(PkiError::io(path, e)),
    }
}
