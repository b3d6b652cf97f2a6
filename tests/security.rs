//! Security against a real `redis-server`: signed values (edits, replays across keys, unsigned
//! values, key rotation), the minimal ACL the whole cache runs under, and a canary API key that
//! must appear in no key, no value and no log line. (The Redis password's absence from Debug,
//! errors and logs is `tests/logs.rs`; the compile-time refusal of secret parameters is
//! `tests/ui/fail/secret-*.rs`.)

#[path = "../examples/providers/mod.rs"]
mod providers;

mod common;

use common::{scan_keys, RedisExt, RedisServer};
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Mutex;
use std::time::Duration;
use syntra_cache::budget::{Budget, Budgets, Denied};
use syntra_cache::{cached, Cache, CacheBuilder};

const KEY_1: &str = "security-suite-signing-key-0001";
const KEY_2: &str = "security-suite-signing-key-0002";

// ---------------------------------------------------------------------------------------------
// Log capture (every level: keys appear at debug)

fn logs() -> &'static Mutex<Vec<u8>> {
    common::captured_logs("trace")
}

fn log_text() -> String {
    String::from_utf8_lossy(&logs().lock().unwrap()).into_owned()
}

fn lines_with(needle: &str) -> Vec<String> {
    log_text().lines().filter(|l| l.contains(needle)).map(str::to_owned).collect()
}

// ---------------------------------------------------------------------------------------------
// Signed values

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Price {
    id: String,
    usd: f64,
}

struct Prices {
    cache: Cache,
    calls: AtomicUsize,
}

impl Prices {
    fn new(cache: Cache) -> Self {
        Prices { cache, calls: AtomicUsize::new(0) }
    }

    #[cached(ttl = 300, key = "cg:price:<id>", cache = self.cache)]
    async fn price(&self, id: &str) -> Result<Price, String> {
        self.calls.fetch_add(1, SeqCst);
        let usd = match id {
            "bitcoin" => 97_000.5,
            "ethereum" => 3_500.25,
            _ => 1.5,
        };
        Ok(Price { id: id.to_owned(), usd })
    }

    fn calls(&self) -> usize {
        self.calls.load(SeqCst)
    }

    fn stats(&self) -> syntra_cache::MethodStats {
        self.cache.stats().get("cg", "price").cloned().unwrap_or_default()
    }
}

fn redis_only(redis: &RedisServer, ns: &str) -> CacheBuilder {
    let _ = logs();
    Cache::builder().namespace(ns).redis(redis.url()).local_tier(false).op_timeout(Duration::from_millis(500))
}

fn replace(hay: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let at = hay.windows(from.len()).position(|w| w == from).expect("pattern in the stored bytes");
    [&hay[..at], to, &hay[at + from.len()..]].concat()
}

#[tokio::test]
async fn without_a_signing_key_an_edit_in_redis_is_served() {
    // What README's "Security" says an attacker with write access can do without a key.
    let redis = RedisServer::start();
    let p = Prices::new(redis_only(&redis, "unsigned").build().unwrap());
    assert_eq!(p.price("bitcoin").await.unwrap().usd, 97_000.5);
    let key = "unsigned:cg:price:bitcoin";
    let edited = replace(&redis.get_bytes(key).unwrap(), b"97000.5", b"1.0");
    redis.set_bytes(key, &edited);
    assert_eq!(p.price("bitcoin").await.unwrap().usd, 1.0, "unsigned values are taken as stored");
}

#[tokio::test]
async fn signed_values_refuse_edits_replays_and_unsigned_values() {
    let redis = RedisServer::start();
    let p = Prices::new(redis_only(&redis, "signed").signing_key(KEY_1).build().unwrap());
    let (btc, eth) = ("signed:cg:price:bitcoin", "signed:cg:price:ethereum");
    assert_eq!(p.price("bitcoin").await.unwrap().usd, 97_000.5);
    assert_eq!(p.price("ethereum").await.unwrap().usd, 3_500.25);
    assert_eq!(p.price("bitcoin").await.unwrap().usd, 97_000.5);
    assert_eq!(p.calls(), 2, "signed values are hits");
    let genuine_btc = redis.get_bytes(btc).unwrap();
    assert!(genuine_btc.starts_with(&[0xa5, b'S', b'G', 1]), "sealed framing");

    // 1. A price edited to 1 (the envelope left intact around it).
    redis.set_bytes(btc, &replace(&genuine_btc, b"97000.5", b"1.0"));
    assert_eq!(p.price("bitcoin").await.unwrap().usd, 97_000.5, "the edit is refused");
    assert_eq!(p.calls(), 3);
    assert_eq!(redis.get_bytes(btc).unwrap(), p_seal_check(&redis, btc), "overwritten");
    assert_eq!(p.stats().tampered, 1);

    // 2. One coin's genuine entry copied under another coin's key.
    let genuine_eth = redis.get_bytes(eth).unwrap();
    redis.set_bytes(btc, &genuine_eth);
    let got = p.price("bitcoin").await.unwrap();
    assert_eq!((got.id.as_str(), got.usd), ("bitcoin", 97_000.5), "a replay under another key is refused");
    assert_eq!(p.stats().tampered, 2);

    // 3. An unsigned (bare) envelope, as a cache without the key would write it.
    let bare = genuine_btc[36..].to_vec();
    redis.set_bytes(btc, &bare);
    assert_eq!(p.price("bitcoin").await.unwrap().usd, 97_000.5);
    assert_eq!(p.stats().tampered, 3);

    // 4. A seal that claims to be ours but is cut short.
    redis.set_bytes(btc, &genuine_btc[..20]);
    assert_eq!(p.price("bitcoin").await.unwrap().usd, 97_000.5);
    assert_eq!(p.stats().tampered, 4);
    assert_eq!(p.calls(), 6);
    assert_eq!(p.price("bitcoin").await.unwrap().usd, 97_000.5);
    assert_eq!(p.calls(), 6, "healed: the rewritten value verifies");

    // Logged at warn, with the key, never the value, and never the signing key.
    let warns = lines_with("Cache TAMPERED: signed:cg:price:bitcoin");
    assert_eq!(warns.len(), 4, "{warns:#?}");
    assert!(warns.iter().all(|l| l.contains("WARN") && !l.contains("97000") && !l.contains("3500")));
    assert!(!log_text().contains(KEY_1), "the signing key is in a log line");
    assert!(!format!("{:?}", p.cache).contains(KEY_1));
}

/// The signed value stored now (after a healing write), for comparison.
fn p_seal_check(redis: &RedisServer, key: &str) -> Vec<u8> {
    let v = redis.get_bytes(key).unwrap();
    assert!(v.starts_with(&[0xa5, b'S', b'G', 1]));
    v
}

#[tokio::test]
async fn key_rotation_verifies_old_signatures_and_signs_with_the_new_key() {
    let redis = RedisServer::start();
    let old = Prices::new(redis_only(&redis, "rot").signing_key(KEY_1).build().unwrap());
    let rolled = Prices::new(redis_only(&redis, "rot").signing_key(KEY_2).signing_keys_old([KEY_1]).build().unwrap());
    // Written by an instance still on the old key: the rolled instance serves it (no cold cache).
    assert_eq!(old.price("bitcoin").await.unwrap().usd, 97_000.5);
    assert_eq!(rolled.price("bitcoin").await.unwrap().usd, 97_000.5);
    assert_eq!((old.calls(), rolled.calls(), rolled.stats().tampered), (1, 0, 0));
    // Written by the rolled instance: signed with the new key only.
    assert_eq!(rolled.price("ethereum").await.unwrap().usd, 3_500.25);
    assert_eq!(old.price("ethereum").await.unwrap().usd, 3_500.25);
    assert_eq!(old.stats().tampered, 1, "the old key alone does not verify the new signature");
    // From the environment, the same.
    let env = |k: &str| match k {
        "SYNTRA_CACHE_REDIS_URL" => Some(redis.url()),
        "SYNTRA_CACHE_NAMESPACE" => Some("rot".to_owned()),
        "SYNTRA_CACHE_LOCAL_TIER" => Some("false".to_owned()),
        "SYNTRA_CACHE_SIGNING_KEY" => Some("a-third-key-nobody-used-yet-0003".to_owned()),
        "SYNTRA_CACHE_SIGNING_KEYS_OLD" => Some(format!("{KEY_2}, {KEY_1}")),
        _ => None,
    };
    let third = Prices::new(CacheBuilder::from_vars(env).unwrap().build().unwrap());
    assert_eq!(third.price("ethereum").await.unwrap().usd, 3_500.25);
    assert_eq!(third.price("bitcoin").await.unwrap().usd, 97_000.5);
    assert_eq!((third.calls(), third.stats().tampered), (0, 0), "both old keys verify");
}

// ---------------------------------------------------------------------------------------------
// The minimal ACL

/// The ACL rules README's "Security" section documents for namespace `acl`.
fn minimal_acl(ns: &str) -> Vec<String> {
    [
        "on",
        ">acl-user-password-1",
        "resetkeys",
        &format!("~{ns}:*"),
        "resetchannels",
        "-@all",
        "+getrange",
        "+set",
        "+del",
        "+unlink",
        "+scan",
        "+evalsha",
        "+script|load",
        "+get",
        "+incrby",
        "+pexpire",
        "+pttl",
        "+time",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

#[derive(Debug, Clone, PartialEq)]
struct Refused(Denied);

impl From<Denied> for Refused {
    fn from(d: Denied) -> Self {
        Refused(d)
    }
}

struct Budgeted {
    cache: Cache,
    calls: AtomicUsize,
}

impl Budgeted {
    #[cached(ttl = 300, key = "cg:chart:<id>", budget = "coingecko", refresh = "299s", cache = self.cache)]
    async fn chart(&self, id: u64) -> Result<Vec<u64>, Refused> {
        self.calls.fetch_add(1, SeqCst);
        Ok(vec![id; 8])
    }
}

#[tokio::test]
async fn the_whole_cache_runs_as_the_minimal_acl_user() {
    let redis = RedisServer::start();
    let mut args = vec!["ACL".to_owned(), "SETUSER".to_owned(), "syntra".to_owned()];
    args.extend(minimal_acl("acl"));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let _: () = redis.cmd(&args);
    let _: () = redis.cmd(&["ACL", "LOG", "RESET"]);
    let url = format!("redis://syntra:acl-user-password-1@127.0.0.1:{}/0", redis.port());
    let budgets = Budgets::new(vec![Budget::new("coingecko").rate(1_000, Duration::from_secs(60))]).unwrap();
    let cache = Cache::builder()
        .namespace("acl")
        .redis(&url)
        .local_tier(false)
        .signing_key(KEY_1)
        .op_timeout(Duration::from_millis(500))
        .budgets(budgets)
        .build()
        .unwrap();
    let svc = Budgeted { cache: cache.clone(), calls: AtomicUsize::new(0) };
    // Misses (budget script, lock SET NX, release script, write), hits (GETRANGE), early
    // refreshes (every hit is within `refresh`: lock, re-read, write), invalidation (DEL) and
    // removal by prefix (SCAN + UNLINK), budget reset (SCAN + UNLINK).
    for id in 0..10 {
        assert_eq!(svc.chart(id).await, Ok(vec![id; 8]));
    }
    // Past the first second every hit is inside the 299 s refresh window.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    for id in 0..10 {
        assert_eq!(svc.chart(id).await, Ok(vec![id; 8]));
    }
    // The refreshed values are new again: plain hits.
    for id in 0..10 {
        assert_eq!(svc.chart(id).await, Ok(vec![id; 8]));
    }
    assert!(cache.remove("cg:chart:3").await.unwrap(), "invalidation");
    assert_eq!(svc.chart(3).await, Ok(vec![3; 8]));
    assert_eq!(cache.remove_prefix("cg:").await.unwrap(), 10, "removal by prefix");
    cache.budgets().unwrap().reset().await.unwrap();
    let stats = cache.stats().total();
    assert_eq!(stats.cache_errors, 0, "every Redis command was allowed: {stats:?}");
    assert!(stats.hits >= 10 && stats.refreshes >= 1, "{stats:?}");
    assert!(!cache.budgets().unwrap().shared_skipped());
    assert!(lines_with("Budget: Redis unavailable").is_empty());
    let denied: Vec<redis::Value> = redis.cmd(&["ACL", "LOG"]);
    assert!(denied.is_empty(), "the server denied something: {denied:?}");

    // The same user cannot reach another namespace: refused (NOPERM), answers still correct.
    let other = Cache::builder().namespace("other").redis(&url).local_tier(false).build().unwrap();
    let svc = Budgeted { cache: other.clone(), calls: AtomicUsize::new(0) };
    assert_eq!(svc.chart(1).await, Ok(vec![1; 8]));
    assert!(other.stats().total().cache_errors > 0);
    assert!(scan_keys(&redis.client(), "other:*").is_empty());
}

// ---------------------------------------------------------------------------------------------
// The canary

const CANARY: &str = "CANARY-6f1d2c-apikey";

struct Secretive {
    cache: Cache,
}

impl Secretive {
    /// A secret passed as a parameter, kept out of the key by `skip`.
    #[cached(ttl = 60, key = "canary:echo:<id>", skip(api_key), cache = self.cache)]
    async fn echo(&self, id: u32, api_key: &str) -> Result<String, String> {
        assert_eq!(api_key, CANARY);
        Ok(format!("value {id}"))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_canary_api_key_appears_in_no_key_value_or_log_line() {
    use providers::{Interval, Providers};
    let _ = logs();
    let redis = RedisServer::start();
    let sim = syntra_sim::Simulator::start(syntra_sim::SimConfig {
        seed: 3,
        limits: syntra_sim::Limits::unlimited(),
        clock_speed: 0.0,
        latency: Duration::ZERO,
        ..Default::default()
    })
    .await
    .unwrap();
    let cache = Cache::builder().namespace("canary").redis(redis.url()).build().unwrap();
    let p = Providers::with_simulator(&sim, cache.clone());
    let canary = || Some(CANARY.to_owned());
    let p = Providers {
        coingecko: p.coingecko.with_api_key(canary()),
        coinmarketcap: p.coinmarketcap.with_api_key(canary()),
        cryptopanic: p.cryptopanic.with_token(canary()),
        ..p
    };
    for _ in 0..2 {
        let _ = p.coingecko.price("bitcoin", "usd").await;
        let _ = p.coingecko.market_chart("bitcoin", "usd", 7).await;
        let _ = p.coingecko.search("sol").await;
        let _ = p.binance.klines("BTCUSDT", Interval::H1, 100).await;
        let _ = p.binance.current_price("ETHUSDT").await;
        let _ = p.dexscreener.search("pepe").await;
        let _ = p.coinmarketcap.quote("BTC").await;
        let _ = p.cryptopanic.news("BTC").await;
        let _ = p.feargreed.current().await;
        let s = Secretive { cache: cache.clone() };
        assert_eq!(s.echo(7, CANARY).await.as_deref(), Ok("value 7"));
    }
    let stats = cache.stats().total();
    assert!(stats.upstream_calls >= 8 && stats.hits >= 8, "the providers ran: {stats:?}");
    let printed = format!("{p:?} {cache:?} {:?}", cache.stats());

    // Every key and every value in Redis.
    let keys = scan_keys(&redis.client(), "*");
    assert!(keys.len() >= 9, "{keys:?}");
    let mut c = redis.client().get_connection().unwrap();
    for key in &keys {
        assert!(!key.contains(CANARY), "key {key}");
        let ty: String = redis::cmd("TYPE").arg(key).query(&mut c).unwrap();
        if ty == "string" {
            let v: Vec<u8> = redis::cmd("GET").arg(key).query(&mut c).unwrap();
            assert!(!String::from_utf8_lossy(&v).contains(CANARY), "value of {key}");
        }
    }
    // Every captured log line (all levels), and what the handles print.
    let text = log_text();
    assert!(text.contains("canary:coinmarketcap:"), "the logs were captured (keys appear at debug)");
    assert!(!text.contains(CANARY), "a log line shows the canary");
    assert!(!printed.contains(CANARY), "Debug shows the canary");
}
