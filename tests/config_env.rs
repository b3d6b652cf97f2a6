//! Configuration from the environment against a real redis-server: every `SYNTRA_CACHE_*`
//! variable through `CacheBuilder::from_vars` with an effect each can be seen to have, and
//! `Cache::from_env` / the process-wide default cache reading the real environment (in child
//! processes: the default cache is process-global), with its fallback to memory on a bad value.

mod common;

use common::{child_process, envelope, rewrite_data, run_child, scan_keys, RedisExt, RedisServer};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::time::{Duration, Instant};
use syntra_cache::budget::Denied;
use syntra_cache::{cached, BuildError, Cache, CacheBuilder};

#[derive(Debug, Clone, PartialEq)]
enum ApiError {
    Budget(Denied),
}

impl From<Denied> for ApiError {
    fn from(d: Denied) -> Self {
        ApiError::Budget(d)
    }
}

struct Svc {
    cache: Cache,
    calls: AtomicUsize,
}

impl Svc {
    fn new(cache: Cache) -> Self {
        Svc { cache, calls: AtomicUsize::new(0) }
    }

    fn calls(&self) -> usize {
        self.calls.load(SeqCst)
    }

    /// 100 + the number of earlier calls: every computation gives a new value.
    #[cached(ttl = 60, key = "coingecko:price:<id>", cache = self.cache)]
    async fn price(&self, id: &str) -> Result<u64, ApiError> {
        Ok(100 + self.calls.fetch_add(1, SeqCst) as u64)
    }

    #[cached(ttl = 60, key = "coingecko:coin:<id>", budget = "coingecko", cache = self.cache)]
    async fn budgeted(&self, id: &str) -> Result<u64, ApiError> {
        self.calls.fetch_add(1, SeqCst);
        Ok(id.len() as u64)
    }
}

/// A cache from these variables only (nothing from the process environment).
fn from_vars(pairs: &[(&str, String)]) -> Cache {
    let map: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
    CacheBuilder::from_vars(|k| map.get(k).cloned()).unwrap().build().unwrap()
}

fn url(redis: &RedisServer, db: u8) -> String {
    format!("redis://127.0.0.1:{}/{db}", redis.port())
}

fn db(redis: &RedisServer, db: u8) -> redis::Client {
    redis::Client::open(url(redis, db)).unwrap()
}

/// How long `f` takes.
async fn timed<T>(f: impl std::future::Future<Output = T>) -> (T, Duration) {
    let t = Instant::now();
    let v = f.await;
    (v, t.elapsed())
}

#[tokio::test]
async fn redis_url_and_namespace() {
    let redis = RedisServer::start();
    let svc =
        Svc::new(from_vars(&[("SYNTRA_CACHE_REDIS_URL", url(&redis, 2)), ("SYNTRA_CACHE_NAMESPACE", "envbot".into())]));
    assert!(svc.cache.has_remote());
    assert_eq!(svc.price("btc").await.unwrap(), 100);
    assert_eq!(svc.price("btc").await.unwrap(), 100);
    assert_eq!(svc.calls(), 1);
    // The key carries the namespace and lives in the URL's database.
    assert_eq!(scan_keys(&db(&redis, 2), "*"), vec!["envbot:coingecko:price:btc".to_string()]);
    assert_eq!(envelope(&db(&redis, 2), "envbot:coingecko:price:btc").unwrap()["data"], 100);
    assert!(scan_keys(&db(&redis, 0), "*").is_empty());
    assert_eq!(svc.cache.stats().total().cache_errors, 0);
}

#[tokio::test]
async fn memory_capacity() {
    // A small memory tier (no Redis) keeps only a few of 200 entries; the default keeps them all.
    async fn second_round_hits(cache: Cache) -> usize {
        let svc = Svc::new(cache);
        for i in 0..200 {
            svc.price(&i.to_string()).await.unwrap();
        }
        for i in 0..200 {
            svc.price(&i.to_string()).await.unwrap();
        }
        400 - svc.calls()
    }
    let small = second_round_hits(from_vars(&[("SYNTRA_CACHE_MEMORY_CAPACITY", "5".into())])).await;
    let default = second_round_hits(from_vars(&[])).await;
    eprintln!("second-round hits of 200: capacity 5 -> {small}, default -> {default}");
    assert_eq!(default, 200, "the default capacity (10,000) keeps all 200");
    assert!(small <= 40, "a capacity of 5 kept {small} of 200 entries");

    // 0: no memory tier. Without Redis nothing is cached; with Redis every read goes to Redis.
    assert_eq!(second_round_hits(from_vars(&[("SYNTRA_CACHE_MEMORY_CAPACITY", "0".into())])).await, 0);
    let redis = RedisServer::start();
    let svc = Svc::new(from_vars(&[
        ("SYNTRA_CACHE_REDIS_URL", url(&redis, 0)),
        ("SYNTRA_CACHE_MEMORY_CAPACITY", "0".into()),
    ]));
    assert_eq!(svc.price("btc").await.unwrap(), 100);
    rewrite_data(&redis.client(), "syntra:coingecko:price:btc", 555.into());
    assert_eq!(svc.price("btc").await.unwrap(), 555, "read from Redis: no memory copy");
    assert_eq!(svc.calls(), 1);
}

#[tokio::test]
async fn local_tier_false_reads_redis_on_every_call() {
    let redis = RedisServer::start();
    let key = "syntra:coingecko:price:btc";
    let off =
        Svc::new(from_vars(&[("SYNTRA_CACHE_REDIS_URL", url(&redis, 0)), ("SYNTRA_CACHE_LOCAL_TIER", "false".into())]));
    let on = Svc::new(from_vars(&[("SYNTRA_CACHE_REDIS_URL", url(&redis, 0))]));
    assert_eq!(off.price("btc").await.unwrap(), 100);
    assert_eq!(on.price("btc").await.unwrap(), 100, "read through Redis (and kept in memory)");
    rewrite_data(&redis.client(), key, 777.into());
    assert_eq!(off.price("btc").await.unwrap(), 777, "LOCAL_TIER=false: the change in Redis is seen at once");
    assert_eq!(on.price("btc").await.unwrap(), 100, "the default: the memory copy answers");
    assert_eq!(off.calls() + on.calls(), 1);
}

#[tokio::test]
async fn local_ttl_cap_ms_bounds_how_long_a_redis_value_stays_in_memory() {
    let redis = RedisServer::start();
    let key = "syntra:coingecko:price:btc";
    let writer = Svc::new(from_vars(&[("SYNTRA_CACHE_REDIS_URL", url(&redis, 0))]));
    writer.price("btc").await.unwrap();
    let capped = Svc::new(from_vars(&[
        ("SYNTRA_CACHE_REDIS_URL", url(&redis, 0)),
        ("SYNTRA_CACHE_LOCAL_TTL_CAP_MS", "400".into()),
    ]));
    let uncapped = Svc::new(from_vars(&[("SYNTRA_CACHE_REDIS_URL", url(&redis, 0))]));
    assert_eq!(capped.price("btc").await.unwrap(), 100);
    assert_eq!(uncapped.price("btc").await.unwrap(), 100);
    let read_at = Instant::now();
    rewrite_data(&redis.client(), key, 888.into());
    assert_eq!(capped.price("btc").await.unwrap(), 100, "within the cap the memory copy answers");
    // The entry lives 60 s in Redis; the capped memory copy goes after ~400 ms.
    let deadline = read_at + Duration::from_secs(5);
    while capped.price("btc").await.unwrap() != 888 {
        assert!(Instant::now() < deadline, "the Redis change was not seen within 5 s (cap 400 ms, TTL 60 s)");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let seen_after = read_at.elapsed();
    eprintln!("the Redis change was seen {seen_after:?} after the read (cap 400 ms)");
    assert!(seen_after >= Duration::from_millis(200), "the memory copy was kept {seen_after:?}, cap 400 ms");
    assert_eq!(uncapped.price("btc").await.unwrap(), 100, "without a cap: the rest of the Redis TTL");
    assert_eq!(writer.calls() + capped.calls() + uncapped.calls(), 1);
}

#[tokio::test]
async fn timeout_ms_is_what_a_stalled_redis_costs_per_call() {
    let redis = RedisServer::start();
    let svc = Svc::new(from_vars(&[
        ("SYNTRA_CACHE_REDIS_URL", url(&redis, 0)),
        ("SYNTRA_CACHE_LOCAL_TIER", "false".into()),
        ("SYNTRA_CACHE_TIMEOUT_MS", "600".into()),
        ("SYNTRA_CACHE_BREAKER_THRESHOLD", "100".into()),
    ]));
    svc.price("warm").await.unwrap(); // connected
    redis.pause();
    for id in ["a", "b", "c"] {
        let (v, took) = timed(svc.price(id)).await;
        assert!(v.is_ok(), "answered from upstream");
        // One timeout per call: at least the 600 ms (the default 250 ms would be faster), and
        // well under two of them plus scheduling.
        assert!(took >= Duration::from_millis(600) && took < Duration::from_millis(1_800), "{id}: {took:?}");
    }
    assert!(!svc.cache.remote_circuit_open(), "threshold 100 not reached");
    redis.resume();
}

#[tokio::test]
async fn connect_timeout_ms_bounds_connecting_to_a_stalled_redis() {
    // A frozen server still completes TCP handshakes (the kernel does), but never answers the
    // connection set-up: with no connection yet, a call costs the connection attempts bounded
    // by CONNECT_TIMEOUT_MS, not TIMEOUT_MS.
    let redis = RedisServer::start();
    redis.pause();
    let cost = |connect_ms: &str| {
        let svc = Svc::new(from_vars(&[
            ("SYNTRA_CACHE_REDIS_URL", url(&redis, 0)),
            ("SYNTRA_CACHE_LOCAL_TIER", "false".into()),
            ("SYNTRA_CACHE_TIMEOUT_MS", "8000".into()),
            ("SYNTRA_CACHE_CONNECT_TIMEOUT_MS", connect_ms.into()),
        ]));
        async move {
            let (v, took) = timed(svc.price("btc")).await;
            assert!(v.is_ok());
            assert!(svc.cache.stats().total().cache_errors >= 1, "the connection failed");
            took
        }
    };
    let short = cost("150").await;
    let long = cost("1500").await;
    eprintln!("connect timeout 150 ms: first call {short:?}; 1500 ms: {long:?}");
    assert!(short >= Duration::from_millis(150) && short < Duration::from_millis(3_000), "{short:?}");
    assert!(long >= Duration::from_millis(1_500), "{long:?}");
    assert!(long > short * 2, "the connect timeout sets the cost: {short:?} vs {long:?}");
    redis.resume();
}

#[tokio::test]
async fn breaker_threshold_and_cooldown() {
    let redis = RedisServer::start();
    let svc = Svc::new(from_vars(&[
        ("SYNTRA_CACHE_REDIS_URL", url(&redis, 0)),
        ("SYNTRA_CACHE_LOCAL_TIER", "false".into()),
        ("SYNTRA_CACHE_TIMEOUT_MS", "300".into()),
        ("SYNTRA_CACHE_BREAKER_THRESHOLD", "5".into()),
        ("SYNTRA_CACHE_BREAKER_COOLDOWN_MS", "1500".into()),
    ]));
    svc.price("warm").await.unwrap();
    redis.pause();
    // Five calls each pay the 300 ms timeout; the fifth failure opens the breaker.
    for n in 1..=5 {
        assert!(!svc.cache.remote_circuit_open(), "open after {} failures, threshold 5", n - 1);
        let (v, took) = timed(svc.price(&format!("slow{n}"))).await;
        assert!(v.is_ok());
        assert!(took >= Duration::from_millis(300), "call {n} paid the timeout: {took:?}");
    }
    assert!(svc.cache.remote_circuit_open(), "open after 5 failures");
    let opened = Instant::now();
    // Open: calls skip Redis and are fast.
    let (_, took) = timed(async {
        for n in 0..20 {
            assert!(svc.price(&format!("fast{n}")).await.is_ok());
        }
    })
    .await;
    assert!(took < Duration::from_millis(300), "20 calls with the breaker open took {took:?}");
    // Still open well inside the 1.5 s cool-down (it is not the default 2 s either: below).
    tokio::time::sleep(Duration::from_millis(900).saturating_sub(opened.elapsed())).await;
    let (_, took) = timed(svc.price("inside")).await;
    assert!(took < Duration::from_millis(200), "0.9 s into a 1.5 s cool-down: {took:?}");
    // After the cool-down one probe goes to the (still frozen) server and pays the timeout.
    tokio::time::sleep(Duration::from_millis(1_700).saturating_sub(opened.elapsed())).await;
    let (_, took) = timed(svc.price("probe")).await;
    assert!(took >= Duration::from_millis(300), "1.7 s after opening a probe went through: {took:?}");
    assert!(svc.cache.remote_circuit_open(), "the failed probe re-opens it");
    redis.resume();
}

#[tokio::test]
async fn budgets_seed_and_budget_overrides() {
    let redis = RedisServer::start();
    // No budgets: nothing limits the calls.
    let none = Svc::new(from_vars(&[("SYNTRA_CACHE_REDIS_URL", url(&redis, 0))]));
    for i in 0..5 {
        assert!(none.budgeted(&format!("n{i}")).await.is_ok());
    }
    assert!(none.cache.budget_stats().is_empty());

    // The seed's budgets: CoinGecko's 30/min is a burst of 3, then one per 2.2 s (> max_wait).
    let seed = Svc::new(from_vars(&[
        ("SYNTRA_CACHE_REDIS_URL", url(&redis, 0)),
        ("SYNTRA_CACHE_NAMESPACE", "seed".into()),
        ("SYNTRA_CACHE_BUDGETS", "seed".into()),
    ]));
    let mut granted = 0;
    for i in 0..5 {
        match seed.budgeted(&format!("s{i}")).await {
            Ok(_) => granted += 1,
            Err(ApiError::Budget(d)) => assert_eq!(d.budget, "coingecko"),
        }
    }
    assert_eq!(granted, 3, "30/min: a burst of 3");
    assert!(!scan_keys(&redis.client(), "seed::budget:{coingecko}:*").is_empty(), "shared through Redis");

    // SYNTRA_BUDGET_COINGECKO_RATE overrides the seed: 10/min is a burst of 1.
    let tight = Svc::new(from_vars(&[
        ("SYNTRA_CACHE_REDIS_URL", url(&redis, 0)),
        ("SYNTRA_CACHE_NAMESPACE", "tight".into()),
        ("SYNTRA_CACHE_BUDGETS", "seed".into()),
        ("SYNTRA_BUDGET_COINGECKO_RATE", "10/min".into()),
    ]));
    assert!(tight.budgeted("t0").await.is_ok());
    assert!(matches!(tight.budgeted("t1").await, Err(ApiError::Budget(_))), "the override applies");
    assert_eq!(tight.calls(), 1);
}

#[tokio::test]
async fn disabled_runs_every_body() {
    let redis = RedisServer::start();
    let svc =
        Svc::new(from_vars(&[("SYNTRA_CACHE_REDIS_URL", url(&redis, 0)), ("SYNTRA_CACHE_DISABLED", "true".into())]));
    assert!(!svc.cache.is_enabled());
    for want in [100, 101, 102] {
        assert_eq!(svc.price("btc").await.unwrap(), want);
    }
    assert_eq!(svc.calls(), 3);
    assert!(scan_keys(&redis.client(), "*").is_empty(), "nothing written");
}

/// A value of `n` bytes or so (JSON): 100 + the number of earlier calls, padded.
struct Sized {
    cache: Cache,
    calls: AtomicUsize,
}

impl Sized {
    #[cached(ttl = 60, key = "sized:blob:<id>_<n>", cache = self.cache)]
    async fn blob(&self, id: u32, n: usize) -> Result<String, ApiError> {
        self.calls.fetch_add(1, SeqCst);
        Ok(format!("{id}:{}", "x".repeat(n)))
    }
}

#[tokio::test]
async fn memory_bytes_max_value_bytes_and_the_signing_key() {
    let redis = RedisServer::start();
    // SYNTRA_CACHE_MEMORY_BYTES: 1 MiB holds about forty 24 KB values, far below the entry bound.
    let s = Sized { cache: from_vars(&[("SYNTRA_CACHE_MEMORY_BYTES", "1048576".into())]), calls: AtomicUsize::new(0) };
    for id in 0..100 {
        s.blob(id, 24_000).await.unwrap();
    }
    let before = s.calls.load(SeqCst);
    for id in 0..100 {
        s.blob(id, 24_000).await.unwrap();
    }
    let hits = 100 - (s.calls.load(SeqCst) - before);
    assert!((1..=44).contains(&hits), "{hits} of 100 values of 24 KB stayed in 1 MiB");
    // SYNTRA_CACHE_MAX_VALUE_BYTES: over it, answered but never cached.
    let s = Sized {
        cache: from_vars(&[
            ("SYNTRA_CACHE_REDIS_URL", url(&redis, 3)),
            ("SYNTRA_CACHE_MAX_VALUE_BYTES", "2048".into()),
        ]),
        calls: AtomicUsize::new(0),
    };
    for _ in 0..2 {
        assert_eq!(s.blob(1, 4_000).await.unwrap().len(), 4_002);
        assert_eq!(s.blob(2, 10).await.unwrap().len(), 12);
    }
    assert_eq!(s.calls.load(SeqCst), 3, "the large value twice, the small one once");
    assert_eq!(scan_keys(&db(&redis, 3), "*"), vec!["syntra:sized:blob:2_10".to_owned()]);
    // SYNTRA_CACHE_SIGNING_KEY: values are sealed; a cache without the key refuses them.
    let signed = Svc::new(from_vars(&[
        ("SYNTRA_CACHE_REDIS_URL", url(&redis, 4)),
        ("SYNTRA_CACHE_LOCAL_TIER", "false".into()),
        ("SYNTRA_CACHE_SIGNING_KEY", "config-env-signing-key-000001".into()),
    ]));
    assert_eq!(signed.price("btc").await.unwrap(), 100);
    assert_eq!(signed.price("btc").await.unwrap(), 100);
    let raw: Vec<u8> = redis::cmd("GET")
        .arg("syntra:coingecko:price:btc")
        .query(&mut db(&redis, 4).get_connection().unwrap())
        .unwrap();
    assert_eq!(&raw[..4], &[0xa5, b'S', b'G', 1]);
    let unsigned =
        Svc::new(from_vars(&[("SYNTRA_CACHE_REDIS_URL", url(&redis, 4)), ("SYNTRA_CACHE_LOCAL_TIER", "false".into())]));
    assert_eq!(unsigned.price("btc").await.unwrap(), 100, "its own first computation");
    assert_eq!(
        unsigned.cache.stats().get("coingecko", "price").unwrap().cache_errors,
        1,
        "the sealed value was not ours to read"
    );
}

#[test]
fn every_bad_value_is_a_typed_error_naming_its_variable() {
    for var in [
        "SYNTRA_CACHE_MEMORY_CAPACITY",
        "SYNTRA_CACHE_LOCAL_TIER",
        "SYNTRA_CACHE_LOCAL_TTL_CAP_MS",
        "SYNTRA_CACHE_TIMEOUT_MS",
        "SYNTRA_CACHE_CONNECT_TIMEOUT_MS",
        "SYNTRA_CACHE_BREAKER_THRESHOLD",
        "SYNTRA_CACHE_BREAKER_COOLDOWN_MS",
        "SYNTRA_CACHE_BUDGETS",
        "SYNTRA_CACHE_DISABLED",
        "SYNTRA_CACHE_MEMORY_BYTES",
        "SYNTRA_CACHE_MAX_VALUE_BYTES",
    ] {
        let r = CacheBuilder::from_vars(|k| (k == var).then(|| "-1x".to_string()));
        match r {
            Err(BuildError::Env { var: v, .. }) => assert_eq!(v, var),
            other => panic!("{var}: {other:?}"),
        }
    }
    let r = CacheBuilder::from_vars(|k| (k == "SYNTRA_CACHE_REDIS_URL").then(|| "http://x".to_string()));
    assert!(matches!(r.unwrap().build(), Err(BuildError::RedisUrl(_))));
}

// ---------------------------------------------------------------------------------------------
// The real environment, in child processes

static FREE_CALLS: AtomicUsize = AtomicUsize::new(0);

/// Uses the process-wide default cache (no `cache = ...`).
#[cached(ttl = 60, key = "free:square:<n>")]
async fn square(n: u64) -> u64 {
    FREE_CALLS.fetch_add(1, SeqCst);
    n * n
}

/// Child entry of the tests below: runs the scenario named by `SYNTRA_ENV_CHILD` with the
/// environment the parent gave it, and prints what the parent checks.
#[tokio::test]
#[ignore = "child process of the from_env / default cache tests"]
async fn env_child() {
    let Ok(scenario) = std::env::var("SYNTRA_ENV_CHILD") else {
        return; // run by `--include-ignored`: nothing to do outside a parent test
    };
    tracing_subscriber::fmt().with_ansi(false).with_writer(std::io::stdout).init();
    match scenario.as_str() {
        "good" => {
            let cache = Cache::from_env().expect("a valid environment");
            assert_eq!(cache.namespace(), "childns");
            assert!(cache.has_remote());
            let svc = Svc::new(cache);
            assert_eq!(svc.price("btc").await.unwrap(), 100);
            assert_eq!(svc.price("btc").await.unwrap(), 100);
            assert_eq!(svc.calls(), 1);
            // The default cache is built from the same environment.
            let d = syntra_cache::default_cache();
            assert_eq!((d.namespace(), d.has_remote()), ("childns", true));
            assert_eq!(square(7).await, 49);
            assert_eq!(square(7).await, 49);
            assert_eq!(FREE_CALLS.load(SeqCst), 1);
            assert_eq!(d.stats().get("free", "square").map(|m| (m.hits, m.misses)), Some((1, 1)));
            println!("CHILD good OK");
        }
        "bad" => {
            match Cache::from_env() {
                Err(BuildError::Env { var, .. }) => assert_eq!(var, "SYNTRA_CACHE_TIMEOUT_MS"),
                other => panic!("from_env must refuse TIMEOUT_MS=soon: {other:?}"),
            }
            // The default cache logs the error and falls back to the in-memory default.
            let d = syntra_cache::default_cache();
            assert!(!d.has_remote() && d.namespace() == "syntra" && d.is_enabled(), "{d:?}");
            assert_eq!(square(8).await, 64);
            assert_eq!(square(8).await, 64);
            assert_eq!(FREE_CALLS.load(SeqCst), 1, "cached in memory");
            println!("CHILD bad OK");
        }
        other => panic!("unknown scenario {other}"),
    }
}

#[test]
fn from_env_and_the_default_cache_read_the_process_environment() {
    let redis = RedisServer::start();
    let mut cmd = child_process("env_child");
    cmd.env("SYNTRA_ENV_CHILD", "good")
        .env("SYNTRA_CACHE_REDIS_URL", url(&redis, 1))
        .env("SYNTRA_CACHE_NAMESPACE", "childns")
        .env("SYNTRA_CACHE_LOCAL_TIER", "false");
    let out = run_child(cmd);
    assert!(out.contains("CHILD good OK"), "{out}");
    // Both caches wrote where the environment said: db 1, namespace `childns`.
    let keys = scan_keys(&db(&redis, 1), "*");
    assert_eq!(keys, vec!["childns:coingecko:price:btc".to_string(), "childns:free:square:7".to_string()]);
    assert_eq!(envelope(&db(&redis, 1), "childns:free:square:7").unwrap()["data"], 49);
}

#[test]
fn a_bad_environment_falls_back_to_memory_and_logs_why() {
    let redis = RedisServer::start();
    let mut cmd = child_process("env_child");
    cmd.env("SYNTRA_ENV_CHILD", "bad")
        .env("SYNTRA_CACHE_REDIS_URL", url(&redis, 0))
        .env("SYNTRA_CACHE_NAMESPACE", "childns")
        .env("SYNTRA_CACHE_TIMEOUT_MS", "soon");
    let out = run_child(cmd);
    assert!(out.contains("CHILD bad OK"), "{out}");
    let line =
        out.lines().find(|l| l.contains("Cache configuration invalid")).unwrap_or_else(|| panic!("logged:\n{out}"));
    assert!(line.contains("ERROR") && line.contains("SYNTRA_CACHE_TIMEOUT_MS"), "{line}");
    assert!(scan_keys(&redis.client(), "*").is_empty(), "the fallback never touched Redis");
}
