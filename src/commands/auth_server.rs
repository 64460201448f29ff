//! `mqsec auth-server`: serve the password file and the ACL to clustered brokers over their HTTP
//! authentication interfaces (or `--check` the files).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::Args;

use crate::auth_server::http::{self, Options};
use crate::auth_server::{AuthServer, Settings};
use crate::broker::listener::tls::{TlsLayer, ALPN_HTTP};
use crate::broker::listener::Upgrade;
use crate::cli::EXIT_CODES_HELP;
use crate::config::model::{
    ConfLoc, FileOption, ListenerConfig, Located, RateLimit, Security, SecurityLogDest,
};
use crate::exit::{CliError, CmdResult, Outcome};
use crate::security::events::{self, Event, SecurityLog};
use crate::security::policy::KeptOld;

fn after_help() -> String {
    format!(
        "Endpoints (see docs/auth-server.md for each engine's configuration):
  /rabbitmq/user /rabbitmq/vhost /rabbitmq/resource /rabbitmq/topic
                      rabbitmq_auth_backend_http (GET or POST form); body allow | deny
  /emqx/authn /emqx/authz
                      EMQX 5 HTTP authentication / authorization (JSON POST or GET);
                      {{\"result\":\"allow\"|\"deny\"}}
  /vernemq/auth_on_register /vernemq/auth_on_publish /vernemq/auth_on_subscribe
                      VerneMQ webhooks; {{\"result\":\"ok\"}} or {{\"result\":{{\"error\":...}}}},
                      subscriptions with the topics modifier (QoS capped, 128 refused)
  /health             JSON: users, rules, counters

Decisions are those of `mqsec acl-check` for the same client, topic and access; a subscription
is asked as `--access subscribe-all` (these brokers never check each delivery, so the whole filter
must be readable). Password checks are those of `serve` (argon2id on a bounded pool, a cache of
recent successes, brute-force throttle). Every refusal is an HTTP 200 carrying the engine's own
\"no\", never an error status (EMQX would read one as \"no opinion\" and may then allow).

Examples:
  mqsec auth-server --password-file /etc/mqsec/passwd --acl-file /etc/mqsec/acl \\
      --listen 127.0.0.1:8090
  # TLS with a certificate from `mqsec gen-server-cert`
  mqsec auth-server --password-file passwd --acl-file acl --listen 0.0.0.0:8443 \\
      --certfile server.crt --keyfile server.key
  mqsec auth-server --password-file passwd --acl-file acl --check

Access tokens (--token-conf): a password of JWT form is checked as a token (serve's checks);
the username must be the token's username claim, because engines ask topic questions by
username. Its `acl`/`roles` claims join the ACL file's rules for that username until the token
expires; after that, topic questions are answered from the file alone.

SIGHUP: re-read both files and the token keys (a broken one keeps its previous version), the TLS
files, reopen the security log. SIGTERM or SIGINT: stop.

{EXIT_CODES_HELP}"
    )
}

/// Answer RabbitMQ, EMQX and VerneMQ authentication and ACL questions from mqsec's files.
#[derive(Debug, Args)]
#[command(
    long_about = "Serve a password file and an ACL file to clustered MQTT brokers over their HTTP \
                  authentication interfaces: RabbitMQ (rabbitmq_auth_backend_http), EMQX 5 (HTTP \
                  authentication and authorization) and VerneMQ (webhooks).",
    after_help = after_help()
)]
pub struct AuthServerArgs {
    /// Password file (mosquitto_passwd / mqsec passwd format)
    #[arg(long, value_name = "FILE")]
    pub password_file: PathBuf,
    /// ACL file (Mosquitto acl_file format, mqsec extensions allowed)
    #[arg(long, value_name = "FILE")]
    pub acl_file: PathBuf,
    /// Address and port to listen on (port 0: any free port, printed at start)
    #[arg(long, value_name = "ADDR:PORT", default_value = "127.0.0.1:8090")]
    pub listen: SocketAddr,
    /// TLS certificate chain (PEM), e.g. from `mqsec gen-server-cert`
    #[arg(long, value_name = "FILE", requires = "keyfile")]
    pub certfile: Option<PathBuf>,
    /// TLS private key (PEM)
    #[arg(long, value_name = "FILE", requires = "certfile")]
    pub keyfile: Option<PathBuf>,
    /// Requests per second from one source address (a broker node), bursts up to the same
    /// number; 0: no limit. Over it, the engine is told "deny"
    #[arg(long, value_name = "N", default_value_t = 5000)]
    pub rate_limit: u32,
    /// Security events as JSON lines: `stderr` or a file
    #[arg(long, value_name = "stderr|FILE")]
    pub security_log: Option<String>,
    /// RabbitMQ: the exchange the MQTT plugin publishes through (its mqtt.exchange)
    #[arg(long, value_name = "NAME", default_value = "amq.topic")]
    pub rabbitmq_exchange: String,
    /// Threads that verify passwords (0: one per core)
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub auth_workers: usize,
    /// Accept access tokens too: a file of `serve`'s `token_*` lines (token_key_file or
    /// token_jwks_file, token_algorithms, token_audience, ...). Re-read on SIGHUP
    #[arg(long, value_name = "FILE")]
    pub token_conf: Option<PathBuf>,
    /// Validate the files (and TLS material) and exit: 0 valid, 2 invalid
    #[arg(long)]
    pub check: bool,
}

fn file(path: &Path, option: &str) -> FileOption {
    FileOption {
        path: path.to_path_buf(),
        origin: format!("--{option}"),
    }
}

/// `serve`'s TLS layer (its loader and checks) on a listener made of the command-line options.
fn tls_layer(args: &AuthServerArgs) -> Result<Option<Arc<dyn Upgrade>>, CliError> {
    let (Some(cert), Some(key)) = (&args.certfile, &args.keyfile) else {
        return Ok(None);
    };
    let loc = |option: &str| ConfLoc {
        file: format!("--{option}"),
        line: 0,
    };
    let mut l = ListenerConfig::new(args.listen.port(), Some(args.listen.ip()), "--listen");
    l.tls.certfile = Some(Located {
        value: cert.clone(),
        at: loc("certfile"),
    });
    l.tls.keyfile = Some(Located {
        value: key.clone(),
        at: loc("keyfile"),
    });
    let layer = TlsLayer::new(Arc::new(l), ALPN_HTTP).map_err(|e| {
        // "--certfile:0: `certfile`: msg" reads badly for a command-line option.
        CliError::input(
            e.to_string()
                .replace(":0: `certfile`", "")
                .replace(":0: `keyfile`", ""),
        )
    })?;
    Ok(Some(Arc::new(layer)))
}

pub fn run(args: AuthServerArgs) -> CmdResult {
    let security_log = match args.security_log.as_deref() {
        None => SecurityLogDest::None,
        Some("stderr") => SecurityLogDest::Stderr,
        Some(path) => SecurityLogDest::File(file(&PathBuf::from(path), "security-log")),
    };
    let tokens = match &args.token_conf {
        None => None,
        Some(path) => Some(
            crate::config::mosquitto::read_token_file(path)
                .map_err(|e| CliError::input(e.to_string()))?
                .ok_or_else(|| {
                    CliError::input(format!(
                        "{}: no token_key_file or token_jwks_file line",
                        path.display()
                    ))
                })?,
        ),
    };
    let settings = Settings {
        tokens,
        password_file: file(&args.password_file, "password-file"),
        acl_file: file(&args.acl_file, "acl-file"),
        security: Security {
            security_log: security_log.clone(),
            auth_workers: args.auth_workers,
            ..Security::default()
        },
        rabbitmq_exchange: args.rabbitmq_exchange.clone(),
    };
    let server = AuthServer::start(settings).map_err(|e| CliError::input(e.to_string()))?;
    let tls = tls_layer(&args)?;
    if args.check {
        let files = server.files();
        println!(
            "auth-server: configuration OK; {} ({} users), {} ({} rules){}; listen {}{}",
            args.password_file.display(),
            files.passwords.user_count(),
            args.acl_file.display(),
            files.acl.rules().len(),
            match &args.token_conf {
                Some(p) => format!(", tokens from {}", p.display()),
                None => String::new(),
            },
            args.listen,
            if tls.is_some() { " (TLS)" } else { "" }
        );
        return Ok(Outcome::Success);
    }
    init_logging();
    if let Some(log) =
        SecurityLog::start(&security_log).map_err(|e| CliError::input(e.to_string()))?
    {
        events::install(log);
    }
    if tls.is_none() && !args.listen.ip().is_loopback() {
        tracing::warn!(listen = %args.listen, "no TLS on an address other hosts can reach: passwords cross the network in clear (use --certfile/--keyfile)");
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("mqsec-auth")
        .build()
        .map_err(|e| CliError::with_code(format!("cannot start the runtime: {e}"), 1))?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .map_err(|e| CliError::input(format!("--listen {}: {e}", args.listen)))?;
        let local = listener
            .local_addr()
            .map_err(|e| CliError::with_code(e.to_string(), 1))?;
        let server = Arc::new(server);
        tokio::spawn(reload_on_sighup(server.clone(), tls.clone()));
        let stop = crate::broker::termination_signal()
            .await
            .map_err(|e| CliError::with_code(e.to_string(), 1))?;
        // One line on stderr that tests and scripts can wait for (the port when --listen had 0).
        eprintln!(
            "mqsec auth-server: listening on {}://{local}",
            if tls.is_some() { "https" } else { "http" }
        );
        let rate_limit = (args.rate_limit > 0).then_some(RateLimit {
            per_second: args.rate_limit,
            burst: args.rate_limit,
        });
        http::serve(server, listener, Options { tls, rate_limit }, stop)
            .await
            .map_err(|e| CliError::with_code(e.to_string(), 1))?;
        Ok(Outcome::Success)
    })
}

async fn reload_on_sighup(server: Arc<AuthServer>, tls: Option<Arc<dyn Upgrade>>) {
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
        // Reading and parsing files is blocking work: off the reactor, TLS files included.
        let (s, t) = (server.clone(), tls.clone());
        let (kept, tls_reload) =
            tokio::task::spawn_blocking(move || (s.reload(), t.as_ref().and_then(|t| t.reload())))
                .await
                .unwrap_or_default();
        kept.iter().for_each(KeptOld::report);
        if let Some(Err(e)) = tls_reload {
            tracing::error!("reload: {e}; the previous TLS certificate stays in force");
        }
        tracing::info!(
            kept_previous = kept.len(),
            "reloaded the password and ACL files"
        );
        events::emit(Event::new("reload").reason(format!(
            "{} file(s) kept their previous version",
            kept.len()
        )));
    }
}

fn init_logging() {
    use tracing_subscriber::EnvFilter;
    let filter = std::env::var("MQSEC_LOG")
        .ok()
        .and_then(|v| EnvFilter::try_new(v).ok())
        .unwrap_or_else(|| EnvFilter::new("info,rustls=error"));
    use std::io::IsTerminal;
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .try_init();
}
