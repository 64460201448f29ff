use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = mqsec::cli::Cli::parse();
    match mqsec::commands::run(cli) {
        Ok(outcome) => outcome.into(),
        Err(err) => {
            eprintln!("mqsec: error: {err}");
            ExitCode::from(err.code)
        }
    }
}
