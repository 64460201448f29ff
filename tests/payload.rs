//! Payload protection end to end: the built binary, the committed test vectors, an independent
//! Python implementation (tests/python/payload_envelope.py, PyNaCl), and real Mosquitto pipes.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command as StdCommand, Output, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use mqsec::payload::{self, Key, KeyId, KeyRing};

mod common;

use common::{mqsec_bin, root, ChildGuard, Mosquitto};

const TIMEOUT: Duration = Duration::from_secs(30);

fn mqsec(args: &[&str], stdin: &[u8]) -> Output {
    assert_cmd::Command::new(mqsec_bin())
        .args(args)
        .write_stdin(stdin.to_vec())
        .timeout(TIMEOUT)
        .output()
        .unwrap()
}

fn python(args: &[&str], stdin: &[u8]) -> Output {
    let script = root().join("tests/python/payload_envelope.py");
    assert_cmd::Command::new(common::python())
        .arg(script)
        .args(args)
        .write_stdin(stdin.to_vec())
        .timeout(TIMEOUT)
        .output()
        .expect("python runs (MQSEC_PYTHON or python3; ./scripts/test sets up .venv)")
}

fn ok(o: &Output) -> &[u8] {
    assert!(
        o.status.success(),
        "exit {:?}, stderr: {}",
        o.status.code(),
        String::from_utf8_lossy(&o.stderr)
    );
    &o.stdout
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A fresh key file made by `mqsec keygen`.
fn keygen(dir: &Path, name: &str, id: &str) -> PathBuf {
    let p = dir.join(name);
    ok(&mqsec(&["keygen", "--out", s(&p), "--id", id], b""));
    p
}

/// Exit 1, nothing on stdout, exactly one stderr line saying why.
fn assert_rejected(o: &Output, why: &str) {
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "stderr: {err}");
    assert!(o.stdout.is_empty(), "plaintext leaked on failure: {err}");
    assert_eq!(err.lines().count(), 1, "one line expected: {err}");
    assert!(
        err.starts_with("mqsec: error: ")
            && err.contains("envelope rejected: ")
            && err.contains(why),
        "expected '{why}' in: {err}"
    );
}

fn fixture(name: &str) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(root().join("fixtures/payload").join(name)).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn vectors() -> Vec<serde_json::Value> {
    fixture("vectors.json")
}

fn hexd(v: &serde_json::Value) -> Vec<u8> {
    hex::decode(v.as_str().unwrap()).unwrap()
}

#[test]
fn vectors_both_directions_library_and_cli() {
    let dir = tempfile::tempdir().unwrap();
    let vs = vectors();
    assert!(vs.len() >= 13);
    // The published edge cases are there: a topic whose length prefix has a non-zero high byte
    // (both algorithms), and the longest key id.
    for alg in ["xchacha20poly1305", "hmac-sha256"] {
        let of_alg = || vs.iter().filter(move |v| v["algorithm"] == alg);
        assert!(of_alg().any(|v| v["topic"].as_str().is_some_and(|t| t.len() > 255)));
        assert!(of_alg().any(|v| v["key_id"].as_str().unwrap().len() == 32));
    }
    for v in &vs {
        let name = v["name"].as_str().unwrap();
        let key_bytes: [u8; 32] = base64::engine::general_purpose::STANDARD
            .decode(v["key"].as_str().unwrap())
            .unwrap()
            .try_into()
            .unwrap();
        let id = v["key_id"].as_str().unwrap();
        let key = Key::from_bytes(
            KeyId::new(id).unwrap(),
            time::OffsetDateTime::UNIX_EPOCH,
            &key_bytes,
        );
        let ring = KeyRing::from_keys(vec![key.clone()]).unwrap();
        let ts = v["timestamp"].as_u64().unwrap();
        let topic = v["topic"].as_str();
        let pt = hexd(&v["plaintext"]);
        let env = hexd(&v["envelope"]);
        let aead = v["algorithm"] == "xchacha20poly1305";
        // Sealing the inputs gives exactly the vector's bytes...
        let made = if aead {
            let nonce: [u8; 24] = hexd(&v["nonce"]).try_into().unwrap();
            payload::seal_with(&key, topic, &pt, &nonce, ts).unwrap()
        } else {
            payload::sign_with(&key, topic, &pt, ts).unwrap()
        };
        assert_eq!(hex::encode(&made), hex::encode(&env), "vector {name}");
        // The topic block's 2-byte length prefix, as the spec's AAD has it.
        if let Some(t) = topic {
            let hdr = payload::parse(&env).unwrap().header_bytes.len();
            assert_eq!(env[6], 0x01, "vector {name}: topic-bound flag");
            assert_eq!(hdr, 8 + id.len() + 8 + if aead { 24 } else { 0 });
            assert_eq!(t.len() > 255, t.len() >> 8 != 0, "vector {name}");
        }
        // ...and opening the vector gives the plaintext, through the library and the CLI.
        let opened = if aead {
            payload::open(&ring, topic, &env, None)
        } else {
            payload::verify(&ring, topic, &env, None)
        };
        assert_eq!(opened.unwrap().payload, pt, "vector {name}");
        let kf = dir.path().join(format!("{name}.keys"));
        let line = format!("{id} 2026-01-01T00:00:00Z {}\n", v["key"].as_str().unwrap());
        mqsec::fsutil::atomic_write(&kf, line.as_bytes(), 0o600).unwrap();
        let ef = dir.path().join(format!("{name}.env"));
        std::fs::write(&ef, &env).unwrap();
        let cmd = if aead {
            "decrypt-payload"
        } else {
            "verify-payload"
        };
        let mut args = vec![cmd, "--key", s(&kf), "--in", s(&ef)];
        if let Some(t) = topic {
            args.extend(["--topic", t]);
        }
        assert_eq!(ok(&mqsec(&args, b"")), pt, "vector {name} via CLI");
        // The same vector is too old for a 1-day window (its time is fixed in 2026-01); the
        // message names the file.
        args.extend(["--max-age", "1d"]);
        let o = mqsec(&args, b"");
        assert_rejected(&o, "too old");
        let named = format!("mqsec: error: {}: envelope rejected: ", ef.display());
        assert!(String::from_utf8_lossy(&o.stderr).starts_with(&named));
    }
    // The independent implementation agrees with the committed vectors too, the must-fail ones
    // included.
    let vf = root().join("fixtures/payload/vectors.json");
    let rf = root().join("fixtures/payload/reject-vectors.json");
    let out = python(&["check-vectors", s(&vf), s(&rf)], b"");
    let n = vs.len() + fixture("reject-vectors.json").len();
    assert!(
        String::from_utf8_lossy(ok(&out)).contains(&format!("{n} vectors ok")),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// The envelope header as section 1 lays it out, written here from the spec rather than with
/// mqsec's encoder, so a must-fail vector is re-made independently of the code under test.
fn spec_header(aead: bool, flags: u8, key_id: &str, ts: u64, nonce: &[u8]) -> Vec<u8> {
    let mut h = vec![0x89, b'M', b'Q', b'P', 1, if aead { 1 } else { 2 }, flags];
    h.push(key_id.len() as u8);
    h.extend(key_id.as_bytes());
    h.extend(ts.to_be_bytes());
    h.extend(nonce);
    h
}

/// Seal (AEAD) or sign (MAC) by section 2, with any flags byte.
fn spec_envelope(
    aead: bool,
    key: &[u8; 32],
    header: &[u8],
    topic: Option<&str>,
    pt: &[u8],
) -> Vec<u8> {
    let t = topic.unwrap_or("").as_bytes();
    let mut authenticated = header.to_vec();
    authenticated.extend((t.len() as u16).to_be_bytes());
    authenticated.extend(t);
    let mut env = header.to_vec();
    if aead {
        use chacha20poly1305::aead::{Aead, KeyInit, Payload};
        let cipher = chacha20poly1305::XChaCha20Poly1305::new(key.into());
        let nonce = chacha20poly1305::XNonce::from_slice(&header[header.len() - 24..]);
        let sealed = cipher
            .encrypt(
                nonce,
                Payload {
                    msg: pt,
                    aad: &authenticated,
                },
            )
            .unwrap();
        env.extend(sealed);
    } else {
        use hmac::Mac;
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(key).unwrap();
        mac.update(&authenticated);
        mac.update(pt);
        env.extend(pt);
        env.extend(mac.finalize().into_bytes());
    }
    env
}

/// Each must-fail vector is re-made from its `sealed_with` inputs, then refused at the step it
/// names by the library, by the CLI (exit 1, nothing on stdout) and by the Python implementation.
#[test]
fn reject_vectors_are_refused_at_their_step() {
    let dir = tempfile::tempdir().unwrap();
    let rs = fixture("reject-vectors.json");
    let steps: Vec<&str> = rs.iter().map(|v| v["reject"].as_str().unwrap()).collect();
    for step in ["format", "topic-binding", "key-id", "authentication"] {
        assert!(steps.contains(&step), "no vector for step {step}");
    }
    for v in &rs {
        let name = v["name"].as_str().unwrap();
        let aead = v["algorithm"] == "xchacha20poly1305";
        let key_bytes: [u8; 32] = base64::engine::general_purpose::STANDARD
            .decode(v["key"].as_str().unwrap())
            .unwrap()
            .try_into()
            .unwrap();
        let env = hexd(&v["envelope"]);

        let w = &v["sealed_with"];
        let nonce = if aead { hexd(&w["nonce"]) } else { Vec::new() };
        let header = spec_header(
            aead,
            w["flags"].as_u64().unwrap() as u8,
            w["key_id"].as_str().unwrap(),
            w["timestamp"].as_u64().unwrap(),
            &nonce,
        );
        let mut made = spec_envelope(
            aead,
            &key_bytes,
            &header,
            w["topic"].as_str(),
            &hexd(&w["plaintext"]),
        );
        if w["flip_last_bit"].as_bool().unwrap() {
            *made.last_mut().unwrap() ^= 0x01;
        }
        assert_eq!(hex::encode(&made), hex::encode(&env), "vector {name}");

        let id = v["key_id"].as_str().unwrap();
        let key = Key::from_bytes(
            KeyId::new(id).unwrap(),
            time::OffsetDateTime::UNIX_EPOCH,
            &key_bytes,
        );
        let ring = KeyRing::from_keys(vec![key]).unwrap();
        let topic = v["topic"].as_str();
        let res = if aead {
            payload::open(&ring, topic, &env, None)
        } else {
            payload::verify(&ring, topic, &env, None)
        };
        let err = res.expect_err(name);
        let (step_ok, cli_says) = match v["reject"].as_str().unwrap() {
            "format" => (
                matches!(
                    err,
                    payload::OpenError::Format(payload::FormatError::ReservedFlags(_))
                ),
                "reserved flag bits",
            ),
            "topic-binding" => (
                matches!(
                    err,
                    payload::OpenError::TopicMissing | payload::OpenError::TopicNotBound
                ),
                "bound to a topic",
            ),
            "key-id" => (
                matches!(err, payload::OpenError::UnknownKeyId(_)),
                "no key with id",
            ),
            "authentication" => (
                matches!(err, payload::OpenError::Authentication(_)),
                "authentication failed",
            ),
            other => panic!("vector {name}: unknown step {other}"),
        };
        assert!(step_ok, "vector {name}: refused as {err:?}");

        let kf = dir.path().join(format!("{name}.keys"));
        let line = format!("{id} 2026-01-01T00:00:00Z {}\n", v["key"].as_str().unwrap());
        mqsec::fsutil::atomic_write(&kf, line.as_bytes(), 0o600).unwrap();
        let cmd = if aead {
            "decrypt-payload"
        } else {
            "verify-payload"
        };
        let mut args = vec![cmd, "--key", s(&kf)];
        if let Some(t) = topic {
            args.extend(["--topic", t]);
        }
        assert_rejected(&mqsec(&args, &env), cli_says);
        // The Python receiver's command line refuses it too (check-vectors, in the test above,
        // also checks the step it refuses at).
        let mut args = vec![if aead { "open" } else { "verify" }, "--key-file", s(&kf)];
        if let Some(t) = topic {
            args.extend(["--topic", t]);
        }
        let o = python(&args, &env);
        assert_eq!(o.status.code(), Some(1), "python, vector {name}");
        assert!(o.stdout.is_empty());
    }
}

/// Every decision section 5 states about key files, as one table (fixtures/payload/key-files.json)
/// that the library, the CLI and the Python implementation all follow.
#[test]
fn key_file_cases_library_cli_and_python_agree() {
    let dir = tempfile::tempdir().unwrap();
    let cases = fixture("key-files.json");
    for c in &cases {
        let name = c["name"].as_str().unwrap();
        let text = c["text"].as_str().unwrap();
        let path = dir.path().join(format!("{name}.keys"));
        mqsec::fsutil::atomic_write(&path, text.as_bytes(), 0o600).unwrap();
        let lib = KeyRing::parse(text.as_bytes(), &path);
        let o = mqsec(&["encrypt-payload", "--key", s(&path)], b"x");
        let err = String::from_utf8_lossy(&o.stderr);
        if let Some(newest) = c["newest"].as_str() {
            let ring = lib.unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(ring.newest().id().as_str(), newest, "{name}");
            let env = ok(&o);
            assert_eq!(payload::parse(env).unwrap().header.key_id, newest, "{name}");
            continue;
        }
        let line = c["error"]["line"].as_u64().unwrap();
        let what = match c["error"]["field"].as_str().unwrap() {
            "fields" => "expected 3 fields",
            "id" => "field 1 (key id)",
            "created" => "field 2 (created)",
            "key" => "field 3 (key)",
            "duplicate" => "already appears on line",
            "empty" => "holds no keys",
            other => panic!("{name}: unknown field {other}"),
        };
        let msg = lib.expect_err(name).to_string();
        let at = if line == 0 {
            format!("{}: ", path.display())
        } else {
            format!("{}:{line}: ", path.display())
        };
        assert!(msg.starts_with(&at) && msg.contains(what), "{name}: {msg}");
        // The CLI: exit 2, the same one line, nothing on stdout.
        assert_eq!(o.status.code(), Some(2), "{name}: {err}");
        assert!(o.stdout.is_empty(), "{name}");
        assert_eq!(err.trim_end(), format!("mqsec: error: {msg}"), "{name}");
    }
    let kf = root().join("fixtures/payload/key-files.json");
    let out = python(&["check-key-files", s(&kf)], b"");
    assert!(
        String::from_utf8_lossy(ok(&out)).contains(&format!("{} key files ok", cases.len())),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The sending side's exit codes (docs/payload-envelope.md section 9): a topic that cannot be
/// bound and a payload over the limit are input errors, exit 2, with nothing written.
#[test]
fn sender_refuses_bad_topics_and_oversized_input_with_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let kf = keygen(dir.path(), "k", "send");
    let k = s(&kf);
    let out = dir.path().join("env.out");
    let too_long = "t".repeat(65_536);
    for cmd in ["encrypt-payload", "sign-payload"] {
        for (topic, why) in [
            ("a/#", "wildcards"),
            ("a/+/b", "wildcards"),
            ("", "the topic is empty"),
            (too_long.as_str(), "65536 bytes"),
        ] {
            let o = mqsec(&[cmd, "--key", k, "--topic", topic, "--out", s(&out)], b"x");
            let err = String::from_utf8_lossy(&o.stderr);
            assert_eq!(o.status.code(), Some(2), "{cmd} {why}: {err}");
            assert!(
                err.starts_with("mqsec: error: invalid --topic: ") && err.contains(why),
                "{err}"
            );
            assert_eq!(err.lines().count(), 1);
            assert!(o.stdout.is_empty() && !out.exists());
        }
        // One byte over 256 MiB, as a sparse file: refused from its size, before it is read.
        let big = dir.path().join("big");
        let f = std::fs::File::create(&big).unwrap();
        f.set_len(payload::MAX_PAYLOAD_LEN as u64 + 1).unwrap();
        let o = mqsec(&[cmd, "--key", k, "--in", s(&big), "--out", s(&out)], b"");
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{cmd}: {err}");
        assert!(
            err.contains("payload: input is larger than the 268435456-byte limit"),
            "{err}"
        );
        assert!(o.stdout.is_empty() && !out.exists());
        // Exactly at the limit is taken (signing: the dev build encrypts slowly).
        if cmd == "sign-payload" {
            f.set_len(payload::MAX_PAYLOAD_LEN as u64).unwrap();
            ok(&mqsec(
                &[cmd, "--key", k, "--in", s(&big), "--out", s(&out)],
                b"",
            ));
            assert_eq!(
                std::fs::metadata(&out).unwrap().len(),
                payload::MAX_PAYLOAD_LEN as u64 + 4 + 48
            );
            std::fs::remove_file(&out).unwrap();
        }
    }
}

/// The annotated tables in docs/payload-envelope.md section 8.1 are the vectors, offset by offset.
#[test]
fn spec_worked_examples_match_the_vectors() {
    let doc = std::fs::read_to_string(root().join("docs/payload-envelope.md")).unwrap();
    let vs = vectors();
    let envelope_of =
        |name: &str| hexd(&vs.iter().find(|v| v["name"] == name).unwrap()["envelope"]);
    let mut tables = Vec::new();
    for block in doc.split("```text\n").skip(1) {
        let body = block.split("```").next().unwrap();
        if !body.starts_with("0 ") {
            continue;
        }
        let mut bytes = Vec::new();
        for line in body.lines() {
            let (left, _field) = line.split_once('|').expect("offset bytes | field");
            let mut tokens = left.split_whitespace();
            let offset: usize = tokens.next().unwrap().parse().unwrap();
            assert_eq!(offset, bytes.len(), "offset column of: {line}");
            bytes.extend(tokens.map(|h| u8::from_str_radix(h, 16).unwrap()));
        }
        tables.push(bytes);
    }
    assert_eq!(
        tables,
        [envelope_of("aead-topic"), envelope_of("mac-topic")],
        "section 8.1 tables"
    );
    // The associated data printed there: H (42 bytes) || u16be(16) || topic.
    let mut aad = tables[0][..42].to_vec();
    aad.extend([0x00, 0x10]);
    aad.extend(b"sensors/001/temp");
    let printed: String = doc
        .split("(42 + 2 + 16 = 60 bytes)")
        .nth(1)
        .and_then(|rest| rest.split("subkey").next())
        .unwrap()
        .chars()
        .filter(char::is_ascii_hexdigit)
        .collect();
    assert_eq!(printed, hex::encode(aad));
}

#[test]
fn python_and_mqsec_open_each_others_envelopes() {
    let dir = tempfile::tempdir().unwrap();
    let kf = keygen(dir.path(), "k", "py-1");
    // The sealing key has the longest id (32 bytes).
    let newest = "py-2.0123456789_abcdefghijklmnop";
    assert_eq!(newest.len(), 32);
    ok(&mqsec(
        &["keygen", "--out", s(&kf), "--id", newest, "--add"],
        b"",
    ));
    let big: Vec<u8> = (0..1_000_000u32).map(|i| (i % 253) as u8).collect();
    // 300 bytes: the topic block's length prefix has a non-zero high byte.
    let long_topic = format!("long/{}", "t".repeat(295));
    for (mq_seal, mq_open, py_seal, py_open) in [
        ("encrypt-payload", "decrypt-payload", "seal", "open"),
        ("sign-payload", "verify-payload", "sign", "verify"),
    ] {
        for (topic, msg, b64) in [
            (Some("sensors/é/1"), b"{\"t\":21.5}".as_slice(), true),
            (None, b"".as_slice(), false),
            (Some("bulk"), big.as_slice(), false),
            (Some(long_topic.as_str()), b"x".as_slice(), true),
        ] {
            let mut extra: Vec<&str> = Vec::new();
            if let Some(t) = topic {
                extra.extend(["--topic", t]);
            }
            if b64 {
                extra.push("--base64");
            }
            let kfs = s(&kf);
            let cmd = |name: &'static str, key_flag: &'static str| {
                let mut a = vec![name, key_flag, kfs];
                a.extend(&extra);
                a
            };
            // mqsec -> Python
            let env = ok(&mqsec(&cmd(mq_seal, "--key"), msg)).to_vec();
            let back = python(&cmd(py_open, "--key-file"), &env);
            assert_eq!(ok(&back), msg, "{mq_seal} -> python {py_open}");
            // Python -> mqsec
            let env = ok(&python(&cmd(py_seal, "--key-file"), msg)).to_vec();
            let mut a = cmd(mq_open, "--key");
            a.extend(["--max-age", "1m"]);
            assert_eq!(ok(&mqsec(&a, &env)), msg, "python {py_seal} -> {mq_open}");
            // Both picked the newest key.
            let raw = if b64 {
                payload::from_base64(&env).unwrap()
            } else {
                env
            };
            assert_eq!(payload::parse(&raw).unwrap().header.key_id, newest);
        }
    }
}

#[test]
fn cli_round_trips_files_and_pipes() {
    let dir = tempfile::tempdir().unwrap();
    let kf = keygen(dir.path(), "k", "rt");
    let k = s(&kf);
    let mut big = vec![0u8; 16 * 1024 * 1024];
    rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut big);
    // The debug binary's XChaCha20 runs unoptimised (generic code is compiled in this crate), so
    // the CLI encrypts up to 1 MiB here; the library test covers 16 MiB, and signing is fast.
    for len in [0, 1, 100, 1024 * 1024, 16 * 1024 * 1024] {
        let msg = &big[..len];
        if len > 1024 * 1024 {
            let b64 = ok(&mqsec(&["sign-payload", "--key", k, "--base64"], msg)).to_vec();
            let back = mqsec(&["verify-payload", "--key", k, "--base64"], &b64);
            assert!(ok(&back) == msg, "signed round trip of {len} bytes");
            continue;
        }
        let env = ok(&mqsec(
            &["encrypt-payload", "--key", k, "--topic", "a/b"],
            msg,
        ))
        .to_vec();
        assert_eq!(env.len(), len + 2 + 56);
        let back = mqsec(&["decrypt-payload", "--key", k, "--topic", "a/b"], &env);
        assert!(ok(&back) == msg, "round trip of {len} bytes");
        let b64 = ok(&mqsec(&["sign-payload", "--key", k, "--base64"], msg)).to_vec();
        assert_eq!(b64.iter().filter(|&&c| c == b'\n').count(), 1);
        assert!(b64.starts_with(b"iU1RUAE"));
        let back = mqsec(&["verify-payload", "--key", k, "--base64"], &b64);
        assert!(ok(&back) == msg, "signed round trip of {len} bytes");
    }
    // --in / --out: the envelope file is public, the decrypted file is written 0600.
    let pin = dir.path().join("plain");
    let eout = dir.path().join("env");
    let pout = dir.path().join("plain.out");
    std::fs::write(&pin, b"file payload").unwrap();
    ok(&mqsec(
        &[
            "encrypt-payload",
            "--key",
            k,
            "--in",
            s(&pin),
            "--out",
            s(&eout),
        ],
        b"",
    ));
    ok(&mqsec(
        &[
            "decrypt-payload",
            "--key",
            k,
            "--in",
            s(&eout),
            "--out",
            s(&pout),
        ],
        b"",
    ));
    assert_eq!(std::fs::read(&pout).unwrap(), b"file payload");
    assert_eq!(mqsec::fsutil::mode_of(&pout), Some(0o600));
}

#[test]
fn every_failure_exits_1_with_no_output() {
    let dir = tempfile::tempdir().unwrap();
    let kf = keygen(dir.path(), "k", "main");
    let k = s(&kf);
    let secret_b64 = std::fs::read_to_string(&kf)
        .unwrap()
        .lines()
        .last()
        .unwrap()
        .rsplit(' ')
        .next()
        .unwrap()
        .to_string();
    let env = ok(&mqsec(
        &["encrypt-payload", "--key", k, "--topic", "a/b"],
        b"top secret",
    ))
    .to_vec();
    let dec = |args: &[&str], input: &[u8]| {
        let mut a = vec!["decrypt-payload", "--key"];
        a.extend(args);
        let o = mqsec(&a, input);
        assert!(!String::from_utf8_lossy(&o.stderr).contains(&secret_b64));
        o
    };
    assert_rejected(&dec(&[k, "--topic", "a/c"], &env), "authentication failed");
    assert_rejected(&dec(&[k], &env), "no --topic");
    let other_same_id = keygen(dir.path(), "other", "main");
    assert_rejected(
        &dec(&[s(&other_same_id), "--topic", "a/b"], &env),
        "authentication failed",
    );
    let other_id = keygen(dir.path(), "other2", "elsewhere");
    assert_rejected(
        &dec(&[s(&other_id), "--topic", "a/b"], &env),
        "no key with id 'main'",
    );
    let mut tampered = env.clone();
    let last = tampered.len() - 20;
    tampered[last] ^= 0x01;
    assert_rejected(
        &dec(&[k, "--topic", "a/b"], &tampered),
        "authentication failed",
    );
    assert_rejected(
        &dec(&[k, "--topic", "a/b"], &env[..env.len() - 1]),
        "authentication failed",
    );
    assert_rejected(&dec(&[k, "--topic", "a/b"], &env[..30]), "truncated");
    assert_rejected(&dec(&[k, "--topic", "a/b"], b""), "truncated: 0 bytes");
    assert_rejected(
        &dec(&[k, "--topic", "a/b"], b"plain text"),
        "not an mqsec envelope",
    );
    let mut v2 = env.clone();
    v2[4] = 2;
    assert_rejected(
        &dec(&[k, "--topic", "a/b"], &v2),
        "unsupported envelope version 2",
    );
    assert_rejected(
        &dec(&[k, "--topic", "a/b", "--base64"], b"not base64!\n"),
        "base64",
    );
    // The form mixed up either way is named, with the flag that fixes it.
    let b64 = format!("{}\n", payload::to_base64(&env));
    assert_rejected(
        &dec(&[k, "--topic", "a/b"], b64.as_bytes()),
        "looks like base64: add --base64",
    );
    assert_rejected(
        &dec(&[k, "--topic", "a/b", "--base64"], &env),
        "raw envelope: leave out --base64",
    );
    let signed = ok(&mqsec(
        &["sign-payload", "--key", k, "--topic", "a/b"],
        b"x",
    ))
    .to_vec();
    assert_rejected(&dec(&[k, "--topic", "a/b"], &signed), "use verify-payload");
    let o = mqsec(&["verify-payload", "--key", k, "--topic", "a/b"], &env);
    assert_rejected(&o, "use decrypt-payload");
    // Old and future timestamps, made with the library's fixed-time entry point.
    let (ring, _) = KeyRing::load(&kf).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let key = ring.newest();
    let old = payload::seal_with(key, None, b"stale", &[9; 24], now - 3601).unwrap();
    assert_rejected(&dec(&[k, "--max-age", "1h"], &old), "too old: sealed 36");
    assert_eq!(ok(&dec(&[k, "--max-age", "2h"], &old)), b"stale");
    assert_eq!(
        ok(&dec(&[k], &old)),
        b"stale",
        "age is only judged on request"
    );
    let future = payload::seal_with(key, None, b"early", &[8; 24], now + 3600).unwrap();
    assert_rejected(&dec(&[k, "--max-age", "1d"], &future), "in the future");
    // A bad --max-age or --topic is a usage error (2), still with nothing on stdout.
    let o = dec(&[k, "--max-age", "5 minutes"], &env);
    assert_eq!(o.status.code(), Some(2));
    assert!(o.stdout.is_empty());
    let o = dec(&[k, "--topic", "a/#"], &env);
    assert_eq!(o.status.code(), Some(2));
    assert!(o.stdout.is_empty());
}

#[test]
fn keygen_rotation_and_bad_key_files() {
    let dir = tempfile::tempdir().unwrap();
    let kf = keygen(dir.path(), "k", "2026-01");
    let k = s(&kf);
    assert_eq!(mqsec::fsutil::mode_of(&kf), Some(0o600));
    let first = std::fs::read(&kf).unwrap();
    let o = mqsec(&["keygen", "--out", k], b"");
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("already exists"));
    assert_eq!(
        std::fs::read(&kf).unwrap(),
        first,
        "refused overwrite left the file alone"
    );

    let old_env = ok(&mqsec(&["encrypt-payload", "--key", k], b"before rotation")).to_vec();
    let old_sig = ok(&mqsec(&["sign-payload", "--key", k], b"signed before")).to_vec();
    let o = mqsec(&["keygen", "--out", k, "--add", "--id", "2026-07"], b"");
    assert!(String::from_utf8_lossy(ok(&o)).contains("2 keys"));
    assert_eq!(mqsec::fsutil::mode_of(&kf), Some(0o600));
    let new_env = ok(&mqsec(&["encrypt-payload", "--key", k], b"after rotation")).to_vec();
    assert_eq!(payload::parse(&new_env).unwrap().header.key_id, "2026-07");
    assert_eq!(
        ok(&mqsec(&["decrypt-payload", "--key", k], &old_env)),
        b"before rotation"
    );
    assert_eq!(
        ok(&mqsec(&["verify-payload", "--key", k], &old_sig)),
        b"signed before"
    );
    assert_eq!(
        ok(&mqsec(&["decrypt-payload", "--key", k], &new_env)),
        b"after rotation"
    );
    let o = mqsec(&["keygen", "--out", k, "--add", "--id", "2026-07"], b"");
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("already holds a key with id '2026-07'"));
    // A hand-edited file without a final newline: the new key still gets a line of its own.
    let edited = dir.path().join("edited.keys");
    let text = std::fs::read_to_string(&kf).unwrap();
    mqsec::fsutil::atomic_write(&edited, text.trim_end().as_bytes(), 0o600).unwrap();
    ok(&mqsec(
        &["keygen", "--out", s(&edited), "--add", "--id", "2027-01"],
        b"",
    ));
    let (ring, _) = KeyRing::load(&edited).unwrap();
    assert_eq!(ring.len(), 3);
    assert_eq!(ring.newest().id().as_str(), "2027-01");
    // A key dated ahead of the clock does not keep sealing after --add.
    let ahead = dir.path().join("ahead.keys");
    let (_, b64) = text.trim_end().rsplit_once(' ').unwrap();
    let future_line = format!("future 2099-01-01T00:00:00Z {b64}\n");
    mqsec::fsutil::atomic_write(&ahead, future_line.as_bytes(), 0o600).unwrap();
    let o = mqsec(&["keygen", "--out", s(&ahead), "--add", "--id", "now"], b"");
    ok(&o);
    assert!(String::from_utf8_lossy(&o.stderr).contains("key 'future' is dated in the future"));
    let env = ok(&mqsec(&["encrypt-payload", "--key", s(&ahead)], b"x")).to_vec();
    assert_eq!(payload::parse(&env).unwrap().header.key_id, "now");
    let missing = dir.path().join("missing");
    let o = mqsec(&["keygen", "--out", s(&missing), "--add"], b"");
    assert_eq!(o.status.code(), Some(2));
    let o = mqsec(&["keygen", "--out", s(&missing), "--id", "bad id"], b"");
    assert_eq!(o.status.code(), Some(2));
    // A random default id; --force replaces the file (the old keys are gone).
    ok(&mqsec(&["keygen", "--out", k, "--force"], b""));
    let (ring, _) = KeyRing::load(&kf).unwrap();
    assert_eq!(ring.len(), 1);
    assert_eq!(ring.newest().id().as_str().len(), 16);
    assert_rejected(
        &mqsec(&["decrypt-payload", "--key", k], &old_env),
        "no key with id",
    );

    // Loose permissions: warned, still usable.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&kf, std::fs::Permissions::from_mode(0o644)).unwrap();
    let o = mqsec(&["encrypt-payload", "--key", k], b"x");
    ok(&o);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("warning") && err.contains("mode 0644") && err.contains("chmod 600"),
        "{err}"
    );

    // Malformed lines are named file:line, and the key text is never echoed.
    let bad = dir.path().join("bad.keys");
    let good_line = std::fs::read_to_string(&kf)
        .unwrap()
        .lines()
        .last()
        .unwrap()
        .to_string();
    let secret = good_line.rsplit(' ').next().unwrap().to_string();
    for (text, line, what) in [
        (
            format!("# ok\n{good_line}\n{secret}\n"),
            3,
            "expected 3 fields",
        ),
        (
            format!("\n\nk2 not-a-time {secret}\n"),
            3,
            "field 2 (created)",
        ),
        (
            format!("k2 2026-01-01T00:00:00Z {}\n", &secret[..20]),
            1,
            "field 3 (key)",
        ),
        (
            format!("{good_line}\n{good_line}\n"),
            2,
            "already appears on line 1",
        ),
    ] {
        mqsec::fsutil::atomic_write(&bad, text.as_bytes(), 0o600).unwrap();
        let o = mqsec(&["encrypt-payload", "--key", s(&bad)], b"x");
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{err}");
        assert!(o.stdout.is_empty());
        assert!(
            err.contains(&format!("bad.keys:{line}: ")) && err.contains(what),
            "{err}"
        );
        assert!(!err.contains(&secret[..20]), "key material in error: {err}");
    }
    let o = mqsec(&["decrypt-payload", "--key", s(&missing)], b"x");
    assert_eq!(o.status.code(), Some(2));
}

// ---- real Mosquitto ----

/// `mosquitto_sub -C 1 ... | mqsec <open_args>`, as two real processes joined by a pipe.
fn sub_into_mqsec(port: u16, sub_args: &[&str], open_args: &[&str]) -> (ChildGuard, ChildGuard) {
    let mut sub = StdCommand::new("mosquitto_sub")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-C",
            "1",
            "-W",
            "20",
        ])
        .args(sub_args)
        .stdout(Stdio::piped())
        .spawn()
        .expect("mosquitto_sub is installed");
    let pipe = sub.stdout.take().unwrap();
    let sub = ChildGuard::new(sub);
    let dec = StdCommand::new(mqsec_bin())
        .args(open_args)
        .stdin(Stdio::from(pipe))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    (sub, ChildGuard::new(dec))
}

/// Wait (bounded) for the receiving mqsec to finish; returns (exit code, stdout, stderr).
fn finish(dec: ChildGuard) -> (Option<i32>, Vec<u8>, String) {
    let o = dec.wait_output(TIMEOUT);
    (
        o.status.code(),
        o.stdout,
        String::from_utf8(o.stderr).unwrap(),
    )
}

/// `mqsec <seal_args> | mosquitto_pub -s ...`, as two real processes joined by a pipe.
fn mqsec_into_pub(port: u16, seal_args: &[&str], input: &[u8], pub_args: &[&str]) {
    let mut enc = StdCommand::new(mqsec_bin())
        .args(seal_args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let pipe = enc.stdout.take().unwrap();
    let mut stdin = enc.stdin.take().unwrap();
    let enc = ChildGuard::new(enc);
    let publ = ChildGuard::new(
        StdCommand::new("mosquitto_pub")
            .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-s"])
            .args(pub_args)
            .stdin(Stdio::from(pipe))
            .spawn()
            .expect("mosquitto_pub is installed"),
    );
    stdin.write_all(input).unwrap();
    drop(stdin);
    for mut g in [enc, publ] {
        assert!(
            g.wait_timeout(TIMEOUT).success(),
            "publisher pipeline failed"
        );
    }
}

#[test]
fn pipes_through_mosquitto() {
    let dir = tempfile::tempdir().unwrap();
    let kf = keygen(dir.path(), "k", "mq");
    let k = s(&kf);
    let broker = Mosquitto::start(dir.path(), "allow_anonymous true\n");
    let port = broker.port;

    // Live: subscriber first, then publish (repeatedly, until the subscription has taken effect).
    for (seal, open, topic, msg) in [
        (
            "encrypt-payload",
            "decrypt-payload",
            "plant/1/temp",
            b"{\"temp\": 21.5}".as_slice(),
        ),
        (
            "sign-payload",
            "verify-payload",
            "plant/1/cmd",
            b"open valve 3".as_slice(),
        ),
    ] {
        let (_sub, dec) = sub_into_mqsec(
            port,
            &["-t", topic],
            &[
                open,
                "--key",
                k,
                "--topic",
                topic,
                "--base64",
                "--max-age",
                "5m",
            ],
        );
        let mut dec = Some(dec);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            mqsec_into_pub(
                port,
                &[seal, "--key", k, "--topic", topic, "--base64"],
                msg,
                &["-t", topic],
            );
            std::thread::sleep(Duration::from_millis(150));
            if dec.as_mut().unwrap().try_wait().unwrap().is_some() {
                break;
            }
            assert!(Instant::now() < deadline, "no message arrived");
        }
        let (code, out, err) = finish(dec.take().unwrap());
        assert_eq!(code, Some(0), "{err}");
        assert_eq!(out, msg);
    }

    // Raw binary: `mosquitto_pub -f FILE` (retained), `mosquitto_sub -N` (no added newline).
    let binary: Vec<u8> = (0..=255u8).cycle().take(3000).collect();
    let plain = dir.path().join("binary.in");
    let env = dir.path().join("binary.env");
    std::fs::write(&plain, &binary).unwrap();
    ok(&mqsec(
        &[
            "encrypt-payload",
            "--key",
            k,
            "--topic",
            "bin/1",
            "--in",
            s(&plain),
            "--out",
            s(&env),
        ],
        b"",
    ));
    let o = StdCommand::new("mosquitto_pub")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-r",
            "-t",
            "bin/1",
            "-f",
            s(&env),
        ])
        .output()
        .unwrap();
    assert!(o.status.success());
    let (_sub, dec) = sub_into_mqsec(
        port,
        &["-t", "bin/1", "-N"],
        &["decrypt-payload", "--key", k, "--topic", "bin/1"],
    );
    let (code, out, err) = finish(dec);
    assert_eq!(code, Some(0), "{err}");
    assert!(out == binary, "binary payload changed in transit");

    // The same retained envelope read on the wrong topic binding is refused, nothing written.
    let (_sub, dec) = sub_into_mqsec(
        port,
        &["-t", "bin/1", "-N"],
        &["decrypt-payload", "--key", k, "--topic", "bin/2"],
    );
    let (code, out, err) = finish(dec);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        out.is_empty() && err.contains("authentication failed"),
        "{err}"
    );
}
