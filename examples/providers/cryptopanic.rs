//! CryptoPanic news API. Needs `CRYPTOPANIC_TOKEN`.
//!
//! The token travels in the query string (`auth_token`), so request URLs are secret: errors
//! are stripped of URLs, and the response's `next`/`previous` page links (which the real API
//! fills with the token) are not kept in cached values.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use syntra_cache::{cached, Cache};

use super::config::{CryptoPanicTtls, Ttls};
use super::error::{fetch_json, ApiError};

const PROVIDER: &str = "cryptopanic";

/// `source` of a post.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Source {
    pub title: String,
    #[serde(default)]
    pub region: Option<String>,
    #[serde(default)]
    pub domain: Option<String>,
}

/// A currency tagged on a post.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Currency {
    pub code: String,
    pub title: String,
    #[serde(default)]
    pub slug: Option<String>,
}

/// Votes on a post.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Votes {
    #[serde(default)]
    pub negative: u64,
    #[serde(default)]
    pub positive: u64,
    #[serde(default)]
    pub important: u64,
    #[serde(default)]
    pub liked: u64,
    #[serde(default)]
    pub disliked: u64,
    #[serde(default)]
    pub lol: u64,
    #[serde(default)]
    pub toxic: u64,
    #[serde(default)]
    pub saved: u64,
    #[serde(default)]
    pub comments: u64,
}

/// A news post of `/api/v1/posts/`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Post {
    pub id: u64,
    #[serde(default)]
    pub kind: Option<String>,
    pub title: String,
    pub published_at: String,
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub domain: Option<String>,
    #[serde(default)]
    pub source: Option<Source>,
    #[serde(default, deserialize_with = "super::error::de::list")]
    pub currencies: Vec<Currency>,
    #[serde(default)]
    pub votes: Votes,
}

#[derive(Deserialize)]
struct Page {
    #[serde(default, deserialize_with = "super::error::de::list")]
    results: Vec<Post>,
}

/// The CryptoPanic service.
#[derive(Clone)]
pub struct CryptoPanic {
    http: reqwest::Client,
    base_url: String,
    /// `CRYPTOPANIC_TOKEN`, sent as the `auth_token` query parameter.
    token: Option<String>,
    cache: Cache,
    /// This provider's row of the TTL table (`config::Ttls`), named by `ttl = "..."`.
    ttls: CryptoPanicTtls,
}

impl fmt::Debug for CryptoPanic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CryptoPanic")
            .field("base_url", &self.base_url)
            .field("token", &super::redacted(&self.token))
            .finish()
    }
}

#[cached(cache = self.cache, prefix = "cryptopanic", budget = "cryptopanic", ttls = self.ttls)]
impl CryptoPanic {
    /// The real API.
    pub const BASE_URL: &'static str = "https://cryptopanic.com";

    /// The real API; the token from `CRYPTOPANIC_TOKEN`.
    pub fn new(http: reqwest::Client, cache: Cache, ttls: Arc<Ttls>) -> Self {
        CryptoPanic {
            http,
            base_url: Self::BASE_URL.to_string(),
            token: super::env_key("CRYPTOPANIC_TOKEN"),
            cache,
            ttls: ttls.cryptopanic,
        }
    }

    /// Another base URL.
    pub fn with_base_url(mut self, url: impl Into<String>) -> Self {
        self.base_url = url.into().trim_end_matches('/').to_string();
        self
    }

    /// Replaces the token.
    pub fn with_token(mut self, token: Option<String>) -> Self {
        self.token = token;
        self
    }

    /// Whether a token is configured.
    pub fn has_token(&self) -> bool {
        self.token.is_some()
    }

    /// The latest public news about `currencies` (comma-separated codes, e.g. `BTC,ETH`).
    #[cached(ttl = "news")]
    pub async fn news(&self, currencies: &str) -> Result<Vec<Post>, ApiError> {
        let token = self.token.as_deref().ok_or(ApiError::Unauthorized)?;
        let req = self.http.get(format!("{}/api/v1/posts/", self.base_url)).query(&[
            ("auth_token", token),
            ("currencies", currencies),
            ("public", "true"),
        ]);
        let page: Page = fetch_json(PROVIDER, req).await?;
        Ok(page.results)
    }
}
