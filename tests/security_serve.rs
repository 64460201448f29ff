//! `mqsec serve` enforcing security over plain TCP: password files made by `mosquitto_passwd`
//! and by `mqsec passwd`, the users' guide ACL, `clientid_prefixes`, SIGHUP reloads, the
//! brute-force throttle and the security event log; driven by mosquitto_pub/sub, paho-mqtt,
//! rumqttc and a raw codec client where exact reason codes matter.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use mqsec::broker::codec::{Packet, ProtocolVersion, QoS};

use common::raw::Raw;
use common::serve::Serve;
use common::{
    free_port, mosquitto_passwd, mqsec_bin, mqsec_passwd_add, root, stdout_of, wait_output,
    ChildGuard,
};

const WAIT: Duration = Duration::from_secs(20);
const V3: ProtocolVersion = ProtocolVersion::V311;
const V5: ProtocolVersion = ProtocolVersion::V5;

/// The example ACL of docs/formats.md, trap included.
const GUIDE_ACL: &str = "\
# Admin can access everything
user admin
topic readwrite #

# Sensor devices can only publish to their topics
user sensor_001
topic write sensors/001/#
topic read commands/001

# Dashboard can read everything, write nothing
user dashboard
topic read sensors/#
topic read devices/#

# Default: deny everything
topic deny #
";

const PASSWORDS: &[(&str, &str)] = &[
    ("admin", "Adm1n-secret-pw"),
    ("sensor_001", "s3nsor-secret-pw"),
    ("dashboard", "dashb0ard-secret-pw"),
];

fn pw(user: &str) -> &'static str {
    PASSWORDS
        .iter()
        .find(|(u, _)| *u == user)
        .map(|(_, p)| *p)
        .unwrap_or("no-such-password")
}

/// What these tests ask of the broker, beside the shared ones.
impl Serve {
    fn connack(&self, v: ProtocolVersion, id: &str, user: Option<&str>, pass: Option<&str>) -> u8 {
        Raw::login(self.port, v, id, user, pass).1
    }

    fn login(&self, v: ProtocolVersion, id: &str, user: &str) -> Raw {
        let (c, code) = Raw::login(self.port, v, id, Some(user), Some(pw(user)));
        assert_eq!(code, 0, "{user} refused");
        c
    }

    fn mosquitto_pub(&self, user: Option<&str>, id: &str, topic: &str) -> std::process::Output {
        let mut cmd = Command::new("mosquitto_pub");
        cmd.args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-i", id])
            .args(["-t", topic, "-m", "x", "-q", "1"]);
        if let Some(u) = user {
            cmd.args(["-u", u, "-P", pw(u)]);
        }
        let child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("mosquitto_pub is installed");
        wait_output(child, WAIT)
    }

    fn python(&self, protocol: &str, args: &[&str]) -> String {
        let mut cmd = Command::new("python3");
        cmd.arg(root().join("tests/python/security.py"))
            .args(["--port", &self.port.to_string(), "--protocol", protocol])
            .args(args);
        for (u, p) in PASSWORDS {
            cmd.env(format!("MQSEC_TEST_PW_{u}"), p);
        }
        stdout_of(&mut cmd, &format!("paho {args:?} (MQTT {protocol})"))
            .trim()
            .to_string()
    }
}

/// A directory with the guide's users in a password file (`mosquitto_passwd` for two, `mqsec
/// passwd` for one) and the guide's ACL.
fn guide_files() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let pwfile = dir.path().join("passwd");
    let p = pwfile.to_str().unwrap();
    mosquitto_passwd(&["-c", "-b", p, "admin", pw("admin")]);
    mosquitto_passwd(&["-b", p, "sensor_001", pw("sensor_001")]);
    mqsec_passwd_add(&pwfile, "dashboard", pw("dashboard"));
    std::fs::write(dir.path().join("acl"), GUIDE_ACL).unwrap();
    dir
}

const SECURED: &str = "allow_anonymous false\npassword_file passwd\nacl_file acl\n";

#[test]
fn passwords_from_both_tools_and_the_connack_codes() {
    let files = guide_files();
    let text = std::fs::read_to_string(files.path().join("passwd")).unwrap();
    assert!(
        text.contains("admin:$7$") && text.contains("dashboard:$argon2id$"),
        "{text}"
    );
    let b = Serve::start_in(files, SECURED);

    for user in ["admin", "sensor_001", "dashboard"] {
        for v in [V3, V5] {
            assert_eq!(b.connack(v, "c", Some(user), Some(pw(user))), 0, "{user}");
        }
    }
    // Wrong password and unknown user: the same answer (v5 0x86, v3.1.1 5).
    for (user, pass) in [
        ("admin", "wrong"),
        ("nobody", "Adm1n-secret-pw"),
        ("admin", ""),
    ] {
        assert_eq!(b.connack(V5, "c", Some(user), Some(pass)), 0x86, "{user}");
        assert_eq!(b.connack(V3, "c", Some(user), Some(pass)), 0x05, "{user}");
    }
    // Anonymous: v5 0x87, v3.1.1 5.
    assert_eq!(b.connack(V5, "c", None, None), 0x87);
    assert_eq!(b.connack(V3, "c", None, None), 0x05);

    // Real clients: mosquitto_pub and paho.
    let ok = b.mosquitto_pub(Some("sensor_001"), "mp1", "sensors/001/x");
    assert!(ok.status.success(), "{ok:?}");
    let anon = b.mosquitto_pub(None, "mp2", "sensors/001/x");
    assert!(!anon.status.success());
    assert!(
        String::from_utf8_lossy(&anon.stderr).contains("not authori"),
        "{anon:?}"
    );
    // paho reports v3.1.1 return codes as their v5 equivalents (5 -> 135).
    assert_eq!(b.python("5", &["connect", "admin"]), "0");
    assert_eq!(b.python("311", &["connect", "admin"]), "0");
    assert_eq!(b.python("5", &["connect", "-"]), "135");
    assert_eq!(b.python("311", &["connect", "-"]), "135");

    // The security log: every line JSON, every refusal with its reason and address, no secret.
    let refused = b.wait_event("connect_refused", |e| {
        e["event"] == "connect_refused" && e["code"] == 0x86
    });
    assert_eq!(refused["address"], "127.0.0.1");
    assert_eq!(refused["reason"], "bad username or password");
    b.wait_event("auth_failure for the unknown user", |e| {
        e["event"] == "auth_failure" && e["username"] == "nobody" && e["reason"] == "unknown user"
    });
    b.wait_event("connect_accepted", |e| {
        e["event"] == "connect_accepted" && e["username"] == "dashboard"
    });
    // 3 wrong x 2 versions, 2 raw anonymous, mosquitto_pub anonymous, 2 paho anonymous.
    b.wait_event("11 refusals", |_| b.count("connect_refused") >= 11);
    let log = std::fs::read_to_string(b.path("security.jsonl")).unwrap();
    for (_, secret) in PASSWORDS {
        assert!(!log.contains(secret), "a password in the security log");
        assert!(!b.stderr().contains(secret), "a password in the broker log");
    }
}

#[test]
fn guide_acl_enforced_for_publish_subscribe_and_delivery() {
    let b = Serve::start_in(guide_files(), SECURED);
    // paho, both versions: SUBACK failures, PUBACK 0x87, deliveries filtered.
    b.python("5", &["acl-guide"]);
    b.python("311", &["acl-guide"]);

    // Raw v5: exact codes for what paho hides.
    let mut sensor = b.login(V5, "s-raw", "sensor_001");
    assert_eq!(sensor.subscribe("sensors/#", QoS::AtLeastOnce), [0x87]);
    assert_eq!(sensor.subscribe("commands/001", QoS::AtLeastOnce), [0x01]);
    sensor.publish("sensors/002/x", b"no", QoS::AtLeastOnce, false, 7);
    match sensor.recv() {
        Some(Packet::PubAck(a)) => assert_eq!((a.packet_id, a.reason), (7, 0x87)),
        p => panic!("expected PUBACK 0x87, got {p:?}"),
    }
    let mut v3 = b.login(V3, "s-raw3", "sensor_001");
    assert_eq!(v3.subscribe("sensors/#", QoS::AtLeastOnce), [0x80]);

    // mosquitto_sub as dashboard (the trap: it may read nothing) and as admin; mosquitto_pub
    // as sensor_001, denied then allowed. mosquitto_sub -C 1 exits on its first message.
    let sub = |user: &str| {
        Command::new("mosquitto_sub")
            .args(["-h", "127.0.0.1", "-p", &b.port.to_string()])
            .args([
                "-u",
                user,
                "-P",
                pw(user),
                "-t",
                "sensors/#",
                "-v",
                "-C",
                "1",
            ])
            .args(["-i", &format!("sub-{user}")])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    // The admin's subscription is in place once a probe arrives: publish probes (allowed) until
    // the admin's mosquitto_sub exits with one.
    let mut admin_sub = ChildGuard::new(sub("admin"));
    let deadline = Instant::now() + WAIT;
    let status = loop {
        assert!(b
            .mosquitto_pub(Some("sensor_001"), "probe", "sensors/001/probe")
            .status
            .success());
        if let Some(s) = admin_sub.try_wait().unwrap() {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "admin's mosquitto_sub got nothing"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(status.success());
    // rumqttc (3.1.1) as admin on `#`: sensor_001's denied publish never arrives, its next
    // allowed one does (same publisher, so order proves the drop).
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        use rumqttc::{AsyncClient, Event, MqttOptions, Packet as RPacket};
        let mut o = MqttOptions::new("rumq-admin", "127.0.0.1", b.port);
        o.set_credentials("admin", pw("admin"));
        let (client, mut el) = AsyncClient::new(o, 10);
        client
            .subscribe("#", rumqttc::QoS::AtLeastOnce)
            .await
            .unwrap();
        tokio::time::timeout(WAIT, async {
            loop {
                if let Event::Incoming(RPacket::SubAck(_)) = el.poll().await.unwrap() {
                    break;
                }
            }
        })
        .await
        .expect("SUBACK");
        let mut pubr = b.login(V3, "order", "sensor_001");
        pubr.publish("sensors/002/denied", b"1", QoS::AtLeastOnce, false, 1);
        pubr.publish("sensors/001/allowed", b"2", QoS::AtLeastOnce, false, 2);
        let first = tokio::time::timeout(WAIT, async {
            loop {
                if let Event::Incoming(RPacket::Publish(p)) = el.poll().await.unwrap() {
                    return p.topic;
                }
            }
        })
        .await
        .expect("a delivery");
        assert_eq!(first, "sensors/001/allowed");
    });
    let dash = ChildGuard::new(sub("dashboard"));
    assert!(b
        .mosquitto_pub(Some("sensor_001"), "p2", "sensors/001/x")
        .status
        .success());
    // The dashboard is subscribed (SUBACK 0x80 for it: mosquitto_sub prints a warning) but
    // receives nothing; the acl_denied event for its subscription proves the request arrived.
    b.wait_event("dashboard's denied SUBSCRIBE", |e| {
        e["event"] == "acl_denied" && e["username"] == "dashboard" && e["access"] == "subscribe"
    });
    drop(dash);
    let denied_pub = b.wait_event("denied publish", |e| {
        e["event"] == "acl_denied" && e["access"] == "write" && e["topic"] == "sensors/002/x"
    });
    assert_eq!(denied_pub["reason"], "default deny");
    assert_eq!(denied_pub["username"], "sensor_001");
}

#[test]
fn client_ids_without_a_permitted_prefix_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let b = Serve::start_in(dir, "allow_anonymous true\nclientid_prefixes C1-\n");
    assert_eq!(b.connack(V5, "C1-python1", None, None), 0);
    assert_eq!(b.connack(V5, "python2", None, None), 0x85);
    assert_eq!(b.connack(V3, "python2", None, None), 0x02);
    assert!(b.mosquitto_pub(None, "C1-pub", "t").status.success());
    let refused = b.mosquitto_pub(None, "python2", "t");
    assert!(!refused.status.success(), "{refused:?}");
    let e = b.wait_event("refusal", |e| {
        e["event"] == "connect_refused" && e["client_id"] == "python2"
    });
    assert_eq!(e["reason"], "client id without a permitted prefix");
}

#[test]
fn sighup_reloads_each_file_keeps_a_broken_one_and_rechecks_live_clients() {
    let dir = tempfile::tempdir().unwrap();
    let pwfile = dir.path().join("passwd");
    mqsec_passwd_add(&pwfile, "alice", "alice-pw");
    mqsec_passwd_add(&pwfile, "bob", "bob-pw");
    let acl = dir.path().join("acl");
    std::fs::write(
        &acl,
        "user alice\ntopic readwrite a/#\nuser bob\ntopic read a/#\n",
    )
    .unwrap();
    let b = Serve::start_in(dir, SECURED);
    let connect = |id: &str, user: &str, pass: &str| {
        let (c, code) = Raw::login(b.port, V5, id, Some(user), Some(pass));
        assert_eq!(code, 0, "{user}");
        c
    };
    let mut alice = connect("alice", "alice", "alice-pw");
    let mut bob = connect("bob", "bob", "bob-pw");
    assert_eq!(bob.subscribe("a/#", QoS::AtLeastOnce), [1]);
    assert_eq!(alice.subscribe("a/#", QoS::AtLeastOnce), [1]);

    // 1. A new ACL: alice may now write b/# only; bob may no longer read a/#.
    std::fs::write(
        &acl,
        "user alice\ntopic readwrite b/#\nuser bob\ntopic read b/#\n",
    )
    .unwrap();
    b.reload();
    alice.publish("a/x", b"1", QoS::AtLeastOnce, false, 1);
    match alice.recv() {
        Some(Packet::PubAck(a)) => assert_eq!(a.reason, 0x87),
        p => panic!("{p:?}"),
    }
    let removed = b.wait_event("bob's subscription removed", |e| {
        e["event"] == "subscription_removed" && e["username"] == "bob"
    });
    assert_eq!(removed["topic"], "a/#");
    assert_eq!(bob.subscribe("b/#", QoS::AtLeastOnce), [1]);
    alice.publish("b/x", b"2", QoS::AtLeastOnce, false, 2);
    match alice.recv() {
        Some(Packet::PubAck(a)) => assert_eq!((a.packet_id, a.reason), (2, 0x00)),
        p => panic!("{p:?}"),
    }
    // alice's own a/# subscription went too; bob receives b/x.
    assert_eq!(bob.next_publish().unwrap().topic, "b/x");

    // 2. A broken ACL: the previous one stays; one log line says why.
    std::fs::write(
        &acl,
        "user alice\ntopic readwrite b/#\ntopic write[bad] c/#\n",
    )
    .unwrap();
    b.reload();
    let failed = b.wait_event("reload_failed", |e| e["event"] == "reload_failed");
    assert!(
        failed["reason"].as_str().unwrap().contains("acl:3:"),
        "{failed}"
    );
    let line = b
        .stderr()
        .lines()
        .filter(|l| l.contains("stays in force"))
        .count();
    assert_eq!(line, 1, "{}", b.stderr());
    alice.publish("b/y", b"3", QoS::AtLeastOnce, false, 3);
    match alice.recv() {
        Some(Packet::PubAck(a)) => {
            assert_eq!(
                (a.packet_id, a.reason),
                (3, 0x00),
                "the old ACL still allows it"
            )
        }
        p => panic!("{p:?}"),
    }

    // 3. The password file: carol added, bob removed. bob's live connection is closed with
    // DISCONNECT 0x98; alice stays.
    std::fs::write(&acl, "user alice\ntopic readwrite b/#\n").unwrap();
    let pwfile = b.path("passwd");
    mqsec_passwd_add(&pwfile, "carol", "carol-pw");
    let out = Command::new(mqsec_bin())
        .args(["passwd", "delete"])
        .arg(&pwfile)
        .arg("bob")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(b.connack(V5, "c0", Some("carol"), Some("carol-pw")), 0x86);
    b.reload();
    assert_eq!(b.connack(V5, "c1", Some("carol"), Some("carol-pw")), 0);
    // bob may still have b/y to read before the DISCONNECT.
    let reason = loop {
        match bob.recv() {
            Some(Packet::Publish(_)) => continue,
            Some(Packet::Disconnect(d)) => break d.reason,
            p => panic!("expected DISCONNECT 0x98, got {p:?}"),
        }
    };
    assert_eq!(reason, 0x98);
    assert!(bob.recv().is_none(), "bob's connection is closed");
    assert_eq!(b.connack(V5, "bob2", Some("bob"), Some("bob-pw")), 0x86);
    alice.publish("b/z", b"4", QoS::AtLeastOnce, false, 4);
    match alice.recv() {
        Some(Packet::PubAck(a)) => {
            assert_eq!((a.packet_id, a.reason), (4, 0x10), "no subscribers left")
        }
        p => panic!("{p:?}"),
    }

    // 4. A broken password file: the previous one stays (carol still logs in).
    std::fs::write(&pwfile, "carol\n").unwrap();
    b.reload();
    assert_eq!(b.connack(V5, "c2", Some("carol"), Some("carol-pw")), 0);
    b.wait_event("reload_failed for the password file", |e| {
        e["event"] == "reload_failed" && e["reason"].as_str().unwrap().contains("passwd:1:")
    });
}

/// A reload that lowers a read rule's `max_qos` lowers what live subscriptions were granted:
/// deliveries come at the new maximum (MQTT cannot tell the client; the security log says so).
/// Mosquitto has no per-rule QoS limit at all.
#[test]
fn a_lower_max_qos_after_reload_caps_live_subscriptions() {
    let dir = tempfile::tempdir().unwrap();
    let pwfile = dir.path().join("passwd");
    mqsec_passwd_add(&pwfile, "alice", "alice-pw");
    mqsec_passwd_add(&pwfile, "bob", "bob-pw");
    let acl = dir.path().join("acl");
    let rules = |bob_max: u8| {
        format!("user alice\ntopic write c/#\nuser bob\ntopic read[max_qos={bob_max}] c/#\n")
    };
    std::fs::write(&acl, rules(1)).unwrap();
    let b = Serve::start_in(dir, SECURED);
    let (mut alice, code) = Raw::login(b.port, V5, "alice", Some("alice"), Some("alice-pw"));
    assert_eq!(code, 0);
    let (mut bob, code) = Raw::login(b.port, V5, "bob", Some("bob"), Some("bob-pw"));
    assert_eq!(code, 0);
    assert_eq!(
        bob.subscribe("c/#", QoS::ExactlyOnce),
        [1],
        "capped at SUBSCRIBE"
    );
    alice.publish("c/1", b"1", QoS::AtLeastOnce, false, 1);
    let p = bob.next_publish().unwrap();
    assert_eq!((p.topic.as_str(), p.qos), ("c/1", QoS::AtLeastOnce));

    std::fs::write(b.path("acl"), rules(0)).unwrap();
    b.reload();
    let e = b.wait_event("bob's subscription downgraded", |e| {
        e["event"] == "subscription_downgraded" && e["username"] == "bob"
    });
    assert_eq!(e["topic"], "c/#");
    assert!(e["reason"].as_str().unwrap().contains("max_qos 0"), "{e}");
    alice.publish("c/2", b"2", QoS::AtLeastOnce, false, 2);
    let p = loop {
        let p = bob.next_publish().unwrap();
        if p.topic == "c/2" {
            break p;
        }
    };
    assert_eq!(
        p.qos,
        QoS::AtMostOnce,
        "delivered at the reloaded rule's max_qos"
    );
    // The subscription itself is kept (a raise needs a new SUBSCRIBE, as in any broker).
    alice.publish("c/3", b"3", QoS::AtMostOnce, false, 0);
    assert_eq!(bob.next_publish().unwrap().topic, "c/3");
}

#[test]
fn brute_force_throttle_locks_then_expires() {
    let dir = tempfile::tempdir().unwrap();
    mqsec_passwd_add(&dir.path().join("passwd"), "dev", "dev-pw");
    let b = Serve::start_in(
        dir,
        "allow_anonymous false\npassword_file passwd\nauth_throttle_delay_after 2\nauth_throttle_user_limit 4\nauth_throttle_address_limit 0\nauth_throttle_time 3\n",
    );
    let t = Instant::now();
    for _ in 0..4 {
        assert_eq!(b.connack(V5, "d", Some("dev"), Some("guess")), 0x86);
    }
    // The 2nd, 3rd and 4th failures were slowed (250 + 500 + 1000 ms).
    assert!(
        t.elapsed() >= Duration::from_millis(1750),
        "{:?}",
        t.elapsed()
    );
    // Locked: the right password is refused with 0x9F (v3.1.1: 5), at once.
    assert_eq!(b.connack(V5, "d", Some("dev"), Some("dev-pw")), 0x9F);
    assert_eq!(b.connack(V3, "d", Some("dev"), Some("dev-pw")), 0x05);
    let locked = b.wait_event("auth_locked", |e| e["event"] == "auth_locked");
    assert_eq!(locked["username"], "dev");
    // After the window the right password gets in.
    let deadline = Instant::now() + WAIT;
    loop {
        match b.connack(V5, "d", Some("dev"), Some("dev-pw")) {
            0 => break,
            0x9F => {
                assert!(Instant::now() < deadline, "still locked after {WAIT:?}");
                std::thread::sleep(Duration::from_millis(200));
            }
            c => panic!("unexpected CONNACK {c:#x}"),
        }
    }
    assert!(!std::fs::read_to_string(b.path("security.jsonl"))
        .unwrap()
        .contains("dev-pw"));
}

#[test]
fn denied_publish_can_disconnect() {
    let b = Serve::start_in(
        guide_files(),
        &format!("{SECURED}denied_publish_action disconnect\n"),
    );
    let mut s5 = b.login(V5, "s5", "sensor_001");
    s5.publish("sensors/001/ok", b"fine", QoS::AtLeastOnce, false, 1);
    assert!(matches!(s5.recv(), Some(Packet::PubAck(a)) if a.reason == 0x10));
    s5.publish("sensors/002/x", b"no", QoS::AtLeastOnce, false, 2);
    match s5.recv() {
        Some(Packet::Disconnect(d)) => assert_eq!(d.reason, 0x87),
        p => panic!("expected DISCONNECT 0x87, got {p:?}"),
    }
    assert!(s5.recv().is_none());
    let mut s3 = b.login(V3, "s3", "sensor_001");
    s3.publish("sensors/002/x", b"no", QoS::AtMostOnce, false, 0);
    assert!(s3.recv().is_none(), "v3.1.1: the connection is closed");
}

#[test]
fn check_names_the_line_of_a_broken_file() {
    let dir = guide_files();
    std::fs::write(
        dir.path().join("acl"),
        "user a\ntopic write a/#\ntopic sideways x\n",
    )
    .unwrap();
    let conf = dir.path().join("mqsec.conf");
    std::fs::write(
        &conf,
        format!("listener {} 127.0.0.1\n{SECURED}", free_port()),
    )
    .unwrap();
    let out = common::mqsec(&["serve", "--check", "-c", conf.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("acl:3:"), "{err}");
    std::fs::write(dir.path().join("acl"), GUIDE_ACL).unwrap();
    let out = common::mqsec(&["serve", "--check", "-c", conf.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let s = String::from_utf8_lossy(&out.stdout);
    assert!(
        s.contains("password_file") && s.contains("(3 users)") && s.contains("(6 rules)"),
        "{s}"
    );
}

#[test]
fn every_refused_connect_is_logged_with_its_reason() {
    use mqsec::broker::codec::{encode_packet, Connect, Properties};
    let dir = tempfile::tempdir().unwrap();
    let b = Serve::start_in(dir, "allow_anonymous true\nmax_keepalive 20\n");
    // v3.1.1 with a keep alive above max_keepalive (the raw client asks for 30 s): 0x02.
    assert_eq!(b.connack(V3, "ka", None, None), 0x02);
    // MQTT 3.1 with a client id longer than 23 characters.
    let long = "x".repeat(24);
    assert_eq!(b.connack(ProtocolVersion::V31, &long, None, None), 0x02);
    // v5 asking for enhanced authentication nobody offers: 0x8C.
    let mut out = bytes::BytesMut::new();
    let c = Connect {
        protocol: V5,
        clean_start: true,
        keep_alive: 10,
        client_id: "scram".into(),
        will: None,
        username: None,
        password: None,
        properties: Properties {
            authentication_method: Some("SCRAM-SHA-1".into()),
            ..Properties::default()
        },
    };
    encode_packet(&Packet::Connect(Box::new(c)), V5, &mut out).unwrap();
    let mut s = std::net::TcpStream::connect(("127.0.0.1", b.port)).unwrap();
    s.write_all(&out).unwrap();
    // A malformed CONNECT (v5, a property the CONNECT may not carry).
    let mut bad = std::net::TcpStream::connect(("127.0.0.1", b.port)).unwrap();
    bad.write_all(&[
        0x10, 13, 0, 4, b'M', b'Q', b'T', b'T', 5, 2, 0, 10, 2, 0x01, 1,
    ])
    .unwrap();
    for (id, reason) in [
        ("ka", "keep alive above max_keepalive"),
        (
            long.as_str(),
            "MQTT 3.1 client id longer than 23 characters",
        ),
        (
            "scram",
            "authentication method not offered on this listener",
        ),
    ] {
        let e = b.wait_event(reason, |e| {
            e["event"] == "connect_refused" && e["client_id"] == id
        });
        assert!(e["reason"].as_str().unwrap().starts_with(reason), "{e}");
        assert_eq!(e["address"], "127.0.0.1");
    }
    let malformed = b.wait_event("malformed CONNECT", |e| {
        e["event"] == "connect_refused" && e.get("client_id").is_none()
    });
    assert!(
        malformed["reason"]
            .as_str()
            .unwrap()
            .starts_with("malformed packet")
            || malformed["reason"]
                .as_str()
                .unwrap()
                .starts_with("protocol error"),
        "{malformed}"
    );
    // The human log says the same.
    let log = b.stderr();
    assert!(
        log.contains("connection refused") && log.contains("keep alive above max_keepalive"),
        "{log}"
    );
}
