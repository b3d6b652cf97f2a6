//! Upstream budgets: per-provider rate limits and quotas, shared by every instance through Redis,
//! with an in-process fallback, 429 back-off and pacing.
//!
//! A cache that only counts TTLs cannot keep a bot inside a free tier: one hot coin at
//! CoinGecko's 90 s price TTL is 28,800 calls a month against a quota of 10,000. A [`Budget`]
//! declares what a provider allows; a [`BudgetEnforcer`] is asked for a [`Permit`] before every
//! upstream call and answers [`Denied`] (with a retry-after) when the call would break a limit.
//!
//! # Declaring budgets
//!
//! ```
//! use std::time::Duration;
//! use syntra_cache_runtime::budget::{Budget, Budgets};
//!
//! # fn main() -> Result<(), syntra_cache_runtime::budget::BudgetError> {
//! let budgets = Budgets::new(vec![
//!     Budget::new("coingecko").rate(30, Duration::from_secs(60)).quota_month(10_000),
//!     Budget::new("coinmarketcap").quota_day(333).quota_month(10_000),
//!     Budget::new("binance").rate(6_000, Duration::from_secs(60)), // weight per minute
//! ])?
//! .with_env()?; // SYNTRA_BUDGET_<NAME>_RATE / _DAY / _MONTH override the declarations
//! # let _ = budgets; Ok(()) }
//! ```
//!
//! [`Budgets::seed_defaults`] holds the free tiers of the seed's providers. Every setting can be
//! overridden from the environment, see [`Budgets::with_vars`].
//!
//! # Enforcement
//!
//! [`BudgetEnforcer::acquire`] checks every limit of a budget at once and consumes `weight` from
//! all of them only when all of them allow it. With Redis configured the decision is shared by
//! every instance: one Lua script per acquire (atomic on the Redis server) that
//!
//! 1. adds the weight this instance granted on its own while Redis was unreachable to the quota
//!    counters (so the shared figures stay true after an outage);
//! 2. refuses while the budget's 429 hold key (`{ns}::budget:{name}:hold`, set by
//!    [`BudgetEnforcer::backoff`]) exists, with its remaining PTTL as retry-after;
//! 3. checks every rate limit with GCRA (the generic cell rate algorithm as in redis-cell and
//!    Brandur's write-up) and a stored *theoretical arrival time* `tat` per limit key
//!    (`{ns}::budget:{name}:rate:{i}`). Providers count per clock window, and a GCRA whose burst
//!    is the whole limit lets almost `2·L` through one such window; so a limit of `L` per `T`
//!    gets a burst `B = ceil(L/10)` and the emission interval `I = T / (L - B)`: at most `L`
//!    requests in any window of length `T`, however the provider aligns it. A request of weight
//!    `w` at `now` is allowed iff `max(tat, now) + w·I - B·I <= now`. Time is the Redis
//!    server's `TIME`, so instances with skewed clocks agree;
//! 4. checks the day and month quota counters (`{ns}::budget:{name}:day:{yyyymmdd}`,
//!    `{ns}::budget:{name}:month:{yyyymm}`, calendar periods in UTC): `used + w <= quota`;
//! 5. only if everything allows it: stores each new `tat` with `PX` = `tat - now` and
//!    `INCRBY`s the quota counters, which expire at the end of their period;
//!
//! and returns allowed or denied, the retry-after in milliseconds (the longest of the refusing
//! limits; for a quota, the end of its period), which limit refused, and the current quota use,
//! which feeds pacing without any further Redis call.
//!
//! Every Redis call is bounded by a timeout; after repeated failures Redis is skipped for a short
//! cool-down, then probed again, so Redis coming back is used again at once.
//!
//! # The in-process fallback and the over-spend it allows
//!
//! When Redis is not configured, fails or times out, an in-process limiter with the same
//! semantics (GCRA in memory and quota counters per calendar period) decides. It starts from this
//! instance's own recent rate consumption and from the last quota use Redis reported, but it
//! cannot see the other instances: **while Redis is down, each of `N` instances may spend the
//! whole rate limit (up to `N` times the provider's rate) and the rest of each quota as last seen
//! (up to `N` times the remaining quota)**. When Redis is back the weight granted locally is added
//! to the shared quota counters, and the shared state decides again. A Redis restart without
//! persistence loses the stored `tat`s and counters: a fresh burst is allowed and the
//! quotas restart from what the instances report.
//!
//! # When the budget says no
//!
//! [`BudgetEnforcer::acquire_or_wait`] sleeps when the retry-after is within the budget's
//! [`max_wait`](Budget::max_wait) and tries again, bounded by that deadline; otherwise it returns
//! the typed [`Denied`], which carries the retry-after and the [`Limit`] that refused.
//!
//! # 429 feedback
//!
//! [`BudgetEnforcer::backoff`] (the provider answered 429) denies the budget locally until
//! `now + Retry-After` (1 s without one) and, with Redis, sets the shared hold key with that
//! `PX`, so every instance backs off at once.
//!
//! # Pacing
//!
//! [`BudgetEnforcer::ttl_stretch`] answers how much a provider's effective TTLs should be
//! stretched so its day and month quotas last their period, from the quota use so far (the last
//! figure Redis returned, or the local count) and the elapsed part of the period. No Redis call.
//!
//! # Counters
//!
//! [`BudgetEnforcer::snapshot`] returns a [`BudgetStats`] per budget: permits, denials, weight,
//! waits, 429s, fallback decisions, stale answers, the current stretch, the quota use and the
//! projected use of the day and the month.

// Where things are:
// - enforcer.rs: `BudgetEnforcer`, acquire / wait / 429 back-off, asking the backends in turn;
// - backend.rs: the `Backend` trait, with `local.rs` (in-process limiter) and `shared.rs`
//   (Redis: the Lua scripts, the breaker) as its implementations;
// - slot.rs: one budget's keys, local state and counters; stats.rs: `BudgetStats`;
// - pacing.rs: TTL stretch; builder.rs: `EnforcerBuilder`;
// - config.rs (declarations), decision.rs (`Permit`, `Denied`), gcra.rs, period.rs.
mod backend;
mod builder;
mod config;
mod decision;
mod enforcer;
mod gcra;
pub(crate) mod local;
mod pacing;
mod period;
#[cfg(feature = "redis")]
mod shared;
mod slot;
mod stats;

pub use builder::EnforcerBuilder;
pub use config::{Budget, BudgetError, Budgets, Rate, DEFAULT_MAX_TTL_STRETCH, DEFAULT_MAX_WAIT};
pub use decision::{Decider, Denied, Limit, Permit, QuotaPeriod};
pub use enforcer::BudgetEnforcer;
pub use stats::BudgetStats;

/// Implemented by an upstream error type that can tell a rate-limit answer (HTTP 429) apart.
///
/// When a `#[cached(budget = "..")]` function fails with such an error, the budget backs off at
/// once (honouring the provider's `Retry-After`, shared with every instance through Redis)
/// instead of letting the bot hammer the provider.
pub trait RateLimitError {
    /// `Some(retry_after)` when this error is a rate-limit answer; `retry_after` is the
    /// provider's `Retry-After` if it sent one.
    fn rate_limited(&self) -> Option<Option<std::time::Duration>>;
}

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The wall clock the budgets read: quota periods (UTC calendar days and months), the local
/// limiter, 429 holds and pacing. Injectable so tests can simulate time ([`ManualClock`]).
///
/// The shared (Redis) rate limits use the Redis server's clock instead, so that instances agree.
pub trait Clock: Send + Sync + 'static {
    /// The current time.
    fn now(&self) -> SystemTime;
}

impl<C: Clock + ?Sized> Clock for std::sync::Arc<C> {
    fn now(&self) -> SystemTime {
        (**self).now()
    }
}

/// The system clock ([`SystemTime::now`]); the default.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// A clock that moves only when told to (for tests and simulations). Thread-safe.
#[derive(Debug)]
pub struct ManualClock {
    us: AtomicU64,
}

impl ManualClock {
    /// A clock showing `at` (times before 1970 show 1970).
    pub fn new(at: SystemTime) -> Self {
        ManualClock { us: AtomicU64::new(period::unix_us(at)) }
    }

    /// A clock showing `secs` seconds after the Unix epoch.
    pub fn from_unix_secs(secs: u64) -> Self {
        ManualClock { us: AtomicU64::new(secs.saturating_mul(1_000_000)) }
    }

    /// Sets the time.
    pub fn set(&self, at: SystemTime) {
        self.us.store(period::unix_us(at), Relaxed);
    }

    /// Moves the time forward by `by`.
    pub fn advance(&self, by: Duration) {
        let by = u64::try_from(by.as_micros()).unwrap_or(u64::MAX);
        let _ = self.us.fetch_update(Relaxed, Relaxed, |us| Some(us.saturating_add(by)));
    }
}

impl Clock for ManualClock {
    fn now(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_micros(self.us.load(Relaxed))
    }
}
