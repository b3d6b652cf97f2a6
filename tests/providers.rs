//! The provider services of `examples/providers` against the local simulator: responses parse,
//! repeated calls within the TTL are served from the cache (the simulator's counters prove no
//! upstream call), keys and TTLs follow the strategy's tables, and upstream failures (429,
//! 404, outages) reach the caller and are never cached; every method draws from its
//! provider's budget (Binance by request weight), a 429 backs that budget off, and the budgets
//! are declared and overridden like the TTLs.

#[path = "../examples/providers/mod.rs"]
mod providers;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, UNIX_EPOCH};

use providers::config::{apply_budget_overrides, default_budgets, parse_duration, Limits as ProviderLimits, Ttls};
use providers::{ApiError, Interval, Providers};
use syntra_cache::budget::{Budget, BudgetEnforcer, Budgets, Limit, ManualClock, Rate};
use syntra_cache::store::{BoxFuture, Store};
use syntra_cache::{key_of, Cache, StoreError};
use syntra_sim::{Fault, Limits, SimConfig, Simulator};

const JUP: &str = "JUPyiwrYJFskUPiHa7hkeR8VUtAeFoSYbKedZNsDvCN";
const WBTC: &str = "0x2260FAC5E5542a773Aa44fBCfeDf7C193bc2C599";

async fn sim(limits: Limits) -> Simulator {
    Simulator::start(SimConfig { seed: 11, limits, clock_speed: 0.0, latency: Duration::ZERO, ..SimConfig::default() })
        .await
        .expect("simulator starts")
}

/// A remote "store" that records the key and TTL of every write, and keeps the bytes.
#[derive(Default)]
struct Recorder {
    writes: Mutex<Vec<(String, Duration)>>,
    data: Mutex<HashMap<String, Vec<u8>>>,
}

impl Recorder {
    fn writes(&self) -> Vec<(String, Duration)> {
        self.writes.lock().unwrap().clone()
    }

    /// How long the store was asked to keep `key` (its TTL plus its stale window), last write.
    fn kept_for(&self, key: &str) -> Option<Duration> {
        self.writes().into_iter().rev().find(|(k, _)| k == key).map(|(_, t)| t)
    }

    /// The TTL in the envelope of `key` (JSON `"ttl"`, in ms), last write.
    fn ttl_of(&self, key: &str) -> Option<Duration> {
        let bytes = plain(self.data.lock().unwrap().get(key).cloned()?);
        let env: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
        env["ttl"].as_u64().map(Duration::from_millis)
    }

    fn all_bytes(&self) -> String {
        let data = self.data.lock().unwrap();
        data.values().map(|v| String::from_utf8_lossy(&plain(v.clone())).into_owned()).collect::<Vec<_>>().join("\n")
    }
}

/// Stored bytes with the compression of large values undone.
fn plain(bytes: Vec<u8>) -> Vec<u8> {
    if syntra_cache::compress::is_compressed(&bytes) {
        syntra_cache::compress::decompress(&bytes, syntra_cache::compress::DEFAULT_MAX_DECOMPRESSED).unwrap()
    } else {
        bytes
    }
}

impl Store for Recorder {
    fn name(&self) -> &'static str {
        "recorder"
    }
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<Vec<u8>>, StoreError>> {
        Box::pin(async move { Ok(self.data.lock().unwrap().get(key).cloned()) })
    }
    fn set<'a>(&'a self, key: &'a str, value: Vec<u8>, ttl: Duration) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            self.writes.lock().unwrap().push((key.to_string(), ttl));
            self.data.lock().unwrap().insert(key.to_string(), value);
            Ok(())
        })
    }
    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(async move { Ok(self.data.lock().unwrap().remove(key).is_some()) })
    }
    fn delete_prefix<'a>(&'a self, prefix: &'a str) -> BoxFuture<'a, Result<u64, StoreError>> {
        Box::pin(async move {
            let mut d = self.data.lock().unwrap();
            let before = d.len();
            d.retain(|k, _| !k.starts_with(prefix));
            Ok((before - d.len()) as u64)
        })
    }
    fn set_nx<'a>(&'a self, key: &'a str, token: &'a str, _ttl: Duration) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(async move {
            let mut d = self.data.lock().unwrap();
            if d.contains_key(key) {
                return Ok(false);
            }
            d.insert(key.to_string(), token.as_bytes().to_vec());
            Ok(true)
        })
    }
    fn delete_if_eq<'a>(&'a self, key: &'a str, token: &'a str) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(async move {
            let mut d = self.data.lock().unwrap();
            if d.get(key).map(Vec::as_slice) == Some(token.as_bytes()) {
                d.remove(key);
                return Ok(true);
            }
            Ok(false)
        })
    }
}

fn recording_cache() -> (Cache, Arc<Recorder>) {
    let rec = Arc::new(Recorder::default());
    let cache = Cache::builder().namespace("syntra").store(rec.clone()).build().expect("cache builds");
    (cache, rec)
}

#[tokio::test]
async fn every_service_parses_the_simulated_responses() {
    let sim = sim(Limits::unlimited()).await;
    let p = Providers::with_simulator(&sim, Cache::memory());

    let price = p.coingecko.price("bitcoin", "usd").await.unwrap();
    assert!(price.price > 1_000.0 && price.market_cap.unwrap() > 1e9);
    assert!(price.change_24h.is_some() && price.last_updated_at.is_some());
    let coin = p.coingecko.coin_data("ethereum").await.unwrap();
    assert_eq!((coin.symbol.as_str(), coin.name.as_str()), ("eth", "Ethereum"));
    assert!(coin.description.en.unwrap().contains("Ethereum"));
    assert!(!coin.links.homepage.is_empty());
    let md = p.coingecko.market_data("solana").await.unwrap();
    assert!(md.market_data.current_price["usd"] > 1.0);
    assert!(md.market_data.price_change_percentage_24h.is_some());
    let chart = p.coingecko.market_chart("bitcoin", "usd", 1).await.unwrap();
    assert!(chart.prices.len() >= 288, "5-minutely for a day");
    assert_eq!(chart.prices.len(), chart.total_volumes.len());
    let trending = p.coingecko.trending().await.unwrap();
    assert_eq!(trending.coins.len(), 7);
    assert!(trending.coins[0].item.data.as_ref().unwrap().price > 0.0);
    let global = p.coingecko.global().await.unwrap();
    assert!(global.total_market_cap["usd"] > 1e12);
    let search = p.coingecko.search("doge").await.unwrap();
    assert_eq!(search.coins[0].id, "dogecoin");

    let k = p.binance.klines("BTCUSDT", Interval::H1, 24).await.unwrap();
    assert_eq!(k.len(), 24);
    assert!(k.iter().all(|c| c.low <= c.open && c.open <= c.high && c.close_time > c.open_time));
    assert_eq!(k[1].open_time - k[0].open_time, 3_600_000);
    assert!(p.binance.current_price("ETHUSDT").await.unwrap().price > 100.0);
    let f = p.binance.funding_rate("BTCUSDT").await.unwrap();
    assert!(f.funding_rate.abs() < 0.01 && f.mark_price.is_some());
    assert!(p.binance.open_interest("BTCUSDT").await.unwrap().open_interest > 0.0);

    let pairs = p.dexscreener.search("bitcoin").await.unwrap();
    assert!(pairs.iter().any(|x| x.base_token.symbol == "WBTC"));
    let jup = p.dexscreener.token_pairs("solana", JUP).await.unwrap();
    assert!(!jup.is_empty() && jup.iter().all(|x| x.base_token.address == JUP));
    let tp = p.dexscreener.token_price("ethereum", WBTC).await.unwrap();
    assert_eq!(tp.symbol, "WBTC");
    // WBTC tracks bitcoin within a fraction of a percent.
    assert!((tp.price_usd / price.price - 1.0).abs() < 0.01, "{tp:?} vs {price:?}");

    let q = p.coinmarketcap.quote("BTC").await.unwrap();
    assert_eq!((q.symbol.as_str(), q.slug.as_str()), ("BTC", "bitcoin"));
    assert!(q.usd_price().unwrap() > 1_000.0);
    let news = p.cryptopanic.news("ETH").await.unwrap();
    assert_eq!(news.len(), 20);
    assert!(news.iter().all(|n| n.currencies.iter().any(|c| c.code == "ETH")));
    let fng = p.feargreed.current().await.unwrap();
    assert!(fng.value <= 100 && !fng.classification.is_empty());
}

#[tokio::test]
async fn a_second_call_within_the_ttl_makes_no_upstream_call() {
    let sim = sim(Limits::unlimited()).await;
    let cache = Cache::memory();
    let p = Providers::with_simulator(&sim, cache.clone());

    // Each method twice with the same arguments.
    for _ in 0..2 {
        p.coingecko.price("bitcoin", "usd").await.unwrap();
        p.coingecko.coin_data("bitcoin").await.unwrap();
        p.coingecko.market_data("bitcoin").await.unwrap();
        p.coingecko.market_chart("bitcoin", "usd", 7).await.unwrap();
        p.coingecko.trending().await.unwrap();
        p.coingecko.global().await.unwrap();
        p.coingecko.search("bit").await.unwrap();
        p.binance.klines("BTCUSDT", Interval::M5, 100).await.unwrap();
        p.binance.current_price("BTCUSDT").await.unwrap();
        p.binance.funding_rate("BTCUSDT").await.unwrap();
        p.binance.open_interest("BTCUSDT").await.unwrap();
        p.dexscreener.search("pepe").await.unwrap();
        p.dexscreener.token_pairs("solana", JUP).await.unwrap();
        p.dexscreener.token_price("solana", JUP).await.unwrap();
        p.coinmarketcap.quote("ETH").await.unwrap();
        p.cryptopanic.news("BTC").await.unwrap();
        p.feargreed.current().await.unwrap();
    }
    let calls = sim.calls();
    let expect = [
        ("coingecko", "/simple/price", 1),
        // coin_data and market_data share the upstream route.
        ("coingecko", "/coins/{id}", 2),
        ("coingecko", "/coins/{id}/market_chart", 1),
        ("coingecko", "/search/trending", 1),
        ("coingecko", "/global", 1),
        ("coingecko", "/search", 1),
        ("binance", "/api/v3/klines", 1),
        ("binance", "/api/v3/ticker/price", 1),
        ("binance", "/fapi/v1/fundingRate", 1),
        ("binance", "/fapi/v1/openInterest", 1),
        ("dexscreener", "/latest/dex/search", 1),
        ("dexscreener", "/token-pairs/v1/{chainId}/{tokenAddress}", 1),
        ("dexscreener", "/tokens/v1/{chainId}/{tokenAddresses}", 1),
        ("coinmarketcap", "/v1/cryptocurrency/quotes/latest", 1),
        ("cryptopanic", "/api/v1/posts/", 1),
        ("feargreed", "/fng/", 1),
    ];
    for (prov, endpoint, n) in expect {
        assert_eq!(calls.get(prov, endpoint), n, "{prov} {endpoint}\n{calls}");
    }
    assert_eq!(calls.total(), 17, "{calls}");

    let stats = cache.stats();
    let t = stats.total();
    assert_eq!((t.hits, t.upstream_calls), (17, 17));
    let price = stats.get("coingecko", "price").expect("price counted");
    assert_eq!((price.hits, price.misses), (1, 1));
    assert_eq!(stats.get("binance", "klines").unwrap().hits, 1);

    // Other arguments are other keys: upstream again.
    p.coingecko.price("ethereum", "usd").await.unwrap();
    p.coingecko.price("bitcoin", "eur").await.unwrap();
    p.binance.klines("BTCUSDT", Interval::M5, 50).await.unwrap();
    assert_eq!(sim.count("coingecko", "/simple/price"), 3);
    assert_eq!(sim.count("binance", "/api/v3/klines"), 2);
}

#[tokio::test]
async fn keys_and_ttls_follow_the_strategy() {
    let sim = sim(Limits::unlimited()).await;
    let (cache, rec) = recording_cache();
    let p = Providers::with_simulator(&sim, cache);

    p.coingecko.price("bitcoin", "usd").await.unwrap();
    p.coingecko.coin_data("bitcoin").await.unwrap();
    p.coingecko.market_data("bitcoin").await.unwrap();
    p.coingecko.market_chart("bitcoin", "usd", 30).await.unwrap();
    p.coingecko.trending().await.unwrap();
    p.coingecko.global().await.unwrap();
    p.coingecko.search("bitcoin").await.unwrap();
    p.binance.klines("BTCUSDT", Interval::H1, 100).await.unwrap();
    p.binance.current_price("BTCUSDT").await.unwrap();
    p.binance.funding_rate("BTCUSDT").await.unwrap();
    p.binance.open_interest("BTCUSDT").await.unwrap();
    p.dexscreener.search("bitcoin").await.unwrap();
    p.dexscreener.token_pairs("solana", JUP).await.unwrap();
    p.dexscreener.token_price("solana", JUP).await.unwrap();
    p.coinmarketcap.quote("BTC").await.unwrap();
    p.cryptopanic.news("BTC").await.unwrap();
    p.feargreed.current().await.unwrap();

    let jup_key = format!("solana_{JUP}");
    // (key, TTL, jittered (hot), stale window): hot TTLs are cut by up to 10% at random, and
    // the store keeps an entry for its TTL plus its stale window.
    let expected: Vec<(String, u64, bool, u64)> = [
        ("coingecko:price:bitcoin_usd", 90, true, 300),
        ("coingecko:coin_data:bitcoin", 3_600, false, 0),
        ("coingecko:market_data:bitcoin", 300, true, 1_800),
        // 2 to 90 days: the hourly series charts are cut from.
        ("coingecko:market_chart:bitcoin_usd_hourly", 600, true, 3_600),
        ("coingecko:trending", 900, false, 0),
        ("coingecko:global", 300, false, 0),
        ("coingecko:search:bitcoin", 1_800, false, 0),
        ("binance:klines:BTCUSDT_1h_100", 600, true, 600),
        ("binance:current_price:BTCUSDT", 30, true, 120),
        ("binance:funding_rate:BTCUSDT", 3_600, false, 0),
        ("binance:open_interest:BTCUSDT", 300, false, 0),
        ("dexscreener:search:bitcoin", 300, false, 0),
        (&format!("dexscreener:token_pairs:{jup_key}"), 300, false, 0),
        (&format!("dexscreener:token_price:{jup_key}"), 60, true, 300),
        ("coinmarketcap:quote:BTC", 300, true, 1_800),
        ("cryptopanic:news:BTC", 900, false, 0),
        ("feargreed:current", 3_600, false, 0),
    ]
    .iter()
    .map(|(k, t, j, st)| (format!("syntra:{k}"), *t, *j, *st))
    .collect();
    for (key, ttl, jittered, stale) in &expected {
        let full = Duration::from_secs(*ttl);
        let got = rec.ttl_of(key).unwrap_or_else(|| panic!("{key} written; writes: {:#?}", rec.writes()));
        if *jittered {
            assert!(got <= full && got >= full.mul_f64(0.9), "{key}: {got:?} is {full:?} less up to 10%");
        } else {
            assert_eq!(got, full, "{key}");
        }
        // The envelope holds whole milliseconds.
        let kept = rec.kept_for(key).unwrap().as_millis();
        assert_eq!(kept, got.as_millis() + u128::from(*stale) * 1_000, "{key}: kept for TTL + stale window");
    }
    let data_writes: Vec<_> = rec.writes().into_iter().filter(|(k, _)| expected.iter().any(|(e, ..)| e == k)).collect();
    assert_eq!(data_writes.len(), expected.len(), "one write per call");

    // The same keys, read without running the calls.
    let ck = key_of(p.coingecko.price("bitcoin", "usd")).unwrap();
    assert_eq!(ck.key, "syntra:coingecko:price:bitcoin_usd");
    let ck = key_of(p.binance.klines("ETHUSDT", Interval::D1, 7)).unwrap();
    assert_eq!(ck.key, "syntra:binance:klines:ETHUSDT_1d_7");
    let ck = key_of(p.coingecko.market_chart("usd-coin", "eur", 90)).unwrap();
    assert_eq!(ck.key, "syntra:coingecko:market_chart:usd-coin_eur_hourly");
    let ck = key_of(p.coingecko.market_chart("usd-coin", "eur", 365)).unwrap();
    assert_eq!(ck.key, "syntra:coingecko:market_chart:usd-coin_eur_365");
    assert_eq!(sim.count("binance", "/api/v3/klines"), 1, "key_of ran no body");

    // The table the services read is the strategy's.
    let ttls = Ttls::default();
    assert_eq!(ttls.entries().len(), 31, "22 TTLs, 6 stale windows and 3 freshness floors");
    assert_eq!(ttls.get("coingecko", "price"), Some(Duration::from_secs(90)));
    assert_eq!(ProviderLimits::get("coingecko").unwrap().per_minute, Some(30));
    assert_eq!(ProviderLimits::get("coinmarketcap").unwrap().per_day, Some(333));
}

#[tokio::test]
async fn klines_ttl_depends_on_the_interval() {
    let sim = sim(Limits::unlimited()).await;
    let (cache, rec) = recording_cache();
    let p = Providers::with_simulator(&sim, cache);
    let expected = [
        (Interval::M1, 60),
        (Interval::M5, 180),
        (Interval::M15, 300),
        (Interval::H1, 600),
        (Interval::H4, 1_800),
        (Interval::D1, 3_600),
    ];
    for (interval, ttl) in expected {
        let k = p.binance.klines("SOLUSDT", interval, 10).await.unwrap();
        assert_eq!(k.len(), 10);
        let step = k[1].open_time - k[0].open_time;
        assert_eq!(step as u64, interval.seconds() * 1000);
        let key = format!("syntra:binance:klines:SOLUSDT_{interval}_10");
        let (got, full) = (rec.ttl_of(&key).unwrap(), Duration::from_secs(ttl));
        assert!(got <= full && got >= full.mul_f64(0.9), "{key}: {got:?} vs {full:?} (jitter 10%)");
    }
    assert_eq!(sim.count("binance", "/api/v3/klines"), 6);
}

#[tokio::test]
async fn a_429_reaches_the_caller_and_is_not_cached() {
    let limits = Limits { coingecko_per_minute: Some(2), ..Limits::unlimited() };
    let sim = sim(limits).await;
    let cache = Cache::memory();
    let p = Providers::with_simulator(&sim, cache.clone());

    p.coingecko.price("bitcoin", "usd").await.unwrap();
    p.coingecko.price("ethereum", "usd").await.unwrap();
    let err = p.coingecko.price("solana", "usd").await.unwrap_err();
    let ApiError::RateLimited { provider, retry_after } = err.clone() else {
        panic!("expected RateLimited, got {err:?}");
    };
    assert_eq!(provider, "coingecko");
    let retry_after = retry_after.expect("Retry-After is passed on");
    assert!(retry_after > Duration::ZERO && retry_after <= Duration::from_secs(60));
    // Cached values are still served while the provider refuses.
    p.coingecko.price("bitcoin", "usd").await.unwrap();
    // The error was not cached: the next call goes upstream again (and is refused again).
    assert!(matches!(p.coingecko.price("solana", "usd").await, Err(ApiError::RateLimited { .. })));
    assert_eq!(sim.count("coingecko", "/simple/price"), 4);
    assert_eq!(sim.rejected_for("coingecko"), 2);
    // Once the window has passed, the call succeeds and is then cached.
    sim.advance(retry_after);
    let sol = p.coingecko.price("solana", "usd").await.unwrap();
    assert_eq!(p.coingecko.price("solana", "usd").await.unwrap(), sol);
    assert_eq!(sim.count("coingecko", "/simple/price"), 5);
    let st = cache.stats();
    let st = st.get("coingecko", "price").unwrap();
    assert_eq!(st.upstream_errors, 2);

    // An injected 429 (Binance) behaves the same way.
    sim.set_fail("binance", Some(429));
    let err = p.binance.current_price("BTCUSDT").await.unwrap_err();
    assert_eq!(err, ApiError::RateLimited { provider: "binance", retry_after: Some(Duration::from_secs(1)) });
    sim.set_fail("binance", None);
    p.binance.current_price("BTCUSDT").await.unwrap();
    assert_eq!(sim.count("binance", "/api/v3/ticker/price"), 2);
}

#[tokio::test]
async fn other_failures_are_typed_and_not_cached() {
    let sim = sim(Limits::unlimited()).await;
    let p = Providers::with_simulator(&sim, Cache::memory());

    // Unknown coin: CoinGecko's 404.
    for _ in 0..2 {
        assert_eq!(p.coingecko.coin_data("no-such-coin").await.unwrap_err(), ApiError::Http { status: 404 });
    }
    assert_eq!(sim.count("coingecko", "/coins/{id}"), 2);
    // simple/price omits unknown ids.
    assert!(matches!(p.coingecko.price("no-such-coin", "usd").await, Err(ApiError::NotFound(_))));
    // Binance rejects unknown symbols with 400.
    assert_eq!(p.binance.current_price("NOPE").await.unwrap_err(), ApiError::Http { status: 400 });
    // An outage, then recovery.
    sim.set_fail("feargreed", Some(503));
    assert_eq!(p.feargreed.current().await.unwrap_err(), ApiError::Http { status: 503 });
    sim.set_fail("feargreed", None);
    p.feargreed.current().await.unwrap();
    assert_eq!(sim.count("feargreed", "/fng/"), 2);
    // Rejected credentials.
    sim.set_fail("coinmarketcap", Some(401));
    assert_eq!(p.coinmarketcap.quote("BTC").await.unwrap_err(), ApiError::Unauthorized);
}

#[tokio::test]
async fn api_keys_are_sent_but_never_cached_or_logged() {
    const CMC_SECRET: &str = "cmc-secret-4f9a";
    const PANIC_SECRET: &str = "panic-secret-77b2";
    const CG_SECRET: &str = "cg-secret-0c1d";
    let sim = sim(Limits::unlimited()).await;
    let (cache, rec) = recording_cache();
    let p = Providers::with_simulator(&sim, cache);
    let cg = p.coingecko.clone().with_api_key(Some(CG_SECRET.into()));
    let cmc = p.coinmarketcap.clone().with_api_key(Some(CMC_SECRET.into()));
    let panic = p.cryptopanic.clone().with_token(Some(PANIC_SECRET.into()));

    cg.price("bitcoin", "usd").await.unwrap();
    cmc.quote("BTC").await.unwrap();
    panic.news("BTC").await.unwrap();
    assert_eq!(sim.authenticated("coingecko"), 1);
    assert_eq!(sim.authenticated("coinmarketcap"), 1);
    assert_eq!(sim.authenticated("cryptopanic"), 1);

    let keys: String = rec.writes().into_iter().map(|(k, _)| k).collect::<Vec<_>>().join("\n");
    let values = rec.all_bytes();
    let debug = format!("{cg:?} {cmc:?} {panic:?}");
    for secret in [CMC_SECRET, PANIC_SECRET, CG_SECRET] {
        assert!(!keys.contains(secret), "{secret} in a key");
        assert!(!values.contains(secret), "{secret} in a cached value");
        assert!(!debug.contains(secret), "{secret} in Debug output");
    }

    // Without credentials the keyed APIs fail before any network call.
    let none = p.coinmarketcap.clone().with_api_key(None);
    assert_eq!(none.quote("SOL").await.unwrap_err(), ApiError::Unauthorized);
    let none = p.cryptopanic.clone().with_token(None);
    assert_eq!(none.news("SOL").await.unwrap_err(), ApiError::Unauthorized);
    assert_eq!(sim.provider_count("coinmarketcap"), 1);
    assert_eq!(sim.provider_count("cryptopanic"), 1);

    // A network error does not leak the token that was in the URL.
    let down = p.cryptopanic.clone().with_token(Some(PANIC_SECRET.into())).with_base_url("http://127.0.0.1:1");
    let err = down.news("XRP").await.unwrap_err();
    assert!(matches!(err, ApiError::Network(_)), "{err:?}");
    assert!(!err.to_string().contains(PANIC_SECRET), "{err}");
    assert!(!format!("{err:?}").contains("auth_token"), "{err:?}");
}

#[tokio::test]
async fn ttl_overrides_apply_without_recompiling() {
    let sim = sim(Limits::unlimited()).await;
    let (cache, rec) = recording_cache();
    let mut ttls = Ttls::default();
    ttls.apply_vars([("SYNTRA_TTL_COINGECKO_PRICE", "1"), ("SYNTRA_TTL_BINANCE_KLINES_4H", "45m"), ("UNRELATED", "x")])
        .unwrap();
    ttls.apply_file("# comment\n\nfeargreed.current = 2h  # daily index\n").unwrap();
    let p = Providers::with_simulator_ttls(&sim, cache, Arc::new(ttls));
    p.binance.klines("BTCUSDT", Interval::H4, 5).await.unwrap();
    p.feargreed.current().await.unwrap();
    p.coingecko.price("bitcoin", "usd").await.unwrap();
    let within_jitter = |key: &str, full: Duration| {
        let got = rec.ttl_of(key).unwrap();
        assert!(got <= full && got >= full.mul_f64(0.9), "{key}: {got:?} vs {full:?}");
    };
    within_jitter("syntra:binance:klines:BTCUSDT_4h_5", Duration::from_secs(2_700));
    assert_eq!(rec.ttl_of("syntra:feargreed:current"), Some(Duration::from_secs(7_200)));
    within_jitter("syntra:coingecko:price:bitcoin_usd", Duration::from_secs(1));
    // A 1 s TTL expires: the next call goes upstream again.
    p.coingecko.price("bitcoin", "usd").await.unwrap();
    assert_eq!(sim.count("coingecko", "/simple/price"), 1);
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    p.coingecko.price("bitcoin", "usd").await.unwrap();
    assert_eq!(sim.count("coingecko", "/simple/price"), 2);
}

#[test]
fn ttl_configuration_rejects_mistakes() {
    let mut t = Ttls::default();
    assert!(t.apply_vars([("SYNTRA_TTL_COINGECKO_PRICES", "5")]).is_err());
    assert!(t.apply_vars([("SYNTRA_TTL_COINGECKO_PRICE", "0")]).is_err());
    assert!(t.apply_vars([("SYNTRA_TTL_COINGECKO_PRICE", "ten")]).is_err());
    assert!(t.apply_vars([("SYNTRA_TTL_FILE", "/nonexistent")]).is_ok());
    assert!(t.apply_file("coingecko.price 5").is_err());
    assert!(t.apply_file("nope.price = 5").is_err());
    assert!(t.apply_file("budget.coingecko.rate = 30/min").is_ok(), "budget lines are read by budgets()");
    let e = t.apply_file("\ncoingecko.price = 5x").unwrap_err();
    assert!(e.to_string().contains("line 2"), "{e}");
    assert_eq!(t, Ttls::default(), "failed overrides change nothing");
    assert_eq!(parse_duration("90").unwrap(), Duration::from_secs(90));
    assert_eq!(parse_duration("15m").unwrap(), Duration::from_secs(900));
    assert_eq!(parse_duration("1d").unwrap(), Duration::from_secs(86_400));
    t.apply_vars([("SYNTRA_TTL_DEXSCREENER_TOKEN_PRICE", "30s")]).unwrap();
    assert_eq!(t.dexscreener.token_price, Duration::from_secs(30));
}

/// A cache enforcing `budgets` on a clock that moves only when told to.
fn budgeted_cache(budgets: Budgets) -> (Cache, Arc<ManualClock>) {
    let clock =
        Arc::new(ManualClock::new(UNIX_EPOCH + Duration::from_secs(syntra_sim::DEFAULT_EPOCH_UNIX + 14 * 86_400)));
    let cache = Cache::builder()
        .namespace("syntra")
        .budgets(budgets)
        .budget_clock(clock.clone())
        .build()
        .expect("cache builds");
    (cache, clock)
}

fn budget_of(cache: &Cache, name: &str) -> syntra_cache::budget::BudgetStats {
    cache.budget_stats().into_iter().find(|b| b.name == name).unwrap_or_else(|| panic!("budget {name} declared"))
}

#[tokio::test]
async fn every_method_draws_from_a_declared_budget() {
    // The declared names without limits: a misnamed `budget = ".."` would fail the call with
    // `ApiError::Budget` (an unknown budget), and the permits show who drew from which budget.
    let names: Vec<Budget> = default_budgets().names().into_iter().map(Budget::new).collect();
    let (cache, _) = budgeted_cache(Budgets::new(names).unwrap());
    let sim = sim(Limits::unlimited()).await;
    let p = Providers::with_simulator(&sim, cache.clone());
    p.coingecko.price("bitcoin", "usd").await.unwrap();
    p.coingecko.coin_data("bitcoin").await.unwrap();
    p.coingecko.market_data("bitcoin").await.unwrap();
    p.coingecko.market_chart("bitcoin", "usd", 7).await.unwrap();
    p.coingecko.trending().await.unwrap();
    p.coingecko.global().await.unwrap();
    p.coingecko.search("bit").await.unwrap();
    p.binance.klines("BTCUSDT", Interval::M5, 100).await.unwrap();
    p.binance.current_price("BTCUSDT").await.unwrap();
    p.binance.funding_rate("BTCUSDT").await.unwrap();
    p.binance.open_interest("BTCUSDT").await.unwrap();
    p.dexscreener.search("pepe").await.unwrap();
    p.dexscreener.token_pairs("solana", JUP).await.unwrap();
    p.dexscreener.token_price("solana", JUP).await.unwrap();
    p.coinmarketcap.quote("ETH").await.unwrap();
    p.cryptopanic.news("BTC").await.unwrap();
    p.feargreed.current().await.unwrap();
    let granted: Vec<(String, u64, u64)> =
        cache.budget_stats().into_iter().map(|b| (b.name, b.granted, b.weight_used)).collect();
    let expected = [
        ("coingecko", 7, 7),
        ("coinmarketcap", 1, 1),
        ("dexscreener", 3, 3),
        ("dexscreener_profiles", 0, 0),
        ("binance", 4, 2 + 2 + 1 + 1),
        ("cryptopanic", 1, 1),
        ("feargreed", 1, 1),
    ];
    let expected: Vec<(String, u64, u64)> = expected.iter().map(|(n, g, w)| (n.to_string(), *g, *w)).collect();
    assert_eq!(granted, expected);
    for (provider, _) in [("coingecko", 0), ("binance", 0), ("dexscreener", 0)] {
        assert_eq!(budget_of(&cache, provider).granted, sim.provider_count(provider), "one permit per upstream call");
    }
}

#[tokio::test]
async fn a_429_backs_the_budget_off_without_reaching_the_provider() {
    let sim = sim(Limits::unlimited()).await;
    let (cache, clock) = budgeted_cache(default_budgets());
    let p = Providers::with_simulator(&sim, cache.clone());

    // CoinGecko answers 429 with Retry-After: 30.
    sim.set_fault("coingecko", Some(Fault { status: 429, retry_after: Some(30) }));
    let err = p.coingecko.price("bitcoin", "usd").await.unwrap_err();
    assert_eq!(err, ApiError::RateLimited { provider: "coingecko", retry_after: Some(Duration::from_secs(30)) });
    sim.set_fault("coingecko", None);
    assert_eq!(sim.provider_count("coingecko"), 1);

    // The next call, another key (nothing cached to serve), is refused by the budget at once:
    // it never reaches CoinGecko, and says how long the back-off lasts.
    let t = std::time::Instant::now();
    let err = p.coingecko.market_data("ethereum").await.unwrap_err();
    assert!(t.elapsed() < Duration::from_millis(500), "refused at once, no hang");
    let ApiError::Budget(denied) = &err else { panic!("expected a budget refusal, got {err:?}") };
    assert_eq!((denied.budget.as_str(), denied.limit), ("coingecko", Limit::Backoff));
    assert_eq!(denied.retry_after, Duration::from_secs(30), "Retry-After honoured");
    assert!(err.to_string().contains("429"), "{err}");
    assert_eq!(sim.provider_count("coingecko"), 1, "the refused call was not sent");
    // Other providers are not held.
    p.binance.current_price("BTCUSDT").await.unwrap();

    let b = budget_of(&cache, "coingecko");
    assert_eq!((b.granted, b.denied, b.backoffs), (1, 1, 1));
    let st = cache.stats();
    assert_eq!(st.get("coingecko", "market_data").unwrap().upstream_calls, 0);

    // Once the Retry-After has passed (on the budget's clock), calls go through again.
    clock.advance(Duration::from_secs(30));
    p.coingecko.market_data("ethereum").await.unwrap();
    assert_eq!(sim.provider_count("coingecko"), 2);
}

#[tokio::test]
async fn binance_calls_draw_their_request_weight() {
    for limit in [1, 50, 99, 100, 499, 500, 1_000, 1_001, 5_000] {
        assert_eq!(
            providers::binance::klines_weight(limit),
            syntra_sim::klines_weight(limit),
            "klines weight of limit {limit}, as the simulator (Binance) counts it"
        );
    }
    let sim = sim(Limits::unlimited()).await;
    let (cache, _) = budgeted_cache(default_budgets());
    let p = Providers::with_simulator(&sim, cache.clone());
    p.binance.klines("BTCUSDT", Interval::H1, 50).await.unwrap(); // 1
    p.binance.klines("ETHUSDT", Interval::H1, 100).await.unwrap(); // 2
    p.binance.klines("SOLUSDT", Interval::H1, 500).await.unwrap(); // 5
    p.binance.klines("BTCUSDT", Interval::H4, 1_000).await.unwrap(); // 5
    p.binance.current_price("BTCUSDT").await.unwrap(); // 2
    p.binance.funding_rate("BTCUSDT").await.unwrap(); // 1
    p.binance.open_interest("BTCUSDT").await.unwrap(); // 1
    let b = budget_of(&cache, "binance");
    assert_eq!((b.granted, b.weight_used), (7, 1 + 2 + 5 + 5 + 2 + 1 + 1));
    // Cached answers draw nothing.
    p.binance.klines("SOLUSDT", Interval::H1, 500).await.unwrap();
    assert_eq!(budget_of(&cache, "binance").weight_used, 17);
    assert_eq!(sim.provider_count("binance"), 7);
}

#[tokio::test]
async fn per_minute_budgets_stay_inside_every_clock_minute() {
    // Hammer each per-minute budget every 50 ms for 5 minutes: no fixed clock minute (the
    // windows providers count in) may see more than the provider's limit, and the sustained
    // rate stays above 80% of it.
    let budgets = default_budgets();
    let start = syntra_sim::DEFAULT_EPOCH_UNIX + 14 * 86_400 + 3_600;
    for (name, limit, weight) in [("coingecko", 30u64, 1u32), ("dexscreener", 300, 1), ("binance", 6_000, 2)] {
        let clock = Arc::new(ManualClock::from_unix_secs(start));
        let e = BudgetEnforcer::builder(budgets.clone()).clock(clock.clone()).build().unwrap();
        let mut per_minute: HashMap<u64, u64> = HashMap::new();
        for step in 0..(5 * 60 * 20) {
            let minute = step / (60 * 20);
            while e.acquire(name, weight).await.is_ok() {
                *per_minute.entry(minute).or_default() += u64::from(weight);
            }
            clock.advance(Duration::from_millis(50));
        }
        for (minute, used) in &per_minute {
            assert!(*used <= limit, "{name}: {used} in minute {minute}, limit {limit}");
            assert!(*used * 10 >= limit * 8, "{name}: only {used} in minute {minute} of {limit}");
        }
    }
}

#[test]
fn budgets_are_declared_once_and_overridden_like_the_ttls() {
    let b = default_budgets();
    let cg = b.get("coingecko").unwrap();
    assert_eq!(cg.rates, vec![Rate { limit: 30, per: Duration::from_secs(60) }], "the provider's own figure");
    assert_eq!((cg.quota_day, cg.quota_month), (None, Some(10_000)));
    let cmc = b.get("coinmarketcap").unwrap();
    assert_eq!((cmc.rates.len(), cmc.quota_day, cmc.quota_month), (0, Some(333), Some(10_000)));
    assert_eq!(b.get("dexscreener").unwrap().rates[0].limit, 300);
    assert_eq!(b.get("dexscreener_profiles").unwrap().rates[0].limit, 60);
    assert_eq!(b.get("binance").unwrap().rates[0].limit, 6_000);
    assert_eq!(b.get("feargreed").unwrap().rates[0].to_string(), "60/min");

    // The TTL file's budget lines, then the variables (which win).
    let file = "# budgets beside the TTLs\ncoingecko.price = 120\nbudget.coingecko.rate = 20/min\n\
                budget.coinmarketcap.day = 300 # tighter\nbudget.dexscreener_profiles.max_wait = 500ms\n";
    let vars = [
        ("SYNTRA_BUDGET_COINMARKETCAP_DAY", "250"),
        ("SYNTRA_BUDGET_BINANCE_MAX_STRETCH", "2"),
        ("SYNTRA_TTL_COINGECKO_PRICE", "60"),
        ("PATH", "/usr/bin"),
    ];
    let o = apply_budget_overrides(default_budgets(), Some(file), vars).unwrap();
    assert_eq!(o.get("coingecko").unwrap().rates, vec![Rate { limit: 20, per: Duration::from_secs(60) }]);
    assert_eq!(o.get("coingecko").unwrap().quota_month, Some(10_000), "untouched");
    assert_eq!(o.get("coinmarketcap").unwrap().quota_day, Some(250), "the environment wins");
    assert_eq!(o.get("dexscreener_profiles").unwrap().max_wait, Duration::from_millis(500));
    assert_eq!(o.get("binance").unwrap().max_ttl_stretch, 2.0);
    // The same file still sets the TTLs (and its budget lines are no TTL error).
    let mut t = Ttls::default();
    t.apply_file(file).unwrap();
    assert_eq!(t.coingecko.price, Duration::from_secs(120));

    // Mistakes are errors that say where.
    let err = |file: Option<&str>, vars: &[(&str, &str)]| {
        apply_budget_overrides(default_budgets(), file, vars.iter().copied()).unwrap_err().to_string()
    };
    let e = err(Some("\nbudget.coingeko.rate = 30/min"), &[]);
    assert!(e.contains("line 2") && e.contains("coingeko") && e.contains("coingecko"), "{e}");
    let e = err(Some("budget.coingecko.burst = 3"), &[]);
    assert!(e.contains("burst") && e.contains("max_wait"), "{e}");
    let e = err(Some("budget.coingecko.day = lots"), &[]);
    assert!(e.contains("line 1") && e.contains("budget.coingecko.day"), "{e}");
    let e = err(Some("budget.coingecko.rate 30/min"), &[]);
    assert!(e.contains("line 1"), "{e}");
    let e = err(None, &[("SYNTRA_BUDGET_COINGEKO_RATE", "30/min")]);
    assert!(e.contains("SYNTRA_BUDGET_COINGEKO_RATE"), "{e}");
    let e = err(None, &[("SYNTRA_BUDGET_COINGECKO_RATE", "0/min")]);
    assert!(e.contains("SYNTRA_BUDGET_COINGECKO"), "{e}");
}

#[tokio::test]
async fn binance_and_dexscreener_batch_functions_share_entries_and_keep_the_limits() {
    use syntra_sim::market::{BINANCE_SYMBOLS, DEX_TOKENS};
    let sim = sim(Limits::unlimited()).await;
    let p = Providers::with_simulator(&sim, Cache::memory());

    // Binance: one `symbols=[...]` call of weight 4 for three symbols.
    let symbols: Vec<String> =
        BINANCE_SYMBOLS.iter().filter(|s| s.quote == "tether").take(3).map(|s| s.symbol.to_string()).collect();
    let got = p.binance.current_prices(&symbols).await.unwrap();
    assert_eq!(got.len(), 3, "{got:?}");
    let calls = sim.calls().endpoint("binance", "/api/v3/ticker/price");
    assert_eq!((calls.total, calls.items, calls.cost), (1, 3, 4), "{calls:?}");
    // The single-item function reads the batch's entries (and the batch reads its own).
    assert_eq!(p.binance.current_price(&symbols[1]).await.unwrap(), got[&symbols[1]]);
    assert_eq!(p.binance.current_prices(&symbols).await.unwrap(), got);
    assert_eq!(sim.calls().endpoint("binance", "/api/v3/ticker/price").total, 1, "all hits");

    // DexScreener: 35 addresses of one chain go as 30 + 5, never 31 (which it refuses).
    let chain = DEX_TOKENS[0].chain;
    let known: Vec<String> = DEX_TOKENS.iter().filter(|t| t.chain == chain).map(|t| t.address.to_string()).collect();
    let mut addresses = known.clone();
    addresses.extend((addresses.len()..35).map(|i| format!("0x{i:040x}")));
    let got = p.dexscreener.token_prices(chain, &addresses).await.unwrap();
    let calls = sim.calls().endpoint("dexscreener", "/tokens/v1/{chainId}/{tokenAddresses}");
    assert_eq!((calls.total, calls.failed, calls.items), (2, 0, 35), "{calls:?}");
    for a in &known {
        let one = p.dexscreener.token_price(chain, a).await.unwrap();
        assert_eq!(got.get(a), Some(&one), "{a}: the batch's entry is the single function's");
    }
    assert_eq!(got.len(), known.len(), "unknown addresses are left out");
    assert_eq!(sim.calls().endpoint("dexscreener", "/tokens/v1/{chainId}/{tokenAddresses}").total, 2, "all hits");
}

#[tokio::test]
async fn market_rows_load_many_coins_per_call_and_charts_share_one_hourly_series() {
    use syntra_sim::market::COINS;
    let sim = sim(Limits::unlimited()).await;
    let p = Providers::with_simulator(&sim, Cache::memory());
    let markets = |sim: &Simulator| sim.calls().endpoint("coingecko", "/coins/markets");

    // Concurrent single-coin misses from different users: a few `/coins/markets` calls, not one
    // per coin (the first goes at once, the others queue behind it and go together).
    let ids: Vec<String> = COINS.iter().take(6).map(|c| c.id.to_string()).collect();
    let rows = futures_util::future::join_all(ids.iter().map(|id| p.coingecko.market(id, "usd"))).await;
    for (id, row) in ids.iter().zip(&rows) {
        let row = row.as_ref().unwrap();
        assert_eq!(&row.id, id);
        assert!(row.current_price.unwrap() > 0.0 && row.market_cap.unwrap() > 0.0, "{row:?}");
        assert!(row.price_change_percentage_7d_in_currency.is_some(), "{row:?}");
    }
    let first = markets(&sim);
    assert!((1..=2).contains(&first.total), "{first:?}");
    // The batch function answers those six from the cache and loads the other coins in one call.
    let all: Vec<String> = COINS.iter().map(|c| c.id.to_string()).collect();
    let got = p.coingecko.markets(&all, "usd").await.unwrap();
    assert_eq!(got.len(), COINS.len());
    assert_eq!(got["bitcoin"], *rows[ids.iter().position(|i| i == "bitcoin").unwrap()].as_ref().unwrap());
    assert_eq!(markets(&sim).total, first.total + 1);
    assert_eq!(markets(&sim).items, first.items + (COINS.len() - 6) as u64, "only the missing coins");
    // ... and the single-coin function reads the batch's entries.
    let last = &all[COINS.len() - 1];
    assert_eq!(p.coingecko.market(last, "usd").await.unwrap(), got[last]);
    assert_eq!(markets(&sim).total, first.total + 1, "a hit");

    // Charts from 2 to 90 days are cut from one hourly series: one upstream call for 7 and 30 days.
    let week = p.coingecko.market_chart("bitcoin", "usd", 7).await.unwrap();
    let month = p.coingecko.market_chart("bitcoin", "usd", 30).await.unwrap();
    assert_eq!(sim.calls().endpoint("coingecko", "/coins/{id}/market_chart").total, 1);
    assert!((168..=169).contains(&week.prices.len()), "hourly points of 7 days: {}", week.prices.len());
    assert!((720..=721).contains(&month.prices.len()), "hourly points of 30 days: {}", month.prices.len());
    let end = week.prices.last().unwrap().0;
    assert_eq!(end, month.prices.last().unwrap().0, "cut from the same series");
    assert!(week.prices[0].0 > end - 7 * 86_400_000 && week.prices[0].0 <= end - 7 * 86_400_000 + 3_600_000);
    assert_eq!(&month.prices[month.prices.len() - week.prices.len()..], &week.prices[..], "the last week of the month");
    assert_eq!((week.market_caps.len(), week.total_volumes.len()), (week.prices.len(), week.prices.len()));
    // A 1-day chart is 5-minutely: a call of its own.
    let day = p.coingecko.market_chart("bitcoin", "usd", 1).await.unwrap();
    assert!(day.prices.len() >= 288);
    assert_eq!(sim.calls().endpoint("coingecko", "/coins/{id}/market_chart").total, 2);

    // A name one listed coin has, a symbol, an id: resolved from the cached `/coins/list` (one
    // call for all); a partial name goes to `/search`.
    assert_eq!(p.coingecko.find_id("Bitcoin").await.unwrap().as_deref(), Some("bitcoin"));
    assert_eq!(p.coingecko.find_id("SOL").await.unwrap().as_deref(), Some("solana"));
    assert_eq!(p.coingecko.find_id("usd-coin").await.unwrap().as_deref(), Some("usd-coin"));
    assert_eq!(sim.calls().endpoint("coingecko", "/coins/list").total, 1);
    assert_eq!(sim.calls().endpoint("coingecko", "/search").total, 0);
    assert_eq!(p.coingecko.find_id("dogec").await.unwrap().as_deref(), Some("dogecoin"));
    assert_eq!(p.coingecko.find_id("no such coin").await.unwrap(), None);
    assert_eq!(sim.calls().endpoint("coingecko", "/search").total, 2);
}
