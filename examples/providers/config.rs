//! TTLs, stale windows and upstream budgets of every provider endpoint: the one place that
//! mirrors the caching strategy's tables.
//!
//! # Overriding TTLs at run time (no recompilation)
//!
//! Defaults come from the strategy's per-endpoint table ([`Ttls::default`]). Two overrides are
//! applied by [`Ttls::from_env`], in this order (the environment wins over the file):
//!
//! 1. A config file named by `SYNTRA_TTL_FILE=path`: one `provider.endpoint = value` per line,
//!    `#` starts a comment, blank lines are ignored (the same file holds the budgets, below):
//!
//!    ```text
//!    # tighter prices, longer news
//!    coingecko.price = 120
//!    coingecko.price_stale = 10m
//!    binance.klines_1h = 15m
//!    cryptopanic.news = 1800
//!    budget.coingecko.rate = 2/5s
//!    budget.coinmarketcap.day = 300
//!    ```
//!
//! 2. Environment variables `SYNTRA_TTL_<PROVIDER>_<ENDPOINT>=value`, e.g.
//!    `SYNTRA_TTL_COINGECKO_PRICE=120`, `SYNTRA_TTL_BINANCE_KLINES_1H=900`,
//!    `SYNTRA_TTL_FEARGREED_CURRENT=7200`, `SYNTRA_TTL_COINGECKO_PRICE_STALE=10m`.
//!
//! A value is whole seconds (`120`) or a number with a unit `s`, `m`, `h` or `d` (`15m`); it
//! must be positive. Unknown names and bad values are errors, so a typo never goes unnoticed.
//! The names (provider `.` endpoint) are listed by [`Ttls::entries`]; `<endpoint>_stale` is the
//! endpoint's stale window (below):
//!
//! | provider | endpoints (default seconds) |
//! |---|---|
//! | `coingecko` | `price` 90, `coin_data` 3600, `market_data` 300, `market_chart` 600, `trending` 900, `global` 300, `search` 1800; stale windows `price_stale` 300, `market_data_stale` 1800, `market_chart_stale` 3600; freshness floors under pacing `price_max` 900, `market_data_max` 7200 |
//! | `binance` | `klines_1m` 60, `klines_5m` 180, `klines_15m` 300, `klines_1h` 600, `klines_4h` 1800, `klines_1d` 3600, `current_price` 30, `funding_rate` 3600, `open_interest` 300; stale window `current_price_stale` 120 (klines: one more TTL of the interval) |
//! | `dexscreener` | `search` 300, `token_pairs` 300, `token_price` 60; stale window `token_price_stale` 300 |
//! | `coinmarketcap` | `quote` 300; stale window `quote_stale` 1800; freshness floor under pacing `quote_max` 1800 |
//! | `cryptopanic` | `news` 900 |
//! | `feargreed` | `current` 3600 |
//!
//! # Jitter and stale windows
//!
//! The hot endpoints (prices, klines, market data and charts, DEX token prices, CMC quotes) are
//! cached with `jitter = 0.1` ([`HOT_JITTER`]): each write shortens the TTL by up to 10%, so the
//! prices a popular question fetches together do not all expire (and go upstream) in the same
//! second.
//!
//! A stale window (`stale = ...` on the method, RFC 5861 stale-if-error) lets a call whose
//! upstream fails (a 429, an outage) answer with the last good value if it expired less than
//! the window ago; the same value is what a call refused by its budget serves. Only where an old
//! answer is still a useful answer: prices, market data and charts, not search results or
//! metadata (which are cached long anyway). The reason for each window is at its field.
//!
//! # Upstream budgets
//!
//! [`budgets`] declares once what each provider allows (the seed's free-tier figures): every
//! cached method draws from its provider's budget (`budget = "coingecko"` on the service's
//! `impl`, with `weight = ...` on the Binance methods that weigh more than 1) and the cache asks the budget before each upstream call (see
//! `syntra_cache::budget`). Defaults ([`default_budgets`]):
//!
//! | budget | provider's limit | declared as | day | month |
//! |---|---|---|---|---|
//! | `coingecko` | 30 calls/min | `30/min` | | 10,000 |
//! | `coinmarketcap` | | | 333 | 10,000 |
//! | `dexscreener` | 300 calls/min | `300/min` | | |
//! | `dexscreener_profiles` | 60 calls/min | `60/min` | | |
//! | `binance` | 6,000 weight/min | `6000/min` (weight) | | |
//! | `cryptopanic` | none published | `60/min` (runaway guard) | | |
//! | `feargreed` | none published | `60/min` (runaway guard) | | |
//!
//! The providers count calls per clock minute; the runtime keeps a declared `L/min` inside every
//! window of a minute (a burst of `L/10`, the rest spread evenly), so no clock minute ever sees
//! more than `L`.
//!
//! Every budget keeps the runtime's defaults for the rest: a call with nothing cached to serve
//! waits at most 2 s for a permit (`max_wait`), and when a day or month quota burns too fast the
//! provider's TTLs are stretched at most 4x (`max_stretch`) so that the quota lasts the period.
//!
//! Overridden the same two ways as the TTLs, the environment winning over the file:
//!
//! 1. the `SYNTRA_TTL_FILE` file, lines `budget.<name>.<setting> = value`;
//! 2. environment variables `SYNTRA_BUDGET_<NAME>_<SETTING>=value` (`<NAME>` in upper case:
//!    `SYNTRA_BUDGET_DEXSCREENER_PROFILES_RATE`).
//!
//! | setting | file / variable suffix | value | example |
//! |---|---|---|---|
//! | rate limits (replace all) | `rate` / `_RATE` | `<limit>/<window>`, comma-separated; `none` | `30/min`, `2/5s`, `10/s,500/min` |
//! | quota per UTC day | `day` / `_DAY` | a count or `none` | `333` |
//! | quota per UTC month | `month` / `_MONTH` | a count or `none` | `10_000` |
//! | longest wait for a permit | `max_wait` / `_MAX_WAIT` | a duration | `500ms`, `2s` |
//! | pacing ceiling (TTL stretch) | `max_stretch` / `_MAX_STRETCH` | a number >= 1 | `4` |
//!
//! File lines are translated to the variables and parsed by the runtime
//! (`Budgets::with_vars`); unknown budgets or settings, in the file or the environment, are
//! errors, like unknown TTL names.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use syntra_cache::budget::{Budget, BudgetError, Budgets};

use super::binance::Interval;

/// Why a TTL or budget override was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(pub String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TTL/budget configuration: {}", self.0)
    }
}

impl std::error::Error for ConfigError {}

const fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// CoinGecko TTLs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CoinGeckoTtls {
    /// `/simple/price`.
    pub price: Duration,
    /// `/coins/{id}` metadata.
    pub coin_data: Duration,
    /// `/coins/{id}` market statistics.
    pub market_data: Duration,
    /// `/coins/{id}/market_chart`.
    pub market_chart: Duration,
    /// `/search/trending`.
    pub trending: Duration,
    /// `/global`.
    pub global: Duration,
    /// `/search`.
    pub search: Duration,
    /// Stale window of `price`, 5 min: a price carries its `last_updated_at`, and during a 429
    /// or an outage a price a few minutes old is still an answer; beyond that crypto moves
    /// enough (a few %) that an old price would mislead.
    pub price_stale: Duration,
    /// Stale window of `market_data`, 30 min: caps, supplies and 24 h / 7 d changes move slowly
    /// next to their 5 min TTL.
    pub market_data_stale: Duration,
    /// Stale window of `market_chart`, 1 h: a 1 to 30 day history barely changes in an hour
    /// (its last point is at most that late).
    pub market_chart_stale: Duration,
    /// Freshness floor of `price` under budget pacing, 15 min: however far the month quota
    /// stretches TTLs, a price is at most this old (minutes, never hours).
    pub price_max: Duration,
    /// Freshness floor of `market_data` under pacing, 2 h (caps and 24 h changes move slowly).
    pub market_data_max: Duration,
}

/// Binance TTLs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BinanceTtls {
    pub klines_1m: Duration,
    pub klines_5m: Duration,
    pub klines_15m: Duration,
    pub klines_1h: Duration,
    pub klines_4h: Duration,
    pub klines_1d: Duration,
    /// `/api/v3/ticker/price`.
    pub current_price: Duration,
    /// `/fapi/v1/fundingRate`.
    pub funding_rate: Duration,
    /// `/fapi/v1/openInterest`.
    pub open_interest: Duration,
    /// Stale window of `current_price`, 2 min: the ticker is the freshest price the bot shows;
    /// 2 min covers a rate-limit minute without showing a price many minutes old.
    pub current_price_stale: Duration,
}

impl BinanceTtls {
    /// The klines TTL of an interval.
    pub fn klines(&self, interval: Interval) -> Duration {
        match interval {
            Interval::M1 => self.klines_1m,
            Interval::M5 => self.klines_5m,
            Interval::M15 => self.klines_15m,
            Interval::H1 => self.klines_1h,
            Interval::H4 => self.klines_4h,
            Interval::D1 => self.klines_1d,
        }
    }
}

/// DexScreener TTLs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DexScreenerTtls {
    pub search: Duration,
    pub token_pairs: Duration,
    pub token_price: Duration,
    /// Stale window of `token_price`, 5 min: as CoinGecko's prices (DEX tokens are volatile;
    /// not longer).
    pub token_price_stale: Duration,
}

/// CoinMarketCap TTLs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CoinMarketCapTtls {
    pub quote: Duration,
    /// Stale window of `quote`, 30 min: CoinMarketCap is the scarcest quota (333 calls/day), so
    /// a quote up to 35 min old is served rather than an error when a call fails or the
    /// budget says no.
    pub quote_stale: Duration,
    /// Freshness floor of `quote` under budget pacing, 30 min.
    pub quote_max: Duration,
}

/// CryptoPanic TTLs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CryptoPanicTtls {
    pub news: Duration,
}

/// Fear & Greed TTLs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FearGreedTtls {
    pub current: Duration,
}

/// Every endpoint's TTL: the one TTL table. Each service keeps its provider's row and names its
/// TTLs in it: `ttls = self.ttls` on the service's `impl`, `ttl = "price"` on the method (a
/// misspelled name does not compile; a misspelled override in the file or the environment is a
/// start-up error, see [`Ttls::from_env`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ttls {
    pub coingecko: CoinGeckoTtls,
    pub binance: BinanceTtls,
    pub dexscreener: DexScreenerTtls,
    pub coinmarketcap: CoinMarketCapTtls,
    pub cryptopanic: CryptoPanicTtls,
    pub feargreed: FearGreedTtls,
}

impl Default for Ttls {
    /// The strategy's per-endpoint table.
    fn default() -> Self {
        Ttls {
            coingecko: CoinGeckoTtls {
                price: secs(90),
                coin_data: secs(3_600),
                market_data: secs(300),
                market_chart: secs(600),
                trending: secs(900),
                global: secs(300),
                search: secs(1_800),
                price_stale: secs(300),
                market_data_stale: secs(1_800),
                market_chart_stale: secs(3_600),
                price_max: secs(900),
                market_data_max: secs(7_200),
            },
            binance: BinanceTtls {
                klines_1m: secs(60),
                klines_5m: secs(180),
                klines_15m: secs(300),
                klines_1h: secs(600),
                klines_4h: secs(1_800),
                klines_1d: secs(3_600),
                current_price: secs(30),
                funding_rate: secs(3_600),
                open_interest: secs(300),
                current_price_stale: secs(120),
            },
            dexscreener: DexScreenerTtls {
                search: secs(300),
                token_pairs: secs(300),
                token_price: secs(60),
                token_price_stale: secs(300),
            },
            coinmarketcap: CoinMarketCapTtls { quote: secs(300), quote_stale: secs(1_800), quote_max: secs(1_800) },
            cryptopanic: CryptoPanicTtls { news: secs(900) },
            feargreed: FearGreedTtls { current: secs(3_600) },
        }
    }
}

/// Generates the name → field table once, for reading and for overriding.
macro_rules! ttl_table {
    ($($provider:ident . $endpoint:ident),* $(,)?) => {
        impl Ttls {
            /// Every `(provider, endpoint, ttl)`, in the strategy's order.
            pub fn entries(&self) -> Vec<(&'static str, &'static str, Duration)> {
                vec![$((stringify!($provider), stringify!($endpoint), self.$provider.$endpoint)),*]
            }

            /// The TTL of `provider.endpoint`, if such an endpoint exists.
            pub fn get(&self, provider: &str, endpoint: &str) -> Option<Duration> {
                match (provider, endpoint) {
                    $((stringify!($provider), stringify!($endpoint)) => Some(self.$provider.$endpoint),)*
                    _ => None,
                }
            }

            fn slot(&mut self, provider: &str, endpoint: &str) -> Option<&mut Duration> {
                match (provider, endpoint) {
                    $((stringify!($provider), stringify!($endpoint)) => Some(&mut self.$provider.$endpoint),)*
                    _ => None,
                }
            }
        }
    };
}

ttl_table!(
    coingecko.price,
    coingecko.coin_data,
    coingecko.market_data,
    coingecko.market_chart,
    coingecko.trending,
    coingecko.global,
    coingecko.search,
    coingecko.price_stale,
    coingecko.market_data_stale,
    coingecko.market_chart_stale,
    coingecko.price_max,
    coingecko.market_data_max,
    binance.klines_1m,
    binance.klines_5m,
    binance.klines_15m,
    binance.klines_1h,
    binance.klines_4h,
    binance.klines_1d,
    binance.current_price,
    binance.funding_rate,
    binance.open_interest,
    binance.current_price_stale,
    dexscreener.search,
    dexscreener.token_pairs,
    dexscreener.token_price,
    dexscreener.token_price_stale,
    coinmarketcap.quote,
    coinmarketcap.quote_stale,
    coinmarketcap.quote_max,
    cryptopanic.news,
    feargreed.current,
);

/// The TTL jitter of the hot endpoints (`jitter = HOT_JITTER` on the method or, for Binance's
/// spot endpoints, on their `impl`): each write shortens the TTL by a random fraction up to 10%
/// (see the module documentation). An `f32` because the macro casts the value to `f64`.
pub const HOT_JITTER: f32 = 0.1;

/// Environment variable naming the TTL file.
pub const TTL_FILE_VAR: &str = "SYNTRA_TTL_FILE";
/// Prefix of the per-endpoint TTL variables.
pub const TTL_VAR_PREFIX: &str = "SYNTRA_TTL_";

/// Parses `120`, `90s`, `15m`, `1h`, `1d` into a positive duration.
pub fn parse_duration(value: &str) -> Result<Duration, ConfigError> {
    let v = value.trim();
    let (num, unit) = match v.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => v.split_at(i),
        None => (v, ""),
    };
    let n: u64 = num.parse().map_err(|_| ConfigError(format!("{value:?} is not a number of seconds")))?;
    let mult = match unit.trim() {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        u => return Err(ConfigError(format!("unknown unit {u:?} in {value:?}"))),
    };
    if n == 0 {
        return Err(ConfigError(format!("{value:?}: a TTL must be positive")));
    }
    Ok(Duration::from_secs(n.saturating_mul(mult)))
}

impl Ttls {
    /// Sets `provider.endpoint` (names as in [`entries`](Self::entries), case-insensitive).
    pub fn set(&mut self, provider: &str, endpoint: &str, ttl: Duration) -> Result<(), ConfigError> {
        let (p, e) = (provider.to_ascii_lowercase(), endpoint.to_ascii_lowercase());
        match self.slot(&p, &e) {
            Some(slot) => {
                *slot = ttl;
                Ok(())
            }
            None => Err(ConfigError(format!("unknown endpoint {provider}.{endpoint}"))),
        }
    }

    /// Applies a config file's text (`provider.endpoint = value` lines).
    pub fn apply_file(&mut self, text: &str) -> Result<(), ConfigError> {
        for (n, line) in text.lines().enumerate() {
            let line = line.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let err = |m: String| ConfigError(format!("line {}: {m}", n + 1));
            let (name, value) = line
                .split_once('=')
                .ok_or_else(|| err(format!("expected `provider.endpoint = seconds`, got {line:?}")))?;
            if name.trim().starts_with(BUDGET_FILE_PREFIX) {
                continue; // read by `budgets()`
            }
            let (provider, endpoint) = name
                .trim()
                .split_once('.')
                .ok_or_else(|| err(format!("expected `provider.endpoint`, got {:?}", name.trim())))?;
            let ttl = parse_duration(value).map_err(|e| err(e.0))?;
            self.set(provider.trim(), endpoint.trim(), ttl).map_err(|e| err(e.0))?;
        }
        Ok(())
    }

    /// Applies `SYNTRA_TTL_<PROVIDER>_<ENDPOINT>` variables from `vars` (other names are
    /// ignored; `SYNTRA_TTL_FILE` is not an override).
    pub fn apply_vars<I, K, V>(&mut self, vars: I) -> Result<(), ConfigError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        for (k, v) in vars {
            let k = k.as_ref();
            let Some(rest) = k.strip_prefix(TTL_VAR_PREFIX) else {
                continue;
            };
            if k == TTL_FILE_VAR {
                continue;
            }
            let rest = rest.to_ascii_lowercase();
            // Provider names contain no `_`: the first `_` separates provider and endpoint.
            let (provider, endpoint) = rest
                .split_once('_')
                .ok_or_else(|| ConfigError(format!("{k}: expected {TTL_VAR_PREFIX}<PROVIDER>_<ENDPOINT>")))?;
            let ttl = parse_duration(v.as_ref()).map_err(|e| ConfigError(format!("{k}: {}", e.0)))?;
            self.set(provider, endpoint, ttl).map_err(|e| ConfigError(format!("{k}: {}", e.0)))?;
        }
        Ok(())
    }

    /// Defaults, then the file named by `SYNTRA_TTL_FILE` (if set), then
    /// `SYNTRA_TTL_<PROVIDER>_<ENDPOINT>` variables.
    pub fn from_env() -> Result<Ttls, ConfigError> {
        let mut t = Ttls::default();
        if let Some((path, text)) = config_file()? {
            t.apply_file(&text).map_err(|e| ConfigError(format!("{path}: {}", e.0)))?;
        }
        t.apply_vars(std::env::vars())?;
        Ok(t)
    }
}

/// The file named by `SYNTRA_TTL_FILE`, if set: its path (for messages) and text.
fn config_file() -> Result<Option<(String, String)>, ConfigError> {
    let Some(path) = std::env::var_os(TTL_FILE_VAR) else {
        return Ok(None);
    };
    let shown = path.to_string_lossy().into_owned();
    let text = std::fs::read_to_string(&path).map_err(|e| ConfigError(format!("{shown}: {e}")))?;
    Ok(Some((shown, text)))
}

// ---------------------------------------------------------------------------------------------
// Budgets

/// Prefix of the budget lines of the config file (`budget.coingecko.rate = 2/5s`).
pub const BUDGET_FILE_PREFIX: &str = "budget.";
/// Prefix of the budget variables (`SYNTRA_BUDGET_COINGECKO_RATE`), parsed by the runtime.
pub const BUDGET_VAR_PREFIX: &str = "SYNTRA_BUDGET_";
/// The settings a budget override may name: file name and variable suffix.
pub const BUDGET_SETTINGS: [(&str, &str); 5] = [
    ("rate", "_RATE"),
    ("day", "_DAY"),
    ("month", "_MONTH"),
    ("max_wait", "_MAX_WAIT"),
    ("max_stretch", "_MAX_STRETCH"),
];

/// A provider's per-minute limit (the runtime keeps it inside every clock minute).
fn per_clock_minute(budget: Budget, limit: u32) -> Budget {
    budget.rate(limit, Duration::from_secs(60))
}

/// The providers' budgets as declared here (the seed's free tiers), without overrides. See the
/// module documentation for the table.
pub fn default_budgets() -> Budgets {
    let minute = Duration::from_secs(60);
    Budgets::new(vec![
        // CoinGecko Demo: 30 calls/min, 10,000/month. Pacing may stretch its TTLs up to 256x
        // so that the month lasts: the freshness floors (`price_max`, `market_data_max`) keep
        // prices and market data within minutes; charts, metadata and search go further.
        per_clock_minute(Budget::new("coingecko"), 30).quota_month(10_000).max_ttl_stretch(256.0),
        // CoinMarketCap Basic: ~333 calls/day, 10,000/month (credits; one per quote call).
        Budget::new("coinmarketcap").quota_day(333).quota_month(10_000),
        // DexScreener: 300/min for search, pairs and tokens; 60/min for token profiles.
        per_clock_minute(Budget::new("dexscreener"), 300),
        per_clock_minute(Budget::new("dexscreener_profiles"), 60),
        // Binance: 6,000 request weight/min (every method declares its weight).
        per_clock_minute(Budget::new("binance"), 6_000),
        // No published limit: generous guards against a runaway loop only.
        Budget::new("cryptopanic").rate(60, minute),
        Budget::new("feargreed").rate(60, minute),
    ])
    .expect("the declarations are valid")
}

/// Budget lines of a config file's text (`budget.<name>.<setting> = value`; other lines are
/// ignored) as the runtime's variables: `(variable, (value, where it came from))`.
pub fn budget_file_vars(text: &str, budgets: &Budgets) -> Result<BTreeMap<String, (String, String)>, ConfigError> {
    let mut vars = BTreeMap::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if !line.starts_with(BUDGET_FILE_PREFIX) {
            continue; // a TTL line, read by `Ttls::apply_file`
        }
        let err = |m: String| ConfigError(format!("line {}: {m}", n + 1));
        let (name, value) = line
            .split_once('=')
            .ok_or_else(|| err(format!("expected `budget.<name>.<setting> = value`, got {line:?}")))?;
        let rest = &name.trim()[BUDGET_FILE_PREFIX.len()..];
        let (budget, setting) = rest
            .rsplit_once('.')
            .ok_or_else(|| err(format!("expected `budget.<name>.<setting> = value`, got {:?}", name.trim())))?;
        let budget = budgets.require(budget.trim()).map_err(|e| err(e.to_string()))?;
        let suffix =
            BUDGET_SETTINGS.iter().find(|(s, _)| *s == setting.trim()).map(|(_, suffix)| suffix).ok_or_else(|| {
                let known: Vec<_> = BUDGET_SETTINGS.iter().map(|(s, _)| *s).collect();
                err(format!("unknown budget setting {:?} (use {})", setting.trim(), known.join(", ")))
            })?;
        let origin = format!("line {} ({})", n + 1, name.trim());
        vars.insert(format!("{}{suffix}", budget.env_prefix()), (value.trim().to_string(), origin));
    }
    Ok(vars)
}

/// `budgets` with the overrides of a config file's text (budget lines) and of `vars` (the
/// `SYNTRA_BUDGET_*` variables among them; they win over the file). Unknown budgets and settings
/// are errors.
pub fn apply_budget_overrides<I, K, V>(budgets: Budgets, file: Option<&str>, vars: I) -> Result<Budgets, ConfigError>
where
    I: IntoIterator<Item = (K, V)>,
    K: AsRef<str>,
    V: AsRef<str>,
{
    let mut all = match file {
        Some(text) => budget_file_vars(text, &budgets)?,
        None => BTreeMap::new(),
    };
    let known: Vec<String> = budgets
        .iter()
        .flat_map(|b| BUDGET_SETTINGS.iter().map(move |(_, suffix)| format!("{}{suffix}", b.env_prefix())))
        .collect();
    for (k, v) in vars {
        let k = k.as_ref();
        if !k.starts_with(BUDGET_VAR_PREFIX) {
            continue;
        }
        if !known.iter().any(|n| n == k) {
            return Err(ConfigError(format!(
                "{k}: unknown budget variable (budgets: {}; settings: _RATE, _DAY, _MONTH, _MAX_WAIT, _MAX_STRETCH)",
                budgets.names().join(", ")
            )));
        }
        all.insert(k.to_string(), (v.as_ref().to_string(), k.to_string()));
    }
    budgets.with_vars(|k| all.get(k).map(|(v, _)| v.clone())).map_err(|e| match e {
        BudgetError::Env { ref var, .. } => match all.get(var) {
            Some((_, origin)) if origin != var => ConfigError(format!("{origin}: {e}")),
            _ => ConfigError(e.to_string()),
        },
        e => ConfigError(e.to_string()),
    })
}

/// The budgets: [`default_budgets`], then the budget lines of the `SYNTRA_TTL_FILE` file, then
/// the `SYNTRA_BUDGET_<NAME>_<SETTING>` variables.
pub fn budgets() -> Result<Budgets, ConfigError> {
    let file = config_file()?;
    let text = file.as_ref().map(|(_, text)| text.as_str());
    apply_budget_overrides(default_budgets(), text, std::env::vars()).map_err(|e| match &file {
        Some((path, _)) if e.0.starts_with("line ") => ConfigError(format!("{path}: {}", e.0)),
        _ => e,
    })
}

/// One provider's free-tier limits, from the strategy's table (for reporting).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProviderLimit {
    pub provider: &'static str,
    /// Calls per minute (Binance: raw requests).
    pub per_minute: Option<u32>,
    pub per_day: Option<u32>,
    pub per_month: Option<u32>,
    /// Binance request weight per minute.
    pub weight_per_minute: Option<u32>,
    /// As the strategy states it.
    pub summary: &'static str,
    /// `CRITICAL`, `HIGH`, `MEDIUM` or `LOW`.
    pub criticality: &'static str,
}

/// The providers' limits.
pub struct Limits;

impl Limits {
    /// Every provider, most critical first.
    pub const ALL: &'static [ProviderLimit] = &[
        ProviderLimit {
            provider: "coinmarketcap",
            // The Basic plan's 30 calls/min (the simulator enforces it). Not budgeted: the day
            // quota keeps the bot far below it (333 a day is 0.23 a minute).
            per_minute: Some(30),
            per_day: Some(333),
            per_month: Some(10_000),
            weight_per_minute: None,
            summary: "~333 calls/day, 10,000/month (30/min)",
            criticality: "CRITICAL",
        },
        ProviderLimit {
            provider: "coingecko",
            per_minute: Some(30),
            per_day: None,
            per_month: Some(10_000),
            weight_per_minute: None,
            summary: "30 calls/min, 10,000/month (Demo)",
            criticality: "HIGH",
        },
        ProviderLimit {
            provider: "dexscreener",
            per_minute: Some(300),
            per_day: None,
            per_month: None,
            weight_per_minute: None,
            summary: "300 calls/min (DEX), 60 calls/min (profiles)",
            criticality: "MEDIUM",
        },
        ProviderLimit {
            provider: "binance",
            per_minute: Some(3_000),
            per_day: None,
            per_month: None,
            weight_per_minute: Some(6_000),
            summary: "3,000 requests/min, 6,000 weight/min",
            criticality: "LOW",
        },
        ProviderLimit {
            provider: "cryptopanic",
            per_minute: None,
            per_day: None,
            per_month: None,
            weight_per_minute: None,
            summary: "no explicit limit",
            criticality: "LOW",
        },
        ProviderLimit {
            provider: "feargreed",
            per_minute: None,
            per_day: None,
            per_month: None,
            weight_per_minute: None,
            summary: "public API",
            criticality: "LOW",
        },
    ];

    /// The limits of one provider.
    pub fn get(provider: &str) -> Option<&'static ProviderLimit> {
        Self::ALL.iter().find(|l| l.provider == provider)
    }
}
