//! CoinMarketCap Pro API (Basic plan: ~333 calls/day). Needs `CMC_API_KEY`.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
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
        }
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
    #[cached(ttl = "quote", jitter = HOT_JITTER, stale = "quote_stale")]
    pub async fn quote(&self, symbol: &str) -> Result<Quote, ApiError> {
        let key = self.api_key.as_deref().ok_or(ApiError::Unauthorized)?;
        let req = self
            .http
            .get(format!("{}/v1/cryptocurrency/quotes/latest", self.base_url))
            .header("X-CMC_PRO_API_KEY", key)
            .header("accept", "application/json")
            .query(&[("symbol", symbol), ("convert", "USD")]);
        let env: Envelope = fetch_json(PROVIDER, req).await?;
        env.data
            .into_iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(symbol))
            .map(|(_, q)| q)
            .ok_or_else(|| ApiError::NotFound(format!("coinmarketcap quote of {symbol:?}")))
    }
}
