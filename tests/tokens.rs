//! Access tokens (issue 21): `mqsec serve` with `token_key_file` / `token_jwks_file`, driven by
//! tokens from `mqsec gen-token` and tokens minted independently in Python (RFC 7515 by hand
//! with hmac/hashlib, ES256/RS256 with `cryptography`), over real sockets with mosquitto_pub,
//! paho-mqtt and a raw codec client where exact reason codes matter.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use mqsec::broker::codec::{Auth, LastWill, Packet, Properties, ProtocolVersion, QoS};

use common::raw::{connect_packet, Raw};
use common::serve::Serve;
use common::{free_port, mqsec, python, stdout_of, wait_output};

const WAIT: Duration = Duration::from_secs(30);
const V3: ProtocolVersion = ProtocolVersion::V311;
const V5: ProtocolVersion = ProtocolVersion::V5;
const SECRET: &str = "s3cret-for-tests-0123456789abcdef-0123456789";

/// What these tests ask of the broker, beside the shared ones.
impl Serve {
    /// Connect with a token in the password field; the CONNACK code. MQTT 3.1.1 has no
    /// password without a user name: an empty one stands for "the token's".
    fn connack(&self, v: ProtocolVersion, user: Option<&str>, token: &str) -> u8 {
        login(self.port, v, "c", user, token).1
    }

    fn logs(&self) -> String {
        self.stderr() + &std::fs::read_to_string(self.path("security.jsonl")).unwrap_or_default()
    }
}

/// `Raw::login` with a token as the password (and an empty user name in v3, which needs one).
fn login(port: u16, v: ProtocolVersion, id: &str, user: Option<&str>, token: &str) -> (Raw, u8) {
    let user = user.or((v != V5).then_some(""));
    Raw::login(port, v, id, user, Some(token))
}

fn gen_token(args: &[&str]) -> String {
    let out = mqsec(&[&["gen-token"], args].concat());
    assert!(out.status.success(), "gen-token {args:?}: {out:?}");
    let t = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert_eq!(t.split('.').count(), 3, "{t}");
    t
}

fn write(dir: &Path, name: &str, body: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, body).unwrap();
    p.to_str().unwrap().to_string()
}

/// Run a Python script (inline source) with arguments; its stdout.
fn py(script: &str, args: &[&str]) -> String {
    stdout_of(
        Command::new(python()).arg("-c").arg(script).args(args),
        "python",
    )
}

fn mosquitto_pub(port: u16, user: &str, token: &str, topic: &str) -> std::process::Output {
    let child = Command::new("mosquitto_pub")
        .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-i", "mp"])
        .args([
            "-u", user, "-P", token, "-t", topic, "-m", "21.5", "-q", "1",
        ])
        .args(["-V", "mqttv5"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("mosquitto_pub is installed");
    wait_output(child, WAIT)
}

/// The PUBACK code of a QoS 1 publish; 0x10 (accepted, no subscribers) counts as 0.
fn puback(c: &mut Raw, topic: &str, id: u16) -> u8 {
    c.publish(topic, b"x", QoS::AtLeastOnce, false, id);
    match c.recv() {
        Some(Packet::PubAck(a)) if a.reason == 0x10 => 0,
        Some(Packet::PubAck(a)) => a.reason,
        p => panic!("expected PUBACK, got {p:?}"),
    }
}

/// Tokens minted by hand from RFC 7519/7515: HS256 with hmac, ES256 and RS256 with
/// `cryptography` (DER signatures turned into JOSE's r||s for ES256). argv: out dir, secret.
/// Prints one `name token` line per case; writes es256.pub.pem and rs256.pub.pem.
const MINT_PY: &str = r#"
import base64, hashlib, hmac, json, sys, time
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

out, secret = sys.argv[1], sys.argv[2].encode()
b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()
now = int(time.time())

def token(header, claims, sign):
    h = b64(json.dumps(header).encode()) + "." + b64(json.dumps(claims).encode())
    return h + "." + b64(sign(h.encode()))

hs = lambda key: (lambda m: hmac.new(key, m, hashlib.sha256).digest())
good = {"sub": "py-dev", "aud": "mqtt", "iss": "idp", "iat": now, "exp": now + 600,
        "acl": {"pub": ["py/%u/up"], "sub": ["py/%u/down"]}}
def claims(**kw):
    c = dict(good); c.update(kw); return c

cases = {
    "hs_good": token({"alg": "HS256", "typ": "JWT"}, good, hs(secret)),
    "hs_expired": token({"alg": "HS256"}, claims(exp=now - 120), hs(secret)),
    "hs_not_yet": token({"alg": "HS256"}, claims(nbf=now + 3600), hs(secret)),
    "hs_future_iat": token({"alg": "HS256"}, claims(iat=now + 3600), hs(secret)),
    "hs_wrong_sig": token({"alg": "HS256"}, good, hs(b"another-secret-0123456789abcdef-xyz")),
    "hs_wrong_aud": token({"alg": "HS256"}, claims(aud="other"), hs(secret)),
    "hs_wrong_iss": token({"alg": "HS256"}, claims(iss="evil"), hs(secret)),
    "alg_none": token({"alg": "none"}, good, lambda m: b""),
}

ek = ec.generate_private_key(ec.SECP256R1())
def es256(m):
    r, s = decode_dss_signature(ek.sign(m, ec.ECDSA(hashes.SHA256())))
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")
cases["es_good"] = token({"alg": "ES256"}, good, es256)
pem = ek.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
open(out + "/es256.pub.pem", "wb").write(pem)

rk = rsa.generate_private_key(public_exponent=65537, key_size=2048)
cases["rs_good"] = token({"alg": "RS256"}, good, lambda m: rk.sign(m, padding.PKCS1v15(), hashes.SHA256()))
rpem = rk.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
open(out + "/rs256.pub.pem", "wb").write(rpem)
# Key confusion: HS256 "signed" with the RSA public key's PEM as the secret.
cases["rs_confused"] = token({"alg": "HS256"}, good, hs(rpem))

for k, v in cases.items():
    print(k, v)
"#;

#[test]
fn independently_minted_tokens_are_scoped_and_every_bad_one_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let minted = py(MINT_PY, &[d.to_str().unwrap(), SECRET]);
    let tok = |name: &str| -> String {
        minted
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
            .unwrap_or_else(|| panic!("{name} not minted"))
            .to_string()
    };
    write(d, "secret", &format!("{SECRET}\n"));
    let (es_port, rs_port) = (free_port(), free_port());
    let b = Serve::start(
        d,
        &format!(
            "per_listener_settings true\nallow_anonymous false\ntoken_key_file secret\ntoken_audience mqtt\ntoken_issuer idp\n\
             listener {es_port} 127.0.0.1\nallow_anonymous false\ntoken_key_file es256.pub.pem\ntoken_algorithms ES256\ntoken_audience mqtt\n\
             listener {rs_port} 127.0.0.1\nallow_anonymous false\ntoken_key_file rs256.pub.pem\ntoken_algorithms RS256\ntoken_audience mqtt\n"
        ),
    );
    // Accepted, and scoped by the acl claim (%u = py-dev).
    for v in [V3, V5] {
        assert_eq!(b.connack(v, None, &tok("hs_good")), 0);
        assert_eq!(b.connack(v, Some("py-dev"), &tok("hs_good")), 0);
    }
    let (mut c, code) = login(b.port, V5, "c1", Some(""), &tok("hs_good"));
    assert_eq!(code, 0);
    assert_eq!(puback(&mut c, "py/py-dev/up", 1), 0);
    assert_eq!(puback(&mut c, "py/other/up", 2), 0x87);
    assert_eq!(c.subscribe("py/py-dev/down", QoS::AtLeastOnce), [1]);
    assert_eq!(c.subscribe("other/#", QoS::AtLeastOnce), [0x87]);
    for (port, name) in [(es_port, "es_good"), (rs_port, "rs_good")] {
        assert_eq!(login(port, V5, "c", None, &tok(name)).1, 0, "{name}");
    }
    // Refusals: v5 0x86, v3.1.1 5, each logged with its reason.
    let refused = [
        (b.port, "hs_expired", "token: expired"),
        (b.port, "hs_not_yet", "token: not yet valid (nbf)"),
        (b.port, "hs_future_iat", "token: issued in the future (iat)"),
        (b.port, "hs_wrong_sig", "token: bad signature"),
        (b.port, "hs_wrong_aud", "token: wrong audience"),
        (b.port, "hs_wrong_iss", "token: wrong issuer"),
        (b.port, "alg_none", "token: unsigned token (alg none)"),
        (b.port, "es_good", "token: algorithm ES256 not accepted"),
        (
            rs_port,
            "rs_confused",
            "token: algorithm HS256 not accepted",
        ),
    ];
    for (port, name, reason) in refused {
        assert_eq!(login(port, V5, "c", None, &tok(name)).1, 0x86, "{name}");
        assert_eq!(login(port, V3, "c", None, &tok(name)).1, 5, "{name}");
        b.wait_event(reason, |e| {
            e["event"] == "auth_failure" && e["reason"] == reason
        });
    }
    // A username that is not the token's subject.
    assert_eq!(b.connack(V5, Some("someone-else"), &tok("hs_good")), 0x86);
    b.wait_event("username mismatch", |e| {
        e["reason"] == "token: username does not match the token's sub claim"
    });
    // paho-mqtt (v5 and v3.1.1) with the token as its password: SUBACK codes from the claims.
    let paho = r#"
import sys, time, paho.mqtt.client as mqtt
port, token, proto = int(sys.argv[1]), sys.argv[2], sys.argv[3]
v = mqtt.MQTTv5 if proto == "5" else mqtt.MQTTv311
c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="paho-tok", protocol=v)
c.username_pw_set("py-dev", token)
acks = []
c.on_subscribe = lambda c, u, mid, codes, props: acks.append([int(getattr(x, "value", x)) for x in codes])
c.connect("127.0.0.1", port)
c.loop_start()
deadline = time.time() + 20
while not c.is_connected() and time.time() < deadline: time.sleep(0.05)
c.subscribe([("py/py-dev/down", 1), ("other/#", 1)])
c.publish("py/py-dev/up", b"21.5", qos=1).wait_for_publish(20)
while not acks and time.time() < deadline: time.sleep(0.05)
print(acks[0] if acks else "no suback")
"#;
    // v3.1.1's SUBACK failure is 0x80; v5 says 0x87.
    for (proto, want) in [("5", "[1, 135]"), ("311", "[1, 128]")] {
        let out = py(paho, &[&b.port.to_string(), &tok("hs_good"), proto]);
        assert_eq!(out.trim(), want, "paho {proto}");
    }
    // paho's CONNACK reason code (v5): accepted, and refused as a bad user name or password.
    let paho_connect = r#"
import sys, time, paho.mqtt.client as mqtt
port, token = int(sys.argv[1]), sys.argv[2]
c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="paho-pub", protocol=mqtt.MQTTv5)
c.username_pw_set("py-dev", token)
codes = []
c.on_connect = lambda c, u, flags, rc, props: codes.append(rc.value)
c.connect("127.0.0.1", port)
c.loop_start()
deadline = time.time() + 20
while not codes and time.time() < deadline: time.sleep(0.05)
print(codes[0] if codes else "no connack")
"#;
    let port = b.port.to_string();
    assert_eq!(py(paho_connect, &[&port, &tok("hs_good")]).trim(), "0");
    assert_eq!(py(paho_connect, &[&port, &tok("hs_expired")]).trim(), "134");
    // No token, and no secret, in any log.
    let logs = b.logs();
    for name in ["hs_good", "hs_expired", "rs_confused"] {
        let t = tok(name);
        let sig = t.rsplit('.').next().unwrap();
        assert!(!logs.contains(sig), "{name}'s signature in a log");
    }
    assert!(!logs.contains(SECRET));
}

#[test]
fn gen_token_with_mosquitto_pub_passwords_alongside_and_a_client_certificate_key() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let secret = write(d, "jwt.secret", &format!("{SECRET}\n"));
    // A password user on the same listener (mosquitto_passwd's format).
    common::mosquitto_passwd(&[
        "-c",
        "-b",
        d.join("passwd").to_str().unwrap(),
        "alice",
        "alice-pw-123",
    ]);
    write(
        d,
        "acl",
        "user alice\ntopic readwrite alice/#\nrole telemetry\ntopic read telemetry/#\n",
    );
    let ca = d.join("ca");
    let clients = d.join("clients");
    for args in [
        vec!["gen-ca", "--out", ca.to_str().unwrap()],
        vec![
            "gen-client-cert",
            "--ca",
            ca.to_str().unwrap(),
            "--out",
            clients.to_str().unwrap(),
            "--name",
            "dev-ec",
        ],
    ] {
        let out = mqsec(&args);
        assert!(out.status.success(), "{args:?}: {out:?}");
    }
    let ec_port = free_port();
    let b = Serve::start(
        d,
        &format!(
            "per_listener_settings true\nallow_anonymous false\npassword_file passwd\nacl_file acl\ntoken_key_file jwt.secret\n\
             listener {ec_port} 127.0.0.1\nallow_anonymous false\nacl_file acl\ntoken_key_file clients/dev-ec.crt\n"
        ),
    );
    let t = gen_token(&[
        "--key",
        &secret,
        "--alg",
        "HS256",
        "--sub",
        "dev-1",
        "--acl-pub",
        "devices/%u/up/#",
        "--acl-sub",
        "devices/%u/down/#",
        "--roles",
        "telemetry",
        "--ttl",
        "10m",
    ]);
    let ok = mosquitto_pub(b.port, "dev-1", &t, "devices/dev-1/up/temp");
    assert!(ok.status.success(), "{ok:?}");
    let denied = mosquitto_pub(b.port, "dev-1", &t, "devices/dev-2/up/temp");
    // mosquitto_pub reports the PUBACK refusal (v5 0x87) on stderr.
    assert!(
        String::from_utf8_lossy(&denied.stderr)
            .to_lowercase()
            .contains("not authori"),
        "{denied:?}"
    );
    // The role from the claim, judged by the ACL file.
    let (mut c, code) = login(b.port, V5, "dev-1c", Some("dev-1"), &t);
    assert_eq!(code, 0);
    assert_eq!(c.subscribe("telemetry/#", QoS::AtMostOnce), [0]);
    assert_eq!(c.subscribe("alice/#", QoS::AtMostOnce), [0x87]);
    // The password user alongside (its password is not a JWT).
    let (mut a, code) = Raw::login(b.port, V5, "alice-c", Some("alice"), Some("alice-pw-123"));
    assert_eq!(code, 0);
    assert_eq!(puback(&mut a, "alice/x", 3), 0);
    assert_eq!(b.connack(V5, Some("alice"), "wrong"), 0x86);
    // ES256 with the private key gen-client-cert wrote; the broker holds the certificate.
    let ec = gen_token(&[
        "--key",
        clients.join("dev-ec.key").to_str().unwrap(),
        "--alg",
        "ES256",
        "--sub",
        "dev-ec",
        "--acl-pub",
        "ec/%c/#",
        "--ttl",
        "5m",
    ]);
    let (mut e, code) = login(ec_port, V5, "ecc", None, &ec);
    assert_eq!(code, 0);
    assert_eq!(puback(&mut e, "ec/ecc/x", 4), 0);
    assert_eq!(puback(&mut e, "ec/other/x", 5), 0x87);
    // The HS256 token is not accepted where the key is the certificate's.
    assert_eq!(login(ec_port, V5, "c", None, &t).1, 0x86);
}

#[test]
fn expiry_disconnects_a_live_client_and_v5_auth_refreshes_the_token() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let secret = write(d, "secret", SECRET);
    let b = Serve::start(
        d,
        "allow_anonymous false\ntoken_key_file secret\ntoken_leeway 0\n",
    );
    let short = |sub: &str, ttl: &str| {
        gen_token(&[
            "--key",
            &secret,
            "--alg",
            "HS256",
            "--sub",
            sub,
            "--acl-pub",
            "a/%u",
            "--ttl",
            ttl,
        ])
    };
    // A watcher of the wills topic (its token lives long).
    let watch = gen_token(&[
        "--key",
        &secret,
        "--alg",
        "HS256",
        "--sub",
        "watch",
        "--acl-sub",
        "wills/#",
        "--acl-pub",
        "wills/#",
        "--ttl",
        "1h",
    ]);
    let (mut watcher, code) = login(b.port, V5, "w", None, &watch);
    assert_eq!(code, 0);
    assert_eq!(watcher.subscribe("wills/#", QoS::AtMostOnce), [0]);
    // Password field, v5 (with a will) and v3.1.1: closed when the token runs out (v5
    // DISCONNECT 0xA0), without the will.
    let mut v5c = Raw::open(b.port, V5);
    let mut c5 = connect_packet(V5, "x5", true, Properties::default());
    c5.password = Some(Bytes::from(gen_token(&[
        "--key",
        &secret,
        "--alg",
        "HS256",
        "--sub",
        "d5",
        "--acl-pub",
        "wills/%u",
        "--ttl",
        "3s",
    ])));
    c5.will = Some(LastWill {
        topic: "wills/d5".into(),
        payload: Bytes::from_static(b"gone"),
        qos: QoS::AtMostOnce,
        retain: false,
        properties: Properties::default(),
    });
    v5c.send(&Packet::Connect(Box::new(c5)));
    assert_eq!(common::raw::connack_code(&v5c.recv().unwrap()), 0);
    let (mut v3c, code) = login(b.port, V3, "x3", None, &short("d3", "3s"));
    assert_eq!(code, 0);
    v5c.s.set_read_timeout(Some(WAIT)).unwrap();
    v3c.s.set_read_timeout(Some(WAIT)).unwrap();
    let started = Instant::now();
    assert_eq!(common::raw::disconnect_reason(v5c.recv()), 0xA0);
    assert!(started.elapsed() >= Duration::from_secs(1));
    assert!(v3c.recv().is_none(), "v3 connection closed");
    // Once the expired connection is gone (its will would have been sent by then), a marker:
    // the watcher's next message is the marker, not a will.
    assert!(v5c.closed());
    watcher.publish("wills/marker", b"m", QoS::AtMostOnce, false, 0);
    let first = watcher.next_publish().expect("the marker");
    assert_eq!(first.topic, "wills/marker");
    b.wait_event("expiry", |e| {
        e["event"] == "disconnected" && e["reason"] == "access token expired"
    });

    // Enhanced authentication: method JWT, the token as authentication data.
    let jwt = |token: &str| Properties {
        authentication_method: Some("JWT".into()),
        authentication_data: Some(Bytes::from(token.to_string())),
        ..Properties::default()
    };
    let (mut c, ack) = Raw::connect(b.port, V5, "re", jwt(&short("dev", "4s")));
    match &ack {
        Packet::ConnAck(a) => {
            assert_eq!(a.code, 0);
            assert_eq!(a.properties.authentication_method.as_deref(), Some("JWT"));
        }
        p => panic!("{p:?}"),
    }
    c.s.set_read_timeout(Some(WAIT)).unwrap();
    assert_eq!(puback(&mut c, "a/dev", 1), 0);
    assert_eq!(puback(&mut c, "b/dev", 2), 0x87);
    // Refresh with a longer token whose claims also grant b/%u.
    let longer = gen_token(&[
        "--key",
        &secret,
        "--alg",
        "HS256",
        "--sub",
        "dev",
        "--acl-pub",
        "a/%u",
        "--acl-pub",
        "b/%u",
        "--ttl",
        "1h",
    ]);
    let reauth = |c: &mut Raw, method: &str, token: &str| {
        c.send(&Packet::Auth(Auth {
            reason: 0x19,
            properties: Properties {
                authentication_method: Some(method.into()),
                authentication_data: Some(Bytes::from(token.to_string())),
                ..Properties::default()
            },
        }));
        c.recv()
    };
    match reauth(&mut c, "JWT", &longer) {
        Some(Packet::Auth(a)) => assert_eq!(a.reason, 0),
        p => panic!("expected AUTH success, got {p:?}"),
    }
    assert_eq!(puback(&mut c, "b/dev", 3), 0, "the new claims apply");
    // Past the first token's end the connection is still there.
    std::thread::sleep(Duration::from_secs(6));
    c.send(&Packet::PingReq);
    assert_eq!(c.recv(), Some(Packet::PingResp));
    // Another user's token: refused, the connection ends (0x87).
    assert_eq!(
        common::raw::disconnect_reason(reauth(&mut c, "JWT", &short("mallory", "1h"))),
        0x87
    );
    b.wait_event("reauth refusal", |e| {
        e["event"] == "reauth_refused"
            && e["reason"] == "token: username does not match the token's sub claim"
    });
    // A refresh whose claims allow less: the subscriptions it no longer allows go at once, as
    // after a reload.
    let subs = |filters: &[&str]| {
        let mut args = vec![
            "--key", &secret, "--alg", "HS256", "--sub", "nar", "--ttl", "1h",
        ];
        for f in filters {
            args.extend(["--acl-sub", f]);
        }
        gen_token(&args)
    };
    let (mut n, ack) = Raw::connect(b.port, V5, "nar", jwt(&subs(&["s/%u/#", "t/%u/#"])));
    assert_eq!(common::raw::connack_code(&ack), 0);
    n.s.set_read_timeout(Some(WAIT)).unwrap();
    assert_eq!(n.subscribe("s/nar/#", QoS::AtMostOnce), [0]);
    assert_eq!(n.subscribe("t/nar/#", QoS::AtMostOnce), [0]);
    match reauth(&mut n, "JWT", &subs(&["s/%u/#"])) {
        Some(Packet::Auth(a)) => assert_eq!(a.reason, 0),
        p => panic!("expected AUTH success, got {p:?}"),
    }
    b.wait_event("t/nar/# removed", |e| {
        e["event"] == "subscription_removed"
            && e["topic"] == "t/nar/#"
            && e["reason"] == "no longer allowed after re-authentication"
    });
    assert!(
        !b.events()
            .iter()
            .any(|e| e["event"] == "subscription_removed" && e["topic"] == "s/nar/#"),
        "s/nar/# is still allowed"
    );

    // Another method, or AUTH after a password-field login: protocol error 0x82 (0x8C is not
    // a DISCONNECT code).
    let (mut c, _) = Raw::connect(b.port, V5, "re2", jwt(&short("dev", "1h")));
    assert_eq!(
        common::raw::disconnect_reason(reauth(&mut c, "SCRAM-SHA-1", "x")),
        0x82
    );
    let (mut c, _) = login(b.port, V5, "re3", None, &short("dev", "1h"));
    assert_eq!(
        common::raw::disconnect_reason(reauth(&mut c, "JWT", &longer)),
        0x82
    );
    // CONNECT with a method the broker does not offer: CONNACK 0x8C; JWT without a token: 0x86.
    let (_, ack) = Raw::connect(
        b.port,
        V5,
        "m",
        Properties {
            authentication_method: Some("SCRAM-SHA-1".into()),
            ..Properties::default()
        },
    );
    assert_eq!(common::raw::connack_code(&ack), 0x8C);
    let (_, ack) = Raw::connect(b.port, V5, "m", jwt("not-a-token"));
    assert_eq!(common::raw::connack_code(&ack), 0x86);
}

#[test]
fn jwks_rotation_by_sighup() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let k1 = "key-one-0123456789abcdef0123456789abcdef";
    let k2 = "key-two-0123456789abcdef0123456789abcdef";
    let b64 = |s: &str| {
        use base64::Engine as _;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s)
    };
    let jwks = |keys: &[(&str, &str)]| {
        let keys: Vec<_> = keys
            .iter()
            .map(|(kid, k)| serde_json::json!({"kty": "oct", "kid": kid, "alg": "HS256", "k": b64(k)}))
            .collect();
        serde_json::json!({ "keys": keys }).to_string()
    };
    write(d, "jwks.json", &jwks(&[("k1", k1)]));
    let s1 = write(d, "k1.secret", k1);
    let s2 = write(d, "k2.secret", k2);
    let b = Serve::start(d, "allow_anonymous false\ntoken_jwks_file jwks.json\n");
    let tok = |secret: &str, kid: &str| {
        gen_token(&[
            "--key", secret, "--alg", "HS256", "--sub", "dev", "--kid", kid, "--ttl", "1h",
        ])
    };
    let (t1, t2) = (tok(&s1, "k1"), tok(&s2, "k2"));
    let (mut live, code) = login(b.port, V5, "live", None, &t1);
    assert_eq!(code, 0);
    assert_eq!(b.connack(V5, None, &t2), 0x86);
    // Rotate: k2 in, k1 out.
    write(d, "jwks.json", &jwks(&[("k2", k2)]));
    b.reload();
    assert_eq!(b.connack(V5, None, &t2), 0);
    assert_eq!(b.connack(V5, None, &t1), 0x86);
    // The client k1 admitted is cut off (0x98, as for revoked credentials).
    live.s.set_read_timeout(Some(WAIT)).unwrap();
    assert_eq!(common::raw::disconnect_reason(live.recv()), 0x98);
    // A broken set at reload keeps the one in force.
    write(d, "jwks.json", "{ not json");
    b.reload();
    assert_eq!(b.connack(V5, None, &t2), 0);
    b.wait_event("kept", |e| {
        e["event"] == "reload"
            && e["reason"]
                .as_str()
                .is_some_and(|r| r.starts_with("1 file(s) kept"))
    });
}

#[test]
fn gen_token_and_acl_check_on_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let short = write(d, "short", "tooshort");
    let out = mqsec(&[
        "gen-token",
        "--key",
        &short,
        "--alg",
        "HS256",
        "--sub",
        "x",
        "--ttl",
        "1h",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("at least 32 bytes"),
        "{out:?}"
    );
    let secret = write(d, "secret", SECRET);
    for (args, msg) in [
        (
            vec!["--alg", "HS256", "--sub", "x", "--ttl", "0s"],
            "at least 1s",
        ),
        (
            vec![
                "--alg",
                "HS256",
                "--sub",
                "x",
                "--ttl",
                "1h",
                "--acl-pub",
                "a/#/b",
            ],
            "acl claim pub[0]",
        ),
        (
            vec!["--alg", "ES256", "--sub", "x", "--ttl", "1h"],
            "does not fit ES256",
        ),
    ] {
        let out = mqsec(&[&["gen-token", "--key", &secret], &args[..]].concat());
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(msg),
            "{args:?}: {out:?}"
        );
    }
    let t = gen_token(&[
        "--key",
        &secret,
        "--alg",
        "HS256",
        "--sub",
        "dev-9",
        "--acl-pub",
        "d/%u/up",
        "--roles",
        "ro",
        "--ttl",
        "1h",
    ]);
    let tf = write(d, "t.jwt", &format!("{t}\n"));
    let acl = write(
        d,
        "acl",
        "role ro\ntopic read status/#\nuser dev-9\ntopic deny d/dev-9/up\n",
    );
    let out = mqsec(&[
        "acl-check",
        &acl,
        "--token",
        &tf,
        "--access",
        "write",
        "d/dev-9/up",
    ]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("deny rule"),
        "{out:?}"
    );
    let empty = write(d, "empty.acl", "");
    let out = mqsec(&[
        "acl-check",
        &empty,
        "--token",
        &tf,
        "-i",
        "c",
        "--access",
        "write",
        "d/dev-9/up",
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (j["username"].as_str(), j["rule"].as_str()),
        (Some("dev-9"), Some("token:1"))
    );
    assert_eq!(j["roles"], serde_json::json!(["ro"]));
    let out = mqsec(&[
        "acl-check",
        &acl,
        "--token",
        &tf,
        "--access",
        "read",
        "status/a",
    ]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("signature and times not checked"));
    let out = mqsec(&[
        "acl-check",
        &acl,
        "--token",
        &tf,
        "-u",
        "x",
        "--access",
        "read",
        "a",
    ]);
    assert_eq!(out.status.code(), Some(2));
}
