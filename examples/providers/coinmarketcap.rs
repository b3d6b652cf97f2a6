//! CoinMarketCap Pro API (Basic plan: ~333 calls/day). Needs `CMC_API_KEY`.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use syntra_cache::engine::Coalescer;
use syntra_cache::{cached, Cache};

use super::config::{CoinMarketCapTtls, Ttls, HOT_JITTER};
use super::error::{fetch_json, ApiError};

const PROVIDER: &str = "coinmarketcap";

/// One currency's figures in `quote`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct QuoteFigures {
    #[serde(default)]
    pub price: Option<f64>,
    #[serde(default)]
    pub volume_24h: Option<f64>,
    #[serde(default)]
    pub percent_change_1h: Option<f64>,
    #[serde(default)]
    pub percent_change_24h: Option<f64>,
    #[serde(default)]
    pub percent_change_7d: Option<f64>,
    #[serde(default)]
    pub market_cap: Option<f64>,
    #[serde(default)]
    pub market_cap_dominance: Option<f64>,
    #[serde(default)]
    pub fully_diluted_market_cap: Option<f64>,
    #[serde(default)]
    pub last_updated: Option<String>,
}

/// A coin of `/v1/cryptocurrency/quotes/latest`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Quote {
    pub id: u64,
    pub name: String,
    pub symbol: String,
    pub slug: String,
    #[serde(default)]
    pub cmc_rank: Option<u32>,
    #[serde(default)]
    pub circulating_supply: Option<f64>,
    #[serde(default)]
    pub total_supply: Option<f64>,
    #[serde(default)]
    pub max_supply: Option<f64>,
    #[serde(default)]
    pub last_updated: Option<String>,
    /// Keyed by currency (`USD`).
    #[serde(default)]
    pub quote: BTreeMap<String, QuoteFigures>,
}

impl Quote {
    /// The USD price, if present.
    pub fn usd_price(&self) -> Option<f64> {
        self.quote.get("USD").and_then(|q| q.price)
    }
}

#[derive(Deserialize)]
struct Envelope {
    #[serde(default)]
    data: BTreeMap<String, Quote>,
}

/// The CoinMarketCap service.
#[derive(Clone)]
pub struct CoinMarketCap {
    http: reqwest::Client,
    base_url: String,
    /// `CMC_API_KEY`, sent as `X-CMC_PRO_API_KEY`.
    api_key: Option<String>,
    cache: Cache,
    /// This provider's row of the TTL table (`config::Ttls`), named by `ttl = "..."`.
    ttls: CoinMarketCapTtls,
    /// Concurrent quote misses merged into one call (`None`: one call per symbol).
    quotes_window: Option<Arc<Coalescer<String, Quote, ApiError>>>,
}

/// How long a quote miss may wait for company while another quote load is in flight.
const QUOTE_WINDOW: Duration = Duration::from_millis(5);
/// CoinMarketCap charges one credit per 100 symbols of a call.
const SYMBOLS_PER_CREDIT: usize = 100;

/// Concurrent quote misses merged into one call of at most one credit; the symbols asked most
/// recently ride along (refresh in batches), and a later miss takes such a quote while it is
/// younger than half its TTL.
fn quote_window() -> Arc<Coalescer<String, Quote, ApiError>> {
    Arc::new(Coalescer::new(QUOTE_WINDOW, SYMBOLS_PER_CREDIT).companions(SYMBOLS_PER_CREDIT, 0.5))
}

/// The credits a call for `n` symbols costs.
fn credits(n: usize) -> u32 {
    n.div_ceil(SYMBOLS_PER_CREDIT).max(1) as u32
}

impl fmt::Debug for CoinMarketCap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CoinMarketCap")
            .field("base_url", &self.base_url)
            .field("api_key", &super::redacted(&self.api_key))
            .finish()
    }
}

#[cached(cache = self.cache, prefix = "coinmarketcap", budget = "coinmarketcap", ttls = self.ttls)]
impl CoinMarketCap {
    /// The real API.
    pub const BASE_URL: &'static str = "https://pro-api.coinmarketcap.com";

    /// The real API; the key from `CMC_API_KEY`.
    pub fn new(http: reqwest::Client, cache: Cache, ttls: Arc<Ttls>) -> Self {
        CoinMarketCap {
            http,
            base_url: Self::BASE_URL.to_string(),
            api_key: super::env_key("CMC_API_KEY"),
            cache,
            ttls: ttls.coinmarketcap,
            quotes_window: Some(quote_window()),
        }
    }

    /// Batching on (the default: concurrent quote misses share one call, charged by its
    /// credits) or off (one call per symbol, for comparison: the demo's `--no-batch`).
    pub fn with_batching(mut self, on: bool) -> Self {
        self.quotes_window = on.then(quote_window);
        self
    }

    /// What a single quote call costs its budget: nothing when batching (the merged call is
    /// charged by its credits, in `load_quotes`), one credit otherwise.
    fn quote_weight(&self) -> u32 {
        u32::from(self.quotes_window.is_none())
    }

    /// Upstream quote calls made through the batching window, the symbols they quoted, how many
    /// of those were companions (refresh in batches) and how many misses those answered.
    pub fn batched_quote_calls(&self) -> (u64, u64, u64, u64) {
        self.quotes_window
            .as_ref()
            .map_or((0, 0, 0, 0), |w| (w.calls(), w.items(), w.companions_loaded(), w.served_ahead()))
    }

    /// Another base URL.
    pub fn with_base_url(mut self, url: impl Into<String>) -> Self {
        self.base_url = url.into().trim_end_matches('/').to_string();
        self
    }

    /// Replaces the API key.
    pub fn with_api_key(mut self, key: Option<String>) -> Self {
        self.api_key = key;
        self
    }

    /// Whether a key is configured (without one every call is `Unauthorized`).
    pub fn has_key(&self) -> bool {
        self.api_key.is_some()
    }

    /// The latest USD quote of `symbol` (upper case, e.g. `BTC`). Without a key the call fails
    /// with `Unauthorized` before reaching the network, sparing the daily quota.
    ///
    /// Draws from the `coinmarketcap` budget (333/day, 10,000/month: the scarcest quota, so the
    /// one pacing stretches first); `stale`: see `CoinMarketCapTtls::quote_stale`.
    #[cached(ttl = "quote", max_ttl = "quote_max", jitter = HOT_JITTER, stale = "quote_stale", weight = self.quote_weight())]
    pub async fn quote(&self, symbol: &str) -> Result<Quote, ApiError> {
        let found = match &self.quotes_window {
            Some(window) => window.load(symbol.to_owned(), |symbols| self.load_quotes(symbols)).await?,
            None => self.fetch_quotes(&[symbol.to_owned()]).await?.remove(symbol),
        };
        found.ok_or_else(|| ApiError::NotFound(format!("coinmarketcap quote of {symbol:?}")))
    }

    /// Quotes of many symbols: the cached ones from the cache (one `MGET`), the rest in one call
    /// per 100 symbols (one credit each). Cached under the key [`quote`](Self::quote) uses.
    #[cached(
        ttl = "quote",
        max_ttl = "quote_max",
        key = "quote:<symbols>",
        batch = symbols,
        max_batch = SYMBOLS_PER_CREDIT,
        stale = "quote_stale"
    )]
    pub async fn quotes(&self, symbols: &[String]) -> Result<HashMap<String, Quote>, ApiError> {
        self.fetch_quotes(symbols).await
    }

    /// The batching window's load: the merged call's credits from the budget, then the call.
    async fn load_quotes(&self, symbols: Vec<String>) -> Result<HashMap<String, Quote>, ApiError> {
        super::merged_call_permit(&self.cache, PROVIDER, credits(symbols.len())).await?;
        self.fetch_quotes(&symbols).await
    }

    /// One `/v1/cryptocurrency/quotes/latest` call for `symbols`; those found, by the symbol
    /// asked for.
    async fn fetch_quotes(&self, symbols: &[String]) -> Result<HashMap<String, Quote>, ApiError> {
        let key = self.api_key.as_deref().ok_or(ApiError::Unauthorized)?;
        let list = symbols.join(",");
        let req = self
            .http
            .get(format!("{}/v1/cryptocurrency/quotes/latest", self.base_url))
            .header("X-CMC_PRO_API_KEY", key)
            .header("accept", "application/json")
            .query(&[("symbol", list.as_str()), ("convert", "USD")]);
        let env: Envelope = fetch_json(PROVIDER, req).await?;
        let mut found = HashMap::with_capacity(symbols.len());
        for symbol in symbols {
            if let Some((_, q)) = env.data.iter().find(|(k, _)| k.eq_ignore_ascii_case(symbol)) {
                found.insert(symbol.clone(), q.clone());
            }
        }
        Ok(found)
    }
}
