//! The Syntra bot workload: simulated users asking a realistic mix of questions, answered
//! through the cached provider services, and the report that sums it up.
//!
//! Used by `examples/syntra.rs` (the demo, `cargo run --release --example syntra`) and by
//! `tests/demo.rs`, which include it with `#[path]`. Both crate roots also declare
//! `mod providers;` (examples/providers), so this module refers to it as `crate::providers`.
//!
//! # Simulated time
//!
//! Rate limits are per minute (CoinGecko 30/min) and per day (CoinMarketCap ~333/day), and TTLs
//! run from 30 s to an hour: a workload that shows them working needs tens of minutes. The demo
//! compresses time instead of waiting: the simulator's clock runs `speed` times faster than the
//! wall clock (its rate-limit windows are on that clock), and every TTL is divided by the same
//! factor (the cache's TTLs are wall-clock), so a 90 s price TTL lasts 1.5 s at 60x and still
//! spans exactly 1.5 simulated minutes. The questions are spread over `minutes` simulated
//! minutes. Latencies are not scaled: they are real time against the local simulator.
//! With `--live` there is no compression (`speed` is 1 and the TTLs are the real ones).
//!
//! # Budgets
//!
//! By default the cache enforces the providers' budgets (`providers::config::budgets`): rate
//! limits, day and month quotas, pacing. Their clock ([`SimulatedClock`]) runs at the same
//! speed from the same instant as the simulator's, so a per-minute rate is per simulated
//! minute and quota days and months are simulated ones; the waits for a permit are bounded in
//! simulated time too (each budget's `max_wait` divided by `speed`, because the runtime sleeps
//! in real time). The run starts at [`window_start`] (15 January, 01:00 UTC) with empty budget
//! counters. With `--redis`, the shared rate limits run on the Redis server's wall clock, so
//! their periods are divided by `speed` as well. `--no-budgets` runs the same workload the seed's
//! way: the plain TTLs, no budgets, no stale windows.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use syntra_cache::budget::{BudgetStats, Budgets, Clock, Limit};
use syntra_cache::{Cache, Stats};
use syntra_sim::market::{Coin, DexToken, BINANCE_SYMBOLS, COINS, DEX_TOKENS};
use syntra_sim::{Calls, SimConfig, Simulator};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::providers::config::{self as provider_config, ConfigError, Limits, ProviderLimit, Ttls};
use crate::providers::{ApiError, Interval, Providers};

// ---------------------------------------------------------------------------------------------
// Configuration

/// Which cache the services use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CacheMode {
    /// The embedded in-memory cache (namespace `syntra`).
    Memory,
    /// Redis at this URL, with the in-memory tier in front.
    Redis(String),
    /// The in-memory cache over a disk file that survives restarts (`--disk PATH`).
    Disk(std::path::PathBuf),
    /// No caching: every call goes upstream (`--no-cache`).
    Disabled,
}

/// A workload run.
#[derive(Debug, Clone)]
pub struct Config {
    /// Questions to answer.
    pub requests: usize,
    /// Distinct simulated users asking them.
    pub users: usize,
    /// Seed of the question plan and of the simulator.
    pub seed: u64,
    /// Questions answered at the same time, at most.
    pub concurrency: usize,
    /// Simulated minutes the questions are spread over.
    pub minutes: f64,
    /// Simulated seconds per real second (simulator clock and TTLs alike).
    pub speed: f64,
    /// The cache.
    pub cache: CacheMode,
    /// The real APIs (keys from the environment) instead of the simulator.
    pub live: bool,
    /// A progress line every second (on stderr).
    pub progress: bool,
    /// Latency the simulator adds to every response (real time).
    pub sim_latency: Duration,
    /// Enforce the providers' budgets (`providers::config::budgets`); `false` (`--no-budgets`)
    /// runs the seed's plain TTLs without budgets or stale windows.
    pub budgets: bool,
    /// Batch upstream calls (concurrent price and quote misses share one call); `false`
    /// (`--no-batch`) makes one call per coin, for comparison.
    pub batch: bool,
    /// Warm the cache before the first question (`false`: `--cold`): the three CoinGecko
    /// answers every kind of question shares (the coin list names are resolved with, the global
    /// market, the trending coins), one call each, as a bot does when it starts.
    pub warm_up: bool,
    /// Called with the run's cache once it is built (the demo's `--listen` serves the dashboard
    /// of it).
    pub on_cache: Option<fn(&Cache)>,
}

impl Default for Config {
    /// The demo's defaults: 6,000 questions from 200 users over 20 simulated minutes at 60x,
    /// budgets on. Heavy on purpose: the seed's plain TTLs break CoinGecko's 30 calls/min and
    /// burn its month's quota in hours.
    fn default() -> Self {
        Config {
            requests: 6_000,
            users: 200,
            seed: 42,
            concurrency: 32,
            minutes: 20.0,
            speed: 60.0,
            cache: CacheMode::Memory,
            live: false,
            progress: true,
            sim_latency: Duration::from_millis(3),
            budgets: true,
            batch: true,
            warm_up: true,
            on_cache: None,
        }
    }
}

impl Config {
    /// The clock compression actually used (1 against the real APIs).
    pub fn effective_speed(&self) -> f64 {
        if self.live {
            1.0
        } else {
            self.speed
        }
    }

    /// Real time the questions are spread over.
    pub fn real_span(&self) -> Duration {
        Duration::try_from_secs_f64(self.minutes * 60.0 / self.effective_speed()).unwrap_or_default()
    }
}

/// Why a run could not start (or finish).
#[derive(Debug)]
pub enum RunError {
    /// A setting is out of range.
    Invalid(String),
    /// TTL or budget overrides from the environment were rejected.
    Ttl(ConfigError),
    /// The cache could not be built (bad Redis URL ...).
    Cache(syntra_cache::BuildError),
    /// The simulator could not start.
    Simulator(std::io::Error),
    /// `--live`: the real APIs cannot be reached at all.
    Unreachable(String),
    /// A worker task panicked.
    Task(String),
}

impl fmt::Display for RunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RunError::Invalid(m) => write!(f, "invalid setting: {m}"),
            RunError::Ttl(e) => write!(f, "{e}"),
            RunError::Cache(e) => write!(f, "cannot build the cache: {e}"),
            RunError::Simulator(e) => write!(f, "cannot start the provider simulator: {e}"),
            RunError::Unreachable(m) => write!(f, "the real APIs cannot be reached: {m}"),
            RunError::Task(m) => write!(f, "a worker failed: {m}"),
        }
    }
}

impl std::error::Error for RunError {}

// ---------------------------------------------------------------------------------------------
// Deterministic randomness

/// SplitMix64: tiny, seeded, good enough for a workload plan.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x5EED_5EED_D1CE_D1CE)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }
}

/// Sampling from fixed weights.
#[derive(Debug, Clone)]
pub struct Weighted {
    cumulative: Vec<f64>,
}

impl Weighted {
    pub fn new(weights: &[f64]) -> Weighted {
        let mut sum = 0.0;
        let cumulative = weights
            .iter()
            .map(|w| {
                sum += w.max(0.0);
                sum
            })
            .collect();
        Weighted { cumulative }
    }

    /// Zipf over `n` ranks: rank `k` (from 1) has weight `1 / k^s`.
    pub fn zipf(n: usize, s: f64) -> Weighted {
        let w: Vec<f64> = (1..=n).map(|k| 1.0 / (k as f64).powf(s)).collect();
        Weighted::new(&w)
    }

    /// An index, with probability proportional to its weight.
    pub fn sample(&self, rng: &mut Rng) -> usize {
        let total = self.cumulative.last().copied().unwrap_or(0.0);
        let x = rng.unit() * total;
        self.cumulative.partition_point(|&c| c <= x).min(self.cumulative.len().saturating_sub(1))
    }
}

// ---------------------------------------------------------------------------------------------
// Questions

/// What a user asks the bot.
#[derive(Debug, Clone, Copy)]
pub enum Question {
    /// "price of BTC": CoinGecko price + Binance last price.
    Price { coin: &'static Coin, vs: &'static str },
    /// "chart BTC 4h" (in `vs`): Binance klines + CoinGecko market chart.
    Chart { coin: &'static Coin, interval: Interval, vs: &'static str },
    /// "info BTC": CoinGecko metadata + market statistics (typed by name: a search first).
    Info { coin: &'static Coin, by_name: bool },
    /// "market overview": CoinGecko global + trending + Fear & Greed.
    Overview,
    /// "news BTC": CryptoPanic.
    News { coin: &'static Coin },
    /// "dex BONK": DexScreener search + token price (+ its pools).
    Dex { token: &'static DexToken, pools: bool },
    /// "quote BTC": CoinMarketCap.
    Quote { coin: &'static Coin },
    /// "futures BTC": Binance funding rate + open interest.
    Futures { coin: &'static Coin },
}

/// Question kinds in report order, with their share of the mix (percent).
pub const MIX: &[(&str, f64)] = &[
    ("price", 28.0),
    ("chart", 18.0),
    ("info", 12.0),
    ("overview", 10.0),
    ("news", 9.0),
    ("dex", 10.0),
    ("quote", 8.0),
    ("futures", 5.0),
];

/// Chart intervals and how often they are asked (weighted toward 1h and 4h).
const INTERVALS: &[(Interval, f64)] = &[
    (Interval::M1, 4.0),
    (Interval::M5, 7.0),
    (Interval::M15, 12.0),
    (Interval::H1, 37.0),
    (Interval::H4, 27.0),
    (Interval::D1, 13.0),
];

/// Candles per chart.
pub const KLINES_LIMIT: u32 = 100;

/// The currencies users ask prices in, and how often (an international audience; CoinGecko
/// quotes every coin in each of them, so each is a cache key of its own).
const PRICE_VS: &[(&str, f64)] =
    &[("usd", 55.0), ("eur", 12.0), ("gbp", 8.0), ("jpy", 8.0), ("btc", 9.0), ("eth", 8.0)];

/// The currencies charts are drawn in.
const CHART_VS: &[(&str, f64)] = &[("usd", 70.0), ("eur", 10.0), ("gbp", 5.0), ("jpy", 5.0), ("btc", 10.0)];

impl Question {
    pub fn kind(&self) -> &'static str {
        match self {
            Question::Price { .. } => "price",
            Question::Chart { .. } => "chart",
            Question::Info { .. } => "info",
            Question::Overview => "overview",
            Question::News { .. } => "news",
            Question::Dex { .. } => "dex",
            Question::Quote { .. } => "quote",
            Question::Futures { .. } => "futures",
        }
    }
}

impl fmt::Display for Question {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Question::Price { coin, vs } => write!(f, "price of {} in {vs}", coin.symbol),
            Question::Chart { coin, interval, vs: "usd" } => write!(f, "chart {} {interval}", coin.symbol),
            Question::Chart { coin, interval, vs } => write!(f, "chart {} {interval} in {vs}", coin.symbol),
            Question::Info { coin, by_name: true } => write!(f, "info {}", coin.name),
            Question::Info { coin, .. } => write!(f, "info {}", coin.symbol),
            Question::Overview => f.write_str("market overview"),
            Question::News { coin } => write!(f, "news {}", coin.symbol),
            Question::Dex { token, .. } => write!(f, "dex {}", token.symbol),
            Question::Quote { coin } => write!(f, "quote {}", coin.symbol),
            Question::Futures { coin } => write!(f, "futures {}", coin.symbol),
        }
    }
}

/// The Binance spot symbol of a coin against USDT, if listed.
pub fn binance_symbol(coin: &Coin) -> Option<&'static str> {
    BINANCE_SYMBOLS.iter().find(|s| s.base == coin.id && s.quote == "tether").map(|s| s.symbol)
}

/// The Binance perpetual of a coin, if listed.
fn futures_symbol(coin: &Coin) -> Option<&'static str> {
    BINANCE_SYMBOLS.iter().find(|s| s.base == coin.id && s.quote == "tether" && s.futures).map(|s| s.symbol)
}

/// CoinGecko days of history matching a chart interval.
pub fn chart_days(interval: Interval) -> u32 {
    match interval {
        Interval::M1 | Interval::M5 | Interval::M15 | Interval::H1 => 1,
        Interval::H4 => 7,
        Interval::D1 => 30,
    }
}

/// One planned question.
#[derive(Debug, Clone, Copy)]
pub struct Planned {
    /// When it is asked, in simulated time from the start.
    pub at: Duration,
    pub user: u32,
    pub question: Question,
}

/// The deterministic question plan of a config: who asks what, when.
///
/// Coins are asked Zipf-like by market-cap rank (bitcoin most), each user also has a favourite
/// coin they ask about a third of the time; some users are far more active than others;
/// arrivals are a Poisson process spread over `minutes`.
pub fn plan(config: &Config) -> Vec<Planned> {
    let mut rng = Rng::new(config.seed);
    let users = config.users.max(1);
    let coin_pick = Weighted::zipf(COINS.len(), 1.1);
    let token_pick = Weighted::zipf(DEX_TOKENS.len(), 1.0);
    let activity = Weighted::zipf(users, 0.7);
    let favourites: Vec<&'static Coin> = (0..users).map(|_| &COINS[coin_pick.sample(&mut rng)]).collect();
    let kinds = Weighted::new(&MIX.iter().map(|(_, w)| *w).collect::<Vec<_>>());
    let intervals = Weighted::new(&INTERVALS.iter().map(|(_, w)| *w).collect::<Vec<_>>());
    let price_vs = Weighted::new(&PRICE_VS.iter().map(|(_, w)| *w).collect::<Vec<_>>());
    let chart_vs = Weighted::new(&CHART_VS.iter().map(|(_, w)| *w).collect::<Vec<_>>());
    let futures: Vec<&'static Coin> = COINS.iter().filter(|c| futures_symbol(c).is_some()).collect();
    let futures_pick = Weighted::zipf(futures.len(), 1.2);

    // Poisson arrivals, rescaled to span the configured duration.
    let n = config.requests;
    let mut t = 0.0;
    let mut times: Vec<f64> = (0..=n)
        .map(|_| {
            t += -(1.0 - rng.unit()).ln();
            t
        })
        .collect();
    let end = times.pop().unwrap_or(1.0).max(f64::MIN_POSITIVE);
    let span = config.minutes.max(0.0) * 60.0;

    times
        .into_iter()
        .map(|arrival| {
            let user = activity.sample(&mut rng);
            let coin: &'static Coin =
                if rng.chance(0.35) { favourites[user] } else { &COINS[coin_pick.sample(&mut rng)] };
            let question = match MIX[kinds.sample(&mut rng)].0 {
                "price" => Question::Price { coin, vs: PRICE_VS[price_vs.sample(&mut rng)].0 },
                "chart" => Question::Chart {
                    coin,
                    interval: INTERVALS[intervals.sample(&mut rng)].0,
                    vs: CHART_VS[chart_vs.sample(&mut rng)].0,
                },
                "info" => Question::Info { coin, by_name: rng.chance(0.25) },
                "overview" => Question::Overview,
                "news" => Question::News { coin },
                "dex" => Question::Dex { token: &DEX_TOKENS[token_pick.sample(&mut rng)], pools: rng.chance(0.3) },
                "quote" => Question::Quote { coin },
                _ => Question::Futures {
                    coin: futures_symbol(coin).map(|_| coin).unwrap_or_else(|| futures[futures_pick.sample(&mut rng)]),
                },
            };
            Planned { at: Duration::from_secs_f64(arrival / end * span), user: user as u32, question }
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Answering

/// One provider call made while composing an answer.
#[derive(Debug, Clone)]
pub struct CallOutcome {
    pub provider: &'static str,
    pub method: &'static str,
    pub error: Option<ApiError>,
    /// A CoinGecko price's `last_updated_at` (unix seconds): how old the answer was.
    pub priced_at: Option<i64>,
}

fn outcome<T>(provider: &'static str, method: &'static str, r: Result<T, ApiError>) -> CallOutcome {
    CallOutcome { provider, method, error: r.err(), priced_at: None }
}

fn price_outcome(r: Result<crate::providers::coingecko::Price, ApiError>) -> CallOutcome {
    let priced_at = r.as_ref().ok().and_then(|p| p.last_updated_at);
    CallOutcome { priced_at, ..outcome("coingecko", "price", r) }
}

/// Composes the answer to one question: 1-3 provider calls, concurrent where independent.
pub async fn answer(p: &Providers, q: &Question) -> Vec<CallOutcome> {
    match *q {
        Question::Price { coin, vs } => {
            let cg = p.coingecko.price(coin.id, vs);
            match binance_symbol(coin) {
                Some(sym) => {
                    let (a, b) = tokio::join!(cg, p.binance.current_price(sym));
                    vec![price_outcome(a), outcome("binance", "current_price", b)]
                }
                None => vec![price_outcome(cg.await)],
            }
        }
        Question::Chart { coin, interval, vs } => {
            let chart = p.coingecko.market_chart(coin.id, vs, chart_days(interval));
            match binance_symbol(coin) {
                Some(sym) => {
                    let (a, b) = tokio::join!(p.binance.klines(sym, interval, KLINES_LIMIT), chart);
                    vec![outcome("binance", "klines", a), outcome("coingecko", "market_chart", b)]
                }
                None => vec![outcome("coingecko", "market_chart", chart.await)],
            }
        }
        Question::Info { coin, by_name } => {
            let mut calls = Vec::with_capacity(3);
            let mut id = coin.id.to_string();
            if by_name {
                let found = p.coingecko.find_id(coin.name).await;
                if let Ok(Some(found)) = &found {
                    id.clone_from(found);
                }
                let failed = found.is_err();
                calls.push(outcome("coingecko", "find_id", found));
                if failed {
                    return calls;
                }
            }
            let (a, b) = tokio::join!(p.coingecko.coin_data(&id), p.coingecko.market(&id, "usd"));
            calls.push(outcome("coingecko", "coin_data", a));
            calls.push(outcome("coingecko", "market", b));
            calls
        }
        Question::Overview => {
            let (a, b, c) = tokio::join!(p.coingecko.global(), p.coingecko.trending(), p.feargreed.current());
            vec![
                outcome("coingecko", "global", a),
                outcome("coingecko", "trending", b),
                outcome("feargreed", "current", c),
            ]
        }
        Question::News { coin } => {
            vec![outcome("cryptopanic", "news", p.cryptopanic.news(coin.symbol).await)]
        }
        Question::Dex { token, pools } => {
            let query = token.symbol.trim_start_matches('$').to_lowercase();
            let search = p.dexscreener.search(&query);
            let price = p.dexscreener.token_price(token.chain, token.address);
            if pools {
                let (a, b, c) = tokio::join!(search, price, p.dexscreener.token_pairs(token.chain, token.address));
                vec![
                    outcome("dexscreener", "search", a),
                    outcome("dexscreener", "token_price", b),
                    outcome("dexscreener", "token_pairs", c),
                ]
            } else {
                let (a, b) = tokio::join!(search, price);
                vec![outcome("dexscreener", "search", a), outcome("dexscreener", "token_price", b)]
            }
        }
        Question::Quote { coin } => vec![outcome("coinmarketcap", "quote", p.coinmarketcap.quote(coin.symbol).await)],
        Question::Futures { coin } => {
            let sym = futures_symbol(coin).unwrap_or("BTCUSDT");
            let (a, b) = tokio::join!(p.binance.funding_rate(sym), p.binance.open_interest(sym));
            vec![outcome("binance", "funding_rate", a), outcome("binance", "open_interest", b)]
        }
    }
}

/// Loads what every kind of question shares before the first one arrives: CoinGecko's coin list
/// (names are resolved from it), global market and trending coins, one call each. Without it the
/// first minute's 30 CoinGecko calls go to whatever is asked first, and these three, asked by
/// many users, are refused again and again until a permit is left.
pub async fn warm_up(p: &Providers) -> Vec<CallOutcome> {
    let (list, global, trending) = tokio::join!(p.coingecko.coin_list(), p.coingecko.global(), p.coingecko.trending());
    vec![
        outcome("coingecko", "coin_list", list),
        outcome("coingecko", "global", global),
        outcome("coingecko", "trending", trending),
    ]
}

/// A short label of an error, for the error breakdown.
fn error_label(e: &ApiError) -> String {
    match e {
        ApiError::RateLimited { .. } => "rate limited (429)".into(),
        ApiError::Http { status } => format!("HTTP {status}"),
        ApiError::Network(m) => format!("network: {}", shorten(m, 90)),
        ApiError::Decode(_) => "unexpected response".into(),
        ApiError::Unauthorized => "unauthorized (missing or invalid API key)".into(),
        ApiError::NotFound(_) => "not found".into(),
        ApiError::Budget(d) => format!("not sent: budget said no ({}), nothing cached to serve", limit_label(&d.limit)),
    }
}

/// What refused a budget, in a few words.
pub fn limit_label(limit: &Limit) -> String {
    match limit {
        Limit::Rate { limit, per } => format!("rate {}", syntra_cache::budget::Rate { limit: *limit, per: *per }),
        Limit::Quota { period, limit, .. } => format!("{period} quota of {}", thousands(*limit)),
        Limit::Backoff => "backing off after a 429".into(),
        Limit::Weight { .. } => "weight above the limit".into(),
        Limit::Unknown => "unknown budget".into(),
        _ => "other limit".into(),
    }
}

fn shorten(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(max).collect();
        t.push('…');
        t
    }
}

// ---------------------------------------------------------------------------------------------
// Tallies

/// What the bot saw of one provider.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BotCalls {
    /// Calls the answers made to the provider's (cached) methods.
    pub asked: u64,
    /// Of which failed.
    pub failed: u64,
    /// Of which failed with 429.
    pub rate_limited: u64,
    /// Of which were refused by the provider's budget (never sent, nothing cached to serve).
    pub budget_denied: u64,
}

#[derive(Default)]
struct Tally {
    latencies: Vec<Duration>,
    failed_answers: u64,
    users: HashSet<u32>,
    by_kind: BTreeMap<&'static str, (u64, u64)>,
    providers: BTreeMap<&'static str, BotCalls>,
    errors: BTreeMap<(String, String), u64>,
    /// Ages of the CoinGecko prices answered, in simulated seconds.
    price_ages: Vec<u64>,
    /// Calls of the warm-up, and how many of them failed.
    warm_up_calls: u64,
    warm_up_failed: u64,
}

impl Tally {
    /// Calls made outside any answer (the warm-up): counted per provider, not as answers.
    fn record_warm_up(&mut self, calls: &[CallOutcome]) {
        self.count_calls(calls);
        self.warm_up_calls += calls.len() as u64;
        self.warm_up_failed += calls.iter().filter(|c| c.error.is_some()).count() as u64;
    }

    /// Per provider: calls asked, failed, and why.
    fn count_calls(&mut self, calls: &[CallOutcome]) {
        for c in calls {
            let b = self.providers.entry(c.provider).or_default();
            b.asked += 1;
            if let Some(e) = &c.error {
                b.failed += 1;
                match e {
                    ApiError::RateLimited { .. } => b.rate_limited += 1,
                    ApiError::Budget(_) => b.budget_denied += 1,
                    _ => {}
                }
                *self.errors.entry((c.provider.to_string(), error_label(e))).or_default() += 1;
            }
        }
    }

    fn record(&mut self, p: &Planned, calls: &[CallOutcome], took: Duration, now_s: i64) {
        self.latencies.push(took);
        self.price_ages
            .extend(calls.iter().filter_map(|c| c.priced_at).map(|at| now_s.saturating_sub(at).max(0) as u64));
        self.users.insert(p.user);
        let failed = calls.iter().any(|c| c.error.is_some());
        let k = self.by_kind.entry(p.question.kind()).or_default();
        k.0 += 1;
        if failed {
            k.1 += 1;
            self.failed_answers += 1;
        }
        self.count_calls(calls);
    }
}

/// The name under which [`Minutes`] tracks Binance's request weight.
pub const BINANCE_WEIGHT: &str = "binance weight";

/// The per-minute limit of a provider (or of [`BINANCE_WEIGHT`]), from the limits table.
pub fn minute_limit(name: &str) -> Option<u64> {
    if name == BINANCE_WEIGHT {
        return Limits::get("binance").and_then(|l| l.weight_per_minute).map(u64::from);
    }
    Limits::get(name).and_then(|l| l.per_minute).map(u64::from)
}

/// Request weight of each Binance endpoint the bot calls, as the simulator (and Binance)
/// weighs it: klines by the chart's `limit`, the ticker price with a symbol 2, the futures
/// endpoints 1 (for refused calls, which the simulator's `cost` does not count).
fn binance_endpoint_weight(endpoint: &str) -> u64 {
    match endpoint {
        "/api/v3/klines" => u64::from(syntra_sim::klines_weight(KLINES_LIMIT)),
        "/api/v3/ticker/price" => 2,
        _ => 1,
    }
}

/// Cumulative upstream calls per provider as the simulator counted them (429s included), and
/// Binance's cumulative request weight under [`BINANCE_WEIGHT`].
fn sim_counts(calls: &Calls) -> Vec<(String, u64)> {
    let mut counts: Vec<(String, u64)> =
        Limits::ALL.iter().map(|l| (l.provider.to_string(), calls.provider(l.provider))).collect();
    // The simulator's own weight count (`cost`: klines by each call's `limit`, the fallback's
    // candles included), plus the weight the 429-refused calls asked for (they cost nothing there,
    // but the budget granted them).
    let weight = calls
        .iter()
        .filter(|(p, _, _)| *p == "binance")
        .map(|(_, e, c)| c.cost + c.rejected * binance_endpoint_weight(e))
        .sum();
    counts.push((BINANCE_WEIGHT.to_string(), weight));
    counts
}

/// Cumulative upstream calls per provider from `cache.stats()` (live runs: no simulator).
fn stats_counts(stats: &Stats) -> Vec<(String, u64)> {
    stats.by_service().into_iter().map(|s| (s.service, s.upstream_calls)).collect()
}

/// Upstream calls per provider in each simulated minute, from cumulative counts sampled at the
/// minute boundaries of the simulator's clock (its rate-limit windows).
#[derive(Default)]
struct Minutes {
    last: HashMap<String, u64>,
    /// Most calls (or weight) in one minute.
    peak: HashMap<String, u64>,
    /// Minutes with more calls (or weight) than the per-minute limit.
    over: HashMap<String, u64>,
    /// Each budget's TTL stretch at every simulated minute.
    stretch: HashMap<String, Vec<f64>>,
}

impl Minutes {
    fn sample(&mut self, counts: Vec<(String, u64)>) {
        for (name, total) in counts {
            let prev = self.last.insert(name.clone(), total);
            let delta = total.saturating_sub(prev.unwrap_or(0));
            if minute_limit(&name).is_some_and(|limit| delta > limit) {
                *self.over.entry(name.clone()).or_default() += 1;
            }
            let peak = self.peak.entry(name).or_default();
            *peak = (*peak).max(delta);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The report

/// `95 s`, `12 min`, `3.5 h`.
fn secs(s: u64) -> String {
    match s {
        0..=119 => format!("{s} s"),
        120..=7199 => format!("{:.0} min", s as f64 / 60.0),
        _ => format!("{:.1} h", s as f64 / 3600.0),
    }
}

/// One provider's line of the report.
#[derive(Debug, Clone)]
pub struct ProviderRow {
    pub provider: &'static str,
    /// Calls the answers made (through the cache).
    pub asked: u64,
    /// Calls that went upstream, from `cache.stats()`.
    pub upstream: u64,
    /// Upstream calls the simulator received (`None` live).
    pub sim_calls: Option<u64>,
    /// 429s: the simulator's count, or the ones the bot saw when live.
    pub rejected: u64,
    /// Failed upstream calls: `cache.stats()` upstream errors (uncached: failed calls).
    pub upstream_failed: u64,
    /// Non-2xx answers the simulator sent (429s included).
    pub sim_failed: Option<u64>,
    /// Calls the bot saw fail (cached: single-flight followers share their leader's error).
    pub bot_failed: u64,
    /// Most upstream calls in one simulated minute (the simulator's counts, 429s included;
    /// `cache.stats()` live), sampled at the simulator's minute boundaries.
    pub peak_minute: u64,
    /// Simulated minutes in which upstream calls exceeded the per-minute limit.
    pub minutes_over: u64,
    /// Binance only: most request weight in one simulated minute, and the minutes above 6,000.
    pub peak_weight: Option<(u64, u64)>,
    /// Calls the budget refused that had nothing cached to serve (the user saw the error).
    pub budget_denied: u64,
    /// The provider's free-tier limits.
    pub limit: &'static ProviderLimit,
}

/// A check of the report against the simulator's own counts.
#[derive(Debug, Clone)]
pub struct Check {
    pub what: String,
    pub reported: u64,
    pub simulator: u64,
}

impl Check {
    pub fn agrees(&self) -> bool {
        self.reported == self.simulator
    }
}

/// Everything the demo prints at the end.
#[derive(Debug, Clone)]
pub struct Report {
    pub config: Config,
    /// Where the calls went (`local simulator at http://...` or `the real APIs`).
    pub upstream: String,
    /// The cache used (`in-memory`, `Redis at ...`, `disabled`).
    pub cache: String,
    pub cache_enabled: bool,
    /// Real time the run took.
    pub elapsed: Duration,
    /// Simulated time the run spanned.
    pub simulated: Duration,
    pub requested: usize,
    pub answered: u64,
    /// Answers in which at least one call failed: the user saw an error.
    pub failed_answers: u64,
    pub distinct_users: usize,
    pub latency_p50: Duration,
    pub latency_p99: Duration,
    pub latency_max: Duration,
    /// `(kind, asked, failed)`.
    pub by_kind: Vec<(&'static str, u64, u64)>,
    pub providers: Vec<ProviderRow>,
    /// `((provider, error), calls)`.
    pub errors: Vec<((String, String), u64)>,
    /// `cache.stats()` at the end.
    pub stats: Stats,
    /// The simulator's counters at the end (`None` live).
    pub sim_calls: Option<Calls>,
    /// Report figures against the simulator's counts (empty live).
    pub checks: Vec<Check>,
    /// Warnings (missing API keys ...).
    pub notes: Vec<String>,
    /// `cache.budget_stats()` at the end (empty without budgets).
    pub budgets: Vec<BudgetStats>,
    /// The budgets enforced (`None`: `--no-budgets`, or the cache disabled).
    pub declared: Option<Budgets>,
    /// The simulated unix second the run started at (`None` live).
    pub window_start: Option<u64>,
    /// Each budget's TTL stretch sampled at every simulated minute.
    pub stretch: Vec<(String, Vec<f64>)>,
    /// The batching windows' figures (zero with `--no-batch`).
    pub batching: Vec<BatchRow>,
    /// Ages of the CoinGecko prices answered (simulated seconds, sorted).
    pub price_ages: Vec<u64>,
    /// Calls made to warm the cache before the first question ([`Config::warm_up`]), and how
    /// many of them failed. They are in `asked` and `upstream` (not in the answers).
    pub warm_up: (u64, u64),
}

/// One batching window's figures.
#[derive(Debug, Clone)]
pub struct BatchRow {
    pub what: &'static str,
    /// Upstream calls the window made.
    pub calls: u64,
    /// Items those calls loaded, companions included.
    pub items: u64,
    /// Items loaded along with other items' calls (refresh in batches).
    pub companions: u64,
    /// Misses answered from a companion load (no upstream call of their own).
    pub ahead: u64,
}

impl Report {
    /// The row of one provider.
    pub fn provider(&self, name: &str) -> Option<&ProviderRow> {
        self.providers.iter().find(|p| p.provider == name)
    }

    /// Calls the answers made, all providers.
    pub fn asked(&self) -> u64 {
        self.providers.iter().map(|p| p.asked).sum()
    }

    /// Upstream calls, all providers (`cache.stats()`).
    pub fn upstream_calls(&self) -> u64 {
        self.stats.total().upstream_calls
    }

    /// 429s, all providers.
    pub fn rejected(&self) -> u64 {
        self.providers.iter().map(|p| p.rejected).sum()
    }

    /// Cache hit rate (`None` when the cache is disabled).
    pub fn hit_rate(&self) -> Option<f64> {
        self.cache_enabled.then(|| {
            let t = self.stats.total();
            if t.hits + t.misses == 0 {
                0.0
            } else {
                t.hits as f64 / (t.hits + t.misses) as f64
            }
        })
    }

    /// Provider calls that did not go upstream.
    pub fn calls_saved(&self) -> u64 {
        self.asked().saturating_sub(self.upstream_calls())
    }

    /// Whether every figure checked against the simulator agrees (true live: nothing to check).
    pub fn agrees(&self) -> bool {
        self.checks.iter().all(Check::agrees)
    }

    /// The counters of one budget (`None` without budgets).
    pub fn budget(&self, name: &str) -> Option<&BudgetStats> {
        self.budgets.iter().find(|b| b.name == name)
    }

    /// Whether a provider stayed inside its per-minute limit in every simulated minute (calls,
    /// and for Binance request weight too; providers without a limit always do).
    pub fn inside_limits(&self, provider: &str) -> bool {
        self.provider(provider).is_some_and(|r| r.minutes_over == 0 && r.peak_weight.is_none_or(|(_, over)| over == 0))
    }

    /// Whether a budget's projected use of the month (the runtime's projection) fits its month
    /// quota (`None` without a month quota).
    pub fn on_pace_for_month(&self, budget: &str) -> Option<bool> {
        let b = self.budget(budget)?;
        Some(b.projected_month? <= b.month_quota?)
    }

    /// Whether a budget's projected use of the day fits its day quota (`None` without one).
    pub fn on_pace_for_day(&self, budget: &str) -> Option<bool> {
        let b = self.budget(budget)?;
        Some(b.projected_day? <= b.day_quota?)
    }

    /// Answers to calls served with a stale value (budget refused, or stale-if-error).
    pub fn stale_answers(&self) -> u64 {
        self.stats.total().stale
    }

    /// Calls refused by a budget with nothing cached to serve, all providers.
    pub fn budget_denied(&self) -> u64 {
        self.providers.iter().map(|p| p.budget_denied).sum()
    }
}

// ---------------------------------------------------------------------------------------------
// Running

/// A TTL table divided by `speed` (the cache's clock is the wall clock).
pub fn scaled_ttls(base: &Ttls, speed: f64) -> Ttls {
    let mut t = *base;
    if speed > 0.0 && speed != 1.0 {
        for (p, e, d) in base.entries() {
            let scaled = d.div_f64(speed).max(Duration::from_millis(1));
            t.set(p, e, scaled).expect("entries() names exist");
        }
    }
    t
}

/// The Redis URL without its password.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s + 3 => {
            let creds = &url[s + 3..at];
            let user = creds.split(':').next().unwrap_or("");
            if creds.contains(':') {
                format!("{}{user}:***{}", &url[..s + 3], &url[at..])
            } else {
                url.to_string()
            }
        }
        _ => url.to_string(),
    }
}

/// The budgets' clock in simulated time: `start` plus the real time elapsed since `anchor`
/// times `speed`. Anchored at the simulator's own start, it reads the simulator's clock, so
/// per-minute rates are per simulated minute, quota days and months are simulated ones, and
/// pacing sees the simulated burn rate.
#[derive(Debug, Clone, Copy)]
pub struct SimulatedClock {
    /// The simulated instant at `anchor`.
    pub start: SystemTime,
    /// The real instant the simulated clock started.
    pub anchor: Instant,
    /// Simulated seconds per real second.
    pub speed: f64,
}

impl Clock for SimulatedClock {
    fn now(&self) -> SystemTime {
        self.start + self.anchor.elapsed().mul_f64(self.speed)
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (i64::from(m) + 9) % 12;
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day number of [`days_from_civil`].
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// Day of the month and hour (UTC) the simulated window starts at.
pub const WINDOW_DAY: u32 = 15;
/// See [`WINDOW_DAY`].
pub const WINDOW_HOUR: u32 = 1;

/// The simulated unix second the run starts at, for the simulator and the budgets alike:
/// 15 January 2025, 01:00 UTC; with `--redis`, the 15th at 01:00 of the month after the real
/// date (the shared quota counters expire at the end of their simulated period, measured on
/// the Redis server's real clock, so the period must lie in the real future).
///
/// Why there: budget counters start empty, and the runtime projects a quota's use as use so
/// far over the elapsed part of the period. On the 15th at 01:00 the month is 14 days old, so
/// the month projection is this window's use (with none before it) spread over those 14 days;
/// the day is an hour old, so a busy window shows in the day's projection, and pacing (the
/// day's quota of CoinMarketCap) reacts within the run. At 00:00 on the 1st the runtime damps
/// both projections (it ignores the first 1/96 of a period) and a 20-minute run shows nothing.
pub fn window_start(config: &Config) -> u64 {
    let (y, m) = if matches!(config.cache, CacheMode::Redis(_)) {
        let today = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs() / 86_400;
        let (y, m, _) = civil_from_days(today as i64);
        if m == 12 {
            (y + 1, 1)
        } else {
            (y, m + 1)
        }
    } else {
        (2025, 1)
    };
    days_from_civil(y, m, WINDOW_DAY) as u64 * 86_400 + u64::from(WINDOW_HOUR) * 3_600
}

/// `YYYY-MM-DD hh:mm` UTC.
pub fn utc(unix: u64) -> String {
    let (y, m, d) = civil_from_days((unix / 86_400) as i64);
    format!("{y}-{m:02}-{d:02} {:02}:{:02}", unix % 86_400 / 3_600, unix % 3_600 / 60)
}

/// The budgets of a run: `providers::config::budgets()` (with its file and environment
/// overrides) as declared, and as enforced: in a simulated run each `max_wait` divided by
/// `speed` (the runtime sleeps in real time for a retry-after measured on the budget clock),
/// and with `--redis` every rate period divided by `speed` too (the shared rate limits run on
/// the Redis server's real clock).
pub fn demo_budgets(config: &Config) -> Result<(Budgets, Budgets), RunError> {
    let budgets = provider_config::budgets().map_err(RunError::Ttl)?;
    let speed = config.effective_speed();
    if speed == 1.0 {
        return Ok((budgets.clone(), budgets));
    }
    let redis = matches!(config.cache, CacheMode::Redis(_));
    let mut out = budgets.clone();
    for b in budgets.iter() {
        let mut b = b.clone();
        b.max_wait = b.max_wait.div_f64(speed);
        if redis {
            for r in &mut b.rates {
                r.per = r.per.div_f64(speed).max(Duration::from_millis(1));
            }
        }
        out = out.with(b).map_err(|e| RunError::Invalid(format!("budget scaled by the speed: {e}")))?;
    }
    Ok((budgets, out))
}

/// The cache of a run (with its budgets and their clock, if any) and its label.
fn build_cache(
    config: &Config,
    budgets: Option<Budgets>,
    clock: Option<Arc<dyn Clock>>,
) -> Result<(Cache, String), RunError> {
    let mut b = Cache::builder();
    // For the compression figures in BENCHMARKS.md: `off` stores every value uncompressed.
    if let Ok(v) = std::env::var("SYNTRA_CACHE_COMPRESS_THRESHOLD") {
        let threshold = if v.trim() == "off" {
            usize::MAX
        } else {
            v.trim().parse().unwrap_or(syntra_cache::compress::DEFAULT_THRESHOLD)
        };
        b = b.compression(threshold, syntra_cache::compress::DEFAULT_MAX_DECOMPRESSED);
    }
    if let Some(budgets) = budgets {
        b = b.budgets(budgets);
    }
    if let Some(clock) = clock {
        b = b.budget_clock(clock);
    }
    Ok(match &config.cache {
        CacheMode::Memory => {
            (b.namespace("syntra").build().map_err(RunError::Cache)?, "in-memory (namespace \"syntra\")".to_string())
        }
        CacheMode::Disk(path) => (
            b.namespace("syntra").disk(path).build().map_err(RunError::Cache)?,
            format!("in-memory over disk file {} (namespace \"syntra\")", path.display()),
        ),
        CacheMode::Disabled => (
            b.namespace("syntra").enabled(false).build().map_err(RunError::Cache)?,
            "DISABLED (--no-cache): every call goes upstream".to_string(),
        ),
        CacheMode::Redis(url) => {
            // Simulated values must never land in a real bot's keys: against the simulator the
            // demo writes under its own namespace (and starts it empty).
            let ns = if config.live { "syntra" } else { "syntra-demo" };
            (
                b.namespace(ns).redis(url).build().map_err(RunError::Cache)?,
                format!("Redis at {} + in-memory tier (namespace \"{ns}\")", redact_url(url)),
            )
        }
    })
}

/// Checks the settings' ranges.
pub fn validate(config: &Config) -> Result<(), RunError> {
    let bad = |m: &str| Err(RunError::Invalid(m.to_string()));
    if config.requests == 0 {
        return bad("--requests must be at least 1");
    }
    if config.users == 0 {
        return bad("--users must be at least 1");
    }
    if config.concurrency == 0 {
        return bad("--concurrency must be at least 1");
    }
    if !(config.minutes.is_finite() && config.minutes >= 0.0) {
        return bad("--minutes must be a non-negative number");
    }
    if !(config.speed.is_finite() && config.speed > 0.0) {
        return bad("--speed must be a positive number");
    }
    Ok(())
}

/// `--live`: checks the keys and that the real APIs answer at all, with an uncached probe.
async fn preflight(ttls: Arc<Ttls>, notes: &mut Vec<String>) -> Result<(), RunError> {
    let probe_cache = Cache::builder().enabled(false).build().map_err(RunError::Cache)?;
    let probe = Providers::real(probe_cache, ttls);
    let mut note = |n: &str| {
        eprintln!("note: {n}");
        notes.push(n.to_string());
    };
    if std::env::var_os("COINGECKO_API_KEY").is_none() {
        note("COINGECKO_API_KEY is not set: CoinGecko is called keyless (lower limits).");
    }
    if !probe.coinmarketcap.has_key() {
        note("CMC_API_KEY is not set: every CoinMarketCap question fails (unauthorized, no request sent).");
    }
    if !probe.cryptopanic.has_token() {
        note("CRYPTOPANIC_TOKEN is not set: every news question fails (unauthorized, no request sent).");
    }
    let (a, b) = tokio::join!(probe.binance.current_price("BTCUSDT"), probe.feargreed.current());
    match (a, b) {
        (Err(ApiError::Network(e1)), Err(ApiError::Network(e2))) => {
            Err(RunError::Unreachable(format!("api.binance.com: {e1}; api.alternative.me: {e2}")))
        }
        _ => Ok(()),
    }
}

/// The simulator on a runtime of its own (four worker threads): the providers are not part of
/// the bot, and their CPU work must not stall the bot's tasks (the simulator generates every
/// response on the fly, CryptoPanic's news pages being the most expensive).
struct SimHost {
    sim: Option<Simulator>,
    rt: Option<tokio::runtime::Runtime>,
}

impl SimHost {
    async fn start(config: SimConfig) -> Result<SimHost, RunError> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(4)
            .thread_name("syntra-sim")
            .enable_all()
            .build()
            .map_err(RunError::Simulator)?;
        let sim = rt
            .spawn(Simulator::start(config))
            .await
            .map_err(|e| RunError::Task(e.to_string()))?
            .map_err(RunError::Simulator)?;
        Ok(SimHost { sim: Some(sim), rt: Some(rt) })
    }
}

impl std::ops::Deref for SimHost {
    type Target = Simulator;
    fn deref(&self) -> &Simulator {
        self.sim.as_ref().expect("present until dropped")
    }
}

impl Drop for SimHost {
    fn drop(&mut self) {
        drop(self.sim.take());
        if let Some(rt) = self.rt.take() {
            // Allowed from async code, unlike dropping the runtime.
            rt.shutdown_background();
        }
    }
}

/// Runs the workload and returns its report.
pub async fn run(config: Config) -> Result<Report, RunError> {
    validate(&config)?;
    let speed = config.effective_speed();
    let mut notes = Vec::new();
    let mut base_ttls = Ttls::from_env().map_err(RunError::Ttl)?;
    if !config.budgets {
        // The seed's way: plain TTLs and no stale windows (a zero window serves nothing stale).
        base_ttls.coingecko.price_stale = Duration::ZERO;
        base_ttls.coingecko.market_data_stale = Duration::ZERO;
        base_ttls.coingecko.market_chart_stale = Duration::ZERO;
        base_ttls.binance.current_price_stale = Duration::ZERO;
        base_ttls.dexscreener.token_price_stale = Duration::ZERO;
        base_ttls.coinmarketcap.quote_stale = Duration::ZERO;
    }
    let ttls = Arc::new(scaled_ttls(&base_ttls, speed));
    // No budgets on a disabled cache: it bypasses everything, budgets included.
    let (declared, budgets) =
        match (config.budgets && config.cache != CacheMode::Disabled).then(|| demo_budgets(&config)).transpose()? {
            Some((declared, enforced)) => (Some(declared), Some(enforced)),
            None => (None, None),
        };
    let epoch = window_start(&config);

    let sim = if config.live {
        None
    } else {
        let sim = SimHost::start(SimConfig {
            seed: config.seed,
            clock_speed: speed,
            latency: config.sim_latency,
            epoch_unix: epoch,
            ..SimConfig::default()
        })
        .await?;
        Some(sim)
    };
    // The budgets read the simulator's clock: same start, same speed (live: the system clock).
    let budget_clock: Option<Arc<dyn Clock>> = match (&sim, &budgets) {
        (Some(sim), Some(_)) => {
            let now = Instant::now();
            Some(Arc::new(SimulatedClock {
                start: UNIX_EPOCH + Duration::from_secs(epoch),
                anchor: now.checked_sub(sim.elapsed().div_f64(speed)).unwrap_or(now),
                speed,
            }))
        }
        _ => None,
    };
    let (cache, cache_label) = build_cache(&config, budgets, budget_clock)?;
    if let Some(publish) = config.on_cache {
        publish(&cache);
    }
    if matches!(config.cache, CacheMode::Redis(_)) && !config.live {
        // Start cold: leftovers of a previous run (same namespace, budget counters included)
        // would be free hits.
        if let Err(e) = cache.remove_prefix("").await {
            notes.push(format!("could not clear the demo namespace in Redis: {e}"));
        }
    }

    // Batching on (or off: `--no-batch`); CoinGecko's prices and charts fall back on Binance's
    // spot market for the coins it lists against USDT.
    let batched = |p: Providers| {
        let symbols =
            BINANCE_SYMBOLS.iter().filter(|s| s.quote == "tether").map(|s| (s.base.to_string(), s.symbol.to_string()));
        Providers {
            coingecko: p.coingecko.with_batching(config.batch).with_fallback(p.binance.clone(), symbols),
            coinmarketcap: p.coinmarketcap.with_batching(config.batch),
            ..p
        }
    };
    let (sim, providers, upstream) = match sim {
        None => {
            preflight(ttls.clone(), &mut notes).await?;
            let p = batched(Providers::real(cache.clone(), ttls.clone()));
            (None, p, "the real APIs (keys from the environment)".to_string())
        }
        Some(sim) => {
            let p = batched(Providers::with_simulator_ttls(&sim, cache.clone(), ttls.clone()));
            let label = format!(
                "local provider simulator at {} (free-tier limits enforced, {} ms per response)",
                sim.url(),
                config.sim_latency.as_millis()
            );
            (Some(Arc::new(sim)), p, label)
        }
    };
    if !config.live {
        for n in &notes {
            eprintln!("note: {n}");
        }
    }

    let plan = plan(&config);
    let providers = Arc::new(providers);
    let tally = Arc::new(Mutex::new(Tally::default()));
    let answered = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let minutes = Arc::new(Mutex::new(Minutes::default()));
    // Time zero is the simulator's: its minute windows and our arrivals and samples line up.
    let now = Instant::now();
    let start = match &sim {
        Some(s) => now.checked_sub(s.elapsed().div_f64(speed)).unwrap_or(now),
        None => now,
    };

    // Upstream calls so far: the simulator's counts (what its rate-limit windows see), or
    // `cache.stats()` live.
    let counts = {
        let (cache, sim) = (cache.clone(), sim.clone());
        move || match &sim {
            Some(s) => sim_counts(&s.calls()),
            None => stats_counts(&cache.stats()),
        }
    };
    // Samples upstream calls at each simulated minute boundary.
    let sampler = {
        let (counts, minutes, cache) = (counts.clone(), minutes.clone(), cache.clone());
        tokio::spawn(async move {
            let mut k = 1u32;
            loop {
                let due = start + Duration::from_secs_f64(60.0 * f64::from(k) / speed);
                tokio::time::sleep_until(due.into()).await;
                let mut m = minutes.lock().unwrap();
                for b in cache.budget_stats() {
                    m.stretch.entry(b.name.to_string()).or_default().push(b.stretch);
                }
                m.sample(counts());
                drop(m);
                k += 1;
            }
        })
    };

    // A progress line every second.
    let progress = config.progress.then(|| {
        let (cache, sim, answered, failed) =
            (cache.clone(), sim.clone(), answered.clone(), failed.clone());
        let (total, enabled) = (config.requests, cache.is_enabled());
        let tally = tally.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval_at(
                (start + Duration::from_secs(1)).into(),
                Duration::from_secs(1),
            );
            loop {
                tick.tick().await;
                let t = cache.stats().total();
                let rejected = match &sim {
                    Some(s) => s.rejected(),
                    None => tally
                        .lock()
                        .unwrap()
                        .providers
                        .values()
                        .map(|b| b.rate_limited)
                        .sum(),
                };
                let real = start.elapsed();
                let hit = if enabled && t.hits + t.misses > 0 {
                    format!("{:5.1}%", t.hits as f64 * 100.0 / (t.hits + t.misses) as f64)
                } else {
                    "  n/a ".to_string()
                };
                eprintln!(
                    "[{:>4.0}s real | sim {}] answered {:>6}/{total} | hit rate {hit} | upstream {:>6} | 429s {:>5} | user errors {:>5}",
                    real.as_secs_f64(),
                    clock(real.mul_f64(speed)),
                    answered.load(Ordering::Relaxed),
                    t.upstream_calls,
                    rejected,
                    failed.load(Ordering::Relaxed),
                );
            }
        })
    });

    if config.warm_up {
        let calls = warm_up(&providers).await;
        tally.lock().unwrap().record_warm_up(&calls);
    }

    // Dispatch the questions at their (simulated) arrival times.
    let sem = Arc::new(Semaphore::new(config.concurrency));
    let mut tasks = JoinSet::new();
    let mut task_error = None;
    for item in plan {
        let due = start + item.at.div_f64(speed);
        tokio::time::sleep_until(due.into()).await;
        let permit = sem.clone().acquire_owned().await.expect("never closed");
        let (providers, tally, answered, failed) = (providers.clone(), tally.clone(), answered.clone(), failed.clone());
        tasks.spawn(async move {
            let t0 = Instant::now();
            let calls = answer(&providers, &item.question).await;
            let took = t0.elapsed();
            drop(permit);
            if calls.iter().any(|c| c.error.is_some()) {
                failed.fetch_add(1, Ordering::Relaxed);
                for c in calls.iter().filter(|c| c.error.is_some()) {
                    tracing::debug!(question = %item.question, provider = c.provider, method = c.method, error = %c.error.as_ref().unwrap(), "answer failed");
                }
            }
            let now_s = epoch as i64 + (start.elapsed().as_secs_f64() * speed) as i64;
            tally.lock().unwrap().record(&item, &calls, took, now_s);
            answered.fetch_add(1, Ordering::Relaxed);
        });
        while let Some(r) = tasks.try_join_next() {
            if let Err(e) = r {
                task_error.get_or_insert(e.to_string());
            }
        }
    }
    while let Some(r) = tasks.join_next().await {
        if let Err(e) = r {
            task_error.get_or_insert(e.to_string());
        }
    }
    let elapsed = start.elapsed();
    sampler.abort();
    if let Some(p) = progress {
        p.abort();
    }
    if let Some(e) = task_error {
        return Err(RunError::Task(e));
    }

    // Final figures.
    let stats = cache.stats();
    minutes.lock().unwrap().sample(counts()); // the last (partial) minute
    let budget_stats = cache.budget_stats();
    let sim_calls = sim.as_ref().map(|s| s.calls());
    let tally = std::mem::take(&mut *tally.lock().unwrap());
    let (peaks, over, stretch) = {
        let mut m = minutes.lock().unwrap();
        (std::mem::take(&mut m.peak), std::mem::take(&mut m.over), std::mem::take(&mut m.stretch))
    };
    let mut stretch: Vec<(String, Vec<f64>)> = stretch.into_iter().collect();
    stretch.sort_by(|a, b| a.0.cmp(&b.0));
    let batching = {
        let (cg_calls, cg_items, cg_companions, cg_ahead) = providers.coingecko.batched_price_calls();
        let (cmc_calls, cmc_items, cmc_companions, cmc_ahead) = providers.coinmarketcap.batched_quote_calls();
        let (mk_calls, mk_items, mk_companions, mk_ahead) = providers.coingecko.batched_market_calls();
        vec![
            BatchRow {
                what: "coingecko /simple/price",
                calls: cg_calls,
                items: cg_items,
                companions: cg_companions,
                ahead: cg_ahead,
            },
            BatchRow {
                what: "coingecko /coins/markets",
                calls: mk_calls,
                items: mk_items,
                companions: mk_companions,
                ahead: mk_ahead,
            },
            BatchRow {
                what: "coinmarketcap quotes",
                calls: cmc_calls,
                items: cmc_items,
                companions: cmc_companions,
                ahead: cmc_ahead,
            },
        ]
    };
    let mut price_ages = tally.price_ages.clone();
    price_ages.sort_unstable();
    let by_service = stats.by_service();

    let mut providers_rows = Vec::new();
    for limit in Limits::ALL {
        let name = limit.provider;
        let svc = by_service.iter().find(|s| s.service == name);
        let bot = tally.providers.get(name).copied().unwrap_or_default();
        // A budget denial with nothing to serve counts as an upstream error in `cache.stats()`
        // although nothing was sent: take those out to compare with the simulator.
        let sim_rejected = sim_calls
            .as_ref()
            .map(|c| c.iter().filter(|(p, _, _)| *p == name).map(|(_, _, e)| e.rejected).sum::<u64>());
        let sim_failed = sim_calls
            .as_ref()
            .map(|c| c.iter().filter(|(p, _, _)| *p == name).map(|(_, _, e)| e.rejected + e.failed).sum::<u64>());
        providers_rows.push(ProviderRow {
            provider: name,
            asked: bot.asked,
            upstream: svc.map_or(0, |s| s.upstream_calls),
            sim_calls: sim_calls.as_ref().map(|c| c.provider(name)),
            rejected: sim_rejected.unwrap_or(bot.rate_limited),
            upstream_failed: if cache.is_enabled() {
                // Budget refusals are counted apart (`budget_denied`): they never reached upstream.
                svc.map_or(0, |s| s.upstream_errors)
            } else {
                bot.failed
            },
            sim_failed,
            bot_failed: bot.failed,
            peak_minute: peaks.get(name).copied().unwrap_or(0),
            minutes_over: over.get(name).copied().unwrap_or(0),
            peak_weight: (name == "binance" && sim_calls.is_some()).then(|| {
                (peaks.get(BINANCE_WEIGHT).copied().unwrap_or(0), over.get(BINANCE_WEIGHT).copied().unwrap_or(0))
            }),
            budget_denied: bot.budget_denied,
            limit,
        });
    }

    let mut checks = Vec::new();
    if sim_calls.is_some() {
        for r in &providers_rows {
            checks.push(Check {
                what: format!("{} upstream calls", r.provider),
                reported: r.upstream,
                simulator: r.sim_calls.unwrap_or(0),
            });
        }
        checks.push(Check {
            what: "failed upstream calls (non-2xx)".into(),
            reported: providers_rows.iter().map(|r| r.upstream_failed).sum(),
            simulator: providers_rows.iter().map(|r| r.sim_failed.unwrap_or(0)).sum(),
        });
        let total_sim = sim_calls.as_ref().map_or(0, Calls::total);
        checks.push(Check {
            what: "upstream calls, all providers".into(),
            reported: stats.total().upstream_calls,
            simulator: total_sim,
        });
        // Every permit a budget granted is one request the simulator received; Binance's weight
        // drawn is the weight of the requests it received.
        if let Some(calls) = &sim_calls {
            for b in &budget_stats {
                let simulator = match b.name.as_str() {
                    "dexscreener_profiles" => calls.get("dexscreener", "/token-profiles/latest/v1"),
                    "dexscreener" => {
                        calls.provider("dexscreener") - calls.get("dexscreener", "/token-profiles/latest/v1")
                    }
                    name if Limits::get(name).is_some() => calls.provider(name),
                    _ => continue,
                };
                checks.push(Check { what: format!("{} budget permits", b.name), reported: b.granted, simulator });
            }
            if let Some(b) = budget_stats.iter().find(|b| b.name == "binance") {
                let weight = sim_counts(calls).into_iter().find(|(n, _)| n == BINANCE_WEIGHT).map_or(0, |(_, w)| w);
                checks.push(Check {
                    what: "binance budget weight drawn".into(),
                    reported: b.weight_used,
                    simulator: weight,
                });
            }
        }
    }

    let mut lat = tally.latencies;
    lat.sort_unstable();
    let q = |p: f64| -> Duration {
        if lat.is_empty() {
            Duration::ZERO
        } else {
            let i = ((lat.len() as f64 * p).ceil() as usize).clamp(1, lat.len()) - 1;
            lat[i]
        }
    };
    let by_kind = MIX
        .iter()
        .map(|(k, _)| {
            let (a, f) = tally.by_kind.get(k).copied().unwrap_or((0, 0));
            (*k, a, f)
        })
        .collect();
    let mut errors: Vec<_> = tally.errors.into_iter().collect();
    errors.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));

    let report = Report {
        budgets: budget_stats,
        declared,
        window_start: sim.as_ref().map(|_| epoch),
        stretch,
        batching,
        price_ages,
        warm_up: (tally.warm_up_calls, tally.warm_up_failed),
        upstream,
        cache: cache_label,
        cache_enabled: cache.is_enabled(),
        elapsed,
        simulated: if let Some(s) = &sim { s.elapsed() } else { elapsed },
        requested: config.requests,
        answered: lat.len() as u64,
        failed_answers: tally.failed_answers,
        distinct_users: tally.users.len(),
        latency_p50: q(0.50),
        latency_p99: q(0.99),
        latency_max: lat.last().copied().unwrap_or_default(),
        by_kind,
        providers: providers_rows,
        errors,
        stats,
        sim_calls,
        checks,
        notes,
        config,
    };
    if matches!(report.config.cache, CacheMode::Redis(_)) && !report.config.live {
        // The quota counters of a simulated period would otherwise stay until that period ends.
        if let Some(budgets) = cache.budgets() {
            let _ = budgets.reset().await;
        }
    }
    drop(sim); // the last handle stops the simulator and its runtime
    Ok(report)
}

// ---------------------------------------------------------------------------------------------
// Formatting

/// `1234567` as `1,234,567`.
pub fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A latency: `42 µs`, `3.1 ms`, `1.20 s`.
pub fn dur(d: Duration) -> String {
    let us = d.as_secs_f64() * 1e6;
    if us < 1_000.0 {
        format!("{us:.0} µs")
    } else if us < 1_000_000.0 {
        format!("{:.1} ms", us / 1_000.0)
    } else {
        format!("{:.2} s", us / 1e6)
    }
}

/// Simulated elapsed time as `mm:ss` (or `h:mm:ss`).
fn clock(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 3_600 {
        format!("{}:{:02}:{:02}", s / 3_600, s % 3_600 / 60, s % 60)
    } else {
        format!("{:02}:{:02}", s / 60, s % 60)
    }
}

fn pct(part: u64, whole: u64) -> String {
    if whole == 0 {
        "-".into()
    } else {
        format!("{:.1}%", part as f64 * 100.0 / whole as f64)
    }
}

/// How long a budget of `budget` calls lasts at `per_min` calls per minute.
fn lasts(budget: u32, per_min: f64) -> String {
    if per_min <= 0.0 {
        return "forever".into();
    }
    let minutes = f64::from(budget) / per_min;
    if minutes >= 2.0 * 1_440.0 {
        format!("{:.0} days", minutes / 1_440.0)
    } else if minutes >= 120.0 {
        format!("{:.1} h", minutes / 60.0)
    } else {
        format!("{minutes:.0} min")
    }
}

/// `used / quota` or `-`.
fn of_quota(used: Option<u64>, quota: Option<u64>) -> String {
    match (used, quota) {
        (Some(u), Some(q)) => format!("{} / {}", thousands(u), thousands(q)),
        _ => "-".into(),
    }
}

impl Report {
    /// The BUDGETS section: what each budget did (`cache.budget_stats()`), and each provider's
    /// per-minute peak (the simulator's counts) against its limit and its quotas' pace.
    fn fmt_budgets(&self, f: &mut fmt::Formatter<'_>, minutes: u64) -> fmt::Result {
        match &self.declared {
            Some(declared) => {
                writeln!(
                    f,
                    "BUDGETS (providers::config::budgets(), asked before every upstream call; cache.budget_stats())"
                )?;
                writeln!(
                    f,
                    "  {:<21} {:<22} {:>7} {:>7} {:>6} {:>6} {:>5} {:>4} {:>7}",
                    "budget", "declared", "granted", "weight", "denied", "stale", "waits", "429s", "stretch"
                )?;
                for b in &self.budgets {
                    let mut limits: Vec<String> = declared
                        .get(&b.name)
                        .map(|d| d.rates.iter().map(ToString::to_string).collect())
                        .unwrap_or_default();
                    if let Some(q) = b.day_quota {
                        limits.push(format!("{}/day", thousands(q)));
                    }
                    if let Some(q) = b.month_quota {
                        limits.push(format!("{}/month", thousands(q)));
                    }
                    writeln!(
                        f,
                        "  {:<21} {:<22} {:>7} {:>7} {:>6} {:>6} {:>5} {:>4} {:>7.2}",
                        b.name,
                        limits.join(", "),
                        thousands(b.granted),
                        thousands(b.weight_used),
                        thousands(b.denied),
                        thousands(b.stale_served),
                        thousands(b.waits),
                        b.backoffs,
                        b.stretch
                    )?;
                }
                writeln!(
                    f,
                    "  denied = permits refused (then served stale if a value was cached, else an error); stale = served stale"
                )?;
                writeln!(
                    f,
                    "  because the budget said no; waits = callers that waited for a permit; 429s = back-offs after a 429;"
                )?;
                writeln!(f, "  stretch = the pacing factor on the provider's TTLs now (1.00: quotas on pace)")?;
                writeln!(f)?;
            }
            None => {
                let why = if self.cache_enabled { "the seed's plain TTLs" } else { "the cache is disabled" };
                writeln!(f, "BUDGETS: none enforced ({why})")?;
                writeln!(f)?;
            }
        }
        writeln!(
            f,
            "LIMITS AND QUOTAS PER PROVIDER (per-minute figures from the simulator's own counts, 429s included)"
        )?;
        writeln!(
            f,
            "  {:<14} {:>18} {:>8} {:>11} {:>13} {:>16} {:>16}   inside limits",
            "provider", "peak/min / limit", "min>lim", "used today", "proj. today", "used this month", "proj. month"
        )?;
        for r in &self.providers {
            let (peak, over, limit) = match (r.peak_weight, r.limit.weight_per_minute) {
                (Some((w, o)), Some(l)) => {
                    (format!("{} wt", thousands(w)), o.max(r.minutes_over), format!("{} wt", thousands(u64::from(l))))
                }
                _ => (
                    thousands(r.peak_minute),
                    r.minutes_over,
                    r.limit.per_minute.map_or("-".to_string(), |l| thousands(u64::from(l))),
                ),
            };
            let b = self.budget(r.provider);
            let day = b.map_or("-".into(), |b| of_quota(b.day_used, b.day_quota));
            let pday = b.map_or("-".into(), |b| of_quota(b.projected_day, b.day_quota));
            let month = b.map_or("-".into(), |b| of_quota(b.month_used, b.month_quota));
            let pmonth = b.map_or("-".into(), |b| of_quota(b.projected_month, b.month_quota));
            let mut pace = String::new();
            for (period, on_pace) in
                [("month", self.on_pace_for_month(r.provider)), ("day", self.on_pace_for_day(r.provider))]
            {
                match on_pace {
                    Some(true) => pace.push_str(&format!("; {period} on pace")),
                    Some(false) => pace.push_str(&format!("; {period} NOT on pace")),
                    None => {}
                }
            }
            if let Some(b) = b.filter(|b| b.stretch > 1.0) {
                pace.push_str(&format!(" (TTLs stretched x{:.2})", b.stretch));
            }
            let inside = if limit == "-" {
                "yes (no per-minute limit)"
            } else if self.inside_limits(r.provider) {
                "yes"
            } else {
                "NO"
            };
            writeln!(
                f,
                "  {:<14} {:>18} {:>8} {:>11} {:>13} {:>16} {:>16}   {inside}{pace}",
                r.provider,
                format!("{peak} / {limit}"),
                if limit == "-" { "-".to_string() } else { format!("{over}/{minutes}") },
                day,
                pday,
                month,
                pmonth
            )?;
        }
        writeln!(
            f,
            "  peak/min = most requests (Binance: request weight) in one simulated minute / the limit; min>lim = minutes above it;"
        )?;
        writeln!(
            f,
            "  used/projected = the budget's quota use and the runtime's projection to the end of the period (budgets only)"
        )?;
        writeln!(f)
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &self.config;
        let speed = c.effective_speed();
        let sim_min = self.simulated.as_secs_f64() / 60.0;
        let rule = "─".repeat(100);
        writeln!(f, "{rule}")?;
        writeln!(
            f,
            "Syntra bot demo: {} questions from {} users (seed {}, up to {} answered at once)",
            thousands(self.requested as u64),
            thousands(c.users as u64),
            c.seed,
            c.concurrency
        )?;
        writeln!(f, "upstream:       {}", self.upstream)?;
        writeln!(f, "cache:          {}", self.cache)?;
        if c.live {
            writeln!(
                f,
                "simulated time: none, real time: {:.1} s; TTLs are the strategy's own",
                self.elapsed.as_secs_f64()
            )?;
        } else {
            writeln!(
                f,
                "simulated time: {:.1} min in {:.1} s real ({speed}x). The simulator's clock (rate-limit windows, prices) and",
                sim_min,
                self.elapsed.as_secs_f64()
            )?;
            writeln!(
                f,
                "                every TTL run {speed}x faster (a 90 s price TTL lasts {} real, one simulated minute {});",
                dur(Duration::from_secs(90).div_f64(speed)),
                dur(Duration::from_secs(60).div_f64(speed))
            )?;
            writeln!(
                f,
                "                questions arrive as a Poisson stream over {} simulated minutes; latencies are real time.",
                c.minutes
            )?;
        }
        if let Some(start) = self.window_start {
            let end = start + self.simulated.as_secs_f64().round() as u64;
            writeln!(
                f,
                "window:         simulated {} to {} UTC on the simulator's clock{}: the {}th,",
                utc(start),
                &utc(end)[11..],
                if self.declared.is_some() { " (and the budgets')" } else { "" },
                WINDOW_DAY
            )?;
            writeln!(f, "                the month {} days old, the day {} h", WINDOW_DAY - 1, WINDOW_HOUR)?;
        }
        match (&self.declared, self.cache_enabled) {
            (Some(_), _) => {
                let lines = [
                    "budgets:        ON (providers::config::budgets()): rates per simulated minute, quotas per simulated UTC day".to_string(),
                    format!("                and month, pacing on simulated time; a caller waits for a permit at most max_wait/{speed} of real time."),
                    "                The budget counters start EMPTY at the window's start: the runtime's projections (LIMITS AND".to_string(),
                    "                QUOTAS) spread this window's use over the elapsed part of the day and of the month as if nothing".to_string(),
                    "                had been used before it; 'at this window's pace' assumes instead every minute were this busy.".to_string(),
                ];
                for l in lines {
                    writeln!(f, "{l}")?;
                }
                if matches!(c.cache, CacheMode::Redis(_)) && !c.live && speed != 1.0 {
                    let example = self
                        .declared
                        .as_ref()
                        .and_then(|d| d.get("coingecko"))
                        .and_then(|b| b.rates.first())
                        .map(|r| format!(": coingecko's {r} is enforced as {} per {} of real time", r.limit, dur(r.per.div_f64(speed))))
                        .unwrap_or_default();
                    writeln!(f, "                --redis: the shared rate limits run on the Redis server's real clock, so every rate")?;
                    writeln!(f, "                period is divided by {speed}{example}.")?;
                }
            }
            (None, true) => writeln!(
                f,
                "budgets:        OFF (--no-budgets): the seed's plain TTLs, no budgets, no stale windows (jitter is compiled in)"
            )?,
            (None, false) => writeln!(f, "budgets:        OFF (the cache is disabled, budgets with it)")?,
        }
        for n in &self.notes {
            writeln!(f, "note:           {n}")?;
        }
        writeln!(f, "{rule}")?;

        // Answers.
        writeln!(f, "ANSWERS")?;
        writeln!(
            f,
            "  questions answered      {} / {}   ({} distinct users)",
            thousands(self.answered),
            thousands(self.requested as u64),
            self.distinct_users
        )?;
        writeln!(
            f,
            "  errors users saw        {}   ({} of answers: a provider call failed)",
            thousands(self.failed_answers),
            pct(self.failed_answers, self.answered)
        )?;
        if self.cache_enabled {
            let by_budget: u64 = self.budgets.iter().map(|b| b.stale_served).sum();
            let why = if self.declared.is_some() {
                format!("{} because a budget said no, the rest because upstream failed", thousands(by_budget))
            } else {
                "upstream failed and a stale window allowed it".to_string()
            };
            writeln!(f, "  answered from stale     {} calls   ({why})", thousands(self.stale_answers()))?;
        }
        if self.declared.is_some() {
            writeln!(
                f,
                "  refused by a budget     {} calls with nothing cached to serve (never sent; the user saw the error)",
                thousands(self.budget_denied())
            )?;
        }
        if self.cache_enabled {
            let fb: Vec<String> = self
                .stats
                .methods
                .iter()
                .filter(|m| m.fallbacks + m.fallback_errors > 0)
                .map(|m| format!("{} {}: {} ({} failed too)", m.service, m.method, m.fallbacks, m.fallback_errors))
                .collect();
            let (ok, failed): (u64, u64) =
                self.stats.methods.iter().fold((0, 0), |(a, b), m| (a + m.fallbacks, b + m.fallback_errors));
            writeln!(
                f,
                "  answered by a fallback  {} calls   (its own source failed or was refused, nothing cached; {})",
                thousands(ok),
                if fb.is_empty() { "none needed".to_string() } else { fb.join(", ") }
            )?;
            let _ = failed;
        }
        writeln!(
            f,
            "  answer latency          p50 {}   p99 {}   max {}",
            dur(self.latency_p50),
            dur(self.latency_p99),
            dur(self.latency_max)
        )?;
        write!(f, "  by kind               ")?;
        for (k, _, _) in &self.by_kind {
            write!(f, " {k:>8}")?;
        }
        write!(f, "\n    asked               ")?;
        for (_, a, _) in &self.by_kind {
            write!(f, " {a:>8}")?;
        }
        write!(f, "\n    user saw an error   ")?;
        for (_, _, e) in &self.by_kind {
            write!(f, " {e:>8}")?;
        }
        writeln!(f, "\n")?;

        // Providers.
        writeln!(f, "UPSTREAM CALLS PER PROVIDER (limits from providers::config::Limits)")?;
        writeln!(
            f,
            "  {:<14} {:>7} {:>9} {:>7} {:>6} {:>8} {:>8} {:>8}   free-tier limit",
            "provider", "asked", "upstream", "saved", "429s", "peak/min", "min>lim", "avg/min",
        )?;
        let minutes = (sim_min - 0.05).ceil().max(1.0) as u64; // 20.01 min is 20 minutes
        for r in &self.providers {
            let avg = if sim_min > 0.0 { r.upstream as f64 / sim_min } else { 0.0 };
            let over = match r.limit.per_minute {
                Some(_) => format!("{}/{minutes}", r.minutes_over),
                None => "-".into(),
            };
            writeln!(
                f,
                "  {:<14} {:>7} {:>9} {:>7} {:>6} {:>8} {:>8} {:>8.1}   {}",
                r.provider,
                thousands(r.asked),
                thousands(r.upstream),
                thousands(r.asked.saturating_sub(r.upstream)),
                thousands(r.rejected),
                r.peak_minute,
                over,
                avg,
                r.limit.summary,
            )?;
        }
        writeln!(
            f,
            "  {:<14} {:>7} {:>9} {:>7} {:>6}",
            "total",
            thousands(self.asked()),
            thousands(self.upstream_calls()),
            thousands(self.calls_saved()),
            thousands(self.rejected())
        )?;
        writeln!(f, "  asked = calls the answers made; upstream = calls that reached the provider (429s included);")?;
        if self.warm_up.0 > 0 {
            writeln!(
                f,
                "  asked includes the warm-up: {} calls before the first question ({} failed)",
                self.warm_up.0, self.warm_up.1
            )?;
        }
        writeln!(
            f,
            "  peak/min = most upstream calls in one simulated minute; min>lim = minutes above the per-minute limit"
        )?;
        let mut budgets = Vec::new();
        for r in &self.providers {
            let per_min = if sim_min > 0.0 { r.upstream as f64 / sim_min } else { 0.0 };
            if let Some(d) = r.limit.per_day {
                budgets.push(format!("{} {}/day lasts {}", r.provider, thousands(u64::from(d)), lasts(d, per_min)));
            }
            if let Some(m) = r.limit.per_month {
                budgets.push(format!("{} {}/month lasts {}", r.provider, thousands(u64::from(m)), lasts(m, per_min)));
            }
        }
        writeln!(f, "  at this window's pace, sustained: {}", budgets.join("; "))?;
        writeln!(f)?;
        self.fmt_budgets(f, minutes)?;

        // Cache.
        if self.cache_enabled {
            writeln!(f, "BATCHING AND FRESHNESS")?;
            for b in &self.batching {
                if b.calls == 0 {
                    writeln!(f, "  {:<24} no batched calls (batching off: one upstream call per item)", b.what)?;
                    continue;
                }
                writeln!(
                    f,
                    "  {:<24} {} calls for {} items ({:.1} per call; {} companions loaded ahead, {} misses answered by them)",
                    b.what,
                    thousands(b.calls),
                    thousands(b.items),
                    b.items as f64 / b.calls as f64,
                    thousands(b.companions),
                    thousands(b.ahead)
                )?;
            }
            for (name, samples) in self.stretch.iter().filter(|(_, v)| v.iter().any(|&x| x > 1.0)) {
                let mut v = samples.clone();
                v.sort_by(f64::total_cmp);
                let at = |q: f64| v[((v.len() as f64 * q) as usize).min(v.len() - 1)];
                writeln!(
                    f,
                    "  TTL stretch {:<12} min {:.2}  median {:.2}  max {:.2}  (sampled every simulated minute; pacing for the quotas)",
                    name,
                    v[0],
                    at(0.5),
                    v[v.len() - 1]
                )?;
            }
            if !self.price_ages.is_empty() {
                let v = &self.price_ages;
                let at = |q: f64| v[((v.len() as f64 * q) as usize).min(v.len() - 1)];
                writeln!(
                    f,
                    "  coingecko price age      median {}  p90 {}  max {}  ({} answers; simulated time since CoinGecko's last_updated_at, minute resolution)",
                    secs(at(0.5)),
                    secs(at(0.9)),
                    secs(v[v.len() - 1]),
                    thousands(v.len() as u64)
                )?;
            }
            writeln!(f)?;
        }
        writeln!(f, "CACHE")?;
        let t = self.stats.total();
        match self.hit_rate() {
            Some(h) => writeln!(
                f,
                "  hit rate                {:.1}%   ({} hits, {} misses of which {} answered stale, {} waited for a concurrent call)",
                h * 100.0,
                thousands(t.hits),
                thousands(t.misses),
                thousands(t.stale),
                thousands(t.coalesced)
            )?,
            None => writeln!(f, "  hit rate                n/a (cache disabled)")?,
        }
        writeln!(
            f,
            "  API calls saved         {} of {}   ({})",
            thousands(self.calls_saved()),
            thousands(self.asked()),
            pct(self.calls_saved(), self.asked())
        )?;
        writeln!(
            f,
            "  per method (cache.stats(); a stale answer is also counted as a miss; errors = upstream calls that failed):"
        )?;
        writeln!(
            f,
            "  {:<14} {:<14} {:>6} {:>6} {:>6} {:>5} {:>8} {:>6} {:>7} {:>6} {:>9} {:>9}",
            "service", "method", "calls", "hits", "misses", "stale", "upstream", "errors", "hit", "saved", "p50", "p99"
        )?;
        for m in &self.stats.methods {
            // The runtime counts a call answered stale both as a miss and as stale.
            let calls = if self.cache_enabled { m.hits + m.misses } else { m.upstream_calls };
            writeln!(
                f,
                "  {:<14} {:<14} {:>6} {:>6} {:>6} {:>5} {:>8} {:>6} {:>7} {:>6} {:>9} {:>9}",
                m.service,
                m.method,
                calls,
                m.hits,
                m.misses,
                m.stale,
                m.upstream_calls,
                m.upstream_errors,
                if self.cache_enabled && calls > 0 {
                    format!("{:.1}%", m.hits as f64 * 100.0 / calls as f64)
                } else {
                    "-".into()
                },
                calls.saturating_sub(m.upstream_calls),
                dur(m.latency.p50),
                dur(m.latency.p99)
            )?;
        }
        writeln!(f)?;

        if !self.errors.is_empty() {
            writeln!(f, "FAILED CALLS (as the bot saw them)")?;
            for ((p, e), n) in self.errors.iter().take(12) {
                writeln!(f, "  {:<14} {:<60} {:>6}", p, e, thousands(*n))?;
            }
            writeln!(f)?;
        }

        // Cross-check.
        if self.checks.is_empty() {
            writeln!(f, "CROSS-CHECK: none (no simulator behind a live run)")?;
        } else {
            writeln!(f, "CROSS-CHECK against the simulator's own counts")?;
            writeln!(f, "  {:<36} {:>9} {:>10}", "", "report", "simulator")?;
            for ch in &self.checks {
                writeln!(
                    f,
                    "  {:<36} {:>9} {:>10}   {}",
                    ch.what,
                    thousands(ch.reported),
                    thousands(ch.simulator),
                    if ch.agrees() { "ok" } else { "MISMATCH" }
                )?;
            }
            writeln!(
                f,
                "  => {}",
                if self.agrees() {
                    "the report agrees with the simulator"
                } else {
                    "the report DISAGREES with the simulator"
                }
            )?;
        }
        write!(f, "{rule}")
    }
}
