//! Pacing: how much a provider's effective TTLs are stretched so its day and month quotas last
//! their period ([`BudgetEnforcer::ttl_stretch`]), from the quota use so far and the elapsed part
//! of the period. No Redis call.

use super::decision::QuotaPeriod;
use super::enforcer::BudgetEnforcer;
use super::local::{demand_tau_us, Demand};
use super::period::Period;
use super::slot::Slot;
use std::time::Duration;

/// Pacing ignores the first 1/96 of a period (15 min of a day, 7.5 h of a month): a handful of
/// calls just after midnight is not a burn rate.
const MIN_ELAPSED_DIVISOR: f64 = 96.0;

/// The demand estimate counts a history shorter than 1/8640 of the period (10 s of a day, 5 min
/// of a month) as that long: a first call is not a rate, but a minute of heavy traffic is.
const MIN_SEEN_DIVISOR: f64 = 8_640.0;

impl BudgetEnforcer {
    /// How much the provider's effective TTLs should be stretched (>= 1.0) so its day and month
    /// quotas last their period: 1.0 while the use so far, projected over the whole period at the
    /// burn rate so far, fits the quota (and for budgets without quotas or unknown names);
    /// otherwise the burn rate so far over the rate that makes the rest of the quota last the
    /// rest of the period (at least `projected / quota`; the ceiling when the quota is used up),
    /// capped at [`max_ttl_stretch`](super::Budget::max_ttl_stretch). The larger of the day's and
    /// the month's.
    ///
    /// Cheap: no Redis call. The use is the figure the last shared acquire returned (every
    /// instance's use) plus local grants since; an instance that has not acquired yet this period
    /// sees only its own.
    pub fn ttl_stretch(&self, name: &str) -> f64 {
        match self.slot(name) {
            Some(slot) => pace(slot, self.now_us()).0,
            None => 1.0,
        }
    }

    /// The ceiling of [`ttl_stretch`](Self::ttl_stretch) for budget `name` (1 for an unknown one).
    pub fn max_ttl_stretch(&self, name: &str) -> f64 {
        self.budgets().get(name).map_or(1.0, |b| b.max_ttl_stretch)
    }

    /// `ttl` stretched by [`ttl_stretch`](Self::ttl_stretch).
    pub fn stretch_ttl(&self, name: &str, ttl: Duration) -> Duration {
        ttl.mul_f64(self.ttl_stretch(name))
    }
}

/// The capped stretch and the day and month figures; remembers the stretch as the one in force
/// (the demand estimate weighs new use by it).
pub(crate) fn pace(slot: &Slot, now_us: u64) -> (f64, [Option<QuotaPace>; 2]) {
    let budget = &slot.c.budget;
    let mut st = slot.lock();
    let paces = [(QuotaPeriod::Day, &st.day), (QuotaPeriod::Month, &st.month)].map(|(kind, count)| {
        let limit = budget.quota(kind)?;
        let p = Period::of(kind, now_us);
        Some(quota_pace(count.used_in(p.id), limit, p, now_us, &st.demand[kind as usize]))
    });
    let worst = paces.iter().flatten().map(|q| q.stretch).fold(1.0, f64::max);
    let stretch = worst.min(budget.max_ttl_stretch).max(1.0);
    st.stretch = stretch;
    (stretch, paces)
}

/// Pacing figures of one quota.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct QuotaPace {
    pub(crate) used: u64,
    pub(crate) projected: u64,
    /// Uncapped, >= 1.0 (infinite when the quota is used up).
    stretch: f64,
}

/// The stretch that makes the rest of the quota last the rest of the period: the demand over
/// the sustainable rate `(limit - used) / remaining`. The demand is the larger of the period's
/// average burn (`used / elapsed`) and the recent unstretched demand ([`Demand`]): the average
/// alone would take a process started mid-period for one that saw no traffic before, and
/// would undo a stretch as soon as the stretch lowered the burn.
fn quota_pace(used: u64, limit: u64, p: Period, now_us: u64, demand: &Demand) -> QuotaPace {
    let len = p.len_us() as f64;
    let elapsed = (now_us.saturating_sub(p.start_us) as f64).max(len / MIN_ELAPSED_DIVISOR);
    let min_seen = len / MIN_SEEN_DIVISOR;
    let remaining = (p.end_us.saturating_sub(now_us) as f64).max(1.0);
    let projected = used as f64 * len / elapsed;
    let stretch = if used >= limit {
        f64::INFINITY
    } else {
        let burn = (used as f64 / elapsed).max(demand.estimate(now_us, demand_tau_us(&p), min_seen));
        let sustainable = (limit - used) as f64 / remaining;
        (burn / sustainable).max(1.0)
    };
    QuotaPace { used, projected: projected.round() as u64, stretch }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::budget::enforcer::tests::{enforcer, utc};
    use crate::budget::{period, Budget, ManualClock};
    use std::sync::Arc;

    #[tokio::test]
    async fn pacing_stretches_under_a_simulated_clock() {
        // June 2025 has 30 days. Three days in, 2,000 of 10,000 used: the month would end at
        // 20,000.
        let clock = Arc::new(ManualClock::new(utc(2025, 6, 1, 0)));
        let e = enforcer(vec![Budget::new("coingecko").quota_month(10_000)], &clock);
        assert_eq!(e.ttl_stretch("coingecko"), 1.0, "nothing used yet");
        // 2,000 used steadily over three days (100 every 3.6 h).
        for _ in 0..20 {
            clock.advance(Duration::from_secs(3 * 86_400 / 20));
            e.acquire("coingecko", 100).await.unwrap();
        }
        let s = e.stats("coingecko").unwrap();
        assert_eq!((s.month_used, s.projected_month), (Some(2_000), Some(20_000)));
        // burn 2,000 / 3 d against 8,000 left for 27 d: 666.7 / 296.3 = 2.25; the recent demand
        // estimate agrees within its smoothing.
        let stretch = e.ttl_stretch("coingecko");
        assert!((2.2..2.6).contains(&stretch), "{stretch}");
        assert_eq!(s.stretch, stretch);
        let ttl = e.stretch_ttl("coingecko", Duration::from_secs(90));
        assert!((ttl.as_secs_f64() - 90.0 * stretch).abs() < 1e-6, "{ttl:?}");
        // Mid-month without further calls, the projection (4,000) fits: no stretch.
        clock.advance(Duration::from_secs(12 * 86_400));
        assert_eq!(e.ttl_stretch("coingecko"), 1.0);
        assert_eq!(e.stats("coingecko").unwrap().projected_month, Some(4_000));
        // Used up: the ceiling.
        e.acquire("coingecko", 8_000).await.unwrap();
        assert_eq!(e.ttl_stretch("coingecko"), crate::budget::DEFAULT_MAX_TTL_STRETCH);
        // A new month starts from scratch.
        clock.set(utc(2025, 7, 2, 0));
        assert_eq!(e.ttl_stretch("coingecko"), 1.0);
        assert_eq!(e.ttl_stretch("unknown"), 1.0);
    }

    #[tokio::test]
    async fn pacing_takes_the_worse_of_day_and_month_and_the_ceiling() {
        let clock = Arc::new(ManualClock::new(utc(2025, 6, 16, 6)));
        let e = enforcer(vec![Budget::new("cmc").quota_day(333).quota_month(10_000).max_ttl_stretch(1.5)], &clock);
        // A quarter of the day gone, 150 used: the day projects to 600 of 333.
        e.acquire("cmc", 150).await.unwrap();
        assert_eq!(e.ttl_stretch("cmc"), 1.5, "capped at the budget's ceiling");
        let s = e.stats("cmc").unwrap();
        assert_eq!((s.day_used, s.projected_day), (Some(150), Some(600)));
        // Early in a period the projection is damped (1/96 of the period at least).
        let no_demand = Demand::default();
        let p = Period::of(QuotaPeriod::Day, period::unix_us(utc(2025, 6, 17, 0)));
        let early = quota_pace(3, 333, p, p.start_us + 1_000_000, &no_demand);
        assert_eq!((early.projected, early.stretch), (288, 1.0));
        let exhausted = quota_pace(333, 333, p, p.start_us + 3_600_000_000, &no_demand);
        assert!(exhausted.stretch.is_infinite());
        let uncapped = quota_pace(150, 333, p, p.start_us + 6 * 3_600_000_000, &no_demand);
        // burn 150/6h against 183 left for 18h: 25 / 10.17 = 2.459
        assert!((uncapped.stretch - 150.0 / 6.0 / (183.0 / 18.0)).abs() < 1e-9);
    }

    /// A process started mid-month under demand far above the quota: the stretch settles where
    /// the month's remaining quota lasts its remaining days (the old period-average rule spent
    /// thousands first: it took the 14 days before the start for days without traffic).
    #[tokio::test]
    async fn pacing_holds_a_month_quota_from_mid_month() {
        let clock = Arc::new(ManualClock::new(utc(2025, 6, 15, 0)));
        let budget = Budget::new("coingecko").quota_month(10_000).max_ttl_stretch(1_000.0);
        let e = enforcer(vec![budget], &clock);
        // 30,000 calls a day unstretched: TTL-bound, so a stretch s makes 1/s of them.
        let per_minute = 30_000.0 / 1_440.0;
        let (mut owed, mut stretches) = (0.0, Vec::new());
        for _ in 0..1_440 {
            clock.advance(Duration::from_secs(60));
            owed += per_minute / e.ttl_stretch("coingecko");
            while owed >= 1.0 {
                e.acquire("coingecko", 1).await.unwrap();
                owed -= 1.0;
            }
            stretches.push(e.ttl_stretch("coingecko"));
        }
        let used = e.stats("coingecko").unwrap().month_used.unwrap();
        // 10,000 over the 16 days left of June: 625 a day.
        assert!((450..=700).contains(&used), "used {used} in the first day");
        let last = *stretches.last().unwrap();
        assert!((35.0..70.0).contains(&last), "stretch {last} (30,000 / 625 = 48)");
    }
}
