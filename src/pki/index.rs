//! The CA index: what a CA issued and revoked, and the last CRL number, in `DIR/index.json`.
//!
//! Every read-modify-write holds [`crate::fsutil::FileLock`] on it, so a shell loop running a
//! hundred `gen-client-cert` in parallel loses no entry, and each write is atomic.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::inspect::{fmt_time, CertInfo};
use super::{PkiError, Result};
use crate::fsutil::{self, FileLock};

pub const INDEX_FILE: &str = "index.json";
const FORMAT_VERSION: u32 = 1;

/// What kind of certificate an entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    Server,
    Client,
    IntermediateCa,
}

/// One issued certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Lower-case hex, no leading zeros.
    pub serial: String,
    pub subject: String,
    pub kind: Kind,
    /// RFC 3339, UTC.
    pub not_after: String,
    pub sha256_fingerprint: String,
    pub issued_at: String,
    #[serde(default)]
    pub revoked: bool,
    /// RFC 3339, UTC; set when `revoked`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<String>,
}

impl Entry {
    pub fn new(info: &CertInfo, kind: Kind, now: OffsetDateTime) -> Entry {
        Entry {
            serial: info.serial.clone(),
            subject: info.subject.clone(),
            kind,
            not_after: fmt_time(info.not_after),
            sha256_fingerprint: info.sha256_fingerprint.clone(),
            issued_at: fmt_time(now),
            revoked: false,
            revoked_at: None,
        }
    }
}

/// The whole index file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Index {
    pub version: u32,
    /// Number of the last CRL written (0: none yet). Each `gen-crl` writes this plus one.
    pub crl_number: u64,
    pub entries: Vec<Entry>,
}

impl Default for Index {
    fn default() -> Self {
        Index {
            version: FORMAT_VERSION,
            crl_number: 0,
            entries: Vec::new(),
        }
    }
}

impl Index {
    pub fn path(ca_dir: &Path) -> PathBuf {
        ca_dir.join(INDEX_FILE)
    }

    /// Read the index; a missing file is an empty index (a CA directory copied without it still
    /// works), a malformed one is an error naming line and column.
    pub fn load(path: &Path) -> Result<Index> {
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Index::default()),
            Err(e) => return Err(PkiError::io(path, e)),
        };
        let idx: Index = serde_json::from_slice(&bytes).map_err(|e| {
            PkiError::file(
                path,
                format!(
                    "line {}, column {}: malformed CA index ({e})",
                    e.line(),
                    e.column()
                ),
            )
        })?;
        if idx.version != FORMAT_VERSION {
            return Err(PkiError::file(
                path,
                format!(
                    "field \"version\": unsupported index version {} (expected {FORMAT_VERSION})",
                    idx.version
                ),
            ));
        }
        Ok(idx)
    }

    /// Lock the index of `ca_dir` and read it. Keep the lock until [`Index::save`] is done.
    pub fn lock(ca_dir: &Path) -> Result<(FileLock, Index)> {
        let path = Index::path(ca_dir);
        let lock = FileLock::acquire(&path).map_err(|e| PkiError::io(&path, e))?;
        let idx = Index::load(&path)?;
        Ok((lock, idx))
    }

    pub fn save(&self, ca_dir: &Path) -> Result<()> {
        let path = Index::path(ca_dir);
        let mut json = serde_json::to_vec_pretty(self)
            .map_err(|e| PkiError::file(&path, format!("cannot encode the index: {e}")))?;
        json.push(b'\n');
        super::ca::write(&path, &json, fsutil::MODE_PUBLIC)
    }

    pub fn find(&self, serial: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| e.serial == serial)
    }

    pub fn find_mut(&mut self, serial: &str) -> Option<&mut Entry> {
        self.entries.iter_mut().find(|e| e.serial == serial)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_is_empty_and_roundtrips() {
        let dir = tempfile::tempdir().unwrap();
        let (_l, mut idx) = Index::lock(dir.path()).unwrap();
        assert!(idx.entries.is_empty());
        idx.crl_number = 3;
        idx.entries.push(Entry {
            serial: "abc".into(),
            subject: "CN=x".into(),
            kind: Kind::Client,
            not_after: "2030-01-01T00:00:00Z".into(),
            sha256_fingerprint: "AA".into(),
            issued_at: "2026-01-01T00:00:00Z".into(),
            revoked: true,
            revoked_at: Some("2026-02-01T00:00:00Z".into()),
        });
        idx.save(dir.path()).unwrap();
        let back = Index::load(&Index::path(dir.path())).unwrap();
        assert_eq!(back, idx);
        assert_eq!(back.find("abc").map(|e| e.kind), Some(Kind::Client));
    }

    #[test]
    fn malformed_names_line_and_column() {
        let dir = tempfile::tempdir().unwrap();
        let p = Index::path(dir.path());
        std::fs::write(&p, "{\n  \"version\": 1,\n  \"crl_number\": x\n}").unwrap();
        let e = Index::load(&p).unwrap_err().to_string();
        assert!(e.contains("index.json: line 3"), "{e}");
    }
}
