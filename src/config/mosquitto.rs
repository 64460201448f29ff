//! The Mosquitto-style configuration reader: `option value...` lines, `#` comments,
//! `listener PORT [ADDR]` blocks and `include_dir`.
//!
//! Every line is accounted for: an option mqsec implements is applied, an option of a later
//! release is refused with "not supported yet" (running without it would silently weaken what the
//! operator asked for), and anything else is an error with a "did you mean" suggestion.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::defaults;
use super::model::{
    Config, ListenerConfig, LogDest, SocketDomain, SyncPolicy, DEFAULT_MAX_TOPIC_LEVELS,
    PROTOCOL_MAX_PACKET_SIZE,
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
];

/// Options of later mqsec releases: parsed so the error can say exactly that.
const LATER: &[(&str, &str)] = &[
    ("password_file", "password authentication"),
    ("acl_file", "ACL authorization"),
    ("cafile", "TLS listeners"),
    ("capath", "TLS listeners"),
    ("certfile", "TLS listeners"),
    ("keyfile", "TLS listeners"),
    ("require_certificate", "TLS client certificates"),
    ("use_identity_as_username", "TLS client certificates"),
    ("use_subject_as_username", "TLS client certificates"),
    ("crlfile", "TLS client certificates"),
    ("tls_version", "TLS listeners"),
    ("ciphers", "TLS listeners"),
    ("ciphers_tls1.3", "TLS listeners"),
    ("dhparamfile", "TLS listeners"),
    ("tls_keyform", "TLS listeners"),
    ("tls_engine", "TLS listeners"),
    ("tls_engine_kpass_sha1", "TLS listeners"),
    ("psk_hint", "pre-shared-key TLS"),
    ("psk_file", "pre-shared-key TLS"),
    ("http_dir", "WebSocket listeners"),
    ("websockets_headers_size", "WebSocket listeners"),
    ("websockets_log_level", "WebSocket listeners"),
    ("mount_point", "mount points"),
    (
        "bind_interface",
        "binding to an interface (use listener PORT ADDRESS)",
    ),
    ("bind_address", "bind_address (use listener PORT ADDRESS)"),
    ("memory_limit", "a global memory limit"),
    ("use_username_as_clientid", "password authentication"),
    ("log_facility", "syslog logging"),
    ("log_timestamp_format", "custom log timestamps"),
    ("check_retain_source", "ACL authorization"),
    ("upgrade_outgoing_qos", "QoS upgrades"),
    ("pid_file", "pid files"),
    (
        "user",
        "dropping privileges (run mqsec under a service user instead)",
    ),
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
        if let Some((_, feature)) = LATER.iter().find(|(o, _)| *o == opt) {
            return Err(at.err(format!(
                "option `{opt}` is not supported yet ({feature} comes in a later mqsec release)"
            )));
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
                if self.cfg.listeners.iter().any(|o| o.port == port && o.bind == bind) {
                    return Err(at.err(format!("a listener on port {port} with this address already exists")));
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
                    _ => return Err(at.err(format!("socket_domain must be ipv4 or ipv6, not `{value}`"))),
                };
                self.listener_mut().socket_domain = Some(d);
            }
            "protocol" => match value {
                "mqtt" => {}
                "websockets" => {
                    return Err(at.err(
                        "`protocol websockets` is not supported yet (WebSocket listeners come in a later mqsec release)"
                            .into(),
                    ))
                }
                _ => return Err(at.err(format!("protocol must be mqtt or websockets, not `{value}`"))),
            },
            "max_connections" => {
                let n = parse_int(value, at, -1, i64::from(i32::MAX))?;
                self.listener_mut().max_connections = if n < 0 { None } else { Some(n as usize) };
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
                    return Err(at.err("max_packet_size below 20 bytes would break every client".into()));
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
                self.cfg.limits.max_queued_messages = parse_int(value, at, 0, i64::from(i32::MAX))? as usize
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
                self.cfg.sys_interval =
                    Duration::from_secs(parse_int(value, at, 0, 86_400)? as u64)
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
                    v => SyncPolicy::Every(Duration::from_secs(
                        parse_int(v, at, 1, 3600).map_err(|_| {
                            at.err(format!(
                                "persistence_sync must be `ack` or seconds from 1 to 3600, not `{v}`"
                            ))
                        })? as u64,
                    )),
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
                self.cfg.limits.max_sessions = parse_int(value, at, 0, i64::from(i32::MAX))? as usize
            }
            "max_subscriptions_per_client" => {
                self.cfg.limits.max_subscriptions_per_client =
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
        if let Some(level) = most_verbose(&self.log_levels) {
            self.cfg.logging.level = level;
        }
        Ok(self.cfg)
    }
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
    let bad = || {
        at.err(format!(
            "`{}` expects a duration like 2h, 7d, 1w, 3m or 1y, not `{v}`",
            at.opt
        ))
    };
    if v.len() < 2 {
        return Err(bad());
    }
    let (num, unit) = v.split_at(v.len() - 1);
    let n: u64 = num.parse().map_err(|_| bad())?;
    let secs = match unit {
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        "m" => 30 * 86_400,
        "y" => 365 * 86_400,
        _ => return Err(bad()),
    };
    n.checked_mul(secs).map(Duration::from_secs).ok_or_else(bad)
}

fn known_options() -> impl Iterator<Item = &'static str> {
    SUPPORTED
        .iter()
        .copied()
        .chain(LATER.iter().map(|(o, _)| *o))
        .chain(NEVER.iter().copied())
}

/// The nearest known option within a small edit distance.
fn suggest(opt: &str) -> Option<&'static str> {
    let limit = (opt.len() / 3).clamp(1, 3);
    known_options()
        .map(|k| (edit_distance(opt, k), k))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.iter().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
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
        let e = err("listener 1883\n\npassword_file /etc/p\n");
        assert!(
            e.starts_with("t.conf:3: option `password_file` is not supported yet"),
            "{e}"
        );
        assert!(err("protocol websockets\n").contains("not supported yet"));
        assert!(parse_str("persistence false\n", "t").is_ok());
        assert!(err("auth_plugin /x.so\n").contains("not supported by mqsec"));
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
    fn edit_distance_basics() {
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "ab"), 2);
        assert_eq!(suggest("listner"), Some("listener"));
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
