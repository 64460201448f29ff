//! Where other MQTT implementations meet `mqsec serve`: protocol errors in the acknowledgement
//! flows, the client's Maximum Packet Size on every packet, MQTT 3.1's CONNACK, and the topic
//! level limit as Mosquitto applies it. Each of these failed before the broker core owned them.

mod common;

use common::raw::*;
use mqsec::broker::codec::{Packet, Properties, ProtocolVersion, PubResp, QoS};

const V5: ProtocolVersion = ProtocolVersion::V5;
const V3: ProtocolVersion = ProtocolVersion::V311;

/// A subscriber at `qos` that receives one message at that QoS; returns it and its packet id.
fn subscriber_with_message(b: &Broker, v: ProtocolVersion, id: &str, qos: QoS) -> (Raw, u16) {
    let (mut s, _) = Raw::connect(b.port, v, id, Properties::default());
    let topic = format!("ack/{id}");
    assert_eq!(s.subscribe(&topic, qos), vec![qos as u8]);
    let (mut p, _) = Raw::connect(b.port, v, &format!("{id}-pub"), Properties::default());
    p.publish(&topic, b"m", qos, false, 1);
    let pid = match s.recv() {
        Some(Packet::Publish(m)) => m.packet_id.unwrap(),
        x => panic!("expected PUBLISH, got {x:?}"),
    };
    (s, pid)
}

fn ends_with_protocol_error(s: &mut Raw, v: ProtocolVersion, what: &str) {
    if v == V5 {
        match s.recv() {
            Some(Packet::Disconnect(d)) => assert_eq!(d.reason, 0x82, "{what}"),
            x => panic!("{what}: expected DISCONNECT 0x82, got {x:?}"),
        }
    }
    assert!(s.closed(), "{what}: connection still open");
}

#[test]
fn an_acknowledgement_of_the_wrong_type_is_a_protocol_error() {
    let b = Broker::start("");
    for v in [V3, V5] {
        let n = v.level();
        // QoS 1 in flight: PUBREC or PUBCOMP for it.
        let (mut s, pid) = subscriber_with_message(&b, v, &format!("q1rec{n}"), QoS::AtLeastOnce);
        s.send(&Packet::PubRec(PubResp::ok(pid)));
        ends_with_protocol_error(&mut s, v, "PUBREC for QoS 1");
        let (mut s, pid) = subscriber_with_message(&b, v, &format!("q1comp{n}"), QoS::AtLeastOnce);
        s.send(&Packet::PubComp(PubResp::ok(pid)));
        ends_with_protocol_error(&mut s, v, "PUBCOMP for QoS 1");
        // QoS 2 in flight: PUBACK, or PUBCOMP before PUBREC.
        let (mut s, pid) = subscriber_with_message(&b, v, &format!("q2ack{n}"), QoS::ExactlyOnce);
        s.send(&Packet::PubAck(PubResp::ok(pid)));
        ends_with_protocol_error(&mut s, v, "PUBACK for QoS 2");
        let (mut s, pid) = subscriber_with_message(&b, v, &format!("q2comp{n}"), QoS::ExactlyOnce);
        s.send(&Packet::PubComp(PubResp::ok(pid)));
        ends_with_protocol_error(&mut s, v, "PUBCOMP before PUBREC");
        // The right flow still works, PUBREC twice included (our PUBREL may have been lost).
        let (mut s, pid) = subscriber_with_message(&b, v, &format!("q2ok{n}"), QoS::ExactlyOnce);
        for _ in 0..2 {
            s.send(&Packet::PubRec(PubResp::ok(pid)));
            match s.recv() {
                Some(Packet::PubRel(r)) => assert_eq!((r.packet_id, r.reason), (pid, 0)),
                x => panic!("expected PUBREL, got {x:?}"),
            }
        }
        s.send(&Packet::PubComp(PubResp::ok(pid)));
        s.send(&Packet::PingReq);
        assert!(matches!(s.recv(), Some(Packet::PingResp)));
    }
}

fn connect_with_max(b: &Broker, id: &str, max: u32) -> Raw {
    let mut r = Raw::open(b.port, V5);
    let props = Properties {
        maximum_packet_size: Some(max),
        ..Properties::default()
    };
    r.send(&Packet::Connect(Box::new(connect_packet(
        V5, id, true, props,
    ))));
    r
}

#[test]
fn the_clients_maximum_packet_size_binds_every_packet() {
    let b = Broker::start("");
    // 2 bytes: no CONNACK fits, so none is sent and the connection closes.
    let mut r = connect_with_max(&b, "tiny", 2);
    assert!(
        r.recv().is_none(),
        "a CONNACK over the client's maximum was sent"
    );
    let mut r = connect_with_max(&b, "fits", 64);
    let ack = r.recv().expect("CONNACK");
    assert_eq!(connack_code(&ack), 0);
    // A SUBACK for 80 filters (over 80 bytes) cannot be sent: the connection closes.
    r.send(&subscribe_packet(1, (0..80).map(|i| format!("f/{i}"))));
    assert!(r.closed(), "an oversized SUBACK was sent");
    // A DISCONNECT's reason string is sent when it fits and left out when it does not (the
    // CONNACK, 16 bytes, fits 18; DISCONNECT 0x82 with its reason string, 21 bytes, does not).
    for (max, with_reason) in [(64, true), (18, false)] {
        let mut r = connect_with_max(&b, &format!("disc{max}"), max);
        assert_eq!(connack_code(&r.recv().unwrap()), 0);
        // A late PUBCOMP for nothing is ignored; a CONNACK from a client is a protocol error.
        r.send(&Packet::PubComp(PubResp::ok(7)));
        r.send(&Packet::ConnAck(mqsec::broker::codec::ConnAck {
            session_present: false,
            code: 0,
            properties: Properties::default(),
        }));
        match r.recv() {
            Some(Packet::Disconnect(d)) => {
                assert_eq!(d.reason, 0x82);
                assert_eq!(
                    d.properties.reason_string.is_some(),
                    with_reason,
                    "max {max}"
                );
            }
            x => panic!("expected DISCONNECT, got {x:?}"),
        }
    }
    let mut r = connect_with_max(&b, "disc-small", 8);
    let ack = r.recv();
    assert!(
        ack.is_none(),
        "CONNACK with properties does not fit 8 bytes: {ack:?}"
    );
}

#[test]
fn mqtt31_connack_never_says_session_present() {
    let b = Broker::start("");
    let v = ProtocolVersion::V31;
    for round in 0..2 {
        let mut r = Raw::open(b.port, v);
        r.send(&Packet::Connect(Box::new(connect_packet(
            v,
            "old31",
            false,
            Properties::default(),
        ))));
        // The raw bytes: 0x20, length 2, flags, return code.
        let mut buf = [0u8; 4];
        std::io::Read::read_exact(&mut r.s, &mut buf).unwrap();
        assert_eq!(
            buf,
            [0x20, 2, 0, 0],
            "round {round}: flags byte must be 0 in MQTT 3.1"
        );
    }
}

#[test]
fn topic_levels_are_limited_where_mosquitto_limits_them() {
    let b = Broker::start("");
    // 200 separators (201 levels): accepted by Mosquitto 2.0.11, and by mqsec.
    let (mut ok, _) = Raw::connect(b.port, V5, "levels", Properties::default());
    assert_eq!(ok.subscribe(&"/".repeat(200), QoS::AtMostOnce), vec![0]);
    ok.publish(&"/".repeat(200), b"deep", QoS::AtMostOnce, false, 0);
    match ok.recv() {
        Some(Packet::Publish(p)) => assert_eq!(&p.payload[..], b"deep"),
        x => panic!("expected the deep message, got {x:?}"),
    }
    // One more: Mosquitto ends the connection (v5 DISCONNECT 0x81), so does mqsec.
    ok.send(&subscribe_packet(2, ["/".repeat(201)]));
    match ok.recv() {
        Some(Packet::Disconnect(d)) => assert_eq!(d.reason, 0x81),
        x => panic!("expected DISCONNECT 0x81, got {x:?}"),
    }
    assert!(ok.closed());
}

/// Where mqsec deliberately answers differently from Mosquitto 2.0.11 (the standard allows both;
/// README, "Deliberate differences from Mosquitto", gives the reasons). Each is pinned here.
#[test]
fn deliberate_differences_are_pinned() {
    let b = Broker::start("message_size_limit 100");
    // Reason strings: on a refused CONNACK and on every server DISCONNECT (Mosquitto sends none).
    let mut r = Raw::open(b.port, V5);
    let mut c = connect_packet(V5, "", false, Properties::default());
    c.clean_start = false;
    r.send(&Packet::Connect(Box::new(c)));
    match r.recv() {
        Some(Packet::ConnAck(a)) => {
            assert_eq!(a.code, 0x85);
            assert!(a.properties.reason_string.is_some());
        }
        x => panic!("expected CONNACK, got {x:?}"),
    }
    // 0x10 on PUBACK when nobody subscribed (Mosquitto does the same), and 0x97 for a payload
    // over message_size_limit (0x95 Packet Too Large is not a PUBACK code).
    let (mut p, _) = Raw::connect(b.port, V5, "pub", Properties::default());
    p.publish("nobody/here", b"x", QoS::AtLeastOnce, false, 1);
    match p.recv() {
        Some(Packet::PubAck(a)) => assert_eq!(a.reason, 0x10),
        x => panic!("expected PUBACK, got {x:?}"),
    }
    p.publish("nobody/here", &[b'x'; 200], QoS::AtLeastOnce, false, 2);
    match p.recv() {
        Some(Packet::PubAck(a)) => assert_eq!((a.packet_id, a.reason), (2, 0x97)),
        x => panic!("expected PUBACK, got {x:?}"),
    }
    // A will with a delay but session expiry 0 goes at once: the session, and with it the delay,
    // ends with the connection (MQTT 5.0 3.1.3.2.2: the earlier of the two).
    let (mut w, _) = Raw::connect(b.port, V5, "watcher", Properties::default());
    assert_eq!(w.subscribe("wills/#", QoS::AtMostOnce), vec![0]);
    let mut d = Raw::open(b.port, V5);
    let mut c = connect_packet(V5, "dies", true, Properties::default());
    c.will = Some(mqsec::broker::codec::LastWill {
        topic: "wills/dies".into(),
        payload: bytes::Bytes::from_static(b"gone"),
        qos: QoS::AtMostOnce,
        retain: false,
        properties: Properties {
            will_delay_interval: Some(3600),
            ..Properties::default()
        },
    });
    d.send(&Packet::Connect(Box::new(c)));
    assert_eq!(connack_code(&d.recv().unwrap()), 0);
    drop(d);
    match w.recv() {
        Some(Packet::Publish(m)) => assert_eq!(&m.payload[..], b"gone"),
        x => panic!("expected the will at once, got {x:?}"),
    }
    // A Payload Format Indicator other than 0 or 1 is a Malformed Packet (0x81), and the
    // DISCONNECT comes before the close (Mosquitto accepts the value).
    let (mut m, _) = Raw::connect(b.port, V5, "pfi", Properties::default());
    m.send(&Packet::Publish(mqsec::broker::codec::Publish {
        dup: false,
        qos: QoS::AtMostOnce,
        retain: false,
        topic: "x".into(),
        packet_id: None,
        properties: Properties::default(),
        payload: bytes::Bytes::from_static(b"x"),
    }));
    // The codec will not encode a bad value, so patch the bytes: PUBLISH, topic "x", one
    // property (PFI = 2), payload "x".
    m.send_raw(&[0x30, 7, 0, 1, b'x', 2, 0x01, 2, b'x']);
    match m.recv() {
        Some(Packet::Disconnect(d)) => {
            assert_eq!(d.reason, 0x81);
            assert!(d.properties.reason_string.is_some());
        }
        x => panic!("expected DISCONNECT 0x81, got {x:?}"),
    }
    assert!(m.closed());
    // Assigned client ids: the auto_id_prefix, a counter and 64 random bits.
    let (_, ack) = Raw::connect(b.port, V5, "", Properties::default());
    match ack {
        Packet::ConnAck(a) => {
            let id = a.properties.assigned_client_identifier.unwrap();
            let rest = id.strip_prefix("auto-").unwrap();
            let (n, r) = rest.split_once('-').unwrap();
            assert!(n.parse::<u64>().is_ok() && r.len() == 16, "{id}");
        }
        x => panic!("expected CONNACK, got {x:?}"),
    }
}
