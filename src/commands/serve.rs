//! `mqsec serve`: run the MQTT broker (or `--check` its configuration).

use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;

use crate::broker::auth::recheck_sessions;
use crate::broker::store::MemoryStore;
use crate::broker::Broker;
use crate::broker::Server;
use crate::cli::EXIT_CODES_HELP;
use crate::config::model::{Config, ListenerProtocol, LogDest};
use crate::config::{defaults, mosquitto};
use crate::exit::{CliError, CmdResult, Outcome};
use crate::security::events::{self, Event, SecurityLog};
use crate::security::policy::{KeptOld, Policy, PolicySet};

fn serve_help() -> String {
    format!(
        "Examples:
  # local-only broker: 127.0.0.1:1883 and [::1]:1883, anonymous clients (nothing else can reach it)
  mqsec serve
  # a Mosquitto-style configuration file
  mqsec serve -c /etc/mqsec/mqsec.conf
  # validate the configuration (and the files it includes) without starting
  mqsec serve -c /etc/mqsec/mqsec.conf --check

A configuration file uses mosquitto.conf syntax (`listener 1883 0.0.0.0`, `max_queued_messages 1000`,
`include_dir conf.d`, `password_file`, `acl_file`, ...). TLS (`certfile`, `keyfile`, `cafile`,
`require_certificate`, `crlfile`, ...) and WebSocket (`protocol websockets`) listeners stack:
WebSocket over TLS is both. Options of features mqsec does not have (yet) are refused with the
file and line, never silently ignored. --check also loads the TLS files (key matches
certificate, chain, CRL issuer and expiry) and reads the password and ACL files, naming the line
of any error.
Security options beyond Mosquitto's: `denied_publish_action acknowledge|disconnect`,
`security_log stderr|FILE` (JSON lines), `auth_throttle_*` (brute-force protection),
`auth_workers`, `auth_queue_limit`, `auth_cache_size` (password checks).
SIGHUP: reload the TLS files, password_file and acl_file (a broken file keeps the previous one),
reopen the security log, disconnect clients whose user was removed, drop subscriptions no longer
allowed.
SIGTERM or SIGINT: stop accepting, send MQTT 5 clients DISCONNECT 0x8B, flush, exit 0.
SIGHUP: reload TLS certificates, CAs and CRLs for new connections (a broken file keeps the old).
Log verbosity: `log_type` in the file, or the MQSEC_LOG environment variable (e.g. debug).

`persistence true` keeps persistent sessions, their queued QoS 1/2 messages and retained messages
in `mqsec.redb` under `persistence_location DIR` (alias `data_dir`), so they survive a crash or a
restart; with `persistence_sync ack` (the default) a message is acknowledged only once it is on
disk. A damaged or foreign store file stops the start with one line (exit 2).

{EXIT_CODES_HELP}"
    )
}

/// Run the MQTT broker (MQTT 3.1, 3.1.1 and 5.0).
#[derive(Debug, Args)]
#[command(
    long_about = "Run the MQTT broker. Without -c it listens on 127.0.0.1:1883 and [::1]:1883 only \
                  and admits anonymous clients there, because nothing off this host can connect. \
                  With -c it reads a Mosquitto-style configuration file.",
    after_help = serve_help()
)]
pub struct ServeArgs {
    /// Configuration file (mosquitto.conf syntax).
    #[arg(short = 'c', long = "config", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Validate the configuration and exit: 0 valid, 2 invalid.
    #[arg(long)]
    pub check: bool,
}

pub fn run(args: ServeArgs) -> CmdResult {
    let config = match &args.config {
        Some(path) => mosquitto::read_file(path).map_err(|e| CliError::input(e.to_string()))?,
        None => defaults::embedded(),
    };
    // The files the configuration names are read now, so --check reports a broken one too.
    let (set, _) = PolicySet::load(&config, None).map_err(|e| CliError::input(e.to_string()))?;
    if args.check {
        for l in &config.listeners {
            let warnings =
                crate::broker::listener::check(l).map_err(|e| CliError::input(e.to_string()))?;
            for w in warnings {
                eprintln!("warning: {w}");
            }
        }
        println!("{}", summary(&config, &set));
        return Ok(Outcome::Success);
    }
    init_logging(&config);
    if let Some(log) = SecurityLog::start(&config.security.security_log)
        .map_err(|e| CliError::input(e.to_string()))?
    {
        events::install(log);
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("mqsec-broker")
        .build()
        .map_err(|e| CliError::with_code(format!("cannot start the runtime: {e}"), 1))?;
    rt.block_on(async move {
        let policy = Policy::with_set(Arc::new(config.clone()), set)
            .map_err(|e| CliError::with_code(e.to_string(), 1))?;
        for (l, lp) in config.listeners.iter().zip(policy.set().listeners.iter()) {
            if !lp.anonymous && lp.passwords.is_none() && lp.cert_name.is_none() && lp.tokens.is_none() {
                tracing::warn!(listener = %l.origin, "allow_anonymous is false and no password_file or token key is set: no client can connect on this listener");
            } else if lp.anonymous && !l.is_loopback_only() {
                tracing::warn!(listener = %l.origin, "anonymous clients admitted on a listener reachable from other hosts");
            }
        }
        let server = Server::bind(config, Arc::new(policy.clone()), Arc::new(MemoryStore::new()))
            .map_err(|e| CliError::input(e.to_string()))?;
        tokio::spawn(reload_on_sighup(policy, server.broker().clone()));
        let stop = crate::broker::termination_signal()
            .await
            .map_err(|e| CliError::with_code(e.to_string(), 1))?;
        server
            .run(stop)
            .await
            .map_err(|e| CliError::with_code(e.to_string(), 1))?;
        Ok(Outcome::Success)
    })
}

/// SIGHUP: re-read the password and ACL files and reopen the security log, then re-check the
/// clients already connected. Parsing runs off the reactor (a large ACL takes a while).
async fn reload_on_sighup(policy: Policy, broker: Arc<Broker>) {
    use tokio::signal::unix::{signal, SignalKind};
    let mut hup = match signal(SignalKind::hangup()) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "cannot catch SIGHUP: reloading is not available");
            return;
        }
    };
    while hup.recv().await.is_some() {
        events::reopen();
        // Parsing and the re-check of every session are blocking work: one trip off the reactor.
        let (p, b) = (policy.clone(), broker.clone());
        let done = tokio::task::spawn_blocking(move || {
            p.reload().map(|kept| {
                kept.iter().for_each(KeptOld::report);
                (kept.len(), recheck_sessions(&b))
            })
        })
        .await;
        let (kept, report) = match done {
            Ok(Ok(done)) => done,
            Ok(Err(e)) => {
                tracing::error!("reload failed: {e}; the previous files stay in force");
                events::emit(Event::new("reload_failed").reason(e.to_string()));
                continue;
            }
            Err(e) => {
                tracing::error!(error = %e, "reload failed");
                continue;
            }
        };
        tracing::info!(
            kept_previous = kept,
            disconnected = report.disconnected,
            subscriptions_removed = report.subscriptions_removed,
            subscriptions_downgraded = report.subscriptions_downgraded,
            "reloaded password and ACL files"
        );
        events::emit(Event::new("reload").reason(format!(
            "{} file(s) kept their previous version; {} client(s) disconnected, {} subscription(s) removed, {} downgraded",
            kept,
            report.disconnected,
            report.subscriptions_removed,
            report.subscriptions_downgraded
        )));
    }
}

fn summary(c: &Config, set: &PolicySet) -> String {
    let listeners: Vec<String> = c
        .listeners
        .iter()
        .zip(set.listeners.iter())
        .map(|(l, lp)| {
            let addr = match l.bind {
                Some(std::net::IpAddr::V6(ip)) => format!("[{ip}]:{}", l.port),
                Some(ip) => format!("{ip}:{}", l.port),
                None => format!("*:{}", l.port),
            };
            let anon = if l.anonymous_allowed() {
                "anonymous allowed"
            } else {
                "anonymous refused"
            };
            let transport = match (l.protocol, l.tls.enabled()) {
                (ListenerProtocol::Mqtt, false) => "mqtt",
                (ListenerProtocol::Mqtt, true) => "mqtt over TLS",
                (ListenerProtocol::WebSockets, false) => "websockets",
                (ListenerProtocol::WebSockets, true) => "websockets over TLS",
            };
            let mut parts = vec![transport.to_string()];
            if l.tls.require_certificate.is_some() {
                parts.push("client certificates required".into());
            }
            parts.push(anon.to_string());
            if let (Some(f), Some(v)) = (&l.auth.password_file, &lp.passwords) {
                parts.push(format!("password_file {f} ({} users)", v.user_count()));
            }
            if let (Some(f), Some(a)) = (&l.auth.acl_file, &lp.acl) {
                parts.push(format!("acl_file {f} ({} rules)", a.rules().len()));
            }
            if let (Some(t), Some(v)) = (&l.auth.token, &lp.tokens) {
                let kind = match t.key {
                    crate::config::model::TokenKeySource::KeyFile(_) => "token_key_file",
                    crate::config::model::TokenKeySource::Jwks(_) => "token_jwks_file",
                };
                parts.push(format!(
                    "{kind} {} ({} key(s), {})",
                    t.key.file(),
                    v.key_count(),
                    v.algorithm_names().join(",")
                ));
            }
            parts.push(format!(
                "max_connections {}",
                crate::broker::listener::connection_limit(l)
            ));
            format!("{addr} ({})", parts.join(", "))
        })
        .collect();
    let persistence = match (c.persistence.enabled, c.persistence.sync) {
        (false, _) => "persistence off".to_string(),
        (true, sync) => format!(
            "persistence {} (sync {})",
            c.data_dir.join(crate::broker::durable::FILE_NAME).display(),
            match sync {
                crate::config::model::SyncPolicy::Ack => "ack".to_string(),
                crate::config::model::SyncPolicy::Every(d) => format!("every {} s", d.as_secs()),
            }
        ),
    };
    format!(
        "{}: configuration OK; listeners: {}; max_packet_size {}, message_size_limit {}, max_inflight_messages {}, max_queued_messages {}, max_keepalive {}; {persistence}",
        c.source,
        listeners.join(", "),
        c.limits.max_packet_size,
        c.limits.message_size_limit,
        c.limits.max_inflight_messages,
        c.limits.max_queued_messages,
        c.limits.max_keepalive
    )
}

fn init_logging(c: &Config) {
    use tracing_subscriber::EnvFilter;
    let filter = std::env::var("MQSEC_LOG")
        .ok()
        .and_then(|v| EnvFilter::try_new(v).ok())
        // rustls warns about every client that puts an IP address in SNI (mosquitto_pub does):
        // noise at that volume. MQSEC_LOG=rustls=debug still shows it.
        .unwrap_or_else(|| match c.logging.level {
            "off" => EnvFilter::new("off"),
            level => EnvFilter::new(format!("{level},rustls=error")),
        });
    use std::io::IsTerminal;
    let ansi = match c.logging.dest {
        LogDest::Stdout => std::io::stdout().is_terminal(),
        _ => std::io::stderr().is_terminal(),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_ansi(ansi);
    let result = match (c.logging.dest, c.logging.timestamp) {
        (LogDest::None, _) => return,
        (LogDest::Stdout, true) => builder.with_writer(std::io::stdout).try_init(),
        (LogDest::Stdout, false) => builder
            .without_time()
            .with_writer(std::io::stdout)
            .try_init(),
        (LogDest::Stderr, true) => builder.with_writer(std::io::stderr).try_init(),
        (LogDest::Stderr, false) => builder
            .without_time()
            .with_writer(std::io::stderr)
            .try_init(),
    };
    let _ = result;
}
