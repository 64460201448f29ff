//! Reading secrets: a no-echo prompt (asked twice when confirming) on a TTY, otherwise exactly one
//! line of stdin, so `printf '%s\n' "$PW" | mqsec passwd add f u` works in CI. Never argv.

use std::io::{self, BufRead, IsTerminal, Read};

use zeroize::Zeroizing;

#[derive(Debug, thiserror::Error)]
pub enum PromptError {
    #[error("the two passwords do not match")]
    Mismatch,
    #[error("empty password on stdin (expected one line holding the password)")]
    Empty,
    #[error("the password on stdin is longer than {MAX_SECRET_BYTES} bytes (expected one line holding the password)")]
    TooLong,
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

/// Longest secret read from stdin: far above any password, and it bounds what a stray
/// `mqsec ... < /dev/zero` or a binary file piped in by mistake can make us buffer.
pub const MAX_SECRET_BYTES: usize = 64 * 1024;

/// One line from a reader, without its line ending.
pub fn read_secret_line(r: &mut impl BufRead) -> Result<Zeroizing<String>, PromptError> {
    // Reserved up front so the buffer never reallocates, leaving no unzeroized copy behind.
    // (+2: room for a CRLF after a secret of the maximum length.)
    let mut line = Zeroizing::new(String::with_capacity(MAX_SECRET_BYTES + 2));
    r.take(MAX_SECRET_BYTES as u64 + 2).read_line(&mut line)?;
    let trimmed = line.trim_end_matches(['\n', '\r']);
    if trimmed.len() > MAX_SECRET_BYTES {
        return Err(PromptError::TooLong);
    }
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
    fn an_endless_line_is_refused_not_buffered() {
        let mut r = io::repeat(b'x').take(10 * MAX_SECRET_BYTES as u64);
        let mut r = io::BufReader::new(&mut r);
        assert!(matches!(
            read_secret_line(&mut r),
            Err(PromptError::TooLong)
        ));
        let mut ok = vec![b'y'; MAX_SECRET_BYTES];
        ok.extend_from_slice(b"\r\n");
        let mut r = io::Cursor::new(ok);
        assert_eq!(read_secret_line(&mut r).unwrap().len(), MAX_SECRET_BYTES);
    }

    #[test]
    fn empty_input_is_an_error() {
        let mut r = io::Cursor::new(b"\n".to_vec());
        assert!(matches!(read_secret_line(&mut r), Err(PromptError::Empty)));
    }
}
