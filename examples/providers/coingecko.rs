//! CoinGecko API v3 (Demo plan: 30 calls/min, 10,000/month).
//!
//! Every method draws one call from the `coingecko` budget (`config::budgets`): when it says no,
//! the last cached value is served as stale, or the call fails with `ApiError::Budget` without
//! reaching CoinGecko.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use syntra_cache::engine::Coalescer;
use syntra_cache::{cached, Cache};

use super::binance::{Binance, Interval};
use super::config::{CoinGeckoTtls, Ttls, HOT_JITTER};
use super::error::{fetch_json, ApiError};

const PROVIDER: &str = "coingecko";

/// Prices of one coin in one currency, from `/simple/price`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Price {
    pub id: String,
    pub vs: String,
    pub price: f64,
    pub market_cap: Option<f64>,
    pub volume_24h: Option<f64>,
    pub change_24h: Option<f64>,
    pub last_updated_at: Option<i64>,
}

/// `description` of `/coins/{id}`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Description {
    #[serde(default)]
    pub en: Option<String>,
}

/// `links.repos_url` of `/coins/{id}`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Repos {
    #[serde(default, deserialize_with = "super::error::de::list")]
    pub github: Vec<String>,
}

/// `links` of `/coins/{id}`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Links {
    #[serde(default, deserialize_with = "super::error::de::list")]
    pub homepage: Vec<String>,
    #[serde(default, deserialize_with = "super::error::de::list")]
    pub blockchain_site: Vec<String>,
    #[serde(default)]
    pub subreddit_url: Option<String>,
    #[serde(default)]
    pub twitter_screen_name: Option<String>,
    #[serde(default)]
    pub repos_url: Repos,
}

/// `image` of `/coins/{id}`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Image {
    #[serde(default)]
    pub thumb: Option<String>,
    #[serde(default)]
    pub small: Option<String>,
    #[serde(default)]
    pub large: Option<String>,
}

/// Coin metadata: `/coins/{id}?market_data=false`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CoinData {
    pub id: String,
    pub symbol: String,
    pub name: String,
    #[serde(default)]
    pub hashing_algorithm: Option<String>,
    #[serde(default, deserialize_with = "super::error::de::list")]
    pub categories: Vec<String>,
    #[serde(default)]
    pub description: Description,
    #[serde(default)]
    pub links: Links,
    #[serde(default)]
    pub image: Image,
    #[serde(default)]
    pub genesis_date: Option<String>,
    #[serde(default)]
    pub market_cap_rank: Option<u32>,
    #[serde(default)]
    pub sentiment_votes_up_percentage: Option<f64>,
    #[serde(default)]
    pub last_updated: Option<String>,
}

/// Per-currency numbers (`{"usd": 67000.0, "eur": ...}`); `null` values are dropped.
pub type PerCurrency = BTreeMap<String, f64>;

/// `market_data` of `/coins/{id}`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct MarketStats {
    #[serde(default, deserialize_with = "super::error::de::per_currency")]
    pub current_price: PerCurrency,
    #[serde(default, deserialize_with = "super::error::de::per_currency")]
    pub market_cap: PerCurrency,
    #[serde(default, deserialize_with = "super::error::de::per_currency")]
    pub total_volume: PerCurrency,
    #[serde(default, deserialize_with = "super::error::de::per_currency")]
    pub high_24h: PerCurrency,
    #[serde(default, deserialize_with = "super::error::de::per_currency")]
    pub low_24h: PerCurrency,
    #[serde(default, deserialize_with = "super::error::de::per_currency")]
    pub ath: PerCurrency,
    #[serde(default)]
    pub market_cap_rank: Option<u32>,
    #[serde(default)]
    pub price_change_24h: Option<f64>,
    #[serde(default)]
    pub price_change_percentage_24h: Option<f64>,
    #[serde(default)]
    pub price_change_percentage_7d: Option<f64>,
    #[serde(default)]
    pub price_change_percentage_30d: Option<f64>,
    #[serde(default)]
    pub market_cap_change_percentage_24h: Option<f64>,
    #[serde(default)]
    pub circulating_supply: Option<f64>,
    #[serde(default)]
    pub total_supply: Option<f64>,
    #[serde(default)]
    pub max_supply: Option<f64>,
    #[serde(default)]
    pub last_updated: Option<String>,
}

/// A coin with its market statistics: `/coins/{id}?market_data=true`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MarketData {
    pub id: String,
    pub symbol: String,
    pub name: String,
    #[serde(default)]
    pub market_cap_rank: Option<u32>,
    pub market_data: MarketStats,
    #[serde(default)]
    pub last_updated: Option<String>,
}

/// One row of `/coins/markets`: a coin's market figures in one currency (`vs_currency`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MarketRow {
    pub id: String,
    pub symbol: String,
    pub name: String,
    #[serde(default)]
    pub image: Option<String>,
    #[serde(default)]
    pub current_price: Option<f64>,
    #[serde(default)]
    pub market_cap: Option<f64>,
    #[serde(default)]
    pub market_cap_rank: Option<u32>,
    #[serde(default)]
    pub fully_diluted_valuation: Option<f64>,
    #[serde(default)]
    pub total_volume: Option<f64>,
    #[serde(default)]
    pub high_24h: Option<f64>,
    #[serde(default)]
    pub low_24h: Option<f64>,
    #[serde(default)]
    pub price_change_24h: Option<f64>,
    #[serde(default)]
    pub price_change_percentage_24h: Option<f64>,
    #[serde(default)]
    pub market_cap_change_24h: Option<f64>,
    #[serde(default)]
    pub market_cap_change_percentage_24h: Option<f64>,
    #[serde(default)]
    pub circulating_supply: Option<f64>,
    #[serde(default)]
    pub total_supply: Option<f64>,
    #[serde(default)]
    pub max_supply: Option<f64>,
    #[serde(default)]
    pub ath: Option<f64>,
    #[serde(default)]
    pub ath_change_percentage: Option<f64>,
    #[serde(default)]
    pub ath_date: Option<String>,
    #[serde(default)]
    pub atl: Option<f64>,
    #[serde(default)]
    pub atl_change_percentage: Option<f64>,
    #[serde(default)]
    pub atl_date: Option<String>,
    /// Asked for with `price_change_percentage=7d,30d`.
    #[serde(default)]
    pub price_change_percentage_7d_in_currency: Option<f64>,
    #[serde(default)]
    pub price_change_percentage_30d_in_currency: Option<f64>,
    #[serde(default)]
    pub last_updated: Option<String>,
}

/// `/coins/{id}/market_chart`: `[unix ms, value]` series.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MarketChart {
    #[serde(default)]
    pub prices: Vec<(i64, f64)>,
    #[serde(default)]
    pub market_caps: Vec<(i64, f64)>,
    #[serde(default)]
    pub total_volumes: Vec<(i64, f64)>,
}

/// CoinGecko's charts are hourly from 2 to 90 days: [`CoinGecko::market_chart`] cuts all of
/// them from one series of this many days.
pub const HOURLY_DAYS: u32 = 90;

impl MarketChart {
    /// The points of the last `days` before the series' last point, as CoinGecko sends a chart
    /// of `days` at that time (the hourly points after its start, and the last point).
    pub fn last_days(&self, days: u32) -> MarketChart {
        let end = self.prices.last().map_or(i64::MIN, |&(t, _)| t);
        let start = end.saturating_sub(i64::from(days) * 86_400_000);
        let cut = |series: &[(i64, f64)]| series.iter().copied().filter(|&(t, _)| t > start).collect();
        MarketChart {
            prices: cut(&self.prices),
            market_caps: cut(&self.market_caps),
            total_volumes: cut(&self.total_volumes),
        }
    }
}

/// `item.data` of `/search/trending`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrendingData {
    #[serde(deserialize_with = "super::error::de::flex_f64")]
    pub price: f64,
    #[serde(default, deserialize_with = "super::error::de::per_currency")]
    pub price_change_percentage_24h: PerCurrency,
    #[serde(default)]
    pub market_cap: Option<String>,
    #[serde(default)]
    pub total_volume: Option<String>,
}

/// One trending coin.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrendingItem {
    pub id: String,
    pub name: String,
    pub symbol: String,
    #[serde(default)]
    pub market_cap_rank: Option<u32>,
    #[serde(default)]
    pub thumb: Option<String>,
    #[serde(default)]
    pub price_btc: Option<f64>,
    #[serde(default)]
    pub score: u32,
    #[serde(default)]
    pub data: Option<TrendingData>,
}

/// `coins[]` of `/search/trending`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrendingCoin {
    pub item: TrendingItem,
}

/// `/search/trending` (coins only).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Trending {
    #[serde(default)]
    pub coins: Vec<TrendingCoin>,
}

/// `data` of `/global`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Global {
    #[serde(default)]
    pub active_cryptocurrencies: u64,
    #[serde(default)]
    pub markets: u64,
    #[serde(default, deserialize_with = "super::error::de::per_currency")]
    pub total_market_cap: PerCurrency,
    #[serde(default, deserialize_with = "super::error::de::per_currency")]
    pub total_volume: PerCurrency,
    #[serde(default, deserialize_with = "super::error::de::per_currency")]
    pub market_cap_percentage: PerCurrency,
    #[serde(default)]
    pub market_cap_change_percentage_24h_usd: Option<f64>,
    #[serde(default)]
    pub updated_at: i64,
}

#[derive(Deserialize)]
struct GlobalEnvelope {
    data: Global,
}

/// One coin found by `/search`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SearchCoin {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub api_symbol: Option<String>,
    pub symbol: String,
    #[serde(default)]
    pub market_cap_rank: Option<u32>,
    #[serde(default)]
    pub thumb: Option<String>,
    #[serde(default)]
    pub large: Option<String>,
}

/// One coin of `/coins/list`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ListedCoin {
    pub id: String,
    pub symbol: String,
    pub name: String,
}

/// `/search` (coins only).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Search {
    #[serde(default)]
    pub coins: Vec<SearchCoin>,
}

/// The CoinGecko service.
#[derive(Clone)]
pub struct CoinGecko {
    http: reqwest::Client,
    base_url: String,
    /// Demo API key (`COINGECKO_API_KEY`), sent as `x-cg-demo-api-key`.
    api_key: Option<String>,
    cache: Cache,
    /// This provider's row of the TTL table (`config::Ttls`), named by `ttl = "..."`.
    ttls: CoinGeckoTtls,
    /// Concurrent price misses merged into one `/simple/price` call (`None`: one call per coin).
    prices_window: Option<Arc<PriceWindow>>,
    /// Concurrent market-row misses merged into one `/coins/markets` call (`None`: one per coin).
    markets_window: Option<Arc<MarketsWindow>>,
    /// Where a price or a chart comes from when CoinGecko gives none and nothing is cached.
    fallback: Option<Arc<Fallback>>,
}

/// Binance's spot market as the fallback source of [`CoinGecko::price`] (its ticker, USDT as
/// USD) and [`CoinGecko::market_chart`] (its candles), for the coins it lists against USDT.
struct Fallback {
    binance: Binance,
    /// CoinGecko id → Binance symbol (`bitcoin` → `BTCUSDT`).
    symbols: HashMap<String, String>,
}

/// Merges concurrent single-coin price loads: `(id, vs)` pairs into one `/simple/price` call.
type PriceWindow = Coalescer<(String, String), Price, ApiError>;

/// How long a price miss may wait for company while another price load is in flight.
const PRICE_WINDOW: Duration = Duration::from_millis(5);
/// `/simple/price` takes up to 250 ids per call (the free tier counts one call whatever the ids).
const MAX_IDS: usize = 250;
/// Refresh in batches: every `/simple/price` call also loads the coins asked most recently, and
/// a later miss of one of them takes that value while it is younger than its TTL (the entry
/// then lives for what is left of it, so all expire together and the next call refreshes all).
const PRICE_COMPANIONS: usize = 200;
const PRICE_SHARE: f64 = 1.0;

fn price_window() -> Arc<PriceWindow> {
    Arc::new(Coalescer::new(PRICE_WINDOW, MAX_IDS).companions(PRICE_COMPANIONS, PRICE_SHARE))
}

/// Merges concurrent single-coin market-row loads: `(id, vs)` pairs into one `/coins/markets`
/// call per currency.
type MarketsWindow = Coalescer<(String, String), MarketRow, ApiError>;

/// `/coins/markets` takes up to 250 rows per page (`per_page`), one call whatever the ids.
const MAX_ROWS: usize = 250;

fn markets_window() -> Arc<MarketsWindow> {
    Arc::new(Coalescer::new(PRICE_WINDOW, MAX_ROWS).companions(PRICE_COMPANIONS, PRICE_SHARE))
}

impl fmt::Debug for CoinGecko {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CoinGecko")
            .field("base_url", &self.base_url)
            .field("api_key", &super::redacted(&self.api_key))
            .finish()
    }
}

#[cached(cache = self.cache, prefix = "coingecko", budget = "coingecko", ttls = self.ttls)]
impl CoinGecko {
    /// The real API.
    pub const BASE_URL: &'static str = "https://api.coingecko.com/api/v3";

    /// The real API; the key from `COINGECKO_API_KEY` if set.
    pub fn new(http: reqwest::Client, cache: Cache, ttls: Arc<Ttls>) -> Self {
        CoinGecko {
            http,
            base_url: Self::BASE_URL.to_string(),
            api_key: super::env_key("COINGECKO_API_KEY"),
            cache,
            ttls: ttls.coingecko,
            prices_window: Some(price_window()),
            markets_window: Some(markets_window()),
            fallback: None,
        }
    }

    /// Answers prices and charts from Binance (`symbols`: CoinGecko id → Binance USDT symbol)
    /// when CoinGecko gives none (its budget said no, or it failed) and nothing is cached.
    pub fn with_fallback(mut self, binance: Binance, symbols: impl IntoIterator<Item = (String, String)>) -> Self {
        self.fallback = Some(Arc::new(Fallback { binance, symbols: symbols.into_iter().collect() }));
        self
    }

    /// The fallback's Binance and symbol for `id` quoted in `vs` (USDT stands for USD).
    fn fallback_for(&self, id: &str, vs: &str) -> Result<(&Binance, &str), ApiError> {
        let none = || ApiError::NotFound(format!("no fallback source for {id:?} in {vs:?}"));
        let fb = self.fallback.as_deref().ok_or_else(none)?;
        if !vs.eq_ignore_ascii_case("usd") {
            return Err(none());
        }
        let symbol = fb.symbols.get(id).ok_or_else(none)?;
        Ok((&fb.binance, symbol))
    }

    /// [`price`](Self::price)'s fallback: Binance's last traded price against USDT.
    async fn price_from_binance(&self, id: &str, vs: &str) -> Result<Price, ApiError> {
        let (binance, symbol) = self.fallback_for(id, vs)?;
        let ticker = binance.current_price(symbol).await?;
        Ok(Price {
            id: id.to_owned(),
            vs: vs.to_lowercase(),
            price: ticker.price,
            market_cap: None,
            volume_24h: None,
            change_24h: None,
            last_updated_at: None,
        })
    }

    /// [`market_chart`](Self::market_chart)'s fallback: Binance's candles over `days` (closes as
    /// prices, quote volumes as volumes; no market caps).
    async fn chart_from_binance(&self, id: &str, vs: &str, days: u32) -> Result<MarketChart, ApiError> {
        let (binance, symbol) = self.fallback_for(id, vs)?;
        let (interval, limit) = match days {
            0..=1 => (Interval::M15, 96),
            2..=7 => (Interval::H1, 24 * days),
            8..=90 => (Interval::H4, 6 * days),
            _ => (Interval::D1, days.min(1000)),
        };
        let candles = binance.klines(symbol, interval, limit).await?;
        Ok(MarketChart {
            prices: candles.iter().map(|k| (k.close_time, k.close)).collect(),
            market_caps: Vec::new(),
            total_volumes: candles.iter().map(|k| (k.close_time, k.quote_volume)).collect(),
        })
    }

    /// Batching on (the default: concurrent price misses share one upstream call, charged once
    /// to the budget) or off (one call per coin, for comparison: the demo's `--no-batch`).
    pub fn with_batching(mut self, on: bool) -> Self {
        self.prices_window = on.then(price_window);
        self.markets_window = on.then(markets_window);
        self
    }

    /// What a single price call costs its budget: nothing when batching (the merged call is
    /// charged once, by [`load_prices`](Self::load_prices)), one call otherwise.
    fn price_weight(&self) -> u32 {
        u32::from(self.prices_window.is_none())
    }

    /// As [`price_weight`](Self::price_weight), for market rows.
    fn market_weight(&self) -> u32 {
        u32::from(self.markets_window.is_none())
    }

    /// As [`batched_price_calls`](Self::batched_price_calls), for `/coins/markets`.
    pub fn batched_market_calls(&self) -> (u64, u64, u64, u64) {
        self.markets_window
            .as_ref()
            .map_or((0, 0, 0, 0), |w| (w.calls(), w.items(), w.companions_loaded(), w.served_ahead()))
    }

    /// Upstream price calls made through the batching window, the coins they priced, how many
    /// of those were companions (refresh in batches) and how many misses those answered.
    pub fn batched_price_calls(&self) -> (u64, u64, u64, u64) {
        self.prices_window
            .as_ref()
            .map_or((0, 0, 0, 0), |w| (w.calls(), w.items(), w.companions_loaded(), w.served_ahead()))
    }

    /// Another base URL (a simulator, a proxy, the Pro API).
    pub fn with_base_url(mut self, url: impl Into<String>) -> Self {
        self.base_url = url.into().trim_end_matches('/').to_string();
        self
    }

    /// Replaces the API key.
    pub fn with_api_key(mut self, key: Option<String>) -> Self {
        self.api_key = key;
        self
    }

    fn get(&self, path: &str) -> reqwest::RequestBuilder {
        let req = self.http.get(format!("{}{path}", self.base_url)).header("accept", "application/json");
        match &self.api_key {
            Some(k) => req.header("x-cg-demo-api-key", k),
            None => req,
        }
    }

    /// Price of `id` in `vs` with market cap, 24 h volume and change.
    ///
    /// Hot: `jitter` spreads the expiries of prices fetched together; `stale`: see
    /// `CoinGeckoTtls::price_stale`. Concurrent misses for other coins share one upstream call
    /// (see [`with_batching`](Self::with_batching)).
    #[cached(
        ttl = "price",
        max_ttl = "price_max",
        jitter = HOT_JITTER,
        stale = "price_stale",
        weight = self.price_weight(),
        fallback = self.price_from_binance(id, vs)
    )]
    pub async fn price(&self, id: &str, vs: &str) -> Result<Price, ApiError> {
        let pair = (id.to_owned(), vs.to_lowercase());
        let found = match &self.prices_window {
            Some(window) => window.load(pair.clone(), |pairs| self.load_prices(pairs)).await?,
            None => self.fetch_prices(std::slice::from_ref(&pair)).await?.remove(&pair),
        };
        found.ok_or_else(|| ApiError::NotFound(format!("coingecko price of {id:?} in {vs:?}")))
    }

    /// Prices of many coins in `vs`: the cached ones from the cache (one `MGET`), the rest in one
    /// `/simple/price` call per 250 coins. Each coin is cached under the key [`price`](Self::price)
    /// uses, so the two share entries.
    #[cached(
        ttl = "price",
        max_ttl = "price_max",
        key = "price:<ids>_<vs>",
        batch = ids,
        max_batch = MAX_IDS,
        stale = "price_stale"
    )]
    pub async fn prices(&self, ids: &[String], vs: &str) -> Result<HashMap<String, Price>, ApiError> {
        let vs = vs.to_lowercase();
        let pairs: Vec<(String, String)> = ids.iter().map(|id| (id.clone(), vs.clone())).collect();
        let found = self.fetch_prices(&pairs).await?;
        Ok(found.into_iter().map(|((id, _), price)| (id, price)).collect())
    }

    /// The batching window's load: one budget permit for the merged call, then the call.
    async fn load_prices(&self, pairs: Vec<(String, String)>) -> Result<HashMap<(String, String), Price>, ApiError> {
        super::merged_call_permit(&self.cache, PROVIDER, 1).await?;
        self.fetch_prices(&pairs).await
    }

    /// One `/simple/price` call for every id and currency of `pairs`; every pair it priced: the
    /// cross product of those ids and currencies (the coalescer keeps the pairs nobody asked
    /// for yet to answer their misses later).
    async fn fetch_prices(&self, pairs: &[(String, String)]) -> Result<HashMap<(String, String), Price>, ApiError> {
        let mut ids: Vec<&str> = pairs.iter().map(|(id, _)| id.as_str()).collect();
        let mut vss: Vec<&str> = pairs.iter().map(|(_, vs)| vs.as_str()).collect();
        ids.sort_unstable();
        ids.dedup();
        vss.sort_unstable();
        vss.dedup();
        let (id_list, vs_list) = (ids.join(","), vss.join(","));
        let req = self.get("/simple/price").query(&[
            ("ids", id_list.as_str()),
            ("vs_currencies", vs_list.as_str()),
            ("include_market_cap", "true"),
            ("include_24hr_vol", "true"),
            ("include_24hr_change", "true"),
            ("include_last_updated_at", "true"),
        ]);
        let all: BTreeMap<String, BTreeMap<String, Option<f64>>> = fetch_json(PROVIDER, req).await?;
        let mut found = HashMap::with_capacity(pairs.len());
        for (id, fields) in all.iter().filter(|(id, _)| ids.binary_search(&id.as_str()).is_ok()) {
            let field = |name: String| fields.get(&name).copied().flatten();
            for &vs in &vss {
                let vs = vs.to_owned();
                let Some(price) = field(vs.clone()) else { continue };
                let quote = Price {
                    id: id.clone(),
                    vs: vs.clone(),
                    price,
                    market_cap: field(format!("{vs}_market_cap")),
                    volume_24h: field(format!("{vs}_24h_vol")),
                    change_24h: field(format!("{vs}_24h_change")),
                    last_updated_at: field("last_updated_at".into()).map(|t| t as i64),
                };
                found.insert((id.clone(), vs), quote);
            }
        }
        Ok(found)
    }

    /// Coin metadata (name, description, links ...).
    #[cached(ttl = "coin_data")]
    pub async fn coin_data(&self, id: &str) -> Result<CoinData, ApiError> {
        let req = self.get(&format!("/coins/{id}")).query(&[
            ("localization", "false"),
            ("tickers", "false"),
            ("market_data", "false"),
            ("community_data", "false"),
            ("developer_data", "false"),
            ("sparkline", "false"),
        ]);
        fetch_json(PROVIDER, req).await
    }

    /// Market statistics of a coin (prices, caps, volumes, changes).
    #[cached(ttl = "market_data", max_ttl = "market_data_max", jitter = HOT_JITTER, stale = "market_data_stale")]
    pub async fn market_data(&self, id: &str) -> Result<MarketData, ApiError> {
        let req = self.get(&format!("/coins/{id}")).query(&[
            ("localization", "false"),
            ("tickers", "false"),
            ("market_data", "true"),
            ("community_data", "false"),
            ("developer_data", "false"),
            ("sparkline", "false"),
        ]);
        fetch_json(PROVIDER, req).await
    }

    /// A coin's market figures in `vs` (price, cap, volume, 24 h range, changes over 24 h, 7 d
    /// and 30 d, supplies, all-time high and low): its row of `/coins/markets`. Concurrent
    /// misses for other coins share one upstream call (see [`with_batching`](Self::with_batching)),
    /// and that call also refreshes the coins asked recently.
    #[cached(
        ttl = "market_data",
        max_ttl = "market_data_max",
        jitter = HOT_JITTER,
        stale = "market_data_stale",
        weight = self.market_weight()
    )]
    pub async fn market(&self, id: &str, vs: &str) -> Result<MarketRow, ApiError> {
        let pair = (id.to_owned(), vs.to_lowercase());
        let found = match &self.markets_window {
            Some(window) => window.load(pair.clone(), |pairs| self.load_markets(pairs)).await?,
            None => self.fetch_markets(std::slice::from_ref(&pair)).await?.remove(&pair),
        };
        found.ok_or_else(|| ApiError::NotFound(format!("coingecko market row of {id:?} in {vs:?}")))
    }

    /// Market rows of many coins in `vs`: the cached ones from the cache (one `MGET`), the rest
    /// in one `/coins/markets` call per 250 coins. Cached under the keys [`market`](Self::market)
    /// uses.
    #[cached(
        ttl = "market_data",
        max_ttl = "market_data_max",
        key = "market:<ids>_<vs>",
        batch = ids,
        max_batch = MAX_ROWS,
        stale = "market_data_stale"
    )]
    pub async fn markets(&self, ids: &[String], vs: &str) -> Result<HashMap<String, MarketRow>, ApiError> {
        let vs = vs.to_lowercase();
        let pairs: Vec<(String, String)> = ids.iter().map(|id| (id.clone(), vs.clone())).collect();
        let found = self.fetch_markets(&pairs).await?;
        Ok(found.into_iter().map(|((id, _), row)| (id, row)).collect())
    }

    /// The markets window's load: one budget permit per currency's call, then the calls.
    async fn load_markets(
        &self,
        pairs: Vec<(String, String)>,
    ) -> Result<HashMap<(String, String), MarketRow>, ApiError> {
        let calls = pairs.iter().map(|(_, vs)| vs).collect::<std::collections::BTreeSet<_>>().len();
        super::merged_call_permit(&self.cache, PROVIDER, u32::try_from(calls).unwrap_or(u32::MAX)).await?;
        self.fetch_markets(&pairs).await
    }

    /// One `/coins/markets` call per currency of `pairs` (the endpoint takes one `vs_currency`),
    /// each for every id of `pairs`; every row returned (also for an id asked in another currency
    /// only: the coalescer keeps it to answer that miss later).
    async fn fetch_markets(
        &self,
        pairs: &[(String, String)],
    ) -> Result<HashMap<(String, String), MarketRow>, ApiError> {
        let mut ids: Vec<&str> = pairs.iter().map(|(id, _)| id.as_str()).collect();
        let mut vss: Vec<&str> = pairs.iter().map(|(_, vs)| vs.as_str()).collect();
        ids.sort_unstable();
        ids.dedup();
        vss.sort_unstable();
        vss.dedup();
        let list = ids.join(",");
        let per_page = ids.len().clamp(1, MAX_ROWS).to_string();
        let mut found = HashMap::with_capacity(pairs.len());
        for vs in vss {
            let req = self.get("/coins/markets").query(&[
                ("vs_currency", vs),
                ("ids", list.as_str()),
                ("per_page", per_page.as_str()),
                ("page", "1"),
                ("sparkline", "false"),
                ("price_change_percentage", "7d,30d"),
            ]);
            let rows: Vec<MarketRow> = fetch_json(PROVIDER, req).await?;
            for row in rows.into_iter().filter(|r| ids.binary_search(&r.id.as_str()).is_ok()) {
                found.insert((row.id.clone(), vs.to_owned()), row);
            }
        }
        Ok(found)
    }

    /// Price, market-cap and volume history over `days`, at CoinGecko's automatic granularity
    /// (5-minutely for 1 day, hourly from 2 to 90 days, daily beyond).
    ///
    /// Every chart from 2 to 90 days is cut from one cached 90-day hourly series of the coin in
    /// `vs` ([`HOURLY_DAYS`]): the points CoinGecko would send for `days` at the time the series
    /// was loaded, so a 7-day and a 30-day chart cost one upstream call between them.
    pub async fn market_chart(&self, id: &str, vs: &str, days: u32) -> Result<MarketChart, ApiError> {
        if (2..=HOURLY_DAYS).contains(&days) {
            Ok(self.hourly_chart(id, vs).await?.last_days(days))
        } else {
            self.chart_of_days(id, vs, days).await
        }
    }

    /// The [`HOURLY_DAYS`]-day hourly series [`market_chart`](Self::market_chart) cuts charts
    /// from 2 to 90 days from.
    #[cached(
        ttl = "market_chart",
        key = "market_chart:<id>_<vs>_hourly",
        jitter = HOT_JITTER,
        stale = "market_chart_stale",
        fallback = self.chart_from_binance(id, vs, HOURLY_DAYS)
    )]
    async fn hourly_chart(&self, id: &str, vs: &str) -> Result<MarketChart, ApiError> {
        self.fetch_chart(id, vs, HOURLY_DAYS).await
    }

    /// A chart of 1 day, or of more than 90, as CoinGecko sends it.
    #[cached(
        ttl = "market_chart",
        key = "market_chart:<id>_<vs>_<days>",
        jitter = HOT_JITTER,
        stale = "market_chart_stale",
        fallback = self.chart_from_binance(id, vs, days)
    )]
    async fn chart_of_days(&self, id: &str, vs: &str, days: u32) -> Result<MarketChart, ApiError> {
        self.fetch_chart(id, vs, days).await
    }

    async fn fetch_chart(&self, id: &str, vs: &str, days: u32) -> Result<MarketChart, ApiError> {
        let days_s = days.to_string();
        let req =
            self.get(&format!("/coins/{id}/market_chart")).query(&[("vs_currency", vs), ("days", days_s.as_str())]);
        fetch_json(PROVIDER, req).await
    }

    /// Trending coins.
    #[cached(ttl = "trending")]
    pub async fn trending(&self) -> Result<Trending, ApiError> {
        fetch_json(PROVIDER, self.get("/search/trending")).await
    }

    /// Global market statistics.
    #[cached(ttl = "global")]
    pub async fn global(&self) -> Result<Global, ApiError> {
        let env: GlobalEnvelope = fetch_json(PROVIDER, self.get("/global")).await?;
        Ok(env.data)
    }

    /// Every coin CoinGecko lists (id, symbol, name): `/coins/list`, one call for all of them,
    /// cached as metadata.
    #[cached(ttl = "coin_data")]
    pub async fn coin_list(&self) -> Result<Vec<ListedCoin>, ApiError> {
        fetch_json(PROVIDER, self.get("/coins/list")).await
    }

    /// The id of the coin a user named (`"Bitcoin"`, `"btc"`, `"bitcoin"`): an id, or a name or
    /// symbol only one listed coin has, is resolved from the cached [`coin_list`](Self::coin_list)
    /// without a call of its own; anything else (a name several coins share, a partial name)
    /// goes to `/search`, which ranks by market cap. `None`: no coin matches. The list's error
    /// (its budget said no and nothing is cached, say) is the caller's: no second call for it.
    pub async fn find_id(&self, query: &str) -> Result<Option<String>, ApiError> {
        let q = query.trim().to_lowercase();
        let list = self.coin_list().await?;
        if let Some(c) = list.iter().find(|c| c.id == q) {
            return Ok(Some(c.id.clone()));
        }
        let mut named = list.iter().filter(|c| c.name.to_lowercase() == q || c.symbol.to_lowercase() == q);
        if let (Some(only), None) = (named.next(), named.next()) {
            return Ok(Some(only.id.clone()));
        }
        Ok(self.search(&q).await?.coins.into_iter().next().map(|c| c.id))
    }

    /// Coins matching `query`.
    #[cached(ttl = "search")]
    pub async fn search(&self, query: &str) -> Result<Search, ApiError> {
        fetch_json(PROVIDER, self.get("/search").query(&[("query", query)])).await
    }
}
