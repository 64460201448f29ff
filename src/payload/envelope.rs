//! The envelope's bytes (docs/payload-envelope.md is the contract): header layout, parsing with
//! hard limits, the associated data, and the base64 form. No key material is handled here.

use base64::Engine as _;

/// First four bytes of every envelope. The high bit of 0x89 keeps a text payload from ever
/// looking like an envelope and catches channels that strip the eighth bit.
pub const MAGIC: [u8; 4] = [0x89, b'M', b'Q', b'P'];
/// The only format version this code reads and writes.
pub const VERSION: u8 = 1;
/// Flags bit 0: the topic is part of the associated data.
pub const FLAG_TOPIC_BOUND: u8 = 0x01;
/// XChaCha20 nonce length.
pub const NONCE_LEN: usize = 24;
/// Poly1305 tag length.
pub const AEAD_TAG_LEN: usize = 16;
/// HMAC-SHA256 tag length (never truncated).
pub const MAC_TAG_LEN: usize = 32;
/// Longest key id, in bytes.
pub const MAX_KEY_ID_LEN: usize = 32;
/// Largest plaintext (or MAC'd payload) accepted: 256 MiB. MQTT itself cannot carry more.
pub const MAX_PAYLOAD_LEN: usize = 256 * 1024 * 1024;
/// Fixed header bytes before the key id: magic, version, algorithm, flags, key id length.
pub const PREFIX_LEN: usize = 8;
/// Timestamp width in bytes (unsigned seconds since the Unix epoch, big-endian).
pub const TIMESTAMP_LEN: usize = 8;
/// Largest possible envelope overhead (AEAD with a 32-byte key id): 88 bytes.
pub const MAX_OVERHEAD: usize =
    PREFIX_LEN + MAX_KEY_ID_LEN + TIMESTAMP_LEN + NONCE_LEN + AEAD_TAG_LEN;
/// Largest envelope accepted; anything longer is refused before it is copied or decrypted.
pub const MAX_ENVELOPE_LEN: usize = MAX_PAYLOAD_LEN + MAX_OVERHEAD;
/// Longest topic (MQTT's UTF-8 string limit), bytes.
pub const MAX_TOPIC_LEN: usize = 65_535;

/// The algorithm byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    /// 0x01: XChaCha20-Poly1305 (libsodium's `crypto_aead_xchacha20poly1305_ietf`).
    XChaCha20Poly1305,
    /// 0x02: HMAC-SHA256, payload in the clear.
    HmacSha256,
}

impl Algorithm {
    pub fn byte(self) -> u8 {
        match self {
            Algorithm::XChaCha20Poly1305 => 0x01,
            Algorithm::HmacSha256 => 0x02,
        }
    }

    pub fn from_byte(b: u8) -> Option<Algorithm> {
        match b {
            0x01 => Some(Algorithm::XChaCha20Poly1305),
            0x02 => Some(Algorithm::HmacSha256),
            _ => None,
        }
    }

    /// Bytes between the timestamp and the body: the nonce for AEAD, nothing for the MAC.
    pub fn nonce_len(self) -> usize {
        match self {
            Algorithm::XChaCha20Poly1305 => NONCE_LEN,
            Algorithm::HmacSha256 => 0,
        }
    }

    pub fn tag_len(self) -> usize {
        match self {
            Algorithm::XChaCha20Poly1305 => AEAD_TAG_LEN,
            Algorithm::HmacSha256 => MAC_TAG_LEN,
        }
    }

    /// The name used in messages and the spec.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::XChaCha20Poly1305 => "XChaCha20-Poly1305 (encrypted)",
            Algorithm::HmacSha256 => "HMAC-SHA256 (signed, not encrypted)",
        }
    }
}

/// Why bytes are not a well-formed envelope (checked before any key is touched).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    #[error("not an mqsec envelope (the first bytes are not the envelope magic)")]
    BadMagic,
    #[error("envelope is truncated: {len} bytes, at least {min} needed")]
    Truncated { len: usize, min: usize },
    #[error("envelope is {len} bytes, more than the {max}-byte limit")]
    TooLarge { len: usize, max: usize },
    #[error("unsupported envelope version {0} (this mqsec reads version {VERSION})")]
    UnsupportedVersion(u8),
    #[error("unknown algorithm byte 0x{0:02x} in envelope")]
    UnknownAlgorithm(u8),
    #[error("reserved flag bits set in envelope (flags 0x{0:02x})")]
    ReservedFlags(u8),
    #[error("envelope key id length {0} is outside 1..={MAX_KEY_ID_LEN}")]
    KeyIdLength(u8),
    #[error("envelope key id holds characters outside A-Z a-z 0-9 . _ -")]
    KeyIdChars,
    #[error("input is not one line of standard padded base64")]
    Base64,
}

/// Whether `id` is a valid key id: 1..=32 bytes of `A-Z a-z 0-9 . _ -`. The charset keeps ids
/// safe to print in messages and to put in a whitespace-separated key file.
pub fn valid_key_id(id: &[u8]) -> bool {
    (1..=MAX_KEY_ID_LEN).contains(&id.len())
        && id
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// The decoded header fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header<'a> {
    pub algorithm: Algorithm,
    pub topic_bound: bool,
    pub key_id: &'a str,
    /// Seconds since the Unix epoch, as written by the sender's clock.
    pub timestamp: u64,
    /// Present for AEAD envelopes.
    pub nonce: Option<&'a [u8; NONCE_LEN]>,
}

/// A structurally valid envelope, borrowed from its bytes. Nothing here is authenticated yet.
#[derive(Debug, Clone)]
pub struct Envelope<'a> {
    pub header: Header<'a>,
    /// Every byte before the body: the authenticated header.
    pub header_bytes: &'a [u8],
    /// Ciphertext (AEAD) or payload (MAC).
    pub body: &'a [u8],
    pub tag: &'a [u8],
}

/// Parse the header from the start of `bytes` (which may be just a prefix of an envelope).
/// Returns the header and its length.
pub fn parse_header(bytes: &[u8]) -> Result<(Header<'_>, usize), FormatError> {
    let magic_seen = bytes.len().min(MAGIC.len());
    if bytes[..magic_seen] != MAGIC[..magic_seen] {
        return Err(FormatError::BadMagic);
    }
    if bytes.len() < PREFIX_LEN {
        return Err(FormatError::Truncated {
            len: bytes.len(),
            min: PREFIX_LEN,
        });
    }
    if bytes[4] != VERSION {
        return Err(FormatError::UnsupportedVersion(bytes[4]));
    }
    let algorithm =
        Algorithm::from_byte(bytes[5]).ok_or(FormatError::UnknownAlgorithm(bytes[5]))?;
    let flags = bytes[6];
    if flags & !FLAG_TOPIC_BOUND != 0 {
        return Err(FormatError::ReservedFlags(flags));
    }
    let id_len = bytes[7];
    if id_len == 0 || usize::from(id_len) > MAX_KEY_ID_LEN {
        return Err(FormatError::KeyIdLength(id_len));
    }
    let id_end = PREFIX_LEN + usize::from(id_len);
    let ts_end = id_end + TIMESTAMP_LEN;
    let header_len = ts_end + algorithm.nonce_len();
    if bytes.len() < header_len {
        return Err(FormatError::Truncated {
            len: bytes.len(),
            min: header_len + algorithm.tag_len(),
        });
    }
    let id_bytes = &bytes[PREFIX_LEN..id_end];
    if !valid_key_id(id_bytes) {
        return Err(FormatError::KeyIdChars);
    }
    // Checked ASCII just above, so this cannot fail; map rather than unwrap all the same.
    let key_id = std::str::from_utf8(id_bytes).map_err(|_| FormatError::KeyIdChars)?;
    let mut ts = [0u8; TIMESTAMP_LEN];
    ts.copy_from_slice(&bytes[id_end..ts_end]);
    let nonce = match algorithm {
        Algorithm::XChaCha20Poly1305 => Some(
            <&[u8; NONCE_LEN]>::try_from(&bytes[ts_end..header_len]).map_err(|_| {
                FormatError::Truncated {
                    len: bytes.len(),
                    min: header_len,
                }
            })?,
        ),
        Algorithm::HmacSha256 => None,
    };
    Ok((
        Header {
            algorithm,
            topic_bound: flags & FLAG_TOPIC_BOUND != 0,
            key_id,
            timestamp: u64::from_be_bytes(ts),
            nonce,
        },
        header_len,
    ))
}

/// Parse a whole envelope. Refuses anything above [`MAX_ENVELOPE_LEN`] first.
pub fn parse(bytes: &[u8]) -> Result<Envelope<'_>, FormatError> {
    if bytes.len() > MAX_ENVELOPE_LEN {
        return Err(FormatError::TooLarge {
            len: bytes.len(),
            max: MAX_ENVELOPE_LEN,
        });
    }
    let (header, header_len) = parse_header(bytes)?;
    let min = header_len + header.algorithm.tag_len();
    if bytes.len() < min {
        return Err(FormatError::Truncated {
            len: bytes.len(),
            min,
        });
    }
    let body_end = bytes.len() - header.algorithm.tag_len();
    Ok(Envelope {
        header_bytes: &bytes[..header_len],
        body: &bytes[header_len..body_end],
        tag: &bytes[body_end..],
        header,
    })
}

/// Append the header for these fields to `out`; returns its length.
pub(crate) fn encode_header(
    out: &mut Vec<u8>,
    algorithm: Algorithm,
    topic_bound: bool,
    key_id: &str,
    timestamp: u64,
    nonce: Option<&[u8; NONCE_LEN]>,
) -> usize {
    let start = out.len();
    out.extend_from_slice(&MAGIC);
    out.push(VERSION);
    out.push(algorithm.byte());
    out.push(if topic_bound { FLAG_TOPIC_BOUND } else { 0 });
    // Key ids are validated to 1..=32 bytes when the key is made, so this fits a byte.
    out.push(key_id.len() as u8);
    out.extend_from_slice(key_id.as_bytes());
    out.extend_from_slice(&timestamp.to_be_bytes());
    if let Some(n) = nonce {
        out.extend_from_slice(n);
    }
    out.len() - start
}

/// The topic block that follows the header in the authenticated data: a 2-byte big-endian length
/// and the topic's UTF-8 bytes (length 0 when the envelope is not topic-bound). The length prefix
/// makes the header/topic/payload boundaries unambiguous.
pub(crate) fn topic_block_prefix(topic: Option<&str>) -> [u8; 2] {
    // Topics are validated to <= 65535 bytes before we get here.
    (topic.map_or(0, str::len) as u16).to_be_bytes()
}

/// The AEAD associated data: header || u16be(len(topic)) || topic.
pub(crate) fn aad(header_bytes: &[u8], topic: Option<&str>) -> Vec<u8> {
    let t = topic.unwrap_or("").as_bytes();
    let mut v = Vec::with_capacity(header_bytes.len() + 2 + t.len());
    v.extend_from_slice(header_bytes);
    v.extend_from_slice(&topic_block_prefix(topic));
    v.extend_from_slice(t);
    v
}

/// The base64 form: standard alphabet, padded, one line (the newline is added by the caller).
pub fn to_base64(envelope: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(envelope)
}

/// Largest base64 input accepted, including up to 64 bytes of surrounding whitespace.
pub const MAX_BASE64_LEN: usize = MAX_ENVELOPE_LEN.div_ceil(3) * 4 + 64;

/// Decode the base64 form. ASCII whitespace before and after the one line is ignored (so
/// `mosquitto_sub` output with its trailing newline works); whitespace inside is an error.
pub fn from_base64(text: &[u8]) -> Result<Vec<u8>, FormatError> {
    if text.len() > MAX_BASE64_LEN {
        return Err(FormatError::TooLarge {
            len: text.len(),
            max: MAX_BASE64_LEN,
        });
    }
    let t = text.trim_ascii();
    base64::engine::general_purpose::STANDARD
        .decode(t)
        .map_err(|_| FormatError::Base64)
}

/// Whether `bytes` look like an envelope, raw or base64: the header parses (magic, version,
/// algorithm, flags and key id valid) and, for the raw form, the length is plausible. This needs no
/// key; it is the cheap check for topics that must never carry plaintext. It does not mean the
/// envelope is authentic.
pub fn looks_like_envelope(bytes: &[u8]) -> bool {
    if parse(bytes).is_ok() {
        return true;
    }
    let t = bytes.trim_ascii_start();
    // The longest header is 72 bytes = 96 base64 characters: decode only that prefix.
    let prefix_chars = (PREFIX_LEN + MAX_KEY_ID_LEN + TIMESTAMP_LEN + NONCE_LEN).div_ceil(3) * 4;
    let take = t.len().min(prefix_chars) / 4 * 4;
    if take < 12 {
        return false;
    }
    let Ok(prefix) = base64::engine::general_purpose::STANDARD.decode(&t[..take]) else {
        return false;
    };
    match parse_header(&prefix) {
        Ok(_) => true,
        // The prefix may be shorter than a long header; the fields seen so far were valid.
        Err(FormatError::Truncated { .. }) => from_base64(t).is_ok_and(|raw| parse(&raw).is_ok()),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(alg: Algorithm, body: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        let nonce = [7u8; NONCE_LEN];
        encode_header(
            &mut v,
            alg,
            true,
            "k1",
            0x0102_0304_0506_0708,
            (alg == Algorithm::XChaCha20Poly1305).then_some(&nonce),
        );
        v.extend_from_slice(body);
        v.extend(std::iter::repeat_n(0xAA, alg.tag_len()));
        v
    }

    #[test]
    fn header_round_trips() {
        let env = sample(Algorithm::XChaCha20Poly1305, b"abc");
        let e = parse(&env).unwrap();
        assert_eq!(e.header.key_id, "k1");
        assert!(e.header.topic_bound);
        assert_eq!(e.header.timestamp, 0x0102_0304_0506_0708);
        assert_eq!(e.header.nonce, Some(&[7u8; NONCE_LEN]));
        assert_eq!(e.body, b"abc");
        assert_eq!(e.tag.len(), AEAD_TAG_LEN);
        assert_eq!(e.header_bytes.len(), 8 + 2 + 8 + 24);
        let m = sample(Algorithm::HmacSha256, b"");
        let e = parse(&m).unwrap();
        assert_eq!(e.header.nonce, None);
        assert!(e.body.is_empty());
        assert_eq!(e.tag.len(), MAC_TAG_LEN);
    }

    #[test]
    fn every_prefix_is_rejected_or_parses_consistently() {
        let env = sample(Algorithm::XChaCha20Poly1305, b"");
        for n in 0..env.len() {
            assert!(parse(&env[..n]).is_err(), "prefix of {n} bytes parsed");
        }
        assert!(parse(&env).is_ok());
    }

    #[test]
    fn bad_fields_are_named() {
        let env = sample(Algorithm::HmacSha256, b"x");
        let mut v = env.clone();
        v[0] = b'M';
        assert_eq!(parse(&v).unwrap_err(), FormatError::BadMagic);
        let mut v = env.clone();
        v[4] = 2;
        assert_eq!(parse(&v).unwrap_err(), FormatError::UnsupportedVersion(2));
        let mut v = env.clone();
        v[5] = 9;
        assert_eq!(parse(&v).unwrap_err(), FormatError::UnknownAlgorithm(9));
        let mut v = env.clone();
        v[6] = 0x81;
        assert_eq!(parse(&v).unwrap_err(), FormatError::ReservedFlags(0x81));
        let mut v = env.clone();
        v[7] = 0;
        assert_eq!(parse(&v).unwrap_err(), FormatError::KeyIdLength(0));
        let mut v = env.clone();
        v[7] = 33;
        assert_eq!(parse(&v).unwrap_err(), FormatError::KeyIdLength(33));
        let mut v = env;
        v[8] = b' ';
        assert_eq!(parse(&v).unwrap_err(), FormatError::KeyIdChars);
    }

    #[test]
    fn base64_tolerates_surrounding_whitespace_only() {
        let env = sample(Algorithm::XChaCha20Poly1305, b"hello");
        let b = to_base64(&env);
        assert!(b.starts_with("iU1RU"));
        assert_eq!(from_base64(format!("{b}\n\n").as_bytes()).unwrap(), env);
        let (a, c) = b.split_at(8);
        assert_eq!(
            from_base64(format!("{a}\n{c}").as_bytes()).unwrap_err(),
            FormatError::Base64
        );
        let unpadded = b.trim_end_matches('=');
        if unpadded.len() != b.len() {
            assert!(from_base64(unpadded.as_bytes()).is_err());
        }
        let url_safe = base64::engine::general_purpose::URL_SAFE.encode([0xfb, 0xff, 0xbf]);
        assert_eq!(url_safe, "-_-_");
        assert!(from_base64(url_safe.as_bytes()).is_err());
    }

    #[test]
    fn base64_non_canonical_last_group_is_refused() {
        // 43 bytes: the last group is "XXX=", whose third character carries 2 unused bits.
        let env = sample(Algorithm::XChaCha20Poly1305, b"a");
        assert_eq!(env.len() % 3, 2);
        let b = to_base64(&env);
        assert!(b.ends_with('='));
        let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut bytes = b.into_bytes();
        let i = bytes.len() - 2;
        let pos = alphabet.iter().position(|&c| c == bytes[i]).unwrap();
        assert_eq!(pos & 0b11, 0, "canonical: unused bits are zero");
        bytes[i] = alphabet[pos | 1];
        assert_eq!(from_base64(&bytes).unwrap_err(), FormatError::Base64);
    }

    #[test]
    fn looks_like_envelope_raw_and_base64() {
        for alg in [Algorithm::XChaCha20Poly1305, Algorithm::HmacSha256] {
            let env = sample(alg, b"payload");
            assert!(looks_like_envelope(&env));
            assert!(looks_like_envelope(
                format!("{}\n", to_base64(&env)).as_bytes()
            ));
        }
        assert!(!looks_like_envelope(b""));
        assert!(!looks_like_envelope(b"{\"temp\": 21.5}"));
        assert!(!looks_like_envelope(b"MQP plain text"));
        assert!(!looks_like_envelope(
            to_base64(b"plain text payload here").as_bytes()
        ));
    }
}
