//! Free-tier rate limits, enforced with fixed windows on the simulator's clock.

use std::collections::HashMap;

/// Rate limits enforced by the simulator; `None` disables a limit.
///
/// Windows are fixed and aligned on the simulated unix clock (minute windows start at :00,
/// day windows at 00:00 UTC, "month" windows are 30-day blocks), so a test can cross a window
/// with [`Simulator::advance`](crate::Simulator::advance). Rejected calls consume nothing.
///
/// Each limit counts in its provider's unit: CoinGecko, DexScreener, CryptoPanic and Fear & Greed
/// count requests; Binance's weight limit counts request weight (e.g. `/api/v3/ticker/price` is 2
/// with `symbol`, 4 with `symbols` or for all symbols); CoinMarketCap's per-minute limit counts
/// requests but its day and month quotas count call credits (see
/// [`coinmarketcap_per_day`](Self::coinmarketcap_per_day)).
///
/// Build small limits for tests with struct update syntax:
/// `Limits { coingecko_per_minute: Some(3), ..Limits::unlimited() }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// CoinGecko Demo: 30 calls/min.
    pub coingecko_per_minute: Option<u32>,
    /// CoinGecko Demo: 10,000 calls/month.
    pub coingecko_per_month: Option<u32>,
    /// CoinMarketCap Basic: 30 requests/min (requests, whatever their credits).
    pub coinmarketcap_per_minute: Option<u32>,
    /// CoinMarketCap Basic: ~333 credits/day (10,000 credits/month spread over 30 days).
    ///
    /// Counts call credits, not requests. `/v1` and `/v2` `cryptocurrency/quotes/latest`
    /// charge `ceil(items / 100)` credits (at least 1), where items are the entries of the
    /// `symbol`, `slug` or `id` list, times the number of `convert` currencies (at least 1);
    /// the answer's `status.credit_count` carries the credits charged. Error answers (400, 401,
    /// 429 ...) charge no credit.
    pub coinmarketcap_per_day: Option<u32>,
    /// CoinMarketCap Basic: 10,000 credits/month (counted like
    /// [`coinmarketcap_per_day`](Self::coinmarketcap_per_day)).
    pub coinmarketcap_per_month: Option<u32>,
    /// DexScreener search / pairs / tokens endpoints: 300 calls/min.
    pub dexscreener_per_minute: Option<u32>,
    /// DexScreener token-profile endpoints: 60 calls/min.
    pub dexscreener_profiles_per_minute: Option<u32>,
    /// Binance: 6,000 request weight/min (shared by spot and futures here).
    pub binance_weight_per_minute: Option<u32>,
    /// Binance: 3,000 raw requests/min.
    pub binance_requests_per_minute: Option<u32>,
    /// CryptoPanic: no documented limit.
    pub cryptopanic_per_minute: Option<u32>,
    /// Fear & Greed (alternative.me): public, no documented limit.
    pub feargreed_per_minute: Option<u32>,
}

impl Limits {
    /// The providers' free tiers, as listed in the caching strategy.
    pub fn free_tier() -> Self {
        Limits {
            coingecko_per_minute: Some(30),
            coingecko_per_month: Some(10_000),
            coinmarketcap_per_minute: Some(30),
            coinmarketcap_per_day: Some(333),
            coinmarketcap_per_month: Some(10_000),
            dexscreener_per_minute: Some(300),
            dexscreener_profiles_per_minute: Some(60),
            binance_weight_per_minute: Some(6_000),
            binance_requests_per_minute: Some(3_000),
            cryptopanic_per_minute: None,
            feargreed_per_minute: None,
        }
    }

    /// No limit at all.
    pub fn unlimited() -> Self {
        Limits {
            coingecko_per_minute: None,
            coingecko_per_month: None,
            coinmarketcap_per_minute: None,
            coinmarketcap_per_day: None,
            coinmarketcap_per_month: None,
            dexscreener_per_minute: None,
            dexscreener_profiles_per_minute: None,
            binance_weight_per_minute: None,
            binance_requests_per_minute: None,
            cryptopanic_per_minute: None,
            feargreed_per_minute: None,
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits::free_tier()
    }
}

pub(crate) const MINUTE_MS: u64 = 60_000;
pub(crate) const DAY_MS: u64 = 86_400_000;
pub(crate) const MONTH_MS: u64 = 30 * DAY_MS;

/// Which limit a bucket implements; also selects the 429 message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum BucketId {
    CoinGeckoMinute,
    CoinGeckoMonth,
    CmcMinute,
    CmcDay,
    CmcMonth,
    DexPairs,
    DexProfiles,
    BinanceWeight,
    BinanceRequests,
    CryptoPanicMinute,
    FearGreedMinute,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Bucket {
    pub id: BucketId,
    pub window_ms: u64,
    pub capacity: u32,
    pub cost: u32,
}

/// Result of a limit check.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Verdict {
    Allowed,
    /// Rejected by `id`; retry after `retry_after_s` seconds.
    Rejected {
        id: BucketId,
        retry_after_s: u64,
    },
}

/// Fixed-window counters.
#[derive(Debug, Default)]
pub(crate) struct Windows {
    used: HashMap<BucketId, (u64, u64)>,
}

impl Windows {
    /// Usage of `b`'s current window.
    pub fn peek(&self, b: &Bucket, now_ms: u64) -> u64 {
        match self.used.get(&b.id) {
            Some(&(w, used)) if w == now_ms / b.window_ms => used,
            _ => 0,
        }
    }

    /// Checks every bucket; consumes from all of them only if all allow.
    pub fn check(&mut self, buckets: &[Bucket], now_ms: u64) -> Verdict {
        let mut worst: Option<(BucketId, u64)> = None;
        for b in buckets {
            if self.peek(b, now_ms) + u64::from(b.cost) > u64::from(b.capacity) {
                let end = (now_ms / b.window_ms + 1) * b.window_ms;
                let secs = (end - now_ms).div_ceil(1000).max(1);
                if worst.is_none_or(|(_, s)| secs > s) {
                    worst = Some((b.id, secs));
                }
            }
        }
        if let Some((id, retry_after_s)) = worst {
            return Verdict::Rejected { id, retry_after_s };
        }
        for b in buckets {
            let w = now_ms / b.window_ms;
            let e = self.used.entry(b.id).or_insert((w, 0));
            if e.0 != w {
                *e = (w, 0);
            }
            e.1 += u64::from(b.cost);
        }
        Verdict::Allowed
    }

    /// Gives back what [`check`](Self::check) took from `buckets` at `now_ms`, in the windows
    /// that are still current.
    pub fn refund(&mut self, buckets: &[Bucket], now_ms: u64) {
        for b in buckets {
            if let Some(e) = self.used.get_mut(&b.id) {
                if e.0 == now_ms / b.window_ms {
                    e.1 = e.1.saturating_sub(u64::from(b.cost));
                }
            }
        }
    }

    pub fn clear(&mut self) {
        self.used.clear();
    }
}
