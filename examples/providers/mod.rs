//! Crypto-market provider services cached with `#[cached]`: CoinGecko, Binance, DexScreener,
//! CoinMarketCap, CryptoPanic and Fear & Greed.
//!
//! Included by `examples/syntra.rs` (`mod providers;`) and by the integration tests
//! (`#[path = "../examples/providers/mod.rs"] mod providers;`), so every path inside is
//! relative (`super::`), never `crate::`.
//!
//! Each service holds a `reqwest::Client`, its base URL (the real API by default), an optional
//! API key from the environment, the TTL table and a `syntra_cache::Cache`. API keys live only in
//! the service struct: they are sent as headers (or CryptoPanic's query parameter) but are never
//! a method argument, so never part of a cache key, a cached value or a log line.
#![allow(dead_code, unused_imports)]

pub mod binance;
pub mod coingecko;
pub mod coinmarketcap;
pub mod config;
pub mod cryptopanic;
pub mod dexscreener;
pub mod error;
pub mod feargreed;

use std::sync::Arc;
use std::time::Duration;

use syntra_cache::Cache;

pub use binance::{Binance, Interval};
pub use coingecko::CoinGecko;
pub use coinmarketcap::CoinMarketCap;
pub use config::{ConfigError, Limits, Ttls};
pub use cryptopanic::CryptoPanic;
pub use dexscreener::DexScreener;
pub use error::ApiError;
pub use feargreed::FearGreed;

/// A budget permit of `weight` for a merged call (a coalescer's load), which the engine does not
/// charge for itself (`weight = 0` on the single-item function): a refusal becomes the callers'
/// `ApiError::Budget`, and the engine is told nothing was sent. Without budgets, always granted.
pub(crate) async fn merged_call_permit(cache: &Cache, provider: &str, weight: u32) -> Result<(), ApiError> {
    let Some(budgets) = cache.budgets() else { return Ok(()) };
    budgets.acquire_or_wait(provider, weight).await.map(drop).map_err(|denied| {
        syntra_cache::engine::not_sent();
        ApiError::Budget(denied)
    })
}

/// Credentials sent to the simulator, which only checks that they are present.
pub const SIMULATOR_KEY: &str = "simulator-key";

/// One HTTP client shared by every service (rustls with the ring provider, webpki roots).
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .user_agent(concat!("syntra-cache-example/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(15))
        .pool_idle_timeout(Duration::from_secs(60))
        .build()
        .expect("the HTTP client configuration is valid")
}

/// Reads a non-empty environment variable.
fn env_key(name: &str) -> Option<String> {
    std::env::var(name).ok().map(|v| v.trim().to_string()).filter(|v| !v.is_empty())
}

/// Every service, sharing one HTTP client, one cache and one TTL table.
#[derive(Debug, Clone)]
pub struct Providers {
    pub coingecko: CoinGecko,
    pub binance: Binance,
    pub dexscreener: DexScreener,
    pub coinmarketcap: CoinMarketCap,
    pub cryptopanic: CryptoPanic,
    pub feargreed: FearGreed,
    pub ttls: Arc<Ttls>,
}

impl Providers {
    /// The real APIs, keys from the environment (`COINGECKO_API_KEY`, `CMC_API_KEY`,
    /// `CRYPTOPANIC_TOKEN`), TTLs from the environment (see [`config`]).
    pub fn from_env(cache: Cache) -> Result<Providers, ConfigError> {
        Ok(Providers::real(cache, Arc::new(Ttls::from_env()?)))
    }

    /// The real APIs with the given TTLs; keys from the environment.
    pub fn real(cache: Cache, ttls: Arc<Ttls>) -> Providers {
        let http = http_client();
        Providers {
            coingecko: CoinGecko::new(http.clone(), cache.clone(), ttls.clone()),
            binance: Binance::new(http.clone(), cache.clone(), ttls.clone()),
            dexscreener: DexScreener::new(http.clone(), cache.clone(), ttls.clone()),
            coinmarketcap: CoinMarketCap::new(http.clone(), cache.clone(), ttls.clone()),
            cryptopanic: CryptoPanic::new(http.clone(), cache.clone(), ttls.clone()),
            feargreed: FearGreed::new(http, cache, ttls.clone()),
            ttls,
        }
    }

    /// Every service pointed at a running simulator, default TTLs, placeholder credentials
    /// (real keys from the environment are never sent to it).
    pub fn with_simulator(sim: &syntra_sim::Simulator, cache: Cache) -> Providers {
        Providers::with_simulator_ttls(sim, cache, Arc::new(Ttls::default()))
    }

    /// Like [`with_simulator`](Self::with_simulator) with the given TTLs.
    pub fn with_simulator_ttls(sim: &syntra_sim::Simulator, cache: Cache, ttls: Arc<Ttls>) -> Providers {
        let key = || Some(SIMULATOR_KEY.to_string());
        let p = Providers::real(cache, ttls);
        Providers {
            coingecko: p.coingecko.with_base_url(sim.base_url("coingecko")).with_api_key(None),
            binance: p.binance.with_base_urls(sim.base_url("binance"), sim.base_url("binance")),
            dexscreener: p.dexscreener.with_base_url(sim.base_url("dexscreener")),
            coinmarketcap: p.coinmarketcap.with_base_url(sim.base_url("coinmarketcap")).with_api_key(key()),
            cryptopanic: p.cryptopanic.with_base_url(sim.base_url("cryptopanic")).with_token(key()),
            feargreed: p.feargreed.with_base_url(sim.base_url("feargreed")),
            ttls: p.ttls,
        }
    }
}

/// Redacts a secret for `Debug`.
fn redacted(key: &Option<String>) -> &'static str {
    if key.is_some() {
        "Some(<redacted>)"
    } else {
        "None"
    }
}
