//! Batched loading with per-item caching ([`Cache::get_or_compute_many`]), against real
//! redis-server processes: one `MGET` for a batch's hits, one upstream call per chunk of
//! misses, items shared with single-item reads, overlapping batches fetching a shared item once,
//! stale-if-error per item, budgets per upstream call, and cancellation mid-load.

mod common;

use common::{redis_cache, redis_only, RedisExt, RedisServer};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Mutex;
use std::time::Duration;
use syntra_cache::budget::{Budget, Budgets, Denied};
use syntra_cache::engine::{Batch, Hooks, Policy};
use syntra_cache::Cache;

type Prices = HashMap<String, f64>;

/// A fake upstream: answers every id it is asked for (but `missing-*`), counts calls and asks.
#[derive(Default)]
struct Upstream {
    calls: AtomicUsize,
    asked: Mutex<Vec<String>>,
    fail: std::sync::atomic::AtomicBool,
    delay_ms: AtomicUsize,
}

impl Upstream {
    async fn load(&self, ids: Vec<String>) -> Result<Prices, String> {
        self.calls.fetch_add(1, SeqCst);
        self.asked.lock().unwrap().extend(ids.iter().cloned());
        let delay = self.delay_ms.load(SeqCst);
        if delay > 0 {
            tokio::time::sleep(Duration::from_millis(delay as u64)).await;
        }
        if self.fail.load(SeqCst) {
            return Err("upstream down".into());
        }
        Ok(ids.into_iter().filter(|id| !id.starts_with("missing")).map(|id| (id.clone(), price(&id))).collect())
    }
    fn asked_sorted(&self) -> Vec<String> {
        let mut v = self.asked.lock().unwrap().clone();
        v.sort();
        v
    }
}

fn price(id: &str) -> f64 {
    id.bytes().map(f64::from).sum::<f64>() + 0.5
}

fn key(id: &String) -> String {
    format!("coingecko:price:{id}_usd")
}

fn ids(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}{i}")).collect()
}

async fn prices(
    cache: &Cache,
    up: &Upstream,
    items: &[String],
    policy: &Policy,
    batch: Batch,
) -> Result<Prices, String> {
    cache.get_or_compute_many(items, key, policy, &Hooks::new(), batch, |ids| up.load(ids)).await
}

fn commandstats(server: &RedisServer) -> HashMap<String, u64> {
    let info: String = server.cmd(&["INFO", "commandstats"]);
    info.lines()
        .filter_map(|l| l.strip_prefix("cmdstat_"))
        .filter_map(|l| {
            let (name, rest) = l.split_once(':')?;
            let calls = rest.split(',').find_map(|kv| kv.strip_prefix("calls="))?;
            Some((name.to_owned(), calls.parse().ok()?))
        })
        .collect()
}

fn assert_prices(got: &Prices, items: &[String]) {
    assert_eq!(got.len(), items.len(), "{got:?}");
    for id in items {
        assert_eq!(got.get(id), Some(&price(id)), "{id}");
    }
}

#[tokio::test]
async fn a_cold_batch_is_one_upstream_call_and_a_warm_one_is_one_mget() {
    let server = RedisServer::start();
    let writer = redis_cache(&server, "b1");
    let up = Upstream::default();
    let items = ids("coin", 50);
    let policy = Policy::new(Duration::from_secs(60));
    let got = prices(&writer, &up, &items, &policy, Batch::new(250)).await.unwrap();
    assert_prices(&got, &items);
    assert_eq!(up.calls.load(SeqCst), 1, "50 misses, one upstream call");
    assert_eq!(up.asked_sorted().len(), 50);
    // Cached per item, under the single-item key.
    let one: Result<f64, String> = writer
        .get_or_compute("coingecko:price:coin7_usd", &policy, &Hooks::new(), async { Err("not cached".into()) })
        .await;
    assert_eq!(one, Ok(price("coin7")));
    assert!(server.get_bytes("b1:coingecko:price:coin42_usd").is_some());

    // Another instance without a memory tier: every hit from Redis, in one MGET.
    let reader = redis_only(&server, "b1");
    // The reader's first call reads the namespace's key generation: not part of the batch.
    reader.get_or_compute("warm:up", &policy, &Hooks::new(), async { Ok::<_, String>(1.0) }).await.unwrap();
    let before = commandstats(&server);
    let got = prices(&reader, &up, &items, &policy, Batch::new(250)).await.unwrap();
    let after = commandstats(&server);
    assert_prices(&got, &items);
    assert_eq!(up.calls.load(SeqCst), 1, "all hits");
    let delta = |c: &str| after.get(c).copied().unwrap_or(0) - before.get(c).copied().unwrap_or(0);
    // One round trip: an MGET, or (the default: reads capped at the value size bound, so a planted
    // huge value is never read whole) one pipeline of GETRANGEs. Never a GET per item.
    let reads = (delta("mget"), delta("getrange"), delta("get"));
    assert!(reads == (1, 0, 0) || reads == (0, 50, 0), "{reads:?} {after:?}");
    assert_eq!(reader.stats().get("coingecko", "price").unwrap().hits, 50);
}

#[tokio::test]
async fn only_missing_items_are_loaded_in_chunks_of_max_batch() {
    let server = RedisServer::start();
    let cache = redis_cache(&server, "b2");
    let up = Upstream::default();
    let policy = Policy::new(Duration::from_secs(60));
    let warm = ids("coin", 10);
    prices(&cache, &up, &warm, &policy, Batch::default()).await.unwrap();
    let mut items = ids("coin", 230); // 10 cached, 220 to load
    items.extend(warm.iter().cloned()); // duplicates are asked once
    let got = prices(&cache, &up, &items, &policy, Batch::new(100)).await.unwrap();
    assert_prices(&got, &ids("coin", 230));
    assert_eq!(up.calls.load(SeqCst), 1 + 3, "220 missing items in chunks of 100");
    assert_eq!(up.asked_sorted().len(), 230, "no item asked twice");
    let s = cache.stats().get("coingecko", "price").unwrap().clone();
    assert_eq!((s.upstream_calls, s.hits, s.misses), (4, 10, 230));
}

#[tokio::test]
async fn items_the_upstream_does_not_return_are_left_out_and_cached_only_with_a_none_ttl() {
    let server = RedisServer::start();
    let cache = redis_cache(&server, "b3");
    let up = Upstream::default();
    let items = vec!["bitcoin".to_string(), "missing-a".to_string()];
    let plain = Policy::new(Duration::from_secs(60));
    for round in 1..=2 {
        let got = prices(&cache, &up, &items, &plain, Batch::default()).await.unwrap();
        assert_eq!(got.keys().collect::<Vec<_>>(), vec!["bitcoin"]);
        assert_eq!(up.calls.load(SeqCst), round, "the absent item is asked again");
    }
    assert!(server.get_bytes("b3:coingecko:price:missing-a_usd").is_none());
    let negative = Policy::new(Duration::from_secs(60)).none_ttl(Duration::from_secs(30));
    prices(&cache, &up, &items, &negative, Batch::default()).await.unwrap();
    let calls = up.calls.load(SeqCst);
    let got = prices(&cache, &up, &items, &negative, Batch::default()).await.unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(up.calls.load(SeqCst), calls, "the absent item is a cached negative");
    assert!(server.get_bytes("b3:coingecko:price:missing-a_usd").is_some());
}

#[tokio::test]
async fn overlapping_concurrent_batches_fetch_a_shared_item_once() {
    let server = RedisServer::start();
    let cache = redis_cache(&server, "b4");
    let up = Upstream::default();
    up.delay_ms.store(150, SeqCst);
    let policy = Policy::new(Duration::from_secs(60));
    let a = ids("coin", 20); // coin0..coin19
    let b: Vec<String> = (10..30).map(|i| format!("coin{i}")).collect(); // coin10..coin29
    let (ra, rb) = tokio::join!(prices(&cache, &up, &a, &policy, Batch::default()), async {
        tokio::time::sleep(Duration::from_millis(30)).await;
        prices(&cache, &up, &b, &policy, Batch::default()).await
    });
    assert_prices(&ra.unwrap(), &a);
    assert_prices(&rb.unwrap(), &b);
    assert_eq!(
        up.asked_sorted(),
        {
            let mut all = ids("coin", 30);
            all.sort();
            all
        },
        "every item asked exactly once"
    );
    assert_eq!(up.calls.load(SeqCst), 2, "the second batch loads only its own 10 items");
}

#[tokio::test]
async fn a_failed_load_serves_stale_items_and_returns_the_error_for_the_rest() {
    let server = RedisServer::start();
    let cache = redis_cache(&server, "b5");
    let up = Upstream::default();
    let policy = Policy::new(Duration::from_millis(300)).stale(Duration::from_secs(60));
    let old = ids("coin", 3);
    prices(&cache, &up, &old, &policy, Batch::default()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await; // expired, within the stale window
    up.fail.store(true, SeqCst);
    let got = prices(&cache, &up, &old, &policy, Batch::default()).await.unwrap();
    assert_prices(&got, &old);
    assert_eq!(cache.stats().get("coingecko", "price").unwrap().stale, 3);
    let mut mixed = old.clone();
    mixed.push("new-coin".into());
    let err = prices(&cache, &up, &mixed, &policy, Batch::default()).await.unwrap_err();
    assert_eq!(err, "upstream down");
    // Recovered: every item fresh again, the failed ones were never cached.
    up.fail.store(false, SeqCst);
    assert_prices(&prices(&cache, &up, &mixed, &policy, Batch::default()).await.unwrap(), &mixed);
}

#[tokio::test]
async fn a_budget_permit_per_upstream_call_and_a_denial_serves_what_is_kept() {
    let server = RedisServer::start();
    let budget = Budget::new("coingecko").quota_day(2).max_ttl_stretch(1.0).max_wait(Duration::ZERO);
    let budgets = Budgets::new(vec![budget]).unwrap();
    let cache = Cache::builder()
        .namespace("b6")
        .redis(server.url())
        .op_timeout(Duration::from_millis(200))
        .budgets(budgets)
        .build()
        .unwrap();
    let up = Upstream::default();
    let policy = Policy::new(Duration::from_millis(1_000));
    let hooks: Hooks<Result<Prices, String>> =
        Hooks::new().budget("coingecko", 1, |d: Denied| Err(format!("denied: {d}")));
    let load = |ids| up.load(ids);
    let items = ids("coin", 120);
    let got = cache.get_or_compute_many(&items, key, &policy, &hooks, Batch::new(100), load).await.unwrap();
    assert_prices(&got, &items);
    assert_eq!(up.calls.load(SeqCst), 2, "two chunks, two permits: the day's quota is spent");
    tokio::time::sleep(Duration::from_millis(1_100)).await; // expired, kept for one more TTL
    let got = cache.get_or_compute_many(&items, key, &policy, &hooks, Batch::new(100), load).await.unwrap();
    assert_prices(&got, &items);
    assert_eq!(up.calls.load(SeqCst), 2, "denied: the kept values are served");
    let err = cache.get_or_compute_many(&["fresh-coin".to_string()], key, &policy, &hooks, Batch::new(100), load).await;
    assert!(err.unwrap_err().starts_with("denied"), "nothing kept: the denial");
    assert!(cache.stats().get("coingecko", "price").unwrap().budget_denied >= 2);
}

#[tokio::test]
async fn a_batch_cancelled_mid_load_leaves_nothing_behind() {
    let server = RedisServer::start();
    let cache = redis_cache(&server, "b7");
    let up = Upstream::default();
    up.delay_ms.store(300, SeqCst);
    let policy = Policy::new(Duration::from_secs(60));
    let items = ids("coin", 10);
    // A second batch follows the first one's flights; the first is cancelled mid-load.
    let follower = async {
        tokio::time::sleep(Duration::from_millis(50)).await;
        prices(&cache, &up, &items, &policy, Batch::default()).await
    };
    let leader =
        tokio::time::timeout(Duration::from_millis(100), prices(&cache, &up, &items, &policy, Batch::default()));
    let (lead, follow) = tokio::join!(leader, follower);
    assert!(lead.is_err(), "the leader was cancelled");
    assert_prices(&follow.unwrap(), &items);
    assert_eq!(up.calls.load(SeqCst), 2, "the follower took over with one call for all ten");
    // No lock left behind: a cold key loads at once.
    assert!(common::scan_keys(&server.client(), "b7::lock:*").is_empty());
    let start = std::time::Instant::now();
    up.delay_ms.store(0, SeqCst);
    prices(&cache, &up, &ids("other", 5), &policy, Batch::default()).await.unwrap();
    assert!(start.elapsed() < Duration::from_millis(500));
}

#[tokio::test]
async fn redis_down_a_batch_still_answers_from_upstream() {
    let server = RedisServer::start();
    let cache = redis_cache(&server, "b8");
    let up = Upstream::default();
    let policy = Policy::new(Duration::from_secs(60));
    drop(server);
    let items = ids("coin", 30);
    for _ in 0..3 {
        assert_prices(&prices(&cache, &up, &items, &policy, Batch::default()).await.unwrap(), &items);
    }
    assert_eq!(up.calls.load(SeqCst), 1, "the memory tier answers after the first load");
}

// ---- coalescing single-item calls --------------------------------------------------------------

struct PriceService {
    cache: Cache,
    up: Upstream,
    window: syntra_cache::engine::Coalescer<String, f64, String>,
}

impl PriceService {
    #[syntra_cache::cached(ttl = 60, key = "coingecko:price:<id>_usd", cache = self.cache)]
    async fn price(&self, id: &str) -> Result<f64, String> {
        self.window.load(id.to_owned(), |ids| self.up.load(ids)).await?.ok_or_else(|| format!("{id}: not found"))
    }
}

fn price_service(cache: Cache, window_ms: u64) -> PriceService {
    let up = Upstream::default();
    up.delay_ms.store(20, SeqCst);
    let window = syntra_cache::engine::Coalescer::new(Duration::from_millis(window_ms), 250);
    PriceService { cache, up, window }
}

#[tokio::test]
async fn concurrent_single_item_misses_become_a_few_batch_calls_and_stay_cached_per_item() {
    let server = RedisServer::start();
    let svc = price_service(redis_cache(&server, "b9"), 50);
    let items = ids("coin", 100);
    let answers = futures_util::future::join_all(items.iter().map(|id| svc.price(id))).await;
    for (id, got) in items.iter().zip(&answers) {
        assert_eq!(got, &Ok(price(id)), "{id}");
    }
    let calls = svc.up.calls.load(SeqCst);
    // The first miss goes alone; the rest queue behind it (timing decides how many rounds: a
    // loaded machine spreads the arrivals), never one call per item.
    assert!(calls <= 10, "100 concurrent misses: {calls} upstream calls");
    assert_eq!(svc.up.asked_sorted().len(), 100, "every item asked once");
    let s = svc.cache.stats().get("coingecko", "price").unwrap().clone();
    assert_eq!(s.upstream_calls, calls as u64, "riders count no upstream call of their own");
    assert_eq!(s.misses, 100);
    // Each item is cached under the single-item key: the batch function reads them.
    let reader = redis_only(&server, "b9");
    let got = prices(&reader, &svc.up, &items, &Policy::new(Duration::from_secs(60)), Batch::default()).await.unwrap();
    assert_prices(&got, &items);
    assert_eq!(svc.up.calls.load(SeqCst), calls, "all hits");
    // A lone miss does not wait for the window.
    let svc = price_service(redis_cache(&server, "b9-lone"), 2_000);
    let start = std::time::Instant::now();
    assert_eq!(svc.price("bitcoin").await, Ok(price("bitcoin")));
    assert!(start.elapsed() < Duration::from_millis(1_000), "{:?}", start.elapsed());
    assert_eq!(svc.price("missing-coin").await.unwrap_err(), "missing-coin: not found");
}

// Memory tier and paused time: the order of arrivals, loads and cancellations is exact.
#[tokio::test(start_paused = true)]
async fn a_cancelled_sender_hands_its_queue_back() {
    let svc = price_service(Cache::memory(), 5);
    svc.up.delay_ms.store(200, SeqCst);
    // `first` goes at once; the next two queue behind it, and one of them sends both.
    let first = tokio::time::timeout(Duration::from_millis(50), svc.price("coin0"));
    let rest = async {
        tokio::time::sleep(Duration::from_millis(10)).await;
        tokio::join!(biased; svc.price("coin1"), svc.price("coin2"))
    };
    let (first, (a, b)) = tokio::join!(first, rest);
    assert!(first.is_err(), "cancelled");
    assert_eq!((a, b), (Ok(price("coin1")), Ok(price("coin2"))));
    assert_eq!(svc.window.calls(), 2, "coin0 alone, then coin1 and coin2 together");
    // Cancel a sender carrying another caller's item: that caller queues again and sends.
    let svc = price_service(Cache::memory(), 1_000);
    svc.up.delay_ms.store(100, SeqCst);
    let (a, (b, c)) = tokio::join!(svc.price("coin5"), async {
        tokio::time::sleep(Duration::from_millis(10)).await;
        // coin6 is polled first when coin5's load ends: it sends {coin6, coin7}, and is cancelled.
        tokio::join!(biased; tokio::time::timeout(Duration::from_millis(140), svc.price("coin6")), svc.price("coin7"))
    });
    assert_eq!(a, Ok(price("coin5")));
    assert!(b.is_err(), "cancelled mid-load");
    assert_eq!(c, Ok(price("coin7")));
    assert_eq!(svc.window.calls(), 3, "coin5; coin6 + coin7 (cancelled); coin7 again");
    assert_eq!(svc.up.asked_sorted(), vec!["coin5", "coin6", "coin7", "coin7"]);
}

// ---- #[cached(batch = ..)] ---------------------------------------------------------------------

struct Gecko {
    cache: Cache,
    up: Upstream,
}

impl Gecko {
    /// Prices of many coins, one upstream call for the missing ones.
    #[syntra_cache::cached(ttl = 60, key = "coingecko:price:<ids>_<vs>", batch = ids, max_batch = 2, cache = self.cache)]
    async fn prices(&self, ids: &[String], vs: &str) -> Result<Prices, String> {
        assert_eq!(vs, "usd");
        self.up.load(ids.to_vec()).await
    }

    #[syntra_cache::cached(ttl = 60, key = "coingecko:price:<id>_<vs>", cache = self.cache)]
    async fn price(&self, id: &str, vs: String) -> Result<f64, String> {
        let _ = vs;
        self.up.load(vec![id.to_owned()]).await?.remove(id).ok_or_else(|| format!("{id}: not found"))
    }

    #[syntra_cache::cached(ttl = 60, key = "coingecko:owned:<ids>", batch = ids, cache = self.cache)]
    async fn owned(&self, ids: Vec<String>) -> Result<Prices, String> {
        self.up.load(ids).await
    }
}

#[tokio::test]
async fn a_batch_function_shares_entries_with_the_single_item_function() {
    let server = RedisServer::start();
    let svc = Gecko { cache: redis_cache(&server, "b11"), up: Upstream::default() };
    let items = ids("coin", 5);
    let got = svc.prices(&items, "usd").await.unwrap();
    assert_prices(&got, &items);
    assert_eq!(svc.up.calls.load(SeqCst), 3, "5 items in chunks of max_batch = 2");
    // The single-item function reads the batch's entries, and the batch reads the single ones.
    assert_eq!(svc.price("coin3", "usd".into()).await, Ok(price("coin3")));
    assert_eq!(svc.price("solo", "usd".into()).await, Ok(price("solo")));
    assert_eq!(svc.up.calls.load(SeqCst), 4);
    let mut more = items.clone();
    more.push("solo".into());
    assert_prices(&svc.prices(&more, "usd").await.unwrap(), &more);
    assert_eq!(svc.up.calls.load(SeqCst), 4, "all six cached");
    assert!(server.get_bytes("b11:coingecko:price:coin4_usd").is_some());
    // An owned Vec parameter works the same.
    let got = svc.owned(ids("x", 3)).await.unwrap();
    assert_prices(&got, &ids("x", 3));
    svc.owned(ids("x", 3)).await.unwrap();
    assert_eq!(svc.up.calls.load(SeqCst), 5);
    let stats = svc.cache.stats();
    let s = stats.get("coingecko", "price").unwrap();
    assert_eq!(s.upstream_calls, 4, "{s:?}");
}

// ---- refresh in batches ------------------------------------------------------------------------

struct Refreshing {
    cache: Cache,
    up: Upstream,
    window: syntra_cache::engine::Coalescer<String, f64, String>,
}

impl Refreshing {
    #[syntra_cache::cached(ttl = 1, key = "coingecko:price:<id>_usd", cache = self.cache)]
    async fn price(&self, id: &str) -> Result<f64, String> {
        self.window.load(id.to_owned(), |ids| self.up.load(ids)).await?.ok_or_else(|| format!("{id}: not found"))
    }
}

#[tokio::test]
async fn items_loaded_together_are_refreshed_by_one_call_and_expire_together() {
    let server = RedisServer::start();
    let cache = redis_cache(&server, "b12");
    let window = syntra_cache::engine::Coalescer::new(Duration::from_millis(5), 250).companions(10, 1.0);
    let svc = Refreshing { cache, up: Upstream::default(), window };
    let (a, b) = ("coin-a", "coin-b");
    assert_eq!(svc.price(a).await, Ok(price(a)));
    assert_eq!(svc.price(b).await, Ok(price(b)));
    // b's call carried a along (the upstream charges per call, not per item).
    assert_eq!(svc.up.asked_sorted(), vec![a, a, b]);
    assert_eq!(svc.up.calls.load(SeqCst), 2);

    // Both expire; a's miss loads a and b in one call ...
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let loaded = std::time::Instant::now();
    assert_eq!(svc.price(a).await, Ok(price(a)));
    assert_eq!(svc.up.calls.load(SeqCst), 3);
    // ... and b's miss, later, is answered from that call without one of its own.
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(svc.price(b).await, Ok(price(b)));
    assert_eq!(svc.up.calls.load(SeqCst), 3, "b rode along on a's refresh");
    assert_eq!((svc.window.companions_loaded(), svc.window.served_ahead()), (2, 1));
    let s = svc.cache.stats().get("coingecko", "price").unwrap().clone();
    assert_eq!(s.upstream_calls, 3, "{s:?}");
    // b was stored for what was left of its TTL: it expires with a, not 400 ms later (no
    // answer older than the TTL), so the next round is again one call for both.
    let left = server.pttl("b12:coingecko:price:coin-b_usd");
    assert!(left <= 700, "b's entry lives {left} ms more: its TTL was not shortened by its age");
    tokio::time::sleep(Duration::from_millis(1_050).saturating_sub(loaded.elapsed())).await;
    assert_eq!(svc.price(b).await, Ok(price(b)));
    assert_eq!(svc.price(a).await, Ok(price(a)));
    assert_eq!(svc.up.calls.load(SeqCst), 4, "one call refreshed both");
}

/// `/simple/price`-like: one call prices every asked id in every asked currency.
struct CrossProduct {
    cache: Cache,
    calls: AtomicUsize,
    window: syntra_cache::engine::Coalescer<(String, String), f64, String>,
}

fn price_in(id: &str, vs: &str) -> f64 {
    price(id) * price(vs)
}

impl CrossProduct {
    #[syntra_cache::cached(ttl = 60, key = "coingecko:price:<id>_<vs>", cache = self.cache)]
    async fn price(&self, id: &str, vs: &str) -> Result<f64, String> {
        let pair = (id.to_owned(), vs.to_owned());
        self.window.load(pair, |pairs| self.load(pairs)).await?.ok_or_else(|| format!("{id}/{vs}: not found"))
    }

    async fn load(&self, pairs: Vec<(String, String)>) -> Result<HashMap<(String, String), f64>, String> {
        self.calls.fetch_add(1, SeqCst);
        let mut ids: Vec<&String> = pairs.iter().map(|(id, _)| id).collect();
        let mut vss: Vec<&String> = pairs.iter().map(|(_, vs)| vs).collect();
        ids.sort();
        ids.dedup();
        vss.sort();
        vss.dedup();
        let all =
            ids.iter().flat_map(|id| vss.iter().map(move |vs| ((id.to_string(), vs.to_string()), price_in(id, vs))));
        Ok(all.collect())
    }
}

#[tokio::test]
async fn values_a_load_returns_beyond_the_items_asked_answer_later_misses() {
    let server = RedisServer::start();
    let window = syntra_cache::engine::Coalescer::new(Duration::from_millis(5), 250).companions(10, 1.0);
    let svc = CrossProduct { cache: redis_cache(&server, "b14"), calls: AtomicUsize::new(0), window };
    assert_eq!(svc.price("a", "usd").await, Ok(price_in("a", "usd")));
    // (a, usd) rides along; the call answers a and b in usd and eur: four values.
    assert_eq!(svc.price("b", "eur").await, Ok(price_in("b", "eur")));
    assert_eq!(svc.calls.load(SeqCst), 2);
    // The two pairs nobody asked for yet come from that call, each value its own.
    assert_eq!(svc.price("a", "eur").await, Ok(price_in("a", "eur")));
    assert_eq!(svc.price("b", "usd").await, Ok(price_in("b", "usd")));
    assert_eq!(svc.calls.load(SeqCst), 2, "answered ahead, no call of their own");
    assert_eq!(svc.window.served_ahead(), 2);
    let s = svc.cache.stats().get("coingecko", "price").unwrap().clone();
    assert_eq!((s.misses, s.upstream_calls), (4, 2), "{s:?}");
    // Each is cached under its own key with its own value.
    assert_eq!(svc.price("a", "eur").await, Ok(price_in("a", "eur")));
    assert_eq!(svc.calls.load(SeqCst), 2);
    assert!(server.get_bytes("b14:coingecko:price:a_eur").is_some());
    // A pair outside the cross product still costs a call.
    assert_eq!(svc.price("c", "usd").await, Ok(price_in("c", "usd")));
    assert_eq!(svc.calls.load(SeqCst), 3);
}

// ---- fallback sources --------------------------------------------------------------------------

struct WithFallback {
    cache: Cache,
    down: std::sync::atomic::AtomicBool,
    primary: AtomicUsize,
    backup: AtomicUsize,
}

impl WithFallback {
    #[syntra_cache::cached(ttl = 60, key = "coingecko:price:<id>", cache = self.cache, fallback = self.binance_price(id))]
    async fn price(&self, id: &str) -> Result<f64, String> {
        self.primary.fetch_add(1, SeqCst);
        if self.down.load(SeqCst) {
            return Err(format!("{id}: coingecko down"));
        }
        Ok(price(id))
    }

    async fn binance_price(&self, id: &str) -> Result<f64, String> {
        self.backup.fetch_add(1, SeqCst);
        if id.starts_with("unlisted") {
            return Err(format!("{id}: not on binance"));
        }
        Ok(-price(id))
    }
}

#[tokio::test]
async fn a_failed_call_is_answered_by_its_fallback_which_is_counted_and_not_cached() {
    let server = RedisServer::start();
    let svc = WithFallback {
        cache: redis_cache(&server, "b13"),
        down: true.into(),
        primary: AtomicUsize::new(0),
        backup: AtomicUsize::new(0),
    };
    assert_eq!(svc.price("bitcoin").await, Ok(-price("bitcoin")), "the fallback's answer");
    assert_eq!(server.get_bytes("b13:coingecko:price:bitcoin"), None, "not cached under the function's key");
    // Neither source has it: the caller gets the function's own error.
    assert_eq!(svc.price("unlisted-coin").await, Err("unlisted-coin: coingecko down".to_string()));
    let s = svc.cache.stats().get("coingecko", "price").unwrap().clone();
    assert_eq!((s.fallbacks, s.fallback_errors, s.upstream_errors), (1, 1, 2), "{s:?}");
    // The source is back: its answer is served and cached, and the fallback is not asked.
    svc.down.store(false, SeqCst);
    assert_eq!(svc.price("bitcoin").await, Ok(price("bitcoin")));
    assert_eq!(svc.price("bitcoin").await, Ok(price("bitcoin")), "a hit");
    assert_eq!((svc.primary.load(SeqCst), svc.backup.load(SeqCst)), (3, 2));
    assert!(server.get_bytes("b13:coingecko:price:bitcoin").is_some());
    // A cached value within its stale window beats the fallback when the source fails again.
    svc.down.store(true, SeqCst);
    assert_eq!(svc.price("bitcoin").await, Ok(price("bitcoin")), "fresh hit");
    assert_eq!(svc.backup.load(SeqCst), 2);
    // The exporter shows both outcomes.
    let exporter = syntra_cache::export::Exporter::builder(&svc.cache).redis_poll_interval(Duration::ZERO).build();
    let text = exporter.render();
    assert!(
        text.contains(r#"syntra_cache_fallbacks_total{service="coingecko",method="price",outcome="ok"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(r#"syntra_cache_fallbacks_total{service="coingecko",method="price",outcome="error"} 1"#),
        "{text}"
    );
}
