//! The command line of the mqsec-vs-Mosquitto comparison: `cargo bench --bench broker [-- --quick]
//! [--json] [--only mqsec|mosquitto] [--scenario qos0,qos1,qos1-persistent,fanout,latency,connect,connect-auth,idle]
//! [--mqsec-bin PATH]`.
//!
//! The bench target itself sits in the mqsec package (`benches/broker.rs`) and only calls [`main`]:
//! only a bench of that package gets cargo to build the `mqsec` binary with the bench (release)
//! profile and hand over its path as `CARGO_BIN_EXE_mqsec`; `mosquitto` comes from PATH. The
//! brokers run one after the other, each on a fresh process and a free loopback port, never both
//! under load.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::compare::{run_all, Scenario};
use crate::process::{raise_nofile, BrokerKind};
use crate::Settings;

const USAGE: &str = "usage: cargo bench --bench broker -- [--quick] [--json] \
[--only mqsec|mosquitto] [--scenario qos0,qos1,qos1-persistent,fanout,latency,connect,connect-auth,idle] [--mqsec-bin PATH]";

/// Runs the comparison as the process's command line asks, against `mqsec_binary` unless
/// `--mqsec-bin` names another build.
pub fn main(mqsec_binary: PathBuf) -> ExitCode {
    let mut settings = Settings::full();
    let mut json = false;
    let mut kinds = vec![
        BrokerKind::Mqsec {
            binary: mqsec_binary,
        },
        BrokerKind::Mosquitto,
    ];
    let mut scenarios = Scenario::ALL.to_vec();
    // `cargo test --all-targets` (scripts/test) runs bench targets too, without `--bench`: a
    // minutes-long comparison has no place there.
    if !std::env::args().any(|a| a == "--bench") {
        println!("broker comparison: run it with `cargo bench --bench broker`");
        return ExitCode::SUCCESS;
    }
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            // cargo bench passes --bench to every bench binary.
            "--bench" => {}
            "--quick" => settings = Settings::quick(),
            // Another mqsec build (e.g. a branch under review) instead of this tree's.
            "--mqsec-bin" => match args.next() {
                Some(path) => {
                    for k in kinds.iter_mut() {
                        if let BrokerKind::Mqsec { binary } = k {
                            *binary = path.clone().into();
                        }
                    }
                }
                None => {
                    eprintln!("--mqsec-bin needs a path\n{USAGE}");
                    return ExitCode::from(2);
                }
            },
            "--json" => json = true,
            "--only" => match args.next().as_deref() {
                Some("mqsec") => kinds.retain(|k| k.name() == "mqsec"),
                Some("mosquitto") => kinds.retain(|k| k.name() == "mosquitto"),
                other => {
                    eprintln!("--only takes mqsec or mosquitto, not {other:?}\n{USAGE}");
                    return ExitCode::from(2);
                }
            },
            "--scenario" => {
                let list = args.next().unwrap_or_default();
                let parsed: Option<Vec<Scenario>> = list.split(',').map(Scenario::parse).collect();
                match parsed {
                    Some(v) if !v.is_empty() => scenarios = v,
                    _ => {
                        eprintln!("--scenario: unknown name in {list:?}\n{USAGE}");
                        return ExitCode::from(2);
                    }
                }
            }
            // Filters cargo may forward (e.g. `cargo bench broker`) select nothing here.
            other if !other.starts_with('-') => {}
            other => {
                eprintln!("unknown argument {other}\n{USAGE}");
                return ExitCode::from(2);
            }
        }
    }
    // Before any broker starts: the brokers inherit the raised descriptor limit.
    if let Err(e) = raise_nofile(settings.idle as u64 + 1024) {
        eprintln!("note: could not raise RLIMIT_NOFILE: {e}");
    }
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("tokio runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let report = rt.block_on(run_all(&kinds, &scenarios, &settings));
    if json {
        match serde_json::to_string_pretty(&report) {
            Ok(s) => println!("{s}"),
            Err(e) => {
                eprintln!("json: {e}");
                return ExitCode::from(2);
            }
        }
    } else {
        print!("{}", report.to_table());
    }
    ExitCode::SUCCESS
}
