//! DexScreener public API (300 calls/min for search and pairs; no key needed).

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use syntra_cache::{cached, Cache};

use super::config::{DexScreenerTtls, Ttls, HOT_JITTER};
use super::error::{fetch_json, ApiError};

const PROVIDER: &str = "dexscreener";
/// `/tokens/v1/{chain}/{addresses}` takes at most 30 addresses.
const MAX_ADDRESSES: usize = 30;

/// `baseToken` / `quoteToken` of a pair.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Token {
    pub address: String,
    pub name: String,
    pub symbol: String,
}

/// Buys and sells in a window.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct TxnCount {
    #[serde(default)]
    pub buys: u64,
    #[serde(default)]
    pub sells: u64,
}

/// `liquidity` of a pair.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Liquidity {
    #[serde(default)]
    pub usd: Option<f64>,
    #[serde(default)]
    pub base: Option<f64>,
    #[serde(default)]
    pub quote: Option<f64>,
}

/// A link in `info.websites`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Website {
    #[serde(default)]
    pub label: Option<String>,
    pub url: String,
}

/// A link in `info.socials`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Social {
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub url: Option<String>,
}

/// `info` of a pair.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Info {
    #[serde(default)]
    pub image_url: Option<String>,
    #[serde(default, deserialize_with = "super::error::de::list")]
    pub websites: Vec<Website>,
    #[serde(default, deserialize_with = "super::error::de::list")]
    pub socials: Vec<Social>,
}

/// A DEX pair as DexScreener returns it (decimal prices stay strings, as on the wire).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Pair {
    pub chain_id: String,
    pub dex_id: String,
    #[serde(default)]
    pub url: Option<String>,
    pub pair_address: String,
    #[serde(default, deserialize_with = "super::error::de::list")]
    pub labels: Vec<String>,
    pub base_token: Token,
    pub quote_token: Token,
    #[serde(default)]
    pub price_native: Option<String>,
    #[serde(default)]
    pub price_usd: Option<String>,
    #[serde(default)]
    pub txns: BTreeMap<String, TxnCount>,
    #[serde(default, deserialize_with = "super::error::de::per_currency")]
    pub volume: BTreeMap<String, f64>,
    #[serde(default, deserialize_with = "super::error::de::per_currency")]
    pub price_change: BTreeMap<String, f64>,
    #[serde(default)]
    pub liquidity: Option<Liquidity>,
    #[serde(default)]
    pub fdv: Option<f64>,
    #[serde(default)]
    pub market_cap: Option<f64>,
    #[serde(default)]
    pub pair_created_at: Option<i64>,
    #[serde(default)]
    pub info: Option<Info>,
}

impl Pair {
    /// `priceUsd` as a number.
    pub fn price_usd(&self) -> Option<f64> {
        self.price_usd.as_deref()?.parse().ok()
    }

    /// `priceNative` as a number.
    pub fn price_native(&self) -> Option<f64> {
        self.price_native.as_deref()?.parse().ok()
    }

    /// `liquidity.usd`, 0 when absent.
    pub fn liquidity_usd(&self) -> f64 {
        self.liquidity.and_then(|l| l.usd).unwrap_or(0.0)
    }
}

#[derive(Deserialize)]
struct SearchEnvelope {
    #[serde(default, deserialize_with = "super::error::de::list")]
    pairs: Vec<Pair>,
}

/// A token's USD price, from its most liquid pair.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenPrice {
    pub chain_id: String,
    pub address: String,
    pub symbol: String,
    pub name: String,
    pub price_usd: f64,
    pub liquidity_usd: f64,
    pub dex_id: String,
    pub pair_address: String,
}

fn same_address(a: &str, b: &str) -> bool {
    if a.starts_with("0x") {
        a.eq_ignore_ascii_case(b)
    } else {
        a == b
    }
}

/// The DexScreener service.
#[derive(Clone)]
pub struct DexScreener {
    http: reqwest::Client,
    base_url: String,
    cache: Cache,
    /// This provider's row of the TTL table (`config::Ttls`), named by `ttl = "..."`.
    ttls: DexScreenerTtls,
}

impl fmt::Debug for DexScreener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DexScreener").field("base_url", &self.base_url).finish()
    }
}

#[cached(cache = self.cache, prefix = "dexscreener", budget = "dexscreener", ttls = self.ttls)]
impl DexScreener {
    /// The real API.
    pub const BASE_URL: &'static str = "https://api.dexscreener.com";

    /// The real API.
    pub fn new(http: reqwest::Client, cache: Cache, ttls: Arc<Ttls>) -> Self {
        DexScreener { http, base_url: Self::BASE_URL.to_string(), cache, ttls: ttls.dexscreener }
    }

    /// Another base URL.
    pub fn with_base_url(mut self, url: impl Into<String>) -> Self {
        self.base_url = url.into().trim_end_matches('/').to_string();
        self
    }

    fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.http.get(format!("{}{path}", self.base_url))
    }

    /// Pairs matching `query` (symbol, name or address).
    #[cached(ttl = "search")]
    pub async fn search(&self, query: &str) -> Result<Vec<Pair>, ApiError> {
        let req = self.get("/latest/dex/search").query(&[("q", query)]);
        let env: SearchEnvelope = fetch_json(PROVIDER, req).await?;
        Ok(env.pairs)
    }

    /// Every pool of a token on a chain (`solana`, `ethereum`, `bsc` ...).
    #[cached(ttl = "token_pairs")]
    pub async fn token_pairs(&self, chain: &str, address: &str) -> Result<Vec<Pair>, ApiError> {
        let req = self.get(&format!("/token-pairs/v1/{chain}/{address}"));
        fetch_json(PROVIDER, req).await
    }

    /// A token's USD price from its most liquid pair (via `/tokens/v1`).
    ///
    /// Hot (`jitter`); `stale`: see `DexScreenerTtls::token_price_stale`.
    #[cached(ttl = "token_price", jitter = HOT_JITTER, stale = "token_price_stale")]
    pub async fn token_price(&self, chain: &str, address: &str) -> Result<TokenPrice, ApiError> {
        let req = self.get(&format!("/tokens/v1/{chain}/{address}"));
        let pairs: Vec<Pair> = fetch_json(PROVIDER, req).await?;
        best_price(&pairs, address).ok_or_else(|| ApiError::NotFound(format!("dexscreener price of {chain}/{address}")))
    }

    /// Prices of many tokens of one chain: the cached ones from the cache (one `MGET`), the rest
    /// in one `/tokens/v1/{chain}/{a,b,...}` call per 30 addresses (DexScreener's limit). Each
    /// token is cached under the key [`token_price`](Self::token_price) uses; tokens without a
    /// priced pair are left out.
    #[cached(
        ttl = "token_price",
        key = "token_price:<chain>_<addresses>",
        batch = addresses,
        max_batch = MAX_ADDRESSES,
        jitter = HOT_JITTER,
        stale = "token_price_stale"
    )]
    pub async fn token_prices(
        &self,
        chain: &str,
        addresses: &[String],
    ) -> Result<HashMap<String, TokenPrice>, ApiError> {
        let req = self.get(&format!("/tokens/v1/{chain}/{}", addresses.join(",")));
        let pairs: Vec<Pair> = fetch_json(PROVIDER, req).await?;
        Ok(addresses.iter().filter_map(|a| Some((a.clone(), best_price(&pairs, a)?))).collect())
    }
}

/// `address`'s price among `pairs`: from the most liquid pair where it is the base token (its
/// `priceUsd`), or the quote token (`priceUsd / priceNative`).
fn best_price(pairs: &[Pair], address: &str) -> Option<TokenPrice> {
    let mut best: Option<(f64, f64, &Pair, &Token)> = None;
    for p in pairs {
        let (price, token) = if same_address(&p.base_token.address, address) {
            (p.price_usd(), &p.base_token)
        } else if same_address(&p.quote_token.address, address) {
            let price = match (p.price_usd(), p.price_native()) {
                (Some(u), Some(n)) if n > 0.0 => Some(u / n),
                _ => None,
            };
            (price, &p.quote_token)
        } else {
            continue;
        };
        let Some(price) = price else { continue };
        let liq = p.liquidity_usd();
        if best.as_ref().is_none_or(|b| liq > b.1) {
            best = Some((price, liq, p, token));
        }
    }
    let (price, liq, pair, token) = best?;
    Some(TokenPrice {
        chain_id: pair.chain_id.clone(),
        address: token.address.clone(),
        symbol: token.symbol.clone(),
        name: token.name.clone(),
        price_usd: price,
        liquidity_usd: liq,
        dex_id: pair.dex_id.clone(),
        pair_address: pair.pair_address.clone(),
    })
}
