//! Issuing leaf certificates: server (serverAuth, SAN required) and client (clientAuth, the CN is
//! the username a broker with `use_identity_as_username` sees).

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use rand::RngCore;
use rcgen::{
    Certificate, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType, SerialNumber,
};
use time::{Duration, OffsetDateTime};

use super::ca::{self, now_seconds, pem, Ca};
use super::index::{Entry, Index, Kind};
use super::inspect::{self, fmt_time, CertInfo};
use super::keys::{key_pem, KeyType};
use super::{PkiError, Result};
use crate::fsutil;

/// notBefore is set this far in the past: devices with a drifting clock must not see a brand new
/// certificate as "not yet valid".
pub const BACKDATE: Duration = Duration::hours(1);
/// CA/Browser Forum limit for TLS leaves; mqsec keeps it for leaves unless told otherwise.
pub const MAX_LEAF_DAYS: u32 = 397;
pub const DEFAULT_LEAF_DAYS: u32 = 397;
/// PKCS#12 PBKDF2 iterations (key encryption and MAC).
const P12_ITERATIONS: u32 = 100_000;

/// 16 random bytes with the top bit cleared: a positive 128-bit serial that never collides by
/// construction the way rcgen's default (hash of the public key) does.
pub fn random_serial() -> Vec<u8> {
    let mut b = vec![0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut b);
    b[0] &= 0x7f;
    b
}

/// Sign `params` under `issuer`, drawing a fresh serial until it is not yet in `idx` (the caller
/// holds the index lock, so the serial stays unique until the index is saved). Returns the
/// certificate and its parsed info; `path` is where it will be written, for error messages.
pub(crate) fn sign_unique(
    params: &mut CertificateParams,
    key: &KeyPair,
    issuer: &Issuer<'_, &KeyPair>,
    idx: &Index,
    path: &Path,
) -> Result<(Certificate, CertInfo)> {
    loop {
        let cert = params.signed_by(key, issuer)?;
        let info = inspect::info(cert.der(), path)?;
        if idx.find(&info.serial).is_none() {
            return Ok((cert, info));
        }
        params.serial_number = Some(random_serial().into());
    }
}

/// The parameters every mqsec certificate starts from: CN, validity, a random serial, key
/// identifiers on both sides.
pub(crate) fn base_params(
    cn: &str,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
) -> CertificateParams {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, cn);
    let mut p = CertificateParams::default();
    p.distinguished_name = dn;
    p.not_before = not_before;
    p.not_after = not_after;
    p.serial_number = Some(SerialNumber::from(random_serial()));
    p.use_authority_key_identifier_extension = true;
    p
}

/// A common name mqsec will put in a certificate (and, for leaves, use as a file name).
///
/// `+`, `#` and `/` are refused: a client CN is what Mosquitto's `use_identity_as_username`
/// takes as username, and such a username never matches ACL patterns (and `/` breaks the file
/// name).
pub fn validate_cn(cn: &str, field: &'static str) -> Result<()> {
    if cn.is_empty() {
        return Err(PkiError::field(field, "must not be empty"));
    }
    if cn.chars().count() > 64 {
        return Err(PkiError::field(
            field,
            "longer than 64 characters (X.509 upper bound for a CN)",
        ));
    }
    if cn.trim() != cn {
        return Err(PkiError::field(field, "leading or trailing whitespace"));
    }
    if let Some(c) = cn
        .chars()
        .find(|c| matches!(c, '+' | '#' | '/' | '\\') || c.is_control())
    {
        return Err(PkiError::field(
            field,
            format!(
                "contains {c:?}: `+`, `#` and `/` never match MQTT ACL patterns as a username, \
                 and control characters or `\\` are not allowed"
            ),
        ));
    }
    if cn == "." || cn == ".." || cn.starts_with('.') {
        return Err(PkiError::field(field, "must not start with `.`"));
    }
    Ok(())
}

/// A DNS name for a SAN: letters, digits, `-`, `_`, dots; an optional leading `*.` wildcard.
pub fn validate_dns(name: &str) -> Result<String> {
    let lower = name.to_ascii_lowercase();
    let rest = lower.strip_prefix("*.").unwrap_or(&lower);
    let ok = !rest.is_empty()
        && lower.len() <= 253
        && rest.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        });
    if !ok {
        return Err(PkiError::field(
            "--dns",
            format!("{name:?} is not a valid DNS name"),
        ));
    }
    Ok(lower)
}

/// Server or client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeafKind {
    Server { dns: Vec<String>, ips: Vec<IpAddr> },
    Client,
}

/// What `gen-server-cert` / `gen-client-cert` were asked for.
#[derive(Debug, Clone)]
pub struct LeafRequest {
    pub ca_dir: PathBuf,
    pub out: PathBuf,
    pub name: String,
    pub kind: LeafKind,
    pub days: u32,
    pub allow_long_validity: bool,
    pub key_type: KeyType,
    pub p12: bool,
    pub force: bool,
}

/// A request whose input has been checked and whose CA is loaded: issuing it writes files.
pub struct Prepared {
    req: LeafRequest,
    dns: Vec<String>,
    ca: Ca,
    pub cert_path: PathBuf,
    pub key_path: PathBuf,
    pub p12_path: Option<PathBuf>,
}

/// What was issued.
#[derive(Debug, Clone)]
pub struct Issued {
    pub info: CertInfo,
    pub written: Vec<PathBuf>,
    /// Certificates in the `.crt` file (leaf plus intermediates).
    pub chain_len: usize,
    pub trust_anchor: PathBuf,
    /// The certificate (with its chain) and the key, as written.
    pub cert_path: PathBuf,
    pub key_path: PathBuf,
    /// The issuing CA's directory (where its CRL lives).
    pub ca_dir: PathBuf,
    pub notes: Vec<String>,
}

/// Check all input and load the CA; nothing is written.
pub fn prepare(req: LeafRequest) -> Result<Prepared> {
    validate_cn(&req.name, "--name")?;
    check_out_dir(&req.out)?;
    if req.days == 0 {
        return Err(PkiError::field("--days", "must be at least 1"));
    }
    if req.days > MAX_LEAF_DAYS && !req.allow_long_validity {
        return Err(PkiError::field(
            "--days",
            format!(
                "{} days is more than {MAX_LEAF_DAYS}; pass --allow-long-validity for devices that \
                 cannot be re-provisioned",
                req.days
            ),
        ));
    }
    if req.days > 36_500 {
        return Err(PkiError::field("--days", "must be at most 36500"));
    }
    let mut dns = Vec::new();
    if let LeafKind::Server { dns: names, ips } = &req.kind {
        if names.is_empty() && ips.is_empty() {
            return Err(PkiError::field(
                "--dns/--ip",
                "a server certificate needs at least one subjectAltName: give --dns HOST or --ip ADDR \
                 (clients check the name there, not in the CN)",
            ));
        }
        for n in names {
            dns.push(validate_dns(n)?);
        }
    }
    let ca = Ca::load(&req.ca_dir)?;
    let cert_path = req.out.join(format!("{}.crt", req.name));
    let key_path = req.out.join(format!("{}.key", req.name));
    let p12_path = req.p12.then(|| req.out.join(format!("{}.p12", req.name)));
    let mut outputs: Vec<&Path> = vec![&key_path, &cert_path];
    if let Some(p) = &p12_path {
        outputs.push(p);
    }
    if let Err(p) = fsutil::refuse_existing(&outputs, req.force) {
        return Err(PkiError::Exists { path: p });
    }
    for p in &outputs {
        if same_path(p, &ca.dir.join(ca::CA_KEY)) || same_path(p, &ca.dir.join(ca::CA_CERT)) {
            return Err(PkiError::field(
                "--name",
                "would overwrite the CA's own files",
            ));
        }
    }
    Ok(Prepared {
        req,
        dns,
        ca,
        cert_path,
        key_path,
        p12_path,
    })
}

impl Prepared {
    /// Whether a PKCS#12 password must be supplied to [`Prepared::issue`].
    pub fn needs_password(&self) -> bool {
        self.p12_path.is_some()
    }

    /// Generate the key, sign, record in the CA index, write the files.
    pub fn issue(self, p12_password: Option<&str>) -> Result<Issued> {
        let req = &self.req;
        let mut notes = Vec::new();
        let now = now_seconds();
        let not_before = (now - BACKDATE).max(self.ca.info.not_before);
        // Counted from notBefore: --days is the whole validity period, so 397 means 397.
        let mut not_after = not_before + Duration::days(i64::from(req.days));
        if not_after > self.ca.info.not_after {
            not_after = self.ca.info.not_after;
            notes.push(format!(
                "validity shortened to end with the CA's, {}",
                fmt_time(not_after)
            ));
        }
        let key = req.key_type.generate()?;
        let mut params = base_params(&req.name, not_before, not_after);
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        if req.key_type.is_rsa() {
            // TLS 1.2 RSA key exchange needs it; harmless otherwise.
            params.key_usages.push(KeyUsagePurpose::KeyEncipherment);
        }
        let kind = match &req.kind {
            LeafKind::Server { ips, .. } => {
                params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
                for d in &self.dns {
                    let ia5 = d
                        .clone()
                        .try_into()
                        .map_err(|_| PkiError::field("--dns", format!("{d:?} is not ASCII")))?;
                    params.subject_alt_names.push(SanType::DnsName(ia5));
                }
                for ip in ips {
                    params.subject_alt_names.push(SanType::IpAddress(*ip));
                }
                Kind::Server
            }
            LeafKind::Client => {
                params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
                Kind::Client
            }
        };
        let issuer = self.ca.issuer()?;
        let key_pem = key_pem(&key);

        // The index is saved last, under the lock taken to pick a unique serial: a certificate
        // whose files could not be written is never recorded as issued.
        let (_lock, mut idx) = Index::lock(&self.ca.dir)?;
        let (cert, info) = sign_unique(&mut params, &key, &issuer, &idx, &self.cert_path)?;
        let cert_der = cert.der().clone();
        let mut chain_pem = pem(&cert_der);
        for c in &self.ca.chain {
            chain_pem.push_str(&pem(c));
        }
        let bundle = match &self.p12_path {
            Some(_) => {
                let password = p12_password.ok_or_else(|| {
                    PkiError::field("--p12", "a password is required for the PKCS#12 bundle")
                })?;
                let mut certs: Vec<&[u8]> = vec![&cert_der];
                certs.extend(self.ca.chain.iter().map(|c| c.as_ref()));
                // The chain never holds the root; devices importing a bundle usually want it.
                certs.push(&self.ca.anchor);
                Some(pkcs12(&req.name, key.serialized_der(), &certs, password)?)
            }
            None => None,
        };

        let mut staged = fsutil::Staged::new(&req.out)?;
        staged.write(&self.key_path, key_pem.as_bytes(), fsutil::MODE_SECRET)?;
        staged.write(&self.cert_path, chain_pem.as_bytes(), fsutil::MODE_PUBLIC)?;
        if let (Some(p12_path), Some(bundle)) = (&self.p12_path, &bundle) {
            staged.write(p12_path, bundle, fsutil::MODE_SECRET)?;
        }
        idx.entries.push(Entry::new(&info, kind, now));
        idx.save(&self.ca.dir)?;
        let mut written = vec![Index::path(&self.ca.dir)];
        written.extend(staged.commit());
        Ok(Issued {
            info,
            written,
            chain_len: 1 + self.ca.chain.len(),
            trust_anchor: self.ca.anchor_path.clone(),
            cert_path: self.cert_path.clone(),
            key_path: self.key_path.clone(),
            ca_dir: self.ca.dir.clone(),
            notes,
        })
    }
}

/// A PKCS#12 bundle: PBES2 (PBKDF2-HMAC-SHA256, AES-256-CBC) for key and certificates, an
/// HMAC-SHA256 MAC: what OpenSSL 3 writes by default, and readable by it.
pub fn pkcs12(alias: &str, pkcs8_der: &[u8], certs: &[&[u8]], password: &str) -> Result<Vec<u8>> {
    use p12_keystore::{
        Certificate, EncryptionAlgorithm, KeyStore, KeyStoreEntry, MacAlgorithm, PrivateKey,
        PrivateKeyChain,
    };
    let err = |e: p12_keystore::error::Error| PkiError::Pkcs12(e.to_string());
    let key = PrivateKey::from_der(pkcs8_der).map_err(err)?;
    let certs = certs
        .iter()
        .map(|c| Certificate::from_der(c))
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(err)?;
    let local_key_id = inspect::fingerprint(certs.first().map(|c| c.as_der()).unwrap_or_default());
    let chain = PrivateKeyChain::new(local_key_id.replace(':', ""), key, certs);
    let mut store = KeyStore::new();
    store.add_entry(alias, KeyStoreEntry::PrivateKeyChain(chain));
    store
        .writer(password)
        .encryption_algorithm(EncryptionAlgorithm::PbeWithHmacSha256AndAes256)
        .encryption_iterations(P12_ITERATIONS)
        .mac_algorithm(MacAlgorithm::HmacSha256)
        .mac_iterations(P12_ITERATIONS)
        .write()
        .map_err(err)
}

/// `--out` must be a directory or not exist yet (it is created only once all checks passed).
pub(crate) fn check_out_dir(out: &Path) -> Result<()> {
    if out.exists() && !out.is_dir() {
        return Err(PkiError::file(out, "--out: exists and is not a directory"));
    }
    Ok(())
}

/// Whether `a` and `b` name the same file or directory; paths that do not both exist yet are
/// compared as written.
pub(crate) fn same_path(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(x), Ok(y)) => x == y,
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serials_are_positive_and_distinct() {
        let a = random_serial();
        let b = random_serial();
        assert_eq!(a.len(), 16);
        assert!(a[0] < 0x80 && b[0] < 0x80);
        assert_ne!(a, b);
    }

    #[test]
    fn cn_rules() {
        assert!(validate_cn("sensor-001", "--name").is_ok());
        assert!(validate_cn("Sensor 1 (hall)", "--name").is_ok());
        for bad in [
            "",
            "a+b",
            "a#b",
            "a/b",
            "..",
            ".hidden",
            " pad",
            "tab\there",
            &"x".repeat(65),
        ] {
            let e = validate_cn(bad, "--name").unwrap_err().to_string();
            assert!(e.starts_with("--name: "), "{bad:?}: {e}");
        }
    }

    #[test]
    fn dns_rules() {
        assert_eq!(
            validate_dns("Broker.Example.com").unwrap(),
            "broker.example.com"
        );
        assert!(validate_dns("*.example.com").is_ok());
        assert!(validate_dns("localhost").is_ok());
        for bad in ["", "a..b", "-a.com", "a b", "*.", "ex*ample.com", "é.com"] {
            assert!(validate_dns(bad).is_err(), "{bad:?}");
        }
    }
}
