//! `mqsec auth-server` behind a real RabbitMQ cluster: decisions per second and latency under a
//! connect storm, and the authorization cost per PUBLISH against RabbitMQ's internal backend.
//! `cargo bench --bench auth_server [-- --quick] [--json]`; needs Debian's rabbitmq-server
//! (scripts/test installs it). The harness is `mqsec_loadgen::auth_bench`; this entry point is a
//! bench of the mqsec package so cargo builds the measured binary with the bench profile.

fn main() -> std::process::ExitCode {
    mqsec_loadgen::auth_bench::main(env!("CARGO_BIN_EXE_mqsec").into())
}
