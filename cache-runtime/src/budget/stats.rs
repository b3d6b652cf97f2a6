//! [`BudgetStats`]: the counters and pacing of one budget, read by
//! [`BudgetEnforcer::stats`] and [`BudgetEnforcer::snapshot`].

use super::decision::{Denied, Permit};
use super::enforcer::BudgetEnforcer;
use super::pacing::pace;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Counters of one budget.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) granted: AtomicU64,
    pub(crate) denied: AtomicU64,
    pub(crate) weight: AtomicU64,
    pub(crate) waits: AtomicU64,
    pub(crate) backoffs: AtomicU64,
    pub(crate) fallback: AtomicU64,
    pub(crate) stale: AtomicU64,
}

impl Counters {
    /// Counts the outcome of one acquire.
    pub(crate) fn record(&self, result: &Result<Permit, Denied>) {
        match result {
            Ok(p) => {
                self.granted.fetch_add(1, Relaxed);
                self.weight.fetch_add(u64::from(p.weight), Relaxed);
            }
            Err(_) => {
                self.denied.fetch_add(1, Relaxed);
            }
        }
    }
}

/// Counters and pacing of one budget, as read by [`BudgetEnforcer::snapshot`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BudgetStats {
    /// The budget's name.
    pub name: String,
    /// Permits granted (by this instance).
    pub granted: u64,
    /// Requests refused (an [`acquire_or_wait`](BudgetEnforcer::acquire_or_wait) that waited and
    /// then got a permit counts as granted only).
    pub denied: u64,
    /// Weight consumed by the granted permits.
    pub weight_used: u64,
    /// Acquires that waited for a permit.
    pub waits: u64,
    /// 429s reported through [`backoff`](BudgetEnforcer::backoff).
    pub backoffs: u64,
    /// Decisions made in-process because Redis was configured but unavailable.
    pub fallback: u64,
    /// Stale values served because the budget said no ([`BudgetEnforcer::record_stale`]).
    pub stale_served: u64,
    /// The current [`ttl_stretch`](BudgetEnforcer::ttl_stretch).
    pub stretch: f64,
    /// The day quota, if any.
    pub day_quota: Option<u64>,
    /// Weight used today (UTC) by every instance as last reported by Redis, plus local grants
    /// since; `None` without a day quota.
    pub day_used: Option<u64>,
    /// Today's use projected to the end of the day at the burn rate so far.
    pub projected_day: Option<u64>,
    /// The month quota, if any.
    pub month_quota: Option<u64>,
    /// Weight used this month (UTC), like [`day_used`](Self::day_used).
    pub month_used: Option<u64>,
    /// This month's use projected to the end of the month at the burn rate so far.
    pub projected_month: Option<u64>,
}

impl BudgetEnforcer {
    /// Records a stale value served because budget `name` said no (for
    /// [`BudgetStats::stale_served`]).
    pub fn record_stale(&self, name: &str) {
        if let Some(slot) = self.slot(name) {
            slot.counters.stale.fetch_add(1, Relaxed);
        }
    }

    /// The counters and pacing of budget `name`.
    pub fn stats(&self, name: &str) -> Option<BudgetStats> {
        let slot = self.slot(name)?;
        let (stretch, [day, month]) = pace(slot, self.now_us());
        let c = &slot.counters;
        let b = &slot.c.budget;
        Some(BudgetStats {
            name: b.name.clone(),
            granted: c.granted.load(Relaxed),
            denied: c.denied.load(Relaxed),
            weight_used: c.weight.load(Relaxed),
            waits: c.waits.load(Relaxed),
            backoffs: c.backoffs.load(Relaxed),
            fallback: c.fallback.load(Relaxed),
            stale_served: c.stale.load(Relaxed),
            stretch,
            day_quota: b.quota_day,
            day_used: day.map(|q| q.used),
            projected_day: day.map(|q| q.projected),
            month_quota: b.quota_month,
            month_used: month.map(|q| q.used),
            projected_month: month.map(|q| q.projected),
        })
    }

    /// The counters and pacing of every budget, in declaration order.
    pub fn snapshot(&self) -> Vec<BudgetStats> {
        self.budgets().iter().filter_map(|b| self.stats(&b.name)).collect()
    }
}
