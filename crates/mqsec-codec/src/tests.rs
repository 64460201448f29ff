//! Hand-written byte vectors (the specs' examples and their edge cases) for every packet type.

use bytes::{Bytes, BytesMut};

use super::reason::v5 as rc;
use super::*;

const V3: ProtocolVersion = ProtocolVersion::V311;
const V5: ProtocolVersion = ProtocolVersion::V5;

/// A packet: first byte, remaining length (1 byte suffices for these vectors), body.
fn frame(b0: u8, body: &[u8]) -> Vec<u8> {
    assert!(body.len() < 128);
    let mut v = vec![b0, body.len() as u8];
    v.extend_from_slice(body);
    v
}

fn dec(bytes: &[u8], v: Option<ProtocolVersion>) -> Result<Option<Packet>, DecodeError> {
    let mut b = BytesMut::from(bytes);
    let r = decode_packet(&mut b, v, &Limits::default());
    if let Ok(Some(_)) = r {
        assert!(b.is_empty(), "decoder left {} bytes", b.len());
    }
    r
}

fn dec_ok(bytes: &[u8], v: Option<ProtocolVersion>) -> Packet {
    dec(bytes, v).unwrap().unwrap()
}

fn dec_srv(bytes: &[u8], v: ProtocolVersion) -> Result<Option<Packet>, DecodeError> {
    let mut b = BytesMut::from(bytes);
    decode_packet_from_server(&mut b, v, &Limits::default())
}

fn enc(p: &Packet, v: ProtocolVersion) -> Vec<u8> {
    let mut out = BytesMut::new();
    encode_packet(p, v, &mut out).unwrap();
    assert_eq!(encoded_len(p, v).unwrap(), out.len());
    out.to_vec()
}

/// Decodes, checks every proper prefix is `Ok(None)` without consuming, re-encodes to the same
/// bytes (the encoder writes properties in ascending identifier order, as these vectors do).
fn exact(bytes: &[u8], v: Option<ProtocolVersion>, dir: Direction) -> Packet {
    for n in 0..bytes.len() {
        let mut b = BytesMut::from(&bytes[..n]);
        let r = match dir {
            Direction::ClientToServer => decode_packet(&mut b, v, &Limits::default()),
            Direction::ServerToClient => {
                decode_packet_from_server(&mut b, v.unwrap(), &Limits::default())
            }
        };
        assert_eq!(r, Ok(None), "prefix of {n} bytes");
        assert_eq!(b.len(), n, "prefix of {n} bytes was consumed");
    }
    let p = match dir {
        Direction::ClientToServer => dec_ok(bytes, v),
        Direction::ServerToClient => dec_srv(bytes, v.unwrap()).unwrap().unwrap(),
    };
    let wire_version = match &p {
        Packet::Connect(c) => c.protocol,
        _ => v.unwrap(),
    };
    assert_eq!(enc(&p, wire_version), bytes, "re-encoding differs");
    p
}

fn malformed(r: Result<Option<Packet>, DecodeError>) {
    assert!(matches!(r, Err(DecodeError::Malformed(_))), "{r:?}");
}

fn protocol(r: Result<Option<Packet>, DecodeError>) {
    assert!(matches!(r, Err(DecodeError::Protocol(_))), "{r:?}");
}

fn str_(s: &str) -> Vec<u8> {
    let mut v = (s.len() as u16).to_be_bytes().to_vec();
    v.extend_from_slice(s.as_bytes());
    v
}

fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

// --- CONNECT -------------------------------------------------------------------------------

/// MQTT 3.1.1 section 3.1.2.10's variable header (name, level 4, flags 0xCE, keep alive 10) with
/// a payload of client id, will topic/message, user name and password.
fn v311_connect_bytes() -> Vec<u8> {
    let body = cat(&[
        &[0x00, 0x04, b'M', b'Q', b'T', b'T', 0x04, 0xCE, 0x00, 0x0A],
        &str_("cid"),
        &str_("w/t"),
        &str_("bye"),
        &str_("u"),
        &str_("pw"),
    ]);
    frame(0x10, &body)
}

#[test]
fn connect_v311_spec_example() {
    let p = exact(&v311_connect_bytes(), None, Direction::ClientToServer);
    let Packet::Connect(c) = p else {
        panic!("{p:?}")
    };
    assert_eq!(c.protocol, V3);
    assert!(c.clean_start);
    assert_eq!(c.keep_alive, 10);
    assert_eq!(c.client_id, "cid");
    let w = c.will.unwrap();
    assert_eq!((w.topic.as_str(), &w.payload[..]), ("w/t", &b"bye"[..]));
    assert_eq!((w.qos, w.retain), (QoS::AtLeastOnce, false));
    assert_eq!(c.username.as_deref(), Some("u"));
    assert_eq!(c.password.as_deref(), Some(&b"pw"[..]));
}

/// MQTT 5 section 3.1.2.11's example variable header (flags 0xC2, keep alive 10, session expiry
/// 10) plus a will with will properties (delay, format indicator, content type, user property).
fn v5_connect_bytes() -> Vec<u8> {
    let will_props = cat(&[
        &[0x01, 0x01],
        &[0x03],
        &str_("text/plain"),
        &[0x18, 0x00, 0x00, 0x00, 0x05],
        &[0x26],
        &str_("k"),
        &str_("v"),
    ]);
    let body = cat(&[
        &[
            0x00,
            0x04,
            b'M',
            b'Q',
            b'T',
            b'T',
            0x05,
            0xC2 | 0x04 | 0x10 | 0x20,
            0x00,
            0x0A,
        ],
        &[0x05, 0x11, 0x00, 0x00, 0x00, 0x0A],
        &str_("client-1"),
        &[will_props.len() as u8],
        &will_props,
        &str_("status/client-1"),
        &str_("offline"),
        &str_("user"),
        &str_("secret"),
    ]);
    frame(0x10, &body)
}

#[test]
fn connect_v5_with_properties_and_will_properties() {
    let p = exact(&v5_connect_bytes(), None, Direction::ClientToServer);
    let Packet::Connect(c) = p else {
        panic!("{p:?}")
    };
    assert_eq!(c.protocol, V5);
    assert_eq!(c.properties.session_expiry_interval, Some(10));
    let w = c.will.unwrap();
    assert_eq!((w.qos, w.retain), (QoS::ExactlyOnce, true));
    assert_eq!(w.properties.will_delay_interval, Some(5));
    assert_eq!(w.properties.payload_format_indicator, Some(1));
    assert_eq!(w.properties.content_type.as_deref(), Some("text/plain"));
    assert_eq!(w.properties.user_properties, vec![("k".into(), "v".into())]);
    assert_eq!(w.topic, "status/client-1");
}

#[test]
fn connect_v31_mqisdp() {
    let body = cat(&[
        &[
            0x00, 0x06, b'M', b'Q', b'I', b's', b'd', b'p', 0x03, 0x02, 0x00, 0x3C,
        ],
        &str_("a-client-id-longer-than-23-characters"),
    ]);
    let p = exact(&frame(0x10, &body), None, Direction::ClientToServer);
    let Packet::Connect(c) = p else {
        panic!("{p:?}")
    };
    assert_eq!(c.protocol, ProtocolVersion::V31);
    assert_eq!(c.keep_alive, 60);
}

fn connect_with(name: &[u8], level: u8, flags: u8, tail: &[u8]) -> Vec<u8> {
    let body = cat(&[
        &(name.len() as u16).to_be_bytes(),
        name,
        &[level, flags, 0x00, 0x0A],
        if level == 5 { &[0x00] } else { &[] },
        &str_("c"),
        tail,
    ]);
    frame(0x10, &body)
}

#[test]
fn connect_header_errors() {
    assert_eq!(
        dec(&connect_with(b"MQTX", 4, 0x02, &[]), None),
        Err(DecodeError::BadProtocolName)
    );
    assert_eq!(
        dec(&connect_with(&[0xFF, 0xFE], 4, 0x02, &[]), None),
        Err(DecodeError::BadProtocolName)
    );
    assert_eq!(
        dec(&connect_with(b"MQTT", 6, 0x02, &[]), None),
        Err(DecodeError::UnsupportedProtocolVersion(6))
    );
    assert_eq!(
        dec(&connect_with(b"MQIsdp", 4, 0x02, &[]), None),
        Err(DecodeError::UnsupportedProtocolVersion(4))
    );
    // Reserved bit 0.
    malformed(dec(&connect_with(b"MQTT", 4, 0x03, &[]), None));
    malformed(dec(&connect_with(b"MQTT", 5, 0x03, &[]), None));
    // Will QoS 3.
    malformed(dec(
        &connect_with(b"MQTT", 4, 0x1E, &cat(&[&str_("t"), &str_("p")])),
        None,
    ));
    // Will QoS / retain without the will flag.
    malformed(dec(&connect_with(b"MQTT", 4, 0x0A, &[]), None));
    malformed(dec(&connect_with(b"MQTT", 4, 0x22, &[]), None));
    // Password without user name: malformed in 3.1.1, allowed in 5.
    malformed(dec(&connect_with(b"MQTT", 4, 0x42, &str_("pw")), None));
    assert!(dec(&connect_with(b"MQTT", 5, 0x42, &str_("pw")), None)
        .unwrap()
        .is_some());
    // Will topic with a wildcard.
    assert!(matches!(
        dec(
            &connect_with(b"MQTT", 4, 0x06, &cat(&[&str_("a/#"), &str_("p")])),
            None
        ),
        Err(DecodeError::TopicNameInvalid(_))
    ));
    // Trailing byte after the last field.
    malformed(dec(&connect_with(b"MQTT", 4, 0x02, &[0x00]), None));
    // Missing client id.
    let short = frame(
        0x10,
        &[0x00, 0x04, b'M', b'Q', b'T', b'T', 0x04, 0x02, 0x00, 0x0A],
    );
    malformed(dec(&short, None));
}

#[test]
fn connect_strings_must_be_mqtt_utf8() {
    let nul = frame(
        0x10,
        &cat(&[
            &[0x00, 0x04, b'M', b'Q', b'T', b'T', 0x04, 0x02, 0x00, 0x0A],
            &[0x00, 0x02, b'a', 0x00],
        ]),
    );
    malformed(dec(&nul, None));
    let bad = frame(
        0x10,
        &cat(&[
            &[0x00, 0x04, b'M', b'Q', b'T', b'T', 0x04, 0x02, 0x00, 0x0A],
            &[0x00, 0x02, 0xC3, 0x28],
        ]),
    );
    malformed(dec(&bad, None));
}

#[test]
fn connect_state_rules() {
    // Anything before CONNECT is a protocol error, judged from the first byte alone.
    protocol(dec(&[0x30], None));
    protocol(dec(&[0xC0, 0x00], None));
    // A second CONNECT.
    protocol(dec(&v311_connect_bytes(), Some(V3)));
}

#[test]
fn connect_version_hint_reads_name_and_level() {
    assert_eq!(connect_version_hint(&v5_connect_bytes()), Some(V5));
    assert_eq!(connect_version_hint(&v311_connect_bytes()), Some(V3));
    assert_eq!(
        connect_version_hint(&connect_with(b"MQTT", 5, 0x03, &[])),
        Some(V5)
    );
    assert_eq!(
        connect_version_hint(&connect_with(b"MQTT", 7, 0x02, &[])),
        None
    );
    assert_eq!(connect_version_hint(&[0x10]), None);
    assert_eq!(connect_version_hint(&[0x30, 0x00]), None);
}

// --- v5 properties -------------------------------------------------------------------------

fn v5_connect_props(props: &[u8]) -> Vec<u8> {
    let body = cat(&[
        &[0x00, 0x04, b'M', b'Q', b'T', b'T', 0x05, 0x02, 0x00, 0x0A],
        &[props.len() as u8],
        props,
        &str_("c"),
    ]);
    frame(0x10, &body)
}

#[test]
fn property_allowlist_duplicates_and_values() {
    // All CONNECT properties at once decode.
    let all = cat(&[
        &[0x11, 0, 0, 0, 1],
        &[0x15],
        &str_("SCRAM"),
        &[0x16, 0x00, 0x01, 0xAA],
        &[0x17, 1, 0x19, 1, 0x21, 0, 5, 0x22, 0, 3],
        &[0x26],
        &str_("a"),
        &str_("b"),
        &[0x26],
        &str_("a"),
        &str_("c"),
        &[0x27, 0, 0, 1, 0],
    ]);
    let Packet::Connect(c) = exact(&v5_connect_props(&all), None, Direction::ClientToServer) else {
        panic!()
    };
    assert_eq!(c.properties.receive_maximum, Some(5));
    assert_eq!(c.properties.maximum_packet_size, Some(256));
    assert_eq!(c.properties.user_properties.len(), 2);
    // Not valid for CONNECT (topic alias): malformed per MQTT 5 section 2.2.2.2.
    let r = dec(&v5_connect_props(&[0x23, 0x00, 0x01]), None);
    malformed(r.clone());
    assert_eq!(r.unwrap_err().reason_code(), rc::MALFORMED_PACKET);
    // Unknown identifier.
    malformed(dec(&v5_connect_props(&[0x05, 0x00]), None));
    // Duplicate single-valued property.
    let r = dec(
        &v5_connect_props(&[0x11, 0, 0, 0, 1, 0x11, 0, 0, 0, 2]),
        None,
    );
    protocol(r.clone());
    assert_eq!(r.unwrap_err().reason_code(), rc::PROTOCOL_ERROR);
    // Values the spec forbids.
    protocol(dec(&v5_connect_props(&[0x21, 0, 0]), None));
    protocol(dec(&v5_connect_props(&[0x27, 0, 0, 0, 0]), None));
    protocol(dec(&v5_connect_props(&[0x17, 2]), None));
    protocol(dec(&v5_connect_props(&[0x19, 2]), None));
    // Authentication data without a method.
    protocol(dec(&v5_connect_props(&[0x16, 0x00, 0x00]), None));
    // Property length running past the packet.
    let mut b = v5_connect_bytes();
    b[13] = 0x7F;
    malformed(dec(&b, None));
    // A value cut short inside the property block.
    malformed(dec(&v5_connect_props(&[0x11, 0, 0]), None));
}

// --- CONNACK -------------------------------------------------------------------------------

#[test]
fn connack_both_versions() {
    let p = exact(
        &[0x20, 0x02, 0x01, 0x00],
        Some(V3),
        Direction::ServerToClient,
    );
    assert_eq!(
        p,
        Packet::ConnAck(ConnAck {
            session_present: true,
            code: 0,
            properties: Properties::default()
        })
    );
    let props = cat(&[
        &[0x12],
        &str_("auto-1"),
        &[0x13, 0, 30, 0x21, 0, 20, 0x24, 1, 0x2A, 0],
    ]);
    let body = cat(&[&[0x00, 0x00, props.len() as u8], &props]);
    let Packet::ConnAck(c) = exact(&frame(0x20, &body), Some(V5), Direction::ServerToClient) else {
        panic!()
    };
    assert_eq!(
        c.properties.assigned_client_identifier.as_deref(),
        Some("auto-1")
    );
    assert_eq!(c.properties.server_keep_alive, Some(30));
    // Refused (0x87) with session present is a protocol error; reserved flag bits malformed.
    protocol(dec_srv(&[0x20, 0x03, 0x01, 0x87, 0x00], V5));
    malformed(dec_srv(&[0x20, 0x02, 0x02, 0x00], V3));
    protocol(dec_srv(&[0x20, 0x02, 0x00, 0x06], V3));
    protocol(dec_srv(&[0x20, 0x03, 0x00, 0x01, 0x00], V5));
    // A v3 CONNACK is exactly two bytes.
    malformed(dec_srv(&[0x20, 0x03, 0x00, 0x00, 0x00], V3));
    // Brokers never receive CONNACK.
    protocol(dec(&[0x20, 0x02, 0x00, 0x00], Some(V3)));
    // v3 encoding keeps the return code, drops properties.
    let c = Packet::ConnAck(ConnAck {
        session_present: false,
        code: reason::v3::NOT_AUTHORIZED,
        properties: Properties {
            reason_string: Some("no".into()),
            ..Properties::default()
        },
    });
    assert_eq!(enc(&c, V3), [0x20, 0x02, 0x00, 0x05]);
}

// --- PUBLISH -------------------------------------------------------------------------------

#[test]
fn publish_v3_qos0_and_qos1() {
    let p = exact(
        &frame(0x30, &cat(&[&str_("a/b"), b"hi"])),
        Some(V3),
        Direction::ClientToServer,
    );
    let Packet::Publish(x) = p else { panic!() };
    assert_eq!(
        (x.topic.as_str(), &x.payload[..], x.packet_id),
        ("a/b", &b"hi"[..], None)
    );
    let p = exact(
        &frame(0x3B, &cat(&[&str_("a/b"), &[0x00, 0x0A], b"hi"])),
        Some(V3),
        Direction::ClientToServer,
    );
    let Packet::Publish(x) = p else { panic!() };
    assert!(x.dup && x.retain);
    assert_eq!((x.qos, x.packet_id), (QoS::AtLeastOnce, Some(10)));
}

#[test]
fn publish_v5_properties_and_alias() {
    let props = cat(&[
        &[0x01, 0x01, 0x02, 0, 0, 0, 60],
        &[0x08],
        &str_("reply/to"),
        &[0x09, 0x00, 0x02, 0xBE, 0xEF, 0x23, 0x00, 0x07],
    ]);
    let bytes = frame(
        0x34,
        &cat(&[&str_(""), &[0x12, 0x34], &[props.len() as u8], &props, b"x"]),
    );
    let Packet::Publish(x) = exact(&bytes, Some(V5), Direction::ClientToServer) else {
        panic!()
    };
    assert_eq!(x.topic, "");
    assert_eq!(x.properties.topic_alias, Some(7));
    assert_eq!(x.properties.response_topic.as_deref(), Some("reply/to"));
    assert_eq!(x.qos, QoS::ExactlyOnce);
    // Empty topic without an alias.
    protocol(dec(
        &frame(0x30, &cat(&[&str_(""), &[0x00], b"x"])),
        Some(V5),
    ));
    assert!(matches!(
        dec(&frame(0x30, &cat(&[&str_(""), b"x"])), Some(V3)),
        Err(DecodeError::TopicNameInvalid(_))
    ));
    // Topic alias 0, response topic with a wildcard.
    protocol(dec(
        &frame(0x30, &cat(&[&str_("t"), &[0x03, 0x23, 0, 0]])),
        Some(V5),
    ));
    let rt = cat(&[&[0x08], &str_("r/+")]);
    protocol(dec(
        &frame(0x30, &cat(&[&str_("t"), &[rt.len() as u8], &rt])),
        Some(V5),
    ));
    // Subscription identifiers: only from the server, possibly several.
    let sub = frame(
        0x30,
        &cat(&[&str_("t"), &[0x04, 0x0B, 0x01, 0x0B, 0x02], b"p"]),
    );
    protocol(dec(&sub, Some(V5)));
    let Packet::Publish(x) = exact(&sub, Some(V5), Direction::ServerToClient) else {
        panic!()
    };
    assert_eq!(x.properties.subscription_identifiers, vec![1, 2]);
    protocol(dec_srv(
        &frame(0x30, &cat(&[&str_("t"), &[0x02, 0x0B, 0x00]])),
        V5,
    ));
    // A CONNECT-only property in PUBLISH.
    malformed(dec(
        &frame(0x30, &cat(&[&str_("t"), &[0x03, 0x21, 0x00, 0x01]])),
        Some(V5),
    ));
}

#[test]
fn publish_header_and_topic_errors() {
    // QoS 3.
    malformed(dec(&[0x36], Some(V3)));
    malformed(dec(&[0x36], Some(V5)));
    // DUP on QoS 0: malformed in 3.1.1, a protocol error in 5.
    malformed(dec(&[0x38], Some(V3)));
    protocol(dec(&[0x38], Some(V5)));
    // Packet id 0.
    protocol(dec(
        &frame(0x32, &cat(&[&str_("t"), &[0x00, 0x00]])),
        Some(V3),
    ));
    // Wildcards and U+0000 in the topic name.
    for t in ["a/+", "#", "a/#"] {
        let r = dec(&frame(0x30, &str_(t)), Some(V3));
        assert!(
            matches!(r, Err(DecodeError::TopicNameInvalid(_))),
            "{t}: {r:?}"
        );
        assert_eq!(r.unwrap_err().reason_code(), rc::TOPIC_NAME_INVALID);
    }
    malformed(dec(&frame(0x30, &str_("a\0b")), Some(V3)));
    // Topic length beyond the packet.
    malformed(dec(&[0x30, 0x03, 0x00, 0x09, b'a'], Some(V3)));
}

#[test]
fn publish_payload_is_zero_copy() {
    let mut b = BytesMut::from(&frame(0x30, &cat(&[&str_("t"), &[7u8; 50]]))[..]);
    let start = b.as_ptr() as usize;
    let end = start + b.len();
    let Some(Packet::Publish(x)) = decode_packet(&mut b, Some(V3), &Limits::default()).unwrap()
    else {
        panic!()
    };
    let p = x.payload.as_ptr() as usize;
    assert!(
        p > start && p + x.payload.len() == end,
        "payload was copied"
    );
}

// --- acks ----------------------------------------------------------------------------------

#[test]
fn pub_responses() {
    for (b0, mk) in [
        (0x40u8, Packet::PubAck as fn(PubResp) -> Packet),
        (0x50, Packet::PubRec),
        (0x62, Packet::PubRel),
        (0x70, Packet::PubComp),
    ] {
        assert_eq!(
            exact(&[b0, 0x02, 0x00, 0x01], Some(V3), Direction::ClientToServer),
            mk(PubResp::ok(1))
        );
        assert_eq!(
            exact(&[b0, 0x02, 0x00, 0x01], Some(V5), Direction::ServerToClient),
            mk(PubResp::ok(1))
        );
        // Packet id 0; trailing bytes in v3.
        protocol(dec(&[b0, 0x02, 0x00, 0x00], Some(V3)));
        malformed(dec(&[b0, 0x03, 0x00, 0x01, 0x00], Some(V3)));
        // v5 reason code, then reason code with a reason string.
        let code = if b0 >= 0x60 { 0x92 } else { 0x10 };
        let p = exact(
            &[b0, 0x03, 0x00, 0x01, code],
            Some(V5),
            Direction::ClientToServer,
        );
        assert_eq!(
            p,
            mk(PubResp {
                reason: code,
                ..PubResp::ok(1)
            })
        );
        let tail = cat(&[&[0x00, 0x01, code, 0x05, 0x1F], &str_("no")]);
        let p = exact(&frame(b0, &tail), Some(V5), Direction::ClientToServer);
        let mut want = PubResp {
            reason: code,
            ..PubResp::ok(1)
        };
        want.properties.reason_string = Some("no".into());
        assert_eq!(p, mk(want.clone()));
        // v3 encoding drops both.
        assert_eq!(enc(&mk(want), V3), [b0, 0x02, 0x00, 0x01]);
        // A reason code this packet type may not use.
        protocol(dec(&[b0, 0x03, 0x00, 0x01, 0x8F], Some(V5)));
    }
    // PUBREL must have flags 0010, the others 0000.
    malformed(dec(&[0x60, 0x02, 0x00, 0x01], Some(V3)));
    malformed(dec(&[0x42, 0x02, 0x00, 0x01], Some(V3)));
}

// --- SUBSCRIBE / SUBACK / UNSUBSCRIBE / UNSUBACK --------------------------------------------

#[test]
fn subscribe_v3_spec_example() {
    // MQTT 3.1.1 section 3.8.3.1: "a/b" QoS 1 and "c/d" QoS 2, packet id 10.
    let bytes = frame(
        0x82,
        &cat(&[&[0x00, 0x0A], &str_("a/b"), &[0x01], &str_("c/d"), &[0x02]]),
    );
    let Packet::Subscribe(s) = exact(&bytes, Some(V3), Direction::ClientToServer) else {
        panic!()
    };
    assert_eq!(s.packet_id, 10);
    assert_eq!(s.filters.len(), 2);
    assert_eq!(s.filters[1].options.qos, QoS::ExactlyOnce);
    // Flags 0000, no filters, QoS 3, reserved option bits (no-local is reserved in v3).
    malformed(dec(
        &frame(0x80, &cat(&[&[0x00, 0x0A], &str_("a"), &[0x01]])),
        Some(V3),
    ));
    protocol(dec(&[0x82, 0x02, 0x00, 0x0A], Some(V3)));
    malformed(dec(
        &frame(0x82, &cat(&[&[0x00, 0x0A], &str_("a"), &[0x03]])),
        Some(V3),
    ));
    malformed(dec(
        &frame(0x82, &cat(&[&[0x00, 0x0A], &str_("a"), &[0x04]])),
        Some(V3),
    ));
    // Filter without its options byte.
    malformed(dec(
        &frame(0x82, &cat(&[&[0x00, 0x0A], &str_("a")])),
        Some(V3),
    ));
    // Filters are not judged here (the broker answers 0x8F per filter instead).
    assert!(dec(
        &frame(0x82, &cat(&[&[0x00, 0x0A], &str_("a/#/b"), &[0x00]])),
        Some(V3)
    )
    .unwrap()
    .is_some());
}

#[test]
fn subscribe_v5_options_and_identifier() {
    let bytes = frame(
        0x82,
        &cat(&[
            &[0x00, 0x01, 0x02, 0x0B, 0x05],
            &str_("a/+"),
            &[0x01 | 0x04 | 0x08 | 0x20],
        ]),
    );
    let Packet::Subscribe(s) = exact(&bytes, Some(V5), Direction::ClientToServer) else {
        panic!()
    };
    assert_eq!(s.properties.subscription_identifiers, vec![5]);
    let o = s.filters[0].options;
    assert!(o.no_local && o.retain_as_published);
    assert_eq!((o.qos, o.retain_handling), (QoS::AtLeastOnce, 2));
    // Retain handling 3, reserved bits 6-7, two subscription identifiers, id 0.
    protocol(dec(
        &frame(0x82, &cat(&[&[0x00, 0x01, 0x00], &str_("a"), &[0x30]])),
        Some(V5),
    ));
    malformed(dec(
        &frame(0x82, &cat(&[&[0x00, 0x01, 0x00], &str_("a"), &[0x40]])),
        Some(V5),
    ));
    protocol(dec(
        &frame(
            0x82,
            &cat(&[
                &[0x00, 0x01, 0x04, 0x0B, 0x01, 0x0B, 0x02],
                &str_("a"),
                &[0],
            ]),
        ),
        Some(V5),
    ));
    protocol(dec(
        &frame(
            0x82,
            &cat(&[&[0x00, 0x01, 0x02, 0x0B, 0x00], &str_("a"), &[0]]),
        ),
        Some(V5),
    ));
}

#[test]
fn suback_unsubscribe_unsuback() {
    let p = exact(
        &[0x90, 0x04, 0x00, 0x0A, 0x01, 0x80],
        Some(V3),
        Direction::ServerToClient,
    );
    assert_eq!(
        p,
        Packet::SubAck(SubAck {
            packet_id: 10,
            reason_codes: vec![1, 0x80],
            properties: Properties::default()
        })
    );
    exact(
        &[0x90, 0x05, 0x00, 0x0A, 0x00, 0x02, 0xA2],
        Some(V5),
        Direction::ServerToClient,
    );
    protocol(dec_srv(&[0x90, 0x03, 0x00, 0x0A, 0x8F], V3));
    protocol(dec_srv(&[0x90, 0x02, 0x00, 0x0A], V3));
    protocol(dec(&[0x90, 0x03, 0x00, 0x0A, 0x00], Some(V3)));

    let bytes = frame(0xA2, &cat(&[&[0x00, 0x0B], &str_("a/b"), &str_("c/+")]));
    let Packet::Unsubscribe(u) = exact(&bytes, Some(V3), Direction::ClientToServer) else {
        panic!()
    };
    assert_eq!(u.filters, vec!["a/b".to_string(), "c/+".to_string()]);
    exact(
        &frame(0xA2, &cat(&[&[0x00, 0x0B, 0x00], &str_("x")])),
        Some(V5),
        Direction::ClientToServer,
    );
    protocol(dec(&[0xA2, 0x02, 0x00, 0x0B], Some(V3)));
    malformed(dec(
        &frame(0xA0, &cat(&[&[0x00, 0x0B], &str_("x")])),
        Some(V3),
    ));

    exact(
        &[0xB0, 0x02, 0x00, 0x0B],
        Some(V3),
        Direction::ServerToClient,
    );
    let p = exact(
        &[0xB0, 0x05, 0x00, 0x0B, 0x00, 0x00, 0x11],
        Some(V5),
        Direction::ServerToClient,
    );
    let Packet::UnsubAck(u) = p else { panic!() };
    assert_eq!(u.reason_codes, vec![0x00, 0x11]);
    protocol(dec_srv(&[0xB0, 0x03, 0x00, 0x0B, 0x00], V5));
    malformed(dec_srv(&[0xB0, 0x03, 0x00, 0x0B, 0x00], V3));
}

// --- PING, DISCONNECT, AUTH -----------------------------------------------------------------

#[test]
fn ping_disconnect_auth() {
    assert_eq!(
        exact(&[0xC0, 0x00], Some(V3), Direction::ClientToServer),
        Packet::PingReq
    );
    assert_eq!(
        exact(&[0xD0, 0x00], Some(V5), Direction::ServerToClient),
        Packet::PingResp
    );
    malformed(dec(&[0xC0, 0x01, 0x00], Some(V3)));
    malformed(dec(&[0xC1, 0x00], Some(V3)));
    protocol(dec(&[0xD0, 0x00], Some(V3)));
    protocol(dec_srv(&[0xC0, 0x00], V3));

    assert_eq!(
        exact(&[0xE0, 0x00], Some(V3), Direction::ClientToServer),
        Packet::Disconnect(Disconnect::default())
    );
    malformed(dec(&[0xE0, 0x01, 0x00], Some(V3)));
    let p = exact(&[0xE0, 0x01, 0x04], Some(V5), Direction::ClientToServer);
    assert_eq!(
        p,
        Packet::Disconnect(Disconnect {
            reason: 0x04,
            ..Disconnect::default()
        })
    );
    let p = exact(
        &[0xE0, 0x07, 0x00, 0x05, 0x11, 0, 0, 0, 9],
        Some(V5),
        Direction::ClientToServer,
    );
    let Packet::Disconnect(d) = p else { panic!() };
    assert_eq!(d.properties.session_expiry_interval, Some(9));
    // The server may not send a session expiry; v3 servers send no DISCONNECT at all.
    protocol(dec_srv(&[0xE0, 0x07, 0x00, 0x05, 0x11, 0, 0, 0, 9], V5));
    exact(&[0xE0, 0x01, 0x8B], Some(V5), Direction::ServerToClient);
    protocol(dec_srv(&[0xE0, 0x00], V3));
    protocol(dec(&[0xE0, 0x01, 0x01], Some(V5)));

    let auth = cat(&[
        &[0x18, 0x0D, 0x15],
        &str_("SCRAM"),
        &[0x16, 0x00, 0x02, 1, 2],
    ]);
    let p = exact(&frame(0xF0, &auth), Some(V5), Direction::ClientToServer);
    let Packet::Auth(a) = p else { panic!() };
    assert_eq!(a.reason, 0x18);
    assert_eq!(a.properties.authentication_method.as_deref(), Some("SCRAM"));
    exact(&[0xF0, 0x00], Some(V5), Direction::ServerToClient);
    protocol(dec(&[0xF0, 0x01, 0x87], Some(V5)));
    // Type 15 is reserved in MQTT 3; type 0 everywhere.
    malformed(dec(&[0xF0, 0x00], Some(V3)));
    malformed(dec(&[0x00, 0x00], Some(V3)));
    malformed(dec(&[0x00, 0x00], None));
    assert!(encode_packet(
        &Packet::Auth(Auth {
            reason: 0,
            properties: Properties::default()
        }),
        V3,
        &mut BytesMut::new()
    )
    .is_err());
}

// --- framing and limits ---------------------------------------------------------------------

#[test]
fn remaining_length_over_four_bytes_is_malformed() {
    malformed(dec(&[0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x01], Some(V3)));
    malformed(dec(&[0x30, 0x80, 0x80, 0x80, 0x80], Some(V3)));
    // Three continuation bytes: still waiting.
    assert_eq!(dec(&[0x30, 0x80, 0x80, 0x80], Some(V3)), Ok(None));
}

#[test]
fn oversized_packet_rejected_from_its_header_alone() {
    // The largest claim the length field can make (256 MiB), nothing of the body sent.
    let header = [0x30, 0xFF, 0xFF, 0xFF, 0x7F];
    let mut b = BytesMut::from(&header[..]);
    let limits = Limits {
        max_packet_size: 1 << 20,
    };
    assert_eq!(
        decode_packet(&mut b, Some(V3), &limits),
        Err(DecodeError::PacketTooLarge {
            size: 268_435_460,
            max: 1 << 20
        })
    );
    assert_eq!(
        DecodeError::PacketTooLarge { size: 1, max: 0 }.reason_code(),
        rc::PACKET_TOO_LARGE
    );
    // Under the default limit the same header just waits, and the buffer is not grown to fit.
    let mut b = BytesMut::from(&header[..]);
    let cap = b.capacity();
    assert_eq!(
        decode_packet(&mut b, Some(V3), &Limits::default()),
        Ok(None)
    );
    assert_eq!((b.len(), b.capacity()), (5, cap));
    // The limit counts the fixed header: a 10-byte packet passes a 10-byte limit, not a 9-byte one.
    let p = frame(0x30, &cat(&[&str_("t"), b"12345"]));
    assert_eq!(p.len(), 10);
    let mut b = BytesMut::from(&p[..]);
    assert!(decode_packet(
        &mut b,
        Some(V3),
        &Limits {
            max_packet_size: 10
        }
    )
    .unwrap()
    .is_some());
    let mut b = BytesMut::from(&p[..]);
    assert!(matches!(
        decode_packet(&mut b, Some(V3), &Limits { max_packet_size: 9 }),
        Err(DecodeError::PacketTooLarge { size: 10, max: 9 })
    ));
}

#[test]
fn back_to_back_packets_and_a_partial_tail() {
    let mut stream = Vec::new();
    stream.extend_from_slice(&[0xC0, 0x00]);
    stream.extend_from_slice(&frame(0x30, &cat(&[&str_("t"), b"p"])));
    stream.extend_from_slice(&[0x40, 0x02, 0x00]);
    let mut b = BytesMut::from(&stream[..]);
    let l = Limits::default();
    assert_eq!(
        decode_packet(&mut b, Some(V3), &l).unwrap(),
        Some(Packet::PingReq)
    );
    assert!(matches!(
        decode_packet(&mut b, Some(V3), &l).unwrap(),
        Some(Packet::Publish(_))
    ));
    assert_eq!(decode_packet(&mut b, Some(V3), &l).unwrap(), None);
    assert_eq!(&b[..], &[0x40, 0x02, 0x00]);
    b.extend_from_slice(&[0x05]);
    assert_eq!(
        decode_packet(&mut b, Some(V3), &l).unwrap(),
        Some(Packet::PubAck(PubResp::ok(5)))
    );
    assert!(b.is_empty());
}

// --- encoding ---------------------------------------------------------------------------------

#[test]
fn encode_rejects_what_the_wire_cannot_hold() {
    let long = "x".repeat(70_000);
    let p = Packet::Publish(Publish {
        dup: false,
        qos: QoS::AtMostOnce,
        retain: false,
        topic: long,
        packet_id: None,
        properties: Properties::default(),
        payload: Bytes::new(),
    });
    assert!(matches!(
        encode_packet(&p, V3, &mut BytesMut::new()),
        Err(EncodeError::FieldTooLong { .. })
    ));
    let p = Packet::Publish(Publish {
        dup: false,
        qos: QoS::AtLeastOnce,
        retain: false,
        topic: "t".into(),
        packet_id: None,
        properties: Properties::default(),
        payload: Bytes::new(),
    });
    assert!(matches!(encoded_len(&p, V3), Err(EncodeError::Invalid(_))));
    let p = Packet::Publish(Publish {
        dup: false,
        qos: QoS::AtMostOnce,
        retain: false,
        topic: "t".into(),
        packet_id: None,
        properties: Properties::default(),
        payload: Bytes::from(vec![0u8; 268_435_455]),
    });
    assert!(matches!(
        encoded_len(&p, V3),
        Err(EncodeError::PacketTooLarge(_))
    ));
    // A property the packet type may not carry.
    let props = Properties {
        receive_maximum: Some(1),
        ..Properties::default()
    };
    let p = Packet::Publish(Publish {
        dup: false,
        qos: QoS::AtMostOnce,
        retain: false,
        topic: "t".into(),
        packet_id: None,
        properties: props.clone(),
        payload: Bytes::new(),
    });
    let mut out = BytesMut::new();
    assert!(encode_packet(&p, V5, &mut out).is_err());
    // ...but v3 drops properties altogether.
    encode_packet(&p, V3, &mut out).unwrap();
    assert_eq!(&out[..], &[0x30, 0x03, 0x00, 0x01, b't']);
}

#[test]
fn encoded_len_matches_for_large_remaining_lengths() {
    for n in [0usize, 120, 121, 122, 200, 16_380, 16_400, 2_097_150] {
        let p = Packet::Publish(Publish {
            dup: false,
            qos: QoS::AtMostOnce,
            retain: false,
            topic: "t".into(),
            packet_id: None,
            properties: Properties::default(),
            payload: Bytes::from(vec![1u8; n]),
        });
        let bytes = enc(&p, V3);
        assert_eq!(dec_ok(&bytes, Some(V3)), p);
    }
}
