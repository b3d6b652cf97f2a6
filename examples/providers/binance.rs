//! Binance spot and USDⓈ-M futures market data (6,000 request weight/min; no key needed).
//!
//! Every method draws its request weight from the `binance` budget (`config::budgets`):
//! klines by `limit` ([`klines_weight`]), the ticker price 2, funding rate and open interest 1.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use syntra_cache::{cached, Cache};

use super::config::{BinanceTtls, Ttls, HOT_JITTER};
use super::error::{fetch_json, ApiError};

const PROVIDER: &str = "binance";
/// Symbols per `ticker/price?symbols=` call (the URL stays short; Binance sets no lower bound).
const MAX_SYMBOLS: usize = 100;

/// Candle interval. Serialized as Binance spells it, which is also how it appears in cache
/// keys (`binance:klines:BTCUSDT_1h_100`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Interval {
    #[serde(rename = "1m")]
    M1,
    #[serde(rename = "5m")]
    M5,
    #[serde(rename = "15m")]
    M15,
    #[serde(rename = "1h")]
    H1,
    #[serde(rename = "4h")]
    H4,
    #[serde(rename = "1d")]
    D1,
}

impl Interval {
    /// Every interval, shortest first.
    pub const ALL: [Interval; 6] =
        [Interval::M1, Interval::M5, Interval::M15, Interval::H1, Interval::H4, Interval::D1];

    /// Binance's spelling (`"1h"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Interval::M1 => "1m",
            Interval::M5 => "5m",
            Interval::M15 => "15m",
            Interval::H1 => "1h",
            Interval::H4 => "4h",
            Interval::D1 => "1d",
        }
    }

    /// Length of one candle in seconds.
    pub fn seconds(self) -> u64 {
        match self {
            Interval::M1 => 60,
            Interval::M5 => 300,
            Interval::M15 => 900,
            Interval::H1 => 3_600,
            Interval::H4 => 14_400,
            Interval::D1 => 86_400,
        }
    }
}

impl fmt::Display for Interval {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Interval {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Interval::ALL
            .into_iter()
            .find(|i| i.as_str() == s)
            .ok_or_else(|| format!("unknown interval {s:?} (1m, 5m, 15m, 1h, 4h, 1d)"))
    }
}

/// One candle of `/api/v3/klines`, with Binance's decimal strings parsed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Kline {
    pub open_time: i64,
    pub open: f64,
    pub high: f64,
    pub low: f64,
    pub close: f64,
    pub volume: f64,
    pub close_time: i64,
    pub quote_volume: f64,
    pub trades: u64,
    pub taker_buy_base_volume: f64,
    pub taker_buy_quote_volume: f64,
}

/// Request weight of `/api/v3/klines` by `limit`, per Binance's table: [1, 100) → 1,
/// [100, 500) → 2, [500, 1000] → 5, above → 10. The `binance` budget counts weight, not calls.
pub fn klines_weight(limit: u32) -> u32 {
    match limit {
        0..=99 => 1,
        100..=499 => 2,
        500..=1000 => 5,
        _ => 10,
    }
}

/// The wire form of a candle: a 12-element array, decimals as strings.
#[derive(Deserialize)]
struct RawKline(
    i64,
    String,
    String,
    String,
    String,
    String,
    i64,
    String,
    u64,
    String,
    String,
    #[allow(dead_code)] serde_json::Value,
);

fn dec(s: &str) -> Result<f64, ApiError> {
    s.parse().map_err(|_| ApiError::Decode(format!("binance: bad decimal {s:?}")))
}

impl TryFrom<RawKline> for Kline {
    type Error = ApiError;
    fn try_from(r: RawKline) -> Result<Self, ApiError> {
        Ok(Kline {
            open_time: r.0,
            open: dec(&r.1)?,
            high: dec(&r.2)?,
            low: dec(&r.3)?,
            close: dec(&r.4)?,
            volume: dec(&r.5)?,
            close_time: r.6,
            quote_volume: dec(&r.7)?,
            trades: r.8,
            taker_buy_base_volume: dec(&r.9)?,
            taker_buy_quote_volume: dec(&r.10)?,
        })
    }
}

/// `/api/v3/ticker/price`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TickerPrice {
    pub symbol: String,
    pub price: f64,
}

#[derive(Deserialize)]
struct RawTicker {
    symbol: String,
    price: String,
}

/// The latest funding event of `/fapi/v1/fundingRate`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FundingRate {
    pub symbol: String,
    pub funding_rate: f64,
    pub funding_time: i64,
    pub mark_price: Option<f64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawFunding {
    symbol: String,
    funding_rate: String,
    funding_time: i64,
    #[serde(default)]
    mark_price: Option<String>,
}

/// `/fapi/v1/openInterest`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OpenInterest {
    pub symbol: String,
    pub open_interest: f64,
    pub time: i64,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawOpenInterest {
    symbol: String,
    open_interest: String,
    time: i64,
}

/// The Binance service.
#[derive(Clone)]
pub struct Binance {
    http: reqwest::Client,
    /// Spot API (`https://api.binance.com`).
    base_url: String,
    /// USDⓈ-M futures API (`https://fapi.binance.com`).
    futures_url: String,
    cache: Cache,
    /// Binance's row of the TTL table (`config::Ttls`), named by `ttl = "..."`.
    ttls: BinanceTtls,
}

impl fmt::Debug for Binance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Binance").field("base_url", &self.base_url).field("futures_url", &self.futures_url).finish()
    }
}

impl Binance {
    /// The real spot API.
    pub const BASE_URL: &'static str = "https://api.binance.com";
    /// The real USDⓈ-M futures API.
    pub const FUTURES_URL: &'static str = "https://fapi.binance.com";

    /// The real APIs.
    pub fn new(http: reqwest::Client, cache: Cache, ttls: Arc<Ttls>) -> Self {
        Binance {
            http,
            base_url: Self::BASE_URL.to_string(),
            futures_url: Self::FUTURES_URL.to_string(),
            cache,
            ttls: ttls.binance,
        }
    }

    /// Other spot and futures base URLs.
    pub fn with_base_urls(mut self, spot: impl Into<String>, futures: impl Into<String>) -> Self {
        self.base_url = spot.into().trim_end_matches('/').to_string();
        self.futures_url = futures.into().trim_end_matches('/').to_string();
        self
    }

    fn spot(&self, path: &str) -> reqwest::RequestBuilder {
        self.http.get(format!("{}{path}", self.base_url))
    }

    fn futures(&self, path: &str) -> reqwest::RequestBuilder {
        self.http.get(format!("{}{path}", self.futures_url))
    }

    /// The klines TTL of `interval`, from the TTL table.
    fn ttl(&self, interval: Interval) -> Duration {
        self.ttls.klines(interval)
    }
}

/// Spot market data: hot, so each write shortens the TTL by up to [`HOT_JITTER`].
#[cached(cache = self.cache, prefix = "binance", budget = "binance", jitter = HOT_JITTER)]
impl Binance {
    /// The last `limit` candles of `symbol` (`BTCUSDT`); the TTL depends on the interval.
    ///
    /// Weight [`klines_weight`]`(limit)`; hot (`jitter`); a denied or failed refresh serves
    /// the last candles for up to one more TTL of the interval (`stale`).
    #[cached(ttl = self.ttl(interval), weight = klines_weight(limit), stale = self.ttl(interval))]
    pub async fn klines(&self, symbol: &str, interval: Interval, limit: u32) -> Result<Vec<Kline>, ApiError> {
        let limit_s = limit.to_string();
        let req = self.spot("/api/v3/klines").query(&[
            ("symbol", symbol),
            ("interval", interval.as_str()),
            ("limit", limit_s.as_str()),
        ]);
        let raw: Vec<RawKline> = fetch_json(PROVIDER, req).await?;
        raw.into_iter().map(Kline::try_from).collect()
    }

    /// The last traded price of `symbol`.
    ///
    /// Weight 2 (with a symbol); hot (`jitter`); `stale`: see `BinanceTtls::current_price_stale`.
    #[cached(ttl = self.ttls.current_price, weight = 2, stale = self.ttls.current_price_stale)]
    pub async fn current_price(&self, symbol: &str) -> Result<TickerPrice, ApiError> {
        let req = self.spot("/api/v3/ticker/price").query(&[("symbol", symbol)]);
        let raw: RawTicker = fetch_json(PROVIDER, req).await?;
        Ok(TickerPrice { price: dec(&raw.price)?, symbol: raw.symbol })
    }

    /// Last traded prices of many symbols: the cached ones from the cache (one `MGET`), the rest
    /// in one `/api/v3/ticker/price?symbols=[...]` call (weight 4 whatever the count, against 2
    /// per symbol one by one). Each symbol is cached under the key
    /// [`current_price`](Self::current_price) uses.
    #[cached(
        ttl = self.ttls.current_price,
        key = "current_price:<symbols>",
        batch = symbols,
        max_batch = MAX_SYMBOLS,
        weight = 4,
        stale = self.ttls.current_price_stale
    )]
    pub async fn current_prices(&self, symbols: &[String]) -> Result<HashMap<String, TickerPrice>, ApiError> {
        let list = serde_json::to_string(symbols).map_err(|e| ApiError::Decode(e.to_string()))?;
        let req = self.spot("/api/v3/ticker/price").query(&[("symbols", list.as_str())]);
        let raw: Vec<RawTicker> = fetch_json(PROVIDER, req).await?;
        raw.into_iter()
            .map(|t| Ok((t.symbol.clone(), TickerPrice { price: dec(&t.price)?, symbol: t.symbol })))
            .collect()
    }
}

/// USDⓈ-M futures statistics (weight 1 each, the default).
#[cached(cache = self.cache, prefix = "binance", budget = "binance", ttls = self.ttls)]
impl Binance {
    /// The latest settled funding rate of a perpetual.
    /// Weight 1.
    #[cached(ttl = "funding_rate")]
    pub async fn funding_rate(&self, symbol: &str) -> Result<FundingRate, ApiError> {
        let req = self.futures("/fapi/v1/fundingRate").query(&[("symbol", symbol), ("limit", "1")]);
        let raw: Vec<RawFunding> = fetch_json(PROVIDER, req).await?;
        let last = raw
            .into_iter()
            .max_by_key(|f| f.funding_time)
            .ok_or_else(|| ApiError::NotFound(format!("binance funding rate of {symbol:?}")))?;
        Ok(FundingRate {
            funding_rate: dec(&last.funding_rate)?,
            mark_price: last.mark_price.as_deref().filter(|s| !s.is_empty()).map(dec).transpose()?,
            funding_time: last.funding_time,
            symbol: last.symbol,
        })
    }

    /// Open interest of a perpetual, in base units.
    /// Weight 1.
    #[cached(ttl = "open_interest")]
    pub async fn open_interest(&self, symbol: &str) -> Result<OpenInterest, ApiError> {
        let req = self.futures("/fapi/v1/openInterest").query(&[("symbol", symbol)]);
        let raw: RawOpenInterest = fetch_json(PROVIDER, req).await?;
        Ok(OpenInterest { open_interest: dec(&raw.open_interest)?, symbol: raw.symbol, time: raw.time })
    }
}
