//! The `#[cached]` macro against a real redis-server: hits, misses, expiry, return-type rules,
//! codecs, tiers, invalidation, foreign values and security.

mod common;

use common::{envelope, now_ms, poll, redis_cache, redis_only, scan_keys, RedisExt, RedisServer};
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::time::Duration;
use syntra_cache::{cached, Cache};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Price {
    id: String,
    vs: String,
    value: f64,
}

struct CoinGecko {
    cache: Cache,
    calls: AtomicUsize,
    fail: std::sync::atomic::AtomicBool,
}

#[derive(Debug, Clone, PartialEq)]
struct ApiError(u16);

impl CoinGecko {
    fn new(cache: Cache) -> Self {
        CoinGecko { cache, calls: AtomicUsize::new(0), fail: Default::default() }
    }

    #[cached(ttl = 90, key = "coingecko:price:<id>_<vs>", cache = self.cache)]
    async fn price(&self, id: &str, vs: &str) -> Result<Price, ApiError> {
        let n = self.calls.fetch_add(1, SeqCst);
        if self.fail.load(SeqCst) {
            return Err(ApiError(429));
        }
        Ok(Price { id: id.into(), vs: vs.into(), value: 100.0 + n as f64 })
    }

    #[cached(ttl = "1s", key = "coingecko:short:<id>", cache = self.cache)]
    async fn short_lived(&self, id: &str) -> Result<Price, ApiError> {
        let n = self.calls.fetch_add(1, SeqCst);
        Ok(Price { id: id.into(), vs: "usd".into(), value: n as f64 })
    }

    #[cached(ttl = 60, key = "coingecko:search:<q>", cache = self.cache, format = "msgpack")]
    async fn search(&self, q: &str) -> Result<Vec<String>, ApiError> {
        self.calls.fetch_add(1, SeqCst);
        Ok(vec![format!("{q}-1"), format!("{q}-2")])
    }

    #[cached(ttl = 60, key = "coingecko:coin:<id>", cache = self.cache)]
    async fn coin(&self, id: &str) -> Option<Price> {
        self.calls.fetch_add(1, SeqCst);
        (id != "nope").then(|| Price { id: id.into(), vs: "usd".into(), value: 1.0 })
    }

    #[cached(ttl = 60, none_ttl = 30, key = "coingecko:coin_neg:<id>", cache = self.cache)]
    async fn coin_neg(&self, id: &str) -> Option<Price> {
        self.calls.fetch_add(1, SeqCst);
        (id != "nope").then(|| Price { id: id.into(), vs: "usd".into(), value: 1.0 })
    }

    #[cached(ttl = 60, key = "coingecko:global", cache = self.cache)]
    async fn global(&self) -> u64 {
        self.calls.fetch_add(1, SeqCst) as u64
    }
}

fn calls(s: &CoinGecko) -> usize {
    s.calls.load(SeqCst)
}

#[tokio::test]
async fn miss_then_hit_with_readable_json_and_ttl() {
    let redis = RedisServer::start();
    let svc = CoinGecko::new(redis_only(&redis, "syntra"));
    let a = svc.price("bitcoin", "usd").await.unwrap();
    let b = svc.price("bitcoin", "usd").await.unwrap();
    assert_eq!(a, b);
    assert_eq!(calls(&svc), 1, "second call must be a hit");
    let raw = redis.get_bytes("syntra:coingecko:price:bitcoin_usd").expect("key follows the seed scheme");
    let doc: serde_json::Value = serde_json::from_slice(&raw).expect("stored value is one JSON document");
    assert_eq!(doc["data"]["id"], "bitcoin");
    assert_eq!(doc["ttl"], 90_000);
    let pttl = redis.pttl("syntra:coingecko:price:bitcoin_usd");
    assert!((85_000..=90_000).contains(&pttl), "PTTL {pttl}");
    let _ = svc.price("bitcoin", "eur").await.unwrap();
    assert_eq!(calls(&svc), 2, "other arguments, other key");
    let stats = svc.cache.stats();
    let m = stats.get("coingecko", "price").unwrap();
    assert_eq!((m.hits, m.misses, m.upstream_calls), (1, 2, 2));
}

#[tokio::test]
async fn entries_expire() {
    let redis = RedisServer::start();
    let svc = CoinGecko::new(redis_cache(&redis, "exp"));
    svc.short_lived("x").await.unwrap();
    svc.short_lived("x").await.unwrap();
    assert_eq!(calls(&svc), 1);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    svc.short_lived("x").await.unwrap();
    assert_eq!(calls(&svc), 2, "expired in both tiers");
}

#[tokio::test]
async fn errors_are_not_cached() {
    let redis = RedisServer::start();
    let svc = CoinGecko::new(redis_cache(&redis, "err"));
    svc.fail.store(true, SeqCst);
    assert_eq!(svc.price("bitcoin", "usd").await, Err(ApiError(429)));
    assert_eq!(redis.get_bytes("err:coingecko:price:bitcoin_usd"), None);
    svc.fail.store(false, SeqCst);
    assert!(svc.price("bitcoin", "usd").await.is_ok());
    assert_eq!(calls(&svc), 2);
    let m = svc.cache.stats();
    assert_eq!(m.get("coingecko", "price").unwrap().upstream_errors, 1);
}

#[tokio::test]
async fn option_caches_some_and_none_only_when_asked() {
    let redis = RedisServer::start();
    let svc = CoinGecko::new(redis_only(&redis, "opt"));
    assert!(svc.coin("btc").await.is_some());
    assert!(svc.coin("btc").await.is_some());
    assert_eq!(calls(&svc), 1);
    assert!(svc.coin("nope").await.is_none());
    assert!(svc.coin("nope").await.is_none());
    assert_eq!(calls(&svc), 3, "None is not cached without none_ttl");
    assert!(svc.coin_neg("nope").await.is_none());
    assert!(svc.coin_neg("nope").await.is_none());
    assert_eq!(calls(&svc), 4, "None cached with none_ttl");
    let pttl = redis.pttl("opt:coingecko:coin_neg:nope");
    assert!((25_000..=30_000).contains(&pttl), "none_ttl applies: {pttl}");
}

#[tokio::test]
async fn msgpack_format_round_trips() {
    let redis = RedisServer::start();
    let svc = CoinGecko::new(redis_only(&redis, "mp"));
    let a = svc.search("btc").await.unwrap();
    assert_eq!(svc.search("btc").await.unwrap(), a);
    assert_eq!(calls(&svc), 1);
    let raw = redis.get_bytes("mp:coingecko:search:btc").unwrap();
    assert_eq!(raw[0] & 0xf0, 0x90, "MessagePack array envelope");
    assert!(serde_json::from_slice::<serde_json::Value>(&raw).is_err());
}

#[tokio::test]
async fn plain_return_and_no_argument_key() {
    let redis = RedisServer::start();
    let svc = CoinGecko::new(redis_only(&redis, "plain"));
    assert_eq!(svc.global().await, 0);
    assert_eq!(svc.global().await, 0);
    assert!(redis.get_bytes("plain:coingecko:global").is_some());
}

#[tokio::test]
async fn memory_tier_in_front_of_redis_never_outlives_it() {
    let redis = RedisServer::start();
    let svc = CoinGecko::new(redis_cache(&redis, "tier"));
    svc.price("bitcoin", "usd").await.unwrap();
    let _: () = redis.cmd(&["DEL", "tier:coingecko:price:bitcoin_usd"]);
    svc.price("bitcoin", "usd").await.unwrap();
    assert_eq!(calls(&svc), 1, "served by the memory tier");

    // A value written by another instance is read from Redis and then kept in memory only for
    // what is left of its Redis TTL.
    let writer = CoinGecko::new(redis_only(&redis, "tier"));
    writer.short_lived("y").await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    svc.short_lived("y").await.unwrap();
    assert_eq!(calls(&svc), 1, "hit through Redis");
    tokio::time::sleep(Duration::from_millis(650)).await;
    svc.short_lived("y").await.unwrap();
    assert_eq!(calls(&svc), 2, "memory copy expired with the Redis entry");
}

#[tokio::test]
async fn invalidate_and_refresh_by_the_same_arguments() {
    let redis = RedisServer::start();
    let client = redis.client();
    let svc = CoinGecko::new(redis_cache(&redis, "inv"));
    let first = svc.price("bitcoin", "usd").await.unwrap();
    let key = syntra_cache::key_of(svc.price("bitcoin", "usd")).unwrap();
    assert_eq!(key.key, "inv:coingecko:price:bitcoin_usd");
    assert_eq!(calls(&svc), 1, "key_of does not run the body");

    tokio::time::sleep(Duration::from_millis(10)).await; // the refreshed `at` is later than the first
    let before_refresh = now_ms();
    let refreshed = syntra_cache::refresh(svc.price("bitcoin", "usd")).await.unwrap();
    assert_ne!(refreshed, first);
    assert_eq!(svc.price("bitcoin", "usd").await.unwrap(), refreshed, "refresh stored the new value");
    assert_eq!(calls(&svc), 2);
    // The Redis copy is the new one too (not only the memory tier): other instances see it.
    let want = serde_json::to_value(&refreshed).unwrap();
    let doc = poll(Duration::from_secs(5), "the refreshed value in Redis", || {
        envelope(&client, "inv:coingecko:price:bitcoin_usd").filter(|d| d["data"] == want)
    });
    let at = doc["at"].as_u64().expect("envelope has `at`");
    assert!(at >= before_refresh && at <= now_ms(), "a fresh `at`: {at} vs refresh at {before_refresh}");
    let pttl = redis.pttl("inv:coingecko:price:bitcoin_usd");
    assert!((85_000..=90_000).contains(&pttl), "a full TTL again: {pttl}");
    let reader = CoinGecko::new(redis_only(&redis, "inv"));
    assert_eq!(reader.price("bitcoin", "usd").await.unwrap(), refreshed, "another instance reads the new value");
    assert_eq!(calls(&reader), 0);

    assert!(syntra_cache::invalidate(svc.price("bitcoin", "usd")).await.unwrap());
    assert_eq!(redis.get_bytes("inv:coingecko:price:bitcoin_usd"), None);
    svc.price("bitcoin", "usd").await.unwrap();
    assert_eq!(calls(&svc), 3, "invalidated in both tiers");

    // remove_prefix: every matching key goes from Redis itself, nothing else does.
    svc.price("ethereum", "usd").await.unwrap();
    svc.global().await;
    assert_eq!(scan_keys(&client, "inv:coingecko:price:*").len(), 2);
    assert_eq!(svc.cache.remove_prefix("coingecko:price:").await.unwrap(), 2);
    assert_eq!(scan_keys(&client, "inv:coingecko:price:*"), Vec::<String>::new(), "SCAN finds none left in Redis");
    assert!(redis.get_bytes("inv:coingecko:global").is_some(), "keys outside the prefix stay");
    let before = calls(&svc);
    svc.price("bitcoin", "usd").await.unwrap();
    assert_eq!(calls(&svc), before + 1, "gone from this instance's memory tier");
    // A second, independent instance (its own memory tier, never saw the values) reads Redis:
    // a miss.
    let other = CoinGecko::new(redis_cache(&redis, "inv"));
    other.price("ethereum", "usd").await.unwrap();
    assert_eq!(calls(&other), 1, "the entry is gone from Redis for every instance");
    assert!(matches!(syntra_cache::key_of(async { 1 }), Err(syntra_cache::CacheError::NotCached)));
}

#[tokio::test]
async fn foreign_or_corrupted_values_are_misses_that_get_overwritten() {
    let redis = RedisServer::start();
    let svc = CoinGecko::new(redis_only(&redis, "bad"));
    let key = "bad:coingecko:price:bitcoin_usd";
    for junk in [
        &b"not json"[..],
        b"{\"id\":\"bitcoin\"}",
        b"\x93\x01\x02",
        b"{\"syntra\":1,\"ty\":\"0000\",\"at\":0,\"ttl\":1,\"data\":5}",
    ] {
        redis.set_bytes(key, junk);
        let before = calls(&svc);
        let p = svc.price("bitcoin", "usd").await.unwrap();
        assert_eq!(p.id, "bitcoin");
        assert_eq!(calls(&svc), before + 1, "junk {junk:?} must be a miss");
        let raw = redis.get_bytes(key).unwrap();
        assert!(serde_json::from_slice::<serde_json::Value>(&raw).unwrap()["data"].is_object(), "overwritten");
    }
    // A value of another type under the same key (e.g. a schema change) is a miss, not a wrong type.
    struct Other {
        cache: Cache,
    }
    impl Other {
        #[cached(ttl = 90, key = "coingecko:price:<id>_<vs>", cache = self.cache)]
        async fn price(&self, id: &str, vs: &str) -> Result<Vec<u8>, ApiError> {
            Ok(format!("{id}{vs}").into_bytes())
        }
    }
    let other = Other { cache: redis_only(&redis, "bad") };
    assert_eq!(other.price("bitcoin", "usd").await.unwrap(), b"bitcoinusd".to_vec());
    assert!(svc.cache.stats().get("coingecko", "price").unwrap().cache_errors >= 4);
}

#[tokio::test]
async fn password_protected_redis() {
    let redis = RedisServer::start_with(&["--requirepass", "s3cret-pw"]);
    let url = format!("redis://:s3cret-pw@127.0.0.1:{}/0", redis.port());
    // (That the password never reaches Debug output, errors or logs: tests/logs.rs.)
    let cache = Cache::builder().namespace("auth").redis(url.clone()).local_tier(false).build().unwrap();
    let svc = CoinGecko::new(cache);
    svc.price("bitcoin", "usd").await.unwrap();
    svc.price("bitcoin", "usd").await.unwrap();
    assert_eq!(calls(&svc), 1, "authenticated hit");
    assert_eq!(svc.cache.stats().total().cache_errors, 0);
    let authed = redis::Client::open(url).unwrap();
    assert!(envelope(&authed, "auth:coingecko:price:bitcoin_usd").is_some(), "written through AUTH");

    // Wrong password: calls still answer (degraded), counted as cache errors.
    let bad = format!("redis://:wrong@127.0.0.1:{}/0", redis.port());
    let svc = CoinGecko::new(Cache::builder().namespace("auth2").redis(bad).local_tier(false).build().unwrap());
    assert!(svc.price("bitcoin", "usd").await.is_ok());
    assert!(svc.cache.stats().total().cache_errors >= 1);
}

#[tokio::test]
async fn acl_user_and_database_in_url() {
    let redis =
        RedisServer::start_with(&["--user", "bot", "on", ">botpw", "~syntra:*", "+@all", "--user", "default", "off"]);
    let url = |db: u8| format!("redis://bot:botpw@127.0.0.1:{}/{db}", redis.port());
    let svc = CoinGecko::new(Cache::builder().namespace("syntra").redis(url(3)).local_tier(false).build().unwrap());
    svc.price("bitcoin", "usd").await.unwrap();
    svc.price("bitcoin", "usd").await.unwrap();
    assert_eq!(calls(&svc), 1, "a hit through Redis as the ACL user");
    assert_eq!(svc.cache.stats().total().cache_errors, 0, "no command was refused");
    // The database of the URL is used: the key is in db 3, and db 0 is empty.
    let db3 = redis::Client::open(url(3)).unwrap();
    let db0 = redis::Client::open(url(0)).unwrap();
    let doc = envelope(&db3, "syntra:coingecko:price:bitcoin_usd").expect("the key is in db 3");
    assert_eq!(doc["data"]["id"], "bitcoin");
    assert_eq!(scan_keys(&db0, "*"), Vec::<String>::new(), "nothing in db 0");
}

#[tokio::test]
async fn tls_rediss_url() {
    let dir = std::env::temp_dir().join(format!("syntra-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let d = |f: &str| dir.join(f).to_string_lossy().into_owned();
    let sh = |args: &[&str]| {
        let out = std::process::Command::new("openssl").args(args).output().expect("openssl is installed");
        assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    sh(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "1",
        "-subj",
        "/CN=test-ca",
        "-keyout",
        &d("ca.key"),
        "-out",
        &d("ca.crt"),
    ]);
    sh(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=127.0.0.1",
        "-keyout",
        &d("srv.key"),
        "-out",
        &d("srv.csr"),
    ]);
    std::fs::write(dir.join("ext.cnf"), "subjectAltName=IP:127.0.0.1\n").unwrap();
    sh(&[
        "x509",
        "-req",
        "-in",
        &d("srv.csr"),
        "-CA",
        &d("ca.crt"),
        "-CAkey",
        &d("ca.key"),
        "-CAcreateserial",
        "-days",
        "1",
        "-extfile",
        &d("ext.cnf"),
        "-out",
        &d("srv.crt"),
    ]);
    let tls_port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port().to_string();
    let (crt, key, ca) = (d("srv.crt"), d("srv.key"), d("ca.crt"));
    let _redis = RedisServer::start_with(&[
        "--tls-port",
        &tls_port,
        "--tls-cert-file",
        &crt,
        "--tls-key-file",
        &key,
        "--tls-ca-cert-file",
        &ca,
        "--tls-auth-clients",
        "no",
        "--requirepass",
        "tls-pw",
    ]);
    // rustls-native-certs reads the trusted roots from SSL_CERT_FILE.
    std::env::set_var("SSL_CERT_FILE", &ca);
    let url = format!("rediss://:tls-pw@127.0.0.1:{tls_port}/0");
    let svc = CoinGecko::new(Cache::builder().namespace("tls").redis(url).local_tier(false).build().unwrap());
    svc.price("bitcoin", "usd").await.unwrap();
    svc.price("bitcoin", "usd").await.unwrap();
    assert_eq!(calls(&svc), 1, "hit over TLS");
    assert_eq!(svc.cache.stats().total().cache_errors, 0);
    let _ = std::fs::remove_dir_all(&dir);
}
