//! The disk tier through the public API: entries and budgets' counters survive a restart (a new
//! `Cache` on the same file), and a corrupt or locked file is a logged fallback to memory only.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::time::Duration;
use syntra_cache::budget::{Budget, Budgets, Limit};
use syntra_cache::store::disk::{DiskConfig, DiskStore};
use syntra_cache::store::Store;
use syntra_cache::{cached, Cache};

static CALLS: AtomicUsize = AtomicUsize::new(0);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Chart {
    prices: Vec<(u64, f64)>,
}

/// A large value (compressed on disk) whose content depends on the call count, so a value
/// answered from disk is told apart from a recomputed one.
#[cached(ttl = 600, key = "gecko:chart:<id>", skip(cache), cache = cache)]
async fn chart(cache: &Cache, id: &str) -> Result<Chart, String> {
    let k = CALLS.fetch_add(1, SeqCst) as u64;
    Ok(Chart { prices: (0..400).map(|i| (1_735_689_600_000 + i * 300_000 + k, 97_000.0 + i as f64 * 0.5)).collect() })
}

fn temp(name: &str) -> PathBuf {
    let p = std::env::temp_dir().join(format!("syntra-disk-it-{}-{name}.redb", std::process::id()));
    let _ = std::fs::remove_file(&p);
    p
}

fn budgets() -> Budgets {
    Budgets::new(vec![Budget::new("cg").quota_day(3)]).unwrap()
}

fn cache(path: &PathBuf) -> Cache {
    Cache::builder().namespace("dk").disk(path).budgets(budgets()).build().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entries_and_budget_counters_survive_a_restart() {
    let path = temp("restart");
    let first = {
        let c = cache(&path);
        assert!(c.has_remote(), "the disk tier is the cache's second tier");
        let v = chart(&c, "bitcoin").await.unwrap();
        for _ in 0..3 {
            c.budgets().unwrap().acquire("cg", 1).await.unwrap();
        }
        v
        // Dropping the cache commits the queued writes and closes the file.
    };
    let calls = CALLS.load(SeqCst);
    let c = cache(&path);
    assert!(c.has_remote(), "the file opens again after the first cache is gone");
    assert_eq!(chart(&c, "bitcoin").await.unwrap(), first, "answered from disk, not recomputed");
    assert_eq!(CALLS.load(SeqCst), calls);
    let denied = c.budgets().unwrap().acquire("cg", 1).await.unwrap_err();
    assert!(matches!(denied.limit, Limit::Quota { used: 3, .. }), "no double spend after a restart: {denied:?}");
    // Values on disk are compressed (the chart's JSON is ~12 KB).
    drop(c);
    let disk = DiskStore::open(DiskConfig::new(&path)).unwrap();
    let stored = disk.get("dk:gecko:chart:bitcoin").await.unwrap().expect("on disk");
    assert!(syntra_cache::compress::is_compressed(&stored), "the large value is stored compressed");
    let plain = serde_json::to_vec(&first).unwrap();
    assert!(stored.len() * 2 < plain.len(), "{} bytes stored for {} of JSON", stored.len(), plain.len());
    drop(disk);
    let _ = std::fs::remove_file(&path);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_file_falls_back_to_memory() {
    let path = temp("corrupt");
    std::fs::write(&path, vec![0xA5; 64 * 1024]).unwrap();
    let c = cache(&path);
    assert!(!c.has_remote(), "a corrupt file is not used");
    let before = CALLS.load(SeqCst);
    let v = chart(&c, "eth").await.unwrap();
    assert_eq!(chart(&c, "eth").await.unwrap(), v, "the memory tier still caches");
    assert_eq!(CALLS.load(SeqCst), before + 1);
    assert_eq!(std::fs::read(&path).unwrap(), vec![0xA5; 64 * 1024], "the file is left for the operator");
    let _ = std::fs::remove_file(&path);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_locked_file_falls_back_to_memory() {
    let path = temp("locked");
    let holder = cache(&path);
    assert!(holder.has_remote());
    let c = cache(&path);
    assert!(!c.has_remote(), "a file held by another cache is not shared");
    let v = chart(&c, "sol").await.unwrap();
    assert_eq!(chart(&c, "sol").await.unwrap(), v);
    drop(holder);
    let _ = std::fs::remove_file(&path);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_entries_are_not_served_after_a_restart() {
    #[cached(ttl = "300ms", key = "short:<n>", skip(cache), cache = cache)]
    async fn short(cache: &Cache, n: u32) -> Result<u64, String> {
        Ok(CALLS.fetch_add(1, SeqCst) as u64 + u64::from(n))
    }
    let path = temp("expiry");
    let v = short(&cache(&path), 1).await.unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_ne!(short(&cache(&path), 1).await.unwrap(), v, "expired on disk: recomputed");
    let _ = std::fs::remove_file(&path);
}
