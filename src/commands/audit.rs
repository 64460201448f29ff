//! `mqsec audit HOST:PORT...`: probe brokers like an auditor; report for people (table) and CI
//! (JSON, SARIF, exit code).

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, ValueEnum};
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use zeroize::Zeroizing;

use crate::audit::certs::Trust;
use crate::audit::checks::Severity;
use crate::audit::engine::{audit_target, Credentials, Options, Progress};
use crate::audit::report::{self, TargetReport};
use crate::audit::target::Target;
use crate::exit::{CliError, CmdResult, Outcome};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Table,
    Json,
    Sarif,
}

const EXAMPLES: &str = "\
Examples:
  mqsec audit broker.example:8883
  mqsec audit broker.example:8883 --also 1883 --cafile ca.pem --format json --fail-on medium
  MQSEC_PASSWORD=... mqsec audit broker.example:8883 --username auditor
  mqsec audit broker.example:443 --ws /mqtt --format sarif > audit.sarif

Read-only by default: --active (publishes) and --wordlist (tries passwords) are opt-in.
The password for --username comes from MQSEC_PASSWORD or --password-stdin, never argv.
Exit: 0 no finding at or above --fail-on; 1 findings at or above it; 2 a target unreachable
(connection refused, or neither TLS nor MQTT answered within --timeout) or bad arguments.";

/// Probe MQTT brokers for TLS, certificate and access-control weaknesses.
#[derive(Debug, Args)]
#[command(after_help = format!("{EXAMPLES}\n\n{}", crate::cli::EXIT_CODES_HELP))]
pub struct AuditArgs {
    /// Brokers to audit, as HOST:PORT (IPv6 as [ADDR]:PORT); audited concurrently.
    #[arg(required = true, value_name = "HOST:PORT")]
    pub targets: Vec<String>,
    /// Output format. JSON and SARIF never show a progress bar.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Exit 1 when any finding is at or above this severity.
    #[arg(long, value_enum, default_value_t = Severity::High, value_name = "SEVERITY")]
    pub fail_on: Severity,
    /// Seconds allowed for each connect and each read of every probe.
    #[arg(long, default_value_t = 5.0, value_name = "SECONDS")]
    pub timeout: f64,
    /// Report a certificate that expires within this many days.
    #[arg(long, default_value_t = 30, value_name = "DAYS")]
    pub warn_days: u32,
    /// Trust these CA certificates (PEM) instead of the system roots.
    #[arg(long, value_name = "FILE")]
    pub cafile: Option<PathBuf>,
    /// Also try this port of the same host (plaintext MQTT beside TLS); repeatable.
    #[arg(long, value_name = "PORT")]
    pub also: Vec<u16>,
    /// Audit MQTT over WebSocket at this path (wss:// when the port speaks TLS).
    #[arg(long, value_name = "PATH")]
    pub ws: Option<String>,
    /// Audit what this identity can do; password from MQSEC_PASSWORD or --password-stdin.
    #[arg(long, value_name = "USER")]
    pub username: Option<String>,
    /// Read the password for --username from one line of standard input.
    #[arg(long, requires = "username")]
    pub password_stdin: bool,
    /// Allow probes that publish (with --username or anonymous access).
    #[arg(long)]
    pub active: bool,
    /// Try `user:password` lines from FILE (rate-limited; stops at the first success).
    #[arg(long, value_name = "FILE")]
    pub wordlist: Option<PathBuf>,
    /// Milliseconds between two wordlist attempts.
    #[arg(long, default_value_t = 200, value_name = "MS")]
    pub wordlist_delay_ms: u64,
    /// Show retained message payloads (off: only topic names are reported).
    #[arg(long)]
    pub show_payloads: bool,
}

/// The most wordlist lines read: this is a weak-password spot check, not a cracking tool.
const MAX_WORDLIST: usize = 10_000;

fn read_wordlist(path: &Path) -> Result<Vec<Credentials>, CliError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        CliError::input(format!("{}: cannot read the wordlist: {e}", path.display()))
    })?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((user, pass)) = line.split_once(':') else {
            return Err(CliError::input(format!(
                "{}:{}: expected `user:password`",
                path.display(),
                i + 1
            )));
        };
        if user.is_empty() {
            return Err(CliError::input(format!(
                "{}:{}: empty user name",
                path.display(),
                i + 1
            )));
        }
        out.push(Credentials {
            username: user.to_string(),
            password: Zeroizing::new(pass.to_string()),
        });
        if out.len() > MAX_WORDLIST {
            return Err(CliError::input(format!(
                "{}: more than {MAX_WORDLIST} entries",
                path.display()
            )));
        }
    }
    if out.is_empty() {
        return Err(CliError::input(format!(
            "{}: no `user:password` lines",
            path.display()
        )));
    }
    Ok(out)
}

pub fn run(args: AuditArgs) -> CmdResult {
    let targets: Vec<Target> = args
        .targets
        .iter()
        .map(|s| Target::parse(s).map_err(|e| CliError::input(e.to_string())))
        .collect::<Result<_, _>>()?;
    if !(args.timeout.is_finite() && args.timeout > 0.0 && args.timeout <= 600.0) {
        return Err(CliError::input(
            "--timeout: expected seconds between 0 and 600",
        ));
    }
    if args.also.contains(&0) {
        return Err(CliError::input("--also: port 0 is not a port"));
    }
    if let Some(p) = &args.ws {
        if !p.starts_with('/') {
            return Err(CliError::input(format!(
                "--ws {p:?}: the path must start with /"
            )));
        }
    }
    let trust = match &args.cafile {
        Some(p) => Trust::from_cafile(p).map_err(|e| CliError::input(e.to_string()))?,
        None => Trust::system(),
    };
    let credentials = match &args.username {
        None => None,
        Some(u) => {
            let password = if args.password_stdin {
                crate::prompt::read_secret_line(&mut std::io::stdin().lock())
                    .map_err(|e| CliError::input(format!("--password-stdin: {e}")))?
            } else {
                match std::env::var("MQSEC_PASSWORD") {
                    Ok(p) if !p.is_empty() => Zeroizing::new(p),
                    _ => {
                        return Err(CliError::input(
                            "--username: set MQSEC_PASSWORD or pass --password-stdin (never a password on the command line)",
                        ))
                    }
                }
            };
            Some(Credentials {
                username: u.clone(),
                password,
            })
        }
    };
    let wordlist = match &args.wordlist {
        Some(p) => Some((p.clone(), read_wordlist(p)?)),
        None => None,
    };
    let opts = Arc::new(Options {
        timeout: Duration::from_secs_f64(args.timeout),
        warn_days: args.warn_days,
        trust,
        also: args.also.clone(),
        ws_path: args.ws.clone(),
        credentials,
        active: args.active,
        wordlist,
        wordlist_delay: Duration::from_millis(args.wordlist_delay_ms),
        show_payloads: args.show_payloads,
        now: time::OffsetDateTime::now_utc().unix_timestamp(),
    });

    let show_progress = args.format == Format::Table && std::io::stderr().is_terminal();
    let multi = MultiProgress::new();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| CliError::with_code(format!("cannot start the async runtime: {e}"), 2))?;
    let reports: Vec<TargetReport> = rt.block_on(async {
        let mut set = tokio::task::JoinSet::new();
        for (i, t) in targets.iter().cloned().enumerate() {
            let progress: Progress = if show_progress {
                let pb = multi.add(ProgressBar::new_spinner());
                pb.set_style(
                    ProgressStyle::with_template("{spinner} {prefix}: {msg}")
                        .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                );
                pb.set_prefix(t.to_string());
                pb.enable_steady_tick(Duration::from_millis(120));
                Arc::new(move |m: &str| pb.set_message(m.to_string()))
            } else {
                Arc::new(|_: &str| {})
            };
            let opts = opts.clone();
            set.spawn(async move { (i, audit_target(t, opts, progress).await) });
        }
        let mut out: Vec<(usize, TargetReport)> = Vec::new();
        while let Some(res) = set.join_next().await {
            match res {
                Ok(pair) => out.push(pair),
                Err(e) => out.push((
                    usize::MAX,
                    TargetReport::unreachable("?".into(), format!("audit task failed: {e}"), 0),
                )),
            }
        }
        out.sort_by_key(|(i, _)| *i);
        out.into_iter().map(|(_, r)| r).collect()
    });
    let _ = multi.clear();

    let text = match args.format {
        Format::Table => report::table::render(&reports),
        Format::Json => report::json::render(&reports),
        Format::Sarif => report::sarif::render(&reports),
    };
    println!("{}", text.trim_end());

    if let Some(r) = reports.iter().find(|r| !r.reachable) {
        return Err(CliError::with_code(
            format!(
                "{}: {}",
                r.target,
                r.error.as_deref().unwrap_or("unreachable")
            ),
            2,
        ));
    }
    let failing = reports
        .iter()
        .flat_map(|r| r.findings.iter())
        .filter(|f| f.severity >= args.fail_on)
        .count();
    if failing > 0 {
        if args.format == Format::Table {
            eprintln!(
                "mqsec audit: {failing} finding(s) at or above {} (--fail-on)",
                args.fail_on.as_str()
            );
        }
        Ok(Outcome::Negative)
    } else {
        Ok(Outcome::Success)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wordlist_lines() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("w.txt");
        std::fs::write(&p, "# comment\n\nalice:pw:with:colons\nbob:\n").unwrap();
        let w = read_wordlist(&p).unwrap();
        assert_eq!(w.len(), 2);
        assert_eq!(w[0].password.as_str(), "pw:with:colons");
        std::fs::write(&p, "alice\n").unwrap();
        let e = read_wordlist(&p).unwrap_err();
        assert!(e.message.contains("w.txt:1"), "{}", e.message);
    }
}
