//! What an audit found, and its three renderings: a table for people, versioned JSON for scripts,
//! SARIF 2.1.0 for code-scanning dashboards.

pub mod json;
pub mod sarif;
pub mod table;

use std::collections::BTreeMap;

use serde::Serialize;

use super::certs::CertSummary;
use super::checks::{Finding, NotTested, Severity};

/// Bumped on any incompatible change to the JSON shape (docs/audit-report.schema.json).
pub const SCHEMA_VERSION: u32 = 1;

/// The result of auditing one target.
#[derive(Debug, Clone, Serialize)]
pub struct TargetReport {
    pub target: String,
    /// False when nothing answered (connection refused, timeout, neither TLS nor MQTT).
    pub reachable: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// "tls" or "tcp" (plaintext), when reachable.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transport: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsSummary>,
    pub checks_run: Vec<String>,
    pub not_tested: Vec<NotTested>,
    pub findings: Vec<Finding>,
    pub duration_ms: u64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct TlsSummary {
    /// Accepted protocol versions, named as sslscan names them ("TLSv1.2").
    pub protocols: Vec<String>,
    /// Accepted suites per protocol version (OpenSSL names).
    pub ciphers: BTreeMap<String, Vec<String>>,
    pub client_certificate_required: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub certificate: Option<CertSummary>,
}

impl TargetReport {
    pub fn unreachable(target: String, error: String, duration_ms: u64) -> TargetReport {
        TargetReport {
            target,
            reachable: false,
            error: Some(error),
            transport: None,
            tls: None,
            checks_run: Vec::new(),
            not_tested: Vec::new(),
            findings: Vec::new(),
            duration_ms,
        }
    }

    pub fn worst(&self) -> Option<Severity> {
        self.findings.iter().map(|f| f.severity).max()
    }

    /// Sort findings worst first, then by id, so output is stable.
    pub fn normalise(&mut self) {
        self.findings
            .sort_by(|a, b| b.severity.cmp(&a.severity).then(a.id.cmp(&b.id)));
        self.checks_run.sort();
        self.checks_run.dedup();
        let run = self.checks_run.clone();
        self.not_tested.retain(|n| !run.contains(&n.id));
        self.not_tested.sort_by(|a, b| a.id.cmp(&b.id));
        self.not_tested.dedup_by(|a, b| a.id == b.id);
    }
}

/// "3 findings (1 critical, 2 high)".
pub fn count_line(findings: &[Finding]) -> String {
    let mut parts = Vec::new();
    for sev in [
        Severity::Critical,
        Severity::High,
        Severity::Medium,
        Severity::Low,
        Severity::Info,
    ] {
        let n = findings.iter().filter(|f| f.severity == sev).count();
        if n > 0 {
            parts.push(format!("{n} {}", sev.as_str()));
        }
    }
    let n = findings.len();
    let word = if n == 1 { "finding" } else { "findings" };
    if parts.is_empty() {
        format!("{n} {word}")
    } else {
        format!("{n} {word} ({})", parts.join(", "))
    }
}
