//! Session ownership in `mqsec serve` over real sockets: takeover of live sessions, and a client
//! that closes and reconnects at once (the old connection's clean-up racing the new attach).

mod common;

use common::raw::*;
use mqsec::broker::codec::{Disconnect, Packet, Properties, ProtocolVersion, QoS};

fn connect_with(
    port: u16,
    v: ProtocolVersion,
    id: &str,
    clean: bool,
    expiry: Option<u32>,
) -> (Raw, bool) {
    let mut r = Raw::open(port, v);
    let props = Properties {
        session_expiry_interval: expiry,
        ..Properties::default()
    };
    r.send(&Packet::Connect(Box::new(connect_packet(
        v, id, clean, props,
    ))));
    match r.recv() {
        Some(Packet::ConnAck(a)) => {
            assert_eq!(a.code, 0, "{v:?} {id} refused");
            (r, a.session_present)
        }
        p => panic!("expected CONNACK, got {p:?}"),
    }
}

/// Failed before the broker core owned attach: B resumed A's ending session and was told
/// Session Present 1 (both versions).
#[test]
fn taking_over_a_live_clean_session_starts_a_new_one() {
    let b = Broker::start("");
    for v in [ProtocolVersion::V311, ProtocolVersion::V5] {
        let id = format!("take{}", v.level());
        // A: clean session (v3) / session expiry 0 (v5), with a subscription.
        let (mut a, present) = connect_with(b.port, v, &id, true, None);
        assert!(!present);
        assert_eq!(a.subscribe("owned/#", QoS::AtLeastOnce), vec![1]);
        // B: same id, asks to resume.
        let (mut bb, present) = connect_with(b.port, v, &id, false, Some(3600));
        assert!(!present, "{v:?}: A's session ended with A's connection");
        assert!(a.closed(), "{v:?}: A is disconnected");
        // B did not inherit A's subscription.
        let (mut p, _) = connect_with(b.port, v, &format!("pub{}", v.level()), true, None);
        p.publish("owned/x", b"m", QoS::AtLeastOnce, false, 7);
        assert!(p.recv().is_some(), "PUBACK");
        bb.s.set_read_timeout(Some(std::time::Duration::from_millis(300)))
            .unwrap();
        assert!(bb.recv().is_none(), "{v:?}: B got A's subscription");
    }
}

#[test]
fn capped_session_expiry_is_reported_in_connack() {
    let b = Broker::start("persistent_client_expiration 1h");
    let mut r = Raw::open(b.port, ProtocolVersion::V5);
    let props = Properties {
        session_expiry_interval: Some(86_400),
        ..Properties::default()
    };
    r.send(&Packet::Connect(Box::new(connect_packet(
        ProtocolVersion::V5,
        "capped",
        true,
        props,
    ))));
    match r.recv() {
        Some(Packet::ConnAck(a)) => {
            assert_eq!(a.code, 0);
            assert_eq!(a.properties.session_expiry_interval, Some(3600));
        }
        p => panic!("expected CONNACK, got {p:?}"),
    }
}

/// A client closes its socket and at once reconnects with the same client id asking to resume.
/// Its old connection's clean-up races the new attach; the answer must be exact every time.
#[test]
fn close_and_reconnect_cycles_always_see_the_right_session() {
    const CYCLES: usize = 1000;
    let b = Broker::start("");
    let (mut probe, _) = connect_with(b.port, ProtocolVersion::V5, "probe", true, None);
    for v in [ProtocolVersion::V311, ProtocolVersion::V5] {
        for persistent in [false, true] {
            let id = format!("cyc{}{}", v.level(), u8::from(persistent));
            // Persistent: v3 clean session 0 / v5 expiry 1 h. Otherwise the session ends with
            // each connection (v3 clean session 1 / v5 expiry 0).
            let expiry = persistent.then_some(3600);
            let (mut c, _) = connect_with(b.port, v, &id, !persistent, expiry);
            assert_eq!(c.subscribe(&format!("cyc/{id}"), QoS::AtLeastOnce), vec![1]);
            let mut stale_present = 0;
            for i in 0..CYCLES {
                // Close with DISCONNECT half the time and a bare close the other half.
                if i % 2 == 0 {
                    c.send(&Packet::Disconnect(Disconnect {
                        reason: 0,
                        properties: Properties::default(),
                    }));
                }
                drop(c);
                // Reconnect asking to resume (clean 0) with the same session lifetime.
                let (n, present) = connect_with(b.port, v, &id, false, expiry);
                c = n;
                if present != persistent {
                    stale_present += 1;
                }
                // The session's subscriptions, checked by a message through the broker: a
                // resumed session has exactly its one subscription; a new one has none (that
                // takes a timeout to see, so it is checked every 100th cycle).
                if persistent {
                    probe.publish(&format!("cyc/{id}"), b"x", QoS::AtMostOnce, false, 0);
                    match c.recv() {
                        Some(Packet::Publish(p)) => assert_eq!(&p.payload[..], b"x"),
                        p => panic!("{v:?} cycle {i}: expected the PUBLISH, got {p:?}"),
                    }
                } else {
                    if i % 100 == 0 {
                        probe.publish(&format!("cyc/{id}"), b"x", QoS::AtMostOnce, false, 0);
                        c.s.set_read_timeout(Some(std::time::Duration::from_millis(200)))
                            .unwrap();
                        assert!(c.recv().is_none(), "{v:?} cycle {i}: stale subscription");
                    }
                    // v3 clean session 0 made this session persistent: end it with a clean
                    // reconnect, and subscribe again for the next cycle.
                    drop(c);
                    c = connect_with(b.port, v, &id, true, None).0;
                    assert_eq!(c.subscribe(&format!("cyc/{id}"), QoS::AtLeastOnce), vec![1]);
                }
            }
            assert_eq!(
                stale_present, 0,
                "{v:?} persistent={persistent}: wrong Session Present in {stale_present} of {CYCLES}"
            );
            // The session's subscriptions are exactly one, every time: a message reaches it once.
            probe.publish(&format!("cyc/{id}"), b"x", QoS::AtMostOnce, false, 0);
            match c.recv() {
                Some(Packet::Publish(p)) => assert_eq!(&p.payload[..], b"x"),
                p => panic!("{v:?} persistent={persistent}: expected the PUBLISH, got {p:?}"),
            }
            c.s.set_read_timeout(Some(std::time::Duration::from_millis(200)))
                .unwrap();
            assert!(c.recv().is_none(), "delivered twice");
        }
    }
}
