//! [`BudgetEnforcer`]: permits, waits, 429 holds, pacing and counters.

use super::config::Budgets;
use super::decision::{Decider, Denied, Limit, Permit};
use super::local::Refusal;
use super::period;
use super::slot::Slot;
use super::Clock;
use std::collections::HashMap;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

#[cfg(feature = "redis")]
use super::{
    decision::QuotaPeriod,
    period::Period,
    shared::{Reply, Request, Shared, Which},
};

/// Hold after a 429 without a `Retry-After`.
const DEFAULT_BACKOFF: Duration = Duration::from_secs(1);
/// Longest hold a 429 can impose (a misread `Retry-After` must not silence a provider for days).
const MAX_BACKOFF: Duration = Duration::from_secs(86_400);
/// Most tries of one `acquire_or_wait`, whatever the retry-afters say.
const MAX_ATTEMPTS: u32 = 64;

/// The state behind a [`BudgetEnforcer`]'s `Arc` (made by the [builder](super::builder)).
pub(crate) struct Inner {
    pub(crate) budgets: Budgets,
    pub(crate) slots: HashMap<String, Slot>,
    pub(crate) namespace: String,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) shared_configured: bool,
    #[cfg(feature = "redis")]
    pub(crate) shared: Option<Shared>,
}

/// Enforces [`Budgets`]: permits before upstream calls, shared by every instance through Redis
/// when configured, in-process otherwise (see the [module documentation](super) for the Lua
/// script and the over-spend of the fallback). Cheap to clone (an `Arc`).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use std::time::Duration;
/// use syntra_cache_runtime::budget::{Budget, BudgetEnforcer, Budgets, Limit};
///
/// let budgets = Budgets::new(vec![Budget::new("coingecko").rate(2, Duration::from_secs(60))]).unwrap();
/// let enforcer = BudgetEnforcer::local(budgets);
/// assert!(enforcer.acquire("coingecko", 1).await.is_ok());
/// assert!(enforcer.acquire("coingecko", 1).await.is_ok());
/// let denied = enforcer.acquire("coingecko", 1).await.unwrap_err();
/// assert!(matches!(denied.limit, Limit::Rate { limit: 2, .. }));
/// assert!(denied.retry_after <= Duration::from_secs(30)); // the next slot of 2/min
/// # }
/// ```
#[derive(Clone)]
pub struct BudgetEnforcer {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for BudgetEnforcer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BudgetEnforcer")
            .field("namespace", &self.inner.namespace)
            .field("budgets", &self.inner.budgets.names())
            .field("shared", &self.is_shared())
            .finish()
    }
}

fn refusal(name: &str, (limit, retry_us): Refusal) -> Denied {
    Denied::new(name, limit, Duration::from_micros(retry_us))
}

impl BudgetEnforcer {
    /// The declared budgets.
    pub fn budgets(&self) -> &Budgets {
        &self.inner.budgets
    }

    /// The key namespace.
    pub fn namespace(&self) -> &str {
        &self.inner.namespace
    }

    /// Whether the budgets are shared through Redis (when it is reachable).
    pub fn is_shared(&self) -> bool {
        self.inner.shared_configured
    }

    /// Whether Redis is being skipped now after repeated failures (decisions are in-process).
    pub fn shared_skipped(&self) -> bool {
        #[cfg(feature = "redis")]
        let skipped = self.inner.shared.as_ref().is_some_and(|s| s.is_skipped());
        #[cfg(not(feature = "redis"))]
        let skipped = false;
        skipped
    }

    pub(crate) fn slot(&self, name: &str) -> Option<&Slot> {
        self.inner.slots.get(name)
    }

    pub(crate) fn now_us(&self) -> u64 {
        period::unix_us(self.inner.clock.now())
    }

    /// A permit for one upstream call of `weight` (1 for providers that do not weigh calls) from
    /// the budget `name`, or why not. Never waits beyond one bounded Redis call.
    ///
    /// Refuses with [`Limit::Unknown`] for an undeclared name and [`Limit::Weight`] for a weight
    /// the budget can never grant. Weight 0 only checks (holds, exhausted quotas).
    pub async fn acquire(&self, name: &str, weight: u32) -> Result<Permit, Denied> {
        let Some(slot) = self.slot(name) else {
            return Err(Denied::unknown(name));
        };
        let result = self.decide(name, slot, weight).await;
        slot.counters.record(&result);
        result
    }

    /// Like [`acquire`](Self::acquire), but when the refusal's retry-after is within the budget's
    /// [`max_wait`](super::Budget::max_wait), sleeps and tries again (until that deadline, a few
    /// tries at most); otherwise returns the [`Denied`] at once. Never hangs.
    pub async fn acquire_or_wait(&self, name: &str, weight: u32) -> Result<Permit, Denied> {
        let Some(slot) = self.slot(name) else {
            return Err(Denied::unknown(name));
        };
        self.acquire_within(name, weight, slot.c.budget.max_wait).await
    }

    /// Like [`acquire_or_wait`](Self::acquire_or_wait) with an explicit bound on the wait.
    pub async fn acquire_within(&self, name: &str, weight: u32, max_wait: Duration) -> Result<Permit, Denied> {
        let Some(slot) = self.slot(name) else {
            return Err(Denied::unknown(name));
        };
        let start = tokio::time::Instant::now();
        let deadline = start.checked_add(max_wait).unwrap_or_else(|| start + MAX_BACKOFF);
        let mut waited = false;
        let mut attempts = 0;
        let result = loop {
            match self.decide(name, slot, weight).await {
                Ok(mut permit) => {
                    permit.waited = if waited { start.elapsed() } else { Duration::ZERO };
                    break Ok(permit);
                }
                Err(denied) => {
                    attempts += 1;
                    let left = deadline.saturating_duration_since(tokio::time::Instant::now());
                    if denied.is_permanent() || attempts >= MAX_ATTEMPTS || denied.retry_after > left {
                        break Err(denied);
                    }
                    waited = true;
                    // A little jitter, so the waiters of all instances do not wake in lockstep.
                    let jitter = Duration::from_micros(rand::random_range(0..=2_000));
                    tokio::time::sleep((denied.retry_after + jitter).min(left)).await;
                }
            }
        };
        if waited {
            slot.counters.waits.fetch_add(1, Relaxed);
        }
        slot.counters.record(&result);
        result
    }

    async fn decide(&self, name: &str, slot: &Slot, weight: u32) -> Result<Permit, Denied> {
        if let Some(max) = slot.c.too_heavy(weight) {
            return Err(Denied::new(name, Limit::Weight { weight, max }, Duration::MAX));
        }
        if let Some(r) = slot.lock().held(self.now_us()) {
            return Err(refusal(name, r));
        }
        #[cfg(feature = "redis")]
        if let Some(shared) = &self.inner.shared {
            if let Some(result) = self.decide_shared(shared, name, slot, weight).await {
                return result;
            }
            slot.counters.fallback.fetch_add(1, Relaxed);
        }
        let now_us = self.now_us();
        let track_pending = self.is_shared();
        slot.lock()
            .decide(&slot.c, now_us, weight, track_pending)
            .map(|()| Permit { weight, decided_by: Decider::Local, waited: Duration::ZERO })
            .map_err(|r| refusal(name, r))
    }

    /// The shared decision, or `None` when Redis is unavailable (the caller falls back).
    #[cfg(feature = "redis")]
    async fn decide_shared(
        &self,
        shared: &Shared,
        name: &str,
        slot: &Slot,
        weight: u32,
    ) -> Option<Result<Permit, Denied>> {
        if shared.is_skipped() {
            return None;
        }
        let now_us = self.now_us();
        let periods = [QuotaPeriod::Day, QuotaPeriod::Month].map(|k| (k, Period::of(k, now_us)));
        // Weight granted locally during an outage goes to the shared counters with this call.
        let pending = {
            let mut st = slot.lock();
            periods.map(|(k, p)| std::mem::take(&mut st.count(k).roll(p.id).pending))
        };
        let quota_arg = |i: usize| {
            let (kind, p) = periods[i];
            let key = format!("{}:{kind}:{}", slot.prefix, p.key_id(kind));
            match slot.c.budget.quota(kind) {
                Some(limit) => (key, i64::try_from(limit).unwrap_or(i64::MAX), p.end_ms(), pending[i]),
                None => (key, -1, 0, 0),
            }
        };
        let req = Request {
            hold_key: &slot.hold_key,
            rate_keys: &slot.rate_keys,
            gcras: slot.c.gcras.iter().map(|g| (g.interval_us, g.window_us)).collect(),
            weight,
            day: quota_arg(0),
            month: quota_arg(1),
        };
        let reply = shared.acquire(&req).await;
        let mut st = slot.lock();
        let reply: Reply = match reply {
            Ok(r) => r,
            Err(e) => {
                tracing::debug!(target: "syntra_cache", budget = name, error = %e, "Budget: shared decision failed, deciding in-process");
                for (i, (kind, p)) in periods.into_iter().enumerate() {
                    let count = st.count(kind);
                    if count.period == p.id {
                        count.pending += pending[i];
                    }
                }
                return None;
            }
        };
        for ((kind, p), used) in periods.into_iter().zip([reply.day_used, reply.month_used]) {
            if let Some(used) = used {
                let count = st.count(kind).roll(p.id);
                count.used = used + count.pending;
            }
        }
        if reply.allowed {
            st.consume_rates(&slot.c, now_us, weight);
            return Some(Ok(Permit { weight, decided_by: Decider::Shared, waited: Duration::ZERO }));
        }
        let retry = Duration::from_millis(reply.retry_after_ms);
        let budget = &slot.c.budget;
        let quota = |period: QuotaPeriod, used: Option<u64>| Limit::Quota {
            period,
            limit: budget.quota(period).unwrap_or(0),
            used: used.unwrap_or(0),
        };
        let limit = match reply.which {
            Which::Rate(i) => match budget.rates.get(i) {
                Some(r) => Limit::Rate { limit: r.limit, per: r.per },
                None => Limit::Backoff,
            },
            Which::Day => quota(QuotaPeriod::Day, reply.day_used),
            Which::Month => quota(QuotaPeriod::Month, reply.month_used),
            Which::Hold | Which::None => {
                // Another instance saw a 429: skip Redis for this budget until the hold ends.
                let until = now_us.saturating_add(u64::try_from(retry.as_micros()).unwrap_or(u64::MAX));
                st.hold_until_us = st.hold_until_us.max(until);
                Limit::Backoff
            }
        };
        Some(Err(Denied::new(name, limit, retry)))
    }

    /// The provider answered 429 for budget `name`: deny it locally until now + `retry_after`
    /// (1 s when `None`, at most a day) and, with Redis, set the shared hold key
    /// `{ns}::budget:{name}:hold` with that `PX` in the background (inside a Tokio runtime), so
    /// every instance backs off. Unknown names are logged and ignored.
    pub fn backoff(&self, name: &str, retry_after: Option<Duration>) {
        let Some(_ms) = self.hold_locally(name, retry_after) else {
            return;
        };
        #[cfg(feature = "redis")]
        if self.inner.shared.is_some() {
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                let this = self.clone();
                let name = name.to_owned();
                rt.spawn(async move {
                    this.share_hold(&name, _ms).await;
                });
            }
        }
    }

    /// Like [`backoff`](Self::backoff), but waits for the shared hold to be written; whether it
    /// was (false without Redis, when Redis is unavailable, or for an unknown name).
    pub async fn backoff_shared(&self, name: &str, retry_after: Option<Duration>) -> bool {
        match self.hold_locally(name, retry_after) {
            Some(ms) => self.share_hold(name, ms).await,
            None => false,
        }
    }

    /// Sets the local hold; its length in ms.
    fn hold_locally(&self, name: &str, retry_after: Option<Duration>) -> Option<u64> {
        let Some(slot) = self.slot(name) else {
            tracing::warn!(target: "syntra_cache", budget = name, "Budget: 429 reported for an unknown budget");
            return None;
        };
        let hold = retry_after.unwrap_or(DEFAULT_BACKOFF).clamp(Duration::from_millis(1), MAX_BACKOFF);
        let until = self.now_us().saturating_add(hold.as_micros() as u64);
        let mut st = slot.lock();
        st.hold_until_us = st.hold_until_us.max(until);
        slot.counters.backoffs.fetch_add(1, Relaxed);
        tracing::info!(target: "syntra_cache", budget = name, hold_ms = hold.as_millis() as u64, "Budget: provider said 429, backing off");
        Some(hold.as_millis() as u64)
    }

    #[cfg_attr(not(feature = "redis"), allow(unused_variables))]
    async fn share_hold(&self, name: &str, ms: u64) -> bool {
        #[cfg(feature = "redis")]
        if let (Some(shared), Some(slot)) = (&self.inner.shared, self.slot(name)) {
            return match shared.hold(&slot.hold_key, ms).await {
                Ok(()) => true,
                Err(e) => {
                    tracing::debug!(target: "syntra_cache", budget = name, error = %e, "Budget: could not share the 429 hold");
                    false
                }
            };
        }
        false
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::budget::period::days_from_civil;
    use crate::budget::{Budget, ManualClock, QuotaPeriod};
    use std::time::{Instant, UNIX_EPOCH};

    const MIN: Duration = Duration::from_secs(60);

    pub(crate) fn utc(y: i64, m: u32, d: u32, h: u64) -> std::time::SystemTime {
        UNIX_EPOCH + Duration::from_secs(days_from_civil(y, m, d) as u64 * 86_400 + h * 3600)
    }

    pub(crate) fn enforcer(budgets: Vec<Budget>, clock: &Arc<ManualClock>) -> BudgetEnforcer {
        BudgetEnforcer::builder(Budgets::new(budgets).unwrap()).clock(clock.clone()).build().unwrap()
    }

    #[tokio::test]
    async fn local_rate_limit_under_a_simulated_clock() {
        let clock = Arc::new(ManualClock::new(utc(2025, 6, 10, 12)));
        let e = enforcer(vec![Budget::new("coingecko").rate(30, MIN)], &clock);
        // A burst of 3, then one per 60 s / 27: never more than 30 in any minute.
        for _ in 0..3 {
            let p = e.acquire("coingecko", 1).await.unwrap();
            assert_eq!(p.decided_by, Decider::Local);
        }
        let d = e.acquire("coingecko", 1).await.unwrap_err();
        assert_eq!(d.limit, Limit::Rate { limit: 30, per: MIN });
        assert_eq!(d.retry_after, Duration::from_micros(2_222_223));
        assert_eq!(d.to_string(), "coingecko budget exhausted: 30/min, retry after 2.2s");
        clock.advance(Duration::from_micros(2_222_223));
        assert!(e.acquire("coingecko", 1).await.is_ok());
        assert!(e.acquire("coingecko", 1).await.is_err());
        let s = e.stats("coingecko").unwrap();
        assert_eq!((s.granted, s.denied, s.weight_used, s.fallback), (4, 2, 4, 0));
        assert_eq!((s.stretch, s.day_used, s.month_used), (1.0, None, None));
    }

    #[tokio::test]
    async fn quota_rolls_over_at_utc_midnight_and_month_start() {
        let clock = Arc::new(ManualClock::new(utc(2025, 2, 10, 23) + Duration::from_secs(3599)));
        let e = enforcer(vec![Budget::new("cmc").quota_day(3).quota_month(5)], &clock);
        e.acquire("cmc", 3).await.unwrap();
        let d = e.acquire("cmc", 1).await.unwrap_err();
        assert_eq!(d.limit, Limit::Quota { period: QuotaPeriod::Day, limit: 3, used: 3 });
        assert_eq!(d.retry_after, Duration::from_secs(1), "until midnight UTC");
        clock.advance(Duration::from_secs(1));
        e.acquire("cmc", 2).await.unwrap();
        let d = e.acquire("cmc", 1).await.unwrap_err();
        assert!(matches!(d.limit, Limit::Quota { period: QuotaPeriod::Month, limit: 5, used: 5 }), "{d:?}");
        assert_eq!(d.retry_after, Duration::from_secs(18 * 86_400), "until March 1st");
        let s = e.stats("cmc").unwrap();
        assert_eq!((s.day_used, s.month_used), (Some(2), Some(5)));
        let d = e.acquire("cmc", 6).await.unwrap_err();
        assert_eq!(d.limit, Limit::Weight { weight: 6, max: 3 });
        assert!(d.is_permanent());
    }

    #[tokio::test]
    async fn backoff_holds_the_budget() {
        let clock = Arc::new(ManualClock::new(utc(2025, 6, 10, 12)));
        let e = enforcer(vec![Budget::new("dexscreener").rate(300, MIN)], &clock);
        e.backoff("dexscreener", Some(Duration::from_millis(1_500)));
        let d = e.acquire("dexscreener", 1).await.unwrap_err();
        assert_eq!((d.limit, d.retry_after), (Limit::Backoff, Duration::from_millis(1_500)));
        clock.advance(Duration::from_millis(1_500));
        assert!(e.acquire("dexscreener", 1).await.is_ok());
        e.backoff("dexscreener", None);
        assert_eq!(e.acquire("dexscreener", 1).await.unwrap_err().retry_after, DEFAULT_BACKOFF);
        assert!(!e.backoff_shared("dexscreener", None).await, "nothing to share without Redis");
        e.backoff("nope", None);
        assert_eq!(e.stats("dexscreener").unwrap().backoffs, 2 + 1);
    }

    #[tokio::test]
    async fn waits_are_bounded() {
        // Real time: 20/s is a burst of 2 then one per ~56 ms: the 3rd waits.
        let e = BudgetEnforcer::local(Budgets::new(vec![Budget::new("b").rate(20, Duration::from_secs(1))]).unwrap());
        for _ in 0..2 {
            e.acquire("b", 1).await.unwrap();
        }
        let p = e.acquire_or_wait("b", 1).await.unwrap();
        assert!(p.waited >= Duration::from_millis(30) && p.waited < Duration::from_millis(500), "{:?}", p.waited);
        assert_eq!(e.stats("b").unwrap().waits, 1);
        // Retry-after beyond the bound: refused at once.
        let t = Instant::now();
        let d = e.acquire_within("b", 2, Duration::from_millis(10)).await.unwrap_err();
        assert!(t.elapsed() < Duration::from_millis(50) && !d.is_permanent());

        // A frozen clock never frees capacity: the wait gives up at its bound, no hang.
        let clock = Arc::new(ManualClock::new(utc(2025, 6, 10, 12)));
        let frozen = enforcer(
            vec![Budget::new("f").rate(10, Duration::from_secs(1)).max_wait(Duration::from_millis(300))],
            &clock,
        );
        frozen.acquire("f", 1).await.unwrap();
        let t = Instant::now();
        let d = frozen.acquire_or_wait("f", 1).await.unwrap_err();
        assert!(t.elapsed() < Duration::from_millis(600), "{:?}", t.elapsed());
        assert!(matches!(d.limit, Limit::Rate { .. }));
        let s = frozen.stats("f").unwrap();
        assert_eq!((s.granted, s.denied, s.waits), (1, 1, 1));
    }

    #[tokio::test]
    async fn unknown_budgets_and_unlimited_ones() {
        let e = BudgetEnforcer::local(Budgets::seed_defaults());
        let d = e.acquire("coingeko", 1).await.unwrap_err();
        assert_eq!(d.limit, Limit::Unknown);
        assert!(d.is_permanent());
        assert!(e.acquire_or_wait("coingeko", 1).await.is_err());
        let free = BudgetEnforcer::local(Budgets::new(vec![Budget::new("free")]).unwrap());
        for _ in 0..1_000 {
            free.acquire("free", 100).await.unwrap();
        }
        assert_eq!(e.snapshot().len(), 7);
        assert!(!e.is_shared() && !e.shared_skipped());
        e.record_stale("coingecko");
        assert_eq!(e.stats("coingecko").unwrap().stale_served, 1);
    }

    #[test]
    fn futures_are_send() {
        fn send<T: Send>(_: T) {}
        let e = BudgetEnforcer::local(Budgets::seed_defaults());
        send(e.acquire("coingecko", 1));
        send(e.acquire_or_wait("coingecko", 1));
        send(e.backoff_shared("coingecko", None));
    }
}
