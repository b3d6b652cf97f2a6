//! `#[cached(budget = "..")]`: budgets enforced before upstream calls, through the macro, against
//! a real redis-server: denials as typed errors, stale answers when denied, 429 back-off and
//! TTL pacing.

mod common;

use common::{child_process, poll, run_child, RedisExt, RedisServer};
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
    // The shared hold may be written in the background: wait for it (bounded), not a fixed time.
    poll(Duration::from_secs(5), "the 429 hold in Redis", || {
        (redis.pttl("bk::budget:{coingecko}:hold") > 0).then_some(())
    });
    match b.price("eth").await {
        Err(ApiError::Budget(d)) => assert!(d.retry_after > Duration::from_secs(20), "Retry-After honoured: {d}"),
        other => panic!("expected the other instance to back off, got {other:?}"),
    }
    assert_eq!(a.calls() + b.calls(), 1, "no second call hammered the provider");
    assert!(redis.pttl("bk::budget:{coingecko}:hold") > 20_000);
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

// ---------------------------------------------------------------------------------------------
// Several processes sharing one redis-server and one budget, through `#[cached]`

/// One value of a child's report line (`RESULT calls=3 denied=7 ...`).
fn field(out: &str, name: &str) -> u64 {
    let line =
        out.lines().find_map(|l| l.find("RESULT ").map(|i| &l[i..])).unwrap_or_else(|| panic!("no report:\n{out}"));
    let v = line.split_whitespace().find_map(|f| f.strip_prefix(name).and_then(|f| f.strip_prefix('=')));
    v.unwrap_or_else(|| panic!("no {name} in {line}")).parse().unwrap()
}

/// Child entry of the cross-process tests: the role in `BUDGETED_CHILD`, the server in
/// `BUDGETED_REDIS_URL`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "child process of the cross-process budget tests"]
async fn budgeted_child() {
    let Ok(role) = std::env::var("BUDGETED_CHILD") else {
        return; // run by `--include-ignored`: nothing to do outside a parent test
    };
    let url = std::env::var("BUDGETED_REDIS_URL").unwrap();
    let budgets = match role.as_str() {
        // 200 per hour: a burst of 20, then one per 20 s (none more within the test).
        "spend" => {
            Budgets::new(vec![Budget::new("coingecko").rate(200, Duration::from_secs(3_600)).max_wait(Duration::ZERO)])
                .unwrap()
        }
        _ => budgets(),
    };
    let cache = Cache::builder()
        .namespace(if role == "spend" { "xp-spend" } else { "xp-429" })
        .redis(url.clone())
        .op_timeout(Duration::from_secs(2))
        .budgets(budgets)
        .build()
        .unwrap();
    let svc = Arc::new(Gecko::new(cache));
    let pid = std::process::id();
    match role.as_str() {
        "spend" => {
            // Connect before the start line (a slow first connect must not push decisions to
            // the in-process fallback).
            svc.cache.remove("warm-up").await.expect("Redis reachable");
            let start_at: u64 = std::env::var("BUDGETED_START_AT_MS").unwrap().parse().unwrap();
            let now = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap().as_millis() as u64;
            tokio::time::sleep(Duration::from_millis(start_at.saturating_sub(now))).await;
            let tasks: Vec<_> = (0..30)
                .map(|i| {
                    let svc = svc.clone();
                    tokio::spawn(async move { svc.price(&format!("p{pid}-{i}")).await })
                })
                .collect();
            let (mut ok, mut denied) = (0, 0);
            for t in tasks {
                match t.await.unwrap() {
                    Ok(_) => ok += 1,
                    Err(ApiError::Budget(_)) => denied += 1,
                    Err(e) => panic!("{e:?}"),
                }
            }
            let fallback: u64 = svc.cache.budget_stats().iter().map(|b| b.fallback).sum();
            println!("RESULT calls={} ok={ok} denied={denied} fallback={fallback}", svc.calls());
        }
        "429" => {
            svc.answer_429.store(true, SeqCst);
            assert!(matches!(svc.price("btc").await, Err(ApiError::RateLimited(_))));
            // The hold may be shared in the background: stay until it is in Redis.
            let client = redis::Client::open(url).unwrap();
            let deadline = std::time::Instant::now() + Duration::from_secs(5);
            loop {
                let pttl: i64 = redis::cmd("PTTL")
                    .arg("xp-429::budget:{coingecko}:hold")
                    .query(&mut client.get_connection().unwrap())
                    .unwrap();
                if pttl > 0 {
                    break;
                }
                assert!(std::time::Instant::now() < deadline, "the 429 hold never reached Redis");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            println!("RESULT calls={}", svc.calls());
        }
        "after429" => {
            let mut min_retry = Duration::MAX;
            for id in ["eth", "sol", "ada"] {
                match svc.price(id).await {
                    Err(ApiError::Budget(d)) => min_retry = min_retry.min(d.retry_after),
                    other => panic!("{id}: expected the shared back-off, got {other:?}"),
                }
            }
            println!("RESULT calls={} retry_after_s={}", svc.calls(), min_retry.as_secs());
        }
        other => panic!("unknown role {other}"),
    }
}

fn child(role: &str, redis: &RedisServer) -> std::process::Command {
    let mut cmd = child_process("budgeted_child");
    cmd.env("BUDGETED_CHILD", role).env("BUDGETED_REDIS_URL", redis.url());
    cmd
}

#[test]
fn two_processes_never_spend_more_than_one_shared_budget() {
    let redis = RedisServer::start();
    let start_at = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap().as_millis() as u64 + 1_500;
    let spawned: Vec<_> = (0..2)
        .map(|_| {
            let mut cmd = child("spend", &redis);
            cmd.env("BUDGETED_START_AT_MS", start_at.to_string());
            std::thread::spawn(move || run_child(cmd))
        })
        .collect();
    let outs: Vec<String> = spawned.into_iter().map(|h| h.join().unwrap()).collect();
    let calls: u64 = outs.iter().map(|o| field(o, "calls")).sum();
    for o in &outs {
        assert_eq!(field(o, "fallback"), 0, "every decision shared through Redis: {o}");
        assert_eq!(field(o, "ok") + field(o, "denied"), 30);
        assert_eq!(field(o, "ok"), field(o, "calls"), "every answer came from an upstream call");
    }
    // 2 processes x 30 concurrent misses against a burst of 20: never more than 20 upstream
    // calls in total (and the budget is used, not refused wholesale).
    assert_eq!(calls, 20, "upstream calls across both processes: {outs:?}");
}

#[test]
fn a_429_in_one_process_backs_off_another() {
    let redis = RedisServer::start();
    let first = run_child(child("429", &redis));
    assert_eq!(field(&first, "calls"), 1, "{first}");
    let hold = redis.pttl("xp-429::budget:{coingecko}:hold");
    assert!(hold > 20_000, "Retry-After 30 s shared in Redis: {hold}");
    // A new process, after the first one is gone: it learns the back-off from Redis alone.
    let second = run_child(child("after429", &redis));
    assert_eq!(field(&second, "calls"), 0, "no upstream call during the back-off: {second}");
    assert!(field(&second, "retry_after_s") >= 20, "{second}");
}
