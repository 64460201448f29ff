//! The database file: its tables, the format check at open, reading everything back, and
//! applying a group of batches in one transaction.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use redb::{Database, Durability, ReadableDatabase, ReadableTable, TableDefinition, TableHandle};

use super::codec::{self, Row};
use super::{clock, Batch, DurableError, Op, SessionImage};
use crate::broker::session::Message;

/// What this build writes and reads. A file of a higher version is refused (never started
/// empty); a lower one would be migrated here, when there is one.
pub const FORMAT_VERSION: u64 = 1;
/// "mqsec" as a number: the mark of a file this program made.
const APPLICATION: u64 = 0x6d_71_73_65_63;

const META: TableDefinition<&str, u64> = TableDefinition::new("mqsec_meta");
const SESSIONS: TableDefinition<&str, &[u8]> = TableDefinition::new("sessions");
/// (client id, seq) -> a queued delivery (see `codec::row_value`).
const QUEUE: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("queue");
/// (client id, packet id): an incoming QoS 2 message waiting for PUBREL.
const QOS2: TableDefinition<(&str, u16), ()> = TableDefinition::new("incoming_qos2");
const RETAINED: TableDefinition<&str, &[u8]> = TableDefinition::new("retained");

pub struct Db {
    db: Database,
}

/// One persistent session read back.
pub struct RestoredSessionRows {
    pub image: SessionImage,
    /// In seq order.
    pub rows: Vec<Row>,
    pub incoming_qos2: Vec<u16>,
}

/// Everything the store held at start-up.
pub struct Restored {
    pub sessions: Vec<RestoredSessionRows>,
    pub retained: Vec<Arc<Message>>,
}

fn refused(path: &Path, what: impl Into<String>) -> DurableError {
    DurableError::Refused {
        path: path.display().to_string(),
        what: what.into(),
    }
}

fn db_err(path: &Path) -> impl Fn(redb::Error) -> DurableError + '_ {
    move |e| match e {
        redb::Error::Io(source) => DurableError::Io {
            path: path.display().to_string(),
            source,
        },
        redb::Error::Corrupted(what) => refused(path, format!("damaged store: {what}")),
        e => refused(path, e.to_string()),
    }
}

/// Open or create the store at `path` (in `dir`, created 0700), check that it is an mqsec store
/// of a format this build reads, and read everything back.
pub fn open(dir: &Path, path: &Path) -> Result<(Db, Restored), DurableError> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|source| DurableError::Io {
            path: dir.display().to_string(),
            source,
        })?;
    // Queued messages are other people's data: the file is the owner's only, from the start.
    {
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(path)
            .map_err(|source| DurableError::Io {
                path: path.display().to_string(),
                source,
            })?;
    }
    let db = match Database::builder().create(path) {
        Ok(db) => db,
        Err(redb::DatabaseError::DatabaseAlreadyOpen) => {
            return Err(refused(path, "in use by another process"))
        }
        Err(redb::DatabaseError::UpgradeRequired(v)) => {
            return Err(refused(
                path,
                format!("a redb file of format {v}, which this build cannot read"),
            ))
        }
        Err(redb::DatabaseError::Storage(redb::StorageError::Io(e)))
            if e.kind() == std::io::ErrorKind::InvalidData =>
        {
            return Err(refused(
                path,
                format!("not an mqsec store, or damaged ({e})"),
            ))
        }
        Err(redb::DatabaseError::Storage(redb::StorageError::Io(source))) => {
            return Err(DurableError::Io {
                path: path.display().to_string(),
                source,
            })
        }
        Err(e) => {
            return Err(refused(
                path,
                format!("not an mqsec store, or damaged ({e})"),
            ))
        }
    };
    finish_open(db, path)
}

fn finish_open(db: Database, path: &Path) -> Result<(Db, Restored), DurableError> {
    check_format(&db, path)?;
    let restored = load(&db, path)?;
    Ok((Db { db }, restored))
}

/// A store on another storage backend (tests inject write failures through one).
#[cfg(test)]
pub(super) fn open_backend(
    backend: impl redb::StorageBackend,
    path: &Path,
) -> Result<(Db, Restored), DurableError> {
    let db = Database::builder()
        .create_with_backend(backend)
        .map_err(|e| refused(path, e.to_string()))?;
    finish_open(db, path)
}

fn check_format(db: &Database, path: &Path) -> Result<(), DurableError> {
    let e = db_err(path);
    let r = db.begin_read().map_err(|x| e(x.into()))?;
    let tables: Vec<String> = r
        .list_tables()
        .map_err(|x| e(x.into()))?
        .map(|t| t.name().to_string())
        .collect();
    if tables.is_empty() {
        drop(r);
        // A new file: mark it.
        let w = db.begin_write().map_err(|x| e(x.into()))?;
        {
            let mut m = w.open_table(META).map_err(|x| e(x.into()))?;
            m.insert("application", APPLICATION)
                .map_err(|x| e(x.into()))?;
            m.insert("format", FORMAT_VERSION)
                .map_err(|x| e(x.into()))?;
            w.open_table(SESSIONS).map_err(|x| e(x.into()))?;
            w.open_table(QUEUE).map_err(|x| e(x.into()))?;
            w.open_table(QOS2).map_err(|x| e(x.into()))?;
            w.open_table(RETAINED).map_err(|x| e(x.into()))?;
        }
        w.commit().map_err(|x| e(x.into()))?;
        return Ok(());
    }
    if !tables.iter().any(|t| t == META.name()) {
        return Err(refused(
            path,
            "a database of another program (no mqsec format mark); move it away or set another persistence_location",
        ));
    }
    let m = r.open_table(META).map_err(|x| e(x.into()))?;
    let get = |k: &str| -> Result<Option<u64>, DurableError> {
        Ok(m.get(k).map_err(|x| e(x.into()))?.map(|v| v.value()))
    };
    if get("application")? != Some(APPLICATION) {
        return Err(refused(
            path,
            "a database of another program (wrong format mark)",
        ));
    }
    match get("format")? {
        Some(FORMAT_VERSION) => Ok(()),
        Some(v) if v > FORMAT_VERSION => Err(refused(
            path,
            format!(
                "written by a newer mqsec (store format {v}; this build reads format {FORMAT_VERSION})"
            ),
        )),
        Some(v) => Err(refused(
            path,
            format!("store format {v} has no migration to format {FORMAT_VERSION}"),
        )),
        None => Err(refused(path, "damaged store: no format version")),
    }
}

fn load(db: &Database, path: &Path) -> Result<Restored, DurableError> {
    let e = db_err(path);
    let damaged = |table: &str, key: &str, err: crate::broker::codec::DecodeError| {
        refused(
            path,
            format!("damaged record in table {table} (key {key:?}): {err}"),
        )
    };
    let r = db.begin_read().map_err(|x| e(x.into()))?;
    let mut sessions: Vec<RestoredSessionRows> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    {
        let t = r.open_table(SESSIONS).map_err(|x| e(x.into()))?;
        for item in t.iter().map_err(|x| e(x.into()))? {
            let (k, v) = item.map_err(|x| e(x.into()))?;
            let cid = k.value();
            let image =
                codec::get_session(cid, v.value()).map_err(|err| damaged("sessions", cid, err))?;
            index.insert(cid.to_string(), sessions.len());
            sessions.push(RestoredSessionRows {
                image,
                rows: Vec::new(),
                incoming_qos2: Vec::new(),
            });
        }
    }
    let mut stale_rows: Vec<(String, u64)> = Vec::new();
    {
        let t = r.open_table(QUEUE).map_err(|x| e(x.into()))?;
        for item in t.iter().map_err(|x| e(x.into()))? {
            let (k, v) = item.map_err(|x| e(x.into()))?;
            let (cid, seq) = k.value();
            let row = codec::get_row(seq, v.value())
                .map_err(|err| damaged("queue", &format!("{cid}/{seq}"), err))?;
            match index.get(cid).map(|&i| &mut sessions[i]) {
                // Rows of an earlier session of the same client id, or of none, are left-overs.
                Some(s) if s.image.gen == row.gen => s.rows.push(row),
                _ => stale_rows.push((cid.to_string(), seq)),
            }
        }
    }
    let mut stale_qos2: Vec<(String, u16)> = Vec::new();
    {
        let t = r.open_table(QOS2).map_err(|x| e(x.into()))?;
        for item in t.iter().map_err(|x| e(x.into()))? {
            let (k, _) = item.map_err(|x| e(x.into()))?;
            let (cid, pid) = k.value();
            match index.get(cid) {
                Some(&i) => sessions[i].incoming_qos2.push(pid),
                None => stale_qos2.push((cid.to_string(), pid)),
            }
        }
    }
    let now = clock::now_ms();
    let mut retained = Vec::new();
    let mut expired_retained = Vec::new();
    {
        let t = r.open_table(RETAINED).map_err(|x| e(x.into()))?;
        for item in t.iter().map_err(|x| e(x.into()))? {
            let (k, v) = item.map_err(|x| e(x.into()))?;
            let (m, expires) = codec::get_retained(v.value())
                .map_err(|err| damaged("retained", k.value(), err))?;
            if expires.is_some_and(|t| t <= now) {
                expired_retained.push(k.value().to_string());
            } else {
                retained.push(Arc::new(m));
            }
        }
    }
    drop(r);
    if !stale_rows.is_empty() || !stale_qos2.is_empty() || !expired_retained.is_empty() {
        let w = db.begin_write().map_err(|x| e(x.into()))?;
        {
            let mut q = w.open_table(QUEUE).map_err(|x| e(x.into()))?;
            for (cid, seq) in &stale_rows {
                q.remove((cid.as_str(), *seq)).map_err(|x| e(x.into()))?;
            }
            let mut q2 = w.open_table(QOS2).map_err(|x| e(x.into()))?;
            for (cid, pid) in &stale_qos2 {
                q2.remove((cid.as_str(), *pid)).map_err(|x| e(x.into()))?;
            }
            let mut rt = w.open_table(RETAINED).map_err(|x| e(x.into()))?;
            for t in &expired_retained {
                rt.remove(t.as_str()).map_err(|x| e(x.into()))?;
            }
        }
        w.commit().map_err(|x| e(x.into()))?;
    }
    Ok(Restored { sessions, retained })
}

impl Db {
    /// Apply every op of `batches`, in order, in one transaction. A delivery queued and done
    /// within the same group is never written at all.
    pub fn apply<'a>(
        &self,
        batches: impl Iterator<Item = &'a Batch>,
        durability: Durability,
    ) -> Result<(), redb::Error> {
        let mut w = self.db.begin_write()?;
        w.set_durability(durability)
            .map_err(|e| redb::Error::Corrupted(e.to_string()))?;
        {
            let mut sessions = w.open_table(SESSIONS)?;
            let mut queue = w.open_table(QUEUE)?;
            let mut qos2 = w.open_table(QOS2)?;
            let mut retained = w.open_table(RETAINED)?;
            // Queue changes of this group: Some(value) to write, None to delete.
            let mut rows: HashMap<(Arc<str>, u64), Option<Vec<u8>>> = HashMap::new();
            for b in batches {
                for op in &b.ops {
                    match op {
                        Op::SaveSession(img) => {
                            let v = codec::session_value(img);
                            sessions.insert(img.record.client_id.as_str(), v.as_slice())?;
                        }
                        Op::RemoveSession(cid) => {
                            sessions.remove(&**cid)?;
                            rows.retain(|(c, _), _| c != cid);
                            let c: &str = cid;
                            queue.retain_in((c, 0u64)..=(c, u64::MAX), |_, _| false)?;
                            qos2.retain_in((c, 0u16)..=(c, u16::MAX), |_, _| false)?;
                        }
                        Op::Queue { session, stored } => {
                            rows.insert(
                                (session.client_id.clone(), stored.delivery.seq),
                                Some(codec::row_value(stored)),
                            );
                        }
                        Op::Released { client_id, seq } => {
                            let key = (client_id.clone(), *seq);
                            match rows.get_mut(&key) {
                                Some(Some(v)) => v[0] = codec::STAGE_RELEASED,
                                Some(None) => {}
                                None => {
                                    let cur = queue
                                        .get((&**client_id, *seq))?
                                        .map(|g| g.value().to_vec());
                                    if let Some(mut v) = cur {
                                        if let Some(b) = v.first_mut() {
                                            *b = codec::STAGE_RELEASED;
                                        }
                                        rows.insert(key, Some(v));
                                    }
                                }
                            }
                        }
                        Op::Done { client_id, seq } => {
                            rows.insert((client_id.clone(), *seq), None);
                        }
                        Op::Retain { topic, msg } => match msg {
                            Some(m) => {
                                let v = codec::retained_value(m);
                                retained.insert(&**topic, v.as_slice())?;
                            }
                            None => {
                                retained.remove(&**topic)?;
                            }
                        },
                        Op::IncomingQos2 {
                            client_id,
                            pid,
                            waiting,
                        } => {
                            if *waiting {
                                qos2.insert((&**client_id, *pid), ())?;
                            } else {
                                qos2.remove((&**client_id, *pid))?;
                            }
                        }
                    }
                }
            }
            for ((cid, seq), v) in rows {
                match v {
                    Some(v) => {
                        queue.insert((&*cid, seq), v.as_slice())?;
                    }
                    None => {
                        queue.remove((&*cid, seq))?;
                    }
                }
            }
        }
        w.commit()?;
        Ok(())
    }

    /// Sync what earlier non-durable commits wrote.
    pub fn sync(&self) -> Result<(), redb::Error> {
        let w = self.db.begin_write()?;
        w.commit()?;
        Ok(())
    }
}
