//! The disk tier: a [`Store`] in one [redb](https://docs.rs/redb) file, so the embedded default
//! (no Redis) survives restarts.
//!
//! Why redb: pure Rust, one file, ACID transactions with a stable file format, checksummed pages
//! (a torn or corrupt file is detected at open, not served), and an exclusive file lock (a second
//! process cannot open the same file). fjall, the other candidate, is an LSM tree: a directory of
//! segment files, a journal and background compaction threads, built for write-heavy data
//! larger than memory; for a bounded cache file of a few MB to a few hundred MB, read far more
//! than written, a B-tree in one file is simpler to bound, to inspect and to delete.
//!
//! Layout: table `entries` maps the full key to `expires at (ms, u64 LE) | written at (ms, u64
//! LE) | encoded envelope` (the same bytes the Redis tier holds, compressed or not); table `state`
//! holds the budgets' local counters ([`DiskStore::save_state`]).
//!
//! Nothing blocks the async runtime: reads run on Tokio's blocking pool, writes go through a
//! bounded queue to one writer thread that commits them in batches (one fsync per batch) and,
//! every [`DiskConfig::cleanup_every`] or when the size bound is passed, removes expired entries
//! and then the oldest until the entries fit in 90% of [`DiskConfig::max_bytes`]. A full queue
//! drops the write (a cache may forget) rather than wait. Every operation is cancellation-safe:
//! a dropped caller leaves a read to finish unobserved and a queued write to land.
//!
//! Stampede locks are process-local here (the file belongs to one process).

// redb's error is large; it only travels on failures, off the hot path.
#![allow(clippy::result_large_err)]

use super::{BoxFuture, Store};
use crate::codec::now_ms;
use crate::error::StoreError;
use redb::{Database, ReadableTable, TableDefinition};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const ENTRIES: TableDefinition<&str, &[u8]> = TableDefinition::new("entries");
const STATE: TableDefinition<&str, &[u8]> = TableDefinition::new("state");
const HEAD: usize = 16;
/// Writes waiting for the writer thread, at most.
const QUEUE: usize = 4096;
/// Operations committed in one transaction, at most.
const BATCH: usize = 512;

/// Default bound on the stored entries: 256 MiB.
pub const DEFAULT_DISK_MAX_BYTES: u64 = 256 << 20;

/// Settings of the disk tier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskConfig {
    /// The database file (created if missing).
    pub path: PathBuf,
    /// Bound on the bytes of stored entries (keys and values); beyond it the expired and then
    /// the oldest entries are removed.
    pub max_bytes: u64,
    /// How often expired entries are removed.
    pub cleanup_every: Duration,
}

impl DiskConfig {
    /// The defaults for `path`: 256 MiB, cleanup every 30 s.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        DiskConfig { path: path.into(), max_bytes: DEFAULT_DISK_MAX_BYTES, cleanup_every: Duration::from_secs(30) }
    }
}

/// Why the disk tier could not be opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DiskError {
    /// Another process (or handle) holds the file.
    #[error("{path}: the cache file is in use by another process")]
    Locked {
        /// The file.
        path: PathBuf,
    },
    /// The file is not a readable database (corrupt, truncated, or something else).
    #[error("{path}: cannot open the cache file: {reason}")]
    Open {
        /// The file.
        path: PathBuf,
        /// What redb said.
        reason: String,
    },
}

enum Op {
    Put { key: String, value: Vec<u8> },
    State { key: String, value: Vec<u8> },
    Delete { key: String, reply: tokio::sync::oneshot::Sender<Result<bool, StoreError>> },
    DeletePrefix { prefix: String, reply: tokio::sync::oneshot::Sender<Result<u64, StoreError>> },
    Sync { reply: tokio::sync::oneshot::Sender<()> },
}

/// The disk tier. Cheap to clone; dropping the last clone commits the queued writes, stops the
/// writer thread and closes the file (so the same process may open it again).
#[derive(Clone)]
pub struct DiskStore {
    db: Arc<Database>,
    shared: Arc<Shared>,
    locks: Arc<Mutex<HashMap<String, (String, Instant)>>>,
    bytes: Arc<AtomicU64>,
    path: Arc<PathBuf>,
}

struct Shared {
    /// `None` only while dropping.
    tx: Option<SyncSender<Op>>,
    writer: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Shared {
    fn drop(&mut self) {
        drop(self.tx.take());
        if let Some(w) = self.writer.take() {
            let _ = w.join();
        }
    }
}

impl std::fmt::Debug for DiskStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DiskStore").field("path", &self.path).field("bytes", &self.bytes.load(Relaxed)).finish()
    }
}

fn backend(e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(format!("disk: {e}"))
}

impl DiskStore {
    /// Opens (or creates) the file and starts the writer thread.
    pub fn open(config: DiskConfig) -> Result<Self, DiskError> {
        let path = config.path.clone();
        let db = Database::create(&path).map_err(|e| match e {
            redb::DatabaseError::DatabaseAlreadyOpen => DiskError::Locked { path: path.clone() },
            e => DiskError::Open { path: path.clone(), reason: e.to_string() },
        })?;
        let db = Arc::new(db);
        let open_err = |e: &dyn std::fmt::Display| DiskError::Open { path: path.clone(), reason: e.to_string() };
        // Create both tables up front, so readers never meet a missing table.
        let w = db.begin_write().map_err(|e| open_err(&e))?;
        w.open_table(ENTRIES).map_err(|e| open_err(&e))?;
        w.open_table(STATE).map_err(|e| open_err(&e))?;
        w.commit().map_err(|e| open_err(&e))?;
        let bytes = Arc::new(AtomicU64::new(stored_bytes(&db).map_err(|e| open_err(&e))?));
        let (tx, rx) = sync_channel(QUEUE);
        let writer = Writer { db: db.clone(), bytes: bytes.clone(), config };
        let writer = std::thread::Builder::new()
            .name("syntra-cache-disk".into())
            .spawn(move || writer.run(rx))
            .map_err(|e| open_err(&e))?;
        let shared = Arc::new(Shared { tx: Some(tx), writer: Some(writer) });
        Ok(DiskStore { db, shared, locks: Default::default(), bytes, path: Arc::new(path) })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Bytes of stored entries (keys and values), as the writer last counted them.
    pub fn stored_bytes(&self) -> u64 {
        self.bytes.load(Relaxed)
    }

    /// Waits until every write queued before this call is committed.
    pub async fn sync(&self) {
        let (reply, rx) = tokio::sync::oneshot::channel();
        if self.enqueue(Op::Sync { reply }).is_ok() {
            let _ = rx.await;
        }
    }

    /// Queues `value` under `key` in the state table (budgets' counters): never expired, never
    /// removed by [`delete_prefix`](Store::delete_prefix).
    pub fn save_state(&self, key: &str, value: Vec<u8>) {
        let _ = self.enqueue(Op::State { key: key.to_owned(), value });
    }

    /// The state saved under `key`, read synchronously (at start-up).
    pub fn load_state(&self, key: &str) -> Option<Vec<u8>> {
        let r = self.db.begin_read().ok()?;
        let t = r.open_table(STATE).ok()?;
        let v = t.get(key).ok()??.value().to_vec();
        Some(v)
    }

    fn enqueue(&self, op: Op) -> Result<(), StoreError> {
        let tx = self.shared.tx.as_ref().ok_or_else(|| backend("writer stopped"))?;
        tx.try_send(op).map_err(|e| match e {
            TrySendError::Full(_) => backend("write queue full"),
            TrySendError::Disconnected(_) => backend("writer stopped"),
        })
    }
}

impl crate::budget::local::Persist for DiskStore {
    fn save(&self, key: &str, bytes: Vec<u8>) {
        self.save_state(key, bytes)
    }
    fn load(&self, key: &str) -> Option<Vec<u8>> {
        self.load_state(key)
    }
}

fn stored_bytes(db: &Database) -> Result<u64, redb::Error> {
    let r = db.begin_read()?;
    let t = r.open_table(ENTRIES)?;
    let mut n = 0;
    for row in t.iter()? {
        let (k, v) = row?;
        n += (k.value().len() + v.value().len()) as u64;
    }
    Ok(n)
}

fn split(row: &[u8]) -> Option<(u64, u64, &[u8])> {
    let expires = u64::from_le_bytes(row.get(..8)?.try_into().ok()?);
    let written = u64::from_le_bytes(row.get(8..16)?.try_into().ok()?);
    Some((expires, written, &row[HEAD..]))
}

struct Writer {
    db: Arc<Database>,
    bytes: Arc<AtomicU64>,
    config: DiskConfig,
}

impl Writer {
    fn run(self, rx: Receiver<Op>) {
        let mut last_cleanup = Instant::now();
        loop {
            let first = match rx.recv_timeout(self.config.cleanup_every) {
                Ok(op) => Some(op),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => return,
            };
            let mut batch: Vec<Op> = first.into_iter().collect();
            while batch.len() < BATCH {
                match rx.try_recv() {
                    Ok(op) => batch.push(op),
                    Err(_) => break,
                }
            }
            if !batch.is_empty() {
                self.apply(batch);
            }
            let over = self.bytes.load(Relaxed) > self.config.max_bytes;
            if over || last_cleanup.elapsed() >= self.config.cleanup_every {
                if let Err(e) = self.cleanup() {
                    tracing::warn!(target: "syntra_cache", error = %e, "Disk tier cleanup failed");
                }
                last_cleanup = Instant::now();
            }
        }
    }

    fn apply(&self, batch: Vec<Op>) {
        let mut replies = Vec::new();
        let result = (|| -> Result<(), redb::Error> {
            let w = self.db.begin_write()?;
            {
                let mut entries = w.open_table(ENTRIES)?;
                let mut state = w.open_table(STATE)?;
                let mut added: i64 = 0;
                for op in batch {
                    match op {
                        Op::Put { key, value } => {
                            let old = entries.insert(key.as_str(), value.as_slice())?.map(|v| v.value().len());
                            added += (key.len() + value.len()) as i64;
                            added -= old.map_or(0, |n| (key.len() + n) as i64);
                        }
                        Op::State { key, value } => {
                            state.insert(key.as_str(), value.as_slice())?;
                        }
                        Op::Delete { key, reply } => {
                            let old = entries.remove(key.as_str())?.map(|v| v.value().len());
                            added -= old.map_or(0, |n| (key.len() + n) as i64);
                            replies.push(Reply::One(reply, old.is_some()));
                        }
                        Op::DeletePrefix { prefix, reply } => {
                            let keys: Vec<String> = entries
                                .range(prefix.as_str()..)?
                                .map_while(|r| r.ok().map(|(k, _)| k.value().to_owned()))
                                .take_while(|k| k.starts_with(prefix.as_str()))
                                .filter(|k| !k.contains("::"))
                                .collect();
                            for k in &keys {
                                if let Some(v) = entries.remove(k.as_str())? {
                                    added -= (k.len() + v.value().len()) as i64;
                                }
                            }
                            replies.push(Reply::Many(reply, keys.len() as u64));
                        }
                        Op::Sync { reply } => replies.push(Reply::Sync(reply)),
                    }
                }
                let now = self.bytes.load(Relaxed) as i64;
                self.bytes.store((now + added).max(0) as u64, Relaxed);
            }
            w.commit()?;
            Ok(())
        })();
        if let Err(e) = &result {
            tracing::warn!(target: "syntra_cache", error = %e, "Disk tier write failed");
        }
        for r in replies {
            match (r, &result) {
                (Reply::One(tx, v), Ok(())) => drop(tx.send(Ok(v))),
                (Reply::Many(tx, n), Ok(())) => drop(tx.send(Ok(n))),
                (Reply::One(tx, _), Err(e)) => drop(tx.send(Err(backend(e)))),
                (Reply::Many(tx, _), Err(e)) => drop(tx.send(Err(backend(e)))),
                (Reply::Sync(tx), _) => drop(tx.send(())),
            }
        }
    }

    /// Removes expired entries, then the oldest until the rest fit in 90% of the bound.
    fn cleanup(&self) -> Result<(), redb::Error> {
        let now = now_ms();
        let mut expired = Vec::new();
        let mut live = Vec::new();
        let mut live_bytes = 0u64;
        {
            let r = self.db.begin_read()?;
            let t = r.open_table(ENTRIES)?;
            for row in t.iter()? {
                let (k, v) = row?;
                let (k, v) = (k.value(), v.value());
                let size = (k.len() + v.len()) as u64;
                match split(v) {
                    Some((expires, written, _)) if expires > now => {
                        live_bytes += size;
                        live.push((written, k.to_owned(), size));
                    }
                    _ => expired.push(k.to_owned()),
                }
            }
        }
        let mut evict = Vec::new();
        if live_bytes > self.config.max_bytes {
            let target = self.config.max_bytes / 10 * 9;
            live.sort_unstable();
            for (_, k, size) in live {
                if live_bytes <= target {
                    break;
                }
                live_bytes -= size;
                evict.push(k);
            }
        }
        if expired.is_empty() && evict.is_empty() {
            self.bytes.store(live_bytes, Relaxed);
            return Ok(());
        }
        let w = self.db.begin_write()?;
        {
            let mut t = w.open_table(ENTRIES)?;
            for k in expired.iter().chain(&evict) {
                t.remove(k.as_str())?;
            }
        }
        w.commit()?;
        // Writes queued meanwhile are counted by the next pass; the figure is approximate.
        self.bytes.store(live_bytes, Relaxed);
        tracing::debug!(target: "syntra_cache", expired = expired.len(), evicted = evict.len(), "Disk tier cleaned");
        Ok(())
    }
}

enum Reply {
    One(tokio::sync::oneshot::Sender<Result<bool, StoreError>>, bool),
    Many(tokio::sync::oneshot::Sender<Result<u64, StoreError>>, u64),
    Sync(tokio::sync::oneshot::Sender<()>),
}

async fn answer<T>(rx: tokio::sync::oneshot::Receiver<Result<T, StoreError>>) -> Result<T, StoreError> {
    rx.await.map_err(|_| backend("writer stopped"))?
}

impl Store for DiskStore {
    fn name(&self) -> &'static str {
        "disk"
    }

    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<Vec<u8>>, StoreError>> {
        let db = self.db.clone();
        let key = key.to_owned();
        Box::pin(async move {
            let read = move || -> Result<Option<Vec<u8>>, redb::Error> {
                let r = db.begin_read()?;
                let t = r.open_table(ENTRIES)?;
                let Some(v) = t.get(key.as_str())? else { return Ok(None) };
                Ok(split(v.value()).filter(|(expires, _, _)| *expires > now_ms()).map(|(_, _, bytes)| bytes.to_vec()))
            };
            tokio::task::spawn_blocking(read).await.map_err(backend)?.map_err(backend)
        })
    }

    fn set<'a>(&'a self, key: &'a str, value: Vec<u8>, ttl: Duration) -> BoxFuture<'a, Result<(), StoreError>> {
        let now = now_ms();
        let mut row = Vec::with_capacity(HEAD + value.len());
        row.extend_from_slice(&now.saturating_add(ttl.as_millis() as u64).to_le_bytes());
        row.extend_from_slice(&now.to_le_bytes());
        row.extend_from_slice(&value);
        Box::pin(std::future::ready(self.enqueue(Op::Put { key: key.to_owned(), value: row })))
    }

    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<bool, StoreError>> {
        let (reply, rx) = tokio::sync::oneshot::channel();
        let queued = self.enqueue(Op::Delete { key: key.to_owned(), reply });
        Box::pin(async move {
            queued?;
            answer(rx).await
        })
    }

    fn delete_prefix<'a>(&'a self, prefix: &'a str) -> BoxFuture<'a, Result<u64, StoreError>> {
        let (reply, rx) = tokio::sync::oneshot::channel();
        let queued = self.enqueue(Op::DeletePrefix { prefix: prefix.to_owned(), reply });
        Box::pin(async move {
            queued?;
            answer(rx).await
        })
    }

    fn set_nx<'a>(&'a self, key: &'a str, token: &'a str, ttl: Duration) -> BoxFuture<'a, Result<bool, StoreError>> {
        let mut locks = self.locks.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        locks.retain(|_, (_, until)| *until > now);
        let set = !locks.contains_key(key);
        if set {
            locks.insert(key.to_owned(), (token.to_owned(), now + ttl));
        }
        Box::pin(std::future::ready(Ok(set)))
    }

    fn delete_if_eq<'a>(&'a self, key: &'a str, token: &'a str) -> BoxFuture<'a, Result<bool, StoreError>> {
        let mut locks = self.locks.lock().unwrap_or_else(|e| e.into_inner());
        let held = locks.get(key).is_some_and(|(t, _)| t == token);
        if held {
            locks.remove(key);
        }
        Box::pin(std::future::ready(Ok(held)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("syntra-disk-{}-{name}", std::process::id()));
        let _ = std::fs::remove_file(&dir);
        dir
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn entries_survive_reopen_and_expire() {
        let path = temp("reopen");
        {
            let d = DiskStore::open(DiskConfig::new(&path)).unwrap();
            d.set("ns:a", b"{\"x\":1}".to_vec(), Duration::from_secs(60)).await.unwrap();
            d.set("ns:short", b"{}".to_vec(), Duration::from_millis(1)).await.unwrap();
            d.save_state("budget:cg", b"state".to_vec());
        }
        // Dropping the last handle closed the file: it opens again at once.
        let d = DiskStore::open(DiskConfig::new(&path)).unwrap();
        assert_eq!(d.get("ns:a").await.unwrap().as_deref(), Some(&b"{\"x\":1}"[..]));
        assert_eq!(d.get("ns:short").await.unwrap(), None, "expired entries are never served");
        assert_eq!(d.load_state("budget:cg").as_deref(), Some(&b"state"[..]));
        assert_eq!(d.delete_prefix("ns:").await.unwrap(), 2);
        assert_eq!(d.load_state("budget:cg").as_deref(), Some(&b"state"[..]), "state is not an entry");
        let _ = std::fs::remove_file(&path);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn size_bound_removes_expired_then_oldest() {
        let path = temp("bound");
        let cfg = DiskConfig { max_bytes: 10_000, cleanup_every: Duration::from_secs(3600), ..DiskConfig::new(&path) };
        let d = DiskStore::open(cfg).unwrap();
        d.set("k:expired", vec![b'e'; 500], Duration::from_millis(1)).await.unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await;
        for i in 0..30 {
            d.set(&format!("k:{i:02}"), vec![b'v'; 1000], Duration::from_secs(60)).await.unwrap();
            // Distinct write times, so "oldest" is well defined.
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        d.sync().await;
        d.sync().await;
        assert!(d.stored_bytes() <= 10_000, "{}", d.stored_bytes());
        assert_eq!(d.get("k:29").await.unwrap().map(|v| v.len()), Some(1000), "the newest stays");
        assert_eq!(d.get("k:00").await.unwrap(), None, "the oldest went first");
        assert_eq!(stored_bytes(&d.db).unwrap(), d.stored_bytes());
        let _ = std::fs::remove_file(&path);
    }

    #[test]
    fn corrupt_and_locked_files_are_errors_not_panics() {
        let path = temp("corrupt");
        std::fs::write(&path, vec![0x5a; 8192]).unwrap();
        assert!(matches!(DiskStore::open(DiskConfig::new(&path)), Err(DiskError::Open { .. })));
        let _ = std::fs::remove_file(&path);
        let path = temp("locked");
        let _held = DiskStore::open(DiskConfig::new(&path)).unwrap();
        assert!(matches!(DiskStore::open(DiskConfig::new(&path)), Err(DiskError::Locked { .. })));
        let _ = std::fs::remove_file(&path);
    }
}
