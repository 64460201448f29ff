//! The HTTP side of `auth-server`: accept (TCP, optionally TLS through `serve`'s TLS layer),
//! read one request at a time with hard limits, rate-limit per source, route to an engine.
//!
//! Every answer to an engine's question is HTTP 200 with the engine's own "no" when anything is
//! wrong (a malformed request, a source over its rate, a busy password pool): EMQX reads any
//! other status as "ignore" and may then fall through to allowing the client, so an error status
//! would fail open there. Only unknown paths (404), `/health` and wrong methods (405) differ.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use parking_lot::Mutex;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use super::{emqx, rabbitmq, vernemq, AuthServer};
use crate::broker::admission::{Admit, RateLimiter};
use crate::broker::listener::{Upgrade, Upgraded};
use crate::config::model::RateLimit;

/// Largest request body read (a VerneMQ publish carries the message payload, base64).
pub const MAX_BODY: usize = 1024 * 1024;
/// A client must send a request's headers within this (slow-loris), and finish a TLS handshake.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections held at once; beyond, new ones wait in the kernel's backlog.
const MAX_CONNECTIONS: usize = 4096;

/// How the service listens.
pub struct Options {
    pub tls: Option<Arc<dyn Upgrade>>,
    /// Requests per second per source address (the broker node asking), `None`: unlimited.
    pub rate_limit: Option<RateLimit>,
}

/// One answer, before it becomes an HTTP response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    pub content_type: &'static str,
    pub body: String,
}

impl Reply {
    pub fn text(body: impl Into<String>) -> Reply {
        Reply {
            status: 200,
            content_type: "text/plain",
            body: body.into(),
        }
    }

    pub fn json(v: serde_json::Value) -> Reply {
        Reply {
            status: 200,
            content_type: "application/json",
            body: v.to_string(),
        }
    }

    fn status(status: u16, body: &str) -> Reply {
        Reply {
            status,
            content_type: "text/plain",
            body: body.to_string(),
        }
    }
}

/// A request as the engine modules see it: the parameters of a query string or a form body, or
/// a JSON body.
#[derive(Debug, Clone)]
pub enum Input {
    Params(HashMap<String, String>),
    Json(serde_json::Value),
    /// Not readable (too large, not UTF-8, not JSON where JSON is expected).
    Malformed(String),
}

impl Input {
    /// A string field: a parameter, or a JSON string (a JSON number or boolean as its text).
    pub fn get(&self, key: &str) -> Option<String> {
        match self {
            Input::Params(p) => p.get(key).cloned(),
            Input::Json(v) => match v.get(key)? {
                serde_json::Value::String(s) => Some(s.clone()),
                serde_json::Value::Number(n) => Some(n.to_string()),
                serde_json::Value::Bool(b) => Some(b.to_string()),
                _ => None,
            },
            Input::Malformed(_) => None,
        }
    }

    /// Take a field out (used for passwords, so the copy handed on is the only one kept).
    pub fn take(&mut self, key: &str) -> Option<String> {
        match self {
            Input::Params(p) => p.remove(key),
            Input::Json(serde_json::Value::Object(m)) => match m.remove(key)? {
                serde_json::Value::String(s) => Some(s),
                _ => None,
            },
            _ => None,
        }
    }
}

/// Who asked, for the rate limit and the event log.
#[derive(Debug, Clone, Copy)]
pub struct Caller {
    pub peer: SocketAddr,
}

struct Shared {
    server: Arc<AuthServer>,
    limiter: Option<Mutex<RateLimiter>>,
    started: Instant,
}

/// Serve until `stop` resolves.
pub async fn serve(
    server: Arc<AuthServer>,
    listener: TcpListener,
    options: Options,
    stop: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let shared = Arc::new(Shared {
        server,
        limiter: options.rate_limit.map(|r| Mutex::new(RateLimiter::new(r))),
        started: Instant::now(),
    });
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    tokio::pin!(stop);
    loop {
        let Ok(permit) = slots.clone().acquire_owned().await else {
            return Ok(());
        };
        let (tcp, peer) = tokio::select! {
            _ = &mut stop => return Ok(()),
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    // EMFILE and the like: wait rather than spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let _ = tcp.set_nodelay(true);
        let shared = shared.clone();
        let tls = options.tls.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let io = match tls {
                None => Upgraded::tcp(tcp),
                Some(layer) => {
                    match tokio::time::timeout(
                        HEADER_TIMEOUT,
                        layer.upgrade(Upgraded::tcp(tcp), peer),
                    )
                    .await
                    {
                        Ok(Ok(io)) => io,
                        Ok(Err(e)) => {
                            tracing::debug!(%peer, error = %e, "TLS handshake failed");
                            return;
                        }
                        Err(_) => return,
                    }
                }
            };
            let service = service_fn(move |req| {
                let shared = shared.clone();
                async move { Ok::<_, Infallible>(respond(&shared, peer, req).await) }
            });
            let mut builder = http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .keep_alive(true)
                .max_buf_size(64 * 1024);
            if let Err(e) = builder
                .serve_connection(TokioIo::new(io.stream), service)
                .await
            {
                tracing::debug!(%peer, error = %e, "HTTP connection ended");
            }
        });
    }
}

async fn respond(
    shared: &Shared,
    peer: SocketAddr,
    req: Request<Incoming>,
) -> Response<Full<Bytes>> {
    let reply = route(shared, peer, req).await;
    let mut resp = Response::new(Full::new(Bytes::from(reply.body)));
    *resp.status_mut() = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::OK);
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(reply.content_type));
    // Engines that cache (VerneMQ honours max-age) must ask again after every reload.
    resp.headers_mut()
        .insert("cache-control", HeaderValue::from_static("no-store"));
    resp
}

/// The engine family and endpoint of a path.
fn split_path(path: &str) -> Option<(&str, &str)> {
    let rest = path.strip_prefix('/')?;
    let (engine, endpoint) = rest.split_once('/')?;
    Some((engine, endpoint.trim_end_matches('/')))
}

async fn route(shared: &Shared, peer: SocketAddr, req: Request<Incoming>) -> Reply {
    let path = req.uri().path().to_string();
    if path == "/health" {
        return match *req.method() {
            Method::GET | Method::HEAD => health(shared),
            _ => Reply::status(405, "method not allowed\n"),
        };
    }
    let Some((engine, endpoint)) = split_path(&path) else {
        return Reply::status(404, "not found\n");
    };
    let known = match engine {
        "rabbitmq" => rabbitmq::ENDPOINTS.contains(&endpoint),
        "emqx" => emqx::ENDPOINTS.contains(&endpoint),
        "vernemq" => vernemq::ENDPOINTS.contains(&endpoint),
        _ => false,
    };
    if !known {
        return Reply::status(404, "not found\n");
    }
    let caller = Caller { peer };
    let refuse = |why: &str| {
        tracing::debug!(%peer, path, why, "refused");
        match engine {
            "rabbitmq" => rabbitmq::refused(),
            "emqx" => emqx::refused(),
            _ => vernemq::refused(why),
        }
    };
    if let Some(limiter) = &shared.limiter {
        if let Admit::No { first } = limiter.lock().admit(peer.ip(), Instant::now()) {
            shared
                .server
                .stats
                .rate_limited
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            if first {
                tracing::warn!(%peer, "requests over the per-source rate limit are refused");
            }
            return refuse("rate limited");
        }
    }
    let input = match read_input(req).await {
        Ok(i) => i,
        Err(why) => Input::Malformed(why),
    };
    let server = &shared.server;
    let started = Instant::now();
    let reply = match engine {
        "rabbitmq" => rabbitmq::answer(server, endpoint, input, caller).await,
        "emqx" => emqx::answer(server, endpoint, input, caller).await,
        _ => vernemq::answer(server, endpoint, input, caller).await,
    };
    server.stats.latency.record(started.elapsed());
    reply
}

/// Query parameters (GET) or the body (POST): a form, or JSON.
async fn read_input(req: Request<Incoming>) -> Result<Input, String> {
    let query = req.uri().query().unwrap_or("").to_string();
    match *req.method() {
        Method::GET => Ok(Input::Params(params(query.as_bytes()))),
        Method::POST => {
            let json = req
                .headers()
                .get(CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.to_ascii_lowercase().contains("json"));
            let body = Limited::new(req.into_body(), MAX_BODY)
                .collect()
                .await
                .map_err(|e| format!("body: {e}"))?
                .to_bytes();
            if json {
                serde_json::from_slice(&body)
                    .map(Input::Json)
                    .map_err(|e| format!("body is not JSON: {e}"))
            } else {
                let mut p = params(query.as_bytes());
                p.extend(params(&body));
                Ok(Input::Params(p))
            }
        }
        _ => Err(format!("method {} not supported", req.method())),
    }
}

/// `application/x-www-form-urlencoded` pairs; a repeated key keeps its first value.
fn params(bytes: &[u8]) -> HashMap<String, String> {
    let mut out = HashMap::new();
    for (k, v) in form_urlencoded::parse(bytes) {
        out.entry(k.into_owned()).or_insert_with(|| v.into_owned());
    }
    out
}

fn health(shared: &Shared) -> Reply {
    use std::sync::atomic::Ordering::Relaxed;
    let s = &shared.server;
    let files = s.files();
    let st = &s.stats;
    Reply::json(serde_json::json!({
        "status": "ok",
        "uptime_seconds": shared.started.elapsed().as_secs(),
        "users": files.passwords.user_count(),
        "acl_rules": files.acl.rules().len(),
        "logins": st.logins.load(Relaxed),
        "logins_refused": st.logins_refused.load(Relaxed),
        "decisions": st.decisions.load(Relaxed),
        "decisions_denied": st.decisions_denied.load(Relaxed),
        "rate_limited": st.rate_limited.load(Relaxed),
        "reloads": st.reloads.load(Relaxed),
        "requests": st.latency.count(),
        "latency_us": {
            "p50": st.latency.quantile(0.5),
            "p90": st.latency.quantile(0.9),
            "p99": st.latency.quantile(0.99),
            "max": st.latency.quantile(1.0),
            "buckets": st.latency.buckets(),
        },
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_split_into_engine_and_endpoint() {
        assert_eq!(split_path("/rabbitmq/user"), Some(("rabbitmq", "user")));
        assert_eq!(split_path("/emqx/authz/"), Some(("emqx", "authz")));
        assert_eq!(split_path("/health"), None);
        assert_eq!(split_path("rabbitmq/user"), None);
    }

    #[test]
    fn form_parameters_decode_and_keep_the_first_value() {
        let p = params(b"username=a%2Fb&password=p+w&username=other&variable_map.client_id=c1");
        assert_eq!(p["username"], "a/b");
        assert_eq!(p["password"], "p w");
        assert_eq!(p["variable_map.client_id"], "c1");
    }
}
