//! Beyond one Redis, against real servers started here on loopback: a 3-master + 3-replica
//! Redis Cluster (reads, writes, stampede locks, budgets, prefix invalidation, a master killed
//! under load) and a Sentinel-watched master killed under load (the cache follows the
//! failover).

mod common;

use common::topology::{wait_until, RedisCluster, SentinelSetup};
use common::RedisExt;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::{Duration, Instant};
use syntra_cache::budget::{Budget, Budgets, Decider};
use syntra_cache::store::redis::{RedisConfig, RedisStore, RedisTopology};
use syntra_cache::store::Store;
use syntra_cache::{cached, Cache};

struct Svc {
    cache: Cache,
    calls: AtomicUsize,
    delay: Duration,
}

impl Svc {
    fn new(cache: Cache, delay: Duration) -> Arc<Self> {
        Arc::new(Svc { cache, calls: AtomicUsize::new(0), delay })
    }

    #[cached(ttl = 60, key = "svc:v:<id>", cache = self.cache)]
    async fn value(&self, id: u64) -> String {
        self.calls.fetch_add(1, SeqCst);
        tokio::time::sleep(self.delay).await;
        expected(id)
    }

    /// The scale row's method: a 1 s TTL, so a hot key set mixes hits and misses.
    #[cached(ttl = 1, key = "svc:hot:<id>", cache = self.cache)]
    async fn hot(&self, id: u64) -> String {
        self.calls.fetch_add(1, SeqCst);
        expected(id)
    }
}

fn expected(id: u64) -> String {
    format!("value-{id}")
}

fn cluster_cache(cluster: &RedisCluster, ns: &str, local: bool) -> Cache {
    Cache::builder()
        .namespace(ns)
        .redis_cluster(cluster.seeds())
        .local_tier(local)
        .op_timeout(Duration::from_millis(300))
        .connect_timeout(Duration::from_millis(300))
        .breaker(3, Duration::from_millis(200))
        // A lock taken on a master that dies outlives it on the promoted replica; waiters give
        // up after this and compute themselves.
        .stampede_lock(Duration::from_secs(2), Duration::from_millis(500))
        .budgets(Budgets::new(vec![Budget::new("cg").rate(100, Duration::from_secs(10))]).unwrap())
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_serves_reads_writes_locks_budgets_and_prefix_invalidation() {
    let cluster = RedisCluster::start(1000);
    let writer = Svc::new(cluster_cache(&cluster, "cl", true), Duration::ZERO);
    for id in 0..60 {
        assert_eq!(writer.value(id).await, expected(id));
    }
    assert_eq!(writer.calls.load(SeqCst), 60);
    let keys = cluster.keys("cl:svc:v:*");
    assert_eq!(keys.len(), 60, "every write landed: {keys:?}");
    let masters: std::collections::HashSet<u16> = keys.iter().map(|k| cluster.master_port_of(k)).collect();
    assert_eq!(masters.len(), 3, "keys spread over every master");

    // Another instance, Redis only: every answer comes from the cluster.
    let reader = Svc::new(cluster_cache(&cluster, "cl", false), Duration::ZERO);
    for id in 0..60 {
        assert_eq!(reader.value(id).await, expected(id));
    }
    assert_eq!(reader.calls.load(SeqCst), 0, "hits from the cluster");

    // Stampede: 2 instances x 20 callers on one cold key, a slow body: one upstream call.
    let (a, b) = (Svc::new(cluster_cache(&cluster, "cl", false), Duration::from_millis(200)), {
        Svc::new(cluster_cache(&cluster, "cl", false), Duration::from_millis(200))
    });
    let mut tasks = Vec::new();
    for i in 0..40 {
        let s = if i % 2 == 0 { a.clone() } else { b.clone() };
        tasks.push(tokio::spawn(async move { s.value(1_000).await }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), expected(1_000));
    }
    assert_eq!(a.calls.load(SeqCst) + b.calls.load(SeqCst), 1, "the cross-instance lock works on a cluster");

    // Budgets: the acquire script's keys share the budget's hash tag (no CROSSSLOT).
    let budgets = writer.cache.budgets().unwrap();
    for i in 0..10 {
        let p = budgets.acquire("cg", 1).await.unwrap_or_else(|d| panic!("permit {i}: {d}"));
        assert_eq!(p.decided_by, Decider::Shared, "decided by the cluster");
    }
    let denied = reader.cache.budgets().unwrap().acquire("cg", 1).await.unwrap_err();
    assert!(denied.retry_after > Duration::ZERO, "shared across instances: {denied}");
    assert!(!cluster.keys("cl::budget:{cg}:*").is_empty());
    budgets.reset().await.unwrap();
    assert!(cluster.keys("cl::budget:{cg}:*").is_empty(), "reset scans every master");

    // Prefix invalidation: SCAN on every master, UNLINK split by slot.
    let removed = writer.cache.remove_prefix("svc:v:").await.unwrap();
    assert_eq!(removed, 61);
    assert!(cluster.keys("cl:svc:v:*").is_empty());
    assert!(cluster.keys("cl::*").iter().all(|k| !k.starts_with("cl:svc")), "runtime keys untouched");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_master_killed_under_load_answers_stay_correct_and_writes_return() {
    let mut cluster = RedisCluster::start(500);
    let cache = cluster_cache(&cluster, "kill", false);
    let svc = Svc::new(cache.clone(), Duration::from_millis(2));
    for id in 0..200 {
        svc.value(id).await;
    }
    let stop = Arc::new(AtomicBool::new(false));
    let worst = Arc::new(std::sync::Mutex::new(Duration::ZERO));
    let mut load = Vec::new();
    for t in 0..8u64 {
        let (svc, stop, worst) = (svc.clone(), stop.clone(), worst.clone());
        load.push(tokio::spawn(async move {
            let mut n = 0u64;
            while !stop.load(SeqCst) {
                let id = (n * 8 + t) % 400;
                let t0 = Instant::now();
                assert_eq!(svc.value(id).await, expected(id), "a wrong answer during the failover");
                let took = t0.elapsed();
                let mut w = worst.lock().unwrap();
                *w = (*w).max(took);
                n += 1;
            }
            n
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Kill the master that holds a probe key's slot.
    let probe = "kill:probe";
    let port = cluster.master_port_of(probe);
    let killed_at = Instant::now();
    let victim = cluster.index_of(port);
    cluster.nodes[victim].kill();
    // Writes to that slot land again once the replica is promoted.
    let store = RedisStore::open_topology(
        &RedisTopology::Cluster(cluster.seeds()),
        RedisConfig { op_timeout: Duration::from_millis(300), connect_timeout: Duration::from_millis(300) },
    )
    .unwrap();
    let mut landed = None;
    while killed_at.elapsed() < Duration::from_secs(20) {
        if store.set(probe, b"x".to_vec(), Duration::from_secs(30)).await.is_ok() {
            landed = Some(killed_at.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let landed = landed.expect("writes to the killed master's slots land again");
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, SeqCst);
    let mut calls = 0;
    for t in load {
        calls += t.await.unwrap();
    }
    let new_port = cluster.master_port_of(probe);
    assert_ne!(new_port, port, "the replica took over");
    let worst = *worst.lock().unwrap();
    println!(
        "CLUSTER-FAILOVER kill->write {} ms, worst call {} ms, {calls} calls",
        landed.as_millis(),
        worst.as_millis()
    );
    // Node timeout 500 ms + election: a few seconds at most.
    assert!(landed < Duration::from_secs(10), "writes back after {landed:?}");
    // A call is bounded by timeouts (lookup, lock, store), never by the failover.
    assert!(worst < Duration::from_millis(1500), "worst call {worst:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sentinel_master_killed_under_load_is_followed_to_the_new_master() {
    let mut setup = SentinelSetup::start(400);
    let cache = Cache::builder()
        .namespace("sn")
        .redis_sentinel(setup.urls(), setup.name.clone())
        .local_tier(false)
        .op_timeout(Duration::from_millis(250))
        .connect_timeout(Duration::from_millis(250))
        .breaker(3, Duration::from_millis(100))
        // A lock taken on the old master outlives it (replicated); waiters give up after this.
        .stampede_lock(Duration::from_secs(2), Duration::from_millis(500))
        .build()
        .unwrap();
    let svc = Svc::new(cache.clone(), Duration::from_millis(1));
    for id in 0..50 {
        assert_eq!(svc.value(id).await, expected(id));
    }
    let old = setup.master.port();
    assert_eq!(setup.master.cmd::<Vec<String>>(&["KEYS", "sn:*"]).len(), 50, "writes on the master");

    let stop = Arc::new(AtomicBool::new(false));
    let mut load = Vec::new();
    for t in 0..4u64 {
        let (svc, stop) = (svc.clone(), stop.clone());
        load.push(tokio::spawn(async move {
            let mut n = 0u64;
            let mut worst = Duration::ZERO;
            while !stop.load(SeqCst) {
                let id = (n * 4 + t) % 500;
                let t0 = Instant::now();
                assert_eq!(svc.value(id).await, expected(id), "a wrong answer during the failover");
                worst = worst.max(t0.elapsed());
                n += 1;
            }
            worst
        }));
    }
    let store = RedisStore::open_topology(
        &RedisTopology::Sentinel { sentinels: setup.urls(), master: setup.name.clone() },
        RedisConfig { op_timeout: Duration::from_millis(250), connect_timeout: Duration::from_millis(250) },
    )
    .unwrap();
    store.set("sn:probe", b"before".to_vec(), Duration::from_secs(60)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    setup.master.kill(); // SIGKILL
    let killed_at = Instant::now();
    // Writes go on being tried; the first that lands after the promotion is timed.
    let writer = tokio::spawn(async move {
        let mut i = 0u64;
        loop {
            i += 1;
            if store.set("sn:probe", i.to_string().into_bytes(), Duration::from_secs(60)).await.is_ok()
                && store.master_switches() > 0
            {
                return (Instant::now(), i, store);
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    });
    let mut promoted_at = None;
    wait_until(Duration::from_secs(20), "Sentinel promotes the replica", || {
        let moved = setup.master_port().is_some_and(|p| p != old);
        if moved && promoted_at.is_none() {
            promoted_at = Some(Instant::now());
        }
        moved
    });
    let promoted_at = promoted_at.unwrap();
    let (first_write, n, store) = tokio::time::timeout(Duration::from_secs(10), writer).await.unwrap().unwrap();
    let promotion_to_write = first_write.saturating_duration_since(promoted_at);
    let new = setup.master_port().unwrap();
    assert_eq!(new, setup.replica.port(), "the replica is the new master");
    let on_new: String = setup.replica.cmd(&["GET", "sn:probe"]);
    assert_eq!(on_new, n.to_string(), "the write landed on the new master");
    // The cache itself writes there too.
    let t0 = Instant::now();
    loop {
        svc.value(10_000).await;
        if setup.replica.cmd::<Option<String>>(&["GET", "sn:svc:v:10000"]).is_some() {
            break;
        }
        assert!(t0.elapsed() < Duration::from_secs(5), "the cache never wrote to the new master");
        let _ = cache.remove("svc:v:10000").await;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, SeqCst);
    let mut worst = Duration::ZERO;
    for t in load {
        worst = worst.max(t.await.unwrap());
    }
    println!(
        "SENTINEL-FAILOVER kill->promotion {} ms, promotion->first write {} ms, worst call {} ms, switches {}",
        promoted_at.duration_since(killed_at).as_millis(),
        promotion_to_write.as_millis(),
        worst.as_millis(),
        store.master_switches()
    );
    assert!(promotion_to_write < Duration::from_millis(1500), "promotion -> first write: {promotion_to_write:?}");
    // Bounded by the timeouts and the lock wait, never by the failover itself.
    assert!(worst < Duration::from_millis(1500), "worst call {worst:?}");
}

#[test]
fn topology_settings_from_the_environment() {
    use syntra_cache::CacheBuilder;
    let vars = |pairs: &'static [(&'static str, &'static str)]| {
        move |k: &str| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string())
    };
    let c = CacheBuilder::from_vars(vars(&[(
        "SYNTRA_CACHE_REDIS_CLUSTER",
        "redis://127.0.0.1:7000, redis://127.0.0.1:7001",
    )]))
    .unwrap()
    .build()
    .unwrap();
    assert!(c.has_remote());
    let err = CacheBuilder::from_vars(vars(&[("SYNTRA_CACHE_REDIS_SENTINEL", "redis://127.0.0.1:26379")])).unwrap_err();
    assert!(err.to_string().contains("SYNTRA_CACHE_REDIS_SENTINEL_MASTER"), "{err}");
    let ok = CacheBuilder::from_vars(vars(&[
        ("SYNTRA_CACHE_REDIS_SENTINEL", "redis://127.0.0.1:26379,redis://127.0.0.1:26380"),
        ("SYNTRA_CACHE_REDIS_SENTINEL_MASTER", "mymaster"),
        ("SYNTRA_CACHE_COHERENCE", "true"),
        ("SYNTRA_CACHE_COHERENCE_GRACE_MS", "250"),
    ]))
    .unwrap()
    .build()
    .unwrap();
    assert!(ok.coherence_stats().is_some(), "coherence on");
    let both = CacheBuilder::from_vars(vars(&[
        ("SYNTRA_CACHE_REDIS_URL", "redis://127.0.0.1:1"),
        ("SYNTRA_CACHE_REDIS_CLUSTER", "redis://:hunter2@127.0.0.1:7000"),
    ]))
    .unwrap_err();
    assert!(both.to_string().contains("only one") && !both.to_string().contains("hunter2"), "{both}");
    let custom = Cache::builder().coherent(true).build().unwrap_err();
    assert!(custom.to_string().contains("needs Redis"), "{custom}");
}

// ---- Scale: 4 processes against one node and against the cluster ---------------------------

fn env_cache(ns: &str) -> Cache {
    let b = Cache::builder()
        .namespace(ns)
        .local_tier(false)
        .op_timeout(Duration::from_millis(500))
        .connect_timeout(Duration::from_millis(500));
    let urls = std::env::var("SCALE_URLS").unwrap();
    let b = match std::env::var("SCALE_MODE").unwrap().as_str() {
        "cluster" => b.redis_cluster(urls.split(',')),
        _ => b.redis(urls),
    };
    b.build().unwrap()
}

fn wait_for_start() {
    let at: u64 = std::env::var("SCALE_START_MS").unwrap().parse().unwrap();
    let now = common::now_ms();
    std::thread::sleep(Duration::from_millis(at.saturating_sub(now)));
}

/// One process of the throughput row: 64 tasks on a hot set of 2,000 keys (TTL 1 s, so hits
/// and misses mix), Redis tier only, for `SCALE_SECS`.
#[test]
#[ignore = "child process of four_processes_single_node_vs_cluster"]
fn scale_worker() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let svc = Svc::new(env_cache("scale"), Duration::ZERO);
    let secs: f64 = std::env::var("SCALE_SECS").unwrap().parse().unwrap();
    rt.block_on(svc.hot(0)); // connects
    wait_for_start();
    let stop = Instant::now() + Duration::from_secs_f64(secs);
    let total = rt.block_on(async {
        let tasks: Vec<_> = (0..64u64)
            .map(|t| {
                let svc = svc.clone();
                tokio::spawn(async move {
                    let (mut n, mut x) = (0u64, t.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
                    while Instant::now() < stop {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        let id = x % 2000;
                        assert_eq!(svc.hot(id).await, expected(id));
                        n += 1;
                    }
                    n
                })
            })
            .collect();
        let mut total = 0;
        for t in tasks {
            total += t.await.unwrap();
        }
        total
    });
    let s = svc.cache.stats();
    let errors: u64 = s.methods.iter().map(|m| m.cache_errors).sum();
    println!("SCALE calls={total} upstream={} errors={errors} secs={secs}", svc.calls.load(SeqCst));
}

/// One process of the stampede: 1,000 concurrent cold calls of one key.
#[test]
#[ignore = "child process of four_processes_single_node_vs_cluster"]
fn stampede_worker() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let svc = Svc::new(env_cache("stampede"), Duration::from_millis(300));
    rt.block_on(svc.cache.remove("never")).unwrap(); // connects
    wait_for_start();
    rt.block_on(async {
        let tasks: Vec<_> = (0..1000)
            .map(|_| {
                let svc = svc.clone();
                tokio::spawn(async move { svc.value(424_242).await })
            })
            .collect();
        for t in tasks {
            assert_eq!(t.await.unwrap(), expected(424_242));
        }
    });
    println!("STAMPEDE upstream={}", svc.calls.load(SeqCst));
}

fn workers(worker: &str, marker: &str, mode: &str, urls: &[String], secs: f64) -> Vec<common::Report> {
    let env = [
        ("SCALE_MODE", mode.to_owned()),
        ("SCALE_URLS", urls.join(",")),
        ("SCALE_SECS", secs.to_string()),
        ("SCALE_START_MS", (common::now_ms() + 1500).to_string()),
    ];
    common::run_workers(worker, 4, &env, marker)
}

#[test]
fn four_processes_single_node_vs_cluster() {
    let secs: f64 = std::env::var("SYNTRA_SCALE_SECS").ok().and_then(|v| v.parse().ok()).unwrap_or(2.0);
    let single = common::RedisServer::start();
    let cluster = RedisCluster::start(1000);
    let mut rows = Vec::new();
    for (mode, urls) in [("single", vec![single.url()]), ("cluster", cluster.seeds())] {
        let reports = workers("scale_worker", "SCALE ", mode, &urls, secs);
        let calls: u64 = reports.iter().map(|r| r.get::<u64>("calls")).sum();
        let upstream: u64 = reports.iter().map(|r| r.get::<u64>("upstream")).sum();
        let errors: u64 = reports.iter().map(|r| r.get::<u64>("errors")).sum();
        assert!(calls > 0 && upstream > 0, "hits and misses mixed: {calls} calls, {upstream} upstream");
        assert_eq!(errors, 0, "{mode}: store errors under load");
        rows.push(format!(
            "SCALE-ROW {mode}: {:.0} calls/s over 4 processes x 64 tasks ({calls} calls, {upstream} upstream = {:.1}% misses)",
            calls as f64 / secs,
            upstream as f64 * 100.0 / calls as f64
        ));
    }
    let reports = workers("stampede_worker", "STAMPEDE ", "cluster", &cluster.seeds(), 0.0);
    let upstream: u64 = reports.iter().map(|r| r.get::<u64>("upstream")).sum();
    for r in &rows {
        println!("{r}");
    }
    println!("STAMPEDE-ROW cluster: 4 processes x 1,000 cold calls -> {upstream} upstream call(s)");
    assert_eq!(upstream, 1, "one upstream call across 4 processes on the cluster");
}
