//! A short run of the demo workload (`examples/syntra.rs`), cached and uncached, with budgets
//! and without, with the report's figures checked against the simulator's own counts.

mod common;

#[path = "../examples/providers/mod.rs"]
mod providers;
#[path = "../examples/syntra/workload.rs"]
mod workload;

use common::{envelope, scan_keys, RedisExt, RedisServer};
use std::collections::HashMap;
use std::time::Duration;

use providers::config::{Limits, Ttls};
use workload::{CacheMode, Config, Report};

/// 300 questions over 3 simulated minutes at 30x: 6 s of real time per run (slow enough for a
/// debug build of the simulator to keep up).
fn short(cache: CacheMode) -> Config {
    Config {
        requests: 300,
        users: 50,
        seed: 7,
        concurrency: 16,
        minutes: 3.0,
        speed: 30.0,
        cache,
        live: false,
        progress: false,
        sim_latency: Duration::from_millis(1),
        budgets: true,
        batch: true,
        warm_up: true,
        on_cache: None,
    }
}

/// What holds for any run against the simulator.
fn check_against_simulator(r: &Report) {
    assert_eq!(r.requested, r.config.requests);
    assert_eq!(r.answered, r.requested as u64, "every question gets an answer (or an error)");
    assert!(r.failed_answers <= r.answered);
    let sim = r.sim_calls.as_ref().expect("a simulator run");
    for row in &r.providers {
        assert_eq!(
            Some(row.upstream),
            row.sim_calls,
            "{}: upstream calls in the report vs the simulator",
            row.provider
        );
        assert_eq!(row.sim_calls, Some(sim.provider(row.provider)));
        let sim_rejected: u64 = sim.iter().filter(|(p, _, _)| *p == row.provider).map(|(_, _, c)| c.rejected).sum();
        assert_eq!(row.rejected, sim_rejected, "{}: 429s", row.provider);
        assert!(row.asked > 0, "{} is exercised", row.provider);
        assert!(row.upstream > 0, "{} is called upstream", row.provider);
    }
    assert_eq!(r.upstream_calls(), sim.total());
    assert_eq!(r.rejected(), sim.rejected());
    assert!(!r.checks.is_empty());
    assert!(r.agrees(), "cross-check failed:\n{r}");
    // The per-method table adds up to the per-provider rows.
    let mut per_service: HashMap<&str, u64> = HashMap::new();
    for m in &r.stats.methods {
        *per_service.entry(m.service.as_str()).or_default() += m.upstream_calls;
    }
    for row in &r.providers {
        assert_eq!(per_service.get(row.provider).copied(), Some(row.upstream));
    }
    // Every provider of the limits table has a row.
    assert_eq!(r.providers.len(), Limits::ALL.len());
    let text = r.to_string();
    assert!(text.contains("the report agrees with the simulator"), "{text}");
    assert!(text.contains("simulated time: "), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_report_matches_the_simulator_and_the_cache_saves_calls() {
    let cached = workload::run(short(CacheMode::Memory)).await.expect("cached run");
    check_against_simulator(&cached);
    let hit_rate = cached.hit_rate().expect("cache enabled");
    eprintln!("short in-memory run: hit rate {:.1}%", hit_rate * 100.0);
    // Measured 58.2% (this plan is seeded; only timing moves it a little).
    assert!(hit_rate > 0.55, "hit rate {hit_rate}\n{cached}");
    // Every call the answers made went through the cache: hits + misses = asked (a call
    // answered stale is counted as a miss and as stale).
    let t = cached.stats.total();
    // A fallback source (CoinGecko's price and chart from Binance) makes at most one cached call
    // of its own per use, beyond what the answers asked.
    let fallbacks = t.fallbacks + t.fallback_errors;
    assert!(t.hits + t.misses >= cached.asked(), "{cached}");
    assert!(t.hits + t.misses <= cached.asked() + fallbacks, "{cached}");
    assert!(t.stale <= t.misses);
    assert_eq!(cached.calls_saved(), cached.asked() - cached.upstream_calls());
    // The warm-up's three CoinGecko calls went upstream before the first question, and are in
    // the counts (the cross-check above agrees with the simulator with them).
    assert_eq!(cached.warm_up, (3, 0), "{cached}");
    let cg = cached.stats.methods.iter().filter(|m| m.service == "coingecko");
    for method in ["coin_list", "global", "trending"] {
        let m = cg.clone().find(|m| m.method == method).unwrap_or_else(|| panic!("{method}\n{cached}"));
        assert!(m.upstream_calls >= 1 && m.hits >= 1, "{method} warmed, then hit: {m:?}");
    }
    assert!(cached.to_string().contains("3 calls before the first question"));

    let uncached = workload::run(short(CacheMode::Disabled)).await.expect("uncached run");
    check_against_simulator(&uncached);
    assert_eq!(uncached.hit_rate(), None);
    assert_eq!(uncached.calls_saved(), 0);
    assert_eq!(uncached.asked(), uncached.upstream_calls());

    // Same workload: the same questions of each kind.
    assert_eq!(cached.by_kind.len(), uncached.by_kind.len());
    for (a, b) in cached.by_kind.iter().zip(&uncached.by_kind) {
        assert_eq!((a.0, a.1), (b.0, b.1));
    }
    // The cache saves most upstream calls and prevents (nearly) all 429s.
    assert!(
        uncached.upstream_calls() > 2 * cached.upstream_calls(),
        "uncached {} vs cached {}",
        uncached.upstream_calls(),
        cached.upstream_calls()
    );
    let (c429, u429) = (cached.rejected(), uncached.rejected());
    assert!(u429 > 0, "the uncached run exceeds CoinGecko's 30/min\n{uncached}");
    assert!(c429 == 0 || c429 * 3 <= u429, "429s: cached {c429} vs uncached {u429}\n{cached}\n{uncached}");
    assert!(cached.failed_answers < uncached.failed_answers);
    assert!(uncached.provider("coingecko").unwrap().minutes_over > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn budgets_keep_every_provider_inside_its_limits_and_the_seed_ttls_do_not() {
    let budgeted = workload::run(short(CacheMode::Memory)).await.expect("budgeted run");
    check_against_simulator(&budgeted);
    assert!(budgeted.declared.is_some(), "budgets are on by default");
    for row in &budgeted.providers {
        assert_eq!(row.minutes_over, 0, "{}: minutes above its per-minute limit\n{budgeted}", row.provider);
        if let Some(limit) = row.limit.per_minute {
            assert!(row.peak_minute <= u64::from(limit), "{}\n{budgeted}", row.provider);
        }
        assert!(budgeted.inside_limits(row.provider), "{}\n{budgeted}", row.provider);
    }
    let (weight, over) = budgeted.provider("binance").unwrap().peak_weight.expect("binance weight tracked");
    assert!(weight > 0 && over == 0, "{budgeted}");
    assert_eq!(budgeted.rejected(), 0, "no 429s\n{budgeted}");
    assert_eq!(budgeted.on_pace_for_month("coingecko"), Some(true), "{budgeted}");
    assert_eq!(budgeted.on_pace_for_month("coinmarketcap"), Some(true), "{budgeted}");
    // The BUDGETS figures agree with the rest of the report and with the simulator: one permit
    // per upstream call, Binance's weight as the simulator weighs the requests it received.
    for b in &budgeted.budgets {
        if let Some(row) = budgeted.provider(&b.name) {
            assert_eq!(b.granted, row.upstream, "{}", b.name);
        }
    }
    for what in ["coingecko budget permits", "coinmarketcap budget permits", "binance budget weight drawn"] {
        let check = budgeted.checks.iter().find(|c| c.what == what).unwrap_or_else(|| panic!("{what} checked"));
        assert!(check.agrees() && check.reported > 0, "{check:?}");
    }
    // Users are answered: refused calls are served stale when something is cached, and the
    // rest are errors the report shows.
    assert_eq!(budgeted.answered, 300);
    let cg = budgeted.budget("coingecko").unwrap();
    // Every denial is answered (stale or a typed error); with batching, one denied load answers
    // every price call it carried, so the answers can outnumber the denials.
    // (A denied batch load surfaces as the load's error: its calls are served stale by the
    // engine's stale-if-error, counted in the method's `stale`.)
    let engine_stale = budgeted.stats.by_service().iter().find(|s| s.service == "coingecko").map_or(0, |s| s.stale);
    // A denied call may also be answered by its fallback source.
    let fallbacks = budgeted.stats.by_service().iter().find(|s| s.service == "coingecko").map_or(0, |s| s.fallbacks);
    let answered = cg.stale_served + engine_stale + fallbacks + budgeted.provider("coingecko").unwrap().budget_denied;
    assert!(cg.denied <= answered, "{budgeted}");
    let text = budgeted.to_string();
    for needle in ["BUDGETS (", "inside limits", "budgets:        ON", "window:         simulated 2025-01-15 01:00"] {
        assert!(text.contains(needle), "{needle}\n{text}");
    }

    // The same workload the seed's way: plain TTLs, no budgets.
    let seed = workload::run(Config { budgets: false, ..short(CacheMode::Memory) }).await.expect("no-budget run");
    check_against_simulator(&seed);
    for (a, b) in budgeted.by_kind.iter().zip(&seed.by_kind) {
        assert_eq!((a.0, a.1), (b.0, b.1), "the same questions");
    }
    assert!(seed.budgets.is_empty() && seed.declared.is_none());
    let cg = seed.provider("coingecko").unwrap();
    assert!(cg.minutes_over > 0 && cg.rejected > 0, "CoinGecko's 30/min broken\n{seed}");
    assert!(!seed.inside_limits("coingecko"));
    assert!(cg.upstream > budgeted.provider("coingecko").unwrap().upstream, "{seed}\n{budgeted}");
    assert!(seed.to_string().contains("BUDGETS: none"), "{seed}");
}

/// The demo as `cargo run --example syntra` runs it (6,000 questions, 20 simulated minutes at
/// 60x: 20 s of real time), checked against what its closing note claims: a hit rate of ~84%.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_full_demo_run_reaches_its_documented_hit_rate() {
    let config = Config { progress: false, ..Config::default() };
    assert_eq!((config.requests, config.minutes, config.speed), (6_000, 20.0, 60.0), "the demo's defaults");
    let report = workload::run(config).await.expect("full run");
    check_against_simulator(&report);
    let hit_rate = report.hit_rate().expect("cache enabled");
    eprintln!("full in-memory run: hit rate {:.1}%", hit_rate * 100.0);
    // Measured 83.8% in a debug build (the claim: ~84%).
    assert!(hit_rate >= 0.80, "hit rate {:.1}%, the demo claims ~84%\n{report}", hit_rate * 100.0);
    assert_eq!(report.rejected(), 0, "no 429s with budgets on\n{report}");
    for row in &report.providers {
        assert!(report.inside_limits(row.provider), "{}\n{report}", row.provider);
    }
}

/// `--redis URL` (CacheMode::Redis): the same workload with Redis behind the memory tier.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_redis_mode_fills_redis_and_its_report_agrees_with_the_simulator() {
    let redis = RedisServer::start();
    let report = workload::run(short(CacheMode::Redis(redis.url()))).await.expect("redis run");
    check_against_simulator(&report);
    let hit_rate = report.hit_rate().expect("cache enabled");
    eprintln!("short Redis run: hit rate {:.1}%", hit_rate * 100.0);
    assert!(hit_rate > 0.55, "hit rate {hit_rate} (the in-memory run of the same plan: ~58%)\n{report}");
    assert_eq!(report.stats.total().cache_errors, 0, "Redis never failed\n{report}");
    let text = report.to_string();
    assert!(text.contains(&format!("Redis at {}", redis.url())), "{text}");
    // The values landed in Redis, under the demo's own namespace, as readable envelopes.
    let client = redis.client();
    let keys = scan_keys(&client, "syntra-demo:*");
    for provider in ["coingecko", "binance", "dexscreener", "coinmarketcap", "cryptopanic", "feargreed"] {
        let mine: Vec<&String> = keys.iter().filter(|k| k.starts_with(&format!("syntra-demo:{provider}:"))).collect();
        assert!(!mine.is_empty(), "no {provider} key in Redis: {keys:?}");
    }
    let values: Vec<&String> = keys.iter().filter(|k| !k.contains("::")).collect();
    assert!(values.len() >= 20, "{} values in Redis", values.len());
    let doc = envelope(&client, values[0]).unwrap();
    assert!(doc["ttl"].as_u64().is_some_and(|t| t > 0) && !doc["data"].is_null(), "{doc}");
    assert!(scan_keys(&client, "syntra-demo::budget:*").is_empty(), "the run's budget counters are cleared");
    assert!(scan_keys(&client, "syntra:*").is_empty(), "a simulated run never writes a real bot's keys");
}

#[test]
fn the_plan_is_deterministic_and_popular_coins_dominate() {
    let config = short(CacheMode::Memory);
    let a = workload::plan(&config);
    let b = workload::plan(&config);
    assert_eq!(a.len(), 300);
    let describe = |p: &[workload::Planned]| -> Vec<String> {
        p.iter().map(|q| format!("{:?} {} {}", q.at, q.user, q.question)).collect()
    };
    assert_eq!(describe(&a), describe(&b));
    let other = workload::plan(&Config { seed: 8, ..config.clone() });
    assert_ne!(describe(&a), describe(&other));
    // Arrivals are ordered and spread over the configured span.
    assert!(a.windows(2).all(|w| w[0].at <= w[1].at));
    assert!(a.last().unwrap().at <= Duration::from_secs(180));
    assert!(a.last().unwrap().at > Duration::from_secs(150));
    // Every kind of question is asked; bitcoin far more than pepe.
    let big = workload::plan(&Config { requests: 5_000, ..config });
    for (kind, _) in workload::MIX {
        assert!(big.iter().any(|p| p.question.kind() == *kind), "{kind}");
    }
    let about = |sym: &str| big.iter().filter(|p| p.question.to_string().ends_with(&format!(" {sym}"))).count();
    assert!(about("BTC") > 4 * about("PEPE"), "{} vs {}", about("BTC"), about("PEPE"));
}

#[test]
fn the_window_starts_mid_month_in_the_simulated_past_or_the_real_future() {
    // 2025-01-15 01:00 UTC.
    assert_eq!(workload::window_start(&short(CacheMode::Memory)), 1_736_902_800);
    assert_eq!(workload::utc(1_736_902_800), "2025-01-15 01:00");
    for days in [0, 59, 60, 365, 20_103, 20_818, 36_524, 36_525] {
        let (y, m, d) = workload::civil_from_days(days);
        assert_eq!(workload::days_from_civil(y, m, d), days, "{y}-{m}-{d}");
    }
    assert_eq!(workload::civil_from_days(20_103), (2025, 1, 15));
    assert_eq!(workload::civil_from_days(59), (1970, 3, 1));
    // With Redis, the shared quota counters expire at the end of their simulated period on
    // Redis' real clock: the window lies in the real future.
    let redis = workload::window_start(&short(CacheMode::Redis("redis://127.0.0.1:1/0".into())));
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    assert!(redis > now && redis < now + 47 * 86_400, "{}", workload::utc(redis));
    assert!(workload::utc(redis)[8..].starts_with("15 01:00"));
}

#[test]
fn ttls_scale_with_the_clock() {
    let base = Ttls::default();
    let fast = workload::scaled_ttls(&base, 60.0);
    assert_eq!(fast.coingecko.price, Duration::from_millis(1_500));
    assert_eq!(fast.feargreed.current, Duration::from_secs(60));
    assert_eq!(fast.binance.current_price, Duration::from_millis(500));
    assert_eq!(workload::scaled_ttls(&base, 1.0), base);
    assert_eq!(workload::redact_url("redis://bot:hunter2@127.0.0.1:6379/0"), "redis://bot:***@127.0.0.1:6379/0");
}
