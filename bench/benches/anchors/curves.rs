//! How cost grows: curves, each point against its anchor in the same run (paired blocks).
//!
//! - `memory_per_entry`: bytes per cached entry against the value's size; memory tier: heap in
//!   use (glibc `mallinfo2`; RSS delta where that is missing, and in the note) / entries, ours
//!   (decoded values in its moka) against a bare moka holding the same values; Redis: `INFO memory` `used_memory` delta / keys, ours (JSON envelope, TTL) against
//!   `SET key json EX 3600`, plus `MEMORY USAGE` of one key of each.
//! - `value_size`: hit cost against the value's size (1 KB, a ~24 KB market chart, 1 MB);
//!   memory tier against moka get + clone, Redis-only against redis-rs GET + serde_json.
//! - `concurrency`: throughput against concurrent tasks (1, 8, 64, 512) on the 2-worker runtime,
//!   64 hot keys; memory tier against moka get + clone, Redis-only against redis-rs GET +
//!   serde_json; the GETs the server received per call of ours (`INFO commandstats`).
//! - `live_keys`: hit cost on 64 hot keys against the number of live keys (1k, 100k, 1M): small
//!   filler entries inserted through ours / moka, and pipelined `SET`s in Redis.
//!
//! Opt-in with `SYNTRA_BENCH_CURVES=1` (the default run stays ~3 minutes); test mode runs every
//! curve once with tiny sizes. Every fill loop is bounded by a count and a deadline; the curves
//! use a redis-server of their own.

use super::{check, count_commands, round_n, Check, Ours};
use std::cell::Cell;
use std::hint::black_box;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};
use syntra_bench::curves::CurvePoint;
use syntra_bench::stats::{paired, Paired, Spread};
use syntra_bench::{chart_points_for, fmt_bytes, make_coin, make_market_chart, probe, Coin, MarketChart, RedisServer};
use syntra_cache::Cache;
use tokio::runtime::Runtime;

/// Hot keys of the live-keys and concurrency curves.
const HOT: usize = 64;

/// Sizes, counts and bounds of one mode.
pub(crate) struct Cfg {
    /// Live keys per point (hot keys included).
    live_keys: Vec<usize>,
    /// Target JSON sizes of the market chart.
    sizes: Vec<usize>,
    /// Concurrent tasks per point.
    tasks: Vec<usize>,
    /// Calls per round of the concurrency curve (split over the tasks).
    calls_per_round: usize,
    /// Paired blocks per point, and the length of one block.
    rounds: usize,
    block: Duration,
    /// Bytes of values each side holds for the memory-per-entry curve, and the bounds on entries.
    mem_budget: usize,
    mem_entries: (usize, usize),
    /// Deadline of each fill.
    fill_deadline: Duration,
}

impl Cfg {
    pub(crate) fn for_mode(test: bool, quick: bool) -> Cfg {
        let sizes = vec![1_000, 24_000, 1_000_000];
        if test {
            Cfg {
                live_keys: vec![100],
                sizes: vec![1_000],
                tasks: vec![1, 8],
                calls_per_round: 16,
                rounds: 1,
                block: Duration::from_millis(1),
                mem_budget: 8_000,
                mem_entries: (8, 8),
                fill_deadline: Duration::from_secs(10),
            }
        } else if quick {
            Cfg {
                live_keys: vec![1_000, 10_000, 100_000],
                sizes,
                tasks: vec![1, 8, 64, 512],
                calls_per_round: 1_024,
                rounds: 5,
                block: Duration::from_millis(5),
                mem_budget: 4 << 20,
                mem_entries: (8, 2_000),
                fill_deadline: Duration::from_secs(30),
            }
        } else {
            Cfg {
                live_keys: vec![1_000, 100_000, 1_000_000],
                sizes,
                tasks: vec![1, 8, 64, 512],
                calls_per_round: 6_144,
                rounds: 21,
                block: Duration::from_millis(25),
                mem_budget: 32 << 20,
                mem_entries: (16, 20_000),
                fill_deadline: Duration::from_secs(120),
            }
        }
    }
}

/// Where the points go: `bench/results/curves.csv` after a full run, `bench/results/quick/`
/// (not committed) after a quick one, the target directory in test mode;
/// `SYNTRA_BENCH_CURVES_OUT` overrides.
pub(crate) fn out_path(test: bool, quick: bool) -> PathBuf {
    if let Ok(p) = std::env::var("SYNTRA_BENCH_CURVES_OUT") {
        return p.into();
    }
    let results = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("results");
    if test {
        PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("curves-test.csv")
    } else if quick {
        results.join("quick").join("curves.csv")
    } else {
        results.join("curves.csv")
    }
}

pub(crate) fn run(cfg: &Cfg, rt1: &Runtime, rtm: &Runtime, checks: &mut Vec<Check>) -> Vec<CurvePoint> {
    let server = RedisServer::start();
    let url = server.url();
    let mut out = Vec::new();
    let phase = |name: &str, t: Instant, n: usize| {
        println!("curves: {name}: {n} points in {:.1} s", t.elapsed().as_secs_f64());
    };
    // Memory first: RSS deltas are cleanest before the other curves leave freed memory behind.
    let t = Instant::now();
    let pts = memory_per_entry(cfg, rt1, &url);
    phase("memory per entry", t, pts.len());
    out.extend(pts);
    let t = Instant::now();
    let pts = value_size(cfg, rt1, &url);
    phase("value size", t, pts.len());
    out.extend(pts);
    let t = Instant::now();
    let pts = concurrency(cfg, rtm, &url);
    phase("concurrency", t, pts.len());
    out.extend(pts);
    let t = Instant::now();
    let pts = live_keys(cfg, rt1, rtm, &url, checks);
    phase("live keys", t, pts.len());
    out.extend(pts);
    out
}

fn flushall(c: &mut redis::Connection) {
    let _: () = redis::cmd("FLUSHALL").query(c).unwrap();
}

/// A point from a paired measurement of per-call times.
fn time_point(
    curve: &str,
    tier: &str,
    x: f64,
    x_label: String,
    labels: (&str, &str),
    p: &Paired,
    note: String,
) -> CurvePoint {
    CurvePoint {
        curve: curve.into(),
        tier: tier.into(),
        x,
        x_label,
        unit: "ns/call".into(),
        ours_label: labels.0.into(),
        anchor_label: labels.1.into(),
        ours: p.ours_ns(),
        anchor: p.anchor_ns(),
        ratio: p.ratio(),
        rounds: p.rounds(),
        note,
    }
}

/// `SET key value EX 3600` for every (key, value), pipelined in batches of at most 1,000 commands
/// or 4 MB.
fn pipelined_set<'a>(c: &mut redis::Connection, items: impl Iterator<Item = (String, &'a [u8])>, ttl: bool) {
    let mut p = redis::pipe();
    let (mut n, mut bytes) = (0usize, 0usize);
    for (k, v) in items {
        bytes += v.len();
        n += 1;
        let cmd = p.cmd("SET").arg(k).arg(v);
        if ttl {
            cmd.arg("EX").arg(3600);
        }
        cmd.ignore();
        if n >= 1_000 || bytes >= 4 << 20 {
            let _: () = p.query(c).unwrap();
            p = redis::pipe();
            (n, bytes) = (0, 0);
        }
    }
    if n > 0 {
        let _: () = p.query(c).unwrap();
    }
}

// ---------------------------------------------------------------------------------------------
// Memory per entry
// ---------------------------------------------------------------------------------------------

fn memory_per_entry(cfg: &Cfg, rt1: &Runtime, url: &str) -> Vec<CurvePoint> {
    let mut c = probe::connect(url);
    flushall(&mut c);
    let mut out = Vec::new();
    // Everything stays alive until the end, so that no size reuses memory another freed.
    let mut keep_ours = Vec::new();
    let mut keep_moka = Vec::new();
    for &target in &cfg.sizes {
        let points = chart_points_for(target);
        let chart = make_market_chart(points);
        let json = serde_json::to_vec(&chart).unwrap();
        let n = (cfg.mem_budget / json.len()).clamp(cfg.mem_entries.0, cfg.mem_entries.1);
        let (x, label) = (json.len() as f64, fmt_bytes(json.len() as f64));

        // Memory tier: ours (memory only) stores each value through a miss; moka gets inserts.
        // Heap in use (malloc's own count) is the figure; the RSS delta goes in the note.
        let ours = Ours::new(
            Cache::builder().namespace(format!("me{points}")).memory_capacity(n as u64 + 16).build().unwrap(),
        );
        let (h0, r0) = (probe::heap_in_use(), probe::rss_bytes());
        rt1.block_on(async {
            for i in 0..n {
                black_box(ours.chart_copy(points, i).await.unwrap());
            }
        });
        let (h1, r1) = (probe::heap_in_use(), probe::rss_bytes());
        assert_eq!(ours.calls.load(Relaxed), n, "memory per entry: one miss per entry");
        let moka: moka::sync::Cache<String, MarketChart> =
            moka::sync::Cache::builder().max_capacity(n as u64 + 16).build();
        let (h2, r2) = (probe::heap_in_use(), probe::rss_bytes());
        for i in 0..n {
            moka.insert(format!("me{points}:coingecko:market_chart:{points}:{i}"), chart.clone());
        }
        moka.run_pending_tasks();
        let (h3, r3) = (probe::heap_in_use(), probe::rss_bytes());
        let per = |a: u64, b: u64| b.saturating_sub(a) as f64 / n as f64;
        let (o, a, how) = match (h0, h1, h2, h3) {
            (Some(h0), Some(h1), Some(h2), Some(h3)) => (per(h0, h1), per(h2, h3), "heap in use (mallinfo2) delta"),
            _ => (per(r0, r1), per(r2, r3), "process RSS delta"),
        };
        out.push(CurvePoint {
            curve: "memory_per_entry".into(),
            tier: "memory".into(),
            x,
            x_label: label.clone(),
            unit: "B/entry".into(),
            ours_label: "#[cached] memory tier".into(),
            anchor_label: "moka insert of the value".into(),
            ours: o,
            anchor: a,
            ratio: Spread::exact(if a > 0.0 { o / a } else { f64::NAN }),
            rounds: 1,
            note: format!(
                "{n} entries; {how} / entries; RSS delta / entries ours {:.0} moka {:.0}",
                per(r0, r1),
                per(r2, r3)
            ),
        });
        keep_ours.push(ours);
        keep_moka.push(moka);

        // Redis: ours Redis-only (JSON envelope, TTL) against SET of the JSON with the same TTL.
        let ours_r = Ours::new(
            Cache::builder().namespace(format!("mr{points}")).redis(url.to_owned()).local_tier(false).build().unwrap(),
        );
        rt1.block_on(ours_r.coin("warm")).unwrap(); // connect before measuring
        let m0 = probe::used_memory(&mut c);
        rt1.block_on(async {
            for i in 0..n {
                black_box(ours_r.chart_copy(points, i).await.unwrap());
            }
        });
        let m1 = probe::used_memory(&mut c);
        let raw_key = |i: usize| format!("raw:me:{points}:{i}");
        pipelined_set(&mut c, (0..n).map(|i| (raw_key(i), json.as_slice())), true);
        let m2 = probe::used_memory(&mut c);
        let ours_key = syntra_cache::key_of(ours_r.chart_copy(points, 0)).unwrap().key;
        let usage =
            |c: &mut redis::Connection, k: &str| probe::memory_usage(c, k).map_or("n/a".into(), |b| b.to_string());
        let (uo, ua) = (usage(&mut c, &ours_key), usage(&mut c, &raw_key(0)));
        let (o, a) = (m1.saturating_sub(m0) as f64 / n as f64, m2.saturating_sub(m1) as f64 / n as f64);
        out.push(CurvePoint {
            curve: "memory_per_entry".into(),
            tier: "redis".into(),
            x,
            x_label: label,
            unit: "B/entry".into(),
            ours_label: "#[cached] Redis (JSON envelope + TTL)".into(),
            anchor_label: "SET key json EX 3600".into(),
            ours: o,
            anchor: a,
            ratio: Spread::exact(if a > 0.0 { o / a } else { f64::NAN }),
            rounds: 1,
            note: format!("{n} keys; used_memory delta / keys; MEMORY USAGE ours {uo} B raw {ua} B"),
        });
    }
    drop(keep_ours);
    drop(keep_moka);
    flushall(&mut c);
    out
}

// ---------------------------------------------------------------------------------------------
// Value size
// ---------------------------------------------------------------------------------------------

fn value_size(cfg: &Cfg, rt1: &Runtime, url: &str) -> Vec<CurvePoint> {
    let mut c = probe::connect(url);
    flushall(&mut c);
    let ours_m = Ours::new(Cache::builder().namespace("vs").memory_capacity(1_024).build().unwrap());
    let ours_r = Ours::new(Cache::builder().namespace("vsr").redis(url.to_owned()).local_tier(false).build().unwrap());
    let moka: moka::sync::Cache<String, MarketChart> = moka::sync::Cache::builder().max_capacity(1_024).build();
    let client = redis::Client::open(url).unwrap();
    let cm = rt1.block_on(redis::aio::ConnectionManager::new(client)).unwrap();
    let mut out = Vec::new();
    for &target in &cfg.sizes {
        let points = chart_points_for(target);
        let chart = make_market_chart(points);
        let json = serde_json::to_vec(&chart).unwrap();
        let (x, label) = (json.len() as f64, fmt_bytes(json.len() as f64));
        let moka_key = format!("vs:coingecko:market_chart:{points}");
        moka.insert(moka_key.clone(), chart.clone());
        let raw_key = format!("raw:vs:{points}");
        pipelined_set(&mut c, std::iter::once((raw_key.clone(), json.as_slice())), false);
        rt1.block_on(async {
            assert_eq!(ours_m.chart(points).await.unwrap(), chart);
            assert_eq!(ours_r.chart(points).await.unwrap(), chart);
        });
        let calls = (ours_m.calls.load(Relaxed), ours_r.calls.load(Relaxed));

        let m = &ours_m;
        let ours = move || async move { m.chart(points).await.expect("value size: ours (memory) returned Err") };
        let anchor = || std::future::ready(moka.get(moka_key.as_str()).unwrap());
        let p = paired(rt1, cfg.rounds, cfg.block, &ours, &anchor);
        let labels = ("#[cached] memory", "moka get + clone");
        out.push(time_point(
            "value_size",
            "memory",
            x,
            label.clone(),
            labels,
            &p,
            format!("{points} points per array"),
        ));

        let r = &ours_r;
        let ours = move || async move { r.chart(points).await.expect("value size: ours (Redis) returned Err") };
        let anchor = || {
            let (mut cm, k) = (cm.clone(), raw_key.as_str());
            async move {
                let b: Option<Vec<u8>> = redis::AsyncCommands::get(&mut cm, k).await.unwrap();
                serde_json::from_slice::<MarketChart>(&b.unwrap()).unwrap()
            }
        };
        let p = paired(rt1, cfg.rounds, cfg.block, &ours, &anchor);
        let labels = ("#[cached] Redis-only (JSON)", "redis-rs GET + serde_json");
        out.push(time_point("value_size", "redis", x, label, labels, &p, format!("{points} points per array")));
        assert_eq!(calls, (ours_m.calls.load(Relaxed), ours_r.calls.load(Relaxed)), "value size: hits only");
    }
    flushall(&mut c);
    out
}

// ---------------------------------------------------------------------------------------------
// Concurrency
// ---------------------------------------------------------------------------------------------

fn concurrency(cfg: &Cfg, rtm: &Runtime, url: &str) -> Vec<CurvePoint> {
    let mut c = probe::connect(url);
    flushall(&mut c);
    let keys: Arc<Vec<String>> = Arc::new((0..HOT).map(|i| format!("coin-{i:02}")).collect());
    let ours_m = Arc::new(Ours::new(Cache::builder().namespace("cc").memory_capacity(1_024).build().unwrap()));
    let ours_r =
        Arc::new(Ours::new(Cache::builder().namespace("ccr").redis(url.to_owned()).local_tier(false).build().unwrap()));
    let moka: moka::sync::Cache<String, Coin> = moka::sync::Cache::builder().max_capacity(1_024).build();
    let moka_keys: Arc<Vec<String>> = Arc::new(keys.iter().map(|k| format!("cc:coingecko:coin:{k}")).collect());
    let raw_keys: Arc<Vec<String>> = Arc::new(keys.iter().map(|k| format!("raw:cc:{k}")).collect());
    let jsons: Vec<Vec<u8>> = keys.iter().map(|k| serde_json::to_vec(&make_coin(k)).unwrap()).collect();
    pipelined_set(&mut c, raw_keys.iter().cloned().zip(jsons.iter().map(|j| j.as_slice())), false);
    for (k, mk) in keys.iter().zip(moka_keys.iter()) {
        moka.insert(mk.clone(), make_coin(k));
    }
    let client = redis::Client::open(url).unwrap();
    let cm = rtm.block_on(redis::aio::ConnectionManager::new(client)).unwrap();
    rtm.block_on(async {
        for k in keys.iter() {
            ours_m.coin(k).await.unwrap();
            ours_r.coin(k).await.unwrap();
        }
    });
    let calls = (ours_m.calls.load(Relaxed), ours_r.calls.load(Relaxed));
    let mut out = Vec::new();
    for &tasks in &cfg.tasks {
        let per_task = (cfg.calls_per_round / tasks).max(1);
        let total = (per_task * tasks) as f64;
        let (svc_m, svc_r, mk, cm) = (&ours_m, &ours_r, &moka, &cm);
        let ours_mem = || {
            round_n(tasks, &keys, move |keys, t| {
                let svc = svc_m.clone();
                async move {
                    for j in 0..per_task {
                        black_box(svc.coin(&keys[(t + j) % HOT]).await.unwrap());
                    }
                }
            })
        };
        let moka_round = || {
            round_n(tasks, &moka_keys, move |keys, t| {
                let m = mk.clone();
                async move {
                    for j in 0..per_task {
                        black_box(m.get(&keys[(t + j) % HOT]).unwrap());
                    }
                }
            })
        };
        let ours_redis = || {
            round_n(tasks, &keys, move |keys, t| {
                let svc = svc_r.clone();
                async move {
                    for j in 0..per_task {
                        black_box(svc.coin(&keys[(t + j) % HOT]).await.unwrap());
                    }
                }
            })
        };
        let raw_round = || {
            round_n(tasks, &raw_keys, move |keys, t| {
                let mut m = cm.clone();
                async move {
                    for j in 0..per_task {
                        let b: Option<Vec<u8>> = redis::AsyncCommands::get(&mut m, &keys[(t + j) % HOT]).await.unwrap();
                        black_box(serde_json::from_slice::<Coin>(&b.unwrap()).unwrap());
                    }
                }
            })
        };
        let point = |tier: &str, labels: (&str, &str), p: &Paired, note: String| CurvePoint {
            curve: "concurrency".into(),
            tier: tier.into(),
            x: tasks as f64,
            x_label: format!("{tasks} tasks"),
            unit: "ops/s".into(),
            ours_label: labels.0.into(),
            anchor_label: labels.1.into(),
            ours: total / p.ours_ns() * 1e9,
            anchor: total / p.anchor_ns() * 1e9,
            ratio: p.ratio().inverse(),
            rounds: p.rounds(),
            note,
        };
        let p = paired(rtm, cfg.rounds, cfg.block, &ours_mem, &moka_round);
        out.push(point(
            "memory",
            ("#[cached] memory", "moka get + clone"),
            &p,
            format!("{per_task} calls per task; {HOT} hot keys"),
        ));
        let p = paired(rtm, cfg.rounds, cfg.block, &ours_redis, &raw_round);
        let ours_pc = count_commands(rtm, &mut c, 1, total as u64, &ours_redis);
        let raw_pc = count_commands(rtm, &mut c, 1, total as u64, &raw_round);
        out.push(point(
            "redis",
            ("#[cached] Redis-only (JSON)", "redis-rs GET + serde_json"),
            &p,
            format!(
                "{per_task} calls per task; {HOT} hot keys; GETs/call ours {:.3} raw {:.3}; other commands/call ours {:.3}",
                ours_pc.gets, raw_pc.gets, ours_pc.others
            ),
        ));
    }
    assert_eq!(calls, (ours_m.calls.load(Relaxed), ours_r.calls.load(Relaxed)), "concurrency: hits only");
    flushall(&mut c);
    out
}

// ---------------------------------------------------------------------------------------------
// Live keys
// ---------------------------------------------------------------------------------------------

fn live_keys(cfg: &Cfg, rt1: &Runtime, rtm: &Runtime, url: &str, checks: &mut Vec<Check>) -> Vec<CurvePoint> {
    let mut c = probe::connect(url);
    flushall(&mut c);
    let max = cfg.live_keys.iter().copied().max().unwrap_or(HOT);
    let hot: Vec<String> = (0..HOT).map(|i| format!("hot-{i:02}")).collect();
    let coin = make_coin("bitcoin");
    let json = serde_json::to_vec(&coin).unwrap();

    // Memory tier: ours (memory only) and a moka of the same capacity. The anchor stores the value
    // behind an `Arc`, as ours does, so that a million fillers (`None`) stay small.
    let ours_m =
        Arc::new(Ours::new(Cache::builder().namespace("lk").memory_capacity(max as u64 + 1_024).build().unwrap()));
    let moka: moka::sync::Cache<String, Option<Arc<Coin>>> =
        moka::sync::Cache::builder().max_capacity(max as u64 + 1_024).build();
    let moka_hot: Vec<String> = hot.iter().map(|h| format!("lk:coingecko:coin:{h}")).collect();
    for k in &moka_hot {
        moka.insert(k.clone(), Some(Arc::new(coin.clone())));
    }
    // Redis: ours Redis-only and raw keys holding the same JSON.
    let ours_r = Ours::new(Cache::builder().namespace("lkr").redis(url.to_owned()).local_tier(false).build().unwrap());
    let raw_hot: Vec<String> = hot.iter().map(|h| format!("raw:lk:{h}")).collect();
    pipelined_set(&mut c, raw_hot.iter().cloned().zip(std::iter::repeat(json.as_slice())), false);
    let cm = rt1.block_on(redis::aio::ConnectionManager::new(redis::Client::open(url).unwrap())).unwrap();
    rt1.block_on(async {
        for h in &hot {
            ours_m.coin(h).await.unwrap();
            ours_r.coin(h).await.unwrap();
        }
    });
    let filler = [b'x'; 16];
    let (mut mem_filled, mut redis_filled) = (0usize, 0usize);
    let mut out = Vec::new();
    for &n in &cfg.live_keys {
        // Memory: the hot keys and `want` fillers; Redis: ours' and the raw hot keys and fillers.
        let (want, redis_want) = (n.saturating_sub(HOT), n.saturating_sub(2 * HOT));
        // Fill ours through misses of `fill(i)` (2 tasks), then moka to the same count.
        let deadline = Instant::now() + cfg.fill_deadline;
        let next = Arc::new(AtomicUsize::new(mem_filled));
        rtm.block_on(async {
            let mut hs = Vec::new();
            for _ in 0..2 {
                let (svc, next) = (ours_m.clone(), next.clone());
                hs.push(tokio::spawn(async move {
                    while Instant::now() < deadline {
                        let i = next.fetch_add(1, Relaxed);
                        if i >= want {
                            break;
                        }
                        svc.fill(i as u64).await.unwrap();
                    }
                }));
            }
            for h in hs {
                h.await.unwrap();
            }
        });
        let filled_to = next.load(Relaxed).min(want);
        for i in mem_filled..filled_to {
            moka.insert(format!("lk:fill:{i}"), None);
        }
        mem_filled = filled_to;
        // Redis: pipelined SETs of 16-byte values, bounded by the same deadline.
        let deadline = Instant::now() + cfg.fill_deadline;
        while redis_filled < redis_want && Instant::now() < deadline {
            let to = (redis_filled + 10_000).min(redis_want);
            pipelined_set(&mut c, (redis_filled..to).map(|i| (format!("fill:{i}"), filler.as_slice())), false);
            redis_filled = to;
        }
        // The fillers are live: sampled `fill(i)` calls are hits, sampled moka keys are there.
        let before = ours_m.calls.load(Relaxed);
        let samples: Vec<usize> = (0..16).map(|s| s * mem_filled / 16).filter(|&i| i < mem_filled).collect();
        rt1.block_on(async {
            for &i in &samples {
                ours_m.fill(i as u64).await.unwrap();
            }
        });
        let live =
            ours_m.calls.load(Relaxed) == before && samples.iter().all(|i| moka.contains_key(&format!("lk:fill:{i}")));
        check(
            checks,
            live,
            format!(
                "live keys: {} sampled fillers of {} are hits in ours and present in moka",
                samples.len(),
                mem_filled
            ),
        );
        let mem_live = HOT + mem_filled;
        let redis_live = probe::dbsize(&mut c) as usize;
        let short = |live: usize, n: usize| {
            if live < n {
                format!("; fill stopped at the deadline ({live} of {n})")
            } else {
                String::new()
            }
        };

        let calls = (ours_m.calls.load(Relaxed), ours_r.calls.load(Relaxed));
        let (i, j) = (Cell::new(0usize), Cell::new(0usize));
        let (i, j, hot, moka_hot, raw_hot) = (&i, &j, &hot, &moka_hot, &raw_hot);
        let m = &*ours_m;
        let ours = move || {
            let k = i.get();
            i.set(k + 1);
            let f = m.coin(&hot[k % HOT]);
            async move { f.await.expect("live keys: ours (memory) returned Err") }
        };
        let anchor = || {
            let k = j.get();
            j.set(k + 1);
            let v: Option<Arc<Coin>> = moka.get(&moka_hot[k % HOT]).unwrap();
            std::future::ready(Coin::clone(&v.unwrap()))
        };
        let p = paired(rt1, cfg.rounds, cfg.block, &ours, &anchor);
        out.push(time_point(
            "live_keys",
            "memory",
            mem_live as f64,
            format!("{mem_live} keys"),
            ("#[cached] memory", "moka get + clone"),
            &p,
            format!("{HOT} hot keys hold the value; the rest 8-byte fillers{}", short(mem_live, n)),
        ));

        let r = &ours_r;
        let ours = move || {
            let k = i.get();
            i.set(k + 1);
            let f = r.coin(&hot[k % HOT]);
            async move { f.await.expect("live keys: ours (Redis) returned Err") }
        };
        let anchor = || {
            let k = j.get();
            j.set(k + 1);
            let (mut cm, key) = (cm.clone(), raw_hot[k % HOT].as_str());
            async move {
                let b: Option<Vec<u8>> = redis::AsyncCommands::get(&mut cm, key).await.unwrap();
                serde_json::from_slice::<Coin>(&b.unwrap()).unwrap()
            }
        };
        let p = paired(rt1, cfg.rounds, cfg.block, &ours, &anchor);
        out.push(time_point(
            "live_keys",
            "redis",
            redis_live as f64,
            format!("{redis_live} keys"),
            ("#[cached] Redis-only (JSON)", "redis-rs GET + serde_json"),
            &p,
            format!(
                "{} hot keys (ours and raw) hold the value; the rest 16-byte fillers{}",
                2 * HOT,
                short(redis_live, n)
            ),
        ));
        assert_eq!(calls, (ours_m.calls.load(Relaxed), ours_r.calls.load(Relaxed)), "live keys: hits only");
    }
    drop(moka);
    flushall(&mut c);
    out
}
