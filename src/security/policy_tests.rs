use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::time::Duration;
use std::time::Instant;

use super::*;
use crate::broker::codec::{ProtocolVersion, QoS};
use crate::config::mosquitto::parse_str;
use crate::security::passwd::{hash_password, Argon2Params};

const WEAK: Argon2Params = Argon2Params {
    memory_kib: 64,
    iterations: 1,
    parallelism: 1,
};

/// The guide's example ACL from formats.md (its trailing `topic deny #` belongs to dashboard).
const GUIDE_ACL: &str = "\
user admin
topic readwrite #

user sensor_001
topic write sensors/001/#
topic read commands/001

user dashboard
topic read sensors/#
topic read devices/#

topic deny #
";

struct Files {
    dir: tempfile::TempDir,
}

impl Files {
    fn new() -> Files {
        Files {
            dir: tempfile::tempdir().unwrap(),
        }
    }
    fn path(&self, name: &str) -> std::path::PathBuf {
        self.dir.path().join(name)
    }
    fn passwd(&self, users: &[(&str, &str)]) {
        let mut text = String::new();
        for (u, p) in users {
            text.push_str(&format!(
                "{u}:{}\n",
                hash_password(p.as_bytes(), &WEAK).unwrap()
            ));
        }
        std::fs::write(self.path("passwd"), text).unwrap();
    }
    fn acl(&self, text: &str) {
        std::fs::write(self.path("acl"), text).unwrap();
    }
    fn config(&self, extra: &str) -> Arc<Config> {
        let text = format!(
            "listener 1883 0.0.0.0\npassword_file {}\nacl_file {}\n{extra}",
            self.path("passwd").display(),
            self.path("acl").display()
        );
        Arc::new(parse_str(&text, "t.conf").unwrap())
    }
}

fn request(cfg: &Config, client_id: &str, user: Option<&str>, pw: Option<&str>) -> ConnectRequest {
    request_from(cfg, client_id, user, pw, [198, 51, 100, 7])
}

fn request_from(
    cfg: &Config,
    client_id: &str,
    user: Option<&str>,
    pw: Option<&str>,
    ip: [u8; 4],
) -> ConnectRequest {
    ConnectRequest {
        client_id: client_id.into(),
        username: user.map(String::from),
        password: pw.map(|p| Zeroizing::new(p.as_bytes().to_vec())),
        peer: SocketAddr::new(IpAddr::V4(Ipv4Addr::from(ip)), 40000),
        listener: Arc::new(cfg.listeners[0].clone()),
        cert: None,
        protocol: ProtocolVersion::V5,
        clean_start: true,
    }
}

fn allowed(d: ConnectDecision) -> Identity {
    match d {
        ConnectDecision::Allow(id) => id,
        d => panic!("{d:?}"),
    }
}

fn setup(extra: &str) -> (Files, Arc<Config>, Policy) {
    let f = Files::new();
    f.passwd(&[
        ("admin", "admin-pw"),
        ("sensor_001", "s1"),
        ("dashboard", "dash"),
    ]);
    f.acl(GUIDE_ACL);
    let cfg = f.config(extra);
    let p = Policy::new(cfg.clone()).unwrap();
    (f, cfg, p)
}

#[tokio::test]
async fn passwords_anonymous_and_client_id_prefixes() {
    let (_f, cfg, p) = setup("auth_throttle_delay_after 0\n");
    let id = allowed(
        p.authenticate(request(&cfg, "s1", Some("sensor_001"), Some("s1")))
            .await,
    );
    assert_eq!(id.username.as_deref(), Some("sensor_001"));
    assert_eq!(id.auth, AuthMethod::Password);
    assert_eq!(id.listener_index(), Some(0));
    for (user, pw) in [
        ("sensor_001", Some("wrong")),
        ("nobody", Some("s1")),
        ("sensor_001", None),
    ] {
        assert_eq!(
            p.authenticate(request(&cfg, "s1", Some(user), pw)).await,
            ConnectDecision::Deny(ConnectDenial::BadCredentials),
            "{user} {pw:?}"
        );
    }
    // A non-loopback listener without allow_anonymous: anonymous clients are refused.
    assert_eq!(
        p.authenticate(request(&cfg, "anon", None, None)).await,
        ConnectDecision::Deny(ConnectDenial::NotAuthorized)
    );

    let (_f2, cfg2, p2) = setup("allow_anonymous true\nclientid_prefixes C1-\n");
    let anon = allowed(p2.authenticate(request(&cfg2, "C1-x", None, None)).await);
    assert_eq!((anon.username, anon.auth), (None, AuthMethod::Anonymous));
    // A wrong password is refused even where anonymous clients are allowed.
    assert_eq!(
        p2.authenticate(request(&cfg2, "C1-x", Some("admin"), Some("no")))
            .await,
        ConnectDecision::Deny(ConnectDenial::BadCredentials)
    );
    assert_eq!(
        p2.authenticate(request(&cfg2, "python2", Some("admin"), Some("admin-pw")))
            .await,
        ConnectDecision::Deny(ConnectDenial::ClientIdRejected)
    );
}

#[tokio::test]
async fn the_guide_acl_is_enforced_for_publish_subscribe_and_delivery() {
    let (_f, cfg, p) = setup("");
    let login = |c: &'static str, u: &'static str, pw: &'static str| {
        let p = p.clone();
        let r = request(&cfg, c, Some(u), Some(pw));
        async move { allowed(p.authenticate(r).await) }
    };
    let sensor = login("s1", "sensor_001", "s1").await;
    let dash = login("d1", "dashboard", "dash").await;
    let admin = login("a1", "admin", "admin-pw").await;
    let q1 = QoS::AtLeastOnce;
    assert!(p.publish(&sensor, "sensors/001/temp", q1, false));
    assert!(!p.publish(&sensor, "sensors/002/temp", q1, false));
    assert!(!p.publish(&sensor, "commands/001", q1, false));
    assert!(p.deliver(&sensor, "commands/001", q1, false));
    assert!(!p.deliver(&sensor, "commands/002", q1, false));
    assert_eq!(
        p.subscribe(&sensor, "commands/001", None, q1),
        SubscribeDecision::Granted(q1)
    );
    assert_eq!(
        p.subscribe(&sensor, "sensors/#", None, q1),
        SubscribeDecision::Denied
    );
    // The trap: `topic deny #` is dashboard's own rule, so it can read nothing.
    assert!(!p.deliver(&dash, "sensors/001/temp", q1, false));
    assert_eq!(
        p.subscribe(&dash, "sensors/#", Some("g"), q1),
        SubscribeDecision::Denied
    );
    assert!(p.publish(&admin, "anything/at/all", QoS::ExactlyOnce, true));
    assert!(p.deliver(&admin, "sensors/001/temp", q1, false));
    assert!(!p.deliver(&admin, "$SYS/broker/uptime", q1, false));
    assert!(!p.publish(&admin, "$SYS/x", q1, false));
}

#[tokio::test]
async fn rule_limits_cap_subscriptions_and_refuse_publishes() {
    let (f, cfg, p) = setup("");
    f.acl("user admin\ntopic write[max_qos=1,retain=false] t/#\ntopic read[max_qos=1] t/#\n");
    p.reload().unwrap();
    let admin = allowed(
        p.authenticate(request(&cfg, "a", Some("admin"), Some("admin-pw")))
            .await,
    );
    assert!(p.publish(&admin, "t/x", QoS::AtLeastOnce, false));
    assert!(!p.publish(&admin, "t/x", QoS::ExactlyOnce, false));
    assert!(!p.publish(&admin, "t/x", QoS::AtMostOnce, true));
    assert_eq!(
        p.subscribe(&admin, "t/#", None, QoS::ExactlyOnce),
        SubscribeDecision::Granted(QoS::AtLeastOnce)
    );
}

#[tokio::test]
async fn reload_swaps_files_keeps_a_broken_one_and_recompiles_grants() {
    let (f, cfg, p) = setup("");
    let sensor = allowed(
        p.authenticate(request(&cfg, "s1", Some("sensor_001"), Some("s1")))
            .await,
    );
    assert!(p.publish(&sensor, "sensors/001/t", QoS::AtMostOnce, false));
    let before = p.set();

    // A broken ACL keeps the old one; the password file still reloads.
    f.acl("user sensor_001\ntopic bogus x\n");
    f.passwd(&[("sensor_001", "new-pw"), ("admin", "admin-pw")]);
    let kept = p.reload().unwrap();
    assert_eq!(kept.len(), 1);
    assert!(kept[0].error.0.contains("acl:2:"), "{:?}", kept[0]);
    assert!(Arc::ptr_eq(
        p.set().listeners[0].acl.as_ref().unwrap(),
        before.listeners[0].acl.as_ref().unwrap()
    ));
    assert_eq!(
        p.authenticate(request(&cfg, "s1", Some("sensor_001"), Some("s1")))
            .await,
        ConnectDecision::Deny(ConnectDenial::BadCredentials)
    );
    allowed(
        p.authenticate(request(&cfg, "s1", Some("sensor_001"), Some("new-pw")))
            .await,
    );
    assert!(p.publish(&sensor, "sensors/001/t", QoS::AtMostOnce, false));

    // A good new ACL takes effect on the next decision of a client already connected.
    f.acl("user sensor_001\ntopic write other/#\n");
    assert!(p.reload().unwrap().is_empty());
    assert!(!p.publish(&sensor, "sensors/001/t", QoS::AtMostOnce, false));
    assert!(p.publish(&sensor, "other/x", QoS::AtMostOnce, false));

    // At startup a broken file is an error naming its line.
    f.acl("user x\ntopic\n");
    let e = Policy::new(cfg).unwrap_err().to_string();
    assert!(e.contains("acl:2:"), "{e}");
}

#[tokio::test]
async fn recheck_after_reload() {
    let (f, cfg, p) = setup("");
    let sensor = allowed(
        p.authenticate(request(&cfg, "s1", Some("sensor_001"), Some("s1")))
            .await,
    );
    let dash = allowed(
        p.authenticate(request(&cfg, "d1", Some("dashboard"), Some("dash")))
            .await,
    );
    let subs = vec![
        ("commands/001".to_string(), QoS::ExactlyOnce),
        ("$share/g/commands/#".to_string(), QoS::AtLeastOnce),
    ];
    assert_eq!(p.recheck(&sensor, &subs), Recheck::Keep);
    // sensor_001 may now read commands/002 only, at QoS 1 at most; dashboard is removed from the
    // password file.
    f.acl("user sensor_001\ntopic read[max_qos=1] commands/002\n");
    f.passwd(&[("sensor_001", "s1")]);
    p.reload().unwrap();
    assert_eq!(
        p.recheck(&sensor, &subs),
        Recheck::Narrow {
            drop: vec!["commands/001".to_string()],
            cap: vec![],
        }
    );
    assert_eq!(p.recheck(&dash, &[]), Recheck::Disconnect);
    // A lower max_qos caps what was granted before.
    f.acl("user sensor_001\ntopic read[max_qos=0] commands/#\n");
    p.reload().unwrap();
    assert_eq!(
        p.recheck(&sensor, &subs),
        Recheck::Narrow {
            drop: vec![],
            cap: vec![
                ("commands/001".to_string(), QoS::AtMostOnce),
                ("$share/g/commands/#".to_string(), QoS::AtMostOnce)
            ],
        }
    );
    // An anonymous session on a listener that does not admit anonymous clients (restored from
    // the store, say) is not kept connected.
    let mut anon = Identity::anonymous("a");
    anon.set_listener_index(0);
    assert_eq!(p.recheck(&anon, &[]), Recheck::Disconnect);
}

#[tokio::test]
async fn brute_force_delays_locks_and_expires() {
    let (_f, cfg, p) = setup(
        "auth_throttle_delay_after 2\nauth_throttle_user_limit 3\nauth_throttle_address_limit 0\nauth_throttle_time 1\n",
    );
    let wrong = |ip: u8| request_from(&cfg, "s1", Some("sensor_001"), Some("x"), [192, 0, 2, ip]);
    let t = Instant::now();
    for ip in 1..=3 {
        assert_eq!(
            p.authenticate(wrong(ip)).await,
            ConnectDecision::Deny(ConnectDenial::BadCredentials)
        );
    }
    // The second and third failures were answered after a delay.
    assert!(
        t.elapsed() >= Duration::from_millis(250 + 500),
        "{:?}",
        t.elapsed()
    );
    // Locked: even the right password is refused, without a check ...
    let right = || request_from(&cfg, "s1", Some("sensor_001"), Some("s1"), [203, 0, 113, 1]);
    let computed = p
        .pool()
        .stats()
        .computed
        .load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(
        p.authenticate(right()).await,
        ConnectDecision::Deny(ConnectDenial::Throttled)
    );
    assert_eq!(
        p.pool()
            .stats()
            .computed
            .load(std::sync::atomic::Ordering::Relaxed),
        computed
    );
    // ... other users are not locked ...
    allowed(
        p.authenticate(request(&cfg, "a", Some("admin"), Some("admin-pw")))
            .await,
    );
    // ... and after the window the right password gets in.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match p.authenticate(right()).await {
            ConnectDecision::Allow(_) => break,
            d => {
                assert_eq!(d, ConnectDecision::Deny(ConnectDenial::Throttled));
                assert!(Instant::now() < deadline, "still locked");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

#[tokio::test]
async fn certificate_names_the_client_where_the_listener_says_so() {
    let (f, cfg, _) = setup("");
    f.acl("user dev-7\ntopic write devices/7/#\n");
    let (mut set, _) = PolicySet::load(&cfg, None).unwrap();
    let mut lp = (*set.listeners[0]).clone();
    lp.cert_name = Some(CertName::CommonName);
    set.listeners[0] = Arc::new(lp);
    let p = Policy::with_set(cfg.clone(), set).unwrap();
    let cert = PeerCert {
        subject: "CN=dev-7,O=Example".into(),
        common_name: Some("dev-7".into()),
        issuer: "CN=Example CA".into(),
        serial: "1f".into(),
        not_after: time::OffsetDateTime::now_utc() + time::Duration::days(365),
    };
    // The CONNECT's own username and password are not what counts.
    let mut r = request(&cfg, "c", Some("admin"), Some("wrong"));
    r.cert = Some(cert.clone());
    let id = allowed(p.authenticate(r).await);
    assert_eq!(id.username.as_deref(), Some("dev-7"));
    assert_eq!(id.auth, AuthMethod::Certificate);
    assert_eq!(id.cert_subject(), Some("CN=dev-7,O=Example"));
    // The CN feeds the ACL's user block.
    assert!(p.publish(&id, "devices/7/t", QoS::AtMostOnce, false));
    assert!(!p.publish(&id, "devices/8/t", QoS::AtMostOnce, false));
    // No certificate, or one without a CN: no credential.
    assert_eq!(
        p.authenticate(request(&cfg, "c", None, None)).await,
        ConnectDecision::Deny(ConnectDenial::BadCredentials)
    );
    let mut r = request(&cfg, "c", None, None);
    r.cert = Some(PeerCert {
        common_name: None,
        ..cert
    });
    assert_eq!(
        p.authenticate(r).await,
        ConnectDecision::Deny(ConnectDenial::BadCredentials)
    );
}

#[test]
fn password_files_with_unusable_lines_are_refused_with_their_line() {
    let f = Files::new();
    let good = hash_password(b"pw", &WEAK).unwrap();
    let opt = |p: &Path| FileOption {
        path: p.to_path_buf(),
        origin: "t.conf:3".into(),
    };
    for (text, want) in [
        (
            format!("# c\nalice:{good}\nbob\n"),
            ":3: expected USER:HASH",
        ),
        (
            format!("alice:{good}\nbob:secret\n"),
            ":2: user \"bob\": clear-text",
        ),
        (
            "alice:$9$x\n".to_string(),
            ":1: user \"alice\": unknown hash scheme",
        ),
    ] {
        std::fs::write(f.path("p"), text).unwrap();
        let e = load_passwords(&opt(&f.path("p"))).unwrap_err().0;
        assert!(e.contains(want), "{e}");
    }
    let e = load_passwords(&opt(&f.path("missing"))).unwrap_err().0;
    assert!(e.starts_with("t.conf:3: password_file "), "{e}");
    // Mosquitto's own hashes are fine.
    std::fs::write(
        f.path("p"),
        "alice:$7$101$6kUX7bzF+AO30Ffn$lbYwSh4vKHECdRG6LTMiEOdG5GMiG+CvFj0/xrijSGbe0LAxiVUeEfKGwoyApO9bM8n2fkFYsgnic08jc8A0xQ==\n",
    )
    .unwrap();
    let v = load_passwords(&opt(&f.path("p"))).unwrap();
    assert!(v.verify("alice", b"secret1"));
}

#[tokio::test]
async fn per_listener_settings_give_each_listener_its_own_files() {
    let f = Files::new();
    f.passwd(&[("alice", "a")]);
    f.acl("user alice\ntopic write a/#\n");
    std::fs::write(f.path("acl2"), "topic write anon/#\n").unwrap();
    let text = format!(
        "per_listener_settings true\nlistener 1 127.0.0.1\nacl_file {}\nlistener 2 0.0.0.0\npassword_file {}\nacl_file {}\n",
        f.path("acl2").display(),
        f.path("passwd").display(),
        f.path("acl").display()
    );
    let cfg = Arc::new(parse_str(&text, "t.conf").unwrap());
    let p = Policy::new(cfg.clone()).unwrap();
    let mut local = request(&cfg, "l", Some("alice"), Some("a"));
    local.listener = Arc::new(cfg.listeners[0].clone());
    // No password file on the loopback listener: admitted as anonymous, username not believed.
    let anon = allowed(p.authenticate(local).await);
    assert_eq!(anon.username, None);
    assert!(p.publish(&anon, "anon/x", QoS::AtMostOnce, false));
    assert!(!p.publish(&anon, "a/x", QoS::AtMostOnce, false));
    let mut public = request(&cfg, "p", Some("alice"), Some("a"));
    public.listener = Arc::new(cfg.listeners[1].clone());
    let alice = allowed(p.authenticate(public).await);
    assert!(p.publish(&alice, "a/x", QoS::AtMostOnce, false));
    assert!(!p.publish(&alice, "anon/x", QoS::AtMostOnce, false));
    let mut public_anon = request(&cfg, "p", None, None);
    public_anon.listener = Arc::new(cfg.listeners[1].clone());
    assert_eq!(
        p.authenticate(public_anon).await,
        ConnectDecision::Deny(ConnectDenial::NotAuthorized)
    );
}

#[tokio::test]
async fn a_saturated_pool_answers_busy() {
    let (f, _, _) = setup("");
    // A hash slow enough (tens of ms) that the worker cannot drain the queue meanwhile.
    let slow = Argon2Params {
        memory_kib: 8192,
        iterations: 8,
        parallelism: 1,
    };
    std::fs::write(
        f.path("passwd"),
        format!("sensor_001:{}\n", hash_password(b"s1", &slow).unwrap()),
    )
    .unwrap();
    let cfg = f.config("auth_workers 1\nauth_queue_limit 1\nauth_cache_size 0\n");
    let p = Policy::new(cfg.clone()).unwrap();
    // join_all starts every check in one pass; one worker and one queue place cannot take 20.
    let all = futures_util::future::join_all(
        (0..20).map(|_| p.authenticate(request(&cfg, "s", Some("sensor_001"), Some("s1")))),
    )
    .await;
    let busy = all
        .iter()
        .filter(|d| **d == ConnectDecision::Deny(ConnectDenial::ServerBusy))
        .count();
    assert!(busy >= 10, "{all:?}");
    assert!(all.iter().all(|d| matches!(d, ConnectDecision::Allow(_))
        || *d == ConnectDecision::Deny(ConnectDenial::ServerBusy)));
}
