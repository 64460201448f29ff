//! The one place password hashes are computed for `serve`: a fixed set of threads with a bounded
//! queue, and a bounded cache of recent successful verifications.
//!
//! - Bounded work: `workers` threads (one per core by default) each compute one hash at a time;
//!   at most `queue_limit` checks wait. A CONNECT beyond that is refused as "server busy" at
//!   once rather than queued behind work it would time out on, so a login storm costs a fixed
//!   amount of memory (one argon2 area per thread) and CPU, and never touches the async reactor.
//! - The cache: a fleet reconnecting after an outage presents the same correct passwords again;
//!   each is a full argon2id computation. A success is remembered as HMAC-SHA256 under a random
//!   per-process key over (username, password, the stored hash), never the password itself; a
//!   changed password or hash cannot hit an old entry, and a reload clears it anyway. Only
//!   successes are cached, so a wrong password always costs the full computation.
//! - Secrets: passwords travel in `Zeroizing` buffers and are wiped when the check is done. (The
//!   SHA-256 state inside the HMAC is not wiped by its crate; it lives on this thread's stack
//!   for microseconds.)

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use hmac::{Hmac, Mac};
use parking_lot::{Condvar, Mutex};
use rand::RngCore;
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::security::cache::{BoundedCache, CacheKey};
use crate::security::passwd::{StoredHash, Verifier};

/// Why a check did not run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("every password worker is busy and the queue is full")]
    Busy,
    #[error("the password workers have stopped")]
    Stopped,
}

/// Counters for tests and `$SYS`-style reporting.
#[derive(Debug, Default)]
pub struct PoolStats {
    /// Hashes computed by the workers.
    pub computed: AtomicU64,
    /// Checks answered from the cache.
    pub cache_hits: AtomicU64,
    /// Checks refused because the queue was full.
    pub refused_busy: AtomicU64,
}

struct Job {
    verifier: Arc<Verifier>,
    user: String,
    password: Zeroizing<Vec<u8>>,
    key: Option<CacheKey>,
    reply: tokio::sync::oneshot::Sender<bool>,
}

struct Shared {
    queue: Mutex<VecDeque<Job>>,
    ready: Condvar,
    stop: AtomicBool,
    queue_limit: usize,
    cache: Mutex<Cache>,
    hmac_key: Zeroizing<[u8; 32]>,
    stats: PoolStats,
}

/// Remembered successes.
type Cache = BoundedCache<()>;

/// The password verification pool. Dropping it stops its threads once they finish the hash
/// they are computing.
pub struct VerifyPool {
    shared: Arc<Shared>,
    workers: usize,
}

impl std::fmt::Debug for VerifyPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifyPool")
            .field("workers", &self.workers)
            .field("queue_limit", &self.shared.queue_limit)
            .finish()
    }
}

impl VerifyPool {
    /// `workers` 0 means one per core.
    pub fn new(workers: usize, queue_limit: usize, cache_size: usize) -> std::io::Result<Self> {
        let workers = match workers {
            0 => std::thread::available_parallelism().map_or(2, |n| n.get()),
            n => n,
        };
        let mut hmac_key = Zeroizing::new([0u8; 32]);
        rand::rngs::OsRng.fill_bytes(hmac_key.as_mut());
        let shared = Arc::new(Shared {
            queue: Mutex::new(VecDeque::new()),
            ready: Condvar::new(),
            stop: AtomicBool::new(false),
            queue_limit: queue_limit.max(1),
            cache: Mutex::new(Cache::new(cache_size)),
            hmac_key,
            stats: PoolStats::default(),
        });
        for i in 0..workers {
            let s = shared.clone();
            std::thread::Builder::new()
                .name(format!("mqsec-passwd-{i}"))
                .spawn(move || worker(&s))?;
        }
        Ok(VerifyPool { shared, workers })
    }

    pub fn workers(&self) -> usize {
        self.workers
    }

    pub fn stats(&self) -> &PoolStats {
        &self.shared.stats
    }

    /// Forget every remembered success (after a reload).
    pub fn clear_cache(&self) {
        self.shared.cache.lock().clear();
    }

    /// Whether `password` is `user`'s in `verifier`: from the cache, or computed on a worker.
    /// `Err(Busy)` at once when the queue is full.
    pub async fn verify(
        &self,
        verifier: Arc<Verifier>,
        user: &str,
        password: Zeroizing<Vec<u8>>,
    ) -> Result<bool, VerifyError> {
        let key = verifier
            .stored(user)
            .map(|h| cache_key(&self.shared.hmac_key, user, &password, h));
        if let Some(k) = &key {
            if self.shared.cache.lock().get(k).is_some() {
                self.shared.stats.cache_hits.fetch_add(1, Ordering::Relaxed);
                return Ok(true);
            }
        }
        let (tx, rx) = tokio::sync::oneshot::channel();
        {
            let mut q = self.shared.queue.lock();
            if self.shared.stop.load(Ordering::Acquire) {
                return Err(VerifyError::Stopped);
            }
            if q.len() >= self.shared.queue_limit {
                self.shared
                    .stats
                    .refused_busy
                    .fetch_add(1, Ordering::Relaxed);
                return Err(VerifyError::Busy);
            }
            q.push_back(Job {
                verifier,
                user: user.to_string(),
                password,
                key,
                reply: tx,
            });
        }
        self.shared.ready.notify_one();
        rx.await.map_err(|_| VerifyError::Stopped)
    }
}

impl Drop for VerifyPool {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Release);
        // Taking the lock orders the flag before any worker's next wait.
        drop(self.shared.queue.lock());
        self.shared.ready.notify_all();
    }
}

fn worker(s: &Shared) {
    loop {
        let job = {
            let mut q = s.queue.lock();
            loop {
                if s.stop.load(Ordering::Acquire) {
                    return;
                }
                if let Some(j) = q.pop_front() {
                    break j;
                }
                s.ready.wait(&mut q);
            }
        };
        // The client gave up (closed, timed out): nobody will read the answer.
        if job.reply.is_closed() {
            continue;
        }
        let ok = job.verifier.verify(&job.user, &job.password);
        s.stats.computed.fetch_add(1, Ordering::Relaxed);
        if ok {
            if let Some(k) = job.key {
                s.cache.lock().insert(k, ());
            }
        }
        let _ = job.reply.send(ok);
    }
}

/// HMAC-SHA256(process key, user ‖ password ‖ stored hash), every field length-prefixed so no
/// two different triples share an input.
fn cache_key(key: &[u8; 32], user: &str, password: &[u8], stored: &StoredHash) -> CacheKey {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes any key length");
    let mut field = |bytes: &[u8]| {
        mac.update(&(bytes.len() as u64).to_be_bytes());
        mac.update(bytes);
    };
    field(user.as_bytes());
    field(password);
    match stored {
        StoredHash::Argon2id {
            version,
            params,
            salt,
            hash,
        } => {
            field(b"argon2id");
            field(&version.to_be_bytes());
            field(params.to_string().as_bytes());
            field(salt);
            field(hash);
        }
        StoredHash::Pbkdf2Sha512 {
            iterations,
            salt,
            hash,
        } => {
            field(b"pbkdf2-sha512");
            field(&iterations.to_be_bytes());
            field(salt);
            field(hash);
        }
        StoredHash::Sha512 { salt, hash } => {
            field(b"sha512");
            field(salt);
            field(hash);
        }
    }
    mac.finalize().into_bytes().into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::security::passwd::{hash_password, Argon2Params, PasswordFile};

    const WEAK: Argon2Params = Argon2Params {
        memory_kib: 64,
        iterations: 1,
        parallelism: 1,
    };

    fn verifier(lines: &[(&str, &str)]) -> Arc<Verifier> {
        let mut text = String::new();
        for (u, p) in lines {
            text.push_str(&format!(
                "{u}:{}\n",
                hash_password(p.as_bytes(), &WEAK).unwrap()
            ));
        }
        Arc::new(Verifier::new(&PasswordFile::parse(text.as_bytes())))
    }

    fn pw(s: &str) -> Zeroizing<Vec<u8>> {
        Zeroizing::new(s.as_bytes().to_vec())
    }

    #[tokio::test]
    async fn verifies_caches_successes_only_and_clears() {
        let pool = VerifyPool::new(1, 8, 100).unwrap();
        let v = verifier(&[("alice", "right")]);
        assert_eq!(pool.verify(v.clone(), "alice", pw("right")).await, Ok(true));
        assert_eq!(pool.stats().computed.load(Ordering::Relaxed), 1);
        assert_eq!(pool.verify(v.clone(), "alice", pw("right")).await, Ok(true));
        assert_eq!(pool.stats().cache_hits.load(Ordering::Relaxed), 1);
        assert_eq!(pool.stats().computed.load(Ordering::Relaxed), 1);
        // Failures are never cached: each one costs the computation.
        for _ in 0..2 {
            assert_eq!(
                pool.verify(v.clone(), "alice", pw("wrong")).await,
                Ok(false)
            );
        }
        assert_eq!(pool.verify(v.clone(), "bob", pw("right")).await, Ok(false));
        assert_eq!(pool.stats().computed.load(Ordering::Relaxed), 4);
        // A new hash for the same user and password is another key.
        let v2 = verifier(&[("alice", "right")]);
        assert_eq!(
            pool.verify(v2.clone(), "alice", pw("right")).await,
            Ok(true)
        );
        assert_eq!(pool.stats().computed.load(Ordering::Relaxed), 5);
        pool.clear_cache();
        assert_eq!(pool.verify(v2, "alice", pw("right")).await, Ok(true));
        assert_eq!(pool.stats().computed.load(Ordering::Relaxed), 6);
        assert_eq!(pool.stats().cache_hits.load(Ordering::Relaxed), 1);
    }

    #[tokio::test]
    async fn a_full_queue_refuses_at_once() {
        // A slow hash so the single worker stays busy while the queue fills.
        let slow = Argon2Params {
            memory_kib: 8192,
            iterations: 8,
            parallelism: 1,
        };
        let text = format!("u:{}\n", hash_password(b"p", &slow).unwrap());
        let v = Arc::new(Verifier::new(&PasswordFile::parse(text.as_bytes())));
        let pool = VerifyPool::new(1, 2, 0).unwrap();
        // join_all polls every check once in a single pass (microseconds), while one hash takes
        // tens of milliseconds: the queue is full long before the worker frees a place.
        let results = futures_util::future::join_all(
            (0..12).map(|_| pool.verify(v.clone(), "u", Zeroizing::new(b"p".to_vec()))),
        )
        .await;
        let busy = results
            .iter()
            .filter(|r| **r == Err(VerifyError::Busy))
            .count();
        let ok = results.iter().filter(|r| **r == Ok(true)).count();
        // One running and two queued at any moment: most of the twelve are refused, none hang.
        assert!(busy >= 6, "{results:?}");
        assert_eq!(busy + ok, 12, "{results:?}");
        assert_eq!(
            pool.stats().refused_busy.load(Ordering::Relaxed),
            busy as u64
        );
    }

    #[tokio::test(flavor = "current_thread")]
    async fn hashing_never_runs_on_the_reactor() {
        use std::sync::atomic::AtomicUsize;
        // Default cost, so the verify takes long enough for the ticker to run meanwhile.
        let h = hash_password(b"pw", &Argon2Params::DEFAULT).unwrap();
        let v = Arc::new(Verifier::new(&PasswordFile::parse(
            format!("u:{h}\n").as_bytes(),
        )));
        let pool = VerifyPool::new(1, 4, 0).unwrap();
        let ticks = Arc::new(AtomicUsize::new(0));
        let t = ticks.clone();
        // One reactor thread: had the verify run on it, the ticker could not tick until it ended.
        let ticker = tokio::spawn(async move {
            loop {
                t.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(std::time::Duration::from_millis(1)).await;
            }
        });
        tokio::task::yield_now().await;
        let before = ticks.load(Ordering::SeqCst);
        let ok = pool.verify(v.clone(), "u", pw("pw")).await;
        let during = ticks.load(Ordering::SeqCst) - before;
        ticker.abort();
        assert_eq!(ok, Ok(true));
        assert!(during > 0, "the reactor was stalled during the verify");
        assert_eq!(pool.verify(v, "u", pw("px")).await, Ok(false));
    }

    #[test]
    fn cache_is_bounded_and_keys_never_contain_the_password() {
        let mut c = Cache::new(3);
        for i in 0..10u8 {
            c.insert([i; 32], ());
        }
        assert_eq!(c.len(), 3);
        assert!(c.get(&[9; 32]).is_some() && c.get(&[6; 32]).is_none());
        let h = crate::security::passwd::parse_hash(&hash_password(b"pw", &WEAK).unwrap()).unwrap();
        let k1 = cache_key(&[1; 32], "alice", b"pw", &h);
        let k2 = cache_key(&[2; 32], "alice", b"pw", &h);
        // Per-process key: the same credentials give unrelated keys in another process.
        assert_ne!(k1, k2);
        // Length-prefixed: moving a byte between user and password changes the key.
        assert_ne!(k1, cache_key(&[1; 32], "alicep", b"w", &h));
    }
}
