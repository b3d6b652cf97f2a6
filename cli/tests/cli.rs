//! The `syntra-cache` binary against a real redis-server filled by a real cache: every command
//! in text and `--json`, the purge dry run, rotation, and the exit codes of a bad URL, an
//! unreachable server and a wrong password.

use serde_json::Value;
use std::process::{Command, Output};
use std::time::Duration;
use syntra_cache::budget::{Budget, Budgets};
use syntra_cache::{cached, Cache};
use syntra_sim::redis_server::RedisServer;

fn cli(url: &str, ns: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_syntra-cache"))
        .args(["--url", url, "--namespace", ns, "--timeout-ms", "1000"])
        .args(args)
        .env_remove("SYNTRA_CACHE_REDIS_URL")
        .output()
        .unwrap()
}

fn json(url: &str, ns: &str, args: &[&str]) -> Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let out = cli(url, ns, &all);
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[cached(ttl = 600, stale = 60, key = "gecko:price:<id>", skip(cache), cache = cache)]
async fn price(cache: &Cache, id: &str) -> Result<f64, String> {
    Ok(id.len() as f64 * 1000.0)
}

#[cached(ttl = 600, key = "gecko:chart:<id>", skip(cache), cache = cache)]
async fn chart(cache: &Cache, id: &str) -> Result<Vec<(u64, f64)>, String> {
    Ok((0..500).map(|i| (1_735_689_600_000 + i * 300_000, 97_000.0 + id.len() as f64 + i as f64 * 0.25)).collect())
}

#[cached(ttl = 600, key = "binance:klines:<s>", format = "msgpack", skip(cache), cache = cache)]
async fn klines(cache: &Cache, s: &str) -> Result<Vec<u64>, String> {
    Ok(vec![s.len() as u64; 3])
}

async fn fill(url: &str, ns: &str) -> Cache {
    let budgets =
        Budgets::new(vec![Budget::new("coingecko").rate(30, Duration::from_secs(60)).quota_day(1000)]).unwrap();
    let c = Cache::builder().namespace(ns).redis(url).budgets(budgets).build().unwrap();
    for id in ["bitcoin", "ethereum", "solana"] {
        price(&c, id).await.unwrap();
        chart(&c, id).await.unwrap();
    }
    klines(&c, "BTCUSDT").await.unwrap();
    for _ in 0..3 {
        c.budgets().unwrap().acquire("coingecko", 1).await.unwrap();
    }
    c.budgets().unwrap().backoff_shared("coingecko", Some(Duration::from_secs(30))).await;
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_get_stats_and_budgets() {
    let redis = RedisServer::start();
    let url = redis.url();
    let _cache = fill(&url, "op").await;

    let keys = json(&url, "op", &["keys", "gecko:*"]);
    assert_eq!(keys["count"], 6);
    assert!(keys["keys"].as_array().unwrap().iter().all(|k| k.as_str().unwrap().starts_with("op:gecko:")));
    let limited = json(&url, "op", &["keys", "--limit", "2"]);
    assert_eq!((limited["count"].as_u64(), limited["truncated"].as_bool()), (Some(2), Some(true)));
    let text = cli(&url, "op", &["keys", "gecko:price:*"]);
    assert_eq!(String::from_utf8(text.stdout).unwrap().lines().count(), 3);

    // A small JSON entry, a compressed one, a MessagePack one.
    let p = json(&url, "op", &["get", "gecko:price:bitcoin", "--data"]);
    assert_eq!(
        (p["format"].as_str(), p["compressed"].as_bool(), p["state"].as_str()),
        (Some("json"), Some(false), Some("fresh"))
    );
    assert_eq!((p["ttl_ms"].as_u64(), p["stale_window_ms"].as_u64()), (Some(600_000), Some(60_000)));
    assert_eq!(p["data"], 7000.0);
    assert!(p["fresh_left_ms"].as_u64().unwrap() > 590_000 && p["age_ms"].as_u64().unwrap() < 10_000);
    assert!(p["signature"].as_str().unwrap().starts_with("none"));
    let c = json(&url, "op", &["get", "op:gecko:chart:bitcoin"]);
    assert_eq!(c["compressed"], true);
    assert!(c["stored_bytes"].as_u64().unwrap() * 2 < c["decoded_bytes"].as_u64().unwrap(), "{c}");
    assert_eq!(json(&url, "op", &["get", "binance:klines:BTCUSDT"])["format"], "msgpack");
    // A decompression bound below the value is refused, not obeyed.
    let out = cli(&url, "op", &["get", "gecko:chart:bitcoin", "--max-decompressed", "100"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("bound"), "{}", String::from_utf8_lossy(&out.stderr));
    let missing = cli(&url, "op", &["get", "gecko:price:nope"]);
    assert_eq!(missing.status.code(), Some(6));

    let s = json(&url, "op", &["stats"]);
    assert!(s["memory"]["used_memory"].as_u64().unwrap() > 0);
    assert_eq!(s["keys_per_method"]["gecko:chart"], 3);
    assert_eq!(s["keys_per_method"]["binance:klines"], 1);
    let text = String::from_utf8(cli(&url, "op", &["stats"]).stdout).unwrap();
    assert!(text.contains("keys_per_method.gecko:price: 3"), "{text}");

    let b = json(&url, "op", &["budgets"]);
    let cg = &b["budgets"][0];
    assert_eq!(cg["name"], "coingecko");
    assert_eq!(cg["day"]["used"], 3);
    assert!(cg["hold_left_ms"].as_u64().unwrap() > 20_000, "{b}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn purge_is_a_dry_run_first_and_rotate_sweeps() {
    let redis = RedisServer::start();
    let url = redis.url();
    let cache = fill(&url, "pg").await;
    let budget_keys = |r: &RedisServer| {
        let mut c = redis::Client::open(r.url()).unwrap().get_connection().unwrap();
        let keys: Vec<String> = redis::cmd("KEYS").arg("pg::budget:*").query(&mut c).unwrap();
        keys.len()
    };
    let budgets_before = budget_keys(&redis);
    assert!(budgets_before >= 2);

    let dry = json(&url, "pg", &["purge", "gecko:price:"]);
    assert_eq!(
        (dry["dry_run"].as_bool(), dry["matched"].as_u64(), dry["removed"].as_u64()),
        (Some(true), Some(3), Some(0))
    );
    assert_eq!(json(&url, "pg", &["keys", "gecko:price:*"])["count"], 3, "a dry run removes nothing");
    let text = String::from_utf8(cli(&url, "pg", &["purge", "gecko:price:"]).stdout).unwrap();
    assert!(text.contains("dry run: 3 entries") && text.contains("--yes"), "{text}");
    let done = json(&url, "pg", &["purge", "gecko:price:", "--yes"]);
    assert_eq!(done["removed"], 3);
    assert_eq!(json(&url, "pg", &["keys", "gecko:price:*"])["count"], 0);
    assert_eq!(cli(&url, "pg", &["purge", ":budget"]).status.code(), Some(2), "runtime keys are refused");

    // An orphaned lock of generation 0; rotate: dry run, then for real.
    let mut c = redis::Client::open(url.as_str()).unwrap().get_connection().unwrap();
    let _: () = redis::cmd("SET").arg("pg::lock:gecko:chart:x").arg("t").arg("PX").arg(600_000).query(&mut c).unwrap();
    let dry = json(&url, "pg", &["rotate", "--dry-run"]);
    assert_eq!((dry["old_entries"].as_u64(), dry["orphaned_locks"].as_u64()), (Some(4), Some(1)), "{dry}");
    assert_eq!(json(&url, "pg", &["keys"])["count"], 4, "a dry run changes nothing");
    let dry = json(&url, "pg", &["rotate", "--dry-run", "--sweep-only"]);
    assert_eq!(
        (dry["old_entries"].as_u64(), dry["orphaned_locks"].as_u64()),
        (Some(0), Some(0)),
        "nothing is old before a rotation"
    );
    let r = json(&url, "pg", &["rotate", "--grace-ms", "0"]);
    assert_eq!((r["previous_generation"].as_u64(), r["generation"].as_u64()), (Some(0), Some(1)));
    assert_eq!((r["old_entries"].as_u64(), r["orphaned_locks"].as_u64()), (Some(4), Some(1)), "{r}");
    assert_eq!(json(&url, "pg", &["keys"])["count"], 0, "the new generation starts empty");
    assert_eq!(budget_keys(&redis), budgets_before, "budget counters untouched");
    // The running cache moves to generation 1 and fills it.
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let _ = price(&cache, "bitcoin").await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    price(&cache, "bitcoin").await.unwrap();
    assert_eq!(cache.generation(), 1);
    let keys = json(&url, "pg", &["keys"]);
    assert_eq!(keys["keys"][0], "pg@1:gecko:price:bitcoin", "{keys}");
    assert_eq!(json(&url, "pg", &["get", "gecko:price:bitcoin"])["key"], "pg@1:gecko:price:bitcoin");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stats_reads_hit_figures_from_a_metrics_endpoint() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let redis = RedisServer::start();
    let url = redis.url();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let body = "# TYPE syntra_cache_hits_total counter\nsyntra_cache_hits_total{service=\"a\"} 40\nsyntra_cache_hits_total{service=\"b\"} 2\nsyntra_cache_misses_total 7\nprocess_cpu_seconds_total 1\n";
        let (mut s, _) = listener.accept().await.unwrap();
        let mut buf = [0u8; 1024];
        let _ = s.read(&mut buf).await.unwrap();
        let reply =
            format!("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{body}", body.len());
        s.write_all(reply.as_bytes()).await.unwrap();
    });
    let metrics = format!("http://{addr}/metrics");
    let s = tokio::task::spawn_blocking(move || json(&url, "mx", &["stats", "--metrics", &metrics])).await.unwrap();
    assert_eq!(s["hits"]["syntra_cache_hits_total"], 42.0, "{s}");
    assert_eq!(s["hits"]["syntra_cache_misses_total"], 7.0);
    assert!(s["hits"].get("process_cpu_seconds_total").is_none());
}

#[test]
fn connection_errors_have_their_exit_codes() {
    let out = cli("redis://[bad", "x", &["keys"]);
    assert_eq!(out.status.code(), Some(3), "{}", String::from_utf8_lossy(&out.stderr));
    let out = cli("redis://127.0.0.1:1/0", "x", &["--json", "keys"]);
    assert_eq!(out.status.code(), Some(4), "{}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["error"], "unreachable");

    let redis = RedisServer::start_with(&["--requirepass", "s3cret"]);
    let port = redis.port();
    let wrong = cli(&format!("redis://:hunter2@127.0.0.1:{port}/0"), "x", &["keys"]);
    assert_eq!(wrong.status.code(), Some(5), "{}", String::from_utf8_lossy(&wrong.stderr));
    assert!(!String::from_utf8_lossy(&wrong.stderr).contains("hunter2"), "the password is not printed");
    let none = cli(&format!("redis://127.0.0.1:{port}/0"), "x", &["keys"]);
    assert_eq!(none.status.code(), Some(5), "{}", String::from_utf8_lossy(&none.stderr));
    let right = cli(&format!("redis://:s3cret@127.0.0.1:{port}/0"), "x", &["keys"]);
    assert_eq!(right.status.code(), Some(0), "{}", String::from_utf8_lossy(&right.stderr));
    assert_eq!(cli(&format!("redis://:s3cret@127.0.0.1:{port}/0"), "a b", &["keys"]).status.code(), Some(2));
}
