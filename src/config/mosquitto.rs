//! The Mosquitto-style configuration reader: `option value...` lines, `#` comments,
//! `listener PORT [ADDR]` blocks and `include_dir`.
//!
//! Every line is accounted for: an option mqsec implements is applied, an option of a later
//! release is refused with "not supported yet" (running without it would silently weaken what the
//! operator asked for), one mqsec will not have is refused with the reason, and anything else is
//! an error with a "did you mean" suggestion.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::defaults;
use super::model::{
    CertUsername, CipherSuite, ConfLoc, Config, DeniedPublish, FileOption, ListenerConfig,
    ListenerProtocol, Located, LogDest, RateLimit, SecurityLogDest, SocketDomain, SyncPolicy,
    TlsMinVersion, TokenConfig, TokenKeySource, DEFAULT_MAX_TOPIC_LEVELS, DEFAULT_TOKEN_LEEWAY,
    PROTOCOL_MAX_PACKET_SIZE, TOKEN_ALGORITHMS,
};

/// How deep `include_dir` may nest: a directory that includes itself must not recurse forever.
const MAX_INCLUDE_DEPTH: usize = 8;
/// A config file larger than this is not a config file.
const MAX_CONFIG_BYTES: u64 = 4 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{file}:{line}: {message}")]
    At {
        file: String,
        line: usize,
        message: String,
    },
    #[error("{path}: {message}")]
    File { path: String, message: String },
}

/// Options mqsec applies now.
const SUPPORTED: &[&str] = &[
    "listener",
    "port",
    "socket_domain",
    "protocol",
    "max_connections",
    "max_connections_per_source",
    "allow_anonymous",
    "per_listener_settings",
    "max_qos",
    "max_topic_alias",
    "max_packet_size",
    "message_size_limit",
    "max_inflight_messages",
    "max_inflight_bytes",
    "max_queued_messages",
    "max_queued_bytes",
    "queue_qos0_messages",
    "max_keepalive",
    "retain_available",
    "persistent_client_expiration",
    "allow_zero_length_clientid",
    "auto_id_prefix",
    "clientid_prefixes",
    "set_tcp_nodelay",
    "sys_interval",
    "log_dest",
    "log_type",
    "connection_messages",
    "log_timestamp",
    "include_dir",
    "persistence",
    "data_dir",
    "persistence_location",
    "persistence_sync",
    "persistence_file",
    "autosave_interval",
    "autosave_on_changes",
    "max_topic_levels",
    "max_topic_length",
    "max_write_buffer",
    "write_stall_timeout",
    "connect_timeout",
    "allow_zero_keepalive",
    "max_sessions",
    "max_subscriptions_per_client",
    "max_retained_messages",
    "max_retained_bytes",
    "max_shared_groups",
    "certfile",
    "keyfile",
    "cafile",
    "capath",
    "crlfile",
    "require_certificate",
    "use_identity_as_username",
    "use_subject_as_username",
    "tls_version",
    "ciphers",
    "ciphers_tls1.3",
    "websockets_headers_size",
    "websockets_origins",
    "handshake_timeout",
    "connection_rate_limit",
    // authentication, authorization and the security log
    "password_file",
    "acl_file",
    "token_key_file",
    "token_jwks_file",
    "token_algorithms",
    "token_audience",
    "token_issuer",
    "token_leeway",
    "token_username_claim",
    "denied_publish_action",
    "security_log",
    "cert_expiry_warning_days",
    "auth_workers",
    "auth_queue_limit",
    "auth_cache_size",
    "auth_throttle_delay_after",
    "auth_throttle_user_limit",
    "auth_throttle_address_limit",
    "auth_throttle_time",
    "max_filters_per_subscribe",
];

/// Options of later mqsec releases: parsed so the error can say exactly that.
const LATER: &[(&str, &str)] = &[
    ("mount_point", "mount points"),
    (
        "bind_interface",
        "binding to an interface (use listener PORT ADDRESS)",
    ),
    ("bind_address", "bind_address (use listener PORT ADDRESS)"),
    ("memory_limit", "a global memory limit"),
    (
        "use_username_as_clientid",
        "client ids taken from usernames",
    ),
    ("log_facility", "syslog logging"),
    ("log_timestamp_format", "custom log timestamps"),
    (
        "check_retain_source",
        "re-checking the publisher of retained messages",
    ),
    ("upgrade_outgoing_qos", "QoS upgrades"),
    ("pid_file", "pid files"),
    (
        "user",
        "dropping privileges (run mqsec under a service user instead)",
    ),
];

/// Transport options mqsec refuses, each with the reason (running without them would not do what
/// the operator expects, or they name machinery mqsec does not have).
const REFUSED: &[(&str, &str)] = &[
    (
        "http_dir",
        "WebSocket listeners speak MQTT only and serve no files; put a web server in front for that",
    ),
    (
        "websockets_log_level",
        "there is no libwebsockets inside; `log_type websockets` or MQSEC_LOG=debug shows WebSocket handshakes",
    ),
    (
        "dhparamfile",
        "TLS 1.2 key exchange is ECDHE only, so there are no DH parameters to load",
    ),
    (
        "tls_keyform",
        "keyfile must be a PEM private key (PKCS#8, SEC1 or PKCS#1); no OpenSSL engines",
    ),
    (
        "tls_engine",
        "keyfile must be a PEM private key (PKCS#8, SEC1 or PKCS#1); no OpenSSL engines",
    ),
    (
        "tls_engine_kpass_sha1",
        "keyfile must be a PEM private key (PKCS#8, SEC1 or PKCS#1); no OpenSSL engines",
    ),
    ("psk_hint", "pre-shared-key TLS is not offered; use certificates"),
    ("psk_file", "pre-shared-key TLS is not offered; use certificates"),
];

/// Mosquitto options mqsec will not have (plugins and bridges run foreign code or new trust paths).
const NEVER: &[&str] = &[
    "auth_plugin",
    "plugin",
    "auth_plugin_deny_special_chars",
    "connection",
    "address",
    "bridge_attempt_unsubscribe",
    "bridge_bind_address",
    "bridge_max_packet_size",
    "bridge_outgoing_retain",
    "bridge_protocol_version",
    "cleansession",
    "local_cleansession",
    "local_clientid",
    "local_password",
    "local_username",
    "idle_timeout",
    "keepalive_interval",
    "topic",
    "try_private",
    "notifications",
    "remote_clientid",
    "remote_password",
    "remote_username",
    "restart_timeout",
    "start_type",
    "threshold",
];

/// Read a configuration file (and the directories it includes).
pub fn read_file(path: &Path) -> Result<Config, ConfigError> {
    let mut p = Parser::new(path.display().to_string());
    p.file(path, 0)?;
    p.finish()
}

/// Read a file of `token_*` lines only (`mqsec auth-server --token-conf`): the same options,
/// checks and messages as in a broker's configuration. `None` when the file has no such line.
pub fn read_token_file(path: &Path) -> Result<Option<TokenConfig>, ConfigError> {
    let mut p = Parser::new(path.display().to_string());
    p.only_tokens = true;
    p.file(path, 0)?;
    token_config(p.token_lines.iter())
}

/// Parse configuration text; `name` stands for the file in messages. `include_dir` paths are
/// resolved against the current directory.
pub fn parse_str(text: &str, name: &str) -> Result<Config, ConfigError> {
    let mut p = Parser::new(name.to_string());
    p.text(text, name, Path::new("."), 0)?;
    p.finish()
}

struct Parser {
    cfg: Config,
    /// Listener-scoped options written before any `listener` line apply to every listener.
    template: ListenerConfig,
    template_touched: bool,
    /// `allow_anonymous` lines: value and the listener they followed (None = before any).
    anonymous: Vec<(bool, Option<usize>)>,
    /// `password_file` / `acl_file` lines, placed like `allow_anonymous` in `finish`.
    auth_files: Vec<(AuthFile, FileOption, Option<usize>)>,
    /// `token_*` lines, placed like the auth files.
    token_lines: Vec<(TokenLine, ConfLoc, Option<usize>)>,
    /// A `--token-conf` file: every other option is refused.
    only_tokens: bool,
    current: Option<usize>,
    log_levels: Vec<&'static str>,
}

impl Parser {
    fn new(source: String) -> Parser {
        Parser {
            cfg: Config::empty(source),
            template: ListenerConfig::new(0, None, "template"),
            template_touched: false,
            anonymous: Vec::new(),
            auth_files: Vec::new(),
            token_lines: Vec::new(),
            only_tokens: false,
            current: None,
            log_levels: Vec::new(),
        }
    }

    fn file(&mut self, path: &Path, depth: usize) -> Result<(), ConfigError> {
        let file_err = |message: String| ConfigError::File {
            path: path.display().to_string(),
            message,
        };
        let meta = std::fs::metadata(path).map_err(|e| file_err(e.to_string()))?;
        if !meta.is_file() {
            return Err(file_err("not a regular file".into()));
        }
        if meta.len() > MAX_CONFIG_BYTES {
            return Err(file_err(format!(
                "larger than {MAX_CONFIG_BYTES} bytes; not a configuration file"
            )));
        }
        let bytes = std::fs::read(path).map_err(|e| file_err(e.to_string()))?;
        let text = String::from_utf8(bytes).map_err(|_| file_err("not valid UTF-8".into()))?;
        let base = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
            .to_path_buf();
        self.text(&text, &path.display().to_string(), &base, depth)
    }

    fn text(
        &mut self,
        text: &str,
        name: &str,
        base: &Path,
        depth: usize,
    ) -> Result<(), ConfigError> {
        for (idx, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (opt, rest) = match line.split_once(char::is_whitespace) {
                Some((o, r)) => (o, r.trim()),
                None => (line, ""),
            };
            let at = Loc {
                file: name,
                line: idx + 1,
                opt,
            };
            self.option(opt, rest, at, base, depth)?;
        }
        Ok(())
    }

    fn listener_mut(&mut self) -> &mut ListenerConfig {
        match self.current {
            Some(i) => &mut self.cfg.listeners[i],
            None => {
                self.template_touched = true;
                &mut self.template
            }
        }
    }

    fn option(
        &mut self,
        opt: &str,
        value: &str,
        at: Loc<'_>,
        base: &Path,
        depth: usize,
    ) -> Result<(), ConfigError> {
        if self.only_tokens && !opt.starts_with("token_") {
            return Err(at.err(format!(
                "option `{opt}` does not belong in a token file: only the token_* options do"
            )));
        }
        if let Some((_, feature)) = LATER.iter().find(|(o, _)| *o == opt) {
            return Err(at.err(format!(
                "option `{opt}` is not supported yet ({feature} comes in a later mqsec release)"
            )));
        }
        if let Some((_, why)) = REFUSED.iter().find(|(o, _)| *o == opt) {
            return Err(at.err(format!("option `{opt}` is not supported by mqsec: {why}")));
        }
        if NEVER.contains(&opt) || opt.starts_with("auth_opt_") || opt.starts_with("plugin_opt_") {
            return Err(at.err(format!(
                "option `{opt}` is not supported by mqsec (no plugins or bridges)"
            )));
        }
        match opt {
            "listener" => {
                let mut parts = value.split_whitespace();
                let port = parse_port(parts.next(), at)?;
                let bind = match parts.next() {
                    None => None,
                    Some(a) => Some(parse_ip(a, at)?),
                };
                if parts.next().is_some() {
                    return Err(at.err("`listener` takes PORT [BIND_ADDRESS]".into()));
                }
                let mut l = self.template.clone();
                l.port = port;
                l.bind = bind;
                l.origin = at.to_string();
                if self
                    .cfg
                    .listeners
                    .iter()
                    .any(|o| o.port == port && o.bind == bind)
                {
                    return Err(at.err(format!(
                        "a listener on port {port} with this address already exists"
                    )));
                }
                self.cfg.listeners.push(l);
                self.current = Some(self.cfg.listeners.len() - 1);
            }
            "port" => {
                // Mosquitto's deprecated default listener: every interface.
                let port = parse_port(Some(value), at)?;
                let mut l = self.template.clone();
                l.port = port;
                l.bind = None;
                l.origin = at.to_string();
                self.cfg.listeners.push(l);
                self.current = Some(self.cfg.listeners.len() - 1);
            }
            "socket_domain" => {
                let d = match value {
                    "ipv4" => SocketDomain::Ipv4,
                    "ipv6" => SocketDomain::Ipv6,
                    _ => {
                        return Err(
                            at.err(format!("socket_domain must be ipv4 or ipv6, not `{value}`"))
                        )
                    }
                };
                self.listener_mut().socket_domain = Some(d);
            }
            "protocol" => {
                self.listener_mut().protocol = match value {
                    "mqtt" => ListenerProtocol::Mqtt,
                    "websockets" => ListenerProtocol::WebSockets,
                    _ => {
                        return Err(at.err(format!(
                            "protocol must be mqtt or websockets, not `{value}`"
                        )))
                    }
                }
            }
            "certfile" => self.listener_mut().tls.certfile = Some(at.path(value, base)?),
            "keyfile" => self.listener_mut().tls.keyfile = Some(at.path(value, base)?),
            "cafile" => self.listener_mut().tls.cafile = Some(at.path(value, base)?),
            "capath" => self.listener_mut().tls.capath = Some(at.path(value, base)?),
            "crlfile" => self.listener_mut().tls.crlfile = Some(at.path(value, base)?),
            "require_certificate" => {
                let on = parse_bool(value, at)?;
                self.listener_mut().tls.require_certificate = on.then(|| at.loc());
            }
            "use_identity_as_username" | "use_subject_as_username" => {
                let which = if opt == "use_identity_as_username" {
                    CertUsername::CommonName
                } else {
                    CertUsername::Subject
                };
                let on = parse_bool(value, at)?;
                let tls = &mut self.listener_mut().tls;
                match (&tls.cert_username, on) {
                    (Some(c), true) if c.value != which => {
                        return Err(at.err(format!(
                            "use_identity_as_username and use_subject_as_username cannot both be true on one listener (the other was set at {})",
                            c.at
                        )))
                    }
                    (_, true) => tls.cert_username = Some(at.located(which)),
                    (Some(c), false) if c.value == which => tls.cert_username = None,
                    (_, false) => {}
                }
            }
            "tls_version" => {
                let v = match value {
                    "tlsv1.2" => TlsMinVersion::Tls12,
                    "tlsv1.3" => TlsMinVersion::Tls13,
                    "tlsv1.1" | "tlsv1" | "tlsv1.0" | "sslv3" => {
                        return Err(at.err(format!(
                            "`tls_version {value}` is refused: SSL 3.0, TLS 1.0 and TLS 1.1 are broken and deprecated (RFC 8996); use tlsv1.2 or tlsv1.3"
                        )))
                    }
                    _ => return Err(at.err(format!("tls_version must be tlsv1.2 or tlsv1.3, not `{value}`"))),
                };
                self.listener_mut().tls.min_version = Some(at.located(v));
            }
            "ciphers" => {
                let suites = parse_ciphers(value, at, TLS12_SUITES, "ciphers_tls1.3")?;
                self.listener_mut().tls.ciphers = Some(at.located(suites));
            }
            "ciphers_tls1.3" => {
                let suites = parse_ciphers(value, at, TLS13_SUITES, "ciphers")?;
                self.listener_mut().tls.ciphers_tls13 = Some(at.located(suites));
            }
            "websockets_headers_size" => {
                let n = parse_int(value, at, 0, 65_536)? as usize;
                self.cfg.websockets_headers_size = if n == 0 {
                    super::model::DEFAULT_WEBSOCKETS_HEADERS_SIZE
                } else if n < 512 {
                    return Err(at.err("websockets_headers_size below 512 bytes would refuse every WebSocket client".into()));
                } else {
                    n
                };
            }
            "websockets_origins" => {
                let mut origins = Vec::new();
                for o in value.split([',', ' ', '\t']).filter(|o| !o.is_empty()) {
                    origins.push(parse_origin(o).map_err(|m| at.err(m))?);
                }
                self.listener_mut().websockets_origins = origins;
            }
            "handshake_timeout" => {
                self.listener_mut().handshake_timeout =
                    Duration::from_secs(parse_int(value, at, 1, 300)? as u64)
            }
            "connection_rate_limit" => {
                let mut words = value.split_whitespace();
                let rate = parse_int(words.next().unwrap_or(""), at, 0, 1_000_000)? as u32;
                let burst = match words.next() {
                    None => rate,
                    Some(b) => parse_int(b, at, 1, 1_000_000)? as u32,
                };
                if words.next().is_some() {
                    return Err(at.err("`connection_rate_limit` takes RATE [BURST]".into()));
                }
                self.listener_mut().connection_rate_limit = (rate > 0).then_some(RateLimit {
                    per_second: rate,
                    burst: burst.max(1),
                });
            }
            "max_connections" => {
                let n = parse_int(value, at, -1, i64::from(i32::MAX))?;
                self.listener_mut().max_connections = if n < 0 { None } else { Some(n as usize) };
            }
            "max_connections_per_source" => {
                let n = parse_int(value, at, 0, i64::from(i32::MAX))?;
                self.listener_mut().max_connections_per_source = (n > 0).then_some(n as u32);
            }
            "allow_anonymous" => {
                let b = parse_bool(value, at)?;
                self.anonymous.push((b, self.current));
            }
            "per_listener_settings" => self.cfg.per_listener_settings = parse_bool(value, at)?,
            "max_qos" => self.listener_mut().max_qos = parse_int(value, at, 0, 2)? as u8,
            "max_topic_alias" => {
                self.listener_mut().max_topic_alias = parse_int(value, at, 0, 65535)? as u16
            }
            "max_packet_size" => {
                let n = parse_int(value, at, 0, i64::from(PROTOCOL_MAX_PACKET_SIZE))? as u32;
                if n != 0 && n < 20 {
                    return Err(
                        at.err("max_packet_size below 20 bytes would break every client".into())
                    );
                }
                self.cfg.limits.max_packet_size = if n == 0 { PROTOCOL_MAX_PACKET_SIZE } else { n };
            }
            "message_size_limit" => {
                let n = parse_int(value, at, 0, 268_435_455)? as u32;
                self.cfg.limits.message_size_limit = if n == 0 { 268_435_455 } else { n };
            }
            "max_inflight_messages" => {
                let n = parse_int(value, at, 0, 65535)? as u16;
                self.cfg.limits.max_inflight_messages = if n == 0 { 65535 } else { n };
            }
            "max_inflight_bytes" => {
                if parse_int(value, at, 0, i64::MAX)? != 0 {
                    return Err(at.err(
                        "option `max_inflight_bytes` is not supported yet (only 0, no limit); use max_inflight_messages"
                            .into(),
                    ));
                }
            }
            "max_queued_messages" => {
                self.cfg.limits.max_queued_messages =
                    parse_int(value, at, 0, i64::from(i32::MAX))? as usize
            }
            "max_queued_bytes" => {
                self.cfg.limits.max_queued_bytes = parse_int(value, at, 0, i64::MAX)? as usize
            }
            "queue_qos0_messages" => self.cfg.limits.queue_qos0_messages = parse_bool(value, at)?,
            "max_keepalive" => {
                let n = parse_int(value, at, 0, 65535)? as u16;
                if n != 0 && n < 10 {
                    return Err(at.err("max_keepalive below 10 seconds is not allowed".into()));
                }
                self.cfg.limits.max_keepalive = if n == 0 { 65535 } else { n };
            }
            "retain_available" => self.cfg.limits.retain_available = parse_bool(value, at)?,
            "persistent_client_expiration" => {
                self.cfg.limits.persistent_client_expiration = Some(parse_duration(value, at)?)
            }
            "allow_zero_length_clientid" => {
                self.cfg.client_ids.allow_zero_length_clientid = parse_bool(value, at)?
            }
            "auto_id_prefix" => {
                if value.is_empty() || value.len() > 64 {
                    return Err(at.err("auto_id_prefix must be 1 to 64 characters".into()));
                }
                self.cfg.client_ids.auto_id_prefix = value.to_string();
            }
            "clientid_prefixes" => {
                self.cfg.client_ids.clientid_prefixes = value
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(String::from)
                    .collect();
            }
            "set_tcp_nodelay" => self.cfg.set_tcp_nodelay = parse_bool(value, at)?,
            "sys_interval" => {
                self.cfg.sys_interval = Duration::from_secs(parse_int(value, at, 0, 86_400)? as u64)
            }
            "log_dest" => {
                let mut words = value.split_whitespace();
                self.cfg.logging.dest = match words.next() {
                    Some("stderr") => LogDest::Stderr,
                    Some("stdout") => LogDest::Stdout,
                    Some("none") => LogDest::None,
                    Some(d @ ("syslog" | "topic" | "file" | "dlt")) => {
                        return Err(at.err(format!(
                            "`log_dest {d}` is not supported yet (use stderr, stdout or none)"
                        )))
                    }
                    _ => return Err(at.err(format!("unknown log_dest `{value}`"))),
                };
            }
            "log_type" => {
                let lvl = match value {
                    "none" => "off",
                    "error" => "error",
                    "warning" => "warn",
                    "notice" | "information" | "subscribe" | "unsubscribe" | "websockets" => "info",
                    "debug" | "all" => "debug",
                    _ => return Err(at.err(format!("unknown log_type `{value}`"))),
                };
                self.log_levels.push(lvl);
            }
            "connection_messages" => self.cfg.logging.connection_messages = parse_bool(value, at)?,
            "log_timestamp" => self.cfg.logging.timestamp = parse_bool(value, at)?,
            "persistence" => self.cfg.persistence.enabled = parse_bool(value, at)?,
            // One directory under two names: Mosquitto's (a path prefix, so its trailing `/`
            // is fine) and mqsec's. Both given and different: say so rather than pick one.
            "data_dir" | "persistence_location" => {
                if value.is_empty() {
                    return Err(at.err(format!("{opt} needs a directory")));
                }
                let dir = base.join(value);
                if let Some(prev) = &self.cfg.persistence.location_origin {
                    if dir != self.cfg.data_dir {
                        return Err(at.err(format!(
                            "{opt} names {} but {prev} already named {}: data_dir and persistence_location are one setting",
                            dir.display(),
                            self.cfg.data_dir.display()
                        )));
                    }
                }
                self.cfg.data_dir = dir;
                self.cfg.persistence.location_origin = Some(at.to_string());
            }
            "persistence_sync" => {
                self.cfg.persistence.sync = match value {
                    "ack" => SyncPolicy::Ack,
                    v => SyncPolicy::Every(Duration::from_secs(parse_int(v, at, 1, 3600).map_err(
                        |_| {
                            at.err(format!(
                            "persistence_sync must be `ack` or seconds from 1 to 3600, not `{v}`"
                        ))
                        },
                    )? as u64)),
                }
            }
            // Mosquitto's snapshot settings: mqsec writes every change as it happens (see
            // persistence_sync), so they have nothing left to set. Accepted (a Mosquitto
            // configuration runs unchanged), checked, and otherwise ignored.
            "autosave_interval" => {
                parse_int(value, at, 0, i64::from(i32::MAX))?;
            }
            "autosave_on_changes" => {
                parse_bool(value, at)?;
            }
            "persistence_file" => {
                if value.is_empty() || value.contains('/') {
                    return Err(at.err("persistence_file must be a file name".into()));
                }
            }
            "max_topic_levels" => {
                self.cfg.limits.max_topic_levels =
                    parse_int(value, at, 1, DEFAULT_MAX_TOPIC_LEVELS as i64 * 10)? as usize
            }
            "max_topic_length" => {
                self.cfg.limits.max_topic_length = parse_int(value, at, 1, 65_535)? as usize
            }
            "max_write_buffer" => {
                self.cfg.limits.max_write_buffer =
                    parse_int(value, at, 4096, i64::from(i32::MAX))? as usize
            }
            // Seconds, like sys_interval (Mosquitto's duration suffixes are for days and months).
            "write_stall_timeout" => {
                self.cfg.limits.write_stall_timeout =
                    Duration::from_secs(parse_int(value, at, 1, 3600)? as u64)
            }
            "connect_timeout" => {
                self.cfg.limits.connect_timeout =
                    Duration::from_secs(parse_int(value, at, 1, 300)? as u64)
            }
            "allow_zero_keepalive" => self.cfg.limits.allow_zero_keepalive = parse_bool(value, at)?,
            "max_sessions" => {
                self.cfg.limits.max_sessions =
                    parse_int(value, at, 0, i64::from(i32::MAX))? as usize
            }
            "max_retained_messages" => {
                self.cfg.limits.max_retained_messages =
                    parse_int(value, at, 0, i64::from(i32::MAX))? as usize
            }
            "max_retained_bytes" => {
                self.cfg.limits.max_retained_bytes = parse_int(value, at, 0, i64::MAX)? as usize
            }
            "max_shared_groups" => {
                self.cfg.limits.max_shared_groups =
                    parse_int(value, at, 0, i64::from(i32::MAX))? as usize
            }
            "max_subscriptions_per_client" => {
                self.cfg.limits.max_subscriptions_per_client =
                    parse_int(value, at, 0, i64::from(i32::MAX))? as usize
            }
            "password_file" | "acl_file" => {
                let kind = if opt == "password_file" {
                    AuthFile::Password
                } else {
                    AuthFile::Acl
                };
                let file = file_option(value, at, base)?;
                self.auth_files.push((kind, file, self.current));
            }
            "token_key_file"
            | "token_jwks_file"
            | "token_algorithms"
            | "token_audience"
            | "token_issuer"
            | "token_leeway"
            | "token_username_claim" => {
                let line = token_line(opt, value, at, base)?;
                self.token_lines.push((line, at.loc(), self.current));
            }
            "denied_publish_action" => {
                self.cfg.security.denied_publish = match value {
                    "acknowledge" => DeniedPublish::Acknowledge,
                    "disconnect" => DeniedPublish::Disconnect,
                    _ => {
                        return Err(at.err(format!(
                            "denied_publish_action must be acknowledge or disconnect, not `{value}`"
                        )))
                    }
                }
            }
            "security_log" => {
                self.cfg.security.security_log = match value {
                    "none" => SecurityLogDest::None,
                    "stderr" => SecurityLogDest::Stderr,
                    _ => SecurityLogDest::File(file_option(value, at, base)?),
                }
            }
            "auth_workers" => {
                self.cfg.security.auth_workers = parse_int(value, at, 0, 256)? as usize
            }
            "auth_queue_limit" => {
                self.cfg.security.auth_queue_limit = parse_int(value, at, 1, 1_000_000)? as usize
            }
            "cert_expiry_warning_days" => {
                self.cfg.security.cert_expiry_warning_days = parse_int(value, at, 0, 3650)? as u32
            }
            "auth_cache_size" => {
                self.cfg.security.auth_cache_size = parse_int(value, at, 0, 10_000_000)? as usize
            }
            "auth_throttle_delay_after" => {
                self.cfg.security.throttle.delay_after = parse_int(value, at, 0, 1_000_000)? as u32
            }
            "auth_throttle_user_limit" => {
                self.cfg.security.throttle.user_limit = parse_int(value, at, 0, 1_000_000)? as u32
            }
            "auth_throttle_address_limit" => {
                self.cfg.security.throttle.address_limit =
                    parse_int(value, at, 0, 1_000_000)? as u32
            }
            "auth_throttle_time" => {
                self.cfg.security.throttle.time =
                    Duration::from_secs(parse_int(value, at, 1, 86_400)? as u64)
            }
            "max_filters_per_subscribe" => {
                self.cfg.limits.max_filters_per_subscribe =
                    parse_int(value, at, 0, i64::from(i32::MAX))? as usize
            }
            "include_dir" => {
                if depth >= MAX_INCLUDE_DEPTH {
                    return Err(at.err("include_dir nested too deeply (a loop?)".into()));
                }
                let dir = base.join(value);
                let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
                    .map_err(|e| at.err(format!("include_dir {}: {e}", dir.display())))?
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.extension().is_some_and(|x| x == "conf"))
                    .collect();
                files.sort();
                for f in files {
                    self.file(&f, depth + 1)?;
                }
            }
            _ => {
                let hint = suggest(opt)
                    .map(|s| format!("; did you mean `{s}`?"))
                    .unwrap_or_default();
                return Err(at.err(format!("unknown option `{opt}`{hint}")));
            }
        }
        Ok(())
    }

    fn finish(mut self) -> Result<Config, ConfigError> {
        if self.cfg.listeners.is_empty() {
            // Mosquitto 2.0's local-only mode; listener-scoped settings still apply.
            let mut ls = defaults::embedded().listeners;
            for l in &mut ls {
                let (port, bind, origin) = (l.port, l.bind, l.origin.clone());
                if self.template_touched {
                    *l = self.template.clone();
                    l.port = port;
                    l.bind = bind;
                    l.origin = origin;
                }
                l.allow_anonymous = Some(true);
            }
            self.cfg.listeners = ls;
        }
        for (value, listener) in self.anonymous.clone() {
            match (self.cfg.per_listener_settings, listener) {
                (true, Some(i)) => self.cfg.listeners[i].allow_anonymous = Some(value),
                _ => {
                    for l in &mut self.cfg.listeners {
                        l.allow_anonymous = Some(value);
                    }
                }
            }
        }
        for (kind, file, listener) in std::mem::take(&mut self.auth_files) {
            let targets: Vec<usize> = match (self.cfg.per_listener_settings, listener) {
                (true, Some(i)) => vec![i],
                _ => (0..self.cfg.listeners.len()).collect(),
            };
            for i in targets {
                let auth = &mut self.cfg.listeners[i].auth;
                match kind {
                    AuthFile::Password => auth.password_file = Some(file.clone()),
                    AuthFile::Acl => auth.acl_file = Some(file.clone()),
                }
            }
        }
        for i in 0..self.cfg.listeners.len() {
            let lines = self.token_lines.iter().filter(|(_, _, l)| {
                match (self.cfg.per_listener_settings, l) {
                    (true, Some(j)) => *j == i,
                    _ => true,
                }
            });
            self.cfg.listeners[i].auth.token = token_config(lines)?;
        }
        if let Some(level) = most_verbose(&self.log_levels) {
            self.cfg.logging.level = level;
        }
        for l in &self.cfg.listeners {
            check_tls(l)?;
        }
        Ok(self.cfg)
    }
}

/// The TLS options of one listener make sense together. Each error names the line of the option
/// that cannot apply.
fn check_tls(l: &ListenerConfig) -> Result<(), ConfigError> {
    let t = &l.tls;
    let err = |at: &ConfLoc, message: String| ConfigError::At {
        file: at.file.clone(),
        line: at.line,
        message,
    };
    match (&t.certfile, &t.keyfile) {
        (Some(c), None) => {
            return Err(err(
                &c.at,
                "`certfile` needs `keyfile` on the same listener".into(),
            ))
        }
        (None, Some(k)) => {
            return Err(err(
                &k.at,
                "`keyfile` needs `certfile` on the same listener".into(),
            ))
        }
        _ => {}
    }
    let tls_only = [
        ("cafile", t.cafile.as_ref().map(|x| &x.at)),
        ("capath", t.capath.as_ref().map(|x| &x.at)),
        ("crlfile", t.crlfile.as_ref().map(|x| &x.at)),
        ("tls_version", t.min_version.as_ref().map(|x| &x.at)),
        ("require_certificate", t.require_certificate.as_ref()),
        ("ciphers", t.ciphers.as_ref().map(|x| &x.at)),
        ("ciphers_tls1.3", t.ciphers_tls13.as_ref().map(|x| &x.at)),
        (
            "use_identity_as_username/use_subject_as_username",
            t.cert_username.as_ref().map(|x| &x.at),
        ),
    ];
    if !t.enabled() {
        if let Some((opt, Some(at))) = tls_only.iter().find(|(_, at)| at.is_some()) {
            return Err(err(
                at,
                format!("`{opt}` applies to TLS listeners only: set certfile and keyfile on this listener ({})", l.origin),
            ));
        }
        return Ok(());
    }
    if let Some(at) = &t.require_certificate {
        if t.cafile.is_none() && t.capath.is_none() {
            return Err(err(
                at,
                "`require_certificate true` needs cafile or capath: the CA that issued the client certificates".into(),
            ));
        }
    } else {
        if let Some(c) = &t.crlfile {
            return Err(err(
                &c.at,
                "`crlfile` checks client certificates, so it needs `require_certificate true` on this listener".into(),
            ));
        }
        if let Some(c) = &t.cert_username {
            return Err(err(
                &c.at,
                "a username from the client certificate needs `require_certificate true` on this listener".into(),
            ));
        }
    }
    Ok(())
}

/// OpenSSL cipher names mqsec offers, and the suite each stands for. TLS 1.2 is limited to
/// ECDHE key exchange with AEAD encryption (forward secrecy, no CBC padding oracles).
const TLS12_SUITES: &[(&str, CipherSuite)] = &[
    (
        "ECDHE-ECDSA-AES128-GCM-SHA256",
        CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
    ),
    (
        "ECDHE-ECDSA-AES256-GCM-SHA384",
        CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
    ),
    (
        "ECDHE-ECDSA-CHACHA20-POLY1305",
        CipherSuite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
    ),
    (
        "ECDHE-RSA-AES128-GCM-SHA256",
        CipherSuite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
    ),
    (
        "ECDHE-RSA-AES256-GCM-SHA384",
        CipherSuite::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
    ),
    (
        "ECDHE-RSA-CHACHA20-POLY1305",
        CipherSuite::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
    ),
];

/// OpenSSL's TLS 1.3 names are the IANA ones.
const TLS13_SUITES: &[(&str, CipherSuite)] = &[
    (
        "TLS_AES_128_GCM_SHA256",
        CipherSuite::TLS13_AES_128_GCM_SHA256,
    ),
    (
        "TLS_AES_256_GCM_SHA384",
        CipherSuite::TLS13_AES_256_GCM_SHA384,
    ),
    (
        "TLS_CHACHA20_POLY1305_SHA256",
        CipherSuite::TLS13_CHACHA20_POLY1305_SHA256,
    ),
];

/// OpenSSL keywords for classes of suites mqsec never offers: `!X`/`-X` of these excludes
/// nothing, so a hardening string copied from a Mosquitto config still reads the same.
const NEVER_OFFERED: &[&str] = &[
    "aNULL", "eNULL", "NULL", "ADH", "AECDH", "EXP", "EXPORT", "LOW", "MD5", "RC4", "DES", "3DES",
    "IDEA", "SEED", "CAMELLIA", "ARIA", "PSK", "SRP", "DSS", "aDSS", "kRSA", "SHA1",
];

/// A colon-separated OpenSSL cipher list, reduced to the suites mqsec offers in `table`.
/// Anything else is refused by name: mqsec does not evaluate OpenSSL's keywords (`HIGH`,
/// `@SECLEVEL`, ...), and a suite it cannot offer must not vanish silently from the list.
fn parse_ciphers(
    value: &str,
    at: Loc<'_>,
    table: &[(&str, CipherSuite)],
    other_option: &str,
) -> Result<Vec<CipherSuite>, ConfigError> {
    let offered = || table.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(":");
    let lookup = |name: &str| {
        table.iter().find_map(|(n, s)| {
            let iana = s.as_str().unwrap_or("");
            // rustls names TLS 1.3 suites TLS13_*; OpenSSL and IANA say TLS_*.
            let iana13 = iana.replacen("TLS13_", "TLS_", 1);
            (name.eq_ignore_ascii_case(n) || name == iana || name == iana13).then_some(*s)
        })
    };
    let mut out: Vec<CipherSuite> = Vec::new();
    for token in value.split([':', ',', ' ']).filter(|t| !t.is_empty()) {
        if let Some(name) = token.strip_prefix('!').or_else(|| token.strip_prefix('-')) {
            if let Some(s) = lookup(name) {
                out.retain(|x| *x != s);
                continue;
            }
            if NEVER_OFFERED.contains(&name) {
                continue;
            }
            return Err(at.err(format!(
                "`{}`: cannot evaluate the exclusion `{token}`; list the suites to offer by name: {}",
                at.opt,
                offered()
            )));
        }
        match lookup(token) {
            Some(s) if !out.contains(&s) => out.push(s),
            Some(_) => {}
            None => {
                let why = if TLS12_SUITES
                    .iter()
                    .chain(TLS13_SUITES)
                    .any(|(n, _)| n.eq_ignore_ascii_case(token))
                {
                    format!("`{token}` belongs in `{other_option}`")
                } else if token
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c == '@' || c == '+')
                    || token.starts_with('@')
                {
                    format!("`{token}` is an OpenSSL keyword; mqsec takes suite names only")
                } else {
                    format!("`{token}` is not offered by mqsec (TLS 1.2 is limited to ECDHE key exchange with AES-GCM or ChaCha20-Poly1305)")
                };
                return Err(at.err(format!("`{}`: {why}; available: {}", at.opt, offered())));
            }
        }
    }
    if out.is_empty() {
        return Err(at.err(format!(
            "`{}` leaves no cipher suite; available: {}",
            at.opt,
            offered()
        )));
    }
    Ok(out)
}

/// One `token_*` line, checked.
#[derive(Debug, Clone)]
enum TokenLine {
    KeyFile(FileOption),
    Jwks(FileOption),
    Algorithms(Vec<String>),
    Audience(String),
    Issuer(String),
    Leeway(Duration),
    UsernameClaim(String),
}

fn token_line(opt: &str, value: &str, at: Loc<'_>, base: &Path) -> Result<TokenLine, ConfigError> {
    let word = |what: &str| -> Result<String, ConfigError> {
        if value.is_empty() || value.contains(char::is_whitespace) {
            Err(at.err(format!("`{opt}` takes one {what}")))
        } else {
            Ok(value.to_string())
        }
    };
    Ok(match opt {
        "token_key_file" => TokenLine::KeyFile(file_option(value, at, base)?),
        "token_jwks_file" => TokenLine::Jwks(file_option(value, at, base)?),
        "token_algorithms" => {
            let mut algs = Vec::new();
            for a in value.split([',', ' ']).filter(|a| !a.is_empty()) {
                if a.eq_ignore_ascii_case("none") {
                    return Err(at.err(
                        "token_algorithms: `none` (unsigned tokens) is never accepted".into(),
                    ));
                }
                match TOKEN_ALGORITHMS.iter().find(|k| **k == a) {
                    Some(k) if !algs.contains(&k.to_string()) => algs.push(k.to_string()),
                    Some(_) => {}
                    None => {
                        return Err(at.err(format!(
                            "token_algorithms: unknown algorithm `{a}` (expected some of {})",
                            TOKEN_ALGORITHMS.join(", ")
                        )))
                    }
                }
            }
            if algs.is_empty() {
                return Err(at.err("`token_algorithms` needs at least one algorithm".into()));
            }
            let hmac = algs.iter().filter(|a| a.starts_with("HS")).count();
            if hmac != 0 && hmac != algs.len() {
                // One key file is either a shared secret or a public key: a list with both
                // kinds is the HS/RS key-confusion mistake waiting to happen.
                return Err(at.err(
                    "token_algorithms cannot mix HMAC (HS*) and public-key algorithms".into(),
                ));
            }
            TokenLine::Algorithms(algs)
        }
        "token_audience" => TokenLine::Audience(word("audience")?),
        "token_issuer" => TokenLine::Issuer(word("issuer")?),
        "token_leeway" => {
            TokenLine::Leeway(Duration::from_secs(parse_int(value, at, 0, 3600)? as u64))
        }
        _ => TokenLine::UsernameClaim(word("claim name")?),
    })
}

/// The token settings of one listener from the lines that apply to it (later lines win);
/// `token_*` lines without a key file are an error naming the first of them.
fn token_config<'a>(
    lines: impl Iterator<Item = &'a (TokenLine, ConfLoc, Option<usize>)>,
) -> Result<Option<TokenConfig>, ConfigError> {
    let mut key: Option<(TokenKeySource, ConfLoc)> = None;
    let mut first: Option<&ConfLoc> = None;
    let mut cfg = TokenConfig {
        key: TokenKeySource::KeyFile(FileOption {
            path: PathBuf::new(),
            origin: String::new(),
        }),
        algorithms: None,
        audience: None,
        issuer: None,
        leeway: DEFAULT_TOKEN_LEEWAY,
        username_claim: "sub".into(),
    };
    for (line, at, _) in lines {
        first.get_or_insert(at);
        match line {
            TokenLine::KeyFile(f) | TokenLine::Jwks(f) => {
                let src = match line {
                    TokenLine::KeyFile(_) => TokenKeySource::KeyFile(f.clone()),
                    _ => TokenKeySource::Jwks(f.clone()),
                };
                if let Some((old, old_at)) = &key {
                    if std::mem::discriminant(old) != std::mem::discriminant(&src) {
                        return Err(ConfigError::At {
                            file: at.file.clone(),
                            line: at.line,
                            message: format!(
                                "token_key_file and token_jwks_file cannot both apply to one listener (the other was set at {old_at})"
                            ),
                        });
                    }
                }
                key = Some((src, at.clone()));
            }
            TokenLine::Algorithms(a) => {
                cfg.algorithms = Some(Located {
                    value: a.clone(),
                    at: at.clone(),
                })
            }
            TokenLine::Audience(a) => cfg.audience = Some(a.clone()),
            TokenLine::Issuer(i) => cfg.issuer = Some(i.clone()),
            TokenLine::Leeway(d) => cfg.leeway = *d,
            TokenLine::UsernameClaim(c) => cfg.username_claim = c.clone(),
        }
    }
    match (key, first) {
        (Some((k, _)), _) => {
            cfg.key = k;
            Ok(Some(cfg))
        }
        (None, Some(at)) => Err(ConfigError::At {
            file: at.file.clone(),
            line: at.line,
            message: "token_* options need token_key_file or token_jwks_file on the same listener"
                .into(),
        }),
        (None, None) => Ok(None),
    }
}

#[derive(Debug, Clone, Copy)]
enum AuthFile {
    Password,
    Acl,
}

/// A file option's value: relative paths are taken from the directory of the file that names
/// them (like `data_dir` and `include_dir`), so a config works from any working directory.
fn file_option(value: &str, at: Loc<'_>, base: &Path) -> Result<FileOption, ConfigError> {
    if value.is_empty() {
        return Err(at.err(format!("`{}` needs a file path", at.opt)));
    }
    Ok(FileOption {
        path: base.join(value),
        origin: at.to_string(),
    })
}

fn most_verbose(levels: &[&'static str]) -> Option<&'static str> {
    const ORDER: [&str; 5] = ["off", "error", "warn", "info", "debug"];
    levels
        .iter()
        .copied()
        .max_by_key(|l| ORDER.iter().position(|o| o == l).unwrap_or(0))
}

#[derive(Clone, Copy)]
struct Loc<'a> {
    file: &'a str,
    line: usize,
    /// The option being parsed, so a bad value names its field.
    opt: &'a str,
}

impl Loc<'_> {
    fn err(self, message: String) -> ConfigError {
        ConfigError::At {
            file: self.file.to_string(),
            line: self.line,
            message,
        }
    }
}

impl Loc<'_> {
    fn loc(self) -> ConfLoc {
        ConfLoc {
            file: self.file.to_string(),
            line: self.line,
        }
    }

    fn located<T>(self, value: T) -> Located<T> {
        Located {
            value,
            at: self.loc(),
        }
    }

    /// A file option's value, relative to the directory of the file that names it.
    fn path(self, value: &str, base: &Path) -> Result<Located<PathBuf>, ConfigError> {
        if value.is_empty() {
            return Err(self.err(format!("`{}` needs a path", self.opt)));
        }
        Ok(self.located(base.join(value)))
    }
}

impl std::fmt::Display for Loc<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.file, self.line)
    }
}

fn parse_bool(v: &str, at: Loc<'_>) -> Result<bool, ConfigError> {
    match v {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(at.err(format!("`{}` expects true or false, not `{v}`", at.opt))),
    }
}

/// A web origin as browsers send it in `Origin`: `scheme://host[:port]`, no path. Kept in
/// lower case (scheme and host are case-insensitive).
fn parse_origin(o: &str) -> Result<String, String> {
    let lower = o.to_ascii_lowercase();
    let rest = lower
        .strip_prefix("https://")
        .or_else(|| lower.strip_prefix("http://"));
    match rest {
        Some(host) if !host.is_empty() && !host.contains(['/', '?', '#', '*']) => Ok(lower),
        _ => Err(format!(
            "websockets_origins: `{o}` is not an origin: expected scheme://host[:port] \
             (http or https, no path, no wildcard), e.g. https://dashboard.example.com"
        )),
    }
}

fn parse_int(v: &str, at: Loc<'_>, min: i64, max: i64) -> Result<i64, ConfigError> {
    match v.parse::<i64>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(at.err(format!(
            "`{}` expects a whole number from {min} to {max}, not `{v}`",
            at.opt
        ))),
    }
}

fn parse_port(v: Option<&str>, at: Loc<'_>) -> Result<u16, ConfigError> {
    let v = v.ok_or_else(|| at.err("missing port number".into()))?;
    match v.parse::<u16>() {
        Ok(p) if p > 0 => Ok(p),
        _ => Err(at.err(format!("port must be 1 to 65535, not `{v}`"))),
    }
}

fn parse_ip(v: &str, at: Loc<'_>) -> Result<IpAddr, ConfigError> {
    let trimmed = v.trim_start_matches('[').trim_end_matches(']');
    match trimmed {
        "localhost" => Ok(IpAddr::V4(std::net::Ipv4Addr::LOCALHOST)),
        _ => trimmed.parse().map_err(|_| {
            at.err(format!(
                "bind address must be an IP address (host names other than localhost are not resolved), not `{v}`"
            ))
        }),
    }
}

/// Mosquitto's duration syntax: a number followed by h, d, w, m (months) or y.
fn parse_duration(v: &str, at: Loc<'_>) -> Result<Duration, ConfigError> {
    crate::duration::parse(v, crate::duration::MOSQUITTO_UNITS).map_err(|_| {
        at.err(format!(
            "`{}` expects a duration like 2h, 7d, 1w, 3m or 1y, not `{v}`",
            at.opt
        ))
    })
}

fn known_options() -> impl Iterator<Item = &'static str> {
    SUPPORTED
        .iter()
        .copied()
        .chain(LATER.iter().map(|(o, _)| *o))
        .chain(REFUSED.iter().map(|(o, _)| *o))
        .chain(NEVER.iter().copied())
}

/// The nearest known option within a small edit distance.
fn suggest(opt: &str) -> Option<&'static str> {
    let limit = (opt.len() / 3).clamp(1, 3);
    known_options()
        .map(|k| (strsim::levenshtein(opt, k), k))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> String {
        parse_str(text, "t.conf").unwrap_err().to_string()
    }

    #[test]
    fn listeners_and_limits() {
        let c = parse_str(
            "# c\nmax_qos 1\nlistener 1883 127.0.0.1\nmax_connections 10\n\nlistener 8884 ::1\nallow_anonymous true\nmax_inflight_messages 5\nmessage_size_limit 0\npersistent_client_expiration 2d\n",
            "t.conf",
        )
        .unwrap();
        assert_eq!(c.listeners.len(), 2);
        assert_eq!(c.listeners[0].max_connections, Some(10));
        assert_eq!(c.listeners[0].max_qos, 1);
        assert_eq!(c.listeners[1].max_connections, None);
        assert!(c.listeners.iter().all(|l| l.allow_anonymous == Some(true)));
        assert_eq!(c.limits.max_inflight_messages, 5);
        assert_eq!(c.limits.message_size_limit, 268_435_455);
        assert_eq!(
            c.limits.persistent_client_expiration,
            Some(Duration::from_secs(2 * 86_400))
        );
    }

    #[test]
    fn per_listener_anonymous() {
        let c = parse_str(
            "per_listener_settings true\nlistener 1 0.0.0.0\nallow_anonymous false\nlistener 2 127.0.0.1\n",
            "t",
        )
        .unwrap();
        assert!(!c.listeners[0].anonymous_allowed());
        assert!(c.listeners[1].anonymous_allowed());
        let c = parse_str("listener 1 0.0.0.0\n", "t").unwrap();
        assert!(!c.listeners[0].anonymous_allowed());
    }

    #[test]
    fn no_listener_means_local_only() {
        let c = parse_str("max_queued_messages 5\n", "t").unwrap();
        assert_eq!(c.listeners.len(), 2);
        assert!(c
            .listeners
            .iter()
            .all(|l| l.is_loopback_only() && l.anonymous_allowed()));
        assert_eq!(c.limits.max_queued_messages, 5);
    }

    #[test]
    fn filters_per_subscribe() {
        assert_eq!(
            super::super::model::Limits::default().max_filters_per_subscribe,
            1000
        );
        let c = parse_str(
            "max_filters_per_subscribe 0
",
            "t",
        )
        .unwrap();
        assert_eq!(c.limits.max_filters_per_subscribe, 0);
        let c = parse_str(
            "max_filters_per_subscribe 25
",
            "t",
        )
        .unwrap();
        assert_eq!(c.limits.max_filters_per_subscribe, 25);
        assert!(err("max_filters_per_subscribe -1\n").contains("t.conf:1:"));
    }

    #[test]
    fn unknown_option_suggests() {
        let e = err("listener 1883\nmax_inflight_mesages 3\n");
        assert!(
            e.starts_with("t.conf:2: unknown option `max_inflight_mesages`"),
            "{e}"
        );
        assert!(e.contains("did you mean `max_inflight_messages`"), "{e}");
        let e = err("zzzzzzzzzz 1\n");
        assert!(!e.contains("did you mean"), "{e}");
    }

    #[test]
    fn later_options_refused_with_location() {
        let e = err("listener 1883\n\nmount_point x/\n");
        assert!(
            e.starts_with("t.conf:3: option `mount_point` is not supported yet"),
            "{e}"
        );
        assert!(parse_str("persistence false\n", "t").is_ok());
        assert!(err("auth_plugin /x.so\n").contains("not supported by mqsec"));
    }

    #[test]
    fn tls_and_websocket_listeners() {
        let c = parse_str(
            "listener 8883\ncertfile /c/server.crt\nkeyfile k.key\ncafile /c/ca.crt\nrequire_certificate true\n\
             crlfile /c/crl.pem\nuse_identity_as_username true\ntls_version tlsv1.3\n\
             ciphers ECDHE-RSA-AES128-GCM-SHA256:TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384:!aNULL:!MD5\n\
             ciphers_tls1.3 TLS_AES_256_GCM_SHA384\n\
             listener 8080 127.0.0.1\nprotocol websockets\nhandshake_timeout 3\nconnection_rate_limit 5 20\n\
             max_connections_per_source 50\nwebsockets_headers_size 2048\n",
            "t.conf",
        )
        .unwrap();
        let tls = &c.listeners[0].tls;
        assert!(tls.enabled());
        assert_eq!(
            tls.keyfile.as_ref().unwrap().value,
            PathBuf::from("./k.key")
        );
        assert_eq!(tls.certfile.as_ref().unwrap().at.to_string(), "t.conf:2");
        assert_eq!(tls.require_certificate.as_ref().unwrap().line, 5);
        assert_eq!(
            c.listeners[0].cert_username(),
            Some(CertUsername::CommonName)
        );
        assert_eq!(
            tls.min_version.as_ref().unwrap().value,
            TlsMinVersion::Tls13
        );
        assert_eq!(
            tls.ciphers.as_ref().unwrap().value,
            vec![
                CipherSuite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
                CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384
            ]
        );
        assert_eq!(
            tls.ciphers_tls13.as_ref().unwrap().value,
            vec![CipherSuite::TLS13_AES_256_GCM_SHA384]
        );
        let ws = &c.listeners[1];
        assert_eq!(ws.protocol, ListenerProtocol::WebSockets);
        assert!(!ws.tls.enabled());
        assert_eq!(ws.handshake_timeout, Duration::from_secs(3));
        assert_eq!(
            ws.connection_rate_limit,
            Some(RateLimit {
                per_second: 5,
                burst: 20
            })
        );
        assert_eq!(ws.max_connections_per_source, Some(50));
        assert_eq!(c.listeners[0].max_connections_per_source, None);
        assert_eq!(c.listeners[0].handshake_timeout, Duration::from_secs(10));
        assert_eq!(c.websockets_headers_size, 2048);
    }

    #[test]
    fn tls_options_that_cannot_apply_name_their_line() {
        for (conf, want) in [
            ("listener 1\ncertfile /a\n", "t.conf:2: `certfile` needs `keyfile`"),
            ("listener 1\nkeyfile /a\n", "t.conf:2: `keyfile` needs `certfile`"),
            ("listener 1\n\ncafile /a\n", "t.conf:3: `cafile` applies to TLS listeners only"),
            (
                "listener 1\ncertfile /a\nkeyfile /b\nrequire_certificate true\n",
                "t.conf:4: `require_certificate true` needs cafile or capath",
            ),
            (
                "listener 1\ncertfile /a\nkeyfile /b\ncafile /c\ncrlfile /d\n",
                "t.conf:5: `crlfile` checks client certificates",
            ),
            (
                "listener 1\ncertfile /a\nkeyfile /b\ncafile /c\nuse_subject_as_username true\n",
                "t.conf:5: a username from the client certificate needs `require_certificate true`",
            ),
            (
                "listener 1\nuse_identity_as_username true\nuse_subject_as_username true\n",
                "t.conf:3: use_identity_as_username and use_subject_as_username cannot both be true",
            ),
            ("listener 1\ntls_version tlsv1.1\n", "t.conf:2: `tls_version tlsv1.1` is refused"),
            ("tls_version sslv3\n", "t.conf:1: `tls_version sslv3` is refused"),
            ("tls_version tls13\n", "tls_version must be tlsv1.2 or tlsv1.3"),
            ("ciphers HIGH:!aNULL\n", "`HIGH` is an OpenSSL keyword"),
            ("ciphers AES128-SHA\n", "`AES128-SHA` is not offered by mqsec"),
            ("ciphers TLS_AES_128_GCM_SHA256\n", "belongs in `ciphers_tls1.3`"),
            ("ciphers_tls1.3 TLS_AES_128_CCM_SHA256\n", "not offered by mqsec"),
            ("ciphers ECDHE-RSA-AES128-GCM-SHA256:!ECDHE-RSA-AES128-GCM-SHA256\n", "leaves no cipher suite"),
            ("ciphers ECDHE-RSA-AES128-GCM-SHA256:!RSA\n", "cannot evaluate the exclusion `!RSA`"),
            ("http_dir /var/www\n", "t.conf:1: option `http_dir` is not supported by mqsec: WebSocket listeners speak MQTT only"),
            ("dhparamfile /x\n", "no DH parameters"),
            ("protocol http\n", "protocol must be mqtt or websockets"),
            ("websockets_headers_size 100\n", "below 512"),
            ("handshake_timeout 0\n", "`handshake_timeout` expects a whole number from 1 to 300"),
            ("connection_rate_limit 5 6 7\n", "takes RATE [BURST]"),
            ("max_connections_per_source -1\n", "t.conf:1"),
            ("certfile\n", "`certfile` needs a path"),
        ] {
            let e = err(conf);
            assert!(e.contains(want), "{conf:?}: {e}");
        }
        // Switched off again: no longer a TLS-only setting in the way.
        let c = parse_str(
            "listener 1\nuse_identity_as_username true\nuse_identity_as_username false\nrequire_certificate false\n",
            "t",
        )
        .unwrap();
        assert_eq!(c.listeners[0].cert_username(), None);
        assert_eq!(c.listeners[0].connection_rate_limit, None);
        // Before any listener: every listener (here the embedded loopback ones) gets it.
        let c = parse_str("certfile /a\nkeyfile /b\n", "t").unwrap();
        assert!(c.listeners.iter().all(|l| l.tls.enabled()));
    }

    #[test]
    fn token_options_per_listener_and_their_errors() {
        let c = parse_str(
            "per_listener_settings true\nlistener 1 127.0.0.1\ntoken_key_file k.pem\ntoken_algorithms ES256,ES384\ntoken_audience mqtt\ntoken_leeway 0\nlistener 2 0.0.0.0\npassword_file a.pw\n",
            "t.conf",
        )
        .unwrap();
        let t = c.listeners[0].auth.token.as_ref().unwrap();
        assert_eq!(
            t.key,
            TokenKeySource::KeyFile(FileOption {
                path: PathBuf::from("./k.pem"),
                origin: "t.conf:3".into()
            })
        );
        assert_eq!(t.algorithms.as_ref().unwrap().value, ["ES256", "ES384"]);
        assert_eq!(t.audience.as_deref(), Some("mqtt"));
        assert_eq!(
            (t.leeway, t.username_claim.as_str(), t.issuer.as_ref()),
            (Duration::ZERO, "sub", None)
        );
        assert!(c.listeners[1].auth.token.is_none());
        // Without per_listener_settings every listener takes them.
        let c = parse_str(
            "listener 1\nlistener 2\ntoken_jwks_file keys.json\n",
            "t.conf",
        )
        .unwrap();
        assert!(c
            .listeners
            .iter()
            .all(|l| matches!(l.auth.token.as_ref().unwrap().key, TokenKeySource::Jwks(_))));
        assert!(err("token_key_file k\ntoken_algorithms none\n")
            .contains("t.conf:2: token_algorithms: `none`"));
        assert!(err("token_key_file k\ntoken_algorithms HS256 RS256\n").contains("cannot mix"));
        assert!(
            err("token_key_file k\ntoken_algorithms HS999\n").contains("unknown algorithm `HS999`")
        );
        assert!(err("listener 1\ntoken_audience a\n")
            .contains("t.conf:2: token_* options need token_key_file"));
        assert!(err("token_key_file k\ntoken_jwks_file j\n").contains("cannot both apply"));
        assert!(err("token_key_file k\ntoken_leeway -1\n").contains("t.conf:2"));
    }

    #[test]
    fn auth_files_global_or_per_listener() {
        use std::path::Path;
        // Without per_listener_settings the last line counts for every listener, wherever it is.
        let c = parse_str(
            "listener 1 127.0.0.1\npassword_file a.pw\nlistener 2 0.0.0.0\nacl_file /etc/x.acl\npassword_file b.pw\n",
            "t.conf",
        )
        .unwrap();
        for l in &c.listeners {
            let pw = l.auth.password_file.as_ref().unwrap();
            assert_eq!(pw.path, Path::new("./b.pw"));
            assert_eq!(pw.origin, "t.conf:5");
            assert_eq!(
                l.auth.acl_file.as_ref().unwrap().path,
                Path::new("/etc/x.acl")
            );
        }
        // With it, each listener has its own; lines before any listener apply to all.
        let c = parse_str(
            "per_listener_settings true\nacl_file all.acl\nlistener 1 127.0.0.1\nlistener 2 0.0.0.0\npassword_file two.pw\nallow_anonymous false\n",
            "t.conf",
        )
        .unwrap();
        assert!(c.listeners[0].auth.password_file.is_none());
        assert!(c.listeners[0].anonymous_allowed());
        assert_eq!(
            c.listeners[1].auth.password_file.as_ref().unwrap().path,
            Path::new("./two.pw")
        );
        assert!(!c.listeners[1].anonymous_allowed());
        assert!(c.listeners.iter().all(|l| l.auth.acl_file.is_some()));
    }

    #[test]
    fn security_settings() {
        use crate::config::model::{DeniedPublish, SecurityLogDest};
        let c = parse_str(
            "denied_publish_action disconnect\nsecurity_log log/sec.jsonl\nauth_workers 3\nauth_queue_limit 10\nauth_cache_size 0\nauth_throttle_delay_after 1\nauth_throttle_user_limit 4\nauth_throttle_address_limit 0\nauth_throttle_time 2\n",
            "t.conf",
        )
        .unwrap();
        let s = &c.security;
        assert_eq!(s.denied_publish, DeniedPublish::Disconnect);
        assert!(
            matches!(&s.security_log, SecurityLogDest::File(f) if f.path == std::path::Path::new("./log/sec.jsonl"))
        );
        assert_eq!(
            (s.auth_workers, s.auth_queue_limit, s.auth_cache_size),
            (3, 10, 0)
        );
        assert_eq!(
            (
                s.throttle.delay_after,
                s.throttle.user_limit,
                s.throttle.address_limit
            ),
            (1, 4, 0)
        );
        assert_eq!(s.throttle.time, Duration::from_secs(2));
        let d = parse_str("", "t").unwrap().security;
        assert_eq!(d.denied_publish, DeniedPublish::Acknowledge);
        assert_eq!(d.security_log, SecurityLogDest::None);
        assert!(matches!(
            parse_str("security_log stderr\n", "t")
                .unwrap()
                .security
                .security_log,
            SecurityLogDest::Stderr
        ));
        assert!(err("denied_publish_action drop\n").contains("t.conf:1: denied_publish_action"));
        assert!(err("password_file\n").contains("needs a file path"));
        assert!(err("auth_throttle_time 0\n").contains("from 1 to 86400"));
    }

    #[test]
    fn bad_values() {
        assert!(err("listener 0\n").contains("t.conf:1: port"));
        assert!(err("listener 1883 example.com\n").contains("bind address"));
        assert!(err("max_qos 3\n").contains("`max_qos` expects a whole number from 0 to 2"));
        assert!(err("retain_available yes\n").contains("true or false"));
        assert!(err("max_packet_size 10\n").contains("below 20"));
        assert!(err("persistent_client_expiration 3x\n").contains("duration"));
        assert!(err("listener 5 127.0.0.1\nlistener 5 127.0.0.1\n").contains("already exists"));
    }

    #[test]
    fn include_dir_reads_conf_files_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let inc = dir.path().join("conf.d");
        std::fs::create_dir(&inc).unwrap();
        std::fs::write(inc.join("b.conf"), "max_queued_messages 7\n").unwrap();
        std::fs::write(
            inc.join("a.conf"),
            "max_queued_messages 3\nlistener 1999 127.0.0.1\n",
        )
        .unwrap();
        std::fs::write(inc.join("ignored.txt"), "garbage here\n").unwrap();
        let main = dir.path().join("main.conf");
        std::fs::write(&main, "include_dir conf.d\n").unwrap();
        let c = read_file(&main).unwrap();
        assert_eq!(c.limits.max_queued_messages, 7);
        assert_eq!(c.listeners[0].port, 1999);
        std::fs::write(inc.join("c.conf"), "\nbogus_option 1\n").unwrap();
        let e = read_file(&main).unwrap_err().to_string();
        assert!(e.contains("c.conf:2: unknown option"), "{e}");
    }

    #[test]
    fn suggestions() {
        assert_eq!(suggest("listner"), Some("listener"));
        assert_eq!(
            suggest("max_inflight_mesages"),
            Some("max_inflight_messages")
        );
        assert_eq!(suggest("completely_unknown"), None);
    }

    #[test]
    fn persistence_options() {
        let c = parse_str(
            "persistence true\npersistence_location /var/lib/mqsec/\npersistence_sync 5\nautosave_interval 1800\nautosave_on_changes false\npersistence_file mosquitto.db\n",
            "t",
        )
        .unwrap();
        assert!(c.persistence.enabled);
        assert_eq!(c.data_dir, PathBuf::from("/var/lib/mqsec/"));
        assert_eq!(
            c.persistence.sync,
            SyncPolicy::Every(Duration::from_secs(5))
        );
        let c = parse_str("persistence true\n", "t").unwrap();
        assert_eq!(
            c.persistence.sync,
            SyncPolicy::Ack,
            "durable before acknowledging"
        );
        // One directory, two names: the same value twice is fine, two values are not.
        assert!(parse_str("data_dir /a\npersistence_location /a\n", "t").is_ok());
        let e = err("data_dir /a\npersistence_location /b\n");
        assert!(e.contains("t.conf:2:") && e.contains("t.conf:1"), "{e}");
        assert!(err("persistence_sync always\n").contains("`ack` or seconds"));
        assert!(err("persistence_file ../x.db\n").contains("file name"));
        assert!(err("autosave_interval soon\n").contains("t.conf:1"));
    }
}
