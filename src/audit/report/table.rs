//! The terminal rendering: per target a table of findings, the not-tested list, and a one-line summary.

use comfy_table::{presets::UTF8_FULL_CONDENSED, ContentArrangement, Table};

use super::{count_line, TargetReport};

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
                out.push_str(&format!("  {version} suites: {}\n", suites.join(", ")));
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
                .set_content_arrangement(ContentArrangement::Dynamic)
                .set_width(140)
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
            for f in &r.findings {
                out.push_str(&format!("  {}: {}\n", f.id, f.remediation));
            }
        }
        if !r.not_tested.is_empty() {
            out.push_str("not tested:\n");
            for n in &r.not_tested {
                out.push_str(&format!("  {}: {}\n", n.id, n.reason));
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
