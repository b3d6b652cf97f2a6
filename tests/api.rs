//! The public API against a real redis-server, checked in Redis itself: `key_of`, `invalidate`
//! and `refresh` on free functions, inherent and trait methods; `Cache::remove`;
//! `local_ttl_cap`; `memory_capacity(0)`; a `version =` bump turning an existing entry into a
//! miss.

mod common;

use common::{envelope, now_ms, redis_cache, redis_only, rewrite_data, scan_keys, RedisExt, RedisServer};
use serde::{Deserialize, Serialize};
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::time::{Duration, Instant};
use syntra_cache::{cached, invalidate, key_of, refresh, Cache};

#[derive(Debug, Clone, PartialEq)]
struct ApiError;

static FREE_CALLS: AtomicUsize = AtomicUsize::new(0);

/// A free function; its cache is a parameter left out of the key.
#[cached(ttl = 60, key = "free:cube:<n>", skip(cache), cache = cache)]
async fn cube(cache: &Cache, n: u64) -> Result<u64, ApiError> {
    let k = FREE_CALLS.fetch_add(1, SeqCst) as u64;
    Ok(n * n * n + 1000 * k)
}

trait Quotes {
    async fn quote(&self, symbol: &str) -> Result<u64, ApiError>;
}

struct Cmc {
    cache: Cache,
    calls: AtomicUsize,
}

impl Quotes for Cmc {
    #[cached(ttl = 60, key = "cmc:quote:<symbol>", cache = self.cache)]
    async fn quote(&self, symbol: &str) -> Result<u64, ApiError> {
        Ok(symbol.len() as u64 + 1000 * self.calls.fetch_add(1, SeqCst) as u64)
    }
}

struct Gecko {
    cache: Cache,
    calls: AtomicUsize,
}

impl Gecko {
    fn new(cache: Cache) -> Self {
        Gecko { cache, calls: AtomicUsize::new(0) }
    }

    fn calls(&self) -> usize {
        self.calls.load(SeqCst)
    }

    #[cached(ttl = 60, key = "coingecko:price:<id>", cache = self.cache)]
    async fn price(&self, id: &str) -> Result<u64, ApiError> {
        Ok(id.len() as u64 + 1000 * self.calls.fetch_add(1, SeqCst) as u64)
    }
}

/// key_of, refresh and invalidate on one call, each checked in Redis; `calls` counts bodies.
async fn steer<F, Fut>(redis: &RedisServer, full_key: &str, call: F, calls: impl Fn() -> usize)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<u64, ApiError>>,
{
    let client = redis.client();
    let base = calls();
    let first = call().await.unwrap();
    assert_eq!(call().await.unwrap(), first);
    assert_eq!(calls(), base + 1);

    let k = key_of(call()).unwrap();
    assert_eq!(k.key, full_key);
    assert_eq!(calls(), base + 1, "key_of runs no body");

    tokio::time::sleep(Duration::from_millis(5)).await; // a later `at` than the first write
    let before = now_ms();
    let fresh = refresh(call()).await.unwrap();
    assert_ne!(fresh, first, "refresh ran the body");
    assert_eq!(calls(), base + 2);
    let doc = envelope(&client, full_key).expect("in Redis");
    assert_eq!(doc["data"], fresh, "refresh stored the new value in Redis");
    assert!(doc["at"].as_u64().unwrap() >= before, "with a fresh `at`: {doc}");
    assert_eq!(call().await.unwrap(), fresh, "and in memory");
    assert_eq!(calls(), base + 2);

    assert!(invalidate(call()).await.unwrap(), "an entry existed");
    assert_eq!(envelope(&client, full_key), None, "gone from Redis");
    assert!(!invalidate(call()).await.unwrap(), "nothing left anywhere");
    assert_eq!(calls(), base + 2, "invalidate runs no body");
    call().await.unwrap();
    assert_eq!(calls(), base + 3, "gone from memory: the next call computes");
}

#[tokio::test]
async fn key_of_invalidate_and_refresh_on_a_free_function() {
    let redis = RedisServer::start();
    let cache = redis_cache(&redis, "api");
    steer(&redis, "api:free:cube:3", || cube(&cache, 3), || FREE_CALLS.load(SeqCst)).await;
}

#[tokio::test]
async fn key_of_invalidate_and_refresh_on_a_trait_method() {
    let redis = RedisServer::start();
    let cmc = Cmc { cache: redis_cache(&redis, "api"), calls: AtomicUsize::new(0) };
    steer(&redis, "api:cmc:quote:BTC", || cmc.quote("BTC"), || cmc.calls.load(SeqCst)).await;
    // Through a generic bound too (static dispatch to the same cached method).
    async fn via<Q: Quotes>(q: &Q) -> Result<u64, ApiError> {
        q.quote("ETH").await
    }
    assert_eq!(key_of(via(&cmc)).unwrap().key, "api:cmc:quote:ETH");
}

#[tokio::test]
async fn key_of_invalidate_and_refresh_on_an_inherent_method() {
    let redis = RedisServer::start();
    let svc = Gecko::new(redis_cache(&redis, "api"));
    steer(&redis, "api:coingecko:price:btc", || svc.price("btc"), || svc.calls()).await;
}

#[tokio::test]
async fn remove_takes_one_key_out_of_every_tier() {
    let redis = RedisServer::start();
    let svc = Gecko::new(redis_cache(&redis, "rm"));
    svc.price("btc").await.unwrap();
    svc.price("btc2").await.unwrap();
    assert!(svc.cache.remove("coingecko:price:btc").await.unwrap(), "it existed");
    assert_eq!(scan_keys(&redis.client(), "rm:*"), vec!["rm:coingecko:price:btc2".to_string()], "only that key");
    svc.price("btc").await.unwrap();
    assert_eq!(svc.calls(), 3, "gone from memory too");
    svc.price("btc2").await.unwrap();
    assert_eq!(svc.calls(), 3, "the other entry still answers");
    // Another instance (empty memory) misses after a remove.
    assert!(svc.cache.remove("coingecko:price:btc").await.unwrap());
    let other = Gecko::new(redis_cache(&redis, "rm"));
    other.price("btc").await.unwrap();
    assert_eq!(other.calls(), 1);
    assert!(!svc.cache.remove("coingecko:price:nothing").await.unwrap(), "absent: false");
}

#[tokio::test]
async fn local_ttl_cap_bounds_memory_copies_of_redis_values() {
    let redis = RedisServer::start();
    let capped = |ns: &str| {
        Cache::builder()
            .namespace(ns)
            .redis(redis.url())
            .local_ttl_cap(Duration::from_millis(400))
            .op_timeout(Duration::from_millis(500))
            .build()
            .unwrap()
    };
    // Copies of values read from Redis, and of values this instance wrote itself.
    let writer = Gecko::new(redis_only(&redis, "cap"));
    writer.price("read").await.unwrap();
    let svc = Gecko::new(capped("cap"));
    let read = svc.price("read").await.unwrap();
    let wrote = svc.price("wrote").await.unwrap();
    let t = Instant::now();
    rewrite_data(&redis.client(), "cap:coingecko:price:read", 7.into());
    rewrite_data(&redis.client(), "cap:coingecko:price:wrote", 8.into());
    assert_eq!((svc.price("read").await.unwrap(), svc.price("wrote").await.unwrap()), (read, wrote), "memory first");
    let deadline = t + Duration::from_secs(5);
    loop {
        let now = (svc.price("read").await.unwrap(), svc.price("wrote").await.unwrap());
        if now == (7, 8) {
            break;
        }
        assert!(Instant::now() < deadline, "Redis changes unseen after 5 s (cap 400 ms, TTL 60 s): {now:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    eprintln!("changes seen {:?} after the reads (cap 400 ms)", t.elapsed());
    assert!(t.elapsed() >= Duration::from_millis(200), "the copies were kept for the cap, not dropped at once");
    assert_eq!(svc.calls() + writer.calls(), 2, "no recomputation: the values came from Redis");
}

#[tokio::test]
async fn memory_capacity_zero_turns_the_memory_tier_off() {
    // Memory only: nothing is cached at all.
    let svc = Gecko::new(Cache::builder().memory_capacity(0).build().unwrap());
    for _ in 0..3 {
        svc.price("btc").await.unwrap();
    }
    assert_eq!(svc.calls(), 3);
    // With Redis: every read goes to Redis (a change there is seen at once).
    let redis = RedisServer::start();
    let svc = Gecko::new(Cache::builder().namespace("m0").redis(redis.url()).memory_capacity(0).build().unwrap());
    let v = svc.price("btc").await.unwrap();
    assert_eq!(svc.price("btc").await.unwrap(), v);
    rewrite_data(&redis.client(), "m0:coingecko:price:btc", 4242.into());
    assert_eq!(svc.price("btc").await.unwrap(), 4242);
    assert_eq!(svc.calls(), 1);
}

// ---------------------------------------------------------------------------------------------
// version =

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Coin {
    id: String,
    rank: u32,
}

macro_rules! coin_service {
    ($name:ident $(, $version:literal)?) => {
        struct $name {
            cache: Cache,
            calls: AtomicUsize,
        }
        impl $name {
            #[cached(ttl = 60, key = "schema:coin:<id>", cache = self.cache $(, version = $version)?)]
            async fn coin(&self, id: &str) -> Coin {
                Coin { id: id.into(), rank: 1 + self.calls.fetch_add(1, SeqCst) as u32 }
            }
        }
    };
}
coin_service!(CoinV1);
coin_service!(CoinV1Again);
coin_service!(CoinV2, 2);

#[tokio::test]
async fn a_version_bump_turns_an_existing_redis_entry_into_a_miss() {
    let redis = RedisServer::start();
    let client = redis.client();
    let key = "ver:schema:coin:btc";
    let v1 = CoinV1 { cache: redis_only(&redis, "ver"), calls: AtomicUsize::new(0) };
    let old = v1.coin("btc").await;
    let old_ty = envelope(&client, key).unwrap()["ty"].clone();

    // The same declaration elsewhere (same type, same version) hits the entry.
    let same = CoinV1Again { cache: redis_only(&redis, "ver"), calls: AtomicUsize::new(0) };
    assert_eq!(same.coin("btc").await, old);
    assert_eq!(same.calls.load(SeqCst), 0, "same version: a hit");

    // version = 2: the entry is a miss, recomputed and overwritten with the new fingerprint.
    let v2 = CoinV2 { cache: redis_only(&redis, "ver"), calls: AtomicUsize::new(0) };
    let new = v2.coin("btc").await;
    assert_eq!(v2.calls.load(SeqCst), 1, "version bump: a miss");
    assert_eq!(new.rank, 1);
    let doc = envelope(&client, key).unwrap();
    assert_ne!(doc["ty"], old_ty, "overwritten with the new version's fingerprint");
    assert_eq!(v2.coin("btc").await, new);
    assert_eq!(v2.calls.load(SeqCst), 1, "then a hit for version 2");
    // ... and the old version no longer reads it.
    let v1_again = CoinV1 { cache: redis_only(&redis, "ver"), calls: AtomicUsize::new(0) };
    v1_again.coin("btc").await;
    assert_eq!(v1_again.calls.load(SeqCst), 1);
}
