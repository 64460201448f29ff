//! Reading secrets: a no-echo prompt (asked twice when confirming) on a TTY, otherwise exactly one
//! line of stdin, so `printf '%s\n' "$PW" | mqsec passwd add f u` works in CI. Never argv.

use std::io::{self, BufRead, IsTerminal};

use zeroize::Zeroizing;

#[derive(Debug, thiserror::Error)]
pub enum PromptError {
    #[error("the two passwords do not match")]
    Mismatch,
    #[error("empty password on stdin (expected one line holding the password)")]
    Empty,
    #[error("cannot read the password: {0}")]
    Io(#[from] io::Error),
}

/// Read a secret. `what` names it in the prompt ("Password for alice"). With `confirm`, a TTY user
/// types it twice.
pub fn read_secret(what: &str, confirm: bool) -> Result<Zeroizing<String>, PromptError> {
    if io::stdin().is_terminal() {
        let first = Zeroizing::new(rpassword::prompt_password(format!("{what}: "))?);
        if confirm {
            let second = Zeroizing::new(rpassword::prompt_password(format!("{what} (again): "))?);
            if *first != *second {
                return Err(PromptError::Mismatch);
            }
        }
        if first.is_empty() {
            return Err(PromptError::Empty);
        }
        Ok(first)
    } else {
        read_secret_line(&mut io::stdin().lock())
    }
}

/// One line from a reader, without its line ending.
pub fn read_secret_line(r: &mut impl BufRead) -> Result<Zeroizing<String>, PromptError> {
    let mut line = Zeroizing::new(String::new());
    r.read_line(&mut line)?;
    let trimmed = line.trim_end_matches(['\n', '\r']);
    if trimmed.is_empty() {
        return Err(PromptError::Empty);
    }
    Ok(Zeroizing::new(trimmed.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_one_line_without_newline() {
        let mut r = io::Cursor::new(b"s3cret pass\r\nsecond line\n".to_vec());
        assert_eq!(read_secret_line(&mut r).unwrap().as_str(), "s3cret pass");
    }

    #[test]
    fn empty_input_is_an_error() {
        let mut r = io::Cursor::new(b"\n".to_vec());
        assert!(matches!(read_secret_line(&mut r), Err(PromptError::Empty)));
    }
}
