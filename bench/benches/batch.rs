//! Batched reads: a 50-item batch hit against one hand-written redis-rs `MGET` of the same 50
//! keys + decode with the same codec, and against 50 sequential single-item hits. Redis-only
//! caches (no memory tier), so every hit reads Redis.
//!
//! Two value sizes, same rows: rows 9a/9b with a large value (`Coin`, a CoinGecko `/coins/{id}`
//! response, ~1.5 KB of JSON: decoding dominates), rows 9c/9d with a small one (`Price`, one
//! CoinGecko `/simple/price` entry, ~150 B: round trips dominate). Each group prints the size of
//! one value as stored in Redis (the envelope, after compression if any).
//!
//! Full run: `cargo bench -p syntra-bench --bench batch` (about 40 s). Under
//! `cargo test --all-targets` (test mode) every row runs a few rounds with assertions on counts,
//! not on times.
//!
//! Rows are paired: each round times a block of the batch call and a block of its anchor back to
//! back, so both see the same machine; ratios are reported with their p25–p75 spread.

use redis::aio::ConnectionManager;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::time::Duration;
use syntra_bench::stats::{paired, Verdict};
use syntra_bench::{bench_flag, fmt_ns, list_mode, make_coin, quick_mode, test_mode, RedisServer};
use syntra_cache::codec;
use syntra_cache::engine::{Batch, Hooks, Policy};
use syntra_cache::Cache;
use tokio::runtime::Runtime;

const ITEMS: usize = 50;

/// One entry of a CoinGecko `/simple/price?ids=…&vs_currencies=usd&include_market_cap=true&…`
/// response, flattened: the small value of rows 9c/9d.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Price {
    id: String,
    vs: String,
    price: f64,
    market_cap: Option<f64>,
    volume_24h: Option<f64>,
    change_24h: Option<f64>,
    last_updated_at: Option<i64>,
}

fn make_price(id: &str) -> Price {
    Price {
        id: id.to_owned(),
        vs: "usd".to_owned(),
        price: 97_123.45,
        market_cap: Some(1_923_456_789_012.345),
        volume_24h: Some(38_765_432_109.876),
        change_24h: Some(1.063_182_5),
        last_updated_at: Some(1_764_160_496),
    }
}

/// One value size: its two rows.
struct Group<V> {
    /// Row ids: against the raw MGET, against the sequential hits.
    rows: [&'static str; 2],
    /// The value's name in the header (and in the row lines when `tagged`).
    name: &'static str,
    /// Whether the row lines name the value (the coin rows keep their historical lines, so
    /// BENCHMARKS.md stays comparable).
    tagged: bool,
    /// Key prefix (`service:method`): distinct per group, so the keys never collide.
    prefix: &'static str,
    make: fn(&str) -> V,
}

/// What every group shares: the runtime, the server, the cache under test and the raw client.
struct Env<'a> {
    rt: &'a Runtime,
    server: &'a RedisServer,
    cache: &'a Cache,
    raw: &'a ConnectionManager,
    rounds: usize,
    block: Duration,
}

fn main() {
    if list_mode() && !bench_flag() {
        return;
    }
    let (rounds, block) = match (test_mode(), quick_mode()) {
        (true, _) => (3, Duration::from_millis(1)),
        (false, true) => (5, Duration::from_millis(5)),
        (false, false) => (41, Duration::from_millis(25)),
    };
    let server = RedisServer::start();
    let url = server.url();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let cache = Cache::builder().namespace("bb").redis(url.clone()).local_tier(false).build().unwrap();
    let client = redis::Client::open(url.as_str()).unwrap();
    let raw = rt.block_on(ConnectionManager::new(client)).unwrap();
    let env = Env { rt: &rt, server: &server, cache: &cache, raw: &raw, rounds, block };

    rows(
        &env,
        Group { rows: ["9a", "9b"], name: "coin", tagged: false, prefix: "coingecko:coin", make: make_coin },
        true,
    );
    rows(
        &env,
        Group { rows: ["9c", "9d"], name: "price", tagged: true, prefix: "coingecko:simple_price", make: make_price },
        false,
    );
}

/// Rows of one value size: warm 50 keys, check that a batch hit is one read round trip, then
/// time the batch hit against the raw MGET + decode and against 50 sequential single hits.
/// `first`: print the run's header line too.
fn rows<V>(env: &Env<'_>, group: Group<V>, first: bool)
where
    V: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
{
    let Env { rt, server, cache, raw, rounds, block } = *env;
    let Group { rows: [row_raw, row_seq], name, tagged, prefix, make } = group;
    let policy = Policy::new(Duration::from_secs(3600));
    let ids: Vec<String> = (0..ITEMS).map(|i| format!("coin{i}")).collect();
    let key = |id: &String| format!("{prefix}:{id}");
    let load = |ids: Vec<String>| async move {
        Ok::<_, String>(ids.iter().map(|id| (id.clone(), make(id))).collect::<HashMap<_, _>>())
    };
    let hooks: Hooks<Result<HashMap<String, V>, String>> = Hooks::new();

    // Warm: one batch call writes every item.
    let warm = rt.block_on(cache.get_or_compute_many(&ids, key, &policy, &hooks, Batch::default(), load)).unwrap();
    assert_eq!(warm.len(), ITEMS);
    let fingerprint = codec::fingerprint::<V>(0);
    let full_keys: Vec<String> = ids.iter().map(|id| cache.full_key(&key(id))).collect();

    // One value as stored: the envelope's bytes in Redis (compressed when over the threshold),
    // and the value's own JSON for comparison.
    let stored: Vec<u8> = rt
        .block_on(async {
            let mut c = raw.clone();
            redis::cmd("GET").arg(&full_keys[0]).query_async::<Option<Vec<u8>>>(&mut c).await
        })
        .unwrap()
        .expect("the warm batch wrote every key");
    let compressed = stored.first() != Some(&b'{');
    let plain = serde_json::to_vec(&make(&ids[0])).unwrap().len();
    assert!(codec::decode::<V>(&stored, &fingerprint).unwrap().1.is_some());

    let batch_hit = || async {
        let got = cache.get_or_compute_many(&ids, key, &policy, &hooks, Batch::default(), load).await.unwrap();
        assert_eq!(got.len(), ITEMS);
    };
    let raw_mget = || {
        let mut c = raw.clone();
        let (keys, fp) = (&full_keys, &fingerprint);
        async move {
            let values: Vec<Option<Vec<u8>>> = redis::cmd("MGET").arg(keys).query_async(&mut c).await.unwrap();
            let decoded: Vec<V> =
                values.iter().map(|v| codec::decode::<V>(v.as_deref().unwrap(), fp).unwrap().1.unwrap()).collect();
            assert_eq!(decoded.len(), ITEMS);
        }
    };
    // What the cache's capped read costs by itself: the same 50 values read as it reads them
    // (one pipeline of `GETRANGE key 0 cap`), decoded the same way.
    let cap = syntra_cache::store::tiered::DEFAULT_MAX_VALUE_BYTES;
    let raw_capped = || {
        let mut c = raw.clone();
        let (keys, fp) = (&full_keys, &fingerprint);
        async move {
            let mut pipe = redis::pipe();
            for key in keys {
                pipe.cmd("GETRANGE").arg(key).arg(0).arg(cap);
            }
            let values: Vec<Vec<u8>> = pipe.query_async(&mut c).await.unwrap();
            let decoded: Vec<V> = values.iter().map(|v| codec::decode::<V>(v, fp).unwrap().1.unwrap()).collect();
            assert_eq!(decoded.len(), ITEMS);
        }
    };
    let sequential = || async {
        for id in &ids {
            let got: Result<V, String> =
                cache.get_or_compute(&key(id), &policy, &Hooks::new(), async { Err("a miss".into()) }).await;
            assert!(got.is_ok());
        }
    };

    // Counts first (every mode): one MGET per batch hit, nothing else.
    let before = commandstats(server);
    rt.block_on(batch_hit());
    let after = commandstats(server);
    let delta = |c: &str| after.get(c).copied().unwrap_or(0) - before.get(c).copied().unwrap_or(0);
    // One round trip: an MGET, or (reads capped at the value size bound, the default) one
    // pipeline of GETRANGEs.
    let reads = (delta("mget"), delta("getrange"), delta("get"), delta("set"));
    assert!(
        reads == (1, 0, 0, 0) || reads == (0, ITEMS as u64, 0, 0),
        "a 50-item batch hit ({name}) is one read: {reads:?}"
    );

    let vs_raw = paired(rt, rounds, block, &batch_hit, &raw_mget);
    let vs_seq = paired(rt, rounds, block, &batch_hit, &sequential);
    let capped_vs_mget = paired(rt, rounds, block, &raw_capped, &raw_mget);
    let r1 = vs_raw.ratio();
    let r2 = vs_seq.ratio();
    if first {
        println!("batch rows ({rounds} paired rounds of {block:?} blocks, Redis-only, {ITEMS} items, JSON):");
    }
    println!(
        "  {name} values: one value {} B as stored ({}; the value's JSON alone {plain} B)",
        stored.len(),
        if compressed { "compressed envelope" } else { "JSON envelope" },
    );
    let (tag_raw, tag_seq) =
        if tagged { (format!(" ({name}, ~{} B)", stored.len()), format!(" ({name})")) } else { Default::default() };
    println!(
        "  {row_raw}  50-item batch hit{tag_raw} {} vs raw MGET + decode {}: {} (target <= 1.20x: {})",
        fmt_ns(vs_raw.ours_ns()),
        fmt_ns(vs_raw.anchor_ns()),
        r1.fmt_ratio(),
        Verdict::at_most(&r1, 1.2).as_str()
    );
    println!(
        "  {row_seq}  50-item batch hit{tag_seq} {} vs 50 sequential single hits {}: {} (target <= 0.05x: {})",
        fmt_ns(vs_seq.ours_ns()),
        fmt_ns(vs_seq.anchor_ns()),
        r2.fmt_ratio(),
        Verdict::at_most(&r2, 0.05).as_str()
    );
    let r3 = capped_vs_mget.ratio();
    println!(
        "      of which the capped read: raw GETRANGE pipeline + decode {} vs raw MGET + decode {}: {}",
        fmt_ns(capped_vs_mget.ours_ns()),
        fmt_ns(capped_vs_mget.anchor_ns()),
        r3.fmt_ratio()
    );
    println!(
        "  Redis commands per batch hit (one round trip): MGET {} GETRANGE {} GET {} SET {}",
        delta("mget"),
        delta("getrange"),
        delta("get"),
        delta("set")
    );
}

fn commandstats(server: &RedisServer) -> HashMap<String, u64> {
    let mut c = redis::Client::open(server.url().as_str()).unwrap().get_connection().unwrap();
    let info: String = redis::cmd("INFO").arg("commandstats").query(&mut c).unwrap();
    syntra_bench::probe::parse_commandstats(&info)
}
