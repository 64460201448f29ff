//! The bytes of one connection: the stream, the read buffer and the write buffer.

use bytes::BytesMut;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::broker::codec::{encode_packet, Limits as CodecLimits, Packet, ProtocolVersion};
use crate::broker::stats::Stats;

/// Idle connections keep small buffers; busy ones grow them (doubling) up to what packets need.
pub(super) const INITIAL_READ: usize = 512;
/// How long a closing connection may take to flush its last packets.
const CLOSE_FLUSH: Duration = Duration::from_secs(2);

pub(super) struct Transport<S> {
    /// Whole, not `tokio::io::split`: the split halves share an Arc (64 bytes per connection)
    /// that one task polling both directions does not need.
    pub io: S,
    pub rbuf: BytesMut,
    pub wbuf: BytesMut,
    pub limits: CodecLimits,
    /// The client's Maximum Packet Size (v5; 0 = none): binds every packet the broker sends.
    pub peer_max: u32,
    /// A packet that must not be dropped did not fit `peer_max`: the connection must close.
    pub oversize: bool,
    /// How much to read at once: grows while reads fill the buffer.
    pub read_hint: usize,
}

impl<S> Transport<S> {
    pub fn new(io: S, max_packet_size: u32) -> Transport<S> {
        Transport {
            io,
            rbuf: BytesMut::new(),
            wbuf: BytesMut::new(),
            limits: CodecLimits { max_packet_size },
            peer_max: 0,
            oversize: false,
            read_hint: INITIAL_READ,
        }
    }

    /// Encode `p` for the client. A packet over the client's Maximum Packet Size is sent
    /// without its reason string and user properties if that makes it fit (the spec's rule),
    /// else not at all, and `oversize` tells the connection to close.
    pub fn send(&mut self, p: &Packet, version: ProtocolVersion) {
        if !self.encode_fitting(p, version) {
            let fits = stripped(p).is_some_and(|q| self.encode_fitting(&q, version));
            if !fits {
                tracing::debug!(
                    max = self.peer_max,
                    "a packet larger than the client's maximum packet size was not sent"
                );
                self.oversize = true;
            }
        }
    }

    fn encode_fitting(&mut self, p: &Packet, version: ProtocolVersion) -> bool {
        let start = self.wbuf.len();
        if let Err(e) = encode_packet(p, version, &mut self.wbuf) {
            tracing::warn!(error = %e, "could not encode a packet for the client");
            self.wbuf.truncate(start);
            return true;
        }
        if self.peer_max != 0 && self.wbuf.len() - start > self.peer_max as usize {
            self.wbuf.truncate(start);
            return false;
        }
        true
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Transport<S> {
    pub async fn read_more(&mut self, stats: &Stats) -> std::io::Result<usize> {
        if self.rbuf.capacity() - self.rbuf.len() < 128 {
            let grow = self.rbuf.len().max(INITIAL_READ);
            self.rbuf.reserve(grow);
        }
        let n = self.io.read_buf(&mut self.rbuf).await?;
        stats.bytes_received.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }

    /// Flush what is left to write (bounded in time), then shut the stream down.
    pub async fn close(&mut self) {
        if !self.wbuf.is_empty() {
            let _ = tokio::time::timeout(CLOSE_FLUSH, async {
                let _ = self.io.write_all(&self.wbuf).await;
                let _ = self.io.flush().await;
            })
            .await;
            self.wbuf.clear();
        }
        let _ = tokio::time::timeout(CLOSE_FLUSH, self.io.shutdown()).await;
    }
}

/// `p` without the properties a server may leave out to fit the client's maximum packet size;
/// None when it has none to leave out.
fn stripped(p: &Packet) -> Option<Packet> {
    let mut q = p.clone();
    let props = q.reply_properties_mut()?;
    if props.reason_string.is_none() && props.user_properties.is_empty() {
        return None;
    }
    props.reason_string = None;
    props.user_properties.clear();
    Some(q)
}
