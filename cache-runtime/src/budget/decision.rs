//! What an acquire returns: a [`Permit`] or a [`Denied`] naming the [`Limit`] that refused.

use super::Rate;
use std::fmt;
use std::time::Duration;

/// The calendar period of a quota (UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum QuotaPeriod {
    /// A calendar day, 00:00 to 24:00 UTC.
    Day,
    /// A calendar month, from the 1st 00:00 UTC.
    Month,
}

impl fmt::Display for QuotaPeriod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            QuotaPeriod::Day => "day",
            QuotaPeriod::Month => "month",
        })
    }
}

/// Which limit refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Limit {
    /// A rate limit of `limit` (requests or weight) per `per`.
    Rate {
        /// Requests (or weight) allowed per window.
        limit: u32,
        /// The window.
        per: Duration,
    },
    /// A day or month quota, used up (or too little left for the request's weight).
    Quota {
        /// Day or month.
        period: QuotaPeriod,
        /// The quota.
        limit: u64,
        /// Weight used in the current period, as last known.
        used: u64,
    },
    /// The provider answered 429: the budget is on hold until its `Retry-After` has passed
    /// ([`BudgetEnforcer::backoff`](super::BudgetEnforcer::backoff)).
    Backoff,
    /// The request's weight exceeds what the budget can ever grant at once (a full burst of a
    /// rate limit, or a whole quota). Retrying does not help.
    Weight {
        /// The request's weight.
        weight: u32,
        /// The most the budget can grant in one request.
        max: u64,
    },
    /// No budget of that name is declared: a configuration error. Retrying does not help.
    Unknown,
}

/// A request the budget refused. The typed error of [`BudgetEnforcer`](super::BudgetEnforcer):
/// implement `From<Denied>` for your error type to return it from a cached function.
///
/// Displays as `coingecko budget exhausted: 30/min, retry after 1.2s`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denied {
    /// The budget's name (`coingecko`).
    pub budget: String,
    /// The limit that refused (the one with the longest retry-after when several did).
    pub limit: Limit,
    /// How long until the request would be allowed (at least 1 ms). For a quota, the end of its
    /// period; for [`Limit::Weight`] and [`Limit::Unknown`], [`Duration::MAX`]: check
    /// [`is_permanent`](Self::is_permanent) before sleeping on it.
    pub retry_after: Duration,
}

impl Denied {
    /// Whether retrying can never succeed ([`Limit::Weight`], [`Limit::Unknown`]).
    pub fn is_permanent(&self) -> bool {
        matches!(self.limit, Limit::Weight { .. } | Limit::Unknown)
    }

    pub(crate) fn new(budget: &str, limit: Limit, retry_after: Duration) -> Denied {
        Denied { budget: budget.to_owned(), limit, retry_after: retry_after.max(Duration::from_millis(1)) }
    }

    pub(crate) fn unknown(budget: &str) -> Denied {
        Denied { budget: budget.to_owned(), limit: Limit::Unknown, retry_after: Duration::MAX }
    }
}

impl fmt::Display for Denied {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = &self.budget;
        match self.limit {
            Limit::Unknown => return write!(f, "unknown budget {name:?}: no budget of that name is declared"),
            Limit::Weight { weight, max } => {
                return write!(f, "{name} budget cannot grant a weight of {weight}: at most {max} per request")
            }
            Limit::Rate { limit, per } => write!(f, "{name} budget exhausted: {}", Rate { limit, per })?,
            Limit::Quota { period, limit, used } => {
                write!(f, "{name} budget exhausted: {limit}/{period} quota ({used} used)")?
            }
            Limit::Backoff => write!(f, "{name} budget exhausted: backing off after a 429 from the provider")?,
        }
        write!(f, ", retry after {}", HumanDuration(self.retry_after))
    }
}

impl std::error::Error for Denied {}

/// Who decided a [`Permit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decider {
    /// The shared budget in Redis: every instance counted.
    Shared,
    /// The in-process limiter (no Redis configured, or Redis unavailable).
    Local,
}

/// Permission for one upstream call of `weight`. Nothing to release: budgets limit rates and
/// quotas, not concurrency.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Permit {
    /// The weight consumed.
    pub weight: u32,
    /// Who granted it.
    pub decided_by: Decider,
    /// How long [`acquire_or_wait`](super::BudgetEnforcer::acquire_or_wait) waited for it.
    pub waited: Duration,
}

/// `350ms`, `1.2s`, `4m 10s`, `5h 12m`, `3d 4h`.
pub(crate) struct HumanDuration(pub(crate) Duration);

impl fmt::Display for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = self.0;
        if d == Duration::MAX {
            return f.write_str("never");
        }
        let s = d.as_secs();
        match s {
            0 => write!(f, "{}ms", d.as_millis().max(u128::from(d > Duration::ZERO))),
            1..=59 => write!(f, "{:.1}s", d.as_secs_f64()),
            60..=3_599 => write!(f, "{}m {}s", s / 60, s % 60),
            3_600..=86_399 => write!(f, "{}h {}m", s / 3600, s % 3600 / 60),
            _ => write!(f, "{}d {}h", s / 86_400, s % 86_400 / 3600),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display() {
        let d = Denied::new(
            "coingecko",
            Limit::Rate { limit: 30, per: Duration::from_secs(60) },
            Duration::from_millis(1_200),
        );
        assert_eq!(d.to_string(), "coingecko budget exhausted: 30/min, retry after 1.2s");
        let q = Denied::new(
            "coinmarketcap",
            Limit::Quota { period: QuotaPeriod::Day, limit: 333, used: 333 },
            Duration::from_secs(5 * 3600 + 12 * 60 + 5),
        );
        assert_eq!(q.to_string(), "coinmarketcap budget exhausted: 333/day quota (333 used), retry after 5h 12m");
        let b = Denied::new("binance", Limit::Backoff, Duration::from_millis(350));
        assert_eq!(
            b.to_string(),
            "binance budget exhausted: backing off after a 429 from the provider, retry after 350ms"
        );
        assert!(!b.is_permanent());
        let u = Denied::unknown("coingeko");
        assert!(u.is_permanent() && u.to_string().contains("unknown budget \"coingeko\""));
        assert_eq!(Denied::new("x", Limit::Backoff, Duration::ZERO).retry_after, Duration::from_millis(1));
        assert_eq!(HumanDuration(Duration::from_secs(250)).to_string(), "4m 10s");
        assert_eq!(HumanDuration(Duration::from_secs(3 * 86_400 + 4 * 3600)).to_string(), "3d 4h");
    }

    #[test]
    fn denied_is_a_shareable_error() {
        fn check<E: std::error::Error + Clone + Send + Sync + 'static>() {}
        check::<Denied>();
    }
}
