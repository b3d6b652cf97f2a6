//! Stampede protection (in-process single-flight and the cross-instance Redis lock),
//! stale-if-error, early refresh and TTL jitter, against a real redis-server.

mod common;

use common::{redis_cache, redis_only, run_workers, RedisExt, RedisServer};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::{Duration, Instant};
use syntra_cache::{cached, Cache};

struct Upstream {
    calls: AtomicUsize,
    fail: AtomicBool,
    /// Bodies wait for this before answering (a stampede test holds it until every caller joined).
    open: AtomicBool,
}

impl Default for Upstream {
    fn default() -> Self {
        Upstream { calls: AtomicUsize::new(0), fail: AtomicBool::new(false), open: AtomicBool::new(true) }
    }
}

#[derive(Debug, Clone, PartialEq)]
struct RateLimited;

struct Svc {
    cache: Cache,
    up: Arc<Upstream>,
}

impl Svc {
    fn new(cache: Cache) -> Self {
        Svc { cache, up: Arc::default() }
    }

    /// Another instance (its own cache handle, flights and memory tier) of the same upstream.
    fn sharing(cache: Cache, up: &Arc<Upstream>) -> Self {
        Svc { cache, up: up.clone() }
    }

    fn calls(&self) -> usize {
        self.up.calls.load(SeqCst)
    }

    #[cached(ttl = 60, key = "svc:price:<id>", cache = self.cache)]
    async fn price(&self, id: &str) -> Result<u64, RateLimited> {
        let n = self.up.calls.fetch_add(1, SeqCst) as u64;
        tokio::time::sleep(Duration::from_millis(50)).await;
        while !self.up.open.load(SeqCst) {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        if self.up.fail.load(SeqCst) {
            return Err(RateLimited);
        }
        Ok(id.len() as u64 * 1000 + n)
    }

    #[cached(ttl = "1s", stale = "3s", key = "svc:stale:<id>", cache = self.cache)]
    async fn with_stale(&self, id: &str) -> Result<u64, RateLimited> {
        let n = self.up.calls.fetch_add(1, SeqCst) as u64;
        if self.up.fail.load(SeqCst) {
            return Err(RateLimited);
        }
        Ok(n + id.len() as u64)
    }

    #[cached(ttl = "1s", refresh = "400ms", key = "svc:hot:<id>", cache = self.cache)]
    async fn hot(&self, id: &str) -> Result<u64, RateLimited> {
        let n = self.up.calls.fetch_add(1, SeqCst) as u64;
        tokio::time::sleep(Duration::from_millis(20)).await;
        Ok(n + id.len() as u64)
    }

    #[cached(ttl = 100, jitter = 0.2, key = "svc:jit:<n>", cache = self.cache)]
    async fn jittered(&self, n: u32) -> u32 {
        n
    }
}

/// `n` concurrent cold calls on each instance. The upstream answers only once every caller has
/// joined (`coalesced` reaches `n - 1` per instance, or a 20 s deadline passes), so a slow spawn on
/// a loaded machine cannot turn a follower into a late hit.
async fn stampede_on(svcs: &[Arc<Svc>], n: usize) -> Vec<Result<u64, RateLimited>> {
    svcs[0].up.open.store(false, SeqCst);
    let mut tasks = Vec::with_capacity(n * svcs.len());
    for svc in svcs {
        for _ in 0..n {
            let svc = svc.clone();
            tasks.push(tokio::spawn(async move { svc.price("bitcoin").await }));
        }
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    let joined = |svc: &Arc<Svc>| svc.cache.stats().get("svc", "price").map_or(0, |m| m.coalesced);
    while svcs.iter().any(|s| joined(s) < n as u64 - 1) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    svcs[0].up.open.store(true, SeqCst);
    let mut out = Vec::with_capacity(tasks.len());
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

async fn stampede(svc: Arc<Svc>, n: usize) -> Vec<Result<u64, RateLimited>> {
    stampede_on(&[svc], n).await
}

/// `n` concurrent cold calls, ungated (the other processes of a cross-process stampede cannot be
/// waited for from here).
async fn stampede_local(svc: Arc<Svc>, n: usize) -> Vec<Result<u64, RateLimited>> {
    let tasks: Vec<_> = (0..n)
        .map(|_| {
            let svc = svc.clone();
            tokio::spawn(async move { svc.price("bitcoin").await })
        })
        .collect();
    let mut out = Vec::with_capacity(n);
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousand_cold_calls_one_upstream_call_in_memory() {
    let svc = Arc::new(Svc::new(Cache::memory()));
    let results = stampede(svc.clone(), 1000).await;
    println!("in-process stampede: 1000 concurrent cold calls -> {} upstream call(s)", svc.calls());
    assert_eq!(svc.calls(), 1);
    assert!(results.iter().all(|r| *r == results[0] && r.is_ok()));
    let m = svc.cache.stats();
    let m = m.get("svc", "price").unwrap();
    assert_eq!(m.upstream_calls, 1);
    assert_eq!(m.coalesced, 999);
}

/// Two instances (separate caches: separate single-flight maps) on one redis-server: only the
/// Redis lock can keep the second instance's leader from calling upstream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousand_cold_calls_one_upstream_call_across_two_instances() {
    let redis = RedisServer::start();
    let a = Arc::new(Svc::new(redis_only(&redis, "stp")));
    let b = Arc::new(Svc::sharing(redis_only(&redis, "stp"), &a.up));
    let results = stampede_on(&[a.clone(), b.clone()], 500).await;
    println!("two instances x 500 concurrent cold calls -> {} upstream call(s)", a.calls());
    assert_eq!(a.calls(), 1, "the Redis lock made the other instance wait for the value");
    assert!(results.iter().all(|r| r.is_ok() && *r == results[0]));
    let waited = |s: &Arc<Svc>| s.cache.stats().get("svc", "price").unwrap().coalesced;
    assert_eq!(waited(&a) + waited(&b), 999, "one leader, 999 callers that waited for it");
    assert_eq!(redis.get_bytes("stp::lock:svc:price:bitcoin"), None, "lock released");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_failures_are_shared_not_cached() {
    let svc = Arc::new(Svc::new(Cache::memory()));
    svc.up.fail.store(true, SeqCst);
    let results = stampede(svc.clone(), 500).await;
    assert_eq!(svc.calls(), 1, "followers receive the leader's error");
    assert!(results.iter().all(|r| *r == Err(RateLimited)));
    svc.up.fail.store(false, SeqCst);
    assert!(svc.price("bitcoin").await.is_ok(), "the error was not cached");
    assert_eq!(svc.calls(), 2);
}

/// Child-process entry of `cross_process_stampede` (runs only when that test spawns it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "worker process of cross_process_stampede"]
async fn stampede_worker() {
    // Run by `--include-ignored` rather than by `cross_process_stampede`: nothing to do.
    let Ok(url) = std::env::var("STAMPEDE_REDIS_URL") else { return };
    let start_at: u64 = std::env::var("STAMPEDE_START_AT_MS").unwrap().parse().unwrap();
    let per_process: usize = std::env::var("STAMPEDE_CALLS").unwrap().parse().unwrap();
    // Generous timeouts: a first connect on a loaded machine must not be taken for an outage.
    let cache = Cache::builder()
        .namespace("xproc")
        .redis(url)
        .op_timeout(Duration::from_secs(2))
        .connect_timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let svc = Arc::new(Svc::new(cache));
    let now = syntra_cache::codec::now_ms();
    tokio::time::sleep(Duration::from_millis(start_at.saturating_sub(now))).await;
    let results = stampede_local(svc.clone(), per_process).await;
    assert!(results.iter().all(|r| r.is_ok() && *r == results[0]));
    println!("UPSTREAM={} VALUE={:?}", svc.calls(), results[0]);
}

#[test]
fn cross_process_stampede() {
    const PROCESSES: usize = 4;
    const CALLS: usize = 250;
    let redis = RedisServer::start();
    let start_at = syntra_cache::codec::now_ms() + 3000;
    let env = [
        ("STAMPEDE_REDIS_URL", redis.url()),
        ("STAMPEDE_START_AT_MS", start_at.to_string()),
        ("STAMPEDE_CALLS", CALLS.to_string()),
    ];
    let reports = run_workers("stampede_worker", PROCESSES, &env, "UPSTREAM=");
    let upstream: usize = reports.iter().map(|r| r.get::<usize>("UPSTREAM")).sum();
    let values: Vec<String> = reports.iter().map(|r| r.get("VALUE")).collect();
    println!(
        "cross-process stampede: {PROCESSES} processes x {CALLS} concurrent cold calls -> {upstream} upstream call(s)"
    );
    assert_eq!(upstream, 1, "{PROCESSES} processes x {CALLS} concurrent cold calls");
    assert!(values.windows(2).all(|w| w[0] == w[1]), "every process got the same value: {values:?}");
}

#[tokio::test]
async fn stale_if_error_serves_the_last_good_value_within_the_window() {
    let redis = RedisServer::start();
    let svc = Svc::new(redis_cache(&redis, "stale"));
    let good = svc.with_stale("btc").await.unwrap();
    let pttl = redis.pttl("stale:svc:stale:btc");
    assert!((3_500..=4_000).contains(&pttl), "Redis keeps the entry for TTL + stale: {pttl}");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    svc.up.fail.store(true, SeqCst);
    assert_eq!(svc.with_stale("btc").await, Ok(good), "stale value while upstream fails");
    assert_eq!(svc.cache.stats().get("svc", "stale").unwrap().stale, 1);
    svc.up.fail.store(false, SeqCst);
    let fresh = svc.with_stale("btc").await.unwrap();
    assert_ne!(fresh, good, "expired: upstream is asked again when it works");
    svc.up.fail.store(true, SeqCst);
    tokio::time::sleep(Duration::from_millis(4100)).await;
    assert_eq!(svc.with_stale("btc").await, Err(RateLimited), "past TTL + stale the error shows");
}

#[tokio::test]
async fn early_refresh_keeps_a_hot_key_warm() {
    let redis = RedisServer::start();
    let svc = Svc::new(redis_cache(&redis, "hot"));
    let deadline = Instant::now() + Duration::from_millis(3500);
    let mut calls = 0;
    while Instant::now() < deadline {
        svc.hot("btc").await.unwrap();
        calls += 1;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let m = svc.cache.stats();
    let m = m.get("svc", "hot").unwrap();
    println!("early refresh: {calls} calls over 3.5 s, ttl 1 s, refresh window 400 ms: {} misses, {} refreshes, {} upstream calls, p99 {:?}", m.misses, m.refreshes, m.upstream_calls, m.latency.p99);
    assert_eq!(m.misses, 1, "only the first call found the key cold ({calls} calls)");
    assert!(m.refreshes >= 3, "refreshed before each expiry: {m:?}");
    assert_eq!(m.upstream_calls, 1 + m.refreshes);
}

#[tokio::test]
async fn redis_killed_while_another_instance_holds_the_lock() {
    let mut redis = RedisServer::start();
    let svc = Svc::new(
        Cache::builder()
            .namespace("lk")
            .redis(redis.url())
            .op_timeout(Duration::from_millis(200))
            .stampede_lock(Duration::from_secs(5), Duration::from_secs(3))
            .build()
            .unwrap(),
    );
    // Another instance holds the lock and will never write the value.
    let _: () = redis.cmd(&["SET", "lk::lock:svc:price:bitcoin", "other", "PX", "5000"]);
    let started = Instant::now();
    let call = svc.price("bitcoin");
    let kill = async {
        tokio::time::sleep(Duration::from_millis(150)).await;
        redis.kill();
    };
    let (result, ()) = tokio::join!(call, kill);
    assert!(result.is_ok());
    assert_eq!(svc.calls(), 1);
    assert!(started.elapsed() < Duration::from_secs(2), "no hang: {:?}", started.elapsed());
}

#[tokio::test]
async fn a_lock_holder_that_never_writes_only_delays_by_the_wait_bound() {
    let redis = RedisServer::start();
    let svc = Svc::new(
        Cache::builder()
            .namespace("lw")
            .redis(redis.url())
            .stampede_lock(Duration::from_secs(5), Duration::from_millis(500))
            .build()
            .unwrap(),
    );
    let _: () = redis.cmd(&["SET", "lw::lock:svc:price:bitcoin", "crashed", "PX", "10000"]);
    let started = Instant::now();
    assert!(svc.price("bitcoin").await.is_ok());
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(400) && waited < Duration::from_millis(1500), "{waited:?}");
}

#[tokio::test]
async fn jitter_spreads_expiry() {
    let redis = RedisServer::start();
    let svc = Svc::new(redis_only(&redis, "jit"));
    let mut ttls = Vec::new();
    for n in 0..50 {
        svc.jittered(n).await;
        ttls.push(redis.pttl(&format!("jit:svc:jit:{n}")));
    }
    assert!(ttls.iter().all(|t| (79_000..=100_000).contains(t)), "{ttls:?}");
    let spread = ttls.iter().max().unwrap() - ttls.iter().min().unwrap();
    assert!(spread > 5_000, "TTLs spread out: {spread} ms");
}
