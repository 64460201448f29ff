//! Listeners: bind, admit, upgrade, and hand each connection to `connection::run`.
//!
//! The connection code takes any `AsyncRead + AsyncWrite` stream. Transports layered on TCP
//! implement `Upgrade` and stack: TCP -> TLS ([`tls`]) -> WebSocket ([`websocket`]); each layer
//! wraps the stream of the one below and passes on (or sets) the verified client certificate.
//! Plain TCP skips the upgrade and stays a concrete `TcpStream`.
//!
//! Admission happens in the accept loop, before any handshake costs anything ([`admission`]):
//! the per-source connection rate, then a connection slot (`max_connections`, and the process's
//! file-descriptor budget). The slot is held from accept on, so half-open sockets and slow
//! handshakes count, and every handshake has a deadline (`handshake_timeout`).

pub mod tls;
pub mod websocket;

use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::{mpsc, watch};

pub use super::admission::Slot;
use super::admission::{self, Admit, ListenerRt, RateLimiter};
use super::connection::{self, Admitted, ConnContext, ListenerCtx};
use super::core::Broker;
use crate::config::model::{Config, ListenerConfig, ListenerProtocol};
use crate::security::identity::PeerCert;

/// Any byte stream a connection can run on.
pub trait Stream: AsyncRead + AsyncWrite + Unpin + Send + 'static {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> Stream for T {}

/// A wrapped stream (TLS, WebSocket) never parks: its state lives in the layers.
impl connection::Io for Box<dyn Stream> {}

/// A stream as one transport layer hands it to the next (and the last to the connection).
pub struct Upgraded {
    pub stream: Box<dyn Stream>,
    /// The client certificate a TLS layer verified.
    pub peer_cert: Option<PeerCert>,
}

impl Upgraded {
    /// The accepted TCP connection, as the first layer gets it.
    pub fn tcp(tcp: TcpStream) -> Upgraded {
        Upgraded {
            stream: Box::new(tcp),
            peer_cert: None,
        }
    }
}

pub type UpgradeFuture = Pin<Box<dyn Future<Output = io::Result<Upgraded>> + Send>>;

/// A transport layer (TLS, WebSocket): wraps the stream below it.
pub trait Upgrade: Send + Sync + 'static {
    fn upgrade(&self, io: Upgraded, peer: SocketAddr) -> UpgradeFuture;

    /// Re-read the layer's files (SIGHUP). `None`: nothing to reload. On error the layer keeps
    /// what it had.
    fn reload(&self) -> Option<Result<(), String>> {
        None
    }

    /// Whether the CRLs this layer has in force now revoke `cert`.
    fn revokes(&self, _cert: &PeerCert) -> bool {
        false
    }

    /// When each dated part of the layer's files (certificates, CRLs) stops working.
    fn expiries(&self) -> Vec<Expiry> {
        Vec::new()
    }
}

/// A certificate or CRL a listener relies on and the moment it stops being valid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expiry {
    /// What it is, for a log line: "certfile /etc/mqsec/server.pem (CN=broker)".
    pub what: String,
    pub at: time::OffsetDateTime,
    /// A CRL: reissued every few days by design, so only its last days are news.
    pub crl: bool,
}

/// How close a CRL's nextUpdate must be to be reported (at most `cert_expiry_warning_days`).
pub const CRL_WARNING_DAYS: u32 = 3;

/// Log every expiry within `days` of now (or past), one warning and one `certificate_expiring`
/// security event each, so that an operator (or fail2ban/SIEM rules) hears of it weeks before
/// clients start failing. Returns how many were reported; `days` 0 reports nothing.
pub fn report_expiring(layers: &[(String, Arc<dyn Upgrade>)], days: u32) -> usize {
    use crate::security::events::{self, Event};
    if days == 0 {
        return 0;
    }
    let mut n = 0;
    for (origin, layer) in layers {
        for e in layer.expiries() {
            let window = if e.crl {
                days.min(CRL_WARNING_DAYS)
            } else {
                days
            };
            if let Some(reason) = crate::pki::inspect::expiring_within(&e.what, e.at, window) {
                n += 1;
                tracing::warn!(listener = %origin, "{reason}");
                events::emit(Event::new("certificate_expiring").reason(reason));
            }
        }
    }
    n
}

/// [`report_expiring`] now and then once a day, until shutdown.
pub async fn watch_expiry(
    layers: Vec<(String, Arc<dyn Upgrade>)>,
    days: u32,
    mut shutdown: watch::Receiver<bool>,
) {
    if days == 0 || layers.is_empty() {
        return;
    }
    let mut tick = tokio::time::interval(Duration::from_secs(24 * 3600));
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.changed() => return,
        }
        let l = layers.clone();
        let _ = tokio::task::spawn_blocking(move || report_expiring(&l, days)).await;
    }
}

/// Layers applied bottom up: `[tls, websocket]` is WebSocket over TLS.
pub struct Stack(pub Vec<Arc<dyn Upgrade>>);

impl Upgrade for Stack {
    fn upgrade(&self, io: Upgraded, peer: SocketAddr) -> UpgradeFuture {
        let layers = self.0.clone();
        Box::pin(async move {
            let mut io = io;
            for l in layers {
                io = l.upgrade(io, peer).await?;
            }
            Ok(io)
        })
    }

    fn reload(&self) -> Option<Result<(), String>> {
        self.0
            .iter()
            .filter_map(|l| l.reload())
            .reduce(|a, b| a.and(b))
    }

    fn revokes(&self, cert: &PeerCert) -> bool {
        self.0.iter().any(|l| l.revokes(cert))
    }

    fn expiries(&self) -> Vec<Expiry> {
        self.0.iter().flat_map(|l| l.expiries()).collect()
    }
}

/// Asks the transports, by listener port, whether a client certificate is revoked by the CRLs in
/// force now: after a SIGHUP, live connections can be checked against a new CRL with it (their
/// `Identity` holds the port; the connection holds the `PeerCert`).
#[derive(Clone)]
pub struct RevocationCheck(Arc<Vec<(u16, Arc<dyn Upgrade>)>>);

impl RevocationCheck {
    pub fn new(transports: Vec<(u16, Arc<dyn Upgrade>)>) -> RevocationCheck {
        RevocationCheck(Arc::new(transports))
    }

    pub fn is_revoked(&self, listener_port: u16, cert: &PeerCert) -> bool {
        self.0
            .iter()
            .any(|(port, t)| *port == listener_port && t.revokes(cert))
    }
}

/// The transport stack a listener's settings ask for; `None` for plain MQTT over TCP.
pub fn transport(
    l: &Arc<ListenerConfig>,
    config: &Config,
) -> Result<Option<Arc<dyn Upgrade>>, tls::TlsError> {
    let mut layers: Vec<Arc<dyn Upgrade>> = Vec::new();
    if l.tls.enabled() {
        layers.push(Arc::new(tls::TlsLayer::new(l.clone(), alpn(l))?));
    }
    if l.protocol == ListenerProtocol::WebSockets {
        layers.push(Arc::new(websocket::WsLayer::new(
            config.limits.max_packet_size,
            config.websockets_headers_size,
            l.websockets_origins.clone(),
        )));
    }
    Ok(match layers.len() {
        0 => None,
        1 => layers.pop(),
        _ => Some(Arc::new(Stack(layers))),
    })
}

fn alpn(l: &ListenerConfig) -> &'static [&'static [u8]] {
    match l.protocol {
        ListenerProtocol::Mqtt => tls::ALPN_MQTT,
        ListenerProtocol::WebSockets => tls::ALPN_HTTP,
    }
}

/// Load and check a listener's files without serving (`serve --check`); the warnings worth
/// printing.
pub fn check(l: &ListenerConfig) -> Result<Vec<String>, tls::TlsError> {
    if !l.tls.enabled() {
        return Ok(Vec::new());
    }
    Ok(tls::load(l, alpn(l))?.warnings)
}

/// The connections a listener admits: `max_connections`, else (and at most) the process's
/// file-descriptor budget.
pub fn connection_limit(l: &ListenerConfig) -> usize {
    let budget = admission::fd_budget();
    l.max_connections.map_or(budget, |m| m.min(budget))
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
    let deadline = rt.config.handshake_timeout;
    let mut limiter = rt.config.connection_rate_limit.map(RateLimiter::new);
    // Plain TCP connections park while idle (see `connection::Lot`); without a lot (the thread
    // could not start) they just stay in their tasks.
    let lot = match upgrade {
        Some(_) => None,
        None => match connection::Lot::start() {
            Ok(l) => Some(l),
            Err(e) => {
                tracing::warn!(error = %e, listener = %rt.local, "cannot start the parking thread: idle connections keep their tasks");
                None
            }
        },
    };
    let shared = Arc::new(ListenerCtx {
        broker,
        listener: rt.clone(),
        alive: Some(alive),
        lot,
    });
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
        if let Some(l) = limiter.as_mut() {
            if let Admit::No { first } = l.admit(peer.ip(), Instant::now()) {
                if first {
                    tracing::info!(peer = %peer.ip(), listener = %rt.local, "connection_rate_limit exceeded: closing new connections from this source until it slows down");
                }
                continue;
            }
        }
        let slot = rt.enter(peer.ip());
        let refusal = match slot {
            Ok(_) => None,
            Err(_) => match rt.refusal() {
                Some(r) => Some(r),
                // Enough clients are being told already: this one is just closed.
                None => continue,
            },
        };
        if nodelay {
            let _ = stream.set_nodelay(true);
        }
        let ctx = ConnContext {
            admitted: Admitted::new(shared.clone(), slot),
            peer,
            peer_cert: None,
        };
        match (&upgrade, refusal) {
            // Plain TCP: the task is the connection itself, nothing wrapped around it.
            (None, None) => {
                tokio::spawn(connection::run(stream, ctx));
            }
            (None, Some(r)) => {
                tokio::spawn(async move {
                    let _r = r;
                    let _ = tokio::time::timeout(deadline, connection::run(stream, ctx)).await;
                });
            }
            (Some(u), refusal) => {
                let handshake = u.upgrade(Upgraded::tcp(stream), peer);
                tokio::spawn(async move {
                    match tokio::time::timeout(deadline, handshake).await {
                        Ok(Ok(up)) => {
                            let ctx = ConnContext {
                                peer_cert: up.peer_cert,
                                ..ctx
                            };
                            match refusal {
                                None => connection::run(up.stream, ctx).await,
                                Some(r) => {
                                    let _r = r;
                                    let run = connection::run(up.stream, ctx);
                                    let _ = tokio::time::timeout(deadline, run).await;
                                }
                            }
                        }
                        Ok(Err(e)) => {
                            tracing::info!(peer = %peer, listener = %ctx.admitted.listener.local, error = %e, "transport handshake failed")
                        }
                        Err(_) => {
                            tracing::info!(peer = %peer, listener = %ctx.admitted.listener.local, "transport handshake timed out")
                        }
                    }
                });
            }
        }
    }
}

/// Reload every transport's files on SIGHUP until shutdown. The handler is installed before
/// this returns, so a SIGHUP from then on reloads instead of terminating the process.
pub fn reload_on_hangup(
    layers: Vec<(String, Arc<dyn Upgrade>)>,
    mut shutdown: watch::Receiver<bool>,
    broker: Arc<Broker>,
    revocation: RevocationCheck,
) -> io::Result<impl Future<Output = ()> + Send> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut hup = signal(SignalKind::hangup())?;
    Ok(async move {
        loop {
            tokio::select! {
                r = hup.recv() => if r.is_none() { return },
                _ = shutdown.changed() => return,
            }
            if layers.is_empty() {
                continue;
            }
            // Reading and parsing certificate files is blocking work: off the reactor.
            let (layers2, broker2, revocation2) =
                (layers.clone(), broker.clone(), revocation.clone());
            let _ = tokio::task::spawn_blocking(move || {
                for (origin, layer) in &layers2 {
                    match layer.reload() {
                        None => {}
                        Some(Ok(())) => {
                            tracing::info!(listener = %origin, "SIGHUP: TLS certificate, CA and CRL reloaded")
                        }
                        Some(Err(e)) => tracing::warn!(
                            listener = %origin,
                            "SIGHUP: TLS files not reloaded, the previous ones stay in force: {e}"
                        ),
                    }
                }
                cut_off_revoked(&broker2, &revocation2);
                report_expiring(&layers2, broker2.config.security.cert_expiry_warning_days);
            })
            .await;
        }
    })
}

/// After a CRL reload: disconnect every live client whose certificate the CRLs now in force
/// revoke (v5 DISCONNECT 0x98; its session stays, but it cannot come back with that
/// certificate). Returns how many were cut off.
pub fn cut_off_revoked(broker: &Broker, revocation: &RevocationCheck) -> usize {
    use crate::security::events::{self, Event};
    let mut n = 0;
    for s in broker.sessions.snapshot() {
        if !s.is_online() {
            continue;
        }
        let Some(who) = s.owner() else { continue };
        let (Some(cert), Some(port)) = (who.peer_cert(), who.listener_port()) else {
            continue;
        };
        if revocation.is_revoked(port, cert) {
            s.kick(super::codec::reason::v5::ADMINISTRATIVE_ACTION);
            n += 1;
            tracing::info!(client_id = ?who.client_id, serial = cert.serial.as_str(), "disconnected: its certificate is revoked by the reloaded CRL");
            events::emit(
                Event::new("disconnected")
                    .who(&who)
                    .reason("certificate revoked by the reloaded CRL")
                    .code(super::codec::reason::v5::ADMINISTRATIVE_ACTION),
            );
        }
    }
    n
}
