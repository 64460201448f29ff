//! `mqsec acl-check` driven as a user would: the built binary, the users' guide example ACL, and a
//! differential test against a real Mosquitto 2.0.11 with real `mosquitto_pub`/`mosquitto_sub`.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

mod common;

use common::{mosquitto_passwd, mqsec, mqsec_bin, ChildGuard, Mosquitto};

fn guide() -> PathBuf {
    common::root().join("fixtures/acl/guide.acl")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn json_lines(o: &Output) -> Vec<Value> {
    stdout(o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// The users' guide example (docs/formats.md), through the binary.

/// (username, access, topic, allowed, deciding line or None for default deny)
const GUIDE_EXPECTED: &[(&str, &str, &str, bool, Option<u64>)] = &[
    ("admin", "write", "sensors/001/temp", true, Some(3)),
    ("admin", "read", "anything/else", true, Some(3)),
    ("admin", "read", "$SYS/broker/version", false, None),
    ("admin", "subscribe", "#", true, Some(3)),
    ("admin", "subscribe", "$SYS/#", false, None),
    ("sensor_001", "write", "sensors/001/temp", true, Some(7)),
    ("sensor_001", "write", "sensors/002/temp", false, None),
    ("sensor_001", "read", "sensors/001/temp", false, None),
    ("sensor_001", "read", "commands/001", true, Some(8)),
    ("sensor_001", "write", "commands/001", false, None),
    ("sensor_001", "subscribe", "commands/+", true, Some(8)),
    ("sensor_001", "subscribe", "sensors/#", false, None),
    // The trap: the trailing `topic deny #` (line 16) is the dashboard's own rule.
    ("dashboard", "read", "sensors/001/temp", false, Some(16)),
    ("dashboard", "read", "devices/d1", false, Some(16)),
    ("dashboard", "subscribe", "sensors/#", false, Some(16)),
    ("dashboard", "write", "sensors/001/temp", false, Some(16)),
    ("mallory", "read", "sensors/001/temp", false, None),
];

#[test]
fn guide_example_decisions_text_and_json() {
    let file = guide();
    let file = file.to_str().unwrap();
    for &(user, access, topic, allowed, line) in GUIDE_EXPECTED {
        let o = mqsec(&[
            "acl-check",
            file,
            "--username",
            user,
            "--access",
            access,
            topic,
        ]);
        assert_eq!(
            o.status.code(),
            Some(if allowed { 0 } else { 1 }),
            "{user} {access} {topic}: {}",
            stderr(&o)
        );
        let out = stdout(&o);
        let want = match line {
            Some(l) => format!("{file}:{l}"),
            None => "default deny".into(),
        };
        assert!(
            out.starts_with(if allowed { "ALLOW " } else { "DENY  " }),
            "{out}"
        );
        assert!(out.contains(&want), "{user} {access} {topic}: {out}");

        let o = mqsec(&["acl-check", file, "-u", user, "-a", access, topic, "--json"]);
        let v = &json_lines(&o)[0];
        assert_eq!(v["topic"], topic);
        assert_eq!(v["access"], access);
        assert_eq!(v["allowed"], allowed);
        match line {
            Some(l) => assert_eq!(v["rule"], format!("{file}:{l}")),
            None => assert!(v["rule"].is_null(), "{v}"),
        }
    }
}

#[test]
fn several_topics_exit_1_when_any_is_denied() {
    let file = guide();
    let o = mqsec(&[
        "acl-check",
        file.to_str().unwrap(),
        "-u",
        "sensor_001",
        "-a",
        "write",
        "sensors/001/a",
        "sensors/001/b",
    ]);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(stdout(&o).lines().count(), 2);
    let o = mqsec(&[
        "acl-check",
        file.to_str().unwrap(),
        "-u",
        "sensor_001",
        "-a",
        "write",
        "sensors/001/a",
        "sensors/002/b",
    ]);
    assert_eq!(o.status.code(), Some(1));
    let out = stdout(&o);
    assert!(
        out.lines()
            .nth(1)
            .unwrap()
            .starts_with("DENY  write sensors/002/b  default deny"),
        "{out}"
    );
}

#[test]
fn lint_flags_the_trailing_deny_trap() {
    let file = guide();
    let o = mqsec(&["acl-check", file.to_str().unwrap(), "--lint"]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    let out = stdout(&o);
    assert!(
        out.contains("guide.acl:16: error [deny-kills-block]"),
        "{out}"
    );
    assert!(out.contains("user \"dashboard\""), "{out}");
    let o = mqsec(&["acl-check", file.to_str().unwrap(), "--lint", "--json"]);
    let v = json_lines(&o);
    assert!(v
        .iter()
        .any(|f| f["line"] == 16 && f["severity"] == "error" && f["code"] == "deny-kills-block"));

    // Without the trap the file lints clean and exits 0.
    let dir = tempfile::tempdir().unwrap();
    let fixed = dir.path().join("fixed.acl");
    let text = std::fs::read_to_string(&file)
        .unwrap()
        .replace("topic deny #\n", "");
    std::fs::write(&fixed, text).unwrap();
    let o = mqsec(&["acl-check", fixed.to_str().unwrap(), "--lint"]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
}

#[test]
fn lint_reports_malformed_lines_and_risky_rules() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("bad.acl");
    std::fs::write(
        &f,
        "topic read #\npattern write +/status\nuser u\ntopic read\ntopic readwrite a/#/b\n",
    )
    .unwrap();
    let o = mqsec(&["acl-check", f.to_str().unwrap(), "--lint"]);
    assert_eq!(o.status.code(), Some(1));
    let out = stdout(&o);
    for want in [
        "bad.acl:1: error [wildcard-grant]",
        "bad.acl:2: error [unscoped-write-pattern]",
        "bad.acl:4: error [access-word-as-topic]",
        "bad.acl:5: error [syntax]",
    ] {
        assert!(out.contains(want), "missing {want} in\n{out}");
    }
}

#[test]
fn queries_file_batches_and_reports_bad_lines() {
    let dir = tempfile::tempdir().unwrap();
    let q = dir.path().join("q.jsonl");
    std::fs::write(
        &q,
        concat!(
            "{\"username\":\"sensor_001\",\"client_id\":\"s1\",\"access\":\"write\",\"topic\":\"sensors/001/t\"}\n",
            "\n",
            "{\"username\":\"admin\",\"access\":\"subscribe\",\"topic\":\"a/#\",\"qos\":1}\n",
            "{\"access\":\"read\",\"topic\":\"sensors/1\"}\n",
        ),
    )
    .unwrap();
    let file = guide();
    let o = mqsec(&[
        "acl-check",
        file.to_str().unwrap(),
        "--queries",
        q.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let v = json_lines(&o);
    assert_eq!(v.len(), 3);
    assert_eq!(
        (v[0]["allowed"].clone(), v[0]["client_id"].clone()),
        (Value::Bool(true), Value::from("s1"))
    );
    assert_eq!(v[1]["allowed"], true);
    assert_eq!(v[2]["allowed"], false);
    assert!(v[2]["username"].is_null());

    // A malformed line: exit 2, one line naming file:line and the field.
    std::fs::write(
        &q,
        "{\"access\":\"read\",\"topic\":\"a\"}\n{\"access\":\"reed\",\"topic\":\"a\"}\n",
    )
    .unwrap();
    let o = mqsec(&[
        "acl-check",
        file.to_str().unwrap(),
        "--queries",
        q.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("q.jsonl:2: field access"), "{err}");
    std::fs::write(&q, "{\"access\":\"read\"}\n").unwrap();
    let o = mqsec(&[
        "acl-check",
        file.to_str().unwrap(),
        "--queries",
        q.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("q.jsonl:1:"), "{}", stderr(&o));
}

#[test]
fn input_errors_exit_2_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("broken.acl");
    std::fs::write(&f, "user a\ntopic read ok\n\ttopic read x\n").unwrap();
    let o = mqsec(&[
        "acl-check",
        f.to_str().unwrap(),
        "-u",
        "a",
        "-a",
        "read",
        "ok",
    ]);
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("broken.acl:3:"), "{err}");
    let o = mqsec(&["acl-check", "/nonexistent.acl", "-a", "read", "x"]);
    assert_eq!(o.status.code(), Some(2));
    let file = guide();
    // A filter where a topic name is required.
    let o = mqsec(&[
        "acl-check",
        file.to_str().unwrap(),
        "-u",
        "admin",
        "-a",
        "write",
        "a/#",
    ]);
    assert_eq!(o.status.code(), Some(2));
    // --access is required with topics.
    let o = mqsec(&["acl-check", file.to_str().unwrap(), "a"]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn extensions_roles_and_limits_through_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("rbac.acl");
    std::fs::write(
        &f,
        "role viewer\ntopic read[max_qos=1] plant/#\n\nrole operator\ntopic write[max_qos=1,retain=false] plant/cmd/#\n\nuser alice\nroles viewer\n",
    )
    .unwrap();
    let p = f.to_str().unwrap();
    let o = mqsec(&[
        "acl-check",
        p,
        "-u",
        "alice",
        "-a",
        "read",
        "plant/a",
        "--qos",
        "2",
        "--json",
    ]);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(json_lines(&o)[0]["max_qos"], 1);
    let o = mqsec(&["acl-check", p, "-u", "alice", "-a", "write", "plant/cmd/x"]);
    assert_eq!(o.status.code(), Some(1));
    // The operator role from a token (--role).
    let o = mqsec(&[
        "acl-check",
        p,
        "-u",
        "alice",
        "--role",
        "operator",
        "-a",
        "write",
        "plant/cmd/x",
        "--qos",
        "1",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    let o = mqsec(&[
        "acl-check",
        p,
        "-u",
        "alice",
        "--role",
        "operator",
        "-a",
        "write",
        "plant/cmd/x",
        "--qos",
        "2",
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stdout(&o).contains("QoS above the rule's max_qos"),
        "{}",
        stdout(&o)
    );
    let o = mqsec(&[
        "acl-check",
        p,
        "-u",
        "alice",
        "--role",
        "operator",
        "-a",
        "write",
        "plant/cmd/x",
        "--retain",
    ]);
    assert_eq!(o.status.code(), Some(1));
    let o = mqsec(&[
        "acl-check",
        p,
        "-u",
        "alice",
        "--role",
        "nope",
        "-a",
        "read",
        "x",
    ]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn mosquitto_refuses_files_that_use_extensions() {
    // The extensions are designed so that Mosquitto cannot silently misread a file using them.
    for text in [
        "topic write[max_qos=1] a/b\n",
        "role r\ntopic read a\n",
        "user u\nroles r\n",
    ] {
        let dir = tempfile::tempdir().unwrap();
        let acl = dir.path().join("ext.acl");
        std::fs::write(&acl, text).unwrap();
        let port = common::free_port();
        let mut m = Mosquitto::spawn(
            dir.path(),
            "m",
            &format!(
                "listener {port} 127.0.0.1\nallow_anonymous true\nacl_file {}\n",
                acl.display()
            ),
            port,
        );
        let deadline = Instant::now() + Duration::from_secs(5);
        let status = loop {
            if let Some(s) = m.guard.try_wait().unwrap() {
                break Some(s);
            }
            if Instant::now() > deadline {
                break None;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let status = status.unwrap_or_else(|| panic!("mosquitto loaded {text:?}"));
        assert!(!status.success(), "{text:?}");
        // Refused for the extension itself, not for some other reason (an unreadable file).
        let err = m.log_text();
        assert!(err.contains("Invalid"), "{text:?}: {err}");
    }
}

// ---------------------------------------------------------------------------------------------
// Differential test: the same ACL files in a real Mosquitto, real clients, same answers.
// Only read (delivery) and write (publish) are compared: Mosquitto's acl_file never checks
// SUBSCRIBE (its SUBACK grants any filter), while mqsec deliberately does.

struct Broker {
    _mosq: Mosquitto,
    port: u16,
    _dir: tempfile::TempDir,
    acl: PathBuf,
}

const ADMIN_PW: &str = "admin-pw";

fn password(user: &str) -> String {
    format!("pw-{}", user.len())
}

fn start_mosquitto(acl_text: &str, users: &[&str], anonymous: bool) -> Broker {
    let dir = tempfile::tempdir().unwrap();
    let acl = dir.path().join("test.acl");
    std::fs::write(&acl, acl_text).unwrap();
    let pw = dir.path().join("passwd");
    let pw_s = pw.to_str().unwrap();
    for (i, u) in std::iter::once(&"admin").chain(users).enumerate() {
        let pass = if *u == "admin" {
            ADMIN_PW.to_string()
        } else {
            password(u)
        };
        let create: &[&str] = if i == 0 { &["-c"] } else { &[] };
        mosquitto_passwd(&[create, &["-b", pw_s, u, &pass]].concat());
    }
    let mosq = Mosquitto::start(
        dir.path(),
        &format!(
            "allow_anonymous {anonymous}\npassword_file {}\nacl_file {}\npersistence false\n",
            pw.display(),
            acl.display()
        ),
    );
    Broker {
        port: mosq.port,
        _mosq: mosq,
        _dir: dir,
        acl,
    }
}

#[derive(Clone, Copy)]
struct Case {
    user: Option<&'static str>,
    client: &'static str,
    access: &'static str,
    topic: &'static str,
}

const fn case(
    user: Option<&'static str>,
    client: &'static str,
    access: &'static str,
    topic: &'static str,
) -> Case {
    Case {
        user,
        client,
        access,
        topic,
    }
}

fn client_args(c: &mut Command, b: &Broker, user: Option<&str>, client: &str) {
    c.args([
        "-h",
        "127.0.0.1",
        "-p",
        &b.port.to_string(),
        "-i",
        client,
        "-q",
        "1",
    ]);
    if let Some(u) = user {
        let pw = if u == "admin" {
            ADMIN_PW.to_string()
        } else {
            password(u)
        };
        c.args(["-u", u, "-P", &pw]);
    }
}

fn wait_all(children: Vec<ChildGuard>, limit: Duration) -> Vec<(bool, String, String)> {
    let deadline = Instant::now() + limit;
    children
        .into_iter()
        .map(|g| {
            let o = g.wait_output(deadline.saturating_duration_since(Instant::now()));
            let err = String::from_utf8_lossy(&o.stderr);
            (
                o.status.success(),
                String::from_utf8_lossy(&o.stdout).into_owned(),
                format!("{}: {err}", o.status),
            )
        })
        .collect()
}

/// What Mosquitto actually did for each case: delivered (true) or not.
fn mosquitto_answers(b: &Broker, cases: &[Case], admin_filters: &[&str]) -> Vec<bool> {
    let mut answers = vec![false; cases.len()];
    for phase in ["write", "read"] {
        let mut ids: Vec<&str> = cases
            .iter()
            .filter(|c| c.access == phase)
            .map(|c| c.client)
            .collect();
        ids.sort_unstable();
        let n = ids.len();
        ids.dedup();
        assert_eq!(
            n,
            ids.len(),
            "client ids must be unique within the {phase} phase"
        );
    }

    // Writes: a privileged subscriber listens; each case publishes a unique payload; a final
    // marker from the admin, queued after every earlier publish, tells us when to stop.
    // Line-buffered, so the SUBACK and each message reach us as they happen.
    let mut sub = Command::new("stdbuf");
    sub.args(["-oL", "mosquitto_sub"]);
    client_args(&mut sub, b, Some("admin"), "diff-admin-sub");
    sub.args(["-v", "-d"]);
    for f in admin_filters.iter().chain(&["#"]) {
        sub.args(["-t", f]);
    }
    let mut sub = ChildGuard::new(
        sub.stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let (tx, rx) = mpsc::channel::<String>();
    let out = sub.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut subacks = 0;
    while subacks == 0 {
        let line = rx
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .expect("admin SUBACK");
        if line.contains("received SUBACK") {
            subacks += 1;
        }
    }
    let pubs: Vec<ChildGuard> = cases
        .iter()
        .enumerate()
        .filter(|(_, c)| c.access == "write")
        .map(|(i, c)| {
            let mut p = Command::new("mosquitto_pub");
            client_args(&mut p, b, c.user, c.client);
            p.args(["-t", c.topic, "-m", &format!("case-{i}")]);
            ChildGuard::new(
                p.stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap(),
            )
        })
        .collect();
    for (ok, _, err) in wait_all(pubs, Duration::from_secs(10)) {
        assert!(ok, "mosquitto_pub failed: {err}");
    }
    let st = {
        let mut p = Command::new("mosquitto_pub");
        client_args(&mut p, b, Some("admin"), "diff-admin-marker");
        p.args(["-t", "diff/marker", "-m", "marker"])
            .status()
            .unwrap()
    };
    assert!(st.success());
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let line = rx
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .expect("the marker reaches the admin subscriber");
        if line.ends_with(" marker") {
            break;
        }
        if let Some(i) = line
            .rsplit(' ')
            .next()
            .and_then(|p| p.strip_prefix("case-"))
        {
            answers[i.parse::<usize>().unwrap()] = true;
        }
    }
    drop(sub);

    // Reads: the admin leaves a retained message on each topic (or the broker's own $SYS
    // retained messages are used); the user subscribes and either receives it or times out.
    let mut retained: Vec<&str> = cases
        .iter()
        .filter(|c| c.access == "read" && !c.topic.starts_with("$SYS"))
        .map(|c| c.topic)
        .collect();
    retained.sort_unstable();
    retained.dedup();
    for t in retained {
        let mut p = Command::new("mosquitto_pub");
        client_args(&mut p, b, Some("admin"), "diff-admin-retain");
        assert!(p
            .args(["-r", "-t", t, "-m", "retained"])
            .status()
            .unwrap()
            .success());
    }
    let reads: Vec<(usize, ChildGuard)> = cases
        .iter()
        .enumerate()
        .filter(|(_, c)| c.access == "read")
        .map(|(i, c)| {
            let mut s = Command::new("mosquitto_sub");
            client_args(&mut s, b, c.user, c.client);
            s.args(["-t", c.topic, "-C", "1", "-W", "3"]);
            (
                i,
                ChildGuard::new(
                    s.stdout(Stdio::piped())
                        .stderr(Stdio::piped())
                        .spawn()
                        .unwrap(),
                ),
            )
        })
        .collect();
    let (idx, guards): (Vec<usize>, Vec<ChildGuard>) = reads.into_iter().unzip();
    for (i, (_, out, err)) in idx
        .into_iter()
        .zip(wait_all(guards, Duration::from_secs(10)))
    {
        assert!(
            !err.contains("Connection error") && !err.contains("not authorised"),
            "case {i}: {err}"
        );
        answers[i] = !out.trim().is_empty();
    }
    answers
}

fn mqsec_answers(b: &Broker, cases: &[Case]) -> Vec<bool> {
    let q = b.acl.with_extension("jsonl");
    let mut f = std::fs::File::create(&q).unwrap();
    for c in cases {
        let v = serde_json::json!({"username": c.user, "client_id": c.client, "access": c.access, "topic": c.topic});
        writeln!(f, "{v}").unwrap();
    }
    drop(f);
    let o = mqsec(&[
        "acl-check",
        b.acl.to_str().unwrap(),
        "--queries",
        q.to_str().unwrap(),
        "--json",
    ]);
    assert!(matches!(o.status.code(), Some(0 | 1)), "{}", stderr(&o));
    json_lines(&o)
        .iter()
        .map(|v| v["allowed"].as_bool().unwrap())
        .collect()
}

/// Run every case through both; `differs` lists the client ids of cases where mqsec deliberately
/// differs (Mosquitto allows, mqsec denies).
fn differential(
    acl: &str,
    users: &[&str],
    anonymous: bool,
    admin_filters: &[&str],
    cases: &[Case],
    differs: &[&str],
) {
    let b = start_mosquitto(acl, users, anonymous);
    let mosq = mosquitto_answers(&b, cases, admin_filters);
    let ours = mqsec_answers(&b, cases);
    let mut report = String::new();
    for (i, c) in cases.iter().enumerate() {
        let expected_ours = if differs.contains(&c.client) {
            assert!(mosq[i], "case {i} was expected to be allowed by Mosquitto");
            false
        } else {
            mosq[i]
        };
        if ours[i] != expected_ours {
            report.push_str(&format!(
                "case {i} {:?}/{} {} {}: mosquitto {} mqsec {}\n",
                c.user, c.client, c.access, c.topic, mosq[i], ours[i]
            ));
        }
    }
    assert!(report.is_empty(), "mqsec and Mosquitto disagree:\n{report}");
    // Both outcomes must occur, or the comparison proves little.
    assert!(mosq.iter().any(|&x| x) && mosq.iter().any(|&x| !x));
}

#[test]
fn differential_guide_example() {
    let acl = std::fs::read_to_string(guide()).unwrap();
    let u = Some;
    let cases = [
        case(u("sensor_001"), "s-w1", "write", "sensors/001/temp"),
        case(u("sensor_001"), "s-w2", "write", "sensors/002/temp"),
        case(u("sensor_001"), "s-w3", "write", "commands/001"),
        case(u("dashboard"), "d-w1", "write", "sensors/001/temp"),
        case(u("mallory"), "m-w1", "write", "sensors/001/temp"),
        case(u("sensor_001"), "s-r1", "read", "commands/001"),
        case(u("sensor_001"), "s-r2", "read", "sensors/001/temp"),
        case(u("dashboard"), "d-r1", "read", "sensors/001/temp"),
        case(u("dashboard"), "d-r2", "read", "devices/d1"),
        case(u("mallory"), "m-r1", "read", "commands/001"),
        case(u("admin"), "a-r1", "read", "devices/d1"),
        case(u("admin"), "a-r2", "read", "$SYS/broker/version"),
    ];
    differential(
        &acl,
        &["sensor_001", "dashboard", "mallory"],
        false,
        &[],
        &cases,
        &[],
    );
}

#[test]
fn differential_patterns() {
    let acl = "\
user admin
topic readwrite #
pattern write devices/%c/out
pattern read devices/%c/in
pattern readwrite users/%u/#
pattern deny users/%u/private
user a+b
topic readwrite own/#
";
    let u = Some;
    let cases = [
        case(u("alice"), "dev1", "write", "devices/dev1/out"),
        case(u("alice"), "dev1x", "write", "devices/dev2/out"),
        case(u("alice"), "a-w3", "write", "users/alice/x"),
        case(u("alice"), "a-w4", "write", "users/bob/x"),
        case(u("alice"), "a-w5", "write", "users/alice/private"),
        case(None, "dev3", "write", "devices/dev3/out"),
        case(None, "anon-w2", "write", "users/alice/x"),
        case(u("a+b"), "abw1", "write", "devices/abw1/out"),
        // The own list is tried before the dangerous-identity gate.
        case(u("a+b"), "abw2", "write", "own/x"),
        case(u("alice"), "c+1", "write", "users/alice/y"),
        case(u("alice"), "dev1", "read", "devices/dev1/in"),
        case(u("alice"), "a-r2", "read", "devices/dev2/in"),
        case(u("alice"), "a-r3", "read", "users/alice/x"),
        case(u("bob"), "b-r1", "read", "users/alice/x"),
        case(u("alice"), "a-r4", "read", "users/alice/private"),
        case(None, "anon-r1", "read", "users/alice/x"),
        // Deliberate difference: "a/b" substituted for %u reaches into user a's tree in Mosquitto.
        case(u("a/b"), "slash-w1", "write", "users/a/b/x"),
    ];
    differential(
        acl,
        &["alice", "bob", "a+b", "a/b"],
        true,
        &[],
        &cases,
        &["slash-w1"],
    );
}

#[test]
fn differential_anonymous_list() {
    // Untidy but valid spacing (leading and repeated spaces, trailing blanks, CRLF) and a topic
    // with a space: both must read it the same way.
    let acl = "   topic read public/#\n\
topic  write   public/anon  \r\n\
user admin\n\
topic readwrite #\n\
user   alice \n\
topic read alice/#\n\
topic read sp ace/#\n";
    let u = Some;
    let cases = [
        case(None, "an-w1", "write", "public/anon"),
        case(None, "an-w2", "write", "public/x"),
        case(u("alice"), "al-w1", "write", "public/anon"),
        case(None, "an-r1", "read", "public/x"),
        case(None, "an-r2", "read", "alice/x"),
        case(u("alice"), "al-r1", "read", "public/x"),
        case(u("alice"), "al-r2", "read", "alice/x"),
        case(u("bob"), "bo-r1", "read", "public/x"),
        case(u("alice"), "al-r3", "read", "sp ace/x"),
        case(u("alice"), "al-r4", "read", "sp/x"),
    ];
    differential(acl, &["alice", "bob"], true, &[], &cases, &[]);
}

#[test]
fn differential_deny_ordering() {
    let acl = "\
user admin
topic readwrite #
pattern deny shared/locked
pattern readwrite shared/#
user alice
topic readwrite data/#
topic deny data/secret
topic read shared/locked
topic read rw/x
topic write rw/x
user quirk
topic read
user alice
topic write merged/x
";
    let u = Some;
    let cases = [
        case(u("alice"), "al-w1", "write", "data/x"),
        case(u("alice"), "al-w2", "write", "data/secret"),
        case(u("alice"), "al-w3", "write", "rw/x"),
        case(u("alice"), "al-w4", "write", "shared/locked"),
        case(u("bob"), "bo-w1", "write", "shared/x"),
        case(u("alice"), "al-r1", "read", "data/secret"),
        case(u("alice"), "al-r2", "read", "shared/locked"),
        case(u("bob"), "bo-r1", "read", "shared/locked"),
        case(u("bob"), "bo-r2", "read", "shared/x"),
        case(u("alice"), "al-r3", "read", "rw/x"),
        // `topic read` with no topic: topic "read", readwrite.
        case(u("quirk"), "qu-w1", "write", "read"),
        case(u("quirk"), "qu-r1", "read", "rw/x"),
        // A second `user alice` block extends the first.
        case(u("alice"), "al-w5", "write", "merged/x"),
    ];
    differential(acl, &["alice", "bob", "quirk"], false, &[], &cases, &[]);
}

#[test]
fn differential_dollar_topics() {
    let acl = "\
user admin
topic readwrite #
topic readwrite $app/#
topic read $SYS/#
user alice
topic readwrite #
user bob
topic read $SYS/#
topic readwrite $app/#
user carol
topic readwrite +/x
user dave
topic readwrite $SYS/#
";
    let u = Some;
    let cases = [
        case(u("alice"), "al-w1", "write", "$app/x"),
        case(u("bob"), "bo-w1", "write", "$app/x"),
        case(u("carol"), "ca-w1", "write", "$app/x"),
        case(u("carol"), "ca-w2", "write", "app/x"),
        case(u("dave"), "da-w1", "write", "$SYS/test/x"),
        case(u("alice"), "al-r1", "read", "$SYS/broker/version"),
        case(u("bob"), "bo-r1", "read", "$SYS/broker/version"),
        case(u("alice"), "al-r2", "read", "plain/t"),
        case(u("alice"), "al-r3", "read", "$app/t"),
        case(u("bob"), "bo-r2", "read", "$app/t"),
    ];
    differential(
        acl,
        &["alice", "bob", "carol", "dave"],
        false,
        &["$app/#", "$SYS/test/#"],
        &cases,
        &[],
    );
}

#[test]
fn the_worked_example_in_the_help_is_true() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("acl.conf"),
        "user admin\ntopic readwrite #\nuser sensor_001\ntopic write sensors/001/#\ntopic read commands/001\n",
    )
    .unwrap();
    let o = Command::new(mqsec_bin())
        .current_dir(dir.path())
        .args([
            "acl-check",
            "acl.conf",
            "--username",
            "sensor_001",
            "--access",
            "write",
            "sensors/001/temp",
            "sensors/002/temp",
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let out = stdout(&o);
    let help = stdout(&mqsec(&["acl-check", "--help"]));
    for line in out.lines() {
        assert!(
            help.contains(&format!("  {line}\n")),
            "help does not show {line:?}"
        );
    }
    let o = Command::new(mqsec_bin())
        .current_dir(dir.path())
        .args([
            "acl-check",
            "acl.conf",
            "--username",
            "admin",
            "--access",
            "subscribe",
            "$SYS/#",
            "--json",
        ])
        .output()
        .unwrap();
    let v = &json_lines(&o)[0];
    assert_eq!(
        (v["allowed"].clone(), v["reason"].clone()),
        (Value::Bool(false), Value::from("default deny"))
    );
}
