//! Soak: 64 tasks of mixed hits, misses and early refreshes for ten minutes while a real
//! `redis-server` is killed, frozen and restarted on a schedule. Not part of CI:
//!
//! ```sh
//! cargo run --release --example soak              # 600 s
//! SOAK_SECS=60 cargo run --release --example soak # a shorter run
//! ```
//!
//! Every answer is checked against the value the body computes (wrong answers must be 0), every
//! call's `Result` too (the body never fails, so errors seen by callers must be 0). At the end it
//! prints calls, wrong answers, errors, the cache's p99, RSS after warm-up and at the end, and
//! the tokio tasks still alive once the workers are done.
//!
//! Schedule, every 60 s: at 15 s SIGKILL (down 5 s, back empty), at 35 s SIGSTOP (3 s, then
//! SIGCONT), at 50 s a restart under load (kill and start again at once).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};
use syntra_cache::{cached, Cache};
use syntra_sim::redis_server::RedisServer;

const TASKS: u64 = 64;
const KEYS: u64 = 4_000;

struct Svc {
    cache: Cache,
    computed: AtomicU64,
}

/// The one true answer for `n` (what the body computes).
fn truth(n: u64) -> Vec<u64> {
    (0..8u32).map(|i| n.wrapping_mul(2_654_435_761).rotate_left(i) ^ u64::from(i)).collect()
}

impl Svc {
    #[cached(ttl = 5, key = "soak:series:<n>", refresh = 2, stale = 30, cache = self.cache)]
    async fn series(&self, n: u64) -> Result<Vec<u64>, String> {
        self.computed.fetch_add(1, Relaxed);
        tokio::time::sleep(Duration::from_millis(2)).await;
        Ok(truth(n))
    }
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmRSS:")).map(str::to_owned))
        .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        .unwrap_or(0)
}

fn main() {
    let secs: u64 = std::env::var("SOAK_SECS").ok().and_then(|v| v.parse().ok()).unwrap_or(600);
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let redis = RedisServer::start();
    let url = redis.url();
    let stop = Arc::new(AtomicBool::new(false));

    // The fault schedule, in its own thread (the harness' signals are blocking calls).
    let faults = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut redis = redis;
            let start = Instant::now();
            let mut log = Vec::new();
            let at = |s: u64| start + Duration::from_secs(s);
            let mut cycle = 0;
            while !stop.load(Relaxed) {
                let base = cycle * 60;
                let wait_until = |t: Instant, stop: &AtomicBool| {
                    while Instant::now() < t {
                        if stop.load(Relaxed) {
                            return false;
                        }
                        std::thread::sleep(Duration::from_millis(50));
                    }
                    true
                };
                if !wait_until(at(base + 15), &stop) {
                    break;
                }
                redis.kill();
                log.push(format!("{:>4}s kill -9", start.elapsed().as_secs()));
                if !wait_until(at(base + 20), &stop) {
                    redis.restart();
                    break;
                }
                redis.restart();
                log.push(format!("{:>4}s back (empty)", start.elapsed().as_secs()));
                if !wait_until(at(base + 35), &stop) {
                    break;
                }
                redis.pause();
                log.push(format!("{:>4}s SIGSTOP", start.elapsed().as_secs()));
                std::thread::sleep(Duration::from_secs(3));
                redis.resume();
                log.push(format!("{:>4}s SIGCONT", start.elapsed().as_secs()));
                if !wait_until(at(base + 50), &stop) {
                    break;
                }
                redis.restart();
                log.push(format!("{:>4}s restart", start.elapsed().as_secs()));
                cycle += 1;
            }
            log
        })
    };

    let report = runtime.block_on(async move {
        let cache = Cache::builder().namespace("soak").redis(url).signing_key("soak-test-signing-key-0123456").build().unwrap();
        let svc = Arc::new(Svc { cache: cache.clone(), computed: AtomicU64::new(0) });
        let (calls, wrong, errors) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
        let deadline = Instant::now() + Duration::from_secs(secs);
        let workers: Vec<_> = (0..TASKS)
            .map(|t| {
                let (svc, calls, wrong, errors) = (svc.clone(), calls.clone(), wrong.clone(), errors.clone());
                tokio::spawn(async move {
                    let mut x = t.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
                    while Instant::now() < deadline {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        // Skewed: half the calls on 1% of the keys (hits), the rest spread out
                        // (misses and refreshes).
                        let n = if x % 2 == 0 { x % (KEYS / 100) } else { x % KEYS };
                        match svc.series(n).await {
                            Ok(v) if v == truth(n) => {}
                            Ok(_) => {
                                wrong.fetch_add(1, Relaxed);
                            }
                            Err(_) => {
                                errors.fetch_add(1, Relaxed);
                            }
                        }
                        calls.fetch_add(1, Relaxed);
                        tokio::time::sleep(Duration::from_millis(15)).await;
                    }
                })
            })
            .collect();
        tokio::time::sleep(Duration::from_secs(10.min(secs / 2))).await;
        let rss_start = rss_kib();
        let mut last = Instant::now();
        while Instant::now() < deadline {
            tokio::time::sleep(Duration::from_secs(1)).await;
            if last.elapsed() >= Duration::from_secs(60) {
                last = Instant::now();
                let s = cache.stats().total();
                println!(
                    "  {:>6} calls  hits {}  misses {}  stale {}  refreshes {}  cache errors {}  rss {} KiB",
                    calls.load(Relaxed),
                    s.hits,
                    s.misses,
                    s.stale,
                    s.refreshes,
                    s.cache_errors,
                    rss_kib()
                );
            }
        }
        for w in workers {
            w.await.expect("a worker panicked");
        }
        // Spawned lock releases finish within their back-off (at most ~3.5 s).
        tokio::time::sleep(Duration::from_secs(4)).await;
        let alive = tokio::runtime::Handle::current().metrics().num_alive_tasks();
        let s = cache.stats().total();
        format!(
            "SOAK {secs} s, {TASKS} tasks: calls={} wrong={} errors={} computed={} hits={} misses={} stale={} refreshes={} \
             cache_errors={} tampered={} breaker_open_at_end={} p50={:?} p99={:?} mean={:?} rss_start={} KiB rss_end={} KiB \
             tokio_tasks_alive={alive}",
            calls.load(Relaxed),
            wrong.load(Relaxed),
            errors.load(Relaxed),
            svc.computed.load(Relaxed),
            s.hits,
            s.misses,
            s.stale,
            s.refreshes,
            s.cache_errors,
            s.tampered,
            cache.remote_circuit_open(),
            s.latency.p50,
            s.latency.p99,
            s.latency.mean,
            rss_start,
            rss_kib(),
        )
    });
    stop.store(true, Relaxed);
    for line in faults.join().unwrap() {
        println!("  fault: {line}");
    }
    println!("{report}");
}
