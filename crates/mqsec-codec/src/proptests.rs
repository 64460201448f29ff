//! Property tests: every packet valid for a version survives encode -> decode unchanged, and no
//! byte string (random or a mutated valid packet) makes the decoder panic.

use bytes::{Bytes, BytesMut};
use proptest::collection::vec;
use proptest::option::of as opt;
use proptest::prelude::*;

use super::properties::{self as ids, PropertyContext};
use super::*;

const VERSIONS: [ProtocolVersion; 3] = [
    ProtocolVersion::V31,
    ProtocolVersion::V311,
    ProtocolVersion::V5,
];

fn text() -> impl Strategy<Value = String> {
    "[^\u{0}]{0,6}"
}

fn topic() -> impl Strategy<Value = String> {
    "[a-z/ $\u{e9}\u{1F600}]{1,8}"
}

fn bin() -> impl Strategy<Value = Bytes> {
    vec(any::<u8>(), 0..8).prop_map(Bytes::from)
}

fn flag() -> impl Strategy<Value = Option<u8>> {
    opt(0..=1u8)
}

/// A Properties value with every field random but valid, then cut down to what `ctx` allows.
fn props(ctx: PropertyContext) -> impl Strategy<Value = Properties> {
    let a = (
        flag(),
        opt(any::<u32>()),
        opt(text()),
        opt(topic()),
        opt(bin()),
        vec(1..=varint::MAX_VARINT, 0..3),
        opt(any::<u32>()),
        opt(text()),
        opt(any::<u16>()),
        opt(text()),
        opt(bin()),
        flag(),
    );
    let b = (
        opt(any::<u32>()),
        flag(),
        opt(text()),
        opt(text()),
        opt(text()),
        opt(1..=u16::MAX),
        opt(any::<u16>()),
        opt(1..=u16::MAX),
        flag(),
        flag(),
        vec((text(), text()), 0..3),
        opt(1..=u32::MAX),
    );
    let c = (flag(), flag(), flag());
    (a, b, c).prop_map(move |(a, b, c)| {
        let mut p = Properties {
            payload_format_indicator: a.0,
            message_expiry_interval: a.1,
            content_type: a.2,
            response_topic: a.3,
            correlation_data: a.4,
            subscription_identifiers: a.5,
            session_expiry_interval: a.6,
            assigned_client_identifier: a.7,
            server_keep_alive: a.8,
            authentication_method: a.9,
            authentication_data: a.10,
            request_problem_information: a.11,
            will_delay_interval: b.0,
            request_response_information: b.1,
            response_information: b.2,
            server_reference: b.3,
            reason_string: b.4,
            receive_maximum: b.5,
            topic_alias_maximum: b.6,
            topic_alias: b.7,
            maximum_qos: b.8,
            retain_available: b.9,
            user_properties: b.10,
            maximum_packet_size: b.11,
            wildcard_subscription_available: c.0,
            subscription_identifier_available: c.1,
            shared_subscription_available: c.2,
        };
        restrict(&mut p, ctx);
        p
    })
}

fn restrict(p: &mut Properties, ctx: PropertyContext) {
    fn keep<T>(f: &mut Option<T>, ctx: PropertyContext, id: u8) {
        if !ctx.allows(id) {
            *f = None;
        }
    }
    keep(
        &mut p.payload_format_indicator,
        ctx,
        ids::PAYLOAD_FORMAT_INDICATOR,
    );
    keep(
        &mut p.message_expiry_interval,
        ctx,
        ids::MESSAGE_EXPIRY_INTERVAL,
    );
    keep(&mut p.content_type, ctx, ids::CONTENT_TYPE);
    keep(&mut p.response_topic, ctx, ids::RESPONSE_TOPIC);
    keep(&mut p.correlation_data, ctx, ids::CORRELATION_DATA);
    if !ctx.allows(ids::SUBSCRIPTION_IDENTIFIER) {
        p.subscription_identifiers.clear();
    }
    if ctx == PropertyContext::Subscribe {
        p.subscription_identifiers.truncate(1);
    }
    keep(
        &mut p.session_expiry_interval,
        ctx,
        ids::SESSION_EXPIRY_INTERVAL,
    );
    keep(
        &mut p.assigned_client_identifier,
        ctx,
        ids::ASSIGNED_CLIENT_IDENTIFIER,
    );
    keep(&mut p.server_keep_alive, ctx, ids::SERVER_KEEP_ALIVE);
    keep(
        &mut p.authentication_method,
        ctx,
        ids::AUTHENTICATION_METHOD,
    );
    keep(&mut p.authentication_data, ctx, ids::AUTHENTICATION_DATA);
    if p.authentication_method.is_none() {
        p.authentication_data = None;
    }
    keep(
        &mut p.request_problem_information,
        ctx,
        ids::REQUEST_PROBLEM_INFORMATION,
    );
    keep(&mut p.will_delay_interval, ctx, ids::WILL_DELAY_INTERVAL);
    keep(
        &mut p.request_response_information,
        ctx,
        ids::REQUEST_RESPONSE_INFORMATION,
    );
    keep(&mut p.response_information, ctx, ids::RESPONSE_INFORMATION);
    keep(&mut p.server_reference, ctx, ids::SERVER_REFERENCE);
    keep(&mut p.reason_string, ctx, ids::REASON_STRING);
    keep(&mut p.receive_maximum, ctx, ids::RECEIVE_MAXIMUM);
    keep(&mut p.topic_alias_maximum, ctx, ids::TOPIC_ALIAS_MAXIMUM);
    keep(&mut p.topic_alias, ctx, ids::TOPIC_ALIAS);
    keep(&mut p.maximum_qos, ctx, ids::MAXIMUM_QOS);
    keep(&mut p.retain_available, ctx, ids::RETAIN_AVAILABLE);
    if !ctx.allows(ids::USER_PROPERTY) {
        p.user_properties.clear();
    }
    keep(&mut p.maximum_packet_size, ctx, ids::MAXIMUM_PACKET_SIZE);
    keep(
        &mut p.wildcard_subscription_available,
        ctx,
        ids::WILDCARD_SUBSCRIPTION_AVAILABLE,
    );
    keep(
        &mut p.subscription_identifier_available,
        ctx,
        ids::SUBSCRIPTION_IDENTIFIER_AVAILABLE,
    );
    keep(
        &mut p.shared_subscription_available,
        ctx,
        ids::SHARED_SUBSCRIPTION_AVAILABLE,
    );
}

/// Properties for `ctx` in v5, always empty in v3.
fn vprops(v: ProtocolVersion, ctx: PropertyContext) -> BoxedStrategy<Properties> {
    if v.is_v5() {
        props(ctx).boxed()
    } else {
        Just(Properties::default()).boxed()
    }
}

fn qos() -> impl Strategy<Value = QoS> {
    prop_oneof![
        Just(QoS::AtMostOnce),
        Just(QoS::AtLeastOnce),
        Just(QoS::ExactlyOnce)
    ]
}

fn code(v: ProtocolVersion, codes: &'static [u8]) -> BoxedStrategy<u8> {
    if v.is_v5() {
        proptest::sample::select(codes).boxed()
    } else {
        Just(0).boxed()
    }
}

fn connect(v: ProtocolVersion) -> impl Strategy<Value = Packet> {
    let will = opt((
        topic(),
        bin(),
        qos(),
        any::<bool>(),
        vprops(v, PropertyContext::Will),
    ))
    .prop_map(|w| {
        w.map(|(topic, payload, qos, retain, properties)| LastWill {
            topic,
            payload,
            qos,
            retain,
            properties,
        })
    });
    (
        any::<bool>(),
        any::<u16>(),
        text(),
        will,
        opt(text()),
        opt(bin()),
        vprops(v, PropertyContext::Connect),
    )
        .prop_map(
            move |(clean_start, keep_alive, client_id, will, username, password, properties)| {
                let password = if v == ProtocolVersion::V311 && username.is_none() {
                    None
                } else {
                    password
                };
                Packet::Connect(Box::new(Connect {
                    protocol: v,
                    clean_start,
                    keep_alive,
                    client_id,
                    will,
                    username,
                    password,
                    properties,
                }))
            },
        )
}

fn publish(v: ProtocolVersion, dir: Direction) -> impl Strategy<Value = Packet> {
    (
        qos(),
        any::<bool>(),
        any::<bool>(),
        topic(),
        any::<bool>(),
        1..=u16::MAX,
        vprops(v, PropertyContext::Publish),
        bin(),
    )
        .prop_map(
            move |(qos, dup, retain, topic, empty, id, mut properties, payload)| {
                if dir == Direction::ClientToServer {
                    properties.subscription_identifiers.clear();
                }
                // v5 lets the topic be empty when an alias stands for it.
                let topic = if v.is_v5() && empty && properties.topic_alias.is_some() {
                    String::new()
                } else {
                    topic
                };
                let qos0 = qos == QoS::AtMostOnce;
                Packet::Publish(Publish {
                    dup: dup && !qos0,
                    qos,
                    retain,
                    topic,
                    packet_id: (!qos0).then_some(id),
                    properties,
                    payload,
                })
            },
        )
}

// Transcribed from the spec a second time on purpose (decode.rs has the decoder's own copy): an
// independent oracle is what makes a code dropped from the decoder fail these tests.
const PUBACK: &[u8] = &[0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99];
const PUBREL: &[u8] = &[0x00, 0x92];
const SUBACK: &[u8] = &[
    0x00, 0x01, 0x02, 0x80, 0x83, 0x87, 0x8F, 0x91, 0x97, 0x9E, 0xA1, 0xA2,
];
const SUBACK3: &[u8] = &[0x00, 0x01, 0x02, 0x80];
const UNSUBACK: &[u8] = &[0x00, 0x11, 0x80, 0x83, 0x87, 0x8F, 0x91];
const CONNACK: &[u8] = &[
    0x00, 0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8A, 0x8C, 0x90, 0x95, 0x97,
    0x99, 0x9A, 0x9B, 0x9C, 0x9D, 0x9F,
];
const DISCONNECT: &[u8] = &[
    0x00, 0x04, 0x80, 0x81, 0x82, 0x83, 0x87, 0x89, 0x8B, 0x8D, 0x8E, 0x8F, 0x90, 0x93, 0x94, 0x95,
    0x96, 0x97, 0x98, 0x99, 0x9A, 0x9B, 0x9C, 0x9D, 0x9E, 0x9F, 0xA0, 0xA1, 0xA2,
];
const AUTH: &[u8] = &[0x00, 0x18, 0x19];

fn pub_resp(v: ProtocolVersion, codes: &'static [u8]) -> impl Strategy<Value = PubResp> {
    (
        1..=u16::MAX,
        code(v, codes),
        vprops(v, PropertyContext::PubResp),
    )
        .prop_map(|(packet_id, reason, properties)| PubResp {
            packet_id,
            reason,
            properties,
        })
}

fn options(v: ProtocolVersion) -> impl Strategy<Value = SubscriptionOptions> {
    (qos(), any::<bool>(), any::<bool>(), 0..=2u8).prop_map(move |(qos, nl, rap, rh)| {
        if v.is_v5() {
            SubscriptionOptions {
                qos,
                no_local: nl,
                retain_as_published: rap,
                retain_handling: rh,
            }
        } else {
            SubscriptionOptions {
                qos,
                ..SubscriptionOptions::default()
            }
        }
    })
}

fn disconnect(v: ProtocolVersion, dir: Direction) -> BoxedStrategy<Packet> {
    if !v.is_v5() {
        return Just(Packet::Disconnect(Disconnect::default())).boxed();
    }
    (code(v, DISCONNECT), props(PropertyContext::Disconnect))
        .prop_map(move |(reason, mut properties)| {
            if dir == Direction::ServerToClient {
                properties.session_expiry_interval = None;
            }
            Packet::Disconnect(Disconnect { reason, properties })
        })
        .boxed()
}

fn client_packet(v: ProtocolVersion) -> BoxedStrategy<Packet> {
    let dir = Direction::ClientToServer;
    let mut s = vec![
        publish(v, dir).boxed(),
        pub_resp(v, PUBACK).prop_map(Packet::PubAck).boxed(),
        pub_resp(v, PUBACK).prop_map(Packet::PubRec).boxed(),
        pub_resp(v, PUBREL).prop_map(Packet::PubRel).boxed(),
        pub_resp(v, PUBREL).prop_map(Packet::PubComp).boxed(),
        (
            1..=u16::MAX,
            vec(
                (text(), options(v))
                    .prop_map(|(filter, options)| SubscriptionRequest { filter, options }),
                1..4,
            ),
            vprops(v, PropertyContext::Subscribe),
        )
            .prop_map(|(packet_id, filters, properties)| {
                Packet::Subscribe(Subscribe {
                    packet_id,
                    filters,
                    properties,
                })
            })
            .boxed(),
        (
            1..=u16::MAX,
            vec(text(), 1..4),
            vprops(v, PropertyContext::Unsubscribe),
        )
            .prop_map(|(packet_id, filters, properties)| {
                Packet::Unsubscribe(Unsubscribe {
                    packet_id,
                    filters,
                    properties,
                })
            })
            .boxed(),
        Just(Packet::PingReq).boxed(),
        disconnect(v, dir),
    ];
    if v.is_v5() {
        s.push(auth().boxed());
    }
    proptest::strategy::Union::new(s).boxed()
}

fn auth() -> impl Strategy<Value = Packet> {
    (proptest::sample::select(AUTH), props(PropertyContext::Auth))
        .prop_map(|(reason, properties)| Packet::Auth(Auth { reason, properties }))
}

fn server_packet(v: ProtocolVersion) -> BoxedStrategy<Packet> {
    let dir = Direction::ServerToClient;
    let connack_code = if v.is_v5() {
        proptest::sample::select(CONNACK).boxed()
    } else {
        (0..=5u8).boxed()
    };
    let suback_codes = if v.is_v5() { SUBACK } else { SUBACK3 };
    let mut s = vec![
        (
            any::<bool>(),
            connack_code,
            vprops(v, PropertyContext::ConnAck),
        )
            .prop_map(|(sp, code, properties)| {
                Packet::ConnAck(ConnAck {
                    session_present: sp && code == 0,
                    code,
                    properties,
                })
            })
            .boxed(),
        publish(v, dir).boxed(),
        pub_resp(v, PUBACK).prop_map(Packet::PubAck).boxed(),
        pub_resp(v, PUBREL).prop_map(Packet::PubComp).boxed(),
        (
            1..=u16::MAX,
            vec(proptest::sample::select(suback_codes), 1..4),
            vprops(v, PropertyContext::SubAck),
        )
            .prop_map(|(packet_id, reason_codes, properties)| {
                Packet::SubAck(SubAck {
                    packet_id,
                    reason_codes,
                    properties,
                })
            })
            .boxed(),
        (
            1..=u16::MAX,
            if v.is_v5() {
                vec(proptest::sample::select(UNSUBACK), 1..4).boxed()
            } else {
                Just(Vec::new()).boxed()
            },
            vprops(v, PropertyContext::UnsubAck),
        )
            .prop_map(|(packet_id, reason_codes, properties)| {
                Packet::UnsubAck(UnsubAck {
                    packet_id,
                    reason_codes,
                    properties,
                })
            })
            .boxed(),
        Just(Packet::PingResp).boxed(),
    ];
    if v.is_v5() {
        s.push(disconnect(v, dir));
        s.push(auth().boxed());
    }
    proptest::strategy::Union::new(s).boxed()
}

fn round_trip(p: &Packet, v: ProtocolVersion, dir: Direction, state: Option<ProtocolVersion>) {
    let mut out = BytesMut::new();
    encode_packet(p, v, &mut out).unwrap();
    assert_eq!(encoded_len(p, v).unwrap(), out.len());
    let limits = Limits::default();
    let got = match dir {
        Direction::ClientToServer => decode_packet(&mut out, state, &limits),
        Direction::ServerToClient => decode_packet_from_server(&mut out, v, &limits),
    };
    assert_eq!(got, Ok(Some(p.clone())));
    assert!(out.is_empty());
}

/// Decodes everything decodable from `bytes` under every state; whatever decodes must survive a
/// re-encode unchanged. The point is that none of this panics.
fn decode_all(bytes: &[u8]) {
    let limits = Limits::default();
    let mut states: Vec<(Direction, Option<ProtocolVersion>)> =
        vec![(Direction::ClientToServer, None)];
    for v in VERSIONS {
        states.push((Direction::ClientToServer, Some(v)));
        states.push((Direction::ServerToClient, Some(v)));
    }
    for (dir, state) in states {
        let mut b = BytesMut::from(bytes);
        loop {
            let r = match (dir, state) {
                (Direction::ClientToServer, s) => decode_packet(&mut b, s, &limits),
                (Direction::ServerToClient, Some(v)) => {
                    decode_packet_from_server(&mut b, v, &limits)
                }
                (Direction::ServerToClient, None) => unreachable!(),
            };
            match r {
                Ok(Some(p)) => {
                    let v = match (&p, state) {
                        (Packet::Connect(c), _) => c.protocol,
                        (_, Some(v)) => v,
                        (_, None) => unreachable!("only CONNECT decodes before CONNECT"),
                    };
                    let state = if state.is_none() { None } else { Some(v) };
                    round_trip(&p, v, dir, state);
                }
                Ok(None) | Err(_) => break,
            }
        }
    }
}

fn v_strategy() -> impl Strategy<Value = ProtocolVersion> {
    proptest::sample::select(VERSIONS.to_vec())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn client_packets_round_trip((v, p) in v_strategy().prop_flat_map(|v| (Just(v), client_packet(v)))) {
        round_trip(&p, v, Direction::ClientToServer, Some(v));
    }

    #[test]
    fn server_packets_round_trip((v, p) in v_strategy().prop_flat_map(|v| (Just(v), server_packet(v)))) {
        round_trip(&p, v, Direction::ServerToClient, Some(v));
    }

    #[test]
    fn connect_round_trips((v, p) in v_strategy().prop_flat_map(|v| (Just(v), connect(v)))) {
        round_trip(&p, v, Direction::ClientToServer, None);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(20_000))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in vec(any::<u8>(), 0..64)) {
        decode_all(&bytes);
    }

    /// Random bytes rarely get past the fixed header; mutating real packets reaches the
    /// property and payload parsers.
    #[test]
    fn mutated_packets_never_panic(
        (v, p) in v_strategy().prop_flat_map(|v| (Just(v), prop_oneof![client_packet(v), server_packet(v), connect(v).boxed()])),
        edits in vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut out = BytesMut::new();
        encode_packet(&p, v, &mut out).unwrap();
        let mut bytes = out.to_vec();
        for (i, b) in edits {
            let i = i.index(bytes.len());
            bytes[i] = b;
        }
        decode_all(&bytes);
        let n = cut.index(bytes.len() + 1);
        decode_all(&bytes[..n]);
    }
}
