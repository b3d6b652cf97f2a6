//! TTLs and rate limits of every provider endpoint: the one place that mirrors the caching
//! strategy's tables.
//!
//! # Overriding TTLs at run time (no recompilation)
//!
//! Defaults come from the strategy's per-endpoint table ([`Ttls::default`]). Two overrides are
//! applied by [`Ttls::from_env`], in this order (the environment wins over the file):
//!
//! 1. A config file named by `SYNTRA_TTL_FILE=path`: one `provider.endpoint = value` per line,
//!    `#` starts a comment, blank lines are ignored:
//!
//!    ```text
//!    # tighter prices, longer news
//!    coingecko.price = 120
//!    binance.klines_1h = 15m
//!    cryptopanic.news = 1800
//!    ```
//!
//! 2. Environment variables `SYNTRA_TTL_<PROVIDER>_<ENDPOINT>=value`, e.g.
//!    `SYNTRA_TTL_COINGECKO_PRICE=120`, `SYNTRA_TTL_BINANCE_KLINES_1H=900`,
//!    `SYNTRA_TTL_FEARGREED_CURRENT=7200`.
//!
//! A value is whole seconds (`120`) or a number with a unit `s`, `m`, `h` or `d` (`15m`); it
//! must be positive. Unknown names and bad values are errors, so a typo never goes unnoticed.
//! The names (provider `.` endpoint) are listed by [`Ttls::entries`]:
//!
//! | provider | endpoints (default seconds) |
//! |---|---|
//! | `coingecko` | `price` 90, `coin_data` 3600, `market_data` 300, `market_chart` 600, `trending` 900, `global` 300, `search` 1800 |
//! | `binance` | `klines_1m` 60, `klines_5m` 180, `klines_15m` 300, `klines_1h` 600, `klines_4h` 1800, `klines_1d` 3600, `current_price` 30, `funding_rate` 3600, `open_interest` 300 |
//! | `dexscreener` | `search` 300, `token_pairs` 300, `token_price` 60 |
//! | `coinmarketcap` | `quote` 300 |
//! | `cryptopanic` | `news` 900 |
//! | `feargreed` | `current` 3600 |

use std::fmt;
use std::time::Duration;

use super::binance::Interval;

/// Why a TTL override was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(pub String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TTL configuration: {}", self.0)
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
}

/// CoinMarketCap TTLs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CoinMarketCapTtls {
    pub quote: Duration,
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

/// Every endpoint's TTL. Services hold an `Arc<Ttls>` and read it in their `ttl = ...`
/// expressions, e.g. `ttl = self.ttls.coingecko.price`.
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
            },
            dexscreener: DexScreenerTtls {
                search: secs(300),
                token_pairs: secs(300),
                token_price: secs(60),
            },
            coinmarketcap: CoinMarketCapTtls { quote: secs(300) },
            cryptopanic: CryptoPanicTtls { news: secs(900) },
            feargreed: FearGreedTtls {
                current: secs(3_600),
            },
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
    binance.klines_1m,
    binance.klines_5m,
    binance.klines_15m,
    binance.klines_1h,
    binance.klines_4h,
    binance.klines_1d,
    binance.current_price,
    binance.funding_rate,
    binance.open_interest,
    dexscreener.search,
    dexscreener.token_pairs,
    dexscreener.token_price,
    coinmarketcap.quote,
    cryptopanic.news,
    feargreed.current,
);

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
    let n: u64 = num
        .parse()
        .map_err(|_| ConfigError(format!("{value:?} is not a number of seconds")))?;
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
    pub fn set(
        &mut self,
        provider: &str,
        endpoint: &str,
        ttl: Duration,
    ) -> Result<(), ConfigError> {
        let (p, e) = (provider.to_ascii_lowercase(), endpoint.to_ascii_lowercase());
        match self.slot(&p, &e) {
            Some(slot) => {
                *slot = ttl;
                Ok(())
            }
            None => Err(ConfigError(format!(
                "unknown endpoint {provider}.{endpoint}"
            ))),
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
            let (name, value) = line.split_once('=').ok_or_else(|| {
                err(format!(
                    "expected `provider.endpoint = seconds`, got {line:?}"
                ))
            })?;
            let (provider, endpoint) = name.trim().split_once('.').ok_or_else(|| {
                err(format!(
                    "expected `provider.endpoint`, got {:?}",
                    name.trim()
                ))
            })?;
            let ttl = parse_duration(value).map_err(|e| err(e.0))?;
            self.set(provider.trim(), endpoint.trim(), ttl)
                .map_err(|e| err(e.0))?;
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
            let (provider, endpoint) = rest.split_once('_').ok_or_else(|| {
                ConfigError(format!(
                    "{k}: expected {TTL_VAR_PREFIX}<PROVIDER>_<ENDPOINT>"
                ))
            })?;
            let ttl =
                parse_duration(v.as_ref()).map_err(|e| ConfigError(format!("{k}: {}", e.0)))?;
            self.set(provider, endpoint, ttl)
                .map_err(|e| ConfigError(format!("{k}: {}", e.0)))?;
        }
        Ok(())
    }

    /// Defaults, then the file named by `SYNTRA_TTL_FILE` (if set), then
    /// `SYNTRA_TTL_<PROVIDER>_<ENDPOINT>` variables.
    pub fn from_env() -> Result<Ttls, ConfigError> {
        let mut t = Ttls::default();
        if let Some(path) = std::env::var_os(TTL_FILE_VAR) {
            let text = std::fs::read_to_string(&path)
                .map_err(|e| ConfigError(format!("{}: {e}", path.to_string_lossy())))?;
            t.apply_file(&text)
                .map_err(|e| ConfigError(format!("{}: {}", path.to_string_lossy(), e.0)))?;
        }
        t.apply_vars(std::env::vars())?;
        Ok(t)
    }
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
            per_minute: None,
            per_day: Some(333),
            per_month: Some(10_000),
            weight_per_minute: None,
            summary: "~333 calls/day, 10,000/month",
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
