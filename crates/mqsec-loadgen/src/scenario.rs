//! The scenarios, each against one broker address. They never start brokers themselves.
//!
//! Throughput is measured as messages *delivered* to subscribers per second, with publishers held
//! back when they run more than a few hundred messages ahead of their subscribers: an open-loop
//! publisher would only measure how fast a broker can buffer (or drop) what it cannot deliver.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use serde::Serialize;
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

use super::client::{Client, ClientOptions, Reader};
use super::{LoadError, Settings};
use mqsec_codec::{Packet, PubResp, Publish, QoS};

/// How far (in messages) a QoS 0 publisher may run ahead of its slowest subscriber: enough to
/// keep the pipeline full on a busy machine, little enough to stay within what a broker buffers.
const MAX_LAG_QOS0: u64 = 2000;
/// QoS 1: below Mosquitto's default `max_queued_messages` (1000), beyond which it drops.
const MAX_LAG_QOS1: u64 = 500;
/// How long a publisher waits for its subscribers before it counts the gap as lost messages.
const LAG_PATIENCE: Duration = Duration::from_millis(500);
/// Publications encoded per write.
const BATCH: u64 = 32;
/// QoS 1 publications in flight per publisher (Mosquitto's default receive maximum is 20).
const QOS1_WINDOW: usize = 20;
/// Concurrent TCP handshakes while opening many connections.
const CONNECT_CONCURRENCY: usize = 32;

#[derive(Debug, Clone, Serialize)]
pub struct Throughput {
    /// Messages received by subscribers per second, over the measured window.
    pub delivered_per_s: f64,
    /// Messages sent by publishers per second, over the same window.
    pub published_per_s: f64,
    /// Times a publisher gave up waiting for a subscriber (the broker dropped messages).
    pub stalls: u64,
    /// Broker CPU microseconds per delivered message over the window (with `Settings::broker_pid`).
    pub broker_cpu_us_per_msg: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Latency {
    pub p50_us: f64,
    pub p99_us: f64,
    pub max_us: f64,
    pub samples: usize,
    /// Messages sent while samples were recorded.
    pub sent: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct ConnectRate {
    pub per_s: f64,
    pub connections: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Idle {
    pub connections: usize,
    pub rss_before_kib: u64,
    pub rss_after_kib: u64,
    pub per_connection_kib: f64,
    /// Then each client subscribed to its own `RUN/dev/N/cmd` (a device's command topic).
    pub rss_subscribed_kib: u64,
    pub per_subscribed_connection_kib: f64,
}

/// Spawned tasks, aborted when dropped so a failed scenario leaves nothing running.
struct Tasks(Vec<JoinHandle<Result<(), LoadError>>>);

impl Tasks {
    fn spawn(
        &mut self,
        f: impl std::future::Future<Output = Result<(), LoadError>> + Send + 'static,
    ) {
        self.0.push(tokio::spawn(f));
    }

    /// Before the stop flag is set no task may end: an ended task is a failure (usually the
    /// broker closing a connection), reported with its error.
    async fn check(&mut self) -> Result<(), LoadError> {
        for h in self.0.iter_mut() {
            if h.is_finished() {
                return match h.await {
                    Ok(Err(e)) => Err(e),
                    Ok(Ok(())) => Err(LoadError::Protocol("a client task ended early".into())),
                    Err(e) => Err(LoadError::Protocol(format!("client task failed: {e}"))),
                };
            }
        }
        Ok(())
    }
}

impl Drop for Tasks {
    fn drop(&mut self) {
        for h in &self.0 {
            h.abort();
        }
    }
}

/// A prefix for client ids and topics, unique per scenario run.
fn run_id() -> String {
    format!("lg{:x}", now_ns() ^ u64::from(std::process::id()) << 40)
}

fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

fn now_ns() -> u64 {
    u64::try_from(epoch().elapsed().as_nanos()).unwrap_or(u64::MAX)
}

fn options(s: &Settings) -> ClientOptions {
    ClientOptions {
        version: s.version,
        ..ClientOptions::default()
    }
}

fn sum(counters: &[Arc<AtomicU64>]) -> u64 {
    counters.iter().map(|c| c.load(Ordering::Relaxed)).sum()
}

fn publish_packet(topic: &str, qos: QoS, payload: Bytes) -> Packet {
    Packet::Publish(Publish {
        dup: false,
        qos,
        retain: false,
        topic: topic.to_string(),
        packet_id: None,
        properties: Default::default(),
        payload,
    })
}

/// Counts every PUBLISH into `counter` and acknowledges QoS 1/2, one write per read batch.
async fn subscriber_loop(client: Client, counter: Arc<AtomicU64>) -> Result<(), LoadError> {
    let Client {
        mut reader,
        mut writer,
        ..
    } = client;
    let mut batch = Vec::with_capacity(256);
    loop {
        batch.clear();
        reader.read_batch(&mut batch).await?;
        let mut n = 0;
        for p in &batch {
            match p {
                Packet::Publish(m) => {
                    n += 1;
                    match (m.qos, m.packet_id) {
                        (QoS::AtLeastOnce, Some(id)) => {
                            writer.queue(&Packet::PubAck(PubResp::ok(id)))?
                        }
                        (QoS::ExactlyOnce, Some(id)) => {
                            writer.queue(&Packet::PubRec(PubResp::ok(id)))?
                        }
                        _ => {}
                    }
                }
                Packet::PubRel(r) => writer.queue(&Packet::PubComp(PubResp::ok(r.packet_id)))?,
                Packet::PingResp => {}
                other => {
                    return Err(LoadError::Protocol(format!(
                        "subscriber got unexpected packet type {}",
                        other.packet_type()
                    )))
                }
            }
        }
        counter.fetch_add(n, Ordering::Relaxed);
        writer.flush().await?;
    }
}

/// Holds a publisher back while it is more than `max_lag` ahead of its slowest subscriber.
/// (tokio's timer has millisecond resolution: the sleep below is about 1 ms, a small share of the
/// time the lag represents at these rates.)
struct Pacer {
    subscribers: Vec<Arc<AtomicU64>>,
    max_lag: u64,
    /// Messages written off as lost (a broker may drop what it cannot queue).
    lost: u64,
    stalls: Arc<AtomicU64>,
}

impl Pacer {
    fn slowest(&self) -> u64 {
        self.subscribers
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .min()
            .unwrap_or(0)
    }

    async fn wait(&mut self, sent: u64) {
        let start = Instant::now();
        loop {
            let done = self.slowest() + self.lost;
            if sent <= done + self.max_lag {
                return;
            }
            if start.elapsed() > LAG_PATIENCE {
                self.lost = sent.saturating_sub(self.slowest());
                self.stalls.fetch_add(1, Ordering::Relaxed);
                return;
            }
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
    }
}

/// QoS 0: batches of publications as fast as the pacer allows.
async fn publisher_qos0(
    client: Client,
    packet: Packet,
    sent: Arc<AtomicU64>,
    mut pacer: Pacer,
    stop: Arc<AtomicBool>,
) -> Result<(), LoadError> {
    let Client {
        reader: _reader,
        mut writer,
        ..
    } = client;
    let mut n = 0;
    while !stop.load(Ordering::Relaxed) {
        pacer.wait(n).await;
        for _ in 0..BATCH {
            writer.queue(&packet)?;
        }
        writer.flush().await?;
        n += BATCH;
        sent.store(n, Ordering::Relaxed);
    }
    Ok(())
}

/// Releases a window slot for every PUBACK.
async fn puback_loop(mut reader: Reader, window: Arc<Semaphore>) -> Result<(), LoadError> {
    let mut batch = Vec::with_capacity(64);
    loop {
        batch.clear();
        reader.read_batch(&mut batch).await?;
        let acks = batch
            .iter()
            .filter(|p| matches!(p, Packet::PubAck(_)))
            .count();
        if acks != batch.len() {
            return Err(LoadError::Protocol(
                "QoS 1 publisher got a packet other than PUBACK".into(),
            ));
        }
        window.add_permits(acks);
    }
}

/// QoS 1: a sliding window of `QOS1_WINDOW` unacknowledged publications.
async fn publisher_qos1(
    client: Client,
    mut packet: Packet,
    sent: Arc<AtomicU64>,
    mut pacer: Pacer,
    stop: Arc<AtomicBool>,
) -> Result<(), LoadError> {
    let window = Arc::new(Semaphore::new(QOS1_WINDOW));
    let Client {
        reader, mut writer, ..
    } = client;
    let mut acks = AbortOnDrop(tokio::spawn(puback_loop(reader, window.clone())));
    let mut next_id: u16 = 0;
    let mut n = 0;
    while !stop.load(Ordering::Relaxed) {
        pacer.wait(n).await;
        let first = window
            .acquire()
            .await
            .map_err(|_| LoadError::Protocol("window closed".into()))?;
        first.forget();
        let mut k = 1;
        while k < BATCH {
            match window.try_acquire() {
                Ok(p) => {
                    p.forget();
                    k += 1;
                }
                Err(_) => break,
            }
        }
        for _ in 0..k {
            // Ids cycle through 1..=65535; at most QOS1_WINDOW are in flight, so none is reused
            // while still unacknowledged.
            next_id = next_id.checked_add(1).unwrap_or(1);
            if let Packet::Publish(p) = &mut packet {
                p.packet_id = Some(next_id);
            }
            writer.queue(&packet)?;
        }
        writer.flush().await?;
        n += k;
        sent.store(n, Ordering::Relaxed);
        if acks.0.is_finished() {
            break;
        }
    }
    if acks.0.is_finished() && !stop.load(Ordering::Relaxed) {
        return match (&mut acks.0).await {
            Ok(Err(e)) => Err(e),
            _ => Err(LoadError::Protocol("PUBACK reader ended".into())),
        };
    }
    Ok(())
}

struct AbortOnDrop<T>(JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn filler(n: usize) -> Bytes {
    Bytes::from(vec![b'x'; n])
}

/// Runs the publishers (already spawned into `tasks`) for warm-up plus the measured window.
async fn measure(
    tasks: &mut Tasks,
    s: &Settings,
    delivered: &[Arc<AtomicU64>],
    sent: &[Arc<AtomicU64>],
    stall_counter: &AtomicU64,
    stop: &AtomicBool,
) -> Result<Throughput, LoadError> {
    tokio::time::sleep(s.warmup).await;
    tasks.check().await?;
    let cpu = || {
        s.broker_pid
            .and_then(|pid| super::process::cpu_seconds(pid).ok())
    };
    let cpu0 = cpu();
    let (d0, p0, st0, t0) = (
        sum(delivered),
        sum(sent),
        stall_counter.load(Ordering::Relaxed),
        Instant::now(),
    );
    tokio::time::sleep(s.duration).await;
    let (d1, p1, st1, dt) = (
        sum(delivered),
        sum(sent),
        stall_counter.load(Ordering::Relaxed),
        t0.elapsed().as_secs_f64(),
    );
    let cpu1 = cpu();
    tasks.check().await?;
    stop.store(true, Ordering::Relaxed);
    // Each subscriber may receive each publication at most once: more means duplicates (or
    // a miscount here), and no throughput figure should be built on that.
    // Received first: whatever was received had been counted as sent before.
    let received = sum(delivered);
    let ceiling = sum(sent) * (delivered.len() / sent.len().max(1)) as u64;
    if received > ceiling {
        return Err(LoadError::Protocol(format!(
            "subscribers received {received} messages, more than the {ceiling} published to them"
        )));
    }
    let delivered = d1 - d0;
    Ok(Throughput {
        delivered_per_s: delivered as f64 / dt,
        published_per_s: (p1 - p0) as f64 / dt,
        stalls: st1 - st0,
        broker_cpu_us_per_msg: match (cpu0, cpu1) {
            (Some(a), Some(b)) if delivered > 0 => Some((b - a) * 1e6 / delivered as f64),
            _ => None,
        },
    })
}

/// `pairs` publishers, each to its own topic with one subscriber: delivered messages per second.
pub async fn throughput(addr: SocketAddr, qos: QoS, s: &Settings) -> Result<Throughput, LoadError> {
    throughput_with(addr, qos, s, options(s)).await
}

/// The same with subscribers that keep their sessions (clean session 0): the copies a broker
/// with persistence must record before acknowledging.
pub async fn throughput_persistent(
    addr: SocketAddr,
    qos: QoS,
    s: &Settings,
) -> Result<Throughput, LoadError> {
    let sub = ClientOptions {
        clean_start: false,
        ..options(s)
    };
    throughput_with(addr, qos, s, sub).await
}

async fn throughput_with(
    addr: SocketAddr,
    qos: QoS,
    s: &Settings,
    sub_opts: ClientOptions,
) -> Result<Throughput, LoadError> {
    let run = run_id();
    let opts = options(s);
    let stop = Arc::new(AtomicBool::new(false));
    let stalls = Arc::new(AtomicU64::new(0));
    let mut tasks = Tasks(Vec::new());
    let mut delivered = Vec::new();
    for i in 0..s.pairs {
        let mut c = Client::connect(addr, &format!("{run}-s{i}"), sub_opts).await?;
        c.subscribe(&format!("bench/{run}/{i}"), qos).await?;
        let counter = Arc::new(AtomicU64::new(0));
        delivered.push(counter.clone());
        tasks.spawn(subscriber_loop(c, counter));
    }
    let mut sent = Vec::new();
    let payload = filler(s.payload);
    for (i, sub) in delivered.iter().enumerate() {
        let c = Client::connect(addr, &format!("{run}-p{i}"), opts).await?;
        let counter = Arc::new(AtomicU64::new(0));
        sent.push(counter.clone());
        let packet = publish_packet(&format!("bench/{run}/{i}"), qos, payload.clone());
        let pacer = Pacer {
            subscribers: vec![sub.clone()],
            max_lag: match qos {
                QoS::AtMostOnce => MAX_LAG_QOS0,
                _ => MAX_LAG_QOS1,
            },
            lost: 0,
            stalls: stalls.clone(),
        };
        match qos {
            QoS::AtMostOnce => tasks.spawn(publisher_qos0(c, packet, counter, pacer, stop.clone())),
            _ => tasks.spawn(publisher_qos1(c, packet, counter, pacer, stop.clone())),
        }
    }
    measure(&mut tasks, s, &delivered, &sent, &stalls, &stop).await
}

/// One QoS 0 publisher, `s.fanout` subscribers on its topic: deliveries per second (all
/// subscribers together).
pub async fn fanout(addr: SocketAddr, s: &Settings) -> Result<Throughput, LoadError> {
    let run = run_id();
    let opts = options(s);
    let topic = format!("bench/{run}/fan");
    let stop = Arc::new(AtomicBool::new(false));
    let stalls = Arc::new(AtomicU64::new(0));
    let mut tasks = Tasks(Vec::new());
    let mut delivered = Vec::new();
    for i in 0..s.fanout {
        let mut c = Client::connect(addr, &format!("{run}-s{i}"), opts).await?;
        c.subscribe(&topic, QoS::AtMostOnce).await?;
        let counter = Arc::new(AtomicU64::new(0));
        delivered.push(counter.clone());
        tasks.spawn(subscriber_loop(c, counter));
    }
    let c = Client::connect(addr, &format!("{run}-p"), opts).await?;
    let sent = Arc::new(AtomicU64::new(0));
    let pacer = Pacer {
        subscribers: delivered.clone(),
        max_lag: MAX_LAG_QOS0,
        lost: 0,
        stalls: stalls.clone(),
    };
    let packet = publish_packet(&topic, QoS::AtMostOnce, filler(s.payload));
    tasks.spawn(publisher_qos0(c, packet, sent.clone(), pacer, stop.clone()));
    measure(&mut tasks, s, &delivered, &[sent], &stalls, &stop).await
}

/// One QoS 0 publisher at `s.latency_rate` messages/s, one subscriber; the payload carries the
/// send time, so both ends read the same clock.
pub async fn latency(addr: SocketAddr, s: &Settings) -> Result<Latency, LoadError> {
    let run = run_id();
    let opts = options(s);
    let topic = format!("bench/{run}/lat");
    let mut tasks = Tasks(Vec::new());
    let recording = Arc::new(AtomicBool::new(false));
    let samples = Arc::new(Mutex::new(Vec::<u64>::new()));

    let mut sub = Client::connect(addr, &format!("{run}-s"), opts).await?;
    sub.subscribe(&topic, QoS::AtMostOnce).await?;
    {
        let recording = recording.clone();
        let samples = samples.clone();
        tasks.spawn(async move {
            let Client { mut reader, .. } = sub;
            let mut batch = Vec::new();
            loop {
                batch.clear();
                reader.read_batch(&mut batch).await?;
                let now = now_ns();
                if !recording.load(Ordering::Relaxed) {
                    continue;
                }
                let mut v = samples
                    .lock()
                    .map_err(|_| LoadError::Protocol("poisoned".into()))?;
                for p in &batch {
                    if let Packet::Publish(m) = p {
                        let ts: [u8; 8] = m
                            .payload
                            .get(..8)
                            .and_then(|b| b.try_into().ok())
                            .ok_or_else(|| {
                                LoadError::Protocol("latency payload without a timestamp".into())
                            })?;
                        v.push(now.saturating_sub(u64::from_be_bytes(ts)));
                    }
                }
            }
        });
    }

    let publisher = Client::connect(addr, &format!("{run}-p"), opts).await?;
    let sent = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    {
        let sent = sent.clone();
        let stop = stop.clone();
        let recording = recording.clone();
        let size = s.payload.max(8);
        let period = Duration::from_secs_f64(1.0 / f64::from(s.latency_rate.max(1)));
        tasks.spawn(async move {
            let Client {
                reader: _reader,
                mut writer,
                ..
            } = publisher;
            let mut tick = tokio::time::interval(period);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut packet = publish_packet(&topic, QoS::AtMostOnce, Bytes::new());
            while !stop.load(Ordering::Relaxed) {
                tick.tick().await;
                let mut b = BytesMut::with_capacity(size);
                b.put_u64(now_ns());
                b.resize(size, b'x');
                if let Packet::Publish(p) = &mut packet {
                    p.payload = b.freeze();
                }
                writer.send(&packet).await?;
                if recording.load(Ordering::Relaxed) {
                    sent.fetch_add(1, Ordering::Relaxed);
                }
            }
            Ok(())
        });
    }
    tokio::time::sleep(s.warmup).await;
    tasks.check().await?;
    recording.store(true, Ordering::Relaxed);
    tokio::time::sleep(s.duration).await;
    tasks.check().await?;
    recording.store(false, Ordering::Relaxed);
    stop.store(true, Ordering::Relaxed);
    let mut v = std::mem::take(
        &mut *samples
            .lock()
            .map_err(|_| LoadError::Protocol("poisoned".into()))?,
    );
    if v.is_empty() {
        return Err(LoadError::Protocol(
            "no message arrived in the latency scenario".into(),
        ));
    }
    v.sort_unstable();
    let pct = |p: f64| v[((v.len() - 1) as f64 * p).round() as usize] as f64 / 1000.0;
    Ok(Latency {
        p50_us: pct(0.50),
        p99_us: pct(0.99),
        max_us: pct(1.0),
        samples: v.len(),
        sent: sent.load(Ordering::Relaxed),
    })
}

/// Connect, CONNACK, DISCONNECT, close: up to `s.connects` times or `s.duration`, with
/// `CONNECT_CONCURRENCY` handshakes at a time.
pub async fn connect_rate(addr: SocketAddr, s: &Settings) -> Result<ConnectRate, LoadError> {
    let run = run_id();
    let opts = options(s);
    let next = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicU64::new(0));
    let limit = s.connects as u64;
    let start = Instant::now();
    let deadline = start + s.duration;
    let mut handles = Vec::new();
    for _ in 0..CONNECT_CONCURRENCY {
        let (next, done, run) = (next.clone(), done.clone(), run.clone());
        let creds = s.credentials.clone();
        handles.push(AbortOnDrop(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= limit || Instant::now() > deadline {
                    return Ok::<(), LoadError>(());
                }
                // The storm cycles over the credentials (a fleet logging in).
                let login = creds.as_ref().map(|c| &c[i as usize % c.len()]);
                let login = login.map(|l| (l.username.as_str(), l.password.as_slice()));
                let c = Client::connect_as(addr, &format!("{run}-c{i}"), opts, login).await?;
                c.disconnect().await?;
                done.fetch_add(1, Ordering::Relaxed);
            }
        })));
    }
    for h in handles.iter_mut() {
        (&mut h.0)
            .await
            .map_err(|e| LoadError::Protocol(format!("connect task failed: {e}")))??;
    }
    let n = done.load(Ordering::Relaxed);
    Ok(ConnectRate {
        per_s: n as f64 / start.elapsed().as_secs_f64(),
        connections: n,
    })
}

/// How long the idle scenario waits after its clients subscribed before it reads RSS.
const SUBSCRIBED_SETTLE: Duration = Duration::from_secs(8);

/// Opens `s.idle` connections and holds them; `rss` reads the broker's resident memory (KiB)
/// before, after, and once every client has subscribed to its own topic. Needs one descriptor
/// per connection here and in the broker.
pub async fn idle_connections(
    addr: SocketAddr,
    s: &Settings,
    rss: impl Fn() -> Result<u64, LoadError>,
) -> Result<Idle, LoadError> {
    let n = s.idle;
    let limit = super::process::raise_nofile(n as u64 + 1024)?;
    if limit < n as u64 + 256 {
        return Err(LoadError::Skipped(format!(
            "{n} idle connections need about {} file descriptors, RLIMIT_NOFILE allows {limit}",
            n + 256
        )));
    }
    let run = run_id();
    let opts = options(s);
    let before = rss()?;
    let next = Arc::new(AtomicU64::new(0));
    let mut handles = Vec::new();
    for _ in 0..CONNECT_CONCURRENCY {
        let (next, run) = (next.clone(), run.clone());
        handles.push(AbortOnDrop(tokio::spawn(async move {
            let mut held = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n as u64 {
                    return Ok::<_, LoadError>(held);
                }
                held.push(Client::connect(addr, &format!("{run}-i{i}"), opts).await?);
            }
        })));
    }
    let mut held = Vec::with_capacity(n);
    for h in handles.iter_mut() {
        held.extend(
            (&mut h.0)
                .await
                .map_err(|e| LoadError::Protocol(format!("connect task failed: {e}")))??,
        );
    }
    // Let the broker finish per-connection setup before reading its memory.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after = rss()?;
    let count = held.len();
    // Then as devices that each listen on their own command topic. Read once the broker has
    // settled again: mqsec parks a connection its SUBSCRIBE woke after 1-2 s without traffic and
    // returns the freed pages about a second later (measured: flat at 1-4 s, settled at 5 s).
    for (i, c) in held.iter_mut().enumerate() {
        c.subscribe(&format!("{run}/dev/{i}/cmd"), QoS::AtLeastOnce)
            .await?;
    }
    tokio::time::sleep(SUBSCRIBED_SETTLE).await;
    let subscribed = rss()?;
    drop(held);
    let per = |rss: u64| rss.saturating_sub(before) as f64 / count.max(1) as f64;
    Ok(Idle {
        connections: count,
        rss_before_kib: before,
        rss_after_kib: after,
        per_connection_kib: per(after),
        rss_subscribed_kib: subscribed,
        per_subscribed_connection_kib: per(subscribed),
    })
}
