//! Key rotation: a namespace *generation* that drops every entry at once without a blocking
//! delete, and the background sweep that removes the old generations' keys.
//!
//! Entries of generation 0 live under `{ns}:` (the key layout of caches that never rotated);
//! generation `n > 0` under `{ns}@{n}:` (`@` cannot appear in a namespace, so no generation's
//! keys can be read as another's or another namespace's). The current generation is the integer
//! at `{ns}::gen` in Redis; [`Cache::rotate`](crate::Cache::rotate) (or `syntra-cache rotate`)
//! increments it.
//!
//! How every instance learns it: the first call of a cache reads `{ns}::gen` before building
//! its first lookup (one GET, bounded by the operation timeout); afterwards a call that finds
//! the figure older than the refresh interval (default 1 s) re-reads it in the background. So
//! for at most one refresh interval after a bump another instance keeps reading and writing the
//! old generation: it serves what it would have served a moment earlier, and its writes there
//! are removed by the sweep or expire. Every answer is still the value of its own key; nothing
//! of the new generation is ever read from the old one.
//!
//! The sweep ([`sweep`]) SCANs `{ns}:*` and `{ns}@*` and UNLINKs, at a bounded rate, every
//! entry not of the kept generation and every lock key (`{ns}::lock:…`) of another generation;
//! it never touches any other key with `::` (budget counters, the generation key).

#[cfg(feature = "redis")]
use crate::error::StoreError;
use crate::store::tiered::Remote;
use crate::store::Store as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// Default interval at which a cache re-reads the generation.
pub const DEFAULT_REFRESH: Duration = Duration::from_secs(1);

/// The key holding the current generation of namespace `ns`: `{ns}::gen`.
pub fn generation_key(ns: &str) -> String {
    format!("{ns}::gen")
}

/// The prefix of generation `generation`'s entries: `{ns}:` for 0, `{ns}@{n}:` after.
pub fn entry_prefix(ns: &str, generation: u64) -> String {
    if generation == 0 {
        format!("{ns}:")
    } else {
        format!("{ns}@{generation}:")
    }
}

/// What a key of namespace `ns` is to a sweep keeping generation `keep`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// An entry of the kept generation, or a key the sweep must never touch (budgets, the
    /// generation key, another namespace's).
    Keep,
    /// An entry of an older (or other) generation.
    OldEntry,
    /// A stampede lock of another generation.
    OldLock,
}

/// Classifies `key` for a sweep of namespace `ns` keeping generation `keep`.
pub fn classify(ns: &str, keep: u64, key: &str) -> KeyKind {
    let Some(rest) = key.strip_prefix(ns) else { return KeyKind::Keep };
    if let Some(lock) = rest.strip_prefix("::lock:") {
        // A lock's suffix is its entry key without the namespace: `svc:…` (generation 0) or
        // `@n:svc:…`.
        let own = match keep {
            0 => !lock.starts_with('@'),
            n => {
                lock.strip_prefix('@').and_then(|l| l.strip_prefix(&n.to_string())).is_some_and(|l| l.starts_with(':'))
            }
        };
        return if own { KeyKind::Keep } else { KeyKind::OldLock };
    }
    if rest.contains("::") {
        return KeyKind::Keep;
    }
    let generation = match rest.as_bytes().first() {
        Some(b':') => Some(0),
        Some(b'@') => rest[1..].split_once(':').and_then(|(n, _)| n.parse::<u64>().ok()),
        _ => None,
    };
    match generation {
        Some(g) if g == keep => KeyKind::Keep,
        Some(_) => KeyKind::OldEntry,
        // `{ns}x…`: another namespace that starts with this one.
        None => KeyKind::Keep,
    }
}

/// A cache's view of its namespace's generation.
pub(crate) struct Generation {
    ns: String,
    current: AtomicU64,
    prefix: RwLock<Arc<str>>,
    loaded: tokio::sync::OnceCell<()>,
    next_refresh_ms: AtomicU64,
    refreshing: AtomicBool,
    every: Duration,
}

impl Generation {
    pub(crate) fn new(ns: &str, every: Duration) -> Self {
        Generation {
            ns: ns.to_owned(),
            current: AtomicU64::new(0),
            prefix: RwLock::new(entry_prefix(ns, 0).into()),
            loaded: tokio::sync::OnceCell::new(),
            next_refresh_ms: AtomicU64::new(0),
            refreshing: AtomicBool::new(false),
            every,
        }
    }

    /// The generation last read.
    pub(crate) fn current(&self) -> u64 {
        self.current.load(Relaxed)
    }

    /// The prefix of the current generation's entries.
    pub(crate) fn prefix(&self) -> Arc<str> {
        self.prefix.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Adopts `generation`; whether it changed.
    pub(crate) fn set(&self, generation: u64) -> bool {
        let mut p = self.prefix.write().unwrap_or_else(|e| e.into_inner());
        if self.current.swap(generation, Relaxed) == generation {
            return false;
        }
        *p = entry_prefix(&self.ns, generation).into();
        tracing::info!(target: "syntra_cache", namespace = %self.ns, generation, "Cache generation changed");
        true
    }

    /// `key` (built under any generation's prefix) under the current one.
    pub(crate) fn rebase(&self, key: String) -> String {
        let prefix = self.prefix();
        if key.starts_with(&*prefix) {
            return key;
        }
        let Some(rest) = key.strip_prefix(self.ns.as_str()) else { return key };
        let rest = match rest.as_bytes().first() {
            Some(b':') => &rest[1..],
            Some(b'@') => rest.split_once(':').map_or(rest, |(_, r)| r),
            _ => return key,
        };
        let mut out = String::with_capacity(prefix.len() + rest.len());
        out.push_str(&prefix);
        out.push_str(rest);
        out
    }

    /// Makes sure the generation was read once (awaited on the first call) and re-reads it in
    /// the background when it is older than the refresh interval.
    pub(crate) async fn sync(&self, cache: &crate::Cache) {
        let Some(remote) = &cache.inner.tiers.remote else { return };
        self.loaded.get_or_init(|| self.load(remote, &cache.inner.error_log)).await;
        let now = crate::codec::now_ms();
        if now < self.next_refresh_ms.load(Relaxed) || self.refreshing.swap(true, Relaxed) {
            return;
        }
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            self.refreshing.store(false, Relaxed);
            return;
        };
        let cache = cache.clone();
        rt.spawn(async move {
            let g = &cache.inner.generation;
            if let Some(remote) = &cache.inner.tiers.remote {
                g.load(remote, &cache.inner.error_log).await;
            }
            g.refreshing.store(false, Relaxed);
        });
    }

    async fn load(&self, remote: &Remote, log: &crate::throttle::ErrorLog) {
        self.next_refresh_ms.store(crate::codec::now_ms() + self.every.as_millis() as u64, Relaxed);
        let key = generation_key(&self.ns);
        match remote.get(&key).await {
            Ok(found) => {
                let generation =
                    found.and_then(|b| std::str::from_utf8(&b).ok().and_then(|s| s.trim().parse().ok())).unwrap_or(0);
                self.set(generation);
            }
            Err(crate::StoreError::BreakerOpen) => {}
            Err(e) => {
                // Rate-limited with every other `Cache ERROR` line of this cache.
                if let Some(held) = log.admit() {
                    let current = self.current();
                    let more = match held {
                        0 => String::new(),
                        n => format!(" ({n} more cache errors not logged in the last {:?})", log.interval()),
                    };
                    tracing::warn!(target: "syntra_cache", key = %key, service = "syntra_cache", method = "generation", error = %e, suppressed = held, "Cache ERROR: {key} - cannot read the key generation ({e}); keeping generation {current}{more}");
                }
            }
        }
    }
}

/// Settings of a [`sweep`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SweepOptions {
    /// Keys removed per second, at most (the sweep sleeps between batches).
    pub max_keys_per_sec: u32,
    /// `COUNT` of each SCAN page.
    pub scan_count: u32,
    /// Count only; remove nothing.
    pub dry_run: bool,
}

impl Default for SweepOptions {
    fn default() -> Self {
        SweepOptions { max_keys_per_sec: 5_000, scan_count: 500, dry_run: false }
    }
}

/// What a sweep found (and, unless a dry run, removed).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SweepReport {
    /// Keys the SCANs returned.
    pub scanned: u64,
    /// Entries of other generations.
    pub entries: u64,
    /// Lock keys of other generations.
    pub locks: u64,
}

/// The current generation of `ns` (0 when never rotated).
#[cfg(feature = "redis")]
pub async fn current<C: redis::aio::ConnectionLike + Send>(conn: &mut C, ns: &str) -> redis::RedisResult<u64> {
    let v: Option<u64> = redis::cmd("GET").arg(generation_key(ns)).query_async(conn).await?;
    Ok(v.unwrap_or(0))
}

/// Increments the generation of `ns` (INCR: concurrent bumps never lose one); the new one.
#[cfg(feature = "redis")]
pub async fn bump<C: redis::aio::ConnectionLike + Send>(conn: &mut C, ns: &str) -> redis::RedisResult<u64> {
    redis::cmd("INCR").arg(generation_key(ns)).query_async(conn).await
}

/// Removes every entry of `ns` not of generation `keep` and its orphaned lock keys, with
/// `SCAN` + `UNLINK` (non-blocking on the server) at most `max_keys_per_sec`. Budget counters
/// and the generation key are never touched. Safe to run from several places at once.
#[cfg(feature = "redis")]
pub async fn sweep<C: redis::aio::ConnectionLike + Send>(
    conn: &mut C,
    ns: &str,
    keep: u64,
    opts: SweepOptions,
) -> redis::RedisResult<SweepReport> {
    let mut report = SweepReport::default();
    let per_sec = f64::from(opts.max_keys_per_sec.max(1));
    let start = tokio::time::Instant::now();
    let mut removed = 0u64;
    let esc = crate::key::glob_escape(ns);
    for pattern in [format!("{esc}:*"), format!("{esc}@*")] {
        let mut cursor: u64 = 0;
        loop {
            let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(opts.scan_count.max(1))
                .query_async(conn)
                .await?;
            report.scanned += keys.len() as u64;
            let mut doomed = Vec::new();
            for k in keys {
                match classify(ns, keep, &k) {
                    KeyKind::Keep => {}
                    KeyKind::OldEntry => {
                        report.entries += 1;
                        doomed.push(k);
                    }
                    KeyKind::OldLock => {
                        report.locks += 1;
                        doomed.push(k);
                    }
                }
            }
            if !opts.dry_run && !doomed.is_empty() {
                let _: u64 = redis::cmd("UNLINK").arg(&doomed).query_async(conn).await?;
                removed += doomed.len() as u64;
                // Stay under the rate: sleep until `removed` keys are due.
                let due = start + Duration::from_secs_f64(removed as f64 / per_sec);
                tokio::time::sleep_until(due).await;
            }
            if next == 0 {
                break;
            }
            cursor = next;
        }
    }
    Ok(report)
}

#[cfg(feature = "redis")]
pub(crate) fn redis_error(e: redis::RedisError) -> StoreError {
    StoreError::Backend(e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_classified_by_generation() {
        use KeyKind::*;
        let c = |keep, k| classify("syntra", keep, k);
        assert_eq!(c(0, "syntra:coingecko:price:btc"), Keep);
        assert_eq!(c(1, "syntra:coingecko:price:btc"), OldEntry);
        assert_eq!(c(1, "syntra@1:coingecko:price:btc"), Keep);
        assert_eq!(c(2, "syntra@1:coingecko:price:btc"), OldEntry);
        assert_eq!(c(12, "syntra@1:x"), OldEntry);
        assert_eq!(c(1, "syntra@12:x"), OldEntry, "1 is not a prefix match of 12");
        // Runtime keys: budgets and the generation key never; locks by their generation.
        assert_eq!(c(5, "syntra::budget:coingecko:rate:0"), Keep);
        assert_eq!(c(5, "syntra::gen"), Keep);
        assert_eq!(c(0, "syntra::lock:coingecko:price:btc"), Keep);
        assert_eq!(c(1, "syntra::lock:coingecko:price:btc"), OldLock);
        assert_eq!(c(1, "syntra::lock:@1:coingecko:price:btc"), Keep);
        assert_eq!(c(2, "syntra::lock:@1:coingecko:price:btc"), OldLock);
        assert_eq!(c(1, "syntra::lock:@12:x"), OldLock);
        // Other namespaces.
        assert_eq!(c(1, "syntrax:coingecko"), Keep);
        assert_eq!(c(1, "other:coingecko"), Keep);
    }

    #[test]
    fn rebase_moves_keys_to_the_current_generation() {
        let g = Generation::new("ns", DEFAULT_REFRESH);
        assert_eq!(g.rebase("ns:a:b".into()), "ns:a:b");
        assert!(g.set(3));
        assert!(!g.set(3));
        assert_eq!(&*g.prefix(), "ns@3:");
        assert_eq!(g.rebase("ns:a:b".into()), "ns@3:a:b");
        assert_eq!(g.rebase("ns@2:a:b".into()), "ns@3:a:b");
        assert_eq!(g.rebase("ns@3:a:b".into()), "ns@3:a:b");
        g.set(0);
        assert_eq!(g.rebase("ns@3:a:b".into()), "ns:a:b");
    }
}
