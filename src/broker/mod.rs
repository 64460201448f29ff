//! The MQTT broker engine behind `mqsec serve`.
//!
//! Pieces later releases plug into: `auth::Authorizer` (every CONNECT, PUBLISH, SUBSCRIBE and
//! delivery), `store::Store` (retained messages, persistent sessions, queued messages) and
//! `listener::Upgrade` (TLS, WebSocket on top of accepted TCP connections).

pub mod admission;
pub mod auth;
pub use mqsec_codec as codec;
pub mod connection;
pub mod core;
pub mod durable;
pub mod level_map;
pub mod listener;
pub mod message;
pub mod registry;
pub mod retained;
pub mod router;
pub mod session;
pub mod session_fuzz;
pub mod stats;
pub mod store;
pub mod sys;
pub mod timers;
pub mod topic;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};

pub use self::core::Broker;
use crate::config::Config;
use admission::ListenerRt;
use auth::Authorizer;
use listener::Upgrade;
use store::Store;

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot listen on {addr} ({origin}): {source}")]
    Bind {
        addr: String,
        origin: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Tls(#[from] listener::tls::TlsError),
    #[error(transparent)]
    Store(#[from] store::StoreError),
    #[error("persistence: {0}")]
    Durable(#[from] durable::DurableError),
    #[error("cannot install signal handlers: {0}")]
    Signals(std::io::Error),
}

/// How long shutdown waits for connections to say goodbye and flush.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// A bound, not yet running broker (binding first lets callers report the real addresses).
pub struct Server {
    broker: Arc<Broker>,
    listeners: Vec<Bound>,
    /// Each configured listener's transport once (SIGHUP reloads its files).
    transports: Vec<(String, Arc<dyn Upgrade>)>,
    revocation: listener::RevocationCheck,
}

struct Bound {
    tcp: tokio::net::TcpListener,
    rt: Arc<ListenerRt>,
    upgrade: Option<Arc<dyn Upgrade>>,
}

impl Server {
    /// Bind every configured listener. Must run inside a tokio runtime.
    pub fn bind(
        config: Config,
        auth: Arc<dyn Authorizer>,
        store: Arc<dyn Store>,
    ) -> Result<Server, ServeError> {
        let config = Arc::new(config);
        // The store first: a broker that cannot open it must not have listened, even briefly
        // (a client could connect to a broker that is about to exit).
        let opened = if config.persistence.enabled {
            Some(durable::Durable::open(
                &config.data_dir,
                config.persistence.sync,
            )?)
        } else {
            None
        };
        let mut listeners = Vec::new();
        let mut transports = Vec::new();
        let mut by_port = Vec::new();
        for l in &config.listeners {
            let lc = Arc::new(l.clone());
            let bound = listener::bind(l);
            // A host without IPv6 still runs the embedded default on 127.0.0.1.
            if let (Err(e), Some(std::net::IpAddr::V6(_))) = (&bound, l.bind) {
                if l.origin == crate::config::defaults::EMBEDDED && !listeners.is_empty() {
                    tracing::warn!(error = %e, "IPv6 loopback unavailable; listening on IPv4 only");
                    continue;
                }
            }
            let bound = bound.map_err(|source| ServeError::Bind {
                addr: match l.bind {
                    Some(ip) => SocketAddr::new(ip, l.port).to_string(),
                    None => format!("port {}", l.port),
                },
                origin: l.origin.clone(),
                source,
            })?;
            let upgrade = listener::transport(&lc, &config)?;
            if let Some(u) = &upgrade {
                transports.push((l.origin.clone(), u.clone()));
                by_port.push((l.port, u.clone()));
            }
            for tcp in bound {
                let local = tcp.local_addr().map_err(|source| ServeError::Bind {
                    addr: format!("port {}", l.port),
                    origin: l.origin.clone(),
                    source,
                })?;
                listeners.push(Bound {
                    tcp,
                    rt: ListenerRt::new(lc.clone(), local),
                    upgrade: upgrade.clone(),
                });
            }
        }
        let broker = if let Some((d, restored)) = opened {
            let path = d.path().display().to_string();
            let b = Arc::new(Broker::with_durable(config, auth, store, Some(d)));
            let (sessions, retained) = b.restore_durable(restored);
            tracing::info!(path, sessions, retained, "persistence: store opened");
            b
        } else {
            let b = Arc::new(Broker::new(config, auth, store));
            b.restore_sessions()?;
            b
        };
        Ok(Server {
            broker,
            listeners,
            transports,
            revocation: listener::RevocationCheck::new(by_port),
        })
    }

    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.listeners.iter().map(|b| b.rt.local).collect()
    }

    /// Run every connection accepted on the listener(s) configured at `port` through `upgrade`
    /// (TLS, WebSocket) before MQTT starts. Returns how many bound sockets it applies to.
    pub fn set_upgrade(&mut self, port: u16, upgrade: Arc<dyn Upgrade>) -> usize {
        let mut n = 0;
        for b in &mut self.listeners {
            if b.rt.config.port == port {
                b.upgrade = Some(upgrade.clone());
                n += 1;
            }
        }
        n
    }

    /// Whether a client certificate is revoked by the CRLs in force now (they change on SIGHUP).
    pub fn revocation_check(&self) -> listener::RevocationCheck {
        self.revocation.clone()
    }

    pub fn broker(&self) -> &Arc<Broker> {
        &self.broker
    }

    /// Serve until `stop` resolves; then tell clients (v5 DISCONNECT 0x8B), let them flush,
    /// and flush the store.
    pub async fn run(self, stop: impl std::future::Future<Output = ()>) -> Result<(), ServeError> {
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        let (alive_tx, mut alive_rx) = mpsc::channel::<()>(1);
        let mut accept_tasks = Vec::new();
        for Bound { tcp, rt, upgrade } in self.listeners {
            tracing::info!(address = %rt.local, "listening");
            accept_tasks.push(tokio::spawn(listener::accept_loop(
                tcp,
                rt,
                upgrade,
                self.broker.clone(),
                shutdown_rx.clone(),
                alive_tx.clone(),
            )));
        }
        drop(alive_tx);
        tokio::spawn(listener::watch_expiry(
            self.transports.clone(),
            self.broker.config.security.cert_expiry_warning_days,
            shutdown_rx.clone(),
        ));
        let reload = listener::reload_on_hangup(
            self.transports,
            shutdown_rx.clone(),
            self.broker.clone(),
            self.revocation.clone(),
        )
        .map_err(ServeError::Signals)?;
        tokio::spawn(reload);
        let hk = tokio::spawn(housekeeping(self.broker.clone(), shutdown_rx.clone()));
        stop.await;
        tracing::info!("shutting down: no new connections, telling clients");
        let _ = shutdown_tx.send(true);
        for t in accept_tasks {
            let _ = t.await;
        }
        self.broker.begin_shutdown();
        // Every connection holds a sender; recv() returns None when the last one has gone.
        let _ = tokio::time::timeout(SHUTDOWN_GRACE, alive_rx.recv()).await;
        hk.abort();
        self.broker.store.flush()?;
        if let Some(d) = &self.broker.durable {
            if !d.close() {
                tracing::error!(path = %d.path().display(), "persistence: the store could not be brought up to date at shutdown");
            }
        }
        tracing::info!("stopped");
        Ok(())
    }
}

/// Wills with a delay, session expiry, `$SYS` updates.
async fn housekeeping(broker: Arc<Broker>, mut shutdown: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let sys_every = broker.config.sys_interval;
    let mut last_sys: Option<Instant> = None;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.changed() => return,
        }
        let now = Instant::now();
        broker.housekeeping(now);
        if !sys_every.is_zero() && last_sys.is_none_or(|t| now.duration_since(t) >= sys_every) {
            last_sys = Some(now);
            sys::publish_sys(&broker, now);
        }
    }
}

/// Resolves on SIGTERM or SIGINT.
pub async fn termination_signal() -> Result<impl std::future::Future<Output = ()>, ServeError> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).map_err(ServeError::Signals)?;
    let mut int = signal(SignalKind::interrupt()).map_err(ServeError::Signals)?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::auth::AllowAnonymous;
    use crate::broker::codec::{
        decode_packet_from_server, encode_packet, Connect, Limits, Packet, Properties,
        ProtocolVersion,
    };
    use crate::broker::listener::{UpgradeFuture, Upgraded};
    use crate::broker::store::MemoryStore;
    use bytes::BytesMut;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    /// A transport that expects a fixed preamble before MQTT and names the peer by it: the shape
    /// of a TLS or WebSocket layer (handshake first, then a stream plus an identity).
    struct Preamble;

    impl Upgrade for Preamble {
        fn upgrade(&self, mut io: Upgraded, _peer: SocketAddr) -> UpgradeFuture {
            Box::pin(async move {
                let mut hello = [0u8; 6];
                io.stream.read_exact(&mut hello).await?;
                if &hello != b"HELLO\n" {
                    return Err(std::io::Error::other("bad preamble"));
                }
                Ok(io)
            })
        }
    }

    #[tokio::test]
    async fn upgraded_listener_runs_mqtt_over_the_wrapped_stream() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut cfg = crate::config::defaults::embedded();
        cfg.listeners.truncate(1); // 127.0.0.1 only
        cfg.listeners[0].port = port;
        let mut server = Server::bind(
            cfg,
            Arc::new(AllowAnonymous {
                clientid_prefixes: vec![],
            }),
            Arc::new(MemoryStore::new()),
        )
        .unwrap();
        assert_eq!(server.set_upgrade(port, Arc::new(Preamble)), 1);
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let run = tokio::spawn(server.run(async {
            let _ = stop_rx.await;
        }));

        let connect = |id: &str| {
            let mut out = BytesMut::new();
            let c = Connect {
                protocol: ProtocolVersion::V311,
                clean_start: true,
                keep_alive: 10,
                client_id: id.into(),
                will: None,
                username: None,
                password: None,
                properties: Properties::default(),
            };
            encode_packet(
                &Packet::Connect(Box::new(c)),
                ProtocolVersion::V311,
                &mut out,
            )
            .unwrap();
            out
        };
        // With the preamble: CONNACK.
        let mut s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        s.write_all(b"HELLO\n").await.unwrap();
        s.write_all(&connect("up")).await.unwrap();
        let mut buf = BytesMut::new();
        let ack = tokio::time::timeout(std::time::Duration::from_secs(5), async {
            loop {
                if let Some(p) =
                    decode_packet_from_server(&mut buf, ProtocolVersion::V311, &Limits::default())
                        .unwrap()
                {
                    return p;
                }
                assert!(s.read_buf(&mut buf).await.unwrap() > 0);
            }
        })
        .await
        .unwrap();
        assert!(matches!(ack, Packet::ConnAck(a) if a.code == 0));
        // Without it: the transport refuses, MQTT never starts.
        let mut bad = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        bad.write_all(&connect("raw")).await.unwrap();
        let mut rest = Vec::new();
        let n = tokio::time::timeout(
            std::time::Duration::from_secs(5),
            bad.read_to_end(&mut rest),
        )
        .await
        .unwrap()
        .unwrap_or(0);
        assert_eq!(n, 0, "no CONNACK without the transport handshake");
        let _ = stop_tx.send(());
        run.await.unwrap().unwrap();
    }
}
