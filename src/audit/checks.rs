//! The catalogue of checks: each a stable kebab-case id, a default severity, a title, and a
//! remediation naming the Mosquitto (or mqsec) option that fixes it. Ids are a contract: CI
//! pipelines filter on them, SARIF uses them as rule ids, the README documents each one.

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

/// One entry of the catalogue.
#[derive(Debug, Clone, Copy)]
pub struct Check {
    pub id: &'static str,
    pub severity: Severity,
    pub title: &'static str,
    pub remediation: &'static str,
    /// Which probe decides it: "tls", "cert" or "mqtt" (for the README and `not_tested` reasons).
    pub group: &'static str,
}

/// A finding: a check that fired, with the evidence seen on the wire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub id: String,
    pub severity: Severity,
    pub title: String,
    pub evidence: String,
    pub remediation: String,
}

/// A check that could not be run, and why. Never counted as passed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NotTested {
    pub id: String,
    pub reason: String,
}

const fn c(
    id: &'static str,
    severity: Severity,
    group: &'static str,
    title: &'static str,
    remediation: &'static str,
) -> Check {
    Check {
        id,
        severity,
        title,
        remediation,
        group,
    }
}

use Severity::*;

const TLS12_ONLY: &str = "set `tls_version tlsv1.2` (Mosquitto 2.x) on the listener; mqsec serve accepts TLS 1.2 and 1.3 only";
const GOOD_CIPHERS: &str = "set `ciphers ECDHE+AESGCM:ECDHE+CHACHA20` on the listener (Mosquitto `ciphers` option; mqsec serve offers only ECDHE with AEAD)";

pub static CHECKS: &[Check] = &[
    // Transport
    c("plaintext-mqtt", Medium, "mqtt", "MQTT is served without TLS",
      "serve MQTT over TLS: a `listener 8883` with `certfile`, `keyfile` (and `cafile`); keep plaintext `listener 1883` bound to localhost only, or remove it"),
    c("plaintext-beside-tls", Medium, "mqtt", "A plaintext MQTT listener runs beside the TLS one",
      "remove the plaintext `listener` (or bind it to 127.0.0.1 with `listener 1883 127.0.0.1`) so clients cannot fall back to clear text"),
    c("websocket-without-tls", Medium, "mqtt", "MQTT over WebSocket without TLS",
      "add `certfile` and `keyfile` to the `protocol websockets` listener (wss://), or bind it to localhost behind a TLS proxy"),
    c("credentials-over-plaintext", High, "mqtt", "Passwords are sent in clear text",
      "require TLS on every listener that takes `password_file` credentials (`certfile`/`keyfile` on the listener); remove the plaintext `listener` or bind it to 127.0.0.1 (`per_listener_settings true` gives each listener its own `password_file`)"),
    // TLS protocols and suites
    c("ssl-v3-enabled", High, "tls", "SSLv3 is accepted", TLS12_ONLY),
    c("tls-v1-0-enabled", Medium, "tls", "TLS 1.0 is accepted (deprecated by RFC 8996)", TLS12_ONLY),
    c("tls-v1-1-enabled", Medium, "tls", "TLS 1.1 is accepted (deprecated by RFC 8996)", TLS12_ONLY),
    c("tls-cipher-null", Critical, "tls", "NULL cipher suites (no encryption) are accepted", GOOD_CIPHERS),
    c("tls-cipher-anonymous", High, "tls", "Anonymous (aNULL) cipher suites are accepted: no server authentication", GOOD_CIPHERS),
    c("tls-cipher-export", High, "tls", "Export-grade cipher suites are accepted", GOOD_CIPHERS),
    c("tls-cipher-weak-encryption", Medium, "tls", "RC4, DES or 3DES cipher suites are accepted", GOOD_CIPHERS),
    c("tls-cipher-no-forward-secrecy", Medium, "tls", "Static-RSA key exchange (no forward secrecy) is accepted", GOOD_CIPHERS),
    c("tls-cipher-cbc", Low, "tls", "CBC-mode cipher suites are accepted", GOOD_CIPHERS),
    c("tls-client-cert-required", Info, "tls", "The broker requires a client certificate",
      "none: this is a refusal, not a weakness; checks that need a session are listed as not tested"),
    // Certificates
    c("cert-expired", High, "cert", "The server certificate has expired",
      "renew the certificate (`mqsec pki` or your CA) and reload the broker (Mosquitto re-reads `certfile` on SIGHUP)"),
    c("cert-not-yet-valid", High, "cert", "The server certificate is not valid yet",
      "fix the certificate's notBefore (or the broker's clock) and reissue; clients reject it until then"),
    c("cert-expiring-soon", Medium, "cert", "The server certificate expires soon",
      "renew the certificate before it expires and reload the broker (SIGHUP re-reads `certfile`)"),
    c("cert-self-signed", High, "cert", "The server certificate is self-signed",
      "issue the server certificate from a CA the clients trust (`mqsec pki`), set it as `certfile`, and give clients that CA (`--cafile`)"),
    c("cert-untrusted", High, "cert", "The server certificate chain is not trusted",
      "serve the full chain in `certfile` and issue it from a CA the clients trust; audit with `--cafile` when the CA is private"),
    c("cert-hostname-mismatch", High, "cert", "The server certificate does not name the target host",
      "reissue the certificate with a subjectAltName (DNS or IP) for the name clients connect to"),
    c("cert-no-san", Low, "cert", "The server certificate has no subjectAltName",
      "reissue with a subjectAltName: rustls/webpki clients (and mqsec) reject certificates that name the host only in the CN"),
    c("cert-weak-key", High, "cert", "The server certificate key is weak",
      "reissue with an RSA key of at least 2048 bits or an ECDSA P-256/P-384 key"),
    c("cert-weak-signature", Medium, "cert", "The server certificate is signed with SHA-1 or weaker",
      "reissue the certificate signed with SHA-256 or better"),
    // MQTT
    c("anonymous-access", High, "mqtt", "Anonymous clients can connect",
      "set `allow_anonymous false` and a `password_file` (or `require_certificate true`) on every listener"),
    c("anonymous-refused", Info, "mqtt", "Anonymous connections are refused",
      "none: checks that need a session are listed as not tested unless `--username` is given"),
    c("weak-credentials", Critical, "mqtt", "A password from the wordlist is accepted",
      "change that user's password (`mqsec passwd add FILE USER` or `mosquitto_passwd FILE USER`) and reload the broker"),
    c("wildcard-subscription", High, "mqtt", "A subscription to `#` is granted",
      "restrict reads with an `acl_file` that grants no `topic read #` (mqsec serve also refuses the SUBSCRIBE)"),
    c("sys-topics-readable", Low, "mqtt", "`$SYS` topics are readable",
      "deny `$SYS/#` in the `acl_file` for ordinary users, or set `sys_interval 0`"),
    c("broker-version-disclosed", Low, "mqtt", "The broker discloses its version",
      "deny `$SYS/broker/version` in the `acl_file` (or `sys_interval 0`)"),
    c("retained-messages-readable", Medium, "mqtt", "Retained messages are readable",
      "restrict reads with an `acl_file`; retained messages are delivered to every subscriber allowed to read them"),
    c("client-id-takeover", Medium, "mqtt", "An anonymous client can take over another client's session by reusing its client id",
      "set `allow_anonymous false` (anonymous clients can take over any client id) and `use_username_as_clientid true` so a client id belongs to one user (with client certificates also `use_identity_as_username true`)"),
    c("oversized-packet-accepted", Low, "mqtt", "Oversized packets are accepted",
      "set `max_packet_size` (e.g. 262144) and `message_size_limit` on the broker"),
    c("identity-read-access", Info, "mqtt", "What the audited identity can read",
      "tighten the `acl_file` entries for that user if it reads more than it needs"),
    c("identity-can-publish", Medium, "mqtt", "The audited identity (or an anonymous client) can publish to an arbitrary topic",
      "limit writes with `topic write ...` entries for that user in the `acl_file` (and `allow_anonymous false`)"),
];

/// The catalogue as text for `mqsec audit --help` and the man page.
pub fn help_text() -> String {
    let mut out = String::from(
        "Probe MQTT brokers like an auditor: TLS protocols and suites, the certificate, and MQTT \
         access control, over TCP, TLS or WebSocket. Read-only unless --active or --wordlist.\n\n\
         Checks (stable ids; default severity):\n",
    );
    for c in CHECKS {
        out.push_str(&format!(
            "  {} ({}): {}\n",
            c.id,
            c.severity.as_str(),
            c.title
        ));
    }
    out
}

pub fn catalogue(id: &str) -> Option<&'static Check> {
    CHECKS.iter().find(|c| c.id == id)
}

/// A finding for catalogue check `id` at its default severity.
pub fn finding(id: &str, evidence: impl Into<String>) -> Finding {
    let check = catalogue(id);
    Finding {
        id: id.to_string(),
        severity: check.map(|c| c.severity).unwrap_or(Severity::Info),
        title: check.map(|c| c.title).unwrap_or(id).to_string(),
        evidence: evidence.into(),
        remediation: check.map(|c| c.remediation).unwrap_or("").to_string(),
    }
}

/// A finding whose severity depends on what was seen (e.g. `#` granted vs delivering).
pub fn finding_at(id: &str, severity: Severity, evidence: impl Into<String>) -> Finding {
    Finding {
        severity,
        ..finding(id, evidence)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_kebab_case() {
        let mut seen = std::collections::HashSet::new();
        for c in CHECKS {
            assert!(seen.insert(c.id), "duplicate {}", c.id);
            assert!(c
                .id
                .chars()
                .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '-'));
            assert!(!c.remediation.is_empty());
        }
    }

    #[test]
    fn every_id_is_documented_in_the_readme() {
        let readme = include_str!("../../README.md");
        for c in CHECKS {
            // The whole row, so a changed severity or remediation cannot leave the README stale.
            let row = format!(
                "| `{}` | {} | {} | {} | {} |",
                c.id,
                c.severity.as_str(),
                c.group,
                c.title.replace('|', "\\|"),
                c.remediation.replace('|', "\\|")
            );
            assert!(readme.contains(&row), "README lacks the row {row}");
        }
    }
}
