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
            read_hint: INITIAL_READ,
        }
    }

    pub fn send(&mut self, p: &Packet, version: ProtocolVersion) {
        if let Err(e) = encode_packet(p, version, &mut self.wbuf) {
            tracing::warn!(error = %e, "could not encode a packet for the client");
        }
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
