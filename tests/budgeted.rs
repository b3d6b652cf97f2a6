//! `#[cached(budget = "..")]`: budgets enforced before upstream calls, through the macro, against
//! a real redis-server: denials as typed errors, stale answers when denied, 429 back-off and
//! TTL pacing.

mod common;

use common::{RedisExt, RedisServer};
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use syntra_cache::budget::{Budget, Budgets, Denied, ManualClock, RateLimitError};
use syntra_cache::{cached, Cache};

#[derive(Debug, Clone, PartialEq)]
enum ApiError {
    RateLimited(Option<Duration>),
    Budget(Denied),
}

impl From<Denied> for ApiError {
    fn from(d: Denied) -> Self {
        ApiError::Budget(d)
    }
}

impl RateLimitError for ApiError {
    fn rate_limited(&self) -> Option<Option<Duration>> {
        match self {
            ApiError::RateLimited(r) => Some(*r),
            _ => None,
        }
    }
}

struct Gecko {
    cache: Cache,
    calls: AtomicUsize,
    answer_429: std::sync::atomic::AtomicBool,
}

impl Gecko {
    fn new(cache: Cache) -> Self {
        Gecko { cache, calls: AtomicUsize::new(0), answer_429: Default::default() }
    }

    fn calls(&self) -> usize {
        self.calls.load(SeqCst)
    }

    #[cached(ttl = "1s", key = "coingecko:price:<id>", budget = "coingecko", cache = self.cache)]
    async fn price(&self, id: &str) -> Result<u64, ApiError> {
        let n = self.calls.fetch_add(1, SeqCst) as u64;
        if self.answer_429.load(SeqCst) {
            return Err(ApiError::RateLimited(Some(Duration::from_secs(30))));
        }
        Ok(id.len() as u64 * 100 + n)
    }

    #[cached(ttl = 60, key = "binance:klines:<symbol>_<limit>", budget = "binance", weight = if limit >= 500 { 5 } else { 1 }, cache = self.cache)]
    async fn klines(&self, symbol: &str, limit: u32) -> Result<u32, ApiError> {
        self.calls.fetch_add(1, SeqCst);
        Ok(limit + symbol.len() as u32)
    }

    #[cached(ttl = 60, key = "coingecko:typo:<id>", budget = "coingeko", cache = self.cache)]
    async fn misnamed(&self, id: &str) -> Result<u64, ApiError> {
        self.calls.fetch_add(1, SeqCst);
        Ok(id.len() as u64)
    }

    #[cached(ttl = 600, key = "cmc:quote:<symbol>", budget = "coinmarketcap", cache = self.cache)]
    async fn quote(&self, symbol: &str) -> Result<u32, ApiError> {
        self.calls.fetch_add(1, SeqCst);
        Ok(symbol.len() as u32)
    }
}

fn budgets() -> Budgets {
    Budgets::new(vec![
        // 30/min: a burst of 3, then one per 2.2 s (never more than 30 in any minute).
        Budget::new("coingecko").rate(30, Duration::from_secs(60)).max_wait(Duration::from_millis(200)),
        // 100 weight/min: a burst of 10 weight.
        Budget::new("binance").rate(100, Duration::from_secs(60)).max_wait(Duration::ZERO),
        Budget::new("coinmarketcap").quota_day(100).max_ttl_stretch(4.0),
    ])
    .unwrap()
}

fn cache(redis: &RedisServer, ns: &str) -> Cache {
    Cache::builder().namespace(ns).redis(redis.url()).budgets(budgets()).build().unwrap()
}

#[tokio::test]
async fn denied_calls_return_a_typed_error_with_retry_after() {
    let redis = RedisServer::start();
    let svc = Gecko::new(cache(&redis, "den"));
    for id in ["a", "bb", "ccc"] {
        assert!(svc.price(id).await.is_ok());
    }
    let started = std::time::Instant::now();
    match svc.price("dddd").await {
        Err(ApiError::Budget(d)) => {
            assert_eq!(d.budget, "coingecko");
            assert!(d.retry_after > Duration::from_secs(1), "{d}");
        }
        other => panic!("expected a budget denial, got {other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(1), "bounded wait, no hang");
    assert_eq!(svc.calls(), 3, "the denied call never reached upstream");
    assert_eq!(svc.price("a").await.unwrap(), 100, "cached answers need no budget");
    let b = svc.cache.budget_stats().into_iter().find(|b| b.name == "coingecko").unwrap();
    assert_eq!((b.granted, b.denied), (3, 1));
}

#[tokio::test]
async fn the_budget_is_shared_by_instances_through_redis() {
    let redis = RedisServer::start();
    let a = Gecko::new(cache(&redis, "shr"));
    let b = Gecko::new(cache(&redis, "shr"));
    assert!(a.price("x1").await.is_ok());
    assert!(b.price("x2").await.is_ok());
    assert!(a.price("x3").await.is_ok());
    assert!(matches!(b.price("x4").await, Err(ApiError::Budget(_))), "instance b sees a's spending");
}

#[tokio::test]
async fn weights_draw_more_from_the_budget() {
    let redis = RedisServer::start();
    let svc = Gecko::new(cache(&redis, "wt"));
    assert!(svc.klines("BTCUSDT", 500).await.is_ok()); // weight 5
    assert!(svc.klines("ETHUSDT", 500).await.is_ok()); // weight 5: the burst of 10 is used
    assert!(matches!(svc.klines("SOLUSDT", 100).await, Err(ApiError::Budget(_))));
    assert_eq!(svc.calls(), 2);
}

#[tokio::test]
async fn a_denied_call_serves_the_last_value_as_stale() {
    let redis = RedisServer::start();
    let svc = Gecko::new(cache(&redis, "stl"));
    let first = svc.price("btc").await.unwrap();
    assert!(svc.price("eth").await.is_ok());
    assert!(svc.price("sol").await.is_ok());
    tokio::time::sleep(Duration::from_millis(1100)).await; // btc expired, budget exhausted
    assert_eq!(svc.price("btc").await.unwrap(), first, "last value served instead of an error");
    assert_eq!(svc.calls(), 3);
    let stats = svc.cache.stats();
    assert_eq!(stats.get("coingecko", "price").unwrap().stale, 1);
    let b = svc.cache.budget_stats().into_iter().find(|b| b.name == "coingecko").unwrap();
    assert_eq!(b.stale_served, 1);
}

#[tokio::test]
async fn a_429_backs_off_at_once_across_instances() {
    let redis = RedisServer::start();
    let a = Gecko::new(cache(&redis, "bk"));
    let b = Gecko::new(cache(&redis, "bk"));
    a.answer_429.store(true, SeqCst);
    assert!(matches!(a.price("btc").await, Err(ApiError::RateLimited(_))));
    tokio::time::sleep(Duration::from_millis(100)).await; // the shared hold is written in the background
    match b.price("eth").await {
        Err(ApiError::Budget(d)) => assert!(d.retry_after > Duration::from_secs(20), "Retry-After honoured: {d}"),
        other => panic!("expected the other instance to back off, got {other:?}"),
    }
    assert_eq!(a.calls() + b.calls(), 1, "no second call hammered the provider");
    assert!(redis.pttl("bk::budget:coingecko:hold") > 20_000);
}

#[tokio::test]
async fn pacing_stretches_ttls_when_the_quota_burns_too_fast() {
    let redis = RedisServer::start();
    // 06:00 UTC: a quarter of the day gone.
    let clock = Arc::new(ManualClock::new(SystemTime::UNIX_EPOCH + Duration::from_secs(20_000 * 86_400 + 6 * 3600)));
    let cache = Cache::builder()
        .namespace("pace")
        .redis(redis.url())
        .budgets(budgets())
        .budget_clock(clock.clone())
        .build()
        .unwrap();
    let svc = Gecko::new(cache);
    svc.quote("S0").await.unwrap();
    let calm = redis.pttl("pace:cmc:quote:S0");
    // 50 of the day's 100 calls in its first quarter: on course for 200.
    for i in 1..50 {
        svc.quote(&format!("S{i}")).await.unwrap();
    }
    svc.quote("LAST").await.unwrap();
    let stretched = redis.pttl("pace:cmc:quote:LAST");
    let stretch = svc.cache.budget_stats().into_iter().find(|b| b.name == "coinmarketcap").unwrap();
    assert!(stretch.stretch > 1.5, "{stretch:?}");
    assert!(calm <= 600_000 * 2 + 1000, "first entry written at the plain TTL (+ kept stale window): {calm}");
    assert!(stretched > calm + 300_000, "TTL stretched by pacing: {calm} -> {stretched}");
    assert_eq!(stretch.projected_day.map(|p| p > 100), Some(true), "{stretch:?}");
}

#[tokio::test]
async fn a_misnamed_budget_is_a_clear_error_not_a_silent_pass() {
    let redis = RedisServer::start();
    let svc = Gecko::new(cache(&redis, "typo"));
    match svc.misnamed("btc").await {
        Err(ApiError::Budget(d)) => {
            assert!(d.is_permanent());
            assert!(matches!(d.limit, syntra_cache::budget::Limit::Unknown), "{d}");
            assert!(d.to_string().contains("coingeko"), "{d}");
        }
        other => panic!("expected an unknown-budget error, got {other:?}"),
    }
    assert_eq!(svc.calls(), 0);
}
