//! Hand-built ClientHello bytes and a parser for the server's first flight.
//!
//! rustls speaks only TLS 1.2/1.3 with AEAD suites, so it cannot tell whether a broker still accepts
//! SSLv3, TLS 1.0/1.1, or NULL/RC4/export suites. We send our own ClientHello offering exactly the
//! version and suites we want to test, and read what comes back: a ServerHello (accepted; the
//! Certificate and CertificateRequest messages of TLS <= 1.2 follow in clear text) or an alert.
//! Every byte the peer sends is bounds-checked: the parser returns a verdict, never panics.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{connect, ProbeError};
use crate::audit::target::Target;

pub const SSL3: u16 = 0x0300;
pub const TLS10: u16 = 0x0301;
pub const TLS11: u16 = 0x0302;
pub const TLS12: u16 = 0x0303;
pub const TLS13: u16 = 0x0304;

/// Protocol versions the raw probe tests, oldest first.
pub const LEGACY_AND_12: [u16; 4] = [SSL3, TLS10, TLS11, TLS12];

/// The name sslscan and OpenSSL print for a version.
pub fn version_name(v: u16) -> &'static str {
    match v {
        SSL3 => "SSLv3",
        TLS10 => "TLSv1.0",
        TLS11 => "TLSv1.1",
        TLS12 => "TLSv1.2",
        TLS13 => "TLSv1.3",
        _ => "unknown",
    }
}

/// A reply larger than this is not a server's first flight: stop reading.
const MAX_FLIGHT: usize = 256 * 1024;
/// TLS allows 2^14 + 2048 bytes of ciphertext per record; anything longer is not TLS.
const MAX_RECORD: usize = 16384 + 2048;

const CT_ALERT: u8 = 21;
const CT_HANDSHAKE: u8 = 22;

/// Build one ClientHello record offering `version` and `suites`. `sni` is sent when it is a DNS name.
pub fn client_hello(version: u16, suites: &[u16], sni: Option<&str>, random: [u8; 32]) -> Vec<u8> {
    let mut body = Vec::with_capacity(512);
    body.extend_from_slice(&version.to_be_bytes());
    body.extend_from_slice(&random);
    body.push(0); // no session id
                  // TLS_EMPTY_RENEGOTIATION_INFO_SCSV keeps servers that insist on secure renegotiation talking.
    let suite_bytes = (suites.len() + 1) * 2;
    body.extend_from_slice(&(suite_bytes as u16).to_be_bytes());
    for s in suites {
        body.extend_from_slice(&s.to_be_bytes());
    }
    body.extend_from_slice(&0x00FFu16.to_be_bytes());
    body.extend_from_slice(&[1, 0]); // compression: null only
    if version > SSL3 {
        let mut ext = Vec::new();
        if let Some(name) = sni {
            let n = name.as_bytes();
            let mut list = Vec::new();
            list.push(0); // host_name
            list.extend_from_slice(&(n.len() as u16).to_be_bytes());
            list.extend_from_slice(n);
            let mut data = (list.len() as u16).to_be_bytes().to_vec();
            data.extend_from_slice(&list);
            push_ext(&mut ext, 0, &data);
        }
        // supported_groups: x25519, P-256, P-384, P-521, x448.
        let groups: [u16; 5] = [29, 23, 24, 25, 30];
        let mut data = ((groups.len() * 2) as u16).to_be_bytes().to_vec();
        for g in groups {
            data.extend_from_slice(&g.to_be_bytes());
        }
        push_ext(&mut ext, 10, &data);
        push_ext(&mut ext, 11, &[1, 0]); // ec_point_formats: uncompressed
        if version >= TLS12 {
            // Include the SHA-1 schemes: a scanner must still reach servers that sign only those.
            let algs: [u16; 14] = [
                0x0403, 0x0503, 0x0603, 0x0804, 0x0805, 0x0806, 0x0807, 0x0401, 0x0501, 0x0601,
                0x0201, 0x0203, 0x0402, 0x0202,
            ];
            let mut data = ((algs.len() * 2) as u16).to_be_bytes().to_vec();
            for a in algs {
                data.extend_from_slice(&a.to_be_bytes());
            }
            push_ext(&mut ext, 13, &data);
        }
        body.extend_from_slice(&(ext.len() as u16).to_be_bytes());
        body.extend_from_slice(&ext);
    }
    let mut hs = vec![1u8];
    hs.extend_from_slice(&u24(body.len()));
    hs.extend_from_slice(&body);
    // Old servers choke on a record version above TLS 1.0; the real offer is in the hello body.
    let record_version = if version == SSL3 { SSL3 } else { TLS10 };
    let mut rec = vec![CT_HANDSHAKE];
    rec.extend_from_slice(&record_version.to_be_bytes());
    rec.extend_from_slice(&(hs.len() as u16).to_be_bytes());
    rec.extend_from_slice(&hs);
    rec
}

fn push_ext(out: &mut Vec<u8>, ty: u16, data: &[u8]) {
    out.extend_from_slice(&ty.to_be_bytes());
    out.extend_from_slice(&(data.len() as u16).to_be_bytes());
    out.extend_from_slice(data);
}

fn u24(n: usize) -> [u8; 3] {
    [(n >> 16) as u8, (n >> 8) as u8, n as u8]
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerHello {
    /// The negotiated version: the `supported_versions` extension when present, else the legacy field.
    pub version: u16,
    pub cipher: u16,
    pub compression: u8,
}

/// What the server's first flight says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Flight {
    /// A ServerHello; for TLS <= 1.2 also the certificate chain and whether a client certificate is
    /// requested. `complete` is true once ServerHelloDone (or a TLS 1.3 ServerHello) was seen.
    Hello {
        hello: ServerHello,
        certificates: Vec<Vec<u8>>,
        cert_request: bool,
        complete: bool,
    },
    /// The server refused with an alert (level, description).
    Alert { level: u8, description: u8 },
    /// The bytes so far are a valid prefix: read more.
    NeedMore,
    /// Not TLS (a plaintext MQTT listener, an HTTP server, garbage).
    NotTls,
}

/// Parse the bytes a server sent in answer to a ClientHello. Pure and total: any input gives a verdict.
pub fn parse_flight(buf: &[u8]) -> Flight {
    // Judge the first bytes before a whole record header has arrived: a plaintext reply is often
    // shorter than five bytes (an MQTT CONNACK is four).
    match buf {
        [ct, ..] if !(20..=24).contains(ct) => return Flight::NotTls,
        [_, major, ..] if *major != 3 => return Flight::NotTls,
        _ => {}
    }
    let mut hs = Vec::new();
    let mut pos = 0;
    while pos < buf.len() {
        let Some(hdr) = buf.get(pos..pos + 5) else {
            break;
        };
        let ct = hdr[0];
        let major = hdr[1];
        let len = u16::from_be_bytes([hdr[3], hdr[4]]) as usize;
        if !(20..=24).contains(&ct) || major != 3 || len > MAX_RECORD {
            return if hs.is_empty() {
                Flight::NotTls
            } else {
                finish(&hs, false)
            };
        }
        let Some(frag) = buf.get(pos + 5..pos + 5 + len) else {
            break;
        };
        match ct {
            CT_ALERT => {
                if frag.len() < 2 {
                    return Flight::NotTls;
                }
                if hs.is_empty() {
                    return Flight::Alert {
                        level: frag[0],
                        description: frag[1],
                    };
                }
                // An alert after the ServerHello (e.g. after a CertificateRequest): what we have counts.
                return finish(&hs, true);
            }
            CT_HANDSHAKE => hs.extend_from_slice(frag),
            // ChangeCipherSpec or encrypted data: the clear-text part of the flight is over.
            _ => return finish(&hs, true),
        }
        pos += 5 + len;
    }
    if hs.is_empty() {
        return Flight::NeedMore;
    }
    finish(&hs, false)
}

/// Interpret the concatenated handshake messages. `ended` means no more clear-text handshake
/// bytes will come.
fn finish(hs: &[u8], ended: bool) -> Flight {
    let mut pos = 0;
    let mut hello = None;
    let mut certificates = Vec::new();
    let mut cert_request = false;
    let mut complete = ended;
    while let Some(hdr) = hs.get(pos..pos + 4) {
        let ty = hdr[0];
        let len = (hdr[1] as usize) << 16 | (hdr[2] as usize) << 8 | hdr[3] as usize;
        let Some(body) = hs.get(pos + 4..pos + 4 + len) else {
            break;
        };
        match ty {
            2 => match parse_server_hello(body) {
                Some(h) => {
                    if h.version >= TLS13 {
                        complete = true;
                    }
                    hello = Some(h);
                }
                None => return Flight::NotTls,
            },
            11 => certificates = parse_certificates(body).unwrap_or_default(),
            13 => cert_request = true,
            14 => complete = true,
            _ => {}
        }
        if hello.is_none() {
            // The first handshake message from a server must be its ServerHello.
            return Flight::NotTls;
        }
        pos += 4 + len;
        if complete {
            break;
        }
    }
    match hello {
        Some(hello) => Flight::Hello {
            hello,
            certificates,
            cert_request,
            complete,
        },
        None if ended => Flight::NotTls,
        None => Flight::NeedMore,
    }
}

fn parse_server_hello(b: &[u8]) -> Option<ServerHello> {
    let legacy = u16::from_be_bytes([*b.first()?, *b.get(1)?]);
    let sid_len = *b.get(34)? as usize;
    if sid_len > 32 {
        return None;
    }
    let p = 35 + sid_len;
    let cipher = u16::from_be_bytes([*b.get(p)?, *b.get(p + 1)?]);
    let compression = *b.get(p + 2)?;
    let mut version = legacy;
    // Extensions are optional; when present they must be well formed.
    if let Some(ext_len_bytes) = b.get(p + 3..p + 5) {
        let ext_len = u16::from_be_bytes([ext_len_bytes[0], ext_len_bytes[1]]) as usize;
        let exts = b.get(p + 5..p + 5 + ext_len)?;
        let mut q = 0;
        while let Some(h) = exts.get(q..q + 4) {
            let ty = u16::from_be_bytes([h[0], h[1]]);
            let l = u16::from_be_bytes([h[2], h[3]]) as usize;
            let data = exts.get(q + 4..q + 4 + l)?;
            if ty == 43 && data.len() == 2 {
                version = u16::from_be_bytes([data[0], data[1]]);
            }
            q += 4 + l;
        }
    }
    Some(ServerHello {
        version,
        cipher,
        compression,
    })
}

fn parse_certificates(b: &[u8]) -> Option<Vec<Vec<u8>>> {
    let total = (*b.first()? as usize) << 16 | (*b.get(1)? as usize) << 8 | *b.get(2)? as usize;
    let list = b.get(3..3 + total)?;
    let mut out = Vec::new();
    let mut pos = 0;
    while let Some(h) = list.get(pos..pos + 3) {
        let l = (h[0] as usize) << 16 | (h[1] as usize) << 8 | h[2] as usize;
        out.push(list.get(pos + 3..pos + 3 + l)?.to_vec());
        pos += 3 + l;
        if out.len() > 16 {
            break;
        }
    }
    Some(out)
}

/// Send one ClientHello and read the first flight, within `timeout` for connect and for the reply.
pub async fn probe(
    target: &Target,
    version: u16,
    suites: &[u16],
    timeout: Duration,
) -> Result<Flight, ProbeError> {
    let mut stream = connect(target, timeout).await?;
    let hello = client_hello(version, suites, target.sni_name(), rand::random());
    tokio::time::timeout(timeout, stream.write_all(&hello))
        .await
        .map_err(|_| ProbeError::Timeout("sending the ClientHello"))??;
    let mut buf = Vec::with_capacity(4096);
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let mut chunk = [0u8; 8192];
        let n = match tokio::time::timeout_at(deadline, stream.read(&mut chunk)).await {
            Err(_) => {
                return match parse_flight(&buf) {
                    f @ Flight::Hello { .. } => Ok(f),
                    _ if buf.is_empty() => Err(ProbeError::Timeout("waiting for the ServerHello")),
                    _ => Ok(Flight::NotTls),
                }
            }
            Ok(Ok(n)) => n,
            // A reset after a refusal is an answer too: judge what arrived.
            Ok(Err(_)) => 0,
        };
        buf.extend_from_slice(&chunk[..n]);
        let f = parse_flight(&buf);
        match f {
            Flight::NeedMore if n > 0 && buf.len() < MAX_FLIGHT => continue,
            Flight::Hello {
                complete: false, ..
            } if n > 0 && buf.len() < MAX_FLIGHT => continue,
            Flight::NeedMore => return Ok(Flight::NotTls),
            other => return Ok(other),
        }
    }
}

/// Which of `versions` the server accepts when offered every suite we know for that version.
pub async fn accepts_version(
    target: &Target,
    version: u16,
    timeout: Duration,
) -> Result<Option<Flight>, ProbeError> {
    let suites: Vec<u16> = super::ciphers::SUITES.iter().map(|s| s.code).collect();
    let f = probe(target, version, &suites, timeout).await?;
    Ok(match &f {
        Flight::Hello { hello, .. } if hello.version == version => Some(f),
        _ => None,
    })
}

/// Every suite the server accepts at `version`: offer all, remove the one it picks, repeat.
pub async fn enumerate_suites(
    target: &Target,
    version: u16,
    timeout: Duration,
) -> Result<Vec<u16>, ProbeError> {
    let mut offered: Vec<u16> = super::ciphers::SUITES.iter().map(|s| s.code).collect();
    let mut accepted = Vec::new();
    while !offered.is_empty() {
        match probe(target, version, &offered, timeout).await? {
            Flight::Hello { hello, .. }
                if hello.version == version && offered.contains(&hello.cipher) =>
            {
                offered.retain(|c| *c != hello.cipher);
                accepted.push(hello.cipher);
            }
            _ => break,
        }
    }
    Ok(accepted)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn record(ct: u8, body: &[u8]) -> Vec<u8> {
        let mut r = vec![ct, 3, 3];
        r.extend_from_slice(&(body.len() as u16).to_be_bytes());
        r.extend_from_slice(body);
        r
    }

    fn hs_msg(ty: u8, body: &[u8]) -> Vec<u8> {
        let mut m = vec![ty];
        m.extend_from_slice(&u24(body.len()));
        m.extend_from_slice(body);
        m
    }

    fn server_hello(version: u16, cipher: u16) -> Vec<u8> {
        let mut b = version.to_be_bytes().to_vec();
        b.extend_from_slice(&[7u8; 32]);
        b.push(0);
        b.extend_from_slice(&cipher.to_be_bytes());
        b.push(0);
        hs_msg(2, &b)
    }

    #[test]
    fn client_hello_is_well_formed() {
        let h = client_hello(TLS12, &[0xC02F, 0x002F], Some("broker.example"), [1; 32]);
        assert_eq!(h[0], 22);
        assert_eq!(u16::from_be_bytes([h[3], h[4]]) as usize, h.len() - 5);
        assert_eq!(h[5], 1);
        assert_eq!(&h[9..11], &[3, 3]);
        let ssl3 = client_hello(SSL3, &[0x000A], None, [1; 32]);
        assert_eq!(&ssl3[1..3], &[3, 0]);
    }

    #[test]
    fn parses_hello_certificate_request_and_done() {
        let cert = vec![0x30, 0x03, 1, 2, 3];
        let mut certs_body = u24(cert.len() + 3).to_vec();
        certs_body.extend_from_slice(&u24(cert.len()));
        certs_body.extend_from_slice(&cert);
        let mut hs = server_hello(TLS11, 0x002F);
        hs.extend(hs_msg(11, &certs_body));
        hs.extend(hs_msg(13, &[1, 1, 0, 0]));
        hs.extend(hs_msg(14, &[]));
        // Split over two records to exercise reassembly.
        let mut bytes = record(22, &hs[..10]);
        bytes.extend(record(22, &hs[10..]));
        match parse_flight(&bytes) {
            Flight::Hello {
                hello,
                certificates,
                cert_request,
                complete,
            } => {
                assert_eq!(hello.version, TLS11);
                assert_eq!(hello.cipher, 0x002F);
                assert_eq!(certificates, vec![cert]);
                assert!(cert_request);
                assert!(complete);
            }
            other => panic!("{other:?}"),
        }
        // Without ServerHelloDone the flight is a prefix: read more.
        assert!(matches!(
            parse_flight(&record(22, &server_hello(TLS12, 0xC02F))),
            Flight::Hello {
                complete: false,
                ..
            }
        ));
    }

    #[test]
    fn alert_and_plaintext() {
        assert_eq!(
            parse_flight(&record(21, &[2, 70])),
            Flight::Alert {
                level: 2,
                description: 70
            }
        );
        // An MQTT CONNACK is not TLS.
        assert_eq!(parse_flight(&[0x20, 0x02, 0x00, 0x00]), Flight::NotTls);
        assert_eq!(parse_flight(&[22, 3]), Flight::NeedMore);
        assert_eq!(
            parse_flight(b"HTTP/1.1 400 Bad Request\r\n"),
            Flight::NotTls
        );
    }

    proptest! {
        #[test]
        fn never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            let _ = parse_flight(&bytes);
        }

        #[test]
        fn never_panics_on_mutated_records(
            body in proptest::collection::vec(any::<u8>(), 0..300),
            ct in 20u8..25,
            cut in 0usize..400,
        ) {
            let mut hs = server_hello(TLS12, 0xC02F);
            hs.extend_from_slice(&body);
            let bytes = record(ct, &hs);
            let _ = parse_flight(&bytes[..cut.min(bytes.len())]);
            let mut framed = record(22, &hs_msg(2, &body));
            framed.extend(record(22, &body));
            let _ = parse_flight(&framed);
        }

        #[test]
        fn a_valid_hello_round_trips(version in 0x0300u16..0x0304, cipher in any::<u16>()) {
            match parse_flight(&record(22, &server_hello(version, cipher))) {
                Flight::Hello { hello, .. } => {
                    prop_assert_eq!(hello.version, version);
                    prop_assert_eq!(hello.cipher, cipher);
                }
                other => prop_assert!(false, "{:?}", other),
            }
        }
    }
}
