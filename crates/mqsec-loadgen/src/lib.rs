//! Load generator and broker comparison harness: the same scenarios against any MQTT broker on
//! `host:port`, and tooling to start `mqsec serve` and `mosquitto` side by side.
//!
//! A tool crate of the workspace, never linked into the `mqsec` binary: it holds the workspace's
//! only `unsafe` code (`process`: setrlimit and sysconf through `libc`, which std does not offer).
//! Used by `cargo bench --bench broker` (mqsec vs Mosquitto, one after the other, through
//! [`compare_cli`]) and by `cargo run --release -p mqsec-loadgen -- --addr HOST:PORT` (ad hoc, any
//! broker).

pub mod auth_bench;
pub mod client;
pub mod compare;
pub mod compare_cli;
pub mod process;
pub mod rabbitmq;
pub mod report;
pub mod scenario;
pub mod secure;
mod wire;

use std::time::Duration;

use mqsec_codec::ProtocolVersion;

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("protocol: {0}")]
    Protocol(String),
    #[error("connection refused by the broker (CONNACK code {0:#04x})")]
    Refused(u8),
    #[error("connection closed by the broker")]
    Closed,
    #[error("timed out waiting for {0}")]
    Timeout(&'static str),
    #[error("cannot start {what}: {source}")]
    Spawn {
        what: String,
        source: std::io::Error,
    },
    #[error("{broker} died: {detail}")]
    BrokerDied {
        broker: &'static str,
        detail: String,
    },
    #[error("skipped: {0}")]
    Skipped(String),
}

/// Knobs shared by every scenario.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Measured time of each timed scenario.
    pub duration: Duration,
    /// Load before the measurement starts (connections settle, buffers grow).
    pub warmup: Duration,
    /// Payload bytes per message.
    pub payload: usize,
    pub version: ProtocolVersion,
    /// Publisher/subscriber pairs in the throughput scenarios.
    pub pairs: usize,
    /// Subscribers in the fan-out scenario.
    pub fanout: usize,
    /// Messages per second in the latency scenario.
    pub latency_rate: u32,
    /// The comparison runs the latency scenario in this many rounds, alternating the brokers,
    /// each round `duration / rounds` long, and reports the median: on a shared machine the
    /// tail moves with other load, and alternating spreads that over both brokers.
    pub latency_rounds: u32,
    /// Connections in the idle-connections scenario.
    pub idle: usize,
    /// Connections opened (at most) in the connect-rate scenario.
    pub connects: usize,
    /// When set, throughput scenarios also report the CPU time this process (the broker) used
    /// during their measured window: a figure the machine's other load disturbs much less.
    pub broker_pid: Option<u32>,
    /// Credentials for the connect-rate scenario (the login storm), used in turn; `None`:
    /// anonymous CONNECTs.
    pub credentials: Option<std::sync::Arc<Vec<Credential>>>,
}

/// One login: a username (MQTT 3.1.1 sends a password only with one; it may be empty) and a
/// password or access token.
#[derive(Clone)]
pub struct Credential {
    pub username: String,
    pub password: Vec<u8>,
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credential")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

impl Credential {
    /// `USERNAME:PASSWORD` lines (an access token as the password; an empty username is
    /// allowed), blank lines skipped. Read from a file: secrets never go on a command line.
    pub fn parse_lines(text: &str) -> Result<Vec<Credential>, String> {
        let mut out = Vec::new();
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let (u, p) = line
                .split_once(':')
                .ok_or_else(|| format!("line {}: expected USERNAME:PASSWORD", i + 1))?;
            out.push(Credential {
                username: u.to_string(),
                password: p.trim_end().as_bytes().to_vec(),
            });
        }
        if out.is_empty() {
            return Err("no credentials".into());
        }
        Ok(out)
    }
}

impl Settings {
    /// The scenarios at full size: 5 s per measurement.
    pub fn full() -> Settings {
        Settings {
            duration: Duration::from_secs(5),
            warmup: Duration::from_secs(1),
            payload: 100,
            version: ProtocolVersion::V311,
            pairs: 10,
            fanout: 100,
            latency_rate: 2000,
            latency_rounds: 3,
            idle: 10_000,
            connects: 5_000,
            broker_pid: None,
            credentials: None,
        }
    }

    /// A smoke run: same shapes, shorter and smaller.
    pub fn quick() -> Settings {
        Settings {
            duration: Duration::from_secs(2),
            warmup: Duration::from_millis(500),
            idle: 2_000,
            connects: 1_000,
            ..Settings::full()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_file_lines() {
        let c = Credential::parse_lines("alice:pw:with:colons\n\n:eyJ.a.b\n").unwrap();
        assert_eq!(c.len(), 2);
        assert_eq!(
            (c[0].username.as_str(), &c[0].password[..]),
            ("alice", &b"pw:with:colons"[..])
        );
        assert_eq!(
            (c[1].username.as_str(), &c[1].password[..]),
            ("", &b"eyJ.a.b"[..])
        );
        assert!(Credential::parse_lines("no colon\n")
            .unwrap_err()
            .contains("line 1"));
        assert!(Credential::parse_lines("\n").is_err());
        // Debug never shows a password.
        assert!(!format!("{:?}", c[0]).contains("pw"));
    }
}
