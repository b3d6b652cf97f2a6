//! `syntra-sim`: a deterministic local simulator of the crypto-market APIs that syntra-cache's
//! examples and tests call (CoinGecko, Binance, DexScreener, CoinMarketCap, CryptoPanic,
//! alternative.me Fear & Greed).
//!
//! One HTTP/1.1 server on a free loopback port serves every provider under its own path prefix
//! (see [`Provider::prefix`]) with JSON in the real APIs' shapes. Prices follow seeded,
//! deterministic paths indexed by the simulated unix second, so the same seed at the same
//! simulated instant gives the same bytes. The free-tier limits are enforced (429 with
//! `Retry-After`); every call is counted per provider and endpoint; faults and latency can be
//! injected.
//!
//! Batch requests follow the providers' own rules: a CoinGecko `/simple/price` is one call
//! whatever its `ids`; a CoinMarketCap quotes request costs call credits (1 per 100 coins, times
//! the `convert` currencies) against the day and month quotas, 1 request against the minute
//! limit; a Binance `/api/v3/ticker/price` weighs 2 with `symbol`, 4 with `symbols` or none;
//! DexScreener's `/tokens/v1` refuses more than 30 addresses with a 400. [`EndpointCalls`]
//! counts the items asked for and what each provider's quota was charged.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use syntra_sim::{Limits, SimConfig, Simulator};
//! let sim = Simulator::start(SimConfig { seed: 7, limits: Limits::free_tier(), ..SimConfig::default() }).await?;
//! let url = format!("{}/simple/price?ids=bitcoin&vs_currencies=usd", sim.base_url("coingecko"));
//! // ... GET url ...
//! assert_eq!(sim.count("coingecko", "/simple/price"), 0);
//! # Ok(()) }
//! ```

mod binance;
mod coingecko;
mod coinmarketcap;
mod cryptopanic;
mod dexscreener;
mod feargreed;
mod limits;
pub mod market;
pub mod redis_server;
mod util;

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::json;
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};

pub use binance::{interval_secs, klines_weight};
pub use feargreed::classify as fear_greed_classification;
pub use limits::Limits;

use limits::{Bucket, BucketId, Verdict, Windows, DAY_MS, MINUTE_MS, MONTH_MS};
use market::Market;
use util::{Query, Reply};

/// 2025-01-01T00:00:00Z: the default simulated start instant.
pub const DEFAULT_EPOCH_UNIX: u64 = 1_735_689_600;

/// A simulated provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Provider {
    CoinGecko,
    Binance,
    DexScreener,
    CoinMarketCap,
    CryptoPanic,
    FearGreed,
}

impl Provider {
    /// Every provider.
    pub const ALL: [Provider; 6] = [
        Provider::CoinGecko,
        Provider::Binance,
        Provider::DexScreener,
        Provider::CoinMarketCap,
        Provider::CryptoPanic,
        Provider::FearGreed,
    ];

    /// Lower-case name used throughout the API: `coingecko`, `binance`, `dexscreener`,
    /// `coinmarketcap`, `cryptopanic`, `feargreed`.
    pub fn name(self) -> &'static str {
        match self {
            Provider::CoinGecko => "coingecko",
            Provider::Binance => "binance",
            Provider::DexScreener => "dexscreener",
            Provider::CoinMarketCap => "coinmarketcap",
            Provider::CryptoPanic => "cryptopanic",
            Provider::FearGreed => "feargreed",
        }
    }

    /// Path prefix on the simulator. The rest of the path is the real API's path after its base
    /// URL (e.g. CoinGecko's base `https://api.coingecko.com/api/v3` maps to `/coingecko/api/v3`).
    pub fn prefix(self) -> &'static str {
        match self {
            Provider::CoinGecko => "/coingecko/api/v3",
            Provider::Binance => "/binance",
            Provider::DexScreener => "/dexscreener",
            Provider::CoinMarketCap => "/coinmarketcap",
            Provider::CryptoPanic => "/cryptopanic",
            Provider::FearGreed => "/feargreed",
        }
    }

    /// Parses a provider name (case-insensitive; `cmc`, `fng`, `fear_greed` also accepted).
    pub fn parse(name: &str) -> Option<Provider> {
        let n = name.to_ascii_lowercase().replace(['_', '-', ' '], "");
        Some(match n.as_str() {
            "coingecko" => Provider::CoinGecko,
            "binance" => Provider::Binance,
            "dexscreener" => Provider::DexScreener,
            "coinmarketcap" | "cmc" => Provider::CoinMarketCap,
            "cryptopanic" => Provider::CryptoPanic,
            "feargreed" | "fng" => Provider::FearGreed,
            _ => return None,
        })
    }
}

impl AsRef<str> for Provider {
    fn as_ref(&self) -> &str {
        self.name()
    }
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

fn provider(name: &str) -> Provider {
    Provider::parse(name).unwrap_or_else(|| panic!("syntra-sim: unknown provider {name:?}"))
}

/// Simulator settings.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Seed of every price path and generated item.
    pub seed: u64,
    /// Rate limits to enforce.
    pub limits: Limits,
    /// Simulated seconds per real second. `1.0` (default) follows real time; `0.0` freezes the
    /// clock (then only [`Simulator::advance`] moves it), which makes responses byte-identical.
    pub clock_speed: f64,
    /// Artificial latency added to every response (default 3 ms).
    pub latency: Duration,
    /// Simulated unix time (seconds) at start; default [`DEFAULT_EPOCH_UNIX`].
    pub epoch_unix: u64,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            seed: 42,
            limits: Limits::free_tier(),
            clock_speed: 1.0,
            latency: Duration::from_millis(3),
            epoch_unix: DEFAULT_EPOCH_UNIX,
        }
    }
}

impl SimConfig {
    /// Defaults with `seed`.
    pub fn seeded(seed: u64) -> Self {
        SimConfig { seed, ..SimConfig::default() }
    }
}

/// An injected fault: every request to the provider gets `status` until cleared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fault {
    pub status: u16,
    /// `Retry-After` header value in seconds, if any.
    pub retry_after: Option<u64>,
}

impl Fault {
    /// A fault with `status`; 429 and 503 carry `Retry-After: 1`.
    pub fn status(status: u16) -> Self {
        Fault { status, retry_after: matches!(status, 429 | 503).then_some(1) }
    }
}

/// Per-endpoint counters.
///
/// New fields may be added; build values with `..Default::default()`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EndpointCalls {
    /// Requests received, whatever the answer.
    pub total: u64,
    /// 429s sent (rate limit or injected).
    pub rejected: u64,
    /// Other non-2xx answers (injected faults, 401, 404, 400 ...).
    pub failed: u64,
    /// Items the requests asked for, whatever the answer (429s included): the batch size of
    /// batch endpoints, 1 for endpoints about one item, 0 where it has no meaning.
    ///
    /// | endpoint | items |
    /// | --- | --- |
    /// | CoinGecko `/simple/price` | entries of `ids` |
    /// | CoinGecko `/coins/{id}`, `/coins/{id}/market_chart` | 1 |
    /// | CoinGecko `/coins/markets` | entries of `ids` (0 when absent) |
    /// | CoinMarketCap `/v1`, `/v2` `.../quotes/latest` | entries of `symbol`, else `slug`, else `id` (the list the handler reads) |
    /// | Binance `/api/v3/ticker/price` | 1 with `symbol`, the length of `symbols=[...]`, 0 for all symbols |
    /// | Binance `/api/v3/klines`, `/fapi/v1/fundingRate`, `/fapi/v1/openInterest` | 1 |
    /// | Binance `/fapi/v1/premiumIndex` | 1 with `symbol`, 0 for all symbols |
    /// | DexScreener `/tokens/v1/{chainId}/{tokenAddresses}` | addresses in the path (also when more than 30) |
    /// | DexScreener `/token-pairs/v1/...`, `/latest/dex/pairs/...` | 1 |
    /// | everything else (search, lists, trending, global, news, Fear & Greed, ping ...) | 0 |
    pub items: u64,
    /// What the provider's quota was charged: CoinMarketCap call credits (see
    /// [`Limits::coinmarketcap_per_day`]), Binance request weight, 1 per request elsewhere.
    /// Nothing for answers that consume nothing: 429s (rate limit or injected), injected
    /// faults, 401 (missing credentials), 405; nor for CoinMarketCap error answers, which
    /// CoinMarketCap does not charge credits for (they still count against its per-minute
    /// request limit).
    pub cost: u64,
}

/// A snapshot of the call counters, keyed by `(provider, endpoint)`.
///
/// The endpoint is the route pattern relative to the provider's base URL, e.g.
/// `/simple/price`, `/coins/{id}`, `/coins/{id}/market_chart`, `/api/v3/klines`,
/// `/token-pairs/v1/{chainId}/{tokenAddress}`; unknown paths are counted under the raw path.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Calls {
    map: BTreeMap<(String, String), EndpointCalls>,
}

impl Calls {
    /// Requests received by one endpoint (including rejected ones).
    pub fn get(&self, provider: impl AsRef<str>, endpoint: &str) -> u64 {
        self.endpoint(provider, endpoint).total
    }

    /// Full counters of one endpoint.
    pub fn endpoint(&self, provider: impl AsRef<str>, endpoint: &str) -> EndpointCalls {
        let p = self::provider(provider.as_ref()).name();
        self.map.get(&(p.to_string(), endpoint.to_string())).copied().unwrap_or_default()
    }

    /// Requests received by one provider.
    pub fn provider(&self, provider: impl AsRef<str>) -> u64 {
        let p = self::provider(provider.as_ref()).name();
        self.map.iter().filter(|((q, _), _)| q == p).map(|(_, c)| c.total).sum()
    }

    /// Requests received in all.
    pub fn total(&self) -> u64 {
        self.map.values().map(|c| c.total).sum()
    }

    /// 429s sent in all.
    pub fn rejected(&self) -> u64 {
        self.map.values().map(|c| c.rejected).sum()
    }

    /// What `provider`'s quota was charged, all endpoints (see [`EndpointCalls::cost`]:
    /// CoinMarketCap credits, Binance weight, requests elsewhere).
    pub fn cost(&self, provider: impl AsRef<str>) -> u64 {
        let p = self::provider(provider.as_ref()).name();
        self.map.iter().filter(|((q, _), _)| q == p).map(|(_, c)| c.cost).sum()
    }

    /// `((provider, endpoint), counters)` in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str, EndpointCalls)> {
        self.map.iter().map(|((p, e), c)| (p.as_str(), e.as_str(), *c))
    }
}

impl fmt::Display for Calls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `items` is the batch size asked for; `cost` is in the provider's own unit (CoinMarketCap
        // credits, Binance weight, requests elsewhere), so it has no cross-provider total.
        writeln!(
            f,
            "{:<14} {:<44} {:>7} {:>8} {:>6} {:>7} {:>7}",
            "provider", "endpoint", "calls", "rejected", "failed", "items", "cost"
        )?;
        for (p, e, c) in self.iter() {
            writeln!(
                f,
                "{p:<14} {e:<44} {:>7} {:>8} {:>6} {:>7} {:>7}",
                c.total, c.rejected, c.failed, c.items, c.cost
            )?;
        }
        let failed: u64 = self.map.values().map(|c| c.failed).sum();
        write!(f, "{:<14} {:<44} {:>7} {:>8} {:>6}", "total", "", self.total(), self.rejected(), failed)
    }
}

/// A matched route: endpoint label, rate-limit group, cost and items asked for.
#[derive(Debug, Clone)]
pub(crate) struct Route {
    pub endpoint: String,
    /// Charge against the provider's quota: Binance request weight, CoinMarketCap credits
    /// (day and month limits), 1 elsewhere.
    pub cost: u32,
    pub profiles: bool,
    /// Items asked for (see [`EndpointCalls::items`]).
    pub items: u64,
}

impl Route {
    pub fn new(endpoint: &str) -> Self {
        Route { endpoint: endpoint.to_string(), cost: 1, profiles: false, items: 0 }
    }

    pub fn unknown(path: &str) -> Self {
        Route::new(if path.is_empty() { "/" } else { path })
    }

    pub fn cost(mut self, cost: u32) -> Self {
        self.cost = cost;
        self
    }

    pub fn profiles(mut self) -> Self {
        self.profiles = true;
        self
    }

    pub fn items(mut self, items: usize) -> Self {
        self.items = items as u64;
        self
    }
}

/// What a handler sees: the market and the simulated instant.
pub(crate) struct Ctx {
    pub market: Market,
    /// Simulated unix time in milliseconds.
    pub now_ms: i64,
}

impl Ctx {
    pub fn now_s(&self) -> i64 {
        self.now_ms.div_euclid(1000)
    }
}

struct Inner {
    limits: Limits,
    windows: Windows,
    calls: BTreeMap<(String, String), EndpointCalls>,
    authenticated: HashMap<Provider, u64>,
    faults: HashMap<Provider, Fault>,
    latency: Duration,
    speed: f64,
    /// Real instant and simulated elapsed ms at the last speed change.
    anchor: (Instant, f64),
}

struct State {
    market: Market,
    epoch_ms: i64,
    inner: Mutex<Inner>,
}

impl State {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave counters inconsistent in a way that
        // matters to tests; keep serving.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn elapsed_ms(inner: &Inner) -> f64 {
        inner.anchor.1 + inner.anchor.0.elapsed().as_secs_f64() * 1000.0 * inner.speed
    }

    fn now_ms(&self, inner: &Inner) -> i64 {
        self.epoch_ms + Self::elapsed_ms(inner) as i64
    }

    fn buckets(limits: &Limits, p: Provider, route: &Route) -> Vec<Bucket> {
        let mut v = Vec::new();
        let mut add = |id, window_ms, cap: Option<u32>, cost| {
            if let Some(capacity) = cap {
                v.push(Bucket { id, window_ms, capacity, cost });
            }
        };
        match p {
            Provider::CoinGecko => {
                add(BucketId::CoinGeckoMinute, MINUTE_MS, limits.coingecko_per_minute, 1);
                add(BucketId::CoinGeckoMonth, MONTH_MS, limits.coingecko_per_month, 1);
            }
            Provider::CoinMarketCap => {
                // The minute limit counts requests; the day and month quotas count credits.
                add(BucketId::CmcMinute, MINUTE_MS, limits.coinmarketcap_per_minute, 1);
                add(BucketId::CmcDay, DAY_MS, limits.coinmarketcap_per_day, route.cost);
                add(BucketId::CmcMonth, MONTH_MS, limits.coinmarketcap_per_month, route.cost);
            }
            Provider::DexScreener => {
                if route.profiles {
                    add(BucketId::DexProfiles, MINUTE_MS, limits.dexscreener_profiles_per_minute, 1);
                } else {
                    add(BucketId::DexPairs, MINUTE_MS, limits.dexscreener_per_minute, 1);
                }
            }
            Provider::Binance => {
                // Always tracked so X-MBX-USED-WEIGHT-1M is reported even when unlimited.
                let cap = limits.binance_weight_per_minute.unwrap_or(u32::MAX);
                add(BucketId::BinanceWeight, MINUTE_MS, Some(cap), route.cost);
                add(BucketId::BinanceRequests, MINUTE_MS, limits.binance_requests_per_minute, 1);
            }
            Provider::CryptoPanic => {
                add(BucketId::CryptoPanicMinute, MINUTE_MS, limits.cryptopanic_per_minute, 1);
            }
            Provider::FearGreed => {
                add(BucketId::FearGreedMinute, MINUTE_MS, limits.feargreed_per_minute, 1);
            }
        }
        v
    }

    fn process(&self, method: &Method, path: &str, q: &Query, headers: &hyper::HeaderMap) -> (Reply, Duration) {
        let Some(p) =
            Provider::ALL.into_iter().find(|p| path == p.prefix() || path.starts_with(&format!("{}/", p.prefix())))
        else {
            let latency = self.lock().latency;
            return (Reply::json(404, &json!({"error": "unknown provider"})), latency);
        };
        let rest = &path[p.prefix().len()..];
        let route = match p {
            Provider::CoinGecko => coingecko::route(rest, q),
            Provider::Binance => binance::route(rest, q),
            Provider::DexScreener => dexscreener::route(rest),
            Provider::CoinMarketCap => coinmarketcap::route(rest, q),
            Provider::CryptoPanic => cryptopanic::route(rest),
            Provider::FearGreed => feargreed::route(rest),
        };

        // Admission under the lock: count, faults, auth, limits.
        let (ctx, early, latency, weight) = {
            let mut inner = self.lock();
            let ctx = Ctx { market: self.market, now_ms: self.now_ms(&inner) };
            let latency = inner.latency;
            let authed = match p {
                Provider::CoinGecko => {
                    headers.contains_key("x-cg-demo-api-key")
                        || headers.contains_key("x-cg-pro-api-key")
                        || q.get("x_cg_demo_api_key").is_some()
                }
                Provider::CoinMarketCap => coinmarketcap::authorize(&ctx, headers, q).is_ok(),
                Provider::CryptoPanic => cryptopanic::authorize(q).is_ok(),
                _ => false,
            };
            if authed {
                *inner.authenticated.entry(p).or_default() += 1;
            }
            let early = if method != Method::GET {
                Some(Reply::json(405, &json!({"error": "method not allowed"})))
            } else if let Some(f) = inner.faults.get(&p).copied() {
                let mut r = fault_reply(&ctx, p, f.status);
                if let Some(s) = f.retry_after {
                    r = r.header("Retry-After", s);
                }
                Some(r)
            } else {
                let auth = match p {
                    Provider::CoinMarketCap => coinmarketcap::authorize(&ctx, headers, q).err(),
                    Provider::CryptoPanic => cryptopanic::authorize(q).err(),
                    _ => None,
                };
                match auth {
                    Some(r) => Some(r),
                    None => {
                        let buckets = Self::buckets(&inner.limits, p, &route);
                        let now = ctx.now_ms as u64;
                        match inner.windows.check(&buckets, now) {
                            Verdict::Allowed => None,
                            Verdict::Rejected { id, retry_after_s, .. } => {
                                Some(limit_reply(&ctx, id).header("Retry-After", retry_after_s))
                            }
                        }
                    }
                }
            };
            let weight = if p == Provider::Binance {
                let buckets = Self::buckets(&Limits::unlimited(), p, &route);
                Some(inner.windows.peek(&buckets[0], ctx.now_ms as u64))
            } else {
                None
            };
            if let Some(r) = &early {
                // Nothing was charged: the request never passed the limits.
                Self::record(&mut inner, p, &route, r.status, 0);
            }
            (ctx, early, latency, weight)
        };

        let mut reply = match early {
            Some(r) => r,
            None => {
                let r = match p {
                    Provider::CoinGecko => coingecko::handle(&ctx, rest, q),
                    Provider::Binance => binance::handle(&ctx, rest, q),
                    Provider::DexScreener => dexscreener::handle(&ctx, rest, q),
                    Provider::CoinMarketCap => coinmarketcap::handle(&ctx, rest, q),
                    Provider::CryptoPanic => cryptopanic::handle(&ctx, rest, q),
                    Provider::FearGreed => feargreed::handle(&ctx, rest, q),
                };
                let mut inner = self.lock();
                let mut charged = u64::from(route.cost);
                if p == Provider::CoinMarketCap && !(200..300).contains(&r.status) {
                    // CoinMarketCap charges credits for successful calls only: give back the
                    // day and month credits taken at admission (the minute's request stays).
                    let buckets = Self::buckets(&inner.limits, p, &route);
                    let credit_buckets: Vec<Bucket> =
                        buckets.into_iter().filter(|b| matches!(b.id, BucketId::CmcDay | BucketId::CmcMonth)).collect();
                    inner.windows.refund(&credit_buckets, ctx.now_ms as u64);
                    charged = 0;
                }
                Self::record(&mut inner, p, &route, r.status, charged);
                r
            }
        };
        if let Some(w) = weight {
            reply = reply.header("X-MBX-USED-WEIGHT-1M", w);
        }
        (reply, latency)
    }

    fn record(inner: &mut Inner, p: Provider, route: &Route, status: u16, charged: u64) {
        let c = inner.calls.entry((p.name().to_string(), route.endpoint.clone())).or_default();
        c.total += 1;
        c.items += route.items;
        c.cost += charged;
        if status == 429 {
            c.rejected += 1;
        } else if !(200..300).contains(&status) {
            c.failed += 1;
        }
    }
}

/// Body of a provider's rate-limit (429) answer, in its own error shape.
fn limit_reply(ctx: &Ctx, id: BucketId) -> Reply {
    match id {
        BucketId::CoinGeckoMinute => Reply::json(
            429,
            &json!({"status": {"error_code": 429, "error_message": "You've exceeded the Rate Limit. Please visit https://www.coingecko.com/en/api/pricing to subscribe to our API plans for higher rate limits."}}),
        ),
        BucketId::CoinGeckoMonth => Reply::json(
            429,
            &json!({"status": {"error_code": 429, "error_message": "You've exceeded the monthly credit limit of your plan. Please visit https://www.coingecko.com/en/api/pricing to upgrade."}}),
        ),
        BucketId::CmcMinute => coinmarketcap::error(
            ctx,
            429,
            1008,
            "You've exceeded your API Key's HTTP request rate limit. Rate limits reset every minute.",
        ),
        BucketId::CmcDay => coinmarketcap::error(ctx, 429, 1009, "You've exceeded your API Key's daily rate limit."),
        BucketId::CmcMonth => {
            coinmarketcap::error(ctx, 429, 1010, "You've exceeded your API Key's monthly rate limit.")
        }
        BucketId::BinanceWeight | BucketId::BinanceRequests => Reply::json(
            429,
            &json!({"code": -1003, "msg": "Too many requests; current limit of IP(127.0.0.1) is 6000 requests per minute. Please use the websocket for live updates to avoid polling the API."}),
        ),
        BucketId::DexPairs | BucketId::DexProfiles => Reply::json(429, &json!({"error": "Too Many Requests"})),
        BucketId::CryptoPanicMinute => Reply::json(429, &json!({"status": "api_error", "info": "Rate limit exceeded"})),
        BucketId::FearGreedMinute => Reply::json(429, &json!({"metadata": {"error": "Too Many Requests"}})),
    }
}

/// Body of an injected fault, in the provider's error shape where it has one.
fn fault_reply(ctx: &Ctx, p: Provider, status: u16) -> Reply {
    let msg = match status {
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        _ => "Error",
    };
    let body = match p {
        Provider::CoinGecko => json!({"status": {"error_code": status, "error_message": msg}}),
        Provider::Binance => json!({"code": -1000, "msg": msg}),
        Provider::CoinMarketCap => {
            json!({"status": coinmarketcap::status(ctx, i64::from(status), Some(msg), 0)})
        }
        Provider::CryptoPanic => json!({"status": "api_error", "info": msg}),
        Provider::FearGreed => json!({"metadata": {"error": msg}}),
        Provider::DexScreener => json!({"error": msg}),
    };
    Reply::json(status, &body)
}

/// A running simulator. Stops on drop or [`Simulator::shutdown`].
pub struct Simulator {
    addr: SocketAddr,
    seed: u64,
    state: Arc<State>,
    task: Option<JoinHandle<()>>,
}

impl fmt::Debug for Simulator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Simulator").field("addr", &self.addr).field("seed", &self.seed).finish()
    }
}

impl Simulator {
    /// Binds `127.0.0.1:0` and starts serving on the current tokio runtime.
    pub async fn start(config: SimConfig) -> std::io::Result<Simulator> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(State {
            market: Market { seed: config.seed },
            epoch_ms: config.epoch_unix as i64 * 1000,
            inner: Mutex::new(Inner {
                limits: config.limits,
                windows: Windows::default(),
                calls: BTreeMap::new(),
                authenticated: HashMap::new(),
                faults: HashMap::new(),
                latency: config.latency,
                speed: config.clock_speed.max(0.0),
                anchor: (Instant::now(), 0.0),
            }),
        });
        let task = tokio::spawn(serve(listener, state.clone()));
        Ok(Simulator { addr, seed: config.seed, state, task: Some(task) })
    }

    /// The bound address (`127.0.0.1:<port>`).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The base URL standing in for a provider's real one, e.g.
    /// `base_url("coingecko")` = `http://127.0.0.1:<port>/coingecko/api/v3` (for
    /// `https://api.coingecko.com/api/v3`), `base_url("binance")` = `http://127.0.0.1:<port>/binance`
    /// (for both `https://api.binance.com` and `https://fapi.binance.com`).
    ///
    /// # Panics
    /// On an unknown provider name.
    pub fn base_url(&self, provider: impl AsRef<str>) -> String {
        format!("{}{}", self.url(), self::provider(provider.as_ref()).prefix())
    }

    /// The seed.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// A snapshot of the call counters.
    pub fn calls(&self) -> Calls {
        Calls { map: self.state.lock().calls.clone() }
    }

    /// Requests received by `provider`'s `endpoint` (route pattern such as `/simple/price` or
    /// `/coins/{id}`), including rejected ones.
    pub fn count(&self, provider: impl AsRef<str>, endpoint: &str) -> u64 {
        self.calls().get(provider, endpoint)
    }

    /// Requests received by `provider`, all endpoints.
    pub fn provider_count(&self, provider: impl AsRef<str>) -> u64 {
        self.calls().provider(provider)
    }

    /// Requests received in all.
    pub fn total(&self) -> u64 {
        self.calls().total()
    }

    /// 429s sent in all.
    pub fn rejected(&self) -> u64 {
        self.calls().rejected()
    }

    /// 429s sent by `provider`.
    pub fn rejected_for(&self, provider: impl AsRef<str>) -> u64 {
        let p = self::provider(provider.as_ref()).name();
        self.calls().iter().filter(|(q, _, _)| *q == p).map(|(_, _, c)| c.rejected).sum()
    }

    /// Requests to `provider` that carried credentials (CoinGecko `x-cg-demo-api-key`,
    /// CoinMarketCap `X-CMC_PRO_API_KEY`, CryptoPanic `auth_token`).
    pub fn authenticated(&self, provider: impl AsRef<str>) -> u64 {
        let p = self::provider(provider.as_ref());
        self.state.lock().authenticated.get(&p).copied().unwrap_or(0)
    }

    /// Zeroes the call counters (not the rate-limit windows).
    pub fn reset_counts(&self) {
        let mut inner = self.state.lock();
        inner.calls.clear();
        inner.authenticated.clear();
    }

    /// Empties every rate-limit window.
    pub fn reset_limits(&self) {
        self.state.lock().windows.clear();
    }

    /// Replaces the enforced limits (windows keep their usage).
    pub fn set_limits(&self, limits: Limits) {
        self.state.lock().limits = limits;
    }

    /// Makes every request to `provider` answer `status` (429/503 with `Retry-After: 1`) until
    /// called again with `None`. Faulted requests are counted.
    pub fn set_fail(&self, provider: impl AsRef<str>, status: Option<u16>) {
        self.set_fault(provider, status.map(Fault::status));
    }

    /// Like [`set_fail`](Self::set_fail) with full control over the fault.
    pub fn set_fault(&self, provider: impl AsRef<str>, fault: Option<Fault>) {
        let p = self::provider(provider.as_ref());
        let mut inner = self.state.lock();
        match fault {
            Some(f) => inner.faults.insert(p, f),
            None => inner.faults.remove(&p),
        };
    }

    /// Sets the artificial latency of every response.
    pub fn set_latency(&self, latency: Duration) {
        self.state.lock().latency = latency;
    }

    /// Moves the simulated clock forward.
    pub fn advance(&self, by: Duration) {
        let mut inner = self.state.lock();
        inner.anchor.1 += by.as_secs_f64() * 1000.0;
    }

    /// Changes the clock speed (simulated seconds per real second; `0.0` freezes it).
    pub fn set_clock_speed(&self, speed: f64) {
        let mut inner = self.state.lock();
        let now = State::elapsed_ms(&inner);
        inner.anchor = (Instant::now(), now);
        inner.speed = speed.max(0.0);
    }

    /// Simulated time elapsed since start.
    pub fn elapsed(&self) -> Duration {
        Duration::from_secs_f64(State::elapsed_ms(&self.state.lock()).max(0.0) / 1000.0)
    }

    /// Simulated unix time in milliseconds.
    pub fn now_ms(&self) -> i64 {
        let inner = self.state.lock();
        self.state.now_ms(&inner)
    }

    /// Stops the server and waits for it to finish.
    pub async fn shutdown(mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

async fn serve(listener: TcpListener, state: Arc<State>) {
    // Dropping this task (abort) drops the JoinSet, which aborts every connection.
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let _ = stream.set_nodelay(true);
                    let state = state.clone();
                    conns.spawn(async move {
                        let svc = service_fn(move |req| {
                            let state = state.clone();
                            async move { Ok::<_, Infallible>(handle(&state, req).await) }
                        });
                        let _ = http1::Builder::new()
                            .keep_alive(true)
                            .serve_connection(TokioIo::new(stream), svc)
                            .await;
                    });
                }
                // Out of descriptors or similar: back off instead of spinning.
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
}

async fn handle(state: &State, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let path = req.uri().path().to_string();
    let q = Query::parse(req.uri().query());
    let (reply, latency) = state.process(req.method(), &path, &q, req.headers());
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let mut resp = Response::builder().status(reply.status).header("content-type", "application/json; charset=utf-8");
    for (k, v) in &reply.headers {
        resp = resp.header(*k, v);
    }
    resp.body(Full::new(Bytes::from(reply.body)))
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::from_static(b"{}"))))
}
