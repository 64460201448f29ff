//! Payload keys and the key file: one key per line, `ID CREATED KEY` (docs/payload-envelope.md).
//!
//! Key bytes live in `Zeroizing` buffers from the moment they are read or generated, and no error
//! or `Debug` output ever contains them (nor any other text of a key line).

use std::fmt;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use rand::RngCore;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use zeroize::Zeroizing;

use super::envelope::valid_key_id;

/// Key length: 256 bits.
pub const KEY_LEN: usize = 32;
/// A key file larger than this is refused unread (about 10,000 keys).
pub const MAX_KEY_FILE_LEN: u64 = 1024 * 1024;

/// A key id: 1..=32 bytes of `A-Z a-z 0-9 . _ -`. Not secret: it travels in every envelope.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KeyId(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a key id must be 1-32 characters from A-Z a-z 0-9 . _ -")]
pub struct KeyIdError;

impl KeyId {
    pub fn new(id: &str) -> Result<KeyId, KeyIdError> {
        if valid_key_id(id.as_bytes()) {
            Ok(KeyId(id.to_string()))
        } else {
            Err(KeyIdError)
        }
    }

    /// 16 random hex characters (64 bits), so independently made keys do not collide.
    pub fn random() -> Result<KeyId, rand::Error> {
        let mut b = [0u8; 8];
        rand::rngs::OsRng.try_fill_bytes(&mut b)?;
        Ok(KeyId(hex::encode(b)))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One 256-bit key with its id and creation time. The bytes are wiped when it is dropped.
#[derive(Clone)]
pub struct Key {
    id: KeyId,
    created: OffsetDateTime,
    secret: Zeroizing<[u8; KEY_LEN]>,
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Key")
            .field("id", &self.id)
            .field("created", &self.created)
            .field("secret", &"<redacted>")
            .finish()
    }
}

impl Key {
    /// A fresh random key from the operating system's generator, created now (whole seconds).
    pub fn generate(id: KeyId) -> Result<Key, rand::Error> {
        let mut secret = Zeroizing::new([0u8; KEY_LEN]);
        rand::rngs::OsRng.try_fill_bytes(secret.as_mut())?;
        Ok(Key {
            id,
            created: now_whole_seconds(),
            secret,
        })
    }

    /// A key from known bytes (test vectors, interop). The caller owns the wiping of `secret`.
    pub fn from_bytes(id: KeyId, created: OffsetDateTime, secret: &[u8; KEY_LEN]) -> Key {
        Key {
            id,
            created,
            secret: Zeroizing::new(*secret),
        }
    }

    pub fn id(&self) -> &KeyId {
        &self.id
    }

    pub fn created(&self) -> OffsetDateTime {
        self.created
    }

    pub(crate) fn secret(&self) -> &[u8; KEY_LEN] {
        &self.secret
    }

    /// The key-file line for this key (with its newline). Secret: it holds the key.
    pub fn to_line(&self) -> Result<Zeroizing<String>, time::error::Format> {
        let created = self.created.format(&Rfc3339)?;
        let mut b64 = Zeroizing::new(String::with_capacity(44));
        base64::engine::general_purpose::STANDARD.encode_string(self.secret.as_ref(), &mut b64);
        let mut line = Zeroizing::new(String::with_capacity(self.id.0.len() + created.len() + 48));
        line.push_str(&self.id.0);
        line.push(' ');
        line.push_str(&created);
        line.push(' ');
        line.push_str(&b64);
        line.push('\n');
        Ok(line)
    }
}

/// What separates the fields of a key-file line, and what is trimmed around it: space and tab
/// only, so that a form feed or a Unicode space is an error rather than a guess.
const BLANKS: [char; 2] = [' ', '\t'];

/// A key file's `CREATED`: an RFC 3339 date-time (section 5.6), read exactly.
///
/// The `time` crate reads the grammar but takes any byte between date and time; RFC 3339 allows
/// only `T` (lower case too, section 5.6's note). Its other readings are kept and are part of the
/// spec: fractions of any length, counted to the nanosecond (digits past the ninth are ignored);
/// a leap second `:60` only as the last second of a month in UTC, read as 23:59:59.999999999.
/// The error says which part is wrong, never the text (a shifted field could be a key).
fn parse_created(s: &str) -> Result<OffsetDateTime, String> {
    use time::error::{Parse, ParseFromDescription, TryFromParsed};
    let t = OffsetDateTime::parse(s, &Rfc3339).map_err(|e| match e {
        Parse::ParseFromDescription(ParseFromDescription::InvalidComponent(c)) => {
            format!("invalid {c}")
        }
        Parse::ParseFromDescription(ParseFromDescription::InvalidLiteral { .. }) => {
            "a '-', ':' or '.' is missing or misplaced".to_string()
        }
        Parse::ParseFromDescription(ParseFromDescription::UnexpectedTrailingCharacters {
            ..
        }) => "unexpected characters after the time zone".to_string(),
        Parse::TryFromParsed(TryFromParsed::ComponentRange(r)) => {
            format!("{} out of range", r.name())
        }
        _ => "malformed".to_string(),
    })?;
    // Parsed, so the date took exactly bytes 0..10 and byte 10 is the separator.
    if !matches!(s.as_bytes().get(10), Some(b'T' | b't')) {
        return Err("the date and the time must be separated by 'T'".to_string());
    }
    Ok(t)
}

fn now_whole_seconds() -> OffsetDateTime {
    let now = OffsetDateTime::now_utc();
    now.replace_nanosecond(0).unwrap_or(now)
}

/// What the first lines of a new key file say.
pub const KEY_FILE_HEADER: &str = "\
# mqsec payload keys: one key per line: ID CREATED KEY
#   ID: 1-32 of A-Z a-z 0-9 . _ -; CREATED: RFC 3339 UTC; KEY: 32 bytes, standard base64.
# Secret: keep this file mode 0600. The newest key encrypts; any key here decrypts by its id.
";

/// Why a key file cannot be used. Displays as `FILE:LINE: reason` where a line is at fault.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    #[error("{}: cannot read the key file: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: key file is larger than {MAX_KEY_FILE_LEN} bytes", path.display())]
    TooLarge { path: PathBuf },
    #[error("{}:{line}: {reason}", path.display())]
    Malformed {
        path: PathBuf,
        line: usize,
        reason: String,
    },
    #[error("{}:{line}: key id '{id}' already appears on line {first}", path.display())]
    DuplicateId {
        path: PathBuf,
        line: usize,
        id: String,
        first: usize,
    },
    #[error("{}: holds no keys (create one with `mqsec keygen --out FILE`)", path.display())]
    Empty { path: PathBuf },
}

/// Something worth telling the user about a key file that is still usable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyFileWarning {
    /// Group or others may access the file.
    LooseMode { path: PathBuf, mode: u32 },
}

impl fmt::Display for KeyFileWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyFileWarning::LooseMode { path, mode } => write!(
                f,
                "{} is mode {mode:04o} but holds secret keys; run `chmod 600 {}`",
                path.display(),
                path.display()
            ),
        }
    }
}

/// A key file's raw bytes, wiped on drop (they hold every secret key).
pub type KeyFileText = Zeroizing<Vec<u8>>;

/// The keys of one key file. Never empty.
#[derive(Debug, Clone)]
pub struct KeyRing {
    keys: Vec<Key>,
}

impl KeyRing {
    /// A ring from keys already in memory. `None` when empty or when two keys share an id.
    pub fn from_keys(keys: Vec<Key>) -> Option<KeyRing> {
        if keys.is_empty() {
            return None;
        }
        for (i, k) in keys.iter().enumerate() {
            if keys[..i].iter().any(|o| o.id == k.id) {
                return None;
            }
        }
        Some(KeyRing { keys })
    }

    /// Read and parse a key file, with warnings (a mode looser than 0600).
    pub fn load(path: &Path) -> Result<(KeyRing, Vec<KeyFileWarning>), KeyFileError> {
        Self::load_with_text(path).map(|(ring, warnings, _)| (ring, warnings))
    }

    /// [`load`](Self::load), also handing back the file's bytes (in memory wiped on drop), for a
    /// caller that rewrites the file and must not read it a second time.
    pub fn load_with_text(
        path: &Path,
    ) -> Result<(KeyRing, Vec<KeyFileWarning>, KeyFileText), KeyFileError> {
        let io = |source| KeyFileError::Io {
            path: path.to_path_buf(),
            source,
        };
        let file = std::fs::File::open(path).map_err(io)?;
        let meta = file.metadata().map_err(io)?;
        if meta.len() > MAX_KEY_FILE_LEN {
            return Err(KeyFileError::TooLarge {
                path: path.to_path_buf(),
            });
        }
        let mut text = Zeroizing::new(Vec::with_capacity(meta.len() as usize));
        if !crate::fsutil::read_capped(file, MAX_KEY_FILE_LEN, &mut text).map_err(io)? {
            return Err(KeyFileError::TooLarge {
                path: path.to_path_buf(),
            });
        }
        let ring = KeyRing::parse(&text, path)?;
        let mut warnings = Vec::new();
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode() & 0o7777;
        if crate::fsutil::is_loose_secret_mode(mode) {
            warnings.push(KeyFileWarning::LooseMode {
                path: path.to_path_buf(),
                mode,
            });
        }
        Ok((ring, warnings, text))
    }

    /// Parse key-file text; `path` only names the source in errors.
    pub fn parse(text: &[u8], path: &Path) -> Result<KeyRing, KeyFileError> {
        let bad = |line: usize, reason: &str| KeyFileError::Malformed {
            path: path.to_path_buf(),
            line,
            reason: reason.to_string(),
        };
        let mut keys: Vec<(usize, Key)> = Vec::new();
        for (idx, raw) in text.split(|&b| b == b'\n').enumerate() {
            let n = idx + 1;
            let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
            let line = std::str::from_utf8(raw).map_err(|_| bad(n, "not UTF-8 text"))?;
            let line = line.trim_matches(BLANKS);
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            // Never quote the line back, nor any field of it: it may hold a key, in any position.
            let fields: Vec<&str> = line.split(BLANKS).filter(|f| !f.is_empty()).collect();
            if fields.len() != 3 {
                let hint = if fields.get(3).is_some_and(|f| f.starts_with('#')) {
                    "; a comment must be on a line of its own"
                } else {
                    ""
                };
                return Err(bad(
                    n,
                    &format!(
                        "expected 3 fields (ID CREATED KEY), found {}{hint}",
                        fields.len()
                    ),
                ));
            }
            let id = KeyId::new(fields[0]).map_err(|_| {
                bad(
                    n,
                    "field 1 (key id) must be 1-32 characters from A-Z a-z 0-9 . _ -",
                )
            })?;
            let created = parse_created(fields[1]).map_err(|why| {
                bad(
                    n,
                    &format!(
                        "field 2 (created) is not an RFC 3339 time such as 2026-01-31T12:00:00Z: {why}"
                    ),
                )
            })?;
            let decoded = Zeroizing::new(
                base64::engine::general_purpose::STANDARD
                    .decode(fields[2])
                    .map_err(|_| bad(n, "field 3 (key) is not canonical standard padded base64"))?,
            );
            let secret: &[u8; KEY_LEN] = decoded.as_slice().try_into().map_err(|_| {
                bad(
                    n,
                    &format!(
                        "field 3 (key) decodes to {} bytes, expected {KEY_LEN}",
                        decoded.len()
                    ),
                )
            })?;
            if let Some((first, _)) = keys.iter().find(|(_, k)| k.id == id) {
                return Err(KeyFileError::DuplicateId {
                    path: path.to_path_buf(),
                    line: n,
                    id: id.0,
                    first: *first,
                });
            }
            keys.push((n, Key::from_bytes(id, created, secret)));
        }
        if keys.is_empty() {
            return Err(KeyFileError::Empty {
                path: path.to_path_buf(),
            });
        }
        Ok(KeyRing {
            keys: keys.into_iter().map(|(_, k)| k).collect(),
        })
    }

    /// The key that encrypts and signs: the latest `created`; on a tie, the later line.
    pub fn newest(&self) -> &Key {
        let mut best = &self.keys[0];
        for k in &self.keys[1..] {
            if k.created >= best.created {
                best = k;
            }
        }
        best
    }

    /// The key with this id (ids are public, so a plain comparison is fine).
    pub fn get(&self, id: &str) -> Option<&Key> {
        self.keys.iter().find(|k| k.id.0 == id)
    }

    pub fn keys(&self) -> &[Key] {
        &self.keys
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Always false: a ring holds at least one key.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const K: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

    fn parse(text: &str) -> Result<KeyRing, KeyFileError> {
        KeyRing::parse(text.as_bytes(), Path::new("keys.txt"))
    }

    #[test]
    fn parses_comments_blank_lines_and_picks_newest() {
        let text = format!(
            "{KEY_FILE_HEADER}\nold 2026-01-01T00:00:00Z {K}\r\n  \n# note\nnew 2026-02-01T00:00:00Z {K}\nmid 2026-01-15T00:00:00Z {K}\n"
        );
        let r = parse(&text).unwrap();
        assert_eq!(r.len(), 3);
        assert_eq!(r.newest().id().as_str(), "new");
        assert_eq!(r.get("old").unwrap().secret()[31], 31);
        assert!(r.get("nope").is_none());
    }

    #[test]
    fn ties_go_to_the_later_line() {
        let text = format!("a 2026-01-01T00:00:00Z {K}\nb 2026-01-01T00:00:00Z {K}\n");
        assert_eq!(parse(&text).unwrap().newest().id().as_str(), "b");
    }

    #[test]
    fn malformed_lines_are_named_without_their_content() {
        let cases = [
            (
                "# c\n\nk1 2026-01-01T00:00:00Z\n".to_string(),
                3,
                "expected 3 fields",
            ),
            (format!("k!1 2026-01-01T00:00:00Z {K}\n"), 1, "field 1"),
            (format!("k1 yesterday {K}\n"), 1, "field 2"),
            (
                "k1 2026-01-01T00:00:00Z c2VjcmV0\n".to_string(),
                1,
                "decodes to 6 bytes",
            ),
            (
                "k1 2026-01-01T00:00:00Z not*base64\n".to_string(),
                1,
                "field 3",
            ),
            (
                format!("k1 2026-01-01T00:00:00Z {K}\nk1 2026-01-02T00:00:00Z {K}\n"),
                2,
                "already appears on line 1",
            ),
        ];
        for (text, line, what) in cases {
            let msg = parse(&text).unwrap_err().to_string();
            assert!(msg.starts_with(&format!("keys.txt:{line}: ")), "{msg}");
            assert!(msg.contains(what), "{msg}");
            assert!(!msg.contains(K) && !msg.contains("c2VjcmV0"), "{msg}");
        }
        assert!(matches!(parse("# only\n"), Err(KeyFileError::Empty { .. })));
    }

    #[test]
    fn created_errors_say_which_part_is_wrong() {
        for (created, why) in [
            ("2026-03-01_00:00:00Z", "separated by 'T'"),
            ("2026-03-01x00:00:00Z", "separated by 'T'"),
            ("2026-13-01T00:00:00Z", "month out of range"),
            ("2026-02-30T00:00:00Z", "day out of range"),
            ("2026-01-01T00:00:00", "offset hour"),
            ("2026-01-01T00:00:00Zjunk", "after the time zone"),
            ("2026/01/01T00:00:00Z", "missing or misplaced"),
        ] {
            let msg = parse(&format!("k1 {created} {K}\n"))
                .unwrap_err()
                .to_string();
            assert!(
                msg.starts_with("keys.txt:1: field 2 (created) is not an RFC 3339 time")
                    && msg.ends_with(why),
                "{created}: {msg}"
            );
            assert!(!msg.contains(created), "{msg}");
        }
        // A key shifted into the CREATED position is not echoed either.
        let msg = parse(&format!("k1 {K} 2026-01-01T00:00:00Z\n"))
            .unwrap_err()
            .to_string();
        assert!(msg.contains("field 2") && !msg.contains(K), "{msg}");
        let t = parse_created("2026-01-01t01:00:00.5+01:00").unwrap();
        assert_eq!(t, time::macros::datetime!(2026-01-01 00:00:00.5 UTC));
    }

    #[test]
    fn a_trailing_note_is_named_as_such() {
        let msg = parse(&format!("k1 2026-01-01T00:00:00Z {K} # rotated\n"))
            .unwrap_err()
            .to_string();
        assert!(
            msg.ends_with("found 5; a comment must be on a line of its own"),
            "{msg}"
        );
    }

    #[test]
    fn line_round_trips_and_debug_redacts() {
        let k = Key::generate(KeyId::random().unwrap()).unwrap();
        let line = k.to_line().unwrap();
        let r = parse(&line).unwrap();
        assert_eq!(r.newest().secret(), k.secret());
        assert_eq!(r.newest().created(), k.created());
        let dbg = format!("{k:?}");
        let b64 = base64::engine::general_purpose::STANDARD.encode(k.secret());
        assert!(dbg.contains("redacted") && !dbg.contains(&b64));
        assert_eq!(k.id().as_str().len(), 16);
    }

    #[test]
    fn key_ids() {
        assert!(KeyId::new("2026-01.sensors_A").is_ok());
        assert!(KeyId::new(&"a".repeat(32)).is_ok());
        assert!(KeyId::new(&"a".repeat(33)).is_err());
        assert!(KeyId::new("").is_err());
        assert!(KeyId::new("a b").is_err());
        assert!(KeyId::new("é").is_err());
    }
}
