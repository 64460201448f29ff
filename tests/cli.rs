//! The command-line contract every subcommand shares: version, help with a worked example, exit
//! codes, one-line usage errors.

use std::process::Command;

use clap::CommandFactory;

fn mqsec(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_mqsec"))
        .args(args)
        .output()
        .expect("run mqsec")
}

#[test]
fn version_and_help_exit_zero() {
    let out = mqsec(&["--version"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("mqsec "));
    let out = mqsec(&["--help"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("Exit codes"));
}

#[test]
fn usage_errors_are_one_line_with_exit_2() {
    for args in [
        &["no-such-command"][..],
        &["passwd", "ad"][..],
        &["gen-ca", "--key-type", "dsa", "--out", "/nonexistent/x"][..],
        &["passwd", "add"][..],
    ] {
        let out = mqsec(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err}");
        assert!(err.starts_with("mqsec: error: "), "{args:?}: {err}");
    }
}

/// Every leaf subcommand documents a worked example and the exit codes in its help.
#[test]
fn every_subcommand_has_an_example_and_exit_codes() {
    fn walk(cmd: &clap::Command, path: String, missing: &mut Vec<String>) {
        let subs: Vec<_> = cmd
            .get_subcommands()
            .filter(|s| s.get_name() != "help")
            .collect();
        if subs.is_empty() {
            let help = cmd
                .get_after_help()
                .or(cmd.get_after_long_help())
                .map(|h| h.to_string())
                .unwrap_or_default();
            if !help.contains("Exit codes") || !help.to_lowercase().contains("example") {
                missing.push(path.clone());
            }
        }
        for s in subs {
            walk(s, format!("{path} {}", s.get_name()), missing);
        }
    }
    let mut missing = Vec::new();
    let root = mqsec::cli::Cli::command();
    for s in root.get_subcommands() {
        walk(s, format!("mqsec {}", s.get_name()), &mut missing);
    }
    assert!(
        missing.is_empty(),
        "no example/exit codes in help: {missing:?}"
    );
}
