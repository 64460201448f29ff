//! CONNECT: read it, check it against the broker's rules, authenticate, attach the session,
//! answer CONNACK.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite};

use super::transport::Transport;
use super::{forwarded, Ctx, Link};
use crate::broker::admission::Full;
use crate::broker::auth::{ConnectDecision, ConnectRequest};
use crate::broker::codec::reason::{v3, v5};
use crate::broker::codec::{
    connect_version_hint, decode_packet, encoded_len, ConnAck, Connect, DecodeError, Packet,
    Properties, ProtocolVersion,
};
use crate::broker::core::{AttachError, AttachRequest};
use crate::broker::session::{Attachment, ConnCtl, Message, Will, NEVER_EXPIRES};
use crate::broker::topic::topic_too_deep;
use crate::pki::inspect::expiring_within;
use crate::security::events::{self, Event};
use crate::security::identity::PeerCert;
use crate::security::tokens::{looks_like_jwt, AUTH_METHOD};

/// What CONNECT settled for the rest of the connection.
pub(super) struct Established {
    pub link: Link,
    pub version: ProtocolVersion,
    pub client_alias_max: u16,
}

/// A refusal already written to the transport (or nothing to say): close now.
pub(super) struct Refused;

/// What only the handshake needs besides the transport and the broker.
pub(super) struct Arrival {
    /// The listener's or the source's connection limit is reached: CONNACK says so.
    pub over_limit: Option<Full>,
    pub cert: Option<PeerCert>,
    pub peer: SocketAddr,
}

pub(super) async fn handshake<S>(
    t: &mut Transport<S>,
    ctx: &Ctx,
    arrival: Arrival,
) -> Result<Established, Refused>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let Arrival {
        over_limit,
        cert,
        peer,
    } = arrival;
    let connect = loop {
        match decode_packet(&mut t.rbuf, None, &t.limits) {
            Ok(Some(Packet::Connect(c))) => break c,
            Ok(Some(_)) => return Err(Refused),
            Ok(None) => match t.read_more(&ctx.broker.stats).await {
                Ok(0) | Err(_) => return Err(Refused),
                Ok(_) => {}
            },
            Err(e) => {
                refuse_bad_connect(t, &e, peer);
                return Err(Refused);
            }
        }
    };
    let b = ctx.broker.clone();
    let cfg = &b.config;
    let v = connect.protocol;
    if v.is_v5() {
        // Binds every packet the broker sends from now on, CONNACK included.
        t.peer_max = connect.properties.maximum_packet_size.unwrap_or(0);
    }
    let v5c = v.is_v5();
    let code = |v3c: u8, v5c_: u8| if v5c { v5c_ } else { v3c };
    // Every refusal leaves a log line (with connection_messages) and a security event.
    let listener_port = ctx.listener.config.port;
    // `text`: the v5 reason string, when the code's own would be wrong.
    let refuse_text = |t: &mut Transport<S>, c: u8, why: &str, text: Option<&str>| {
        if cfg.logging.connection_messages {
            tracing::info!(client_id = ?connect.client_id, peer = %peer, version = v.level(), code = c, reason = why, "connection refused");
        }
        if events::enabled() {
            events::emit(
                Event::new("connect_refused")
                    .peer(peer)
                    .listener(listener_port)
                    .client_id(&connect.client_id)
                    .reason(why)
                    .code(c)
                    .protocol(v.level()),
            );
        }
        let props = Properties {
            reason_string: text.map(str::to_string),
            ..Properties::default()
        };
        connack(t, v, c, false, props);
        Refused
    };
    let refuse = |t: &mut Transport<S>, c: u8, why: &str| refuse_text(t, c, why, None);
    match over_limit {
        None => {}
        Some(Full::Listener) => {
            return Err(refuse(
                t,
                code(v3::SERVER_UNAVAILABLE, v5::QUOTA_EXCEEDED),
                "max_connections reached",
            ))
        }
        Some(Full::Source) => {
            return Err(refuse_text(
                t,
                code(v3::SERVER_UNAVAILABLE, v5::QUOTA_EXCEEDED),
                "max_connections_per_source reached",
                Some("too many connections from this address"),
            ))
        }
    }
    // Client id rules.
    let mut assigned = None;
    let client_id = if connect.client_id.is_empty() {
        let allowed = cfg.client_ids.allow_zero_length_clientid
            && v != ProtocolVersion::V31
            && connect.clean_start;
        if !allowed {
            return Err(refuse(
                t,
                code(v3::IDENTIFIER_REJECTED, v5::CLIENT_IDENTIFIER_NOT_VALID),
                "empty client id not allowed",
            ));
        }
        let id = b.assign_client_id();
        let shared: Arc<str> = Arc::from(id.as_str());
        assigned = Some(id);
        shared
    } else {
        b.shared_client_id(&connect.client_id)
    };
    // `client_id` is the one copy of the client id this connection keeps: its identity, its
    // will and the session (the one it resumes, or the one it creates) share it.
    if v == ProtocolVersion::V31 && client_id.len() > 23 {
        return Err(refuse(
            t,
            v3::IDENTIFIER_REJECTED,
            "MQTT 3.1 client id longer than 23 characters",
        ));
    }
    // Keep alive: capped (v5 server keep alive) or refused (v3, as later Mosquitto releases do:
    // a v3 client cannot be told another value). Keep alive 0 means a silent half-open
    // connection is never noticed: only where the configuration allows it.
    let max_ka = cfg.limits.max_keepalive;
    let mut keep_alive = connect.keep_alive;
    let mut server_keep_alive = None;
    let zero_refused = keep_alive == 0 && (max_ka < u16::MAX || !cfg.limits.allow_zero_keepalive);
    let too_long = keep_alive > max_ka || zero_refused;
    if too_long {
        if v5c {
            keep_alive = max_ka;
            server_keep_alive = Some(max_ka);
        } else {
            return Err(refuse(
                t,
                v3::IDENTIFIER_REJECTED,
                "keep alive above max_keepalive, or 0 without allow_zero_keepalive",
            ));
        }
    }
    let listener = ctx.listener.config.clone();
    if let Some(w) = &connect.will {
        let refused = if w.qos as u8 > listener.max_qos {
            Some((
                code(v3::NOT_AUTHORIZED, v5::QOS_NOT_SUPPORTED),
                "will QoS above max_qos",
            ))
        } else if w.retain && !cfg.limits.retain_available {
            Some((
                code(v3::NOT_AUTHORIZED, v5::RETAIN_NOT_SUPPORTED),
                "retained will while retain_available is false",
            ))
        } else if crate::broker::topic::is_sys_topic(&w.topic)
            || topic_too_deep(&w.topic, cfg.limits.max_topic_levels)
        {
            Some((
                code(v3::NOT_AUTHORIZED, v5::TOPIC_NAME_INVALID),
                "will topic not allowed",
            ))
        } else if w.payload.len() > cfg.limits.message_size_limit as usize {
            Some((
                code(v3::NOT_AUTHORIZED, v5::PACKET_TOO_LARGE),
                "will payload above message_size_limit",
            ))
        } else {
            None
        };
        if let Some((c, why)) = refused {
            return Err(refuse(t, c, why));
        }
    }
    // MQTT 5 enhanced authentication: only the token method, on a listener that takes tokens
    // (and does not name clients by their certificate). The token is the authentication data,
    // in one step: CONNACK follows, with no AUTH exchange.
    let enhanced = v5c && connect.properties.authentication_method.is_some();
    if enhanced {
        let offered = connect.properties.authentication_method.as_deref() == Some(AUTH_METHOD)
            && listener.auth.token.is_some()
            && listener.cert_username().is_none();
        if !offered {
            return Err(refuse(
                t,
                v5::BAD_AUTHENTICATION_METHOD,
                "authentication method not offered on this listener",
            ));
        }
        if !connect
            .properties
            .authentication_data
            .as_deref()
            .is_some_and(looks_like_jwt)
        {
            return Err(refuse(
                t,
                v5::BAD_USER_NAME_OR_PASSWORD,
                "no token in the authentication data",
            ));
        }
    }
    let credential = if enhanced {
        connect.properties.authentication_data.as_deref()
    } else {
        connect.password.as_deref()
    };
    let peer_cert = cert.clone().map(Arc::new);
    let decision = authenticate(ctx, &connect, credential, &client_id, peer, cert).await;
    let identity = match decision {
        ConnectDecision::Allow(mut id) => {
            if enhanced {
                match id.token() {
                    Some(ts) => ts.set_enhanced(),
                    None => {
                        return Err(refuse(
                            t,
                            v5::NOT_AUTHORIZED,
                            "the authentication data was not taken as a token",
                        ))
                    }
                }
            }
            // Whatever the authorizer filled in, these are facts of the connection.
            id.client_id = client_id.clone();
            id.set_peer(Some(peer));
            id.set_listener_port(listener.port);
            if id.cert_subject().is_none() {
                id.set_cert_subject(peer_cert.as_ref().map(|c| c.subject.clone()));
            }
            id.set_peer_cert(peer_cert);
            Arc::new(id)
        }
        ConnectDecision::Deny(d) => return Err(refuse(t, d.code(v), d.as_str())),
    };
    if let Some(w) = &connect.will {
        if !b.auth.publish(&identity, &w.topic, w.qos, w.retain) {
            return Err(refuse(
                t,
                code(v3::NOT_AUTHORIZED, v5::NOT_AUTHORIZED),
                "will topic not authorized",
            ));
        }
    }
    // Session expiry.
    let asked_expiry = if v5c {
        connect.properties.session_expiry_interval.unwrap_or(0)
    } else if connect.clean_start {
        0
    } else {
        NEVER_EXPIRES
    };
    let mut expiry = asked_expiry;
    if let Some(cap) = cfg.limits.persistent_client_expiration {
        let cap = u32::try_from(cap.as_secs()).unwrap_or(NEVER_EXPIRES - 1);
        expiry = expiry.min(cap);
    }
    let will = connect.will.as_ref().map(|w| {
        let now = Instant::now();
        Will {
            msg: Arc::new(Message::new(
                Arc::from(w.topic.as_str()),
                w.payload.clone(),
                w.qos,
                w.retain,
                forwarded(&w.properties),
                w.properties
                    .message_expiry_interval
                    .and_then(|s| now.checked_add(Duration::from_secs(u64::from(s)))),
                Some(client_id.clone()),
            )),
            delay: if v5c {
                w.properties.will_delay_interval.unwrap_or(0)
            } else {
                0
            },
            owner: Some(identity.clone()),
        }
    });
    let window = if v5c {
        connect
            .properties
            .receive_maximum
            .unwrap_or(u16::MAX)
            .clamp(1, cfg.limits.max_inflight_messages.max(1))
    } else {
        cfg.limits.max_inflight_messages
    };
    let mut props = Properties::default();
    if v5c {
        props.assigned_client_identifier = assigned;
        props.server_keep_alive = server_keep_alive;
        props.receive_maximum = Some(cfg.limits.max_inflight_messages);
        props.maximum_packet_size = Some(cfg.limits.max_packet_size);
        props.topic_alias_maximum = Some(listener.max_topic_alias);
        if expiry != asked_expiry {
            // The client must learn the expiry the broker will really apply.
            props.session_expiry_interval = Some(expiry);
        }
        if listener.max_qos < 2 {
            props.maximum_qos = Some(listener.max_qos);
        }
        if enhanced {
            props.authentication_method = Some(AUTH_METHOD.to_string());
        }
        if !cfg.limits.retain_available {
            props.retain_available = Some(0);
        }
    }
    if t.peer_max != 0 {
        // A CONNACK cannot be dropped: if even its smallest form does not fit the client's
        // maximum packet size, refuse before taking the session.
        let probe = Packet::ConnAck(ConnAck {
            session_present: false,
            code: 0,
            properties: Properties {
                reason_string: None,
                user_properties: Vec::new(),
                ..props.clone()
            },
        });
        if encoded_len(&probe, v).is_ok_and(|n| n > t.peer_max as usize) {
            if cfg.logging.connection_messages {
                tracing::info!(client_id = ?client_id, peer = %peer, max = t.peer_max, "connection refused: CONNACK larger than the client's maximum packet size");
            }
            return Err(Refused);
        }
    }
    let ctl = Arc::new(ConnCtl::default());
    let attached = b.attach(AttachRequest {
        client_id: client_id.clone(),
        identity: identity.clone(),
        clean_start: connect.clean_start,
        attachment: Attachment {
            ctl: ctl.clone(),
            identity: identity.clone(),
            version: v,
            window,
            expiry,
            will,
        },
        keep_alive,
    });
    let attached = match attached {
        Ok(a) => a,
        Err(AttachError::NotOwner) => {
            return Err(refuse(
                t,
                code(v3::NOT_AUTHORIZED, v5::NOT_AUTHORIZED),
                "client id holds a session of another identity",
            ));
        }
        Err(AttachError::TooManySessions) => {
            return Err(refuse(
                t,
                code(v3::SERVER_UNAVAILABLE, v5::QUOTA_EXCEEDED),
                "max_sessions reached",
            ));
        }
    };
    if let Some(ts) = identity.token() {
        b.token_deadline(&ctl, ts.current().valid_until);
    }
    // MQTT 3.1 has no session present flag.
    let present = attached.present && v != ProtocolVersion::V31;
    connack(t, v, 0, present, props);
    b.stats
        .connected
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    b.stats
        .total_connections
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    if cfg.logging.connection_messages {
        tracing::info!(client_id = ?client_id, peer = %peer, version = v.level(), keep_alive, clean_start = connect.clean_start, session_present = present, "client connected");
    }
    if events::enabled() {
        events::emit(
            Event::new("connect_accepted")
                .who(&identity)
                .protocol(v.level()),
        );
    }
    if let Some(reason) = identity.peer_cert().map(|c| &**c).and_then(|c| {
        expiring_within(
            format_args!("client certificate ({})", c.subject),
            c.not_after,
            cfg.security.cert_expiry_warning_days,
        )
    }) {
        // Info, not warn: a device reconnecting every minute would flood the log; the security
        // log (one event per connection) is where a fleet's expiring certificates are counted.
        tracing::info!(client_id = %identity.client_id, "{reason}");
        events::emit(
            Event::new("certificate_expiring")
                .who(&identity)
                .reason(reason),
        );
    }
    Ok(Established {
        link: Link {
            session: attached.session,
            epoch: attached.epoch,
            identity,
            ctl,
            connect_expiry: asked_expiry,
        },
        version: v,
        client_alias_max: connect.properties.topic_alias_maximum.unwrap_or(0),
    })
}

/// Ask the authorizer who the client is. It may wait (the password pool, later a remote
/// backend) without holding the reactor.
async fn authenticate(
    ctx: &Ctx,
    connect: &Connect,
    credential: Option<&[u8]>,
    client_id: &Arc<str>,
    peer: SocketAddr,
    cert: Option<PeerCert>,
) -> ConnectDecision {
    ctx.broker
        .auth
        .connect(ConnectRequest {
            client_id: client_id.clone(),
            username: connect.username.clone(),
            password: credential.map(|p| zeroize::Zeroizing::new(p.to_vec())),
            peer,
            listener: ctx.listener.config.clone(),
            cert,
            protocol: connect.protocol,
            clean_start: connect.clean_start,
        })
        .await
}

pub(super) fn connack<S>(
    t: &mut Transport<S>,
    version: ProtocolVersion,
    code: u8,
    present: bool,
    mut properties: Properties,
) {
    if code != 0 && version.is_v5() && properties.reason_string.is_none() {
        properties.reason_string = Some(connack_text(code).to_string());
    }
    t.send(
        &Packet::ConnAck(ConnAck {
            session_present: present,
            code,
            properties,
        }),
        version,
    );
}

fn refuse_bad_connect<S>(t: &mut Transport<S>, e: &DecodeError, peer: SocketAddr) {
    match connect_version_hint(&t.rbuf) {
        Some(ProtocolVersion::V5) => connack(
            t,
            ProtocolVersion::V5,
            e.reason_code(),
            false,
            Properties::default(),
        ),
        Some(v) => {
            if let Some(code) = e.v3_connack_code() {
                connack(t, v, code, false, Properties::default());
            }
        }
        None => {
            // An unknown protocol level in a well-formed CONNECT: tell it in 3.1.1 terms.
            if let DecodeError::UnsupportedProtocolVersion(_) = e {
                connack(
                    t,
                    ProtocolVersion::V311,
                    v3::UNACCEPTABLE_PROTOCOL_VERSION,
                    false,
                    Properties::default(),
                );
            }
        }
    }
    tracing::info!(peer = %peer, error = %e, "connection refused: bad CONNECT");
    if events::enabled() {
        // DecodeError's text is fixed (never the peer's bytes).
        events::emit(
            Event::new("connect_refused")
                .peer(peer)
                .reason(e.to_string())
                .code(e.reason_code()),
        );
    }
}

/// The reason string of a refused v5 CONNECT (fixed text).
fn connack_text(code: u8) -> &'static str {
    match code {
        v5::CLIENT_IDENTIFIER_NOT_VALID => "client identifier not accepted",
        v5::BAD_USER_NAME_OR_PASSWORD => "bad user name or password",
        v5::NOT_AUTHORIZED => "not authorized",
        v5::BANNED => "banned",
        v5::QUOTA_EXCEEDED => "too many connections on this listener",
        v5::QOS_NOT_SUPPORTED => "will QoS above the maximum of this listener",
        v5::RETAIN_NOT_SUPPORTED => "retained messages are not available",
        v5::TOPIC_NAME_INVALID => "will topic not allowed",
        v5::PACKET_TOO_LARGE => "will payload larger than message_size_limit",
        v5::BAD_AUTHENTICATION_METHOD => "authentication method not offered",
        v5::MALFORMED_PACKET => "malformed CONNECT",
        v5::PROTOCOL_ERROR => "CONNECT breaks the protocol",
        v5::UNSUPPORTED_PROTOCOL_VERSION => "unsupported protocol version",
        _ => "connection refused",
    }
}
