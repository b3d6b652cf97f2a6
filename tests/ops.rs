//! The operations files against real tools and a real scrape: `ops/prometheus/alerts.yml`
//! passes `promtool check rules` and its unit tests (`promtool test rules`, each alert fired and
//! not fired); a scrape of the demo (real Redis, budgets, workload) passes `promtool check
//! metrics` and holds every metric the alert rules and the Grafana dashboard use; the demo's
//! JSON logs parse and its `Cache ERROR` lines are rate-limited during an outage.
//!
//! `scripts/test.sh` installs Debian's `prometheus` package (for `promtool`); without it these
//! tests fail with a message saying so.

mod common;

use common::demo_process::DemoProcess;
use common::{RedisExt, RedisServer};
use std::collections::BTreeSet;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

const OPS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/ops");

fn promtool(args: &[&str], stdin: Option<&str>) -> (bool, String) {
    let mut child = Command::new("promtool")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .current_dir(Path::new(OPS).join("prometheus"))
        .spawn()
        .unwrap_or_else(|e| {
            panic!("this test needs promtool ({e}): `apt-get install prometheus` (scripts/test.sh installs it)")
        });
    let mut input = child.stdin.take().unwrap();
    if let Some(s) = stdin {
        input.write_all(s.as_bytes()).unwrap();
    }
    drop(input);
    let out = child.wait_with_output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

fn alert_names(rules: &str) -> Vec<String> {
    rules.lines().filter_map(|l| l.trim().strip_prefix("- alert: ")).map(|s| s.trim().to_string()).collect()
}

#[test]
fn alert_rules_pass_promtool_and_each_alert_is_tested_firing_and_not_firing() {
    let (ok, out) = promtool(&["check", "rules", "alerts.yml"], None);
    assert!(ok, "promtool check rules:\n{out}");
    let rules = std::fs::read_to_string(Path::new(OPS).join("prometheus/alerts.yml")).unwrap();
    let names = alert_names(&rules);
    assert!(out.contains(&format!("SUCCESS: {} rules found", names.len())), "{out}");
    for what in ["summary:", "description:"] {
        assert_eq!(rules.matches(what).count(), names.len(), "every alert has a {what}");
    }
    for required in [
        "SyntraRedisDown",
        "SyntraCacheBreakerOpen",
        "SyntraRedisMemoryHigh",
        "SyntraCacheHitRateLow",
        "SyntraCacheErrorRateHigh",
        "SyntraUpstreamErrors",
        "SyntraUpstream429",
        "SyntraBudgetMonthExhaustion",
        "SyntraBudgetDayExhaustion",
        "SyntraBudgetDenialsRising",
    ] {
        assert!(names.iter().any(|n| n == required), "{required} missing from alerts.yml");
    }

    let (ok, out) = promtool(&["test", "rules", "alerts_test.yml"], None);
    assert!(ok && out.contains("SUCCESS"), "promtool test rules:\n{out}");
    // Each alert is checked once not firing (`exp_alerts: []`) and once firing.
    let tests = std::fs::read_to_string(Path::new(OPS).join("prometheus/alerts_test.yml")).unwrap();
    let lines: Vec<&str> = tests.lines().map(str::trim).collect();
    for name in &names {
        let (mut fired, mut quiet) = (false, false);
        for (i, l) in lines.iter().enumerate() {
            if l.trim_start_matches("- ") == format!("alertname: {name}") {
                match lines.get(i + 1) {
                    Some(&"exp_alerts: []") => quiet = true,
                    Some(&"exp_alerts:") => fired = true,
                    other => panic!("unexpected line after alertname {name}: {other:?}"),
                }
            }
        }
        assert!(fired && quiet, "{name}: tested firing {fired}, not firing {quiet}");
    }
}

/// Sample names in a Prometheus text scrape.
fn scraped_names(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| l.split(['{', ' ']).next().unwrap().to_string())
        .collect()
}

/// `syntra_…` names in a rules or dashboard file.
fn used_names(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = text;
    while let Some(i) = rest.find("syntra_") {
        let tail = &rest[i..];
        let end = tail.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(tail.len());
        out.insert(tail[..end].to_string());
        rest = &tail[end..];
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_scrape_passes_promtool_and_holds_every_metric_the_rules_and_grafana_use() {
    let redis = RedisServer::start();
    let _: () = redis.cmd(&["CONFIG", "SET", "maxmemory", "64mb"]);
    let url = redis.redis_url();
    let mut demo = DemoProcess::start(&[
        "--requests",
        "300",
        "--users",
        "40",
        "--minutes",
        "3",
        "--speed",
        "30",
        "--latency-ms",
        "1",
        "--redis",
        &url,
        "--linger",
        "30",
        "--quiet",
    ]);
    demo.wait_for_line(Duration::from_secs(90), "serving the dashboard at");
    tokio::time::sleep(Duration::from_millis(1200)).await; // one more Redis poll
    let (status, scrape) = demo.get("metrics").await;
    assert_eq!(status, 200);
    eprintln!("scrape: {} bytes, {} samples", scrape.len(), scrape.lines().filter(|l| !l.starts_with('#')).count());

    let (ok, out) = promtool(&["check", "metrics"], Some(&scrape));
    assert!(ok && out.trim().is_empty(), "promtool check metrics found problems:\n{out}");

    let have = scraped_names(&scrape);
    let mut files = vec![];
    for f in ["prometheus/alerts.yml", "grafana/syntra-cache.json"] {
        files.push((f, std::fs::read_to_string(Path::new(OPS).join(f)).unwrap()));
    }
    let grafana: serde_json::Value = serde_json::from_str(&files[1].1).expect("the Grafana dashboard is JSON");
    assert!(grafana["panels"].as_array().is_some_and(|p| p.len() >= 10));
    for (file, text) in &files {
        let used = used_names(text);
        assert!(used.len() >= 8, "{file} uses syntra metrics: {used:?}");
        for name in used {
            assert!(have.contains(&name), "{file} uses {name}, which a real scrape does not have");
        }
    }
    // The figures the issue names are all there.
    for name in [
        "syntra_cache_gets_total",
        "syntra_cache_upstream_calls_total",
        "syntra_cache_calls_saved_total",
        "syntra_cache_errors_total",
        "syntra_cache_breaker_open",
        "syntra_cache_refreshes_total",
        "syntra_cache_call_duration_seconds_bucket",
        "syntra_cache_memory_entries",
        "syntra_cache_evictions_total",
        "syntra_budget_granted_total",
        "syntra_budget_denied_total",
        "syntra_budget_waits_total",
        "syntra_budget_backoffs_total",
        "syntra_budget_quota_used",
        "syntra_budget_quota_projected",
        "syntra_budget_ttl_stretch",
        "syntra_redis_up",
        "syntra_redis_used_memory_bytes",
        "syntra_redis_maxmemory_bytes",
        "syntra_redis_evicted_keys_total",
        "syntra_redis_connected_clients",
        "syntra_redis_namespace_keys",
    ] {
        assert!(have.contains(name), "{name} missing from the scrape");
    }
    for needle in [
        "syntra_redis_up 1",
        r#"syntra_cache_breaker_open{tier="budgets"} 0"#,
        "syntra_redis_maxmemory_bytes 67108864",
        r#"kind="tampered""#,
        r#"result="stale""#,
        r#"outcome="denied""#,
        r#"path="hit""#,
    ] {
        assert!(scrape.contains(needle), "{needle} in the scrape");
    }
    // Keys under the namespace: what SCAN finds, cache entries only (the demo's TTLs are short:
    // some expire between the poll and this SCAN; tests/exporter.rs checks the exact count).
    let keys: Vec<String> = common::scan_keys(&redis.client(), "syntra-demo:*");
    let entries = keys.iter().filter(|k| !k.starts_with("syntra-demo::")).count();
    let line = scrape.lines().find(|l| l.starts_with("syntra_redis_namespace_keys ")).unwrap();
    let polled: f64 = line.rsplit(' ').next().unwrap().parse().unwrap();
    let slack = (entries / 10).max(5) as f64;
    assert!(entries > 20 && (polled - entries as f64).abs() <= slack, "namespace keys ({line}) vs SCAN: {entries}");
    // No key or argument in any label.
    assert!(!scrape.contains("bitcoin"), "a key or an argument leaked into a label");
}

#[test]
fn json_logs_parse_and_cache_errors_are_rate_limited_during_an_outage() {
    let dead = {
        let mut r = RedisServer::start();
        let port = r.port();
        r.kill();
        port
    };
    let out = Command::new(common::demo_process::demo_binary())
        .args(["--requests", "200", "--users", "20", "--minutes", "1", "--speed", "30", "--latency-ms", "1", "--quiet"])
        .args(["--redis", &format!("redis://127.0.0.1:{dead}/0"), "--log-format", "json"])
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let events: Vec<serde_json::Value> =
        stderr.lines().filter(|l| l.starts_with('{')).map(|l| serde_json::from_str(l).expect(l)).collect();
    assert!(!events.is_empty(), "JSON log lines:\n{stderr}");
    for e in &events {
        assert!(e["timestamp"].is_string() && e["level"].is_string() && e["message"].is_string(), "{e}");
    }
    let errors: Vec<&serde_json::Value> =
        events.iter().filter(|e| e["message"].as_str().is_some_and(|m| m.starts_with("Cache ERROR: "))).collect();
    assert!(!errors.is_empty(), "the outage is logged:\n{stderr}");
    let e = errors[0];
    assert!(e["key"].as_str().is_some_and(|k| k.starts_with("syntra-demo:")), "fields stay fields: {e}");
    assert!(e["service"].is_string() && e["method"].is_string() && e["error"].is_string(), "{e}");
    // ~2 s of outage, hundreds of failing calls: one line per 10 s, not one per call.
    assert!(errors.len() <= 2, "Cache ERROR lines are rate-limited: {} lines", errors.len());
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(report.contains("answered"), "the run still answers: {report}");
}
