//! The secured connect storm: a password file, with and without TLS, the same files for both
//! brokers.
//!
//! What a fleet reconnecting after an outage costs a hardened broker: every connection does a
//! full TLS handshake (no resumption: the worst case, and what a fleet of rebooted devices
//! does), then CONNECT with a username and password, CONNACK, DISCONNECT. The password file is
//! made by `mosquitto_passwd -U` (`$7$`, what a Mosquitto user has), so both brokers check the
//! same hashes; the certificates are generated here.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use super::client::{accepted, connect_packet, ClientOptions};
use super::{wire, LoadError};
use mqsec_codec::{Disconnect, Packet, ProtocolVersion};

/// Users in the password file; the storm cycles over them.
pub const USERS: usize = 200;
/// Handshakes in flight at once (a fleet does not wait for each device in turn).
const CONCURRENCY: usize = 50;
const STEP_TIMEOUT: Duration = Duration::from_secs(30);

/// Files both brokers read, in a directory that lives as long as this value.
pub struct Fixture {
    dir: tempfile::TempDir,
    ca: CertificateDer<'static>,
}

fn user(i: usize) -> (String, String) {
    (format!("device{i:04}"), format!("pw-{i:04}-Lp7qX2"))
}

impl Fixture {
    /// A CA, a server certificate for 127.0.0.1 and a `$7$` password file of [`USERS`] users.
    pub fn create() -> Result<Fixture, LoadError> {
        let dir = tempfile::tempdir()?;
        let bad = |e: rcgen::Error| LoadError::Protocol(format!("certificate generation: {e}"));
        let ca_key = rcgen::KeyPair::generate().map_err(bad)?;
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).map_err(bad)?;
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "loadgen CA");
        let ca = ca_params.self_signed(&ca_key).map_err(bad)?;
        let issuer = rcgen::Issuer::new(ca_params, &ca_key);
        let key = rcgen::KeyPair::generate().map_err(bad)?;
        let params = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()]).map_err(bad)?;
        let cert = params.signed_by(&key, &issuer).map_err(bad)?;
        std::fs::write(dir.path().join("ca.pem"), ca.pem())?;
        std::fs::write(dir.path().join("server.pem"), cert.pem())?;
        std::fs::write(dir.path().join("server.key"), key.serialize_pem())?;
        let mut lines = String::new();
        for i in 0..USERS {
            let (u, p) = user(i);
            lines.push_str(&format!("{u}:{p}\n"));
        }
        let pw = dir.path().join("passwd");
        std::fs::write(&pw, lines)?;
        let out = Command::new("mosquitto_passwd")
            .arg("-U")
            .arg(&pw)
            .output()
            .map_err(|e| LoadError::Spawn {
                what: "mosquitto_passwd".into(),
                source: e,
            })?;
        if !out.status.success() {
            return Err(LoadError::Protocol(format!(
                "mosquitto_passwd -U failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        Ok(Fixture {
            dir,
            ca: ca.der().clone(),
        })
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The listener's lines: the password file, no anonymous clients and, with `tls`, the
    /// generated certificate. The same text configures Mosquitto and mqsec.
    pub fn listener_conf(&self, tls: bool) -> String {
        let p = |n: &str| self.path(n).display().to_string();
        let mut conf = format!("allow_anonymous false\npassword_file {}\n", p("passwd"));
        if tls {
            conf.push_str(&format!(
                "cafile {}\ncertfile {}\nkeyfile {}\n",
                p("ca.pem"),
                p("server.pem"),
                p("server.key")
            ));
        }
        conf
    }

    fn connector(&self) -> Result<TlsConnector, LoadError> {
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(self.ca.clone())
            .map_err(|e| LoadError::Protocol(format!("CA certificate: {e}")))?;
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| LoadError::Protocol(format!("TLS config: {e}")))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.resumption = rustls::client::Resumption::disabled();
        Ok(TlsConnector::from(Arc::new(config)))
    }
}

/// One storm's result.
#[derive(Debug, Clone)]
pub struct Storm {
    pub per_s: f64,
    pub connections: u64,
    /// From the TCP connect to the CONNACK, in milliseconds.
    pub p50_ms: f64,
    pub p99_ms: f64,
}

/// `count` connections, user `(first + i) % USERS` for the i-th: TLS handshake (with `tls`),
/// CONNECT with that user's password, CONNACK (must be success), DISCONNECT, close.
pub async fn storm(
    addr: SocketAddr,
    fixture: &Fixture,
    tls: bool,
    version: ProtocolVersion,
    first: usize,
    count: usize,
) -> Result<Storm, LoadError> {
    let connector = if tls {
        Some(fixture.connector()?)
    } else {
        None
    };
    let next = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..CONCURRENCY.min(count.max(1)) {
        let (next, connector) = (next.clone(), connector.clone());
        tasks.spawn(async move {
            let mut took = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed) as usize;
                if i >= count {
                    return Ok::<_, LoadError>(took);
                }
                let t = Instant::now();
                let (name, pw) = user((first + i) % USERS);
                let id = format!("{name}-{i}");
                let one = async {
                    let tcp = TcpStream::connect(addr).await?;
                    tcp.set_nodelay(true)?;
                    let credentials = (name.as_str(), pw.as_bytes());
                    match &connector {
                        Some(c) => {
                            let server = ServerName::IpAddress(addr.ip().into());
                            let tls = c.connect(server, tcp).await?;
                            login(tls, version, &id, credentials).await
                        }
                        None => login(tcp, version, &id, credentials).await,
                    }
                };
                tokio::time::timeout(STEP_TIMEOUT, one)
                    .await
                    .map_err(|_| LoadError::Timeout("a password login"))??;
                took.push(t.elapsed());
            }
        });
    }
    let mut all = Vec::with_capacity(count);
    while let Some(r) = tasks.join_next().await {
        all.extend(r.map_err(|e| LoadError::Protocol(format!("storm task failed: {e}")))??);
    }
    let elapsed = start.elapsed().as_secs_f64();
    all.sort_unstable();
    let pct = |q: f64| {
        all.get(((all.len() as f64 * q).ceil() as usize).saturating_sub(1))
            .map_or(f64::NAN, |d| d.as_secs_f64() * 1e3)
    };
    Ok(Storm {
        per_s: all.len() as f64 / elapsed,
        connections: all.len() as u64,
        p50_ms: pct(0.50),
        p99_ms: pct(0.99),
    })
}

/// CONNECT with `credentials`, CONNACK (must be success), DISCONNECT, close, over `stream`.
async fn login(
    mut stream: impl AsyncRead + AsyncWrite + Unpin,
    version: ProtocolVersion,
    client_id: &str,
    credentials: (&str, &[u8]),
) -> Result<(), LoadError> {
    let opts = ClientOptions {
        version,
        keep_alive: 60,
        clean_start: true,
    };
    let mut buf = BytesMut::with_capacity(256);
    wire::encode(
        &connect_packet(opts, client_id, Some(credentials)),
        version,
        &mut buf,
    )?;
    stream.write_all(&buf).await?;
    buf.clear();
    let ack = loop {
        if let Some(p) = wire::decode(&mut buf, version)? {
            break p;
        }
        if stream.read_buf(&mut buf).await? == 0 {
            return Err(LoadError::Closed);
        }
    };
    accepted(ack)?;
    buf.clear();
    wire::encode(
        &Packet::Disconnect(Disconnect::default()),
        version,
        &mut buf,
    )?;
    stream.write_all(&buf).await?;
    stream.shutdown().await?;
    Ok(())
}

/// What the storm does, for the report.
pub fn describe() -> String {
    format!(
        "{USERS} users in a `mosquitto_passwd -U` file ($7$), {CONCURRENCY} logins at a time; \
         TLS with a generated ECDSA P-256 certificate and no resumption"
    )
}
