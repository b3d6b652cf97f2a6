//! Batched loading across processes: two processes call CoinGecko's batch function `prices` for
//! the same coins (the simulator's whole catalogue) at the same instant, on one redis-server, against the provider simulator
//! (which counts every `/simple/price` call and the ids it was asked for). Each coin is fetched
//! once in all (the per-item cross-instance lock), both processes answer the same prices, and a
//! third process later answers all 40 from Redis with no upstream call.

mod common;
#[path = "../examples/providers/mod.rs"]
#[allow(dead_code)]
mod providers;

use common::{run_workers, RedisServer};
use providers::config::Ttls;
use providers::Providers;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use syntra_cache::Cache;
use syntra_sim::market::COINS;
use syntra_sim::{Limits, SimConfig, Simulator};

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64
}

fn coins() -> Vec<String> {
    COINS.iter().map(|c| c.id.to_string()).collect()
}

#[tokio::test]
async fn two_processes_fetch_each_item_of_overlapping_batches_once() {
    let n = COINS.len();
    assert!(n >= 10, "the catalogue has {n} coins");
    let server = RedisServer::start();
    // 300 ms per response: the two processes' loads overlap.
    let config = SimConfig {
        seed: 5,
        limits: Limits::unlimited(),
        clock_speed: 0.0,
        latency: Duration::from_millis(300),
        ..SimConfig::default()
    };
    let sim = Simulator::start(config).await.unwrap();
    let env = |at: u64| {
        vec![
            ("BATCH_WORKER_REDIS", server.url()),
            ("BATCH_WORKER_SIM", sim.base_url("coingecko")),
            ("BATCH_WORKER_AT", at.to_string()),
        ]
    };
    // Both start at the same instant, 1.5 s from now (process start-up is well under that).
    let reports = tokio::task::spawn_blocking({
        let env = env(now_ms() + 1_500);
        move || run_workers("batch_worker", 2, &env, "PRICES=")
    })
    .await
    .unwrap();
    let calls = sim.calls().endpoint("coingecko", "/simple/price");
    assert_eq!(calls.items, n as u64, "each coin asked of CoinGecko once in all: {calls:?}");
    assert!((1..=2).contains(&calls.total), "one call per process at most: {calls:?}");
    for r in &reports {
        assert_eq!(r.get::<usize>("PRICES"), n, "{}", r.line);
    }
    assert_eq!(reports[0].get::<u64>("SUM"), reports[1].get::<u64>("SUM"), "both answered the same prices");

    // A later process answers from Redis alone.
    let later = tokio::task::spawn_blocking({
        let env = env(now_ms());
        move || run_workers("batch_worker", 1, &env, "PRICES=")
    })
    .await
    .unwrap();
    assert_eq!(later[0].get::<usize>("PRICES"), n);
    assert_eq!(later[0].get::<u64>("SUM"), reports[0].get::<u64>("SUM"));
    assert_eq!(sim.calls().endpoint("coingecko", "/simple/price"), calls, "no upstream call");
}

/// One process: waits for `BATCH_WORKER_AT`, calls `prices` for the coins once, and prints
/// how many it got and the bits of their sum (in id order).
#[tokio::test]
#[ignore = "a worker process of two_processes_fetch_each_item_of_overlapping_batches_once"]
async fn batch_worker() {
    let var = |k: &str| std::env::var(k).unwrap_or_else(|_| panic!("{k} is set by the parent test"));
    let cache = Cache::builder()
        .namespace("bp")
        .redis(var("BATCH_WORKER_REDIS"))
        .stampede_lock(Duration::from_secs(5), Duration::from_secs(5))
        .build()
        .unwrap();
    let p = Providers::real(cache, Arc::new(Ttls::default()));
    let cg = p.coingecko.with_base_url(var("BATCH_WORKER_SIM")).with_api_key(None);
    let at: u64 = var("BATCH_WORKER_AT").parse().unwrap();
    tokio::time::sleep(Duration::from_millis(at.saturating_sub(now_ms()))).await;
    let ids = coins();
    let got = cg.prices(&ids, "usd").await.unwrap();
    let sum: f64 = ids.iter().filter_map(|id| got.get(id)).map(|p| p.price).sum();
    println!("PRICES={} SUM={}", got.len(), sum.to_bits());
}
