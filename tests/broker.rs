//! `mqsec serve` end to end: the built binary on a free loopback port, driven by rumqttc (MQTT
//! 3.1.1 and 5.0) and by a raw socket speaking through mqsec's own codec where exact reason
//! codes and hostile bytes matter.

mod common;

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use mqsec::broker::codec::{
    encode_packet, LastWill, Packet, Properties, ProtocolVersion, Publish, QoS, Subscribe,
    SubscriptionOptions, SubscriptionRequest,
};

const BIN: &str = env!("CARGO_BIN_EXE_mqsec");
use common::raw::*;

mod v3 {
    //! rumqttc's MQTT 3.1.1 client.
    use super::*;
    use rumqttc::{AsyncClient, Event, EventLoop, LastWill, MqttOptions, Packet, QoS};

    pub fn client(port: u16, id: &str, clean: bool) -> (AsyncClient, EventLoop) {
        let mut o = MqttOptions::new(id, "127.0.0.1", port);
        o.set_clean_session(clean);
        o.set_keep_alive(Duration::from_secs(30));
        AsyncClient::new(o, 100)
    }

    pub fn client_with_will(port: u16, id: &str, topic: &str) -> (AsyncClient, EventLoop) {
        let mut o = MqttOptions::new(id, "127.0.0.1", port);
        o.set_last_will(LastWill::new(topic, "gone", QoS::AtLeastOnce, false));
        AsyncClient::new(o, 100)
    }

    /// Poll until CONNACK; returns session_present.
    pub async fn connected(el: &mut EventLoop) -> bool {
        tokio::time::timeout(WAIT, async {
            loop {
                if let Event::Incoming(Packet::ConnAck(a)) = el.poll().await.expect("connect") {
                    return a.session_present;
                }
            }
        })
        .await
        .expect("CONNACK in time")
    }

    pub async fn suback(el: &mut EventLoop) -> Vec<rumqttc::SubscribeReasonCode> {
        tokio::time::timeout(WAIT, async {
            loop {
                if let Event::Incoming(Packet::SubAck(a)) = el.poll().await.expect("suback") {
                    return a.return_codes;
                }
            }
        })
        .await
        .expect("SUBACK in time")
    }

    /// Next PUBLISH within `wait`, or None.
    pub async fn next(el: &mut EventLoop, wait: Duration) -> Option<rumqttc::Publish> {
        tokio::time::timeout(wait, async {
            loop {
                match el.poll().await {
                    Ok(Event::Incoming(Packet::Publish(p))) => return Some(p),
                    Ok(_) => {}
                    Err(_) => return None,
                }
            }
        })
        .await
        .ok()
        .flatten()
    }

    /// Drive the event loop (acks, pings) in the background.
    pub fn drive(mut el: EventLoop) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move { while el.poll().await.is_ok() {} })
    }
}

#[tokio::test]
async fn qos_levels_and_retained_messages_v311() {
    let b = Broker::start("");
    let (sub, mut sel) = v3::client(b.port, "sub", true);
    assert!(!v3::connected(&mut sel).await);
    sub.subscribe("q/#", rumqttc::QoS::ExactlyOnce)
        .await
        .unwrap();
    v3::suback(&mut sel).await;
    let (publ, pel) = v3::client(b.port, "pub", true);
    let _drive = v3::drive(pel);
    for (i, q) in [
        rumqttc::QoS::AtMostOnce,
        rumqttc::QoS::AtLeastOnce,
        rumqttc::QoS::ExactlyOnce,
    ]
    .into_iter()
    .enumerate()
    {
        publ.publish(format!("q/{i}"), q, false, format!("m{i}"))
            .await
            .unwrap();
        let got = v3::next(&mut sel, WAIT).await.expect("delivery");
        assert_eq!(&got.topic, &format!("q/{i}"));
        assert_eq!(&got.payload[..], format!("m{i}").as_bytes());
        assert_eq!(got.qos, q);
        assert!(!got.retain);
    }
    // Retained: set, replace, delivered on subscribe with the flag, deleted by an empty payload.
    publ.publish("r/t", rumqttc::QoS::AtLeastOnce, true, "one")
        .await
        .unwrap();
    publ.publish("r/t", rumqttc::QoS::AtLeastOnce, true, "two")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (late, mut lel) = v3::client(b.port, "late", true);
    v3::connected(&mut lel).await;
    late.subscribe("r/+", rumqttc::QoS::AtLeastOnce)
        .await
        .unwrap();
    let got = v3::next(&mut lel, WAIT).await.expect("retained");
    assert!(got.retain);
    assert_eq!(&got.payload[..], b"two");
    publ.publish("r/t", rumqttc::QoS::AtLeastOnce, true, "")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (late2, mut l2) = v3::client(b.port, "late2", true);
    v3::connected(&mut l2).await;
    late2
        .subscribe("r/+", rumqttc::QoS::AtLeastOnce)
        .await
        .unwrap();
    v3::suback(&mut l2).await;
    assert!(v3::next(&mut l2, Duration::from_millis(300))
        .await
        .is_none());
}

#[tokio::test]
async fn persistent_session_queues_while_offline() {
    let b = Broker::start("max_queued_messages 3");
    let (c, mut el) = v3::client(b.port, "keeper", false);
    v3::connected(&mut el).await;
    c.subscribe("jobs", rumqttc::QoS::AtLeastOnce)
        .await
        .unwrap();
    v3::suback(&mut el).await;
    c.disconnect().await.unwrap();
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        while el.poll().await.is_ok() {}
    })
    .await;
    drop(el);

    let (p, pel) = v3::client(b.port, "producer", true);
    let _d = v3::drive(pel);
    for i in 0..5 {
        p.publish("jobs", rumqttc::QoS::AtLeastOnce, false, format!("{i}"))
            .await
            .unwrap();
    }
    p.publish(
        "jobs",
        rumqttc::QoS::AtMostOnce,
        false,
        "qos0 is not queued",
    )
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;

    let (_c2, mut el2) = v3::client(b.port, "keeper", false);
    assert!(v3::connected(&mut el2).await, "session present");
    let mut got = Vec::new();
    while let Some(m) = v3::next(&mut el2, Duration::from_millis(500)).await {
        got.push(String::from_utf8(m.payload.to_vec()).unwrap());
    }
    assert_eq!(
        got,
        vec!["0", "1", "2"],
        "queue bounded by max_queued_messages"
    );
}

#[tokio::test]
async fn will_sent_on_abrupt_close_not_on_disconnect() {
    let b = Broker::start("");
    let (w, mut wel) = v3::client(b.port, "watcher", true);
    v3::connected(&mut wel).await;
    w.subscribe("wills/#", rumqttc::QoS::AtLeastOnce)
        .await
        .unwrap();
    v3::suback(&mut wel).await;

    // Graceful DISCONNECT: no will.
    let (c, mut el) = v3::client_with_will(b.port, "polite", "wills/polite");
    v3::connected(&mut el).await;
    c.disconnect().await.unwrap();
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        while el.poll().await.is_ok() {}
    })
    .await;
    assert!(v3::next(&mut wel, Duration::from_millis(300))
        .await
        .is_none());

    // The socket just goes away: the will is published.
    let (_c, mut el) = v3::client_with_will(b.port, "rude", "wills/rude");
    v3::connected(&mut el).await;
    drop(el);
    let got = v3::next(&mut wel, WAIT).await.expect("will");
    assert_eq!(got.topic, "wills/rude");
    assert_eq!(&got.payload[..], b"gone");
}

#[tokio::test]
async fn shared_subscription_round_robin() {
    let b = Broker::start("");
    let mut els = Vec::new();
    let mut clients = Vec::new();
    for id in ["w1", "w2"] {
        let (c, mut el) = v3::client(b.port, id, true);
        v3::connected(&mut el).await;
        c.subscribe("$share/workers/tasks/+", rumqttc::QoS::AtLeastOnce)
            .await
            .unwrap();
        v3::suback(&mut el).await;
        clients.push(c);
        els.push(el);
    }
    let (p, pel) = v3::client(b.port, "boss", true);
    let _d = v3::drive(pel);
    for i in 0..10 {
        p.publish(format!("tasks/{i}"), rumqttc::QoS::AtLeastOnce, false, "x")
            .await
            .unwrap();
    }
    let mut counts = Vec::new();
    for el in &mut els {
        let mut n = 0;
        while v3::next(el, Duration::from_millis(500)).await.is_some() {
            n += 1;
        }
        counts.push(n);
    }
    assert_eq!(counts, vec![5, 5]);
}

mod v5 {
    //! rumqttc's MQTT 5 client.
    use super::*;
    use rumqttc::v5::mqttbytes::v5::Packet;
    use rumqttc::v5::{AsyncClient, Event, EventLoop, MqttOptions};

    pub fn client(port: u16, id: &str) -> (AsyncClient, EventLoop) {
        let mut o = MqttOptions::new(id, "127.0.0.1", port);
        o.set_keep_alive(Duration::from_secs(30));
        AsyncClient::new(o, 100)
    }

    pub async fn connected(el: &mut EventLoop) -> rumqttc::v5::mqttbytes::v5::ConnAck {
        tokio::time::timeout(WAIT, async {
            loop {
                if let Event::Incoming(Packet::ConnAck(a)) = el.poll().await.expect("connect") {
                    return a;
                }
            }
        })
        .await
        .expect("CONNACK in time")
    }

    pub async fn suback(el: &mut EventLoop) {
        tokio::time::timeout(WAIT, async {
            loop {
                if let Event::Incoming(Packet::SubAck(_)) = el.poll().await.expect("suback") {
                    return;
                }
            }
        })
        .await
        .expect("SUBACK in time")
    }

    pub async fn next(
        el: &mut EventLoop,
        wait: Duration,
    ) -> Option<rumqttc::v5::mqttbytes::v5::Publish> {
        tokio::time::timeout(wait, async {
            loop {
                match el.poll().await {
                    Ok(Event::Incoming(Packet::Publish(p))) => return Some(p),
                    Ok(_) => {}
                    Err(_) => return None,
                }
            }
        })
        .await
        .ok()
        .flatten()
    }

    pub fn drive(mut el: EventLoop) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move { while el.poll().await.is_ok() {} })
    }
}

#[tokio::test]
async fn v5_properties_subscription_ids_and_no_local() {
    use rumqttc::v5::mqttbytes::v5::{
        Filter, PublishProperties, RetainForwardRule, SubscribeProperties,
    };
    use rumqttc::v5::mqttbytes::QoS;
    let b = Broker::start("");
    let (c, mut el) = v5::client(b.port, "v5c");
    let ack = v5::connected(&mut el).await;
    let props = ack.properties.expect("CONNACK properties");
    assert_eq!(props.receive_max, Some(20));
    assert_eq!(props.topic_alias_max, Some(10));
    // Two overlapping subscriptions with ids 7 and 9: one delivery carrying both ids.
    c.subscribe_with_properties(
        "v/+",
        QoS::AtLeastOnce,
        SubscribeProperties {
            id: Some(7),
            user_properties: vec![],
        },
    )
    .await
    .unwrap();
    v5::suback(&mut el).await;
    c.subscribe_with_properties(
        "v/#",
        QoS::AtMostOnce,
        SubscribeProperties {
            id: Some(9),
            user_properties: vec![],
        },
    )
    .await
    .unwrap();
    v5::suback(&mut el).await;
    // no-local: our own messages on "mine" do not come back.
    let mut f = Filter::new("mine", QoS::AtLeastOnce);
    f.nolocal = true;
    f.retain_forward_rule = RetainForwardRule::OnEverySubscribe;
    c.subscribe_many(vec![f]).await.unwrap();
    v5::suback(&mut el).await;

    let (p, pel) = v5::client(b.port, "v5p");
    let _d = v5::drive(pel);
    let pp = PublishProperties {
        response_topic: Some("reply/here".into()),
        correlation_data: Some(Bytes::from_static(b"corr-1")),
        user_properties: vec![("k".into(), "v".into())],
        content_type: Some("text/plain".into()),
        message_expiry_interval: Some(60),
        ..Default::default()
    };
    p.publish_with_properties("v/x", QoS::AtLeastOnce, false, "hi", pp)
        .await
        .unwrap();
    let got = v5::next(&mut el, WAIT).await.expect("delivery");
    assert_eq!(
        got.qos,
        QoS::AtLeastOnce,
        "max QoS of the overlapping subscriptions"
    );
    let gp = got.properties.expect("properties");
    let mut ids = gp.subscription_identifiers.clone();
    ids.sort();
    assert_eq!(ids, vec![7, 9]);
    assert_eq!(gp.response_topic.as_deref(), Some("reply/here"));
    assert_eq!(gp.correlation_data.as_deref(), Some(&b"corr-1"[..]));
    assert_eq!(gp.user_properties, vec![("k".to_string(), "v".to_string())]);
    assert_eq!(gp.content_type.as_deref(), Some("text/plain"));
    assert!(gp
        .message_expiry_interval
        .is_some_and(|s| (58..=60).contains(&s)));
    assert!(
        v5::next(&mut el, Duration::from_millis(200))
            .await
            .is_none(),
        "one delivery only"
    );

    c.publish("mine", QoS::AtLeastOnce, false, "echo?")
        .await
        .unwrap();
    assert!(
        v5::next(&mut el, Duration::from_millis(300))
            .await
            .is_none(),
        "no-local"
    );
    p.publish("mine", QoS::AtLeastOnce, false, "from p")
        .await
        .unwrap();
    assert!(v5::next(&mut el, WAIT).await.is_some());
}

#[test]
fn v5_empty_client_id_assigned_or_rejected() {
    let b = Broker::start("");
    let (_c, ack) = Raw::connect(b.port, ProtocolVersion::V5, "", Properties::default());
    match ack {
        Packet::ConnAck(a) => {
            assert_eq!(a.code, 0);
            assert!(a
                .properties
                .assigned_client_identifier
                .is_some_and(|id| !id.is_empty()));
        }
        p => panic!("{p:?}"),
    }
    let mut r = Raw::open(b.port, ProtocolVersion::V5);
    r.send(&Packet::Connect(Box::new(connect_packet(
        ProtocolVersion::V5,
        "",
        false,
        Properties::default(),
    ))));
    assert_eq!(connack_code(&r.recv().unwrap()), 0x85);
    let mut r = Raw::open(b.port, ProtocolVersion::V311);
    r.send(&Packet::Connect(Box::new(connect_packet(
        ProtocolVersion::V311,
        "",
        false,
        Properties::default(),
    ))));
    assert_eq!(connack_code(&r.recv().unwrap()), 0x02);
}

#[test]
fn session_takeover_sends_0x8e_to_the_old_connection() {
    let b = Broker::start("");
    let (mut old, ack) = Raw::connect(b.port, ProtocolVersion::V5, "twin", Properties::default());
    assert_eq!(connack_code(&ack), 0);
    let (_new, ack) = Raw::connect(b.port, ProtocolVersion::V5, "twin", Properties::default());
    assert_eq!(connack_code(&ack), 0);
    assert_eq!(disconnect_reason(old.recv()), 0x8E);
    assert!(old.closed());
}

#[test]
fn limits_have_the_right_reason_codes() {
    let b = Broker::start("max_packet_size 1000\nmessage_size_limit 100\nmax_keepalive 20");
    // Keep alive above max_keepalive: v5 gets a server keep alive, v3.1.1 is refused.
    let (mut c, ack) = Raw::connect(b.port, ProtocolVersion::V5, "ka", Properties::default());
    match &ack {
        Packet::ConnAck(a) => {
            assert_eq!(a.properties.server_keep_alive, Some(20));
            assert_eq!(a.properties.maximum_packet_size, Some(1000));
        }
        p => panic!("{p:?}"),
    }
    let (_r, ack) = Raw::connect(b.port, ProtocolVersion::V311, "ka3", Properties::default());
    assert_eq!(connack_code(&ack), 0x02);
    // A payload above message_size_limit: PUBACK 0x97 (quota exceeded), connection stays.
    c.publish("big", &[b'x'; 200], QoS::AtLeastOnce, false, 5);
    match c.recv() {
        Some(Packet::PubAck(a)) => assert_eq!((a.packet_id, a.reason), (5, 0x97)),
        p => panic!("{p:?}"),
    }
    // $SYS writes are refused (v5: 0x87).
    c.publish("$SYS/broker/version", b"fake", QoS::AtLeastOnce, false, 6);
    match c.recv() {
        Some(Packet::PubAck(a)) => assert_eq!((a.packet_id, a.reason), (6, 0x87)),
        p => panic!("{p:?}"),
    }
    // A packet above max_packet_size: DISCONNECT 0x95 and close.
    c.publish("huge", &[b'x'; 2000], QoS::AtMostOnce, false, 0);
    assert_eq!(disconnect_reason(c.recv()), 0x95);
    assert!(c.closed());
    // Refused from the length field alone: only a fixed header claiming 100 000 bytes is sent.
    let (mut h, _) = Raw::connect(b.port, ProtocolVersion::V5, "hdr", Properties::default());
    h.send_raw(&[0x30, 0xA0, 0x8D, 0x06]);
    assert_eq!(disconnect_reason(h.recv()), 0x95);
    assert!(h.closed());
}

#[test]
fn max_connections_refuses_with_quota_exceeded() {
    let b = Broker::start("max_connections 1");
    // The start-up probe's connection holds the one slot until the broker sees it close.
    let deadline = Instant::now() + WAIT;
    let _one = loop {
        let (one, ack) = Raw::connect(b.port, ProtocolVersion::V5, "one", Properties::default());
        if connack_code(&ack) == 0 {
            break one;
        }
        assert!(Instant::now() < deadline, "the only slot never came free");
        std::thread::sleep(Duration::from_millis(20));
    };
    let (_two, ack) = Raw::connect(b.port, ProtocolVersion::V5, "two", Properties::default());
    assert_eq!(connack_code(&ack), 0x97);
    match &ack {
        Packet::ConnAck(a) => assert_eq!(
            a.properties.reason_string.as_deref(),
            Some("too many connections on this listener")
        ),
        p => panic!("{p:?}"),
    }
    let (_three, ack) = Raw::connect(
        b.port,
        ProtocolVersion::V311,
        "three",
        Properties::default(),
    );
    assert_eq!(connack_code(&ack), 0x03);
}

/// mqsec's own option (Mosquitto has none): one address cannot take every connection a
/// listener allows. Counted from accept on, so sockets that never send CONNECT count too.
#[test]
fn max_connections_per_source_refuses_with_quota_exceeded() {
    let b = Broker::start("max_connections_per_source 3");
    // The start-up probe's connection holds a slot until the broker sees it close.
    let deadline = Instant::now() + WAIT;
    let (_one, _two) = loop {
        let (one, a1) = Raw::connect(b.port, ProtocolVersion::V5, "one", Properties::default());
        let (two, a2) = Raw::connect(b.port, ProtocolVersion::V5, "two", Properties::default());
        if connack_code(&a1) == 0 && connack_code(&a2) == 0 {
            break (one, two);
        }
        assert!(Instant::now() < deadline, "the slots never came free");
        std::thread::sleep(Duration::from_millis(20));
    };
    // The third slot: a socket that sends nothing.
    let half_open = Raw::open(b.port, ProtocolVersion::V5);
    let (_refused, ack) = Raw::connect(b.port, ProtocolVersion::V5, "four", Properties::default());
    assert_eq!(connack_code(&ack), 0x97);
    match &ack {
        Packet::ConnAck(a) => assert_eq!(
            a.properties.reason_string.as_deref(),
            Some("too many connections from this address")
        ),
        p => panic!("{p:?}"),
    }
    let (_v3, ack) = Raw::connect(b.port, ProtocolVersion::V311, "five", Properties::default());
    assert_eq!(connack_code(&ack), 0x03);
    // Closing the idle socket gives its slot back.
    drop(half_open);
    let deadline = Instant::now() + WAIT;
    let _again = loop {
        let (c, ack) = Raw::connect(b.port, ProtocolVersion::V5, "six", Properties::default());
        if connack_code(&ack) == 0 {
            break c;
        }
        assert!(Instant::now() < deadline, "the freed slot never came back");
        std::thread::sleep(Duration::from_millis(20));
    };
}

#[test]
fn malformed_packets_disconnect_only_that_client() {
    let b = Broker::start("");
    let (mut good, _) = Raw::connect(b.port, ProtocolVersion::V311, "good", Properties::default());
    assert_eq!(good.subscribe("ok/#", QoS::AtMostOnce), vec![0]);
    let (mut pubr, _) = Raw::connect(b.port, ProtocolVersion::V311, "pub", Properties::default());

    // v5: a PUBLISH whose topic length runs past the packet -> DISCONNECT 0x81, close.
    let (mut bad, _) = Raw::connect(b.port, ProtocolVersion::V5, "bad5", Properties::default());
    bad.send_raw(&[0x30, 0x05, 0x00, 0x09, b'a', b'b', b'c']);
    assert_eq!(disconnect_reason(bad.recv()), 0x81);
    assert!(bad.closed());
    // v3: SUBSCRIBE with reserved flag bits wrong, then garbage; the connection just closes.
    let (mut bad3, _) = Raw::connect(b.port, ProtocolVersion::V311, "bad3", Properties::default());
    bad3.send_raw(&[0x80, 0x03, 0x00, 0x01, 0x00]);
    assert!(bad3.closed());
    // Pure garbage before CONNECT.
    let mut junk = Raw::open(b.port, ProtocolVersion::V311);
    junk.send_raw(&[0xFF; 64]);
    assert!(junk.closed());
    // A length field claiming 256 MB: refused without waiting for (or allocating) the body.
    let mut liar = Raw::open(b.port, ProtocolVersion::V311);
    liar.send_raw(&[0x10, 0xFF, 0xFF, 0xFF, 0x7F]);
    assert!(liar.closed());

    pubr.publish("ok/1", b"still here", QoS::AtMostOnce, false, 0);
    match good.recv() {
        Some(Packet::Publish(p)) => assert_eq!(&p.payload[..], b"still here"),
        p => panic!("{p:?}"),
    }
}

#[test]
fn v5_will_delay_and_disconnect_with_will() {
    let b = Broker::start("");
    let (mut w, _) = Raw::connect(b.port, ProtocolVersion::V5, "watch", Properties::default());
    assert_eq!(w.subscribe("w/#", QoS::AtMostOnce), vec![0]);

    // DISCONNECT 0x04: the will is sent although the client said goodbye.
    let mut c = Raw::open(b.port, ProtocolVersion::V5);
    let mut cp = connect_packet(ProtocolVersion::V5, "leaver", true, Properties::default());
    cp.will = Some(LastWill {
        topic: "w/leaver".into(),
        payload: Bytes::from_static(b"bye"),
        qos: QoS::AtMostOnce,
        retain: false,
        properties: Properties::default(),
    });
    c.send(&Packet::Connect(Box::new(cp.clone())));
    assert_eq!(connack_code(&c.recv().unwrap()), 0);
    c.send(&Packet::Disconnect(mqsec::broker::codec::Disconnect {
        reason: 0x04,
        properties: Properties::default(),
    }));
    match w.recv() {
        Some(Packet::Publish(p)) => assert_eq!(p.topic, "w/leaver"),
        p => panic!("{p:?}"),
    }

    // Will delay 1 s with session expiry 10 s: reconnecting within the delay cancels the will.
    let props = Properties {
        session_expiry_interval: Some(10),
        ..Properties::default()
    };
    let mut delayed = connect_packet(ProtocolVersion::V5, "delayed", false, props);
    let mut will = cp.will.clone().unwrap();
    will.topic = "w/delayed".into();
    will.properties.will_delay_interval = Some(1);
    delayed.will = Some(will);
    let mut d = Raw::open(b.port, ProtocolVersion::V5);
    d.send(&Packet::Connect(Box::new(delayed.clone())));
    assert_eq!(connack_code(&d.recv().unwrap()), 0);
    drop(d);
    let mut d2 = Raw::open(b.port, ProtocolVersion::V5);
    d2.send(&Packet::Connect(Box::new(delayed.clone())));
    match d2.recv() {
        Some(Packet::ConnAck(a)) => assert!(a.session_present),
        p => panic!("{p:?}"),
    }
    w.s.set_read_timeout(Some(Duration::from_millis(2500)))
        .unwrap();
    assert!(w.recv().is_none(), "will cancelled by the reconnect");
    // Now drop it for good: the will arrives after the delay.
    let t = Instant::now();
    drop(d2);
    w.s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    match w.recv() {
        Some(Packet::Publish(p)) => assert_eq!(p.topic, "w/delayed"),
        p => panic!("{p:?}"),
    }
    assert!(t.elapsed() >= Duration::from_millis(900));
}

#[test]
fn sigterm_tells_v5_clients_and_exits_0() {
    let mut b = Broker::start("");
    let (mut c, ack) = Raw::connect(b.port, ProtocolVersion::V5, "stay", Properties::default());
    assert_eq!(connack_code(&ack), 0);
    let status = b.terminate();
    assert_eq!(disconnect_reason(c.recv()), 0x8B);
    assert!(status.success(), "{status:?}");
}

fn conf_file(dir: &tempfile::TempDir, text: &str) -> PathBuf {
    let p = dir.path().join("t.conf");
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn check_validates_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let ok = conf_file(&dir, "listener 1883 127.0.0.1\nmax_queued_messages 10\n");
    let out = Command::new(BIN)
        .args(["serve", "--check", "-c"])
        .arg(&ok)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("configuration OK"));

    let bad = conf_file(&dir, "listener 1883\n\nmax_inflight_mesages 5\n");
    let out = Command::new(BIN)
        .args(["serve", "--check", "-c"])
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("t.conf:3: unknown option `max_inflight_mesages`"),
        "{err}"
    );
    assert!(
        err.contains("did you mean `max_inflight_messages`"),
        "{err}"
    );

    let later = conf_file(&dir, "listener 1883\nmount_point site/\n");
    let out = Command::new(BIN)
        .args(["serve", "--check", "-c"])
        .arg(&later)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("t.conf:2: option `mount_point` is not supported yet"));

    // Files the configuration names are read by --check too.
    let missing_pw = conf_file(&dir, "listener 1883\npassword_file /nonexistent/passwd\n");
    let out = Command::new(BIN)
        .args(["serve", "--check", "-c"])
        .arg(&missing_pw)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("t.conf:2: password_file /nonexistent/passwd: cannot read"),
        "{err}"
    );

    let missing = dir.path().join("nope.conf");
    let out = Command::new(BIN)
        .args(["serve", "--check", "-c"])
        .arg(&missing)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));

    // Without a config the embedded default is checked (loopback only, anonymous allowed).
    let out = Command::new(BIN)
        .args(["serve", "--check"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let s = String::from_utf8_lossy(&out.stdout);
    assert!(
        s.contains("127.0.0.1:1883") && s.contains("[::1]:1883"),
        "{s}"
    );
}

fn publish_of(p: Option<Packet>) -> Publish {
    match p {
        Some(Packet::Publish(p)) => p,
        p => panic!("expected PUBLISH, got {p:?}"),
    }
}

#[test]
fn unacknowledged_qos1_is_redelivered_with_dup_on_reconnect() {
    let b = Broker::start("");
    let v = ProtocolVersion::V311;
    let mut c = Raw::open(b.port, v);
    c.send(&Packet::Connect(Box::new(connect_packet(
        v,
        "slow",
        false,
        Properties::default(),
    ))));
    assert_eq!(connack_code(&c.recv().unwrap()), 0);
    assert_eq!(c.subscribe("d", QoS::AtLeastOnce), vec![1]);
    let (mut p, _) = Raw::connect(b.port, v, "p", Properties::default());
    p.publish("d", b"once", QoS::AtLeastOnce, false, 3);
    let first = publish_of(c.recv());
    assert!(!first.dup);
    drop(c); // no PUBACK
    let mut c = Raw::open(b.port, v);
    c.send(&Packet::Connect(Box::new(connect_packet(
        v,
        "slow",
        false,
        Properties::default(),
    ))));
    match c.recv() {
        Some(Packet::ConnAck(a)) => assert!(a.session_present),
        p => panic!("{p:?}"),
    }
    let again = publish_of(c.recv());
    assert!(again.dup);
    assert_eq!(again.packet_id, first.packet_id);
    assert_eq!(&again.payload[..], b"once");
}

#[test]
fn v5_receive_maximum_topic_aliases_and_client_packet_size() {
    let b = Broker::start("");
    let v = ProtocolVersion::V5;
    let props = Properties {
        receive_maximum: Some(1),
        topic_alias_maximum: Some(5),
        maximum_packet_size: Some(200),
        ..Properties::default()
    };
    let (mut c, _) = Raw::connect(b.port, v, "flow", props);
    assert_eq!(c.subscribe("f/#", QoS::AtLeastOnce), vec![1]);
    let (mut p, _) = Raw::connect(b.port, v, "pub", Properties::default());
    // Inbound topic alias: set with the first PUBLISH, then used with an empty topic.
    let mut with_alias = |topic: &str, payload: &'static [u8], id: u16| {
        p.send(&Packet::Publish(Publish {
            dup: false,
            qos: QoS::AtLeastOnce,
            retain: false,
            topic: topic.into(),
            packet_id: Some(id),
            properties: Properties {
                topic_alias: Some(1),
                ..Properties::default()
            },
            payload: Bytes::from_static(payload),
        }));
        assert!(matches!(p.recv(), Some(Packet::PubAck(_))));
    };
    with_alias("f/a", b"m1", 1);
    with_alias("", b"m2", 2);
    // Too big for this client (maximum packet size 200): dropped for it alone.
    p.publish("f/a", &[b'x'; 500], QoS::AtLeastOnce, false, 3);
    assert!(matches!(p.recv(), Some(Packet::PubAck(_))));
    p.publish("f/a", b"m3", QoS::AtLeastOnce, false, 4);
    assert!(matches!(p.recv(), Some(Packet::PubAck(_))));

    // Receive maximum 1: one message in flight until it is acknowledged.
    let m1 = publish_of(c.recv());
    assert_eq!(&m1.payload[..], b"m1");
    assert_eq!(m1.topic, "f/a");
    assert_eq!(
        m1.properties.topic_alias,
        Some(1),
        "outbound alias assigned"
    );
    c.s.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    assert!(c.recv().is_none(), "nothing more before PUBACK");
    c.s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let ack = |id| Packet::PubAck(mqsec::broker::codec::PubResp::ok(id));
    c.send(&ack(m1.packet_id.unwrap()));
    let m2 = publish_of(c.recv());
    assert_eq!(&m2.payload[..], b"m2");
    assert_eq!(
        (m2.topic.as_str(), m2.properties.topic_alias),
        ("", Some(1))
    );
    c.send(&ack(m2.packet_id.unwrap()));
    let m3 = publish_of(c.recv());
    assert_eq!(&m3.payload[..], b"m3", "the oversized message was skipped");
    // An alias beyond the advertised maximum (10) is a protocol violation: 0x94.
    p.send(&Packet::Publish(Publish {
        dup: false,
        qos: QoS::AtMostOnce,
        retain: false,
        topic: "f/z".into(),
        packet_id: None,
        properties: Properties {
            topic_alias: Some(11),
            ..Properties::default()
        },
        payload: Bytes::new(),
    }));
    assert_eq!(disconnect_reason(p.recv()), 0x94);
}

fn subscribe_with(r: &mut Raw, filter: &str, options: SubscriptionOptions) -> Vec<u8> {
    r.send(&Packet::Subscribe(Subscribe {
        packet_id: 2,
        filters: vec![SubscriptionRequest {
            filter: filter.into(),
            options,
        }],
        properties: Properties::default(),
    }));
    match r.recv() {
        Some(Packet::SubAck(a)) => a.reason_codes,
        p => panic!("expected SUBACK, got {p:?}"),
    }
}

#[test]
fn v5_retain_handling_retain_as_published_session_expiry_and_sys() {
    let b = Broker::start("sys_interval 1");
    let v = ProtocolVersion::V5;
    let (mut p, _) = Raw::connect(b.port, v, "pub", Properties::default());
    p.publish("keep/a", b"kept", QoS::AtLeastOnce, true, 1);
    assert!(matches!(p.recv(), Some(Packet::PubAck(_))));
    let (mut c, _) = Raw::connect(b.port, v, "rh", Properties::default());
    let quiet = Duration::from_millis(300);
    let opts = |rh: u8, rap: bool| SubscriptionOptions {
        qos: QoS::AtMostOnce,
        retain_handling: rh,
        retain_as_published: rap,
        ..Default::default()
    };
    // 2: never send retained messages on subscribe.
    assert_eq!(subscribe_with(&mut c, "keep/#", opts(2, false)), vec![0]);
    c.s.set_read_timeout(Some(quiet)).unwrap();
    assert!(c.recv().is_none());
    // 1: only for a new subscription.
    assert_eq!(subscribe_with(&mut c, "keep/+", opts(1, true)), vec![0]);
    let m = publish_of(c.recv());
    assert!(m.retain && &m.payload[..] == b"kept");
    assert_eq!(subscribe_with(&mut c, "keep/+", opts(1, true)), vec![0]);
    assert!(c.recv().is_none(), "not again for an existing subscription");
    // Live retained publish: keep/+ has retain-as-published, keep/# does not; one delivery,
    // and the flag is kept because one matching subscription asked for it.
    p.publish("keep/a", b"live", QoS::AtMostOnce, true, 0);
    let m = publish_of(c.recv());
    assert!(m.retain && &m.payload[..] == b"live");
    assert!(c.recv().is_none());

    // Session expiry 1 s: gone when the client comes back 2 s later.
    let props = Properties {
        session_expiry_interval: Some(1),
        ..Properties::default()
    };
    let mut e = Raw::open(b.port, v);
    e.send(&Packet::Connect(Box::new(connect_packet(
        v,
        "brief",
        true,
        props.clone(),
    ))));
    assert_eq!(connack_code(&e.recv().unwrap()), 0);
    drop(e);
    let mut e = Raw::open(b.port, v);
    e.send(&Packet::Connect(Box::new(connect_packet(
        v,
        "brief",
        false,
        props.clone(),
    ))));
    match e.recv() {
        Some(Packet::ConnAck(a)) => assert!(a.session_present, "kept within its expiry"),
        p => panic!("{p:?}"),
    }
    drop(e);
    std::thread::sleep(Duration::from_millis(2500));
    let mut e = Raw::open(b.port, v);
    e.send(&Packet::Connect(Box::new(connect_packet(
        v, "brief", false, props,
    ))));
    match e.recv() {
        Some(Packet::ConnAck(a)) => assert!(!a.session_present, "expired"),
        p => panic!("{p:?}"),
    }

    // $SYS is published (retained) and readable; a leading wildcard does not match it.
    c.s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    assert_eq!(
        subscribe_with(&mut c, "$SYS/broker/version", opts(0, false)),
        vec![0]
    );
    let m = publish_of(c.recv());
    assert!(m.payload.starts_with(b"mqsec "), "{m:?}");
    let (mut all, _) = Raw::connect(b.port, v, "all", Properties::default());
    assert_eq!(subscribe_with(&mut all, "#", opts(0, false)), vec![0]);
    all.s
        .set_read_timeout(Some(Duration::from_millis(1500)))
        .unwrap();
    while let Some(pk) = all.recv() {
        if let Packet::Publish(m) = pk {
            assert!(!m.topic.starts_with('$'), "# matched {}", m.topic);
        }
    }
}

#[test]
fn keep_alive_times_out_at_one_and_a_half_and_sends_the_will() {
    let b = Broker::start("");
    let v = ProtocolVersion::V5;
    let (mut w, _) = Raw::connect(b.port, v, "watch", Properties::default());
    assert_eq!(w.subscribe("ka/#", QoS::AtMostOnce), vec![0]);
    let mut c = Raw::open(b.port, v);
    let mut cp = connect_packet(v, "sleepy", true, Properties::default());
    cp.keep_alive = 1;
    cp.will = Some(LastWill {
        topic: "ka/sleepy".into(),
        payload: Bytes::from_static(b"timed out"),
        qos: QoS::AtMostOnce,
        retain: false,
        properties: Properties::default(),
    });
    c.send(&Packet::Connect(Box::new(cp)));
    assert_eq!(connack_code(&c.recv().unwrap()), 0);
    // A PINGREQ within the keep alive keeps it open.
    std::thread::sleep(Duration::from_millis(900));
    c.send(&Packet::PingReq);
    assert_eq!(c.recv(), Some(Packet::PingResp));
    let t = Instant::now();
    assert_eq!(disconnect_reason(c.recv()), 0x8D);
    let waited = t.elapsed();
    assert!(waited >= Duration::from_millis(1400), "{waited:?}");
    assert!(waited < Duration::from_millis(3500), "{waited:?}");
    assert_eq!(publish_of(w.recv()).topic, "ka/sleepy");
}

#[test]
fn random_bytes_after_connect_never_take_the_broker_down() {
    use rand::{Rng, SeedableRng};
    let b = Broker::start("");
    let (mut good, _) = Raw::connect(b.port, ProtocolVersion::V5, "good", Properties::default());
    assert_eq!(good.subscribe("alive", QoS::AtMostOnce), vec![0]);
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x5eed);
    for i in 0..60 {
        let v = if i % 2 == 0 {
            ProtocolVersion::V5
        } else {
            ProtocolVersion::V311
        };
        let (mut c, _) = Raw::connect(b.port, v, &format!("fuzz{i}"), Properties::default());
        // Start with a plausible packet type byte so the bodies get parsed, not just rejected.
        let len = rng.gen_range(1..300);
        let mut junk: Vec<u8> = (0..len).map(|_| rng.gen()).collect();
        junk[0] = (rng.gen_range(1u8..16) << 4) | (junk[0] & 0x0F);
        c.send_raw(&junk);
        c.s.set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let _ = c.recv();
    }
    let (mut p, _) = Raw::connect(b.port, ProtocolVersion::V5, "p", Properties::default());
    p.publish("alive", b"yes", QoS::AtMostOnce, false, 0);
    assert_eq!(&publish_of(good.recv()).payload[..], b"yes");
}

/// A CONNECT carrying `will`, answered with a CONNACK whose code is returned.
fn connack_for_will(port: u16, v: ProtocolVersion, id: &str, will: LastWill) -> u8 {
    let mut r = Raw::open(port, v);
    let mut cp = connect_packet(v, id, true, Properties::default());
    cp.will = Some(will);
    r.send(&Packet::Connect(Box::new(cp)));
    let code = connack_code(&r.recv().expect("CONNACK"));
    assert!(r.closed(), "a refused connection must be closed");
    code
}

#[test]
fn connect_refusals_have_the_right_code_per_version() {
    let b = Broker::start("max_qos 1\nretain_available false\nmessage_size_limit 100");
    let will = |topic: &str, qos: QoS, retain: bool, len: usize| LastWill {
        topic: topic.into(),
        payload: Bytes::from(vec![b'w'; len]),
        qos,
        retain,
        properties: Properties::default(),
    };
    let (v3, v5) = (ProtocolVersion::V311, ProtocolVersion::V5);
    // Will QoS above max_qos, retained will without retain_available, will on $SYS, will payload
    // above message_size_limit. v3.1.1 has no finer code than "not authorized" (0x05); Mosquitto
    // 2.0 closes a v3.1.1 connection with a too-high will QoS or a retained will (retain_available
    // false) without any CONNACK; mqsec deliberately says why.
    for (w, code5) in [
        (will("w/q", QoS::ExactlyOnce, false, 1), 0x9B),
        (will("w/r", QoS::AtMostOnce, true, 1), 0x9A),
        (will("$SYS/x", QoS::AtMostOnce, false, 1), 0x90),
        (will("w/big", QoS::AtMostOnce, false, 200), 0x95),
    ] {
        assert_eq!(
            connack_for_will(b.port, v5, "w5", w.clone()),
            code5,
            "{w:?}"
        );
        assert_eq!(connack_for_will(b.port, v3, "w3", w.clone()), 0x05, "{w:?}");
    }
    // An acceptable will still connects.
    assert_eq!(
        connack_for_will(
            b.port,
            v5,
            "w-ok",
            will("w/ok", QoS::AtLeastOnce, false, 10)
        ),
        0
    );

    // An unknown protocol level: 0x01 in 3.1.1 terms (a level-6 client cannot read a v5 CONNACK).
    let mut r = Raw::open(b.port, v3);
    r.send_raw(&[0x10, 12, 0, 4, b'M', b'Q', b'T', b'T', 6, 2, 0, 30, 0, 0]);
    assert_eq!(connack_code(&r.recv().expect("CONNACK")), 0x01);
    assert!(r.closed());

    // v5 enhanced authentication is not offered: 0x8C with a reason string.
    let auth = Properties {
        authentication_method: Some("SCRAM-SHA-1".into()),
        ..Default::default()
    };
    let (mut r, ack) = Raw::connect(b.port, v5, "scram", auth);
    match &ack {
        Packet::ConnAck(a) => {
            assert_eq!(a.code, 0x8C);
            assert!(a.properties.reason_string.is_some());
        }
        p => panic!("{p:?}"),
    }
    assert!(r.closed());

    // Client ids: 3.1.1 assigns one to an empty id with clean session; MQTT 3.1 never accepts an
    // empty id nor one above 23 characters.
    let (_ok, ack) = Raw::connect(b.port, v3, "", Properties::default());
    assert_eq!(connack_code(&ack), 0);
    let v31 = ProtocolVersion::V31;
    let (_r, ack) = Raw::connect(b.port, v31, "", Properties::default());
    assert_eq!(connack_code(&ack), 0x02);
    let (_r, ack) = Raw::connect(b.port, v31, &"x".repeat(24), Properties::default());
    assert_eq!(connack_code(&ack), 0x02);
    let (_r, ack) = Raw::connect(b.port, v31, &"x".repeat(23), Properties::default());
    assert_eq!(connack_code(&ack), 0);
}

#[test]
fn sigint_stops_accepting_closes_every_client_and_exits_0() {
    let mut b = Broker::start("");
    let (mut c5, _) = Raw::connect(b.port, ProtocolVersion::V5, "five", Properties::default());
    let (mut c3, _) = Raw::connect(
        b.port,
        ProtocolVersion::V311,
        "three",
        Properties::default(),
    );
    let pid = b.child.id().to_string();
    Command::new("kill").args(["-INT", &pid]).status().unwrap();
    assert_eq!(disconnect_reason(c5.recv()), 0x8B);
    assert!(c5.closed());
    // v3.1.1 has no server DISCONNECT: the connection just closes.
    assert!(c3.closed());
    let deadline = Instant::now() + WAIT;
    let status = loop {
        if let Some(s) = b.child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "broker did not stop on SIGINT");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{status:?}");
    assert!(TcpStream::connect(("127.0.0.1", b.port)).is_err());
}

#[test]
fn ipv4_and_ipv6_listeners_serve_one_broker() {
    // Skipped (with a note) on hosts without an IPv6 loopback.
    let Ok(l6) = TcpListener::bind("[::1]:0") else {
        eprintln!("no IPv6 loopback here: skipped");
        return;
    };
    let port6 = l6.local_addr().unwrap().port();
    drop(l6);
    let b = Broker::start(&format!("listener {port6} ::1\nmax_qos 2"));
    let (mut sub, _) = Raw::connect(b.port, ProtocolVersion::V311, "v4", Properties::default());
    assert_eq!(sub.subscribe("dual/#", QoS::AtLeastOnce), vec![1]);
    let deadline = Instant::now() + WAIT;
    let s = loop {
        match TcpStream::connect(("::1", port6)) {
            Ok(s) => break s,
            Err(e) => {
                assert!(Instant::now() < deadline, "no IPv6 listener: {e}");
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    };
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut p = Raw {
        s,
        v: ProtocolVersion::V5,
        buf: BytesMut::new(),
    };
    p.send(&Packet::Connect(Box::new(connect_packet(
        ProtocolVersion::V5,
        "v6",
        true,
        Properties::default(),
    ))));
    assert_eq!(connack_code(&p.recv().unwrap()), 0);
    p.publish("dual/x", b"over v6", QoS::AtMostOnce, false, 0);
    assert_eq!(&publish_of(sub.recv()).payload[..], b"over v6");
}

#[test]
fn sys_topics_count_clients_messages_and_bytes_every_interval() {
    let b = Broker::start("sys_interval 1");
    let v = ProtocolVersion::V311;
    let (mut p, _) = Raw::connect(b.port, v, "counted", Properties::default());
    for i in 0..3 {
        p.publish("count/me", &[b'x'; 50], QoS::AtMostOnce, false, i);
    }
    let (mut s, _) = Raw::connect(b.port, v, "sys", Properties::default());
    assert_eq!(s.subscribe("$SYS/broker/#", QoS::AtMostOnce), vec![0]);
    let mut seen = std::collections::HashMap::<String, Vec<String>>::new();
    let deadline = Instant::now() + Duration::from_millis(3500);
    while Instant::now() < deadline {
        if let Some(Packet::Publish(m)) = s.recv() {
            let value = String::from_utf8(m.payload.to_vec()).unwrap();
            seen.entry(m.topic.to_string()).or_default().push(value);
        }
    }
    let num = |t: &str| -> u64 {
        let v = seen.get(t).unwrap_or_else(|| panic!("no {t}: {seen:?}"));
        v.last()
            .unwrap()
            .split(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    assert!(seen["$SYS/broker/version"][0].starts_with("mqsec "));
    assert_eq!(num("$SYS/broker/clients/connected"), 2);
    assert!(num("$SYS/broker/messages/received") >= 3);
    assert!(num("$SYS/broker/bytes/received") >= 150);
    assert!(num("$SYS/broker/messages/sent") >= 1);
    assert!(num("$SYS/broker/bytes/sent") >= 1);
    // Published again every sys_interval: uptime moved on within the window.
    let up = &seen["$SYS/broker/uptime"];
    assert!(up.len() >= 2, "{up:?}");
    assert!(up.iter().all(|u| u.ends_with(" seconds")), "{up:?}");
    assert_ne!(up.first(), up.last(), "{up:?}");
}

fn pub_resp(p: Option<Packet>) -> (&'static str, u16) {
    match p {
        Some(Packet::PubAck(r)) => ("PUBACK", r.packet_id),
        Some(Packet::PubRec(r)) => ("PUBREC", r.packet_id),
        Some(Packet::PubRel(r)) => ("PUBREL", r.packet_id),
        Some(Packet::PubComp(r)) => ("PUBCOMP", r.packet_id),
        p => panic!("expected a publish response, got {p:?}"),
    }
}

/// Reconnect `id` without clean session; returns the connection and session_present.
fn resume(port: u16, v: ProtocolVersion, id: &str) -> (Raw, bool) {
    let mut r = Raw::open(port, v);
    r.send(&Packet::Connect(Box::new(connect_packet(
        v,
        id,
        false,
        Properties::default(),
    ))));
    match r.recv() {
        Some(Packet::ConnAck(a)) => {
            assert_eq!(a.code, 0);
            (r, a.session_present)
        }
        p => panic!("expected CONNACK, got {p:?}"),
    }
}

#[test]
fn qos2_exactly_once_across_duplicates_and_pubrel_redelivery() {
    let b = Broker::start("");
    let v = ProtocolVersion::V311;
    let (mut s, _) = resume(b.port, v, "q2sub");
    assert_eq!(s.subscribe("q2/#", QoS::ExactlyOnce), vec![2]);
    let (mut p, _) = Raw::connect(b.port, v, "q2pub", Properties::default());
    let q2 = |dup: bool, payload: &'static [u8]| {
        Packet::Publish(Publish {
            dup,
            qos: QoS::ExactlyOnce,
            retain: false,
            topic: "q2/t".into(),
            packet_id: Some(7),
            properties: Properties::default(),
            payload: Bytes::from_static(payload),
        })
    };
    // The publisher resends (DUP) before PUBREL: acknowledged again, forwarded once.
    p.send(&q2(false, b"once"));
    assert_eq!(pub_resp(p.recv()), ("PUBREC", 7));
    p.send(&q2(true, b"once"));
    assert_eq!(pub_resp(p.recv()), ("PUBREC", 7));
    p.send(&Packet::PubRel(mqsec::broker::codec::PubResp::ok(7)));
    assert_eq!(pub_resp(p.recv()), ("PUBCOMP", 7));
    // A PUBREL for an id no longer held is still completed (the client may have lost our PUBCOMP).
    p.send(&Packet::PubRel(mqsec::broker::codec::PubResp::ok(7)));
    assert_eq!(pub_resp(p.recv()), ("PUBCOMP", 7));

    let m = publish_of(s.recv());
    assert_eq!(
        (&m.payload[..], m.qos, m.dup),
        (&b"once"[..], QoS::ExactlyOnce, false)
    );
    let id = m.packet_id.unwrap();
    s.s.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    assert!(s.recv().is_none(), "the duplicate was forwarded");
    // PUBREC, then gone before PUBCOMP: on resume the broker sends PUBREL, not the message again.
    s.send(&Packet::PubRec(mqsec::broker::codec::PubResp::ok(id)));
    assert_eq!(pub_resp(s.recv()), ("PUBREL", id));
    drop(s);
    let (mut s, present) = resume(b.port, v, "q2sub");
    assert!(present);
    assert_eq!(pub_resp(s.recv()), ("PUBREL", id));
    s.send(&Packet::PubComp(mqsec::broker::codec::PubResp::ok(id)));
    s.s.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    assert!(s.recv().is_none(), "redelivered after PUBREC");

    // Packet id 7 is free again after PUBCOMP: a new message with it is a new message.
    s.s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    p.send(&q2(false, b"twice"));
    assert_eq!(pub_resp(p.recv()), ("PUBREC", 7));
    p.send(&Packet::PubRel(mqsec::broker::codec::PubResp::ok(7)));
    assert_eq!(pub_resp(p.recv()), ("PUBCOMP", 7));
    assert_eq!(&publish_of(s.recv()).payload[..], b"twice");
}

#[test]
fn max_inflight_messages_holds_back_unacknowledged_deliveries() {
    let b = Broker::start("max_inflight_messages 2");
    let v = ProtocolVersion::V311;
    let (mut s, _) = Raw::connect(b.port, v, "slow", Properties::default());
    assert_eq!(s.subscribe("inf/#", QoS::AtLeastOnce), vec![1]);
    let (mut p, _) = Raw::connect(b.port, v, "fast", Properties::default());
    for i in 1..=5u16 {
        p.publish("inf/x", &[b'0' + i as u8], QoS::AtLeastOnce, false, i);
        assert_eq!(pub_resp(p.recv()), ("PUBACK", i));
    }
    let first = publish_of(s.recv());
    let second = publish_of(s.recv());
    assert_eq!(
        (&first.payload[..], &second.payload[..]),
        (&b"1"[..], &b"2"[..])
    );
    s.s.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    assert!(
        s.recv().is_none(),
        "a third message while two are unacknowledged"
    );
    s.s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.send(&Packet::PubAck(mqsec::broker::codec::PubResp::ok(
        first.packet_id.unwrap(),
    )));
    assert_eq!(&publish_of(s.recv()).payload[..], b"3");
}

#[test]
fn v5_inbound_receive_maximum_and_topic_levels_are_enforced_per_client() {
    let b = Broker::start("max_inflight_messages 2\nmax_topic_levels 3");
    let v = ProtocolVersion::V5;
    let (mut watch, _) = Raw::connect(b.port, v, "watch", Properties::default());
    assert_eq!(watch.subscribe("lv/#", QoS::AtMostOnce), vec![0]);
    // The broker advertises its receive maximum and holds a third unreleased QoS 2 against it.
    let (mut p, ack) = Raw::connect(b.port, v, "flood", Properties::default());
    match &ack {
        Packet::ConnAck(a) => assert_eq!(a.properties.receive_maximum, Some(2)),
        p => panic!("{p:?}"),
    }
    for id in 1..=2 {
        p.publish("lv/q2", b"held", QoS::ExactlyOnce, false, id);
        assert_eq!(pub_resp(p.recv()), ("PUBREC", id));
    }
    p.publish("lv/q2", b"one too many", QoS::ExactlyOnce, false, 3);
    assert_eq!(disconnect_reason(p.recv()), 0x93);
    assert!(p.closed());

    // Topic depth (as Mosquitto answers it): a filter too deep ends the connection (v5 DISCONNECT
    // 0x81, v3.1.1 just closed); a topic too deep DISCONNECT 0x90 (Mosquitto: 0x82; mqsec names
    // the reason).
    let (mut d, _) = Raw::connect(b.port, v, "deep", Properties::default());
    assert_eq!(d.subscribe("lv/a/b", QoS::AtMostOnce), vec![0]);
    d.send(&subscribe_packet(2, ["lv/a/b/c"]));
    assert_eq!(disconnect_reason(d.recv()), 0x81);
    assert!(d.closed());
    let (mut d3, _) = Raw::connect(
        b.port,
        ProtocolVersion::V311,
        "deep3",
        Properties::default(),
    );
    d3.send(&subscribe_packet(2, ["lv/a/b/c"]));
    assert!(d3.closed());
    let (mut d, _) = Raw::connect(b.port, v, "deep", Properties::default());
    d.publish("lv/a/b/c", b"deep", QoS::AtMostOnce, false, 0);
    assert_eq!(disconnect_reason(d.recv()), 0x90);
    assert!(d.closed());

    // Nobody else noticed.
    let (mut ok, _) = Raw::connect(b.port, v, "ok", Properties::default());
    ok.publish("lv/fine", b"fine", QoS::AtMostOnce, false, 0);
    // mqsec forwards a QoS 2 message when it arrives (the spec's method A; Mosquitto waits for
    // PUBREL), so the two accepted ones come first; the refused and the too-deep ones never.
    let mut seen = Vec::new();
    while seen.last().map(|p: &Bytes| &p[..]) != Some(b"fine") {
        seen.push(publish_of(watch.recv()).payload);
    }
    assert_eq!(seen, ["held", "held", "fine"].map(Bytes::from));
}

#[test]
fn v5_message_expiry_drops_queued_and_retained_messages_and_counts_down() {
    let b = Broker::start("");
    let v = ProtocolVersion::V5;
    let keep = Properties {
        session_expiry_interval: Some(60),
        ..Properties::default()
    };
    let connect = |clean: bool| {
        let mut r = Raw::open(b.port, v);
        r.send(&Packet::Connect(Box::new(connect_packet(
            v,
            "expirer",
            clean,
            keep.clone(),
        ))));
        let present = match r.recv() {
            Some(Packet::ConnAck(a)) => a.session_present,
            p => panic!("{p:?}"),
        };
        (r, present)
    };
    let (mut s, _) = connect(true);
    assert_eq!(s.subscribe("exp/#", QoS::AtLeastOnce), vec![1]);
    drop(s);
    std::thread::sleep(Duration::from_millis(200));
    let (mut p, _) = Raw::connect(b.port, v, "exp-pub", Properties::default());
    for (topic, expiry, retain, id) in [
        ("exp/short", 1, false, 1),
        ("exp/long", 60, false, 2),
        ("exp/retained", 1, true, 3),
    ] {
        p.send(&Packet::Publish(Publish {
            dup: false,
            qos: QoS::AtLeastOnce,
            retain,
            topic: topic.into(),
            packet_id: Some(id),
            properties: Properties {
                message_expiry_interval: Some(expiry),
                ..Properties::default()
            },
            payload: Bytes::from_static(b"m"),
        }));
        assert_eq!(pub_resp(p.recv()), ("PUBACK", id));
    }
    std::thread::sleep(Duration::from_millis(2100));
    let (mut s, present) = connect(false);
    assert!(present);
    let m = publish_of(s.recv());
    assert_eq!(
        m.topic, "exp/long",
        "the expired queued message was delivered"
    );
    let left = m.properties.message_expiry_interval.unwrap();
    assert!(
        (55..=58).contains(&left),
        "expiry counts down while queued: {left}"
    );
    s.s.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    assert!(s.recv().is_none(), "an expired message was delivered");
    // The expired retained message is gone for new subscribers too.
    let (mut late, _) = Raw::connect(b.port, v, "late", Properties::default());
    assert_eq!(late.subscribe("exp/#", QoS::AtLeastOnce), vec![1]);
    late.s
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    assert!(
        late.recv().is_none(),
        "an expired retained message was delivered"
    );
}

#[test]
fn packets_pipelined_behind_connect_are_handled_at_once() {
    // paho (and many embedded clients) send SUBSCRIBE right after CONNECT without waiting for
    // CONNACK; both arrive in one read and the SUBSCRIBE must not wait for the next packet.
    let b = Broker::start("");
    for v in [ProtocolVersion::V311, ProtocolVersion::V5] {
        let mut r = Raw::open(b.port, v);
        let mut out = BytesMut::new();
        let connect = connect_packet(v, "eager", true, Properties::default());
        encode_packet(&Packet::Connect(Box::new(connect)), v, &mut out).unwrap();
        let sub = Subscribe {
            packet_id: 3,
            filters: vec![SubscriptionRequest {
                filter: "eager/#".into(),
                options: SubscriptionOptions::default(),
            }],
            properties: Properties::default(),
        };
        encode_packet(&Packet::Subscribe(sub), v, &mut out).unwrap();
        r.send_raw(&out);
        r.s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        assert_eq!(connack_code(&r.recv().unwrap()), 0);
        match r.recv() {
            Some(Packet::SubAck(a)) => assert_eq!((a.packet_id, a.reason_codes), (3, vec![0])),
            p => panic!("{v:?}: expected SUBACK at once, got {p:?}"),
        }
    }
}

#[test]
fn takeover_sends_the_old_connections_will_unless_delayed() {
    // The old network connection ends without DISCONNECT, so its will goes (v5: once its delay
    // has run out, and a delayed will is dropped when the session is resumed in time). Mosquitto
    // agrees for v5; for v3.1.1 resuming with clean session false it drops the will, mqsec
    // deliberately treats both versions alike.
    let b = Broker::start("");
    let (mut w, _) = Raw::connect(b.port, ProtocolVersion::V5, "watch", Properties::default());
    assert_eq!(w.subscribe("tw/#", QoS::AtMostOnce), vec![0]);
    let with_will =
        |v: ProtocolVersion, clean: bool, delay: Option<u32>, payload: &'static [u8]| {
            let mut r = Raw::open(b.port, v);
            // A v5 session that outlives its connection (expiry 60 s) when a delay is asked:
            // with expiry 0 the session, and so the delay, ends with the connection.
            let props = Properties {
                session_expiry_interval: delay.map(|_| 60),
                ..Properties::default()
            };
            let mut cp = connect_packet(v, &format!("twin{}", v.level()), clean, props);
            cp.will = Some(LastWill {
                topic: "tw/will".into(),
                payload: Bytes::from_static(payload),
                qos: QoS::AtMostOnce,
                retain: false,
                properties: Properties {
                    will_delay_interval: delay,
                    ..Properties::default()
                },
            });
            r.send(&Packet::Connect(Box::new(cp)));
            assert_eq!(connack_code(&r.recv().unwrap()), 0);
            r
        };
    for v in [ProtocolVersion::V311, ProtocolVersion::V5] {
        for clean in [true, false] {
            let mut old = with_will(v, clean, None, b"old");
            let mut new = with_will(v, clean, None, b"new");
            assert!(old.closed());
            assert_eq!(
                &publish_of(w.recv()).payload[..],
                b"old",
                "{v:?} clean {clean}"
            );
            // A normal DISCONNECT: no will from the new connection.
            new.send(&Packet::Disconnect(mqsec::broker::codec::Disconnect {
                reason: 0,
                properties: Properties::default(),
            }));
            assert!(new.closed());
        }
    }
    // v5 with a will delay, resumed before it ran out: no will.
    let mut old = with_will(ProtocolVersion::V5, false, Some(30), b"delayed");
    let _new = with_will(ProtocolVersion::V5, false, Some(30), b"new");
    assert!(old.closed());
    w.s.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    assert!(w.recv().is_none(), "a delayed will was sent on takeover");
}
