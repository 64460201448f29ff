//! mqsec vs Mosquitto on this machine: `cargo bench --bench broker [-- --quick] [--json]
//! [--only mqsec|mosquitto] [--scenario qos0,qos1,qos1-persistent,fanout,latency,connect,idle]
//! [--mqsec-bin PATH]`.
//!
//! The harness is the `mqsec-loadgen` tool crate (a dev-dependency: the `mqsec` binary never links
//! it). This entry point lives here because only a bench of the mqsec package gets cargo to build
//! the `mqsec` binary it measures, with the bench profile, and to say where: `CARGO_BIN_EXE_mqsec`.

fn main() -> std::process::ExitCode {
    mqsec_loadgen::compare_cli::main(env!("CARGO_BIN_EXE_mqsec").into())
}
