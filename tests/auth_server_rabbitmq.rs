//! `mqsec auth-server` as the authentication and ACL service of a real two-node RabbitMQ cluster
//! (Debian's rabbitmq-server with rabbitmq_mqtt and rabbitmq_auth_backend_http, started as the
//! current user on loopback), driven with mosquitto_pub/mosquitto_sub.

mod common;

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::auth_http::AuthServerProc;
use common::{mqsec_passwd_add, ChildGuard};
use mqsec_loadgen::rabbitmq::{self, Auth, Cluster};

const ACL: &str = "\
user device1
topic write sensors/device1/#

user sub1
topic read sensors/+/temp
";

/// One QoS 1 PUBLISH (mosquitto_pub waits for the PUBACK, so a refusal shows in its exit code).
fn publish(port: u16, user: &str, password: &str, client: &str, topic: &str, msg: &str) -> Output {
    let child = Command::new("mosquitto_pub")
        .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-V", "mqttv311"])
        .args(["-u", user, "-P", password, "-i", client, "-q", "1"])
        .args(["-t", topic, "-m", msg])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("mosquitto_pub");
    ChildGuard::new(child).wait_output(Duration::from_secs(60))
}

fn subscriber(port: u16, client: &str, filter: &str, count: u32, wait_secs: u32) -> ChildGuard {
    let child = Command::new("mosquitto_sub")
        .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-V", "mqttv311"])
        .args(["-u", "sub1", "-P", "subpass", "-i", client, "-q", "1", "-v"])
        .args([
            "-t",
            filter,
            "-C",
            &count.to_string(),
            "-W",
            &wait_secs.to_string(),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("mosquitto_sub");
    ChildGuard::new(child)
}

#[test]
fn a_two_node_rabbitmq_cluster_enforces_mqsec_passwords_and_acl() {
    if let Some(why) = rabbitmq::unavailable() {
        panic!("{why}");
    }
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let passwd = dir.path().join("passwd");
    let acl = dir.path().join("acl");
    mqsec_passwd_add(&passwd, "device1", "devpass");
    mqsec_passwd_add(&passwd, "sub1", "subpass");
    std::fs::write(&acl, ACL).unwrap();
    let mut auth = AuthServerProc::start(dir.path(), &passwd, &acl, &["--security-log", "stderr"]);
    let mut cluster = Cluster::start(dir.path(), 2, Auth::Http { port: auth.port });
    cluster.join(1, 0);
    let members = cluster.running_nodes(0);
    for n in &cluster.nodes {
        assert!(
            members.contains(&n.name),
            "{} not running in {members:?}",
            n.name
        );
    }
    let booted = started.elapsed();
    let (n1, n2) = (cluster.nodes[0].mqtt_port, cluster.nodes[1].mqtt_port);
    let context = |what: &str| {
        format!(
            "{what}\n--- auth-server log ---\n{}\n--- RabbitMQ ---\n{}",
            auth.log_text(),
            cluster.logs()
        )
    };

    // A device on node 1: its own topic is accepted, another device's is refused (RabbitMQ
    // closes the connection on a refused PUBLISH, so mosquitto_pub sees no PUBACK).
    let ok = publish(
        n1,
        "device1",
        "devpass",
        "dev1",
        "sensors/device1/temp",
        "20",
    );
    assert!(
        ok.status.success(),
        "{}",
        context(&format!("own topic refused: {ok:?}"))
    );
    let denied = publish(
        n1,
        "device1",
        "devpass",
        "dev1",
        "sensors/device2/temp",
        "20",
    );
    assert!(
        !denied.status.success(),
        "{}",
        context("another device's topic was accepted")
    );
    assert!(
        auth.log_text().contains(r#""event":"acl_denied","client_id":"dev1","username":"device1","reason":"default deny","access":"write","topic":"sensors/device2/temp""#),
        "{}",
        context("no acl_denied event for the refused PUBLISH")
    );

    // A subscriber on node 2 gets only what its ACL allows: the wildcard filter that would also
    // carry humidity readings is refused (RabbitMQ never checks deliveries, so mqsec answers
    // for the whole filter); the allowed filter gets the temperature from node 1.
    let wild = subscriber(n2, "sub-wild", "sensors/#", 1, 8);
    let mut temp = subscriber(n2, "sub-temp", "sensors/+/temp", 1, 90);
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut round = 0;
    while temp.try_wait().unwrap().is_none() {
        assert!(
            Instant::now() < deadline,
            "{}",
            context("the subscriber on node 2 got nothing")
        );
        round += 1;
        let h = publish(
            n1,
            "device1",
            "devpass",
            "dev1",
            "sensors/device1/humidity",
            &format!("h{round}"),
        );
        assert!(
            h.status.success(),
            "{}",
            context(&format!("humidity publish: {h:?}"))
        );
        let t = publish(
            n1,
            "device1",
            "devpass",
            "dev1",
            "sensors/device1/temp",
            &format!("t{round}"),
        );
        assert!(
            t.status.success(),
            "{}",
            context(&format!("temp publish: {t:?}"))
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    let got = temp.wait_output(Duration::from_secs(10));
    let got = String::from_utf8_lossy(&got.stdout).to_string();
    assert!(
        got.starts_with("sensors/device1/temp t"),
        "{}",
        context(&format!("subscriber got {got:?}"))
    );
    let wild_out = wild.wait_output(Duration::from_secs(60));
    assert!(
        wild_out.stdout.is_empty(),
        "{}",
        context(&format!(
            "the refused wildcard subscriber received {:?}",
            String::from_utf8_lossy(&wild_out.stdout)
        ))
    );
    assert!(
        auth.log_text()
            .contains(r#""access":"subscribe-all","topic":"sensors/#""#),
        "{}",
        context("no acl_denied event for the wildcard SUBSCRIBE")
    );

    // A password change plus SIGHUP takes effect on both nodes, neither restarted.
    mqsec_passwd_add(&passwd, "device1", "newpass");
    auth.reload();
    for (node, port) in [(1, n1), (2, n2)] {
        let old = publish(
            port,
            "device1",
            "devpass",
            "dev1",
            "sensors/device1/temp",
            "x",
        );
        assert!(
            !old.status.success(),
            "{}",
            context(&format!("node {node} still accepts the old password"))
        );
        let new = publish(
            port,
            "device1",
            "newpass",
            "dev1",
            "sensors/device1/temp",
            "y",
        );
        assert!(
            new.status.success(),
            "{}",
            context(&format!("node {node} refuses the new password: {new:?}"))
        );
    }

    // With the service down, RabbitMQ fails closed: new connections are refused on both nodes.
    auth.child.kill().unwrap();
    auth.child.wait().unwrap();
    for port in [n1, n2] {
        let down = publish(
            port,
            "device1",
            "newpass",
            "dev1",
            "sensors/device1/temp",
            "z",
        );
        assert!(
            !down.status.success(),
            "a login passed with the auth-server down:\n{}",
            cluster.logs()
        );
    }
    eprintln!(
        "RabbitMQ cluster test: nodes up and joined in {:.1} s, whole test {:.1} s",
        booted.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
}
