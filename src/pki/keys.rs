//! Key types, generation and loading of private keys.

use std::fmt;
use std::path::Path;

use rcgen::{KeyPair, PublicKeyData, RsaKeySize, SignatureAlgorithm};
use zeroize::Zeroizing;

use super::{PkiError, Result};

/// The key types mqsec generates. ECDSA P-256 is the default: small, fast, and supported by
/// every TLS stack an MQTT device is likely to run (mbedTLS, wolfSSL, OpenSSL, rustls).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum KeyType {
    #[default]
    #[value(name = "ecdsa-p256")]
    EcdsaP256,
    #[value(name = "ecdsa-p384")]
    EcdsaP384,
    #[value(name = "ed25519")]
    Ed25519,
    #[value(name = "rsa-2048")]
    Rsa2048,
    #[value(name = "rsa-3072")]
    Rsa3072,
    #[value(name = "rsa-4096")]
    Rsa4096,
}

impl KeyType {
    pub const ALL: [KeyType; 6] = [
        KeyType::EcdsaP256,
        KeyType::EcdsaP384,
        KeyType::Ed25519,
        KeyType::Rsa2048,
        KeyType::Rsa3072,
        KeyType::Rsa4096,
    ];

    pub fn name(self) -> &'static str {
        match self {
            KeyType::EcdsaP256 => "ecdsa-p256",
            KeyType::EcdsaP384 => "ecdsa-p384",
            KeyType::Ed25519 => "ed25519",
            KeyType::Rsa2048 => "rsa-2048",
            KeyType::Rsa3072 => "rsa-3072",
            KeyType::Rsa4096 => "rsa-4096",
        }
    }

    pub fn is_rsa(self) -> bool {
        matches!(self, KeyType::Rsa2048 | KeyType::Rsa3072 | KeyType::Rsa4096)
    }

    fn algorithm(self) -> &'static SignatureAlgorithm {
        match self {
            KeyType::EcdsaP256 => &rcgen::PKCS_ECDSA_P256_SHA256,
            KeyType::EcdsaP384 => &rcgen::PKCS_ECDSA_P384_SHA384,
            KeyType::Ed25519 => &rcgen::PKCS_ED25519,
            KeyType::Rsa2048 | KeyType::Rsa3072 | KeyType::Rsa4096 => &rcgen::PKCS_RSA_SHA256,
        }
    }

    /// Generate a fresh key pair of this type.
    pub fn generate(self) -> Result<SecretKey> {
        let kp = match self {
            KeyType::Rsa2048 => KeyPair::generate_rsa_for(self.algorithm(), RsaKeySize::_2048),
            KeyType::Rsa3072 => KeyPair::generate_rsa_for(self.algorithm(), RsaKeySize::_3072),
            KeyType::Rsa4096 => KeyPair::generate_rsa_for(self.algorithm(), RsaKeySize::_4096),
            KeyType::Ed25519 => {
                let v2 = SecretKey(KeyPair::generate_for(self.algorithm())?);
                return ed25519_as_pkcs8_v1(&v2);
            }
            _ => KeyPair::generate_for(self.algorithm()),
        };
        Ok(SecretKey(kp?))
    }
}

/// aws-lc writes Ed25519 keys as PKCS#8 v2 (RFC 5958, with the public key), which OpenSSL 3.0
/// (and so Mosquitto) cannot read; the v1 form of RFC 8410 (seed only) is read by everyone.
fn ed25519_as_pkcs8_v1(key: &KeyPair) -> Result<SecretKey> {
    // SEQUENCE { INTEGER v, SEQUENCE { OID 1.3.101.112 }, OCTET STRING { OCTET STRING(32) seed } ...
    const HEAD_V2: [u8; 16] = [
        0x30, 0x51, 0x02, 0x01, 0x01, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04,
        0x20,
    ];
    const HEAD_V1: [u8; 16] = [
        0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04,
        0x20,
    ];
    let der = key.serialized_der();
    if der.len() < 48 || der[..16] != HEAD_V2 {
        // Already v1 (or a future encoding rcgen reads back itself).
        return Ok(SecretKey(KeyPair::try_from(der)?));
    }
    let mut v1 = Zeroizing::new(Vec::with_capacity(48));
    v1.extend_from_slice(&HEAD_V1);
    v1.extend_from_slice(&der[16..48]);
    let kp = KeyPair::try_from(v1.as_slice())?;
    if kp.der_bytes() != key.der_bytes() {
        return Err(PkiError::Generate(rcgen::Error::CouldNotParseKeyPair));
    }
    Ok(SecretKey(kp))
}

impl fmt::Display for KeyType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A private key that is wiped from memory when dropped (rcgen's `KeyPair` keeps its PKCS#8
/// bytes in a plain `Vec`).
pub struct SecretKey(KeyPair);

impl SecretKey {
    pub fn new(kp: KeyPair) -> SecretKey {
        SecretKey(kp)
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretKey").finish_non_exhaustive()
    }
}

impl std::ops::Deref for SecretKey {
    type Target = KeyPair;
    fn deref(&self) -> &KeyPair {
        &self.0
    }
}

impl Drop for SecretKey {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.0);
    }
}

/// The PKCS#8 PEM of a key, held in memory that is wiped on drop.
pub fn key_pem(key: &KeyPair) -> Zeroizing<String> {
    Zeroizing::new(key.serialize_pem())
}

/// Load a private key from a PEM file (PKCS#8, SEC1 or PKCS#1). The error names the file and
/// never echoes its content.
pub fn load_key(path: &Path) -> Result<SecretKey> {
    let bytes = Zeroizing::new(super::read_file(path)?);
    let text = std::str::from_utf8(&bytes)
        .map_err(|_| PkiError::file(path, "not a PEM private key (not UTF-8 text)"))?;
    if !text.contains("PRIVATE KEY-----") {
        return Err(PkiError::file(
            path,
            "no PEM \"PRIVATE KEY\" block: not a private key file",
        ));
    }
    KeyPair::from_pem(text).map(SecretKey).map_err(|_| {
        PkiError::file(
            path,
            "corrupt or unsupported private key (expected ECDSA P-256/P-384, Ed25519 or RSA in PEM)",
        )
    })
}

/// Whether `key` is the private half of the public key `spki_key_bits` (the BIT STRING content of
/// a certificate's subjectPublicKeyInfo).
pub fn key_matches(key: &KeyPair, spki_key_bits: &[u8]) -> bool {
    key.der_bytes() == spki_key_bits
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_key_types_generate_and_reload() {
        // RSA-4096 generation is slow; the integration test covers it once.
        for kt in [
            KeyType::EcdsaP256,
            KeyType::EcdsaP384,
            KeyType::Ed25519,
            KeyType::Rsa2048,
        ] {
            let kp = kt.generate().unwrap();
            let dir = tempfile::tempdir().unwrap();
            let p = dir.path().join("k.pem");
            std::fs::write(&p, key_pem(&kp).as_bytes()).unwrap();
            let back = load_key(&p).unwrap();
            assert_eq!(back.der_bytes(), kp.der_bytes(), "{kt}");
            assert_eq!(back.algorithm(), kp.algorithm(), "{kt}");
        }
    }

    #[test]
    fn corrupt_key_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("bad.key");
        std::fs::write(
            &p,
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        )
        .unwrap();
        let e = load_key(&p).unwrap_err().to_string();
        assert!(e.contains("bad.key") && e.contains("corrupt"), "{e}");
        std::fs::write(&p, "hello").unwrap();
        let e = load_key(&p).unwrap_err().to_string();
        assert!(e.contains("not a private key"), "{e}");
    }
}
