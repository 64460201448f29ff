//! `mqsec passwd` driven as a user drives it: the built binary, passwords on stdin, files on disk,
//! and files made by the real `mosquitto_passwd` and read by a real `mosquitto`.

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use assert_cmd::Command;
use predicates::prelude::*;

mod common;

use common::{mosquitto_passwd, mqsec_bin, ChildGuard, Mosquitto};

const TIMEOUT: Duration = Duration::from_secs(30);
/// Cheap argon2 cost so tests stay fast; one test checks the real defaults.
const WEAK: [&str; 7] = [
    "--memory-kib",
    "64",
    "--iterations",
    "1",
    "--parallelism",
    "1",
    "--allow-weak-params",
];

fn mqsec() -> Command {
    let mut c = Command::new(mqsec_bin());
    c.timeout(TIMEOUT);
    c
}

fn add(file: &Path, user: &str, password: &str) -> assert_cmd::assert::Assert {
    mqsec()
        .args(["passwd", "add"])
        .arg(file)
        .arg(user)
        .args(WEAK)
        .write_stdin(format!("{password}\n"))
        .assert()
}

fn verify(file: &Path, user: &str, password: &str) -> assert_cmd::assert::Assert {
    mqsec()
        .args(["passwd", "verify"])
        .arg(file)
        .arg(user)
        .write_stdin(format!("{password}\n"))
        .assert()
}

fn mode(p: &Path) -> u32 {
    fs::metadata(p).unwrap().permissions().mode() & 0o777
}

#[test]
fn add_creates_0600_file_and_verify_answers_with_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("passwd");
    add(&f, "alice", "correct horse")
        .success()
        .stdout(predicate::str::contains("added alice"));
    assert_eq!(mode(&f), 0o600);
    let text = fs::read_to_string(&f).unwrap();
    assert!(
        text.starts_with("alice:$argon2id$v=19$m=64,t=1,p=1$"),
        "{text}"
    );
    assert!(!text.contains("correct horse"));

    verify(&f, "alice", "correct horse")
        .code(0)
        .stdout(predicate::str::contains("OK"));
    // A mismatch and an unknown user look the same.
    let wrong = verify(&f, "alice", "wrong")
        .code(1)
        .get_output()
        .stdout
        .clone();
    let unknown = verify(&f, "mallory", "correct horse")
        .code(1)
        .get_output()
        .stdout
        .clone();
    assert_eq!(wrong, unknown);

    // Replacing a password keeps one line for the user.
    add(&f, "alice", "new pass")
        .success()
        .stdout(predicate::str::contains("updated alice"));
    verify(&f, "alice", "new pass").code(0);
    verify(&f, "alice", "correct horse").code(1);
    assert_eq!(fs::read_to_string(&f).unwrap().lines().count(), 1);
}

#[test]
fn default_cost_meets_the_owasp_minimum_and_weak_cost_needs_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("passwd");
    mqsec()
        .args(["passwd", "add"])
        .arg(&f)
        .arg("u")
        .write_stdin("pw\n")
        .assert()
        .success();
    let text = fs::read_to_string(&f).unwrap();
    let params = text.split('$').nth(3).expect("PHC string with parameters");
    let get = |k: &str| -> u32 {
        params
            .split(',')
            .find_map(|kv| kv.strip_prefix(&format!("{k}=")))
            .unwrap()
            .parse()
            .unwrap()
    };
    assert!(
        get("m") >= 19456 && get("t") >= 2 && get("p") >= 1,
        "{text}"
    );
    verify(&f, "u", "pw").code(0);

    mqsec()
        .args(["passwd", "add"])
        .arg(&f)
        .args(["v", "--memory-kib", "1024", "--iterations", "1"])
        .write_stdin("pw\n")
        .assert()
        .code(2)
        .stderr(predicate::str::contains("below the OWASP minimum"));
    assert!(!fs::read_to_string(&f).unwrap().contains("\nv:"));
}

#[test]
fn edits_keep_comments_and_unknown_lines_and_tighten_the_mode() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("passwd");
    let original = "# managed by hand\r\nold:$6$tAN4j5DoJMFOtFYy$8lCB/aATwqr1E8P7MI8w5yH79h+G4HjPK3ZNmrmKaFd5YRz5L8qz1SqGHvTwMsCMuAwRYpK0xYTMzS+z26bVYA==\n\n# trailing note\nnot a user line\n";
    fs::write(&f, original).unwrap();
    fs::set_permissions(&f, fs::Permissions::from_mode(0o644)).unwrap();

    add(&f, "new", "pw").success();
    assert_eq!(mode(&f), 0o600);
    let after_add = fs::read_to_string(&f).unwrap();
    assert!(after_add.starts_with(original), "{after_add}");
    assert!(after_add[original.len()..].starts_with("new:$argon2id$"));

    mqsec()
        .args(["passwd", "delete"])
        .arg(&f)
        .arg("old")
        .assert()
        .success();
    let after_delete = fs::read_to_string(&f).unwrap();
    assert!(after_delete
        .starts_with("# managed by hand\r\n\n# trailing note\nnot a user line\nnew:$argon2id$"));

    // Deleting an absent user: exit 1, the file named, nothing changed.
    mqsec()
        .args(["passwd", "delete"])
        .arg(&f)
        .arg("old")
        .assert()
        .code(1)
        .stderr(predicate::str::contains(format!(
            "{}: no user \"old\"",
            f.display()
        )));
    assert_eq!(fs::read_to_string(&f).unwrap(), after_delete);

    // A missing file is an input error naming it.
    mqsec()
        .args(["passwd", "delete"])
        .arg(dir.path().join("nope"))
        .arg("x")
        .assert()
        .code(2)
        .stderr(predicate::str::contains("nope: cannot read"));
}

#[test]
fn bad_usernames_and_empty_passwords_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("passwd");
    for user in ["", "a:b", "a\nb", "#root", " pad"] {
        add(&f, user, "pw")
            .code(2)
            .stderr(predicate::str::starts_with("mqsec: error: USER"));
    }
    assert!(!f.exists());
    mqsec()
        .args(["passwd", "add"])
        .arg(&f)
        .arg("u")
        .args(WEAK)
        .write_stdin("\n")
        .assert()
        .code(2)
        .stderr(predicate::str::contains("empty password"));
    // Legal but ACL-hostile: added, with a warning.
    add(&f, "site/dev+1", "pw")
        .success()
        .stderr(predicate::str::contains("never match"));
}

#[test]
fn concurrent_adds_never_lose_an_entry() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("passwd");
    fs::write(&f, "# shared\n").unwrap();
    let mut children: Vec<ChildGuard> = (0..8)
        .map(|i| {
            let mut c = std::process::Command::new(mqsec_bin())
                .args(["passwd", "add"])
                .arg(&f)
                .arg(format!("user{i}"))
                .args(WEAK)
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            c.stdin
                .take()
                .unwrap()
                .write_all(format!("pw{i}\n").as_bytes())
                .unwrap();
            ChildGuard::new(c)
        })
        .collect();
    for c in &mut children {
        assert!(c.wait_timeout(TIMEOUT).success());
    }
    let text = fs::read_to_string(&f).unwrap();
    assert!(text.starts_with("# shared\n"));
    for i in 0..8 {
        assert_eq!(
            text.lines()
                .filter(|l| l.starts_with(&format!("user{i}:")))
                .count(),
            1,
            "user{i} in {text}"
        );
    }
    verify(&f, "user5", "pw5").code(0);
    assert_eq!(mode(&f), 0o600);
}

#[test]
fn files_made_by_mosquitto_passwd_verify_list_and_check() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("mosq");
    let fp = f.to_str().unwrap();
    // argv is fine here: a test password for a test file.
    mosquitto_passwd(&["-c", "-b", fp, "pbk", "pass-7"]);
    mosquitto_passwd(&["-H", "sha512", "-b", fp, "sha", "pass-6"]);
    let text = fs::read_to_string(&f).unwrap();
    assert!(
        text.contains("pbk:$7$101$") && text.contains("sha:$6$"),
        "{text}"
    );

    verify(&f, "pbk", "pass-7").code(0);
    verify(&f, "pbk", "pass-6").code(1);
    verify(&f, "sha", "pass-6").code(0);
    verify(&f, "sha", "pass-7").code(1);

    let out = mqsec()
        .args(["passwd", "list", "--json"])
        .arg(&f)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let rows: serde_json::Value = serde_json::from_slice(&out).unwrap();
    let rows = rows.as_array().unwrap();
    assert_eq!(rows[0]["user"], "pbk");
    assert_eq!(rows[0]["scheme"], "pbkdf2-sha512");
    assert!(rows[0]["warning"].as_str().unwrap().contains("legacy $7$"));
    assert_eq!(rows[1]["scheme"], "sha512");
    mqsec()
        .args(["passwd", "list"])
        .arg(&f)
        .assert()
        .success()
        .stdout(
            predicate::str::contains("pbkdf2-sha512($7$)")
                .and(predicate::str::contains("sha512($6$)")),
        );

    // Legacy hashes are warnings: fail by default, pass with --fail-on error.
    mqsec()
        .args(["passwd", "check"])
        .arg(&f)
        .assert()
        .code(1)
        .stdout(predicate::str::contains(format!(
            "{}:1: warning",
            f.display()
        )));
    mqsec()
        .args(["passwd", "check", "--fail-on", "error"])
        .arg(&f)
        .assert()
        .code(0);

    // --upgrade rewrites the matching legacy entry as argon2id; the password still works.
    mqsec()
        .args(["passwd", "verify", "--upgrade"])
        .arg(&f)
        .arg("sha")
        .args(WEAK)
        .write_stdin("pass-6\n")
        .assert()
        .code(0)
        .stdout(predicate::str::contains("upgraded sha from sha512($6$)"));
    let text = fs::read_to_string(&f).unwrap();
    assert!(
        text.contains("sha:$argon2id$") && text.contains("pbk:$7$"),
        "{text}"
    );
    verify(&f, "sha", "pass-6").code(0);
}

#[test]
fn check_reports_each_problem_with_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("passwd");
    add(&f, "ok", "pw").success();
    let good_line = fs::read_to_string(&f).unwrap();
    mqsec()
        .args(["passwd", "check", "--fail-on", "error"])
        .arg(&f)
        .assert()
        .code(0);
    let mut text = good_line.clone();
    text.push_str("nocolon\nplain:secret\n");
    text.push_str(&good_line);
    text.push_str("a+b:$6$tAN4j5DoJMFOtFYy$8lCB/aATwqr1E8P7MI8w5yH79h+G4HjPK3ZNmrmKaFd5YRz5L8qz1SqGHvTwMsCMuAwRYpK0xYTMzS+z26bVYA==\n");
    text.push_str("x:$2y$10$abc\n");
    fs::write(&f, &text).unwrap();
    fs::set_permissions(&f, fs::Permissions::from_mode(0o640)).unwrap();
    let name = f.display().to_string();
    let out = mqsec()
        .args(["passwd", "check"])
        .arg(&f)
        .assert()
        .code(1)
        .get_output()
        .stdout
        .clone();
    let out = String::from_utf8(out).unwrap();
    for expected in [
        format!("{name}: warning: file mode 0640"),
        format!("{name}:2: error: malformed line: expected USER:HASH"),
        format!("{name}:3: error: user \"plain\": clear-text password"),
        format!("{name}:4: error: duplicate user \"ok\" (first at line 1"),
        format!("{name}:5: warning: user \"a+b\" contains '+'"),
        format!("{name}:5: warning: user \"a+b\": legacy $6$"),
        format!("{name}:6: error: user \"x\": unknown hash scheme \"$2y$\""),
    ] {
        assert!(out.contains(&expected), "missing {expected:?} in\n{out}");
    }
    // Secrets never appear in the report.
    assert!(!out.contains("secret"));
    let json = mqsec()
        .args(["passwd", "check", "--json"])
        .arg(&f)
        .assert()
        .code(1)
        .get_output()
        .stdout
        .clone();
    let v: serde_json::Value = serde_json::from_slice(&json).unwrap();
    assert_eq!(v["users"], 4);
    // The seven above, plus a below-OWASP warning for each of the two test-cost "ok" lines.
    assert_eq!(v["findings"].as_array().unwrap().len(), 9);
}

#[test]
fn import_hashes_a_plaintext_file_and_refuses_to_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    let plain = dir.path().join("users.txt");
    let out = dir.path().join("passwd");
    fs::write(
        &plain,
        "# initial users\nalice:a:pass:with:colons\n\nbob:bobpw\r\n",
    )
    .unwrap();
    mqsec()
        .args(["passwd", "import"])
        .arg(&plain)
        .arg(&out)
        .args(WEAK)
        .assert()
        .success()
        .stdout(predicate::str::contains("imported 2 user(s)"));
    assert_eq!(mode(&out), 0o600);
    verify(&out, "alice", "a:pass:with:colons").code(0);
    verify(&out, "bob", "bobpw").code(0);
    let text = fs::read_to_string(&out).unwrap();
    assert!(!text.contains("bobpw"));

    mqsec()
        .args(["passwd", "import"])
        .arg(&plain)
        .arg(&out)
        .args(WEAK)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("already exists (use --force"));
    assert_eq!(fs::read_to_string(&out).unwrap(), text);

    // In place, like `mosquitto_passwd -U`.
    mqsec()
        .args(["passwd", "import", "--force"])
        .arg(&plain)
        .arg(&plain)
        .args(WEAK)
        .assert()
        .success();
    verify(&plain, "bob", "bobpw").code(0);

    // Errors name the line and never echo the password.
    let bad = dir.path().join("bad.txt");
    fs::write(&bad, "carol:hunter2\nno-colon-hunter3\n").unwrap();
    mqsec()
        .args(["passwd", "import"])
        .arg(&bad)
        .arg(dir.path().join("o2"))
        .args(WEAK)
        .assert()
        .code(2)
        .stderr(
            predicate::str::contains(format!("{}:2: expected USER:PASSWORD", bad.display()))
                .and(predicate::str::contains("hunter").not()),
        );
    assert!(!dir.path().join("o2").exists());
}

/// Drives `mqsec passwd add` on a pseudo-terminal: answers the two prompts, then reads to EOF.
const PTY_DRIVER: &str = r#"
import os, pty, select, sys, termios, time
bin_, file_, user, first, second = sys.argv[1:6]
pid, fd = pty.fork()
if pid == 0:
    os.execv(bin_, [bin_, "passwd", "add", file_, user] + sys.argv[6:])
out = b""
deadline = time.time() + 20
def read_until(marker):
    global out
    while marker is None or marker not in out:
        if time.time() > deadline:
            os.kill(pid, 9)
            sys.exit("timeout waiting for %r, got %r" % (marker, out))
        r, _, _ = select.select([fd], [], [], 0.2)
        if r:
            try:
                chunk = os.read(fd, 1024)
            except OSError:
                return
            if not chunk:
                return
            out += chunk
def type_when_echo_is_off(text):
    # The prompt is printed before echo is switched off; typing earlier would be echoed.
    while termios.tcgetattr(fd)[3] & termios.ECHO:
        if time.time() > deadline:
            os.kill(pid, 9)
            sys.exit("echo never switched off")
        time.sleep(0.005)
    os.write(fd, text.encode() + b"\n")
read_until(b"Password for " + user.encode() + b": ")
type_when_echo_is_off(first)
read_until(b"(again): ")
type_when_echo_is_off(second)
read_until(None)
_, status = os.waitpid(pid, 0)
sys.stdout.write(out.decode(errors="replace"))
sys.exit(os.waitstatus_to_exitcode(status))
"#;

fn add_on_a_tty(file: &Path, user: &str, first: &str, second: &str) -> (i32, String) {
    let mut child = ChildGuard::new(
        std::process::Command::new(common::python())
            .args(["-c", PTY_DRIVER, mqsec_bin()])
            .arg(file)
            .args([user, first, second])
            .args(WEAK)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3 is installed"),
    );
    let status = child.wait_timeout(TIMEOUT);
    let mut out = String::new();
    std::io::Read::read_to_string(child.stdout.as_mut().unwrap(), &mut out).unwrap();
    (status.code().unwrap_or(-1), out)
}

#[test]
fn on_a_terminal_add_prompts_twice_without_echo() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("passwd");
    let (code, out) = add_on_a_tty(&f, "ttyuser", "tty-secret", "tty-typo");
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("do not match"), "{out}");
    assert!(!f.exists());

    let (code, out) = add_on_a_tty(&f, "ttyuser", "tty-secret", "tty-secret");
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("Password for ttyuser (again): "), "{out}");
    assert!(!out.contains("tty-secret"), "password echoed: {out}");
    verify(&f, "ttyuser", "tty-secret").code(0);
}

fn mosquitto_pub(port: u16, user: &str, password: &str) -> bool {
    let mut c = ChildGuard::new(
        std::process::Command::new("mosquitto_pub")
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &port.to_string(),
                "-t",
                "t",
                "-m",
                "x",
            ])
            .args(["-u", user, "-P", password])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    c.wait_timeout(Duration::from_secs(10)).success()
}

/// mqsec reads Mosquitto's files; the reverse holds for the lines mqsec leaves as `$7$`/`$6$`
/// (Mosquitto 2.0 skips argon2id users), and mqsec's rewrite keeps the file loadable.
#[test]
fn mosquitto_still_loads_a_file_mqsec_edited() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("mosq.pw");
    let fp = f.to_str().unwrap();
    mosquitto_passwd(&["-c", "-b", fp, "legacy", "pass-legacy"]);
    mosquitto_passwd(&["-b", fp, "gone", "pass-gone"]);
    // A duplicate user, as an appended line leaves it: both must read the same one (the last).
    let other = dir.path().join("other.pw");
    mosquitto_passwd(&["-c", "-b", other.to_str().unwrap(), "dup", "dup-old"]);
    let old_line = fs::read_to_string(&other).unwrap();
    mosquitto_passwd(&["-c", "-b", other.to_str().unwrap(), "dup", "dup-new"]);
    let new_line = fs::read_to_string(&other).unwrap();
    let mut text = fs::read_to_string(&f).unwrap();
    text.push_str(&old_line);
    text.push_str("# appended later\n");
    text.push_str(&new_line);
    fs::write(&f, text).unwrap();
    add(&f, "modern", "pass-modern").success();
    mqsec()
        .args(["passwd", "delete"])
        .arg(&f)
        .arg("gone")
        .assert()
        .success();
    verify(&f, "modern", "pass-modern").code(0);
    verify(&f, "dup", "dup-new").code(0);
    verify(&f, "dup", "dup-old").code(1);

    // As root, Mosquitto would drop to user `mosquitto`, which cannot read a 0600 root file.
    let broker = Mosquitto::start(
        dir.path(),
        &format!("allow_anonymous false\npassword_file {fp}\npersistence false\n"),
    );
    let port = broker.port;
    assert!(mosquitto_pub(port, "legacy", "pass-legacy"));
    assert!(!mosquitto_pub(port, "legacy", "wrong"));
    assert!(!mosquitto_pub(port, "gone", "pass-gone"));
    assert!(mosquitto_pub(port, "dup", "dup-new"));
    assert!(!mosquitto_pub(port, "dup", "dup-old"));
    // Mosquitto 2.0 cannot read argon2id: it drops that user (documented in README).
    assert!(!mosquitto_pub(port, "modern", "pass-modern"));
}

#[test]
fn help_has_a_worked_example_and_the_exit_codes() {
    for sub in ["add", "delete", "list", "verify", "check", "import"] {
        mqsec()
            .args(["passwd", sub, "--help"])
            .assert()
            .success()
            .stdout(
                predicate::str::contains("Examples:")
                    .and(predicate::str::contains(format!("mqsec passwd {sub}")))
                    .and(predicate::str::contains("Exit codes")),
            );
    }
}
