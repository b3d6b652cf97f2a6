//! The in-process view of one budget: the fallback limiter (GCRA in memory and quota counters
//! per calendar period), the 429 hold, and the quota use last reported by Redis (for pacing);
//! and [`Local`], the [`Backend`] that decides with it.

use super::backend::{Acquire, Backend, Hold, Verdict};
use super::gcra::Gcra;
use super::period::Period;
use super::slot::Slot;
use super::{Budget, Decider, Denied, Limit, Permit, QuotaPeriod};
use crate::error::StoreError;
use crate::store::BoxFuture;
use std::time::Duration;

/// A quota counter for one calendar period.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Count {
    /// `Period::id` the figures belong to.
    pub(crate) period: u32,
    /// Weight used in the period: the last shared figure plus local grants since.
    pub(crate) used: u64,
    /// Weight granted locally (Redis unavailable) not yet added to the shared counter.
    pub(crate) pending: u64,
}

impl Count {
    /// Resets the counter when `period` is a new one.
    pub(crate) fn roll(&mut self, period: u32) -> &mut Self {
        if self.period != period {
            *self = Count { period, used: 0, pending: 0 };
        }
        self
    }

    /// The use in `period` (0 when the figures are of another period).
    pub(crate) fn used_in(&self, period: u32) -> u64 {
        if self.period == period {
            self.used
        } else {
            0
        }
    }
}

/// The recent demand on one quota: an exponentially weighted rate of the weight used, each use
/// weighted by the TTL stretch in force when it was made, so it estimates the use the traffic
/// would make *unstretched* (TTL-bound misses scale with 1/TTL). Kept across periods: traffic
/// does not reset at midnight.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Demand {
    /// Weight per µs, decayed to `at_us`.
    rate: f64,
    at_us: u64,
    /// The first use seen (0: none yet).
    since_us: u64,
    /// Uses seen (saturating).
    uses: u32,
}

/// The demand estimate speaks once it has seen this many uses: one call is not a rate.
const MIN_USES: u32 = 8;

impl Demand {
    /// Records `weight` used at `now_us` under `stretch`, with time constant `tau_us`.
    pub(crate) fn observe(&mut self, weight: u64, stretch: f64, now_us: u64, tau_us: f64) {
        if weight == 0 {
            return;
        }
        if self.since_us == 0 {
            (self.since_us, self.at_us) = (now_us, now_us);
        }
        self.uses = self.uses.saturating_add(1);
        let dt = now_us.saturating_sub(self.at_us) as f64;
        self.rate = self.rate * (-dt / tau_us).exp() + weight as f64 * stretch.max(1.0) / tau_us;
        self.at_us = self.at_us.max(now_us);
    }

    /// The estimated unstretched demand in weight per µs at `now_us`; a history shorter than
    /// `min_seen_us` counts as that long (a few calls are not a rate).
    pub(crate) fn estimate(&self, now_us: u64, tau_us: f64, min_seen_us: f64) -> f64 {
        if self.uses < MIN_USES {
            return 0.0;
        }
        let decayed = self.rate * (-(now_us.saturating_sub(self.at_us) as f64) / tau_us).exp();
        let seen = (now_us.saturating_sub(self.since_us) as f64).max(min_seen_us);
        // An EWMA over a history shorter than tau underestimates by this factor.
        decayed / (1.0 - (-seen / tau_us).exp())
    }
}

/// A budget's declaration with its GCRA parameters.
#[derive(Debug)]
pub(crate) struct Compiled {
    pub(crate) budget: Budget,
    pub(crate) gcras: Vec<Gcra>,
}

impl Compiled {
    pub(crate) fn new(budget: Budget) -> Self {
        let gcras = budget.rates.iter().map(|&r| Gcra::new(r)).collect();
        Compiled { budget, gcras }
    }

    /// `Some(max)` when `weight` can never be granted.
    pub(crate) fn too_heavy(&self, weight: u32) -> Option<u64> {
        // One request can weigh at most a rate's burst.
        let rate_max = self.gcras.iter().map(|g| g.window_us / g.interval_us);
        let quota_max = [self.budget.quota_day, self.budget.quota_month].into_iter().flatten();
        let max = rate_max.chain(quota_max).min()?;
        let rates_fit = self.gcras.iter().all(|g| g.fits(weight));
        (u64::from(weight) > max || !rates_fit).then_some(max)
    }
}

/// The demand estimate's time constant for a quota of period `p`: a 30th of the period (48 min
/// for a day, a day for a month).
pub(crate) fn demand_tau_us(p: &Period) -> f64 {
    p.len_us() as f64 / 30.0
}

/// A refusal: the limit and the retry-after in microseconds.
pub(crate) type Refusal = (Limit, u64);

/// The [`Denied`] of a refusal by budget `name`.
pub(crate) fn refusal(name: &str, (limit, retry_us): Refusal) -> Denied {
    Denied::new(name, limit, Duration::from_micros(retry_us))
}

/// The local state of one budget. Guarded by a mutex; every operation is a few arithmetic steps.
#[derive(Debug)]
pub(crate) struct LocalState {
    /// Theoretical arrival time per rate limit (µs since the epoch).
    pub(crate) tats: Vec<u64>,
    pub(crate) day: Count,
    pub(crate) month: Count,
    /// No request until then (µs since the epoch): a 429's Retry-After.
    pub(crate) hold_until_us: u64,
    /// Recent demand on the day and the month quota.
    pub(crate) demand: [Demand; 2],
    /// The TTL stretch last computed (in force for new entries).
    pub(crate) stretch: f64,
}

/// Where the local counters of budgets are kept across restarts (the disk tier).
pub(crate) trait Persist: Send + Sync {
    /// Queues `bytes` under `key` (never blocks on I/O).
    fn save(&self, key: &str, bytes: Vec<u8>);
    /// The bytes last saved under `key`.
    fn load(&self, key: &str) -> Option<Vec<u8>>;
}

const STATE_VERSION: u8 = 1;

impl LocalState {
    /// The state as bytes: version, rate count, the TATs, day and month counters, the hold.
    pub(crate) fn to_bytes(&self) -> Vec<u8> {
        let mut out = vec![STATE_VERSION, self.tats.len() as u8];
        let mut put = |v: u64| out.extend_from_slice(&v.to_le_bytes());
        self.tats.iter().for_each(|&t| put(t));
        for c in [self.day, self.month] {
            put(u64::from(c.period));
            put(c.used);
            put(c.pending);
        }
        put(self.hold_until_us);
        out
    }

    /// The state saved by [`to_bytes`](Self::to_bytes), if it is one for `rates` rate limits
    /// (a changed declaration starts afresh).
    pub(crate) fn from_bytes(bytes: &[u8], rates: usize) -> Option<Self> {
        let (&[version, n], rest) = bytes.split_first_chunk::<2>()?;
        if version != STATE_VERSION || n as usize != rates || rest.len() != (rates + 7) * 8 {
            return None;
        }
        let mut words = rest.chunks_exact(8).map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes")));
        let tats = words.by_ref().take(rates).collect();
        let mut count = || {
            let period = u32::try_from(words.next()?).ok()?;
            Some(Count { period, used: words.next()?, pending: words.next()? })
        };
        let (day, month) = (count()?, count()?);
        // The demand estimate is not kept: it rebuilds within minutes of traffic.
        Some(LocalState {
            tats,
            day,
            month,
            hold_until_us: words.next()?,
            demand: [Demand::default(); 2],
            stretch: 1.0,
        })
    }

    pub(crate) fn new(rates: usize) -> Self {
        LocalState {
            tats: vec![0; rates],
            day: Count::default(),
            month: Count::default(),
            hold_until_us: 0,
            demand: [Demand::default(); 2],
            stretch: 1.0,
        }
    }

    pub(crate) fn count(&mut self, period: QuotaPeriod) -> &mut Count {
        match period {
            QuotaPeriod::Day => &mut self.day,
            QuotaPeriod::Month => &mut self.month,
        }
    }

    /// Sets the use of the `kind` quota in period `p` to `used` (a local grant, or the shared
    /// figure), feeding the increase to its demand estimate.
    pub(crate) fn set_used(&mut self, kind: QuotaPeriod, p: &Period, used: u64, now_us: u64) {
        let stretch = self.stretch;
        let count = self.count(kind).roll(p.id);
        let grew = used.saturating_sub(count.used);
        count.used = used;
        self.demand[kind as usize].observe(grew, stretch, now_us, demand_tau_us(p));
    }

    /// The 429 hold, if one is in force at `now_us`.
    pub(crate) fn held(&self, now_us: u64) -> Option<Refusal> {
        (self.hold_until_us > now_us).then(|| (Limit::Backoff, self.hold_until_us - now_us))
    }

    /// Holds the budget until `until_us` unless it is already held longer.
    pub(crate) fn hold_until(&mut self, until_us: u64) {
        self.hold_until_us = self.hold_until_us.max(until_us);
    }

    /// Decides a request of `weight` at `now_us` locally; on success consumes it from every
    /// limit (and, with `track_pending`, remembers it for the shared quota counters).
    pub(crate) fn decide(
        &mut self,
        c: &Compiled,
        now_us: u64,
        weight: u32,
        track_pending: bool,
    ) -> Result<(), Refusal> {
        if let Some(r) = self.held(now_us) {
            return Err(r);
        }
        let mut worst: Option<Refusal> = None;
        let mut refuse = |limit: Limit, retry_us: u64| {
            if worst.is_none_or(|(_, r)| retry_us > r) {
                worst = Some((limit, retry_us));
            }
        };
        let mut new_tats = Vec::with_capacity(c.gcras.len());
        for ((g, rate), &tat) in c.gcras.iter().zip(&c.budget.rates).zip(&self.tats) {
            match g.check(tat, now_us, weight) {
                Ok(t) => new_tats.push(t),
                Err(retry) => refuse(Limit::Rate { limit: rate.limit, per: rate.per }, retry),
            }
        }
        for period in [QuotaPeriod::Day, QuotaPeriod::Month] {
            if let Some(limit) = c.budget.quota(period) {
                let p = Period::of(period, now_us);
                let used = self.count(period).roll(p.id).used;
                if used.saturating_add(u64::from(weight)) > limit {
                    refuse(Limit::Quota { period, limit, used }, p.end_us.saturating_sub(now_us));
                }
            }
        }
        if let Some(r) = worst {
            return Err(r);
        }
        self.tats = new_tats;
        for period in [QuotaPeriod::Day, QuotaPeriod::Month] {
            if c.budget.quota(period).is_some() {
                let p = Period::of(period, now_us);
                let used = self.count(period).used + u64::from(weight);
                self.set_used(period, &p, used, now_us);
                if track_pending {
                    self.count(period).pending += u64::from(weight);
                }
            }
        }
        Ok(())
    }

    /// Records a grant the shared budget made: this instance's own rate consumption, so the
    /// fallback starts from it if Redis fails next.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) fn consume_rates(&mut self, c: &Compiled, now_us: u64, weight: u32) {
        for (g, tat) in c.gcras.iter().zip(&mut self.tats) {
            *tat = (*tat).max(now_us).saturating_add(g.interval_us.saturating_mul(u64::from(weight)));
        }
    }
}

/// The in-process backend: decides with each budget's [`LocalState`], cannot fail, and answers at
/// once. The enforcer calls its synchronous [`decide`](Local::decide) and
/// [`hold_now`](Local::hold_now) directly (its fallback must always answer, and
/// [`backoff`](super::BudgetEnforcer::backoff) is not async); the [`Backend`] implementation
/// wraps them in ready futures.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Local {
    /// Whether a shared backend is configured: then the weight granted here is remembered and
    /// added to the shared quota counters by the next shared acquire.
    track_pending: bool,
}

impl Local {
    pub(crate) fn new(track_pending: bool) -> Self {
        Local { track_pending }
    }

    /// Decides `req` in-process and, when it is granted, consumes its weight.
    pub(crate) fn decide(&self, req: Acquire<'_>) -> Verdict {
        let Acquire { slot, weight, now_us } = req;
        slot.lock()
            .decide(&slot.c, now_us, weight, self.track_pending)
            .map(|()| Permit { weight, decided_by: Decider::Local, waited: Duration::ZERO })
            .map_err(|r| refusal(slot.name(), r))
    }

    /// Holds the budget locally until `req.now_us + req.length` (unless already held longer).
    pub(crate) fn hold_now(&self, req: Hold<'_>) {
        let until = req.now_us.saturating_add(req.length.as_micros() as u64);
        req.slot.lock().hold_until(until);
    }
}

impl Backend for Local {
    fn acquire<'a>(&'a self, req: Acquire<'a>) -> BoxFuture<'a, Result<Verdict, StoreError>> {
        Box::pin(std::future::ready(Ok(self.decide(req))))
    }

    fn hold<'a>(&'a self, req: Hold<'a>) -> BoxFuture<'a, Result<(), StoreError>> {
        self.hold_now(req);
        Box::pin(std::future::ready(Ok(())))
    }

    fn reset<'a>(&'a self, slot: &'a Slot) -> BoxFuture<'a, Result<(), StoreError>> {
        *slot.lock() = LocalState::new(slot.rate_keys.len());
        Box::pin(std::future::ready(Ok(())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const MIN: Duration = Duration::from_secs(60);
    // 2025-06-10 12:00:00 UTC
    const NOW: u64 = 1_749_556_800 * 1_000_000;

    #[test]
    fn rates_and_quotas_decide_together() {
        // 30/min: a burst of 3, then one per 60 s / 27.
        let c = Compiled::new(Budget::new("cg").rate(30, MIN).quota_day(4));
        let mut s = LocalState::new(1);
        for _ in 0..3 {
            s.decide(&c, NOW, 1, false).unwrap();
        }
        let (limit, retry) = s.decide(&c, NOW, 1, false).unwrap_err();
        assert_eq!((limit, retry), (Limit::Rate { limit: 30, per: MIN }, 2_222_223));
        s.decide(&c, NOW + 2_222_223, 1, true).unwrap();
        assert_eq!((s.day.used, s.day.pending), (4, 1));
        // The quota is used up: its retry-after (end of day, 12 h) beats the rate's.
        let (limit, retry) = s.decide(&c, NOW + 60_000_000, 1, false).unwrap_err();
        assert_eq!(limit, Limit::Quota { period: QuotaPeriod::Day, limit: 4, used: 4 });
        assert_eq!(retry, 12 * 3600 * 1_000_000 - 60_000_000);
        // A new day: the quota is back.
        assert!(s.decide(&c, NOW + 12 * 3600 * 1_000_000, 1, false).is_ok());
        assert_eq!(s.day.used, 1);
    }

    #[test]
    fn state_round_trips_and_refuses_other_shapes() {
        let c = Compiled::new(Budget::new("cg").rate(30, MIN).rate(50, Duration::from_secs(1)).quota_day(40));
        let mut s = LocalState::new(2);
        s.decide(&c, NOW, 2, true).unwrap();
        s.hold_until(NOW + 7);
        let bytes = s.to_bytes();
        let back = LocalState::from_bytes(&bytes, 2).unwrap();
        assert_eq!(
            (back.tats.clone(), back.day.used, back.day.pending, back.hold_until_us),
            (s.tats.clone(), 2, 2, NOW + 7)
        );
        assert_eq!(back.day.period, s.day.period);
        assert!(LocalState::from_bytes(&bytes, 1).is_none(), "another number of rates");
        assert!(LocalState::from_bytes(&bytes[..bytes.len() - 1], 2).is_none());
        assert!(LocalState::from_bytes(&[], 2).is_none());
    }

    #[test]
    fn refusal_consumes_nothing() {
        let c = Compiled::new(Budget::new("x").rate(10, MIN).rate(2, Duration::from_secs(1)));
        let mut s = LocalState::new(2);
        s.decide(&c, NOW, 1, false).unwrap();
        let before = s.tats.clone();
        assert!(s.decide(&c, NOW, 1, false).is_err());
        assert_eq!(s.tats, before, "a refused request leaves every limit untouched");
    }

    #[tokio::test]
    async fn local_is_a_backend_that_always_answers() {
        let slot = crate::budget::slot::Slot::new("ns", &Budget::new("cg").rate(30, MIN));
        let local: &dyn Backend = &Local::new(false);
        let req = Acquire { slot: &slot, weight: 1, now_us: NOW };
        assert_eq!(local.acquire(req).await.unwrap().unwrap().decided_by, Decider::Local);
        local.hold(Hold { slot: &slot, now_us: NOW, length: Duration::from_millis(5) }).await.unwrap();
        let denied = local.acquire(req).await.unwrap().unwrap_err();
        assert_eq!((denied.limit, denied.retry_after), (Limit::Backoff, Duration::from_millis(5)));
        assert!(!local.is_skipped());
    }

    #[test]
    fn holds_and_weights() {
        let c = Compiled::new(Budget::new("bn").rate(6_000, MIN).quota_month(5_000));
        // 6,000/min has a burst of 600: one request can weigh at most that.
        assert_eq!(c.too_heavy(601), Some(600));
        assert_eq!(c.too_heavy(600), None);
        assert_eq!(Compiled::new(Budget::new("free")).too_heavy(u32::MAX), None);
        let mut s = LocalState::new(1);
        s.hold_until_us = NOW + 1_000;
        assert_eq!(s.decide(&c, NOW, 1, false), Err((Limit::Backoff, 1_000)));
        assert!(s.decide(&c, NOW + 1_000, 1, false).is_ok());
    }
}
