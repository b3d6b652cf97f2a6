//! The in-process tier: moka, per-entry expiry, decoded values, bounded in entries *and* bytes.
//!
//! moka has one capacity, so both bounds go through its weigher: an entry weighs its estimated
//! size (the encoded value's length plus the key and a fixed overhead), but never less than one
//! slot of `bytes / entries`. The weights then sum to at most `bytes`, which caps the total
//! size, and since each is at least one slot there are at most `entries` of them.

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
    /// Estimated size in bytes: the encoded envelope's length (see [`codec::encoded_len`]).
    ///
    /// [`codec::encoded_len`]: crate::codec::encoded_len
    pub size: usize,
    /// When it entered the memory tier (the coherence channel's trust bound counts from it).
    pub at: Instant,
}

/// What an entry costs besides its value: the key's `String`, the `Arc` and moka's bookkeeping.
const ENTRY_OVERHEAD: usize = 160;

impl std::fmt::Debug for MemEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemEntry")
            .field("meta", &self.meta)
            .field("keep", &self.keep)
            .field("size", &self.size)
            .finish_non_exhaustive()
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
    bytes: u64,
    removed: Arc<Removed>,
}

impl std::fmt::Debug for MemoryTier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryTier")
            .field("entries", &self.inner.entry_count())
            .field("weighted_bytes", &self.inner.weighted_size())
            .field("max_bytes", &self.bytes)
            .finish()
    }
}

impl MemoryTier {
    /// A tier holding at most `entries` entries of at most `bytes` bytes in all (estimated; least
    /// recently and frequently used go first). `bytes` below `entries` is raised to `entries`.
    pub fn new(entries: u64, bytes: u64) -> Self {
        let bytes = bytes.max(entries);
        let slot = bytes.div_ceil(entries.max(1)).min(u32::MAX as u64) as u32;
        let removed = Arc::new(Removed::default());
        let counts = removed.clone();
        let inner = Moka::builder()
            .max_capacity(bytes)
            .weigher(move |k: &String, v: &MemEntry| {
                let size = v.size.saturating_add(k.len()).saturating_add(ENTRY_OVERHEAD);
                (size.min(u32::MAX as usize) as u32).max(slot)
            })
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
        MemoryTier { inner, bytes, removed }
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
        // moka's iterator may skip entries whose insertion is still queued for its
        // housekeeping (seen under load with a coherent tier): process the queue first.
        self.inner.run_pending_tasks();
        let keys: Vec<Arc<String>> = self.inner.iter().filter(|(k, _)| k.starts_with(prefix)).map(|(k, _)| k).collect();
        let n = keys.len() as u64;
        for k in keys {
            self.inner.invalidate(k.as_str());
        }
        n
    }

    /// Removes every entry.
    pub fn clear(&self) {
        self.inner.invalidate_all();
    }

    /// Approximate number of entries.
    pub fn len(&self) -> u64 {
        self.inner.run_pending_tasks();
        self.inner.entry_count()
    }

    /// The entries' estimated total size, as weighed (at least one slot per entry).
    pub fn weighted_bytes(&self) -> u64 {
        self.inner.run_pending_tasks();
        self.inner.weighted_size()
    }

    /// Whether the tier is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(size: usize) -> MemEntry {
        MemEntry {
            value: Some(Arc::new(vec![0u8; size]) as Arc<dyn Any + Send + Sync>),
            meta: Meta::now(Duration::from_secs(60), Duration::ZERO, false),
            keep: Duration::from_secs(60),
            size,
            at: Instant::now(),
        }
    }

    #[test]
    fn bounded_in_bytes_and_in_entries() {
        // 100 entries, 1 MiB: 24 KB values (market_chart) hit the byte bound at ~40 entries.
        let t = MemoryTier::new(100, 1 << 20);
        for i in 0..500 {
            t.insert(format!("k{i}"), entry(24_000));
        }
        assert!(t.weighted_bytes() <= 1 << 20, "{}", t.weighted_bytes());
        assert!(t.len() <= 44, "{} entries of 24 KB in 1 MiB", t.len());
        // Small values: the entry bound holds.
        let t = MemoryTier::new(100, 1 << 20);
        for i in 0..500 {
            t.insert(format!("k{i}"), entry(10));
        }
        assert!(t.len() <= 100, "{}", t.len());
        assert!(t.len() >= 50, "{}", t.len());
    }
}
