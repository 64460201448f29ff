//! The `mqsec` binary: parse the command line, run the chosen subcommand, map the outcome to an
//! exit code. Everything else is the library.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::error::ErrorKind;
use clap::Parser;

/// jemalloc rather than glibc's malloc: see Cargo.toml (memory per idle connection is a goal).
#[cfg(unix)]
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    let cli = match mqsec::cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => return usage_error(err),
    };
    match mqsec::commands::run(cli) {
        Ok(outcome) => outcome.into(),
        Err(err) => {
            eprintln!("mqsec: error: {err}");
            ExitCode::from(err.code)
        }
    }
}

/// Help and version go to stdout as clap renders them; real usage errors become one line (clap's
/// own rendering spans several, which breaks `2>&1 | head -1` habits and log parsers) with exit 2.
fn usage_error(err: clap::Error) -> ExitCode {
    match err.kind() {
        ErrorKind::DisplayHelp
        | ErrorKind::DisplayVersion
        | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = err.print();
            if err.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
                ExitCode::from(mqsec::exit::USAGE_OR_INPUT_ERROR)
            } else {
                ExitCode::SUCCESS
            }
        }
        _ => {
            let rendered = err.render().to_string();
            let mut lines = rendered.lines().map(str::trim).skip_while(|l| l.is_empty());
            let mut first = lines
                .next()
                .unwrap_or("invalid arguments")
                .trim_start_matches("error: ")
                .to_string();
            // "the following required arguments were not provided:" lists them on the lines
            // below; without them the one line would not say what is missing.
            if first.ends_with(':') {
                let listed: Vec<&str> = lines.take_while(|l| !l.is_empty()).collect();
                if !listed.is_empty() {
                    first = format!("{first} {}", listed.join(", "));
                }
            }
            let tip = rendered
                .lines()
                .map(str::trim)
                .find(|l| l.starts_with("tip:") || l.starts_with("[possible values"))
                .map(|t| format!(" ({})", t.trim_matches(['[', ']'])))
                .unwrap_or_default();
            eprintln!("mqsec: error: {first}{tip} (see --help)");
            ExitCode::from(mqsec::exit::USAGE_OR_INPUT_ERROR)
        }
    }
}
