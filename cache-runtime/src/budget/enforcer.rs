//! [`BudgetEnforcer`]: the orchestration of permits (the shared backend first, the local one as
//! the fallback), waits and 429 holds. Its pacing is in `pacing.rs`, its counters in `stats.rs`,
//! its construction in `builder.rs`.

use super::backend::{Acquire, Backend, Hold, Verdict};
use super::config::Budgets;
use super::decision::{Denied, Limit, Permit};
use super::local::{refusal, Local};
use super::period;
use super::slot::Slot;
use super::Clock;
use crate::error::StoreError;
use std::collections::HashMap;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

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
    /// The shared budget (Redis), asked first when configured.
    pub(crate) shared: Option<Box<dyn Backend>>,
    /// The in-process limiter: decides when there is no shared backend or it cannot decide, and
    /// holds the budget after every 429.
    pub(crate) local: Local,
    /// Keeps the local counters across restarts (the disk tier), when there is no shared backend.
    pub(crate) persist: Option<Arc<dyn super::local::Persist>>,
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
/// let budgets = Budgets::new(vec![Budget::new("coingecko").rate(20, Duration::from_secs(60))]).unwrap();
/// let enforcer = BudgetEnforcer::local(budgets);
/// // A burst of 2 (a tenth of the limit), then one per 60 s / 18.
/// assert!(enforcer.acquire("coingecko", 1).await.is_ok());
/// assert!(enforcer.acquire("coingecko", 1).await.is_ok());
/// let denied = enforcer.acquire("coingecko", 1).await.unwrap_err();
/// assert!(matches!(denied.limit, Limit::Rate { limit: 20, .. }));
/// assert!(denied.retry_after <= Duration::from_millis(3_334)); // the next slot: 60 s / 18
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

impl BudgetEnforcer {
    /// The declared budgets.
    pub fn budgets(&self) -> &Budgets {
        &self.inner.budgets
    }

    /// The key namespace.
    pub fn namespace(&self) -> &str {
        &self.inner.namespace
    }

    /// Forgets everything every budget has counted, in Redis and in this process: rate windows,
    /// day and month quotas, 429 holds (for operators, and for simulations that must not leave a
    /// real period's counters behind). Counters of other instances' processes are not touched.
    pub async fn reset(&self) -> Result<(), StoreError> {
        for slot in self.inner.slots.values() {
            if let Some(shared) = &self.inner.shared {
                shared.reset(slot).await?;
            }
            self.inner.local.reset(slot).await?;
            self.save(slot);
        }
        Ok(())
    }

    /// Whether the budgets are shared through Redis (when it is reachable).
    pub fn is_shared(&self) -> bool {
        self.inner.shared.is_some()
    }

    /// Whether Redis is being skipped now after repeated failures (decisions are in-process).
    pub fn shared_skipped(&self) -> bool {
        self.inner.shared.as_ref().is_some_and(|s| s.is_skipped())
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
        let result = self.decide(slot, weight).await;
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
            match self.decide(slot, weight).await {
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

    /// One decision: refusals that need no backend (a weight too heavy, a 429 hold), then the
    /// shared backend if any, then, if it cannot decide, the local one.
    async fn decide(&self, slot: &Slot, weight: u32) -> Verdict {
        if let Some(max) = slot.c.too_heavy(weight) {
            return Err(Denied::new(slot.name(), Limit::Weight { weight, max }, Duration::MAX));
        }
        if let Some(r) = slot.lock().held(self.now_us()) {
            return Err(refusal(slot.name(), r));
        }
        if let Some(shared) = &self.inner.shared {
            match shared.acquire(Acquire { slot, weight, now_us: self.now_us() }).await {
                Ok(verdict) => return verdict,
                Err(_) => {
                    slot.counters.fallback.fetch_add(1, Relaxed);
                }
            }
        }
        let verdict = self.inner.local.decide(Acquire { slot, weight, now_us: self.now_us() });
        if verdict.is_ok() {
            self.save(slot);
        }
        verdict
    }

    /// Queues the local state of `slot` for the disk tier, if any.
    fn save(&self, slot: &Slot) {
        if let Some(p) = &self.inner.persist {
            let bytes = slot.lock().to_bytes();
            p.save(&slot.state_key(), bytes);
        }
    }

    /// The provider answered 429 for budget `name`: deny it locally until now + `retry_after`
    /// (1 s when `None`, at most a day) and, with Redis, set the shared hold key
    /// `{ns}::budget:{name}:hold` with that `PX` in the background (inside a Tokio runtime), so
    /// every instance backs off. Unknown names are logged and ignored.
    pub fn backoff(&self, name: &str, retry_after: Option<Duration>) {
        let Some(length) = self.hold_locally(name, retry_after) else {
            return;
        };
        if self.inner.shared.is_some() {
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                let this = self.clone();
                let name = name.to_owned();
                rt.spawn(async move {
                    this.share_hold(&name, length).await;
                });
            }
        }
    }

    /// Like [`backoff`](Self::backoff), but waits for the shared hold to be written; whether it
    /// was (false without Redis, when Redis is unavailable, or for an unknown name).
    pub async fn backoff_shared(&self, name: &str, retry_after: Option<Duration>) -> bool {
        match self.hold_locally(name, retry_after) {
            Some(length) => self.share_hold(name, length).await,
            None => false,
        }
    }

    /// Sets the local hold; its length.
    fn hold_locally(&self, name: &str, retry_after: Option<Duration>) -> Option<Duration> {
        let Some(slot) = self.slot(name) else {
            tracing::warn!(target: "syntra_cache", budget = name, "Budget: 429 reported for an unknown budget");
            return None;
        };
        let length = retry_after.unwrap_or(DEFAULT_BACKOFF).clamp(Duration::from_millis(1), MAX_BACKOFF);
        self.inner.local.hold_now(Hold { slot, now_us: self.now_us(), length });
        self.save(slot);
        slot.counters.backoffs.fetch_add(1, Relaxed);
        tracing::info!(target: "syntra_cache", budget = name, hold_ms = length.as_millis() as u64, "Budget: provider said 429, backing off");
        Some(length)
    }

    /// Shares a hold through the shared backend; whether it was written.
    async fn share_hold(&self, name: &str, length: Duration) -> bool {
        if let (Some(shared), Some(slot)) = (&self.inner.shared, self.slot(name)) {
            return match shared.hold(Hold { slot, now_us: self.now_us(), length }).await {
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
    use crate::budget::{Budget, Decider, ManualClock, QuotaPeriod};
    use crate::store::BoxFuture;
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

    /// A shared backend that can never decide (Redis down).
    #[derive(Debug)]
    struct Down;

    impl Backend for Down {
        fn acquire<'a>(&'a self, _: Acquire<'a>) -> BoxFuture<'a, Result<Verdict, StoreError>> {
            Box::pin(std::future::ready(Err(StoreError::Backend("down".into()))))
        }
        fn reset<'a>(&'a self, _: &'a Slot) -> BoxFuture<'a, Result<(), StoreError>> {
            Box::pin(std::future::ready(Err(StoreError::Backend("down".into()))))
        }
        fn hold<'a>(&'a self, _: Hold<'a>) -> BoxFuture<'a, Result<(), StoreError>> {
            Box::pin(std::future::ready(Err(StoreError::Backend("down".into()))))
        }
    }

    #[tokio::test]
    async fn an_unavailable_shared_backend_falls_back_to_local() {
        let clock = Arc::new(ManualClock::new(utc(2025, 6, 10, 12)));
        let budgets = Budgets::new(vec![Budget::new("cmc").quota_day(3)]).unwrap();
        let e = BudgetEnforcer::builder(budgets).clock(clock.clone()).assemble(Some(Box::new(Down)));
        assert!(e.is_shared() && !e.shared_skipped());
        assert_eq!(e.acquire("cmc", 2).await.unwrap().decided_by, Decider::Local);
        // Granted locally while shared: remembered for the shared counters.
        assert_eq!(e.slot("cmc").unwrap().lock().day.pending, 2);
        assert!(!e.backoff_shared("cmc", None).await, "the hold could not be shared");
        // The local hold refuses before the shared backend is asked: no fallback counted.
        assert_eq!(e.acquire("cmc", 1).await.unwrap_err().limit, Limit::Backoff);
        let s = e.stats("cmc").unwrap();
        assert_eq!((s.granted, s.denied, s.fallback, s.backoffs), (1, 1, 1, 1));
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
