//! Batched reads: a 50-item batch hit against one hand-written redis-rs `MGET` of the same 50
//! keys + decode with the same codec, and against 50 sequential single-item hits. Redis-only
//! caches (no memory tier), so every hit reads Redis.
//!
//! Full run: `cargo bench -p syntra-bench --bench batch` (about 20 s). Under
//! `cargo test --all-targets` (test mode) every row runs a few rounds with assertions on counts,
//! not on times.
//!
//! Rows are paired: each round times a block of the batch call and a block of its anchor back to
//! back, so both see the same machine; ratios are reported with their p25–p75 spread.

use std::collections::HashMap;
use std::time::Duration;
use syntra_bench::stats::{paired, Verdict};
use syntra_bench::{bench_flag, fmt_ns, list_mode, make_coin, quick_mode, test_mode, Coin, RedisServer};
use syntra_cache::codec;
use syntra_cache::engine::{Batch, Hooks, Policy};
use syntra_cache::Cache;

const ITEMS: usize = 50;

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
    let policy = Policy::new(Duration::from_secs(3600));
    let ids: Vec<String> = (0..ITEMS).map(|i| format!("coin{i}")).collect();
    let key = |id: &String| format!("coingecko:coin:{id}");
    let load = |ids: Vec<String>| async move {
        Ok::<_, String>(ids.iter().map(|id| (id.clone(), make_coin(id))).collect::<HashMap<_, _>>())
    };
    let hooks: Hooks<Result<HashMap<String, Coin>, String>> = Hooks::new();

    // Warm: one batch call writes every item.
    let warm = rt.block_on(cache.get_or_compute_many(&ids, key, &policy, &hooks, Batch::default(), load)).unwrap();
    assert_eq!(warm.len(), ITEMS);
    let fingerprint = codec::fingerprint::<Coin>(0);
    let full_keys: Vec<String> = ids.iter().map(|id| cache.full_key(&key(id))).collect();
    let client = redis::Client::open(url.as_str()).unwrap();
    let raw = rt.block_on(redis::aio::ConnectionManager::new(client)).unwrap();

    let batch_hit = || async {
        let got = cache.get_or_compute_many(&ids, key, &policy, &hooks, Batch::default(), load).await.unwrap();
        assert_eq!(got.len(), ITEMS);
    };
    let raw_mget = || {
        let mut c = raw.clone();
        let (keys, fp) = (&full_keys, &fingerprint);
        async move {
            let values: Vec<Option<Vec<u8>>> = redis::cmd("MGET").arg(keys).query_async(&mut c).await.unwrap();
            let decoded: Vec<Coin> =
                values.iter().map(|v| codec::decode::<Coin>(v.as_deref().unwrap(), fp).unwrap().1.unwrap()).collect();
            assert_eq!(decoded.len(), ITEMS);
        }
    };
    let sequential = || async {
        for id in &ids {
            let got: Result<Coin, String> =
                cache.get_or_compute(&key(id), &policy, &Hooks::new(), async { Err("a miss".into()) }).await;
            assert!(got.is_ok());
        }
    };

    // Counts first (every mode): one MGET per batch hit, nothing else.
    let before = commandstats(&server);
    rt.block_on(batch_hit());
    let after = commandstats(&server);
    let delta = |c: &str| after.get(c).copied().unwrap_or(0) - before.get(c).copied().unwrap_or(0);
    // One round trip: an MGET, or (reads capped at the value size bound, the default) one
    // pipeline of GETRANGEs.
    let reads = (delta("mget"), delta("getrange"), delta("get"), delta("set"));
    assert!(reads == (1, 0, 0, 0) || reads == (0, ITEMS as u64, 0, 0), "a 50-item batch hit is one read: {reads:?}");

    let vs_raw = paired(&rt, rounds, block, &batch_hit, &raw_mget);
    let vs_seq = paired(&rt, rounds, block, &batch_hit, &sequential);
    let r1 = vs_raw.ratio();
    let r2 = vs_seq.ratio();
    println!("batch rows ({rounds} paired rounds of {block:?} blocks, Redis-only, {ITEMS} items, JSON):");
    println!(
        "  9a  50-item batch hit {} vs raw MGET + decode {}: {} (target <= 1.20x: {})",
        fmt_ns(vs_raw.ours_ns()),
        fmt_ns(vs_raw.anchor_ns()),
        r1.fmt_ratio(),
        Verdict::at_most(&r1, 1.2).as_str()
    );
    println!(
        "  9b  50-item batch hit {} vs 50 sequential single hits {}: {} (target <= 0.05x: {})",
        fmt_ns(vs_seq.ours_ns()),
        fmt_ns(vs_seq.anchor_ns()),
        r2.fmt_ratio(),
        Verdict::at_most(&r2, 0.05).as_str()
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
