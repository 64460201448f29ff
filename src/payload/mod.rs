//! The payload envelope: encrypt/decrypt/sign/verify, key files.
