//! The one circuit breaker of the runtime, shared by the Redis tier and the budgets' Redis
//! backend: after `threshold` consecutive outage errors the backend is skipped for `cooldown`,
//! then a single trial call is let through; its success closes the circuit.
//!
//! Every call holds a [`Trial`] while it runs. A trial that is dropped without a verdict (the
//! caller was cancelled by a timeout, a `select!` or a dropped request, or it panicked) gives its
//! probe back, so the next caller probes again: a cancelled probe can never leave the circuit
//! half-open for good.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering::*};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Breaker settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerConfig {
    /// Consecutive outage errors that open the circuit.
    pub threshold: u32,
    /// How long the circuit stays open before a trial call.
    pub cooldown: Duration,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        BreakerConfig { threshold: 3, cooldown: Duration::from_secs(2) }
    }
}

/// The circuit is open: the backend is being skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Open;

#[derive(Debug)]
struct State {
    failures: AtomicU32,
    /// Milliseconds since `epoch` until which the circuit is open (0 = closed).
    open_until: AtomicU64,
    probing: AtomicBool,
    opened: AtomicU64,
    epoch: Instant,
}

/// A circuit breaker. Cheap to clone: clones share one state.
#[derive(Debug, Clone)]
pub struct Breaker {
    name: &'static str,
    config: BreakerConfig,
    state: Arc<State>,
}

/// Permission for one call through the breaker. Report the call's result with
/// [`success`](Trial::success) or [`failure`](Trial::failure); dropping it without either
/// (cancellation, panic) counts as neither, and a probe is handed back.
#[must_use = "report the call's result, or drop the trial to abandon it"]
#[derive(Debug)]
pub struct Trial<'a> {
    breaker: &'a Breaker,
    probe: bool,
}

impl Breaker {
    /// A closed breaker; `name` appears in its log lines (`"redis"`, `"budgets"`).
    pub fn new(name: &'static str, config: BreakerConfig) -> Self {
        Breaker {
            name,
            config,
            state: Arc::new(State {
                failures: AtomicU32::new(0),
                open_until: AtomicU64::new(0),
                probing: AtomicBool::new(false),
                opened: AtomicU64::new(0),
                epoch: Instant::now(),
            }),
        }
    }

    /// Its settings.
    pub fn config(&self) -> BreakerConfig {
        self.config
    }

    fn now_ms(&self) -> u64 {
        self.state.epoch.elapsed().as_millis() as u64 + 1
    }

    /// Whether the circuit is open (the backend is being skipped, or a trial is due).
    pub fn is_open(&self) -> bool {
        self.state.open_until.load(Acquire) != 0
    }

    /// How many times the circuit has opened.
    pub fn times_opened(&self) -> u64 {
        self.state.opened.load(Relaxed)
    }

    /// Fails fast while the circuit is open and no trial is due; never changes state.
    #[inline]
    pub fn peek(&self) -> Result<(), Open> {
        let until = self.state.open_until.load(Acquire);
        if until != 0 && self.now_ms() < until {
            Err(Open)
        } else {
            Ok(())
        }
    }

    /// Lets one call through: always while closed; once the cool-down is over, exactly one
    /// caller at a time (the probe).
    pub fn admit(&self) -> Result<Trial<'_>, Open> {
        let until = self.state.open_until.load(Acquire);
        if until == 0 {
            return Ok(Trial { breaker: self, probe: false });
        }
        if self.now_ms() < until {
            return Err(Open);
        }
        match self.state.probing.compare_exchange(false, true, AcqRel, Acquire) {
            Ok(_) => Ok(Trial { breaker: self, probe: true }),
            Err(_) => Err(Open),
        }
    }

    fn succeeded(&self) {
        self.state.failures.store(0, Release);
        if self.state.open_until.swap(0, AcqRel) != 0 {
            tracing::info!(target: "syntra_cache", store = self.name, "Cache store circuit CLOSED: store is back");
        }
    }

    fn failed(&self, probe: bool, error: &dyn std::fmt::Display) {
        let failures = self.state.failures.fetch_add(1, AcqRel) + 1;
        if probe || failures >= self.config.threshold {
            let until = self.now_ms() + self.config.cooldown.as_millis() as u64;
            if self.state.open_until.swap(until, AcqRel) == 0 {
                self.state.opened.fetch_add(1, Relaxed);
                tracing::warn!(target: "syntra_cache", store = self.name, failures, cooldown_ms = self.config.cooldown.as_millis() as u64, error = %error, "Cache store circuit OPEN: skipping the store");
            }
        }
    }
}

impl Trial<'_> {
    /// Whether this call is the probe after a cool-down.
    pub fn is_probe(&self) -> bool {
        self.probe
    }

    /// The call worked (or the backend answered, even with an error reply): close the circuit.
    pub fn success(self) {
        self.breaker.succeeded();
    }

    /// The backend is unreachable or too slow: count towards opening (a failed probe reopens).
    pub fn failure(self, error: &dyn std::fmt::Display) {
        self.breaker.failed(self.probe, error);
    }
}

impl Drop for Trial<'_> {
    fn drop(&mut self) {
        // `success`/`failure` consume the trial and run this too: either way the probe is over.
        if self.probe {
            self.breaker.state.probing.store(false, Release);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn breaker(threshold: u32, cooldown_ms: u64) -> Breaker {
        Breaker::new("test", BreakerConfig { threshold, cooldown: Duration::from_millis(cooldown_ms) })
    }

    #[test]
    fn opens_after_threshold_and_closes_after_a_good_probe() {
        let b = breaker(3, 30);
        for _ in 0..3 {
            b.admit().unwrap().failure(&"down");
        }
        assert!(b.is_open());
        assert_eq!(b.admit().unwrap_err(), Open);
        std::thread::sleep(Duration::from_millis(40));
        let probe = b.admit().unwrap();
        assert!(probe.is_probe());
        assert!(b.admit().is_err(), "one probe at a time");
        probe.success();
        assert!(!b.is_open());
        assert!(b.admit().is_ok());
        assert_eq!(b.times_opened(), 1);
    }

    #[test]
    fn failed_probe_reopens_for_a_full_cooldown() {
        let b = breaker(1, 30);
        b.admit().unwrap().failure(&"down");
        std::thread::sleep(Duration::from_millis(40));
        b.admit().unwrap().failure(&"still down");
        assert_eq!(b.peek(), Err(Open));
    }

    #[test]
    fn an_abandoned_probe_is_handed_back() {
        let b = breaker(1, 10);
        b.admit().unwrap().failure(&"down");
        std::thread::sleep(Duration::from_millis(20));
        let probe = b.admit().unwrap();
        assert!(probe.is_probe());
        drop(probe); // cancelled mid-call: no verdict
        let again = b.admit().expect("the next caller probes");
        assert!(again.is_probe());
        again.success();
        assert!(!b.is_open());
    }

    #[test]
    fn success_resets_the_failure_count() {
        let b = breaker(2, 1000);
        b.admit().unwrap().failure(&"blip");
        b.admit().unwrap().success();
        b.admit().unwrap().failure(&"blip");
        assert!(!b.is_open());
    }
}
