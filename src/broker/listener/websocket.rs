//! MQTT over WebSocket (`protocol websockets`): the HTTP upgrade with the `mqtt` subprotocol,
//! then a byte stream over binary messages, so the connection code cannot tell it from TCP.
//!
//! Limits before anything is allocated for a peer: the request head is capped at
//! `websockets_headers_size`, and frames and messages at `max_packet_size` plus a little (one
//! message may carry the end of one packet and the start of the next).
//!
//! A browser opens a WebSocket to any host a page asks for, with whatever client certificate
//! the user has. `websockets_origins` lists the pages that may: a request whose `Origin` is not
//! listed is refused (403) before any MQTT. Clients that are not browsers send no `Origin` and
//! are not affected; an empty list checks nothing (as Mosquitto, which has no such check).

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use bytes::{Buf, Bytes};
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::{header, HeaderValue, StatusCode};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::WebSocketStream;

use super::{Stream, Upgrade, UpgradeFuture, Upgraded};

/// Subprotocols accepted, preferred first: MQTT 3.1.1 and 5.0 say `mqtt`; MQTT 3.1 clients
/// (and some old libraries) ask for `mqttv3.1`.
const SUBPROTOCOLS: &[&str] = &["mqtt", "mqttv3.1"];
/// Frame headers and a packet split across messages need this much above `max_packet_size`.
const MESSAGE_SLACK: usize = 64 * 1024;
/// Allocated per connection for reading frames (tungstenite's default is 128 KiB, eagerly).
const READ_BUFFER: usize = 4096;

/// The WebSocket upgrade of one listener.
pub struct WsLayer {
    config: WebSocketConfig,
    head_limit: usize,
    origins: Arc<[String]>,
}

impl WsLayer {
    /// `origins`: lower-case `scheme://host[:port]` allowed in `Origin`; empty: no check.
    pub fn new(max_packet_size: u32, head_limit: usize, origins: Vec<String>) -> WsLayer {
        let max = (max_packet_size as usize).saturating_add(MESSAGE_SLACK);
        WsLayer {
            // Writes go out as they come: the connection already batches its packets.
            config: WebSocketConfig::default()
                .read_buffer_size(READ_BUFFER)
                .write_buffer_size(0)
                .max_message_size(Some(max))
                .max_frame_size(Some(max)),
            head_limit,
            origins: origins.into(),
        }
    }
}

impl Upgrade for WsLayer {
    fn upgrade(&self, io: Upgraded, _peer: SocketAddr) -> UpgradeFuture {
        let (config, limit, origins) = (self.config, self.head_limit, self.origins.clone());
        Box::pin(async move {
            let head = HeadLimit {
                inner: io.stream,
                left: Some(limit),
            };
            #[allow(clippy::result_large_err)] // tungstenite's callback signature
            let mut ws = tokio_tungstenite::accept_hdr_async_with_config(
                head,
                move |req: &Request, resp: Response| {
                    check_origin(req, &origins)?;
                    choose_subprotocol(req, resp)
                },
                Some(config),
            )
            .await
            .map_err(|e| match e {
                WsError::Io(e) => e,
                WsError::Http(r) => io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("WebSocket upgrade refused ({})", r.status()),
                ),
                other => io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("WebSocket upgrade failed: {other}"),
                ),
            })?;
            ws.get_mut().left = None;
            Ok(Upgraded {
                stream: Box::new(WsStream {
                    ws,
                    pending: Bytes::new(),
                }),
                peer_cert: io.peer_cert,
            })
        })
    }
}

/// Refuse (403) a request from a browser page whose origin is not in `allowed` (when the list
/// is not empty). Origins compare in lower case; `null` (sandboxed pages, files) never matches.
#[allow(clippy::result_large_err)] // tungstenite's callback signature
fn check_origin(req: &Request, allowed: &[String]) -> Result<(), ErrorResponse> {
    if allowed.is_empty() {
        return Ok(());
    }
    let Some(origin) = req.headers().get(header::ORIGIN) else {
        return Ok(());
    };
    let ok = origin
        .to_str()
        .is_ok_and(|o| allowed.iter().any(|a| a.eq_ignore_ascii_case(o.trim())));
    if ok {
        return Ok(());
    }
    let mut r = ErrorResponse::new(Some(
        "MQTT over WebSocket: this origin is not in websockets_origins\n".to_string(),
    ));
    *r.status_mut() = StatusCode::FORBIDDEN;
    Err(r)
}

/// Answer with the first subprotocol of ours the client offers; refuse a client offering none
/// (MQTT over WebSocket requires it, and a browser page that did not ask for MQTT has no
/// business here).
#[allow(clippy::result_large_err)] // tungstenite's callback signature
fn choose_subprotocol(req: &Request, mut resp: Response) -> Result<Response, ErrorResponse> {
    let offered: Vec<&str> = req
        .headers()
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    match SUBPROTOCOLS.iter().find(|p| offered.contains(p)) {
        Some(p) => {
            resp.headers_mut()
                .insert(header::SEC_WEBSOCKET_PROTOCOL, HeaderValue::from_static(p));
            Ok(resp)
        }
        None => {
            let mut r = ErrorResponse::new(Some(
                "MQTT over WebSocket: request the subprotocol `mqtt`\n".to_string(),
            ));
            *r.status_mut() = StatusCode::BAD_REQUEST;
            Err(r)
        }
    }
}

/// Caps the bytes read while `left` is set (the HTTP request head); then passes through.
struct HeadLimit {
    inner: Box<dyn Stream>,
    left: Option<usize>,
}

impl AsyncRead for HeadLimit {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let Some(left) = self.left else {
            return Pin::new(&mut self.inner).poll_read(cx, buf);
        };
        if left == 0 {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "WebSocket request head larger than websockets_headers_size",
            )));
        }
        // Through a bounded copy: only during the handshake, and no unsafe ReadBuf juggling.
        let mut tmp = [0u8; 1024];
        let n = left.min(tmp.len()).min(buf.remaining());
        let mut rb = ReadBuf::new(&mut tmp[..n]);
        ready!(Pin::new(&mut self.inner).poll_read(cx, &mut rb))?;
        let got = rb.filled().len();
        buf.put_slice(rb.filled());
        self.left = Some(left - got);
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for HeadLimit {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Binary messages as a byte stream: reads take what the last message left, then the next one;
/// each write is one message. Pings are answered by tungstenite; a close ends the stream; a
/// text message is a protocol error (MQTT over WebSocket is binary only).
struct WsStream {
    ws: WebSocketStream<HeadLimit>,
    pending: Bytes,
}

fn ws_io(e: WsError) -> io::Error {
    match e {
        WsError::Io(e) => e,
        WsError::ConnectionClosed | WsError::AlreadyClosed => {
            io::Error::new(io::ErrorKind::BrokenPipe, "WebSocket closed")
        }
        other => io::Error::new(io::ErrorKind::InvalidData, other.to_string()),
    }
}

impl AsyncRead for WsStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        loop {
            if !self.pending.is_empty() {
                let n = self.pending.len().min(buf.remaining());
                buf.put_slice(&self.pending[..n]);
                self.pending.advance(n);
                return Poll::Ready(Ok(()));
            }
            match ready!(self.ws.poll_next_unpin(cx)) {
                Some(Ok(Message::Binary(b))) => self.pending = b,
                Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => {}
                Some(Ok(Message::Text(_))) => {
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "text WebSocket message: MQTT over WebSocket is binary only",
                    )))
                }
                // End of stream: the connection sees EOF.
                Some(Ok(Message::Close(_))) | None => return Poll::Ready(Ok(())),
                Some(Err(WsError::ConnectionClosed | WsError::AlreadyClosed)) => {
                    return Poll::Ready(Ok(()))
                }
                Some(Err(e)) => return Poll::Ready(Err(ws_io(e))),
            }
        }
    }
}

impl AsyncWrite for WsStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        ready!(self.ws.poll_ready_unpin(cx)).map_err(ws_io)?;
        self.ws
            .start_send_unpin(Message::Binary(Bytes::copy_from_slice(buf)))
            .map_err(ws_io)?;
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.ws.poll_flush_unpin(cx).map_err(ws_io)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.ws.poll_close_unpin(cx).map_err(ws_io)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;

    /// A broker-side stream from `WsLayer` and a tungstenite client on the other end of a pipe.
    async fn pair(
        max_packet_size: u32,
    ) -> (Box<dyn Stream>, WebSocketStream<tokio::io::DuplexStream>) {
        let (server, client) = tokio::io::duplex(1 << 20);
        let layer = WsLayer::new(max_packet_size, 4096, Vec::new());
        let up = tokio::spawn(layer.upgrade(
            Upgraded {
                stream: Box::new(server),
                peer_cert: None,
            },
            "127.0.0.1:1".parse().unwrap(),
        ));
        let mut req = "ws://localhost/mqtt".into_client_request().unwrap();
        req.headers_mut().insert(
            header::SEC_WEBSOCKET_PROTOCOL,
            HeaderValue::from_static("mqtt"),
        );
        let (ws, resp) = tokio_tungstenite::client_async(req, client).await.unwrap();
        assert_eq!(
            resp.headers().get(header::SEC_WEBSOCKET_PROTOCOL).unwrap(),
            "mqtt"
        );
        (up.await.unwrap().unwrap().stream, ws)
    }

    #[tokio::test]
    async fn binary_messages_are_one_byte_stream_both_ways() {
        let (mut s, mut ws) = pair(1024).await;
        // One packet split over two messages, then a ping (answered, not data), then more.
        ws.send(Message::Binary(Bytes::from_static(b"\x10\x04ab")))
            .await
            .unwrap();
        ws.send(Message::Binary(Bytes::from_static(b"cd")))
            .await
            .unwrap();
        ws.send(Message::Ping(Bytes::from_static(b"p")))
            .await
            .unwrap();
        ws.send(Message::Binary(Bytes::from_static(b"\xc0\x00")))
            .await
            .unwrap();
        let mut got = [0u8; 8];
        s.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"\x10\x04abcd\xc0\x00");
        s.write_all(b"\x20\x02\x00\x00").await.unwrap();
        s.flush().await.unwrap();
        let mut answers = Vec::new();
        while answers.len() < 2 {
            match ws.next().await.unwrap().unwrap() {
                Message::Binary(b) => answers.push(b.to_vec()),
                Message::Pong(p) => answers.push(p.to_vec()),
                other => panic!("{other:?}"),
            }
        }
        assert!(answers.contains(&b"p".to_vec()), "{answers:?}");
        assert!(
            answers.contains(&b"\x20\x02\x00\x00".to_vec()),
            "{answers:?}"
        );
        // A close from the client is the end of the stream.
        ws.close(None).await.unwrap();
        let mut rest = Vec::new();
        assert_eq!(s.read_to_end(&mut rest).await.unwrap(), 0);
    }

    #[tokio::test]
    async fn text_and_oversized_messages_are_errors() {
        let (mut s, mut ws) = pair(1024).await;
        ws.send(Message::text("hello")).await.unwrap();
        let mut b = [0u8; 4];
        let e = s.read(&mut b).await.unwrap_err();
        assert!(e.to_string().contains("binary only"), "{e}");

        let (mut s, mut ws) = pair(1024).await;
        let big = vec![0u8; 1024 + MESSAGE_SLACK + 1];
        // The client may see the connection go away while it is still sending.
        let _ = ws.send(Message::Binary(Bytes::from(big))).await;
        let mut b = [0u8; 4];
        assert!(s.read(&mut b).await.is_err());
    }
}
