//! `mqsec auth-server` behind RabbitMQ: `cargo bench --bench auth_server [-- --quick] [--json]`.
//!
//! 1. Connect storm through a two-node RabbitMQ cluster whose only backend is the auth-server:
//!    CONNECT + DISCONNECT with passwords, spread over both nodes, `CONCURRENCY` at a time. The
//!    first pass meets each device once (every login is a full argon2id check on the password
//!    pool); later passes repeat them (the pool's cache of recent successes answers). For each
//!    phase: the HTTP requests the nodes made per second and their latency percentiles inside
//!    the service (from `/health`: the difference of two readings of its histogram), and the
//!    client-side CONNECT rate.
//! 2. Authorization overhead per PUBLISH, on one standalone node with `auth_backends.1 =
//!    internal, auth_backends.2 = http`: QoS 1 publishes (20 in flight) by a user of RabbitMQ's
//!    own database (`.*` permissions) and by a user only the auth-server knows, the same node,
//!    one after the other; to one topic, and to a new topic each time (RabbitMQ caches topic
//!    decisions per connection, so only a topic it has not seen costs requests).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use mqsec_codec::{Packet, Publish, QoS};

use crate::client::{Client, ClientOptions};
use crate::rabbitmq::{Auth, Cluster};
use crate::LoadError;

const CONCURRENCY: usize = 32;
const WINDOW: usize = 20;
const ROUNDS: usize = 3;
const DIRECT_CONNECTIONS: usize = 16;

struct Plan {
    users: usize,
    passes: usize,
    publishes: usize,
    direct_requests: usize,
}

pub fn main(mqsec: PathBuf) -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // `cargo test --all-targets` (scripts/test) runs bench targets too, without `--bench`: the
    // cluster test covers correctness there; measuring is for `cargo bench`.
    if !args.iter().any(|a| a == "--bench") {
        println!("auth-server bench: run it with `cargo bench --bench auth_server`");
        return ExitCode::SUCCESS;
    }
    let quick = args.iter().any(|a| a == "--quick");
    let json = args.iter().any(|a| a == "--json");
    let plan = if quick {
        Plan {
            users: 50,
            passes: 3,
            publishes: 2000,
            direct_requests: 20_000,
        }
    } else {
        Plan {
            users: 200,
            passes: 6,
            publishes: 10_000,
            direct_requests: 200_000,
        }
    };
    match run(&mqsec, &plan) {
        Ok(report) => {
            if json {
                println!("{report}");
            } else {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&report).unwrap_or_default()
                );
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("auth_server bench: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The auth-server child, killed on drop.
struct AuthServer {
    child: std::process::Child,
    port: u16,
}

impl Drop for AuthServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl AuthServer {
    fn start(mqsec: &Path, dir: &Path) -> Result<AuthServer, LoadError> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let child = Command::new(mqsec)
            .arg("auth-server")
            .arg("--password-file")
            .arg(dir.join("passwd"))
            .arg("--acl-file")
            .arg(dir.join("acl"))
            .args([
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--rate-limit",
                "0",
            ])
            .env("MQSEC_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("auth-server.log"))?)
            .spawn()
            .map_err(|source| LoadError::Spawn {
                what: "mqsec auth-server".into(),
                source,
            })?;
        let s = AuthServer { child, port };
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline {
                return Err(LoadError::Timeout("auth-server to listen"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(s)
    }

    fn health(&self) -> Result<serde_json::Value, LoadError> {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(("127.0.0.1", self.port))?;
        s.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")?;
        let mut text = String::new();
        s.read_to_string(&mut text)?;
        let body = text.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
        serde_json::from_str(body).map_err(|e| LoadError::Protocol(format!("/health: {e}")))
    }
}

/// Percentiles of the requests between two `/health` readings.
fn interval(before: &serde_json::Value, after: &serde_json::Value, secs: f64) -> serde_json::Value {
    let buckets = |h: &serde_json::Value| -> Vec<(u64, u64)> {
        h["latency_us"]["buckets"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|p| Some((p[0].as_u64()?, p[1].as_u64()?)))
                    .collect()
            })
            .unwrap_or_default()
    };
    let (b0, b1) = (buckets(before), buckets(after));
    let delta: Vec<(u64, u64)> = b1
        .iter()
        .map(|(edge, n)| {
            let old = b0.iter().find(|(e, _)| e == edge).map_or(0, |(_, c)| *c);
            (*edge, n - old)
        })
        .filter(|(_, n)| *n > 0)
        .collect();
    let total: u64 = delta.iter().map(|(_, n)| n).sum();
    let pct = |q: f64| {
        let rank = ((q * total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (edge, n) in &delta {
            seen += n;
            if seen >= rank {
                return *edge;
            }
        }
        0
    };
    serde_json::json!({
        "requests": total,
        "requests_per_s": (total as f64 / secs).round(),
        "latency_us_p50": pct(0.5),
        "latency_us_p99": pct(0.99),
        "latency_us_max": pct(1.0),
    })
}

fn run(mqsec: &Path, plan: &Plan) -> Result<serde_json::Value, LoadError> {
    let tmp = tempfile::tempdir()?;
    let dir = tmp.path();
    // The devices: clear-text pairs hashed by `mqsec passwd import` (argon2id, the defaults).
    let mut plain: String = (0..plan.users)
        .map(|i| format!("dev{i}:pw-{i}-secret\n"))
        .collect();
    plain.push_str("benchhttp:benchpass\n");
    std::fs::write(dir.join("plain"), plain)?;
    let st = Command::new(mqsec)
        .args(["passwd", "import"])
        .arg(dir.join("plain"))
        .arg(dir.join("passwd"))
        .stdout(Stdio::null())
        .status()?;
    std::fs::remove_file(dir.join("plain"))?;
    if !st.success() {
        return Err(LoadError::Protocol("mqsec passwd import failed".into()));
    }
    std::fs::write(dir.join("acl"), "pattern readwrite bench/%u/#\n")?;
    let auth = AuthServer::start(mqsec, dir)?;
    let cdir = dir.join("cluster");
    std::fs::create_dir_all(&cdir)?;
    let mut cluster = Cluster::start(&cdir, 2, Auth::Http { port: auth.port });
    cluster.join(1, 0);
    let nodes: Vec<SocketAddr> = cluster
        .nodes
        .iter()
        .map(|n| SocketAddr::from(([127, 0, 0, 1], n.mqtt_port)))
        .collect();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;

    let mut storm = Vec::new();
    for (phase, passes) in [
        ("cold (argon2id per login)", 1),
        ("warm (cached successes)", plan.passes - 1),
    ] {
        let before = auth.health()?;
        let t0 = Instant::now();
        let n = rt.block_on(connect_storm(&nodes, plan.users, passes))?;
        let secs = t0.elapsed().as_secs_f64();
        let after = auth.health()?;
        let mut v = interval(&before, &after, secs);
        v["phase"] = phase.into();
        v["mqtt_connects"] = n.into();
        v["mqtt_connects_per_s"] = (n as f64 / secs).round().into();
        v["seconds"] = ((secs * 10.0).round() / 10.0).into();
        storm.push(v);
    }

    drop(cluster);

    // PUBLISH overhead: one node, both backends.
    let mdir = dir.join("mixed");
    std::fs::create_dir_all(&mdir)?;
    let mixed = Cluster::start(&mdir, 1, Auth::InternalThenHttp { port: auth.port });
    let add = mixed.ctl_input(0, &["add_user", "bench"], "benchpass\n");
    if !add.status.success() {
        return Err(LoadError::Protocol(format!(
            "add_user: {}",
            String::from_utf8_lossy(&add.stderr)
        )));
    }
    let perm = mixed.ctl(
        0,
        &["set_permissions", "-p", "/", "bench", ".*", ".*", ".*"],
    );
    if !perm.status.success() {
        return Err(LoadError::Protocol(format!(
            "set_permissions: {}",
            String::from_utf8_lossy(&perm.stderr)
        )));
    }
    let addr = SocketAddr::from(([127, 0, 0, 1], mixed.nodes[0].mqtt_port));
    let mut publish = Vec::new();
    for distinct in [false, true] {
        let mut row = serde_json::json!({
            "topics": if distinct { "a new topic per message" } else { "one topic" },
        });
        // Alternate the two users for ROUNDS rounds and keep each one's best: the first runs on
        // a fresh node would otherwise look slower whichever backend they used.
        for round in 0..ROUNDS {
            for (name, user) in [("internal_backend", "bench"), ("auth_server", "benchhttp")] {
                let before = auth.health()?;
                let t0 = Instant::now();
                rt.block_on(publish_run(addr, user, round, plan.publishes, distinct))?;
                let secs = t0.elapsed().as_secs_f64();
                let after = auth.health()?;
                let rate = plan.publishes as f64 / secs;
                if rate > row[name]["publishes_per_s"].as_f64().unwrap_or(0.0) {
                    let i = interval(&before, &after, secs);
                    row[name] = serde_json::json!({
                        "publishes_per_s": rate.round(),
                        "us_per_publish": ((1e6 / rate) * 10.0).round() / 10.0,
                        "http_requests": i["requests"],
                        "http_latency_us_p50": i["latency_us_p50"],
                        "http_latency_us_p99": i["latency_us_p99"],
                    });
                }
            }
        }
        let a = row["internal_backend"]["us_per_publish"]
            .as_f64()
            .unwrap_or(0.0);
        let b = row["auth_server"]["us_per_publish"].as_f64().unwrap_or(0.0);
        row["overhead_us_per_publish"] = (((b - a) * 10.0).round() / 10.0).into();
        publish.push(row);
    }
    drop(mixed);

    // The service alone, without RabbitMQ in front: keep-alive clients asking as fast as they
    // can, for its own ceiling on this machine.
    let mut direct = Vec::new();
    for (what, path, body) in [
        (
            "topic decision (ACL)",
            "/rabbitmq/topic",
            "username=benchhttp&vhost=%2F&resource=topic&name=amq.topic&permission=write&routing_key=bench.benchhttp.t&variable_map.client_id=c1",
        ),
        (
            "login, cached success",
            "/rabbitmq/user",
            "username=benchhttp&password=benchpass",
        ),
    ] {
        let before = auth.health()?;
        let t0 = Instant::now();
        let mut rtt = rt.block_on(direct_http(auth.port, path, body, plan.direct_requests))?;
        let secs = t0.elapsed().as_secs_f64();
        let after = auth.health()?;
        rtt.sort_unstable();
        let q = |f: f64| rtt.get(((rtt.len() as f64 * f) as usize).min(rtt.len().saturating_sub(1))).map_or(0, |d| d.as_micros() as u64);
        let mut v = interval(&before, &after, secs);
        v["request"] = what.into();
        v["connections"] = DIRECT_CONNECTIONS.into();
        v["round_trip_us_p50"] = q(0.5).into();
        v["round_trip_us_p99"] = q(0.99).into();
        direct.push(v);
    }
    Ok(serde_json::json!({
        "machine_cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        "connect_storm": storm,
        "publish_overhead": publish,
        "direct_http": direct,
        "plan": {"devices": plan.users, "passes": plan.passes, "concurrency": CONCURRENCY,
                 "publishes": plan.publishes, "qos1_window": WINDOW, "rounds": ROUNDS,
                 "direct_requests": plan.direct_requests},
    }))
}

async fn connect_storm(
    nodes: &[SocketAddr],
    users: usize,
    passes: usize,
) -> Result<u64, LoadError> {
    let total = (users * passes) as u64;
    let next = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..CONCURRENCY {
        let (next, nodes) = (next.clone(), nodes.to_vec());
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    return Ok::<(), LoadError>(());
                }
                let user = format!("dev{}", i as usize % users);
                let password = format!("pw-{}-secret", i as usize % users);
                let addr = nodes[i as usize % nodes.len()];
                let c = Client::connect_as(
                    addr,
                    &format!("{user}-{i}"),
                    ClientOptions::default(),
                    Some((&user, password.as_bytes())),
                )
                .await?;
                c.disconnect().await?;
            }
        }));
    }
    for t in tasks {
        t.await
            .map_err(|e| LoadError::Protocol(format!("connect task: {e}")))??;
    }
    Ok(total)
}

/// `count` QoS 1 publishes with `WINDOW` in flight, as `user` (password `benchpass`), under
/// `bench/USER/`.
async fn publish_run(
    addr: SocketAddr,
    user: &str,
    round: usize,
    count: usize,
    distinct: bool,
) -> Result<(), LoadError> {
    let id = format!("{user}-pub-{}-{round}", std::process::id());
    let c = Client::connect_as(
        addr,
        &id,
        ClientOptions::default(),
        Some((user, b"benchpass".as_slice())),
    )
    .await?;
    let Client {
        mut reader,
        mut writer,
        ..
    } = c;
    let payload = Bytes::from_static(b"0123456789abcdef0123456789abcdef");
    let (mut sent, mut acked, mut inflight) = (0usize, 0usize, 0usize);
    let mut batch = Vec::new();
    let run = Instant::now().elapsed().as_nanos();
    while acked < count {
        while inflight < WINDOW && sent < count {
            let topic = if distinct {
                format!("bench/{user}/t{run}-{round}-{sent}")
            } else {
                format!("bench/{user}/t")
            };
            let packet_id = (sent % 60_000) as u16 + 1;
            writer.queue(&Packet::Publish(Publish {
                dup: false,
                qos: QoS::AtLeastOnce,
                retain: false,
                topic,
                packet_id: Some(packet_id),
                properties: Default::default(),
                payload: payload.clone(),
            }))?;
            sent += 1;
            inflight += 1;
        }
        writer.flush().await?;
        batch.clear();
        tokio::time::timeout(Duration::from_secs(30), reader.read_batch(&mut batch))
            .await
            .map_err(|_| LoadError::Timeout("PUBACK"))??;
        for p in &batch {
            if let Packet::PubAck(_) = p {
                acked += 1;
                inflight -= 1;
            }
        }
    }
    Ok(())
}

/// `total` requests over `DIRECT_CONNECTIONS` keep-alive HTTP/1.1 connections; the round trip of
/// each.
async fn direct_http(
    port: u16,
    path: &str,
    body: &str,
    total: usize,
) -> Result<Vec<Duration>, LoadError> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let per = total / DIRECT_CONNECTIONS;
    let mut tasks = Vec::new();
    for _ in 0..DIRECT_CONNECTIONS {
        let request = request.clone();
        tasks.push(tokio::spawn(async move {
            let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
            s.set_nodelay(true)?;
            let mut times = Vec::with_capacity(per);
            let mut buf = Vec::with_capacity(4096);
            for _ in 0..per {
                let t0 = Instant::now();
                s.write_all(request.as_bytes()).await?;
                buf.clear();
                // Read one response: headers, then Content-Length bytes of body.
                loop {
                    let mut chunk = [0u8; 2048];
                    let n = tokio::time::timeout(Duration::from_secs(30), s.read(&mut chunk))
                        .await
                        .map_err(|_| LoadError::Timeout("HTTP response"))??;
                    if n == 0 {
                        return Err(LoadError::Closed);
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    let text = String::from_utf8_lossy(&buf);
                    if let Some(end) = text.find("\r\n\r\n") {
                        let len = text[..end]
                            .lines()
                            .find_map(|l| {
                                let (k, v) = l.split_once(':')?;
                                k.eq_ignore_ascii_case("content-length")
                                    .then(|| v.trim().parse::<usize>().ok())?
                            })
                            .unwrap_or(0);
                        if buf.len() >= end + 4 + len {
                            break;
                        }
                    }
                }
                times.push(t0.elapsed());
            }
            Ok::<_, LoadError>(times)
        }));
    }
    let mut all = Vec::with_capacity(total);
    for t in tasks {
        all.extend(
            t.await
                .map_err(|e| LoadError::Protocol(format!("HTTP task: {e}")))??,
        );
    }
    Ok(all)
}
