//! The security event log: one JSON object per line, for fail2ban, a SIEM or `jq`.
//!
//! Events: `connect_accepted`, `connect_refused` (every refused CONNECT, with its reason),
//! `auth_failure` (wrong password or unknown user), `auth_locked` (a brute-force lock starts),
//! `acl_denied` (a refused PUBLISH or SUBSCRIBE), `reload` and `reload_failed`. Every line has
//! `ts` (RFC 3339, UTC) and `event`; the others carry what applies of `address` (the peer's IP,
//! what fail2ban bans), `port`, `listener`, `client_id`, `username`, `reason`, `code` (the
//! CONNACK or reason code sent), `topic`, `access`, `rule` (`file:line`), `file`. Never a password,
//! never a payload; client-chosen strings are cut at 256 characters and JSON-escaped, so a
//! client cannot forge a line.
//!
//! Writing happens on a thread of its own behind a bounded channel: emitting an event never
//! blocks or does I/O, so it is safe under the broker's locks. When the writer falls behind,
//! events are dropped and counted (the next line written says how many). Refused PUBLISH and
//! SUBSCRIBE events are also rate-limited (a client looping on a denied topic must not fill the
//! disk); the next one written carries `suppressed`.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::OnceLock;
use std::time::Instant;

use parking_lot::Mutex;
use serde::Serialize;

use crate::config::model::SecurityLogDest;
use crate::security::identity::Identity;

/// Lines waiting for the writer before new ones are dropped.
const QUEUE: usize = 4096;
/// Client-chosen strings longer than this are cut.
const MAX_FIELD_CHARS: usize = 256;
/// Refused PUBLISH/SUBSCRIBE events: this many per second on average, bursts up to `ACL_BURST`.
const ACL_PER_SECOND: f64 = 50.0;
const ACL_BURST: f64 = 200.0;

/// One event. Build with [`Event::new`] and the setters, then [`emit`].
#[derive(Debug, Clone, Serialize)]
pub struct Event {
    ts: String,
    event: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    address: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    port: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    listener: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    username: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    code: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    access: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    topic: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    share_group: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rule: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    file: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    protocol: Option<u8>,
    /// Events lost since the last line (writer behind, or rate limit).
    #[serde(skip_serializing_if = "Option::is_none")]
    dropped: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    suppressed: Option<u64>,
}

fn cut(s: &str) -> String {
    match s.char_indices().nth(MAX_FIELD_CHARS) {
        None => s.to_string(),
        Some((i, _)) => format!("{}…", &s[..i]),
    }
}

impl Event {
    pub fn new(event: &'static str) -> Event {
        Event {
            ts: now_rfc3339(),
            event,
            address: None,
            port: None,
            listener: None,
            client_id: None,
            username: None,
            reason: None,
            code: None,
            access: None,
            topic: None,
            share_group: None,
            rule: None,
            file: None,
            protocol: None,
            dropped: None,
            suppressed: None,
        }
    }

    pub fn peer(mut self, peer: SocketAddr) -> Event {
        self.address = Some(peer.ip().to_canonical().to_string());
        self.port = Some(peer.port());
        self
    }

    pub fn listener(mut self, port: u16) -> Event {
        self.listener = Some(port);
        self
    }

    pub fn client_id(mut self, id: &str) -> Event {
        self.client_id = Some(cut(id));
        self
    }

    pub fn username(mut self, user: Option<&str>) -> Event {
        self.username = user.map(cut);
        self
    }

    /// Client id, username, address and listener of a connected client.
    pub fn who(self, id: &Identity) -> Event {
        let mut e = self
            .client_id(&id.client_id)
            .username(id.username.as_deref());
        if let Some(p) = id.peer() {
            e = e.peer(p);
        }
        if let Some(l) = id.listener_port() {
            e = e.listener(l);
        }
        e
    }

    pub fn reason(mut self, reason: impl Into<String>) -> Event {
        self.reason = Some(reason.into());
        self
    }

    pub fn code(mut self, code: u8) -> Event {
        self.code = Some(code);
        self
    }

    pub fn protocol(mut self, level: u8) -> Event {
        self.protocol = Some(level);
        self
    }

    pub fn topic(mut self, access: &'static str, topic: &str) -> Event {
        self.access = Some(access);
        self.topic = Some(cut(topic));
        self
    }

    pub fn share_group(mut self, group: Option<&str>) -> Event {
        self.share_group = group.map(cut);
        self
    }

    pub fn rule(mut self, rule: Option<String>) -> Event {
        self.rule = rule;
        self
    }

    pub fn file(mut self, file: &str) -> Event {
        self.file = Some(file.to_string());
        self
    }

    /// The JSON line (without the newline).
    pub fn to_line(&self) -> String {
        // Only strings, numbers and options: serialization cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}

fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

enum Msg {
    Line(String),
    Reopen,
}

/// Where the lines go.
enum Out {
    Stderr,
    File { path: PathBuf, file: File },
}

fn open_append(path: &PathBuf) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    // 0600: the log names users and addresses.
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
}

/// A running security log: the sending side of the writer thread.
pub struct SecurityLog {
    tx: SyncSender<Msg>,
    dropped: AtomicU64,
    acl_bucket: Mutex<(f64, Instant)>,
    acl_suppressed: AtomicU64,
}

impl SecurityLog {
    /// Open the destination (so a bad path fails at startup, naming it) and start the writer.
    /// `None` for `security_log none`.
    pub fn start(dest: &SecurityLogDest) -> io::Result<Option<SecurityLog>> {
        let out = match dest {
            SecurityLogDest::None => return Ok(None),
            SecurityLogDest::Stderr => Out::Stderr,
            SecurityLogDest::File(f) => Out::File {
                path: f.path.clone(),
                file: open_append(&f.path).map_err(|e| {
                    io::Error::new(
                        e.kind(),
                        format!("{}: security_log {}: {e}", f.origin, f.path.display()),
                    )
                })?,
            },
        };
        let (tx, rx) = sync_channel(QUEUE);
        std::thread::Builder::new()
            .name("mqsec-seclog".into())
            .spawn(move || writer(out, rx))?;
        Ok(Some(SecurityLog {
            tx,
            dropped: AtomicU64::new(0),
            acl_bucket: Mutex::new((ACL_BURST, Instant::now())),
            acl_suppressed: AtomicU64::new(0),
        }))
    }

    /// Queue an event; never blocks.
    pub fn emit(&self, mut e: Event) {
        if e.event == "acl_denied" {
            if !self.acl_token() {
                self.acl_suppressed.fetch_add(1, Ordering::Relaxed);
                return;
            }
            let n = self.acl_suppressed.swap(0, Ordering::Relaxed);
            e.suppressed = (n > 0).then_some(n);
        }
        let lost = self.dropped.swap(0, Ordering::Relaxed);
        e.dropped = (lost > 0).then_some(lost);
        let mut line = e.to_line();
        line.push('\n');
        match self.tx.try_send(Msg::Line(line)) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                self.dropped.fetch_add(lost + 1, Ordering::Relaxed);
            }
        }
    }

    /// Reopen a log file (after rotation); SIGHUP does this.
    pub fn reopen(&self) {
        let _ = self.tx.try_send(Msg::Reopen);
    }

    fn acl_token(&self) -> bool {
        let mut b = self.acl_bucket.lock();
        let now = Instant::now();
        let refill = now.saturating_duration_since(b.1).as_secs_f64() * ACL_PER_SECOND;
        b.0 = (b.0 + refill).min(ACL_BURST);
        b.1 = now;
        if b.0 >= 1.0 {
            b.0 -= 1.0;
            true
        } else {
            false
        }
    }
}

fn writer(mut out: Out, rx: Receiver<Msg>) {
    let mut failed = false;
    for msg in rx {
        // One write per line, newline included, so a reader never sees half a line.
        let r = match (&mut out, msg) {
            (Out::Stderr, Msg::Line(l)) => io::stderr().lock().write_all(l.as_bytes()),
            (Out::File { file, .. }, Msg::Line(l)) => file.write_all(l.as_bytes()),
            (Out::Stderr, Msg::Reopen) => Ok(()),
            (Out::File { path, file }, Msg::Reopen) => open_append(path).map(|f| *file = f),
        };
        match r {
            Err(e) if !failed => {
                tracing::error!(error = %e, "cannot write the security log; events are being lost");
                failed = true;
            }
            Err(_) => {}
            Ok(()) => failed = false,
        }
    }
}

static GLOBAL: OnceLock<SecurityLog> = OnceLock::new();

/// Make `log` the process's security log (`serve` does this once at startup).
pub fn install(log: SecurityLog) {
    let _ = GLOBAL.set(log);
}

/// Send an event to the process's security log, if one is installed.
pub fn emit(e: Event) {
    if let Some(l) = GLOBAL.get() {
        l.emit(e);
    }
}

/// Whether a security log is installed (callers skip building events otherwise).
pub fn enabled() -> bool {
    GLOBAL.get().is_some()
}

/// Reopen the installed log file (SIGHUP).
pub fn reopen() {
    if let Some(l) = GLOBAL.get() {
        l.reopen();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::model::FileOption;

    fn wait_until(
        path: &std::path::Path,
        done: impl Fn(&[serde_json::Value]) -> bool,
    ) -> Vec<serde_json::Value> {
        let deadline = Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let text = std::fs::read_to_string(path).unwrap_or_default();
            let lines: Vec<serde_json::Value> = text
                .lines()
                .map(|l| serde_json::from_str(l).expect("every line is JSON"))
                .collect();
            if done(&lines) || Instant::now() > deadline {
                return lines;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }

    fn wait_lines(path: &std::path::Path, n: usize) -> Vec<serde_json::Value> {
        wait_until(path, |l| l.len() >= n)
    }

    #[test]
    fn lines_are_json_and_client_strings_cannot_forge_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sec.jsonl");
        let log = SecurityLog::start(&SecurityLogDest::File(FileOption {
            path: path.clone(),
            origin: "t.conf:1".into(),
        }))
        .unwrap()
        .unwrap();
        let evil = "x\n{\"event\":\"connect_accepted\"}\u{0}";
        log.emit(
            Event::new("connect_refused")
                .peer("[::ffff:192.0.2.7]:1234".parse().unwrap())
                .client_id(evil)
                .username(Some(&"u".repeat(1000)))
                .reason("bad user name or password")
                .code(0x86),
        );
        let lines = wait_lines(&path, 1);
        assert_eq!(lines.len(), 1);
        let l = &lines[0];
        assert_eq!(l["event"], "connect_refused");
        assert_eq!(l["address"], "192.0.2.7");
        assert_eq!(l["port"], 1234);
        assert_eq!(l["client_id"], evil);
        assert_eq!(l["code"], 0x86);
        assert_eq!(l["username"].as_str().unwrap().chars().count(), 257);
        assert!(l["ts"].as_str().unwrap().ends_with('Z'));
        assert!(l.get("topic").is_none());
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "{mode:o}");
    }

    #[test]
    fn denied_operations_are_rate_limited_and_counted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sec.jsonl");
        let log = SecurityLog::start(&SecurityLogDest::File(FileOption {
            path: path.clone(),
            origin: "t".into(),
        }))
        .unwrap()
        .unwrap();
        for _ in 0..1000 {
            log.emit(Event::new("acl_denied").topic("write", "t"));
        }
        // Let the bucket refill for one more.
        std::thread::sleep(std::time::Duration::from_millis(100));
        log.emit(Event::new("acl_denied").topic("write", "last"));
        let lines = wait_until(&path, |l| l.iter().any(|l| l["topic"] == "last"));
        let n = ACL_BURST as usize + 1;
        assert!(lines.len() >= n && lines.len() < 1000, "{}", lines.len());
        let suppressed: u64 = lines.iter().filter_map(|l| l["suppressed"].as_u64()).sum();
        assert_eq!(suppressed as usize + lines.len(), 1001);
        // Other events are not limited.
        for _ in 0..300 {
            log.emit(Event::new("auth_failure"));
        }
        assert_eq!(
            wait_lines(&path, lines.len() + 300).len(),
            lines.len() + 300
        );
    }

    #[test]
    fn a_bad_path_fails_at_start_naming_the_option() {
        let e = SecurityLog::start(&SecurityLogDest::File(FileOption {
            path: "/nonexistent-dir/x.jsonl".into(),
            origin: "t.conf:4".into(),
        }))
        .err()
        .unwrap();
        assert!(
            e.to_string()
                .starts_with("t.conf:4: security_log /nonexistent-dir/x.jsonl:"),
            "{e}"
        );
    }
}
