//! `keygen`, `encrypt-payload`, `decrypt-payload`, `sign-payload`, `verify-payload`.
//!
//! Integrity-only protection is its own pair of commands rather than a `--mac-only` flag, so a
//! receiver states what it expects: `decrypt-payload` refuses a signed (readable) envelope and
//! `verify-payload` refuses an encrypted one, and a sender cannot silently downgrade a topic to
//! plaintext.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;

use crate::cli::EXIT_CODES_HELP;
use crate::duration::{self, DurationError};
use crate::exit::{CliError, CmdResult, Outcome};
use crate::fsutil::{self, FileLock, MODE_PUBLIC, MODE_SECRET};
use crate::payload::{
    self, Key, KeyFileError, KeyId, KeyRing, OpenError, KEY_FILE_HEADER, MAX_ENVELOPE_LEN,
    MAX_PAYLOAD_LEN,
};

fn help(example: &str) -> String {
    format!("{example}\n\n{EXIT_CODES_HELP}")
}

fn keygen_help() -> String {
    help(
        "Example (create, then rotate):
  mqsec keygen --out sensors.keys --id 2026-01
  mqsec keygen --out sensors.keys --id 2026-07 --add

The file holds one key per line (ID CREATED KEY). Encryption uses the newest key; decryption picks
the key named by the envelope, so old messages still open after a rotation.",
    )
}

fn encrypt_help() -> String {
    help(
        "Example (through Mosquitto, base64 so the envelope survives text pipes):
  echo '{\"temp\": 21.5}' | mqsec encrypt-payload --key sensors.keys --topic sensors/1 --base64 \\
    | mosquitto_pub -t sensors/1 -s

Reads stdin (or --in) and writes one envelope to stdout (or --out). The topic, when given, is
authenticated: the envelope opens only with the same --topic.",
    )
}

fn decrypt_help() -> String {
    help(
        "Example:
  mosquitto_sub -t sensors/1 -C 1 \\
    | mqsec decrypt-payload --key sensors.keys --topic sensors/1 --base64 --max-age 5m

Everything is checked before any output: on a wrong key, wrong topic, modified, truncated or
too old envelope nothing is written to stdout, one line goes to stderr and the exit code is 1.",
    )
}

fn sign_help() -> String {
    help(
        "Example (integrity only; the payload stays readable):
  echo 'open valve 3' | mqsec sign-payload --key plant.keys --topic cmd/valves --base64 \\
    | mosquitto_pub -t cmd/valves -s

HMAC-SHA256 over the envelope header, the topic and the payload. Use it for devices that cannot
encrypt; `verify-payload` checks it.",
    )
}

fn verify_help() -> String {
    help(
        "Example:
  mosquitto_sub -t cmd/valves -C 1 \\
    | mqsec verify-payload --key plant.keys --topic cmd/valves --base64 --max-age 30s

Writes the payload only after the MAC, topic and age are verified; otherwise exit 1 and nothing
on stdout.",
    )
}

/// Create a payload key file, or add a key to one (rotation).
#[derive(Debug, Args)]
#[command(after_help = keygen_help())]
pub struct KeygenArgs {
    /// The key file to write (created mode 0600, replaced atomically).
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// The new key's id: 1-32 of A-Z a-z 0-9 . _ - (default: 16 random hex characters).
    #[arg(long, value_name = "KEY_ID")]
    pub id: Option<String>,
    /// Append a new key to an existing file; it becomes the key that encrypts.
    #[arg(long, conflicts_with = "force")]
    pub add: bool,
    /// Replace an existing file (its keys are lost: old envelopes will no longer open).
    #[arg(long)]
    pub force: bool,
}

/// Encrypt a payload into an envelope (XChaCha20-Poly1305).
#[derive(Debug, Args)]
#[command(after_help = encrypt_help())]
pub struct EncryptArgs {
    #[command(flatten)]
    pub seal: SealArgs,
}

/// Sign a payload (HMAC-SHA256, integrity only: the payload stays readable).
#[derive(Debug, Args)]
#[command(after_help = sign_help())]
pub struct SignArgs {
    #[command(flatten)]
    pub seal: SealArgs,
}

/// Decrypt and authenticate an envelope made by `encrypt-payload`.
#[derive(Debug, Args)]
#[command(after_help = decrypt_help())]
pub struct DecryptArgs {
    #[command(flatten)]
    pub open: OpenArgs,
}

/// Verify an envelope made by `sign-payload` and write its payload.
#[derive(Debug, Args)]
#[command(after_help = verify_help())]
pub struct VerifyArgs {
    #[command(flatten)]
    pub open: OpenArgs,
}

#[derive(Debug, Args)]
pub struct SealArgs {
    /// Key file (see `mqsec keygen`); its newest key is used.
    #[arg(long, value_name = "FILE")]
    pub key: PathBuf,
    /// Bind the envelope to this MQTT topic (the receiver must give the same --topic).
    #[arg(long, value_name = "TOPIC")]
    pub topic: Option<String>,
    /// Read the payload from FILE instead of stdin.
    #[arg(long = "in", value_name = "FILE")]
    pub input: Option<PathBuf>,
    /// Write the envelope to FILE (atomically) instead of stdout.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Write the envelope as one line of standard padded base64 (plus a newline).
    #[arg(long)]
    pub base64: bool,
}

#[derive(Debug, Args)]
pub struct OpenArgs {
    /// Key file (see `mqsec keygen`); the envelope's key id picks the key.
    #[arg(long, value_name = "FILE")]
    pub key: PathBuf,
    /// The topic the envelope must be bound to (required exactly when it was sealed with one).
    #[arg(long, value_name = "TOPIC")]
    pub topic: Option<String>,
    /// Refuse envelopes older than this (30s, 5m, 2h, 1d) or more than 5 minutes in the future.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub max_age: Option<Duration>,
    /// Read the envelope from FILE instead of stdin.
    #[arg(long = "in", value_name = "FILE")]
    pub input: Option<PathBuf>,
    /// Write the payload to FILE (atomically, mode 0600) instead of stdout.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// The input is base64 (one line; surrounding whitespace ignored).
    #[arg(long)]
    pub base64: bool,
}

/// `30s`, `5m`, `2h`, `1d`: a positive whole number and one unit.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    match duration::parse(s.trim(), duration::CLI_UNITS) {
        Ok(d) if d.is_zero() => Err(format!("'{s}': the duration must be at least 1s")),
        Ok(d) => Ok(d),
        Err(DurationError::TooLong) => Err(format!("'{s}' is too long")),
        Err(DurationError::Malformed) => {
            Err(format!("'{s}' is not a duration such as 30s, 5m, 2h or 1d"))
        }
    }
}

pub fn keygen(args: KeygenArgs) -> CmdResult {
    let id = match &args.id {
        Some(s) => KeyId::new(s).map_err(|e| CliError::input(format!("--id: {e}")))?,
        None => KeyId::random().map_err(|e| CliError::input(format!("random generator: {e}")))?,
    };
    let mut key =
        Key::generate(id.clone()).map_err(|e| CliError::input(format!("random generator: {e}")))?;
    let to_line = |k: &Key| {
        k.to_line()
            .map_err(|e| CliError::input(format!("cannot format the creation time: {e}")))
    };
    let mut line = to_line(&key)?;
    let path = &args.out;
    let _lock =
        FileLock::acquire(path).map_err(|e| CliError::input(format!("{}: {e}", path.display())))?;
    let (content, count) = if args.add {
        if !path.exists() {
            return Err(CliError::input(format!(
                "{}: does not exist; run without --add to create it",
                path.display()
            )));
        }
        // Validate the file we are about to extend: a malformed or clashing file stays untouched.
        let (ring, warnings, old) = KeyRing::load_with_text(path).map_err(key_file_error)?;
        print_warnings(&warnings);
        if ring.get(id.as_str()).is_some() {
            return Err(CliError::input(format!(
                "{}: already holds a key with id '{id}'; choose another --id",
                path.display()
            )));
        }
        // The newest CREATED seals. A key dated ahead of this clock (copied from a machine whose
        // clock runs fast, or hand-edited) would keep sealing after the rotation; the new key takes
        // its date instead (the later line wins a tie), so --add always does what it says.
        let latest = ring.newest();
        if latest.created() > key.created() {
            eprintln!(
                "mqsec: warning: key '{}' is dated in the future; the new key gets the same date so that it encrypts",
                latest.id()
            );
            key = Key::from_bytes(id.clone(), latest.created(), key.secret());
            line = to_line(&key)?;
        }
        // Sized up front: growing a Zeroizing<Vec> would free the old buffer (all the keys)
        // without wiping it.
        let mut text = zeroize::Zeroizing::new(Vec::with_capacity(old.len() + 1 + line.len()));
        text.extend_from_slice(&old);
        if !text.is_empty() && !text.ends_with(b"\n") {
            text.push(b'\n');
        }
        text.extend_from_slice(line.as_bytes());
        (text, ring.len() + 1)
    } else {
        if let Err(p) = fsutil::refuse_existing(&[path.as_path()], args.force) {
            return Err(CliError::input(format!(
                "{}: already exists; use --add to rotate in a new key, or --force to replace it",
                p.display()
            )));
        }
        let mut text =
            zeroize::Zeroizing::new(Vec::with_capacity(KEY_FILE_HEADER.len() + line.len()));
        text.extend_from_slice(KEY_FILE_HEADER.as_bytes());
        text.extend_from_slice(line.as_bytes());
        (text, 1)
    };
    fsutil::atomic_write(path, &content, MODE_SECRET)
        .map_err(|e| CliError::input(format!("{}: cannot write: {e}", path.display())))?;
    println!(
        "{} key '{id}' to {} ({count} key{}; new envelopes use '{id}')",
        if args.add { "added" } else { "wrote" },
        path.display(),
        if count == 1 { "" } else { "s" }
    );
    Ok(Outcome::Success)
}

pub fn encrypt(args: EncryptArgs) -> CmdResult {
    seal_command(args.seal, payload::seal)
}

pub fn sign(args: SignArgs) -> CmdResult {
    seal_command(args.seal, payload::sign)
}

pub fn decrypt(args: DecryptArgs) -> CmdResult {
    open_command(args.open, payload::open)
}

pub fn verify(args: VerifyArgs) -> CmdResult {
    open_command(args.open, payload::verify)
}

type SealFn = fn(&KeyRing, Option<&str>, &[u8]) -> Result<Vec<u8>, payload::SealError>;
type OpenFn =
    fn(&KeyRing, Option<&str>, &[u8], Option<Duration>) -> Result<payload::Opened, OpenError>;

fn seal_command(a: SealArgs, f: SealFn) -> CmdResult {
    let ring = load_ring(&a.key)?;
    let input = read_input(a.input.as_deref(), MAX_PAYLOAD_LEN)
        .map_err(|e| CliError::input(format!("payload: {e}")))?;
    let env = f(&ring, a.topic.as_deref(), &input).map_err(|e| CliError::input(e.to_string()))?;
    let out = if a.base64 {
        let mut s = payload::to_base64(&env).into_bytes();
        s.push(b'\n');
        s
    } else {
        env
    };
    write_output(a.out.as_deref(), &out, MODE_PUBLIC)?;
    Ok(Outcome::Success)
}

fn open_command(a: OpenArgs, f: OpenFn) -> CmdResult {
    let ring = load_ring(&a.key)?;
    let limit = if a.base64 {
        payload::envelope::MAX_BASE64_LEN
    } else {
        MAX_ENVELOPE_LEN
    };
    // Rejections name the file the envelope came from (stdin needs no name).
    let from = a
        .input
        .as_deref()
        .map_or(String::new(), |p| format!("{}: ", p.display()));
    // An oversized or undecodable envelope is a rejected envelope (exit 1), like a forged one.
    let raw = read_input(a.input.as_deref(), limit).map_err(|e| match e {
        InputError::TooLarge(_) => CliError::with_code(format!("{from}envelope rejected: {e}"), 1),
        InputError::Io(_) => CliError::input(format!("envelope: {e}")),
    })?;
    let bytes = if a.base64 {
        payload::from_base64(&raw).map_err(|e| {
            let hint = if raw.starts_with(&payload::envelope::MAGIC) {
                " (this is a raw envelope: leave out --base64)"
            } else {
                ""
            };
            CliError::with_code(format!("{from}envelope rejected: {e}{hint}"), 1)
        })?
    } else {
        raw
    };
    let opened = f(&ring, a.topic.as_deref(), &bytes, a.max_age).map_err(|e| match e {
        OpenError::Topic(_) => CliError::input(e.to_string()),
        OpenError::Format(payload::FormatError::BadMagic)
            if bytes.trim_ascii_start().starts_with(BASE64_MAGIC) =>
        {
            CliError::with_code(
                format!("{from}envelope rejected: {e} (it looks like base64: add --base64)"),
                1,
            )
        }
        _ => CliError::with_code(format!("{from}envelope rejected: {e}"), 1),
    })?;
    write_output(a.out.as_deref(), &opened.payload, MODE_SECRET)?;
    Ok(Outcome::Success)
}

/// How the base64 form of every version-1 envelope begins (magic and version).
const BASE64_MAGIC: &[u8] = b"iU1RUAE";

fn key_file_error(e: KeyFileError) -> CliError {
    CliError::input(e.to_string())
}

fn print_warnings(w: &[payload::KeyFileWarning]) {
    for w in w {
        eprintln!("mqsec: warning: {w}");
    }
}

fn load_ring(path: &Path) -> Result<KeyRing, CliError> {
    let (ring, warnings) = KeyRing::load(path).map_err(key_file_error)?;
    print_warnings(&warnings);
    Ok(ring)
}

#[derive(Debug, thiserror::Error)]
enum InputError {
    #[error("input is larger than the {0}-byte limit")]
    TooLarge(usize),
    #[error("{0}")]
    Io(String),
}

/// Read all of FILE or stdin, refusing more than `limit` bytes without buffering past it.
fn read_input(path: Option<&Path>, limit: usize) -> Result<Vec<u8>, InputError> {
    let mut buf = Vec::new();
    let within = match path {
        Some(p) => {
            let io = |e: std::io::Error| InputError::Io(format!("{}: {e}", p.display()));
            let f = std::fs::File::open(p).map_err(io)?;
            let len = f.metadata().map_err(io)?.len();
            if len > limit as u64 {
                return Err(InputError::TooLarge(limit));
            }
            buf.reserve(len as usize);
            fsutil::read_capped(f, limit as u64, &mut buf).map_err(io)?
        }
        None => fsutil::read_capped(std::io::stdin().lock(), limit as u64, &mut buf)
            .map_err(|e| InputError::Io(format!("stdin: {e}")))?,
    };
    if !within {
        return Err(InputError::TooLarge(limit));
    }
    Ok(buf)
}

fn write_output(path: Option<&Path>, data: &[u8], mode: u32) -> Result<(), CliError> {
    match path {
        Some(p) => fsutil::atomic_write(p, data, mode)
            .map_err(|e| CliError::input(format!("{}: cannot write: {e}", p.display()))),
        None => {
            let mut out = std::io::stdout().lock();
            out.write_all(data)
                .and_then(|()| out.flush())
                .map_err(|e| CliError::input(format!("stdout: {e}")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{parse_duration, read_input, InputError};
    use std::time::Duration;

    #[test]
    fn input_above_the_limit_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("in");
        std::fs::write(&p, b"0123456789").unwrap();
        assert_eq!(read_input(Some(&p), 10).unwrap(), b"0123456789");
        assert!(matches!(
            read_input(Some(&p), 9),
            Err(InputError::TooLarge(9))
        ));
        let missing = dir.path().join("missing");
        assert!(matches!(
            read_input(Some(&missing), 9),
            Err(InputError::Io(_))
        ));
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_duration("1d"), Ok(Duration::from_secs(86_400)));
        for bad in [
            "",
            "30",
            "s",
            "1.5h",
            "-1s",
            "1w",
            "0s",
            "5 m",
            "99999999999999999999d",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
        assert!(parse_duration("999999999999999999d").is_err());
    }
}
