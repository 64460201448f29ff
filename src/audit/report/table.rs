//! The terminal rendering: per target a table of findings, the not-tested list, and a one-line summary.

use comfy_table::{presets::UTF8_FULL_CONDENSED, ContentArrangement, Table};

use super::{count_line, TargetReport};
use crate::audit::checks::NotTested;

/// Table width when stdout is not a terminal (files, pipes, CI logs).
const FILE_WIDTH: u16 = 140;
/// Where the not-tested id and suite lists wrap.
const NOT_TESTED_WIDTH: usize = 100;

/// Not-tested checks grouped by reason, reasons in order of first appearance: twenty cert and
/// TLS ids that share "the port does not speak TLS" read as one line, not twenty.
fn by_reason(not_tested: &[NotTested]) -> Vec<(&str, Vec<&str>)> {
    let mut groups: Vec<(&str, Vec<&str>)> = Vec::new();
    for n in not_tested {
        match groups.iter_mut().find(|(r, _)| *r == n.reason) {
            Some((_, ids)) => ids.push(&n.id),
            None => groups.push((&n.reason, vec![&n.id])),
        }
    }
    groups
}

/// `head` followed by comma-separated names, continuation lines indented by four spaces.
fn wrap_ids(head: &str, ids: &[&str], width: usize) -> String {
    let mut out = String::from(head);
    let mut line_len = head.chars().count();
    for (i, id) in ids.iter().enumerate() {
        let piece = if i + 1 < ids.len() {
            format!("{id},")
        } else {
            id.to_string()
        };
        if i > 0 && line_len + 1 + piece.len() > width {
            out.push_str("\n    ");
            line_len = 4;
        } else if i > 0 {
            out.push(' ');
            line_len += 1;
        }
        out.push_str(&piece);
        line_len += piece.len();
    }
    out.push('\n');
    out
}

pub fn render(reports: &[TargetReport]) -> String {
    let mut out = String::new();
    for r in reports {
        out.push_str(&format!("== {} ==\n", r.target));
        if !r.reachable {
            out.push_str(&format!(
                "unreachable: {}\n\n",
                r.error.as_deref().unwrap_or("no answer")
            ));
            continue;
        }
        if let Some(tls) = &r.tls {
            out.push_str(&format!("TLS protocols: {}\n", tls.protocols.join(", ")));
            for (version, suites) in &tls.ciphers {
                let names: Vec<&str> = suites.iter().map(String::as_str).collect();
                out.push_str(&wrap_ids(
                    &format!("  {version} suites: "),
                    &names,
                    NOT_TESTED_WIDTH,
                ));
            }
            if let Some(c) = &tls.certificate {
                out.push_str(&format!(
                    "certificate: {} (issuer {}, {}, valid {} .. {})\n",
                    c.subject, c.issuer, c.key, c.not_before, c.not_after
                ));
            }
        }
        if !r.findings.is_empty() {
            let mut t = Table::new();
            t.load_preset(UTF8_FULL_CONDENSED)
                .set_content_arrangement(ContentArrangement::Dynamic);
            // The terminal's width when stdout is one; a fixed width for files and pipes.
            let width = t.width().filter(|w| *w >= 40).unwrap_or(FILE_WIDTH);
            t.set_width(width)
                .set_header(vec!["severity", "check", "title", "evidence"]);
            for f in &r.findings {
                t.add_row(vec![
                    f.severity.as_str(),
                    f.id.as_str(),
                    f.title.as_str(),
                    f.evidence.as_str(),
                ]);
            }
            out.push_str(&t.to_string());
            out.push('\n');
            out.push_str("remediation:\n");
            // One line per check: the same check can fire on the target and an --also port.
            let mut seen = std::collections::HashSet::new();
            for f in r.findings.iter().filter(|f| seen.insert(f.id.as_str())) {
                out.push_str(&format!("  {}: {}\n", f.id, f.remediation));
            }
        }
        if !r.not_tested.is_empty() {
            out.push_str("not tested (never counted as passed):\n");
            for (reason, ids) in by_reason(&r.not_tested) {
                out.push_str(&wrap_ids(&format!("  {reason}: "), &ids, NOT_TESTED_WIDTH));
            }
        }
        out.push_str(&format!(
            "summary: {}: {}, {} checks run, {} not tested, {} ms\n\n",
            r.target,
            count_line(&r.findings),
            r.checks_run.len(),
            r.not_tested.len(),
            r.duration_ms
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nt(id: &str, reason: &str) -> NotTested {
        NotTested {
            id: id.into(),
            reason: reason.into(),
        }
    }

    #[test]
    fn not_tested_grouped_by_reason_and_wrapped() {
        let list = vec![
            nt("cert-expired", "no TLS"),
            nt("identity-read-access", "no --username given"),
            nt("tls-v1-0-enabled", "no TLS"),
        ];
        let groups = by_reason(&list);
        assert_eq!(
            groups,
            vec![
                ("no TLS", vec!["cert-expired", "tls-v1-0-enabled"]),
                ("no --username given", vec!["identity-read-access"]),
            ]
        );
        let text = wrap_ids("  no TLS: ", &["aaaa", "bbbb", "cccc"], 21);
        assert_eq!(text, "  no TLS: aaaa, bbbb,\n    cccc\n");
        for line in text.lines() {
            assert!(line.len() <= 21, "{line:?}");
        }
    }

    #[test]
    fn one_remediation_line_per_check_and_wrapped_suites() {
        use crate::audit::checks::finding;
        let mut tls = crate::audit::report::TlsSummary::default();
        let suites: Vec<String> = (0..12).map(|i| format!("SUITE-NUMBER-{i}")).collect();
        tls.ciphers.insert("TLSv1.2".into(), suites);
        let mut r = TargetReport {
            target: "h:1".into(),
            reachable: true,
            error: None,
            transport: Some("tls".into()),
            tls: Some(tls),
            checks_run: vec!["anonymous-access".into()],
            not_tested: vec![],
            findings: vec![
                finding("anonymous-access", "over TLS"),
                finding("anonymous-access", "--also port 2"),
            ],
            duration_ms: 1,
        };
        r.normalise();
        let text = render(&[r]);
        let remediations = text
            .lines()
            .filter(|l| l.starts_with("  anonymous-access: "))
            .count();
        assert_eq!(remediations, 1, "{text}");
        assert!(text.contains("--also port 2"), "{text}");
        for line in text.lines().filter(|l| l.contains("SUITE-NUMBER")) {
            assert!(line.chars().count() <= NOT_TESTED_WIDTH, "{line}");
        }
        assert!(text.contains("SUITE-NUMBER-11"), "{text}");
    }
}
