//! One file per subcommand: read arguments, call the library, render output, pick the exit code.

use crate::cli::{Cli, Command};
use crate::exit::CmdResult;

pub mod acl_check;
pub mod audit;
pub mod auth_server;
pub mod passwd;
pub mod payload;
pub mod pki;
pub mod serve;
pub mod tokens;

pub fn run(cli: Cli) -> CmdResult {
    match cli.command {
        Command::Passwd(args) => passwd::run(args),
        Command::AclCheck(args) => acl_check::run(args),
        Command::GenCa(a) => pki::run_gen_ca(a),
        Command::GenServerCert(a) => pki::run_gen_server_cert(a),
        Command::GenClientCert(a) => pki::run_gen_client_cert(a),
        Command::GenCrl(a) => pki::run_gen_crl(a),
        Command::Serve(args) => serve::run(args),
        Command::Keygen(a) => payload::keygen(a),
        Command::EncryptPayload(a) => payload::encrypt(a),
        Command::DecryptPayload(a) => payload::decrypt(a),
        Command::SignPayload(a) => payload::sign(a),
        Command::VerifyPayload(a) => payload::verify(a),
        Command::Audit(args) => audit::run(args),
        Command::AuthServer(args) => auth_server::run(args),
        Command::GenToken(a) => tokens::run_gen_token(a),
    }
}
