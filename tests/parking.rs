//! Idle plain-TCP connections park (no task, no registration with tokio's driver) and everything
//! that reaches a live connection must reach a parked one: deliveries, keep-alive expiry, takeover,
//! a peer that goes away (its will), and shutdown. `$SYS/broker/clients/parked` tells the test
//! that the connections it checks are parked.

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use common::raw::*;
use mqsec::broker::codec::reason::v5;
use mqsec::broker::codec::{LastWill, Packet, Properties, ProtocolVersion, QoS};

const V5: ProtocolVersion = ProtocolVersion::V5;

/// How long parking may take: a new connection parks at once; one that was woken parks after
/// one to two quiet seconds, and `$SYS` is published once a second.
const PARK_WAIT: Duration = Duration::from_secs(30);

fn broker() -> Broker {
    Broker::start("allow_anonymous true\nsys_interval 1")
}

/// The broker's count of parked connections, as `$SYS` last published it.
fn parked(port: u16) -> u64 {
    let mut r = Raw::connect(port, V5, "", Properties::default()).0;
    assert_eq!(
        r.subscribe("$SYS/broker/clients/parked", QoS::AtMostOnce),
        [0]
    );
    let p = r
        .next_publish()
        .expect("the retained $SYS/broker/clients/parked");
    std::str::from_utf8(&p.payload).unwrap().parse().unwrap()
}

/// Wait until at least `n` connections are parked (besides the one asking).
fn wait_parked(port: u16, n: u64) {
    let start = Instant::now();
    loop {
        let now = parked(port);
        if now >= n {
            return;
        }
        assert!(
            start.elapsed() < PARK_WAIT,
            "only {now} of {n} connections parked"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn connect(port: u16, id: &str, keep_alive: u16, will: Option<LastWill>) -> Raw {
    let mut r = Raw::open(port, V5);
    let mut c = connect_packet(V5, id, true, Properties::default());
    c.keep_alive = keep_alive;
    c.will = will;
    r.send(&Packet::Connect(Box::new(c)));
    assert_eq!(connack_code(&r.recv().expect("CONNACK")), 0);
    r
}

fn will(topic: &str) -> LastWill {
    LastWill {
        topic: topic.into(),
        payload: Bytes::from_static(b"gone"),
        qos: QoS::AtLeastOnce,
        retain: false,
        properties: Properties::default(),
    }
}

#[test]
fn parked_connections_get_deliveries_answer_pings_and_park_again() {
    let b = broker();
    let mut sub = connect(b.port, "sub", 60, None);
    assert_eq!(sub.subscribe("t/#", QoS::AtLeastOnce), [1]);
    let mut publ = connect(b.port, "pub", 60, None);
    for round in 0..3u16 {
        // Both parked: the publisher is woken by its socket, the subscriber by its bell.
        wait_parked(b.port, 2);
        publ.publish(
            "t/a",
            format!("q0 {round}").as_bytes(),
            QoS::AtMostOnce,
            false,
            0,
        );
        publ.publish(
            "t/b",
            format!("q1 {round}").as_bytes(),
            QoS::AtLeastOnce,
            false,
            1,
        );
        match publ.recv() {
            Some(Packet::PubAck(a)) => assert_eq!(a.packet_id, 1),
            p => panic!("expected PUBACK, got {p:?}"),
        }
        let a = sub.next_publish().expect("the QoS 0 message");
        let c = sub.next_publish().expect("the QoS 1 message");
        assert_eq!(&a.payload[..], format!("q0 {round}").as_bytes());
        assert_eq!(&c.payload[..], format!("q1 {round}").as_bytes());
        // A ping to a parked connection is answered.
        wait_parked(b.port, 2);
        sub.send(&Packet::PingReq);
        assert!(matches!(sub.recv(), Some(Packet::PingResp)));
    }
}

#[test]
fn keep_alive_expiry_and_a_vanished_peer_reach_parked_connections() {
    let b = broker();
    let mut watcher = connect(b.port, "watcher", 60, None);
    assert_eq!(watcher.subscribe("wills/#", QoS::AtLeastOnce), [1]);
    // One client simply goes away; another never pings (keep alive 10 s: closed after 15 s, time
    // enough to see it parked on a slow machine).
    let vanishing = connect(b.port, "vanishing", 60, Some(will("wills/vanishing")));
    wait_parked(b.port, 2);
    let mut silent = connect(b.port, "silent", 10, Some(will("wills/silent")));
    wait_parked(b.port, 3);
    drop(vanishing);
    // The keep alive runs out several seconds from now.
    watcher
        .s
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut got = Vec::new();
    while got.len() < 2 {
        let p = watcher.next_publish().expect("a will");
        got.push(p.topic);
    }
    got.sort();
    assert_eq!(got, ["wills/silent", "wills/vanishing"]);
    assert_eq!(disconnect_reason(silent.recv()), v5::KEEP_ALIVE_TIMEOUT);
    assert!(silent.closed());
}

#[test]
fn a_parked_connection_is_taken_over() {
    let b = broker();
    let mut first = connect(b.port, "same", 60, None);
    wait_parked(b.port, 1);
    let mut second = connect(b.port, "same", 60, None);
    assert_eq!(disconnect_reason(first.recv()), v5::SESSION_TAKEN_OVER);
    assert!(first.closed());
    // The new connection parks and works like any other.
    wait_parked(b.port, 1);
    second.send(&Packet::PingReq);
    assert!(matches!(second.recv(), Some(Packet::PingResp)));
}

#[test]
fn shutdown_tells_parked_connections() {
    let mut b = broker();
    let mut clients: Vec<Raw> = (0..20)
        .map(|i| connect(b.port, &format!("c{i}"), 60, None))
        .collect();
    wait_parked(b.port, 20);
    assert!(b.terminate().success());
    // Had the kicks not reached them, they would be closed without a DISCONNECT when the
    // broker gives up waiting for them.
    for c in &mut clients {
        assert_eq!(disconnect_reason(c.recv()), v5::SERVER_SHUTTING_DOWN);
    }
}
