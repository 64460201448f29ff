//! Access tokens (JWT, RFC 7519 with JWS compact serialization, RFC 7515) -> identity and
//! permissions.
//!
//! A listener with `token_key_file` or `token_jwks_file` verifies tokens presented in the CONNECT
//! password (or, in MQTT 5, as the authentication data of the enhanced authentication method
//! [`AUTH_METHOD`]). What is checked, in order: the size, the compact shape, the header's `alg`
//! against the pinned list (`none` never), the key (by `kid` in a JWK set) and that the
//! algorithm fits its type (an HS* token is never checked against an RSA public key), the
//! signature, then `exp` (required), `nbf`, `iat` with the leeway, `aud` and `iss`, and the
//! username claim. Refusals carry a [`TokenError`] whose text names the reason, never the token.
//!
//! Verification runs where the CONNECT is handled: it costs microseconds (an HMAC, or one
//! signature check of a small message), less than a hop to the password pool would.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, JwkSet, PublicKeyUse};
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey, DecodingKeyKind, Validation};
use parking_lot::Mutex;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::config::model::{TokenConfig, TokenKeySource};
use crate::security::acl::ClaimRules;
use crate::security::cache::{BoundedCache, CacheKey};

/// The MQTT 5 enhanced authentication method that carries a token (CONNECT and AUTH).
pub const AUTH_METHOD: &str = "JWT";
/// Longest token accepted: a device token with a few dozen filters is well under 2 KiB; this
/// bounds the JSON a peer can make the broker parse before any signature is checked.
pub const MAX_TOKEN_LEN: usize = 8 * 1024;
/// Largest key or JWK set file read.
const MAX_KEY_FILE: u64 = 1024 * 1024;
/// Shortest HMAC secret accepted (RFC 7518 3.2: at least the hash size; 256 bits for HS256).
pub const MIN_HMAC_SECRET: usize = 32;

/// Why a token is refused (for logs and the security event log; the client only learns the
/// CONNACK or DISCONNECT code).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("token longer than {MAX_TOKEN_LEN} bytes")]
    TooLarge,
    #[error("not a JWT in compact form")]
    Malformed,
    #[error("unsigned token (alg none)")]
    AlgNone,
    #[error("algorithm {0} not accepted")]
    Algorithm(String),
    #[error("algorithm {0} does not fit the key (key confusion refused)")]
    KeyMismatch(String),
    #[error("no key for this token ({0})")]
    UnknownKey(String),
    #[error("bad signature")]
    BadSignature,
    #[error("expired")]
    Expired,
    #[error("not yet valid (nbf)")]
    NotYetValid,
    #[error("issued in the future (iat)")]
    IssuedInFuture,
    #[error("wrong audience")]
    Audience,
    #[error("wrong issuer")]
    Issuer,
    #[error("missing claim {0}")]
    MissingClaim(String),
    #[error("bad claim: {0}")]
    BadClaim(String),
    #[error("username does not match the token's {0} claim")]
    UsernameMismatch(String),
}

/// What a verified token grants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenGrant {
    /// The username claim's value.
    pub username: String,
    /// When the token stops being accepted (its `exp` plus the leeway), Unix seconds.
    pub valid_until: u64,
    /// The `acl`/`roles` claims, compiled; `None` when the token carries neither (the client is
    /// then judged like a password client of that username).
    pub scope: Option<Arc<ClaimRules>>,
    /// The key that verified it (`kid`, or a fingerprint): a reload that removes the key cuts
    /// off the clients it admitted.
    pub key_id: Arc<str>,
}

/// A connected client's token, replaced in place by a v5 re-authentication.
pub struct TokenSession {
    grant: ArcSwap<TokenGrant>,
    epoch: AtomicU64,
    /// Whether CONNECT used the enhanced authentication method (only then may the client
    /// re-authenticate with AUTH).
    enhanced: AtomicBool,
}

impl TokenSession {
    pub fn new(grant: TokenGrant) -> TokenSession {
        TokenSession {
            grant: ArcSwap::from_pointee(grant),
            epoch: AtomicU64::new(1),
            enhanced: AtomicBool::new(false),
        }
    }

    pub fn current(&self) -> Arc<TokenGrant> {
        self.grant.load_full()
    }

    /// Install a refreshed token; permissions compiled from the old one become stale.
    pub fn replace(&self, grant: TokenGrant) {
        self.grant.store(Arc::new(grant));
        self.epoch.fetch_add(1, Ordering::AcqRel);
    }

    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    pub fn set_enhanced(&self) {
        self.enhanced.store(true, Ordering::Release);
    }

    pub fn enhanced(&self) -> bool {
        self.enhanced.load(Ordering::Acquire)
    }
}

impl std::fmt::Debug for TokenSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let g = self.current();
        f.debug_struct("TokenSession")
            .field("username", &g.username)
            .field("valid_until", &g.valid_until)
            .field("key_id", &g.key_id)
            .finish()
    }
}

/// Two identities hold the same token session only if it is the same object.
impl PartialEq for TokenSession {
    fn eq(&self, other: &Self) -> bool {
        std::ptr::eq(self, other)
    }
}

impl Eq for TokenSession {}

/// Whether a CONNECT password is a token rather than a password: three base64url parts (the
/// JWS compact form) whose first decodes to a JSON object. A password-file password of that
/// shape would be taken for a token; `mqsec passwd` never generates one.
pub fn looks_like_jwt(p: &[u8]) -> bool {
    if p.len() > MAX_TOKEN_LEN || p.iter().filter(|&&b| b == b'.').count() != 2 {
        return false;
    }
    let b64 = |b: &u8| b.is_ascii_alphanumeric() || *b == b'-' || *b == b'_' || *b == b'.';
    if !p.iter().all(b64) {
        return false;
    }
    let head = p.split(|&b| b == b'.').next().unwrap_or(&[]);
    match URL_SAFE_NO_PAD.decode(head) {
        Ok(h) => h.trim_ascii_start().first() == Some(&b'{'),
        Err(_) => false,
    }
}

pub fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn parse_alg(name: &str) -> Option<Algorithm> {
    name.parse().ok()
}

fn family_of(alg: Algorithm) -> AlgorithmFamily {
    use Algorithm::*;
    match alg {
        HS256 | HS384 | HS512 => AlgorithmFamily::Hmac,
        ES256 | ES384 => AlgorithmFamily::Ec,
        EdDSA => AlgorithmFamily::Ed,
        _ => AlgorithmFamily::Rsa,
    }
}

/// One verification key and the algorithms it may verify.
struct VerifyKey {
    id: Arc<str>,
    key: DecodingKey,
    algs: Vec<Algorithm>,
}

/// A listener's token verifier: its keys and the rules a token must meet, and the tokens it
/// accepted lately.
pub struct TokenVerifier {
    /// Tokens verified before, by HMAC-SHA256 under a per-verifier random key (never the token):
    /// a fleet reconnecting with the same tokens skips the signature check, as password logins
    /// skip argon2 (`auth_cache_size`). Only successes; the times are checked again on each use,
    /// and a reload starts a new verifier with an empty cache.
    cache: Mutex<BoundedCache<TokenGrant>>,
    cache_key: Zeroizing<[u8; 32]>,
    keys: Vec<VerifyKey>,
    by_kid: HashMap<String, usize>,
    jwks: bool,
    accepted: Vec<Algorithm>,
    audience: Option<String>,
    issuer: Option<String>,
    leeway: u64,
    username_claim: String,
}

impl std::fmt::Debug for TokenVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenVerifier")
            .field(
                "keys",
                &self.keys.iter().map(|k| &*k.id).collect::<Vec<_>>(),
            )
            .field("accepted", &self.accepted)
            .finish()
    }
}

fn fingerprint(bytes: &[u8]) -> Arc<str> {
    let d = Sha256::digest(bytes);
    format!("sha256:{}", hex::encode(&d[..8])).into()
}

fn read_capped(path: &Path, what: &str) -> Result<Zeroizing<Vec<u8>>, String> {
    let f = std::fs::File::open(path).map_err(|e| format!("cannot read {what}: {e}"))?;
    let mut buf = Zeroizing::new(Vec::new());
    if !crate::fsutil::read_capped(f, MAX_KEY_FILE, &mut buf)
        .map_err(|e| format!("cannot read {what}: {e}"))?
    {
        return Err(format!("{what} is larger than {MAX_KEY_FILE} bytes"));
    }
    Ok(buf)
}

/// A public key PEM (SPKI `PUBLIC KEY`, PKCS#1 `RSA PUBLIC KEY`, or a `CERTIFICATE`, whose
/// key is taken) and the algorithms its type allows.
fn pem_public_key(pem: &[u8]) -> Result<(DecodingKey, Vec<Algorithm>), String> {
    if pem.windows(11).any(|w| w == b"PRIVATE KEY") {
        // The broker needs only the public half; a private key here would sit in one more
        // place it does not belong.
        return Err(
            "a private key: give the public key (openssl pkey -in KEY -pubout) or the certificate"
                .into(),
        );
    }
    if let Ok(k) = DecodingKey::from_ec_pem(pem) {
        // An uncompressed point: 65 bytes on P-256, 97 on P-384.
        let alg = match k.kind() {
            DecodingKeyKind::SecretOrDer(p) if p.len() == 97 => Algorithm::ES384,
            _ => Algorithm::ES256,
        };
        return Ok((k, vec![alg]));
    }
    if let Ok(k) = DecodingKey::from_ed_pem(pem) {
        return Ok((k, vec![Algorithm::EdDSA]));
    }
    if let Ok(k) = DecodingKey::from_rsa_pem(pem) {
        use Algorithm::*;
        return Ok((k, vec![RS256, RS384, RS512, PS256, PS384, PS512]));
    }
    Err("not a public key PEM this broker can use (RSA, EC P-256/P-384 or Ed25519)".into())
}

impl TokenVerifier {
    /// Load the keys a listener's `token_*` settings name. Errors name the file (and the
    /// option's line) and say what is wrong.
    pub fn load(cfg: &TokenConfig, cache_size: usize) -> Result<TokenVerifier, String> {
        // Every message starts with the option's FILE:LINE, then names the key file.
        Self::load_keys(cfg, cache_size).map_err(|e| format!("{}: {e}", cfg.key.file().origin))
    }

    fn load_keys(cfg: &TokenConfig, cache_size: usize) -> Result<TokenVerifier, String> {
        let file = cfg.key.file();
        let name = file.path.display();
        let accepted: Option<Vec<Algorithm>> = cfg
            .algorithms
            .as_ref()
            .map(|a| a.value.iter().filter_map(|n| parse_alg(n)).collect());
        let mut keys = Vec::new();
        let mut by_kid = HashMap::new();
        let jwks = matches!(cfg.key, TokenKeySource::Jwks(_));
        let bytes =
            read_capped(&file.path, "token key file").map_err(|e| format!("{name}: {e}"))?;
        if jwks {
            let set: JwkSet = serde_json::from_slice(&bytes)
                .map_err(|e| format!("{name}: not a JWK set: {e}"))?;
            for (i, jwk) in set.keys.iter().enumerate() {
                let at = || match &jwk.common.key_id {
                    Some(k) => format!("{name}: key {i} (kid {k:?})"),
                    None => format!("{name}: key {i}"),
                };
                if matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption)) {
                    continue;
                }
                let key = DecodingKey::from_jwk(jwk).map_err(|e| format!("{}: {e}", at()))?;
                let family = key.family();
                if family == AlgorithmFamily::Hmac {
                    let len = key.try_get_as_bytes().map_or(0, <[u8]>::len);
                    if len < MIN_HMAC_SECRET {
                        return Err(format!(
                            "{}: an HMAC key shorter than {MIN_HMAC_SECRET} bytes",
                            at()
                        ));
                    }
                }
                let own: Vec<Algorithm> = match jwk.common.key_algorithm {
                    // An encryption algorithm (RSA-OAEP...) names no signing key.
                    Some(a) => match parse_alg(&format!("{a:?}")) {
                        Some(a) => vec![a],
                        None => continue,
                    },
                    None => match &jwk.algorithm {
                        AlgorithmParameters::EllipticCurve(p) => match p.curve {
                            EllipticCurve::P384 => vec![Algorithm::ES384],
                            EllipticCurve::P256 => vec![Algorithm::ES256],
                            _ => continue,
                        },
                        _ => family.algorithms().to_vec(),
                    },
                };
                let algs: Vec<Algorithm> = own
                    .into_iter()
                    .filter(|a| family_of(*a) == family)
                    .filter(|a| accepted.as_ref().is_none_or(|acc| acc.contains(a)))
                    .collect();
                if algs.is_empty() {
                    continue;
                }
                let id: Arc<str> = match &jwk.common.key_id {
                    Some(k) => {
                        if by_kid.insert(k.clone(), keys.len()).is_some() {
                            return Err(format!("{}: kid {k:?} appears twice", at()));
                        }
                        format!("kid:{k}").into()
                    }
                    None => fingerprint(&serde_json::to_vec(jwk).unwrap_or_default()),
                };
                keys.push(VerifyKey { id, key, algs });
            }
            if keys.is_empty() {
                return Err(format!(
                    "{name}: no signing key in this JWK set fits token_algorithms"
                ));
            }
        } else {
            let trimmed = bytes.trim_ascii();
            let (key, algs) = if trimmed.starts_with(b"-----BEGIN") {
                pem_public_key(trimmed).map_err(|e| format!("{name}: {e}"))?
            } else {
                if trimmed.len() < MIN_HMAC_SECRET {
                    return Err(format!(
                        "{name}: an HMAC secret must be at least {MIN_HMAC_SECRET} bytes (RFC 7518 3.2); this one is {}",
                        trimmed.len()
                    ));
                }
                let k = DecodingKey::from_secret(trimmed).map_err(|e| format!("{name}: {e}"))?;
                use Algorithm::*;
                (k, vec![HS256, HS384, HS512])
            };
            let fits: Vec<Algorithm> = match &accepted {
                Some(acc) => algs.iter().copied().filter(|a| acc.contains(a)).collect(),
                // Without token_algorithms: the key type's usual algorithm only.
                None => algs.first().copied().into_iter().collect(),
            };
            if fits.is_empty() {
                let at = cfg.algorithms.as_ref().map(|a| a.at.to_string());
                return Err(format!(
                    "{name}: token_algorithms ({}) allows none of {} for this key",
                    at.unwrap_or_default(),
                    algs.iter()
                        .map(|a| format!("{a:?}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
            keys.push(VerifyKey {
                id: fingerprint(trimmed),
                key,
                algs: fits,
            });
        }
        let mut all: Vec<Algorithm> = Vec::new();
        for k in &keys {
            for a in &k.algs {
                if !all.contains(a) {
                    all.push(*a);
                }
            }
        }
        let mut cache_key = Zeroizing::new([0u8; 32]);
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut cache_key[..]);
        Ok(TokenVerifier {
            cache: Mutex::new(BoundedCache::new(cache_size)),
            cache_key,
            keys,
            by_kid,
            jwks,
            accepted: all,
            audience: cfg.audience.clone(),
            issuer: cfg.issuer.clone(),
            leeway: cfg.leeway.as_secs(),
            username_claim: cfg.username_claim.clone(),
        })
    }

    /// Whether the key that verified a token (its [`TokenGrant::key_id`]) is still here.
    pub fn has_key(&self, id: &str) -> bool {
        self.keys.iter().any(|k| &*k.id == id)
    }

    pub fn key_count(&self) -> usize {
        self.keys.len()
    }

    /// The algorithms some key here verifies.
    pub fn algorithm_names(&self) -> Vec<String> {
        self.accepted.iter().map(|a| format!("{a:?}")).collect()
    }

    pub fn username_claim(&self) -> &str {
        &self.username_claim
    }

    /// Verify a token and say what it grants. `username` is the CONNECT username: when given
    /// (and not empty) it must equal the username claim.
    pub fn verify(&self, token: &[u8], username: Option<&str>) -> Result<TokenGrant, TokenError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(TokenError::TooLarge);
        }
        let key = self.cache_key_of(token);
        let hit = self.cache.lock().get(&key).cloned();
        let grant = match hit {
            Some(g) if g.valid_until >= now_unix() => g,
            Some(_) => {
                self.cache.lock().remove(&key);
                return Err(TokenError::Expired);
            }
            None => {
                let g = self.verify_uncached(token)?;
                self.cache.lock().insert(key, g.clone());
                g
            }
        };
        if let Some(u) = username.filter(|u| !u.is_empty()) {
            if u != grant.username {
                return Err(TokenError::UsernameMismatch(self.username_claim.clone()));
            }
        }
        Ok(grant)
    }

    fn cache_key_of(&self, token: &[u8]) -> CacheKey {
        use hmac::{Hmac, Mac};
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.cache_key[..])
            .unwrap_or_else(|_| unreachable!("HMAC takes a key of any length"));
        mac.update(token);
        mac.finalize().into_bytes().into()
    }

    /// The full check (everything but the CONNECT username).
    fn verify_uncached(&self, token: &[u8]) -> Result<TokenGrant, TokenError> {
        let text = std::str::from_utf8(token).map_err(|_| TokenError::Malformed)?;
        let header = text.split('.').next().ok_or(TokenError::Malformed)?;
        let header: Map<String, Value> = URL_SAFE_NO_PAD
            .decode(header)
            .ok()
            .and_then(|h| serde_json::from_slice(&h).ok())
            .ok_or(TokenError::Malformed)?;
        let alg_name = header
            .get("alg")
            .and_then(Value::as_str)
            .ok_or(TokenError::Malformed)?;
        if alg_name.eq_ignore_ascii_case("none") {
            return Err(TokenError::AlgNone);
        }
        let alg = parse_alg(alg_name)
            .filter(|a| self.accepted.contains(a))
            .ok_or_else(|| TokenError::Algorithm(alg_name.chars().take(16).collect()))?;
        let key = match header.get("kid") {
            Some(Value::String(kid)) if self.jwks => {
                self.by_kid
                    .get(kid)
                    .map(|&i| &self.keys[i])
                    .ok_or_else(|| TokenError::UnknownKey("unknown kid".into()))?
            }
            Some(_) if self.jwks => return Err(TokenError::Malformed),
            _ if self.keys.len() == 1 => &self.keys[0],
            _ => return Err(TokenError::UnknownKey("no kid".into())),
        };
        if !key.algs.contains(&alg) || key.key.family() != family_of(alg) {
            return Err(TokenError::KeyMismatch(format!("{alg:?}")));
        }
        let mut v = Validation::new(alg);
        v.leeway = self.leeway;
        v.validate_exp = true;
        v.validate_nbf = true;
        let mut required = vec!["exp"];
        if let Some(a) = &self.audience {
            v.set_audience(&[a]);
            required.push("aud");
        }
        if let Some(i) = &self.issuer {
            v.set_issuer(&[i]);
            required.push("iss");
        }
        v.set_required_spec_claims(&required);
        let data =
            jsonwebtoken::decode::<Map<String, Value>>(token, &key.key, &v).map_err(|e| {
                use jsonwebtoken::errors::ErrorKind as K;
                match e.kind() {
                    K::InvalidSignature => TokenError::BadSignature,
                    K::ExpiredSignature => TokenError::Expired,
                    K::ImmatureSignature => TokenError::NotYetValid,
                    K::InvalidAudience => TokenError::Audience,
                    K::InvalidIssuer => TokenError::Issuer,
                    K::MissingRequiredClaim(c) => TokenError::MissingClaim(c.clone()),
                    K::InvalidClaimFormat(c) => TokenError::BadClaim(c.clone()),
                    K::InvalidAlgorithm => TokenError::KeyMismatch(format!("{alg:?}")),
                    _ => TokenError::Malformed,
                }
            })?;
        let claims = data.claims;
        let now = now_unix();
        if let Some(iat) = claims.get("iat") {
            let iat = iat
                .as_u64()
                .ok_or_else(|| TokenError::BadClaim("iat".into()))?;
            if iat > now.saturating_add(self.leeway) {
                return Err(TokenError::IssuedInFuture);
            }
        }
        let exp = claims
            .get("exp")
            .and_then(Value::as_u64)
            .ok_or_else(|| TokenError::BadClaim("exp".into()))?;
        let user = match claims.get(&self.username_claim) {
            Some(Value::String(u)) if !u.is_empty() => u.clone(),
            Some(_) => return Err(TokenError::BadClaim(self.username_claim.clone())),
            None => return Err(TokenError::MissingClaim(self.username_claim.clone())),
        };
        Ok(TokenGrant {
            username: user,
            valid_until: exp.saturating_add(self.leeway),
            scope: scope_of(&claims)?.map(Arc::new),
            key_id: key.id.clone(),
        })
    }
}

/// The `acl` and `roles` claims, compiled (`None` when the token has neither).
pub fn scope_of(claims: &Map<String, Value>) -> Result<Option<ClaimRules>, TokenError> {
    let acl = claims.get("acl");
    let roles = claims.get("roles");
    if acl.is_none() && roles.is_none() {
        return Ok(None);
    }
    let strings = |v: Option<&Value>, what: &str| -> Result<Vec<String>, TokenError> {
        match v {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::Array(a)) => a
                .iter()
                .map(|x| {
                    x.as_str()
                        .map(str::to_string)
                        .ok_or_else(|| TokenError::BadClaim(format!("{what}: expected strings")))
                })
                .collect(),
            Some(_) => Err(TokenError::BadClaim(format!("{what}: expected a list"))),
        }
    };
    let (publish, subscribe) = match acl {
        None | Some(Value::Null) => (Vec::new(), Vec::new()),
        Some(Value::Object(o)) => {
            if let Some(k) = o.keys().find(|k| *k != "pub" && *k != "sub") {
                let k: String = k.chars().take(32).collect();
                return Err(TokenError::BadClaim(format!(
                    "acl: unknown key {k:?} (expected pub, sub)"
                )));
            }
            (
                strings(o.get("pub"), "acl.pub")?,
                strings(o.get("sub"), "acl.sub")?,
            )
        }
        Some(_) => return Err(TokenError::BadClaim("acl: expected an object".into())),
    };
    let roles = strings(roles, "roles")?;
    ClaimRules::new(&publish, &subscribe, roles)
        .map(Some)
        .map_err(TokenError::BadClaim)
}

/// What `gen-token` signs.
#[derive(Debug, Clone, Default)]
pub struct MintRequest {
    pub subject: String,
    pub audience: Option<String>,
    pub issuer: Option<String>,
    pub publish: Vec<String>,
    pub subscribe: Vec<String>,
    pub roles: Vec<String>,
    pub ttl_secs: u64,
    pub kid: Option<String>,
    /// The claim that carries `subject` (the broker's `token_username_claim`).
    pub username_claim: String,
}

/// Sign a token. `key` is the secret (HS*; surrounding whitespace trimmed) or a private key
/// PEM (RS*/PS*: RSA; ES256/ES384: EC PKCS#8; EdDSA: Ed25519 PKCS#8).
pub fn mint(alg: Algorithm, key: &[u8], req: &MintRequest) -> Result<String, String> {
    use jsonwebtoken::EncodingKey;
    let key = key.trim_ascii();
    let enc = match family_of(alg) {
        AlgorithmFamily::Hmac => {
            if key.starts_with(b"-----BEGIN") {
                return Err(format!(
                    "{alg:?} needs a shared secret file, not a PEM key (use ES256, RS256 or EdDSA with a private key)"
                ));
            }
            if key.len() < MIN_HMAC_SECRET {
                return Err(format!(
                    "the secret must be at least {MIN_HMAC_SECRET} bytes (RFC 7518 3.2); this one is {}",
                    key.len()
                ));
            }
            EncodingKey::from_secret(key)
        }
        AlgorithmFamily::Rsa => EncodingKey::from_rsa_pem(key),
        AlgorithmFamily::Ec => EncodingKey::from_ec_pem(key),
        AlgorithmFamily::Ed => EncodingKey::from_ed_pem(key),
    }
    .map_err(|e| format!("the key does not fit {alg:?}: {e}"))?;
    // The filters go through the same checks the broker applies to a token's claims.
    ClaimRules::new(&req.publish, &req.subscribe, req.roles.clone())?;
    let now = now_unix();
    let mut claims = Map::new();
    claims.insert(req.username_claim.clone(), Value::from(req.subject.clone()));
    claims.insert("iat".into(), Value::from(now));
    claims.insert("exp".into(), Value::from(now.saturating_add(req.ttl_secs)));
    if let Some(a) = &req.audience {
        claims.insert("aud".into(), Value::from(a.clone()));
    }
    if let Some(i) = &req.issuer {
        claims.insert("iss".into(), Value::from(i.clone()));
    }
    if !req.publish.is_empty() || !req.subscribe.is_empty() {
        let mut acl = Map::new();
        acl.insert("pub".into(), Value::from(req.publish.clone()));
        acl.insert("sub".into(), Value::from(req.subscribe.clone()));
        claims.insert("acl".into(), Value::Object(acl));
    }
    if !req.roles.is_empty() {
        claims.insert("roles".into(), Value::from(req.roles.clone()));
    }
    let mut header = jsonwebtoken::Header::new(alg);
    header.kid = req.kid.clone();
    jsonwebtoken::encode(&header, &claims, &enc).map_err(|e| format!("cannot sign: {e}"))
}

/// Read a token's claims WITHOUT checking its signature or times (`acl-check --token`, which
/// answers what the token would be allowed to do if it were accepted).
pub fn unverified_claims(token: &[u8]) -> Result<Map<String, Value>, TokenError> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(TokenError::TooLarge);
    }
    let text = std::str::from_utf8(token).map_err(|_| TokenError::Malformed)?;
    let mut parts = text.split('.');
    let (Some(_), Some(payload), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(TokenError::Malformed);
    };
    URL_SAFE_NO_PAD
        .decode(payload)
        .ok()
        .and_then(|p| serde_json::from_slice(&p).ok())
        .ok_or(TokenError::Malformed)
}

#[cfg(test)]
#[path = "tokens_tests.rs"]
mod tests;
