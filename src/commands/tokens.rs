//! `mqsec gen-token`: mint an access token (JWT) for a device.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use jsonwebtoken::Algorithm;
use zeroize::Zeroizing;

use crate::exit::{CliError, CmdResult, Outcome};
use crate::security::tokens::{mint, MintRequest};

const LONG_ABOUT: &str = "\
Print an access token (a JWT, RFC 7519) that a broker with token_key_file or token_jwks_file \
accepts in the MQTT password field (or, in MQTT 5, as the authentication data of method JWT).

The key never comes from the command line: HS256/HS384/HS512 read a shared secret from --key \
(the file's bytes, surrounding whitespace trimmed, at least 32 bytes: the broker's \
token_key_file); RS*/PS* read an RSA private key PEM, ES256/ES384 an EC private key PEM \
(PKCS#8, as gen-client-cert writes CN.key with --key-type ecdsa-p256), EdDSA an Ed25519 one. \
The broker then needs only the public key (openssl pkey -in KEY -pubout) or the certificate.

Claims: sub (or --username-claim) = --sub, iat = now, exp = now + --ttl, aud and iss when given, \
acl = {\"pub\": [--acl-pub...], \"sub\": [--acl-sub...]} (filters with %u = the username, %c = \
the client id) and roles = [--roles...] (roles of the broker's ACL file). A token with acl or roles \
may do only what they (and the ACL file) grant.";

fn after_help() -> String {
    format!(
        "\
Examples:
  $ head -c 48 /dev/urandom | base64 > jwt.secret && chmod 600 jwt.secret
  $ mqsec gen-token --key jwt.secret --alg HS256 --sub dev-1 --aud mqtt \\
      --acl-pub 'devices/%u/up/#' --acl-sub 'devices/%u/down/#' --ttl 1h
  eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9.eyJ...
  $ mosquitto_pub -u dev-1 -P \"$(mqsec gen-token ...)\" -t devices/dev-1/up/t -m 21.5

  $ mqsec gen-token --key pki/clients/dev-1.key --alg ES256 --sub dev-1 --roles sensors --ttl 15m

{}",
        crate::cli::EXIT_CODES_HELP
    )
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
#[allow(clippy::upper_case_acronyms)]
pub enum AlgArg {
    #[value(name = "HS256")]
    HS256,
    #[value(name = "HS384")]
    HS384,
    #[value(name = "HS512")]
    HS512,
    #[value(name = "RS256")]
    RS256,
    #[value(name = "RS384")]
    RS384,
    #[value(name = "RS512")]
    RS512,
    #[value(name = "PS256")]
    PS256,
    #[value(name = "PS384")]
    PS384,
    #[value(name = "PS512")]
    PS512,
    #[value(name = "ES256")]
    ES256,
    #[value(name = "ES384")]
    ES384,
    #[value(name = "EdDSA")]
    EdDSA,
}

impl From<AlgArg> for Algorithm {
    fn from(a: AlgArg) -> Algorithm {
        match a {
            AlgArg::HS256 => Algorithm::HS256,
            AlgArg::HS384 => Algorithm::HS384,
            AlgArg::HS512 => Algorithm::HS512,
            AlgArg::RS256 => Algorithm::RS256,
            AlgArg::RS384 => Algorithm::RS384,
            AlgArg::RS512 => Algorithm::RS512,
            AlgArg::PS256 => Algorithm::PS256,
            AlgArg::PS384 => Algorithm::PS384,
            AlgArg::PS512 => Algorithm::PS512,
            AlgArg::ES256 => Algorithm::ES256,
            AlgArg::ES384 => Algorithm::ES384,
            AlgArg::EdDSA => Algorithm::EdDSA,
        }
    }
}

/// Mint an access token (JWT).
#[derive(Debug, Args)]
#[command(long_about = LONG_ABOUT, after_help = after_help())]
pub struct GenTokenArgs {
    /// The signing key: a secret file (HS*) or a private key PEM (RS*, PS*, ES*, EdDSA)
    #[arg(long, value_name = "FILE")]
    pub key: PathBuf,
    /// Signature algorithm
    #[arg(long, value_enum, value_name = "ALG")]
    pub alg: AlgArg,
    /// The username the token names (its sub claim, or --username-claim)
    #[arg(long, value_name = "NAME")]
    pub sub: String,
    /// Audience (aud): the broker's token_audience
    #[arg(long, value_name = "AUDIENCE")]
    pub aud: Option<String>,
    /// Issuer (iss): the broker's token_issuer
    #[arg(long, value_name = "ISSUER")]
    pub iss: Option<String>,
    /// A topic filter the client may publish to (repeatable; %u and %c allowed)
    #[arg(long = "acl-pub", value_name = "FILTER")]
    pub acl_pub: Vec<String>,
    /// A topic filter the client may subscribe to and receive from (repeatable)
    #[arg(long = "acl-sub", value_name = "FILTER")]
    pub acl_sub: Vec<String>,
    /// Roles of the broker's ACL file (comma-separated or repeated)
    #[arg(long, value_name = "ROLE,...", value_delimiter = ',')]
    pub roles: Vec<String>,
    /// Lifetime: 30s, 15m, 1h, 1d (at most 366d)
    #[arg(long, value_name = "DURATION", value_parser = crate::commands::payload::parse_duration)]
    pub ttl: Duration,
    /// Key id (kid) for a broker with token_jwks_file
    #[arg(long, value_name = "KID")]
    pub kid: Option<String>,
    /// The claim that carries --sub (the broker's token_username_claim)
    #[arg(long, value_name = "CLAIM", default_value = "sub")]
    pub username_claim: String,
}

/// A token that outlives a year is not short-lived any more.
const MAX_TTL: Duration = Duration::from_secs(366 * 86_400);

pub fn run_gen_token(a: GenTokenArgs) -> CmdResult {
    if a.ttl > MAX_TTL {
        return Err(CliError::input("--ttl: at most 366d"));
    }
    if a.sub.is_empty() {
        return Err(CliError::input("--sub: the username must not be empty"));
    }
    if ["exp", "iat", "nbf", "aud", "iss", "acl", "roles"].contains(&a.username_claim.as_str()) {
        return Err(CliError::input(format!(
            "--username-claim: {} is a claim of its own",
            a.username_claim
        )));
    }
    let name = a.key.display();
    let key =
        Zeroizing::new(std::fs::read(&a.key).map_err(|e| CliError::input(format!("{name}: {e}")))?);
    let req = MintRequest {
        subject: a.sub,
        audience: a.aud,
        issuer: a.iss,
        publish: a.acl_pub,
        subscribe: a.acl_sub,
        roles: a.roles,
        ttl_secs: a.ttl.as_secs(),
        kid: a.kid,
        username_claim: a.username_claim,
    };
    let token =
        mint(a.alg.into(), &key, &req).map_err(|e| CliError::input(format!("{name}: {e}")))?;
    println!("{token}");
    Ok(Outcome::Success)
}
