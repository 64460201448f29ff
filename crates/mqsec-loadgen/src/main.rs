//! Ad-hoc load against any MQTT broker:
//! `cargo run --release -p mqsec-loadgen -- --addr 127.0.0.1:1883 [--scenario qos0,latency]
//! [--quick] [--duration SECS] [--v5] [--pid BROKER_PID] [--credentials FILE]`.
//!
//! `--credentials FILE` (`USERNAME:PASSWORD` lines; a password may be an access token) makes
//! the connect scenario a login storm: each CONNECT takes the next line in turn.
//!
//! Prints one JSON line per scenario. `--pid` (the broker's process id) adds the broker's CPU time
//! per message and enables the idle-connections scenario (VmRSS). The side-by-side comparison
//! is `cargo bench --bench broker`.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use mqsec_codec::{ProtocolVersion, QoS};
use mqsec_loadgen::compare::Scenario;
use mqsec_loadgen::process::{raise_nofile, rss_kib};
use mqsec_loadgen::{scenario, LoadError, Settings};

const USAGE: &str =
    "usage: mqsec-loadgen --addr HOST:PORT [--scenario qos0,qos1,fanout,latency,connect,idle] \
[--quick] [--duration SECS] [--v5] [--pid BROKER_PID] [--credentials FILE]";

async fn run(
    addr: SocketAddr,
    sc: Scenario,
    s: &Settings,
    pid: Option<u32>,
) -> Result<String, LoadError> {
    let json = |v: serde_json::Value| v.to_string();
    Ok(match sc {
        Scenario::Qos0 => {
            json(serde_json::json!({"qos0": scenario::throughput(addr, QoS::AtMostOnce, s).await?}))
        }
        Scenario::Qos1 => json(
            serde_json::json!({"qos1": scenario::throughput(addr, QoS::AtLeastOnce, s).await?}),
        ),
        // Against a broker already running: whatever persistence it was started with.
        Scenario::Qos1Persistent => json(serde_json::json!({
            "qos1-persistent": scenario::throughput_persistent(addr, QoS::AtLeastOnce, s).await?
        })),
        Scenario::Fanout => json(serde_json::json!({"fanout": scenario::fanout(addr, s).await?})),
        Scenario::Latency => {
            json(serde_json::json!({"latency": scenario::latency(addr, s).await?}))
        }
        Scenario::Connect => {
            json(serde_json::json!({"connect": scenario::connect_rate(addr, s).await?}))
        }
        // It writes the broker's certificate and password file itself.
        Scenario::ConnectAuth => {
            return Err(LoadError::Skipped(
                "connect-auth starts its own brokers: `cargo bench --bench broker -- --only connect-auth`".into(),
            ))
        }
        Scenario::Idle => {
            let pid =
                pid.ok_or_else(|| LoadError::Skipped("idle needs --pid BROKER_PID".into()))?;
            json(
                serde_json::json!({"idle": scenario::idle_connections(addr, s, || rss_kib(pid)).await?}),
            )
        }
    })
}

fn main() -> ExitCode {
    let mut settings = Settings::full();
    let mut addr: Option<SocketAddr> = None;
    let mut pid = None;
    let mut duration = None;
    let mut scenarios = vec![
        Scenario::Qos0,
        Scenario::Qos1,
        Scenario::Fanout,
        Scenario::Latency,
        Scenario::Connect,
    ];
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = |name: &str| args.next().ok_or_else(|| format!("{name} needs a value"));
        let step = match a.as_str() {
            "--addr" => value("--addr").and_then(|v| {
                v.parse()
                    .map(|x| addr = Some(x))
                    .map_err(|e| format!("--addr {v}: {e}"))
            }),
            "--pid" => value("--pid").and_then(|v| {
                v.parse()
                    .map(|x| pid = Some(x))
                    .map_err(|e| format!("--pid {v}: {e}"))
            }),
            "--duration" => value("--duration").and_then(|v| {
                v.parse::<f64>()
                    .ok()
                    .filter(|x| *x > 0.0 && *x < 3600.0)
                    .map(|x| duration = Some(Duration::from_secs_f64(x)))
                    .ok_or_else(|| format!("--duration {v}: seconds, more than 0"))
            }),
            "--scenario" => value("--scenario").and_then(|v| {
                v.split(',')
                    .map(Scenario::parse)
                    .collect::<Option<Vec<_>>>()
                    .map(|x| scenarios = x)
                    .ok_or_else(|| format!("--scenario: unknown name in {v}"))
            }),
            "--quick" => {
                let creds = settings.credentials.take();
                settings = Settings::quick();
                settings.credentials = creds;
                Ok(())
            }
            "--credentials" => value("--credentials").and_then(|v| {
                std::fs::read_to_string(&v)
                    .map_err(|e| format!("--credentials {v}: {e}"))
                    .and_then(|t| {
                        mqsec_loadgen::Credential::parse_lines(&t)
                            .map_err(|e| format!("--credentials {v}: {e}"))
                    })
                    .map(|c| settings.credentials = Some(std::sync::Arc::new(c)))
            }),
            "--v5" => {
                settings.version = ProtocolVersion::V5;
                Ok(())
            }
            other => Err(format!("unknown argument {other}")),
        };
        if let Err(e) = step {
            eprintln!("{e}\n{USAGE}");
            return ExitCode::from(2);
        }
    }
    let Some(addr) = addr else {
        eprintln!("--addr is required\n{USAGE}");
        return ExitCode::from(2);
    };
    if let Some(d) = duration {
        settings.duration = d;
    }
    // With the broker's pid, throughput results include its CPU time per message.
    settings.broker_pid = pid;
    if scenarios.contains(&Scenario::Idle) {
        let _ = raise_nofile(settings.idle as u64 + 1024);
    }
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("tokio runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let mut failed = false;
    for sc in scenarios {
        match rt.block_on(run(addr, sc, &settings, pid)) {
            Ok(line) => println!("{line}"),
            Err(e) => {
                eprintln!("{}: {e}", sc.name());
                failed = true;
            }
        }
    }
    if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}
