//! One file per subcommand: read arguments, call the library, render output, pick the exit code.

use crate::cli::{Cli, Command};
use crate::exit::CmdResult;

// -- issue 2: passwd --
pub mod passwd;
// -- issue 2: acl-check --
pub mod acl_check;
// -- issue 3: pki --
pub mod pki;
// -- issue 4: serve --
pub mod serve;
// -- issue 12: payload --
pub mod payload;
// -- issue 13: audit --
pub mod audit;

pub fn run(cli: Cli) -> CmdResult {
    match cli.command {
        // -- issue 2: passwd --
        Command::Passwd(args) => passwd::run(args),
        // -- issue 2: acl-check --
        Command::AclCheck(args) => acl_check::run(args),
        // -- issue 3: pki --
        Command::GenCa(a) => pki::run_gen_ca(a),
        Command::GenServerCert(a) => pki::run_gen_server_cert(a),
        Command::GenClientCert(a) => pki::run_gen_client_cert(a),
        Command::GenCrl(a) => pki::run_gen_crl(a),
        // -- issue 4: serve --
        Command::Serve(args) => serve::run(args),
        // -- issue 12: payload --
        Command::Keygen(a) => payload::keygen(a),
        Command::EncryptPayload(a) => payload::encrypt(a),
        Command::DecryptPayload(a) => payload::decrypt(a),
        Command::SignPayload(a) => payload::sign(a),
        Command::VerifyPayload(a) => payload::verify(a),
        // -- issue 13: audit --
        Command::Audit(args) => audit::run(args),
    }
}
