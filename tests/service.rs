//! `#[cached]` on an `impl` (service-level defaults) and named TTLs, against a real
//! redis-server: the keys and TTLs that land in Redis are the ones the defaults and the TTL table
//! say, a method's own arguments win, and an `impl` with defaults shares its entries with the
//! same methods written out in full (the expansion is the same).

mod common;

use common::{redis_only, scan_keys, RedisExt, RedisServer};
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Duration;
use syntra_cache::{cached, Cache};

/// A TTL table as the providers keep it: one row per provider, overridable at start-up.
#[derive(Debug, Clone, Copy)]
struct Ttls {
    prices: PriceTtls,
}

#[derive(Debug, Clone, Copy)]
struct PriceTtls {
    price: Duration,
    price_stale: Duration,
    search: Duration,
}

fn ttls(price_secs: u64) -> Arc<Ttls> {
    Arc::new(Ttls {
        prices: PriceTtls {
            price: Duration::from_secs(price_secs),
            price_stale: Duration::from_secs(300),
            search: Duration::from_secs(40),
        },
    })
}

struct Prices {
    cache: Cache,
    ttls: PriceTtls,
    calls: AtomicUsize,
}

impl Prices {
    fn new(cache: Cache, ttls: &Ttls) -> Self {
        Prices { cache, ttls: ttls.prices, calls: AtomicUsize::new(0) }
    }
}

#[cached(cache = self.cache, prefix = "prices", ttls = self.ttls)]
impl Prices {
    #[cached(ttl = "price", stale = "price_stale")]
    async fn price(&self, id: &str, vs: &str) -> Result<f64, String> {
        self.calls.fetch_add(1, SeqCst);
        Ok(id.len() as f64 + vs.len() as f64)
    }

    #[cached(ttl = "search", key = "find:<query>")]
    async fn search(&self, query: &str) -> Result<Vec<String>, String> {
        self.calls.fetch_add(1, SeqCst);
        Ok(vec![query.to_owned()])
    }

    #[cached(ttl = 5)]
    async fn global(&self) -> Result<u64, String> {
        Ok(self.calls.fetch_add(1, SeqCst) as u64)
    }

    async fn uncached(&self) -> usize {
        self.calls.fetch_add(1, SeqCst)
    }
}

/// The same `price` with every argument written out, as before service-level defaults.
struct Explicit {
    cache: Cache,
    ttls: Arc<Ttls>,
    calls: AtomicUsize,
}

impl Explicit {
    #[cached(ttl = self.ttls.prices.price, key = "prices:price:<id>_<vs>", stale = self.ttls.prices.price_stale, cache = self.cache)]
    async fn price(&self, id: &str, vs: &str) -> Result<f64, String> {
        self.calls.fetch_add(1, SeqCst);
        Ok(-1.0)
    }
}

fn pttl_secs(redis: &RedisServer, key: &str) -> i64 {
    (redis.pttl(key) + 999) / 1000
}

#[tokio::test]
async fn defaults_and_named_ttls_decide_the_keys_and_ttls_in_redis() {
    let redis = RedisServer::start();
    let table = ttls(90);
    let prices = Prices::new(redis_only(&redis, "svc"), &table);

    assert_eq!(prices.price("btc", "usd").await, Ok(6.0));
    assert_eq!(prices.price("btc", "usd").await, Ok(6.0));
    assert_eq!(prices.search("eth").await, Ok(vec!["eth".to_owned()]));
    assert_eq!(prices.search("eth").await, Ok(vec!["eth".to_owned()]));
    assert_eq!(prices.global().await, prices.global().await);
    assert_eq!(prices.calls.load(SeqCst), 3, "each method computed once");
    prices.uncached().await;
    prices.uncached().await;
    assert_eq!(prices.calls.load(SeqCst), 5, "a method without #[cached] is left alone");

    let mut keys = scan_keys(&redis.client(), "svc:*");
    keys.sort();
    assert_eq!(keys, ["svc:prices:find:eth", "svc:prices:global", "svc:prices:price:btc_usd"]);
    // `price`: its named TTL (90 s) plus the stale window it keeps (300 s) in Redis.
    let price = pttl_secs(&redis, "svc:prices:price:btc_usd");
    assert!((385..=390).contains(&price), "ttl `price` + `price_stale`: {price} s");
    let search = pttl_secs(&redis, "svc:prices:find:eth");
    assert!((35..=40).contains(&search), "ttl `search`: {search} s");
    let global = pttl_secs(&redis, "svc:prices:global");
    assert!((1..=5).contains(&global), "the method's own `ttl = 5`: {global} s");
}

#[tokio::test]
async fn a_named_ttl_reads_the_table_of_the_instance() {
    let redis = RedisServer::start();
    // An override (as from `SYNTRA_TTL_FILE`): the same code, another table.
    let prices = Prices::new(redis_only(&redis, "over"), &ttls(7));
    prices.price("btc", "usd").await.unwrap();
    let price = pttl_secs(&redis, "over:prices:price:btc_usd");
    assert!((303..=307).contains(&price), "ttl `price` overridden to 7 s, + 300 s stale: {price} s");
}

#[tokio::test]
async fn defaults_share_entries_with_the_arguments_written_out() {
    let redis = RedisServer::start();
    let table = ttls(90);
    let explicit = Explicit { cache: redis_only(&redis, "same"), ttls: table.clone(), calls: AtomicUsize::new(0) };
    let prices = Prices::new(redis_only(&redis, "same"), &table);

    assert_eq!(explicit.price("btc", "usd").await, Ok(-1.0));
    // Same key, same value type, same site facts: the entry written out in full is a hit here.
    assert_eq!(prices.price("btc", "usd").await, Ok(-1.0));
    assert_eq!((explicit.calls.load(SeqCst), prices.calls.load(SeqCst)), (1, 0));
}

trait Repo {
    async fn find(&self, id: u64) -> Option<String>;
    async fn count(&self) -> Result<u64, String>;
}

struct Db {
    cache: Cache,
    calls: AtomicUsize,
}

#[cached(cache = self.cache, prefix = "db", ttl = "2m")]
impl Repo for Db {
    #[cached(none_ttl = 20)]
    async fn find(&self, id: u64) -> Option<String> {
        self.calls.fetch_add(1, SeqCst);
        (id > 0).then(|| format!("row {id}"))
    }

    #[cached]
    async fn count(&self) -> Result<u64, String> {
        Ok(self.calls.fetch_add(1, SeqCst) as u64)
    }
}

#[tokio::test]
async fn trait_impls_take_defaults_too() {
    let redis = RedisServer::start();
    let db = Db { cache: redis_only(&redis, "trait"), calls: AtomicUsize::new(0) };
    assert_eq!(db.find(1).await.as_deref(), Some("row 1"));
    assert_eq!(db.find(0).await, None);
    assert_eq!(db.count().await, db.count().await);
    assert_eq!(db.find(1).await.as_deref(), Some("row 1"));
    assert_eq!(db.find(0).await, None);
    assert_eq!(db.calls.load(SeqCst), 3);

    let found = pttl_secs(&redis, "trait:db:find:1");
    assert!((115..=120).contains(&found), "the impl's `ttl = \"2m\"`: {found} s");
    let none = pttl_secs(&redis, "trait:db:find:0");
    assert!((15..=20).contains(&none), "the method's `none_ttl = 20`: {none} s");
    let count = pttl_secs(&redis, "trait:db:count");
    assert!((115..=120).contains(&count), "{count} s");
}
