//! Reading certificates back with x509-parser: what every command prints, and the facts the CA
//! code checks (is it a CA, its path length, its validity, which key it holds).

use std::fmt::Write as _;
use std::path::Path;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;
use serde::Serialize;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::prelude::FromDer;
use x509_parser::x509::{X509Name, X509Version};

use super::{PkiError, Result};

/// What mqsec reports about a certificate (text and `--json`).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct CertInfo {
    pub subject: String,
    pub issuer: String,
    /// Lower-case hex, no leading zeros: the form the index and `--revoke-serial` use.
    pub serial: String,
    /// SHA-256 of the DER, upper-case hex with colons (as `openssl x509 -fingerprint -sha256`).
    pub sha256_fingerprint: String,
    #[serde(serialize_with = "ser_time")]
    pub not_before: OffsetDateTime,
    #[serde(serialize_with = "ser_time")]
    pub not_after: OffsetDateTime,
    pub key_type: String,
    pub is_ca: bool,
    /// basicConstraints pathLenConstraint, for CAs.
    pub path_len: Option<u32>,
    pub dns_names: Vec<String>,
    pub ip_addresses: Vec<String>,
    /// Extended key usages, by short name (serverAuth, clientAuth).
    pub extended_key_usage: Vec<String>,
    /// X.509 version as printed by OpenSSL (1 or 3).
    pub version: u32,
}

/// Canonical serial form: lower-case hex of the unsigned big-endian value, no leading zeros.
pub fn serial_hex(raw: &[u8]) -> String {
    let h = hex::encode(raw);
    let t = h.trim_start_matches('0');
    if t.is_empty() {
        "0".to_string()
    } else {
        t.to_string()
    }
}

/// Normalise a user-typed serial (`0A:1b:..`, `0x0a1b`, `a1b`) to the canonical form.
pub fn parse_serial(input: &str) -> Option<String> {
    let s = input.trim();
    // Pasted straight from `openssl x509 -noout -serial`.
    let s = s.strip_prefix("serial=").unwrap_or(s);
    let s = s
        .strip_prefix("0x")
        .or_else(|| s.strip_prefix("0X"))
        .unwrap_or(s);
    let digits: String = s.chars().filter(|c| *c != ':').collect();
    if digits.is_empty() || digits.len() > 40 || !digits.chars().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    let lower = digits.to_ascii_lowercase();
    let t = lower.trim_start_matches('0');
    Some(if t.is_empty() { "0".into() } else { t.into() })
}

/// SHA-256 fingerprint in OpenSSL's notation.
pub fn fingerprint(der: &[u8]) -> String {
    let digest = Sha256::digest(der);
    let mut out = String::with_capacity(95);
    for (i, b) in digest.iter().enumerate() {
        if i > 0 {
            out.push(':');
        }
        let _ = write!(out, "{b:02X}");
    }
    out
}

/// Parse one DER certificate; `origin` names it in errors.
pub fn parse<'a>(der: &'a [u8], origin: &Path) -> Result<X509Certificate<'a>> {
    match X509Certificate::from_der(der) {
        Ok((&[], cert)) => Ok(cert),
        Ok(_) => Err(PkiError::file(
            origin,
            "trailing bytes after the certificate",
        )),
        Err(e) => Err(PkiError::file(
            origin,
            format!("not a valid X.509 certificate ({e})"),
        )),
    }
}

/// All certificates of a PEM file, in order. Errors if there is none.
pub fn read_pem_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>> {
    let bytes = super::read_file(path)?;
    let mut out = Vec::new();
    for item in CertificateDer::pem_slice_iter(&bytes) {
        match item {
            Ok(c) => out.push(c),
            Err(e) => {
                return Err(PkiError::file(
                    path,
                    format!("malformed PEM certificate: {e}"),
                ));
            }
        }
    }
    if out.is_empty() {
        return Err(PkiError::file(path, "no PEM \"CERTIFICATE\" block found"));
    }
    Ok(out)
}

/// The key type of a certificate's public key, in `--key-type` names where it is one of ours.
pub fn key_type_name(cert: &X509Certificate<'_>) -> String {
    use x509_parser::public_key::PublicKey;
    let spki = cert.public_key();
    if spki.algorithm.algorithm == x509_parser::oid_registry::OID_SIG_ED25519 {
        return "ed25519".into();
    }
    match spki.parsed() {
        Ok(PublicKey::RSA(rsa)) => format!("rsa-{}", rsa.key_size()),
        Ok(PublicKey::EC(ec)) => match ec.key_size() {
            256 => "ecdsa-p256".into(),
            384 => "ecdsa-p384".into(),
            n => format!("ecdsa-{n}"),
        },
        _ => format!("unknown ({})", spki.algorithm.algorithm),
    }
}

/// Everything `CertInfo` holds, read from a parsed certificate.
pub fn info(der: &[u8], origin: &Path) -> Result<CertInfo> {
    let cert = parse(der, origin)?;
    let mut dns_names = Vec::new();
    let mut ip_addresses = Vec::new();
    let mut extended_key_usage = Vec::new();
    let mut path_len = None;
    for ext in cert.extensions() {
        match ext.parsed_extension() {
            ParsedExtension::SubjectAlternativeName(san) => {
                for name in &san.general_names {
                    match name {
                        GeneralName::DNSName(d) => dns_names.push((*d).to_string()),
                        GeneralName::IPAddress(b) => ip_addresses.push(ip_to_string(b)),
                        _ => {}
                    }
                }
            }
            ParsedExtension::ExtendedKeyUsage(eku) => {
                if eku.server_auth {
                    extended_key_usage.push("serverAuth".to_string());
                }
                if eku.client_auth {
                    extended_key_usage.push("clientAuth".to_string());
                }
                if eku.any {
                    extended_key_usage.push("any".to_string());
                }
            }
            ParsedExtension::BasicConstraints(bc) => path_len = bc.path_len_constraint,
            _ => {}
        }
    }
    Ok(CertInfo {
        subject: cert.subject().to_string(),
        issuer: cert.issuer().to_string(),
        serial: serial_hex(cert.raw_serial()),
        sha256_fingerprint: fingerprint(der),
        not_before: cert.validity().not_before.to_datetime(),
        not_after: cert.validity().not_after.to_datetime(),
        key_type: key_type_name(&cert),
        is_ca: cert.is_ca(),
        path_len,
        dns_names,
        ip_addresses,
        extended_key_usage,
        version: match cert.version() {
            X509Version::V1 => 1,
            X509Version::V2 => 2,
            _ => 3,
        },
    })
}

/// A distinguished name as RFC 4514 text, written the way OpenSSL's `-nameopt RFC2253` writes it
/// (and so the way Mosquitto's `use_subject_as_username` spells a username): last RDN first,
/// `,` between RDNs and `+` inside one, OpenSSL's short attribute names, the RFC's special
/// characters escaped with `\`, control and non-ASCII bytes as `\XX`, and attributes without a
/// short name as `OID=#HEX` of their DER. An ACL written against either reads the same.
pub fn rfc4514(name: &X509Name<'_>) -> String {
    let mut out = String::new();
    let rdns: Vec<_> = name.iter_rdn().collect();
    for (i, rdn) in rdns.iter().rev().enumerate() {
        if i > 0 {
            out.push(',');
        }
        for (j, atv) in rdn.iter().enumerate() {
            if j > 0 {
                out.push('+');
            }
            let oid = atv.attr_type().to_id_string();
            match (short_name(&oid), attribute_text(atv)) {
                (Some(short), Some(text)) => {
                    out.push_str(short);
                    out.push('=');
                    escape_rfc4514(&text, &mut out);
                }
                (short, _) => {
                    use x509_parser::asn1_rs::ToDer;
                    out.push_str(short.unwrap_or(&oid));
                    out.push_str("=#");
                    let der = atv.attr_value().to_der_vec().unwrap_or_default();
                    out.push_str(&hex::encode_upper(der));
                }
            }
        }
    }
    out
}

/// The subject's first CN as text, as Mosquitto's `use_identity_as_username` takes it; `None`
/// when there is none, or it is not a string a username can be (undecodable, or holding NUL).
pub fn first_common_name(name: &X509Name<'_>) -> Option<String> {
    let cn = name.iter_common_name().next()?;
    attribute_text(cn).filter(|t| !t.contains('\0'))
}

/// OpenSSL's short names for the attributes a subject usually holds.
fn short_name(oid: &str) -> Option<&'static str> {
    Some(match oid {
        "2.5.4.3" => "CN",
        "2.5.4.4" => "SN",
        "2.5.4.5" => "serialNumber",
        "2.5.4.6" => "C",
        "2.5.4.7" => "L",
        "2.5.4.8" => "ST",
        "2.5.4.9" => "street",
        "2.5.4.10" => "O",
        "2.5.4.11" => "OU",
        "2.5.4.12" => "title",
        "2.5.4.17" => "postalCode",
        "2.5.4.42" => "GN",
        "2.5.4.43" => "initials",
        "2.5.4.44" => "generationQualifier",
        "2.5.4.46" => "dnQualifier",
        "2.5.4.65" => "pseudonym",
        "0.9.2342.19200300.100.1.1" => "UID",
        "0.9.2342.19200300.100.1.25" => "DC",
        "1.2.840.113549.1.9.1" => "emailAddress",
        _ => return None,
    })
}

/// An attribute's value as text, whichever ASN.1 string type holds it.
fn attribute_text(atv: &x509_parser::x509::AttributeTypeAndValue<'_>) -> Option<String> {
    use x509_parser::asn1_rs::Tag;
    let data = atv.attr_value().data;
    match atv.attr_value().tag() {
        Tag::Utf8String
        | Tag::PrintableString
        | Tag::Ia5String
        | Tag::NumericString
        | Tag::VisibleString => String::from_utf8(data.to_vec()).ok(),
        // Latin-1 in practice, as OpenSSL reads it.
        Tag::T61String => Some(data.iter().map(|&b| char::from(b)).collect()),
        Tag::BmpString if data.len() % 2 == 0 => {
            let units: Vec<u16> = data
                .chunks_exact(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]]))
                .collect();
            String::from_utf16(&units).ok()
        }
        Tag::UniversalString if data.len() % 4 == 0 => data
            .chunks_exact(4)
            .map(|c| char::from_u32(u32::from_be_bytes([c[0], c[1], c[2], c[3]])))
            .collect(),
        _ => None,
    }
}

fn escape_rfc4514(value: &str, out: &mut String) {
    let last = value.char_indices().last().map_or(0, |(i, _)| i);
    for (i, ch) in value.char_indices() {
        let special = matches!(ch, ',' | '+' | '"' | '\\' | '<' | '>' | ';')
            || (i == 0 && (ch == '#' || ch == ' '))
            || (i == last && ch == ' ');
        if special {
            out.push('\\');
            out.push(ch);
        } else if ch.is_ascii_control() || !ch.is_ascii() {
            let mut buf = [0u8; 4];
            for b in ch.encode_utf8(&mut buf).bytes() {
                let _ = write!(out, "\\{b:02X}");
            }
        } else {
            out.push(ch);
        }
    }
}

fn ip_to_string(b: &[u8]) -> String {
    match b.len() {
        4 => std::net::Ipv4Addr::new(b[0], b[1], b[2], b[3]).to_string(),
        16 => {
            let mut a = [0u8; 16];
            a.copy_from_slice(b);
            std::net::Ipv6Addr::from(a).to_string()
        }
        _ => hex::encode(b),
    }
}

pub(crate) fn ser_time<S: serde::Serializer>(
    t: &OffsetDateTime,
    s: S,
) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_str(&fmt_time(*t))
}

/// "WHAT expires on DATE (in N days)" when `at` is within `days` of now (or past); `None`
/// otherwise or when `days` is 0.
/// `what` is only formatted then (a client certificate is asked about at every CONNECT).
pub fn expiring_within(
    what: impl std::fmt::Display,
    at: OffsetDateTime,
    days: u32,
) -> Option<String> {
    let now = time::OffsetDateTime::now_utc();
    if days == 0 || at - now > time::Duration::days(i64::from(days)) {
        return None;
    }
    let when = fmt_time(at);
    Some(if at <= now {
        format!("{what} expired on {when}")
    } else {
        format!(
            "{what} expires on {when} (in {} days)",
            (at - now).whole_days()
        )
    })
}

/// RFC 3339 in UTC without fractions, for humans and JSON alike.
pub fn fmt_time(t: OffsetDateTime) -> String {
    let t = t.replace_nanosecond(0).unwrap_or(t);
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| t.to_string())
}

impl CertInfo {
    /// The human-readable block every command prints (one `label: value` per line).
    pub fn render(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "  subject:     {}", self.subject);
        let _ = writeln!(s, "  issuer:      {}", self.issuer);
        let _ = writeln!(s, "  serial:      {}", self.serial);
        let _ = writeln!(s, "  sha256:      {}", self.sha256_fingerprint);
        let _ = writeln!(
            s,
            "  validity:    {} .. {}",
            fmt_time(self.not_before),
            fmt_time(self.not_after)
        );
        let _ = writeln!(s, "  key:         {}", self.key_type);
        if self.is_ca {
            let pl = self
                .path_len
                .map_or("unlimited".to_string(), |n| n.to_string());
            let _ = writeln!(s, "  ca:          yes (path length {pl})");
        }
        let mut sans: Vec<String> = self.dns_names.iter().map(|d| format!("DNS:{d}")).collect();
        sans.extend(self.ip_addresses.iter().map(|i| format!("IP:{i}")));
        if !sans.is_empty() {
            let _ = writeln!(s, "  names:       {}", sans.join(", "));
        }
        if !self.extended_key_usage.is_empty() {
            let _ = writeln!(s, "  usage:       {}", self.extended_key_usage.join(", "));
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serials_normalise() {
        assert_eq!(serial_hex(&[0, 0, 0x0a, 0xbc]), "abc");
        assert_eq!(serial_hex(&[0]), "0");
        assert_eq!(parse_serial("00:0A:bC").as_deref(), Some("abc"));
        assert_eq!(parse_serial("0x0abc").as_deref(), Some("abc"));
        assert_eq!(parse_serial("serial=0ABC\n").as_deref(), Some("abc"));
        assert_eq!(parse_serial("xyz"), None);
        assert_eq!(parse_serial(""), None);
        assert_eq!(parse_serial(&"a".repeat(41)), None);
    }

    #[test]
    fn fingerprint_is_openssl_style() {
        let f = fingerprint(b"abc");
        assert_eq!(f.len(), 32 * 3 - 1);
        assert!(f.starts_with("BA:78:16:BF"));
    }

    #[test]
    fn names_print_as_openssl_rfc2253() {
        let mut params = rcgen::CertificateParams::default();
        let mut dn = rcgen::DistinguishedName::new();
        dn.push(rcgen::DnType::CountryName, "DE");
        dn.push(rcgen::DnType::OrganizationName, "Acme, Inc.");
        dn.push(rcgen::DnType::OrganizationalUnitName, " lead+trail ");
        dn.push(rcgen::DnType::CommonName, "dévice-1");
        dn.push(
            rcgen::DnType::CustomDnType(vec![1, 3, 6, 1, 4, 1, 99999, 1]),
            "x",
        );
        params.distinguished_name = dn;
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        let parsed = parse(cert.der(), Path::new("t")).unwrap();
        assert_eq!(
            rfc4514(parsed.subject()),
            "1.3.6.1.4.1.99999.1=#0C0178,CN=d\\C3\\A9vice-1,OU=\\ lead\\+trail\\ ,O=Acme\\, Inc.,C=DE"
        );
        assert_eq!(
            first_common_name(parsed.subject()).as_deref(),
            Some("dévice-1")
        );
        let mut params = rcgen::CertificateParams::default();
        params.distinguished_name = rcgen::DistinguishedName::new();
        let cert = params.self_signed(&key).unwrap();
        let parsed = parse(cert.der(), Path::new("t")).unwrap();
        assert_eq!(first_common_name(parsed.subject()), None);
    }

    /// Undo `escape_rfc4514`; `None` if a character that must be escaped appears bare.
    fn unescape(s: &str) -> Option<String> {
        let b = s.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < b.len() {
            match b[i] {
                b'\\' => {
                    // Two hex digits exactly: from_str_radix would also take "+A" as 10.
                    let hex = b
                        .get(i + 1..i + 3)
                        .filter(|h| h.iter().all(u8::is_ascii_hexdigit))
                        .and_then(|h| std::str::from_utf8(h).ok());
                    match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                        Some(byte) => {
                            out.push(byte);
                            i += 3;
                        }
                        None => {
                            out.push(*b.get(i + 1)?);
                            i += 2;
                        }
                    }
                }
                b',' | b'+' | b'"' | b'<' | b'>' | b';' => return None,
                c => {
                    out.push(c);
                    i += 1;
                }
            }
        }
        String::from_utf8(out).ok()
    }

    proptest::proptest! {
        #[test]
        fn escaped_values_are_ascii_and_read_back(v in proptest::prelude::any::<String>()) {
            let mut out = String::new();
            escape_rfc4514(&v, &mut out);
            proptest::prop_assert!(out.is_ascii());
            proptest::prop_assert!(!out.starts_with(' ') && !out.starts_with('#'));
            proptest::prop_assert!(!out.ends_with(' ') || out.ends_with("\\ "));
            proptest::prop_assert_eq!(unescape(&out), Some(v));
        }
    }

    #[test]
    fn garbage_is_not_a_certificate() {
        let e = parse(b"\x30\x03\x02\x01\x01", Path::new("x.crt")).unwrap_err();
        assert!(e.to_string().starts_with("x.crt: not a valid X.509"), "{e}");
    }
}
