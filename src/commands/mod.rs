//! One file per subcommand: read arguments, call the library, render output, pick the exit code.

use crate::cli::{Cli, Command};
use crate::exit::{CmdResult, Outcome};

// -- issue 2: passwd --
// -- issue 2: acl-check --
// -- issue 3: pki --
// -- issue 4: serve --
// -- issue 12: payload --
pub mod payload;
// -- issue 13: audit --

pub fn run(cli: Cli) -> CmdResult {
    match cli.command {
        // -- issue 2: passwd --
        // -- issue 2: acl-check --
        // -- issue 3: pki --
        // -- issue 4: serve --
        // -- issue 12: payload --
        Command::Keygen(a) => payload::keygen(a),
        Command::EncryptPayload(a) => payload::encrypt(a),
        Command::DecryptPayload(a) => payload::decrypt(a),
        Command::SignPayload(a) => payload::sign(a),
        Command::VerifyPayload(a) => payload::verify(a),
        // -- issue 13: audit --
        Command::Version => {
            println!("mqsec {}", env!("CARGO_PKG_VERSION"));
            Ok(Outcome::Success)
        }
    }
}
