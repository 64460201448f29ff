//! The clap tree: the one source of `--help`, shell completions and man pages.
//!
//! Each subcommand's arguments live beside its implementation in `commands/<name>.rs`; this file
//! only assembles them, so the tree stays in one place.

use clap::{Parser, Subcommand};

/// Shown under every `--help` and in every man page: scripts depend on these codes.
pub const EXIT_CODES_HELP: &str = "\
Exit codes (the same for every subcommand):
  0  success / allowed / match
  1  a negative answer: denied, password mismatch, lint problems, audit findings at or above --fail-on
  2  usage or input error (bad arguments, unreadable or malformed files)";

#[derive(Debug, Parser)]
#[command(
    name = "mqsec",
    version,
    about = "A secure MQTT broker and the tools to run one",
    long_about = "mqsec runs a secure MQTT broker and manages every security artefact around it: \
                  password files, ACLs, certificates, payload keys and audits.",
    after_help = EXIT_CODES_HELP,
    propagate_version = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Manage password files: add, delete, list, verify, check, import.
    Passwd(crate::commands::passwd::PasswdArgs),
    AclCheck(crate::commands::acl_check::AclCheckArgs),
    /// Create a root or intermediate certificate authority.
    GenCa(crate::commands::pki::GenCaArgs),
    /// Issue a TLS server certificate (for a broker) signed by a CA.
    GenServerCert(crate::commands::pki::GenServerCertArgs),
    /// Issue a TLS client certificate (for a device) signed by a CA.
    GenClientCert(crate::commands::pki::GenClientCertArgs),
    /// Revoke certificates and write the CA's CRL (Mosquitto's crlfile).
    GenCrl(crate::commands::pki::GenCrlArgs),
    /// Mint an access token (JWT) for a broker with token_key_file or token_jwks_file.
    GenToken(crate::commands::tokens::GenTokenArgs),
    /// Run the MQTT broker (MQTT 3.1, 3.1.1 and 5.0).
    Serve(crate::commands::serve::ServeArgs),
    /// Create a payload key file, or add a key to one (rotation).
    Keygen(crate::commands::payload::KeygenArgs),
    /// Encrypt a payload into an envelope (XChaCha20-Poly1305), optionally bound to a topic.
    EncryptPayload(crate::commands::payload::EncryptArgs),
    /// Decrypt and authenticate an envelope; nothing is written unless it verifies.
    DecryptPayload(crate::commands::payload::DecryptArgs),
    /// Sign a payload with HMAC-SHA256 (integrity only: the payload stays readable).
    SignPayload(crate::commands::payload::SignArgs),
    /// Verify a signed envelope and write its payload; nothing is written unless it verifies.
    VerifyPayload(crate::commands::payload::VerifyArgs),
    /// Audit a broker: TLS, certificate and MQTT access control (table, JSON or SARIF).
    #[command(long_about = crate::audit::checks::help_text())]
    Audit(crate::commands::audit::AuditArgs),
    /// Answer RabbitMQ, EMQX and VerneMQ authentication and ACL questions from mqsec's files.
    AuthServer(crate::commands::auth_server::AuthServerArgs),
}
