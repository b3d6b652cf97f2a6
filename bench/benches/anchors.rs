//! syntra-cache against its anchors, in one run, with ratios (issue 6).
//!
//! Full run: `cargo bench -p syntra-bench` (about 3 minutes). Under `cargo test --all-targets`
//! (criterion's test mode) or with `SYNTRA_BENCH_QUICK=1` every row runs with small counts.
//!
//! Every Redis row talks to a redis-server this binary starts on a free loopback port.

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
use syntra_bench::{
    bench_flag, fmt_ns, list_mode, make_coin, quick_mode, ApiError, Coin, RedisExt, RedisServer, Samples,
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
}

/// The body of `coin_miss`, called directly (row 5's anchor).
async fn body_direct() -> Result<Coin, ApiError> {
    Ok(make_coin("bitcoin"))
}

// ---------------------------------------------------------------------------------------------
// The `cached` crate (4.x): `#[concurrent_cached]` over its `AsyncRedisCache`
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

// One function per runtime and server: the store (and its connection task) lives in a static
// built on first call.
#[concurrent_cached(
    ty = "AsyncRedisCache<String, Coin>",
    create = r##"{ cc_store("lat", URL_MAIN.get().unwrap(), false).await }"##,
    key = "String",
    convert = r##"{ id.to_owned() }"##,
    map_error = r##"|e| ApiError(format!("{e}"))"##
)]
async fn cc_coin_lat(id: &str) -> Result<Coin, ApiError> {
    Ok(make_coin(id))
}

#[concurrent_cached(
    ty = "AsyncRedisCache<String, Coin>",
    create = r##"{ cc_store("tp", URL_MAIN.get().unwrap(), false).await }"##,
    key = "String",
    convert = r##"{ id.to_owned() }"##,
    map_error = r##"|e| ApiError(format!("{e}"))"##
)]
async fn cc_coin_tp(id: &str) -> Result<Coin, ApiError> {
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
/// A paired result: ours ns, anchor ns, median ratio, rounds.
type PairResult = (f64, f64, f64, usize);
/// Paired results by (ours id, anchor id).
static PAIRS: LazyLock<Mutex<HashMap<(String, String), PairResult>>> = LazyLock::new(Default::default);

async fn time_block<F, Fut, T>(f: &F, k: u64) -> Duration
where
    F: Fn() -> Fut,
    Fut: Future<Output = T>,
{
    let start = Instant::now();
    for _ in 0..k {
        black_box(f().await);
    }
    start.elapsed()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// Measures `a` (ours) and `b` (its anchor) in alternating blocks (ABBA…) of equal call counts,
/// so that load from other processes on this shared machine hits both alike. Keeps the medians
/// of the per-call times and of the per-round ratio a/b.
fn paired<FA, A, TA, FB, B, TB>(rt: &Runtime, ids: (&str, &str), rounds: Option<usize>, a: &FA, b: &FB)
where
    FA: Fn() -> A,
    A: Future<Output = TA>,
    FB: Fn() -> B,
    B: Future<Output = TB>,
{
    let (default_rounds, target) = *PAIR_CFG.get().unwrap();
    let rounds = rounds.unwrap_or(default_rounds);
    let (ta, tb, r) = rt.block_on(async {
        let per = time_block(a, 10).await.max(time_block(b, 10).await) / 10;
        let k = (target.as_nanos() / per.as_nanos().max(1)).clamp(1, 10_000_000) as u64;
        let (mut ta, mut tb, mut r) = (Vec::new(), Vec::new(), Vec::new());
        for i in 0..rounds {
            let (x, y) = if i % 2 == 0 {
                let x = time_block(a, k).await;
                (x, time_block(b, k).await)
            } else {
                let y = time_block(b, k).await;
                (time_block(a, k).await, y)
            };
            let (x, y) = (x.as_nanos() as f64 / k as f64, y.as_nanos() as f64 / k as f64);
            ta.push(x);
            tb.push(y);
            r.push(x / y);
        }
        (median(ta), median(tb), median(r))
    });
    PAIRS.lock().unwrap().insert((ids.0.to_owned(), ids.1.to_owned()), (ta, tb, r, rounds));
}

fn pair_of(a: &str, b: &str) -> Option<PairResult> {
    PAIRS.lock().unwrap().get(&(a.to_owned(), b.to_owned())).copied()
}

/// One round of row 4: `TASKS` tasks, each doing `per_task` calls over the hot keys.
async fn round<F, Fut>(keys: &Arc<Vec<String>>, f: F)
where
    F: Fn(Arc<Vec<String>>, usize) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let mut tasks = Vec::with_capacity(TASKS);
    for t in 0..TASKS {
        tasks.push(tokio::spawn(f(keys.clone(), t)));
    }
    for t in tasks {
        t.await.unwrap();
    }
}

const TASKS: usize = 64;

// ---------------------------------------------------------------------------------------------
// Rows 6 and 7: counts and outages, timed by hand
// ---------------------------------------------------------------------------------------------

struct Stampede {
    label: &'static str,
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
    Stampede { label: "", calls: svc.calls.load(Relaxed) - before, wall: start.elapsed(), errors }
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
    Stampede { label: "", calls: CC_STAMPEDE_CALLS.load(Relaxed) - before, wall: start.elapsed(), errors }
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
    let quick = quick_mode();
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

    PAIR_CFG.set(if quick { (3, Duration::from_millis(2)) } else { (41, Duration::from_millis(25)) }).unwrap();
    let main_server = RedisServer::start();
    let mut down_server = RedisServer::start();
    URL_MAIN.set(main_server.url()).unwrap();
    URL_DOWN.set(down_server.url()).unwrap();
    let url = main_server.url();

    let rt1 = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let rtm = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();

    // The value.
    let coin = make_coin("bitcoin");
    let json = serde_json::to_vec(&coin).unwrap();
    let mp = rmp_serde::to_vec(&coin).unwrap();
    let id = "bitcoin";

    // ---- Caches and connections (row 1-3, 5, 8 on the current-thread runtime) ----
    let redis_only = |ns: &str| Cache::builder().namespace(ns).redis(url.clone()).local_tier(false).build().unwrap();
    let tiered = |ns: &str| Cache::builder().namespace(ns).redis(url.clone()).build().unwrap();
    let ours_redis = Ours::new(redis_only("r1"));
    let ours_mem = Ours::new(Cache::memory());
    let ours_miss = Ours::new(Cache::memory());
    let raw_key = "raw:coingecko:coin:bitcoin";
    let raw_key_mp = "raw:coingecko:coin_mp:bitcoin";
    main_server.set_bytes(raw_key, &json);
    main_server.set_bytes(raw_key_mp, &mp);
    let client = redis::Client::open(url.clone()).unwrap();
    let mut cm = rt1.block_on(redis::aio::ConnectionManager::new(client.clone())).unwrap();
    let moka: moka::sync::Cache<String, Coin> = moka::sync::Cache::builder().max_capacity(10_000).build();
    let moka_key = "syntra:coingecko:coin:bitcoin".to_owned();
    moka.insert(moka_key.clone(), coin.clone());
    let (ours_env, cc_size) = rt1.block_on(async {
        ours_redis.coin(id).await.unwrap();
        ours_redis.coin_mp(id).await.unwrap();
        ours_mem.coin(id).await.unwrap();
        cc_coin_lat(id).await.unwrap();
        let env: Vec<u8> = redis::AsyncCommands::get(&mut cm, "r1:coingecko:coin:bitcoin").await.unwrap();
        let env_mp: Vec<u8> = redis::AsyncCommands::get(&mut cm, "r1:coingecko:coin_mp:bitcoin").await.unwrap();
        let mut scan: Vec<String> = redis::AsyncCommands::keys(&mut cm, "*lat*").await.unwrap();
        scan.sort();
        let cc: Vec<u8> = redis::AsyncCommands::get(&mut cm, scan.first().expect("cached crate key")).await.unwrap();
        ((env.len(), env_mp.len()), cc.len())
    });
    assert_eq!(ours_redis.calls.load(Relaxed), 2, "primed: one body run per method");
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
        println!("mode: {}", if quick { "QUICK (small counts; numbers are not results)" } else { "full" });
        println!("load average at start: {}", loadavg());
    }

    // ---- Row 1 + 2: Redis-tier hit ----
    {
        let ours_json = || ours_redis.coin(id);
        let raw_json = || {
            let mut cm = cm.clone();
            async move {
                let b: Option<Vec<u8>> = redis::AsyncCommands::get(&mut cm, raw_key).await.unwrap();
                serde_json::from_slice::<Coin>(&b.unwrap()).unwrap()
            }
        };
        let ours_mp = || ours_redis.coin_mp(id);
        let raw_mp = || {
            let mut cm = cm.clone();
            async move {
                let b: Option<Vec<u8>> = redis::AsyncCommands::get(&mut cm, raw_key_mp).await.unwrap();
                rmp_serde::from_slice::<Coin>(&b.unwrap()).unwrap()
            }
        };
        let theirs = || cc_coin_lat(id);
        let mut g = Group::new(c.as_mut(), "r1_redis_hit", &rt1, sample_size);
        g.call("ours_json", &ours_json);
        g.call("raw_get_json", &raw_json);
        g.call("ours_msgpack", &ours_mp);
        g.call("raw_get_msgpack", &raw_mp);
        g.call("cached_crate", &theirs);
        g.finish();
        if !listing {
            paired(&rt1, ("r1_redis_hit/ours_json", "r1_redis_hit/raw_get_json"), None, &ours_json, &raw_json);
            paired(&rt1, ("r1_redis_hit/ours_msgpack", "r1_redis_hit/raw_get_msgpack"), None, &ours_mp, &raw_mp);
            paired(&rt1, ("r1_redis_hit/ours_json", "r1_redis_hit/cached_crate"), None, &ours_json, &theirs);
            paired(&rt1, ("r1_redis_hit/ours_msgpack", "r1_redis_hit/cached_crate"), None, &ours_mp, &theirs);
        }
    }
    assert_eq!(ours_redis.calls.load(Relaxed), 2, "every call of row 1 was a hit");

    // ---- Row 3: memory-tier hit ----
    {
        let ours = || ours_mem.coin(id);
        let bare = || moka.get(moka_key.as_str()).unwrap();
        let with_key = || moka.get(&format!("syntra:coingecko:coin:{id}")).unwrap();
        let mut g = Group::new(c.as_mut(), "r3_memory_hit", &rt1, sample_size);
        g.call("ours", &ours);
        g.sync("moka_get_clone", &bare);
        g.sync("moka_format_key_get_clone", &with_key);
        g.finish();
        if !listing {
            paired(&rt1, ("r3_memory_hit/ours", "r3_memory_hit/moka_get_clone"), None, &ours, &|| {
                std::future::ready(bare())
            });
            paired(&rt1, ("r3_memory_hit/ours", "r3_memory_hit/moka_format_key_get_clone"), None, &ours, &|| {
                std::future::ready(with_key())
            });
        }
    }
    assert_eq!(ours_mem.calls.load(Relaxed), 1, "every call of row 3 was a hit");

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
    let per_task = if quick { 4 } else { 100 };
    let total = (TASKS * per_task) as u64;
    let keys: Arc<Vec<String>> = Arc::new((0..TASKS).map(|i| format!("coin-{i:02}")).collect());
    let ours_tp = Arc::new(Ours::new(tiered("r4")));
    let ours_tp_ro = Arc::new(Ours::new(redis_only("r4ro")));
    let mux = rtm.block_on(client.get_multiplexed_async_connection()).unwrap();
    rtm.block_on(async {
        let mut m = mux.clone();
        for k in keys.iter() {
            ours_tp.coin(k).await.unwrap();
            ours_tp_ro.coin(k).await.unwrap();
            cc_coin_tp(k).await.unwrap();
            let _: () =
                redis::AsyncCommands::set(&mut m, format!("raw:tp:{k}"), serde_json::to_vec(&make_coin(k)).unwrap())
                    .await
                    .unwrap();
        }
    });
    {
        // Each iteration is thousands of Redis round trips: 10 flat samples keep the row short.
        let mut g = Group::new(c.as_mut(), "r4_throughput", &rtm, 10);
        if let Some(g) = &mut g.g {
            g.sample_size(10).sampling_mode(SamplingMode::Flat).throughput(Throughput::Elements(total));
        }
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
        let svc = &ours_tp_ro;
        let redis_only_round = || {
            round(ks, move |keys, t| {
                let svc = svc.clone();
                async move {
                    for j in 0..per_task {
                        black_box(svc.coin(&keys[(t + j) % TASKS]).await.unwrap());
                    }
                }
            })
        };
        let mux = &mux;
        let raw_round = || {
            round(ks, move |keys, t| {
                let mut m = mux.clone();
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
                    black_box(cc_coin_tp(&keys[(t + j) % TASKS]).await.unwrap());
                }
            })
        };
        g.call("ours_tiered", &tiered_round);
        g.call("ours_redis_only", &redis_only_round);
        g.call("raw_mux_get_json", &raw_round);
        g.call("cached_crate", &theirs_round);
        g.finish();
        if !listing {
            let rounds = Some(if quick { 3 } else { 21 });
            paired(
                &rtm,
                ("r4_throughput/ours_tiered", "r4_throughput/raw_mux_get_json"),
                rounds,
                &tiered_round,
                &raw_round,
            );
            paired(
                &rtm,
                ("r4_throughput/ours_redis_only", "r4_throughput/raw_mux_get_json"),
                rounds,
                &redis_only_round,
                &raw_round,
            );
            paired(
                &rtm,
                ("r4_throughput/cached_crate", "r4_throughput/raw_mux_get_json"),
                rounds,
                &theirs_round,
                &raw_round,
            );
            paired(
                &rtm,
                ("r4_throughput/ours_tiered", "r4_throughput/cached_crate"),
                rounds,
                &tiered_round,
                &theirs_round,
            );
        }
    }
    assert_eq!(ours_tp.calls.load(Relaxed), TASKS, "row 4 (tiered): hits only");
    assert_eq!(ours_tp_ro.calls.load(Relaxed), TASKS, "row 4 (Redis only): hits only");

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
        let ours = || ours_down.coin(id);
        let mut g = Group::new(c.as_mut(), "r7_redis_down", &rt1, sample_size);
        g.call("ours_breaker_open", &ours);
        g.call("body_direct", &body_direct);
        g.finish();
        paired(&rt1, ("r7_redis_down/ours_breaker_open", "r7_redis_down/body_direct"), None, &ours, &body_direct);
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
    println!("paired: median over alternating equal-size blocks of both (ABBA…), robust to load drift.");
    println!("| row | ours | anchor | ours (criterion) | anchor (criterion) | ratio (criterion) | ours (paired) | anchor (paired) | ratio (paired) |");
    println!("|---|---|---|---|---|---|---|---|---|");
    let rows: &[(&str, &str, &str, &str, &str)] = &[
        (
            "1 Redis hit (JSON)",
            "#[cached] Redis-only",
            "r1_redis_hit/ours_json",
            "redis-rs GET + serde_json",
            "r1_redis_hit/raw_get_json",
        ),
        (
            "1 Redis hit (MessagePack)",
            "#[cached] Redis-only, msgpack",
            "r1_redis_hit/ours_msgpack",
            "redis-rs GET + rmp_serde",
            "r1_redis_hit/raw_get_msgpack",
        ),
        (
            "2 Redis hit vs cached crate",
            "#[cached] Redis-only (JSON)",
            "r1_redis_hit/ours_json",
            "cached AsyncRedisCache (msgpack)",
            "r1_redis_hit/cached_crate",
        ),
        (
            "2 Redis hit vs cached crate",
            "#[cached] Redis-only, msgpack",
            "r1_redis_hit/ours_msgpack",
            "cached AsyncRedisCache (msgpack)",
            "r1_redis_hit/cached_crate",
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
        let (pa, pb, pr) = match pair_of(oid, aid) {
            Some((a, b, r, _)) => (fmt_ns(a), fmt_ns(b), format!("{r:.2}x")),
            None => ("n/a".into(), "n/a".into(), "n/a".into()),
        };
        println!(
            "| {row} | {ours} | {anchor} | {} | {} | {} | {pa} | {pb} | {pr} |",
            show(t(oid)),
            show(t(aid)),
            ratio(t(oid), t(aid))
        );
    }
    if let Some(r) = t("r8_key/render_part_only") {
        println!("render_part(\"bitcoin\") alone (criterion): {}", fmt_ns(r));
    }
    let added = match (t("r7_redis_down/ours_breaker_open"), t("r7_redis_down/body_direct")) {
        (Some(a), Some(b)) => fmt_ns(a - b),
        _ => "n/a".into(),
    };
    let added_paired = pair_of("r7_redis_down/ours_breaker_open", "r7_redis_down/body_direct")
        .map_or("n/a".into(), |(a, b, _, _)| fmt_ns(a - b));
    println!();
    println!("== row 4: throughput, {TASKS} tasks, {TASKS} hot keys, {total} calls per iteration, 2 worker threads ==");
    println!("| variant | criterion: time per {total} calls | criterion: ops/s | criterion: ops/s vs raw | paired with raw: ops/s ours / ops/s raw | paired: ops/s |");
    println!("|---|---|---|---|---|---|");
    let ops = |id: &str| t(id).map(|ns| total as f64 / ns * 1e9);
    let raw_ops = ops("r4_throughput/raw_mux_get_json");
    for (name, id) in [
        ("ours (memory + Redis tiers)", "r4_throughput/ours_tiered"),
        ("ours (Redis only)", "r4_throughput/ours_redis_only"),
        ("raw redis-rs, one multiplexed connection, GET + serde_json", "r4_throughput/raw_mux_get_json"),
        ("cached crate AsyncRedisCache", "r4_throughput/cached_crate"),
    ] {
        let o = ops(id);
        let r = match (o, raw_ops) {
            (Some(o), Some(r)) => format!("{:.2}x", o / r),
            _ => "n/a".into(),
        };
        let (pr, pops) = match pair_of(id, "r4_throughput/raw_mux_get_json") {
            Some((a, _, ratio, _)) => (format!("{:.2}x", 1.0 / ratio), format!("{:.0}", total as f64 / a * 1e9)),
            None if id.contains("raw_mux") => ("1.00x".into(), "".into()),
            None => ("n/a".into(), "n/a".into()),
        };
        println!(
            "| {name} | {} | {} | {r} | {pr} | {pops} |",
            show(t(id)),
            o.map_or("n/a".into(), |o| format!("{o:.0}"))
        );
    }
    if let Some((a, b, ratio, _)) = pair_of("r4_throughput/ours_tiered", "r4_throughput/cached_crate") {
        println!(
            "paired ours (memory + Redis) vs cached crate: {:.0} vs {:.0} ops/s, ours / theirs = {:.2}x",
            total as f64 / a * 1e9,
            total as f64 / b * 1e9,
            1.0 / ratio
        );
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
    println!(
        "ours, breaker open: added latency per call = {added} by criterion (call {} - body {}), {added_paired} paired",
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
    println!();
    println!("load average at end: {load_end}");
    drop(main_server);
}

/// `/proc/loadavg` (other work on the machine skews every number; say how much there was).
fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg").map(|s| s.trim().to_owned()).unwrap_or_else(|_| "n/a".into())
}
