//! alternative.me Crypto Fear & Greed Index (public, updated daily).

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use syntra_cache::{cached, Cache};

use super::config::{FearGreedTtls, Ttls};
use super::error::{fetch_json, ApiError};

const PROVIDER: &str = "feargreed";

/// Today's index.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FearGreedIndex {
    /// 0 (extreme fear) to 100 (extreme greed).
    pub value: u32,
    /// `Extreme Fear`, `Fear`, `Neutral`, `Greed` or `Extreme Greed`.
    pub classification: String,
    /// Unix seconds of the day the value is for.
    pub timestamp: i64,
    /// Seconds until the next update, when the API gave it (as of the fetch).
    pub time_until_update: Option<u64>,
}

#[derive(Deserialize)]
struct RawEntry {
    value: String,
    value_classification: String,
    timestamp: String,
    #[serde(default)]
    time_until_update: Option<String>,
}

#[derive(Deserialize)]
struct Envelope {
    #[serde(default, deserialize_with = "super::error::de::list")]
    data: Vec<RawEntry>,
}

/// The Fear & Greed service.
#[derive(Clone)]
pub struct FearGreed {
    http: reqwest::Client,
    base_url: String,
    cache: Cache,
    /// This provider's row of the TTL table (`config::Ttls`), named by `ttl = "..."`.
    ttls: FearGreedTtls,
}

impl fmt::Debug for FearGreed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FearGreed").field("base_url", &self.base_url).finish()
    }
}

#[cached(cache = self.cache, prefix = "feargreed", budget = "feargreed", ttls = self.ttls)]
impl FearGreed {
    /// The real API.
    pub const BASE_URL: &'static str = "https://api.alternative.me";

    /// The real API.
    pub fn new(http: reqwest::Client, cache: Cache, ttls: Arc<Ttls>) -> Self {
        FearGreed { http, base_url: Self::BASE_URL.to_string(), cache, ttls: ttls.feargreed }
    }

    /// Another base URL.
    pub fn with_base_url(mut self, url: impl Into<String>) -> Self {
        self.base_url = url.into().trim_end_matches('/').to_string();
        self
    }

    /// The current index.
    #[cached(ttl = "current")]
    pub async fn current(&self) -> Result<FearGreedIndex, ApiError> {
        let req = self.http.get(format!("{}/fng/", self.base_url)).query(&[("limit", "1")]);
        let env: Envelope = fetch_json(PROVIDER, req).await?;
        let e = env.data.into_iter().next().ok_or_else(|| ApiError::NotFound("fear & greed index".into()))?;
        let bad = |what: &str| ApiError::Decode(format!("feargreed: bad {what}"));
        Ok(FearGreedIndex {
            value: e.value.trim().parse().map_err(|_| bad("value"))?,
            classification: e.value_classification,
            timestamp: e.timestamp.trim().parse().map_err(|_| bad("timestamp"))?,
            time_until_update: e.time_until_update.and_then(|t| t.trim().parse().ok()),
        })
    }
}
