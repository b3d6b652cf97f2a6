//! The Prometheus exporter against a real redis-server: a scrape reports what `Cache::stats`
//! counts (gets by result, upstream outcomes, hit and miss latency histograms), errors by tier
//! and kind once Redis goes away, the breaker, memory-tier entries and evictions, and Redis'
//! own figures from the `INFO` poller (keys under the namespace without the runtime's own).

mod common;

use common::{RedisExt, RedisServer};
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::time::Duration;
use syntra_cache::export::Exporter;
use syntra_cache::{cached, Cache};

#[derive(Debug, Clone, PartialEq)]
struct ApiError(String);

struct Svc {
    cache: Cache,
    calls: AtomicUsize,
}

impl Svc {
    #[cached(ttl = 60, key = "coingecko:price:<id>", cache = self.cache)]
    async fn price(&self, id: &str) -> Result<u64, ApiError> {
        self.calls.fetch_add(1, SeqCst);
        if id == "bad" {
            return Err(ApiError("upstream down".into()));
        }
        Ok(id.len() as u64)
    }

    #[cached(ttl = 60, none_ttl = 60, key = "dexscreener:token:<id>", cache = self.cache)]
    async fn token(&self, id: &str) -> Option<u64> {
        (id != "unknown").then_some(1)
    }
}

/// The value of the sample `name{labels}` (labels as written in the scrape).
fn sample(scrape: &str, series: &str) -> f64 {
    scrape
        .lines()
        .find_map(|l| l.strip_prefix(series).and_then(|r| r.strip_prefix(' ')))
        .unwrap_or_else(|| panic!("{series} not in the scrape:\n{scrape}"))
        .parse()
        .unwrap()
}

#[tokio::test]
async fn a_scrape_reports_the_counters_errors_by_kind_and_redis_figures() {
    let mut redis = RedisServer::start();
    let _: () = redis.cmd(&["CONFIG", "SET", "maxmemory", "32mb"]);
    let cache = Cache::builder()
        .namespace("exp")
        .redis(redis.url())
        .op_timeout(Duration::from_millis(150))
        .connect_timeout(Duration::from_millis(150))
        .breaker(3, Duration::from_secs(30))
        .build()
        .unwrap();
    let svc = Svc { cache: cache.clone(), calls: AtomicUsize::new(0) };
    // No background poller: the test polls when it wants a fresh reading.
    let exporter = Exporter::builder(&cache).redis_poll_interval(Duration::ZERO).build();
    let before = exporter.render();
    assert!(!before.contains("syntra_redis_up"), "nothing polled yet, no Redis figures invented");

    for id in ["btc", "eth", "btc", "btc", "bad", "bad"] {
        let _ = svc.price(id).await;
    }
    for id in ["unknown", "unknown", "sol"] {
        svc.token(id).await;
    }
    // A runtime key under `exp::` (a budget counter, say) is not a cache entry.
    let _: () = redis.cmd(&["SET", "exp::budget:x", "1"]);
    exporter.poll_redis().await;
    let s = exporter.render();
    let price = r#"service="coingecko",method="price""#;
    assert_eq!(sample(&s, &format!(r#"syntra_cache_gets_total{{{price},result="hit"}}"#)), 2.0);
    assert_eq!(sample(&s, &format!(r#"syntra_cache_gets_total{{{price},result="miss"}}"#)), 4.0);
    assert_eq!(sample(&s, &format!(r#"syntra_cache_upstream_calls_total{{{price},outcome="ok"}}"#)), 2.0);
    assert_eq!(sample(&s, &format!(r#"syntra_cache_upstream_calls_total{{{price},outcome="error"}}"#)), 2.0);
    assert_eq!(sample(&s, &format!(r#"syntra_cache_calls_saved_total{{{price}}}"#)), 2.0);
    let token = r#"service="dexscreener",method="token""#;
    assert_eq!(sample(&s, &format!(r#"syntra_cache_gets_total{{{token},result="negative"}}"#)), 1.0);
    assert_eq!(sample(&s, &format!(r#"syntra_cache_gets_total{{{token},result="hit"}}"#)), 0.0);
    // The histograms: hits on the hit path, misses on the miss path, every call in +Inf.
    let stats = cache.stats();
    let m = stats.get("coingecko", "price").unwrap();
    for (path, n) in [("hit", m.hits), ("miss", m.misses)] {
        let count = sample(&s, &format!(r#"syntra_cache_call_duration_seconds_count{{{price},path="{path}"}}"#));
        let inf =
            sample(&s, &format!(r#"syntra_cache_call_duration_seconds_bucket{{{price},path="{path}",le="+Inf"}}"#));
        assert_eq!((count, inf), (n as f64, n as f64), "{path}");
    }
    assert!(m.hit_latency.p50 < m.miss_latency.p50, "a hit is faster than a miss: {m:?}");
    // Redis' figures.
    assert_eq!(sample(&s, "syntra_redis_up"), 1.0);
    assert_eq!(sample(&s, "syntra_redis_maxmemory_bytes"), 32.0 * 1024.0 * 1024.0);
    assert!(sample(&s, "syntra_redis_used_memory_bytes") > 100_000.0);
    assert!(sample(&s, "syntra_redis_connected_clients") >= 1.0);
    let entries = common::scan_keys(&redis.client(), "exp:*").into_iter().filter(|k| !k.starts_with("exp::")).count();
    assert_eq!(sample(&s, "syntra_redis_namespace_keys"), entries as f64);
    assert_eq!(entries, 4, "btc, eth, the negative `unknown` and sol");
    assert_eq!(sample(&s, r#"syntra_cache_breaker_open{tier="redis"}"#), 0.0);
    assert!(sample(&s, "syntra_cache_memory_entries") >= 4.0);
    assert_eq!(exporter.health().status, "ok");

    // Redis goes away: connection errors, then the breaker opens and skips are counted apart.
    redis.kill();
    for i in 0..8 {
        svc.price(&format!("new{i}")).await.unwrap();
    }
    exporter.poll_redis().await;
    let s = exporter.render();
    let conn = sample(&s, r#"syntra_cache_errors_total{tier="redis",kind="connection"}"#)
        + sample(&s, r#"syntra_cache_errors_total{tier="redis",kind="timeout"}"#);
    assert!(conn >= 3.0, "the failures that opened the breaker: {conn}");
    assert!(sample(&s, r#"syntra_cache_errors_total{tier="redis",kind="breaker_open"}"#) >= 1.0);
    assert_eq!(sample(&s, r#"syntra_cache_errors_total{tier="redis",kind="tampered"}"#), 0.0);
    assert_eq!(sample(&s, r#"syntra_cache_breaker_open{tier="redis"}"#), 1.0);
    assert_eq!(sample(&s, r#"syntra_cache_breaker_opened_total{tier="redis"}"#), 1.0);
    assert_eq!(sample(&s, "syntra_redis_up"), 0.0);
    let h = exporter.health();
    assert_eq!((h.status, h.redis_up, h.breaker_open), ("degraded", Some(false), true));
    let view = serde_json::to_value(exporter.stats_view()).unwrap();
    assert_eq!(view["redis"]["up"], false);
    assert_eq!(view["total"]["calls"].as_u64(), Some(cache.stats().total().hits + cache.stats().total().misses));
}

#[tokio::test]
async fn memory_tier_entries_and_evictions_are_exported() {
    let cache = Cache::builder().memory_capacity(20).build().unwrap();
    let svc = Svc { cache: cache.clone(), calls: AtomicUsize::new(0) };
    let exporter = Exporter::new(&cache);
    for i in 0..200 {
        svc.price(&format!("coin{i}")).await.unwrap();
    }
    let s = exporter.render();
    let entries = sample(&s, "syntra_cache_memory_entries");
    assert!(entries <= 20.0 && entries > 0.0, "{entries}");
    let evicted = sample(&s, r#"syntra_cache_evictions_total{tier="memory",cause="size"}"#);
    assert!(evicted >= 150.0, "evicted to stay within 20 entries: {evicted}");
    assert!(!s.contains("syntra_redis_"), "no Redis figures without Redis");
    assert_eq!(exporter.health().status, "ok");
}
