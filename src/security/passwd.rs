//! Password files: parse (keeping every other line verbatim), hash new passwords as argon2id,
//! verify argon2id and Mosquitto's `$7$` / `$6$` lines, lint, and rewrite atomically under a lock.
//!
//! This is the verifier `serve` calls on CONNECT, so the same code answers `mqsec passwd verify`
//! and a broker login. Verification is the only slow step: [`Verifier::verify`] blocks (tens of
//! milliseconds at the default cost) and must run off the async reactor; `serve` runs it on the
//! bounded worker pool of [`crate::security::verify_pool`].
//!
//! Timing: an unknown user, an entry that cannot be verified (plaintext, unknown scheme,
//! malformed) and a legacy entry all cost one argon2id computation with the file's usual
//! parameters, so response time does not tell an attacker which usernames exist or which of them
//! still have a weak hash.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use argon2::{Algorithm, Argon2, Params, Version};
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine;
use rand::RngCore;
use serde::Serialize;
use sha2::{Digest, Sha512};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::fsutil::{self, FileLock, MODE_SECRET};

/// A password file larger than this is refused: a real one holds a line per user, and a bound
/// keeps a mistaken path (a log, a device) from being read into memory.
pub const MAX_FILE_BYTES: u64 = 16 * 1024 * 1024;
/// The hash field of one line may not be longer than this.
pub const MAX_HASH_FIELD: usize = 4096;
/// MQTT strings are at most 65535 bytes; a username longer than that could never log in.
pub const MAX_USERNAME_BYTES: usize = 65535;

/// Upper bounds on the cost a stored hash may ask for. The file is trusted, but a typo such as
/// `m=19456000` would otherwise make every login allocate 18 GiB.
pub const MAX_MEMORY_KIB: u32 = 1024 * 1024;
pub const MAX_ITERATIONS: u32 = 256;
pub const MAX_PARALLELISM: u32 = 64;
pub const MAX_PBKDF2_ITERATIONS: u32 = 10_000_000;

/// Salt and output lengths for new argon2id hashes (RFC 9106 recommends 16-byte salts; 32 bytes
/// of output is what libargon2 and the `argon2` crate produce by default).
const NEW_SALT_LEN: usize = 16;
const NEW_HASH_LEN: usize = 32;

/// OWASP's equivalent argon2id configurations (memory KiB, iterations), all with parallelism 1:
/// any parameters at least as strong as one of these pairs meet the minimum.
pub const OWASP_ARGON2ID_MINIMUMS: [(u32, u32); 5] =
    [(47104, 1), (19456, 2), (12288, 3), (9216, 4), (7168, 5)];
/// OWASP's minimum for PBKDF2-HMAC-SHA512; Mosquitto writes 101 (2.0) or 1000 (2.1).
pub const OWASP_PBKDF2_SHA512_ITERATIONS: u32 = 210_000;

/// Mosquitto writes standard base64 with padding; PHC strings use it without padding. Decoding is
/// lenient about both so a hand-edited or third-party line still verifies.
const B64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_encode_padding(true)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true),
);
const B64_NOPAD: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true),
);

/// argon2id cost parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct Argon2Params {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
}

impl Default for Argon2Params {
    fn default() -> Self {
        Argon2Params::DEFAULT
    }
}

impl fmt::Display for Argon2Params {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "m={},t={},p={}",
            self.memory_kib, self.iterations, self.parallelism
        )
    }
}

/// Why a set of argon2id parameters was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParamsError {
    #[error(
        "argon2id parameters {0} are below the OWASP minimum (m>=19456 KiB with t>=2, or an \
         equivalent pair such as m>=47104 with t>=1; p>=1)"
    )]
    BelowOwasp(Argon2Params),
    #[error("argon2id parameters {params}: {reason}")]
    Invalid {
        params: Argon2Params,
        reason: &'static str,
    },
}

impl Argon2Params {
    /// OWASP's baseline: m=19456 KiB (19 MiB), t=2, p=1.
    pub const DEFAULT: Argon2Params = Argon2Params {
        memory_kib: 19456,
        iterations: 2,
        parallelism: 1,
    };

    pub fn meets_owasp_minimum(&self) -> bool {
        self.parallelism >= 1
            && OWASP_ARGON2ID_MINIMUMS
                .iter()
                .any(|&(m, t)| self.memory_kib >= m && self.iterations >= t)
    }

    /// Structural limits (what argon2 can compute and mqsec's cost caps); the OWASP floor too
    /// unless `allow_weak` (meant for tests, which would otherwise spend seconds hashing).
    pub fn check(&self, allow_weak: bool) -> Result<(), ParamsError> {
        let invalid = |reason| {
            Err(ParamsError::Invalid {
                params: *self,
                reason,
            })
        };
        if self.parallelism == 0 || self.parallelism > MAX_PARALLELISM {
            return invalid("parallelism must be 1..=64");
        }
        if self.iterations == 0 || self.iterations > MAX_ITERATIONS {
            return invalid("iterations must be 1..=256");
        }
        if self.memory_kib > MAX_MEMORY_KIB {
            return invalid("memory must be at most 1048576 KiB (1 GiB)");
        }
        if self.memory_kib < 8 * self.parallelism {
            return invalid("memory must be at least 8 KiB per lane of parallelism");
        }
        if !allow_weak && !self.meets_owasp_minimum() {
            return Err(ParamsError::BelowOwasp(*self));
        }
        Ok(())
    }

    fn argon2(&self, version: Version, out_len: usize) -> Option<Argon2<'static>> {
        let params = Params::new(
            self.memory_kib,
            self.iterations,
            self.parallelism,
            Some(out_len),
        )
        .ok()?;
        Some(Argon2::new(Algorithm::Argon2id, version, params))
    }

    fn compute(&self, version: Version, password: &[u8], salt: &[u8], out: &mut [u8]) -> bool {
        match self.argon2(version, out.len()) {
            Some(ctx) => ctx.hash_password_into(password, salt, out).is_ok(),
            None => false,
        }
    }
}

/// The hash scheme of a password file entry, judged from its hash field's prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scheme {
    /// `$argon2id$v=19$m=..,t=..,p=..$SALT$HASH` (PHC string): what mqsec writes.
    Argon2id,
    /// `$7$ITER$SALT$HASH`: Mosquitto 2.x, PBKDF2-HMAC-SHA512.
    Pbkdf2Sha512,
    /// `$6$SALT$HASH`: Mosquitto 1.x, SHA-512(password || salt).
    Sha512,
    /// No leading `$`: a clear-text password (the input format of `mosquitto_passwd -U`).
    Plaintext,
    /// A `$...$` scheme mqsec does not know.
    Unknown,
}

impl Scheme {
    pub fn of(field: &str) -> Scheme {
        if field.starts_with("$argon2id$") {
            Scheme::Argon2id
        } else if field.starts_with("$7$") {
            Scheme::Pbkdf2Sha512
        } else if field.starts_with("$6$") {
            Scheme::Sha512
        } else if field.starts_with('$') {
            Scheme::Unknown
        } else {
            Scheme::Plaintext
        }
    }

    /// The name `list` prints.
    pub fn label(self) -> &'static str {
        match self {
            Scheme::Argon2id => "argon2id",
            Scheme::Pbkdf2Sha512 => "pbkdf2-sha512($7$)",
            Scheme::Sha512 => "sha512($6$)",
            Scheme::Plaintext => "plaintext",
            Scheme::Unknown => "unknown",
        }
    }
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// Why a hash field could not be decoded. Each names the field that was wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HashError {
    #[error("clear-text password (expected a hash; run `mqsec passwd import` or `add`)")]
    Plaintext,
    #[error("unknown hash scheme {0:?} (expected $argon2id$, $7$ or $6$)")]
    UnknownScheme(String),
    #[error("{scheme} hash: expected {expected}, found {found} `$`-separated fields")]
    FieldCount {
        scheme: &'static str,
        expected: &'static str,
        found: usize,
    },
    #[error("{scheme} {field}: {reason}")]
    Field {
        scheme: &'static str,
        field: &'static str,
        reason: String,
    },
}

fn field_err(scheme: &'static str, field: &'static str, reason: impl Into<String>) -> HashError {
    HashError::Field {
        scheme,
        field,
        reason: reason.into(),
    }
}

/// A decoded stored hash.
#[derive(Clone, PartialEq, Eq)]
pub enum StoredHash {
    Argon2id {
        /// 0x13 (`v=19`) or 0x10 (`v=16`, or no `v=` field).
        version: u32,
        params: Argon2Params,
        salt: Vec<u8>,
        hash: Vec<u8>,
    },
    Pbkdf2Sha512 {
        iterations: u32,
        salt: Vec<u8>,
        hash: Vec<u8>,
    },
    Sha512 {
        salt: Vec<u8>,
        hash: Vec<u8>,
    },
}

// The derived Debug would print hash bytes; nothing secret, but log lines need not carry them.
impl fmt::Debug for StoredHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoredHash::Argon2id {
                version, params, ..
            } => write!(f, "Argon2id(v={version:#x}, {params})"),
            StoredHash::Pbkdf2Sha512 { iterations, .. } => {
                write!(f, "Pbkdf2Sha512(iterations={iterations})")
            }
            StoredHash::Sha512 { .. } => f.write_str("Sha512"),
        }
    }
}

fn decode_b64(
    scheme: &'static str,
    field: &'static str,
    text: &str,
    min: usize,
    max: usize,
) -> Result<Vec<u8>, HashError> {
    let bytes = B64
        .decode(text)
        .map_err(|e| field_err(scheme, field, format!("not valid base64 ({e})")))?;
    if bytes.len() < min || bytes.len() > max {
        return Err(field_err(
            scheme,
            field,
            format!("expected {min} to {max} bytes, found {}", bytes.len()),
        ));
    }
    Ok(bytes)
}

fn parse_u32(
    scheme: &'static str,
    field: &'static str,
    text: &str,
    min: u32,
    max: u32,
) -> Result<u32, HashError> {
    match text.parse::<u32>() {
        Ok(n) if (min..=max).contains(&n) && !text.starts_with('+') => Ok(n),
        _ => Err(field_err(
            scheme,
            field,
            format!("expected a number from {min} to {max}, found {text:?}"),
        )),
    }
}

/// Decode a hash field (the part after `USER:`).
pub fn parse_hash(field: &str) -> Result<StoredHash, HashError> {
    match Scheme::of(field) {
        Scheme::Argon2id => parse_argon2id(field),
        Scheme::Pbkdf2Sha512 => {
            const S: &str = "$7$";
            let parts: Vec<&str> = field.split('$').collect();
            // "", "7", ITER, SALT, HASH
            if parts.len() != 5 {
                return Err(HashError::FieldCount {
                    scheme: S,
                    expected: "$7$ITERATIONS$SALT$HASH",
                    found: parts.len().saturating_sub(1),
                });
            }
            let iterations = parse_u32(S, "iterations", parts[2], 1, MAX_PBKDF2_ITERATIONS)?;
            let salt = decode_b64(S, "salt", parts[3], 1, 1024)?;
            let hash = decode_b64(S, "hash", parts[4], 16, 128)?;
            Ok(StoredHash::Pbkdf2Sha512 {
                iterations,
                salt,
                hash,
            })
        }
        Scheme::Sha512 => {
            const S: &str = "$6$";
            let parts: Vec<&str> = field.split('$').collect();
            if parts.len() != 4 {
                return Err(HashError::FieldCount {
                    scheme: S,
                    expected: "$6$SALT$HASH",
                    found: parts.len().saturating_sub(1),
                });
            }
            let salt = decode_b64(S, "salt", parts[2], 1, 1024)?;
            let hash = decode_b64(S, "hash", parts[3], 64, 64)?;
            Ok(StoredHash::Sha512 { salt, hash })
        }
        Scheme::Plaintext => Err(HashError::Plaintext),
        Scheme::Unknown => {
            let name: String = field.chars().skip(1).take_while(|&c| c != '$').collect();
            Err(HashError::UnknownScheme(format!(
                "${}$",
                truncate(&name, 32)
            )))
        }
    }
}

fn truncate(s: &str, max_chars: usize) -> String {
    if s.chars().count() <= max_chars {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(max_chars).collect();
        t.push('…');
        t
    }
}

/// A PHC string as libargon2 (and Mosquitto 2.1 built with argon2) writes it. Parsed by hand
/// rather than with `password-hash`, whose 64-character salt limit rejects Mosquitto 2.1's
/// 64-byte salts.
fn parse_argon2id(field: &str) -> Result<StoredHash, HashError> {
    const S: &str = "$argon2id$";
    let parts: Vec<&str> = field.split('$').collect();
    // "", "argon2id", ["v=19",] "m=..,t=..,p=..", SALT, HASH
    let (version, rest) = match parts.len() {
        6 => {
            let v = parts[2].strip_prefix("v=").ok_or_else(|| {
                field_err(S, "version", format!("expected v=19, found {:?}", parts[2]))
            })?;
            match v {
                "19" => (0x13, &parts[3..]),
                "16" => (0x10, &parts[3..]),
                other => {
                    return Err(field_err(
                        S,
                        "version",
                        format!("expected 19 or 16, found {other:?}"),
                    ))
                }
            }
        }
        // No version field: libargon2 reads that as version 1.0 (0x10).
        5 => (0x10, &parts[2..]),
        n => {
            return Err(HashError::FieldCount {
                scheme: S,
                expected: "$argon2id$v=19$m=M,t=T,p=P$SALT$HASH",
                found: n.saturating_sub(1),
            })
        }
    };
    let (mut m, mut t, mut p) = (None, None, None);
    for kv in rest[0].split(',') {
        let (k, v) = kv.split_once('=').ok_or_else(|| {
            field_err(S, "parameters", format!("expected KEY=VALUE, found {kv:?}"))
        })?;
        let slot = match k {
            "m" => &mut m,
            "t" => &mut t,
            "p" => &mut p,
            "keyid" | "data" => {
                return Err(field_err(
                    S,
                    "parameters",
                    format!("{k}= (keyed hashes) is not supported"),
                ))
            }
            other => {
                return Err(field_err(
                    S,
                    "parameters",
                    format!("unknown parameter {:?}", truncate(other, 16)),
                ))
            }
        };
        if slot.is_some() {
            return Err(field_err(S, "parameters", format!("{k}= given twice")));
        }
        *slot = Some(v);
    }
    let (Some(m), Some(t), Some(p)) = (m, t, p) else {
        return Err(field_err(S, "parameters", "expected m=, t= and p="));
    };
    let params = Argon2Params {
        memory_kib: parse_u32(S, "memory (m=)", m, 8, MAX_MEMORY_KIB)?,
        iterations: parse_u32(S, "iterations (t=)", t, 1, MAX_ITERATIONS)?,
        parallelism: parse_u32(S, "parallelism (p=)", p, 1, MAX_PARALLELISM)?,
    };
    params.check(true).map_err(|e| match e {
        ParamsError::Invalid { reason, .. } => field_err(S, "parameters", reason),
        ParamsError::BelowOwasp(_) => field_err(S, "parameters", "below minimum"),
    })?;
    let salt = decode_b64(S, "salt", rest[1], 8, 1024)?;
    let hash = decode_b64(S, "hash", rest[2], 16, 128)?;
    Ok(StoredHash::Argon2id {
        version,
        params,
        salt,
        hash,
    })
}

impl StoredHash {
    pub fn scheme(&self) -> Scheme {
        match self {
            StoredHash::Argon2id { .. } => Scheme::Argon2id,
            StoredHash::Pbkdf2Sha512 { .. } => Scheme::Pbkdf2Sha512,
            StoredHash::Sha512 { .. } => Scheme::Sha512,
        }
    }

    /// Compute and compare in constant time. Blocking: do not call on an async reactor thread.
    pub fn verify(&self, password: &[u8]) -> bool {
        // The one place a stored hash is checked, so tests can account for the work of each path.
        #[cfg(test)]
        tests::WORK.with(|w| w.borrow_mut().push(CostClass::of(self)));
        match self {
            StoredHash::Argon2id {
                version,
                params,
                salt,
                hash,
            } => {
                let version = if *version == 0x10 {
                    Version::V0x10
                } else {
                    Version::V0x13
                };
                let mut out = Zeroizing::new(vec![0u8; hash.len()]);
                if !params.compute(version, password, salt, &mut out) {
                    return false;
                }
                bool::from(out.as_slice().ct_eq(hash))
            }
            StoredHash::Pbkdf2Sha512 {
                iterations,
                salt,
                hash,
            } => {
                let mut out = Zeroizing::new(vec![0u8; hash.len()]);
                pbkdf2::pbkdf2_hmac::<Sha512>(password, salt, *iterations, &mut out);
                bool::from(out.as_slice().ct_eq(hash))
            }
            StoredHash::Sha512 { salt, hash } => {
                let mut h = Sha512::new();
                h.update(password);
                h.update(salt);
                let out = Zeroizing::new(h.finalize().to_vec());
                bool::from(out.as_slice().ct_eq(hash))
            }
        }
    }

    /// Why this hash is weaker than what mqsec writes today, if it is.
    pub fn weakness(&self) -> Option<String> {
        match self {
            StoredHash::Argon2id {
                version, params, ..
            } => {
                if !params.meets_owasp_minimum() {
                    Some(format!(
                        "argon2id {params} is below the OWASP minimum (m=19456,t=2,p=1)"
                    ))
                } else if *version == 0x10 {
                    Some("argon2id version 1.0 (v=16); current is v=19".to_string())
                } else {
                    None
                }
            }
            StoredHash::Pbkdf2Sha512 { iterations, .. } => Some(format!(
                "legacy $7$: PBKDF2-SHA512 with {iterations} iterations (OWASP asks for \
                 {OWASP_PBKDF2_SHA512_ITERATIONS}); rehash as argon2id"
            )),
            StoredHash::Sha512 { .. } => Some(
                "legacy $6$: a single salted SHA-512, fast to brute-force; rehash \
                 as argon2id"
                    .to_string(),
            ),
        }
    }

    /// Whether a successful login with this hash should be rewritten with `target` parameters.
    pub fn needs_upgrade(&self, target: &Argon2Params) -> bool {
        match self {
            StoredHash::Argon2id {
                version, params, ..
            } => {
                *version != 0x13
                    || params.memory_kib < target.memory_kib
                    || params.iterations < target.iterations
            }
            _ => true,
        }
    }
}

/// Hash a new password as an argon2id PHC string with a random 16-byte salt.
pub fn hash_password(password: &[u8], params: &Argon2Params) -> Result<String, ParamsError> {
    params.check(true)?;
    let ctx = params
        .argon2(Version::V0x13, NEW_HASH_LEN)
        .ok_or(ParamsError::Invalid {
            params: *params,
            reason: "rejected by argon2",
        })?;
    let mut salt = [0u8; NEW_SALT_LEN];
    rand::rngs::OsRng.fill_bytes(&mut salt);
    let mut out = Zeroizing::new([0u8; NEW_HASH_LEN]);
    ctx.hash_password_into(password, &salt, out.as_mut())
        .map_err(|_| ParamsError::Invalid {
            params: *params,
            reason: "rejected by argon2",
        })?;
    Ok(format!(
        "$argon2id$v=19${params}${}${}",
        B64_NOPAD.encode(salt),
        B64_NOPAD.encode(out.as_ref())
    ))
}

/// Why a username cannot be written to a password file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UsernameError {
    #[error("username is empty")]
    Empty,
    #[error("username contains ':' (the field separator)")]
    Colon,
    #[error("username contains a control character (newline, tab, ...)")]
    Control,
    #[error("username starts with '#' (the line would be read as a comment)")]
    LeadingHash,
    #[error("username starts or ends with whitespace")]
    Whitespace,
    #[error("username is longer than 65535 bytes (the MQTT limit)")]
    TooLong,
}

/// Refuse usernames that cannot be stored or could never log in.
pub fn validate_username(user: &str) -> Result<(), UsernameError> {
    if user.is_empty() {
        return Err(UsernameError::Empty);
    }
    if user.len() > MAX_USERNAME_BYTES {
        return Err(UsernameError::TooLong);
    }
    if user.contains(':') {
        return Err(UsernameError::Colon);
    }
    if user.chars().any(char::is_control) {
        return Err(UsernameError::Control);
    }
    if user.starts_with('#') {
        return Err(UsernameError::LeadingHash);
    }
    if user.trim() != user {
        return Err(UsernameError::Whitespace);
    }
    Ok(())
}

/// Characters that are legal in a username but make Mosquitto ACL `pattern` lines never match it
/// (`%u` substitution refuses them), so such a user is silently denied by every pattern.
pub fn acl_unsafe_chars(user: &str) -> Vec<char> {
    let mut found: Vec<char> = user
        .chars()
        .filter(|c| matches!(c, '+' | '#' | '/'))
        .collect();
    found.dedup();
    found.sort_unstable();
    found.dedup();
    found
}

/// One line of a password file, kept byte for byte.
#[derive(Debug, Clone)]
pub struct Line {
    /// 1-based line number in the file as read.
    pub number: usize,
    /// The line without its `\n` (a `\r` stays, so CRLF files are written back unchanged).
    pub raw: Vec<u8>,
    pub kind: LineKind,
}

#[derive(Debug, Clone)]
pub enum LineKind {
    Blank,
    Comment,
    Entry(Entry),
    /// A line that is neither a comment nor `USER:HASH`; the reason names what was expected.
    Malformed(String),
}

#[derive(Debug, Clone)]
pub struct Entry {
    pub user: String,
    pub scheme: Scheme,
    pub hash: Result<StoredHash, HashError>,
}

impl Line {
    fn parse(number: usize, raw: Vec<u8>) -> Line {
        let kind = classify(&raw);
        Line { number, raw, kind }
    }

    pub fn entry(&self) -> Option<&Entry> {
        match &self.kind {
            LineKind::Entry(e) => Some(e),
            _ => None,
        }
    }
}

fn classify(raw: &[u8]) -> LineKind {
    let Ok(text) = std::str::from_utf8(raw) else {
        return LineKind::Malformed("not valid UTF-8".to_string());
    };
    let text = text.strip_suffix('\r').unwrap_or(text);
    let trimmed = text.trim_start();
    if trimmed.is_empty() {
        return LineKind::Blank;
    }
    if trimmed.starts_with('#') {
        return LineKind::Comment;
    }
    let Some((user, field)) = text.split_once(':') else {
        return LineKind::Malformed("expected USER:HASH, found no ':'".to_string());
    };
    if user.is_empty() {
        return LineKind::Malformed("expected USER:HASH, found an empty username".to_string());
    }
    if field.is_empty() {
        return LineKind::Malformed(format!(
            "expected USER:HASH, found no hash for user {:?}",
            truncate(user, 64)
        ));
    }
    if field.len() > MAX_HASH_FIELD {
        return LineKind::Malformed(format!(
            "hash field longer than {MAX_HASH_FIELD} bytes for user {:?}",
            truncate(user, 64)
        ));
    }
    LineKind::Entry(Entry {
        user: user.to_string(),
        scheme: Scheme::of(field),
        hash: parse_hash(field),
    })
}

/// File-level failures. Each message names the file.
#[derive(Debug, thiserror::Error)]
pub enum PasswdError {
    #[error("{}: cannot read: {source}", path.display())]
    Read { path: PathBuf, source: io::Error },
    #[error("{}: file is larger than {MAX_FILE_BYTES} bytes; not a password file?", path.display())]
    TooLarge { path: PathBuf },
    #[error("{}: cannot write: {source}", path.display())]
    Write { path: PathBuf, source: io::Error },
    #[error("{}: cannot lock for update: {source}", path.display())]
    Lock { path: PathBuf, source: io::Error },
}

impl PasswdError {
    /// True when the file simply does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, PasswdError::Read { source, .. } if source.kind() == io::ErrorKind::NotFound)
    }
}

/// Read a file of at most [`MAX_FILE_BYTES`], into memory that is wiped on drop (it may hold
/// clear-text passwords).
pub fn read_limited(path: &Path) -> Result<Zeroizing<Vec<u8>>, PasswdError> {
    let read_err = |source| PasswdError::Read {
        path: path.to_path_buf(),
        source,
    };
    let f = std::fs::File::open(path).map_err(read_err)?;
    let mut buf = Zeroizing::new(Vec::new());
    if !crate::fsutil::read_capped(f, MAX_FILE_BYTES, &mut buf).map_err(read_err)? {
        return Err(PasswdError::TooLarge {
            path: path.to_path_buf(),
        });
    }
    Ok(buf)
}

/// A parsed password file: every line, in order, with its original bytes.
#[derive(Debug, Clone, Default)]
pub struct PasswordFile {
    lines: Vec<Line>,
}

/// How serious a lint finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Warning,
    Error,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Warning => "warning",
            Severity::Error => "error",
        })
    }
}

/// One problem found by [`PasswordFile::lint`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub line: usize,
    pub severity: Severity,
    pub message: String,
}

impl PasswordFile {
    /// Parse any bytes. Never fails: lines that are not entries are kept as comments, blanks or
    /// malformed lines, so a rewrite keeps them and `check` can report them.
    pub fn parse(bytes: &[u8]) -> PasswordFile {
        let mut lines = Vec::new();
        if !bytes.is_empty() {
            let body = bytes.strip_suffix(b"\n").unwrap_or(bytes);
            for (i, raw) in body.split(|&b| b == b'\n').enumerate() {
                lines.push(Line::parse(i + 1, raw.to_vec()));
            }
        }
        PasswordFile { lines }
    }

    pub fn load(path: &Path) -> Result<PasswordFile, PasswdError> {
        Ok(PasswordFile::parse(&read_limited(path)?))
    }

    /// The file's bytes: every line followed by `\n`.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.lines.iter().map(|l| l.raw.len() + 1).sum());
        for l in &self.lines {
            out.extend_from_slice(&l.raw);
            out.push(b'\n');
        }
        out
    }

    pub fn lines(&self) -> &[Line] {
        &self.lines
    }

    pub fn entries(&self) -> impl Iterator<Item = (&Line, &Entry)> {
        self.lines.iter().filter_map(|l| l.entry().map(|e| (l, e)))
    }

    /// The entry that counts for `user`: the last one, as Mosquitto 2.0 reads duplicates
    /// (checked: with two lines for a user, only the second password logs in).
    pub fn find(&self, user: &str) -> Option<&Entry> {
        self.entries()
            .map(|(_, e)| e)
            .filter(|e| e.user == user)
            .last()
    }

    /// Add or replace `user` with `hash_field`. The first line for the user is replaced in place
    /// (so the file's order is kept), later duplicates are dropped. Returns true if replaced.
    pub fn set(&mut self, user: &str, hash_field: &str) -> bool {
        let mut raw = Vec::with_capacity(user.len() + 1 + hash_field.len());
        raw.extend_from_slice(user.as_bytes());
        raw.push(b':');
        raw.extend_from_slice(hash_field.as_bytes());
        let new_line = Line::parse(0, raw);
        let mut replaced = false;
        let mut out = Vec::with_capacity(self.lines.len() + 1);
        for l in self.lines.drain(..) {
            if l.entry().is_some_and(|e| e.user == user) {
                if !replaced {
                    out.push(new_line.clone());
                    replaced = true;
                }
            } else {
                out.push(l);
            }
        }
        if !replaced {
            out.push(new_line);
        }
        self.lines = out;
        self.renumber();
        replaced
    }

    /// Remove every line for `user`; returns how many were removed.
    pub fn remove(&mut self, user: &str) -> usize {
        let before = self.lines.len();
        self.lines
            .retain(|l| l.entry().is_none_or(|e| e.user != user));
        self.renumber();
        before - self.lines.len()
    }

    fn renumber(&mut self) {
        for (i, l) in self.lines.iter_mut().enumerate() {
            l.number = i + 1;
        }
    }

    /// Problems an operator should fix, in line order.
    pub fn lint(&self) -> Vec<Finding> {
        let mut out = Vec::new();
        let mut first_seen: HashMap<&str, usize> = HashMap::new();
        for line in &self.lines {
            let n = line.number;
            let mut push = |severity, message: String| {
                out.push(Finding {
                    line: n,
                    severity,
                    message,
                })
            };
            let e = match &line.kind {
                LineKind::Blank | LineKind::Comment => continue,
                LineKind::Malformed(reason) => {
                    push(Severity::Error, format!("malformed line: {reason}"));
                    continue;
                }
                LineKind::Entry(e) => e,
            };
            let shown = truncate(&e.user, 64);
            if let Some(first) = first_seen.get(e.user.as_str()) {
                push(
                    Severity::Error,
                    format!(
                        "duplicate user {shown:?} (first at line {first}; the last line counts, \
                         as in Mosquitto; delete one)"
                    ),
                );
            } else {
                first_seen.insert(&e.user, n);
            }
            if let Err(u) = validate_username(&e.user) {
                push(Severity::Error, format!("user {shown:?}: {u}"));
            }
            let unsafe_chars = acl_unsafe_chars(&e.user);
            if !unsafe_chars.is_empty() {
                let list: Vec<String> = unsafe_chars.iter().map(|c| format!("'{c}'")).collect();
                push(
                    Severity::Warning,
                    format!(
                        "user {shown:?} contains {}: Mosquitto ACL patterns (%u) never match \
                         such a username",
                        list.join(", ")
                    ),
                );
            }
            match &e.hash {
                Err(HashError::Plaintext) => push(
                    Severity::Error,
                    format!(
                        "user {shown:?}: clear-text password (never accepted; hash it with \
                         `mqsec passwd import` or `add`)"
                    ),
                ),
                Err(err) => push(Severity::Error, format!("user {shown:?}: {err}")),
                Ok(h) => {
                    if let Some(w) = h.weakness() {
                        push(Severity::Warning, format!("user {shown:?}: {w}"));
                    }
                }
            }
        }
        out
    }

    /// A hash that costs what most entries of this file cost (same scheme and parameters; ties go
    /// to the costlier one), with a fixed salt and a digest no password produces in practice. The
    /// verifier checks it for unknown users so that they take as long as the users most entries
    /// belong to. An empty file (or one with no usable entry) gets argon2id at the defaults.
    pub fn stand_in_hash(&self) -> StoredHash {
        let mut counts: BTreeMap<CostClass, usize> = BTreeMap::new();
        for (_, e) in self.entries() {
            if let Ok(h) = &e.hash {
                *counts.entry(CostClass::of(h)).or_default() += 1;
            }
        }
        counts
            .into_iter()
            .max_by_key(|&(c, n)| (n, c))
            .map(|(c, _)| c)
            .unwrap_or(CostClass::Argon2id(0x13, Argon2Params::DEFAULT))
            .stand_in()
    }
}

/// What one verification costs: the scheme and its work parameters, ordered from cheap to costly
/// within a scheme so ties in [`PasswordFile::stand_in_hash`] pick the costlier one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum CostClass {
    Sha512,
    Pbkdf2Sha512(u32),
    Argon2id(u32, Argon2Params),
}

impl CostClass {
    fn of(h: &StoredHash) -> CostClass {
        match h {
            StoredHash::Argon2id {
                version, params, ..
            } => CostClass::Argon2id(*version, *params),
            StoredHash::Pbkdf2Sha512 { iterations, .. } => CostClass::Pbkdf2Sha512(*iterations),
            StoredHash::Sha512 { .. } => CostClass::Sha512,
        }
    }

    fn stand_in(self) -> StoredHash {
        let salt = DUMMY_SALT.to_vec();
        match self {
            CostClass::Argon2id(version, params) => StoredHash::Argon2id {
                version,
                params,
                salt,
                hash: vec![0; NEW_HASH_LEN],
            },
            CostClass::Pbkdf2Sha512(iterations) => StoredHash::Pbkdf2Sha512 {
                iterations,
                salt,
                hash: vec![0; 64],
            },
            CostClass::Sha512 => StoredHash::Sha512 {
                salt,
                hash: vec![0; 64],
            },
        }
    }
}

/// Lock `path`, read it (or start empty when it is missing and `create`), let `f` change it, and
/// write it back atomically with mode 0600 if anything changed. Hash before calling this: the lock
/// is held only for the read-modify-write, so concurrent writers wait milliseconds, not a hash.
pub fn update_file<T>(
    path: &Path,
    create: bool,
    f: impl FnOnce(&mut PasswordFile) -> T,
) -> Result<T, PasswdError> {
    let _lock = FileLock::acquire(path).map_err(|source| PasswdError::Lock {
        path: path.to_path_buf(),
        source,
    })?;
    let (mut file, original) = match read_limited(path) {
        Ok(bytes) => (PasswordFile::parse(&bytes), Some(bytes)),
        Err(e) if create && e.is_not_found() => (PasswordFile::default(), None),
        Err(e) => return Err(e),
    };
    let result = f(&mut file);
    let bytes = Zeroizing::new(file.to_bytes());
    let changed = original
        .as_ref()
        .is_none_or(|o| o.as_slice() != bytes.as_slice());
    if changed {
        fsutil::atomic_write(path, &bytes, MODE_SECRET).map_err(|source| PasswdError::Write {
            path: path.to_path_buf(),
            source,
        })?;
    }
    Ok(result)
}

/// Fixed salt of the stand-in hash; its digest (all zeros) is never a real output.
const DUMMY_SALT: [u8; 16] = *b"mqsec-dummy-salt";

/// The password check: `mqsec passwd verify` today, a broker's CONNECT once `serve` reads password
/// files.
pub struct Verifier {
    users: HashMap<String, Option<StoredHash>>,
    stand_in: StoredHash,
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verifier")
            .field("users", &self.users.len())
            .field("stand_in", &self.stand_in)
            .finish()
    }
}

impl Verifier {
    /// Build from a parsed file. The last entry of a user counts (as in Mosquitto); entries that
    /// cannot be verified (plaintext, unknown or malformed hash) never match.
    pub fn new(file: &PasswordFile) -> Verifier {
        let mut users = HashMap::new();
        for (_, e) in file.entries() {
            users.insert(e.user.clone(), e.hash.as_ref().ok().cloned());
        }
        Verifier {
            users,
            stand_in: file.stand_in_hash(),
        }
    }

    pub fn load(path: &Path) -> Result<Verifier, PasswdError> {
        Ok(Verifier::new(&PasswordFile::load(path)?))
    }

    pub fn user_count(&self) -> usize {
        self.users.len()
    }

    /// The stored hash of `user`, if it has a usable one.
    pub fn stored(&self, user: &str) -> Option<&StoredHash> {
        self.users.get(user).and_then(Option::as_ref)
    }

    /// Whether `password` is `user`'s. Blocking (one hash computation, tens of ms for argon2id at
    /// the default cost): call it from a blocking thread (`serve` uses its password pool).
    ///
    /// An unknown user or an unusable entry is checked against the file's stand-in hash, so it
    /// costs what most entries cost and timing does not tell it from a real user. A user whose
    /// entry has another scheme than most (a `$7$` left in an argon2id file) costs what that entry
    /// costs: timing can tell such a user exists. `passwd lint` flags every legacy line and
    /// rehashing them as argon2id ends it. Adding an argon2id to legacy checks would not hide them
    /// (their own hash still adds time) and made a Mosquitto-made file 20 times slower to log in
    /// with than Mosquitto is.
    pub fn verify(&self, user: &str, password: &[u8]) -> bool {
        match self.stored(user) {
            Some(h) => h.verify(password),
            None => {
                std::hint::black_box(self.stand_in.verify(password));
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Fast parameters for tests (allowed only with the weak-params escape hatch).
    const WEAK: Argon2Params = Argon2Params {
        memory_kib: 64,
        iterations: 1,
        parallelism: 1,
    };

    // The two worked examples in /work/shared/docs/formats.md.
    const ALICE_7: &str = "alice:$7$101$6kUX7bzF+AO30Ffn$lbYwSh4vKHECdRG6LTMiEOdG5GMiG+CvFj0/xrijSGbe0LAxiVUeEfKGwoyApO9bM8n2fkFYsgnic08jc8A0xQ==";
    const BOB_6: &str = "bob:$6$tAN4j5DoJMFOtFYy$8lCB/aATwqr1E8P7MI8w5yH79h+G4HjPK3ZNmrmKaFd5YRz5L8qz1SqGHvTwMsCMuAwRYpK0xYTMzS+z26bVYA==";

    fn entry_hash(line: &str) -> StoredHash {
        let f = PasswordFile::parse(line.as_bytes());
        let h = f.entries().next().unwrap().1.hash.clone().unwrap();
        h
    }

    #[test]
    fn formats_md_pbkdf2_example_verifies() {
        let h = entry_hash(ALICE_7);
        assert_eq!(h.scheme(), Scheme::Pbkdf2Sha512);
        assert!(matches!(
            &h,
            StoredHash::Pbkdf2Sha512 { iterations: 101, salt, hash } if salt.len() == 12 && hash.len() == 64
        ));
        assert!(h.verify(b"secret1"));
        assert!(!h.verify(b"secret2"));
        assert!(!h.verify(b""));
    }

    #[test]
    fn formats_md_sha512_example_verifies() {
        let h = entry_hash(BOB_6);
        assert_eq!(h.scheme(), Scheme::Sha512);
        assert!(h.verify(b"secret2"));
        assert!(!h.verify(b"secret1"));
    }

    #[test]
    fn pbkdf2_with_64_byte_salt_and_1000_iterations_verifies() {
        // Mosquitto 2.1's shape: 64-byte salt, 1000 iterations.
        let salt: Vec<u8> = (0u8..64).collect();
        let mut hash = [0u8; 64];
        pbkdf2::pbkdf2_hmac::<Sha512>(b"pw21", &salt, 1000, &mut hash);
        let line = format!("u:$7$1000${}${}", B64.encode(&salt), B64.encode(hash));
        let h = entry_hash(&line);
        assert!(h.verify(b"pw21"));
        assert!(!h.verify(b"pw2"));
    }

    #[test]
    fn new_hash_is_phc_argon2id_and_verifies() {
        let s = hash_password(b"hunter2", &WEAK).unwrap();
        assert!(s.starts_with("$argon2id$v=19$m=64,t=1,p=1$"), "{s}");
        let h = parse_hash(&s).unwrap();
        assert!(h.verify(b"hunter2"));
        assert!(!h.verify(b"hunter3"));
        // Two hashes of one password differ (random salt).
        assert_ne!(s, hash_password(b"hunter2", &WEAK).unwrap());
    }

    #[test]
    fn new_hash_verifies_with_the_argon2_crates_own_phc_verifier() {
        use argon2::password_hash::{PasswordHash, PasswordVerifier};
        let s = hash_password(b"interop", &WEAK).unwrap();
        let parsed = PasswordHash::new(&s).unwrap();
        assert!(Argon2::default()
            .verify_password(b"interop", &parsed)
            .is_ok());
        assert!(Argon2::default().verify_password(b"nope", &parsed).is_err());
    }

    #[test]
    fn argon2_crate_hash_with_64_byte_salt_verifies() {
        // Mosquitto 2.1 (libargon2) writes 64-byte salts and 64-byte hashes.
        let salt = [7u8; 64];
        let params = Params::new(64, 1, 1, Some(64)).unwrap();
        let mut out = [0u8; 64];
        Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
            .hash_password_into(b"m21", &salt, &mut out)
            .unwrap();
        let s = format!(
            "$argon2id$v=19$m=64,t=1,p=1${}${}",
            B64_NOPAD.encode(salt),
            B64_NOPAD.encode(out)
        );
        let h = parse_hash(&s).unwrap();
        assert!(h.verify(b"m21"));
        assert!(!h.verify(b"m22"));
    }

    #[test]
    fn default_params_meet_owasp_and_weak_ones_are_refused() {
        assert_eq!(Argon2Params::default(), Argon2Params::DEFAULT);
        let d = Argon2Params::DEFAULT;
        assert!(d.memory_kib >= 19456 && d.iterations >= 2 && d.parallelism >= 1);
        assert!(d.meets_owasp_minimum());
        assert_eq!(d.check(false), Ok(()));
        assert_eq!(WEAK.check(false), Err(ParamsError::BelowOwasp(WEAK)));
        assert_eq!(WEAK.check(true), Ok(()));
        let one_pass = Argon2Params {
            memory_kib: 47104,
            iterations: 1,
            parallelism: 1,
        };
        assert!(one_pass.meets_owasp_minimum());
        let low_mem = Argon2Params {
            memory_kib: 19455,
            iterations: 2,
            parallelism: 1,
        };
        assert!(!low_mem.meets_owasp_minimum());
        let zero_p = Argon2Params {
            parallelism: 0,
            ..d
        };
        assert!(matches!(
            zero_p.check(true),
            Err(ParamsError::Invalid { .. })
        ));
        let huge = Argon2Params {
            memory_kib: MAX_MEMORY_KIB + 1,
            ..d
        };
        assert!(matches!(huge.check(true), Err(ParamsError::Invalid { .. })));
    }

    #[test]
    fn parse_keeps_comments_and_unknown_lines_verbatim() {
        let text = "# users\r\nalice:$7$101$6kUX7bzF+AO30Ffn$lbYw\n\n  # indented\ngarbage line\nu:plain\nv:$5$xyz\n\u{ff}";
        let mut bytes = text.as_bytes().to_vec();
        bytes.push(0xff); // invalid UTF-8 on the last line
        let f = PasswordFile::parse(&bytes);
        let kinds: Vec<&'static str> = f
            .lines()
            .iter()
            .map(|l| match &l.kind {
                LineKind::Blank => "blank",
                LineKind::Comment => "comment",
                LineKind::Entry(_) => "entry",
                LineKind::Malformed(_) => "malformed",
            })
            .collect();
        assert_eq!(
            kinds,
            [
                "comment",
                "entry",
                "blank",
                "comment",
                "malformed",
                "entry",
                "entry",
                "malformed"
            ]
        );
        let mut expected = bytes.clone();
        expected.push(b'\n');
        assert_eq!(f.to_bytes(), expected);
        let numbers: Vec<usize> = f.lines().iter().map(|l| l.number).collect();
        assert_eq!(numbers, (1..=8).collect::<Vec<_>>());
        // alice's hash is truncated: an entry whose hash fails to decode.
        let alice = f.find("alice").unwrap();
        assert!(matches!(alice.hash, Err(HashError::Field { .. })));
        assert_eq!(f.find("u").unwrap().scheme, Scheme::Plaintext);
        assert_eq!(f.find("v").unwrap().scheme, Scheme::Unknown);
    }

    #[test]
    fn set_replaces_in_place_and_drops_duplicates_remove_removes_all() {
        let mut f = PasswordFile::parse(b"# c\na:x\nb:y\na:z\n# end\n");
        assert!(f.set("a", "$6$new"));
        assert_eq!(f.to_bytes(), b"# c\na:$6$new\nb:y\n# end\n");
        assert!(!f.set("c", "w"));
        assert_eq!(f.to_bytes(), b"# c\na:$6$new\nb:y\n# end\nc:w\n");
        assert_eq!(f.remove("b"), 1);
        assert_eq!(f.remove("b"), 0);
        assert_eq!(f.to_bytes(), b"# c\na:$6$new\n# end\nc:w\n");
        assert_eq!(f.lines()[2].number, 3);
    }

    #[test]
    fn lint_finds_each_kind_of_problem() {
        let good = hash_password(b"pw", &Argon2Params::DEFAULT).unwrap();
        let weak = hash_password(b"pw", &WEAK).unwrap();
        let text = format!(
            "# header\nok:{good}\nnocolon\nplain:secret\n{ALICE_7}\n{BOB_6}\nok:{good}\n\
             weak:{weak}\nsite/dev+1:{good}\nbad:$7$abc$AAAA$AAAA\ntab\tuser:{good}\n"
        );
        let f = PasswordFile::parse(text.as_bytes());
        let findings = f.lint();
        let at =
            |line: usize| -> Vec<&Finding> { findings.iter().filter(|x| x.line == line).collect() };
        assert!(at(1).is_empty() && at(2).is_empty());
        assert_eq!(at(3)[0].severity, Severity::Error);
        assert!(at(3)[0].message.contains("no ':'"));
        assert!(at(4)[0].message.contains("clear-text"));
        assert_eq!(at(5)[0].severity, Severity::Warning);
        assert!(at(5)[0].message.contains("101 iterations"));
        assert!(at(6)[0].message.contains("legacy $6$"));
        assert!(at(7)[0]
            .message
            .contains("duplicate user \"ok\" (first at line 2"));
        assert!(at(8)[0].message.contains("below the OWASP minimum"));
        assert!(at(9)[0].message.contains("'+', '/'"), "{:?}", at(9));
        assert!(at(10)[0].message.contains("iterations: expected a number"));
        assert!(at(11)[0].message.contains("control character"));
        assert_eq!(findings.len(), 9, "{findings:#?}");
    }

    #[test]
    fn usernames_are_validated() {
        assert_eq!(validate_username("alice"), Ok(()));
        assert_eq!(validate_username("dev/1+x"), Ok(()));
        assert_eq!(validate_username(""), Err(UsernameError::Empty));
        assert_eq!(validate_username("a:b"), Err(UsernameError::Colon));
        assert_eq!(validate_username("a\nb"), Err(UsernameError::Control));
        assert_eq!(validate_username("#a"), Err(UsernameError::LeadingHash));
        assert_eq!(validate_username(" a"), Err(UsernameError::Whitespace));
        assert_eq!(acl_unsafe_chars("a#b/c#"), vec!['#', '/']);
    }

    #[test]
    fn verifier_accepts_each_scheme_and_rejects_unknown_users() {
        let a2 = hash_password(b"pw-a", &WEAK).unwrap();
        // carol's first line is undecodable: the last line for a user counts, as in Mosquitto.
        let text = format!("{ALICE_7}\n{BOB_6}\ncarol:$6$x$y\ndave:plain\ncarol:{a2}\n");
        let v = Verifier::new(&PasswordFile::parse(text.as_bytes()));
        assert_eq!(
            CostClass::of(&v.stand_in),
            CostClass::Argon2id(0x13, WEAK),
            "the stand-in costs what the file's argon2id entry costs"
        );
        assert!(v.verify("alice", b"secret1"));
        assert!(!v.verify("alice", b"secret2"));
        assert!(v.verify("bob", b"secret2"));
        assert!(v.verify("carol", b"pw-a"));
        assert!(!v.verify("carol", b"pw-b"));
        // Plaintext entries never match, even with the "right" password.
        assert!(!v.verify("dave", b"plain"));
        assert!(!v.verify("nobody", b"secret1"));
        assert_eq!(v.user_count(), 4);
    }

    thread_local! {
        /// The hash checks this thread ran, by scheme and cost.
        pub(super) static WORK: std::cell::RefCell<Vec<CostClass>> = const { std::cell::RefCell::new(Vec::new()) };
    }

    fn work_of(f: impl FnOnce() -> bool) -> (bool, Vec<CostClass>) {
        WORK.with(|w| w.borrow_mut().clear());
        let r = f();
        (r, WORK.with(|w| w.borrow_mut().drain(..).collect()))
    }

    #[test]
    fn every_path_does_the_work_of_one_typical_check() {
        // Timing is too noisy on a shared CI machine to assert on; the work done is not.
        let h = hash_password(b"pw", &WEAK).unwrap();
        let h2 = hash_password(b"pw2", &WEAK).unwrap();
        let text = format!(
            "known:{h}
known2:{h2}
{ALICE_7}
{BOB_6}
plain:pw
odd:$9$x
"
        );
        let v = Verifier::new(&PasswordFile::parse(text.as_bytes()));
        let argon = vec![CostClass::Argon2id(0x13, WEAK)];
        assert_eq!(work_of(|| v.verify("known", b"pw")), (true, argon.clone()));
        assert_eq!(work_of(|| v.verify("known", b"no")), (false, argon.clone()));
        // Unknown users and unusable entries cost what most entries (argon2id here) cost.
        assert_eq!(
            work_of(|| v.verify("unknown", b"pw")),
            (false, argon.clone())
        );
        assert_eq!(work_of(|| v.verify("plain", b"pw")), (false, argon.clone()));
        assert_eq!(work_of(|| v.verify("odd", b"pw")), (false, argon));
        // Legacy entries cost their own check, nothing more.
        assert_eq!(
            work_of(|| v.verify("alice", b"secret1")),
            (true, vec![CostClass::Pbkdf2Sha512(101)])
        );
        assert_eq!(
            work_of(|| v.verify("bob", b"nope")),
            (false, vec![CostClass::Sha512])
        );
        // A Mosquitto-made file: unknown users cost one `$7$` check with its iterations, as in
        // Mosquitto (no argon2id that would make its logins 20 times slower than Mosquitto's).
        let mosq = Verifier::new(&PasswordFile::parse(
            format!("{ALICE_7}\n{BOB_6}\n").as_bytes(),
        ));
        assert_eq!(
            work_of(|| mosq.verify("nobody", b"pw")),
            (false, vec![CostClass::Pbkdf2Sha512(101)])
        );
        // A file without usable entries pays the default (OWASP) argon2id for everyone.
        let empty = Verifier::new(&PasswordFile::parse(b"plain:pw\n"));
        assert_eq!(
            work_of(|| empty.verify("nobody", b"pw")),
            (
                false,
                vec![CostClass::Argon2id(0x13, Argon2Params::DEFAULT)]
            )
        );
    }

    #[test]
    fn update_file_creates_0600_and_keeps_other_lines() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("pw");
        update_file(&p, true, |f| f.set("a", "$6$x")).unwrap();
        assert_eq!(fsutil::mode_of(&p), Some(0o600));
        std::fs::write(&p, "# keep\na:$6$x\n").unwrap();
        update_file(&p, false, |f| f.set("b", "$6$y")).unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"# keep\na:$6$x\nb:$6$y\n");
        let missing = dir.path().join("missing");
        let err = update_file(&missing, false, |f| f.remove("a")).unwrap_err();
        assert!(err.is_not_found());
        assert!(err.to_string().contains("missing: cannot read"));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn parse_never_panics_and_round_trips(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let f = PasswordFile::parse(&bytes);
            let _ = f.lint();
            let _ = Verifier::new(&f).user_count();
            let mut expected = bytes.clone();
            if !expected.is_empty() && !expected.ends_with(b"\n") {
                expected.push(b'\n');
            }
            prop_assert_eq!(f.to_bytes(), expected);
        }

        #[test]
        fn parse_hash_never_panics(
            s in "\\$(argon2id|7|6|x)\\$[-a-zA-Z0-9+/=,$]{0,120}",
        ) {
            // Decoded costs are within the caps, so verifying cannot explode.
            if let Ok(StoredHash::Argon2id { params, .. }) = parse_hash(&s) {
                prop_assert!(params.check(true).is_ok());
            }
        }

        #[test]
        fn parse_hash_never_panics_on_any_text(s in "\\PC{0,200}") {
            let _ = parse_hash(&s);
        }
    }
}
