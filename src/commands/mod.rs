//! One file per subcommand: read arguments, call the library, render output, pick the exit code.

use crate::cli::{Cli, Command};
use crate::exit::{CmdResult, Outcome};

// -- issue 2: passwd --
pub mod passwd;
// -- issue 2: acl-check --
// -- issue 3: pki --
// -- issue 4: serve --
// -- issue 12: payload --
// -- issue 13: audit --
pub mod audit;

pub fn run(cli: Cli) -> CmdResult {
    match cli.command {
        // -- issue 2: passwd --
        Command::Passwd(args) => passwd::run(args),
        // -- issue 2: acl-check --
        // -- issue 3: pki --
        // -- issue 4: serve --
        // -- issue 12: payload --
        // -- issue 13: audit --
        Command::Audit(args) => audit::run(args),
        Command::Version => {
            println!("mqsec {}", env!("CARGO_PKG_VERSION"));
            Ok(Outcome::Success)
        }
    }
}
