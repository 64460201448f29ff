//! The payload envelope: encrypt/decrypt (XChaCha20-Poly1305) and sign/verify (HMAC-SHA256) MQTT
//! payloads with shared keys, end to end. `docs/payload-envelope.md` specifies the bytes.
//!
//! The API `serve` and the commands use:
//! - [`seal`] / [`open`]: encrypt and decrypt with a [`KeyRing`] (newest key seals, the envelope's
//!   key id picks the key that opens; keys are never tried one after another);
//! - [`sign`] / [`verify`]: the integrity-only variant, payload in the clear;
//! - [`looks_like_envelope`]: a keyless check to refuse plaintext on topics that must carry
//!   envelopes; [`parse`] to read the public header (algorithm, key id, timestamp).
//!
//! `open`/`verify` check everything (structure, key id, topic binding, tag, age) before they return
//! a single byte of payload.

mod aead;
pub mod envelope;
pub mod keys;
mod mac;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub use envelope::{
    from_base64, looks_like_envelope, parse, to_base64, Algorithm, Envelope, FormatError, Header,
    MAX_ENVELOPE_LEN, MAX_PAYLOAD_LEN, MAX_TOPIC_LEN, NONCE_LEN,
};
pub use keys::{Key, KeyFileError, KeyFileWarning, KeyId, KeyRing, KEY_FILE_HEADER};

use rand::RngCore;

/// How far in the future (by the receiver's clock) a timestamp may be when an age limit is
/// enforced: 5 minutes of clock skew between devices.
pub const MAX_FUTURE_SKEW: Duration = Duration::from_secs(300);

/// Why a topic cannot be bound into an envelope.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TopicError {
    #[error("the topic is empty (leave out --topic to seal without one)")]
    Empty,
    #[error("the topic is {0} bytes, more than MQTT's 65535")]
    TooLong(usize),
    #[error("a topic name cannot hold the wildcards + or #")]
    Wildcard,
    #[error("a topic name cannot hold the NUL character")]
    Nul,
}

fn check_topic(topic: Option<&str>) -> Result<(), TopicError> {
    let Some(t) = topic else { return Ok(()) };
    if t.is_empty() {
        Err(TopicError::Empty)
    } else if t.len() > MAX_TOPIC_LEN {
        Err(TopicError::TooLong(t.len()))
    } else if t.contains(['+', '#']) {
        Err(TopicError::Wildcard)
    } else if t.contains('\0') {
        Err(TopicError::Nul)
    } else {
        Ok(())
    }
}

/// Why a payload could not be sealed or signed.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error("the payload is {len} bytes, more than the {max}-byte limit")]
    TooLarge { len: usize, max: usize },
    #[error("invalid --topic: {0}")]
    Topic(#[from] TopicError),
    #[error("the operating system's random generator failed: {0}")]
    Random(rand::Error),
    #[error("the cipher refused the payload length")]
    Cipher,
}

/// Why an envelope was rejected. Every variant means: no payload was released.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("{0}")]
    Format(#[from] FormatError),
    #[error("invalid --topic: {0}")]
    Topic(#[from] TopicError),
    #[error("envelope is {found}; {hint}", found = found.name())]
    WrongAlgorithm {
        found: Algorithm,
        hint: &'static str,
    },
    #[error("no key with id '{0}' in the key file (the envelope names that key)")]
    UnknownKeyId(String),
    #[error("envelope is bound to a topic, but no --topic was given")]
    TopicMissing,
    #[error("envelope is not bound to a topic, but --topic was given (refusing an unbound envelope where a bound one is expected)")]
    TopicNotBound,
    #[error("authentication failed with key '{0}': the envelope was modified, sealed for another topic, or made with a different key of that id")]
    Authentication(String),
    #[error("envelope is too old: sealed {age}s ago, --max-age allows {max}s")]
    Expired { age: u64, max: u64 },
    #[error(
        "envelope timestamp is {ahead}s in the future (more than the {skew}s clock skew allowed)"
    )]
    FromTheFuture { ahead: u64, skew: u64 },
}

/// An authenticated envelope's contents.
#[derive(Debug)]
pub struct Opened {
    /// The plaintext (AEAD) or the signed payload (MAC).
    pub payload: Vec<u8>,
    pub key_id: KeyId,
    /// The sender's timestamp, seconds since the Unix epoch (authenticated).
    pub timestamp: u64,
    pub algorithm: Algorithm,
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Encrypt `plaintext` with the ring's newest key, bound to `topic` when given.
pub fn seal(ring: &KeyRing, topic: Option<&str>, plaintext: &[u8]) -> Result<Vec<u8>, SealError> {
    let mut nonce = [0u8; NONCE_LEN];
    // ThreadRng is a CSPRNG (ChaCha12) seeded from the OS and reseeded every 64 KiB and after a
    // fork; it saves a getrandom syscall per message, a tenth of the cost of a small seal.
    // 192-bit random nonces make a collision negligible even at 2^64 messages per key.
    rand::thread_rng()
        .try_fill_bytes(&mut nonce)
        .map_err(SealError::Random)?;
    seal_with(ring.newest(), topic, plaintext, &nonce, now_secs())
}

/// Sign `payload` (HMAC-SHA256, payload stays readable) with the ring's newest key.
pub fn sign(ring: &KeyRing, topic: Option<&str>, payload: &[u8]) -> Result<Vec<u8>, SealError> {
    sign_with(ring.newest(), topic, payload, now_secs())
}

/// Decrypt and authenticate an AEAD envelope. `max_age` enables the age check (and the future
/// check, see [`MAX_FUTURE_SKEW`]); without it the timestamp is authenticated but not judged.
pub fn open(
    ring: &KeyRing,
    topic: Option<&str>,
    envelope: &[u8],
    max_age: Option<Duration>,
) -> Result<Opened, OpenError> {
    open_at(ring, topic, envelope, max_age, now_secs())
}

/// Verify a MAC envelope and return its payload. Same checks as [`open`].
pub fn verify(
    ring: &KeyRing,
    topic: Option<&str>,
    envelope: &[u8],
    max_age: Option<Duration>,
) -> Result<Opened, OpenError> {
    verify_at(ring, topic, envelope, max_age, now_secs())
}

/// [`seal`] with a caller-chosen nonce and timestamp, for test vectors only: reusing a nonce with
/// one key destroys confidentiality. The CLI never takes a nonce.
#[doc(hidden)]
pub fn seal_with(
    key: &Key,
    topic: Option<&str>,
    plaintext: &[u8],
    nonce: &[u8; NONCE_LEN],
    timestamp: u64,
) -> Result<Vec<u8>, SealError> {
    check_sizes(topic, plaintext)?;
    let alg = Algorithm::XChaCha20Poly1305;
    let id = key.id().as_str();
    let mut out =
        Vec::with_capacity(envelope::PREFIX_LEN + id.len() + 8 + NONCE_LEN + plaintext.len() + 16);
    let hlen = envelope::encode_header(&mut out, alg, topic.is_some(), id, timestamp, Some(nonce));
    let aad = envelope::aad(&out[..hlen], topic);
    out.extend_from_slice(plaintext);
    let tag = aead::seal_in_place(key.secret(), nonce, &aad, &mut out[hlen..])
        .ok_or(SealError::Cipher)?;
    out.extend_from_slice(&tag);
    Ok(out)
}

/// [`sign`] with a caller-chosen timestamp (test vectors).
#[doc(hidden)]
pub fn sign_with(
    key: &Key,
    topic: Option<&str>,
    payload: &[u8],
    timestamp: u64,
) -> Result<Vec<u8>, SealError> {
    check_sizes(topic, payload)?;
    let id = key.id().as_str();
    let mut out = Vec::with_capacity(envelope::PREFIX_LEN + id.len() + 8 + payload.len() + 32);
    let hlen = envelope::encode_header(
        &mut out,
        Algorithm::HmacSha256,
        topic.is_some(),
        id,
        timestamp,
        None,
    );
    let tag = mac::tag(key.secret(), &out[..hlen], topic, payload);
    out.extend_from_slice(payload);
    out.extend_from_slice(&tag);
    Ok(out)
}

fn check_sizes(topic: Option<&str>, payload: &[u8]) -> Result<(), SealError> {
    check_topic(topic)?;
    if payload.len() > MAX_PAYLOAD_LEN {
        return Err(SealError::TooLarge {
            len: payload.len(),
            max: MAX_PAYLOAD_LEN,
        });
    }
    Ok(())
}

/// [`open`] with the receiver's clock given (tests).
#[doc(hidden)]
pub fn open_at(
    ring: &KeyRing,
    topic: Option<&str>,
    envelope: &[u8],
    max_age: Option<Duration>,
    now: u64,
) -> Result<Opened, OpenError> {
    let (env, key) = precheck(ring, topic, envelope, Algorithm::XChaCha20Poly1305)?;
    let (Some(nonce), Ok(tag)) = (env.header.nonce, <&[u8; 16]>::try_from(env.tag)) else {
        // parse() guarantees both for an AEAD envelope.
        return Err(OpenError::Authentication(env.header.key_id.to_string()));
    };
    let aad = envelope::aad(env.header_bytes, topic);
    let mut buf = env.body.to_vec();
    if !aead::open_in_place(key.secret(), nonce, &aad, &mut buf, tag) {
        return Err(OpenError::Authentication(env.header.key_id.to_string()));
    }
    check_age(env.header.timestamp, max_age, now)?;
    Ok(Opened {
        payload: buf,
        key_id: key.id().clone(),
        timestamp: env.header.timestamp,
        algorithm: env.header.algorithm,
    })
}

/// [`verify`] with the receiver's clock given (tests).
#[doc(hidden)]
pub fn verify_at(
    ring: &KeyRing,
    topic: Option<&str>,
    envelope: &[u8],
    max_age: Option<Duration>,
    now: u64,
) -> Result<Opened, OpenError> {
    let (env, key) = precheck(ring, topic, envelope, Algorithm::HmacSha256)?;
    if !mac::verify(key.secret(), env.header_bytes, topic, env.body, env.tag) {
        return Err(OpenError::Authentication(env.header.key_id.to_string()));
    }
    check_age(env.header.timestamp, max_age, now)?;
    Ok(Opened {
        payload: env.body.to_vec(),
        key_id: key.id().clone(),
        timestamp: env.header.timestamp,
        algorithm: env.header.algorithm,
    })
}

/// Everything decidable without the tag: size, structure, algorithm, topic binding, key id.
fn precheck<'e, 'r>(
    ring: &'r KeyRing,
    topic: Option<&str>,
    bytes: &'e [u8],
    expected: Algorithm,
) -> Result<(Envelope<'e>, &'r Key), OpenError> {
    check_topic(topic)?;
    let env = parse(bytes)?;
    if env.header.algorithm != expected {
        return Err(OpenError::WrongAlgorithm {
            found: env.header.algorithm,
            hint: match expected {
                Algorithm::XChaCha20Poly1305 => "use verify-payload for signed envelopes",
                Algorithm::HmacSha256 => "use decrypt-payload for encrypted envelopes",
            },
        });
    }
    match (env.header.topic_bound, topic.is_some()) {
        (true, false) => return Err(OpenError::TopicMissing),
        (false, true) => return Err(OpenError::TopicNotBound),
        _ => {}
    }
    let key = ring
        .get(env.header.key_id)
        .ok_or_else(|| OpenError::UnknownKeyId(env.header.key_id.to_string()))?;
    Ok((env, key))
}

fn check_age(timestamp: u64, max_age: Option<Duration>, now: u64) -> Result<(), OpenError> {
    let Some(max) = max_age else { return Ok(()) };
    let skew = MAX_FUTURE_SKEW.as_secs();
    if timestamp > now.saturating_add(skew) {
        return Err(OpenError::FromTheFuture {
            ahead: timestamp - now,
            skew,
        });
    }
    let age = now.saturating_sub(timestamp);
    if age > max.as_secs() {
        return Err(OpenError::Expired {
            age,
            max: max.as_secs(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::OffsetDateTime;

    fn key(id: &str, byte: u8) -> Key {
        Key::from_bytes(
            KeyId::new(id).unwrap(),
            OffsetDateTime::UNIX_EPOCH,
            &[byte; 32],
        )
    }

    fn ring(keys: Vec<Key>) -> KeyRing {
        KeyRing::from_keys(keys).unwrap()
    }

    #[test]
    fn round_trips_from_empty_to_16_mib() {
        let r = ring(vec![key("k1", 1)]);
        let mut big = vec![0u8; 16 * 1024 * 1024];
        rand::thread_rng().fill_bytes(&mut big);
        // 16 MiB runs once: in the dev profile the cipher's generic code is compiled without
        // optimisation (about 6 MB/s), so the largest size both ways costs seconds.
        let sizes = [0, 1, 15, 16, 17, 63, 64, 65, 100, 4095, 65_536, 1 << 20];
        let cases = sizes
            .iter()
            .flat_map(|&n| [(n, None), (n, Some("a/b"))])
            .chain([(16 << 20, Some("big"))]);
        for (len, topic) in cases {
            let pt = &big[..len];
            let e = seal(&r, topic, pt).unwrap();
            assert_eq!(e.len(), len + 8 + 2 + 8 + 24 + 16);
            if len > 0 {
                assert_ne!(&e[e.len() - 16 - len..e.len() - 16], pt, "not encrypted");
            }
            assert_eq!(open(&r, topic, &e, None).unwrap().payload, pt);
            let s = sign(&r, topic, pt).unwrap();
            assert_eq!(&s[18..18 + len], pt, "signed payload stays readable");
            assert_eq!(verify(&r, topic, &s, None).unwrap().payload, pt);
        }
    }

    #[test]
    fn every_single_bit_flip_is_detected() {
        let r = ring(vec![key("k1", 1)]);
        for topic in [None, Some("t/x")] {
            let aead_env = seal(&r, topic, b"hello").unwrap();
            let mac_env = sign(&r, topic, b"hello").unwrap();
            for (env, is_aead) in [(aead_env, true), (mac_env, false)] {
                for bit in 0..env.len() * 8 {
                    let mut v = env.clone();
                    v[bit / 8] ^= 1 << (bit % 8);
                    let res = if is_aead {
                        open(&r, topic, &v, None)
                    } else {
                        verify(&r, topic, &v, None)
                    };
                    assert!(res.is_err(), "flip of bit {bit} went unnoticed");
                }
            }
        }
    }

    #[test]
    fn rejections_name_the_reason() {
        let k1 = key("k1", 1);
        let r = ring(vec![k1.clone()]);
        let e = seal(&r, Some("a/b"), b"x").unwrap();
        let m = sign(&r, Some("a/b"), b"x").unwrap();
        let err = |res: Result<Opened, OpenError>| res.unwrap_err().to_string();
        assert!(err(open(&r, Some("a/c"), &e, None)).starts_with("authentication failed"));
        assert!(err(open(&r, None, &e, None)).contains("no --topic"));
        let unbound = seal(&r, None, b"x").unwrap();
        assert!(err(open(&r, Some("a/b"), &unbound, None)).contains("not bound"));
        // Same id, other bytes: authentication, not a key lookup, fails.
        let other = ring(vec![key("k1", 2)]);
        assert!(err(open(&other, Some("a/b"), &e, None)).starts_with("authentication failed"));
        assert!(err(verify(&other, Some("a/b"), &m, None)).starts_with("authentication failed"));
        let k2 = ring(vec![key("k2", 1)]);
        assert!(err(open(&k2, Some("a/b"), &e, None)).contains("no key with id 'k1'"));
        assert!(err(open(&r, Some("a/b"), &m, None)).contains("verify-payload"));
        assert!(err(verify(&r, Some("a/b"), &e, None)).contains("decrypt-payload"));
        assert!(err(open(&r, Some("a/b"), &e[..e.len() - 1], None)).starts_with("authentication"));
        assert!(err(open(&r, Some("a/b"), &e[..40], None)).contains("truncated"));
        let mut v2 = e.clone();
        v2[4] = 2;
        assert!(err(open(&r, Some("a/b"), &v2, None)).contains("version 2"));
        assert!(err(open(&r, Some("a/#"), &e, None)).contains("wildcards"));
    }

    #[test]
    fn age_and_future_checks_are_opt_in() {
        let k = key("k1", 1);
        let r = ring(vec![k.clone()]);
        let e = seal_with(&k, None, b"x", &[0; 24], 1_000_000).unwrap();
        let m = sign_with(&k, None, b"x", 1_000_000).unwrap();
        let min = Some(Duration::from_secs(60));
        assert!(open_at(&r, None, &e, None, 9_000_000).is_ok());
        assert!(open_at(&r, None, &e, min, 1_000_060).is_ok());
        let msg = open_at(&r, None, &e, min, 1_000_061)
            .unwrap_err()
            .to_string();
        assert!(msg.contains("too old: sealed 61s ago"), "{msg}");
        assert!(verify_at(&r, None, &m, min, 1_000_061).is_err());
        // Up to 300 s ahead is clock skew; beyond is refused.
        assert!(open_at(&r, None, &e, min, 1_000_000 - 300).is_ok());
        let msg = open_at(&r, None, &e, min, 1_000_000 - 301)
            .unwrap_err()
            .to_string();
        assert!(msg.contains("301s in the future"), "{msg}");
        assert!(open_at(&r, None, &e, None, 0).is_ok());
    }

    #[test]
    fn rotation_newest_seals_any_opens() {
        let old = key("old", 1);
        let mut new = key("new", 2);
        new = Key::from_bytes(
            new.id().clone(),
            OffsetDateTime::UNIX_EPOCH + time::Duration::days(1),
            new.secret(),
        );
        let before = ring(vec![old.clone()]);
        let e_old = seal(&before, None, b"one").unwrap();
        let after = ring(vec![old, new]);
        let e_new = seal(&after, None, b"two").unwrap();
        assert_eq!(parse(&e_new).unwrap().header.key_id, "new");
        assert_eq!(open(&after, None, &e_old, None).unwrap().payload, b"one");
        assert_eq!(open(&after, None, &e_new, None).unwrap().payload, b"two");
        assert!(open(&before, None, &e_new, None).is_err());
    }

    #[test]
    fn size_limits_are_enforced_before_work() {
        let r = ring(vec![key("k1", 1)]);
        let msg = parse(&vec![0u8; MAX_ENVELOPE_LEN + 1])
            .unwrap_err()
            .to_string();
        assert!(msg.contains("limit"), "{msg}");
        assert!(open(&r, None, &vec![0u8; MAX_ENVELOPE_LEN + 1], None).is_err());
        let long_topic = "t".repeat(MAX_TOPIC_LEN + 1);
        assert!(seal(&r, Some(&long_topic), b"").is_err());
        let max_topic = "t".repeat(MAX_TOPIC_LEN);
        let e = seal(&r, Some(&max_topic), b"ok").unwrap();
        assert_eq!(open(&r, Some(&max_topic), &e, None).unwrap().payload, b"ok");
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(512))]

        /// Arbitrary bytes never panic the parser or the openers, and never open.
        #[test]
        fn arbitrary_bytes_never_open(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..200)) {
            let r = ring(vec![key("k1", 1)]);
            let _ = parse(&bytes);
            let _ = looks_like_envelope(&bytes);
            proptest::prop_assert!(open(&r, None, &bytes, None).is_err());
            proptest::prop_assert!(verify(&r, Some("t"), &bytes, None).is_err());
        }

        /// Any change to a valid envelope (overwrite, truncate, extend) is rejected.
        #[test]
        fn mutated_envelopes_never_open(
            pos in 0usize..200,
            val in proptest::num::u8::ANY,
            cut in 0usize..200,
            extra in proptest::collection::vec(proptest::num::u8::ANY, 1..8),
            msg in proptest::collection::vec(proptest::num::u8::ANY, 0..64),
        ) {
            let r = ring(vec![key("k1", 1)]);
            for aead in [true, false] {
                let env = if aead { seal(&r, Some("a/b"), &msg) } else { sign(&r, Some("a/b"), &msg) }.unwrap();
                let try_open = |b: &[u8]| if aead {
                    open(&r, Some("a/b"), b, None).map(|o| o.payload)
                } else {
                    verify(&r, Some("a/b"), b, None).map(|o| o.payload)
                };
                proptest::prop_assert_eq!(try_open(&env).unwrap(), msg.clone());
                let mut changed = env.clone();
                let i = pos % env.len();
                if changed[i] != val {
                    changed[i] = val;
                    proptest::prop_assert!(try_open(&changed).is_err());
                }
                proptest::prop_assert!(try_open(&env[..cut % env.len()]).is_err());
                let mut longer = env.clone();
                longer.extend_from_slice(&extra);
                proptest::prop_assert!(try_open(&longer).is_err());
            }
        }
    }
}
