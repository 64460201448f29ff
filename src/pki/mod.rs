//! A small PKI: CAs, server and client certificates, revocation lists.
