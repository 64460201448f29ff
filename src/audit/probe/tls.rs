//! rustls handshakes that record instead of rejecting: the audit must see (and report) an expired,
//! self-signed or misnamed certificate, so the verifier stores the chain and lets the handshake go on.
//! It also records whether the server asked for a client certificate.
//!
//! Because the verifier accepts anything, MQTT probes over such a session are exposed to a
//! man-in-the-middle; that is what the certificate findings report, and the README says so.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::ResolvesClientCert;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme, SupportedCipherSuite};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

use super::{connect, ProbeError};
use crate::audit::target::Target;

/// What a handshake revealed, whether or not it completed.
#[derive(Debug, Default)]
pub struct Recorder {
    chain: Mutex<Vec<Vec<u8>>>,
    cert_requested: AtomicBool,
}

impl Recorder {
    pub fn chain(&self) -> Vec<Vec<u8>> {
        self.chain.lock().map(|c| c.clone()).unwrap_or_default()
    }

    pub fn cert_requested(&self) -> bool {
        self.cert_requested.load(Ordering::SeqCst)
    }
}

#[derive(Debug)]
struct RecordingVerifier {
    rec: Arc<Recorder>,
    schemes: Vec<SignatureScheme>,
}

impl ServerCertVerifier for RecordingVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if let Ok(mut c) = self.rec.chain.lock() {
            *c = std::iter::once(end_entity)
                .chain(intermediates)
                .map(|d| d.as_ref().to_vec())
                .collect();
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }

    fn verify_tls13_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.schemes.clone()
    }
}

/// Never presents a certificate; notes that one was asked for.
#[derive(Debug)]
struct NoteCertRequest(Arc<Recorder>);

impl ResolvesClientCert for NoteCertRequest {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[SignatureScheme],
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        self.0.cert_requested.store(true, Ordering::SeqCst);
        None
    }

    fn has_certs(&self) -> bool {
        true
    }
}

/// A client config recording into `rec`. `suites` narrows the offer (TLS 1.3 suite enumeration);
/// `tls13_only` restricts the version.
pub fn client_config(
    rec: &Arc<Recorder>,
    suites: Option<Vec<SupportedCipherSuite>>,
    tls13_only: bool,
    alpn: &[&[u8]],
) -> Result<Arc<ClientConfig>, ProbeError> {
    let mut provider = rustls::crypto::aws_lc_rs::default_provider();
    if let Some(s) = suites {
        provider.cipher_suites = s;
    }
    let schemes = provider
        .signature_verification_algorithms
        .supported_schemes();
    let versions: &[&'static rustls::SupportedProtocolVersion] = if tls13_only {
        &[&rustls::version::TLS13]
    } else {
        &[&rustls::version::TLS13, &rustls::version::TLS12]
    };
    let provider: Arc<CryptoProvider> = Arc::new(provider);
    let mut cfg = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .map_err(|e| ProbeError::Tls(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(RecordingVerifier {
            rec: rec.clone(),
            schemes,
        }))
        .with_client_cert_resolver(Arc::new(NoteCertRequest(rec.clone())));
    cfg.alpn_protocols = alpn.iter().map(|a| a.to_vec()).collect();
    Ok(Arc::new(cfg))
}

fn server_name(target: &Target) -> ServerName<'static> {
    match target.ip() {
        Some(ip) => ServerName::IpAddress(ip.into()),
        None => ServerName::try_from(target.host.clone())
            .unwrap_or_else(|_| ServerName::try_from("invalid.invalid").expect("static name")),
    }
}

/// TCP connect + TLS handshake, each within `timeout`.
pub async fn handshake(
    target: &Target,
    cfg: Arc<ClientConfig>,
    timeout: Duration,
) -> Result<TlsStream<TcpStream>, ProbeError> {
    let tcp = connect(target, timeout).await?;
    let connector = TlsConnector::from(cfg);
    tokio::time::timeout(timeout, connector.connect(server_name(target), tcp))
        .await
        .map_err(|_| ProbeError::Timeout("in the TLS handshake"))?
        .map_err(|e| ProbeError::Tls(e.to_string()))
}

/// The negotiated version and suite, named as OpenSSL/sslscan name them.
pub fn negotiated(stream: &TlsStream<TcpStream>) -> (u16, String) {
    let conn = stream.get_ref().1;
    let version = conn.protocol_version().map(u16::from).unwrap_or_default();
    let suite = conn
        .negotiated_cipher_suite()
        .map(|s| suite_name(s.suite().into()))
        .unwrap_or_default();
    (version, suite)
}

/// TLS 1.3 suites have one name everywhere; TLS 1.2 suites use OpenSSL's names.
pub fn suite_name(code: u16) -> String {
    match code {
        0x1301 => "TLS_AES_128_GCM_SHA256".into(),
        0x1302 => "TLS_AES_256_GCM_SHA384".into(),
        0x1303 => "TLS_CHACHA20_POLY1305_SHA256".into(),
        c => super::ciphers::name_of(c),
    }
}

/// The TLS 1.3 suites the server accepts: one handshake per suite rustls knows.
pub async fn enumerate_tls13(target: &Target, timeout: Duration) -> Vec<String> {
    let mut out = Vec::new();
    for suite in rustls::crypto::aws_lc_rs::default_provider().cipher_suites {
        if suite.version() != &rustls::version::TLS13 {
            continue;
        }
        let rec = Arc::new(Recorder::default());
        let Ok(cfg) = client_config(&rec, Some(vec![suite]), true, &[]) else {
            continue;
        };
        if handshake(target, cfg, timeout).await.is_ok() {
            out.push(suite_name(suite.suite().into()));
        }
    }
    out
}
