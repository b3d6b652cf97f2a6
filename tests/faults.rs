//! The fault suite: every case against a real `redis-server` started by the test, and for each
//! one the promises of the README's "When Redis is down": every answer correct, the added
//! latency per call bounded (the bound is asserted and the figure printed as a `FAULT|` row for
//! `docs/faults.md`), automatic recovery once the fault ends (measured from "fault over" to "a
//! write lands in Redis again"), and the right counter / breaker state / log line.
//!
//! Settings of every cache here: `op_timeout` 200 ms, breaker threshold 2 and cool-down 300 ms
//! (the restart-under-load case uses the defaults: threshold 3, cool-down 2 s), no memory tier
//! so that every call reaches Redis.

mod common;

use common::{poll, scan_keys, RedisExt, RedisServer};
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use syntra_cache::budget::{Budget, Budgets, Denied};
use syntra_cache::{cached, Cache, CacheBuilder};

const OP_TIMEOUT: Duration = Duration::from_millis(200);
const COOLDOWN: Duration = Duration::from_millis(300);
/// What a call may cost on top of its body while a fault lasts: one operation timeout (after a
/// failed read the call skips the lock and the write), plus scheduling slack on a loaded 2-core
/// machine running a debug build.
const FAULT_BOUND: Duration = Duration::from_millis(200 + 250);
/// What a call may cost when the server answers every command with an error reply: a few
/// loopback round trips.
const REPLY_BOUND: Duration = Duration::from_millis(100);

// ---------------------------------------------------------------------------------------------
// Log capture: one global subscriber; each case reads the lines that name its own namespace.

fn logs() -> &'static Mutex<Vec<u8>> {
    common::captured_logs("syntra_cache=info")
}

/// The captured lines mentioning `needle`.
fn lines_with(needle: &str) -> Vec<String> {
    let all = logs().lock().unwrap();
    String::from_utf8_lossy(&all).lines().filter(|l| l.contains(needle)).map(str::to_owned).collect()
}

// ---------------------------------------------------------------------------------------------
// The service under test

struct Svc {
    cache: Cache,
    ns: String,
    calls: AtomicUsize,
}

#[derive(Debug, Clone, PartialEq)]
enum ApiError {
    Budget(Denied),
}

impl From<Denied> for ApiError {
    fn from(d: Denied) -> Self {
        ApiError::Budget(d)
    }
}

impl Svc {
    #[cached(ttl = 300, key = "f:sq:<n>", cache = self.cache)]
    async fn square(&self, n: u64) -> Result<u64, String> {
        self.calls.fetch_add(1, SeqCst);
        Ok(n * n)
    }

    #[cached(ttl = 300, key = "f:text:<n>", cache = self.cache)]
    async fn text(&self, n: usize) -> Result<String, String> {
        self.calls.fetch_add(1, SeqCst);
        Ok("x".repeat(n))
    }

    #[cached(ttl = 300, key = "f:sq:<n>", cache = self.cache)]
    async fn square_as_text(&self, n: u64) -> Result<String, String> {
        self.calls.fetch_add(1, SeqCst);
        Ok((n * n).to_string())
    }

    #[cached(ttl = 300, key = "f:budgeted:<n>", budget = "upstream", cache = self.cache)]
    async fn budgeted(&self, n: u64) -> Result<u64, ApiError> {
        self.calls.fetch_add(1, SeqCst);
        Ok(n + 1)
    }

    fn calls(&self) -> usize {
        self.calls.load(SeqCst)
    }

    fn key(&self, n: u64) -> String {
        format!("{}:f:sq:{n}", self.ns)
    }

    fn stats(&self) -> syntra_cache::MethodStats {
        self.cache.stats().get("f", "sq").cloned().unwrap_or_default()
    }
}

fn builder(url: &str, ns: &str) -> CacheBuilder {
    let _ = logs();
    Cache::builder()
        .namespace(ns)
        .redis(url)
        .local_tier(false)
        .op_timeout(OP_TIMEOUT)
        .connect_timeout(OP_TIMEOUT)
        .breaker(2, COOLDOWN)
}

fn svc_with(b: CacheBuilder, ns: &str) -> Arc<Svc> {
    Arc::new(Svc { cache: b.build().unwrap(), ns: ns.to_owned(), calls: AtomicUsize::new(0) })
}

fn svc(url: &str, ns: &str) -> Arc<Svc> {
    svc_with(builder(url, ns), ns)
}

/// Calls `square(n)` for every `n` in `ns`, checking every answer; the worst and mean latency.
async fn calls(svc: &Svc, ns: impl IntoIterator<Item = u64>) -> (Duration, Duration, u32) {
    let (mut worst, mut total, mut count) = (Duration::ZERO, Duration::ZERO, 0u32);
    for n in ns {
        let t = Instant::now();
        assert_eq!(svc.square(n).await, Ok(n * n), "a correct answer for {n}");
        let e = t.elapsed();
        worst = worst.max(e);
        total += e;
        count += 1;
    }
    (worst, total / count.max(1), count)
}

/// From now until a write of `square` lands in Redis again (a fresh key per attempt).
async fn until_writes_land(svc: &Svc, redis: &RedisServer, first: u64) -> Duration {
    let start = Instant::now();
    let mut n = first;
    loop {
        assert_eq!(svc.square(n).await, Ok(n * n));
        if redis.get_bytes(&svc.key(n)).is_some() {
            return start.elapsed();
        }
        assert!(start.elapsed() < Duration::from_secs(15), "writes never landed again");
        n += 1;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn row(case: &str, calls: u32, worst: Duration, mean: Duration, recovery: Option<Duration>, what: &str) {
    let rec = recovery.map_or("-".to_owned(), |d| format!("{} ms", d.as_millis()));
    println!(
        "FAULT|{case}|{calls}|{:.1} ms|{:.2} ms|{rec}|{what}",
        worst.as_secs_f64() * 1e3,
        mean.as_secs_f64() * 1e3
    );
}

// ---------------------------------------------------------------------------------------------
// Outages: the connection is gone or silent.

#[tokio::test]
async fn kill_9_then_back_empty() {
    let mut redis = RedisServer::start();
    let s = svc(&redis.url(), "fk");
    calls(&s, 0..5).await;
    assert!(redis.get_bytes(&s.key(1)).is_some());
    redis.kill();
    let (worst, mean, n) = calls(&s, 100..300).await;
    assert!(worst < FAULT_BOUND, "worst call {worst:?} while Redis is dead");
    assert!(s.cache.remote_circuit_open(), "the breaker opened");
    assert!(s.stats().cache_errors >= 2);
    assert!(!lines_with("Cache store circuit OPEN").is_empty());
    redis.restart();
    let recovery = until_writes_land(&s, &redis, 1000).await;
    assert!(recovery < COOLDOWN + Duration::from_secs(1), "recovery took {recovery:?}");
    // Back empty: what was cached before is recomputed, correctly, and written again.
    assert!(redis.get_bytes(&s.key(1)).is_none());
    let before = s.calls();
    calls(&s, 0..5).await;
    assert_eq!(s.calls(), before + 5);
    assert!(redis.get_bytes(&s.key(1)).is_some());
    row("kill -9, back empty", n, worst, mean, Some(recovery), "breaker OPEN (warn), `cache_errors`");
}

#[tokio::test]
async fn sigstop_stall_then_sigcont() {
    let redis = RedisServer::start();
    let s = svc(&redis.url(), "fs");
    calls(&s, 0..3).await;
    redis.pause();
    let (worst, mean, n) = calls(&s, 100..160).await;
    assert!(worst < FAULT_BOUND, "worst call {worst:?} while Redis is frozen");
    assert!(s.cache.remote_circuit_open());
    let slow = s.stats().cache_errors;
    redis.resume();
    let recovery = until_writes_land(&s, &redis, 1000).await;
    assert!(recovery < COOLDOWN + Duration::from_secs(1), "recovery took {recovery:?}");
    assert!(!s.cache.remote_circuit_open());
    row("SIGSTOP stall, SIGCONT", n, worst, mean, Some(recovery), &format!("breaker OPEN, `cache_errors` {slow}"));
}

/// A restart while 16 tasks keep calling, with the default breaker (threshold 3, cool-down 2 s):
/// from "Redis back" (listening again) to "writes land again" within the cool-down + 1 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_during_load_recovers_within_cooldown_plus_1s() {
    let mut redis = RedisServer::start();
    let ns = "fr";
    let b = Cache::builder().namespace(ns).redis(redis.url()).local_tier(false).op_timeout(OP_TIMEOUT);
    let s = svc_with(b, ns);
    let cooldown = Duration::from_secs(2);
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let worst = Arc::new(Mutex::new(Duration::ZERO));
    let done = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..16u64)
        .map(|t| {
            let (s, stop, worst, done) = (s.clone(), stop.clone(), worst.clone(), done.clone());
            tokio::spawn(async move {
                let mut n = t * 1_000_000;
                while !stop.load(SeqCst) {
                    let at = Instant::now();
                    assert_eq!(s.square(n).await, Ok(n * n));
                    let e = at.elapsed();
                    {
                        let mut w = worst.lock().unwrap();
                        *w = (*w).max(e);
                    }
                    done.fetch_add(1, SeqCst);
                    n += 1;
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    redis.kill();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(s.cache.remote_circuit_open(), "the breaker opened under load");
    let redis = tokio::task::spawn_blocking(move || {
        redis.restart();
        redis
    })
    .await
    .unwrap();
    let back = Instant::now();
    // "Writes land again": the first key written by any task after the restart.
    let recovery = loop {
        let n: u64 = redis.cmd(&["DBSIZE"]);
        if n > 0 {
            break back.elapsed();
        }
        assert!(back.elapsed() < Duration::from_secs(10), "writes never landed after the restart");
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    stop.store(true, SeqCst);
    for t in tasks {
        t.await.expect("every answer was correct");
    }
    let worst = *worst.lock().unwrap();
    assert!(worst < FAULT_BOUND, "worst call {worst:?}");
    assert!(recovery < cooldown + Duration::from_secs(1), "writes landed {recovery:?} after Redis was back");
    row(
        "restart under load (16 tasks, default breaker)",
        done.load(SeqCst) as u32,
        worst,
        Duration::ZERO,
        Some(recovery),
        "breaker OPEN then CLOSED (info)",
    );
}

#[tokio::test]
async fn debug_sleep_slow_server() {
    let redis = RedisServer::start_with(&["--enable-debug-command", "yes"]);
    let s = svc(&redis.url(), "fd");
    calls(&s, 0..3).await;
    let client = redis.client();
    let sleeper = std::thread::spawn(move || {
        let mut c = client.get_connection().unwrap();
        let _: () = redis::cmd("DEBUG").arg("SLEEP").arg("1.5").query(&mut c).unwrap();
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    let (worst, mean, n) = calls(&s, 100..140).await;
    assert!(worst < FAULT_BOUND, "worst call {worst:?} while the server sleeps");
    assert!(s.cache.remote_circuit_open(), "a slow server is skipped like a dead one");
    tokio::task::spawn_blocking(move || sleeper.join().unwrap()).await.unwrap();
    let recovery = until_writes_land(&s, &redis, 1000).await;
    assert!(recovery < COOLDOWN + Duration::from_secs(1), "recovery took {recovery:?}");
    row("DEBUG SLEEP 1.5 (slow server)", n, worst, mean, Some(recovery), "`Timeout` errors, breaker OPEN");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_kill_during_load() {
    let redis = RedisServer::start();
    let s = svc(&redis.url(), "fc");
    calls(&s, 0..3).await;
    let worst = Arc::new(Mutex::new(Duration::ZERO));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let done = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..8u64)
        .map(|t| {
            let (s, worst, stop, done) = (s.clone(), worst.clone(), stop.clone(), done.clone());
            tokio::spawn(async move {
                let mut i = 0u64;
                while !stop.load(SeqCst) {
                    i += 1;
                    done.fetch_add(1, SeqCst);
                    let n = t * 1000 + i % 40;
                    let at = Instant::now();
                    assert_eq!(s.square(n).await, Ok(n * n));
                    let e = at.elapsed();
                    {
                        let mut w = worst.lock().unwrap();
                        *w = (*w).max(e);
                    }
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
            })
        })
        .collect();
    let mut killed = 0u64;
    for _ in 0..8 {
        tokio::time::sleep(Duration::from_millis(60)).await;
        killed += redis.cmd::<u64>(&["CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes"]);
    }
    tokio::time::sleep(Duration::from_millis(60)).await;
    stop.store(true, SeqCst);
    for t in tasks {
        t.await.expect("every answer was correct");
    }
    assert!(killed >= 3, "the cache's connections were killed ({killed})");
    let worst = *worst.lock().unwrap();
    // A connection killed between a lock's SET and its release leaves the lock until the
    // (retried) release lands: a caller of that key may wait for it, at most the lock wait (3 s).
    assert!(worst < Duration::from_secs(3) + FAULT_BOUND, "worst call {worst:?}");
    tokio::time::sleep(COOLDOWN).await;
    let recovery = until_writes_land(&s, &redis, 100_000).await;
    assert!(recovery < COOLDOWN + Duration::from_secs(1));
    row(
        "CLIENT KILL x8 during load (8 tasks)",
        done.load(SeqCst) as u32,
        worst,
        Duration::ZERO,
        Some(recovery),
        &format!("{killed} connections killed; reconnects"),
    );
}

#[tokio::test]
async fn maxclients_reached() {
    let redis = RedisServer::start();
    let mut admin = redis.client().get_connection().unwrap();
    let _: () = redis::cmd("CONFIG").arg("SET").arg("maxclients").arg("1").query(&mut admin).unwrap();
    let s = svc(&redis.url(), "fm");
    let (worst, mean, n) = calls(&s, 0..40).await;
    assert!(worst < FAULT_BOUND, "worst call {worst:?}");
    assert_eq!(s.calls(), 40, "nothing could be cached");
    assert!(s.cache.remote_circuit_open(), "a refused connection is an outage");
    let _: () = redis::cmd("CONFIG").arg("SET").arg("maxclients").arg("100").query(&mut admin).unwrap();
    let fault_over = Instant::now();
    let recovery = until_writes_land(&s, &redis, 1000).await;
    let _ = fault_over;
    assert!(recovery < COOLDOWN + Duration::from_secs(1), "recovery took {recovery:?}");
    row("maxclients reached", n, worst, mean, Some(recovery), "breaker OPEN (connection refused)");
}

// ---------------------------------------------------------------------------------------------
// Error replies: the server answers, with an error. Not an outage: the breaker stays closed, and
// reads keep working where they can.

#[tokio::test]
async fn maxmemory_noeviction_every_write_oom() {
    let redis = RedisServer::start();
    let s = svc(&redis.url(), "fo");
    calls(&s, 0..3).await;
    // Fill the server past a small maxmemory: every write is refused with OOM from now on.
    redis.set_bytes("filler", &vec![b'x'; 4 << 20]);
    let _: () = redis.cmd(&["CONFIG", "SET", "maxmemory-policy", "noeviction"]);
    let _: () = redis.cmd(&["CONFIG", "SET", "maxmemory", "1mb"]);
    let before = s.calls();
    calls(&s, 0..3).await;
    assert_eq!(s.calls(), before, "values written before the fault are still served from Redis");
    let (worst, mean, n) = calls(&s, 100..200).await;
    assert!(worst < REPLY_BOUND, "worst call {worst:?}: an error reply costs a round trip");
    assert!(!s.cache.remote_circuit_open(), "OOM is not an outage: other keys keep being read");
    assert!(redis.get_bytes(&s.key(150)).is_none());
    assert!(s.stats().cache_errors >= 100, "each refused write is counted");
    // Logged (rate-limited to one `Cache ERROR` line per interval during the outage).
    assert!(lines_with("fo:f:sq:1").iter().any(|l| l.contains("WARN") && l.contains("OOM")));
    let _: () = redis.cmd(&["CONFIG", "SET", "maxmemory", "0"]);
    let recovery = until_writes_land(&s, &redis, 1000).await;
    assert!(recovery < Duration::from_millis(200), "writes land at once: {recovery:?}");
    row("maxmemory + noeviction (OOM)", n, worst, mean, Some(recovery), "breaker closed, `cache_errors`, warn `OOM`");
}

#[tokio::test]
async fn replica_readonly() {
    let primary = RedisServer::start();
    let replica = RedisServer::start_with(&["--replicaof", "127.0.0.1", &primary.port().to_string()]);
    poll(Duration::from_secs(10), "replica in sync", || {
        let info: String = replica.cmd(&["INFO", "replication"]);
        info.contains("master_link_status:up").then_some(())
    });
    let on_primary = svc(&primary.url(), "fy");
    calls(&on_primary, 0..5).await;
    poll(Duration::from_secs(5), "replicated", || replica.get_bytes(&on_primary.key(4)).map(|_| ()));
    let s = svc(&replica.url(), "fy");
    calls(&s, 0..5).await;
    assert_eq!(s.calls(), 0, "reads from a replica are hits");
    let (worst, mean, n) = calls(&s, 100..150).await;
    assert!(worst < REPLY_BOUND, "worst call {worst:?}");
    assert!(!s.cache.remote_circuit_open(), "READONLY is not an outage");
    assert!(lines_with("fy:f:sq:1").iter().any(|l| l.contains("READONLY")), "{:#?}", lines_with("fy:"));
    let _: () = replica.cmd(&["REPLICAOF", "NO", "ONE"]);
    let recovery = until_writes_land(&s, &replica, 1000).await;
    assert!(recovery < Duration::from_millis(200), "{recovery:?}");
    row("replica (READONLY)", n, worst, mean, Some(recovery), "breaker closed, reads still hit, warn `READONLY`");
}

#[tokio::test]
async fn requirepass_without_a_password() {
    let redis = RedisServer::start_with(&["--requirepass", "fault-suite-pw-1"]);
    let s = svc(&redis.url(), "fn");
    let (worst, mean, n) = calls(&s, 0..40).await;
    assert!(worst < REPLY_BOUND, "worst call {worst:?}");
    assert_eq!(s.calls(), 40);
    assert!(!s.cache.remote_circuit_open(), "NOAUTH is an error reply, not an outage");
    // The first refusal of each rate-limit interval is logged (maybe the generation read's).
    assert!(lines_with("fn:").iter().any(|l| l.contains("NOAUTH")), "the reason is logged");
    let admin = redis::Client::open(format!("redis://:fault-suite-pw-1@127.0.0.1:{}/0", redis.port())).unwrap();
    let mut admin = admin.get_connection().unwrap();
    let _: () = redis::cmd("CONFIG").arg("SET").arg("requirepass").arg("").query(&mut admin).unwrap();
    let recovery = until_writes_land(&s, &redis, 1000).await;
    assert!(recovery < COOLDOWN + Duration::from_secs(1), "{recovery:?}");
    row("requirepass, no password (NOAUTH)", n, worst, mean, Some(recovery), "breaker closed, warn `NOAUTH`");
}

#[tokio::test]
async fn requirepass_with_a_wrong_password() {
    let redis = RedisServer::start_with(&["--requirepass", "fault-suite-pw-2"]);
    let url = format!("redis://:not-the-password@127.0.0.1:{}/0", redis.port());
    let s = svc(&url, "fw");
    let (worst, mean, n) = calls(&s, 0..40).await;
    assert!(worst < FAULT_BOUND, "worst call {worst:?}");
    assert_eq!(s.calls(), 40);
    for line in lines_with("fw:") {
        assert!(!line.contains("not-the-password"), "the password is in a log line: {line}");
    }
    // The server's password becomes the one the cache has: it connects by itself.
    let admin = redis::Client::open(format!("redis://:fault-suite-pw-2@127.0.0.1:{}/0", redis.port())).unwrap();
    let mut admin = admin.get_connection().unwrap();
    let _: () = redis::cmd("CONFIG").arg("SET").arg("requirepass").arg("not-the-password").query(&mut admin).unwrap();
    let start = Instant::now();
    let mut k = 1000;
    let recovery = loop {
        assert_eq!(s.square(k).await, Ok(k * k));
        let written: Option<Vec<u8>> = redis::cmd("GET").arg(s.key(k)).query(&mut admin).unwrap();
        if written.is_some() {
            break start.elapsed();
        }
        assert!(start.elapsed() < Duration::from_secs(10), "never recovered");
        k += 1;
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    assert!(recovery < COOLDOWN + Duration::from_secs(1), "{recovery:?}");
    row("requirepass, wrong password", n, worst, mean, Some(recovery), "breaker OPEN (auth failed), password redacted");
}

#[tokio::test]
async fn acl_user_without_the_commands() {
    let redis = RedisServer::start();
    let _: () = redis.cmd(&["ACL", "SETUSER", "weak", "on", ">weak-pw-123", "~*", "+ping", "+hello", "+client"]);
    let url = format!("redis://weak:weak-pw-123@127.0.0.1:{}/0", redis.port());
    let s = svc(&url, "fa");
    let (worst, mean, n) = calls(&s, 0..40).await;
    assert!(worst < REPLY_BOUND, "worst call {worst:?}");
    assert_eq!(s.calls(), 40);
    assert!(!s.cache.remote_circuit_open(), "NOPERM is not an outage");
    assert!(lines_with("fa:").iter().any(|l| l.contains("NOPERM")), "the reason is logged");
    let _: () = redis.cmd(&["ACL", "SETUSER", "weak", "+@all"]);
    let recovery = until_writes_land(&s, &redis, 1000).await;
    assert!(recovery < Duration::from_millis(200), "{recovery:?}");
    row("ACL user without the commands (NOPERM)", n, worst, mean, Some(recovery), "breaker closed, warn `NOPERM`");
}

#[tokio::test]
async fn wrongtype_at_a_key_heals() {
    let redis = RedisServer::start();
    let s = svc(&redis.url(), "ft");
    let key = s.key(7);
    let _: () = redis.cmd(&["LPUSH", &key, "planted"]);
    let t = Instant::now();
    assert_eq!(s.square(7).await, Ok(49));
    let worst = t.elapsed();
    assert!(!s.cache.remote_circuit_open(), "WRONGTYPE is not an outage");
    let ty: String = redis.cmd(&["TYPE", &key]);
    assert_eq!(ty, "string", "the next write replaced the list");
    assert_eq!(s.square(7).await, Ok(49));
    assert_eq!(s.calls(), 1, "healed: the second call is a hit");
    assert!(lines_with("ft:f:sq:7").iter().any(|l| l.contains("WRONGTYPE")));
    // Other keys never noticed.
    calls(&s, 0..5).await;
    assert_eq!(s.stats().cache_errors, 1);
    row(
        "WRONGTYPE at a key",
        1,
        worst,
        worst,
        Some(Duration::ZERO),
        "healed by the same call's write; warn `WRONGTYPE`",
    );
}

#[tokio::test]
async fn script_flush_while_budgets_and_locks_are_used() {
    let redis = RedisServer::start();
    let budgets = Budgets::new(vec![Budget::new("upstream").rate(100_000, Duration::from_secs(60))]).unwrap();
    let s = svc_with(builder(&redis.url(), "fx").budgets(budgets), "fx");
    let mut worst = Duration::ZERO;
    for round in 0..6u64 {
        let _: () = redis.cmd(&["SCRIPT", "FLUSH"]);
        for i in 0..20 {
            let n = round * 100 + i;
            let t = Instant::now();
            assert_eq!(s.budgeted(n).await, Ok(n + 1));
            worst = worst.max(t.elapsed());
        }
    }
    assert_eq!(s.calls(), 120);
    let budget = s.cache.budget_stats().into_iter().find(|b| b.name == "upstream").unwrap();
    assert_eq!(budget.granted, 120);
    assert!(!s.cache.budgets().unwrap().shared_skipped(), "budgets stayed shared through Redis");
    assert!(lines_with("Budget: Redis unavailable").is_empty(), "NOSCRIPT never degraded the budgets");
    assert!(!s.cache.remote_circuit_open());
    assert!(scan_keys(&redis.client(), "fx::lock:*").is_empty(), "every lock was released after a flush");
    let cached: Vec<String> = scan_keys(&redis.client(), "fx:f:budgeted:*");
    assert_eq!(cached.len(), 120);
    row(
        "SCRIPT FLUSH x6 with budgets and locks",
        120,
        worst,
        Duration::ZERO,
        None,
        "NOSCRIPT reloaded; locks released",
    );
}

// ---------------------------------------------------------------------------------------------
// What is stored: never trusted.

#[tokio::test]
async fn corrupted_truncated_and_foreign_values_are_misses_that_get_overwritten() {
    let redis = RedisServer::start();
    let s = svc(&redis.url(), "fg");
    calls(&s, 0..3).await;
    let genuine = redis.get_bytes(&s.key(2)).unwrap();
    redis.set_bytes(&s.key(1), b"\x00\xffnot an envelope");
    redis.set_bytes(&s.key(2), &genuine[..genuine.len() / 2]);
    let before = s.calls();
    calls(&s, 1..3).await;
    assert_eq!(s.calls(), before + 2, "both were misses");
    assert_eq!(redis.get_bytes(&s.key(2)).unwrap().len(), genuine.len(), "overwritten with a whole envelope");
    calls(&s, 1..3).await;
    assert_eq!(s.calls(), before + 2, "and then hits");
    assert_eq!(s.stats().cache_errors, 2);
    // Another type's fingerprint under the same key: a conflict, never a wrong answer.
    assert_eq!(s.square_as_text(9).await, Ok("81".to_owned()));
    assert_eq!(s.square(9).await, Ok(81));
    assert_eq!(s.square_as_text(9).await, Ok("81".to_owned()));
    assert!(s.stats().conflicts >= 1);
    row("corrupted / truncated / other type", 7, Duration::ZERO, Duration::ZERO, None, "`cache_errors`, `conflicts`");
}

#[tokio::test]
async fn huge_values_are_refused_both_ways() {
    let redis = RedisServer::start();
    let s = svc_with(builder(&redis.url(), "fh").max_value_bytes(64 * 1024), "fh");
    // A 16 MB value planted in Redis: refused before decoding (only 64 KiB + 1 byte is read).
    let key = s.key(5);
    redis.set_bytes(&key, &vec![b'{'; 16 << 20]);
    let t = Instant::now();
    assert_eq!(s.square(5).await, Ok(25));
    let worst = t.elapsed();
    assert!(worst < REPLY_BOUND, "{worst:?}: the planted value was not read whole");
    assert_eq!(s.stats().oversized, 1);
    assert!(redis.get_bytes(&key).unwrap().len() < 1024, "overwritten with our small envelope");
    assert_eq!(s.square(5).await, Ok(25));
    assert_eq!(s.calls(), 1);
    // A computed value over the bound: answered, not cached, logged once.
    for _ in 0..3 {
        assert_eq!(s.text(100_000).await.map(|t| t.len()), Ok(100_000));
    }
    assert_eq!(s.calls(), 4, "never cached");
    let text = s.cache.stats().get("f", "text").cloned().unwrap();
    assert_eq!(text.oversized, 3);
    assert_eq!(lines_with("Cache OVERSIZED: fh:f:text").len(), 1, "logged once per method");
    assert!(scan_keys(&redis.client(), "fh:f:text:*").is_empty());
    assert_eq!(s.text(10).await.map(|t| t.len()), Ok(10));
    assert_eq!(scan_keys(&redis.client(), "fh:f:text:*").len(), 1, "small values still cached");
    row("huge value (16 MB planted, 100 KB computed)", 5, worst, worst, None, "`oversized`, warn once per method");
}
