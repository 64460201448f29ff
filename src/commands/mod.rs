//! One file per subcommand: read arguments, call the library, render output, pick the exit code.

use crate::cli::{Cli, Command};
use crate::exit::CmdResult;

// -- issue 2: passwd --
pub mod passwd;
// -- issue 2: acl-check --
// -- issue 3: pki --
pub mod pki;
// -- issue 4: serve --
// -- issue 12: payload --
// -- issue 13: audit --

pub fn run(cli: Cli) -> CmdResult {
    match cli.command {
        // -- issue 2: passwd --
        Command::Passwd(args) => passwd::run(args),
        // -- issue 2: acl-check --
        // -- issue 3: pki --
        Command::GenCa(a) => pki::run_gen_ca(a),
        Command::GenServerCert(a) => pki::run_gen_server_cert(a),
        Command::GenClientCert(a) => pki::run_gen_client_cert(a),
        Command::GenCrl(a) => pki::run_gen_crl(a),
        // -- issue 4: serve --
        // -- issue 12: payload --
        // -- issue 13: audit --
    }
}
