//! `HOST:PORT` targets: DNS names, IPv4, and bracketed IPv6 (`[::1]:8883`).

use std::fmt;
use std::net::IpAddr;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TargetError {
    #[error("target {0:?}: expected HOST:PORT (IPv6 as [ADDR]:PORT)")]
    Shape(String),
    #[error("target {0:?}: the port must be a number from 1 to 65535")]
    Port(String),
    #[error("target {0:?}: empty host")]
    EmptyHost(String),
    #[error("target {0:?}: {1:?} is not a valid IPv6 address")]
    BadIpv6(String, String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Host name or address as given (without brackets).
    pub host: String,
    pub port: u16,
}

impl Target {
    pub fn parse(s: &str) -> Result<Target, TargetError> {
        let s = s.trim();
        let (host, port) = if let Some(rest) = s.strip_prefix('[') {
            let (addr, after) = rest
                .split_once(']')
                .ok_or_else(|| TargetError::Shape(s.to_string()))?;
            let port = after
                .strip_prefix(':')
                .ok_or_else(|| TargetError::Shape(s.to_string()))?;
            if addr.parse::<std::net::Ipv6Addr>().is_err() {
                return Err(TargetError::BadIpv6(s.to_string(), addr.to_string()));
            }
            (addr, port)
        } else {
            let (host, port) = s
                .rsplit_once(':')
                .ok_or_else(|| TargetError::Shape(s.to_string()))?;
            // An unbracketed IPv6 address is ambiguous ("::1:8883"): insist on brackets.
            if host.contains(':') {
                return Err(TargetError::Shape(s.to_string()));
            }
            (host, port)
        };
        if host.is_empty() {
            return Err(TargetError::EmptyHost(s.to_string()));
        }
        // A URL or a pasted line is not a host name: say so instead of failing DNS later.
        if host
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || "/@?#".contains(c))
        {
            return Err(TargetError::Shape(s.to_string()));
        }
        let port: u16 = port
            .parse()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| TargetError::Port(s.to_string()))?;
        Ok(Target {
            host: host.to_string(),
            port,
        })
    }

    /// The same host on another port (`--also`).
    pub fn with_port(&self, port: u16) -> Target {
        Target {
            host: self.host.clone(),
            port,
        }
    }

    pub fn ip(&self) -> Option<IpAddr> {
        self.host.parse().ok()
    }

    /// SNI is sent only for DNS names (RFC 6066 forbids IP literals).
    pub fn sni_name(&self) -> Option<&str> {
        if self.ip().is_some() {
            None
        } else {
            Some(&self.host)
        }
    }

    /// `host:port` for connecting (brackets around IPv6).
    pub fn authority(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_forms() {
        let t = Target::parse("broker.example:8883").unwrap();
        assert_eq!((t.host.as_str(), t.port), ("broker.example", 8883));
        assert_eq!(t.sni_name(), Some("broker.example"));
        let t = Target::parse("127.0.0.1:1883").unwrap();
        assert_eq!(t.sni_name(), None);
        let t = Target::parse("[::1]:8883").unwrap();
        assert_eq!((t.host.as_str(), t.port), ("::1", 8883));
        assert_eq!(t.to_string(), "[::1]:8883");
    }

    proptest::proptest! {
        #[test]
        fn never_panics_and_round_trips(s in "\\PC{0,40}") {
            if let Ok(t) = Target::parse(&s) {
                proptest::prop_assert_eq!(Target::parse(&t.to_string()), Ok(t));
            }
        }
    }

    #[test]
    fn rejects_bad_forms() {
        for bad in [
            "broker",
            "::1:8883",
            "[::1]8883",
            "[zz]:1",
            "h:0",
            "h:70000",
            ":1883",
            "[::1",
        ] {
            assert!(Target::parse(bad).is_err(), "{bad}");
        }
    }
}
