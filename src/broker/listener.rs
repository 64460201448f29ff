//! Listeners: bind, accept, hand each connection to `connection::run`.
//!
//! The connection code takes any `AsyncRead + AsyncWrite` stream. A transport that wraps TCP
//! (TLS, WebSocket) implements `Upgrade`: it turns the accepted `TcpStream` into its own stream
//! (and may report a verified certificate subject); the accept loop and the protocol code stay
//! as they are. Plain TCP skips the upgrade and stays a concrete `TcpStream`.

use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::{mpsc, watch};

use super::connection::{self, ConnContext};
use super::core::Broker;
use crate::config::model::ListenerConfig;

/// Any byte stream a connection can run on.
pub trait Stream: AsyncRead + AsyncWrite + Unpin + Send + 'static {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> Stream for T {}

/// A stream produced by a transport upgrade.
pub struct Upgraded {
    pub stream: Box<dyn Stream>,
    /// RFC 4514 subject of a verified client certificate.
    pub cert_subject: Option<String>,
}

pub type UpgradeFuture = Pin<Box<dyn Future<Output = io::Result<Upgraded>> + Send>>;

/// A transport layered on TCP (TLS, WebSocket).
pub trait Upgrade: Send + Sync + 'static {
    fn upgrade(&self, tcp: TcpStream, peer: SocketAddr) -> UpgradeFuture;
}

/// A transport handshake that takes longer than this is dropped.
const UPGRADE_TIMEOUT: Duration = Duration::from_secs(10);

/// A listener at run time: its settings and its connection count.
pub struct ListenerRt {
    pub config: Arc<ListenerConfig>,
    pub local: SocketAddr,
    connections: AtomicUsize,
}

/// Holds one connection slot of a listener; frees it on drop.
pub struct Slot(Arc<ListenerRt>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.connections.fetch_sub(1, Ordering::AcqRel);
    }
}

impl ListenerRt {
    pub fn new(config: Arc<ListenerConfig>, local: SocketAddr) -> Arc<ListenerRt> {
        Arc::new(ListenerRt {
            config,
            local,
            connections: AtomicUsize::new(0),
        })
    }

    /// Take a connection slot; `None` when `max_connections` is reached.
    pub fn enter(self: &Arc<Self>) -> Option<Slot> {
        let n = self.connections.fetch_add(1, Ordering::AcqRel);
        let slot = Slot(self.clone());
        match self.config.max_connections {
            Some(max) if n >= max => None,
            _ => Some(slot),
        }
    }

    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::Relaxed)
    }
}

/// Bind every address of a listener.
pub fn bind(cfg: &ListenerConfig) -> io::Result<Vec<TcpListener>> {
    match cfg.bind {
        Some(ip) => Ok(vec![bind_one(SocketAddr::new(ip, cfg.port))?]),
        None => {
            use crate::config::model::SocketDomain;
            let v4 = SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), cfg.port);
            let v6 = SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), cfg.port);
            match cfg.socket_domain {
                Some(SocketDomain::Ipv4) => Ok(vec![bind_one(v4)?]),
                Some(SocketDomain::Ipv6) => Ok(vec![bind_one(v6)?]),
                // [::] takes IPv4 too (dual stack) where the host allows; else IPv4 alone.
                None => match bind_one(v6) {
                    Ok(l) => Ok(vec![l]),
                    Err(_) => Ok(vec![bind_one(v4)?]),
                },
            }
        }
    }
}

fn bind_one(addr: SocketAddr) -> io::Result<TcpListener> {
    let sock = match addr {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    sock.set_reuseaddr(true)?;
    sock.bind(addr)?;
    // A deep backlog absorbs connect storms (the kernel caps it at somaxconn).
    sock.listen(4096)
}

/// Accept until shutdown. Each connection holds a clone of `alive` so the server can wait for
/// every connection to finish.
pub async fn accept_loop(
    tcp: TcpListener,
    rt: Arc<ListenerRt>,
    upgrade: Option<Arc<dyn Upgrade>>,
    broker: Arc<Broker>,
    mut shutdown: watch::Receiver<bool>,
    alive: mpsc::Sender<()>,
) {
    let nodelay = broker.config.set_tcp_nodelay;
    loop {
        let accepted = tokio::select! {
            r = tcp.accept() => r,
            _ = shutdown.changed() => break,
        };
        let (stream, peer) = match accepted {
            Ok(x) => x,
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::warn!(error = %e, listener = %rt.local, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        if nodelay {
            let _ = stream.set_nodelay(true);
        }
        let ctx = ConnContext {
            broker: broker.clone(),
            listener: rt.clone(),
            peer,
            cert_subject: None,
            alive: Some(alive.clone()),
        };
        match &upgrade {
            // Plain TCP: the task is the connection itself, nothing wrapped around it.
            None => {
                tokio::spawn(connection::run(stream, ctx));
            }
            Some(u) => {
                let handshake = u.upgrade(stream, peer);
                tokio::spawn(async move {
                    match tokio::time::timeout(UPGRADE_TIMEOUT, handshake).await {
                        Ok(Ok(up)) => {
                            let ctx = ConnContext {
                                cert_subject: up.cert_subject,
                                ..ctx
                            };
                            connection::run(up.stream, ctx).await
                        }
                        Ok(Err(e)) => {
                            tracing::info!(peer = %peer, error = %e, "transport handshake failed")
                        }
                        Err(_) => tracing::info!(peer = %peer, "transport handshake timed out"),
                    }
                });
            }
        }
    }
}
