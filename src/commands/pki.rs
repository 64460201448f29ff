//! `gen-ca`, `gen-server-cert`, `gen-client-cert`, `gen-crl`: the CLI over `crate::pki`.

use std::net::IpAddr;
use std::path::PathBuf;

use clap::Args;
use serde_json::json;

use crate::cli::EXIT_CODES_HELP;
use crate::exit::{CliError, CmdResult, Outcome};
use crate::pki::ca::{self, CaRequest};
use crate::pki::crl::{self, CrlRequest};
use crate::pki::inspect::{fmt_time, CertInfo};
use crate::pki::issue::{self, LeafKind, LeafRequest};
use crate::pki::keys::KeyType;
use crate::pki::usage::{self, BrokerAddr, ClientCommands, Listener};
use crate::pki::PkiError;

const GEN_CA_HELP: &str = "\
Writes DIR/ca.crt, DIR/ca.key (0600) and DIR/index.json (what the CA issued and revoked).
An intermediate (--intermediate --ca PARENT) also gets DIR/chain.pem (appended to every leaf it
issues) and DIR/root.crt (the trust anchor: point cafile/--cafile at it).
Defaults: ECDSA P-256, 10 years, notBefore back-dated one hour, random 128-bit serial,
keyCertSign+cRLSign, path length 1 for a root (one level of intermediates).

Examples:
  mqsec gen-ca --out ca --cn 'Example Root CA'
  mqsec gen-ca --out ca-devices --intermediate --ca ca --cn 'Example Devices CA'

";

const GEN_SERVER_HELP: &str = "\
Writes DIR/NAME.crt (the certificate, then the issuing intermediates: a full chain a broker can
serve) and DIR/NAME.key (0600). EKU serverAuth; at least one --dns or --ip is required.

Then prints the TLS listener to paste (mosquitto.conf syntax, absolute paths): the same lines
serve `mqsec serve -c FILE` and Mosquitto 2.0; with --json as the `listener` object.

Example:
  mqsec gen-server-cert --ca ca --out broker --name broker --dns broker.example.com \\
      --dns localhost --ip 127.0.0.1

";

const GEN_CLIENT_HELP: &str = "\
Writes DIR/NAME.crt and DIR/NAME.key (0600); with --p12 also DIR/NAME.p12, encrypted with
PBES2 (PBKDF2-SHA256, AES-256) under a password read from the terminal (asked twice) or from one
line of stdin. EKU clientAuth. The CN is NAME: what Mosquitto's use_identity_as_username takes as
the username, so it must not contain +, # or /.
Then prints mosquitto_pub and mosquitto_sub command lines and the paho-mqtt tls_set(...) call for
the new certificate (absolute paths; --broker names the broker); with --json as `connect`.

Example (a hundred devices):
  for i in $(seq -w 1 100); do
    mqsec gen-client-cert --ca ca --out devices --name \"sensor-$i\" --json >/dev/null &
  done; wait
  printf '%s\\n' \"$P12_PASSWORD\" |
    mqsec gen-client-cert --ca ca --out devices --name sensor-101 --p12

";

const GEN_CRL_HELP: &str = "\
Marks certificates revoked in DIR/index.json and writes DIR/crl.pem signed by the CA, with a CRL
number one higher than the last and nextUpdate --crl-days ahead. Run it without --revoke to
refresh the CRL before nextUpdate. Point Mosquitto's crlfile at DIR/crl.pem (Mosquitto rereads it
on SIGHUP when require_certificate is true).

Examples:
  mqsec gen-crl --ca ca --revoke devices/sensor-042.crt
  mqsec gen-crl --ca ca --revoke-serial 3f0c9a...e1

";

#[derive(Debug, Args)]
#[command(after_help = format!("{GEN_CA_HELP}{EXIT_CODES_HELP}"))]
pub struct GenCaArgs {
    /// Directory to write the CA into (created 0700 if missing).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Common name of the CA [default: "mqsec Root CA <random>"].
    #[arg(long, value_name = "NAME")]
    pub cn: Option<String>,
    /// Validity in days.
    #[arg(long, value_name = "N", default_value_t = ca::DEFAULT_CA_DAYS)]
    pub days: u32,
    /// Key type of the CA key.
    #[arg(long, value_enum, value_name = "TYPE", default_value_t = KeyType::EcdsaP256)]
    pub key_type: KeyType,
    /// Make an intermediate CA signed by the CA in --ca.
    #[arg(long, requires = "ca")]
    pub intermediate: bool,
    /// Parent CA directory (with --intermediate).
    #[arg(long, value_name = "PARENT_DIR", requires = "intermediate")]
    pub ca: Option<PathBuf>,
    /// How many intermediate levels may follow below this CA [default: 1 for a root, the
    /// parent's minus one for an intermediate].
    #[arg(long, value_name = "N")]
    pub path_len: Option<u8>,
    /// Replace an existing CA in DIR (its index and CRL are reset).
    #[arg(long)]
    pub force: bool,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
#[command(after_help = format!("{GEN_SERVER_HELP}{EXIT_CODES_HELP}"))]
pub struct GenServerCertArgs {
    /// CA directory (made by gen-ca).
    #[arg(long, value_name = "DIR")]
    pub ca: PathBuf,
    /// Directory to write NAME.crt and NAME.key into (created 0700 if missing).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// File name and common name of the certificate.
    #[arg(long, value_name = "NAME")]
    pub name: String,
    /// DNS name the server is reached by (repeatable).
    #[arg(long, value_name = "HOST")]
    pub dns: Vec<String>,
    /// IP address the server is reached by (repeatable).
    #[arg(long, value_name = "ADDR")]
    pub ip: Vec<IpAddr>,
    /// Port of the TLS listener in the printed broker configuration.
    #[arg(long, value_name = "PORT", default_value_t = usage::MQTTS_PORT,
          value_parser = clap::value_parser!(u16).range(1..))]
    pub port: u16,
    #[command(flatten)]
    pub common: LeafArgs,
}

#[derive(Debug, Args)]
#[command(after_help = format!("{GEN_CLIENT_HELP}{EXIT_CODES_HELP}"))]
pub struct GenClientCertArgs {
    /// CA directory (made by gen-ca).
    #[arg(long, value_name = "DIR")]
    pub ca: PathBuf,
    /// Directory to write CN.crt and CN.key into (created 0700 if missing).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Common name: the device's identity (username with use_identity_as_username) and file name.
    #[arg(long, value_name = "CN")]
    pub name: String,
    /// Also write CN.p12, a password-protected PKCS#12 bundle (password from prompt or stdin).
    #[arg(long)]
    pub p12: bool,
    /// The broker the printed client commands connect to: HOST, HOST:PORT or [IPV6]:PORT (it
    /// must be a name in the broker's certificate) [default: localhost:8883].
    #[arg(long, value_name = "HOST[:PORT]")]
    pub broker: Option<BrokerAddr>,
    #[command(flatten)]
    pub common: LeafArgs,
}

/// Options shared by the two leaf commands.
#[derive(Debug, Args)]
pub struct LeafArgs {
    /// Validity in days (at most 397 without --allow-long-validity).
    #[arg(long, value_name = "N", default_value_t = issue::DEFAULT_LEAF_DAYS)]
    pub days: u32,
    /// Allow --days above 397 (devices that cannot be re-provisioned); never beyond the CA's end.
    #[arg(long)]
    pub allow_long_validity: bool,
    /// Key type of the new key.
    #[arg(long, value_enum, value_name = "TYPE", default_value_t = KeyType::EcdsaP256)]
    pub key_type: KeyType,
    /// Replace existing NAME.crt/NAME.key.
    #[arg(long)]
    pub force: bool,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
#[command(after_help = format!("{GEN_CRL_HELP}{EXIT_CODES_HELP}"))]
pub struct GenCrlArgs {
    /// CA directory (made by gen-ca).
    #[arg(long, value_name = "DIR")]
    pub ca: PathBuf,
    /// Revoke the certificate in this PEM file (repeatable; it must be issued by this CA).
    #[arg(long, value_name = "CERT_FILE")]
    pub revoke: Vec<PathBuf>,
    /// Revoke by serial number in hex, as printed at issuance (repeatable; colons allowed).
    #[arg(long, value_name = "HEX")]
    pub revoke_serial: Vec<String>,
    /// Days until the CRL's nextUpdate (re-run gen-crl before then).
    #[arg(long, value_name = "N", default_value_t = crl::DEFAULT_CRL_DAYS)]
    pub crl_days: u32,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

fn input(e: PkiError) -> CliError {
    CliError::input(e.to_string())
}

fn paths(v: &[PathBuf]) -> Vec<String> {
    v.iter().map(|p| p.display().to_string()).collect()
}

fn print_json(v: serde_json::Value) -> CmdResult {
    let s = serde_json::to_string_pretty(&v)
        .map_err(|e| CliError::input(format!("cannot encode JSON output: {e}")))?;
    println!("{s}");
    Ok(Outcome::Success)
}

fn print_text(title: &str, info: &CertInfo, written: &[PathBuf], anchor: &str, notes: &[String]) {
    println!("{title}");
    print!("{}", info.render());
    for w in written {
        println!("  wrote:       {}", w.display());
    }
    println!("  trust:       {anchor} (cafile for brokers and clients)");
    for n in notes {
        println!("  note:        {n}");
    }
}

pub fn run_gen_ca(args: GenCaArgs) -> CmdResult {
    let req = CaRequest {
        out: args.out,
        cn: args.cn,
        days: args.days,
        key_type: args.key_type,
        path_len: args.path_len,
        parent: if args.intermediate { args.ca } else { None },
        force: args.force,
    };
    let out = ca::gen_ca(&req).map_err(input)?;
    let anchor = out.trust_anchor.display().to_string();
    if args.json {
        return print_json(json!({
            "certificate": out.info,
            "written": paths(&out.written),
            "trust_anchor": anchor,
            "notes": out.notes,
        }));
    }
    let what = if req.parent.is_some() {
        "intermediate CA"
    } else {
        "root CA"
    };
    print_text(
        &format!("Created {what} in {}", req.out.display()),
        &out.info,
        &out.written,
        &anchor,
        &out.notes,
    );
    Ok(Outcome::Success)
}

/// What to print after a leaf is issued, besides the certificate itself.
enum NextSteps {
    /// A server certificate: the TLS listener on this port.
    Listener { port: u16 },
    /// A client certificate: commands that connect to this broker (`None`: the default).
    Client { broker: Option<BrokerAddr> },
}

fn run_leaf(req: LeafRequest, json_out: bool, next: NextSteps) -> CmdResult {
    let prepared = issue::prepare(req.clone()).map_err(input)?;
    let password = if prepared.needs_password() {
        let what = format!("Password for {}.p12", req.name);
        Some(
            crate::prompt::read_secret(&what, true)
                .map_err(|e| CliError::input(format!("--p12: {e}")))?,
        )
    } else {
        None
    };
    let mut out = prepared
        .issue(password.as_ref().map(|p| p.as_str()))
        .map_err(input)?;
    let anchor = out.trust_anchor.display().to_string();
    // The files are written: a path that cannot be printed costs the ready-made lines, not the
    // certificate, so it becomes a note rather than an error.
    let (listener, connect) = match &next {
        NextSteps::Listener { port } => {
            let l = usage::listener(
                *port,
                &out.cert_path,
                &out.key_path,
                &out.trust_anchor,
                &out.ca_dir,
            );
            (l.map_err(|e| out.notes.push(e.to_string())).ok(), None)
        }
        NextSteps::Client { broker } => {
            let broker = broker.clone().unwrap_or_default();
            let c = usage::client_commands(
                &broker,
                &req.name,
                &out.cert_path,
                &out.key_path,
                &out.trust_anchor,
            );
            (None, c.map_err(|e| out.notes.push(e.to_string())).ok())
        }
    };
    if json_out {
        let mut v = json!({
            "certificate": out.info,
            "chain_length": out.chain_len,
            "written": paths(&out.written),
            "trust_anchor": anchor,
            "notes": out.notes,
        });
        match next {
            NextSteps::Listener { .. } => v["listener"] = json!(listener),
            NextSteps::Client { .. } => v["connect"] = json!(connect),
        }
        return print_json(v);
    }
    let what = match req.kind {
        LeafKind::Server { .. } => "server",
        LeafKind::Client => "client",
    };
    print_text(
        &format!("Issued {what} certificate {}", req.name),
        &out.info,
        &out.written,
        &anchor,
        &out.notes,
    );
    if let Some(l) = &listener {
        print!("{}", render_listener(l));
    }
    if let Some(c) = &connect {
        let defaulted = matches!(next, NextSteps::Client { broker: None });
        print!("{}", render_connect(c, defaulted));
    }
    Ok(Outcome::Success)
}

fn indented(text: &str, by: &str) -> String {
    text.lines().map(|l| format!("{by}{l}\n")).collect()
}

fn render_listener(l: &Listener) -> String {
    let mut s = String::from("\n");
    if l.mqsec_serve == l.mosquitto {
        s.push_str(
            "Next, a TLS listener for it: these lines go into the file `mqsec serve -c FILE` reads, \
             and the same lines into mosquitto.conf for Mosquitto 2.0:\n",
        );
        s.push_str(&indented(&l.mqsec_serve, "    "));
    } else {
        s.push_str("Next, a TLS listener for it, in the file `mqsec serve -c FILE` reads:\n");
        s.push_str(&indented(&l.mqsec_serve, "    "));
        s.push_str("and the Mosquitto 2.0 equivalent, in mosquitto.conf:\n");
        s.push_str(&indented(&l.mosquitto, "    "));
    }
    for n in &l.notes {
        s.push_str(&format!("  note: {n}\n"));
    }
    s
}

fn render_connect(c: &ClientCommands, defaulted: bool) -> String {
    let hint = if defaulted {
        " (the default: name yours with --broker HOST[:PORT])"
    } else {
        ""
    };
    let mut s = format!(
        "\nNext, connect with it to {}{hint}:\n",
        BrokerAddr {
            host: c.host.clone(),
            port: c.port
        }
    );
    s.push_str(&format!(
        "    {}\n    {}\n",
        c.mosquitto_sub, c.mosquitto_pub
    ));
    s.push_str("  paho-mqtt (Python), on a client made with paho.mqtt.client.Client(...):\n");
    s.push_str(&format!("    {}\n    {}\n", c.paho_tls_set, c.paho_connect));
    s.push_str(&format!(
        "  note: a broker with use_identity_as_username sees the username {}\n",
        usage::shell_quote(&c.username)
    ));
    s
}

pub fn run_gen_server_cert(args: GenServerCertArgs) -> CmdResult {
    let c = args.common;
    run_leaf(
        LeafRequest {
            ca_dir: args.ca,
            out: args.out,
            name: args.name,
            kind: LeafKind::Server {
                dns: args.dns,
                ips: args.ip,
            },
            days: c.days,
            allow_long_validity: c.allow_long_validity,
            key_type: c.key_type,
            p12: false,
            force: c.force,
        },
        c.json,
        NextSteps::Listener { port: args.port },
    )
}

pub fn run_gen_client_cert(args: GenClientCertArgs) -> CmdResult {
    let c = args.common;
    run_leaf(
        LeafRequest {
            ca_dir: args.ca,
            out: args.out,
            name: args.name,
            kind: LeafKind::Client,
            days: c.days,
            allow_long_validity: c.allow_long_validity,
            key_type: c.key_type,
            p12: args.p12,
            force: c.force,
        },
        c.json,
        NextSteps::Client {
            broker: args.broker,
        },
    )
}

pub fn run_gen_crl(args: GenCrlArgs) -> CmdResult {
    let out = crl::gen_crl(&CrlRequest {
        ca_dir: args.ca,
        revoke_files: args.revoke,
        revoke_serials: args.revoke_serial,
        crl_days: args.crl_days,
    })
    .map_err(input)?;
    if args.json {
        let v = serde_json::to_value(&out)
            .map_err(|e| CliError::input(format!("cannot encode JSON output: {e}")))?;
        return print_json(v);
    }
    println!("Wrote CRL {}", out.path.display());
    println!("  issuer:      {}", out.issuer);
    println!("  crl number:  {}", out.crl_number);
    println!("  sha256:      {}", out.sha256_fingerprint);
    println!(
        "  validity:    {} .. {} (re-run gen-crl before nextUpdate)",
        fmt_time(out.this_update),
        fmt_time(out.next_update)
    );
    for r in &out.newly_revoked {
        println!("  revoked:     {} {}", r.serial, r.subject);
    }
    for r in &out.already_revoked {
        println!(
            "  already:     {} {} (revoked {})",
            r.serial, r.subject, r.revoked_at
        );
    }
    println!(
        "  listed:      {} revoked certificate(s)",
        out.revoked_total
    );
    Ok(Outcome::Success)
}
