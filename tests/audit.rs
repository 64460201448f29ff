//! `mqsec audit` against real Mosquitto brokers on loopback, each configured badly on purpose (or
//! hardened), with certificates made here; TLS results compared with `sslscan`; JSON validated
//! against docs/audit-report.schema.json with Python `jsonschema`.

use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};
use serde_json::Value;

mod common;

use common::{free_port, mosquitto_passwd, mqsec_bin, ChildGuard, Mosquitto, LISTEN_TIMEOUT};

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
    elapsed: Duration,
}

fn audit(args: &[&str], env: &[(&str, &str)], stdin: Option<&str>) -> Out {
    let start = Instant::now();
    let mut cmd = Command::new(mqsec_bin());
    cmd.arg("audit")
        .args(args)
        .env_remove("MQSEC_PASSWORD")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    {
        let mut sin = child.stdin.take().unwrap();
        if let Some(s) = stdin {
            sin.write_all(s.as_bytes()).unwrap();
        }
    }
    // Every wait has a bound: a hung audit fails the test instead of hanging it.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("mqsec audit {args:?} did not finish within 60 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    Out {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        elapsed: start.elapsed(),
    }
}

/// Every check of the catalogue (as `mqsec audit --help` lists it) is either run or not tested,
/// with a reason: none is silently left out (and so mistaken for passed).
fn assert_every_check_accounted_for(report: &Value) {
    let help = Command::new(mqsec_bin())
        .args(["audit", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&help.stdout).into_owned();
    let catalogue: Vec<&str> = help
        .lines()
        .filter_map(|l| l.strip_prefix("  ")?.split_once(" ("))
        .filter(|(id, rest)| {
            !id.contains(' ')
                && ["info", "low", "medium", "high", "critical"]
                    .iter()
                    .any(|s| rest.starts_with(&format!("{s}): ")))
        })
        .map(|(id, _)| id)
        .collect();
    assert!(catalogue.len() >= 30, "{help}");
    let run: Vec<&str> = report["checks_run"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    let not_tested: Vec<&str> = report["not_tested"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            assert!(!n["reason"].as_str().unwrap().is_empty(), "{n}");
            n["id"].as_str().unwrap()
        })
        .collect();
    for id in &catalogue {
        let n = run.iter().chain(&not_tested).filter(|x| *x == id).count();
        assert_eq!(n, 1, "{id}: run {run:?}, not tested {not_tested:?}");
    }
    assert_eq!(run.len() + not_tested.len(), catalogue.len());
}

fn json(o: &Out) -> Value {
    serde_json::from_str(&o.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}\nstderr: {}", o.stdout, o.stderr))
}

fn ids(report: &Value) -> Vec<String> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["id"].as_str().unwrap().to_string())
        .collect()
}

fn finding<'a>(report: &'a Value, id: &str) -> &'a Value {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["id"] == id)
        .unwrap_or_else(|| panic!("no {id} finding in {report:#}"))
}

fn worst_at_least_high(report: &Value) -> Vec<String> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["severity"] == "high" || f["severity"] == "critical")
        .map(|f| f["id"].as_str().unwrap().to_string())
        .collect()
}

fn validate_schema(dir: &Path, o: &Out) {
    let file = dir.join(format!("report-{}.json", rand::random::<u32>()));
    std::fs::write(&file, &o.stdout).unwrap();
    let script = "import json,sys,jsonschema\n\
        s=json.load(open(sys.argv[1]))\n\
        jsonschema.Draft202012Validator.check_schema(s)\n\
        jsonschema.validate(json.load(open(sys.argv[2])), s, cls=jsonschema.Draft202012Validator)\n";
    let out = Command::new(common::python())
        .args(["-c", script])
        .arg(common::root().join("docs/audit-report.schema.json"))
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "JSON does not validate: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

// ---------- certificates ----------

struct Ca {
    issuer: Issuer<'static, KeyPair>,
    pem: String,
    key_pem: String,
}

fn ca() -> Ca {
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.distinguished_name
        .push(DnType::CommonName, "mqsec test CA");
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let key = KeyPair::generate().unwrap();
    let cert = p.self_signed(&key).unwrap();
    let key_pem = key.serialize_pem();
    Ca {
        issuer: Issuer::new(p, key),
        pem: cert.pem(),
        key_pem,
    }
}

/// An EC P-256 server certificate for `names`, valid from `from` to `to` days from now. Returns
/// (cert path, key path).
fn leaf(
    dir: &Path,
    name: &str,
    ca: Option<&Ca>,
    dns: &[&str],
    from: i64,
    to: i64,
) -> (PathBuf, PathBuf) {
    let mut p =
        CertificateParams::new(dns.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
    if dns.is_empty() || dns.contains(&"localhost") {
        p.subject_alt_names
            .push(SanType::IpAddress("127.0.0.1".parse().unwrap()));
    }
    p.distinguished_name.push(DnType::CommonName, name);
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let now = time::OffsetDateTime::now_utc();
    p.not_before = now + time::Duration::days(from);
    p.not_after = now + time::Duration::days(to);
    let key = KeyPair::generate().unwrap();
    let cert = match ca {
        Some(ca) => p.signed_by(&key, &ca.issuer).unwrap(),
        None => p.self_signed(&key).unwrap(),
    };
    let c = dir.join(format!("{name}.crt"));
    let k = dir.join(format!("{name}.key"));
    std::fs::write(&c, cert.pem()).unwrap();
    std::fs::write(&k, key.serialize_pem()).unwrap();
    (c, k)
}

fn run_ok(cmd: &mut Command) {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// An RSA server certificate signed by `ca` with openssl (rcgen makes neither 1024-bit keys nor
/// SHA-1 signatures).
fn openssl_leaf(dir: &Path, name: &str, ca: &Ca, bits: u32, digest: &str) -> (PathBuf, PathBuf) {
    let ca_crt = dir.join("ca-for-openssl.crt");
    let ca_key = dir.join("ca-for-openssl.key");
    std::fs::write(&ca_crt, &ca.pem).unwrap();
    std::fs::write(&ca_key, &ca.key_pem).unwrap();
    let k = dir.join(format!("{name}.key"));
    let csr = dir.join(format!("{name}.csr"));
    let c = dir.join(format!("{name}.crt"));
    let ext = dir.join(format!("{name}.ext"));
    std::fs::write(
        &ext,
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    run_ok(
        Command::new("openssl")
            .args(["req", "-new", "-nodes", "-newkey"])
            .arg(format!("rsa:{bits}"))
            .arg("-keyout")
            .arg(&k)
            .arg("-out")
            .arg(&csr)
            .args(["-subj", &format!("/CN={name}")]),
    );
    run_ok(
        Command::new("openssl")
            .args(["x509", "-req", "-days", "90"])
            .arg(format!("-{digest}"))
            .arg("-in")
            .arg(&csr)
            .arg("-CA")
            .arg(&ca_crt)
            .arg("-CAkey")
            .arg(&ca_key)
            .arg("-CAcreateserial")
            .arg("-extfile")
            .arg(&ext)
            .arg("-out")
            .arg(&c),
    );
    (c, k)
}

fn tls_listener(port: u16, cert: &(PathBuf, PathBuf), extra: &str) -> String {
    format!(
        "listener {port} 127.0.0.1\ncertfile {}\nkeyfile {}\n{extra}\n",
        cert.0.display(),
        cert.1.display()
    )
}

/// `openssl s_server -quiet ARGS -accept ACCEPT` with `cert`, its stderr in `log`, once it listens
/// on `port`. Its stdin stays open and idle: s_server relays stdin to the client and stops at EOF.
fn s_server(
    args: &[&str],
    accept: &str,
    port: u16,
    cert: &(PathBuf, PathBuf),
    log: PathBuf,
) -> ChildGuard {
    let child = Command::new("openssl")
        .args(["s_server", "-quiet"])
        .args(args)
        .args(["-accept", accept])
        .arg("-cert")
        .arg(&cert.0)
        .arg("-key")
        .arg(&cert.1)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("openssl is installed");
    let mut server = ChildGuard::with_log(child, log);
    server.wait_listening("127.0.0.1", &[port], LISTEN_TIMEOUT);
    server
}

// ---------- sslscan ----------

/// (enabled protocols, accepted suites per protocol) from `sslscan --no-colour`.
fn sslscan(port: u16) -> (Vec<String>, std::collections::BTreeMap<String, Vec<String>>) {
    let out = Command::new("sslscan")
        .args(["--no-colour", "--no-groups", "--no-heartbleed"])
        .arg(format!("127.0.0.1:{port}"))
        .output()
        .expect("sslscan is installed");
    let text = String::from_utf8_lossy(&out.stdout);
    let mut protocols = Vec::new();
    let mut suites: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for line in text.lines() {
        let w: Vec<&str> = line.split_whitespace().collect();
        match w.as_slice() {
            [proto, "enabled"] if proto.starts_with("SSL") || proto.starts_with("TLS") => {
                protocols.push(proto.to_string())
            }
            ["Preferred" | "Accepted", proto, _bits, "bits", name, ..] => suites
                .entry(proto.to_string())
                .or_default()
                .push(name.to_string()),
            _ => {}
        }
    }
    for v in suites.values_mut() {
        v.sort();
    }
    protocols.sort();
    (protocols, suites)
}

fn assert_agrees_with_sslscan(report: &Value, port: u16) {
    let (protocols, suites) = sslscan(port);
    let mut ours: Vec<String> = report["tls"]["protocols"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    ours.sort();
    assert_eq!(ours, protocols, "protocols differ from sslscan on {port}");
    let mut our_suites: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for (proto, list) in report["tls"]["ciphers"].as_object().unwrap() {
        let mut v: Vec<String> = list
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap().to_string())
            .collect();
        v.sort();
        our_suites.insert(proto.clone(), v);
    }
    assert_eq!(our_suites, suites, "suites differ from sslscan on {port}");
}

// ---------- tests ----------

#[test]
fn anonymous_plaintext_broker_with_open_topics() {
    let dir = tempfile::tempdir().unwrap();
    let m = Mosquitto::start(dir.path(), "allow_anonymous true\n");
    let port = m.port;
    for (topic, payload) in [("plant/door/code", "4711"), ("plant/temp", "21.5")] {
        run_ok(
            Command::new("mosquitto_pub")
                .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-r"])
                .args(["-t", topic, "-m", payload]),
        );
    }
    let target = format!("127.0.0.1:{port}");
    let o = audit(&[&target, "--format", "json", "--timeout", "3"], &[], None);
    assert_eq!(o.code, 1, "{}", o.stderr);
    validate_schema(dir.path(), &o);
    let r = json(&o);
    assert_every_check_accounted_for(&r);
    let found = ids(&r);
    for id in [
        "anonymous-access",
        "plaintext-mqtt",
        "wildcard-subscription",
        "sys-topics-readable",
        "broker-version-disclosed",
        "retained-messages-readable",
        "client-id-takeover",
        "oversized-packet-accepted",
    ] {
        assert!(found.contains(&id.to_string()), "{id} missing: {found:?}");
    }
    assert_eq!(finding(&r, "wildcard-subscription")["severity"], "high");
    assert!(finding(&r, "broker-version-disclosed")["evidence"]
        .as_str()
        .unwrap()
        .contains("mosquitto version"));
    let retained = finding(&r, "retained-messages-readable")["evidence"]
        .as_str()
        .unwrap();
    assert!(retained.contains("plant/door/code"), "{retained}");
    assert!(
        !o.stdout.contains("4711"),
        "payload shown without --show-payloads"
    );
    // A plaintext port: TLS checks are not tested, never passed.
    let nt: Vec<&str> = r["not_tested"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["id"].as_str().unwrap())
        .collect();
    assert!(nt.contains(&"tls-v1-0-enabled") && nt.contains(&"cert-expired"));
    assert!(!r["checks_run"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c == "cert-expired"));

    let shown = audit(
        &[
            &target,
            "--format",
            "json",
            "--show-payloads",
            "--timeout",
            "3",
        ],
        &[],
        None,
    );
    assert!(shown.stdout.contains("4711"));

    // An open broker admits any password: the wordlist is not run (it would "find" every line),
    // and an identity given with --username is audited beside the anonymous session.
    let wl = dir.path().join("wl.txt");
    std::fs::write(&wl, "admin:admin\n").unwrap();
    let o = audit(
        &[
            &target,
            "--format",
            "json",
            "--timeout",
            "3",
            "--wordlist",
            wl.to_str().unwrap(),
            "--username",
            "bob",
        ],
        &[("MQSEC_PASSWORD", "whatever")],
        None,
    );
    let r = json(&o);
    assert!(!ids(&r).contains(&"weak-credentials".to_string()));
    let nt = r["not_tested"].as_array().unwrap();
    let reason = nt.iter().find(|n| n["id"] == "weak-credentials").unwrap()["reason"]
        .as_str()
        .unwrap();
    assert!(reason.contains("accepts any"), "{reason}");
    assert_eq!(finding(&r, "identity-read-access")["severity"], "medium");
    // Without --active nothing is published.
    assert!(!ids(&r).contains(&"identity-can-publish".to_string()));
    let o = audit(
        &[&target, "--format", "json", "--timeout", "3", "--active"],
        &[],
        None,
    );
    let ev = finding(&json(&o), "identity-can-publish")["evidence"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        ev.starts_with("an anonymous client published to \"mqsec-audit/"),
        "{ev}"
    );

    // Table: findings and a one-line summary; no critical finding, so --fail-on critical passes.
    let t = audit(
        &[&target, "--fail-on", "critical", "--timeout", "3"],
        &[],
        None,
    );
    assert_eq!(t.code, 0, "{}", t.stderr);
    assert!(t.stdout.contains("anonymous-access"));
    let summary = t
        .stdout
        .lines()
        .find(|l| l.starts_with("summary:"))
        .unwrap();
    assert!(summary.contains("2 high"), "{summary}");

    // SARIF 2.1.0: the required structure, every result pointing at a declared rule.
    let s = audit(&[&target, "--format", "sarif", "--timeout", "3"], &[], None);
    assert_eq!(s.code, 1);
    let sarif: Value = serde_json::from_str(&s.stdout).unwrap();
    assert_eq!(sarif["version"], "2.1.0");
    let run = &sarif["runs"][0];
    assert_eq!(run["tool"]["driver"]["name"], "mqsec");
    let rules: Vec<&str> = run["tool"]["driver"]["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    let results = run["results"].as_array().unwrap();
    assert_eq!(results.len(), found.len());
    for res in results {
        let rule = res["ruleId"].as_str().unwrap();
        assert!(rules.contains(&rule));
        assert_eq!(rules[res["ruleIndex"].as_u64().unwrap() as usize], rule);
        assert!(["error", "warning", "note"].contains(&res["level"].as_str().unwrap()));
        assert!(!res["message"]["text"].as_str().unwrap().is_empty());
        assert!(
            res["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
                .as_str()
                .unwrap()
                .starts_with("mqtt://")
        );
    }
}

#[test]
fn weak_password_found_by_wordlist_without_revealing_it() {
    let dir = tempfile::tempdir().unwrap();
    let pw = dir.path().join("passwd");
    std::fs::write(&pw, "").unwrap();
    mosquitto_passwd(&["-b", pw.to_str().unwrap(), "alice", "letmein"]);
    let m = Mosquitto::start(
        dir.path(),
        &format!("allow_anonymous false\npassword_file {}\n", pw.display()),
    );
    let port = m.port;
    let wl = dir.path().join("wordlist.txt");
    std::fs::write(
        &wl,
        "# users to try\nbob:secret\nalice:123456\nalice:letmein\ncarol:x\n",
    )
    .unwrap();
    let target = format!("127.0.0.1:{port}");
    let o = audit(
        &[
            &target,
            "--format",
            "json",
            "--wordlist",
            wl.to_str().unwrap(),
            "--wordlist-delay-ms",
            "20",
            "--timeout",
            "3",
        ],
        &[],
        None,
    );
    assert_eq!(o.code, 1, "{}", o.stderr);
    validate_schema(dir.path(), &o);
    let r = json(&o);
    let weak = finding(&r, "weak-credentials");
    assert_eq!(weak["severity"], "critical");
    let ev = weak["evidence"].as_str().unwrap();
    assert!(
        ev.contains("\"alice\"") && ev.contains("attempt 3 of 4"),
        "{ev}"
    );
    assert!(!o.stdout.contains("letmein") && !o.stderr.contains("letmein"));
    assert_eq!(finding(&r, "anonymous-refused")["severity"], "info");
    assert_eq!(
        finding(&r, "credentials-over-plaintext")["severity"],
        "high"
    );
    assert!(!ids(&r).contains(&"anonymous-access".to_string()));
    // Refused anonymously and no --username: session checks are not tested, not passed.
    let nt: Vec<&str> = r["not_tested"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["id"].as_str().unwrap())
        .collect();
    assert!(nt.contains(&"wildcard-subscription") && nt.contains(&"client-id-takeover"));

    // --username with the password on stdin: the identity's reads (and, with --active, writes)
    // are reported.
    let o = audit(
        &[
            &target,
            "--format",
            "json",
            "--username",
            "alice",
            "--password-stdin",
            "--active",
            "--timeout",
            "3",
        ],
        &[],
        Some("letmein\n"),
    );
    let r = json(&o);
    assert!(
        ids(&r).contains(&"identity-read-access".to_string()),
        "{r:#}"
    );
    // --active: with no ACL, alice may publish anywhere, and the probe message comes back.
    let ev = finding(&r, "identity-can-publish")["evidence"]
        .as_str()
        .unwrap();
    assert!(ev.contains("mqsec-audit/"), "{ev}");
    // A username without a password source is a usage error, and argv has no password option.
    let o = audit(&[&target, "--username", "alice"], &[], None);
    assert_eq!(o.code, 2);
    assert!(o.stderr.contains("MQSEC_PASSWORD"), "{}", o.stderr);
    assert_eq!(audit(&[&target, "--password", "x"], &[], None).code, 2);
}

#[test]
fn certificate_weaknesses_each_fire_on_their_own_broker() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ca = ca();
    let cafile = d.join("ca.pem");
    std::fs::write(&cafile, &ca.pem).unwrap();
    let weak_ok = "ciphers DEFAULT:@SECLEVEL=0";
    let cases: Vec<(&str, (PathBuf, PathBuf), &str, &str)> = vec![
        (
            "good",
            leaf(d, "good", Some(&ca), &["localhost"], -1, 365),
            "",
            "",
        ),
        (
            "expired",
            leaf(d, "expired", Some(&ca), &["localhost"], -30, -2),
            "",
            "cert-expired",
        ),
        (
            "notyet",
            leaf(d, "notyet", Some(&ca), &["localhost"], 5, 90),
            "",
            "cert-not-yet-valid",
        ),
        (
            "soon",
            leaf(d, "soon", Some(&ca), &["localhost"], -1, 10),
            "",
            "cert-expiring-soon",
        ),
        (
            "selfsigned",
            leaf(d, "selfsigned", None, &["localhost"], -1, 90),
            "",
            "cert-self-signed",
        ),
        (
            "wronghost",
            leaf(d, "wronghost", Some(&ca), &["other.example"], -1, 90),
            "",
            "cert-hostname-mismatch",
        ),
        (
            "rsa1024",
            openssl_leaf(d, "rsa1024", &ca, 1024, "sha256"),
            weak_ok,
            "cert-weak-key",
        ),
        (
            "sha1",
            openssl_leaf(d, "sha1", &ca, 2048, "sha1"),
            weak_ok,
            "cert-weak-signature",
        ),
    ];
    let ports: Vec<u16> = cases.iter().map(|_| free_port()).collect();
    let mut conf = String::from("allow_anonymous true\n");
    for ((_, cert, extra, _), port) in cases.iter().zip(&ports) {
        conf.push_str(&tls_listener(*port, cert, extra));
    }
    let _m = Mosquitto::start_full(d, "certs", &conf, "127.0.0.1", &ports);
    let targets: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
    let mut args: Vec<&str> = targets.iter().map(String::as_str).collect();
    args.extend([
        "--format",
        "json",
        "--cafile",
        cafile.to_str().unwrap(),
        "--timeout",
        "3",
    ]);
    let o = audit(&args, &[], None);
    assert_eq!(o.code, 1, "{}", o.stderr);
    validate_schema(d, &o);
    let all = json(&o);
    let reports = all["targets"].as_array().unwrap();
    assert_eq!(reports.len(), cases.len());
    for ((name, _, _, expected), (report, target)) in cases.iter().zip(reports.iter().zip(&targets))
    {
        assert_eq!(report["target"], target.as_str());
        let cert_ids: Vec<String> = ids(report)
            .into_iter()
            .filter(|i| i.starts_with("cert-"))
            .collect();
        if expected.is_empty() {
            assert!(cert_ids.is_empty(), "{name}: {cert_ids:?}");
            continue;
        }
        assert!(
            cert_ids.contains(&expected.to_string()),
            "{name}: expected {expected}, got {cert_ids:?}"
        );
        // Only that weakness, except that webpki also refuses to chain 1024-bit and SHA-1 certificates.
        for other in &cert_ids {
            assert!(
                other == expected
                    || (other == "cert-untrusted" && matches!(*name, "rsa1024" | "sha1")),
                "{name}: unexpected {other} in {cert_ids:?}"
            );
        }
    }
    let soon = reports[3]["findings"].as_array().unwrap();
    assert!(soon
        .iter()
        .all(|f| f["severity"] != "high" || f["id"] != "cert-expiring-soon"));
    // --warn-days 5 silences the 10-day warning.
    let o = audit(
        &[
            &targets[3],
            "--format",
            "json",
            "--cafile",
            cafile.to_str().unwrap(),
            "--warn-days",
            "5",
            "--timeout",
            "3",
        ],
        &[],
        None,
    );
    assert!(!ids(&json(&o)).contains(&"cert-expiring-soon".to_string()));
    // The good certificate without --cafile: its private CA is not a system root.
    let o = audit(
        &[&targets[0], "--format", "json", "--timeout", "3"],
        &[],
        None,
    );
    let r = json(&o);
    let ev = finding(&r, "cert-untrusted")["evidence"].as_str().unwrap();
    assert!(ev.contains("not among the trusted roots"), "{ev}");
}

#[test]
fn legacy_tls_and_weak_suites_agree_with_sslscan() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ca = ca();
    let rsa = openssl_leaf(d, "rsa", &ca, 2048, "sha256");
    let port = free_port();
    let _m = Mosquitto::start_full(
        d,
        "legacy",
        &format!(
            "allow_anonymous true\n{}",
            tls_listener(
                port,
                &rsa,
                "tls_version tlsv1.1\nciphers ECDHE-RSA-AES128-GCM-SHA256:AES128-SHA:NULL-SHA256:@SECLEVEL=0"
            )
        ),
        "127.0.0.1",
        &[port],
    );
    // The field note: trust the test only once OpenSSL itself speaks TLS 1.1 to it.
    let check = Command::new("openssl")
        .args([
            "s_client",
            "-tls1_1",
            "-cipher",
            "DEFAULT:@SECLEVEL=0",
            "-connect",
        ])
        .arg(format!("127.0.0.1:{port}"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&check.stdout);
    // A failure, not a skip: an audit test that passes without auditing proves nothing.
    assert!(
        text.contains("Protocol  : TLSv1.1"),
        "the local OpenSSL cannot negotiate TLS 1.1 even at SECLEVEL=0 (Debian 12's OpenSSL 3 can), \
         so this test cannot check what audit finds on a TLS 1.1 broker:\n{text}{}",
        String::from_utf8_lossy(&check.stderr)
    );
    let target = format!("127.0.0.1:{port}");
    let o = audit(&[&target, "--format", "json", "--timeout", "3"], &[], None);
    assert_eq!(o.code, 1, "{}", o.stderr);
    let r = json(&o);
    eprintln!(
        "full audit of an open, weak TLS broker on loopback: {} ms (wall {} ms)",
        r["duration_ms"],
        o.elapsed.as_millis()
    );
    let found = ids(&r);
    for id in [
        "tls-v1-1-enabled",
        "tls-cipher-null",
        "tls-cipher-no-forward-secrecy",
        "tls-cipher-cbc",
    ] {
        assert!(found.contains(&id.to_string()), "{id} missing: {found:?}");
    }
    assert!(!found.contains(&"tls-v1-0-enabled".to_string()));
    assert_eq!(finding(&r, "tls-cipher-null")["severity"], "critical");
    assert!(finding(&r, "tls-cipher-null")["evidence"]
        .as_str()
        .unwrap()
        .contains("NULL-SHA256"));
    assert_agrees_with_sslscan(&r, port);

    // TLS 1.0: Mosquitto 2.0's tls_version cannot go below 1.1, so an OpenSSL server plays the peer.
    let p10 = free_port();
    let s = s_server(
        &["-tls1", "-cipher", "DEFAULT:@SECLEVEL=0"],
        &p10.to_string(),
        p10,
        &rsa,
        d.join("s_server.log"),
    );
    let target10 = format!("127.0.0.1:{p10}");
    let o = audit(
        &[&target10, "--format", "json", "--timeout", "3"],
        &[],
        None,
    );
    let r = json(&o);
    assert!(ids(&r).contains(&"tls-v1-0-enabled".to_string()), "{r:#}");
    assert_eq!(r["tls"]["protocols"], serde_json::json!(["TLSv1.0"]));
    // rustls cannot speak TLS 1.0, so the chain comes from the raw handshake.
    assert!(r["tls"]["certificate"]["subject"]
        .as_str()
        .unwrap()
        .contains("rsa"));
    assert_agrees_with_sslscan(&r, p10);
    drop(s);

    // Anonymous DH beside ECDHE, from a TLS peer that never answers MQTT: TLS findings are made,
    // the MQTT checks end in "not tested" within the timeout instead of hanging.
    let padh = free_port();
    let _adh = s_server(
        &[
            "-tls1_2",
            "-cipher",
            "ECDHE-RSA-AES128-GCM-SHA256:ADH-AES128-GCM-SHA256:@SECLEVEL=0",
        ],
        &padh.to_string(),
        padh,
        &rsa,
        d.join("s_server_adh.log"),
    );
    let o = audit(
        &[
            &format!("127.0.0.1:{padh}"),
            "--format",
            "json",
            "--timeout",
            "1",
        ],
        &[],
        None,
    );
    assert!(o.elapsed < Duration::from_secs(15), "{:?}", o.elapsed);
    let r = json(&o);
    assert_eq!(r["reachable"], true);
    let anon = finding(&r, "tls-cipher-anonymous");
    assert_eq!(anon["severity"], "high");
    assert!(anon["evidence"]
        .as_str()
        .unwrap()
        .contains("ADH-AES128-GCM-SHA256"));
    let reason = r["not_tested"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["id"] == "anonymous-access")
        .unwrap_or_else(|| panic!("{r:#}"))["reason"]
        .as_str()
        .unwrap();
    assert!(reason.contains("timed out"), "{reason}");
    assert_agrees_with_sslscan(&r, padh);
}

#[test]
fn plaintext_beside_tls_and_websocket_without_tls() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ca = ca();
    let cafile = d.join("ca.pem");
    std::fs::write(&cafile, &ca.pem).unwrap();
    let cert = leaf(d, "srv", Some(&ca), &["localhost"], -1, 365);
    let (tls, plain, ws) = (free_port(), free_port(), free_port());
    let _m = Mosquitto::start_full(
        d,
        "mixed",
        &format!(
            "allow_anonymous true\n{}listener {plain} 127.0.0.1\nlistener {ws} 127.0.0.1\nprotocol websockets\n",
            tls_listener(tls, &cert, "")
        ),
        "127.0.0.1",
        &[tls, plain, ws],
    );
    let o = audit(
        &[
            &format!("127.0.0.1:{tls}"),
            "--also",
            &plain.to_string(),
            "--cafile",
            cafile.to_str().unwrap(),
            "--format",
            "json",
            "--timeout",
            "3",
        ],
        &[],
        None,
    );
    let r = json(&o);
    assert_eq!(r["transport"], "tls");
    let ev = finding(&r, "plaintext-beside-tls")["evidence"]
        .as_str()
        .unwrap();
    assert!(ev.contains(&plain.to_string()), "{ev}");
    assert!(!ids(&r).contains(&"plaintext-mqtt".to_string()));

    let o = audit(
        &[
            &format!("127.0.0.1:{ws}"),
            "--ws",
            "/mqtt",
            "--format",
            "json",
            "--timeout",
            "3",
        ],
        &[],
        None,
    );
    let r = json(&o);
    let found = ids(&r);
    assert!(
        found.contains(&"websocket-without-tls".to_string()),
        "{r:#}"
    );
    assert!(found.contains(&"anonymous-access".to_string()));
    assert!(found.contains(&"sys-topics-readable".to_string()));
}

#[test]
fn hardened_brokers_have_no_high_finding() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ca = ca();
    let cafile = d.join("ca.pem");
    std::fs::write(&cafile, &ca.pem).unwrap();
    let cert = leaf(d, "hardened", Some(&ca), &["localhost"], -1, 365);
    let pw = d.join("passwd");
    std::fs::write(&pw, "").unwrap();
    for (u, p) in [
        ("auditor", "Aud1t-only-reads"),
        ("admin", "Adm1n-long-secret"),
    ] {
        mosquitto_passwd(&["-b", pw.to_str().unwrap(), u, p]);
    }
    let acl = d.join("acl");
    std::fs::write(
        &acl,
        "user admin\ntopic readwrite plant/#\n\nuser auditor\ntopic read plant/public/#\n",
    )
    .unwrap();
    let tls_opts = "tls_version tlsv1.2\nciphers ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305";
    let (mqtts, wss) = (free_port(), free_port());
    let _m = Mosquitto::start_full(
        d,
        "hardened",
        &format!(
            "allow_anonymous false\npassword_file {}\nacl_file {}\nmax_packet_size 65536\n{}{}protocol websockets\n",
            pw.display(),
            acl.display(),
            tls_listener(mqtts, &cert, tls_opts),
            tls_listener(wss, &cert, tls_opts),
        ),
        "127.0.0.1",
        &[mqtts, wss],
    );
    run_ok(
        Command::new("mosquitto_pub")
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &mqtts.to_string(),
                "--insecure",
                "--cafile",
            ])
            .arg(&cafile)
            .args([
                "-u",
                "admin",
                "-P",
                "Adm1n-long-secret",
                "-r",
                "-t",
                "plant/secret/key",
                "-m",
                "k",
            ]),
    );
    let ca_arg = cafile.to_str().unwrap();
    let target = format!("127.0.0.1:{mqtts}");
    let o = audit(
        &[&target, "--cafile", ca_arg, "--format", "json"],
        &[],
        None,
    );
    assert_eq!(o.code, 0, "{}\n{}", o.stdout, o.stderr);
    validate_schema(d, &o);
    let r = json(&o);
    assert_every_check_accounted_for(&r);
    assert!(worst_at_least_high(&r).is_empty(), "{r:#}");
    assert_eq!(
        r["tls"]["protocols"],
        serde_json::json!(["TLSv1.2", "TLSv1.3"])
    );
    assert!(ids(&r).contains(&"anonymous-refused".to_string()));
    eprintln!(
        "full audit of one TLS broker on loopback: {} ms (wall {} ms)",
        r["duration_ms"],
        o.elapsed.as_millis()
    );
    assert_agrees_with_sslscan(&r, mqtts);

    // With a low-privilege identity: it reads nothing outside plant/public, no `$SYS`, and a
    // 300 KiB packet is refused (max_packet_size).
    let env = [("MQSEC_PASSWORD", "Aud1t-only-reads")];
    let o = audit(
        &[
            &target,
            "--cafile",
            ca_arg,
            "--format",
            "json",
            "--username",
            "auditor",
            "--active",
        ],
        &env,
        None,
    );
    assert_eq!(o.code, 0, "{}\n{}", o.stdout, o.stderr);
    let r = json(&o);
    assert_every_check_accounted_for(&r);
    // One identity replacing its own connection is MQTT, not a takeover: not tested, no finding.
    assert!(!ids(&r).contains(&"client-id-takeover".to_string()));
    let takeover = r["not_tested"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["id"] == "client-id-takeover")
        .unwrap();
    assert!(
        takeover["reason"]
            .as_str()
            .unwrap()
            .contains("needs anonymous access"),
        "{takeover}"
    );
    eprintln!(
        "full audit of one TLS broker on loopback with --username --active: {} ms (wall {} ms)",
        r["duration_ms"],
        o.elapsed.as_millis()
    );
    assert!(worst_at_least_high(&r).is_empty(), "{r:#}");
    let read = finding(&r, "identity-read-access");
    assert_eq!(read["severity"], "info", "{read}");
    let found = ids(&r);
    for absent in [
        "sys-topics-readable",
        "retained-messages-readable",
        "oversized-packet-accepted",
        "identity-can-publish",
        "credentials-over-plaintext",
    ] {
        assert!(
            !found.contains(&absent.to_string()),
            "{absent} in {found:?}"
        );
    }
    assert!(
        r["checks_run"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c == "oversized-packet-accepted"),
        "{:#}",
        r["not_tested"]
    );

    // The same broker over secure WebSockets, with and without the identity.
    let wtarget = format!("127.0.0.1:{wss}");
    for with_identity in [false, true] {
        let mut args = vec![
            wtarget.as_str(),
            "--ws",
            "/mqtt",
            "--cafile",
            ca_arg,
            "--format",
            "json",
        ];
        if with_identity {
            args.extend(["--username", "auditor"]);
        }
        let o = audit(&args, &env, None);
        assert_eq!(o.code, 0, "{}\n{}", o.stdout, o.stderr);
        let r = json(&o);
        assert!(worst_at_least_high(&r).is_empty(), "{r:#}");
        assert!(!ids(&r).contains(&"websocket-without-tls".to_string()));
        if with_identity {
            assert!(
                ids(&r).contains(&"identity-read-access".to_string()),
                "{r:#}"
            );
        }
    }
}

#[test]
fn client_certificate_required_is_reported_not_passed() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ca = ca();
    let cafile = d.join("ca.pem");
    std::fs::write(&cafile, &ca.pem).unwrap();
    let cert = leaf(d, "mtls", Some(&ca), &["localhost"], -1, 365);
    let port = free_port();
    let _m = Mosquitto::start_full(
        d,
        "mtls",
        &format!(
            "allow_anonymous true\n{}",
            tls_listener(
                port,
                &cert,
                &format!("require_certificate true\ncafile {}", cafile.display())
            )
        ),
        "127.0.0.1",
        &[port],
    );
    let o = audit(
        &[
            &format!("127.0.0.1:{port}"),
            "--cafile",
            cafile.to_str().unwrap(),
            "--format",
            "json",
            "--timeout",
            "3",
        ],
        &[],
        None,
    );
    assert_eq!(o.code, 0, "{}", o.stderr);
    let r = json(&o);
    assert_eq!(finding(&r, "tls-client-cert-required")["severity"], "info");
    assert_eq!(r["tls"]["client_certificate_required"], true);
    let nt: Vec<&str> = r["not_tested"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["id"].as_str().unwrap())
        .collect();
    assert!(nt.contains(&"anonymous-access"), "{nt:?}");
    assert!(!r["checks_run"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c == "anonymous-access"));
}

#[test]
fn silent_and_closed_ports_end_with_exit_2_within_the_timeout() {
    // A port that accepts and never answers: neither a ServerHello nor a CONNACK ever comes.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let sport = silent.local_addr().unwrap().port();
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop = done.clone();
    let holder = std::thread::spawn(move || {
        let mut held = Vec::new();
        silent.set_nonblocking(true).unwrap();
        let end = Instant::now() + Duration::from_secs(30);
        while Instant::now() < end && !stop.load(std::sync::atomic::Ordering::SeqCst) {
            if let Ok((s, _)) = silent.accept() {
                held.push(s);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    });
    let o = audit(
        &[
            &format!("127.0.0.1:{sport}"),
            "--timeout",
            "1",
            "--format",
            "json",
        ],
        &[],
        None,
    );
    assert_eq!(o.code, 2, "{}", o.stderr);
    // TLS and MQTT are waited for at once: one --timeout, not one each.
    assert!(o.elapsed < Duration::from_millis(1900), "{:?}", o.elapsed);
    assert_eq!(json(&o)["reachable"], false);
    assert!(o.stderr.contains("neither TLS nor MQTT"), "{}", o.stderr);

    let closed = free_port();
    let o = audit(
        &[&format!("127.0.0.1:{closed}"), "--timeout", "1"],
        &[],
        None,
    );
    assert_eq!(o.code, 2);
    assert!(o.stderr.contains("cannot connect"), "{}", o.stderr);

    // Targets run concurrently: three silent ones (each costs --timeout 2, so 6 s one after
    // another) plus a closed one end together, all reported.
    let silent_t = format!("127.0.0.1:{sport}");
    let closed_t = format!("127.0.0.1:{closed}");
    let o = audit(
        &[
            &silent_t,
            &silent_t,
            &silent_t,
            &closed_t,
            "--timeout",
            "2",
            "--format",
            "json",
        ],
        &[],
        None,
    );
    assert_eq!(o.code, 2);
    assert!(
        o.elapsed < Duration::from_millis(4500),
        "not concurrent: {:?}",
        o.elapsed
    );
    let tmp = tempfile::tempdir().unwrap();
    validate_schema(tmp.path(), &o);
    let r = json(&o);
    let targets = r["targets"].as_array().unwrap();
    assert_eq!(targets.len(), 4);
    assert!(targets.iter().all(|t| t["reachable"] == false));
    assert_eq!(targets[3]["target"], closed_t.as_str());

    for bad in [
        vec!["broker-without-port"],
        vec!["127.0.0.1:1883", "--fail-on", "severe"],
        vec!["127.0.0.1:1883", "--timeout", "0"],
        vec!["127.0.0.1:1883", "--cafile", "/nonexistent/ca.pem"],
        vec!["127.0.0.1:1883", "--ws", "mqtt"],
    ] {
        let o = audit(&bad, &[], None);
        assert_eq!(o.code, 2, "{bad:?}: {}", o.stderr);
        assert!(
            o.stderr.starts_with("mqsec: error:"),
            "{bad:?}: {}",
            o.stderr
        );
        assert_eq!(o.stderr.trim().lines().count(), 1, "{bad:?}: {}", o.stderr);
    }
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    let _ = holder.join();
}

/// Run `mqsec audit ARGS` on a pseudo-terminal (Python's `pty.spawn`), as a user at a shell would:
/// (exit code, everything the terminal showed).
fn audit_on_tty(args: &[&str]) -> (i32, String) {
    let script = "import os, pty, sys\n\
                  sys.exit(os.waitstatus_to_exitcode(pty.spawn(sys.argv[1:])))";
    let mut child = Command::new(common::python())
        .args(["-c", script, mqsec_bin(), "audit"])
        .args(args)
        .env_remove("MQSEC_PASSWORD")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("mqsec audit {args:?} on a terminal did not finish within 60 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn ipv6_target_and_progress_only_on_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let Ok(l6) = TcpListener::bind("[::1]:0") else {
        eprintln!("skipped: no IPv6 loopback here");
        return;
    };
    let port = l6.local_addr().unwrap().port();
    drop(l6);
    let _m = Mosquitto::start_full(
        dir.path(),
        "v6",
        &format!("listener {port} ::1\nallow_anonymous true\n"),
        "::1",
        &[port],
    );
    let target = format!("[::1]:{port}");
    let o = audit(&[&target, "--format", "json", "--timeout", "3"], &[], None);
    assert_eq!(o.code, 1, "{}", o.stderr);
    let r = json(&o);
    assert_eq!(r["target"], target.as_str());
    assert_eq!(r["reachable"], true);
    assert!(ids(&r).contains(&"anonymous-access".to_string()));
    // Not a terminal: no progress bar, not even on stderr.
    assert!(!o.stderr.contains('\u{1b}'), "{:?}", o.stderr);

    // On a terminal the table comes with a progress spinner (cleared before the table) and the
    // not-tested checks grouped by reason.
    let (code, shown) = audit_on_tty(&[&target, "--timeout", "3"]);
    assert_eq!(code, 1, "{shown}");
    assert!(shown.contains("\u{1b}[2K"), "no progress bar: {shown:?}");
    // Which probe messages get drawn depends on timing; the spinner line naming the target does not.
    assert!(
        shown
            .split("\u{1b}[2K")
            .any(|seg| seg.trim_start().contains(&format!(" {target}: "))
                && !seg.contains("summary:")),
        "no spinner line for {target}: {shown:?}"
    );
    assert!(shown.contains("│ high     ┆ anonymous-access"), "{shown}");
    assert!(
        shown.contains("  the port does not speak TLS: cert-expired, "),
        "{shown}"
    );
    assert!(shown.contains(&format!("summary: {target}: ")), "{shown}");
    // JSON on a terminal is still only JSON.
    let (code, shown) = audit_on_tty(&[&target, "--format", "json", "--timeout", "3"]);
    assert_eq!(code, 1, "{shown}");
    assert!(!shown.contains('\u{1b}'), "{shown:?}");
    let v: Value = serde_json::from_str(&shown.replace("\r\n", "\n")).unwrap();
    assert_eq!(v["target"], target.as_str());
}

#[test]
fn tls_broker_that_never_sends_connack_ends_within_the_timeout() {
    // `openssl s_server` completes the TLS handshake and then relays only its (idle) stdin: TLS
    // answers, a CONNACK never comes.
    let dir = tempfile::tempdir().unwrap();
    let cert = leaf(dir.path(), "localhost", None, &["localhost"], -1, 90);
    let port = free_port();
    let log = dir.path().join("s_server.log");
    let _server = s_server(&[], &format!("127.0.0.1:{port}"), port, &cert, log);
    let target = format!("127.0.0.1:{port}");
    let o = audit(&[&target, "--timeout", "1", "--format", "json"], &[], None);
    // TLS answered, so the target is reachable; the self-signed certificate is a high finding.
    assert_eq!(o.code, 1, "{}", o.stderr);
    assert!(o.elapsed < Duration::from_secs(6), "{:?}", o.elapsed);
    let r = json(&o);
    assert_every_check_accounted_for(&r);
    assert_eq!(r["transport"], "tls");
    assert!(ids(&r).contains(&"cert-self-signed".to_string()));
    let nt = r["not_tested"].as_array().unwrap();
    for id in [
        "anonymous-access",
        "wildcard-subscription",
        "client-id-takeover",
    ] {
        let reason = nt
            .iter()
            .find(|n| n["id"] == id)
            .unwrap_or_else(|| panic!("{id} neither not-tested nor passed: {}", o.stdout))
            ["reason"]
            .as_str()
            .unwrap();
        assert!(reason.contains("timed out"), "{id}: {reason}");
    }
    assert!(!r["checks_run"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c == "anonymous-access"));
}
