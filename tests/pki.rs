//! The PKI commands against real peers: OpenSSL (`verify`, `x509 -purpose`, `crl`, `pkcs12`), a
//! real Mosquitto with `require_certificate` and `crlfile`, and rustls client/server handshakes.
//! All material is generated here.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;

mod common;

use common::{mqsec_bin, wait_output, Mosquitto};

fn mqsec(args: &[&str], stdin: Option<&str>) -> Output {
    let mut cmd = Command::new(mqsec_bin());
    cmd.args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn mqsec");
    {
        let mut si = child.stdin.take().unwrap();
        if let Some(s) = stdin {
            si.write_all(s.as_bytes()).unwrap();
        }
    }
    wait_output(child, Duration::from_secs(60))
}

fn text(o: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Run mqsec with `--json`, expect success, return the JSON.
fn ok_json(args: &[&str]) -> Value {
    let mut a = args.to_vec();
    a.push("--json");
    let o = mqsec(&a, None);
    assert!(o.status.success(), "mqsec {args:?} failed: {}", text(&o));
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("bad JSON ({e}): {}", text(&o)))
}

/// Expect exit 2 with exactly one line on stderr; return it.
fn fails_2(args: &[&str]) -> String {
    let o = mqsec(args, None);
    assert_eq!(o.status.code(), Some(2), "mqsec {args:?}: {}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert_eq!(err.trim_end().lines().count(), 1, "not one line: {err:?}");
    err
}

fn openssl(args: &[&str]) -> Output {
    let child = Command::new("openssl")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("openssl");
    wait_output(child, Duration::from_secs(30))
}

fn openssl_ok(args: &[&str]) -> String {
    let o = openssl(args);
    assert!(o.status.success(), "openssl {args:?}: {}", text(&o));
    String::from_utf8_lossy(&o.stdout).to_string()
}

fn python(script: &str, args: &[&str]) -> Output {
    let child = Command::new(common::python())
        .arg("-c")
        .arg(script)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3");
    wait_output(child, Duration::from_secs(30))
}

fn p(dir: &Path, rel: &str) -> String {
    dir.join(rel).to_str().unwrap().to_string()
}

/// Every file under `dir` with its size and content: "nothing written" means this is unchanged.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd {
            let e = e.unwrap();
            let path = e.path();
            if path.is_dir() {
                out.insert(path.clone(), b"<dir>".to_vec());
                stack.push(path);
            } else {
                out.insert(path.clone(), std::fs::read(&path).unwrap());
            }
        }
    }
    out
}

fn mode(path: &str) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn every_key_type_round_trips() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    std::thread::scope(|s| {
        for kt in [
            "ecdsa-p256",
            "ecdsa-p384",
            "ed25519",
            "rsa-2048",
            "rsa-3072",
            "rsa-4096",
        ] {
            s.spawn(move || {
                let ca = p(t, &format!("ca-{kt}"));
                let out = p(t, &format!("out-{kt}"));
                let j = ok_json(&["gen-ca", "--out", &ca, "--key-type", kt]);
                assert_eq!(j["certificate"]["key_type"], kt);
                assert_eq!(mode(&format!("{ca}/ca.key")), 0o600);
                // RSA-4096 key generation is slow: its CA signs an ECDSA leaf.
                let leaf_kt = if kt == "rsa-4096" { "ecdsa-p256" } else { kt };
                let j = ok_json(&[
                    "gen-client-cert",
                    "--ca",
                    &ca,
                    "--out",
                    &out,
                    "--name",
                    "dev",
                    "--key-type",
                    leaf_kt,
                ]);
                assert_eq!(j["certificate"]["key_type"], leaf_kt);
                let crt = format!("{out}/dev.crt");
                let key = format!("{out}/dev.key");
                assert_eq!(mode(&key), 0o600);
                let v = openssl_ok(&["verify", "-CAfile", &format!("{ca}/ca.crt"), &crt]);
                assert!(v.contains(": OK"), "{kt}: {v}");
                // Key and certificate belong together, as OpenSSL sees them.
                let from_key = openssl_ok(&["pkey", "-in", &key, "-pubout"]);
                let from_crt = openssl_ok(&["x509", "-in", &crt, "-noout", "-pubkey"]);
                assert_eq!(from_key, from_crt, "{kt}");
                let from_ca_key = openssl_ok(&["pkey", "-in", &format!("{ca}/ca.key"), "-pubout"]);
                let from_ca =
                    openssl_ok(&["x509", "-in", &format!("{ca}/ca.crt"), "-noout", "-pubkey"]);
                assert_eq!(from_ca_key, from_ca, "{kt}");
                // Python's ssl module loads the same files as a client would.
                let py = python(
                    "import ssl, sys\n\
                     ctx = ssl.create_default_context(cafile=sys.argv[1])\n\
                     ctx.load_cert_chain(sys.argv[2], sys.argv[3])\n",
                    &[&format!("{ca}/ca.crt"), &crt, &key],
                );
                assert!(py.status.success(), "{kt}: {}", text(&py));
                // SHA-256 or stronger signatures.
                let txt = openssl_ok(&["x509", "-in", &crt, "-noout", "-text"]);
                let allowed = [
                    "ecdsa-with-SHA256",
                    "ecdsa-with-SHA384",
                    "ED25519",
                    "sha256WithRSAEncryption",
                ];
                for line in txt.lines().filter(|l| l.contains("Signature Algorithm:")) {
                    let alg = line.split(':').nth(1).unwrap().trim();
                    assert!(allowed.contains(&alg), "{kt}: {alg}");
                }
            });
        }
    });
}

#[test]
fn openssl_accepts_chains_purposes_and_rejects_revoked() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let root = p(t, "root");
    let inter = p(t, "inter");
    let out = p(t, "out");

    let r = ok_json(&["gen-ca", "--out", &root, "--cn", "Test Root"]);
    assert_eq!(r["certificate"]["path_len"], 1);
    assert_eq!(r["certificate"]["is_ca"], true);
    let i = ok_json(&[
        "gen-ca",
        "--out",
        &inter,
        "--intermediate",
        "--ca",
        &root,
        "--cn",
        "Test Devices CA",
    ]);
    assert_eq!(i["certificate"]["path_len"], 0);
    assert_eq!(i["certificate"]["issuer"], "CN=Test Root");
    assert_eq!(i["trust_anchor"], format!("{inter}/root.crt"));
    // Path length 0: no intermediate below the intermediate.
    let e = fails_2(&[
        "gen-ca",
        "--out",
        &p(t, "deeper"),
        "--intermediate",
        "--ca",
        &inter,
    ]);
    assert!(e.contains("path length 0"), "{e}");
    assert!(!t.join("deeper").exists());
    let root_txt = openssl_ok(&["x509", "-in", &format!("{root}/ca.crt"), "-noout", "-text"]);
    assert!(root_txt.contains("CA:TRUE, pathlen:1"), "{root_txt}");
    assert!(
        root_txt.contains("Certificate Sign, CRL Sign"),
        "{root_txt}"
    );
    let inter_txt = openssl_ok(&["x509", "-in", &format!("{inter}/ca.crt"), "-noout", "-text"]);
    assert!(inter_txt.contains("CA:TRUE, pathlen:0"), "{inter_txt}");
    assert!(
        inter_txt.contains("Authority Key Identifier"),
        "{inter_txt}"
    );

    let srv = ok_json(&[
        "gen-server-cert",
        "--ca",
        &root,
        "--out",
        &out,
        "--name",
        "broker",
        "--dns",
        "localhost",
        "--ip",
        "127.0.0.1",
    ]);
    assert_eq!(srv["chain_length"], 1);
    let cli = ok_json(&[
        "gen-client-cert",
        "--ca",
        &inter,
        "--out",
        &out,
        "--name",
        "sensor-1",
    ]);
    assert_eq!(cli["chain_length"], 2);
    // Default validity, notBefore to notAfter: 10 years for a CA, 397 days for a leaf (the
    // back-dated hour included, never more).
    let span = |c: &Value| {
        let t = |k: &str| {
            time::OffsetDateTime::parse(
                c["certificate"][k].as_str().unwrap(),
                &time::format_description::well_known::Rfc3339,
            )
            .unwrap()
        };
        t("not_after") - t("not_before")
    };
    assert_eq!(span(&r), time::Duration::days(3650));
    assert_eq!(span(&srv), time::Duration::days(397));
    assert_eq!(span(&cli), time::Duration::days(397));
    ok_json(&[
        "gen-client-cert",
        "--ca",
        &inter,
        "--out",
        &out,
        "--name",
        "sensor-2",
    ]);
    let broker = format!("{out}/broker.crt");
    let s1 = format!("{out}/sensor-1.crt");
    let s2 = format!("{out}/sensor-2.crt");
    assert_eq!(
        std::fs::read_to_string(&s1)
            .unwrap()
            .matches("BEGIN CERTIFICATE")
            .count(),
        2
    );

    let root_crt = format!("{root}/ca.crt");
    let chain = format!("{inter}/chain.pem");
    assert!(openssl_ok(&["verify", "-CAfile", &root_crt, &broker]).contains("OK"));
    for leaf in [&s1, &s2] {
        let v = openssl_ok(&["verify", "-CAfile", &root_crt, "-untrusted", &chain, leaf]);
        assert!(v.contains("OK"), "{v}");
        // The leaf file itself carries the intermediate: enough as -untrusted.
        let v = openssl_ok(&["verify", "-CAfile", &root_crt, "-untrusted", leaf, leaf]);
        assert!(v.contains("OK"), "{v}");
    }
    // Without the intermediate there is no path.
    assert!(!openssl(&["verify", "-CAfile", &root_crt, &s1])
        .status
        .success());

    // Fingerprint and serial printed are OpenSSL's.
    let fp = openssl_ok(&["x509", "-in", &broker, "-noout", "-fingerprint", "-sha256"]);
    assert!(
        fp.contains(srv["certificate"]["sha256_fingerprint"].as_str().unwrap()),
        "{fp}"
    );
    let serial = openssl_ok(&["x509", "-in", &broker, "-noout", "-serial"]);
    let serial = serial
        .trim()
        .trim_start_matches("serial=")
        .to_ascii_lowercase();
    assert_eq!(serial.trim_start_matches('0'), srv["certificate"]["serial"]);

    // Purposes.
    let purpose = |f: &str| openssl_ok(&["x509", "-in", f, "-noout", "-purpose"]);
    let sp = purpose(&broker);
    assert!(
        sp.contains("SSL server : Yes") && sp.contains("SSL client : No"),
        "{sp}"
    );
    let cp = purpose(&s1);
    assert!(
        cp.contains("SSL client : Yes") && cp.contains("SSL server : No"),
        "{cp}"
    );
    let rp = purpose(&root_crt);
    assert!(
        rp.contains("SSL server CA : Yes") && rp.contains("SSL client CA : Yes"),
        "{rp}"
    );
    let stxt = openssl_ok(&["x509", "-in", &broker, "-noout", "-text"]);
    assert!(
        stxt.contains("DNS:localhost, IP Address:127.0.0.1"),
        "{stxt}"
    );
    assert!(
        stxt.contains("CA:FALSE") && stxt.contains("Subject Key Identifier"),
        "{stxt}"
    );

    // Revoke sensor-1 by file: OpenSSL with -crl_check rejects it and still accepts sensor-2.
    let c1 = ok_json(&[
        "gen-crl",
        "--ca",
        &inter,
        "--revoke",
        &s1,
        "--crl-days",
        "7",
    ]);
    assert_eq!(c1["crl_number"], 1);
    assert_eq!(
        c1["newly_revoked"][0]["serial"],
        cli["certificate"]["serial"]
    );
    let crl = format!("{inter}/crl.pem");
    let base = [
        "verify",
        "-crl_check",
        "-CRLfile",
        &crl,
        "-CAfile",
        &root_crt,
        "-untrusted",
        &chain,
    ];
    let bad = openssl(&[&base[..], &[s1.as_str()]].concat());
    assert!(!bad.status.success());
    assert!(text(&bad).contains("certificate revoked"), "{}", text(&bad));
    let good = openssl(&[&base[..], &[s2.as_str()]].concat());
    assert!(good.status.success(), "{}", text(&good));
    let crl_txt = openssl_ok(&["crl", "-in", &crl, "-noout", "-crlnumber", "-nextupdate"]);
    assert!(crl_txt.contains("crlNumber=0x01"), "{crl_txt}");

    // Revoke sensor-2 by serial (OpenSSL's upper-case form): the CRL number increases.
    let s2_serial = openssl_ok(&["x509", "-in", &s2, "-noout", "-serial"]);
    let s2_serial = s2_serial.trim().trim_start_matches("serial=");
    let c2 = ok_json(&["gen-crl", "--ca", &inter, "--revoke-serial", s2_serial]);
    assert_eq!(c2["crl_number"], 2);
    assert_eq!(c2["revoked_total"], 2);
    assert!(!openssl(&[&base[..], &[s2.as_str()]].concat())
        .status
        .success());
    let crl_txt = openssl_ok(&["crl", "-in", &crl, "-noout", "-crlnumber"]);
    assert!(crl_txt.contains("crlNumber=0x02"), "{crl_txt}");
    // Revoking again is reported, not repeated.
    let c3 = ok_json(&["gen-crl", "--ca", &inter, "--revoke", &s1]);
    assert_eq!(c3["crl_number"], 3);
    assert_eq!(
        c3["already_revoked"][0]["serial"],
        cli["certificate"]["serial"]
    );
    assert_eq!(c3["newly_revoked"].as_array().unwrap().len(), 0);
    let index: Value =
        serde_json::from_slice(&std::fs::read(format!("{inter}/index.json")).unwrap()).unwrap();
    let entries = index["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 2);
    assert!(entries
        .iter()
        .all(|e| e["revoked"] == true && e["revoked_at"].is_string()));
    assert_eq!(index["crl_number"], 3);
    // The root's index knows the intermediate it signed.
    let rindex: Value =
        serde_json::from_slice(&std::fs::read(format!("{root}/index.json")).unwrap()).unwrap();
    let kinds: Vec<&str> = rindex["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["intermediate-ca", "server"]);

    // PKCS#12: OpenSSL 3 reads it with the password given on stdin, refuses a wrong one.
    let o = mqsec(
        &[
            "gen-client-cert",
            "--ca",
            &inter,
            "--out",
            &out,
            "--name",
            "sensor-p12",
            "--p12",
        ],
        Some("correct horse\n"),
    );
    assert!(o.status.success(), "{}", text(&o));
    let p12 = format!("{out}/sensor-p12.p12");
    assert_eq!(mode(&p12), 0o600);
    let run_p12 = |pw: &str, extra: &[&str]| {
        let child = Command::new("openssl")
            .args(["pkcs12", "-in", &p12, "-passin", "env:MQSEC_TEST_P12"])
            .args(extra)
            .env("MQSEC_TEST_P12", pw)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        wait_output(child, Duration::from_secs(30))
    };
    let certs = run_p12("correct horse", &["-nokeys"]);
    assert!(certs.status.success(), "{}", text(&certs));
    let certs = String::from_utf8_lossy(&certs.stdout).to_string();
    assert!(
        certs.contains("CN = sensor-p12") && certs.contains("CN = Test Root"),
        "{certs}"
    );
    let info = run_p12("correct horse", &["-info", "-noout"]);
    let info = text(&info);
    assert!(
        info.contains("PBES2, PBKDF2, AES-256-CBC") && info.contains("MAC: sha256"),
        "{info}"
    );
    let key = run_p12("correct horse", &["-nocerts", "-nodes"]);
    assert!(String::from_utf8_lossy(&key.stdout).contains("PRIVATE KEY"));
    assert!(!run_p12("wrong", &["-nokeys"]).status.success());
    // Python `cryptography` reads it too: key, certificate, and the chain up to the root.
    let py = python(
        "import sys\n\
         from cryptography.hazmat.primitives.serialization import pkcs12\n\
         key, cert, extra = pkcs12.load_key_and_certificates(open(sys.argv[1], 'rb').read(), b'correct horse')\n\
         assert key is not None\n\
         print(cert.subject.rfc4514_string(), len(extra))\n",
        &[&p12],
    );
    assert!(py.status.success(), "{}", text(&py));
    assert_eq!(
        String::from_utf8_lossy(&py.stdout).trim(),
        "CN=sensor-p12 2"
    );
}

#[test]
fn mosquitto_enforces_mqsec_certificates_and_crl() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let ca = p(t, "ca");
    let other = p(t, "other");
    let out = p(t, "out");
    ok_json(&["gen-ca", "--out", &ca]);
    ok_json(&["gen-ca", "--out", &other]);
    ok_json(&[
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
    ]);
    for (dir, name) in [(&ca, "device-1"), (&ca, "device-2"), (&other, "stranger")] {
        ok_json(&[
            "gen-client-cert",
            "--ca",
            dir,
            "--out",
            &out,
            "--name",
            name,
        ]);
    }
    ok_json(&["gen-crl", "--ca", &ca]);

    // Give the broker its files as the README does: a 0755 directory, public files 0644, the key
    // 0600 and owned by `mosquitto`, the user Mosquitto started as root drops to before it
    // reads them (as any other user it keeps its own, and owns the copies anyway).
    let as_root = common::running_as_root();
    let certs = t.join("certs");
    let install = |owner: bool, mode: &str, files: &[&str]| {
        let mut c = Command::new("install");
        c.args(["-m", mode]);
        if owner && as_root {
            c.args(["-o", "mosquitto"]);
        }
        c.args(files).arg(format!("{}/", certs.display()));
        assert!(c.status().unwrap().success(), "install {files:?}");
    };
    let install_crl = || install(false, "0644", &[&format!("{ca}/crl.pem")]);
    {
        use std::os::unix::fs::PermissionsExt;
        // tempdir() makes a 0700 directory the dropped user could not enter.
        std::fs::set_permissions(t, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    assert!(Command::new("install")
        .args(["-d", "-m", "0755"])
        .arg(&certs)
        .status()
        .unwrap()
        .success());
    install(
        false,
        "0644",
        &[&format!("{ca}/ca.crt"), &format!("{out}/broker.crt")],
    );
    install_crl();
    install(true, "0600", &[&format!("{out}/broker.key")]);
    let certs = certs.display();

    // `user mosquitto` is what Mosquitto does as root anyway; said here so the helper does not
    // keep it root, which would hide whether the dropped user can read the files.
    let broker = Mosquitto::start(
        t,
        &format!(
            "user mosquitto\n\
             cafile {certs}/ca.crt\n\
             certfile {certs}/broker.crt\n\
             keyfile {certs}/broker.key\n\
             require_certificate true\n\
             use_identity_as_username true\n\
             crlfile {certs}/crl.pem\n\
             allow_anonymous false\n\
             persistence false\n\
             log_type all\n"
        ),
    );
    let port = broker.port;

    let port_s = port.to_string();
    let publish = |host: &str, cert: Option<&str>| -> Output {
        let mut args: Vec<String> = ["-h", host, "-p", &port_s, "--cafile"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        args.push(format!("{ca}/ca.crt"));
        if let Some(c) = cert {
            args.extend([
                "--cert".into(),
                format!("{out}/{c}.crt"),
                "--key".into(),
                format!("{out}/{c}.key"),
            ]);
        }
        args.extend(["-t", "pki/test", "-m", "hello", "-q", "1"].map(String::from));
        let child = Command::new("mosquitto_pub")
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        wait_output(child, Duration::from_secs(15))
    };

    let o = publish("127.0.0.1", Some("device-1"));
    assert_eq!(o.status.code(), Some(0), "device-1: {}", text(&o));
    let o = publish("localhost", Some("device-2"));
    assert_eq!(
        o.status.code(),
        Some(0),
        "device-2 via localhost: {}",
        text(&o)
    );
    let o = publish("127.0.0.1", None);
    assert_ne!(
        o.status.code(),
        Some(0),
        "no cert must be refused: {}",
        text(&o)
    );
    let o = publish("127.0.0.1", Some("stranger"));
    assert_ne!(
        o.status.code(),
        Some(0),
        "other CA must be refused: {}",
        text(&o)
    );

    // Revoke device-2, signal Mosquitto to reread the CRL, and it is refused from then on.
    ok_json(&[
        "gen-crl",
        "--ca",
        &ca,
        "--revoke",
        &format!("{out}/device-2.crt"),
    ]);
    install_crl();
    let pid = broker.guard.id().to_string();
    assert!(Command::new("kill")
        .args(["-HUP", &pid])
        .status()
        .unwrap()
        .success());
    let start = Instant::now();
    loop {
        let o = publish("127.0.0.1", Some("device-2"));
        if o.status.code() != Some(0) {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "revoked cert still accepted"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let o = publish("127.0.0.1", Some("device-1"));
    assert_eq!(
        o.status.code(),
        Some(0),
        "device-1 after the CRL: {}",
        text(&o)
    );
    drop(broker);

    let log = std::fs::read_to_string(t.join("mosquitto.log")).unwrap();
    // use_identity_as_username: the CN is the username.
    assert!(log.contains("u'device-1'"), "{log}");
    assert!(log.contains("peer did not return a certificate"), "{log}");
    assert!(log.contains("certificate verify failed"), "{log}");
}

mod rustls_peers {
    use super::*;
    use mqsec::pki::load::{client_verifier, server_material, LoadError};
    use rustls::{ClientConfig, RootCertStore, ServerConfig};
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio_rustls::{TlsAcceptor, TlsConnector};

    fn provider() -> Arc<rustls::crypto::CryptoProvider> {
        Arc::new(rustls::crypto::aws_lc_rs::default_provider())
    }

    /// One handshake plus a byte each way; Err carries the server's view.
    async fn handshake(server: Arc<ServerConfig>, client: Arc<ClientConfig>) -> Result<(), String> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let srv = tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.map_err(|e| e.to_string())?;
            let mut tls = TlsAcceptor::from(server)
                .accept(tcp)
                .await
                .map_err(|e| e.to_string())?;
            let mut b = [0u8; 1];
            tls.read_exact(&mut b).await.map_err(|e| e.to_string())?;
            tls.write_all(&b).await.map_err(|e| e.to_string())?;
            tls.shutdown().await.map_err(|e| e.to_string())?;
            Ok::<(), String>(())
        });
        let cli = async move {
            let tcp = tokio::net::TcpStream::connect(addr)
                .await
                .map_err(|e| e.to_string())?;
            let name = ServerName::try_from("localhost").unwrap();
            let mut tls = TlsConnector::from(client)
                .connect(name, tcp)
                .await
                .map_err(|e| e.to_string())?;
            tls.write_all(b"x").await.map_err(|e| e.to_string())?;
            let mut b = [0u8; 1];
            tls.read_exact(&mut b).await.map_err(|e| e.to_string())?;
            Ok::<(), String>(())
        };
        let limit = Duration::from_secs(10);
        let c = tokio::time::timeout(limit, cli)
            .await
            .expect("client timed out");
        let s = tokio::time::timeout(limit, srv)
            .await
            .expect("server timed out")
            .unwrap();
        match (s, c) {
            (Ok(()), Ok(())) => Ok(()),
            (Err(e), _) => Err(format!("server: {e}")),
            (_, Err(e)) => Err(format!("client: {e}")),
        }
    }

    fn client_config(ca: &str, cert: &str, key: &str) -> Arc<ClientConfig> {
        let mut roots = RootCertStore::empty();
        for c in CertificateDer::pem_file_iter(ca).unwrap() {
            roots.add(c.unwrap()).unwrap();
        }
        let chain: Vec<_> = CertificateDer::pem_file_iter(cert)
            .unwrap()
            .map(|c| c.unwrap())
            .collect();
        let key = PrivateKeyDer::from_pem_file(key).unwrap();
        Arc::new(
            ClientConfig::builder_with_provider(provider())
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_root_certificates(roots)
                .with_client_auth_cert(chain, key)
                .unwrap(),
        )
    }

    fn server_config(out: &str, ca: &str, crl: Option<&str>) -> Arc<ServerConfig> {
        let m = server_material(
            Path::new(&format!("{out}/broker.crt")),
            Path::new(&format!("{out}/broker.key")),
        )
        .unwrap();
        let crls: Vec<&Path> = crl.iter().map(Path::new).collect();
        let verifier = client_verifier(Path::new(&format!("{ca}/ca.crt")), &crls).unwrap();
        Arc::new(
            ServerConfig::builder_with_provider(provider())
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_client_cert_verifier(verifier)
                .with_single_cert(m.chain, m.key)
                .unwrap(),
        )
    }

    #[tokio::test]
    async fn rustls_handshakes_and_enforces_the_crl() {
        let tmp = tempfile::tempdir().unwrap();
        let t = tmp.path();
        let ca = p(t, "ca");
        let inter = p(t, "inter");
        let out = p(t, "out");
        ok_json(&["gen-ca", "--out", &ca, "--key-type", "ecdsa-p384"]);
        ok_json(&["gen-ca", "--out", &inter, "--intermediate", "--ca", &ca]);
        ok_json(&[
            "gen-server-cert",
            "--ca",
            &inter,
            "--out",
            &out,
            "--name",
            "broker",
            "--dns",
            "localhost",
            "--key-type",
            "ed25519",
        ]);
        for name in ["good", "revoked"] {
            ok_json(&[
                "gen-client-cert",
                "--ca",
                &inter,
                "--out",
                &out,
                "--name",
                name,
            ]);
        }
        ok_json(&[
            "gen-crl",
            "--ca",
            &inter,
            "--revoke",
            &format!("{out}/revoked.crt"),
        ]);
        let root = format!("{inter}/root.crt");
        let crl = format!("{inter}/crl.pem");
        let good = client_config(
            &root,
            &format!("{out}/good.crt"),
            &format!("{out}/good.key"),
        );
        let revoked = client_config(
            &root,
            &format!("{out}/revoked.crt"),
            &format!("{out}/revoked.key"),
        );

        // The verifier trusts the root; the intermediate arrives in the client's chain.
        let with_crl = server_config(&out, &ca, Some(&crl));
        handshake(with_crl.clone(), good.clone())
            .await
            .expect("good client with CRL");
        let err = handshake(with_crl, revoked.clone()).await.unwrap_err();
        assert!(err.contains("server:") && err.contains("Revoked"), "{err}");
        // Without the CRL the same certificate is accepted: the CRL is what refuses it.
        handshake(server_config(&out, &ca, None), revoked)
            .await
            .expect("revoked cert without a CRL");
        // A client of another CA is refused.
        let other = p(t, "other");
        ok_json(&["gen-ca", "--out", &other]);
        ok_json(&[
            "gen-client-cert",
            "--ca",
            &other,
            "--out",
            &out,
            "--name",
            "stranger",
        ]);
        let stranger = client_config(
            &root,
            &format!("{out}/stranger.crt"),
            &format!("{out}/stranger.key"),
        );
        let err = handshake(server_config(&out, &ca, Some(&crl)), stranger)
            .await
            .unwrap_err();
        assert!(err.contains("server:"), "{err}");
    }

    #[test]
    fn server_material_explains_what_rustls_cannot_use() {
        let tmp = tempfile::tempdir().unwrap();
        let t = tmp.path();
        let ca = p(t, "ca");
        let out = p(t, "out");
        ok_json(&["gen-ca", "--out", &ca]);
        ok_json(&[
            "gen-server-cert",
            "--ca",
            &ca,
            "--out",
            &out,
            "--name",
            "a",
            "--ip",
            "::1",
        ]);
        ok_json(&[
            "gen-server-cert",
            "--ca",
            &ca,
            "--out",
            &out,
            "--name",
            "b",
            "--dns",
            "b",
        ]);
        let a_crt = PathBuf::from(format!("{out}/a.crt"));
        let a_key = PathBuf::from(format!("{out}/a.key"));
        let b_key = PathBuf::from(format!("{out}/b.key"));
        let m = server_material(&a_crt, &a_key).unwrap();
        assert_eq!(m.chain.len(), 1);

        let e = server_material(&a_crt, &b_key).unwrap_err();
        assert!(matches!(e, LoadError::KeyMismatch { .. }), "{e}");
        assert!(e.to_string().contains("does not belong"), "{e}");

        // The mosquitto-tls(7) recipe: an X.509 v1 certificate without subjectAltName.
        let v1_key = p(t, "v1.key");
        let v1_csr = p(t, "v1.csr");
        let v1_crt = p(t, "v1.crt");
        openssl_ok(&[
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            &v1_key,
            "-subj",
            "/CN=localhost",
            "-out",
            &v1_csr,
        ]);
        openssl_ok(&[
            "x509",
            "-req",
            "-in",
            &v1_csr,
            "-CA",
            &format!("{ca}/ca.crt"),
            "-CAkey",
            &format!("{ca}/ca.key"),
            "-set_serial",
            "7",
            "-days",
            "30",
            "-out",
            &v1_crt,
        ]);
        assert!(openssl_ok(&["x509", "-in", &v1_crt, "-noout", "-text"]).contains("Version: 1"));
        let e = server_material(Path::new(&v1_crt), Path::new(&v1_key)).unwrap_err();
        assert!(matches!(e, LoadError::V1Certificate { .. }), "{e}");
        let msg = e.to_string();
        assert!(
            msg.contains("v1.crt")
                && msg.contains("X.509 v1")
                && msg.contains("mqsec gen-server-cert")
                && !msg.contains('\n'),
            "{msg}"
        );

        let e = server_material(Path::new(&p(t, "missing.crt")), &a_key).unwrap_err();
        assert!(e.to_string().contains("missing.crt"), "{e}");
        let e = server_material(&a_crt, Path::new(&v1_csr)).unwrap_err();
        assert!(
            e.to_string().contains("v1.csr: no usable PEM private key"),
            "{e}"
        );
    }
}

#[test]
fn bad_input_exits_2_and_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let ca = p(t, "ca");
    let out = p(t, "out");
    ok_json(&["gen-ca", "--out", &ca]);
    ok_json(&[
        "gen-client-cert",
        "--ca",
        &ca,
        "--out",
        &out,
        "--name",
        "exists",
    ]);

    // A CA whose key is corrupt, and one that has expired (built here with rcgen directly).
    let corrupt = p(t, "corrupt");
    std::fs::create_dir(&corrupt).unwrap();
    std::fs::copy(format!("{ca}/ca.crt"), format!("{corrupt}/ca.crt")).unwrap();
    std::fs::write(
        format!("{corrupt}/ca.key"),
        "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    let expired = p(t, "expired");
    {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "Old CA");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
        ];
        params.not_before = rcgen::date_time_ymd(2020, 1, 1);
        params.not_after = rcgen::date_time_ymd(2021, 1, 1);
        let cert = params.self_signed(&key).unwrap();
        std::fs::create_dir(&expired).unwrap();
        std::fs::write(format!("{expired}/ca.crt"), cert.pem()).unwrap();
        std::fs::write(format!("{expired}/ca.key"), key.serialize_pem()).unwrap();
    }
    let other = p(t, "other");
    ok_json(&["gen-ca", "--out", &other]);
    ok_json(&[
        "gen-client-cert",
        "--ca",
        &other,
        "--out",
        &p(t, "foreign"),
        "--name",
        "f",
    ]);
    let foreign = p(t, "foreign/f.crt");

    let new_out = p(t, "new-out");
    let missing = p(t, "no-such-ca");
    let nope = p(t, "nope.crt");
    // An output that cannot be written even with --force (a directory where the certificate
    // goes): the key already written is removed again and the CA index does not grow.
    let blocked = p(t, "blocked");
    std::fs::create_dir_all(format!("{blocked}/d.crt")).unwrap();
    let blocked_ca = p(t, "blocked-ca");
    std::fs::create_dir_all(format!("{blocked_ca}/ca.crt")).unwrap();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec![
                "gen-client-cert",
                "--ca",
                &missing,
                "--out",
                &new_out,
                "--name",
                "d",
            ],
            "no-such-ca: no such CA directory",
        ),
        (
            vec![
                "gen-client-cert",
                "--ca",
                &corrupt,
                "--out",
                &new_out,
                "--name",
                "d",
            ],
            "corrupt/ca.key: corrupt",
        ),
        (
            vec![
                "gen-server-cert",
                "--ca",
                &expired,
                "--out",
                &new_out,
                "--name",
                "s",
                "--dns",
                "x",
            ],
            "expired/ca.crt: the CA certificate expired on 2021-01-01",
        ),
        (vec!["gen-crl", "--ca", &expired], "expired on"),
        (
            vec![
                "gen-ca",
                "--out",
                &new_out,
                "--intermediate",
                "--ca",
                &expired,
            ],
            "expired on",
        ),
        (
            vec![
                "gen-server-cert",
                "--ca",
                &ca,
                "--out",
                &new_out,
                "--name",
                "s",
            ],
            "--dns/--ip: a server certificate needs",
        ),
        (
            vec![
                "gen-server-cert",
                "--ca",
                &ca,
                "--out",
                &new_out,
                "--name",
                "s",
                "--dns",
                "bad host",
            ],
            "--dns: \"bad host\"",
        ),
        (
            vec![
                "gen-client-cert",
                "--ca",
                &ca,
                "--out",
                &new_out,
                "--name",
                "d",
                "--broker",
                "bad host:8883",
            ],
            "\"bad host:8883\": not a host name or IP address",
        ),
        (
            vec![
                "gen-server-cert",
                "--ca",
                &ca,
                "--out",
                &new_out,
                "--name",
                "s",
                "--dns",
                "x",
                "--port",
                "0",
            ],
            "--port",
        ),
        (
            vec![
                "gen-client-cert",
                "--ca",
                &ca,
                "--out",
                &new_out,
                "--name",
                "d",
                "--key-type",
                "dsa-1024",
            ],
            "invalid value 'dsa-1024' for '--key-type",
        ),
        (
            vec!["gen-ca", "--out", &new_out, "--key-type", "rsa-1024"],
            "invalid value",
        ),
        (
            vec![
                "gen-client-cert",
                "--ca",
                &ca,
                "--out",
                &new_out,
                "--name",
                "a+b",
            ],
            "--name: contains '+'",
        ),
        (
            vec![
                "gen-client-cert",
                "--ca",
                &ca,
                "--out",
                &new_out,
                "--name",
                "site/#",
            ],
            "--name: contains '/'",
        ),
        (
            vec![
                "gen-client-cert",
                "--ca",
                &ca,
                "--out",
                &new_out,
                "--name",
                "d",
                "--days",
                "398",
            ],
            "--allow-long-validity",
        ),
        (
            vec![
                "gen-client-cert",
                "--ca",
                &ca,
                "--out",
                &out,
                "--name",
                "exists",
            ],
            "exists.key: already exists (use --force",
        ),
        (vec!["gen-ca", "--out", &ca], "ca/ca.key: already exists"),
        (
            vec![
                "gen-client-cert",
                "--ca",
                &ca,
                "--out",
                &foreign,
                "--name",
                "d",
            ],
            "f.crt: --out: exists and is not a directory",
        ),
        (
            vec!["gen-crl", "--ca", &ca, "--revoke-serial", "0123abcd"],
            "--revoke-serial: 123abcd is not in",
        ),
        (
            vec!["gen-crl", "--ca", &ca, "--revoke-serial", "xyz"],
            "--revoke-serial: \"xyz\" is not a hexadecimal",
        ),
        (
            vec!["gen-crl", "--ca", &ca, "--revoke", &foreign],
            "foreign/f.crt: not issued by the CA",
        ),
        (
            vec!["gen-crl", "--ca", &ca, "--revoke", &nope],
            "nope.crt: No such file",
        ),
        (
            vec![
                "gen-client-cert",
                "--ca",
                &ca,
                "--out",
                &blocked,
                "--name",
                "d",
                "--force",
            ],
            "blocked/d.crt: Is a directory",
        ),
        (
            vec![
                "gen-ca",
                "--out",
                &blocked_ca,
                "--intermediate",
                "--ca",
                &ca,
                "--force",
            ],
            "blocked-ca/ca.crt: Is a directory",
        ),
    ];
    let before = snapshot(t);
    for (args, expect) in &cases {
        let err = if expect.starts_with("invalid value") {
            // clap's own usage errors are multi-line by design; the exit code is still 2.
            let o = mqsec(args, None);
            assert_eq!(o.status.code(), Some(2), "{args:?}: {}", text(&o));
            String::from_utf8_lossy(&o.stderr).to_string()
        } else {
            fails_2(args)
        };
        assert!(
            err.contains(expect),
            "{args:?}: expected {expect:?} in {err:?}"
        );
        assert!(!err.contains("PRIVATE KEY"), "{err}");
        assert_eq!(snapshot(t), before, "{args:?} changed files");
    }
    assert!(!Path::new(&new_out).exists());

    // The same requests, corrected, succeed.
    ok_json(&[
        "gen-client-cert",
        "--ca",
        &ca,
        "--out",
        &out,
        "--name",
        "exists",
        "--force",
    ]);
    let j = ok_json(&[
        "gen-client-cert",
        "--ca",
        &ca,
        "--out",
        &new_out,
        "--name",
        "long",
        "--days",
        "3650",
        "--allow-long-validity",
    ]);
    // Never beyond the CA's own end.
    let note = j["notes"][0].as_str().unwrap_or_default();
    assert!(note.is_empty() || note.contains("shortened"), "{note}");

    // Without --json: the same facts for a person, and the serial gen-crl then reports.
    let o = mqsec(
        &[
            "gen-client-cert",
            "--ca",
            &ca,
            "--out",
            &out,
            "--name",
            "texty",
        ],
        None,
    );
    assert!(o.status.success(), "{}", text(&o));
    let shown = String::from_utf8_lossy(&o.stdout).to_string();
    for field in [
        "subject:     CN=texty",
        "issuer:      CN=",
        "serial:      ",
        "sha256:      ",
        "validity:    ",
        "usage:       clientAuth",
    ] {
        assert!(shown.contains(field), "{field:?} missing: {shown}");
    }
    let serial = shown
        .lines()
        .find_map(|l| l.trim().strip_prefix("serial:"))
        .unwrap()
        .trim()
        .to_string();
    let o = mqsec(
        &[
            "gen-crl",
            "--ca",
            &ca,
            "--revoke",
            &format!("{out}/texty.crt"),
        ],
        None,
    );
    assert!(o.status.success(), "{}", text(&o));
    let shown = String::from_utf8_lossy(&o.stdout);
    assert!(
        shown.contains(&format!("revoked:     {serial} CN=texty")),
        "{shown}"
    );
}

#[test]
fn a_hundred_parallel_issuances_keep_every_index_entry() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let ca = p(t, "ca");
    let out = p(t, "devices");
    ok_json(&["gen-ca", "--out", &ca]);
    // As the README's shell loop: `for i in ...; do mqsec gen-client-cert ... & done; wait`.
    let children: Vec<Child> = (0..100)
        .map(|i| {
            Command::new(mqsec_bin())
                .args([
                    "gen-client-cert",
                    "--ca",
                    &ca,
                    "--out",
                    &out,
                    "--json",
                    "--name",
                ])
                .arg(format!("sensor-{i:03}"))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for c in children {
        let o = wait_output(c, Duration::from_secs(60));
        assert!(o.status.success(), "{}", text(&o));
    }
    let index: Value =
        serde_json::from_slice(&std::fs::read(format!("{ca}/index.json")).unwrap()).unwrap();
    let entries = index["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 100);
    let serials: std::collections::BTreeSet<&str> = entries
        .iter()
        .map(|e| e["serial"].as_str().unwrap())
        .collect();
    assert_eq!(serials.len(), 100);
    let subjects: std::collections::BTreeSet<&str> = entries
        .iter()
        .map(|e| e["subject"].as_str().unwrap())
        .collect();
    assert_eq!(subjects.len(), 100);
    let crts = std::fs::read_dir(&out)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "crt")
        })
        .count();
    assert_eq!(crts, 100);
    // Revoke one: the CRL lists exactly that one.
    let c = ok_json(&[
        "gen-crl",
        "--ca",
        &ca,
        "--revoke",
        &format!("{out}/sensor-042.crt"),
    ]);
    assert_eq!(c["revoked_total"], 1);
    assert_eq!(c["newly_revoked"][0]["subject"], "CN=sensor-042");
}

/// What `gen-server-cert` and `gen-client-cert` printed to paste next, from their `--json`.
struct Printed {
    /// The `listener` object of `gen-server-cert --json`.
    listener: Value,
    /// The `connect` object of `gen-client-cert --json`.
    connect: Value,
}

/// Run `mqsec ARGS` in text mode, then again with `--json --force` (same files, same paths), and
/// check that the text shows every ready-made line the JSON holds under `key`.
fn issue_text_and_json(args: &[&str], key: &str, lines_of: fn(&Value) -> Vec<String>) -> Value {
    let o = mqsec(args, None);
    assert!(o.status.success(), "mqsec {args:?}: {}", text(&o));
    let shown = String::from_utf8_lossy(&o.stdout).to_string();
    let mut again = args.to_vec();
    again.push("--force");
    let v = ok_json(&again)[key].clone();
    assert!(v.is_object(), "no {key} in the JSON");
    for line in lines_of(&v) {
        assert!(
            shown.contains(&format!("    {line}\n")),
            "text output lacks {line:?}:\n{shown}"
        );
    }
    v
}

/// Issue a CA (with its first CRL), a server certificate for a listener on `port` and a client
/// certificate aimed at `localhost:port`, in directories and with a name that need quoting, and
/// return what they printed to paste next.
fn issue_with_ready_made_lines(t: &Path, port: u16) -> Printed {
    let ca = p(t, "ca");
    let port_s = port.to_string();
    ok_json(&["gen-ca", "--out", &ca]);
    ok_json(&["gen-crl", "--ca", &ca]);
    let listener = issue_text_and_json(
        &[
            "gen-server-cert",
            "--ca",
            &ca,
            "--out",
            &p(t, "broker files"),
            "--name",
            "broker",
            "--dns",
            "localhost",
            "--ip",
            "127.0.0.1",
            "--port",
            &port_s,
        ],
        "listener",
        |l| {
            l["mqsec_serve"]
                .as_str()
                .unwrap()
                .lines()
                .map(String::from)
                .collect()
        },
    );
    let broker = format!("localhost:{port}");
    let connect = issue_text_and_json(
        &[
            "gen-client-cert",
            "--ca",
            &ca,
            "--out",
            &p(t, "device's files"),
            "--name",
            "sensor 7",
            "--broker",
            &broker,
        ],
        "connect",
        |c| {
            [
                "mosquitto_sub",
                "mosquitto_pub",
                "paho_tls_set",
                "paho_connect",
            ]
            .iter()
            .map(|k| c[*k].as_str().unwrap().to_string())
            .collect()
        },
    );
    // Absolute paths, so the lines work from any directory (the checks run them from `/`).
    for (v, keys) in [
        (&listener, &["certfile", "keyfile", "cafile", "crlfile"][..]),
        (&connect, &["certfile", "keyfile", "cafile"][..]),
    ] {
        for k in keys {
            let f = v[*k].as_str().unwrap();
            assert!(
                Path::new(f).is_absolute() && Path::new(f).is_file(),
                "{k}: {f}"
            );
        }
    }
    assert_eq!(listener["port"], port);
    assert_eq!(connect["username"], "sensor 7");
    Printed { listener, connect }
}

fn sh(command_line: &str) -> Command {
    let mut c = Command::new("sh");
    c.arg("-c").arg(command_line).current_dir("/");
    c
}

/// The printed client lines against a broker that `start` runs from the printed configuration:
/// the printed `mosquitto_sub` receives what the printed `mosquitto_pub` sends, the printed
/// paho-mqtt lines publish and receive, and a client without a certificate is refused.
///
/// `config` picks the broker's text from the `listener` JSON (`mosquitto` or `mqsec_serve`);
/// `start(dir, config_text, port)` starts that broker, waits until it listens on 127.0.0.1:port,
/// and returns what keeps it running. Today Mosquitto runs it; a `start` that runs
/// `mqsec serve -c` on the same text is all a test of `mqsec serve`'s TLS listeners needs.
fn printed_lines_work_against<B>(
    t: &Path,
    config: &str,
    start: impl FnOnce(&Path, &str, u16) -> B,
) -> (B, Printed) {
    let port = common::free_port();
    let printed = issue_with_ready_made_lines(t, port);
    let conf = printed.listener[config].as_str().unwrap();
    let broker = start(t, conf, port);
    let c = &printed.connect;
    let line = |k: &str| c[k].as_str().unwrap().to_string();

    // mosquitto_sub as printed (plus: stop after one message), then the printed mosquitto_pub
    // until the subscription has taken effect and the message arrives.
    let sub = sh(&format!("exec {} -C 1 -W 60", line("mosquitto_sub")))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut sub = common::ChildGuard::new(sub);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let publ = sh(&line("mosquitto_pub"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let o = wait_output(publ, Duration::from_secs(30));
        assert!(o.status.success(), "printed mosquitto_pub: {}", text(&o));
        let waited = Instant::now();
        while waited.elapsed() < Duration::from_millis(500) && sub.try_wait().unwrap().is_none() {
            std::thread::sleep(Duration::from_millis(20));
        }
        if sub.try_wait().unwrap().is_some() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "printed mosquitto_sub got nothing"
        );
    }
    let o = sub.wait_output(Duration::from_secs(10));
    assert!(o.status.success(), "printed mosquitto_sub: {}", text(&o));
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "devices/sensor 7/test hello from sensor 7\n"
    );

    // paho-mqtt runs the printed tls_set and connect lines as they are, then subscribes to the
    // device's topic and publishes to it.
    let py = python(
        "import sys, threading\n\
         import paho.mqtt.client as mqtt\n\
         tls_set, connect, topic = sys.argv[1:4]\n\
         got = threading.Event()\n\
         client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id='paho-printed')\n\
         client.on_connect = lambda c, u, f, rc, p: c.subscribe(topic, qos=1)\n\
         client.on_subscribe = lambda c, u, mid, rcs, p: c.publish(topic, b'from paho', qos=1)\n\
         client.on_message = lambda c, u, m: m.payload == b'from paho' and got.set()\n\
         exec(tls_set)\n\
         exec(connect)\n\
         client.loop_start()\n\
         ok = got.wait(30)\n\
         client.disconnect()\n\
         client.loop_stop()\n\
         sys.exit(0 if ok else 3)\n",
        &[&line("paho_tls_set"), &line("paho_connect"), &line("topic")],
    );
    assert!(
        py.status.success(),
        "printed paho-mqtt lines: {}",
        text(&py)
    );

    // The listener really requires a certificate: the same publish without one is refused.
    let port_s = port.to_string();
    let o = Command::new("mosquitto_pub")
        .args(["-h", "localhost", "-p", &port_s, "--cafile"])
        .arg(line("cafile"))
        .args(["-t", "devices/x", "-m", "x"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!o.status.success(), "a client without a certificate got in");
    (broker, printed)
}

/// The lines printed after `gen-server-cert` and `gen-client-cert` work as printed: Mosquitto
/// runs the printed listener, and the printed mosquitto_pub/mosquitto_sub and paho-mqtt lines
/// connect to it with the client certificate.
#[test]
fn printed_listener_and_client_lines_work_with_mosquitto() {
    let tmp = tempfile::tempdir().unwrap();
    let (broker, printed) =
        printed_lines_work_against(tmp.path(), "mosquitto", |dir, conf, port| {
            Mosquitto::start_full(dir, "printed", conf, "127.0.0.1", &[port])
        });
    // use_identity_as_username: the CN was the username.
    drop(broker);
    let log = std::fs::read_to_string(tmp.path().join("printed.log")).unwrap();
    let user = printed.connect["username"].as_str().unwrap();
    assert!(log.contains(&format!("u'{user}'")), "{log}");
    // The same text is what `mqsec serve` gets.
    assert_eq!(
        printed.listener["mqsec_serve"],
        printed.listener["mosquitto"]
    );
}

#[test]
fn printed_listener_and_client_lines_work_with_mqsec_serve() {
    let tmp = tempfile::tempdir().unwrap();
    let (broker, printed) =
        printed_lines_work_against(tmp.path(), "mqsec_serve", |dir, conf, port| {
            let path = dir.join("printed-mqsec.conf");
            std::fs::write(&path, conf).unwrap();
            let log = dir.join("printed-mqsec.log");
            let child = Command::new(common::mqsec_bin())
                .args(["serve", "-c"])
                .arg(&path)
                .env("MQSEC_LOG", "info")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(&log).unwrap())
                .spawn()
                .unwrap();
            let mut guard = common::ChildGuard::with_log(child, &log);
            guard.wait_listening("127.0.0.1", &[port], common::LISTEN_TIMEOUT);
            guard
        });
    drop(broker);
    // use_identity_as_username: the CN was the username, as in Mosquitto.
    let log = std::fs::read_to_string(tmp.path().join("printed-mqsec.log")).unwrap();
    let user = printed.connect["username"].as_str().unwrap();
    assert!(log.contains(&format!("username={user:?}")), "{log}");
}
