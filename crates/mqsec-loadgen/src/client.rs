//! A lean async MQTT client for load generation, on the project codec.
//!
//! General-purpose clients (rumqttc) spend more CPU per message than a broker does, so on a
//! 2-core machine they cannot saturate one. This client batches: a read decodes every complete
//! packet in the buffer at once, and writes go out in one `write_all` per batch.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;

use super::{wire, LoadError};
use mqsec_codec::{
    Connect, Disconnect, Packet, Properties, ProtocolVersion, QoS, Subscribe, SubscriptionOptions,
    SubscriptionRequest,
};

/// How long a handshake step (CONNACK, SUBACK) may take before the scenario fails.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

const READ_CHUNK: usize = 64 * 1024;

#[derive(Debug, Clone, Copy)]
pub struct ClientOptions {
    pub version: ProtocolVersion,
    pub keep_alive: u16,
    pub clean_start: bool,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            version: ProtocolVersion::V311,
            // Idle connections must survive the whole run without pings (a run takes minutes;
            // keep alive 0 is refused by mqsec's default configuration).
            keep_alive: 900,
            clean_start: true,
        }
    }
}

/// The read side: decodes whole batches of packets.
pub struct Reader {
    rd: OwnedReadHalf,
    buf: BytesMut,
    version: ProtocolVersion,
}

impl Reader {
    /// Waits for bytes, then appends every complete packet to `out`. Errors on EOF.
    pub async fn read_batch(&mut self, out: &mut Vec<Packet>) -> Result<(), LoadError> {
        loop {
            while let Some(p) = wire::decode(&mut self.buf, self.version)? {
                out.push(p);
            }
            if !out.is_empty() {
                return Ok(());
            }
            self.buf.reserve(READ_CHUNK);
            let n = self.rd.read_buf(&mut self.buf).await?;
            if n == 0 {
                return Err(LoadError::Closed);
            }
        }
    }

    /// The next single packet, within `limit`.
    pub async fn next_packet(
        &mut self,
        limit: Duration,
        what: &'static str,
    ) -> Result<Packet, LoadError> {
        let fut = async {
            loop {
                if let Some(p) = wire::decode(&mut self.buf, self.version)? {
                    return Ok(p);
                }
                self.buf.reserve(READ_CHUNK);
                if self.rd.read_buf(&mut self.buf).await? == 0 {
                    return Err(LoadError::Closed);
                }
            }
        };
        tokio::time::timeout(limit, fut)
            .await
            .map_err(|_| LoadError::Timeout(what))?
    }
}

/// The write side: packets are encoded into one buffer and flushed together.
pub struct Writer {
    wr: OwnedWriteHalf,
    buf: BytesMut,
    version: ProtocolVersion,
}

impl Writer {
    pub fn queue(&mut self, p: &Packet) -> Result<(), LoadError> {
        wire::encode(p, self.version, &mut self.buf)
    }

    pub fn pending(&self) -> usize {
        self.buf.len()
    }

    pub async fn flush(&mut self) -> Result<(), LoadError> {
        if !self.buf.is_empty() {
            self.wr.write_all(&self.buf).await?;
            self.buf.clear();
        }
        Ok(())
    }

    pub async fn send(&mut self, p: &Packet) -> Result<(), LoadError> {
        self.queue(p)?;
        self.flush().await
    }
}

/// A connected client (CONNACK received with success).
pub struct Client {
    pub reader: Reader,
    pub writer: Writer,
    next_id: u16,
}

/// The CONNECT this client sends (also over the TLS storm's streams, see `secure`).
pub(crate) fn connect_packet(
    opts: ClientOptions,
    client_id: &str,
    credentials: Option<(&str, &[u8])>,
) -> Packet {
    Packet::Connect(Box::new(Connect {
        protocol: opts.version,
        clean_start: opts.clean_start,
        keep_alive: opts.keep_alive,
        client_id: client_id.to_string(),
        will: None,
        username: credentials.map(|(u, _)| u.to_string()),
        password: credentials.map(|(_, p)| Bytes::copy_from_slice(p)),
        properties: Properties::default(),
    }))
}

/// `Ok` for a successful CONNACK; the refusal code or what came instead otherwise.
pub(crate) fn accepted(p: Packet) -> Result<(), LoadError> {
    match p {
        Packet::ConnAck(a) if a.code == 0 => Ok(()),
        Packet::ConnAck(a) => Err(LoadError::Refused(a.code)),
        other => Err(LoadError::Protocol(format!(
            "expected CONNACK, got packet type {}",
            other.packet_type()
        ))),
    }
}

impl Client {
    pub async fn connect(
        addr: SocketAddr,
        client_id: &str,
        opts: ClientOptions,
    ) -> Result<Client, LoadError> {
        Client::connect_as(addr, client_id, opts, None).await
    }

    /// Connect with a username and password or access token (`None`: anonymous).
    pub async fn connect_as(
        addr: SocketAddr,
        client_id: &str,
        opts: ClientOptions,
        credentials: Option<(&str, &[u8])>,
    ) -> Result<Client, LoadError> {
        let stream = tokio::time::timeout(HANDSHAKE_TIMEOUT, TcpStream::connect(addr))
            .await
            .map_err(|_| LoadError::Timeout("TCP connect"))??;
        stream.set_nodelay(true)?;
        let (rd, wr) = stream.into_split();
        let mut c = Client {
            reader: Reader {
                rd,
                buf: BytesMut::with_capacity(4096),
                version: opts.version,
            },
            writer: Writer {
                wr,
                buf: BytesMut::with_capacity(4096),
                version: opts.version,
            },
            next_id: 0,
        };
        c.writer
            .send(&connect_packet(opts, client_id, credentials))
            .await?;
        accepted(c.reader.next_packet(HANDSHAKE_TIMEOUT, "CONNACK").await?)?;
        Ok(c)
    }

    /// Packet ids 1..=65535, cycling; callers keep fewer than 65535 in flight.
    pub fn next_packet_id(&mut self) -> u16 {
        self.next_id = self.next_id.checked_add(1).unwrap_or(1);
        self.next_id
    }

    /// Subscribes and waits for a SUBACK granting the filter.
    pub async fn subscribe(&mut self, filter: &str, qos: QoS) -> Result<(), LoadError> {
        let packet_id = self.next_packet_id();
        let sub = Packet::Subscribe(Subscribe {
            packet_id,
            filters: vec![SubscriptionRequest {
                filter: filter.to_string(),
                options: SubscriptionOptions {
                    qos,
                    ..SubscriptionOptions::default()
                },
            }],
            properties: Properties::default(),
        });
        self.writer.send(&sub).await?;
        match self.reader.next_packet(HANDSHAKE_TIMEOUT, "SUBACK").await? {
            Packet::SubAck(a)
                if a.packet_id == packet_id
                    && a.reason_codes.first().is_some_and(|c| *c < 0x80) =>
            {
                Ok(())
            }
            Packet::SubAck(a) => Err(LoadError::Protocol(format!(
                "SUBACK for {filter}: codes {:?}",
                a.reason_codes
            ))),
            other => Err(LoadError::Protocol(format!(
                "expected SUBACK, got packet type {}",
                other.packet_type()
            ))),
        }
    }

    /// A clean DISCONNECT, then close.
    pub async fn disconnect(mut self) -> Result<(), LoadError> {
        self.writer
            .send(&Packet::Disconnect(Disconnect::default()))
            .await?;
        self.writer.wr.shutdown().await?;
        Ok(())
    }
}
