//! Whole sessions for fuzzing: byte streams fed as concurrent clients to one in-process broker.
//!
//! Used by the cargo-fuzz target `session` (`fuzz/`) and by a property test here, so the same
//! driver runs in CI on generated packet sequences and under libFuzzer on anything. Whatever the
//! bytes, the broker must not panic, every connection must end, and the broker's books must
//! balance afterwards (every subscription in the tree belongs to a live session).

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::admission::ListenerRt;
use super::auth::AllowAnonymous;
use super::connection::{self, Admitted, ConnContext, ListenerCtx};
use super::core::Broker;
use super::store::MemoryStore;

/// What a run of clients left behind, for the caller's assertions.
#[derive(Debug)]
pub struct Outcome {
    /// Sessions left in the registry (persistent ones outlive their connections).
    pub sessions: usize,
    /// Subscriptions in the tree.
    pub tree_subscriptions: usize,
    /// Subscriptions the remaining sessions hold.
    pub session_subscriptions: usize,
    /// Bytes the broker sent back, over all clients.
    pub bytes_answered: usize,
}

/// Run each input as one client connection, all at once, on a fresh broker with the embedded
/// configuration; every client's input is written whole, then its connection is read until the
/// broker closes it or stays quiet for `idle`, and then the client hangs up (so a half-sent
/// packet or a missing CONNECT costs `idle`, not the broker's timeouts).
pub fn run_clients(inputs: &[Vec<u8>], idle: Duration) -> Outcome {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => panic!("cannot build a runtime: {e}"),
    };
    rt.block_on(async {
        let mut cfg = crate::config::defaults::embedded();
        cfg.sys_interval = Duration::ZERO;
        cfg.logging.connection_messages = false;
        let cfg = Arc::new(cfg);
        let broker = Arc::new(Broker::new(
            cfg.clone(),
            Arc::new(AllowAnonymous {
                clientid_prefixes: vec![],
            }),
            Arc::new(MemoryStore::new()),
        ));
        let listener = ListenerRt::new(
            Arc::new(cfg.listeners[0].clone()),
            "127.0.0.1:1883".parse().expect("a socket address"),
        );
        let shared = Arc::new(ListenerCtx {
            broker: broker.clone(),
            listener: listener.clone(),
            alive: None,
            lot: None,
        });
        let mut clients = Vec::new();
        for (i, input) in inputs.iter().enumerate() {
            let (mut client, server) = tokio::io::duplex(64 * 1024);
            let peer = std::net::SocketAddr::from(([127, 0, 0, 1], 40000 + i as u16));
            let ctx = ConnContext {
                admitted: Admitted::new(shared.clone(), listener.enter(peer.ip())),
                peer,
                peer_cert: None,
            };
            let conn = tokio::spawn(connection::run(server, ctx));
            let input = input.clone();
            clients.push(tokio::spawn(async move {
                // Write and read at once: a broker answering a long input must not block on a
                // client that has not started reading.
                let (mut rd, mut wr) = tokio::io::split(&mut client);
                let write = async {
                    let _ = wr.write_all(&input).await;
                };
                let read = async {
                    let mut answered = 0;
                    let mut buf = vec![0u8; 16 * 1024];
                    loop {
                        match tokio::time::timeout(idle, rd.read(&mut buf)).await {
                            Ok(Ok(n)) if n > 0 => answered += n,
                            _ => break,
                        }
                    }
                    answered
                };
                let ((), answered) = tokio::join!(write, read);
                drop(client);
                let _ = conn.await;
                answered
            }));
        }
        let mut bytes_answered = 0;
        for c in clients {
            bytes_answered += c.await.unwrap_or(0);
        }
        // Let expiries and delayed wills run, as time passes.
        broker.housekeeping(std::time::Instant::now() + Duration::from_secs(10));
        let live = broker.sessions.snapshot();
        Outcome {
            sessions: live.len(),
            tree_subscriptions: broker.subs.len(),
            session_subscriptions: live.iter().map(|s| s.subscription_count()).sum(),
            bytes_answered,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::codec::{
        encode_packet, Connect, Disconnect, Packet, Properties, ProtocolVersion, PubResp, Publish,
        QoS, Subscribe, SubscriptionOptions, SubscriptionRequest, Unsubscribe,
    };
    use bytes::{Bytes, BytesMut};
    use proptest::prelude::*;

    const TOPICS: [&str; 5] = ["a", "a/b", "$SYS/x", "c/d/e", ""];
    const FILTERS: [&str; 7] = ["a", "a/#", "+/b", "#", "$share/g/a/+", "a/+/", "bad/#/x"];

    fn qos(n: u8) -> QoS {
        QoS::from_u8(n % 3).unwrap_or(QoS::AtMostOnce)
    }

    /// One packet a client might send after CONNECT (some of them wrong on purpose).
    fn packet() -> impl Strategy<Value = Packet> {
        prop_oneof![
            (0..5usize, any::<u8>(), any::<bool>(), 1..20u16, 0..3usize).prop_map(
                |(t, q, retain, pid, size)| {
                    let qos = qos(q);
                    Packet::Publish(Publish {
                        dup: false,
                        qos,
                        retain,
                        topic: TOPICS[t].into(),
                        packet_id: (qos != QoS::AtMostOnce).then_some(pid),
                        properties: Properties::default(),
                        payload: Bytes::from(vec![b'p'; size * 100]),
                    })
                }
            ),
            (
                prop::collection::vec((0..7usize, any::<u8>()), 1..4),
                1..20u16
            )
                .prop_map(|(fs, pid)| Packet::Subscribe(Subscribe {
                    packet_id: pid,
                    filters: fs
                        .into_iter()
                        .map(|(f, q)| SubscriptionRequest {
                            filter: FILTERS[f].into(),
                            options: SubscriptionOptions {
                                qos: qos(q),
                                ..Default::default()
                            },
                        })
                        .collect(),
                    properties: Properties::default(),
                })),
            (0..7usize, 1..20u16).prop_map(|(f, pid)| Packet::Unsubscribe(Unsubscribe {
                packet_id: pid,
                filters: vec![FILTERS[f].into()],
                properties: Properties::default(),
            })),
            (1..20u16).prop_map(|p| Packet::PubAck(PubResp::ok(p))),
            (1..20u16).prop_map(|p| Packet::PubRec(PubResp::ok(p))),
            (1..20u16).prop_map(|p| Packet::PubRel(PubResp::ok(p))),
            (1..20u16).prop_map(|p| Packet::PubComp(PubResp::ok(p))),
            Just(Packet::PingReq),
            Just(Packet::Disconnect(Disconnect {
                reason: 0,
                properties: Properties::default(),
            })),
        ]
    }

    /// A client: CONNECT (one of three ids, either version, clean or not), packets, and maybe
    /// a few flipped bytes.
    fn client() -> impl Strategy<Value = Vec<u8>> {
        (
            0..3u8,
            any::<bool>(),
            any::<bool>(),
            prop::collection::vec(packet(), 0..12),
            prop::collection::vec((any::<usize>(), any::<u8>()), 0..2),
        )
            .prop_map(|(id, v5, clean, packets, flips)| {
                let v = if v5 {
                    ProtocolVersion::V5
                } else {
                    ProtocolVersion::V311
                };
                let mut out = BytesMut::new();
                let connect = Connect {
                    protocol: v,
                    clean_start: clean,
                    keep_alive: 60,
                    client_id: format!("c{id}"),
                    will: None,
                    username: None,
                    password: None,
                    properties: Properties {
                        session_expiry_interval: (v5 && !clean).then_some(5),
                        ..Properties::default()
                    },
                };
                let _ = encode_packet(&Packet::Connect(Box::new(connect)), v, &mut out);
                for p in &packets {
                    let _ = encode_packet(p, v, &mut out);
                }
                let mut bytes = out.to_vec();
                for (at, b) in flips {
                    if !bytes.is_empty() {
                        let i = at % bytes.len();
                        bytes[i] ^= b;
                    }
                }
                bytes
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]
        #[test]
        fn concurrent_sessions_never_panic_and_the_books_balance(
            clients in prop::collection::vec(client(), 1..4)
        ) {
            let out = run_clients(&clients, Duration::from_millis(20));
            prop_assert_eq!(out.tree_subscriptions, out.session_subscriptions, "{:?}", out);
        }
    }

    #[test]
    fn garbage_is_answered_or_closed() {
        let out = run_clients(
            &[
                vec![0xff; 100],
                b"\x10\x0c\x00\x04MQTT\x04\x02\x00\x3c\x00\x00".to_vec(),
            ],
            Duration::from_secs(2),
        );
        assert!(
            out.bytes_answered >= 4,
            "the valid client got its CONNACK: {out:?}"
        );
        assert_eq!(out.tree_subscriptions, 0);
    }
}
