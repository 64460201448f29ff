//! `mqsec serve` under test: the built binary on a free loopback port, and a raw MQTT client
//! speaking through mqsec's own codec where exact reason codes and hostile bytes matter.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use mqsec::broker::codec::{
    decode_packet_from_server, encode_packet, Connect, Limits, Packet, Properties, ProtocolVersion,
    Publish, QoS, Subscribe, SubscriptionOptions, SubscriptionRequest,
};

use super::{mqsec_bin, wait_for_port, ChildGuard};

/// How long a broker gets to start and a client to hear back.
pub const WAIT: Duration = Duration::from_secs(10);

/// A running `mqsec serve`, killed when dropped.
pub struct Broker {
    pub child: ChildGuard,
    pub port: u16,
    pub dir: tempfile::TempDir,
}

impl Broker {
    pub fn start(extra: &str) -> Broker {
        // A port found free may be taken by another test before the broker binds it: then the
        // broker exits at once (and someone else answers on the port), so try another port.
        for _ in 0..5 {
            let port = super::free_port();
            let dir = tempfile::tempdir().unwrap();
            let conf = dir.path().join("mqsec.conf");
            std::fs::write(
                &conf,
                format!("listener {port} 127.0.0.1\nlog_dest stderr\n{extra}\n"),
            )
            .unwrap();
            let child = Command::new(mqsec_bin())
                .args(["serve", "-c"])
                .arg(&conf)
                .stdout(Stdio::null())
                // MQSEC_TEST_LOG=debug shows the broker's log while debugging a test.
                .stderr(match std::env::var_os("MQSEC_TEST_LOG") {
                    Some(_) => Stdio::inherit(),
                    None => Stdio::null(),
                })
                .env(
                    "MQSEC_LOG",
                    std::env::var_os("MQSEC_TEST_LOG").unwrap_or("error".into()),
                )
                .spawn()
                .unwrap();
            let mut b = Broker {
                child: ChildGuard::new(child),
                port,
                dir,
            };
            wait_for_port(port, WAIT);
            std::thread::sleep(Duration::from_millis(100));
            if b.child.try_wait().unwrap().is_none() {
                return b;
            }
        }
        panic!("mqsec serve did not stay up on any of 5 free ports");
    }

    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        self.child.wait_timeout(WAIT)
    }
}

/// A client on a plain socket, speaking through mqsec's codec.
pub struct Raw {
    pub s: TcpStream,
    pub v: ProtocolVersion,
    pub buf: BytesMut,
}

impl Raw {
    pub fn open(port: u16, v: ProtocolVersion) -> Raw {
        let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        Raw {
            s,
            v,
            buf: BytesMut::new(),
        }
    }

    /// Connect with credentials (clean start); returns the client and the CONNACK code. The read
    /// timeout is generous: a throttled refusal is answered after a delay of a few seconds.
    pub fn login(
        port: u16,
        v: ProtocolVersion,
        id: &str,
        username: Option<&str>,
        password: Option<&str>,
    ) -> (Raw, u8) {
        let mut r = Raw::open(port, v);
        r.s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
        let mut c = connect_packet(v, id, true, Properties::default());
        c.username = username.map(String::from);
        c.password = password.map(|p| Bytes::copy_from_slice(p.as_bytes()));
        r.send(&Packet::Connect(Box::new(c)));
        let code = match r.recv() {
            Some(Packet::ConnAck(a)) => a.code,
            p => panic!("expected CONNACK, got {p:?}"),
        };
        (r, code)
    }

    /// The next PUBLISH (acknowledging QoS 1), skipping other packets; None when closed.
    pub fn next_publish(&mut self) -> Option<Publish> {
        loop {
            if let Packet::Publish(p) = self.recv()? {
                if let (QoS::AtLeastOnce, Some(id)) = (p.qos, p.packet_id) {
                    self.send(&Packet::PubAck(mqsec::broker::codec::PubResp::ok(id)));
                }
                return Some(p);
            }
        }
    }

    pub fn connect(port: u16, v: ProtocolVersion, id: &str, props: Properties) -> (Raw, Packet) {
        let mut r = Raw::open(port, v);
        r.send(&Packet::Connect(Box::new(connect_packet(
            v, id, true, props,
        ))));
        let ack = r.recv().expect("CONNACK");
        (r, ack)
    }

    pub fn send(&mut self, p: &Packet) {
        let mut out = BytesMut::new();
        encode_packet(p, self.v, &mut out).unwrap();
        self.s.write_all(&out).unwrap();
    }

    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.s.write_all(bytes).unwrap();
    }

    /// The next packet, or None when the broker closed the connection (or 5 s passed).
    pub fn recv(&mut self) -> Option<Packet> {
        loop {
            match decode_packet_from_server(&mut self.buf, self.v, &Limits::default()) {
                Ok(Some(p)) => return Some(p),
                Ok(None) => {}
                Err(e) => panic!("undecodable packet from the broker: {e}"),
            }
            let mut chunk = [0u8; 4096];
            match self.s.read(&mut chunk) {
                Ok(0) | Err(_) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
    }

    /// True when the broker has closed the connection (after any packets still in flight).
    pub fn closed(&mut self) -> bool {
        for _ in 0..10 {
            if self.recv().is_none() {
                return true;
            }
        }
        false
    }

    pub fn subscribe(&mut self, filter: &str, qos: QoS) -> Vec<u8> {
        self.send(&Packet::Subscribe(Subscribe {
            packet_id: 1,
            filters: vec![SubscriptionRequest {
                filter: filter.into(),
                options: SubscriptionOptions {
                    qos,
                    ..Default::default()
                },
            }],
            properties: Properties::default(),
        }));
        match self.recv() {
            Some(Packet::SubAck(a)) => a.reason_codes,
            p => panic!("expected SUBACK, got {p:?}"),
        }
    }

    pub fn publish(&mut self, topic: &str, payload: &[u8], qos: QoS, retain: bool, id: u16) {
        self.send(&Packet::Publish(Publish {
            dup: false,
            qos,
            retain,
            topic: topic.into(),
            packet_id: (qos != QoS::AtMostOnce).then_some(id),
            properties: Properties::default(),
            payload: Bytes::copy_from_slice(payload),
        }));
    }
}

/// A SUBSCRIBE of `filters`, each at QoS 0 with default options.
pub fn subscribe_packet<F: Into<String>>(id: u16, filters: impl IntoIterator<Item = F>) -> Packet {
    Packet::Subscribe(Subscribe {
        packet_id: id,
        filters: filters
            .into_iter()
            .map(|f| SubscriptionRequest {
                filter: f.into(),
                options: SubscriptionOptions::default(),
            })
            .collect(),
        properties: Properties::default(),
    })
}

pub fn connect_packet(v: ProtocolVersion, id: &str, clean: bool, props: Properties) -> Connect {
    Connect {
        protocol: v,
        clean_start: clean,
        keep_alive: 30,
        client_id: id.into(),
        will: None,
        username: None,
        password: None,
        properties: props,
    }
}

pub fn connack_code(p: &Packet) -> u8 {
    match p {
        Packet::ConnAck(a) => a.code,
        p => panic!("expected CONNACK, got {p:?}"),
    }
}

pub fn disconnect_reason(p: Option<Packet>) -> u8 {
    match p {
        Some(Packet::Disconnect(d)) => d.reason,
        p => panic!("expected DISCONNECT, got {p:?}"),
    }
}
