//! One target's audit: find out what the port speaks, run the TLS, certificate and MQTT probes that
//! apply, and turn what they saw into findings. Probes that cannot run are listed as not tested.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::AsyncReadExt;
use zeroize::Zeroizing;

use super::certs::{check_chain, Trust};
use super::checks::{finding, Finding, NotTested, CHECKS};
use super::probe::ciphers::{self, Enc, Kx};
use super::probe::tls::{self, Recorder};
use super::probe::tls_hello::{self, Flight, SSL3, TLS10, TLS11, TLS12};
use super::probe::{mqtt, ProbeError};
use super::report::{TargetReport, TlsSummary};
use super::target::Target;

/// A username and the password that goes with it (never from argv).
#[derive(Clone)]
pub struct Credentials {
    pub username: String,
    pub password: Zeroizing<String>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

#[derive(Debug, Clone)]
pub struct Options {
    /// Bound on every connect and every read of every probe.
    pub timeout: Duration,
    pub warn_days: u32,
    pub trust: Trust,
    /// Extra ports of the same host to try (plaintext beside TLS).
    pub also: Vec<u16>,
    /// Audit MQTT over WebSocket at this path instead of raw MQTT.
    pub ws_path: Option<String>,
    pub credentials: Option<Credentials>,
    /// Allow probes that publish.
    pub active: bool,
    /// (file name, entries) for the opt-in weak-credential test.
    pub wordlist: Option<(PathBuf, Vec<Credentials>)>,
    /// Pause between two wordlist attempts.
    pub wordlist_delay: Duration,
    pub show_payloads: bool,
    /// "Now" for certificate dates (Unix seconds).
    pub now: i64,
}

pub type Progress = Arc<dyn Fn(&str) + Send + Sync>;

/// Collects findings and the bookkeeping of which checks ran.
#[derive(Default)]
pub struct Sink {
    pub findings: Vec<Finding>,
    pub checks_run: Vec<String>,
    pub not_tested: Vec<NotTested>,
}

impl Sink {
    pub fn ran(&mut self, ids: &[&str]) {
        self.checks_run.extend(ids.iter().map(|s| s.to_string()));
    }

    pub fn skip(&mut self, ids: &[&str], reason: &str) {
        for id in ids {
            self.not_tested.push(NotTested {
                id: id.to_string(),
                reason: reason.to_string(),
            });
        }
    }

    pub fn add(&mut self, f: Finding) {
        self.findings.push(f);
    }
}

fn group_ids(group: &str) -> Vec<&'static str> {
    CHECKS
        .iter()
        .filter(|c| c.group == group)
        .map(|c| c.id)
        .collect()
}

const TLS_PROTOCOL_IDS: [&str; 3] = ["ssl-v3-enabled", "tls-v1-0-enabled", "tls-v1-1-enabled"];
const CIPHER_IDS: [&str; 6] = [
    "tls-cipher-null",
    "tls-cipher-anonymous",
    "tls-cipher-export",
    "tls-cipher-weak-encryption",
    "tls-cipher-no-forward-secrecy",
    "tls-cipher-cbc",
];

/// Audit one target. Never fails: an unreachable target is a report with `reachable: false`.
pub async fn audit_target(target: Target, opts: Arc<Options>, progress: Progress) -> TargetReport {
    let start = Instant::now();
    let name = target.to_string();
    let t = opts.timeout;
    progress("detecting TLS");
    let all: Vec<u16> = ciphers::SUITES.iter().map(|s| s.code).collect();
    // TLS and plain MQTT are tried at once, so a port that never answers either costs one
    // --timeout, not two. The plain CONNECT is anonymous and read-only, like the later probes.
    let plain_transport = match &opts.ws_path {
        Some(path) => mqtt::Transport::Ws {
            path: path.clone(),
            tls: false,
        },
        None => mqtt::Transport::Tcp,
    };
    let plain_id = mqtt::random_id("mqsec-audit");
    let (first, plain) = tokio::join!(
        tls_hello::probe(&target, TLS12, &all, t),
        mqtt::mqtt_connect(&target, &plain_transport, &plain_id, None, t)
    );
    // Only the answer matters: close that connection now.
    let plain_err = plain.err();
    let is_tls = match &first {
        Err(ProbeError::Connect(e)) => {
            return TargetReport::unreachable(
                name,
                format!("cannot connect: {e}"),
                start.elapsed().as_millis() as u64,
            )
        }
        Err(ProbeError::Timeout(_)) => false,
        Err(_) => false,
        Ok(Flight::Hello { .. }) | Ok(Flight::Alert { .. }) => true,
        Ok(_) => false,
    };
    if !is_tls {
        if let Some(e) = plain_err {
            return TargetReport::unreachable(
                name,
                format!("neither TLS nor MQTT answered ({e})"),
                start.elapsed().as_millis() as u64,
            );
        }
    }
    let mut sink = Sink::default();
    let mut tls_summary = None;
    let mut client_cert_required = false;
    if is_tls {
        let (summary, required) = audit_tls(&target, &opts, &mut sink, &progress).await;
        client_cert_required = required;
        tls_summary = Some(summary);
    } else {
        sink.skip(
            &[
                &TLS_PROTOCOL_IDS[..],
                &CIPHER_IDS[..],
                &["tls-client-cert-required"],
            ]
            .concat(),
            "the port does not speak TLS",
        );
        sink.skip(&group_ids("cert"), "the port does not speak TLS");
    }

    progress("probing MQTT");
    let mqtt_outcome = mqtt::audit_mqtt(
        &target,
        is_tls,
        client_cert_required,
        &opts,
        &mut sink,
        &progress,
    )
    .await;
    if let Err(unreachable) = mqtt_outcome {
        if !is_tls {
            // Neither a TLS nor an MQTT answer: nothing to audit here.
            return TargetReport::unreachable(
                name,
                unreachable,
                start.elapsed().as_millis() as u64,
            );
        }
    }

    if opts.also.is_empty() {
        sink.skip(&["plaintext-beside-tls"], "no --also PORT given");
    }
    for port in &opts.also {
        progress(&format!("probing --also port {port}"));
        mqtt::audit_also(&target.with_port(*port), is_tls, &opts, &mut sink).await;
    }

    let mut report = TargetReport {
        target: name,
        reachable: true,
        error: None,
        transport: Some(if is_tls { "tls" } else { "tcp" }.to_string()),
        tls: tls_summary,
        checks_run: sink.checks_run,
        not_tested: sink.not_tested,
        findings: sink.findings,
        duration_ms: start.elapsed().as_millis() as u64,
    };
    report.normalise();
    report
}

/// Protocols, suites, certificate and client-certificate requirement. Returns the summary and
/// whether a client certificate is required.
async fn audit_tls(
    target: &Target,
    opts: &Options,
    sink: &mut Sink,
    progress: &Progress,
) -> (TlsSummary, bool) {
    let t = opts.timeout;
    let mut summary = TlsSummary::default();
    let mut suites_by_version: Vec<(u16, Vec<u16>)> = Vec::new();
    let mut raw_chain: Vec<Vec<u8>> = Vec::new();
    let mut raw_cert_request = false;
    let mut probe_errors = Vec::new();
    for v in [SSL3, TLS10, TLS11, TLS12] {
        progress(&format!("testing {}", tls_hello::version_name(v)));
        match tls_hello::accepts_version(target, v, t).await {
            Ok(Some(Flight::Hello {
                certificates,
                cert_request,
                ..
            })) => {
                summary
                    .protocols
                    .push(tls_hello::version_name(v).to_string());
                if raw_chain.is_empty() {
                    raw_chain = certificates;
                }
                raw_cert_request |= cert_request;
                // A failed enumeration must leave the suite checks not tested, not passed.
                let suites = match tls_hello::enumerate_suites(target, v, t).await {
                    Ok(s) => s,
                    Err(e) => {
                        probe_errors.push(format!(
                            "{} suite enumeration: {e}",
                            tls_hello::version_name(v)
                        ));
                        Vec::new()
                    }
                };
                suites_by_version.push((v, suites));
            }
            Ok(_) => {}
            Err(e) => probe_errors.push(format!("{}: {e}", tls_hello::version_name(v))),
        }
    }
    progress("testing TLSv1.3");
    let t13 = tls::enumerate_tls13(target, t).await;
    if !t13.is_empty() {
        summary.protocols.push("TLSv1.3".to_string());
    }

    if probe_errors.is_empty() {
        sink.ran(&TLS_PROTOCOL_IDS);
        sink.ran(&CIPHER_IDS);
    } else {
        let reason = format!("probe failed: {}", probe_errors.join("; "));
        sink.skip(&TLS_PROTOCOL_IDS, &reason);
        sink.skip(&CIPHER_IDS, &reason);
    }
    for (v, id) in [
        (SSL3, "ssl-v3-enabled"),
        (TLS10, "tls-v1-0-enabled"),
        (TLS11, "tls-v1-1-enabled"),
    ] {
        if let Some((_, suites)) = suites_by_version.iter().find(|(x, _)| *x == v) {
            let names: Vec<String> = suites.iter().map(|c| ciphers::name_of(*c)).collect();
            sink.add(finding(
                id,
                format!(
                    "a {} ClientHello got a {} ServerHello; {} suites accepted: {}",
                    tls_hello::version_name(v),
                    tls_hello::version_name(v),
                    names.len(),
                    names.join(", ")
                ),
            ));
        }
    }
    for f in cipher_findings(&suites_by_version) {
        sink.add(f);
    }
    for (v, suites) in &suites_by_version {
        summary.ciphers.insert(
            tls_hello::version_name(*v).to_string(),
            suites.iter().map(|c| ciphers::name_of(*c)).collect(),
        );
    }
    if !t13.is_empty() {
        summary.ciphers.insert("TLSv1.3".to_string(), t13);
    }

    // The chain and client-certificate request, through rustls (TLS 1.2/1.3).
    progress("fetching the certificate");
    let rec = Arc::new(Recorder::default());
    let mut required = false;
    let hs = match tls::client_config(&rec, None, false, &[]) {
        Ok(cfg) => tls::handshake(target, cfg, t).await,
        Err(e) => Err(e),
    };
    let requested = rec.cert_requested() || raw_cert_request;
    match hs {
        Ok(mut stream) => {
            if requested {
                // TLS 1.3: the refusal of our empty Certificate arrives as an alert after the
                // handshake; wait briefly for it.
                let wait = t.min(Duration::from_millis(1500));
                let mut b = [0u8; 1];
                match tokio::time::timeout(wait, stream.read(&mut b)).await {
                    Ok(Err(_)) | Ok(Ok(0)) => required = true,
                    _ => {}
                }
            }
        }
        Err(_) if requested => required = true,
        Err(_) => {}
    }
    let mut chain = rec.chain();
    if chain.is_empty() {
        chain = raw_chain;
    }
    sink.ran(&["tls-client-cert-required"]);
    if required {
        sink.add(finding(
            "tls-client-cert-required",
            "the server sent a CertificateRequest and refused the handshake without a client certificate",
        ));
    }
    summary.client_certificate_required = required;

    let cert_ids = group_ids("cert");
    if chain.is_empty() {
        sink.skip(&cert_ids, "the server presented no certificate");
    } else {
        sink.ran(&cert_ids);
        let r = check_chain(&chain, &target.host, &opts.trust, opts.warn_days, opts.now);
        summary.certificate = r.summary;
        for f in r.findings {
            sink.add(f);
        }
    }
    (summary, required)
}

/// One finding per weakness class, listing the offending suites per protocol version.
pub fn cipher_findings(by_version: &[(u16, Vec<u16>)]) -> Vec<Finding> {
    type Class = (&'static str, fn(&ciphers::CipherSuite) -> bool);
    let classes: [Class; 6] = [
        ("tls-cipher-null", |s| s.enc == Enc::Null),
        ("tls-cipher-anonymous", |s| {
            matches!(s.kx, Kx::AnonDh | Kx::AnonEcdh)
        }),
        ("tls-cipher-export", |s| s.export),
        ("tls-cipher-weak-encryption", |s| {
            matches!(s.enc, Enc::Rc4 | Enc::Des | Enc::TripleDes)
        }),
        ("tls-cipher-no-forward-secrecy", |s| s.kx == Kx::Rsa),
        ("tls-cipher-cbc", |s| s.enc == Enc::Cbc),
    ];
    let mut out = Vec::new();
    for (id, pred) in classes {
        let mut per: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for (v, suites) in by_version {
            for code in suites {
                if let Some(s) = ciphers::by_code(*code) {
                    if pred(s) {
                        per.entry(tls_hello::version_name(*v))
                            .or_default()
                            .push(s.name);
                    }
                }
            }
        }
        if !per.is_empty() {
            let evidence = per
                .iter()
                .map(|(v, names)| format!("{v}: {}", names.join(", ")))
                .collect::<Vec<_>>()
                .join("; ");
            out.push(finding(id, evidence));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cipher_classes() {
        let f = cipher_findings(&[(TLS12, vec![0x003B, 0x002F, 0xC02F]), (TLS11, vec![0x0034])]);
        let ids: Vec<&str> = f.iter().map(|f| f.id.as_str()).collect();
        assert_eq!(
            ids,
            vec![
                "tls-cipher-null",
                "tls-cipher-anonymous",
                "tls-cipher-no-forward-secrecy",
                "tls-cipher-cbc"
            ]
        );
        assert!(f[3].evidence.contains("TLSv1.1: ADH-AES128-SHA"));
        assert!(cipher_findings(&[(TLS12, vec![0xC02F, 0xCCA8])]).is_empty());
    }

    /// A fake legacy server: speaks only SSLv3 and TLS 1.2, only RC4, 3DES, export-RC4 and one
    /// ECDHE-AEAD suite; refuses the rest with the alerts a real stack sends. This is the SSLv3 and
    /// RC4 coverage OpenSSL 3 can no longer provide as a live peer.
    async fn fake_legacy_server(listener: tokio::net::TcpListener) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        const SUITES: [u16; 4] = [0x0005, 0x000A, 0x0003, 0xC02F];
        loop {
            let Ok((mut s, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                let mut n = 0;
                // Record header + the whole ClientHello record.
                while n < 5 || n < 5 + u16::from_be_bytes([buf[3], buf[4]]) as usize {
                    match s.read(&mut buf[n..]).await {
                        Ok(0) | Err(_) => return,
                        Ok(k) => n += k,
                    }
                }
                let version = u16::from_be_bytes([buf[9], buf[10]]);
                let sid = buf[43] as usize;
                let p = 44 + sid;
                let len = u16::from_be_bytes([buf[p], buf[p + 1]]) as usize;
                let offered: Vec<u16> = buf[p + 2..p + 2 + len]
                    .chunks(2)
                    .map(|c| u16::from_be_bytes([c[0], c[1]]))
                    .collect();
                let alert = |d: u8| vec![21u8, 3, 1, 0, 2, 2, d];
                let reply = if version != SSL3 && version != TLS12 {
                    alert(70)
                } else if let Some(c) = offered.iter().find(|c| SUITES.contains(c)) {
                    let mut body = version.to_be_bytes().to_vec();
                    body.extend_from_slice(&[9u8; 32]);
                    body.push(0);
                    body.extend_from_slice(&c.to_be_bytes());
                    body.push(0);
                    let mut hs = vec![2u8, 0, 0, body.len() as u8];
                    hs.extend_from_slice(&body);
                    hs.extend_from_slice(&[14, 0, 0, 0]);
                    let mut rec = vec![22u8, 3, (version & 0xff) as u8];
                    rec.extend_from_slice(&(hs.len() as u16).to_be_bytes());
                    rec.extend_from_slice(&hs);
                    rec
                } else {
                    alert(40)
                };
                let _ = s.write_all(&reply).await;
            });
        }
    }

    #[tokio::test]
    async fn legacy_protocols_and_suites_from_a_fake_server() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = tokio::spawn(fake_legacy_server(listener));
        let target = Target::parse(&format!("127.0.0.1:{port}")).unwrap();
        let opts = Options {
            timeout: Duration::from_secs(2),
            warn_days: 30,
            trust: Trust {
                roots: Arc::new(rustls::RootCertStore::empty()),
                pinned: Arc::new(Vec::new()),
                source: "test".into(),
            },
            also: vec![],
            ws_path: None,
            credentials: None,
            active: false,
            wordlist: None,
            wordlist_delay: Duration::ZERO,
            show_payloads: false,
            now: 0,
        };
        let mut sink = Sink::default();
        let progress: Progress = Arc::new(|_: &str| {});
        let (summary, required) = audit_tls(&target, &opts, &mut sink, &progress).await;
        server.abort();
        assert!(!required);
        assert_eq!(summary.protocols, vec!["SSLv3", "TLSv1.2"]);
        assert_eq!(
            summary.ciphers["SSLv3"],
            vec![
                "EXP-RC4-MD5",
                "RC4-SHA",
                "DES-CBC3-SHA",
                "ECDHE-RSA-AES128-GCM-SHA256"
            ]
        );
        let ids: Vec<&str> = sink.findings.iter().map(|f| f.id.as_str()).collect();
        for id in [
            "ssl-v3-enabled",
            "tls-cipher-export",
            "tls-cipher-weak-encryption",
            "tls-cipher-no-forward-secrecy",
        ] {
            assert!(ids.contains(&id), "{id} missing from {ids:?}");
        }
        assert!(!ids.contains(&"tls-v1-0-enabled") && !ids.contains(&"tls-v1-1-enabled"));
        assert!(!ids.contains(&"tls-cipher-null"));
        // No certificate was presented: the certificate checks are not tested, not passed.
        assert!(sink.not_tested.iter().any(|n| n.id == "cert-expired"));
    }
}
