//! `mqsec serve`: run the MQTT broker (or `--check` its configuration).

use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;

use crate::broker::auth::AllowAnonymous;
use crate::broker::store::MemoryStore;
use crate::broker::Server;
use crate::cli::EXIT_CODES_HELP;
use crate::config::model::{Config, LogDest};
use crate::config::{defaults, mosquitto};
use crate::exit::{CliError, CmdResult, Outcome};

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
`include_dir conf.d`, ...). Options of features mqsec does not have yet (password_file, acl_file,
TLS, WebSockets) are refused with the file and line, never silently ignored.
SIGTERM or SIGINT: stop accepting, send MQTT 5 clients DISCONNECT 0x8B, flush, exit 0.
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
    if args.check {
        println!("{}", summary(&config));
        return Ok(Outcome::Success);
    }
    init_logging(&config);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("mqsec-broker")
        .build()
        .map_err(|e| CliError::with_code(format!("cannot start the runtime: {e}"), 1))?;
    rt.block_on(async move {
        let auth = Arc::new(AllowAnonymous {
            clientid_prefixes: config.client_ids.clientid_prefixes.clone(),
        });
        for l in &config.listeners {
            if !l.anonymous_allowed() {
                tracing::warn!(listener = %l.origin, "allow_anonymous is false and password_file is not supported yet: no client can connect on this listener");
            } else if !l.is_loopback_only() {
                tracing::warn!(listener = %l.origin, "anonymous clients admitted on a listener reachable from other hosts");
            }
        }
        let server = Server::bind(config, auth, Arc::new(MemoryStore::new()))
            .map_err(|e| CliError::input(e.to_string()))?;
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

fn summary(c: &Config) -> String {
    let listeners: Vec<String> = c
        .listeners
        .iter()
        .map(|l| {
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
            format!("{addr} ({anon})")
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
        .unwrap_or_else(|| EnvFilter::new(c.logging.level));
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
