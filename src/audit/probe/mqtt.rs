//! MQTT probes over TCP, TLS or WebSocket, speaking through the project codec
//! (`broker::codec`). Read-only unless `--active`: they connect, subscribe and listen; the only
//! writes are PUBLISHes to a random `mqsec-audit/...` topic, and only with `--active`.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;
use zeroize::Zeroize;

use super::tls::{self, Recorder};
use super::tls_hello::{self, Flight, TLS12};
use super::{connect, ProbeError};
use crate::audit::checks::{finding, finding_at, Severity};
use crate::audit::engine::{Credentials, Options, Progress, Sink};
use crate::audit::target::Target;
use crate::broker::codec::reason::{v3, v5};
use crate::broker::codec::{
    decode_packet_from_server, encode_packet, Connect, Limits, Packet, Properties, ProtocolVersion,
    Publish, QoS, Subscribe, SubscriptionOptions, SubscriptionRequest,
};

/// How MQTT reaches the broker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transport {
    Tcp,
    Tls,
    Ws { path: String, tls: bool },
}

impl Transport {
    fn encrypted(&self) -> bool {
        matches!(self, Transport::Tls | Transport::Ws { tls: true, .. })
    }
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

enum Wire {
    Stream(Box<dyn Io>),
    Ws(Box<WebSocketStream<Box<dyn Io>>>),
}

/// A broker's answer to frames larger than this is not needed: stop before buffering more.
const MAX_INBOUND: u32 = 1024 * 1024;

/// One MQTT connection (before or after CONNECT).
pub struct Conn {
    wire: Wire,
    buf: BytesMut,
    version: ProtocolVersion,
    timeout: Duration,
}

impl Conn {
    pub async fn open(
        target: &Target,
        transport: &Transport,
        timeout: Duration,
    ) -> Result<Conn, ProbeError> {
        let io: Box<dyn Io> = if transport.encrypted() {
            let rec = std::sync::Arc::new(Recorder::default());
            let cfg = tls::client_config(&rec, None, false, &[])?;
            Box::new(tls::handshake(target, cfg, timeout).await?)
        } else {
            Box::new(connect(target, timeout).await?)
        };
        let wire = match transport {
            Transport::Ws { path, tls } => {
                let scheme = if *tls { "wss" } else { "ws" };
                let url = format!("{scheme}://{}{path}", target.authority());
                let mut req = url
                    .into_client_request()
                    .map_err(|e| ProbeError::WebSocket(e.to_string()))?;
                req.headers_mut()
                    .insert("Sec-WebSocket-Protocol", HeaderValue::from_static("mqtt"));
                let (ws, _resp) =
                    tokio::time::timeout(timeout, tokio_tungstenite::client_async(req, io))
                        .await
                        .map_err(|_| ProbeError::Timeout("in the WebSocket handshake"))?
                        .map_err(|e| ProbeError::WebSocket(e.to_string()))?;
                Wire::Ws(Box::new(ws))
            }
            _ => Wire::Stream(io),
        };
        Ok(Conn {
            wire,
            buf: BytesMut::new(),
            version: ProtocolVersion::V5,
            timeout,
        })
    }

    pub async fn send(&mut self, p: &Packet) -> Result<(), ProbeError> {
        let mut out = BytesMut::new();
        encode_packet(p, self.version, &mut out).map_err(|e| ProbeError::Mqtt(e.to_string()))?;
        let r = self.send_raw(&out).await;
        // A CONNECT carries the password: do not leave it in freed memory.
        out.as_mut().zeroize();
        r
    }

    async fn send_raw(&mut self, bytes: &[u8]) -> Result<(), ProbeError> {
        let t = self.timeout;
        let fut = async {
            match &mut self.wire {
                Wire::Stream(s) => {
                    s.write_all(bytes).await?;
                    s.flush().await?;
                    Ok(())
                }
                Wire::Ws(ws) => ws
                    .send(Message::Binary(Bytes::copy_from_slice(bytes)))
                    .await
                    .map_err(|e| ProbeError::WebSocket(e.to_string())),
            }
        };
        tokio::time::timeout(t, fut)
            .await
            .map_err(|_| ProbeError::Timeout("sending"))?
    }

    /// The next packet before `deadline`; `Ok(None)` when the broker closed the connection.
    pub async fn recv_until(&mut self, deadline: Instant) -> Result<Option<Packet>, ProbeError> {
        loop {
            let limits = Limits {
                max_packet_size: MAX_INBOUND,
            };
            match decode_packet_from_server(&mut self.buf, self.version, &limits) {
                Ok(Some(p)) => return Ok(Some(p)),
                Ok(None) => {}
                Err(e) => return Err(ProbeError::Mqtt(e.to_string())),
            }
            let more = tokio::time::timeout_at(deadline, async {
                match &mut self.wire {
                    Wire::Stream(s) => {
                        let mut chunk = [0u8; 16384];
                        match s.read(&mut chunk).await {
                            Ok(0) | Err(_) => None,
                            Ok(n) => Some(chunk[..n].to_vec()),
                        }
                    }
                    Wire::Ws(ws) => loop {
                        match ws.next().await {
                            Some(Ok(Message::Binary(b))) => break Some(b.to_vec()),
                            Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break None,
                            Some(Ok(_)) => continue,
                        }
                    },
                }
            })
            .await
            .map_err(|_| ProbeError::Timeout("waiting for the broker"))?;
            match more {
                Some(bytes) => self.buf.extend_from_slice(&bytes),
                None => return Ok(None),
            }
        }
    }

    pub async fn recv(&mut self) -> Result<Option<Packet>, ProbeError> {
        let deadline = Instant::now() + self.timeout;
        self.recv_until(deadline).await
    }
}

/// The broker's answer to CONNECT.
#[derive(Debug, Clone)]
pub struct ConnAckInfo {
    pub version: ProtocolVersion,
    pub code: u8,
    pub accepted: bool,
    pub max_packet_size: Option<u32>,
}

impl ConnAckInfo {
    /// "not authorized" or "bad user name or password", in either version.
    pub fn auth_refused(&self) -> bool {
        match self.version {
            ProtocolVersion::V5 => {
                self.code == v5::NOT_AUTHORIZED || self.code == v5::BAD_USER_NAME_OR_PASSWORD
            }
            _ => self.code == v3::NOT_AUTHORIZED || self.code == v3::BAD_USERNAME_OR_PASSWORD,
        }
    }

    pub fn describe(&self) -> String {
        let name = match (self.version, self.code) {
            (_, 0) => "accepted",
            (ProtocolVersion::V5, v5::NOT_AUTHORIZED) => "not authorized",
            (ProtocolVersion::V5, v5::BAD_USER_NAME_OR_PASSWORD) => "bad user name or password",
            (ProtocolVersion::V5, v5::CLIENT_IDENTIFIER_NOT_VALID) => "client identifier not valid",
            (ProtocolVersion::V5, v5::BANNED) => "banned",
            (ProtocolVersion::V5, _) => "refused",
            (_, v3::NOT_AUTHORIZED) => "not authorized",
            (_, v3::BAD_USERNAME_OR_PASSWORD) => "bad user name or password",
            (_, v3::IDENTIFIER_REJECTED) => "identifier rejected",
            _ => "refused",
        };
        let v = if self.version.is_v5() { "v5" } else { "v3.1.1" };
        format!("CONNACK {v} code 0x{:02X} ({name})", self.code)
    }
}

pub(crate) fn random_id(prefix: &str) -> String {
    format!("{prefix}-{:016x}", rand::random::<u64>())
}

/// Connect (v5 first, v3.1.1 when the broker does not speak v5) and read the CONNACK.
pub async fn mqtt_connect(
    target: &Target,
    transport: &Transport,
    client_id: &str,
    creds: Option<&Credentials>,
    timeout: Duration,
) -> Result<(Conn, ConnAckInfo), ProbeError> {
    let mut last = None;
    for version in [ProtocolVersion::V5, ProtocolVersion::V311] {
        let mut conn = Conn::open(target, transport, timeout).await?;
        conn.version = version;
        let connect = Connect {
            protocol: version,
            clean_start: true,
            keep_alive: 30,
            client_id: client_id.to_string(),
            will: None,
            username: creds.map(|c| c.username.clone()),
            password: creds.map(|c| Bytes::copy_from_slice(c.password.as_bytes())),
            properties: Properties::default(),
        };
        conn.send(&Packet::Connect(Box::new(connect))).await?;
        match conn.recv().await {
            Ok(Some(Packet::ConnAck(ack))) => {
                let info = ConnAckInfo {
                    version,
                    code: ack.code,
                    accepted: ack.code == 0,
                    max_packet_size: ack.properties.maximum_packet_size,
                };
                let unsupported = (version.is_v5() && ack.code == v5::UNSUPPORTED_PROTOCOL_VERSION)
                    || (!version.is_v5() && ack.code == v3::UNACCEPTABLE_PROTOCOL_VERSION);
                if unsupported && version.is_v5() {
                    last = Some(ProbeError::Mqtt(info.describe()));
                    continue;
                }
                return Ok((conn, info));
            }
            Ok(Some(other)) => {
                return Err(ProbeError::Mqtt(format!(
                    "expected CONNACK, got packet type {}",
                    other.packet_type()
                )))
            }
            Ok(None) => {
                last = Some(ProbeError::Mqtt(
                    "the broker closed the connection without a CONNACK".into(),
                ))
            }
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| ProbeError::Mqtt("no CONNACK".into())))
}

/// What arrived after subscribing.
#[derive(Debug, Default)]
struct Heard {
    granted: Vec<(String, Option<u8>)>,
    messages: Vec<Publish>,
    elapsed_ms: u64,
}

/// Subscribe to `filters` and listen until the broker has been quiet for a moment.
async fn subscribe_and_listen(conn: &mut Conn, filters: &[&str]) -> Result<Heard, ProbeError> {
    let sub = Subscribe {
        packet_id: 1,
        filters: filters
            .iter()
            .map(|f| SubscriptionRequest {
                filter: f.to_string(),
                options: SubscriptionOptions::default(),
            })
            .collect(),
        properties: Properties::default(),
    };
    conn.send(&Packet::Subscribe(sub)).await?;
    let start = Instant::now();
    // Retained messages come right after the SUBACK; live ones need a short listen. The SUBACK
    // itself gets the whole --timeout: a slow broker must not pass as one that grants nothing.
    let suback_by = start + conn.timeout;
    let listen = conn.timeout.min(Duration::from_millis(2000));
    // Set when the SUBACK arrives: the end of the listening window.
    let mut cap: Option<Instant> = None;
    let quiet = Duration::from_millis(400);
    let mut heard = Heard::default();
    loop {
        let deadline = match cap {
            None => suback_by,
            Some(cap) => (Instant::now() + quiet).min(cap),
        };
        match conn.recv_until(deadline).await {
            Ok(Some(Packet::SubAck(ack))) => {
                cap = cap.or(Some(Instant::now() + listen));
                for (i, f) in filters.iter().enumerate() {
                    heard
                        .granted
                        .push((f.to_string(), ack.reason_codes.get(i).copied()));
                }
            }
            Ok(Some(Packet::Publish(p))) => {
                if heard.messages.len() < 10_000 {
                    heard.messages.push(p);
                }
            }
            Ok(Some(_)) => {}
            Err(ProbeError::Timeout(_)) if cap.is_none() => {
                return Err(ProbeError::Timeout("waiting for the SUBACK"))
            }
            Ok(None) | Err(ProbeError::Timeout(_)) => break,
            Err(e) => return Err(e),
        }
        if cap.is_some_and(|c| Instant::now() >= c) {
            break;
        }
    }
    heard.elapsed_ms = start.elapsed().as_millis() as u64;
    Ok(heard)
}

fn granted(code: Option<u8>) -> bool {
    matches!(code, Some(c) if c < 0x80)
}

fn sample(topics: &[String], n: usize) -> String {
    let mut t: Vec<&String> = topics.iter().collect();
    t.sort();
    t.dedup();
    let total = t.len();
    let shown: Vec<String> = t.iter().take(n).map(|s| format!("{s:?}")).collect();
    if total > n {
        format!("{} and {} more", shown.join(", "), total - n)
    } else {
        shown.join(", ")
    }
}

const SESSION_IDS: [&str; 6] = [
    "wildcard-subscription",
    "sys-topics-readable",
    "broker-version-disclosed",
    "retained-messages-readable",
    "client-id-takeover",
    "oversized-packet-accepted",
];

/// The MQTT half of an audit on the target's own port. `Err` means no MQTT answer at all.
pub async fn audit_mqtt(
    target: &Target,
    is_tls: bool,
    client_cert_required: bool,
    opts: &Options,
    sink: &mut Sink,
    progress: &Progress,
) -> Result<(), String> {
    let t = opts.timeout;
    let transport = match &opts.ws_path {
        Some(p) => Transport::Ws {
            path: p.clone(),
            tls: is_tls,
        },
        None if is_tls => Transport::Tls,
        None => Transport::Tcp,
    };
    let over = match &transport {
        Transport::Tcp => "plain TCP".to_string(),
        Transport::Tls => "TLS".to_string(),
        Transport::Ws { path, tls: true } => format!("WebSocket over TLS at {path}"),
        Transport::Ws { path, tls: false } => format!("WebSocket without TLS at {path}"),
    };
    let all_ids: Vec<&str> = [
        &[
            "plaintext-mqtt",
            "websocket-without-tls",
            "credentials-over-plaintext",
            "anonymous-access",
            "anonymous-refused",
            "weak-credentials",
            "identity-read-access",
            "identity-can-publish",
        ][..],
        &SESSION_IDS[..],
    ]
    .concat();
    if client_cert_required {
        sink.skip(
            &all_ids,
            "the broker requires a client certificate (mqsec audit presents none)",
        );
        return Ok(());
    }
    if opts.ws_path.is_none() {
        sink.skip(&["websocket-without-tls"], "no --ws PATH given");
    }

    progress("MQTT: anonymous connect");
    let anon = mqtt_connect(target, &transport, &random_id("mqsec-audit"), None, t).await;
    let (anon_conn, anon_ack) = match anon {
        Ok(pair) => pair,
        Err(e) => {
            if !is_tls {
                return Err(format!("neither TLS nor MQTT answered ({e})"));
            }
            sink.skip(&all_ids, &format!("MQTT over {over} failed: {e}"));
            return Ok(());
        }
    };
    drop(anon_conn);
    sink.ran(&["plaintext-mqtt", "anonymous-access", "anonymous-refused"]);
    if !is_tls {
        match &transport {
            Transport::Ws { path, .. } => {
                sink.ran(&["websocket-without-tls"]);
                sink.add(finding(
                    "websocket-without-tls",
                    format!("ws://{target}{path} completed a WebSocket handshake (subprotocol mqtt) and answered CONNECT with a {}", anon_ack.describe()),
                ));
            }
            _ => sink.add(finding(
                "plaintext-mqtt",
                format!(
                    "port {} answered CONNECT over plain TCP with a {}",
                    target.port,
                    anon_ack.describe()
                ),
            )),
        }
    }
    let anonymous_ok = anon_ack.accepted;
    if anonymous_ok {
        sink.add(finding(
            "anonymous-access",
            format!(
                "CONNECT without username or password over {over}: {}",
                anon_ack.describe()
            ),
        ));
    } else {
        sink.add(finding(
            "anonymous-refused",
            format!(
                "CONNECT without credentials over {over}: {}",
                anon_ack.describe()
            ),
        ));
    }
    let mut plaintext_creds_evidence = Vec::new();
    if !is_tls && anon_ack.auth_refused() {
        plaintext_creds_evidence.push(format!(
            "the plaintext listener refuses anonymous clients ({}), so its clients authenticate with passwords in clear text",
            anon_ack.describe()
        ));
    }

    // Opt-in weak credentials.
    match &opts.wordlist {
        None => sink.skip(&["weak-credentials"], "opt-in: pass --wordlist FILE"),
        Some((path, entries)) => {
            progress("MQTT: wordlist");
            // A broker that admits any user name and password would make every wordlist line a
            // "success": try random credentials first.
            let random = Credentials {
                username: random_id("mqsec-audit-nobody"),
                password: zeroize::Zeroizing::new(random_id("pw")),
            };
            let any_accepted = matches!(
                mqtt_connect(target, &transport, &random_id("mqsec-audit"), Some(&random), t).await,
                Ok((_, ref a)) if a.accepted
            );
            if any_accepted {
                sink.skip(
                    &["weak-credentials"],
                    "the broker accepts any user name and password (a random pair was accepted)",
                );
            }
            let entries: &[Credentials] = if any_accepted { &[] } else { entries };
            if !any_accepted {
                sink.ran(&["weak-credentials"]);
            }
            for (i, cred) in entries.iter().enumerate() {
                if i > 0 {
                    tokio::time::sleep(opts.wordlist_delay).await;
                }
                match mqtt_connect(target, &transport, &random_id("mqsec-audit"), Some(cred), t)
                    .await
                {
                    Ok((_, ack)) if ack.accepted => {
                        sink.add(finding(
                            "weak-credentials",
                            format!(
                                "user {:?} was accepted with a password from {} (attempt {} of {}); the password is not shown",
                                cred.username,
                                path.display(),
                                i + 1,
                                entries.len()
                            ),
                        ));
                        if !is_tls {
                            plaintext_creds_evidence
                                .push(format!("user {:?} logged in over plain TCP", cred.username));
                        }
                        break;
                    }
                    _ => {}
                }
            }
        }
    }

    // The audited identity.
    let mut identity_conn = None;
    match &opts.credentials {
        None => sink.skip(
            &["identity-read-access", "identity-can-publish"],
            "no --username given",
        ),
        Some(cred) => {
            progress("MQTT: connecting as --username");
            match mqtt_connect(target, &transport, &random_id("mqsec-audit"), Some(cred), t).await {
                Ok((conn, ack)) if ack.accepted => {
                    if !is_tls {
                        plaintext_creds_evidence.push(format!(
                            "--username {:?} was accepted over {over}",
                            cred.username
                        ));
                    }
                    identity_conn = Some(conn);
                }
                Ok((_, ack)) => sink.skip(
                    &["identity-read-access", "identity-can-publish"],
                    &format!(
                        "--username {:?} was refused: {}",
                        cred.username,
                        ack.describe()
                    ),
                ),
                Err(e) => sink.skip(
                    &["identity-read-access", "identity-can-publish"],
                    &format!("--username {:?}: {e}", cred.username),
                ),
            }
        }
    }
    let identity_accepted = identity_conn.is_some();
    sink.ran(&["credentials-over-plaintext"]);
    if !plaintext_creds_evidence.is_empty() {
        sink.add(finding(
            "credentials-over-plaintext",
            plaintext_creds_evidence.join("; "),
        ));
    }

    // Checks that need a session: anonymous when allowed, else the audited identity.
    let session_creds = if anonymous_ok {
        None
    } else if identity_conn.is_some() {
        opts.credentials.clone()
    } else {
        sink.skip(
            &SESSION_IDS,
            "no session: anonymous connections are refused and no accepted --username was given",
        );
        return Ok(());
    };
    let as_whom = match &session_creds {
        None => "an anonymous client".to_string(),
        Some(c) => format!("user {:?}", c.username),
    };

    progress("MQTT: subscribing to # and $SYS/#");
    let mut conn = match identity_conn.take() {
        Some(c) if session_creds.is_some() => c,
        other => {
            identity_conn = other;
            match mqtt_connect(
                target,
                &transport,
                &random_id("mqsec-audit"),
                session_creds.as_ref(),
                t,
            )
            .await
            {
                Ok((c, a)) if a.accepted => c,
                Ok((_, a)) => {
                    sink.skip(
                        &SESSION_IDS,
                        &format!("reconnect refused: {}", a.describe()),
                    );
                    return Ok(());
                }
                Err(e) => {
                    sink.skip(&SESSION_IDS, &format!("reconnect failed: {e}"));
                    return Ok(());
                }
            }
        }
    };
    match subscribe_and_listen(&mut conn, &["#", "$SYS/#"]).await {
        Err(e) => sink.skip(
            &SESSION_IDS[..4],
            &format!("subscribing as {as_whom} failed: {e}"),
        ),
        Ok(heard) => {
            sink.ran(&SESSION_IDS[..4]);
            report_reads(&heard, &as_whom, opts, sink, session_creds.is_some());
        }
    }
    drop(conn);
    // Anonymous access was the session above; the audited identity may read more (or less).
    if let Some(mut idc) = identity_conn.take() {
        let who = opts
            .credentials
            .as_ref()
            .map(|c| format!("user {:?}", c.username))
            .unwrap_or_default();
        match subscribe_and_listen(&mut idc, &["#", "$SYS/#"]).await {
            Ok(heard) => report_identity_reads(&heard, &who, sink),
            Err(e) => sink.skip(
                &["identity-read-access"],
                &format!("subscribing as {who} failed: {e}"),
            ),
        }
    }

    if session_creds.is_some() {
        // MQTT requires a broker to let a client id replace its own earlier connection, so one
        // identity kicking itself proves nothing; user A taking over user B's id needs two.
        sink.skip(
            &["client-id-takeover"],
            "needs anonymous access: with one --username the probe could only replace that user's own connection, which MQTT requires brokers to allow",
        );
    } else {
        progress("MQTT: client id takeover");
        match takeover(target, &transport, t).await {
            Ok(Some(evidence)) => {
                sink.ran(&["client-id-takeover"]);
                sink.add(finding(
                    "client-id-takeover",
                    format!("as {as_whom}: {evidence}"),
                ));
            }
            Ok(None) => sink.ran(&["client-id-takeover"]),
            Err(e) => sink.skip(&["client-id-takeover"], &e.to_string()),
        }
    }

    progress("MQTT: oversized packet");
    match oversized(target, &transport, session_creds.as_ref(), t).await {
        Ok(Some(evidence)) => {
            sink.ran(&["oversized-packet-accepted"]);
            sink.add(finding("oversized-packet-accepted", evidence));
        }
        Ok(None) => sink.ran(&["oversized-packet-accepted"]),
        Err(e) => sink.skip(&["oversized-packet-accepted"], &e.to_string()),
    }

    if !opts.active {
        sink.skip(
            &["identity-can-publish"],
            "opt-in: pass --active to test publishing",
        );
    } else {
        // The audited identity when it was accepted, else the anonymous session.
        let publisher = opts.credentials.as_ref().filter(|_| identity_accepted);
        if publisher.is_some() || anonymous_ok {
            progress("MQTT: publishing (--active)");
            match publish_probe(target, &transport, publisher, t).await {
                Ok(Some(evidence)) => {
                    sink.ran(&["identity-can-publish"]);
                    sink.add(finding("identity-can-publish", evidence));
                }
                Ok(None) => sink.ran(&["identity-can-publish"]),
                Err(e) => sink.skip(&["identity-can-publish"], &e.to_string()),
            }
        }
    }
    Ok(())
}

fn report_reads(heard: &Heard, as_whom: &str, opts: &Options, sink: &mut Sink, identity: bool) {
    let hash_granted = heard
        .granted
        .iter()
        .find(|(f, _)| f == "#")
        .map(|(_, c)| *c)
        .unwrap_or(None);
    let (sys, normal): (Vec<&Publish>, Vec<&Publish>) = heard
        .messages
        .iter()
        .partition(|p| p.topic.starts_with('$'));
    let normal_topics: Vec<String> = normal.iter().map(|p| p.topic.clone()).collect();
    let sys_topics: Vec<String> = sys.iter().map(|p| p.topic.clone()).collect();
    if granted(hash_granted) {
        if normal.is_empty() {
            sink.add(finding_at(
                "wildcard-subscription",
                Severity::Low,
                format!(
                    "as {as_whom}: SUBACK granted `#` (code 0x{:02X}) but no message was delivered in {} ms (no traffic then, or the broker filters each delivery, as Mosquitto's acl_file does)",
                    hash_granted.unwrap_or_default(), heard.elapsed_ms
                ),
            ));
        } else {
            sink.add(finding(
                "wildcard-subscription",
                format!(
                    "as {as_whom}: SUBACK granted `#` and {} messages on {} topics were delivered within {} ms: {}",
                    normal.len(),
                    {
                        let mut t = normal_topics.clone();
                        t.sort();
                        t.dedup();
                        t.len()
                    },
                    heard.elapsed_ms,
                    sample(&normal_topics, 5)
                ),
            ));
        }
    }
    if !sys.is_empty() {
        sink.add(finding(
            "sys-topics-readable",
            format!(
                "as {as_whom}: {} `$SYS` messages delivered: {}",
                sys.len(),
                sample(&sys_topics, 4)
            ),
        ));
    }
    if let Some(v) = sys.iter().find(|p| p.topic == "$SYS/broker/version") {
        let text: String = String::from_utf8_lossy(&v.payload)
            .chars()
            .take(80)
            .collect();
        sink.add(finding(
            "broker-version-disclosed",
            format!("$SYS/broker/version = {text:?}"),
        ));
    }
    let retained: Vec<&&Publish> = normal.iter().filter(|p| p.retain).collect();
    if !retained.is_empty() {
        let topics: Vec<String> = retained.iter().map(|p| p.topic.clone()).collect();
        let mut evidence = format!(
            "as {as_whom}: {} retained messages readable, e.g. {}",
            retained.len(),
            sample(&topics, 5)
        );
        if opts.show_payloads {
            let shown: Vec<String> = retained
                .iter()
                .take(5)
                .map(|p| {
                    let s: String = String::from_utf8_lossy(&p.payload)
                        .chars()
                        .take(64)
                        .collect();
                    format!("{:?} = {s:?}", p.topic)
                })
                .collect();
            evidence.push_str(&format!("; payloads: {}", shown.join(", ")));
        }
        sink.add(finding("retained-messages-readable", evidence));
    }
    if identity {
        report_identity_reads(heard, as_whom, sink);
    }
}

/// `--username`: what that identity read through `#` and `$SYS/#`.
fn report_identity_reads(heard: &Heard, as_whom: &str, sink: &mut Sink) {
    let (sys, normal): (Vec<&Publish>, Vec<&Publish>) = heard
        .messages
        .iter()
        .partition(|p| p.topic.starts_with('$'));
    let normal_topics: Vec<String> = normal.iter().map(|p| p.topic.clone()).collect();
    sink.ran(&["identity-read-access"]);
    let severity = if !normal.is_empty() {
        Severity::Medium
    } else if !sys.is_empty() {
        Severity::Low
    } else {
        Severity::Info
    };
    let reads = if normal.is_empty() {
        "no message through `#`".to_string()
    } else {
        format!(
            "{} topics through `#` ({})",
            normal.len(),
            sample(&normal_topics, 5)
        )
    };
    let sys_reads = if sys.is_empty() {
        "no `$SYS` message".to_string()
    } else {
        format!("{} `$SYS` messages", sys.len())
    };
    sink.add(finding_at(
        "identity-read-access",
        severity,
        format!(
            "{as_whom} read {reads} and {sys_reads} within {} ms",
            heard.elapsed_ms
        ),
    ));
}

/// Connect anonymously twice with one client id; a takeover is the first connection being dropped.
async fn takeover(
    target: &Target,
    transport: &Transport,
    t: Duration,
) -> Result<Option<String>, ProbeError> {
    let id = random_id("mqsec-audit-takeover");
    let (mut first, a) = mqtt_connect(target, transport, &id, None, t).await?;
    if !a.accepted {
        return Err(ProbeError::Mqtt(format!(
            "first connection refused: {}",
            a.describe()
        )));
    }
    let (_second, b) = mqtt_connect(target, transport, &id, None, t).await?;
    if !b.accepted {
        return Ok(None);
    }
    let deadline = Instant::now() + t.min(Duration::from_millis(2000));
    loop {
        match first.recv_until(deadline).await {
            Ok(None) => {
                return Ok(Some(format!(
                    "a second connection with client id {id:?} was accepted and the first was closed"
                )))
            }
            Ok(Some(Packet::Disconnect(d))) => {
                return Ok(Some(format!(
                    "a second connection with client id {id:?} was accepted and the first got DISCONNECT 0x{:02X}",
                    d.reason
                )))
            }
            Ok(Some(_)) => continue,
            Err(ProbeError::Timeout(_)) => return Ok(None),
            Err(_) => {
                return Ok(Some(format!(
                    "a second connection with client id {id:?} was accepted and the first was dropped"
                )))
            }
        }
    }
}

/// Connect under a fresh random client id; a refused CONNECT is a probe error, not a finding.
async fn connect_accepted(
    target: &Target,
    transport: &Transport,
    creds: Option<&Credentials>,
    t: Duration,
) -> Result<(Conn, ConnAckInfo), ProbeError> {
    let (conn, ack) = mqtt_connect(target, transport, &random_id("mqsec-audit"), creds, t).await?;
    if !ack.accepted {
        return Err(ProbeError::Mqtt(format!(
            "connect refused: {}",
            ack.describe()
        )));
    }
    Ok((conn, ack))
}

/// Bytes of the oversized SUBSCRIBE: above every sane `max_packet_size`, small enough to send fast.
const OVERSIZED: usize = 300 * 1024;

/// Send a SUBSCRIBE of about 300 KiB (subscribing writes nothing) and see whether it is served.
async fn oversized(
    target: &Target,
    transport: &Transport,
    creds: Option<&Credentials>,
    t: Duration,
) -> Result<Option<String>, ProbeError> {
    let (mut conn, ack) = connect_accepted(target, transport, creds, t).await?;
    let base = format!("mqsec-audit/{:016x}/", rand::random::<u64>());
    let per = 60_000usize;
    let filters: Vec<SubscriptionRequest> = (0..OVERSIZED / per)
        .map(|i| SubscriptionRequest {
            filter: format!("{base}{i}/{}", "x".repeat(per - base.len() - 8)),
            options: SubscriptionOptions::default(),
        })
        .collect();
    let n = filters.len();
    match conn
        .send(&Packet::Subscribe(Subscribe {
            packet_id: 7,
            filters,
            properties: Properties::default(),
        }))
        .await
    {
        Ok(()) => {}
        // The broker closed the connection while the packet was still arriving: refused.
        Err(ProbeError::Io(_)) | Err(ProbeError::WebSocket(_)) => return Ok(None),
        Err(e) => return Err(e),
    }
    let advertised = match ack.max_packet_size {
        Some(m) => format!("the broker advertised Maximum Packet Size {m}"),
        None => "the broker advertised no Maximum Packet Size".to_string(),
    };
    loop {
        match conn.recv().await {
            Ok(Some(Packet::SubAck(s))) if s.packet_id == 7 => {
                let granted = s.reason_codes.iter().filter(|c| **c < 0x80).count();
                return Ok(Some(format!(
                    "a {} KiB SUBSCRIBE ({n} filters of {per} bytes) was answered with SUBACK ({granted} granted); {advertised}",
                    OVERSIZED / 1024
                )));
            }
            Ok(Some(_)) => continue,
            Ok(None) | Err(ProbeError::Io(_)) | Err(ProbeError::Mqtt(_)) => return Ok(None),
            Err(e) => return Err(e),
        }
    }
}

/// `--active`: publish to a random probe topic and see whether it is delivered back.
async fn publish_probe(
    target: &Target,
    transport: &Transport,
    cred: Option<&Credentials>,
    t: Duration,
) -> Result<Option<String>, ProbeError> {
    let who = match cred {
        Some(c) => format!("user {:?}", c.username),
        None => "an anonymous client".to_string(),
    };
    let (mut conn, _) = connect_accepted(target, transport, cred, t).await?;
    let topic = format!("mqsec-audit/{:016x}/probe", rand::random::<u64>());
    // Only the subscription matters here (it must be in place before the publish); what it heard
    // on a fresh random topic is nothing.
    subscribe_and_listen(&mut conn, &[&topic]).await?;
    conn.send(&Packet::Publish(Publish {
        dup: false,
        qos: QoS::AtMostOnce,
        retain: false,
        topic: topic.clone(),
        packet_id: None,
        properties: Properties::default(),
        payload: Bytes::from_static(b"mqsec audit --active probe"),
    }))
    .await?;
    let deadline = Instant::now() + t.min(Duration::from_millis(1500));
    loop {
        match conn.recv_until(deadline).await {
            Ok(Some(Packet::Publish(p))) if p.topic == topic => {
                return Ok(Some(format!(
                    "{who} published to {topic:?}, a topic no deployment grants on purpose, and it was delivered"
                )))
            }
            Ok(Some(_)) => continue,
            _ => return Ok(None),
        }
    }
}

/// An `--also` port: plaintext MQTT there beside a TLS target is a finding.
pub async fn audit_also(target: &Target, main_is_tls: bool, opts: &Options, sink: &mut Sink) {
    let t = opts.timeout;
    let all: Vec<u16> = super::ciphers::SUITES.iter().map(|s| s.code).collect();
    let port = target.port;
    let tls = matches!(
        tls_hello::probe(target, TLS12, &all, t).await,
        Ok(Flight::Hello { .. }) | Ok(Flight::Alert { .. })
    );
    if tls {
        sink.ran(&["plaintext-beside-tls"]);
        return;
    }
    match mqtt_connect(target, &Transport::Tcp, &random_id("mqsec-audit"), None, t).await {
        Err(e) => sink.skip(
            &["plaintext-beside-tls"],
            &format!("--also port {port}: no TLS and no MQTT answer ({e})"),
        ),
        Ok((_, ack)) => {
            sink.ran(&["plaintext-beside-tls", "plaintext-mqtt"]);
            let id = if main_is_tls {
                "plaintext-beside-tls"
            } else {
                "plaintext-mqtt"
            };
            sink.add(finding(
                id,
                format!(
                    "--also port {port} answered CONNECT over plain TCP with a {}",
                    ack.describe()
                ),
            ));
            if ack.accepted {
                sink.add(finding(
                    "anonymous-access",
                    format!(
                        "--also port {port}: anonymous CONNECT over plain TCP: {}",
                        ack.describe()
                    ),
                ));
            }
            let mut evidence = Vec::new();
            if ack.auth_refused() {
                evidence.push(format!(
                    "--also port {port} refuses anonymous clients over plain TCP ({}), so its clients send passwords in clear text",
                    ack.describe()
                ));
            }
            if let Some(cred) = &opts.credentials {
                if let Ok((_, a)) = mqtt_connect(
                    target,
                    &Transport::Tcp,
                    &random_id("mqsec-audit"),
                    Some(cred),
                    t,
                )
                .await
                {
                    if a.accepted {
                        evidence.push(format!(
                            "--username {:?} was accepted over plain TCP on port {port}",
                            cred.username
                        ));
                    }
                }
            }
            if !evidence.is_empty() {
                sink.ran(&["credentials-over-plaintext"]);
                sink.add(finding("credentials-over-plaintext", evidence.join("; ")));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A broker that accepts CONNECT (v5) and answers SUBSCRIBE after `suback_delay`, or never.
    async fn slow_broker(suback_delay: Option<Duration>) -> Target {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 1024];
            let _ = s.read(&mut buf).await;
            s.write_all(&[0x20, 0x03, 0x00, 0x00, 0x00]).await.unwrap();
            let _ = s.read(&mut buf).await;
            if let Some(d) = suback_delay {
                tokio::time::sleep(d).await;
                // SUBACK for packet id 1: no properties, QoS 0 granted twice.
                let _ = s
                    .write_all(&[0x90, 0x05, 0x00, 0x01, 0x00, 0x00, 0x00])
                    .await;
            }
            tokio::time::sleep(Duration::from_secs(5)).await;
        });
        Target::parse(&format!("127.0.0.1:{port}")).unwrap()
    }

    #[tokio::test]
    async fn a_late_suback_is_waited_for_and_a_missing_one_is_not_a_pass() {
        let t = Duration::from_millis(1500);
        // Later than the 400 ms quiet window, within --timeout: `#` is granted.
        let target = slow_broker(Some(Duration::from_millis(700))).await;
        let (mut conn, ack) = mqtt_connect(&target, &Transport::Tcp, "c", None, t)
            .await
            .unwrap();
        assert!(ack.accepted);
        let heard = subscribe_and_listen(&mut conn, &["#", "$SYS/#"])
            .await
            .unwrap();
        assert!(granted(heard.granted[0].1), "{:?}", heard.granted);

        // No SUBACK at all: an error (the checks go to not tested), not "nothing granted".
        let target = slow_broker(None).await;
        let (mut conn, _) = mqtt_connect(&target, &Transport::Tcp, "c", None, t)
            .await
            .unwrap();
        let started = Instant::now();
        let r = subscribe_and_listen(&mut conn, &["#", "$SYS/#"]).await;
        assert!(matches!(r, Err(ProbeError::Timeout(_))), "{r:?}");
        assert!(started.elapsed() < t + Duration::from_millis(500));
    }
}
