//! Bytes -> packets, validating everything the MQTT 3.1, 3.1.1 and 5.0 specs call malformed or a
//! protocol error, with the packet size limit enforced from the length field alone.

use bytes::{Buf, Bytes, BytesMut};
use zeroize::Zeroizing;

use super::error::DecodeError;
use super::packet::*;
use super::properties::{self, PropertyContext};
use super::read::Reader;
use super::topic::valid_topic_name;
use super::varint::{self, VarInt};

/// Hard limits applied while decoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The largest whole packet (fixed header included) accepted.
    pub max_packet_size: u32,
}

impl Default for Limits {
    /// The protocol's own ceiling: a 4-byte remaining length plus the 5-byte fixed header.
    fn default() -> Limits {
        Limits {
            max_packet_size: varint::MAX_VARINT + 5,
        }
    }
}

/// Which side sent the bytes: each side may send only some packet types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    ClientToServer,
    ServerToClient,
}

/// Decodes one client->server packet from the front of `buf` (the broker's side).
///
/// `Ok(None)`: more bytes are needed and nothing was consumed. `version` is `None` until CONNECT
/// has been accepted (then only CONNECT is valid) and the negotiated version afterwards. The size
/// limit is checked as soon as the length field is complete, so a peer cannot make the broker
/// buffer a body it will reject; nothing is reserved on the strength of the length field.
/// Payload and binary fields are zero-copy slices of the frame, except in CONNECT and AUTH (see
/// [`credential_frame`]).
pub fn decode_packet(
    buf: &mut BytesMut,
    version: Option<ProtocolVersion>,
    limits: &Limits,
) -> Result<Option<Packet>, DecodeError> {
    decode_inner(buf, Direction::ClientToServer, version, limits)
}

/// Decodes one server->client packet (CONNACK, SUBACK, PUBLISH with subscription identifiers,
/// ...): for clients such as `audit` and the load generator, which know the version they asked for.
pub fn decode_packet_from_server(
    buf: &mut BytesMut,
    version: ProtocolVersion,
    limits: &Limits,
) -> Result<Option<Packet>, DecodeError> {
    decode_inner(buf, Direction::ServerToClient, Some(version), limits)
}

/// The version a (possibly malformed) CONNECT at the front of `buf` asks for, judged from its
/// protocol name and level alone. Lets the broker answer a CONNECT that failed to decode with a
/// CONNACK in the client's own format (v5 reason code or v3 return code).
pub fn connect_version_hint(buf: &[u8]) -> Option<ProtocolVersion> {
    if buf.first() != Some(&0x10) {
        return None;
    }
    let VarInt::Complete(_, n) = varint::peek(buf.get(1..)?) else {
        return None;
    };
    let rest = buf.get(1 + n..)?;
    if rest.starts_with(b"\x00\x04MQTT") {
        match rest.get(6) {
            Some(4) => Some(ProtocolVersion::V311),
            Some(5) => Some(ProtocolVersion::V5),
            _ => None,
        }
    } else if rest.starts_with(b"\x00\x06MQIsdp") && rest.get(8) == Some(&3) {
        Some(ProtocolVersion::V31)
    } else {
        None
    }
}

/// CONNECT and AUTH carry passwords and tokens. The read buffer they arrive in is shared with
/// the packets that follow and freed without being cleared, so the frame is copied into memory
/// that is zeroed when the last slice of it is dropped, and the bytes in the read buffer are
/// overwritten at once.
fn credential_frame(raw: &mut BytesMut) -> Bytes {
    let copy = Bytes::from_owner(Zeroizing::new(raw.to_vec()));
    raw.fill(0);
    copy
}

/// The fields of a CONNECT that outlive the handshake (the will) get their own memory, so that
/// they do not keep the frame, password included, alive for as long as the connection.
fn release_long_lived(mut c: Connect) -> Connect {
    if let Some(w) = c.will.as_mut() {
        w.payload = Bytes::copy_from_slice(&w.payload);
        if let Some(d) = w.properties.correlation_data.as_mut() {
            *d = Bytes::copy_from_slice(d);
        }
    }
    c
}

fn decode_inner(
    buf: &mut BytesMut,
    dir: Direction,
    version: Option<ProtocolVersion>,
    limits: &Limits,
) -> Result<Option<Packet>, DecodeError> {
    let Some(&b0) = buf.first() else {
        return Ok(None);
    };
    // Judge the first byte at once: a peer sending garbage is dropped before it sends more.
    check_fixed_header(b0, dir, version)?;
    let (rl, n) = match varint::peek(&buf[1..]) {
        VarInt::Complete(v, n) => (v as usize, n),
        VarInt::Incomplete => return Ok(None),
        VarInt::TooLong => {
            return Err(DecodeError::Malformed(
                "remaining length longer than 4 bytes",
            ))
        }
    };
    let total = 1 + n + rl;
    if total > limits.max_packet_size as usize {
        return Err(DecodeError::PacketTooLarge {
            size: total,
            max: limits.max_packet_size,
        });
    }
    if buf.len() < total {
        return Ok(None);
    }
    let credentials = matches!(b0 >> 4, 1 | 15);
    let mut frame = if credentials {
        credential_frame(&mut buf.split_to(total))
    } else {
        buf.split_to(total).freeze()
    };
    frame.advance(1 + n);
    let r = Reader::new(frame);
    let flags = b0 & 0x0f;
    let packet = match (b0 >> 4, version) {
        (1, _) => Packet::Connect(Box::new(release_long_lived(connect(r)?))),
        (_, None) => return Err(DecodeError::Protocol("the first packet must be CONNECT")),
        (2, Some(v)) => Packet::ConnAck(connack(r, v)?),
        (3, Some(v)) => Packet::Publish(publish(r, flags, v, dir)?),
        (4, Some(v)) => Packet::PubAck(pub_resp(r, v, PUBACK_CODES)?),
        (5, Some(v)) => Packet::PubRec(pub_resp(r, v, PUBACK_CODES)?),
        (6, Some(v)) => Packet::PubRel(pub_resp(r, v, PUBREL_CODES)?),
        (7, Some(v)) => Packet::PubComp(pub_resp(r, v, PUBREL_CODES)?),
        (8, Some(v)) => Packet::Subscribe(subscribe(r, v)?),
        (9, Some(v)) => Packet::SubAck(suback(r, v)?),
        (10, Some(v)) => Packet::Unsubscribe(unsubscribe(r, v)?),
        (11, Some(v)) => Packet::UnsubAck(unsuback(r, v)?),
        (12, Some(_)) => {
            r.finish()?;
            Packet::PingReq
        }
        (13, Some(_)) => {
            r.finish()?;
            Packet::PingResp
        }
        (14, Some(v)) => Packet::Disconnect(disconnect(r, v, dir)?),
        (15, Some(_)) => Packet::Auth(auth(r)?),
        _ => return Err(DecodeError::Malformed("reserved packet type")),
    };
    Ok(Some(packet))
}

/// Packet type, reserved flag bits and whether this side may send this type at this point.
fn check_fixed_header(
    b0: u8,
    dir: Direction,
    version: Option<ProtocolVersion>,
) -> Result<(), DecodeError> {
    let ty = b0 >> 4;
    let flags = b0 & 0x0f;
    let v5 = version.is_some_and(ProtocolVersion::is_v5);
    if ty == 0 {
        return Err(DecodeError::Malformed("reserved packet type 0"));
    }
    if ty == 15 && version.is_some() && !v5 {
        return Err(DecodeError::Malformed(
            "packet type 15 is reserved in MQTT 3",
        ));
    }
    match (dir, version) {
        (Direction::ClientToServer, None) if ty != 1 => {
            return Err(DecodeError::Protocol("the first packet must be CONNECT"));
        }
        (Direction::ClientToServer, Some(_)) if ty == 1 => {
            return Err(DecodeError::Protocol("a second CONNECT"));
        }
        (Direction::ServerToClient, None) => {
            return Err(DecodeError::Protocol(
                "server packets need the negotiated protocol version",
            ));
        }
        _ => {}
    }
    let allowed = match dir {
        Direction::ClientToServer => matches!(ty, 1 | 3..=8 | 10 | 12 | 14 | 15),
        Direction::ServerToClient => matches!(ty, 2..=7 | 9 | 11 | 13 | 15) || (ty == 14 && v5),
    };
    if !allowed {
        return Err(DecodeError::Protocol(
            "packet type not valid in this direction",
        ));
    }
    match ty {
        3 => {
            let qos = (flags >> 1) & 0b11;
            if qos == 3 {
                return Err(DecodeError::Malformed("PUBLISH with QoS 3"));
            }
            if qos == 0 && flags & 0b1000 != 0 {
                return Err(if v5 {
                    DecodeError::Protocol("DUP set on a QoS 0 PUBLISH")
                } else {
                    DecodeError::Malformed("DUP set on a QoS 0 PUBLISH")
                });
            }
        }
        6 | 8 | 10 if flags != 0b0010 => {
            return Err(DecodeError::Malformed(
                "reserved fixed header flags are not 0010",
            ));
        }
        6 | 8 | 10 => {}
        _ if flags != 0 => {
            return Err(DecodeError::Malformed(
                "reserved fixed header flags are not 0000",
            ));
        }
        _ => {}
    }
    Ok(())
}

fn packet_id(r: &mut Reader) -> Result<u16, DecodeError> {
    let id = r.u16()?;
    if id == 0 {
        return Err(DecodeError::Protocol("packet identifier 0"));
    }
    Ok(id)
}

fn connect(mut r: Reader) -> Result<Connect, DecodeError> {
    // Compared as bytes: a name that is not even UTF-8 is still just "not MQTT".
    let name = r.binary()?;
    let level = r.u8()?;
    let protocol = match (&name[..], level) {
        (b"MQTT", 4) => ProtocolVersion::V311,
        (b"MQTT", 5) => ProtocolVersion::V5,
        (b"MQIsdp", 3) => ProtocolVersion::V31,
        (b"MQTT" | b"MQIsdp", l) => return Err(DecodeError::UnsupportedProtocolVersion(l)),
        _ => return Err(DecodeError::BadProtocolName),
    };
    let v5 = protocol.is_v5();
    let flags = r.u8()?;
    if flags & 0x01 != 0 {
        return Err(DecodeError::Malformed("CONNECT reserved flag is set"));
    }
    let clean_start = flags & 0x02 != 0;
    let will_flag = flags & 0x04 != 0;
    let will_qos = (flags >> 3) & 0b11;
    let will_retain = flags & 0x20 != 0;
    let password_flag = flags & 0x40 != 0;
    let username_flag = flags & 0x80 != 0;
    let will_qos = QoS::from_u8(will_qos).ok_or(DecodeError::Malformed("will QoS 3"))?;
    if !will_flag && (will_qos != QoS::AtMostOnce || will_retain) {
        return Err(DecodeError::Malformed(
            "will QoS or will retain set without the will flag",
        ));
    }
    if protocol == ProtocolVersion::V311 && password_flag && !username_flag {
        return Err(DecodeError::Malformed(
            "password flag set without user name flag",
        ));
    }
    let keep_alive = r.u16()?;
    let properties = if v5 {
        properties::decode(&mut r, PropertyContext::Connect)?
    } else {
        Properties::default()
    };
    let client_id = r.string()?;
    let will = if will_flag {
        let properties = if v5 {
            properties::decode(&mut r, PropertyContext::Will)?
        } else {
            Properties::default()
        };
        let topic = r.string()?;
        if !valid_topic_name(&topic) {
            return Err(DecodeError::TopicNameInvalid(
                "will topic is empty or contains wildcards",
            ));
        }
        let payload = r.binary()?;
        Some(LastWill {
            topic,
            payload,
            qos: will_qos,
            retain: will_retain,
            properties,
        })
    } else {
        None
    };
    let username = if username_flag {
        Some(r.string()?)
    } else {
        None
    };
    let password = if password_flag {
        Some(r.binary()?)
    } else {
        None
    };
    r.finish()?;
    Ok(Connect {
        protocol,
        clean_start,
        keep_alive,
        client_id,
        will,
        username,
        password,
        properties,
    })
}

const CONNACK_V5_CODES: &[u8] = &[
    0x00, 0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8A, 0x8C, 0x90, 0x95, 0x97,
    0x99, 0x9A, 0x9B, 0x9C, 0x9D, 0x9F,
];
const PUBACK_CODES: &[u8] = &[0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99];
const PUBREL_CODES: &[u8] = &[0x00, 0x92];
const SUBACK_V3_CODES: &[u8] = &[0x00, 0x01, 0x02, 0x80];
const SUBACK_V5_CODES: &[u8] = &[
    0x00, 0x01, 0x02, 0x80, 0x83, 0x87, 0x8F, 0x91, 0x97, 0x9E, 0xA1, 0xA2,
];
const UNSUBACK_CODES: &[u8] = &[0x00, 0x11, 0x80, 0x83, 0x87, 0x8F, 0x91];
const DISCONNECT_CODES: &[u8] = &[
    0x00, 0x04, 0x80, 0x81, 0x82, 0x83, 0x87, 0x89, 0x8B, 0x8D, 0x8E, 0x8F, 0x90, 0x93, 0x94, 0x95,
    0x96, 0x97, 0x98, 0x99, 0x9A, 0x9B, 0x9C, 0x9D, 0x9E, 0x9F, 0xA0, 0xA1, 0xA2,
];
const AUTH_CODES: &[u8] = &[0x00, 0x18, 0x19];

fn check_code(code: u8, allowed: &[u8]) -> Result<(), DecodeError> {
    if allowed.contains(&code) {
        Ok(())
    } else {
        Err(DecodeError::Protocol(
            "reason code not valid for this packet type",
        ))
    }
}

fn connack(mut r: Reader, v: ProtocolVersion) -> Result<ConnAck, DecodeError> {
    let flags = r.u8()?;
    if flags & 0xFE != 0 {
        return Err(DecodeError::Malformed("CONNACK reserved flags are set"));
    }
    let session_present = flags & 0x01 != 0;
    let code = r.u8()?;
    let properties = if v.is_v5() {
        check_code(code, CONNACK_V5_CODES)?;
        properties::decode(&mut r, PropertyContext::ConnAck)?
    } else {
        if code > 5 {
            return Err(DecodeError::Protocol("CONNACK return code above 5"));
        }
        Properties::default()
    };
    r.finish()?;
    if session_present && code != 0 {
        return Err(DecodeError::Protocol(
            "session present set on a refused connection",
        ));
    }
    Ok(ConnAck {
        session_present,
        code,
        properties,
    })
}

fn publish(
    mut r: Reader,
    flags: u8,
    v: ProtocolVersion,
    dir: Direction,
) -> Result<Publish, DecodeError> {
    let dup = flags & 0b1000 != 0;
    let retain = flags & 0b0001 != 0;
    // `check_fixed_header` already refused QoS 3.
    let qos =
        QoS::from_u8((flags >> 1) & 0b11).ok_or(DecodeError::Malformed("PUBLISH with QoS 3"))?;
    let topic = r.string()?;
    let packet_id = if qos == QoS::AtMostOnce {
        None
    } else {
        Some(packet_id(&mut r)?)
    };
    let properties = if v.is_v5() {
        properties::decode(&mut r, PropertyContext::Publish)?
    } else {
        Properties::default()
    };
    if dir == Direction::ClientToServer && !properties.subscription_identifiers.is_empty() {
        return Err(DecodeError::Protocol(
            "PUBLISH from a client carries a subscription identifier",
        ));
    }
    if topic.is_empty() {
        if !v.is_v5() {
            return Err(DecodeError::TopicNameInvalid("empty topic name"));
        }
        if properties.topic_alias.is_none() {
            return Err(DecodeError::Protocol(
                "empty topic name without a topic alias",
            ));
        }
    } else if topic.bytes().any(|b| b == b'+' || b == b'#') {
        return Err(DecodeError::TopicNameInvalid("wildcard in a topic name"));
    }
    Ok(Publish {
        dup,
        qos,
        retain,
        topic,
        packet_id,
        properties,
        payload: r.rest(),
    })
}

fn pub_resp(mut r: Reader, v: ProtocolVersion, codes: &[u8]) -> Result<PubResp, DecodeError> {
    let packet_id = packet_id(&mut r)?;
    let mut resp = PubResp::ok(packet_id);
    if v.is_v5() && !r.is_empty() {
        resp.reason = r.u8()?;
        check_code(resp.reason, codes)?;
        if !r.is_empty() {
            resp.properties = properties::decode(&mut r, PropertyContext::PubResp)?;
        }
    }
    r.finish()?;
    Ok(resp)
}

fn subscribe(mut r: Reader, v: ProtocolVersion) -> Result<Subscribe, DecodeError> {
    let packet_id = packet_id(&mut r)?;
    let v5 = v.is_v5();
    let properties = if v5 {
        properties::decode(&mut r, PropertyContext::Subscribe)?
    } else {
        Properties::default()
    };
    let mut filters = Vec::new();
    while !r.is_empty() {
        let filter = r.string()?;
        let b = r.u8()?;
        let reserved = if v5 { 0xC0 } else { 0xFC };
        if b & reserved != 0 {
            return Err(DecodeError::Malformed(
                "reserved subscription option bits are set",
            ));
        }
        let qos = QoS::from_u8(b & 0b11).ok_or(DecodeError::Malformed("subscription QoS 3"))?;
        let retain_handling = (b >> 4) & 0b11;
        if retain_handling == 3 {
            return Err(DecodeError::Protocol("retain handling 3"));
        }
        filters.push(SubscriptionRequest {
            filter,
            options: SubscriptionOptions {
                qos,
                no_local: b & 0x04 != 0,
                retain_as_published: b & 0x08 != 0,
                retain_handling,
            },
        });
    }
    if filters.is_empty() {
        return Err(DecodeError::Protocol("SUBSCRIBE without topic filters"));
    }
    Ok(Subscribe {
        packet_id,
        filters,
        properties,
    })
}

fn suback(mut r: Reader, v: ProtocolVersion) -> Result<SubAck, DecodeError> {
    let packet_id = packet_id(&mut r)?;
    let (properties, codes) = if v.is_v5() {
        (
            properties::decode(&mut r, PropertyContext::SubAck)?,
            SUBACK_V5_CODES,
        )
    } else {
        (Properties::default(), SUBACK_V3_CODES)
    };
    let reason_codes = r.rest().to_vec();
    if reason_codes.is_empty() {
        return Err(DecodeError::Protocol("SUBACK without reason codes"));
    }
    for &c in &reason_codes {
        check_code(c, codes)?;
    }
    Ok(SubAck {
        packet_id,
        reason_codes,
        properties,
    })
}

fn unsubscribe(mut r: Reader, v: ProtocolVersion) -> Result<Unsubscribe, DecodeError> {
    let packet_id = packet_id(&mut r)?;
    let properties = if v.is_v5() {
        properties::decode(&mut r, PropertyContext::Unsubscribe)?
    } else {
        Properties::default()
    };
    let mut filters = Vec::new();
    while !r.is_empty() {
        filters.push(r.string()?);
    }
    if filters.is_empty() {
        return Err(DecodeError::Protocol("UNSUBSCRIBE without topic filters"));
    }
    Ok(Unsubscribe {
        packet_id,
        filters,
        properties,
    })
}

fn unsuback(mut r: Reader, v: ProtocolVersion) -> Result<UnsubAck, DecodeError> {
    let packet_id = packet_id(&mut r)?;
    if !v.is_v5() {
        r.finish()?;
        return Ok(UnsubAck {
            packet_id,
            reason_codes: Vec::new(),
            properties: Properties::default(),
        });
    }
    let properties = properties::decode(&mut r, PropertyContext::UnsubAck)?;
    let reason_codes = r.rest().to_vec();
    if reason_codes.is_empty() {
        return Err(DecodeError::Protocol("UNSUBACK without reason codes"));
    }
    for &c in &reason_codes {
        check_code(c, UNSUBACK_CODES)?;
    }
    Ok(UnsubAck {
        packet_id,
        reason_codes,
        properties,
    })
}

/// The optional reason code and properties of v5 DISCONNECT and AUTH (omitted when the remaining
/// length is 0; properties omitted when it is 1).
fn reason_and_props(
    r: &mut Reader,
    ctx: PropertyContext,
    codes: &[u8],
) -> Result<(u8, Properties), DecodeError> {
    let mut reason = 0;
    let mut props = Properties::default();
    if !r.is_empty() {
        reason = r.u8()?;
        check_code(reason, codes)?;
        if !r.is_empty() {
            props = properties::decode(r, ctx)?;
        }
    }
    r.finish()?;
    Ok((reason, props))
}

fn disconnect(
    mut r: Reader,
    v: ProtocolVersion,
    dir: Direction,
) -> Result<Disconnect, DecodeError> {
    if !v.is_v5() {
        r.finish()?;
        return Ok(Disconnect::default());
    }
    let (reason, properties) =
        reason_and_props(&mut r, PropertyContext::Disconnect, DISCONNECT_CODES)?;
    if dir == Direction::ServerToClient && properties.session_expiry_interval.is_some() {
        return Err(DecodeError::Protocol(
            "server DISCONNECT carries a session expiry interval",
        ));
    }
    Ok(Disconnect { reason, properties })
}

fn auth(mut r: Reader) -> Result<Auth, DecodeError> {
    let (reason, properties) = reason_and_props(&mut r, PropertyContext::Auth, AUTH_CODES)?;
    Ok(Auth { reason, properties })
}

#[cfg(test)]
mod credential_tests {
    use super::*;

    #[test]
    fn a_credential_frame_is_copied_and_wiped_in_the_read_buffer() {
        let mut raw = BytesMut::from(&b"s3cret-token"[..]);
        let copy = credential_frame(&mut raw);
        assert_eq!(&copy[..], b"s3cret-token");
        assert!(raw.iter().all(|b| *b == 0), "{raw:?}");
    }

    #[test]
    fn connect_fields_decode_from_the_copy_and_the_will_gets_its_own_memory() {
        let connect = Connect {
            protocol: ProtocolVersion::V5,
            clean_start: true,
            keep_alive: 30,
            client_id: "c".into(),
            will: Some(LastWill {
                topic: "w".into(),
                payload: Bytes::from_static(b"bye"),
                qos: QoS::AtMostOnce,
                retain: false,
                properties: Properties::default(),
            }),
            username: Some("u".into()),
            password: Some(Bytes::from_static(b"pw-123")),
            properties: Properties::default(),
        };
        let mut buf = BytesMut::new();
        crate::encode_packet(
            &Packet::Connect(Box::new(connect.clone())),
            ProtocolVersion::V5,
            &mut buf,
        )
        .unwrap();
        buf.extend_from_slice(&[0xc0, 0x00]); // a PINGREQ behind it stays intact
        let Some(Packet::Connect(got)) = decode_packet(&mut buf, None, &Limits::default()).unwrap()
        else {
            panic!("not a CONNECT")
        };
        assert_eq!(*got, connect);
        assert_eq!(&buf[..], &[0xc0, 0x00]);
        // The password still holds the frame; the will payload must not share it.
        let mut got = got;
        let payload = got.will.take().unwrap().payload;
        assert!(
            payload.try_into_mut().is_ok(),
            "the will payload is a slice of the frame"
        );
    }
}
