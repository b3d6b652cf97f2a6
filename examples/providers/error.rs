//! The error every provider call returns, and the one HTTP helper that produces it.
//!
//! Errors are never cached (the cache stores only `Ok` values), so a 429 or an outage is
//! retried on the next call. No variant carries a URL: URLs may hold credentials (CryptoPanic's
//! `auth_token`), so reqwest errors are stripped of theirs before they become messages.

use std::error::Error as _;
use std::fmt;
use std::time::Duration;

use serde::de::DeserializeOwned;
use syntra_cache::budget::{Denied, RateLimitError};

/// A failed provider call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiError {
    /// The provider answered 429 (or Binance's 418 ban); `Retry-After` if it sent one.
    RateLimited { provider: &'static str, retry_after: Option<Duration> },
    /// Any other non-success status.
    Http { status: u16 },
    /// The request did not complete (connect, timeout, reset ...).
    Network(String),
    /// The body was not the expected JSON.
    Decode(String),
    /// Missing or rejected credentials (401/403, or no key configured for a keyed API).
    Unauthorized,
    /// A well-formed answer that lacks the requested item (unknown id, no pair ...).
    NotFound(String),
    /// The provider's budget (rate limit or quota, see `config::budgets`) said no and there was
    /// no cached value to serve: the call was never sent. Carries the budget, the limit that
    /// refused and the retry-after.
    Budget(Denied),
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ApiError::RateLimited { provider, retry_after: Some(d) } => {
                write!(f, "{provider}: rate limited, retry after {}s", d.as_secs())
            }
            ApiError::RateLimited { provider, .. } => write!(f, "{provider}: rate limited"),
            ApiError::Http { status } => write!(f, "upstream answered HTTP {status}"),
            ApiError::Network(m) => write!(f, "network error: {m}"),
            ApiError::Decode(m) => write!(f, "unexpected response: {m}"),
            ApiError::Unauthorized => f.write_str("unauthorized: missing or invalid API key"),
            ApiError::NotFound(what) => write!(f, "not found: {what}"),
            ApiError::Budget(denied) => write!(f, "not sent: {denied}"),
        }
    }
}

impl std::error::Error for ApiError {}

/// What a `#[cached(budget = "..")]` method returns when its budget refuses the call.
impl From<Denied> for ApiError {
    fn from(denied: Denied) -> Self {
        ApiError::Budget(denied)
    }
}

/// A 429 (or Binance's 418) backs the provider's budget off at once, for the provider's
/// `Retry-After` (1 s without one), in every instance sharing the budget.
impl RateLimitError for ApiError {
    fn rate_limited(&self) -> Option<Option<Duration>> {
        match self {
            ApiError::RateLimited { retry_after, .. } => Some(*retry_after),
            _ => None,
        }
    }
}

/// A reqwest error as text, without its URL and with its causes.
pub(super) fn network(e: reqwest::Error) -> ApiError {
    let e = e.without_url();
    let mut msg = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        source = s.source();
    }
    ApiError::Network(msg)
}

/// Parses a `Retry-After` header given in seconds.
fn retry_after(resp: &reqwest::Response) -> Option<Duration> {
    resp.headers().get(reqwest::header::RETRY_AFTER)?.to_str().ok()?.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// Sends `req` and decodes a JSON body of type `T`, mapping failures to [`ApiError`].
pub(super) async fn fetch_json<T: DeserializeOwned>(
    provider: &'static str,
    req: reqwest::RequestBuilder,
) -> Result<T, ApiError> {
    let resp = req.send().await.map_err(network)?;
    let status = resp.status().as_u16();
    match status {
        200..=299 => {}
        429 | 418 => return Err(ApiError::RateLimited { provider, retry_after: retry_after(&resp) }),
        401 | 403 => return Err(ApiError::Unauthorized),
        _ => return Err(ApiError::Http { status }),
    }
    let bytes = resp.bytes().await.map_err(network)?;
    serde_json::from_slice(&bytes).map_err(|e| ApiError::Decode(format!("{provider}: {e}")))
}

/// Serde helpers for the providers' loosely typed fields.
pub(super) mod de {
    use std::collections::BTreeMap;

    use serde::{Deserialize, Deserializer};

    /// A number that may come as a JSON number or a numeric string.
    pub(in super::super) fn flex_f64<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum N {
            F(f64),
            S(String),
        }
        match N::deserialize(d)? {
            N::F(f) => Ok(f),
            N::S(s) => s.trim().parse().map_err(serde::de::Error::custom),
        }
    }

    /// Like [`flex_f64`], `null` or missing allowed.
    pub(in super::super) fn flex_f64_opt<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum N {
            F(f64),
            S(String),
        }
        match Option::<N>::deserialize(d)? {
            None => Ok(None),
            Some(N::F(f)) => Ok(Some(f)),
            Some(N::S(s)) if s.trim().is_empty() => Ok(None),
            Some(N::S(s)) => s.trim().parse().map(Some).map_err(serde::de::Error::custom),
        }
    }

    /// A `{currency: number}` map whose values (or itself) may be `null`; nulls are dropped.
    pub(in super::super) fn per_currency<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, f64>, D::Error> {
        let m: Option<BTreeMap<String, Option<f64>>> = Option::deserialize(d)?;
        Ok(m.unwrap_or_default().into_iter().filter_map(|(k, v)| v.map(|v| (k, v))).collect())
    }

    /// A list that may be `null`; nulls inside are dropped.
    pub(in super::super) fn list<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
    where
        D: Deserializer<'de>,
        T: Deserialize<'de>,
    {
        let v: Option<Vec<Option<T>>> = Option::deserialize(d)?;
        Ok(v.unwrap_or_default().into_iter().flatten().collect())
    }
}
