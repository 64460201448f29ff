//! Clients that abuse `mqsec serve`: never read, flood, trickle bytes, never send CONNECT, grow
//! user properties, exceed quotas. Each bound holds (the broker's memory stays bounded, the
//! abuser is cut off or refused with the right code) and a well-behaved client on the same
//! broker keeps its latency.

mod common;

use std::io::{ErrorKind, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::raw::*;
use mqsec::broker::codec::{encode_packet, Packet, Properties, ProtocolVersion, Publish, QoS};

const V5: ProtocolVersion = ProtocolVersion::V5;
const V3: ProtocolVersion = ProtocolVersion::V311;

/// Resident memory of a process, in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap()
}

/// A well-behaved client: subscribes to its own topic and measures publish -> delivery round
/// trips. Returns the slowest of `n`.
struct Probe {
    r: Raw,
    topic: String,
}

impl Probe {
    fn new(port: u16, id: &str) -> Probe {
        let (mut r, ack) = Raw::connect(port, V5, id, Properties::default());
        assert_eq!(connack_code(&ack), 0);
        let topic = format!("probe/{id}");
        assert_eq!(r.subscribe(&topic, QoS::AtMostOnce), vec![0]);
        Probe { r, topic }
    }

    fn slowest_round_trip(&mut self, n: usize) -> Duration {
        let mut worst = Duration::ZERO;
        for _ in 0..n {
            let t = Instant::now();
            let topic = self.topic.clone();
            self.r.publish(&topic, b"ping", QoS::AtMostOnce, false, 0);
            match self.r.recv() {
                Some(Packet::Publish(_)) => {}
                p => panic!("probe expected its PUBLISH, got {p:?}"),
            }
            worst = worst.max(t.elapsed());
        }
        worst
    }
}

/// Generous: this runs on a loaded 2-core CI machine beside the abuser and other tests.
const LATENCY_BOUND: Duration = Duration::from_millis(750);
/// How much the broker may grow while one client abuses it.
const RSS_GROWTH_BOUND_KIB: u64 = 64 * 1024;

fn encoded(p: &Packet, v: ProtocolVersion) -> Vec<u8> {
    let mut out = bytes::BytesMut::new();
    encode_packet(p, v, &mut out).unwrap();
    out.to_vec()
}

/// A client that sends PINGREQ as fast as it can and never reads the PINGRESPs: the broker stops
/// reading from it once its write buffer is full, then closes it when its output stalls.
#[test]
fn a_client_that_never_reads_is_bounded_then_closed() {
    let mut b = Broker::start("max_write_buffer 65536\nwrite_stall_timeout 2\nsys_interval 60");
    let pid = b.child.id();
    let mut probe = Probe::new(b.port, "probe");
    let before = rss_kib(pid);
    let (abuser, ack) = Raw::connect(b.port, V5, "never-reads", Properties::default());
    assert_eq!(connack_code(&ack), 0);
    let mut s: TcpStream = abuser.s;
    s.set_write_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let pings = encoded(&Packet::PingReq, V5).repeat(4096);
    let started = Instant::now();
    let mut sent = 0usize;
    let mut blocked_since: Option<Instant> = None;
    let closed_after = loop {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the broker never closed a client that does not read ({sent} bytes sent)"
        );
        match s.write(&pings) {
            Ok(n) => {
                sent += n;
                blocked_since = None;
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                // The broker stopped reading: its memory must not grow, others are served.
                let since = *blocked_since.get_or_insert_with(Instant::now);
                if since.elapsed() < Duration::from_millis(500) {
                    let grown = rss_kib(pid).saturating_sub(before);
                    assert!(grown < RSS_GROWTH_BOUND_KIB, "broker grew by {grown} KiB");
                    let worst = probe.slowest_round_trip(20);
                    assert!(worst < LATENCY_BOUND, "probe round trip {worst:?}");
                }
            }
            Err(_) => break started.elapsed(),
        }
    };
    assert!(sent > 0);
    // Closed by the stall timer: 2 s after the buffer filled (timer sweep once a second).
    assert!(
        closed_after < Duration::from_secs(30),
        "closed after {closed_after:?}"
    );
    let grown = rss_kib(pid).saturating_sub(before);
    assert!(grown < RSS_GROWTH_BOUND_KIB, "broker grew by {grown} KiB");
    assert!(probe.slowest_round_trip(20) < LATENCY_BOUND);
    // Counted in $SYS (refreshed on subscribe, so the value is current).
    let (mut sys, _) = Raw::connect(b.port, V5, "sys", Properties::default());
    assert_eq!(
        sys.subscribe("$SYS/broker/clients/write-stalled", QoS::AtMostOnce),
        vec![0]
    );
    match sys.recv() {
        Some(Packet::Publish(p)) => assert_eq!(&p.payload[..], b"1"),
        p => panic!("expected the $SYS value, got {p:?}"),
    }
    b.terminate();
}

/// 200,000 QoS 0 messages to a subscriber that never reads: its queue is bounded, the excess is
/// dropped and counted in $SYS, and the broker stays small and responsive.
#[test]
fn qos0_flood_to_a_subscriber_that_never_reads_is_dropped_and_counted() {
    let b = Broker::start("sys_interval 60");
    let pid = b.child.id();
    let mut probe = Probe::new(b.port, "probe");
    let before = rss_kib(pid);
    let (mut sleeper, _) = Raw::connect(b.port, V5, "sleeper", Properties::default());
    assert_eq!(sleeper.subscribe("flood/#", QoS::AtMostOnce), vec![0]);
    let (mut flooder, _) = Raw::connect(b.port, V5, "flooder", Properties::default());
    let msg = encoded(
        &Packet::Publish(Publish {
            dup: false,
            qos: QoS::AtMostOnce,
            retain: false,
            topic: "flood/x".into(),
            packet_id: None,
            properties: Properties::default(),
            payload: Bytes::from(vec![b'x'; 100]),
        }),
        V5,
    );
    let batch = msg.repeat(1000);
    for i in 0..200 {
        flooder.send_raw(&batch);
        if i % 50 == 0 {
            let worst = probe.slowest_round_trip(10);
            assert!(worst < LATENCY_BOUND, "probe round trip {worst:?}");
        }
    }
    // The flooder is still served: a PINGREQ is answered once its backlog is routed.
    flooder.send(&Packet::PingReq);
    loop {
        match flooder.recv() {
            Some(Packet::PingResp) => break,
            Some(_) => {}
            None => panic!("flooder cut off"),
        }
    }
    let grown = rss_kib(pid).saturating_sub(before);
    assert!(grown < RSS_GROWTH_BOUND_KIB, "broker grew by {grown} KiB");
    let (mut sys, _) = Raw::connect(b.port, V5, "sys", Properties::default());
    assert_eq!(
        sys.subscribe("$SYS/broker/messages/dropped/qos0", QoS::AtMostOnce),
        vec![0]
    );
    match sys.recv() {
        Some(Packet::Publish(p)) => {
            let n: u64 = std::str::from_utf8(&p.payload).unwrap().parse().unwrap();
            assert!(n > 100_000, "only {n} dropped QoS 0 messages counted");
        }
        p => panic!("expected the $SYS value, got {p:?}"),
    }
    drop(sleeper.s.shutdown(std::net::Shutdown::Both));
}

/// Bytes that never complete a packet are not activity: the keep alive still runs out.
#[test]
fn a_trickle_of_bytes_does_not_keep_a_connection_alive() {
    let b = Broker::start("");
    let mut r = Raw::open(b.port, V3);
    let mut c = connect_packet(V3, "trickle", true, Properties::default());
    c.keep_alive = 2;
    r.send(&Packet::Connect(Box::new(c)));
    assert_eq!(connack_code(&r.recv().unwrap()), 0);
    // The start of a PUBLISH whose remaining length promises 100 bytes, then one byte at a time.
    r.send_raw(&[0x30, 100]);
    let started = Instant::now();
    let closed = loop {
        std::thread::sleep(Duration::from_millis(300));
        if r.s.write_all(b"a").is_err() {
            break started.elapsed();
        }
        r.s.set_read_timeout(Some(Duration::from_millis(10)))
            .unwrap();
        let mut buf = [0u8; 16];
        if let Ok(0) = std::io::Read::read(&mut r.s, &mut buf) {
            break started.elapsed();
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "a trickle kept the connection open"
        );
    };
    // 1.5 x 2 s, checked by a once-a-second sweep.
    assert!(
        closed >= Duration::from_millis(2500),
        "closed after {closed:?}"
    );
}

/// Sockets that never send CONNECT are closed after `connect_timeout`.
#[test]
fn sockets_without_connect_are_closed_at_the_deadline() {
    let b = Broker::start("connect_timeout 1");
    let mut socks: Vec<TcpStream> = (0..20)
        .map(|_| TcpStream::connect(("127.0.0.1", b.port)).unwrap())
        .collect();
    let started = Instant::now();
    for s in &mut socks {
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut buf = [0u8; 4];
        let n = std::io::Read::read(s, &mut buf).unwrap_or(0);
        assert_eq!(n, 0, "closed without a word");
    }
    assert!(started.elapsed() < Duration::from_secs(8));
    // A real client is still admitted.
    let (_r, ack) = Raw::connect(b.port, V5, "after", Properties::default());
    assert_eq!(connack_code(&ack), 0);
}

/// Queue limits count what a message really holds: 20 KB of user properties on a 1-byte payload
/// count as 20 KB, not 1 byte.
#[test]
fn user_properties_count_against_max_queued_bytes() {
    let b = Broker::start("max_queued_bytes 1048576\nmax_queued_messages 1000");
    let id = "offline-sub";
    let props = Properties {
        session_expiry_interval: Some(3600),
        ..Properties::default()
    };
    let mut r = Raw::open(b.port, V5);
    r.send(&Packet::Connect(Box::new(connect_packet(
        V5,
        id,
        true,
        props.clone(),
    ))));
    assert_eq!(connack_code(&r.recv().unwrap()), 0);
    assert_eq!(r.subscribe("fat/#", QoS::AtLeastOnce), vec![1]);
    drop(r);
    std::thread::sleep(Duration::from_millis(200));
    let (mut p, _) = Raw::connect(b.port, V5, "fat-publisher", Properties::default());
    let fat = Properties {
        user_properties: (0..20)
            .map(|i| (format!("k{i}"), "v".repeat(1000)))
            .collect(),
        ..Properties::default()
    };
    for i in 0..500u16 {
        p.send(&Packet::Publish(Publish {
            dup: false,
            qos: QoS::AtLeastOnce,
            retain: false,
            topic: "fat/x".into(),
            packet_id: Some(i + 1),
            properties: fat.clone(),
            payload: Bytes::from_static(b"x"),
        }));
        assert!(matches!(p.recv(), Some(Packet::PubAck(_))));
    }
    let mut r = Raw::open(b.port, V5);
    r.send(&Packet::Connect(Box::new(connect_packet(
        V5, id, false, props,
    ))));
    assert_eq!(connack_code(&r.recv().unwrap()), 0);
    r.s.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let mut got = 0;
    while let Some(pk) = r.recv() {
        if let Packet::Publish(m) = pk {
            got += 1;
            r.send(&Packet::PubAck(mqsec::broker::codec::PubResp::ok(
                m.packet_id.unwrap(),
            )));
        }
    }
    // About 21 KB each: a 1 MiB queue holds about 48 of them.
    assert!(
        (20..=60).contains(&got),
        "{got} fat messages were queued for the offline session"
    );
}

#[test]
fn keep_alive_zero_only_where_allowed() {
    let strict = Broker::start("");
    let mut r = Raw::open(strict.port, V3);
    let mut c = connect_packet(V3, "ka0", true, Properties::default());
    c.keep_alive = 0;
    r.send(&Packet::Connect(Box::new(c.clone())));
    assert_eq!(
        connack_code(&r.recv().unwrap()),
        2,
        "v3: identifier rejected"
    );
    // v5 is told the keep alive it gets instead.
    let mut r = Raw::open(strict.port, V5);
    let mut c5 = connect_packet(V5, "ka0v5", true, Properties::default());
    c5.keep_alive = 0;
    r.send(&Packet::Connect(Box::new(c5)));
    match r.recv() {
        Some(Packet::ConnAck(a)) => {
            assert_eq!(a.code, 0);
            assert_eq!(a.properties.server_keep_alive, Some(65535));
        }
        p => panic!("expected CONNACK, got {p:?}"),
    }
    let lax = Broker::start("allow_zero_keepalive true");
    let mut r = Raw::open(lax.port, V3);
    r.send(&Packet::Connect(Box::new(c)));
    assert_eq!(connack_code(&r.recv().unwrap()), 0);
}

#[test]
fn session_and_subscription_quotas_have_their_codes() {
    let b = Broker::start("max_sessions 2\nmax_subscriptions_per_client 2");
    let (_a, ack) = Raw::connect(b.port, V5, "q1", Properties::default());
    assert_eq!(connack_code(&ack), 0);
    let (mut q2, ack) = Raw::connect(b.port, V5, "q2", Properties::default());
    assert_eq!(connack_code(&ack), 0);
    let (_, ack) = Raw::connect(b.port, V5, "q3", Properties::default());
    assert_eq!(connack_code(&ack), 0x97, "v5: quota exceeded");
    let (_, ack) = Raw::connect(b.port, V3, "q3", Properties::default());
    assert_eq!(connack_code(&ack), 3, "v3: server unavailable");
    // Subscriptions: two, then quota; re-subscribing an existing filter is not a new one.
    q2.send(&subscribe_packet(9, ["a", "b", "c", "a"]));
    match q2.recv() {
        Some(Packet::SubAck(a)) => assert_eq!(a.reason_codes, vec![0, 0, 0x97, 0]),
        p => panic!("expected SUBACK, got {p:?}"),
    }
}

/// A v3.1.1 client was never told a receive maximum: more than `max_inflight_messages` QoS 2
/// messages awaiting PUBREL is not a reason to cut it off (v5 clients were told, and are).
#[test]
fn v3_qos2_beyond_max_inflight_is_not_a_disconnect() {
    let b = Broker::start("max_inflight_messages 20");
    let (mut r, _) = Raw::connect(b.port, V3, "q2flood", Properties::default());
    for i in 1..=30u16 {
        r.publish("q2/x", b"m", QoS::ExactlyOnce, false, i);
        match r.recv() {
            Some(Packet::PubRec(p)) => assert_eq!(p.packet_id, i),
            p => panic!("message {i}: expected PUBREC, got {p:?}"),
        }
    }
    for i in 1..=30u16 {
        r.send(&Packet::PubRel(mqsec::broker::codec::PubResp::ok(i)));
        assert!(matches!(r.recv(), Some(Packet::PubComp(_))));
    }
}

#[test]
fn sys_values_are_current_when_subscribed() {
    let b = Broker::start("sys_interval 3600");
    let (mut p, _) = Raw::connect(b.port, V5, "counted", Properties::default());
    for i in 1..=3u16 {
        p.publish("c/x", b"m", QoS::AtLeastOnce, false, i);
        assert!(p.recv().is_some());
    }
    let (mut s, _) = Raw::connect(b.port, V5, "reader", Properties::default());
    assert_eq!(
        s.subscribe("$SYS/broker/messages/received", QoS::AtMostOnce),
        vec![0]
    );
    match s.recv() {
        Some(Packet::Publish(m)) => assert_eq!(&m.payload[..], b"3"),
        p => panic!("expected the $SYS value, got {p:?}"),
    }
    // `$SYSTEM` is an ordinary topic, not the broker's `$SYS` tree.
    assert_eq!(s.subscribe("$SYSTEM/x", QoS::AtLeastOnce), vec![1]);
    p.publish("$SYSTEM/x", b"ok", QoS::AtLeastOnce, false, 9);
    match p.recv() {
        Some(Packet::PubAck(a)) => assert_eq!(a.reason, 0),
        x => panic!("expected PUBACK, got {x:?}"),
    }
    match s.recv() {
        Some(Packet::Publish(m)) => assert_eq!(&m.payload[..], b"ok"),
        x => panic!("expected the $SYSTEM message, got {x:?}"),
    }
}

/// The SUBACK of packet `id`, skipping the retained messages earlier subscriptions brought.
fn suback_codes(r: &mut Raw, id: u16) -> Vec<u8> {
    loop {
        match r.recv() {
            Some(Packet::SubAck(a)) if a.packet_id == id => return a.reason_codes,
            Some(Packet::Publish(_)) => {}
            p => panic!("expected SUBACK {id}, got {p:?}"),
        }
    }
}

/// One client sends SUBSCRIBEs of 1000 wildcard filters each to a broker holding 100,000
/// retained messages. Scanning every retained message per filter made each such packet cost
/// 10^8 topic comparisons (seconds of CPU); the retained index visits only what a filter can
/// reach, so each SUBACK is quick, and a well-behaved client keeps its latency meanwhile.
#[test]
fn wildcard_subscribe_flood_over_100k_retained_messages() {
    const SUBSCRIBES: u16 = 10;
    const SUBACK_BOUND: Duration = Duration::from_secs(3);
    let b = Broker::start("sys_interval 60");
    let (mut filler, _) = Raw::connect(b.port, V5, "filler", Properties::default());
    for a in 0..100 {
        let mut batch = Vec::new();
        for c in 0..1000 {
            batch.extend(encoded(
                &Packet::Publish(Publish {
                    dup: false,
                    qos: QoS::AtMostOnce,
                    retain: true,
                    topic: format!("r/{a}/{c}"),
                    packet_id: None,
                    properties: Properties::default(),
                    payload: Bytes::from_static(b"21.5"),
                }),
                V5,
            ));
        }
        filler.send_raw(&batch);
    }
    // One connection's packets are handled in order: when this is acknowledged, all are stored.
    filler.publish("r/done", b"1", QoS::AtLeastOnce, true, 1);
    match filler.recv() {
        Some(Packet::PubAck(a)) => assert_eq!(a.packet_id, 1),
        p => panic!("expected PUBACK, got {p:?}"),
    }
    let mut probe = Probe::new(b.port, "probe");
    let (mut abuser, _) = Raw::connect(b.port, V5, "abuser", Properties::default());
    abuser
        .s
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let (sub_acks, mut round_trips) = std::thread::scope(|scope| {
        let flood = scope.spawn(|| {
            let mut times = Vec::new();
            for id in 1..=SUBSCRIBES {
                // Each `r/+/C` matches 100 messages; `+/+/C` makes the first level a wildcard.
                let filters = (0..1000).map(|c| match c % 2 {
                    0 => format!("r/+/{c}"),
                    _ => format!("+/+/{c}"),
                });
                let t = Instant::now();
                abuser.send(&subscribe_packet(id, filters));
                let codes = suback_codes(&mut abuser, id);
                times.push(t.elapsed());
                assert_eq!(codes, vec![0; 1000]);
            }
            times
        });
        let mut round_trips = Vec::new();
        while !flood.is_finished() {
            round_trips.push(probe.slowest_round_trip(1));
            std::thread::sleep(Duration::from_millis(2));
        }
        (flood.join().unwrap(), round_trips)
    });
    round_trips.sort();
    let pct = |p: usize| round_trips[(round_trips.len() - 1) * p / 100];
    let slowest_suback = sub_acks.iter().max().copied().unwrap_or_default();
    eprintln!(
        "{SUBSCRIBES} SUBSCRIBEs x 1000 wildcard filters over 100k retained: SUBACK slowest {slowest_suback:?}; \
         probe during the flood: {} round trips, p50 {:?}, p99 {:?}, max {:?}",
        round_trips.len(),
        pct(50),
        pct(99),
        pct(100)
    );
    assert!(
        slowest_suback < SUBACK_BOUND,
        "SUBACK took {slowest_suback:?}"
    );
    assert!(pct(100) < LATENCY_BOUND, "probe round trip {:?}", pct(100));
    // Still a working broker, the retained messages all there.
    let (mut check, _) = Raw::connect(b.port, V5, "check", Properties::default());
    assert_eq!(check.subscribe("r/42/+", QoS::AtMostOnce), vec![0]);
    let mut got = 0;
    while got < 1000 {
        match check.recv() {
            Some(Packet::Publish(p)) => {
                assert!(p.retain && p.topic.starts_with("r/42/"));
                got += 1;
            }
            p => panic!("expected retained message {got}, got {p:?}"),
        }
    }
}

/// Filters beyond `max_filters_per_subscribe` in one SUBSCRIBE are refused, each with its code
/// (v5 0x97 quota exceeded, v3 0x80); the ones before it are handled as usual.
#[test]
fn filters_beyond_max_filters_per_subscribe_are_refused() {
    let b = Broker::start("max_filters_per_subscribe 3");
    for (v, code) in [(V5, 0x97), (V3, 0x80)] {
        let id = format!("capped-{}", v.level());
        let (mut r, _) = Raw::connect(b.port, v, &id, Properties::default());
        let filters = ["a/1", "a/+", "c", "b/#", "a/2"].map(String::from);
        r.send(&subscribe_packet(7, filters));
        assert_eq!(suback_codes(&mut r, 7), vec![0, 0, 0, code, code]);
        // What was granted works; what was refused does not exist: `b/x` would come first.
        let (mut p, _) = Raw::connect(b.port, V5, &format!("{id}-pub"), Properties::default());
        p.publish("b/x", b"no", QoS::AtMostOnce, false, 0);
        p.publish("a/1", b"yes", QoS::AtMostOnce, false, 0);
        match r.recv() {
            Some(Packet::Publish(m)) => assert_eq!(m.topic, "a/1"),
            x => panic!("expected the a/1 delivery, got {x:?}"),
        }
    }
}

/// Retained messages are bounded in number and in memory; over either, a retained PUBLISH is
/// refused as a whole (v5 PUBACK 0x97, v3 plain ack), while replacing an existing one is fine.
#[test]
fn retained_messages_and_shared_groups_have_quotas() {
    let b = Broker::start(
        "max_retained_messages 3\nmax_retained_bytes 100000\nmax_shared_groups 2\nsys_interval 0",
    );
    let (mut p, _) = Raw::connect(b.port, V5, "retainer", Properties::default());
    let ack = |p: &mut Raw, topic: &str, payload: &[u8], id: u16| -> u8 {
        p.publish(topic, payload, QoS::AtLeastOnce, true, id);
        match p.recv() {
            Some(Packet::PubAck(a)) => a.reason,
            x => panic!("expected PUBACK, got {x:?}"),
        }
    };
    for (i, t) in ["r/1", "r/2", "r/3"].iter().enumerate() {
        let r = ack(&mut p, t, b"v", i as u16 + 1);
        assert!(r < 0x80, "{t}: {r:#x}");
    }
    assert_eq!(ack(&mut p, "r/4", b"v", 4), 0x97, "a fourth topic");
    assert!(
        ack(&mut p, "r/1", b"new", 5) < 0x80,
        "replacing one is not a new one"
    );
    assert!(ack(&mut p, "r/2", b"", 6) < 0x80, "deleting one");
    assert!(ack(&mut p, "r/4", b"v", 7) < 0x80, "room again");
    assert_eq!(
        ack(&mut p, "r/1", &[b'x'; 150_000], 8),
        0x97,
        "over max_retained_bytes"
    );
    // Only the kept ones come back to a new subscriber.
    let (mut s, _) = Raw::connect(b.port, V5, "reader", Properties::default());
    assert_eq!(s.subscribe("r/#", QoS::AtMostOnce), vec![0]);
    let mut got = Vec::new();
    s.s.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    while let Some(Packet::Publish(m)) = s.recv() {
        got.push((m.topic.clone(), m.payload.to_vec()));
    }
    got.sort();
    assert_eq!(
        got,
        vec![
            ("r/1".to_string(), b"new".to_vec()),
            ("r/3".to_string(), b"v".to_vec()),
            ("r/4".to_string(), b"v".to_vec())
        ]
    );
    // Shared groups: two, then 0x97 for a third; joining an existing one is fine.
    let (mut g, _) = Raw::connect(b.port, V5, "grouper", Properties::default());
    g.send(&subscribe_packet(
        3,
        ["$share/a/x", "$share/b/x", "$share/c/x", "$share/a/x"],
    ));
    match g.recv() {
        Some(Packet::SubAck(a)) => assert_eq!(a.reason_codes, vec![0, 0, 0x97, 0]),
        x => panic!("expected SUBACK, got {x:?}"),
    }
}
