//! What authorization costs.
//!
//! 1. Decisions on a 10,000-user ACL (criterion): `Acl::decide` and the per-client compiled
//!    `Grants` the broker asks on every PUBLISH and delivery. Lookups are indexed, so the size of
//!    the file should not show up in these numbers.
//! 2. With `--bench` only (`cargo bench --bench acl`): end-to-end QoS 0 publish throughput of an
//!    in-process `mqsec serve` over loopback TCP, with a 1,000-rule ACL and with no ACL, rounds
//!    alternating; the goal is the ACL within 5% of no ACL. `-- --throughput-only` skips part 1.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use criterion::{criterion_group, Criterion};
use mqsec::broker::auth::Authorizer;
use mqsec::broker::codec::{
    decode_packet_from_server, encode_packet, Connect, Limits, Packet, Properties, ProtocolVersion,
    Publish, QoS, Subscribe, SubscriptionOptions, SubscriptionRequest,
};
use mqsec::broker::store::MemoryStore;
use mqsec::broker::Server;
use mqsec::security::acl::{Access, Acl, AclRequest, Grants};
use mqsec::security::identity::Identity;
use mqsec::security::passwd::{hash_password, Argon2Params};
use mqsec::security::policy::Policy;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const USERS: usize = 10_000;

fn big_acl() -> Acl {
    let mut text = String::with_capacity(USERS * 120);
    text.push_str("pattern deny devices/%c/firmware\n");
    text.push_str("pattern write devices/%c/out/#\n");
    text.push_str("pattern read devices/%c/in/#\n");
    text.push_str("pattern readwrite users/%u/#\n");
    text.push_str("pattern read broadcast/%u\n");
    for i in 0..USERS {
        text.push_str(&format!(
            "user device{i:05}\ntopic write sensors/{i:05}/#\ntopic read commands/{i:05}\ntopic deny sensors/{i:05}/private/#\ntopic read fleet/+/status\n\n"
        ));
    }
    Acl::parse(&text, "bench.acl").expect("generated ACL parses")
}

/// A 1,000-rule file shaped like a real deployment: 40 patterns every client meets, then 240
/// users with four rules each (the bench's two clients among them, last).
fn thousand_rule_acl() -> String {
    let mut text = String::new();
    for i in 0..20 {
        text.push_str(&format!("pattern readwrite site{i}/%c/#\n"));
        text.push_str(&format!("pattern read site{i}/broadcast/%u\n"));
    }
    let users: Vec<String> = (0..238)
        .map(|i| format!("device{i:03}"))
        .chain(["benchpub".to_string(), "benchsub".to_string()])
        .collect();
    for u in &users {
        text.push_str(&format!(
            "user {u}\ntopic deny {u}/private/#\ntopic write telemetry/{u}/#\ntopic read commands/{u}\ntopic readwrite bench/#\n"
        ));
    }
    assert_eq!(
        text.lines().filter(|l| !l.starts_with("user ")).count(),
        1000
    );
    text
}

fn decisions(c: &mut Criterion) {
    let acl = Arc::new(big_acl());
    let id = Identity::with_username("dev-05000", "device05000");
    let grants = Grants::new(acl.clone(), &id);
    let cases = [
        (
            "publish_allowed_own_rule",
            Access::Write,
            "sensors/05000/temp/1",
        ),
        (
            "publish_denied_default",
            Access::Write,
            "sensors/05001/temp/1",
        ),
        (
            "publish_denied_deny_rule",
            Access::Write,
            "sensors/05000/private/x",
        ),
        (
            "publish_allowed_pattern",
            Access::Write,
            "devices/dev-05000/out/t",
        ),
        ("delivery_allowed_own_rule", Access::Read, "fleet/7/status"),
        (
            "delivery_allowed_pattern",
            Access::Read,
            "users/device05000/inbox",
        ),
        ("delivery_denied", Access::Read, "users/device05001/inbox"),
        ("subscribe_allowed", Access::Subscribe, "fleet/+/status"),
    ];
    let mut g = c.benchmark_group("acl_10000_users");
    for (name, access, topic) in cases {
        let req = AclRequest::new(access, topic);
        g.bench_function(name, |b| {
            b.iter(|| black_box(acl.decide(black_box(&id), black_box(&req)).allowed))
        });
        g.bench_function(format!("{name}_compiled"), |b| {
            b.iter(|| black_box(grants.decide(black_box(&id), black_box(&req)).allowed))
        });
    }
    g.finish();

    // The broker's own path: the policy finds the client's compiled grants in its identity.
    let dir = tempfile::tempdir().unwrap();
    let acl_path = dir.path().join("bench.acl");
    std::fs::write(&acl_path, thousand_rule_acl()).unwrap();
    let cfg = mqsec::config::mosquitto::parse_str(
        &format!(
            "listener 1 127.0.0.1\nallow_anonymous true\nacl_file {}\n",
            acl_path.display()
        ),
        "bench.conf",
    )
    .unwrap();
    let policy = Policy::new(Arc::new(cfg)).unwrap();
    let mut who = Identity::with_username("benchpub-1", "benchpub");
    // A client of listener 0, as the policy admits it.
    who.set_listener_index(0);
    let mut g = c.benchmark_group("policy_1000_rules");
    g.bench_function("publish_allowed", |b| {
        b.iter(|| black_box(policy.publish(&who, black_box("bench/x/y"), QoS::AtMostOnce, false)))
    });
    g.bench_function("delivery_allowed", |b| {
        b.iter(|| {
            black_box(Authorizer::deliver(
                &policy,
                &who,
                black_box("bench/x/y"),
                QoS::AtMostOnce,
                false,
                None,
            ))
        })
    });
    g.finish();
}

criterion_group!(benches, decisions);

// ------------------------------------------------------------------------------------------
// End-to-end throughput.

const MESSAGES: usize = 2_000_000;
const ROUNDS: usize = 7;
const PAYLOAD: usize = 64;
const TOPIC: &str = "bench/line-3/press-7/temperature";
/// The broker's runtime threads carry this name, so their CPU time can be told apart.
const BROKER_THREADS: &str = "mqsec-broker";

fn encode(p: &Packet) -> BytesMut {
    let mut out = BytesMut::new();
    encode_packet(p, ProtocolVersion::V311, &mut out).unwrap();
    out
}

async fn read_packet(s: &mut TcpStream, buf: &mut BytesMut) -> Packet {
    loop {
        if let Some(p) =
            decode_packet_from_server(buf, ProtocolVersion::V311, &Limits::default()).unwrap()
        {
            return p;
        }
        assert!(s.read_buf(buf).await.unwrap() > 0, "broker closed");
    }
}

async fn client(port: u16, id: &str, user: &str) -> (TcpStream, BytesMut) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    s.set_nodelay(true).unwrap();
    let c = Connect {
        protocol: ProtocolVersion::V311,
        clean_start: true,
        keep_alive: 60,
        client_id: id.into(),
        will: None,
        username: Some(user.into()),
        password: Some(Bytes::from_static(b"bench-pw")),
        properties: Properties::default(),
    };
    s.write_all(&encode(&Packet::Connect(Box::new(c))))
        .await
        .unwrap();
    let mut buf = BytesMut::new();
    match read_packet(&mut s, &mut buf).await {
        Packet::ConnAck(a) => assert_eq!(a.code, 0, "{user} refused"),
        p => panic!("{p:?}"),
    }
    (s, buf)
}

/// CPU time (user + system) the broker's runtime threads have used, in clock ticks (10 ms).
/// Unlike wall-clock time it hardly depends on what else the machine is doing.
fn broker_cpu_ticks() -> u64 {
    let mut total = 0;
    for task in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        if comm.trim_end() != BROKER_THREADS {
            continue;
        }
        let stat = std::fs::read_to_string(task.path().join("stat")).unwrap_or_default();
        // After the ")" closing the name: state, ppid, ... utime is the 12th, stime the 13th.
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .map_or(Vec::new(), |(_, rest)| rest.split_whitespace().collect());
        for i in [11, 12] {
            total += fields
                .get(i)
                .and_then(|f| f.parse::<u64>().ok())
                .unwrap_or(0);
        }
    }
    total
}

struct Round {
    msgs_per_sec: f64,
    /// Broker CPU per message, nanoseconds.
    cpu_ns: f64,
}

/// One round: a fresh broker, one subscriber, one publisher sending `MESSAGES` QoS 0 messages as
/// fast as it can, until the subscriber has them all.
fn round(broker_rt: &tokio::runtime::Runtime, with_acl: bool) -> Round {
    let dir = tempfile::tempdir().unwrap();
    let weak = Argon2Params {
        memory_kib: 64,
        iterations: 1,
        parallelism: 1,
    };
    let hash = hash_password(b"bench-pw", &weak).unwrap();
    std::fs::write(
        dir.path().join("passwd"),
        format!("benchpub:{hash}\nbenchsub:{hash}\n"),
    )
    .unwrap();
    std::fs::write(dir.path().join("acl"), thousand_rule_acl()).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let acl_line = if with_acl {
        format!("acl_file {}\n", dir.path().join("acl").display())
    } else {
        String::new()
    };
    let text = format!(
        "listener {port} 127.0.0.1\nallow_anonymous false\npassword_file {}\n{acl_line}max_queued_messages 0\nsys_interval 0\nlog_dest none\n",
        dir.path().join("passwd").display()
    );
    let cfg = mqsec::config::mosquitto::parse_str(&text, "bench.conf").unwrap();
    let policy = Policy::new(Arc::new(cfg.clone())).unwrap();
    let server = broker_rt
        .block_on(async { Server::bind(cfg, Arc::new(policy), Arc::new(MemoryStore::new())) })
        .unwrap();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let run = broker_rt.spawn(server.run(async {
        let _ = stop_rx.await;
    }));

    let clients = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let r = clients.block_on(async {
        let (mut sub, mut sbuf) = client(port, "bench-sub", "benchsub").await;
        sub.write_all(&encode(&Packet::Subscribe(Subscribe {
            packet_id: 1,
            filters: vec![SubscriptionRequest {
                filter: "bench/#".into(),
                options: SubscriptionOptions::default(),
            }],
            properties: Properties::default(),
        })))
        .await
        .unwrap();
        match read_packet(&mut sub, &mut sbuf).await {
            Packet::SubAck(a) => assert_eq!(a.reason_codes, [0]),
            p => panic!("{p:?}"),
        }
        let (mut publ, _) = client(port, "bench-pub", "benchpub").await;
        let one = encode(&Packet::Publish(Publish {
            dup: false,
            qos: QoS::AtMostOnce,
            retain: false,
            topic: TOPIC.into(),
            packet_id: None,
            properties: Properties::default(),
            payload: Bytes::from(vec![0x5A; PAYLOAD]),
        }));
        let mut batch = BytesMut::new();
        for _ in 0..1000 {
            batch.extend_from_slice(&one);
        }
        let batch = batch.freeze();
        let cpu0 = broker_cpu_ticks();
        let start = Instant::now();
        let sender = tokio::spawn(async move {
            for _ in 0..MESSAGES / 1000 {
                publ.write_all(&batch).await.unwrap();
            }
            publ
        });
        // Count whole PUBLISH packets by bytes: each is `one.len()` long on the way out too.
        let want = MESSAGES * one.len();
        let mut got = sbuf.len();
        let mut chunk = vec![0u8; 256 * 1024];
        while got < want {
            let n = tokio::time::timeout(Duration::from_secs(60), sub.read(&mut chunk))
                .await
                .expect("deliveries stalled")
                .unwrap();
            assert!(n > 0, "broker closed the subscriber");
            got += n;
        }
        let secs = start.elapsed().as_secs_f64();
        let ticks = broker_cpu_ticks() - cpu0;
        let _publ = sender.await.unwrap();
        Round {
            msgs_per_sec: MESSAGES as f64 / secs,
            cpu_ns: ticks as f64 * 1e7 / MESSAGES as f64,
        }
    });
    let _ = stop_tx.send(());
    let _ = broker_rt.block_on(run);
    r
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn throughput() {
    let broker_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name(BROKER_THREADS)
        .enable_all()
        .build()
        .unwrap();
    // Warm up both (page cache, allocator), then alternate.
    round(&broker_rt, false);
    round(&broker_rt, true);
    let (mut none, mut acl) = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        none.push(round(&broker_rt, false));
        acl.push(round(&broker_rt, true));
    }
    // Each pair ran back to back: the median of their ratios cancels drift in machine load.
    let ratio = |f: fn(&Round) -> f64| {
        median(
            &acl.iter()
                .zip(&none)
                .map(|(a, n)| f(a) / f(n))
                .collect::<Vec<_>>(),
        )
    };
    let of = |v: &[Round], f: fn(&Round) -> f64| v.iter().map(f).collect::<Vec<f64>>();
    let rate = |r: &Round| r.msgs_per_sec;
    let cpu = |r: &Round| r.cpu_ns;
    println!(
        "\npublish path, QoS 0, {PAYLOAD}-byte payload, {MESSAGES} messages per round, 1 publisher -> 1 subscriber, {ROUNDS} rounds each, alternating:"
    );
    for (name, v) in [("no ACL", &none), ("1,000-rule ACL", &acl)] {
        println!(
            "  {name:<15} {:>9.0} msg/s (median; rounds {:.0?})   broker CPU {:>5.0} ns/msg (median; rounds {:.0?})",
            median(&of(v, rate)),
            of(v, rate),
            median(&of(v, cpu)),
            of(v, cpu),
        );
    }
    println!(
        "  ACL / no ACL:   throughput {:.1} %, broker CPU per message {:.1} %  (medians of per-pair ratios; goal: throughput >= 95 %, CPU <= 105 %)",
        ratio(rate) * 100.0,
        ratio(cpu) * 100.0
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let bench = args.iter().any(|a| a == "--bench");
    if !args.iter().any(|a| a == "--throughput-only") {
        benches();
        Criterion::default().configure_from_args().final_summary();
    }
    // `cargo test --all-targets` runs bench targets too (without --bench): the throughput
    // comparison takes minutes and belongs to `cargo bench`.
    if bench {
        throughput();
    }
}
