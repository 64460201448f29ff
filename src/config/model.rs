//! The one configuration tree `serve` runs from, whichever reader produced it.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

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
    /// -1 or unset: unlimited.
    pub max_connections: Option<usize>,
    /// `None` until set: then anonymous clients are admitted only on a loopback-bound listener.
    pub allow_anonymous: Option<bool>,
    pub max_qos: u8,
    pub max_topic_alias: u16,
    /// Where the option that started this listener was written (for messages).
    pub origin: String,
}

impl ListenerConfig {
    pub fn new(port: u16, bind: Option<IpAddr>, origin: impl Into<String>) -> ListenerConfig {
        ListenerConfig {
            port,
            bind,
            socket_domain: None,
            max_connections: None,
            allow_anonymous: None,
            max_qos: 2,
            max_topic_alias: 10,
            origin: origin.into(),
        }
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
    /// `$SYS` update period; zero disables `$SYS`.
    pub sys_interval: Duration,
    pub logging: Logging,
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
            sys_interval: Duration::from_secs(10),
            logging: Logging::default(),
            data_dir: super::defaults::default_data_dir(),
            persistence: Persistence::default(),
            source: source.into(),
        }
    }
}
