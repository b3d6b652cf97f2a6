//! syntra-cache against its anchors, in one run, with ratios and their spread.
//!
//! Full run: `cargo bench -p syntra-bench` (about 3 minutes). Under `cargo test --all-targets`
//! (test mode: every row once, tiny, with assertions) or with `SYNTRA_BENCH_QUICK=1` every row
//! runs with small counts. `SYNTRA_BENCH_CURVES=1` adds the curves (`anchors/curves.rs`), which
//! test mode always runs with tiny sizes.
//!
//! Every Redis row talks to a redis-server this binary starts on a free loopback port.

#[path = "anchors/curves.rs"]
mod curves;

use cached::macros::concurrent_cached;
use cached::AsyncRedisCache;
use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, SamplingMode, Throughput};
use std::collections::HashMap;
use std::future::Future;
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, LazyLock, Mutex, OnceLock};
use std::time::{Duration, Instant};
use syntra_bench::stats::{Paired, Spread, Verdict};
use syntra_bench::{
    bench_flag, curves_enabled, fmt_ns, list_mode, make_coin, make_market_chart, probe, quick_mode, test_mode,
    ApiError, Coin, MarketChart, RedisExt, RedisServer, Samples,
};
use syntra_cache::{cached, Cache};
use tokio::runtime::Runtime;

static SAMPLES: LazyLock<Samples> = LazyLock::new(Samples::default);
/// The redis-server of rows 1-6.
static URL_MAIN: OnceLock<String> = OnceLock::new();
/// The redis-server row 7 kills and restarts.
static URL_DOWN: OnceLock<String> = OnceLock::new();

const TTL: Duration = Duration::from_secs(3600);

// ---------------------------------------------------------------------------------------------
// Ours
// ---------------------------------------------------------------------------------------------

struct Ours {
    cache: Cache,
    calls: AtomicUsize,
    slow: Duration,
}

impl Ours {
    fn new(cache: Cache) -> Self {
        Ours { cache, calls: AtomicUsize::new(0), slow: Duration::from_millis(20) }
    }

    #[cached(ttl = 3600, key = "coingecko:coin:<id>", cache = self.cache)]
    async fn coin(&self, id: &str) -> Result<Coin, ApiError> {
        self.calls.fetch_add(1, Relaxed);
        Ok(make_coin(id))
    }

    #[cached(ttl = 3600, key = "coingecko:coin_mp:<id>", cache = self.cache, format = "msgpack")]
    async fn coin_mp(&self, id: &str) -> Result<Coin, ApiError> {
        self.calls.fetch_add(1, Relaxed);
        Ok(make_coin(id))
    }

    /// Row 5: a unique key per call, the body is the value's construction only.
    #[cached(ttl = 3600, key = "coingecko:miss:<n>", cache = self.cache)]
    async fn coin_miss(&self, n: u64) -> Result<Coin, ApiError> {
        let _ = n;
        Ok(make_coin("bitcoin"))
    }

    /// Row 6: a slow upstream, so that concurrent cold calls overlap.
    #[cached(ttl = 3600, key = "coingecko:slow:<id>", cache = self.cache)]
    async fn coin_slow(&self, id: &str) -> Result<Coin, ApiError> {
        self.calls.fetch_add(1, Relaxed);
        tokio::time::sleep(self.slow).await;
        Ok(make_coin(id))
    }

    /// Row 8: the typical two-placeholder key.
    #[cached(ttl = 90, key = "coingecko:price:<id>_<vs>", cache = self.cache)]
    async fn price(&self, id: &str, vs: &str) -> Result<f64, ApiError> {
        let _ = (id, vs);
        Ok(1.0)
    }

    /// Curves (live keys): a small filler entry.
    #[cached(ttl = 3600, key = "fill:<n>", cache = self.cache)]
    async fn fill(&self, n: u64) -> Result<u64, ApiError> {
        self.calls.fetch_add(1, Relaxed);
        Ok(n)
    }

    /// Curves (value size): a market chart of `points` points per array.
    #[cached(ttl = 3600, key = "coingecko:market_chart:<points>", cache = self.cache)]
    async fn chart(&self, points: usize) -> Result<MarketChart, ApiError> {
        self.calls.fetch_add(1, Relaxed);
        Ok(make_market_chart(points))
    }

    /// Curves (memory per entry): copy `i` of the market chart of `points` points.
    #[cached(ttl = 3600, key = "coingecko:market_chart:<points>:<i>", cache = self.cache)]
    async fn chart_copy(&self, points: usize, i: usize) -> Result<MarketChart, ApiError> {
        let _ = i;
        self.calls.fetch_add(1, Relaxed);
        Ok(make_market_chart(points))
    }
}

/// The body of `coin_miss`, called directly (row 5's anchor).
async fn body_direct() -> Result<Coin, ApiError> {
    Ok(make_coin("bitcoin"))
}

// ---------------------------------------------------------------------------------------------
// The `cached` crate (4.x): `#[concurrent_cached]` over its `AsyncRedisCache`
//
// What its source (cached 4.1.0, src/stores/redis.rs) does: values are MessagePack only
// (`rmp_serde::to_vec` of a positional `[value, version]` array; reads fall back to its pre-3.0
// JSON only when MessagePack fails), a hit is a one-command pipeline (`redis::pipe().get(key)`),
// and the connection is a `MultiplexedConnection` unless the builder sets
// `connection_manager(true)` (then a `ConnectionManager`, as ours uses). Rows 2 and 4 compare
// it with ours on MessagePack and the same connection type.
// ---------------------------------------------------------------------------------------------

async fn cc_store(prefix: &str, url: &str, manager: bool) -> AsyncRedisCache<String, Coin> {
    AsyncRedisCache::builder(prefix)
        .connection_string(url)
        .ttl(TTL)
        .connection_manager(manager)
        .build()
        .await
        .expect("cached crate: AsyncRedisCache::build")
}

// One function per runtime, server and connection type: the store (and its connection task)
// lives in a static built on first call. Each counts its body's runs, so that a hit can be told
// from a miss.
static CC_LAT_CALLS: AtomicUsize = AtomicUsize::new(0);

#[concurrent_cached(
    ty = "AsyncRedisCache<String, Coin>",
    create = r##"{ cc_store("lat", URL_MAIN.get().unwrap(), false).await }"##,
    key = "String",
    convert = r##"{ id.to_owned() }"##,
    map_error = r##"|e| ApiError(format!("{e}"))"##
)]
async fn cc_coin_lat(id: &str) -> Result<Coin, ApiError> {
    CC_LAT_CALLS.fetch_add(1, Relaxed);
    Ok(make_coin(id))
}

static CC_LAT_CM_CALLS: AtomicUsize = AtomicUsize::new(0);

#[concurrent_cached(
    ty = "AsyncRedisCache<String, Coin>",
    create = r##"{ cc_store("latcm", URL_MAIN.get().unwrap(), true).await }"##,
    key = "String",
    convert = r##"{ id.to_owned() }"##,
    map_error = r##"|e| ApiError(format!("{e}"))"##
)]
async fn cc_coin_lat_cm(id: &str) -> Result<Coin, ApiError> {
    CC_LAT_CM_CALLS.fetch_add(1, Relaxed);
    Ok(make_coin(id))
}

static CC_TP_CALLS: AtomicUsize = AtomicUsize::new(0);

#[concurrent_cached(
    ty = "AsyncRedisCache<String, Coin>",
    create = r##"{ cc_store("tpcm", URL_MAIN.get().unwrap(), true).await }"##,
    key = "String",
    convert = r##"{ id.to_owned() }"##,
    map_error = r##"|e| ApiError(format!("{e}"))"##
)]
async fn cc_coin_tp_cm(id: &str) -> Result<Coin, ApiError> {
    CC_TP_CALLS.fetch_add(1, Relaxed);
    Ok(make_coin(id))
}

static CC_STAMPEDE_CALLS: AtomicUsize = AtomicUsize::new(0);

#[concurrent_cached(
    ty = "AsyncRedisCache<String, Coin>",
    create = r##"{ cc_store("stampede", URL_MAIN.get().unwrap(), false).await }"##,
    key = "String",
    convert = r##"{ id.to_owned() }"##,
    map_error = r##"|e| ApiError(format!("{e}"))"##
)]
async fn cc_coin_slow(id: &str) -> Result<Coin, ApiError> {
    CC_STAMPEDE_CALLS.fetch_add(1, Relaxed);
    tokio::time::sleep(Duration::from_millis(20)).await;
    Ok(make_coin(id))
}

static CC_DOWN_CALLS: AtomicUsize = AtomicUsize::new(0);

#[concurrent_cached(
    ty = "AsyncRedisCache<String, Coin>",
    create = r##"{ cc_store("down_mux", URL_DOWN.get().unwrap(), false).await }"##,
    key = "String",
    convert = r##"{ id.to_owned() }"##,
    map_error = r##"|e| ApiError(format!("{e}"))"##
)]
async fn cc_down_mux(id: &str) -> Result<Coin, ApiError> {
    CC_DOWN_CALLS.fetch_add(1, Relaxed);
    Ok(make_coin(id))
}

static CC_DOWN_CM_CALLS: AtomicUsize = AtomicUsize::new(0);

#[concurrent_cached(
    ty = "AsyncRedisCache<String, Coin>",
    create = r##"{ cc_store("down_cm", URL_DOWN.get().unwrap(), true).await }"##,
    key = "String",
    convert = r##"{ id.to_owned() }"##,
    map_error = r##"|e| ApiError(format!("{e}"))"##
)]
async fn cc_down_cm(id: &str) -> Result<Coin, ApiError> {
    CC_DOWN_CM_CALLS.fetch_add(1, Relaxed);
    Ok(make_coin(id))
}

// ---------------------------------------------------------------------------------------------
// Measurement helpers
// ---------------------------------------------------------------------------------------------

/// One criterion group, or (without `--bench`: `cargo test --all-targets`) one call per
/// benchmark without criterion, so that libtest arguments such as `--test-threads` that criterion's
/// parser rejects never reach it.
struct Group<'a, 'c> {
    name: &'static str,
    g: Option<BenchmarkGroup<'c, WallTime>>,
    rt: &'a Runtime,
    /// Samples criterion takes per benchmark of this group.
    n: usize,
}

impl<'a, 'c> Group<'a, 'c> {
    fn new(c: Option<&'c mut Criterion>, name: &'static str, rt: &'a Runtime, n: usize) -> Self {
        Group { name, g: c.map(|c| c.benchmark_group(name)), rt, n }
    }

    fn finish(self) {
        if let Some(g) = self.g {
            g.finish();
        }
    }

    /// Benches one async call per iteration; samples go to the side channel too.
    fn call<F, Fut, T>(&mut self, bench: &str, f: &F)
    where
        F: Fn() -> Fut,
        Fut: Future<Output = T>,
    {
        let id = format!("{}/{bench}", self.name);
        SAMPLES.expect(&id, self.n);
        let rt = self.rt;
        let run = |iters: u64| {
            rt.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    black_box(f().await);
                }
                let el = start.elapsed();
                SAMPLES.record(&id, iters, el);
                el
            })
        };
        match &mut self.g {
            Some(g) => {
                g.bench_function(bench, |b| b.iter_custom(run));
            }
            None => {
                run(1);
                println!("Testing {id}: ok");
            }
        }
    }

    /// Benches one synchronous call per iteration.
    fn sync<F: Fn() -> T, T>(&mut self, bench: &str, f: &F) {
        let id = format!("{}/{bench}", self.name);
        SAMPLES.expect(&id, self.n);
        let run = |iters: u64| {
            let start = Instant::now();
            for _ in 0..iters {
                black_box(f());
            }
            let el = start.elapsed();
            SAMPLES.record(&id, iters, el);
            el
        };
        match &mut self.g {
            Some(g) => {
                g.bench_function(bench, |b| b.iter_custom(run));
            }
            None => {
                run(1);
                println!("Testing {id}: ok");
            }
        }
    }
}

/// Rounds and block length of the paired measurements (set once in `main`).
static PAIR_CFG: OnceLock<(usize, Duration)> = OnceLock::new();
/// Paired results by (ours id, anchor id).
static PAIRS: LazyLock<Mutex<HashMap<(String, String), Paired>>> = LazyLock::new(Default::default);

/// Measures `a` (ours) and `b` (its anchor) in alternating blocks (ABBA…) of equal call counts,
/// so that load from other processes on this shared machine hits both alike, and keeps every
/// block (`syntra_bench::stats::paired`).
fn paired<FA, A, TA, FB, B, TB>(rt: &Runtime, ids: (&str, &str), rounds: Option<usize>, a: &FA, b: &FB)
where
    FA: Fn() -> A,
    A: Future<Output = TA>,
    FB: Fn() -> B,
    B: Future<Output = TB>,
{
    let (default_rounds, block) = *PAIR_CFG.get().unwrap();
    let p = syntra_bench::stats::paired(rt, rounds.unwrap_or(default_rounds), block, a, b);
    PAIRS.lock().unwrap().insert((ids.0.to_owned(), ids.1.to_owned()), p);
}

fn pair_of(a: &str, b: &str) -> Option<Paired> {
    PAIRS.lock().unwrap().get(&(a.to_owned(), b.to_owned())).cloned()
}

/// One round of a throughput measurement: `tasks` tasks, task `t` doing its calls over `keys`.
async fn round_n<F, Fut>(tasks: usize, keys: &Arc<Vec<String>>, f: F)
where
    F: Fn(Arc<Vec<String>>, usize) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let mut handles = Vec::with_capacity(tasks);
    for t in 0..tasks {
        handles.push(tokio::spawn(f(keys.clone(), t)));
    }
    for h in handles {
        h.await.unwrap();
    }
}

/// One round of row 4: `TASKS` tasks over the hot keys.
async fn round<F, Fut>(keys: &Arc<Vec<String>>, f: F)
where
    F: Fn(Arc<Vec<String>>, usize) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    round_n(TASKS, keys, f).await
}

const TASKS: usize = 64;

/// Commands the server received per call while `rounds` runs of `f` did `calls_per_round` calls
/// each (`INFO commandstats` before and after, on the probe's own connection).
fn count_commands<F, Fut>(
    rt: &Runtime,
    probe_conn: &mut redis::Connection,
    rounds: usize,
    calls_per_round: u64,
    f: &F,
) -> PerCall
where
    F: Fn() -> Fut,
    Fut: Future,
{
    let before = probe::command_calls(probe_conn);
    rt.block_on(async {
        for _ in 0..rounds {
            f().await;
        }
    });
    let after = probe::command_calls(probe_conn);
    let d = probe::command_delta(&before, &after);
    let n = (rounds as u64 * calls_per_round) as f64;
    PerCall { gets: d.gets as f64 / n, others: d.others as f64 / n }
}

/// Commands the Redis server received per call.
#[derive(Debug, Clone, Copy, Default)]
struct PerCall {
    gets: f64,
    others: f64,
}

/// A pass/fail check of this run (printed at the end, then asserted: every mode).
struct Check {
    what: String,
    ok: bool,
}

fn check(checks: &mut Vec<Check>, ok: bool, what: impl Into<String>) {
    checks.push(Check { what: what.into(), ok });
}

// ---------------------------------------------------------------------------------------------
// Rows 6 and 7: counts and outages, timed by hand
// ---------------------------------------------------------------------------------------------

struct Stampede {
    label: &'static str,
    ours: bool,
    calls: usize,
    wall: Duration,
    errors: usize,
}

async fn stampede_ours(svc: Arc<Ours>, n: usize, key: String) -> Stampede {
    let before = svc.calls.load(Relaxed);
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(n);
    for _ in 0..n {
        let (svc, key) = (svc.clone(), key.clone());
        tasks.push(tokio::spawn(async move { svc.coin_slow(&key).await.is_ok() }));
    }
    let mut errors = 0;
    for t in tasks {
        errors += usize::from(!t.await.unwrap());
    }
    Stampede { label: "", ours: true, calls: svc.calls.load(Relaxed) - before, wall: start.elapsed(), errors }
}

async fn stampede_cached_crate(n: usize, key: String) -> Stampede {
    let before = CC_STAMPEDE_CALLS.load(Relaxed);
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(n);
    for _ in 0..n {
        let key = key.clone();
        tasks.push(tokio::spawn(async move { cc_coin_slow(&key).await.is_ok() }));
    }
    let mut errors = 0;
    for t in tasks {
        errors += usize::from(!t.await.unwrap());
    }
    Stampede { label: "", ours: false, calls: CC_STAMPEDE_CALLS.load(Relaxed) - before, wall: start.elapsed(), errors }
}

/// How one bounded call went.
#[derive(Debug)]
enum Outcome {
    Ok,
    Err(String),
    TimedOut,
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Outcome::Ok => f.write_str("returned Ok"),
            Outcome::Err(e) => {
                let e: String = e.chars().take(70).collect();
                write!(f, "returned Err({e})")
            }
            Outcome::TimedOut => f.write_str("timed out"),
        }
    }
}

async fn bounded<F: Future<Output = Result<Coin, ApiError>>>(limit: Duration, fut: F) -> (Duration, Outcome) {
    let start = Instant::now();
    let out = match tokio::time::timeout(limit, fut).await {
        Ok(Ok(_)) => Outcome::Ok,
        Ok(Err(e)) => Outcome::Err(e.0),
        Err(_) => Outcome::TimedOut,
    };
    (start.elapsed(), out)
}

// ---------------------------------------------------------------------------------------------
// main
// ---------------------------------------------------------------------------------------------

fn main() {
    let started = Instant::now();
    let quick = quick_mode();
    let test = test_mode();
    let listing = list_mode();
    let sample_size = if quick { 10 } else { 40 };
    if listing && !bench_flag() {
        return; // `cargo test -- --list`: no tests here
    }
    // Criterion only under `cargo bench` (it parses the command line; libtest flags from
    // `cargo test --all-targets -- --test-threads=N` would make it exit with an error).
    let mut c = bench_flag().then(|| {
        Criterion::default()
            .sample_size(sample_size)
            .warm_up_time(Duration::from_millis(if quick { 100 } else { 1000 }))
            .measurement_time(Duration::from_secs(if quick { 1 } else { 3 }))
            .configure_from_args()
    });
    let mut checks: Vec<Check> = Vec::new();

    PAIR_CFG.set(if quick { (3, Duration::from_millis(2)) } else { (41, Duration::from_millis(25)) }).unwrap();
    let main_server = RedisServer::start();
    let mut down_server = RedisServer::start();
    URL_MAIN.set(main_server.url()).unwrap();
    URL_DOWN.set(down_server.url()).unwrap();
    let url = main_server.url();
    let mut probe_conn = probe::connect(&url);

    let rt1 = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let rtm = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();

    // The value.
    let coin = make_coin("bitcoin");
    let json = serde_json::to_vec(&coin).unwrap();
    let mp = rmp_serde::to_vec(&coin).unwrap();
    let id = "bitcoin";

    // ---- Caches and connections (row 1-3, 5, 8 on the current-thread runtime) ----
    // The namespace generation (key rotation) is re-read in the background once a second while
    // calls are made: not part of a hit, so kept out of the per-call command counts of row 4.
    let gen = Duration::from_secs(3600);
    let redis_only = |ns: &str| {
        Cache::builder().namespace(ns).redis(url.clone()).local_tier(false).generation_refresh(gen).build().unwrap()
    };
    let tiered = |ns: &str| Cache::builder().namespace(ns).redis(url.clone()).generation_refresh(gen).build().unwrap();
    let ours_redis = Ours::new(redis_only("r1"));
    let ours_mem = Ours::new(Cache::memory());
    // Row 3 with a coherent memory tier (issue 14): the same memory hit, with the trust check.
    let ours_coherent = Ours::new(Cache::builder().namespace("r3c").redis(url.clone()).coherent(true).build().unwrap());
    let ours_miss = Ours::new(Cache::memory());
    let raw_key = "raw:coingecko:coin:bitcoin";
    let raw_key_mp = "raw:coingecko:coin_mp:bitcoin";
    main_server.set_bytes(raw_key, &json);
    main_server.set_bytes(raw_key_mp, &mp);
    let client = redis::Client::open(url.clone()).unwrap();
    // Ours talks to Redis through a ConnectionManager: so do the raw anchors of rows 1 and 4.
    let cm = rt1.block_on(redis::aio::ConnectionManager::new(client.clone())).unwrap();
    // The `cached` crate's default connection, for its own raw anchor in row 2.
    let mux1 = rt1.block_on(client.get_multiplexed_async_connection()).unwrap();
    let moka: moka::sync::Cache<String, Coin> = moka::sync::Cache::builder().max_capacity(10_000).build();
    let moka_key = "syntra:coingecko:coin:bitcoin".to_owned();
    moka.insert(moka_key.clone(), coin.clone());
    let (ours_env, cc_size) = rt1.block_on(async {
        assert_eq!(ours_redis.coin(id).await.unwrap(), coin);
        assert_eq!(ours_redis.coin_mp(id).await.unwrap(), coin);
        ours_mem.coin(id).await.unwrap();
        ours_coherent.coin(id).await.unwrap();
        // Subscribed (subscribing empties memory), then read once more into memory.
        while !ours_coherent.cache.coherence_stats().unwrap().connected {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        ours_coherent.coin(id).await.unwrap();
        // The cached crate: the first call stores, the second must hit, and both must be `Ok` with
        // the value (so that an error is never timed as a hit); its body counts its runs.
        for _ in 0..2 {
            assert_eq!(cc_coin_lat(id).await.expect("cached crate (multiplexed): Ok"), coin);
            assert_eq!(cc_coin_lat_cm(id).await.expect("cached crate (ConnectionManager): Ok"), coin);
        }
        let mut cm = cm.clone();
        let env: Vec<u8> = redis::AsyncCommands::get(&mut cm, "r1:coingecko:coin:bitcoin").await.unwrap();
        let env_mp: Vec<u8> = redis::AsyncCommands::get(&mut cm, "r1:coingecko:coin_mp:bitcoin").await.unwrap();
        let mut scan: Vec<String> = redis::AsyncCommands::keys(&mut cm, "*:lat:*").await.unwrap();
        scan.sort();
        let cc: Vec<u8> = redis::AsyncCommands::get(&mut cm, scan.first().expect("cached crate key")).await.unwrap();
        ((env.len(), env_mp.len()), cc.len())
    });
    assert_eq!(ours_redis.calls.load(Relaxed), 2, "primed: one body run per method");
    assert_eq!(CC_LAT_CALLS.load(Relaxed), 1, "cached crate (multiplexed): the second call was a hit");
    assert_eq!(CC_LAT_CM_CALLS.load(Relaxed), 1, "cached crate (ConnectionManager): the second call was a hit");
    if !listing {
        println!("== value: CoinGecko /coins/bitcoin market data ==");
        println!(
            "JSON {} B, MessagePack {} B; stored by ours: JSON envelope {} B, MessagePack envelope {} B; by the cached crate (MessagePack) {} B",
            json.len(),
            mp.len(),
            ours_env.0,
            ours_env.1,
            cc_size
        );
        println!(
            "mode: {}{}",
            if test {
                "TEST (each row once, tiny; assertions only; numbers are not results)"
            } else if quick {
                "QUICK (small counts; numbers are not results)"
            } else {
                "full"
            },
            if curves_enabled() { ", with curves" } else { "" }
        );
        println!("load average at start: {}", loadavg());
    }

    // ---- Rows 1 + 2: Redis-tier hit ----
    // Row 1: ours against hand-written redis-rs, same codec, same connection type
    // (ConnectionManager). Row 2: ours against the `cached` crate, MessagePack on both sides (its
    // only codec) and a ConnectionManager on both sides; its default multiplexed connection is
    // measured against a raw GET on a multiplexed connection.
    {
        let r = &ours_redis;
        let ours_json = move || async move { r.coin(id).await.expect("row 1: ours (JSON) returned Err") };
        let raw_json = || {
            let mut cm = cm.clone();
            async move {
                let b: Option<Vec<u8>> = redis::AsyncCommands::get(&mut cm, raw_key).await.unwrap();
                serde_json::from_slice::<Coin>(&b.unwrap()).unwrap()
            }
        };
        let ours_mp = move || async move { r.coin_mp(id).await.expect("row 1: ours (MessagePack) returned Err") };
        let raw_mp = || {
            let mut cm = cm.clone();
            async move {
                let b: Option<Vec<u8>> = redis::AsyncCommands::get(&mut cm, raw_key_mp).await.unwrap();
                rmp_serde::from_slice::<Coin>(&b.unwrap()).unwrap()
            }
        };
        let theirs_cm = move || async move { cc_coin_lat_cm(id).await.expect("row 2: cached crate returned Err") };
        let theirs_mux = move || async move { cc_coin_lat(id).await.expect("row 2: cached crate returned Err") };
        let raw_mux_mp = || {
            let mut m = mux1.clone();
            async move {
                let b: Option<Vec<u8>> = redis::AsyncCommands::get(&mut m, raw_key_mp).await.unwrap();
                rmp_serde::from_slice::<Coin>(&b.unwrap()).unwrap()
            }
        };
        let mut g = Group::new(c.as_mut(), "r1_redis_hit", &rt1, sample_size);
        g.call("ours_json", &ours_json);
        g.call("raw_get_json", &raw_json);
        g.call("ours_msgpack", &ours_mp);
        g.call("raw_get_msgpack", &raw_mp);
        g.finish();
        let mut g = Group::new(c.as_mut(), "r2_cached_crate", &rt1, sample_size);
        g.call("cached_crate_cm", &theirs_cm);
        g.call("cached_crate_mux", &theirs_mux);
        g.call("raw_mux_get_msgpack", &raw_mux_mp);
        g.finish();
        if !listing {
            paired(&rt1, ("r1_redis_hit/ours_json", "r1_redis_hit/raw_get_json"), None, &ours_json, &raw_json);
            paired(&rt1, ("r1_redis_hit/ours_msgpack", "r1_redis_hit/raw_get_msgpack"), None, &ours_mp, &raw_mp);
            paired(&rt1, ("r1_redis_hit/ours_msgpack", "r2_cached_crate/cached_crate_cm"), None, &ours_mp, &theirs_cm);
            paired(
                &rt1,
                ("r2_cached_crate/cached_crate_cm", "r1_redis_hit/raw_get_msgpack"),
                None,
                &theirs_cm,
                &raw_mp,
            );
            paired(
                &rt1,
                ("r2_cached_crate/cached_crate_mux", "r2_cached_crate/raw_mux_get_msgpack"),
                None,
                &theirs_mux,
                &raw_mux_mp,
            );
        }
    }
    assert_eq!(ours_redis.calls.load(Relaxed), 2, "every call of row 1 was a hit");
    assert_eq!(CC_LAT_CALLS.load(Relaxed), 1, "every call of row 2 (cached crate, multiplexed) was a hit");
    assert_eq!(CC_LAT_CM_CALLS.load(Relaxed), 1, "every call of row 2 (cached crate, ConnectionManager) was a hit");

    // ---- Row 3: memory-tier hit ----
    {
        let m = &ours_mem;
        let ours = move || async move { m.coin(id).await.expect("row 3: ours returned Err") };
        let mc = &ours_coherent;
        let coherent = move || async move { mc.coin(id).await.expect("row 3: ours (coherent) returned Err") };
        let bare = || moka.get(moka_key.as_str()).unwrap();
        let with_key = || moka.get(&format!("syntra:coingecko:coin:{id}")).unwrap();
        let mut g = Group::new(c.as_mut(), "r3_memory_hit", &rt1, sample_size);
        g.call("ours", &ours);
        g.call("ours_coherent", &coherent);
        g.sync("moka_get_clone", &bare);
        g.sync("moka_format_key_get_clone", &with_key);
        g.finish();
        if !listing {
            paired(&rt1, ("r3_memory_hit/ours", "r3_memory_hit/moka_get_clone"), None, &ours, &|| {
                std::future::ready(bare())
            });
            paired(&rt1, ("r3_memory_hit/ours_coherent", "r3_memory_hit/moka_get_clone"), None, &coherent, &|| {
                std::future::ready(bare())
            });
            paired(&rt1, ("r3_memory_hit/ours", "r3_memory_hit/moka_format_key_get_clone"), None, &ours, &|| {
                std::future::ready(with_key())
            });
        }
    }
    assert_eq!(ours_mem.calls.load(Relaxed), 1, "every call of row 3 was a hit");
    assert!(ours_coherent.calls.load(Relaxed) <= 2, "every timed call of row 3 (coherent) was a hit");
    assert_eq!(ours_coherent.cache.coherence_stats().unwrap().distrusted, 0, "the channel stayed up");
    // ---- Row 5: miss overhead ----
    {
        let n = AtomicU64::new(0);
        let ours = || ours_miss.coin_miss(n.fetch_add(1, Relaxed));
        let mut g = Group::new(c.as_mut(), "r5_miss", &rt1, sample_size);
        g.call("ours_memory_miss", &ours);
        g.call("body_direct", &body_direct);
        g.finish();
        if !listing {
            paired(&rt1, ("r5_miss/ours_memory_miss", "r5_miss/body_direct"), None, &ours, &body_direct);
        }
    }

    // ---- Row 8: key building ----
    {
        use syntra_cache::__private::{Format, KeyWriter, Next, Service, Site, SiteInfo};
        fn __cache_path() -> &'static str {
            ::core::any::type_name_of_val(&__cache_path)
        }
        static SITE: Site = Site::new(SiteInfo {
            template: "coingecko:price:<id>_<vs>",
            service: Service::Named("coingecko"),
            method: "price",
            fn_name: "price",
            module: module_path!(),
            format: Format::Json,
            version: 0,
            path: __cache_path,
        });
        let cache = &ours_mem.cache;
        // What the macro emits for `key = "coingecko:price:<id>_<vs>"`.
        let key = |id: &str, vs: &str| {
            let mut k = KeyWriter::new(cache, &SITE, None);
            k.lit("coingecko:price:");
            k.arg(black_box(id), Next::Lit('_'));
            k.lit("_");
            k.arg(black_box(vs), Next::End);
            k.finish().expect("strings serialize")
        };
        assert_eq!(key("bitcoin", "usd"), "syntra:coingecko:price:bitcoin_usd");
        let long = "x".repeat(100);
        let plain = || key("bitcoin", "usd");
        let anchor = || format!("{}:coingecko:price:{}_{}", cache.namespace(), black_box("bitcoin"), black_box("usd"));
        let escaped = || key("wrapped_btc", "usd");
        let hashed = || key(&long, "usd");
        let part_only = || {
            let mut s = String::with_capacity(32);
            syntra_cache::key::render_part(&mut s, black_box("bitcoin"), Next::Lit('_')).unwrap();
            s
        };
        let via_key_of = || syntra_cache::key_of(ours_mem.price("bitcoin", "usd")).unwrap();
        let mut g = Group::new(c.as_mut(), "r8_key", &rt1, sample_size);
        g.sync("ours_key_writer", &plain);
        g.sync("format_anchor", &anchor);
        g.sync("ours_escaped", &escaped);
        g.sync("ours_hashed_long", &hashed);
        g.sync("render_part_only", &part_only);
        g.sync("ours_key_of", &via_key_of);
        g.finish();
        if !listing {
            let anchor = || std::future::ready(anchor());
            for (name, f) in [
                ("ours_key_writer", &plain as &dyn Fn() -> String),
                ("ours_escaped", &escaped),
                ("ours_hashed_long", &hashed),
            ] {
                paired(
                    &rt1,
                    (&format!("r8_key/{name}"), "r8_key/format_anchor"),
                    None,
                    &|| std::future::ready(f()),
                    &anchor,
                );
            }
            paired(
                &rt1,
                ("r8_key/ours_key_of", "r8_key/format_anchor"),
                None,
                &|| std::future::ready(via_key_of()),
                &anchor,
            );
        }
    }

    // ---- Row 4: throughput, 64 tasks on 64 hot keys (multi-thread runtime, 2 workers) ----
    // 4a: memory-tier hits (ours with both tiers; every call answered by the memory tier, no
    //     Redis command: counted below) against moka get + clone from the same 64 tasks.
    // 4b: Redis-only hits against raw redis-rs and the `cached` crate, same codec and the same
    //     connection type (ConnectionManager) on both sides.
    let per_task = if quick { 4 } else { 100 };
    let total = (TASKS * per_task) as u64;
    let keys: Arc<Vec<String>> = Arc::new((0..TASKS).map(|i| format!("coin-{i:02}")).collect());
    let ours_tp = Arc::new(Ours::new(tiered("r4")));
    let ours_tp_ro = Arc::new(Ours::new(redis_only("r4ro")));
    let moka_tp: moka::sync::Cache<String, Coin> = moka::sync::Cache::builder().max_capacity(10_000).build();
    let moka_keys: Arc<Vec<String>> = Arc::new(keys.iter().map(|k| format!("r4:coingecko:coin:{k}")).collect());
    for (k, mk) in keys.iter().zip(moka_keys.iter()) {
        moka_tp.insert(mk.clone(), make_coin(k));
    }
    let cm_tp = rtm.block_on(redis::aio::ConnectionManager::new(client.clone())).unwrap();
    rtm.block_on(async {
        let mut m = cm_tp.clone();
        for k in keys.iter() {
            ours_tp.coin(k).await.unwrap();
            ours_tp_ro.coin(k).await.unwrap();
            ours_tp_ro.coin_mp(k).await.unwrap();
            assert_eq!(cc_coin_tp_cm(k).await.expect("cached crate: Ok"), make_coin(k));
            let _: () =
                redis::AsyncCommands::set(&mut m, format!("raw:tp:{k}"), serde_json::to_vec(&make_coin(k)).unwrap())
                    .await
                    .unwrap();
        }
    });
    let mut r4_commands: Vec<(&str, PerCall)> = Vec::new();
    {
        let ks = &keys;
        let svc = &ours_tp;
        let tiered_round = || {
            round(ks, move |keys, t| {
                let svc = svc.clone();
                async move {
                    for j in 0..per_task {
                        black_box(svc.coin(&keys[(t + j) % TASKS]).await.unwrap());
                    }
                }
            })
        };
        let (mks, mk) = (&moka_keys, &moka_tp);
        let moka_round = || {
            round(mks, move |keys, t| {
                let m = mk.clone();
                async move {
                    for j in 0..per_task {
                        black_box(m.get(&keys[(t + j) % TASKS]).unwrap());
                    }
                }
            })
        };
        let svc = &ours_tp_ro;
        let ro_json_round = || {
            round(ks, move |keys, t| {
                let svc = svc.clone();
                async move {
                    for j in 0..per_task {
                        black_box(svc.coin(&keys[(t + j) % TASKS]).await.unwrap());
                    }
                }
            })
        };
        let ro_mp_round = || {
            round(ks, move |keys, t| {
                let svc = svc.clone();
                async move {
                    for j in 0..per_task {
                        black_box(svc.coin_mp(&keys[(t + j) % TASKS]).await.unwrap());
                    }
                }
            })
        };
        let cm_tp = &cm_tp;
        let raw_round = || {
            round(ks, move |keys, t| {
                let mut m = cm_tp.clone();
                async move {
                    for j in 0..per_task {
                        let k = format!("raw:tp:{}", keys[(t + j) % TASKS]);
                        let b: Option<Vec<u8>> = redis::AsyncCommands::get(&mut m, k).await.unwrap();
                        black_box(serde_json::from_slice::<Coin>(&b.unwrap()).unwrap());
                    }
                }
            })
        };
        let theirs_round = || {
            round(ks, move |keys, t| async move {
                for j in 0..per_task {
                    black_box(cc_coin_tp_cm(&keys[(t + j) % TASKS]).await.unwrap());
                }
            })
        };
        // Each iteration is thousands of calls: 10 flat samples keep the row short.
        let flat = |g: &mut Group| {
            if let Some(g) = &mut g.g {
                g.sample_size(10).sampling_mode(SamplingMode::Flat).throughput(Throughput::Elements(total));
            }
        };
        let mut g = Group::new(c.as_mut(), "r4_memory", &rtm, 10);
        flat(&mut g);
        g.call("ours_tiered", &tiered_round);
        g.call("moka_get_clone", &moka_round);
        g.finish();
        let mut g = Group::new(c.as_mut(), "r4_redis", &rtm, 10);
        flat(&mut g);
        g.call("ours_json", &ro_json_round);
        g.call("raw_cm_get_json", &raw_round);
        g.call("ours_msgpack", &ro_mp_round);
        g.call("cached_crate_cm", &theirs_round);
        g.finish();
        if !listing {
            let rounds = Some(if quick { 3 } else { 21 });
            paired(&rtm, ("r4_memory/ours_tiered", "r4_memory/moka_get_clone"), rounds, &tiered_round, &moka_round);
            paired(&rtm, ("r4_redis/ours_json", "r4_redis/raw_cm_get_json"), rounds, &ro_json_round, &raw_round);
            paired(&rtm, ("r4_redis/ours_msgpack", "r4_redis/cached_crate_cm"), rounds, &ro_mp_round, &theirs_round);
            // What the server received per call (`INFO commandstats`), in separate counted rounds.
            let n = if quick { 1 } else { 3 };
            r4_commands
                .push(("ours (memory + Redis tiers)", count_commands(&rtm, &mut probe_conn, n, total, &tiered_round)));
            r4_commands
                .push(("ours (Redis only, JSON)", count_commands(&rtm, &mut probe_conn, n, total, &ro_json_round)));
            r4_commands
                .push(("raw redis-rs GET + serde_json", count_commands(&rtm, &mut probe_conn, n, total, &raw_round)));
            r4_commands.push((
                "ours (Redis only, MessagePack)",
                count_commands(&rtm, &mut probe_conn, n, total, &ro_mp_round),
            ));
            r4_commands.push((
                "cached crate (ConnectionManager)",
                count_commands(&rtm, &mut probe_conn, n, total, &theirs_round),
            ));
        }
    }
    assert_eq!(ours_tp.calls.load(Relaxed), TASKS, "row 4 (tiered): hits only");
    assert_eq!(ours_tp_ro.calls.load(Relaxed), 2 * TASKS, "row 4 (Redis only): hits only");
    assert_eq!(CC_TP_CALLS.load(Relaxed), TASKS, "row 4 (cached crate): hits only");
    if let Some((_, pc)) = r4_commands.first() {
        check(
            &mut checks,
            pc.gets == 0.0 && pc.others == 0.0,
            format!(
                "row 4a: memory-tier hits sent no Redis command ({:.3} GETs, {:.3} others per call)",
                pc.gets, pc.others
            ),
        );
    }

    if listing {
        return;
    }

    // ---- Row 6: stampede ----
    let herd = if quick { 50 } else { 1000 };
    let stampede = rtm.block_on(async {
        let ours = Arc::new(Ours::new(tiered("r6")));
        let ours_mem = Arc::new(Ours::new(Cache::memory()));
        // Warm both (connection set-up is not part of the herd).
        ours.coin("warm").await.unwrap();
        cc_coin_slow("warm").await.unwrap();
        let mut a = stampede_ours(ours, herd, "herd-a".into()).await;
        a.label = "ours (memory + Redis tiers)";
        let mut b = stampede_ours(ours_mem, herd, "herd-a".into()).await;
        b.label = "ours (memory only)";
        let mut cc = stampede_cached_crate(herd, "herd-a".into()).await;
        cc.label = "cached crate (AsyncRedisCache)";
        vec![a, b, cc]
    });
    for s in stampede.iter().filter(|s| s.ours) {
        check(
            &mut checks,
            s.calls == 1 && s.errors == 0,
            format!(
                "row 6: {}: {herd} concurrent cold calls -> {} upstream call(s), {} failed (want 1, 0)",
                s.label, s.calls, s.errors
            ),
        );
    }

    // ---- Row 7: Redis down ----
    let down = rt1.block_on(async {
        let limit = if quick { Duration::from_secs(2) } else { Duration::from_secs(15) };
        let tries = if quick { 1 } else { 3 };
        let mut lines: Vec<String> = Vec::new();
        // Redis-only, so every call needs the store; breaker cool-down long enough for the bench.
        let ours_down = Ours::new(
            Cache::builder()
                .namespace("down")
                .redis(URL_DOWN.get().unwrap().clone())
                .local_tier(false)
                .breaker(3, Duration::from_secs(600))
                .build()
                .unwrap(),
        );
        // Default breaker (3 failures, 2 s cool-down) for the recovery check.
        let ours_rec = Ours::new(
            Cache::builder().namespace("rec").redis(URL_DOWN.get().unwrap().clone()).local_tier(false).build().unwrap(),
        );
        ours_down.coin(id).await.unwrap();
        ours_rec.coin(id).await.unwrap();
        cc_down_mux(id).await.unwrap();
        cc_down_cm(id).await.unwrap();
        let up_calls = (ours_down.calls.load(Relaxed), CC_DOWN_CALLS.load(Relaxed), CC_DOWN_CM_CALLS.load(Relaxed));
        ours_down.coin(id).await.unwrap();
        cc_down_mux(id).await.unwrap();
        cc_down_cm(id).await.unwrap();
        assert_eq!(
            up_calls,
            (ours_down.calls.load(Relaxed), CC_DOWN_CALLS.load(Relaxed), CC_DOWN_CM_CALLS.load(Relaxed)),
            "hits while up"
        );

        down_server.kill();
        let mut opening = Vec::new();
        for svc in [&ours_down, &ours_rec] {
            for _ in 0..10 {
                if svc.cache.remote_circuit_open() {
                    break;
                }
                let (d, o) = bounded(limit, svc.coin(id)).await;
                opening.push(format!("{} {o}", fmt_ns(d.as_nanos() as f64)));
            }
        }
        lines.push(format!("ours: calls until the breaker opened (each): {}", opening.join("; ")));
        let mut cc_lines = Vec::new();
        for (name, which) in
            [("cached crate (multiplexed, its default)", 0), ("cached crate (connection_manager(true))", 1)]
        {
            let mut r = Vec::new();
            for _ in 0..tries {
                let (d, o) = if which == 0 {
                    bounded(limit, cc_down_mux(id)).await
                } else {
                    bounded(limit, cc_down_cm(id)).await
                };
                r.push(format!("{} {o}", fmt_ns(d.as_nanos() as f64)));
            }
            cc_lines.push(format!("{name}: {}", r.join("; ")));
        }
        (ours_down, ours_rec, lines, cc_lines, limit)
    });
    let (ours_down, ours_rec, mut down_lines, cc_lines, limit) = down;
    assert!(ours_down.cache.remote_circuit_open(), "breaker open for the bench");
    {
        let d = &ours_down;
        let ours = move || async move { d.coin(id).await.expect("row 7: ours returned Err with Redis down") };
        let mut g = Group::new(c.as_mut(), "r7_redis_down", &rt1, sample_size);
        g.call("ours_breaker_open", &ours);
        g.call("body_direct", &body_direct);
        g.finish();
        paired(&rt1, ("r7_redis_down/ours_breaker_open", "r7_redis_down/body_direct"), None, &ours, &body_direct);
    }
    // Asserted in every mode: with the breaker open every call answers Ok (from the body), and
    // the added cost per call is bounded, generously (the target is ~1 ms; 5 ms absorbs a loaded
    // machine).
    {
        let n = 20u32;
        let (all_ok, ours_t, body_t) = rt1.block_on(async {
            let mut all_ok = true;
            let t0 = Instant::now();
            for _ in 0..n {
                let (_, o) = bounded(limit, ours_down.coin(id)).await;
                all_ok &= matches!(o, Outcome::Ok);
            }
            let ours_t = t0.elapsed() / n;
            let t1 = Instant::now();
            for _ in 0..n {
                black_box(body_direct().await.unwrap());
            }
            (all_ok, ours_t, t1.elapsed() / n)
        });
        let added = ours_t.saturating_sub(body_t);
        check(&mut checks, all_ok, format!("row 7: Redis down, breaker open: {n} calls of ours all returned Ok"));
        check(
            &mut checks,
            added < Duration::from_millis(5),
            format!(
                "row 7: added cost per call with the breaker open {} (call {} - body {}) < 5 ms",
                fmt_ns(added.as_nanos() as f64),
                fmt_ns(ours_t.as_nanos() as f64),
                fmt_ns(body_t.as_nanos() as f64)
            ),
        );
    }
    down_lines.extend(cc_lines);

    // Recovery: restart, then a set and a get must hit. The three run concurrently (bounded).
    let deadline = if quick { Duration::from_millis(2500) } else { Duration::from_secs(10) };
    let recovery = rt1.block_on(async {
        if !quick {
            // The cool-down ran out during the bench above: a failed probe re-opens the breaker
            // now, so the recovery time below includes waiting out a fresh 2 s cool-down.
            tokio::time::sleep(Duration::from_millis(2100)).await;
            let _ = ours_rec.coin(id).await;
            assert!(ours_rec.cache.remote_circuit_open());
        }
        down_server.restart();
        let restarted = Instant::now();
        let ours = async {
            let mut n = 0;
            while restarted.elapsed() < deadline {
                n += 1;
                let k = format!("rec-{n}");
                let before = ours_rec.calls.load(Relaxed);
                let a = ours_rec.coin(&k).await.is_ok();
                let b = ours_rec.coin(&k).await.is_ok();
                if a && b && ours_rec.calls.load(Relaxed) == before + 1 {
                    return format!(
                        "ours (default breaker: 3 failures, 2 s cool-down): recovered, set+get hit {} after restart",
                        fmt_ns(restarted.elapsed().as_nanos() as f64)
                    );
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            format!("ours: NOT recovered within {deadline:?}")
        };
        let theirs = |which: usize| async move {
            let name = if which == 0 {
                "cached crate (multiplexed, its default)"
            } else {
                "cached crate (connection_manager(true))"
            };
            let calls = if which == 0 { &CC_DOWN_CALLS } else { &CC_DOWN_CM_CALLS };
            let call = |k: String| async move {
                if which == 0 {
                    cc_down_mux(&k).await
                } else {
                    cc_down_cm(&k).await
                }
            };
            let mut last = String::new();
            let mut n = 0;
            while restarted.elapsed() < deadline {
                n += 1;
                let k = format!("rec-{which}-{n}");
                let before = calls.load(Relaxed);
                let (_, a) = bounded(limit, call(k.clone())).await;
                let (_, b) = bounded(limit, call(k.clone())).await;
                if matches!((&a, &b), (Outcome::Ok, Outcome::Ok)) && calls.load(Relaxed) == before + 1 {
                    return format!(
                        "{name}: recovered, set+get hit {} after restart",
                        fmt_ns(restarted.elapsed().as_nanos() as f64)
                    );
                }
                last = format!("set: {a}, get: {b}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            format!("{name}: NOT recovered within {deadline:?} (last try: {last})")
        };
        let (a, b, c) = tokio::join!(ours, theirs(0), theirs(1));
        vec![a, b, c]
    });

    // A hung server (SIGSTOP: connections stay open, nothing answers): the outage a breaker is for.
    let paused = rt1.block_on(async {
        let ours_p = Ours::new(
            Cache::builder()
                .namespace("pause")
                .redis(URL_DOWN.get().unwrap().clone())
                .local_tier(false)
                .build()
                .unwrap(),
        );
        ours_p.coin(id).await.unwrap();
        let _ = cc_down_cm("pause").await;
        let _ = cc_down_cm("pause").await;
        down_server.pause();
        let calls = if quick { 4 } else { 8 };
        let mut ours_l = Vec::new();
        for _ in 0..calls {
            let (d, o) = bounded(limit, ours_p.coin(id)).await;
            ours_l.push(format!("{} {o}", fmt_ns(d.as_nanos() as f64)));
        }
        let mut cc_l = Vec::new();
        for _ in 0..(if quick { 1 } else { 3 }) {
            let (d, o) = bounded(limit, cc_down_cm("pause")).await;
            cc_l.push(format!("{} {o}", fmt_ns(d.as_nanos() as f64)));
        }
        down_server.resume();
        vec![
            format!(
                "ours (default: 250 ms op timeout, breaker 3 failures / 2 s), {calls} calls in a row: {}",
                ours_l.join("; ")
            ),
            format!("cached crate (connection_manager(true)): {}", cc_l.join("; ")),
        ]
    });

    // ---- Curves (opt-in; tiny in test mode): their own redis-server ----
    let curve_points = if curves_enabled() {
        let cfg = curves::Cfg::for_mode(test, quick);
        let t = Instant::now();
        let pts = curves::run(&cfg, &rt1, &rtm, &mut checks);
        let out = curves::out_path(test, quick);
        if let Some(dir) = out.parent() {
            std::fs::create_dir_all(dir).unwrap();
        }
        std::fs::write(&out, syntra_bench::curves::to_csv(&pts)).unwrap();
        println!("curves: {} points in {:.1} s, written to {}", pts.len(), t.elapsed().as_secs_f64(), out.display());
        pts
    } else {
        Vec::new()
    };

    if let Some(c) = &c {
        c.final_summary();
    }
    let load_end = loadavg();

    // ---- Summary: every number from this run ----
    let t = |id: &str| SAMPLES.per_iter_ns(id);
    let ratio = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => format!("{:.2}x", a / b),
        _ => "n/a".into(),
    };
    let show = |v: Option<f64>| v.map_or("n/a".into(), fmt_ns);
    println!();
    println!("== summary (this run; ratio = ours / anchor: below 1 means we are faster) ==");
    println!("criterion: slope estimate of each benchmark, run one after the other.");
    println!(
        "paired: alternating equal-size blocks of both (ABBA…); median of the per-block ratios and their p25–p75."
    );
    println!("| row | ours | anchor | ours (criterion) | anchor (criterion) | ratio (criterion) | ours (paired) | anchor (paired) | ratio (paired median) | p25–p75 | blocks |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    let rows: &[(&str, &str, &str, &str, &str)] = &[
        (
            "1 Redis hit, JSON",
            "#[cached] Redis-only, JSON",
            "r1_redis_hit/ours_json",
            "redis-rs GET + serde_json (ConnectionManager)",
            "r1_redis_hit/raw_get_json",
        ),
        (
            "1 Redis hit, MessagePack",
            "#[cached] Redis-only, msgpack",
            "r1_redis_hit/ours_msgpack",
            "redis-rs GET + rmp_serde (ConnectionManager)",
            "r1_redis_hit/raw_get_msgpack",
        ),
        (
            "2 vs the cached crate (MessagePack, ConnectionManager both)",
            "#[cached] Redis-only, msgpack",
            "r1_redis_hit/ours_msgpack",
            "cached AsyncRedisCache, connection_manager(true)",
            "r2_cached_crate/cached_crate_cm",
        ),
        (
            "2 the cached crate over raw (ConnectionManager)",
            "cached AsyncRedisCache, connection_manager(true)",
            "r2_cached_crate/cached_crate_cm",
            "redis-rs GET + rmp_serde (ConnectionManager)",
            "r1_redis_hit/raw_get_msgpack",
        ),
        (
            "2 the cached crate over raw (its default: multiplexed)",
            "cached AsyncRedisCache, default",
            "r2_cached_crate/cached_crate_mux",
            "redis-rs GET + rmp_serde (MultiplexedConnection)",
            "r2_cached_crate/raw_mux_get_msgpack",
        ),
        ("3 memory hit", "#[cached] memory", "r3_memory_hit/ours", "moka get + clone", "r3_memory_hit/moka_get_clone"),
        (
            "3 memory hit",
            "#[cached] memory",
            "r3_memory_hit/ours",
            "format! key + moka get + clone",
            "r3_memory_hit/moka_format_key_get_clone",
        ),
        ("5 miss", "#[cached] memory miss", "r5_miss/ours_memory_miss", "body called directly", "r5_miss/body_direct"),
        (
            "7 Redis down",
            "#[cached] Redis-only, breaker open",
            "r7_redis_down/ours_breaker_open",
            "body called directly",
            "r7_redis_down/body_direct",
        ),
        ("8 key", "KeyWriter (macro path)", "r8_key/ours_key_writer", "format!", "r8_key/format_anchor"),
        ("8 key (escaped)", "KeyWriter, `wrapped_btc`", "r8_key/ours_escaped", "format!", "r8_key/format_anchor"),
        ("8 key (hashed)", "KeyWriter, 100-byte arg", "r8_key/ours_hashed_long", "format!", "r8_key/format_anchor"),
        ("8 key (key_of)", "key_of(call)", "r8_key/ours_key_of", "format!", "r8_key/format_anchor"),
    ];
    for (row, ours, oid, anchor, aid) in rows {
        let (pa, pb, pr, iqr, n) = match pair_of(oid, aid) {
            Some(p) => {
                let s = p.ratio();
                (
                    fmt_ns(p.ours_ns()),
                    fmt_ns(p.anchor_ns()),
                    format!("{:.2}x", s.median),
                    format!("{:.2}–{:.2}", s.p25, s.p75),
                    p.rounds().to_string(),
                )
            }
            None => ("n/a".into(), "n/a".into(), "n/a".into(), "n/a".into(), "0".into()),
        };
        println!(
            "| {row} | {ours} | {anchor} | {} | {} | {} | {pa} | {pb} | {pr} | {iqr} | {n} |",
            show(t(oid)),
            show(t(aid)),
            ratio(t(oid), t(aid))
        );
    }
    if let Some(r) = t("r8_key/render_part_only") {
        println!("render_part(\"bitcoin\") alone (criterion): {}", fmt_ns(r));
    }

    // Row 4 (throughput): ops/s; the ratio is ours' throughput over the anchor's (above 1: faster).
    let ops = |id: &str| t(id).map(|ns| total as f64 / ns * 1e9);
    let tp_pair = |a: &str, b: &str| -> Option<(f64, f64, Spread)> {
        pair_of(a, b)
            .map(|p| (total as f64 / p.ours_ns() * 1e9, total as f64 / p.anchor_ns() * 1e9, p.ratio().inverse()))
    };
    println!();
    println!(
        "== row 4: throughput, {TASKS} tasks on {TASKS} hot keys, {total} calls per iteration, 2 worker threads =="
    );
    println!("ratio = ours ops/s / anchor ops/s (above 1: ours faster), paired median [p25–p75]");
    println!("| row | ours | anchor | ours ops/s (criterion) | anchor ops/s (criterion) | ours ops/s (paired) | anchor ops/s (paired) | ratio (paired) |");
    println!("|---|---|---|---|---|---|---|---|");
    for (row, ours, oid, anchor, aid) in [
        (
            "4a memory tier",
            "#[cached] memory + Redis tiers (memory hits)",
            "r4_memory/ours_tiered",
            "moka get + clone, same 64 tasks",
            "r4_memory/moka_get_clone",
        ),
        (
            "4b Redis only, JSON",
            "#[cached] Redis-only, JSON",
            "r4_redis/ours_json",
            "redis-rs GET + serde_json (ConnectionManager)",
            "r4_redis/raw_cm_get_json",
        ),
        (
            "4b Redis only, MessagePack",
            "#[cached] Redis-only, msgpack",
            "r4_redis/ours_msgpack",
            "cached AsyncRedisCache, connection_manager(true)",
            "r4_redis/cached_crate_cm",
        ),
    ] {
        let f = |v: Option<f64>| v.map_or("n/a".into(), |v| format!("{v:.0}"));
        let (po, pa, pr) = match tp_pair(oid, aid) {
            Some((o, a, s)) => (format!("{o:.0}"), format!("{a:.0}"), s.fmt_ratio()),
            None => ("n/a".into(), "n/a".into(), "n/a".into()),
        };
        println!("| {row} | {ours} | {anchor} | {} | {} | {po} | {pa} | {pr} |", f(ops(oid)), f(ops(aid)));
    }
    println!();
    println!("row 4: commands the server received per call (INFO commandstats, separate counted rounds):");
    println!("| variant | GETs per call | other commands per call |");
    println!("|---|---|---|");
    for (name, pc) in &r4_commands {
        println!("| {name} | {:.3} | {:.3} |", pc.gets, pc.others);
    }

    println!();
    println!("== row 6: stampede, {herd} concurrent cold calls on one key, 20 ms upstream ==");
    println!("| variant | upstream calls | wall time | failed calls |");
    println!("|---|---|---|---|");
    for s in &stampede {
        println!("| {} | {} | {} | {} |", s.label, s.calls, fmt_ns(s.wall.as_nanos() as f64), s.errors);
    }
    println!();
    println!("== row 7: Redis down (server SIGKILLed) ==");
    let added = match (t("r7_redis_down/ours_breaker_open"), t("r7_redis_down/body_direct")) {
        (Some(a), Some(b)) => fmt_ns(a - b),
        _ => "n/a".into(),
    };
    let added_paired =
        pair_of("r7_redis_down/ours_breaker_open", "r7_redis_down/body_direct").map_or("n/a".into(), |p| {
            let d = p.diff();
            format!("{} [{} – {}]", fmt_ns(d.median), fmt_ns(d.p25), fmt_ns(d.p75))
        });
    println!(
        "ours, breaker open: added latency per call = {added} by criterion (call {} - body {}), {added_paired} paired (median [p25 – p75] of per-block differences)",
        show(t("r7_redis_down/ours_breaker_open")),
        show(t("r7_redis_down/body_direct"))
    );
    for l in &down_lines {
        println!("{l}");
    }
    println!("after restart:");
    for l in &recovery {
        println!("{l}");
    }
    println!("server paused (SIGSTOP) instead of killed, per call:");
    for l in &paused {
        println!("{l}");
    }

    // ---- Targets: verdicts read the whole interquartile range ----
    println!();
    println!("== targets (paired; a target inside p25–p75 is \"within noise\") ==");
    println!("| target | measured: median [p25–p75] | verdict |");
    println!("|---|---|---|");
    let at_most = |name: &str, a: &str, b: &str, target: f64| match pair_of(a, b) {
        Some(p) => {
            let s = p.ratio();
            println!("| {name} | {} | {} |", s.fmt_ratio(), Verdict::at_most(&s, target).as_str());
        }
        None => println!("| {name} | n/a | n/a |"),
    };
    at_most(
        "memory-tier hit within 1.5x of moka get + clone",
        "r3_memory_hit/ours",
        "r3_memory_hit/moka_get_clone",
        1.5,
    );
    at_most(
        "memory-tier hit, coherence on, within 1.5x of moka get + clone",
        "r3_memory_hit/ours_coherent",
        "r3_memory_hit/moka_get_clone",
        1.5,
    );
    at_most(
        "Redis-only hit within 1.10x of redis-rs GET + serde_json",
        "r1_redis_hit/ours_json",
        "r1_redis_hit/raw_get_json",
        1.10,
    );
    at_most(
        "Redis-only hit within 1.10x of redis-rs GET + rmp_serde",
        "r1_redis_hit/ours_msgpack",
        "r1_redis_hit/raw_get_msgpack",
        1.10,
    );
    at_most(
        "Redis-only hit faster than the cached crate (MessagePack, ConnectionManager both)",
        "r1_redis_hit/ours_msgpack",
        "r2_cached_crate/cached_crate_cm",
        1.0,
    );
    match tp_pair("r4_memory/ours_tiered", "r4_memory/moka_get_clone") {
        Some((_, _, s)) => println!(
            "| 64 tasks, memory tier: at least 0.67x of moka get + clone's throughput | {} | {} |",
            s.fmt_ratio(),
            Verdict::at_least(&s, 0.67).as_str()
        ),
        None => println!("| 64 tasks, memory tier: at least 0.67x of moka's throughput | n/a | n/a |"),
    }
    match pair_of("r7_redis_down/ours_breaker_open", "r7_redis_down/body_direct") {
        Some(p) => {
            let d = p.diff();
            println!(
                "| Redis down: at most 1 ms added per call, breaker open | {} [{} – {}] | {} |",
                fmt_ns(d.median),
                fmt_ns(d.p25),
                fmt_ns(d.p75),
                Verdict::at_most(&d, 1e6).as_str()
            );
        }
        None => println!("| Redis down: at most 1 ms added per call | n/a | n/a |"),
    }
    if let Some(s) = stampede.iter().find(|s| s.ours) {
        println!(
            "| stampede of {herd} cold calls: 1 upstream call | {} (a count) | {} |",
            s.calls,
            if s.calls == 1 { "met" } else { "not met" }
        );
    }

    if !curve_points.is_empty() {
        println!();
        println!("== curves (paired: median [p25–p75] of per-block ratios ours / anchor) ==");
        println!("| curve | tier | x | ours | anchor | unit | ratio | blocks | note |");
        println!("|---|---|---|---|---|---|---|---|---|");
        for p in &curve_points {
            let v = |x: f64| if p.unit == "ns/call" { fmt_ns(x) } else { format!("{x:.0}") };
            println!(
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                p.curve,
                p.tier,
                p.x_label,
                v(p.ours),
                v(p.anchor),
                p.unit,
                p.ratio.fmt_ratio(),
                p.rounds,
                p.note
            );
        }
    }

    println!();
    println!("== checks (asserted in every mode) ==");
    for ch in &checks {
        println!("{} {}", if ch.ok { "ok    " } else { "FAILED" }, ch.what);
    }
    println!();
    println!("load average at end: {load_end}");
    println!("run time: {:.1} s", started.elapsed().as_secs_f64());
    drop(main_server);
    let failed: Vec<&str> = checks.iter().filter(|c| !c.ok).map(|c| c.what.as_str()).collect();
    assert!(failed.is_empty(), "failed checks: {failed:#?}");
}

/// `/proc/loadavg` (other work on the machine skews every number; say how much there was).
fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg").map(|s| s.trim().to_owned()).unwrap_or_else(|_| "n/a".into())
}
