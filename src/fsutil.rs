//! Writing files so that nothing is lost: temp file in the same directory, fsync, rename, fsync
//! of the directory; tight permissions from the first byte; an advisory lock for read-modify-write.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

/// Mode for secrets (keys, password files): owner read/write only.
pub const MODE_SECRET: u32 = 0o600;
/// Mode for public artefacts (certificates, CRLs).
pub const MODE_PUBLIC: u32 = 0o644;

fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Atomically replace (or create) `path` with `data`, with permission `mode`.
///
/// Readers see either the old file or the new one, never a torn write; a crash leaves at worst a
/// stray temp file. The temp file is created 0600 before any byte is written, so a secret is never
/// briefly world-readable.
pub fn atomic_write(path: &Path, data: &[u8], mode: u32) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let dir = parent_dir(path);
    let mut tmp = tempfile::Builder::new()
        .prefix(".mqsec-tmp-")
        .permissions(fs::Permissions::from_mode(0o600))
        .tempfile_in(dir)?;
    tmp.write_all(data)?;
    tmp.as_file()
        .set_permissions(fs::Permissions::from_mode(mode))?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    // The rename is durable only once the directory entry is.
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Refuse, before anything is written, when one of the outputs exists and `force` is false: the
/// first existing path is returned. Commands that write several files together check them all here
/// first, then write them through [`Staged`].
pub fn refuse_existing(paths: &[&Path], force: bool) -> Result<(), PathBuf> {
    if force {
        return Ok(());
    }
    for p in paths {
        if p.exists() {
            return Err(p.to_path_buf());
        }
    }
    Ok(())
}

/// An exclusive advisory lock held for a read-modify-write of `path`.
///
/// The lock lives on a sidecar file (`.NAME.lock` beside it) because the target itself is replaced
/// by rename, and a lock on a replaced inode protects nothing. Dropped = released.
pub struct FileLock {
    _file: File,
}

impl FileLock {
    pub fn acquire(path: &Path) -> io::Result<FileLock> {
        use std::os::unix::fs::OpenOptionsExt;
        let dir = parent_dir(path);
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "mqsec".to_string());
        let lock_path = dir.join(format!(".{name}.lock"));
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(lock_path)?;
        file.lock()?;
        Ok(FileLock { _file: file })
    }
}

/// Append all of `r` to `buf`, but read at most `limit + 1` bytes: `Ok(false)` when the input is
/// longer than `limit` (what was read stays in `buf`). The one extra byte is how "exactly `limit`"
/// is told from "more"; the cap keeps a huge or endless input (a FIFO, stdin) from filling memory.
/// `buf` is the caller's so that secrets can be read into a `Zeroizing<Vec<u8>>`.
pub fn read_capped(r: impl Read, limit: u64, buf: &mut Vec<u8>) -> io::Result<bool> {
    let start = buf.len();
    r.take(limit.saturating_add(1)).read_to_end(buf)?;
    Ok((buf.len() - start) as u64 <= limit)
}

/// True when group or others may access a file of permission bits `mode`: the test behind every
/// "holds secrets but is not 0600" warning.
pub fn is_loose_secret_mode(mode: u32) -> bool {
    mode & 0o077 != 0
}

/// An I/O error on a named file, as [`Staged`] reports it.
#[derive(Debug)]
pub struct PathError {
    pub path: PathBuf,
    pub source: io::Error,
}

/// Output files of one command, each written with [`atomic_write`], and removed again (with the
/// output directory, if this made it) unless [`Staged::commit`] is reached: a command that fails
/// half-way leaves nothing behind.
pub struct Staged {
    files: Vec<PathBuf>,
    created_dir: Option<PathBuf>,
}

impl Staged {
    /// Stage outputs into `out`, creating it (and missing parents) 0700 if it does not exist.
    pub fn new(out: &Path) -> Result<Staged, PathError> {
        use std::os::unix::fs::DirBuilderExt;
        let created_dir = (!out.is_dir()).then(|| out.to_path_buf());
        if created_dir.is_some() {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(out)
                .map_err(|source| PathError {
                    path: out.to_path_buf(),
                    source,
                })?;
        }
        Ok(Staged {
            files: Vec::new(),
            created_dir,
        })
    }

    pub fn write(&mut self, path: &Path, data: &[u8], mode: u32) -> Result<(), PathError> {
        atomic_write(path, data, mode).map_err(|source| PathError {
            path: path.to_path_buf(),
            source,
        })?;
        self.files.push(path.to_path_buf());
        Ok(())
    }

    /// Keep everything written; returns the files in the order they were written.
    pub fn commit(mut self) -> Vec<PathBuf> {
        self.created_dir = None;
        std::mem::take(&mut self.files)
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        for f in &self.files {
            let _ = fs::remove_file(f);
        }
        if let Some(d) = &self.created_dir {
            // Only succeeds when empty: never takes anything else with it.
            let _ = fs::remove_dir(d);
        }
    }
}

/// The permission bits of `path`, if it exists.
pub fn mode_of(path: &Path) -> Option<u32> {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(path)
        .ok()
        .map(|m| m.permissions().mode() & 0o7777)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_sets_mode_and_replaces() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("secret");
        atomic_write(&p, b"one", MODE_SECRET).unwrap();
        assert_eq!(mode_of(&p), Some(0o600));
        atomic_write(&p, b"two", MODE_PUBLIC).unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
        assert_eq!(mode_of(&p), Some(0o644));
        // No temp files left behind.
        let names: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1);
    }

    #[test]
    fn read_capped_tells_exactly_the_limit_from_more() {
        let mut buf = Vec::new();
        assert!(read_capped(&b"0123456789"[..], 10, &mut buf).unwrap());
        assert_eq!(buf, b"0123456789");
        buf.clear();
        assert!(!read_capped(&b"0123456789"[..], 9, &mut buf).unwrap());
        assert_eq!(buf.len(), 10, "reads one byte past the limit, no more");
    }

    #[test]
    fn staged_removes_its_files_and_new_dir_unless_committed() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("new/out");
        {
            let mut s = Staged::new(&out).unwrap();
            s.write(&out.join("a"), b"a", MODE_SECRET).unwrap();
            assert_eq!(mode_of(&out), Some(0o700));
        }
        assert!(!out.exists());
        let mut s = Staged::new(&out).unwrap();
        s.write(&out.join("a"), b"a", MODE_SECRET).unwrap();
        assert_eq!(s.commit(), vec![out.join("a")]);
        assert_eq!(fs::read(out.join("a")).unwrap(), b"a");
    }

    #[test]
    fn refuse_existing_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a");
        fs::write(&p, b"x").unwrap();
        let q = dir.path().join("b");
        assert_eq!(refuse_existing(&[&q, &p], false), Err(p.clone()));
        assert_eq!(refuse_existing(&[&q, &p], true), Ok(()));
    }
}
