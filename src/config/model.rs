//! The one configuration tree `serve` runs from, whichever reader produced it.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

pub use rustls::CipherSuite;

/// The largest packet the protocol can express (remaining length 268,435,455 + fixed header).
pub const PROTOCOL_MAX_PACKET_SIZE: u32 = 268_435_460;

/// mqsec caps what Mosquitto leaves unlimited: a 256 MB packet per client is a memory-exhaustion
/// lever, and real MQTT traffic is far below these. Raise them in the config when you need to.
pub const DEFAULT_MAX_PACKET_SIZE: u32 = 2 * 1024 * 1024;
pub const DEFAULT_MESSAGE_SIZE_LIMIT: u32 = 1024 * 1024;
/// Mosquitto 2.0.11's effective limit, found by running it: 200 separators (201 levels) are
/// accepted, one more is refused (its TOPIC_HIERARCHY_LIMIT of 200 counts separators).
pub const DEFAULT_MAX_TOPIC_LEVELS: usize = 201;
/// Memory a session may hold in queued messages (counted as topic + payload + properties +
/// bookkeeping, not payload alone). Mosquitto's default is no limit; 1000 queued messages of up
/// to `message_size_limit` each would be a gigabyte per session.
pub const DEFAULT_MAX_QUEUED_BYTES: usize = 16 * 1024 * 1024;
/// A TLS or WebSocket handshake (from accept to a usable stream) must finish this soon.
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// The whole HTTP request head of a WebSocket upgrade (request line and headers). Mosquitto's
/// libwebsockets default is 1024 bytes of recognised headers; a browser's cookies and user agent
/// need more, and 4 KiB still bounds what an unauthenticated peer can make the broker buffer.
pub const DEFAULT_WEBSOCKETS_HEADERS_SIZE: usize = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SocketDomain {
    Ipv4,
    Ipv6,
}

/// One `listener PORT [ADDR]` block and the settings that apply to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerConfig {
    pub port: u16,
    /// `None`: every interface (both families unless `socket_domain` narrows it).
    pub bind: Option<IpAddr>,
    pub socket_domain: Option<SocketDomain>,
    /// -1 or unset: as many as the process's file-descriptor limit allows (see
    /// `broker::admission::fd_budget`); that budget also caps an explicit value.
    pub max_connections: Option<usize>,
    /// Connections one source (an IPv4 address or an IPv6 /64) may hold at once on this
    /// listener, counted from accept on; `None`: no such limit.
    pub max_connections_per_source: Option<u32>,
    /// `None` until set: then anonymous clients are admitted only on a loopback-bound listener.
    pub allow_anonymous: Option<bool>,
    pub max_qos: u8,
    pub max_topic_alias: u16,
    /// What runs on top of TCP (and TLS, when `tls.certfile` is set).
    pub protocol: ListenerProtocol,
    pub tls: TlsConfig,
    /// A TLS or WebSocket handshake that takes longer is dropped (it holds a connection slot).
    pub handshake_timeout: Duration,
    /// New connections per source address, checked at accept time before any handshake.
    pub connection_rate_limit: Option<RateLimit>,
    /// Where the option that started this listener was written (for messages).
    pub origin: String,
    /// Password and ACL files (the listener's own with `per_listener_settings true`).
    pub auth: ListenerAuth,
    /// `websockets_origins`: the web origins whose pages may open a WebSocket here (lower
    /// case, `scheme://host[:port]`). Empty: no check.
    pub websockets_origins: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListenerProtocol {
    Mqtt,
    WebSockets,
}

/// Where an option was written: `FILE:LINE` in every message about its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfLoc {
    pub file: String,
    pub line: usize,
}

impl std::fmt::Display for ConfLoc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.file, self.line)
    }
}

/// An option's value with the place it was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located<T> {
    pub value: T,
    pub at: ConfLoc,
}

/// The lowest TLS version a listener accepts (Mosquitto's `tls_version` is a minimum too).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsMinVersion {
    Tls12,
    Tls13,
}

/// Which part of a verified client certificate becomes the username.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertUsername {
    /// `use_identity_as_username`: the subject's CN.
    CommonName,
    /// `use_subject_as_username`: the whole subject, RFC 4514.
    Subject,
}

/// A listener's TLS settings. The listener speaks TLS when `certfile` is set (the reader makes
/// sure `keyfile` is then set too, and that the other options are not set without them).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsConfig {
    pub certfile: Option<Located<PathBuf>>,
    pub keyfile: Option<Located<PathBuf>>,
    pub cafile: Option<Located<PathBuf>>,
    pub capath: Option<Located<PathBuf>>,
    pub crlfile: Option<Located<PathBuf>>,
    pub min_version: Option<Located<TlsMinVersion>>,
    /// Set when `require_certificate true` was written.
    pub require_certificate: Option<ConfLoc>,
    pub cert_username: Option<Located<CertUsername>>,
    /// `ciphers`: the TLS 1.2 suites, in the written order (None: every ECDHE+AEAD suite).
    pub ciphers: Option<Located<Vec<CipherSuite>>>,
    /// `ciphers_tls1.3` (None: every TLS 1.3 suite).
    pub ciphers_tls13: Option<Located<Vec<CipherSuite>>>,
}

impl TlsConfig {
    pub fn enabled(&self) -> bool {
        self.certfile.is_some()
    }
}

/// A token bucket: `per_second` new connections per second on average, up to `burst` at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub per_second: u32,
    pub burst: u32,
}

impl ListenerConfig {
    pub fn new(port: u16, bind: Option<IpAddr>, origin: impl Into<String>) -> ListenerConfig {
        ListenerConfig {
            port,
            bind,
            socket_domain: None,
            max_connections: None,
            max_connections_per_source: None,
            allow_anonymous: None,
            max_qos: 2,
            max_topic_alias: 10,
            protocol: ListenerProtocol::Mqtt,
            tls: TlsConfig::default(),
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
            connection_rate_limit: None,
            origin: origin.into(),
            auth: ListenerAuth::default(),
            websockets_origins: Vec::new(),
        }
    }

    /// The username a verified client certificate gives (`use_identity_as_username`,
    /// `use_subject_as_username`), if this listener takes one.
    pub fn cert_username(&self) -> Option<CertUsername> {
        self.tls.cert_username.as_ref().map(|c| c.value)
    }

    /// Bound to loopback only: nothing off this host can reach it.
    pub fn is_loopback_only(&self) -> bool {
        self.bind.is_some_and(|ip| ip.is_loopback())
    }

    /// Whether clients without credentials are admitted here: as configured, else only when the
    /// listener cannot be reached from another host.
    pub fn anonymous_allowed(&self) -> bool {
        self.allow_anonymous
            .unwrap_or_else(|| self.is_loopback_only())
    }
}

/// Per-client limits (Mosquitto's names and defaults, except the two size caps).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Largest packet accepted from a client (and advertised to v5 clients).
    pub max_packet_size: u32,
    /// Largest PUBLISH payload accepted.
    pub message_size_limit: u32,
    /// Outgoing QoS 1/2 messages in flight per client; advertised as Receive Maximum.
    pub max_inflight_messages: u16,
    /// Outgoing messages queued per client above those in flight (0 = no maximum).
    pub max_queued_messages: usize,
    /// Memory of queued messages per client, counted as `Message::cost` (0 = no maximum).
    pub max_queued_bytes: usize,
    /// Queue QoS 0 messages for offline persistent clients too.
    pub queue_qos0_messages: bool,
    pub max_keepalive: u16,
    pub retain_available: bool,
    /// Persistent sessions of clients that never come back are dropped after this (None = never).
    pub persistent_client_expiration: Option<Duration>,
    pub max_topic_levels: usize,
    /// Longest topic name or filter accepted, in bytes.
    pub max_topic_length: usize,
    /// Bytes a connection may have waiting to be written before the broker stops reading from
    /// it (a client that sends but never reads cannot grow the broker's memory).
    pub max_write_buffer: usize,
    /// A connection whose pending output makes no progress for this long is closed.
    pub write_stall_timeout: Duration,
    /// A client must send CONNECT this soon after its connection is made.
    pub connect_timeout: Duration,
    /// Keep alive 0 (never time out) is accepted only when this is set.
    pub allow_zero_keepalive: bool,
    /// Sessions (online and offline) the broker holds at most (0 = no maximum).
    pub max_sessions: usize,
    /// Subscriptions one session may hold (0 = no maximum).
    pub max_subscriptions_per_client: usize,
    /// Retained messages the broker holds at most (0 = no maximum).
    pub max_retained_messages: usize,
    /// Memory retained messages may hold, counted as `Message::cost` (0 = no maximum).
    pub max_retained_bytes: usize,
    /// Shared-subscription groups (distinct `$share/GROUP/FILTER`) at most (0 = no maximum).
    pub max_shared_groups: usize,
    /// Topic filters handled in one SUBSCRIBE (0 = no maximum); those beyond are refused, so one
    /// packet cannot hold a connection's task for long.
    pub max_filters_per_subscribe: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_packet_size: DEFAULT_MAX_PACKET_SIZE,
            message_size_limit: DEFAULT_MESSAGE_SIZE_LIMIT,
            max_inflight_messages: 20,
            max_queued_messages: 1000,
            max_queued_bytes: DEFAULT_MAX_QUEUED_BYTES,
            queue_qos0_messages: false,
            max_keepalive: 65535,
            retain_available: true,
            persistent_client_expiration: None,
            max_topic_levels: DEFAULT_MAX_TOPIC_LEVELS,
            max_topic_length: 65_535,
            max_write_buffer: 1024 * 1024,
            write_stall_timeout: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(10),
            allow_zero_keepalive: false,
            max_sessions: 1_000_000,
            max_subscriptions_per_client: 10_000,
            max_retained_messages: 1_000_000,
            max_retained_bytes: 1024 * 1024 * 1024,
            max_shared_groups: 100_000,
            // Home Assistant batches up to 500 filters per SUBSCRIBE; leave it room.
            max_filters_per_subscribe: 1000,
        }
    }
}

/// Client id rules from CONNECT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientIdRules {
    pub allow_zero_length_clientid: bool,
    pub auto_id_prefix: String,
    /// When set, only client ids starting with one of these are admitted.
    pub clientid_prefixes: Vec<String>,
}

impl Default for ClientIdRules {
    fn default() -> Self {
        ClientIdRules {
            allow_zero_length_clientid: true,
            auto_id_prefix: "auto-".to_string(),
            clientid_prefixes: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogDest {
    Stderr,
    Stdout,
    None,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Logging {
    pub dest: LogDest,
    /// tracing filter level: "error", "warn", "info", "debug".
    pub level: &'static str,
    pub connection_messages: bool,
    pub timestamp: bool,
}

impl Default for Logging {
    fn default() -> Self {
        Logging {
            dest: LogDest::Stderr,
            level: "info",
            connection_messages: true,
            timestamp: true,
        }
    }
}

/// When the broker may acknowledge a message it keeps (`persistence_sync`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncPolicy {
    /// `ack` (the default): on disk, synced, before PUBACK/PUBREC.
    Ack,
    /// `SECONDS`: acknowledged once committed in memory, written and synced at least this often:
    /// a crash (of mqsec or of the machine) can lose what was acknowledged in the last interval.
    Every(Duration),
}

/// `persistence`, `persistence_location`, `persistence_sync`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Persistence {
    pub enabled: bool,
    pub sync: SyncPolicy,
    /// Where `persistence_location` or `data_dir` set the data directory (file:line), to name
    /// both when they disagree.
    pub location_origin: Option<String>,
}

impl Default for Persistence {
    fn default() -> Self {
        Persistence {
            enabled: false,
            sync: SyncPolicy::Ack,
            location_origin: None,
        }
    }
}

/// The whole configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub listeners: Vec<ListenerConfig>,
    pub limits: Limits,
    pub client_ids: ClientIdRules,
    pub per_listener_settings: bool,
    pub set_tcp_nodelay: bool,
    /// Bytes of HTTP request head a WebSocket upgrade may send (all WebSocket listeners).
    pub websockets_headers_size: usize,
    /// `$SYS` update period; zero disables `$SYS`.
    pub sys_interval: Duration,
    pub logging: Logging,
    pub security: Security,
    /// Where durable state lives (`persistence true`): the store file `mqsec.redb` in it.
    pub data_dir: PathBuf,
    pub persistence: Persistence,
    /// Where this configuration came from ("embedded default" or the file path).
    pub source: String,
}

impl Config {
    pub fn empty(source: impl Into<String>) -> Config {
        Config {
            listeners: Vec::new(),
            limits: Limits::default(),
            client_ids: ClientIdRules::default(),
            per_listener_settings: false,
            set_tcp_nodelay: true,
            websockets_headers_size: DEFAULT_WEBSOCKETS_HEADERS_SIZE,
            sys_interval: Duration::from_secs(10),
            logging: Logging::default(),
            security: Security::default(),
            data_dir: super::defaults::default_data_dir(),
            persistence: Persistence::default(),
            source: source.into(),
        }
    }
}

/// A file named by a configuration option, with where the option was written (for messages).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileOption {
    pub path: PathBuf,
    /// `FILE:LINE` of the option.
    pub origin: String,
}

impl std::fmt::Display for FileOption {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.path.display())
    }
}

/// Who may connect to a listener and what they may do there. Without `per_listener_settings`
/// every listener carries the same values.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListenerAuth {
    /// `password_file`: users and their hashes (argon2id, `$7$`, `$6$`).
    pub password_file: Option<FileOption>,
    /// `acl_file`: without one every topic is allowed, as in Mosquitto.
    pub acl_file: Option<FileOption>,
    /// `token_*`: access tokens (JWT) accepted in the CONNECT password (or v5 enhanced
    /// authentication, method `JWT`).
    pub token: Option<TokenConfig>,
}

/// The JWT algorithms `token_algorithms` may name. `none` is never one of them.
pub const TOKEN_ALGORITHMS: &[&str] = &[
    "HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256",
    "ES384", "EdDSA",
];

/// The default `token_leeway`: the clock skew tolerated on `exp`, `nbf` and `iat`.
pub const DEFAULT_TOKEN_LEEWAY: Duration = Duration::from_secs(60);

/// Where a listener's token verification keys come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenKeySource {
    /// `token_key_file`: an HMAC secret (the file's bytes, surrounding whitespace trimmed) or a
    /// public key PEM (RSA, EC P-256/P-384, Ed25519).
    KeyFile(FileOption),
    /// `token_jwks_file`: a JWK set; a token names its key with `kid`.
    Jwks(FileOption),
}

impl TokenKeySource {
    pub fn file(&self) -> &FileOption {
        match self {
            TokenKeySource::KeyFile(f) | TokenKeySource::Jwks(f) => f,
        }
    }
}

/// A listener's access-token settings (`token_*` lines).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenConfig {
    pub key: TokenKeySource,
    /// `token_algorithms`: the accepted `alg` values (names from [`TOKEN_ALGORITHMS`]); `None`:
    /// those that fit the key (HS256 for a secret; RS256, ES256/ES384 or EdDSA for a PEM; a
    /// JWK's own `alg`, or its key type's usual one).
    pub algorithms: Option<Located<Vec<String>>>,
    /// `token_audience`: when set, a token must carry it in `aud`.
    pub audience: Option<String>,
    /// `token_issuer`: when set, a token's `iss` must equal it.
    pub issuer: Option<String>,
    pub leeway: Duration,
    /// `token_username_claim`: the claim that names the client (default `sub`).
    pub username_claim: String,
}

/// What happens to a PUBLISH the ACL refuses (`denied_publish_action`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeniedPublish {
    /// Mosquitto's behaviour: the message is dropped, QoS 1/2 acknowledged (v5 with 0x87), the
    /// connection stays.
    Acknowledge,
    /// The client is disconnected (v5 DISCONNECT 0x87).
    Disconnect,
}

/// Where the security event log (JSON lines) goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecurityLogDest {
    None,
    Stderr,
    File(FileOption),
}

/// Brute-force protection for password logins. Failures are counted per username and per
/// source address (IPv6: per /64); a count is forgotten `time` after its last failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottleSettings {
    /// From this many failures on, each further failed attempt is answered more slowly
    /// (0: never).
    pub delay_after: u32,
    /// This many failures for one username lock it for `time` (0: never).
    pub user_limit: u32,
    /// This many failures from one address lock it for `time` (0: never). Higher than the user
    /// limit by default: many devices may share an address behind NAT.
    pub address_limit: u32,
    pub time: Duration,
}

impl Default for ThrottleSettings {
    fn default() -> Self {
        ThrottleSettings {
            delay_after: 3,
            user_limit: 10,
            address_limit: 50,
            time: Duration::from_secs(300),
        }
    }
}

/// Broker-wide security settings (the per-listener ones are in [`ListenerAuth`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Security {
    pub denied_publish: DeniedPublish,
    pub security_log: SecurityLogDest,
    pub throttle: ThrottleSettings,
    /// Threads that verify passwords (0: one per core).
    pub auth_workers: usize,
    /// Password checks that may wait for a thread; beyond this a CONNECT is refused as busy.
    pub auth_queue_limit: usize,
    /// Successful verifications remembered (keyed hashes, never passwords); 0 disables.
    pub auth_cache_size: usize,
    /// Certificates (server, CA, client) and CRLs that expire within this many days are logged
    /// (`certificate_expiring`); 0 disables.
    pub cert_expiry_warning_days: u32,
}

impl Default for Security {
    fn default() -> Self {
        Security {
            denied_publish: DeniedPublish::Acknowledge,
            security_log: SecurityLogDest::None,
            throttle: ThrottleSettings::default(),
            auth_workers: 0,
            auth_queue_limit: 1024,
            auth_cache_size: 10_000,
            cert_expiry_warning_days: 30,
        }
    }
}
