//! Exit codes shared by every subcommand, and the one error type commands hand to `main`.
//!
//! The contract (documented in README and man pages): 0 success / allowed / match; 1 a negative
//! answer (denied, mismatch, findings at or above the threshold); 2 usage or input error.

use std::fmt;
use std::process::ExitCode;

/// The outcome of a command that did not fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// 0: success, allowed, match.
    Success,
    /// 1: a negative answer (denied, mismatch, findings above the threshold).
    Negative,
}

impl Outcome {
    pub fn code(self) -> u8 {
        match self {
            Outcome::Success => 0,
            Outcome::Negative => 1,
        }
    }
}

impl From<Outcome> for ExitCode {
    fn from(o: Outcome) -> Self {
        ExitCode::from(o.code())
    }
}

/// Exit code for usage and input errors (also what clap uses for bad arguments).
pub const USAGE_OR_INPUT_ERROR: u8 = 2;

/// A command failure: one line for stderr, and the exit code (2 unless documented otherwise).
#[derive(Debug)]
pub struct CliError {
    pub message: String,
    pub code: u8,
}

impl CliError {
    /// An input or usage error (exit 2). The message must be one line naming file/line/field.
    pub fn input(message: impl Into<String>) -> Self {
        CliError {
            message: one_line(message.into()),
            code: USAGE_OR_INPUT_ERROR,
        }
    }

    /// A failure with a documented exit code other than 2.
    pub fn with_code(message: impl Into<String>, code: u8) -> Self {
        CliError {
            message: one_line(message.into()),
            code,
        }
    }
}

/// Errors are one line: a multi-line message from a lower layer would break log parsers and
/// `2>&1 | head -1` habits in scripts.
fn one_line(s: String) -> String {
    if s.contains('\n') {
        s.split('\n')
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join("; ")
    } else {
        s
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for CliError {}

/// What every `commands::*::run` returns.
pub type CmdResult = Result<Outcome, CliError>;
