//! The in-process tier: moka, per-entry expiry, bounded size, decoded values.

use crate::codec::Meta;
use moka::sync::Cache as Moka;
use moka::Expiry;
use std::any::Any;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One decoded value in the memory tier.
#[derive(Clone)]
pub struct MemEntry {
    /// The value (`Arc<T>` behind `Any`); `None` for a negative entry.
    pub value: Option<Arc<dyn Any + Send + Sync>>,
    /// Envelope metadata (freshness is judged from it).
    pub meta: Meta,
    /// How long moka keeps the entry (freshness plus any stale window, capped by the remote TTL).
    pub keep: Duration,
}

impl std::fmt::Debug for MemEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemEntry").field("meta", &self.meta).field("keep", &self.keep).finish_non_exhaustive()
    }
}

struct PerEntry;

impl Expiry<String, MemEntry> for PerEntry {
    fn expire_after_create(&self, _: &String, v: &MemEntry, _: Instant) -> Option<Duration> {
        Some(v.keep)
    }
    fn expire_after_update(&self, _: &String, v: &MemEntry, _: Instant, _: Option<Duration>) -> Option<Duration> {
        Some(v.keep)
    }
}

/// Entries moka removed on its own, by cause (counted in its eviction listener, off the get
/// path).
#[derive(Debug, Default)]
struct Removed {
    size: AtomicU64,
    expired: AtomicU64,
}

/// The bounded in-process tier.
#[derive(Clone)]
pub struct MemoryTier {
    inner: Moka<String, MemEntry>,
    removed: Arc<Removed>,
}

impl std::fmt::Debug for MemoryTier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryTier").field("entries", &self.inner.entry_count()).finish()
    }
}

impl MemoryTier {
    /// A tier holding at most `capacity` entries (least recently and frequently used go first).
    pub fn new(capacity: u64) -> Self {
        let removed = Arc::new(Removed::default());
        let counts = removed.clone();
        let inner = Moka::builder()
            .max_capacity(capacity)
            .expire_after(PerEntry)
            .eviction_listener(move |_, _, cause| match cause {
                moka::notification::RemovalCause::Size => {
                    counts.size.fetch_add(1, Relaxed);
                }
                moka::notification::RemovalCause::Expired => {
                    counts.expired.fetch_add(1, Relaxed);
                }
                _ => {}
            })
            .build();
        MemoryTier { inner, removed }
    }

    /// Entries evicted to stay within capacity, and entries dropped at their expiry.
    pub fn evictions(&self) -> (u64, u64) {
        (self.removed.size.load(Relaxed), self.removed.expired.load(Relaxed))
    }

    /// The entry of `key`, if present and not expired.
    #[inline]
    pub fn get(&self, key: &str) -> Option<MemEntry> {
        self.inner.get(key)
    }

    /// Stores an entry; a zero `keep` stores nothing.
    pub fn insert(&self, key: String, entry: MemEntry) {
        if !entry.keep.is_zero() {
            self.inner.insert(key, entry);
        }
    }

    /// Removes `key`; whether it was present.
    pub fn remove(&self, key: &str) -> bool {
        self.inner.remove(key).is_some()
    }

    /// Removes every key starting with `prefix`.
    pub fn remove_prefix(&self, prefix: &str) -> u64 {
        let keys: Vec<Arc<String>> = self.inner.iter().filter(|(k, _)| k.starts_with(prefix)).map(|(k, _)| k).collect();
        let n = keys.len() as u64;
        for k in keys {
            self.inner.invalidate(k.as_str());
        }
        n
    }

    /// Approximate number of entries.
    pub fn len(&self) -> u64 {
        self.inner.run_pending_tasks();
        self.inner.entry_count()
    }

    /// Whether the tier is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
