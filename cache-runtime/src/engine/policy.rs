//! What a call asks of the cache: [`Policy`] (plain data: TTLs, windows, codec) and
//! [`Hooks`] (what only the return type knows: budget denial, 429s, sharing an error).

use crate::budget::Denied;
use crate::codec::Format;
use std::any::Any;
use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

/// How one cached call is stored and judged fresh.
///
/// ```
/// use std::time::Duration;
/// use syntra_cache_runtime::engine::Policy;
/// let p = Policy::new(Duration::from_secs(90)).stale(Duration::from_secs(600)).refresh(Duration::from_secs(15));
/// assert_eq!(p.ttl(), Duration::from_secs(90));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    pub(crate) ttl: Duration,
    /// The longest a budget's pacing may stretch `ttl` to (the freshness floor).
    pub(crate) max_ttl: Option<Duration>,
    pub(crate) none_ttl: Option<Duration>,
    pub(crate) stale: Duration,
    pub(crate) refresh: Duration,
    pub(crate) jitter: f64,
    pub(crate) format: Format,
    pub(crate) version: u32,
}

impl Policy {
    /// Fresh for `ttl` (clamped to at least 1 ms); `None` not cached, no stale window, no early
    /// refresh, no jitter, JSON.
    pub fn new(ttl: Duration) -> Self {
        Policy {
            ttl: ttl.max(Duration::from_millis(1)),
            max_ttl: None,
            none_ttl: None,
            stale: Duration::ZERO,
            refresh: Duration::ZERO,
            jitter: 0.0,
            format: Format::Json,
            version: 0,
        }
    }
    /// How long a value is fresh.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }
    /// The freshness floor under budget pacing: however far a budget stretches TTLs to make its
    /// quota last, this call's values are fresh for at most `max` (never below `ttl`). Prices
    /// may go to minutes, never to hours.
    pub fn max_ttl(mut self, max: Duration) -> Self {
        self.max_ttl = Some(max);
        self
    }
    /// `ttl` stretched by a budget's pacing `stretch`, within the freshness floor.
    pub fn stretched_ttl(&self, stretch: f64) -> Duration {
        if stretch.is_nan() || stretch <= 1.0 {
            return self.ttl;
        }
        let ceiling = self.max_ttl.map_or(Duration::MAX, |m| m.max(self.ttl));
        Duration::try_from_secs_f64(self.ttl.as_secs_f64() * stretch).unwrap_or(Duration::MAX).min(ceiling)
    }
    /// Cache a negative answer (`None`) for `ttl` (negative caching).
    pub fn none_ttl(mut self, ttl: Duration) -> Self {
        self.none_ttl = Some(ttl.max(Duration::from_millis(1)));
        self
    }
    /// Stale-if-error: serve an expired value this long after its TTL when the computation fails.
    pub fn stale(mut self, window: Duration) -> Self {
        self.stale = window;
        self
    }
    /// Early refresh: a hit this close to expiry recomputes the value (one caller per cluster).
    pub fn refresh(mut self, window: Duration) -> Self {
        self.refresh = window;
        self
    }
    /// Shorten each written TTL by a random fraction up to `fraction` (0..=0.5).
    pub fn jitter(mut self, fraction: f64) -> Self {
        self.jitter = if fraction.is_finite() { fraction.clamp(0.0, 0.5) } else { 0.0 };
        self
    }
    /// The value codec in the shared tier.
    pub fn format(mut self, format: Format) -> Self {
        self.format = format;
        self
    }
    /// The schema version mixed into the type fingerprint: bump it when the value's shape changes.
    pub fn version(mut self, version: u32) -> Self {
        self.version = version;
        self
    }

    pub(crate) fn jittered(&self, ttl: Duration) -> Duration {
        if self.jitter == 0.0 {
            return ttl;
        }
        let cut = ttl.mul_f64(self.jitter * rand::random::<f64>());
        (ttl - cut).max(Duration::from_millis(1))
    }
}

/// Copies an uncached outcome (an error) from a single-flight leader to its followers.
pub struct Sharer<R> {
    pub(crate) pack: fn(&R) -> Arc<dyn Any + Send + Sync>,
    pub(crate) unpack: fn(&(dyn Any + Send + Sync)) -> Option<R>,
}
impl<R> Clone for Sharer<R> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<R> Copy for Sharer<R> {}
impl<R> std::fmt::Debug for Sharer<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sharer")
    }
}
impl<R: Clone + Send + Sync + 'static> Sharer<R> {
    /// Followers get a clone of the leader's outcome.
    pub fn cloning() -> Self {
        Sharer { pack: |r| Arc::new(r.clone()), unpack: |a| a.downcast_ref::<R>().cloned() }
    }
}

/// Reads a rate-limit answer (429, with its retry-after) out of an outcome.
pub type RateHint<R> = fn(&R) -> Option<Option<Duration>>;

/// What the engine needs to know about the return type `R` beyond [`Outcome`](super::Outcome):
/// how a budget denial becomes an `R`, how to spot a 429, how to share an uncached `R`.
pub struct Hooks<R> {
    pub(crate) budget: Option<Budgeted<R>>,
    pub(crate) share: Option<Sharer<R>>,
    pub(crate) rate_limited: Option<RateHint<R>>,
}

pub(crate) struct Budgeted<R> {
    pub(crate) name: Cow<'static, str>,
    pub(crate) weight: u32,
    pub(crate) on_denied: fn(Denied) -> R,
}

impl<R> Default for Hooks<R> {
    fn default() -> Self {
        Hooks { budget: None, share: None, rate_limited: None }
    }
}

impl<R> std::fmt::Debug for Hooks<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hooks")
            .field("budget", &self.budget.as_ref().map(|b| (&b.name, b.weight)))
            .field("share", &self.share.is_some())
            .field("rate_limited", &self.rate_limited.is_some())
            .finish()
    }
}

impl<R> Hooks<R> {
    /// No budget, no sharing of uncached outcomes, no 429 detection.
    pub fn new() -> Self {
        Self::default()
    }
    /// Draw `weight` from budget `name` before every upstream call; a denial with nothing cached
    /// to serve becomes `on_denied(denial)`.
    pub fn budget(mut self, name: impl Into<Cow<'static, str>>, weight: u32, on_denied: fn(Denied) -> R) -> Self {
        self.budget = Some(Budgeted { name: name.into(), weight, on_denied });
        self
    }
    /// Single-flight followers get a copy of an uncached outcome (an error) instead of computing.
    pub fn share(mut self, sharer: Option<Sharer<R>>) -> Self {
        self.share = sharer;
        self
    }
    /// How to tell a 429 in an outcome: the budget then backs off for its retry-after.
    pub fn rate_limited(mut self, hint: Option<RateHint<R>>) -> Self {
        self.rate_limited = hint;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stretched_ttls_stop_at_the_freshness_floor() {
        let p = Policy::new(Duration::from_secs(90));
        assert_eq!(p.stretched_ttl(1.0), Duration::from_secs(90));
        assert_eq!(p.stretched_ttl(0.5), Duration::from_secs(90), "never shorter");
        assert_eq!(p.stretched_ttl(f64::NAN), Duration::from_secs(90));
        assert_eq!(p.stretched_ttl(10.0), Duration::from_secs(900));
        let floor = p.clone().max_ttl(Duration::from_secs(600));
        assert_eq!(floor.stretched_ttl(4.0), Duration::from_secs(360));
        assert_eq!(floor.stretched_ttl(48.0), Duration::from_secs(600), "minutes, not hours");
        assert_eq!(floor.stretched_ttl(f64::INFINITY), Duration::from_secs(600));
        let below = p.max_ttl(Duration::from_secs(30));
        assert_eq!(below.stretched_ttl(3.0), Duration::from_secs(90), "a floor below the TTL is the TTL");
    }
}
