//! One scenario of the anchors bench in a loop, for a profiler. Instructions per call are the
//! difference between a run of N calls and a run of 0 calls (set-up cancels out):
//!
//! ```text
//! cargo build --release -p syntra-bench --example profile
//! valgrind --tool=callgrind --callgrind-out-file=cg.0 target/release/examples/profile redis_ours 0
//! valgrind --tool=callgrind --callgrind-out-file=cg.N target/release/examples/profile redis_ours 5000
//! callgrind_annotate --inclusive=yes cg.N | grep -E 'syntra|serde|flight|Coin'
//! ```
//!
//! Scenarios: redis_ours, redis_ours_mp, redis_raw, redis_raw_mp, redis_cached_crate (its default
//! multiplexed connection), redis_cached_crate_cm (`connection_manager(true)`, the connection type
//! of ours and of the raw scenarios), mem_ours, mem_service (`mem_ours` through an `impl`'s
//! `#[cached]` defaults), moka, miss_ours, body, down_ours, key_plain, key_hashed.

use cached::macros::concurrent_cached;
use cached::AsyncRedisCache;
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::OnceLock;
use std::time::{Duration, Instant};
use syntra_bench::{make_coin, ApiError, Coin, RedisExt, RedisServer};
use syntra_cache::{cached, Cache};

struct Svc {
    cache: Cache,
}

impl Svc {
    #[cached(ttl = 3600, key = "coingecko:coin:<id>", cache = self.cache)]
    async fn coin(&self, id: &str) -> Result<Coin, ApiError> {
        Ok(make_coin(id))
    }

    #[cached(ttl = 3600, key = "coingecko:coin_mp:<id>", cache = self.cache, format = "msgpack")]
    async fn coin_mp(&self, id: &str) -> Result<Coin, ApiError> {
        Ok(make_coin(id))
    }

    #[cached(ttl = 90, key = "coingecko:price:<id>_<vs>", cache = self.cache)]
    async fn price(&self, id: &str, vs: &str) -> Result<f64, ApiError> {
        let _ = (id, vs);
        Ok(1.0)
    }

    #[cached(ttl = 3600, key = "coingecko:miss:<n>", cache = self.cache)]
    async fn coin_miss(&self, n: u64) -> Result<Coin, ApiError> {
        let _ = n;
        Ok(make_coin("bitcoin"))
    }
}

/// `Svc::coin` through the `impl`'s defaults: the same expansion, so the same instructions.
struct Service {
    cache: Cache,
}

#[cached(cache = self.cache, prefix = "coingecko")]
impl Service {
    #[cached(ttl = 3600, key = "coin:<id>")]
    async fn coin(&self, id: &str) -> Result<Coin, ApiError> {
        Ok(make_coin(id))
    }
}

static URL: OnceLock<String> = OnceLock::new();

/// The `cached` crate's Redis store, as in the bench.
#[concurrent_cached(
    ty = "AsyncRedisCache<String, Coin>",
    create = r##"{ AsyncRedisCache::builder("profile").connection_string(URL.get().unwrap()).ttl(Duration::from_secs(3600)).build().await.unwrap() }"##,
    key = "String",
    convert = r##"{ id.to_owned() }"##,
    map_error = r##"|e| ApiError(format!("{e}"))"##
)]
async fn cc_coin(id: &str) -> Result<Coin, ApiError> {
    Ok(make_coin(id))
}

/// The same store on a `ConnectionManager` (`connection_manager(true)`), the connection type ours
/// and the raw scenarios use.
#[concurrent_cached(
    ty = "AsyncRedisCache<String, Coin>",
    create = r##"{ AsyncRedisCache::builder("profile_cm").connection_string(URL.get().unwrap()).ttl(Duration::from_secs(3600)).connection_manager(true).build().await.unwrap() }"##,
    key = "String",
    convert = r##"{ id.to_owned() }"##,
    map_error = r##"|e| ApiError(format!("{e}"))"##
)]
async fn cc_coin_cm(id: &str) -> Result<Coin, ApiError> {
    Ok(make_coin(id))
}

const LONG: &str =
    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx";

#[inline(never)]
async fn measured(
    scenario: &str,
    n: u64,
    svc: &Svc,
    service: &Service,
    cm: &redis::aio::ConnectionManager,
    moka: &moka::sync::Cache<String, Coin>,
) {
    let counter = AtomicU64::new(1_000_000);
    for _ in 0..n {
        match scenario {
            "redis_ours" | "mem_ours" | "down_ours" => {
                black_box(svc.coin("bitcoin").await.unwrap());
            }
            "mem_service" => {
                black_box(service.coin("bitcoin").await.unwrap());
            }
            "redis_ours_mp" => {
                black_box(svc.coin_mp("bitcoin").await.unwrap());
            }
            "redis_raw" => {
                let mut c = cm.clone();
                let b: Option<Vec<u8>> = redis::AsyncCommands::get(&mut c, "raw:coin").await.unwrap();
                black_box(serde_json::from_slice::<Coin>(&b.unwrap()).unwrap());
            }
            "redis_raw_mp" => {
                let mut c = cm.clone();
                let b: Option<Vec<u8>> = redis::AsyncCommands::get(&mut c, "raw:coin_mp").await.unwrap();
                black_box(rmp_serde::from_slice::<Coin>(&b.unwrap()).unwrap());
            }
            "redis_cached_crate" => {
                black_box(cc_coin("bitcoin").await.unwrap());
            }
            "redis_cached_crate_cm" => {
                black_box(cc_coin_cm("bitcoin").await.unwrap());
            }
            "moka" => {
                black_box(moka.get("syntra:coingecko:coin:bitcoin").unwrap());
            }
            "miss_ours" => {
                black_box(svc.coin_miss(counter.fetch_add(1, Relaxed)).await.unwrap());
            }
            "key_plain" => {
                black_box(syntra_cache::key_of(svc.price(black_box("bitcoin"), "usd")).unwrap());
            }
            "key_hashed" => {
                let mut s = String::new();
                syntra_cache::key::render_part(&mut s, black_box(LONG), syntra_cache::key::Next::End).unwrap();
                black_box(s);
            }
            "body" => {
                black_box(make_coin(black_box("bitcoin")));
            }
            other => panic!("unknown scenario {other}"),
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let scenario = args.get(1).map(String::as_str).unwrap_or("redis_ours").to_owned();
    let n: u64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(20_000);
    let mut server = RedisServer::start();
    server.set_bytes("raw:coin", &serde_json::to_vec(&make_coin("bitcoin")).unwrap());
    server.set_bytes("raw:coin_mp", &rmp_serde::to_vec(&make_coin("bitcoin")).unwrap());
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let cache = match scenario.as_str() {
        "mem_ours" | "mem_service" | "miss_ours" | "key_plain" | "key_hashed" => Cache::memory(),
        "down_ours" => Cache::builder()
            .redis(server.url())
            .local_tier(false)
            .breaker(3, Duration::from_secs(3600))
            .build()
            .unwrap(),
        _ => Cache::builder().redis(server.url()).local_tier(false).build().unwrap(),
    };
    let service = Service { cache: cache.clone() };
    let svc = Svc { cache };
    let cm = rt.block_on(redis::aio::ConnectionManager::new(server.client())).unwrap();
    let moka = moka::sync::Cache::builder().max_capacity(10_000).build();
    moka.insert("syntra:coingecko:coin:bitcoin".to_owned(), make_coin("bitcoin"));
    URL.set(server.url()).unwrap();
    rt.block_on(async {
        cc_coin("bitcoin").await.unwrap();
        cc_coin_cm("bitcoin").await.unwrap();
        svc.coin("bitcoin").await.unwrap();
        svc.coin_mp("bitcoin").await.unwrap();
        service.coin("bitcoin").await.unwrap();
    });
    if scenario == "down_ours" {
        server.kill();
        rt.block_on(async {
            while !svc.cache.remote_circuit_open() {
                svc.coin("bitcoin").await.unwrap();
            }
        });
    }
    let start = Instant::now();
    rt.block_on(measured(&scenario, n, &svc, &service, &cm, &moka));
    let el = start.elapsed();
    println!("{scenario}: {n} calls, {:.3} µs per call", el.as_secs_f64() * 1e6 / n as f64);
}
