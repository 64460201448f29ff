//! Generated documentation: shell completions and man pages, rendered from the clap tree.
//!
//! `cargo run --example gen-docs` writes them; `tests/generated_docs.rs` fails when the committed
//! files differ from what the current CLI renders, so help text, completions and man pages never drift.

use std::path::PathBuf;

use clap::CommandFactory;
use clap_complete::Shell;

use crate::cli::Cli;

/// Every generated file, as (path relative to the repository root, contents).
pub fn render_all() -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    for shell in [
        Shell::Bash,
        Shell::Zsh,
        Shell::Fish,
        Shell::Elvish,
        Shell::PowerShell,
    ] {
        let mut cmd = Cli::command();
        let mut buf = Vec::new();
        clap_complete::generate(shell, &mut cmd, "mqsec", &mut buf);
        let name = match shell {
            Shell::Bash => "mqsec.bash".to_string(),
            Shell::Zsh => "_mqsec".to_string(),
            Shell::Fish => "mqsec.fish".to_string(),
            Shell::Elvish => "mqsec.elv".to_string(),
            Shell::PowerShell => "_mqsec.ps1".to_string(),
            other => format!("mqsec.{other}"),
        };
        out.push((PathBuf::from("completions").join(name), buf));
    }
    let mut root = Cli::command();
    root.build();
    render_man(&root, "mqsec", &mut out);
    out
}

/// One page for the root and one per (nested) subcommand: `mqsec-passwd-add.1` and so on.
fn render_man(cmd: &clap::Command, page_name: &str, out: &mut Vec<(PathBuf, Vec<u8>)>) {
    let named = cmd.clone().name(page_name.to_string());
    let mut buf = Vec::new();
    // Writing into a Vec cannot fail.
    let _ = clap_mangen::Man::new(named)
        .date("")
        .source(format!("mqsec {}", env!("CARGO_PKG_VERSION")))
        .render(&mut buf);
    out.push((PathBuf::from("man").join(format!("{page_name}.1")), buf));
    for sub in cmd.get_subcommands() {
        if sub.get_name() == "help" {
            continue;
        }
        render_man(sub, &format!("{page_name}-{}", sub.get_name()), out);
    }
}
