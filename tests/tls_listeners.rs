//! `mqsec serve` with TLS, mTLS, WebSocket and WebSocket-over-TLS listeners, end to end: real
//! clients (mosquitto_pub/mosquitto_sub, Python paho-mqtt, `openssl s_client`), certificates made
//! in each test by `mqsec gen-*` and by openssl, and the admission limits that apply before any
//! handshake (connection slots, handshake deadline, per-source connection rate).
//!
//! Every wait is bounded and every child process is killed by a Drop guard.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{free_port, mqsec, mqsec_bin, root, wait_output, ChildGuard, LISTEN_TIMEOUT};

/// How long a client run may take (handshakes on a loaded CI machine included).
const CLIENT: Duration = Duration::from_secs(30);
/// How long something that should happen soon may take.
const WAIT: Duration = Duration::from_secs(15);

fn text(o: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn run(cmd: &mut Command) -> Output {
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    wait_output(child, CLIENT)
}

fn mqsec_ok(args: &[&str]) {
    let o = mqsec(args);
    assert!(o.status.success(), "mqsec {args:?}: {}", text(&o));
}

fn openssl_ok(args: &[&str]) -> String {
    let o = run(Command::new("openssl").args(args));
    assert!(o.status.success(), "openssl {args:?}: {}", text(&o));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Certificates made by mqsec: CA `ca` (server `broker` for localhost/127.0.0.1, clients
/// `device-1` and `device-2`, a CRL revoking nothing yet) and CA `other` (client `stranger`).
struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    fn new() -> Pki {
        let dir = tempfile::tempdir().unwrap();
        let pki = Pki { dir };
        let (ca, other, out) = (pki.p("ca"), pki.p("other"), pki.p("out"));
        mqsec_ok(&["gen-ca", "--out", &ca]);
        mqsec_ok(&["gen-ca", "--out", &other]);
        pki.server_cert(&[]);
        for (dir, name) in [(&ca, "device-1"), (&ca, "device-2"), (&other, "stranger")] {
            mqsec_ok(&[
                "gen-client-cert",
                "--ca",
                dir,
                "--out",
                &out,
                "--name",
                name,
            ]);
        }
        mqsec_ok(&["gen-crl", "--ca", &ca]);
        pki
    }

    /// `gen-server-cert` for `broker` (localhost, 127.0.0.1) into `out/`, with `extra` options.
    fn server_cert(&self, extra: &[&str]) {
        let (ca, out) = (self.p("ca"), self.p("out"));
        let mut args = vec![
            "gen-server-cert",
            "--ca",
            &ca,
            "--out",
            &out,
            "--name",
            "broker",
            "--dns",
            "localhost",
            "--ip",
            "127.0.0.1",
        ];
        args.extend_from_slice(extra);
        mqsec_ok(&args);
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn p(&self, rel: &str) -> String {
        self.dir.path().join(rel).to_str().unwrap().to_string()
    }

    /// The listener lines of an mTLS listener on `port` with this PKI's files.
    fn mtls(&self, port: u16, extra: &str) -> String {
        format!(
            "listener {port} 127.0.0.1\ncertfile {}\nkeyfile {}\ncafile {}\nrequire_certificate true\ncrlfile {}\n{extra}",
            self.p("out/broker.crt"),
            self.p("out/broker.key"),
            self.p("ca/ca.crt"),
            self.p("ca/crl.pem"),
        )
    }
}

/// A running `mqsec serve`, killed when dropped; its log is kept for assertions.
struct Serve {
    guard: ChildGuard,
    log: PathBuf,
}

impl Serve {
    /// Writes `conf` to `dir/name.conf` and waits until every port listens.
    fn start(dir: &Path, name: &str, conf: &str, ports: &[u16]) -> Serve {
        let path = dir.join(format!("{name}.conf"));
        std::fs::write(&path, format!("log_dest stderr\n{conf}")).unwrap();
        let log = dir.join(format!("{name}.log"));
        let child = Command::new(mqsec_bin())
            .args(["serve", "-c"])
            .arg(&path)
            .env("MQSEC_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let mut guard = ChildGuard::with_log(child, &log);
        guard.wait_listening("127.0.0.1", ports, LISTEN_TIMEOUT);
        Serve { guard, log }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Wait until the log contains `needle` `n` times; panics with the log after `WAIT`.
    fn wait_log(&self, needle: &str, n: usize) {
        let deadline = Instant::now() + WAIT;
        while self.log_text().matches(needle).count() < n {
            assert!(
                Instant::now() < deadline,
                "{needle:?} not logged {n} times: {}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn hup(&self) {
        let pid = self.guard.id().to_string();
        assert!(Command::new("kill")
            .args(["-HUP", &pid])
            .status()
            .unwrap()
            .success());
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("--- mqsec serve log ---\n{}", self.log_text());
        }
    }
}

/// `mosquitto_pub` over TLS: one retained QoS 1 message; `cert` names a client in `out/`.
fn publish(pki: &Pki, port: u16, cert: Option<&str>, version: &str, topic: &str) -> Output {
    let mut cmd = Command::new("mosquitto_pub");
    cmd.args(["-h", "localhost", "-p", &port.to_string(), "-V", version])
        .args(["--cafile", &pki.p("ca/ca.crt")])
        .args(["-t", topic, "-m", "hello", "-q", "1", "-r"]);
    if let Some(c) = cert {
        cmd.args(["--cert", &pki.p(&format!("out/{c}.crt"))])
            .args(["--key", &pki.p(&format!("out/{c}.key"))]);
    }
    run(&mut cmd)
}

fn subscribe_one(pki: &Pki, port: u16, cert: &str, version: &str, topic: &str) -> Output {
    run(Command::new("mosquitto_sub")
        .args(["-h", "localhost", "-p", &port.to_string(), "-V", version])
        .args(["--cafile", &pki.p("ca/ca.crt")])
        .args(["--cert", &pki.p(&format!("out/{cert}.crt"))])
        .args(["--key", &pki.p(&format!("out/{cert}.key"))])
        .args(["-t", topic, "-C", "1", "-W", "20"]))
}

/// `openssl s_client` to 127.0.0.1:`port` with `args`; true when the handshake completed.
fn s_client(port: u16, args: &[&str]) -> (bool, String) {
    let mut child = Command::new("openssl")
        .args(["s_client", "-connect", &format!("127.0.0.1:{port}")])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Closing stdin makes s_client leave once the handshake is over.
    drop(child.stdin.take());
    let o = wait_output(child, CLIENT);
    let out = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    let done = o.status.success() && !out.contains("Cipher is (NONE)");
    (done, out)
}

fn python_ws(port: u16, args: &[&str]) -> Output {
    run(Command::new(common::python())
        .arg(root().join("tests/python/ws_client.py"))
        .args(["--port", &port.to_string()])
        .args(args))
}

#[test]
fn mosquitto_clients_over_mtls_with_crl_and_identity_as_username() {
    let pki = Pki::new();
    let port = free_port();
    let broker = Serve::start(
        pki.path(),
        "mtls",
        &pki.mtls(port, "use_identity_as_username true\n"),
        &[port],
    );
    for v in ["mqttv311", "mqttv5"] {
        let topic = format!("tls/{v}");
        let o = publish(&pki, port, Some("device-1"), v, &topic);
        assert!(o.status.success(), "device-1 {v}: {}", text(&o));
        let o = subscribe_one(&pki, port, "device-2", v, &topic);
        assert!(o.status.success(), "device-2 {v}: {}", text(&o));
        assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "hello");
    }
    // No certificate, another CA's certificate: refused in the TLS handshake.
    let o = publish(&pki, port, None, "mqttv311", "tls/x");
    assert!(!o.status.success(), "no certificate admitted: {}", text(&o));
    let o = publish(&pki, port, Some("stranger"), "mqttv311", "tls/x");
    assert!(!o.status.success(), "other CA admitted: {}", text(&o));
    broker.wait_log("the client sent no certificate", 1);
    broker.wait_log("not issued by a CA in cafile/capath", 1);
    // use_identity_as_username: the CN is the username.
    broker.wait_log("username=\"device-1\"", 2);
    broker.wait_log("username=\"device-2\"", 2);
}

#[test]
fn sighup_reloads_the_crl_and_keeps_the_old_one_when_the_new_is_broken() {
    let pki = Pki::new();
    let port = free_port();
    let broker = Serve::start(pki.path(), "reload", &pki.mtls(port, ""), &[port]);
    let o = publish(&pki, port, Some("device-2"), "mqttv5", "r/1");
    assert!(o.status.success(), "before revocation: {}", text(&o));
    // A live client with the certificate about to be revoked: cut off by the reload.
    let live = Command::new("mosquitto_sub")
        .args(["-h", "localhost", "-p", &port.to_string(), "-V", "mqttv5"])
        .args(["--cafile", &pki.p("ca/ca.crt")])
        .args(["--cert", &pki.p("out/device-2.crt")])
        .args(["--key", &pki.p("out/device-2.key")])
        .args(["-i", "live-dev2", "-t", "r/live", "-W", "60"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _live = ChildGuard::new(live);
    broker.wait_log("client connected client_id=\"live-dev2\"", 1);

    mqsec_ok(&[
        "gen-crl",
        "--ca",
        &pki.p("ca"),
        "--revoke",
        &pki.p("out/device-2.crt"),
    ]);
    broker.hup();
    broker.wait_log("TLS certificate, CA and CRL reloaded", 1);
    broker.wait_log(
        "disconnected: its certificate is revoked by the reloaded CRL client_id=\"live-dev2\"",
        1,
    );
    let o = publish(&pki, port, Some("device-2"), "mqttv5", "r/2");
    assert!(
        !o.status.success(),
        "revoked certificate admitted: {}",
        text(&o)
    );
    broker.wait_log("the client certificate is revoked (crlfile)", 1);
    let o = publish(&pki, port, Some("device-1"), "mqttv5", "r/3");
    assert!(o.status.success(), "device-1 after the CRL: {}", text(&o));

    // A broken CRL: one line saying why, and the previous CRL stays in force.
    std::fs::write(pki.p("ca/crl.pem"), "not a CRL\n").unwrap();
    broker.hup();
    broker.wait_log("TLS files not reloaded, the previous ones stay in force", 1);
    let o = publish(&pki, port, Some("device-2"), "mqttv5", "r/4");
    assert!(
        !o.status.success(),
        "revoked after a broken reload: {}",
        text(&o)
    );
    let o = publish(&pki, port, Some("device-1"), "mqttv5", "r/5");
    assert!(
        o.status.success(),
        "device-1 after a broken reload: {}",
        text(&o)
    );
    let log = broker.log_text();
    let line = log
        .lines()
        .find(|l| l.contains("not reloaded"))
        .expect("reload failure logged");
    assert!(line.contains("crl.pem"), "{line}");
}

#[test]
fn openssl_made_certificates_and_subject_as_username() {
    let pki = Pki::new();
    let d = pki.path().join("ossl");
    std::fs::create_dir(&d).unwrap();
    let f = |n: &str| d.join(n).to_str().unwrap().to_string();
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
    ];
    openssl_ok(
        &[
            &["req", "-x509"][..],
            &ec,
            &["-keyout", &f("ca.key"), "-out", &f("ca.crt")],
            &["-subj", "/CN=ossl-ca", "-days", "30"],
        ]
        .concat(),
    );
    std::fs::write(
        f("server.ext"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    std::fs::write(f("client.ext"), "extendedKeyUsage=clientAuth\n").unwrap();
    // (name, subject, extension file: none makes the X.509 v1 of mosquitto-tls(7)'s recipe)
    for (name, subj, ext) in [
        ("server", "/CN=localhost", Some("server.ext")),
        ("server-v1", "/CN=localhost", None),
        ("client", "/O=Acme/CN=ossl-client", Some("client.ext")),
        ("client-v1", "/CN=old-device", None),
    ] {
        openssl_ok(
            &[
                &["req"][..],
                &ec,
                &["-keyout", &f(&format!("{name}.key"))],
                &["-out", &f(&format!("{name}.csr")), "-subj", subj],
            ]
            .concat(),
        );
        let mut args = vec![
            "x509".to_string(),
            "-req".into(),
            "-in".into(),
            f(&format!("{name}.csr")),
            "-CA".into(),
            f("ca.crt"),
            "-CAkey".into(),
            f("ca.key"),
            "-CAcreateserial".into(),
            "-out".into(),
            f(&format!("{name}.crt")),
            "-days".into(),
            "30".into(),
        ];
        if let Some(e) = ext {
            args.extend(["-extfile".into(), f(e)]);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        openssl_ok(&args);
    }

    // The v1 server certificate: refused by --check with the reason and the line.
    let conf = d.join("v1.conf");
    std::fs::write(
        &conf,
        format!(
            "listener {} 127.0.0.1\n\ncertfile {}\nkeyfile {}\n",
            free_port(),
            f("server-v1.crt"),
            f("server-v1.key")
        ),
    )
    .unwrap();
    let o = mqsec(&["serve", "-c", conf.to_str().unwrap(), "--check"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains("v1.conf:3: `certfile`"), "{err}");
    assert!(err.contains("X.509 v1"), "{err}");

    let port = free_port();
    let broker = Serve::start(
        &d,
        "ossl",
        &format!(
            "listener {port} 127.0.0.1\ncertfile {}\nkeyfile {}\ncafile {}\nrequire_certificate true\nuse_subject_as_username true\n",
            f("server.crt"),
            f("server.key"),
            f("ca.crt")
        ),
        &[port],
    );
    let pubr = |cert: &str| {
        run(Command::new("mosquitto_pub")
            .args(["-h", "localhost", "-p", &port.to_string()])
            .args(["--cafile", &f("ca.crt")])
            .args(["--cert", &f(&format!("{cert}.crt"))])
            .args(["--key", &f(&format!("{cert}.key"))])
            .args(["-t", "ossl/t", "-m", "x", "-q", "1"]))
    };
    let o = pubr("client");
    assert!(o.status.success(), "openssl client: {}", text(&o));
    // RFC 4514 as OpenSSL (and so Mosquitto) writes it: last RDN first, no spaces.
    broker.wait_log("username=\"CN=ossl-client,O=Acme\"", 1);
    let o = pubr("client-v1");
    assert!(!o.status.success(), "v1 client admitted: {}", text(&o));
    broker.wait_log("the client certificate is X.509 v1", 1);
}

#[test]
fn a_leaf_only_certfile_is_sent_with_its_intermediate_from_cafile() {
    let pki = Pki::new();
    let (root_dir, int_dir, out) = (pki.p("ca"), pki.p("int"), pki.p("int-out"));
    mqsec_ok(&[
        "gen-ca",
        "--intermediate",
        "--ca",
        &root_dir,
        "--out",
        &int_dir,
    ]);
    mqsec_ok(&[
        "gen-server-cert",
        "--ca",
        &int_dir,
        "--out",
        &out,
        "--name",
        "leafy",
        "--dns",
        "localhost",
        "--ip",
        "127.0.0.1",
    ]);
    // gen-server-cert writes leaf + intermediate; keep the leaf alone, as openssl users do.
    let leaf = pki.p("int-out/leaf-only.crt");
    openssl_ok(&["x509", "-in", &format!("{out}/leafy.crt"), "-out", &leaf]);
    let bundle = pki.p("bundle.crt");
    let int_pem = std::fs::read_to_string(format!("{int_dir}/ca.crt")).unwrap();
    let root_pem = std::fs::read_to_string(format!("{root_dir}/ca.crt")).unwrap();
    std::fs::write(&bundle, format!("{int_pem}{root_pem}")).unwrap();
    let port = free_port();
    let _broker = Serve::start(
        pki.path(),
        "chain",
        &format!(
            "listener {port} 127.0.0.1\ncertfile {leaf}\nkeyfile {out}/leafy.key\ncafile {bundle}\n"
        ),
        &[port],
    );
    // A client trusting only the root verifies: the server sent the intermediate.
    let root = format!("{root_dir}/ca.crt");
    let (ok, out_text) = s_client(
        port,
        &[
            "-CAfile",
            &root,
            "-verify_return_error",
            "-showcerts",
            "-servername",
            "localhost",
        ],
    );
    assert!(ok, "{out_text}");
    assert!(
        out_text.contains("Verify return code: 0 (ok)"),
        "{out_text}"
    );
    assert_eq!(
        out_text.matches("-----BEGIN CERTIFICATE-----").count(),
        2,
        "leaf and intermediate, not the root: {out_text}"
    );
    let o = run(Command::new("mosquitto_pub")
        .args([
            "-h",
            "localhost",
            "-p",
            &port.to_string(),
            "--cafile",
            &root,
        ])
        .args(["-t", "chain/t", "-m", "x"]));
    assert!(o.status.success(), "{}", text(&o));
}

#[test]
fn tls_versions_suites_and_alpn_as_configured() {
    let pki = Pki::new();
    let (p12, p13, pws) = (free_port(), free_port(), free_port());
    let files = format!(
        "certfile {}\nkeyfile {}\n",
        pki.p("out/broker.crt"),
        pki.p("out/broker.key")
    );
    let _broker = Serve::start(
        pki.path(),
        "suites",
        &format!(
            "listener {p12} 127.0.0.1\n{files}ciphers ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305\n\
             listener {p13} 127.0.0.1\n{files}tls_version tlsv1.3\n\
             listener {pws} 127.0.0.1\nprotocol websockets\n{files}"
        ),
        &[p12, p13, pws],
    );
    let ca = pki.p("ca/ca.crt");
    let ca = ["-CAfile", ca.as_str()];
    // TLS 1.1 is refused (as is anything older).
    let (ok, out) = s_client(p12, &[&ca[..], &["-tls1_1"]].concat());
    assert!(!ok, "TLS 1.1 accepted: {out}");
    // TLS 1.2: only the configured ECDHE+AEAD suite, never CBC.
    let (ok, out) = s_client(
        p12,
        &[&ca[..], &["-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-SHA"]].concat(),
    );
    assert!(!ok, "CBC suite accepted: {out}");
    let (ok, out) = s_client(
        p12,
        &[
            &ca[..],
            &["-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-GCM-SHA256"],
        ]
        .concat(),
    );
    assert!(!ok, "a suite outside `ciphers` accepted: {out}");
    let (ok, out) = s_client(
        p12,
        &[
            &ca[..],
            &["-tls1_2", "-cipher", "ECDHE-ECDSA-CHACHA20-POLY1305"],
        ]
        .concat(),
    );
    assert!(ok, "{out}");
    assert!(
        out.contains("Cipher is ECDHE-ECDSA-CHACHA20-POLY1305"),
        "{out}"
    );
    // ALPN: mqtt is chosen when offered; a client that insists on something else is refused.
    let (ok, out) = s_client(p12, &[&ca[..], &["-alpn", "h2,mqtt"]].concat());
    assert!(ok && out.contains("ALPN protocol: mqtt"), "{out}");
    let (ok, out) = s_client(p12, &[&ca[..], &["-alpn", "h2"]].concat());
    assert!(!ok, "ALPN h2 accepted: {out}");
    // tls_version tlsv1.3: TLS 1.2 refused, 1.3 fine.
    let (ok, out) = s_client(p13, &[&ca[..], &["-tls1_2"]].concat());
    assert!(!ok, "TLS 1.2 accepted on a tlsv1.3 listener: {out}");
    let (ok, out) = s_client(p13, &[&ca[..], &["-tls1_3"]].concat());
    assert!(ok && out.contains("TLSv1.3"), "{out}");
    // A WebSocket-over-TLS listener speaks HTTP/1.1 first.
    let (ok, out) = s_client(pws, &[&ca[..], &["-alpn", "http/1.1"]].concat());
    assert!(ok && out.contains("ALPN protocol: http/1.1"), "{out}");
}

#[test]
fn paho_over_websocket_and_websocket_over_mtls() {
    let pki = Pki::new();
    let (ws, wss) = (free_port(), free_port());
    let broker = Serve::start(
        pki.path(),
        "ws",
        &format!(
            "listener {ws} 127.0.0.1\nprotocol websockets\n{}protocol websockets\nuse_identity_as_username true\n",
            pki.mtls(wss, "")
        ),
        &[ws, wss],
    );
    // Plain WebSocket, both protocol versions, with a message spread over many frames.
    for v in ["311", "5"] {
        let o = python_ws(ws, &["--protocol", v, "--payload-size", "300000"]);
        assert!(o.status.success(), "ws v{v}: {}", text(&o));
    }
    // WSS enforces require_certificate and crlfile exactly like TLS (Mosquitto 2.0 does not).
    let ca = pki.p("ca/ca.crt");
    let cert = |n: &str| {
        [
            "--ca".to_string(),
            ca.clone(),
            "--cert".into(),
            pki.p(&format!("out/{n}.crt")),
            "--key".into(),
            pki.p(&format!("out/{n}.key")),
        ]
    };
    let args = cert("device-1");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = python_ws(wss, &args);
    assert!(o.status.success(), "wss device-1: {}", text(&o));
    broker.wait_log("username=\"device-1\"", 1);
    let o = python_ws(wss, &["--ca", &ca]);
    assert_eq!(
        o.status.code(),
        Some(3),
        "wss without a certificate: {}",
        text(&o)
    );
    let args = cert("stranger");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = python_ws(wss, &args);
    assert_eq!(o.status.code(), Some(3), "wss, other CA: {}", text(&o));

    mqsec_ok(&[
        "gen-crl",
        "--ca",
        &pki.p("ca"),
        "--revoke",
        &pki.p("out/device-2.crt"),
    ]);
    broker.hup();
    broker.wait_log("TLS certificate, CA and CRL reloaded", 1);
    let args = cert("device-2");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = python_ws(wss, &args);
    assert_eq!(o.status.code(), Some(3), "wss, revoked: {}", text(&o));
    broker.wait_log("the client certificate is revoked (crlfile)", 1);
}

/// A WebSocket upgrade request by hand; returns what the broker answered before closing (or
/// within 5 s).
fn upgrade_request(port: u16, extra_headers: &str) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let req = format!(
        "GET /mqtt HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{extra_headers}\r\n"
    );
    // The broker may close before the whole request is in: that is an answer too.
    let _ = s.write_all(req.as_bytes());
    let mut out = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                out.extend_from_slice(&buf[..n]);
                if out.windows(4).any(|w| w == b"\r\n\r\n") {
                    break;
                }
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[test]
fn websocket_upgrade_needs_the_mqtt_subprotocol_and_a_bounded_head() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let _broker = Serve::start(
        dir.path(),
        "wsraw",
        &format!("websockets_headers_size 1024\nlistener {port} 127.0.0.1\nprotocol websockets\n"),
        &[port],
    );
    let ok = upgrade_request(port, "Sec-WebSocket-Protocol: mqtt\r\n");
    assert!(ok.starts_with("HTTP/1.1 101"), "{ok}");
    assert!(
        ok.to_ascii_lowercase()
            .contains("sec-websocket-protocol: mqtt\r\n"),
        "{ok}"
    );
    let old = upgrade_request(port, "Sec-WebSocket-Protocol: mqttv3.1\r\n");
    assert!(old.starts_with("HTTP/1.1 101"), "{old}");
    let none = upgrade_request(port, "");
    assert!(none.starts_with("HTTP/1.1 400"), "{none}");
    let other = upgrade_request(port, "Sec-WebSocket-Protocol: chat\r\n");
    assert!(other.starts_with("HTTP/1.1 400"), "{other}");
    // A request head over websockets_headers_size gets no upgrade.
    let pad = format!(
        "Cookie: {}\r\nSec-WebSocket-Protocol: mqtt\r\n",
        "x".repeat(2000)
    );
    let big = upgrade_request(port, &pad);
    assert!(!big.contains("101"), "{big}");
}

/// `websockets_origins`: a browser page from an origin not listed is refused before any MQTT
/// (cross-site WebSocket hijacking: the browser would lend it the user's client certificate);
/// clients that send no `Origin` are not browsers and pass. Mosquitto has no such check.
#[test]
fn websocket_origins_refuse_pages_from_other_sites() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let _broker = Serve::start(
        dir.path(),
        "wsorigin",
        &format!(
            "listener {port} 127.0.0.1\nprotocol websockets\n\
             websockets_origins https://dash.example.com, http://localhost:8080\n"
        ),
        &[port],
    );
    let mqtt = "Sec-WebSocket-Protocol: mqtt\r\n";
    for (origin, status) in [
        ("Origin: https://dash.example.com\r\n", "101"),
        ("Origin: HTTPS://Dash.Example.com\r\n", "101"),
        ("Origin: http://localhost:8080\r\n", "101"),
        ("", "101"),
        ("Origin: https://evil.example\r\n", "403"),
        ("Origin: https://dash.example.com.evil.example\r\n", "403"),
        ("Origin: http://dash.example.com\r\n", "403"),
        ("Origin: null\r\n", "403"),
    ] {
        let answer = upgrade_request(port, &format!("{origin}{mqtt}"));
        assert!(
            answer.starts_with(&format!("HTTP/1.1 {status}")),
            "{origin:?}: {answer}"
        );
    }
    // A typo in the list stops the broker at start, with file and line.
    let bad = dir.path().join("bad.conf");
    std::fs::write(
        &bad,
        "listener 1883 127.0.0.1\nprotocol websockets\nwebsockets_origins https://a.example/app\n",
    )
    .unwrap();
    let o = mqsec(&["serve", "--check", "-c", bad.to_str().unwrap()]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("bad.conf:3") && err.contains("not an origin"),
        "{err}"
    );
}

#[test]
fn a_silent_socket_holds_a_slot_until_the_handshake_deadline() {
    let pki = Pki::new();
    let port = free_port();
    let broker = Serve::start(
        pki.path(),
        "silent",
        &pki.mtls(port, "max_connections 1\nhandshake_timeout 3\n"),
        &[port],
    );
    // The start-up probe's socket holds the one slot until the broker sees it close: wait for a
    // TLS client to get in, which proves the slot is free.
    let deadline = Instant::now() + WAIT;
    while !publish(&pki, port, Some("device-1"), "mqttv311", "s/0")
        .status
        .success()
    {
        assert!(Instant::now() < deadline, "the only slot never came free");
        std::thread::sleep(Duration::from_millis(100));
    }
    // A socket that never sends a ClientHello takes the slot...
    let mut silent = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let opened = Instant::now();
    std::thread::sleep(Duration::from_millis(300));
    // ...so a real client is refused meanwhile (CONNACK "server unavailable" after TLS).
    let o = publish(&pki, port, Some("device-1"), "mqttv311", "s/1");
    assert!(
        !o.status.success(),
        "admitted beyond max_connections: {}",
        text(&o)
    );
    broker.wait_log("connection limit reached", 1);
    // The broker closes the silent socket at the deadline, not before.
    silent.set_read_timeout(Some(WAIT)).unwrap();
    let mut b = [0u8; 16];
    let n = silent.read(&mut b).unwrap_or(0);
    assert_eq!(n, 0, "the broker sent bytes to a silent socket");
    let held = opened.elapsed();
    assert!(
        held >= Duration::from_millis(2500) && held < WAIT,
        "closed after {held:?}, handshake_timeout is 3 s"
    );
    broker.wait_log("transport handshake timed out", 1);
    // The slot is free again.
    let o = publish(&pki, port, Some("device-1"), "mqttv311", "s/2");
    assert!(o.status.success(), "after the deadline: {}", text(&o));
}

#[test]
fn connection_rate_limit_closes_a_flooding_source_before_the_handshake() {
    let pki = Pki::new();
    let port = free_port();
    let broker = Serve::start(
        pki.path(),
        "rate",
        &pki.mtls(port, "connection_rate_limit 1 5\nhandshake_timeout 60\n"),
        &[port],
    );
    // Twenty sockets at once from 127.0.0.1: at most the burst (minus what the start-up probe
    // took, plus what refilled meanwhile) wait for a ClientHello; the rest are closed at once,
    // without a byte of TLS.
    let mut socks: Vec<TcpStream> = (0..20)
        .map(|_| TcpStream::connect(("127.0.0.1", port)).unwrap())
        .collect();
    let mut closed = 0;
    for s in &mut socks {
        s.set_read_timeout(Some(Duration::from_millis(1500)))
            .unwrap();
        let mut b = [0u8; 8];
        match s.read(&mut b) {
            Ok(0) => closed += 1,
            Ok(n) => panic!("the broker sent {n} bytes before any ClientHello"),
            Err(e) => assert!(
                matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ),
                "{e}"
            ),
        }
    }
    assert!(
        (10..20).contains(&closed),
        "{closed} of 20 closed with connection_rate_limit 1 5"
    );
    broker.wait_log("connection_rate_limit exceeded", 1);
    // One line when a source starts being refused (again after a token came back), not one per
    // refused connection.
    let lines = broker
        .log_text()
        .matches("connection_rate_limit exceeded")
        .count();
    assert!(
        lines <= 3 && lines < closed,
        "{lines} lines for {closed} refusals"
    );
}

#[test]
fn serve_check_validates_the_tls_files() {
    let pki = Pki::new();
    let d = pki.path();
    let check = |name: &str, conf: &str| -> Output {
        let path = d.join(format!("{name}.conf"));
        std::fs::write(&path, conf).unwrap();
        mqsec(&["serve", "-c", path.to_str().unwrap(), "--check"])
    };
    let one_line = |o: &Output| -> String {
        assert_eq!(o.status.code(), Some(2), "{}", text(o));
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
        err
    };
    let (crt, key) = (pki.p("out/broker.crt"), pki.p("out/broker.key"));
    // Good: OK, with the listener described.
    let o = check("good", &pki.mtls(8883, ""));
    assert!(o.status.success(), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("127.0.0.1:8883 (mqtt over TLS, client certificates required"),
        "{out}"
    );
    // The key of another certificate.
    let e = one_line(&check(
        "mismatch",
        &format!(
            "listener 8883\ncertfile {crt}\nkeyfile {}\n",
            pki.p("out/device-1.key")
        ),
    ));
    assert!(e.contains("mismatch.conf:3: `keyfile`"), "{e}");
    assert!(e.contains("does not belong to the certificate"), "{e}");
    // A missing file.
    let e = one_line(&check(
        "missing",
        &format!("listener 8883\ncertfile /nonexistent/x.crt\nkeyfile {key}\n"),
    ));
    assert!(
        e.contains("missing.conf:2: `certfile`: /nonexistent/x.crt"),
        "{e}"
    );
    // A CRL of a CA the listener does not trust.
    mqsec_ok(&["gen-crl", "--ca", &pki.p("other")]);
    let e = one_line(&check(
        "crl",
        &format!(
            "listener 8883\ncertfile {crt}\nkeyfile {key}\ncafile {}\nrequire_certificate true\ncrlfile {}\n",
            pki.p("ca/ca.crt"),
            pki.p("other/crl.pem")
        ),
    ));
    assert!(e.contains("crl.conf:6: `crlfile`"), "{e}");
    assert!(e.contains("not a CA in cafile/capath"), "{e}");
    // A CRL file that is no CRL.
    std::fs::write(d.join("junk.pem"), "junk\n").unwrap();
    let e = one_line(&check(
        "junk",
        &format!(
            "listener 8883\ncertfile {crt}\nkeyfile {key}\ncafile {}\nrequire_certificate true\ncrlfile {}\n",
            pki.p("ca/ca.crt"),
            d.join("junk.pem").display()
        ),
    ));
    assert!(
        e.contains("junk.conf:6: `crlfile`") && e.contains("X509 CRL"),
        "{e}"
    );
    // Suites that cannot work with the key (the broker's key is ECDSA).
    let e = one_line(&check(
        "rsa",
        &format!(
            "listener 8883\ncertfile {crt}\nkeyfile {key}\nciphers ECDHE-RSA-AES128-GCM-SHA256\n"
        ),
    ));
    assert!(
        e.contains("rsa.conf:4: `ciphers`") && e.contains("ECDSA"),
        "{e}"
    );
    // TLS 1.1 is refused at the line that asks for it.
    let e = one_line(&check(
        "old",
        &format!("listener 8883\ncertfile {crt}\nkeyfile {key}\ntls_version tlsv1.1\n"),
    ));
    assert!(
        e.contains("old.conf:4: `tls_version tlsv1.1` is refused"),
        "{e}"
    );
    // capath: a directory of CA files (OpenSSL's hashed names or any); empty is an error.
    let capath = d.join("capath");
    std::fs::create_dir(&capath).unwrap();
    let e = one_line(&check(
        "capath-empty",
        &format!(
            "listener 8883\ncertfile {crt}\nkeyfile {key}\ncapath {}\nrequire_certificate true\n",
            capath.display()
        ),
    ));
    assert!(
        e.contains("capath-empty.conf:4: `capath`") && e.contains("no PEM certificate"),
        "{e}"
    );
    // A chain that reaches no CA known here is worth a warning, not a refusal.
    let o = check(
        "nochain",
        &format!("listener 8883\ncertfile {crt}\nkeyfile {key}\n"),
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("warning: ")
            && String::from_utf8_lossy(&o.stderr).contains("does not chain to cafile"),
        "{}",
        text(&o)
    );
}

#[test]
fn audit_finds_nothing_high_on_a_hardened_mtls_broker() {
    let pki = Pki::new();
    let port = free_port();
    let _broker = Serve::start(
        pki.path(),
        "hardened",
        &pki.mtls(port, "use_identity_as_username true\n"),
        &[port],
    );
    let target = format!("127.0.0.1:{port}");
    let o = mqsec(&[
        "audit",
        &target,
        "--cafile",
        &pki.p("ca/ca.crt"),
        "--format",
        "json",
        "--fail-on",
        "high",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let ids: Vec<String> = report
        .get("findings")
        .and_then(|f| f.as_array())
        .map(|f| {
            f.iter()
                .filter_map(|x| x.get("id").and_then(|i| i.as_str()).map(String::from))
                .collect()
        })
        .unwrap_or_default();
    assert!(
        ids.iter().any(|i| i == "tls-client-cert-required"),
        "{ids:?}\n{}",
        text(&o)
    );
}

/// The hook for re-checking live connections after a reload: the issuer and serial the TLS layer
/// reports for a client certificate are exactly what the CRL parser keys revocations by.
#[tokio::test]
async fn revocation_check_answers_for_the_crl_in_force() {
    use mqsec::broker::listener::tls::peer_cert;
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::CertificateDer;

    let pki = Pki::new();
    mqsec_ok(&[
        "gen-crl",
        "--ca",
        &pki.p("ca"),
        "--revoke",
        &pki.p("out/device-2.crt"),
    ]);
    let port = free_port();
    let config = mqsec::config::mosquitto::parse_str(&pki.mtls(port, ""), "t.conf").unwrap();
    let server = mqsec::broker::Server::bind(
        config,
        std::sync::Arc::new(mqsec::broker::auth::AllowAnonymous {
            clientid_prefixes: vec![],
        }),
        std::sync::Arc::new(mqsec::broker::store::MemoryStore::new()),
    )
    .unwrap();
    let check = server.revocation_check();
    let cert = |name: &str| {
        let der = CertificateDer::from_pem_file(pki.p(&format!("out/{name}.crt"))).unwrap();
        peer_cert(&der).unwrap()
    };
    let (revoked, good) = (cert("device-2"), cert("device-1"));
    assert_eq!(revoked.common_name.as_deref(), Some("device-2"));
    assert!(check.is_revoked(port, &revoked));
    assert!(!check.is_revoked(port, &good));
    assert!(
        !check.is_revoked(port.wrapping_add(1), &revoked),
        "another listener"
    );
}

#[test]
fn capath_holds_the_client_ca() {
    let pki = Pki::new();
    let capath = pki.path().join("capath");
    std::fs::create_dir(&capath).unwrap();
    // As c_rehash lays it out: the CA under its subject hash, plus an unrelated file.
    let hash = openssl_ok(&["x509", "-in", &pki.p("ca/ca.crt"), "-noout", "-hash"]);
    std::fs::copy(
        pki.p("ca/ca.crt"),
        capath.join(format!("{}.0", hash.trim())),
    )
    .unwrap();
    std::fs::write(capath.join("README"), "not a certificate\n").unwrap();
    let port = free_port();
    let _broker = Serve::start(
        pki.path(),
        "capath",
        &format!(
            "listener {port} 127.0.0.1\ncertfile {}\nkeyfile {}\ncapath {}\nrequire_certificate true\n",
            pki.p("out/broker.crt"),
            pki.p("out/broker.key"),
            capath.display()
        ),
        &[port],
    );
    let o = publish(&pki, port, Some("device-1"), "mqttv5", "capath/t");
    assert!(o.status.success(), "{}", text(&o));
    let o = publish(&pki, port, Some("stranger"), "mqttv5", "capath/t");
    assert!(!o.status.success(), "other CA admitted: {}", text(&o));
}

/// Certificates and CRLs close to their end are logged at start, after each SIGHUP and (for a
/// client certificate) at each CONNECT, in the security log as `certificate_expiring`, so an
/// operator hears of them before clients fail. Mosquitto says nothing until handshakes fail.
#[test]
fn certificates_near_expiry_are_logged() {
    let pki = Pki::new();
    let (ca, out) = (pki.p("ca"), pki.p("out"));
    // A server certificate with 10 days left, a client one with 5, a CRL due in 2 days; the
    // CA (10 years) and device-1 (397 days) are far from it.
    pki.server_cert(&["--days", "10", "--force"]);
    mqsec_ok(&[
        "gen-client-cert",
        "--ca",
        &ca,
        "--out",
        &out,
        "--name",
        "short",
        "--days",
        "5",
    ]);
    mqsec_ok(&["gen-crl", "--ca", &ca, "--crl-days", "2"]);
    let port = free_port();
    let seclog = pki.path().join("security.jsonl");
    let conf = pki.mtls(
        port,
        &format!(
            "use_identity_as_username true\nsecurity_log {}\n",
            seclog.display()
        ),
    );
    let broker = Serve::start(pki.path(), "expiry", &conf, &[port]);
    let events = |what: &str| -> Vec<String> {
        std::fs::read_to_string(&seclog)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|e| e["event"] == "certificate_expiring")
            .filter(|e| e["reason"].as_str().unwrap_or("").contains(what))
            .map(|e| e.to_string())
            .collect()
    };
    let wait_events = |what: &str, n: usize| {
        let deadline = Instant::now() + WAIT;
        while events(what).len() < n {
            assert!(Instant::now() < deadline, "{what}: {:?}", events(""));
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    wait_events("certfile", 1);
    wait_events("crlfile", 1);
    let server = &events("certfile")[0];
    assert!(
        server.contains("CN=broker") && server.contains("days)"),
        "{server}"
    );
    assert!(
        events("cafile").is_empty(),
        "the CA has years left: {:?}",
        events("")
    );
    broker.wait_log("certfile", 1);

    // A client certificate: once per CONNECT, with who it is.
    let o = publish(&pki, port, Some("short"), "mqttv5", "expiry/t");
    assert!(o.status.success(), "{}", text(&o));
    wait_events("client certificate", 1);
    let client = &events("client certificate")[0];
    assert!(client.contains("\"username\":\"short\""), "{client}");
    let o = publish(&pki, port, Some("device-1"), "mqttv5", "expiry/t");
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        events("client certificate").len(),
        1,
        "device-1 has a year left"
    );

    // A reload reports again what is still close.
    broker.hup();
    wait_events("certfile", 2);
}
