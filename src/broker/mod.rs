//! The MQTT broker engine behind `mqsec serve`.
//!
//! Pieces later releases plug into: `auth::Authorizer` (every CONNECT, PUBLISH, SUBSCRIBE and
//! delivery), `store::Store` (retained messages, persistent sessions, queued messages) and
//! `listener::Upgrade` (TLS, WebSocket on top of accepted TCP connections).

pub mod auth;
pub mod codec;
pub mod connection;
pub mod listener;
pub mod router;
pub mod session;
pub mod store;
pub mod sys;
pub mod topic;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};

use crate::config::Config;
use auth::Authorizer;
use listener::{ListenerRt, Upgrade};
use router::Broker;
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
    Store(#[from] store::StoreError),
    #[error("cannot install signal handlers: {0}")]
    Signals(std::io::Error),
}

/// How long shutdown waits for connections to say goodbye and flush.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// A bound, not yet running broker (binding first lets callers report the real addresses).
pub struct Server {
    broker: Arc<Broker>,
    listeners: Vec<(tokio::net::TcpListener, Arc<ListenerRt>)>,
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
        let mut listeners = Vec::new();
        for l in &config.listeners {
            let lc = Arc::new(l.clone());
            let bound = listener::bind(l).map_err(|source| ServeError::Bind {
                addr: match l.bind {
                    Some(ip) => SocketAddr::new(ip, l.port).to_string(),
                    None => format!("port {}", l.port),
                },
                origin: l.origin.clone(),
                source,
            })?;
            for tcp in bound {
                let local = tcp.local_addr().map_err(|source| ServeError::Bind {
                    addr: format!("port {}", l.port),
                    origin: l.origin.clone(),
                    source,
                })?;
                listeners.push((tcp, ListenerRt::new(lc.clone(), local)));
            }
        }
        let broker = Arc::new(Broker::new(config, auth, store));
        broker.restore_sessions()?;
        Ok(Server {
            broker,
            listeners,
            upgrade: None,
        })
    }

    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.listeners.iter().map(|(_, rt)| rt.local).collect()
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
        for (tcp, rt) in self.listeners {
            tracing::info!(address = %rt.local, "listening");
            accept_tasks.push(tokio::spawn(listener::accept_loop(
                tcp,
                rt,
                self.upgrade.clone(),
                self.broker.clone(),
                shutdown_rx.clone(),
                alive_tx.clone(),
            )));
        }
        drop(alive_tx);
        let hk = tokio::spawn(housekeeping(self.broker.clone(), shutdown_rx.clone()));
        stop.await;
        tracing::info!("shutting down: no new connections, telling clients");
        let _ = shutdown_tx.send(true);
        for t in accept_tasks {
            let _ = t.await;
        }
        // Every connection holds a sender; recv() returns None when the last one has gone.
        let _ = tokio::time::timeout(SHUTDOWN_GRACE, alive_rx.recv()).await;
        hk.abort();
        self.broker.store.flush()?;
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
