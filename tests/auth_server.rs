//! `mqsec auth-server` over real loopback HTTP: each engine's documented requests (fixtures),
//! agreement with `acl-check`, reload on SIGHUP, the per-source rate limit, TLS, `--check`.

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::auth_http::{http, AuthServerProc};
use common::{mqsec, mqsec_passwd_add, root};

fn fixture_acl() -> PathBuf {
    root().join("fixtures/auth-server/acl")
}

/// A temporary directory with the fixtures' password file (device1/devpass, sub1/subpass).
fn files() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let passwd = dir.path().join("passwd");
    mqsec_passwd_add(&passwd, "device1", "devpass");
    mqsec_passwd_add(&passwd, "sub1", "subpass");
    (dir, passwd)
}

fn replay(srv: &AuthServerProc, fixture: &str) -> usize {
    let text = std::fs::read_to_string(root().join("fixtures/auth-server").join(fixture)).unwrap();
    let mut n = 0;
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let case: serde_json::Value = serde_json::from_str(line).unwrap();
        let name = case["name"].as_str().unwrap();
        let path = case["path"].as_str().unwrap();
        let (status, body) = match (
            case["method"].as_str().unwrap(),
            &case["json"],
            &case["form"],
        ) {
            ("GET", _, _) => http(srv.port, "GET", path, None, ""),
            ("POST", serde_json::Value::Null, form) => http(
                srv.port,
                "POST",
                path,
                Some("application/x-www-form-urlencoded"),
                form.as_str().unwrap(),
            ),
            ("POST", json, _) => http(
                srv.port,
                "POST",
                path,
                Some("application/json"),
                &json.to_string(),
            ),
            (m, _, _) => panic!("{fixture}: {name}: method {m}"),
        };
        assert_eq!(status, 200, "{fixture}: {name}: status");
        match &case["expect"] {
            serde_json::Value::String(s) => assert_eq!(&body, s, "{fixture}: {name}"),
            want => {
                let got: serde_json::Value = serde_json::from_str(&body)
                    .unwrap_or_else(|e| panic!("{fixture}: {name}: not JSON ({e}): {body}"));
                assert_eq!(&got, want, "{fixture}: {name}");
            }
        }
        n += 1;
    }
    n
}

#[test]
fn each_engine_gets_the_documented_answers() {
    let (dir, passwd) = files();
    let srv = AuthServerProc::start(
        dir.path(),
        &passwd,
        &fixture_acl(),
        &["--security-log", "stderr"],
    );
    assert!(replay(&srv, "rabbitmq.jsonl") >= 20);
    assert!(replay(&srv, "emqx.jsonl") >= 20);
    assert!(replay(&srv, "vernemq.jsonl") >= 8);
    // Malformed requests get the engine's "no", never an error status (EMQX would read one as
    // "ignore" and may then allow).
    let (s, b) = http(
        srv.port,
        "POST",
        "/emqx/authz",
        Some("application/json"),
        "{not json",
    );
    assert_eq!((s, b.as_str()), (200, r#"{"result":"deny"}"#));
    let (s, b) = http(
        srv.port,
        "POST",
        "/vernemq/auth_on_publish",
        Some("application/json"),
        "[]",
    );
    assert_eq!(s, 200);
    assert!(b.contains("error"), "{b}");
    assert_eq!(http(srv.port, "GET", "/rabbitmq/nothing", None, "").0, 404);
    assert_eq!(http(srv.port, "GET", "/", None, "").0, 404);
    // A body over the limit is refused without being read whole.
    let big = "x".repeat(2 * 1024 * 1024);
    let (s, b) = http(
        srv.port,
        "POST",
        "/rabbitmq/user",
        Some("application/x-www-form-urlencoded"),
        &big,
    );
    assert_eq!((s, b.as_str()), (200, "deny"));
    // Security events: JSON lines for the failed logins and refused topics.
    let log = srv.log_text();
    assert!(log.contains(r#""event":"auth_failure""#), "{log}");
    assert!(log.contains(r#""event":"acl_denied","client_id":"s1","username":"sub1","reason":"default deny","access":"subscribe-all","topic":"sensors/#""#), "{log}");
    assert!(
        !log.contains("devpass") && !log.contains("nope"),
        "a password reached the log: {log}"
    );
    // /health counts what happened.
    let (s, b) = http(srv.port, "GET", "/health", None, "");
    assert_eq!(s, 200);
    let h: serde_json::Value = serde_json::from_str(&b).unwrap();
    assert_eq!(h["status"], "ok");
    assert_eq!(h["users"], 2);
    assert!(h["decisions"].as_u64().unwrap() >= 40, "{h}");
    assert!(h["logins_refused"].as_u64().unwrap() >= 5, "{h}");
}

/// The service answers what `acl-check` answers for the same client, topic and access.
#[test]
fn decisions_are_those_of_acl_check() {
    let (dir, passwd) = files();
    let acl = fixture_acl();
    let srv = AuthServerProc::start(dir.path(), &passwd, &acl, &[]);
    let users = [
        ("device1", "dev-1"),
        ("sub1", "s1"),
        ("sub1", "dev-1"),
        ("", "dev-9"),
    ];
    let topics = [
        "sensors/device1/temp",
        "sensors/device2/temp",
        "sensors/device1/firmware",
        "sensors/+/temp",
        "sensors/#",
        "status/a",
        "status/#",
        "live/x",
        "telemetry/device1",
        "events/device1",
        "devices/dev-1/x",
        "devices/dev-9/#",
        "devices/s1/+",
        "#",
    ];
    let mut queries = String::new();
    let mut asked = Vec::new();
    for (user, client) in users {
        for topic in topics {
            for (action, access) in [("publish", "write"), ("subscribe", "subscribe-all")] {
                let wild = topic.contains(['+', '#']);
                if action == "publish" && wild {
                    continue;
                }
                for (qos, retain) in [(0u8, false), (1, false), (2, true)] {
                    // A subscription always admits retained deliveries.
                    let retain = retain || action == "subscribe";
                    let mut q = serde_json::json!({
                        "client_id": client, "access": access, "topic": topic,
                        "qos": qos, "retain": retain,
                    });
                    if !user.is_empty() {
                        q["username"] = user.into();
                    }
                    queries.push_str(&format!("{q}\n"));
                    asked.push((user, client, topic, action, qos, retain));
                }
            }
        }
    }
    let qfile = dir.path().join("queries.jsonl");
    std::fs::write(&qfile, queries).unwrap();
    let out = mqsec(&[
        "acl-check",
        acl.to_str().unwrap(),
        "--queries",
        qfile.to_str().unwrap(),
        "--json",
    ]);
    let lines: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), asked.len());
    let mut allowed = 0;
    for ((user, client, topic, action, qos, retain), cli) in asked.into_iter().zip(lines) {
        let body = serde_json::json!({
            "username": user, "clientid": client, "topic": topic, "action": action,
            "qos": qos.to_string(), "retain": retain.to_string(),
        });
        let (_, got) = srv.json("/emqx/authz", &body);
        // acl-check grants a subscription at a capped QoS; EMQX cannot cap, so mqsec refuses a
        // subscription asking for more than the rules grant.
        let cli_allows = cli["allowed"] == true
            && (action == "publish" || u64::from(qos) <= cli["max_qos"].as_u64().unwrap_or(0));
        let want = if cli_allows { "allow" } else { "deny" };
        assert_eq!(got["result"], want, "{body} vs acl-check {cli}");
        allowed += usize::from(cli_allows);
    }
    assert!(allowed > 10, "the comparison must cover allowed cases too");
}

#[test]
fn sighup_reloads_both_files_and_keeps_the_old_one_on_error() {
    let (dir, passwd) = files();
    let acl = dir.path().join("acl");
    std::fs::write(&acl, "user device1\ntopic write a/#\n").unwrap();
    let srv = AuthServerProc::start(dir.path(), &passwd, &acl, &["--security-log", "stderr"]);
    let login = |pw: &str| {
        srv.form("/rabbitmq/user", &format!("username=device1&password={pw}"))
            .1
    };
    let publish = |t: &str| {
        srv.json("/emqx/authz", &serde_json::json!({"username":"device1","clientid":"d","topic":t,"action":"publish","qos":"0","retain":"false"})).1["result"].clone()
    };
    assert_eq!(login("devpass"), "allow");
    assert_eq!(publish("a/1"), "allow");
    assert_eq!(publish("b/1"), "deny");

    // A new password and a new rule, then SIGHUP.
    mqsec_passwd_add(&passwd, "device1", "newpass");
    std::fs::write(&acl, "user device1\ntopic write b/#\n").unwrap();
    srv.reload();
    assert_eq!(login("devpass"), "deny");
    assert_eq!(login("newpass"), "allow");
    assert_eq!(publish("a/1"), "deny");
    assert_eq!(publish("b/1"), "allow");

    // A broken ACL keeps the previous one in force; the password file still reloads.
    std::fs::write(
        &acl,
        "user device1\ntopic bogus_access b/#\ntopic sometimes a b\n",
    )
    .unwrap();
    mqsec_passwd_add(&passwd, "device1", "third");
    srv.reload();
    assert_eq!(login("third"), "allow");
    assert_eq!(publish("b/1"), "allow");
    let log = srv.log_text();
    assert!(log.contains(r#""event":"reload_failed""#), "{log}");
    assert!(
        log.contains(&format!("{}:", acl.display())),
        "the error names the file: {log}"
    );
}

#[test]
fn a_source_over_its_rate_is_told_no() {
    let (dir, passwd) = files();
    let srv = AuthServerProc::start(dir.path(), &passwd, &fixture_acl(), &["--rate-limit", "3"]);
    let vhost = || {
        srv.form("/rabbitmq/vhost", "username=device1&vhost=%2F&ip=127.0.0.1")
            .1
    };
    let answers: Vec<String> = (0..8).map(|_| vhost()).collect();
    assert_eq!(answers[0], "allow");
    assert!(answers.iter().any(|a| a == "deny"), "{answers:?}");
    let (s, b) = srv.get("/health");
    assert_eq!(s, 200, "health is not rate limited");
    let h: serde_json::Value = serde_json::from_str(&b).unwrap();
    assert!(h["rate_limited"].as_u64().unwrap() >= 1, "{h}");
}

#[test]
fn tls_with_a_certificate_from_the_pki_commands() {
    let (dir, passwd) = files();
    let d = dir.path();
    let ca = d.join("ca");
    let out = d.join("out");
    for args in [
        vec!["gen-ca", "--out", ca.to_str().unwrap()],
        vec![
            "gen-server-cert",
            "--ca",
            ca.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--name",
            "authsrv",
            "--dns",
            "localhost",
            "--ip",
            "127.0.0.1",
        ],
    ] {
        let o = mqsec(&args);
        assert!(
            o.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    let cert = out.join("authsrv.crt");
    let key = out.join("authsrv.key");
    let srv = AuthServerProc::start(
        d,
        &passwd,
        &fixture_acl(),
        &[
            "--certfile",
            cert.to_str().unwrap(),
            "--keyfile",
            key.to_str().unwrap(),
        ],
    );
    assert!(srv
        .log_text()
        .contains(&format!("https://127.0.0.1:{}", srv.port)));
    // A real TLS client (Python's ssl) verifying the chain against the CA.
    let script = r#"
import http.client, ssl, sys, urllib.parse
ctx = ssl.create_default_context(cafile=sys.argv[2])
c = http.client.HTTPSConnection("127.0.0.1", int(sys.argv[1]), context=ctx, timeout=30)
body = urllib.parse.urlencode({"username": "device1", "password": "devpass"})
c.request("POST", "/rabbitmq/user", body, {"Content-Type": "application/x-www-form-urlencoded"})
r = c.getresponse()
print(r.status, r.read().decode())
"#;
    let o = Command::new(common::python())
        .args([
            "-c",
            script,
            &srv.port.to_string(),
            ca.join("ca.crt").to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "200 allow");
    // Plain HTTP on the TLS port gets nothing.
    let mut s = std::net::TcpStream::connect(("127.0.0.1", srv.port)).unwrap();
    use std::io::{Read, Write};
    s.set_read_timeout(Some(std::time::Duration::from_secs(20)))
        .unwrap();
    s.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    assert!(!String::from_utf8_lossy(&buf).contains("\"status\""));
}

#[test]
fn check_validates_the_files_and_names_the_broken_line() {
    let (dir, passwd) = files();
    let good = mqsec(&[
        "auth-server",
        "--password-file",
        passwd.to_str().unwrap(),
        "--acl-file",
        fixture_acl().to_str().unwrap(),
        "--check",
    ]);
    assert!(
        good.status.success(),
        "{}",
        String::from_utf8_lossy(&good.stderr)
    );
    let text = String::from_utf8_lossy(&good.stdout);
    assert!(
        text.contains("configuration OK") && text.contains("(2 users)"),
        "{text}"
    );

    let acl = dir.path().join("bad.acl");
    std::fs::write(&acl, "user a\ntopic read x\ntopic bogus y\n").unwrap();
    let bad = mqsec(&[
        "auth-server",
        "--password-file",
        passwd.to_str().unwrap(),
        "--acl-file",
        acl.to_str().unwrap(),
        "--check",
    ]);
    assert_eq!(bad.status.code(), Some(2));
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(err.contains(&format!("{}:3", acl.display())), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");

    let missing = mqsec(&[
        "auth-server",
        "--password-file",
        dir.path().join("nope").to_str().unwrap(),
        "--acl-file",
        fixture_acl().to_str().unwrap(),
        "--check",
    ]);
    assert_eq!(missing.status.code(), Some(2));
}

/// `--token-conf`: a JWT in the password is checked as `serve` checks it, and its `acl` claims
/// join the ACL file's rules for that username (engines ask topic questions by username, never
/// with the token). Password logins work beside it.
#[test]
fn tokens_log_in_and_their_claims_decide_topics() {
    let (dir, passwd) = files();
    let secret = dir.path().join("jwt.secret");
    std::fs::write(&secret, "auth-server-test-secret-0123456789abcdef\n").unwrap();
    let conf = dir.path().join("tokens.conf");
    std::fs::write(
        &conf,
        format!("token_key_file {}\ntoken_audience mqtt\n", secret.display()),
    )
    .unwrap();
    let srv = AuthServerProc::start(
        dir.path(),
        &passwd,
        &fixture_acl(),
        &[
            "--token-conf",
            conf.to_str().unwrap(),
            "--security-log",
            "stderr",
        ],
    );
    let mint = |sub: &str, aud: &str| -> String {
        let out = mqsec(&[
            "gen-token",
            "--key",
            secret.to_str().unwrap(),
            "--alg",
            "HS256",
            "--sub",
            sub,
            "--aud",
            aud,
            "--acl-pub",
            "tok/%u/up",
            "--acl-sub",
            "tok/%u/down/#",
            "--ttl",
            "1h",
        ]);
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    };
    let authn = |user: &str, pw: &str| {
        srv.json(
            "/emqx/authn",
            &serde_json::json!({"username": user, "password": pw, "clientid": "c1"}),
        )
        .1["result"]
            .clone()
    };
    let authz = |user: &str, topic: &str, action: &str| {
        srv.json(
            "/emqx/authz",
            &serde_json::json!({"username": user, "clientid": "c1", "topic": topic,
                "action": action, "qos": "0", "retain": "false"}),
        )
        .1["result"]
            .clone()
    };
    let token = mint("tok1", "mqtt");
    // The file alone says nothing for tok1: denied until its token has logged in.
    assert_eq!(authz("tok1", "tok/tok1/up", "publish"), "deny");
    assert_eq!(authn("tok1", &token), "allow");
    assert_eq!(authz("tok1", "tok/tok1/up", "publish"), "allow");
    assert_eq!(authz("tok1", "tok/tok2/up", "publish"), "deny");
    assert_eq!(authz("tok1", "tok/tok1/down/#", "subscribe"), "allow");
    assert_eq!(authz("tok1", "tok/tok1/up", "subscribe"), "deny");
    // RabbitMQ asks the same with the token as the password.
    assert_eq!(
        srv.form("/rabbitmq/user", &format!("username=tok1&password={token}"))
            .1,
        "allow"
    );
    // Refused: another username, no username, another audience, a forged signature.
    assert_eq!(authn("tok2", &token), "deny");
    assert_eq!(authn("", &token), "deny");
    assert_eq!(authn("tok1", &mint("tok1", "elsewhere")), "deny");
    // One character in the middle of the signature changed (the last one may be padding bits).
    let sig = token.rfind('.').unwrap() + 5;
    let mut forged = token.clone().into_bytes();
    forged[sig] = if forged[sig] == b'A' { b'B' } else { b'A' };
    let forged = String::from_utf8(forged).unwrap();
    assert_eq!(authn("tok1", &forged), "deny");
    // Passwords still go to the password file.
    assert_eq!(authn("device1", "devpass"), "allow");
    assert_eq!(authn("device1", "wrong"), "deny");
    let log = srv.log_text();
    assert!(
        log.contains(r#""event":"auth_failure""#) && log.contains("token: "),
        "{log}"
    );
    assert!(!log.contains(&token), "the token is never logged");

    // A token file takes only token_* lines, checked as in a broker's configuration.
    let bad = dir.path().join("bad-tokens.conf");
    std::fs::write(
        &bad,
        format!("token_key_file {}\nlistener 1883\n", secret.display()),
    )
    .unwrap();
    let out = mqsec(&[
        "auth-server",
        "--password-file",
        passwd.to_str().unwrap(),
        "--acl-file",
        fixture_acl().to_str().unwrap(),
        "--token-conf",
        bad.to_str().unwrap(),
        "--check",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad-tokens.conf:2") && err.contains("token_*"),
        "{err}"
    );
}
