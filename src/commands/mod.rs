//! One file per subcommand: read arguments, call the library, render output, pick the exit code.

use crate::cli::{Cli, Command};
use crate::exit::{CmdResult, Outcome};

// -- issue 2: passwd --
// -- issue 2: acl-check --
pub mod acl_check;
// -- issue 3: pki --
// -- issue 4: serve --
// -- issue 12: payload --
// -- issue 13: audit --

pub fn run(cli: Cli) -> CmdResult {
    match cli.command {
        // -- issue 2: passwd --
        // -- issue 2: acl-check --
        Command::AclCheck(args) => acl_check::run(args),
        // -- issue 3: pki --
        // -- issue 4: serve --
        // -- issue 12: payload --
        // -- issue 13: audit --
        Command::Version => {
            println!("mqsec {}", env!("CARGO_PKG_VERSION"));
            Ok(Outcome::Success)
        }
    }
}
