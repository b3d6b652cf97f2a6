//! Key rotation against a real redis-server: a rotation during load serves every call the value
//! of its own key, both instances move to the new generation, the old generation's entries and
//! orphaned locks are gone afterwards, and budget counters are untouched.

mod common;

use common::{poll, scan_keys, RedisExt, RedisServer};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Duration;
use syntra_cache::rotation::SweepOptions;
use syntra_cache::{cached, Cache};

/// The data "version": bumped at the rotation, so values computed after it are told apart.
static EPOCH: AtomicU64 = AtomicU64::new(0);

#[cached(ttl = 600, key = "svc:value:<n>", skip(cache), cache = cache)]
async fn value(cache: &Cache, n: u64) -> Result<(u64, u64), String> {
    Ok((n, EPOCH.load(SeqCst)))
}

fn instance(redis: &RedisServer, ns: &str) -> Cache {
    Cache::builder()
        .namespace(ns)
        .redis(redis.url())
        .generation_refresh(Duration::from_millis(50))
        .op_timeout(Duration::from_millis(500))
        .build()
        .unwrap()
}

fn entries(redis: &RedisServer, pattern: &str) -> Vec<String> {
    scan_keys(&redis.client(), pattern).into_iter().filter(|k| !k.contains("::")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rotation_under_load_serves_every_call_and_removes_the_old_generation() {
    let redis = RedisServer::start();
    let (a, b) = (instance(&redis, "rot"), instance(&redis, "rot"));
    for n in 0..200 {
        assert_eq!(value(&a, n).await.unwrap(), (n, 0));
    }
    assert_eq!(entries(&redis, "rot:*").len(), 200);
    // Runtime keys beside the entries: a budget counter (never touched) and a lock of
    // generation 0 whose holder died (orphaned).
    redis.cmd::<()>(&["SET", "rot::budget:coingecko:quota:day", "17"]);
    redis.cmd::<()>(&["SET", "rot::lock:svc:value:999", "dead-holder", "PX", "600000"]);

    // Load on both instances; every answer must be the value of its own key.
    let stop = Arc::new(AtomicBool::new(false));
    let calls = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for t in 0..8u64 {
        let (c, stop, calls) = (if t % 2 == 0 { a.clone() } else { b.clone() }, stop.clone(), calls.clone());
        tasks.push(tokio::spawn(async move {
            let mut n = t * 25;
            while !stop.load(SeqCst) {
                let (got, _) = value(&c, n % 200).await.expect("every call answers");
                assert_eq!(got, n % 200, "a call got another key's value");
                calls.fetch_add(1, SeqCst);
                n += 1;
                // A memory hit completes without awaiting: let the timers run.
                tokio::task::yield_now().await;
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    EPOCH.store(1, SeqCst);
    let generation = a.rotate().await.unwrap();
    assert_eq!((generation, a.generation()), (1, 1));
    tokio::time::sleep(Duration::from_millis(600)).await;
    stop.store(true, SeqCst);
    for t in tasks {
        t.await.unwrap();
    }
    assert!(calls.load(SeqCst) > 1_000, "load ran: {} calls", calls.load(SeqCst));
    assert_eq!(b.generation(), 1, "the other instance learned the generation within its refresh interval");

    // After the switch every answer is computed afresh, on both instances.
    for n in 0..200 {
        assert_eq!(value(&a, n).await.unwrap(), (n, 1));
        assert_eq!(value(&b, n).await.unwrap(), (n, 1));
    }

    // The background sweep (started one refresh interval after the bump) and a final one (an
    // instance may have written an old key just before it learned the bump) leave nothing old.
    let report = a.sweep_old_generations(SweepOptions::default()).await.unwrap();
    assert!(report.scanned >= 200, "{report:?}");
    assert_eq!(entries(&redis, "rot:*"), Vec::<String>::new(), "generation 0 entries are gone");
    assert_eq!(entries(&redis, "rot@1:*").len(), 200);
    assert_eq!(redis.cmd::<Option<String>>(&["GET", "rot::lock:svc:value:999"]), None, "orphaned lock removed");
    assert_eq!(redis.cmd::<Option<String>>(&["GET", "rot::budget:coingecko:quota:day"]).as_deref(), Some("17"));
    assert_eq!(redis.cmd::<Option<String>>(&["GET", "rot::gen"]).as_deref(), Some("1"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_background_sweep_removes_old_keys_at_a_bounded_rate() {
    let redis = RedisServer::start();
    let c = instance(&redis, "bg");
    for n in 0..300 {
        value(&c, n).await.unwrap();
    }
    // A dry run counts without removing.
    let dry = c.sweep_old_generations(SweepOptions { dry_run: true, ..Default::default() }).await.unwrap();
    assert_eq!((dry.entries, dry.locks), (0, 0), "nothing is old before a rotation");
    c.rotate().await.unwrap();
    let probe = instance(&redis, "bg");
    let dry = probe.sweep_old_generations(SweepOptions { dry_run: true, ..Default::default() }).await;
    // A fresh instance reads the generation on its first call, not before.
    assert!(dry.is_ok());
    let started = std::time::Instant::now();
    poll(Duration::from_secs(10), "old keys swept in the background", || {
        entries(&redis, "bg:*").is_empty().then_some(())
    });
    assert!(started.elapsed() < Duration::from_secs(10));
    // The rate bound: 300 keys at 100/s take about 3 s.
    for n in 0..300 {
        value(&c, n).await.unwrap();
    }
    c.rotate().await.unwrap();
    let t = std::time::Instant::now();
    let swept =
        c.sweep_old_generations(SweepOptions { max_keys_per_sec: 100, scan_count: 50, dry_run: false }).await.unwrap();
    // The background sweep may have taken some first; whatever this one removed was paced.
    let min = Duration::from_secs_f64(swept.entries as f64 / 100.0 * 0.8);
    assert!(t.elapsed() >= min, "{swept:?} in {:?}", t.elapsed());
    assert!(entries(&redis, "bg@1:*").is_empty());
}
