//! The embedded default `serve` runs with when no configuration file is given.
//!
//! Like Mosquitto 2.0 without a listener: loopback only (127.0.0.1 and [::1], port 1883), and
//! anonymous clients admitted there precisely because nothing off this host can connect.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;

use super::model::{Config, ListenerConfig};

pub const DEFAULT_PORT: u16 = 1883;
/// The source name (and listener origin) of the embedded default.
pub const EMBEDDED: &str = "embedded default";

/// `$XDG_DATA_HOME/mqsec`, else `~/.local/share/mqsec`, else `./mqsec-data` when neither is known.
pub fn default_data_dir() -> PathBuf {
    data_dir_from(
        std::env::var_os("XDG_DATA_HOME").map(PathBuf::from),
        std::env::var_os("HOME").map(PathBuf::from),
    )
}

fn data_dir_from(xdg: Option<PathBuf>, home: Option<PathBuf>) -> PathBuf {
    // XDG says a relative XDG_DATA_HOME is invalid and must be ignored.
    match (xdg.filter(|p| p.is_absolute()), home) {
        (Some(x), _) => x.join("mqsec"),
        (None, Some(h)) => h.join(".local/share/mqsec"),
        (None, None) => PathBuf::from("mqsec-data"),
    }
}

pub fn embedded() -> Config {
    let mut cfg = Config::empty(EMBEDDED);
    let mut v4 = ListenerConfig::new(
        DEFAULT_PORT,
        Some(IpAddr::V4(Ipv4Addr::LOCALHOST)),
        EMBEDDED,
    );
    v4.allow_anonymous = Some(true);
    let mut v6 = ListenerConfig::new(
        DEFAULT_PORT,
        Some(IpAddr::V6(Ipv6Addr::LOCALHOST)),
        EMBEDDED,
    );
    v6.allow_anonymous = Some(true);
    cfg.listeners = vec![v4, v6];
    cfg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_default_is_loopback_only() {
        let c = embedded();
        assert_eq!(c.listeners.len(), 2);
        assert!(c.listeners.iter().all(|l| l.is_loopback_only()));
        assert!(c.listeners.iter().all(|l| l.anonymous_allowed()));
        assert_eq!(c.limits.max_inflight_messages, 20);
        assert_eq!(c.limits.max_queued_messages, 1000);
    }

    #[test]
    fn data_dir_rules() {
        assert_eq!(
            data_dir_from(Some("/x".into()), Some("/h".into())),
            PathBuf::from("/x/mqsec")
        );
        assert_eq!(
            data_dir_from(Some("rel".into()), Some("/h".into())),
            PathBuf::from("/h/.local/share/mqsec")
        );
        assert_eq!(data_dir_from(None, None), PathBuf::from("mqsec-data"));
    }
}
