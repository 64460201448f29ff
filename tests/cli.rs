//! The command-line contract every subcommand shares: version, help with a worked example, exit
//! codes, one-line usage errors.

use std::process::Command;

use clap::CommandFactory;

mod common;

use common::mqsec;

#[test]
fn version_and_help_exit_zero() {
    let out = mqsec(&["--version"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("mqsec "));
    let out = mqsec(&["--help"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("Exit codes"));
}

/// The binary's allocator and its settings are compiled in (Cargo.toml, .cargo/config.toml):
/// with glibc's malloc, or pages kept ten seconds, an idle broker's memory per connection goes
/// back up by a fifth (docs/performance.md).
#[test]
fn jemalloc_gives_freed_pages_back_in_the_background() {
    let out = Command::new(common::mqsec_bin())
        .arg("--version")
        .env("_RJEM_MALLOC_CONF", "stats_print:true")
        .output()
        .unwrap();
    assert!(out.status.success());
    let stats = String::from_utf8_lossy(&out.stderr);
    assert!(stats.contains("opt.background_thread: true"), "{stats}");
    assert!(stats.contains("opt.dirty_decay_ms: 1000"), "{stats}");
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
    // The one line still names what is missing.
    let out = mqsec(&["gen-client-cert", "--ca", "/nonexistent"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(
        err.contains("not provided: --out <DIR>, --name <CN>"),
        "{err}"
    );
    let out = mqsec(&["passwd", "add"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("<FILE>") && err.contains("<USER>"), "{err}");
    let out = mqsec(&["acl-check", "acl.conf", "-u", "a", "-a", "read"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("<TOPIC>"), "{err}");
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

/// The README's quick start, run as written: a newcomer's first commands must work.
#[test]
fn readme_quick_start_runs_as_written() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let section = readme
        .split("\n## Quick start\n")
        .nth(1)
        .expect("README has a quick start")
        .split("\n## ")
        .next()
        .unwrap();
    let script = section
        .split("```sh\n")
        .nth(1)
        .and_then(|s| s.split("\n```").next())
        .expect("the quick start has a sh block");
    let bin_dir = std::path::Path::new(env!("CARGO_BIN_EXE_mqsec"))
        .parent()
        .unwrap()
        .to_owned();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new("bash")
        .args(["-c", script])
        .current_dir(dir.path())
        .env("PATH", path)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run bash");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.is_empty(), "{stderr}");
    for expected in [
        "added sensor_001 to passwd.txt",
        "OK: password matches for sensor_001",
        "argon2id",
        "ALLOW write sensors/001/temp  acl.conf:2",
        "DENY  write sensors/002/temp  default deny",
        "acl.conf: 0 error(s), 0 warning(s)",
    ] {
        assert!(
            stdout.contains(expected),
            "missing {expected:?} in:\n{stdout}"
        );
    }
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(dir.path().join("passwd.txt"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
}
