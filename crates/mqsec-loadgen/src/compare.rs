//! Side-by-side runs: each scenario against each broker in turn, on a fresh broker process, so
//! two brokers are never under load at once and one scenario's leftovers never skew the next.

use std::time::Duration;

use super::process::{BrokerKind, BrokerProcess};
use super::report::{Better, Report};
use super::scenario;
use super::{LoadError, Settings};
use mqsec_codec::QoS;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    Qos0,
    Qos1,
    Fanout,
    Latency,
    Connect,
    Idle,
    /// QoS 1 to subscribers that keep their sessions, with persistence off and on.
    Qos1Persistent,
    /// Password connect storms (TLS, then plain TCP): every user's first login, then repeated
    /// logins.
    ConnectAuth,
}

impl Scenario {
    pub const ALL: [Scenario; 8] = [
        Scenario::Qos0,
        Scenario::Qos1,
        Scenario::Qos1Persistent,
        Scenario::Fanout,
        Scenario::Latency,
        Scenario::Connect,
        Scenario::ConnectAuth,
        Scenario::Idle,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Scenario::Qos0 => "qos0",
            Scenario::Qos1 => "qos1",
            Scenario::Fanout => "fanout",
            Scenario::Latency => "latency",
            Scenario::Connect => "connect",
            Scenario::Idle => "idle",
            Scenario::Qos1Persistent => "qos1-persistent",
            Scenario::ConnectAuth => "connect-auth",
        }
    }

    pub fn parse(s: &str) -> Option<Scenario> {
        Scenario::ALL.into_iter().find(|x| x.name() == s)
    }
}

/// Upper bound for one scenario on one broker, so a wedged broker cannot hang the run.
fn scenario_limit(s: &Settings) -> Duration {
    s.warmup + s.duration * 2 + Duration::from_secs(60)
}

async fn within<T>(
    limit: Duration,
    f: impl std::future::Future<Output = Result<T, LoadError>>,
) -> Result<T, LoadError> {
    tokio::time::timeout(limit, f)
        .await
        .map_err(|_| LoadError::Timeout("the scenario to finish"))?
}

/// Runs `scenario` against one fresh broker and records its figures in `report`.
pub async fn run_one(
    kind: &BrokerKind,
    scenario: Scenario,
    s: &Settings,
    report: &mut Report,
) -> Result<(), LoadError> {
    if scenario == Scenario::Qos1Persistent {
        return persistent_qos1(kind, s, report).await;
    }
    if scenario == Scenario::ConnectAuth {
        return connect_auth(kind, s, report).await;
    }
    let mut broker = BrokerProcess::start(kind, "")?;
    let s = &Settings {
        broker_pid: Some(broker.pid()),
        ..s.clone()
    };
    let addr = broker.addr();
    let who = kind.name();
    let limit = scenario_limit(s);
    let pairs = format!("{} -> {}", s.pairs, s.pairs);
    let me = std::process::id();
    let cpu = |pid| super::process::cpu_seconds(pid).unwrap_or(f64::NAN);
    let (broker_cpu0, own_cpu0) = (cpu(broker.pid()), cpu(me));
    let cpu_note = |label: &str| {
        format!(
            "{who} {label}: CPU seconds used, broker {:.1}, load generator {:.1}",
            cpu(broker.pid()) - broker_cpu0,
            cpu(me) - own_cpu0
        )
    };
    match scenario {
        Scenario::Qos0 | Scenario::Qos1 => {
            let (qos, label) = match scenario {
                Scenario::Qos0 => (QoS::AtMostOnce, "QoS 0"),
                _ => (QoS::AtLeastOnce, "QoS 1"),
            };
            let t = within(limit, scenario::throughput(addr, qos, s)).await?;
            report.set(
                &format!("{label} throughput, {pairs}, {} B", s.payload),
                "msg/s delivered",
                Better::Higher,
                who,
                Some(t.delivered_per_s),
            );
            report.set(
                &format!("{label} broker CPU per delivered message"),
                "µs",
                Better::Lower,
                who,
                t.broker_cpu_us_per_msg,
            );
            report.note(cpu_note(label));
            if t.stalls > 0 {
                report.note(format!(
                    "{who} {label}: publishers gave up waiting for subscribers {} times (messages dropped or late by more than 0.5 s)",
                    t.stalls
                ));
            }
        }
        Scenario::Fanout => {
            let t = within(limit, scenario::fanout(addr, s)).await?;
            report.set(
                &format!("fan-out 1 -> {}, QoS 0", s.fanout),
                "deliveries/s",
                Better::Higher,
                who,
                Some(t.delivered_per_s),
            );
            report.set(
                "fan-out broker CPU per delivery",
                "µs",
                Better::Lower,
                who,
                t.broker_cpu_us_per_msg,
            );
            report.note(cpu_note("fan-out"));
            if t.stalls > 0 {
                report.note(format!(
                    "{who} fan-out: the publisher gave up waiting for subscribers {} times (messages dropped or late by more than 0.5 s)",
                    t.stalls
                ));
            }
        }
        Scenario::Latency => {
            let l = within(limit, scenario::latency(addr, s)).await?;
            let label = format!("{} msg/s, QoS 0", s.latency_rate);
            report.set(
                &format!("latency p50 ({label})"),
                "µs",
                Better::Lower,
                who,
                Some(l.p50_us),
            );
            report.set(
                &format!("latency p99 ({label})"),
                "µs",
                Better::Lower,
                who,
                Some(l.p99_us),
            );
            if l.samples as u64 + 100 < l.sent {
                report.note(format!(
                    "{who} latency: {} sent, {} measured",
                    l.sent, l.samples
                ));
            }
        }
        Scenario::Connect => {
            let c = within(limit, scenario::connect_rate(addr, s)).await?;
            report.set(
                "connect rate (CONNECT/CONNACK/DISCONNECT)",
                "conn/s",
                Better::Higher,
                who,
                Some(c.per_s),
            );
        }
        // Run their own brokers: returned above.
        Scenario::Qos1Persistent | Scenario::ConnectAuth => {}
        Scenario::Idle => {
            let pid = broker.pid();
            let rss = move || super::process::rss_kib(pid);
            let i = within(limit, scenario::idle_connections(addr, s, rss)).await?;
            report.set(
                &format!("RSS per idle connection ({} connections)", i.connections),
                "KiB",
                Better::Lower,
                who,
                Some(i.per_connection_kib),
            );
            report.set(
                &format!(
                    "RSS per idle connection with its own subscription ({} connections)",
                    i.connections
                ),
                "KiB",
                Better::Lower,
                who,
                Some(i.per_subscribed_connection_kib),
            );
            report.note(format!(
                "{who} idle: VmRSS {} KiB before, {} KiB with {} connections, {} KiB once each subscribed to its own RUN/dev/N/cmd",
                i.rss_before_kib, i.rss_after_kib, i.connections, i.rss_subscribed_kib
            ));
        }
    }
    broker.check_alive()
}

/// The password storm on a broker whose only listener has a password file, over TLS and then
/// plain TCP: first every user's first login (a cold verification cache: one hash check each),
/// then `s.connects` logins cycling over the same users (a fleet reconnecting).
async fn connect_auth(
    kind: &BrokerKind,
    s: &Settings,
    report: &mut Report,
) -> Result<(), LoadError> {
    use super::secure::{self, Fixture, USERS};
    let who = kind.name();
    let fixture = Fixture::create()?;
    let limit = scenario_limit(s);
    for tls in [true, false] {
        let mut broker = BrokerProcess::start_with_listener(kind, &fixture.listener_conf(tls))?;
        let addr = broker.addr();
        let cold = within(
            limit,
            secure::storm(addr, &fixture, tls, s.version, 0, USERS),
        )
        .await?;
        let warm = within(
            limit,
            secure::storm(addr, &fixture, tls, s.version, 0, s.connects),
        )
        .await?;
        let transport = if tls {
            "TLS + password"
        } else {
            "password, no TLS"
        };
        for (label, r) in [
            ("first login of each user", &cold),
            ("repeated logins", &warm),
        ] {
            report.set(
                &format!("{transport} connect storm, {label}"),
                "conn/s",
                Better::Higher,
                who,
                Some(r.per_s),
            );
            report.set(
                &format!("{transport} connect storm, {label}: p99 CONNACK latency"),
                "ms",
                Better::Lower,
                who,
                Some(r.p99_ms),
            );
        }
        report.note(format!(
            "{who} {transport} storm: p50 {:.1} ms first logins, {:.1} ms repeated",
            cold.p50_ms, warm.p50_ms
        ));
        broker.check_alive()?;
    }
    if matches!(kind, BrokerKind::Mqsec { .. }) {
        report.note(format!("password storms: {}", secure::describe()));
    }
    Ok(())
}

/// QoS 1 to subscribers with persistent sessions on a broker without persistence, then on one
/// with `persistence true` (each broker's defaults otherwise: mqsec syncs before acknowledging,
/// Mosquitto writes a snapshot every `autosave_interval`). A fresh broker and store for each.
async fn persistent_qos1(
    kind: &BrokerKind,
    s: &Settings,
    report: &mut Report,
) -> Result<(), LoadError> {
    let who = kind.name();
    let pairs = format!("{} -> {}", s.pairs, s.pairs);
    for durable in [false, true] {
        let dir = tempfile::tempdir()?;
        let conf = if durable {
            // Mosquitto's persistence_location is a path prefix: keep the trailing slash.
            format!(
                "persistence true\npersistence_location {}/\n",
                dir.path().display()
            )
        } else {
            String::new()
        };
        let mut broker = BrokerProcess::start(kind, &conf)?;
        let s = &Settings {
            broker_pid: Some(broker.pid()),
            ..s.clone()
        };
        let t = within(
            scenario_limit(s),
            scenario::throughput_persistent(broker.addr(), QoS::AtLeastOnce, s),
        )
        .await?;
        let name = match durable {
            false => format!(
                "QoS 1 throughput, persistent subscribers, persistence off, {pairs}, {} B",
                s.payload
            ),
            true => format!(
                "QoS 1 throughput, persistent subscribers, persistence on, {pairs}, {} B",
                s.payload
            ),
        };
        report.set(
            &name,
            "msg/s delivered",
            Better::Higher,
            who,
            Some(t.delivered_per_s),
        );
        if t.stalls > 0 {
            report.note(format!(
                "{who} {name}: publishers gave up waiting for subscribers {} times",
                t.stalls
            ));
        }
        broker.check_alive()?;
    }
    Ok(())
}

/// Every scenario against every broker (in that order), failures noted rather than fatal.
pub async fn run_all(kinds: &[BrokerKind], scenarios: &[Scenario], s: &Settings) -> Report {
    let mut report = Report::default();
    for &sc in scenarios {
        if sc == Scenario::Latency && s.latency_rounds > 1 {
            latency_rounds(kinds, s, &mut report).await;
            continue;
        }
        for kind in kinds {
            eprintln!("running {} against {}", sc.name(), kind.name());
            if let Err(e) = run_one(kind, sc, s, &mut report).await {
                report.note(format!("{} {}: {e}", kind.name(), sc.name()));
            }
        }
    }
    report
}

fn median(v: &mut [f64]) -> Option<f64> {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied()
}

/// The latency scenario in alternating rounds (mqsec, Mosquitto, mqsec, ...), medians reported.
async fn latency_rounds(kinds: &[BrokerKind], s: &Settings, report: &mut Report) {
    let rounds = s.latency_rounds;
    let round = Settings {
        duration: s.duration / rounds,
        ..s.clone()
    };
    // (figure name, unit, better, broker) -> one value per round.
    let mut values: Vec<(String, String, Better, &'static str, Vec<f64>)> = Vec::new();
    for r in 1..=rounds {
        for kind in kinds {
            eprintln!("running latency round {r}/{rounds} against {}", kind.name());
            let mut one = Report::default();
            if let Err(e) = run_one(kind, Scenario::Latency, &round, &mut one).await {
                report.note(format!("{} latency round {r}: {e}", kind.name()));
                continue;
            }
            report.notes.append(&mut one.notes);
            for f in one.figures {
                let Some(v) = f.mqsec.or(f.mosquitto) else {
                    continue;
                };
                let who = kind.name();
                match values.iter_mut().find(|x| x.0 == f.name && x.3 == who) {
                    Some(x) => x.4.push(v),
                    None => values.push((f.name, f.unit, f.better, who, vec![v])),
                }
            }
        }
    }
    for (name, unit, better, who, mut v) in values {
        let listed: Vec<String> = v.iter().map(|x| format!("{x:.0}")).collect();
        let name = format!("{name}, median of {rounds}");
        report.set(&name, &unit, better, who, median(&mut v));
        if name.contains("p99") {
            report.note(format!(
                "{who} latency p99 per round (µs): {}",
                listed.join(", ")
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_rounds_and_scenario_names() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&mut [5.0]), Some(5.0));
        assert_eq!(median(&mut []), None);
        for sc in Scenario::ALL {
            assert_eq!(Scenario::parse(sc.name()), Some(sc));
        }
        assert_eq!(Scenario::parse("qos2"), None);
    }
}
