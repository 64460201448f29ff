//! A small PKI: CAs, server and client certificates, revocation lists.
//!
//! Everything here is driven by `mqsec gen-ca`, `gen-server-cert`, `gen-client-cert` and `gen-crl`,
//! and [`load`] is what the broker uses to read the same files back for rustls.
//!
//! rcgen's defaults are unsafe for a CA tool (serial derived from the public key, validity
//! 1975-4096, no key usages), so every certificate built here sets serial, validity, key usages,
//! EKUs and key identifiers explicitly.

use std::io;
use std::path::{Path, PathBuf};

pub mod ca;
pub mod crl;
pub mod index;
pub mod inspect;
pub mod issue;
pub mod keys;
pub mod load;
pub mod usage;

/// Why a PKI operation failed. Every variant names the file or the field it is about, so a
/// command can print it as one line.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    /// A file exists and is unusable (unreadable, corrupt, wrong kind, expired...).
    #[error("{}: {what}", path.display())]
    File { path: PathBuf, what: String },
    /// An argument is unusable.
    #[error("{field}: {what}")]
    Field { field: &'static str, what: String },
    /// The output exists and `--force` was not given.
    #[error("{}: already exists (use --force to replace it)", path.display())]
    Exists { path: PathBuf },
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    /// rcgen refused to build or sign something (should not happen with validated input).
    #[error("certificate generation failed: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("PKCS#12 bundle: {0}")]
    Pkcs12(String),
}

pub type Result<T> = std::result::Result<T, PkiError>;

impl PkiError {
    pub(crate) fn file(path: &Path, what: impl Into<String>) -> PkiError {
        PkiError::File {
            path: path.to_path_buf(),
            what: what.into(),
        }
    }

    pub(crate) fn field(field: &'static str, what: impl Into<String>) -> PkiError {
        PkiError::Field {
            field,
            what: what.into(),
        }
    }

    pub(crate) fn io(path: &Path, source: io::Error) -> PkiError {
        PkiError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

impl From<crate::fsutil::PathError> for PkiError {
    fn from(e: crate::fsutil::PathError) -> PkiError {
        PkiError::Io {
            path: e.path,
            source: e.source,
        }
    }
}

/// Read a file, naming it in the error.
pub(crate) fn read_file(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| PkiError::io(path, e))
}
