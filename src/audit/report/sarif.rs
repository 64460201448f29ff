//! SARIF 2.1.0: one run, the check catalogue as rules, one result per finding.

use serde_json::{json, Value};

use super::TargetReport;
use crate::audit::checks::{Severity, CHECKS};

fn level(s: Severity) -> &'static str {
    match s {
        Severity::Critical | Severity::High => "error",
        Severity::Medium => "warning",
        Severity::Low | Severity::Info => "note",
    }
}

/// GitHub code scanning ranks security results by this 0-10 score.
fn score(s: Severity) -> &'static str {
    match s {
        Severity::Critical => "9.5",
        Severity::High => "8.0",
        Severity::Medium => "5.5",
        Severity::Low => "3.0",
        Severity::Info => "0.0",
    }
}

pub fn render(reports: &[TargetReport]) -> String {
    let rules: Vec<Value> = CHECKS
        .iter()
        .map(|c| {
            json!({
                "id": c.id,
                "name": c.id,
                "shortDescription": {"text": c.title},
                "fullDescription": {"text": c.title},
                "help": {"text": c.remediation},
                "defaultConfiguration": {"level": level(c.severity)},
                "properties": {"security-severity": score(c.severity), "tags": ["security", c.group]}
            })
        })
        .collect();
    let mut results = Vec::new();
    for r in reports {
        let scheme = if r.transport.as_deref() == Some("tls") {
            "mqtts"
        } else {
            "mqtt"
        };
        for f in &r.findings {
            results.push(json!({
                "ruleId": f.id,
                "ruleIndex": CHECKS.iter().position(|c| c.id == f.id).unwrap_or(0),
                "level": level(f.severity),
                "message": {"text": format!("{}: {} ({})", r.target, f.title, f.evidence)},
                "locations": [{
                    "physicalLocation": {"artifactLocation": {"uri": format!("{scheme}://{}", r.target)}}
                }],
                "properties": {"severity": f.severity.as_str(), "security-severity": score(f.severity), "remediation": f.remediation}
            }));
        }
    }
    let unreachable: Vec<Value> = reports
        .iter()
        .filter(|r| !r.reachable)
        .map(|r| {
            json!({
                "level": "error",
                "message": {"text": format!("{}: {}", r.target, r.error.clone().unwrap_or_default())}
            })
        })
        .collect();
    let doc = json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "mqsec",
                "version": env!("CARGO_PKG_VERSION"),
                "rules": rules
            }},
            "invocations": [{
                "executionSuccessful": reports.iter().all(|r| r.reachable),
                "toolExecutionNotifications": unreachable
            }],
            "results": results
        }]
    });
    serde_json::to_string_pretty(&doc).unwrap_or_default()
}
