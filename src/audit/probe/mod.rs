//! Network probes. Every connect and every read is bounded by the caller's timeout, so a silent port,
//! a TLS port that never answers, or a broker that never sends CONNACK cannot hang an audit.

pub mod ciphers;
pub mod mqtt;
pub mod tls;
pub mod tls_hello;

use std::time::Duration;

use tokio::net::TcpStream;

use super::target::Target;

#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("cannot connect: {0}")]
    Connect(std::io::Error),
    #[error("timed out {0}")]
    Timeout(&'static str),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("TLS: {0}")]
    Tls(String),
    #[error("WebSocket: {0}")]
    WebSocket(String),
    #[error("MQTT: {0}")]
    Mqtt(String),
}

/// TCP connect with a timeout; Nagle off because probes exchange small packets.
pub async fn connect(target: &Target, timeout: Duration) -> Result<TcpStream, ProbeError> {
    let addr = target.authority();
    let stream = tokio::time::timeout(timeout, TcpStream::connect(addr.as_str()))
        .await
        .map_err(|_| ProbeError::Timeout("connecting"))?
        .map_err(ProbeError::Connect)?;
    let _ = stream.set_nodelay(true);
    Ok(stream)
}
