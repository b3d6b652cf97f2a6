//! A circuit breaker around a [`Store`]: after `threshold` consecutive outage errors the store is
//! skipped for `cooldown`, then one probe is let through; success closes the circuit.
//!
//! While open, every operation fails at once with [`StoreError::BreakerOpen`], so an outage
//! costs callers nanoseconds instead of a timeout per call.

use super::{BoxFuture, Store};
use crate::error::StoreError;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering::*};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Breaker settings.
#[derive(Debug, Clone, Copy)]
pub struct BreakerConfig {
    /// Consecutive outage errors that open the circuit.
    pub threshold: u32,
    /// How long the circuit stays open before a probe.
    pub cooldown: Duration,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        BreakerConfig { threshold: 3, cooldown: Duration::from_secs(2) }
    }
}

#[derive(Debug)]
struct State {
    failures: AtomicU32,
    /// Milliseconds since `epoch` until which the circuit is open (0 = closed).
    open_until: AtomicU64,
    probing: AtomicBool,
    opened: AtomicU64,
    epoch: Instant,
}

/// A [`Store`] wrapper that skips the inner store while it is failing.
#[derive(Debug, Clone)]
pub struct Breaker<S> {
    inner: S,
    config: BreakerConfig,
    state: Arc<State>,
}

/// What the breaker allows for one operation.
enum Pass {
    Closed,
    Probe,
}

impl<S: Store> Breaker<S> {
    /// Wraps `inner`.
    pub fn new(inner: S, config: BreakerConfig) -> Self {
        Breaker {
            inner,
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

    /// Whether the circuit is open now (the store is being skipped).
    pub fn is_open(&self) -> bool {
        self.state.open_until.load(Acquire) != 0
    }

    /// How many times the circuit has opened.
    pub fn times_opened(&self) -> u64 {
        self.state.opened.load(Relaxed)
    }

    fn now_ms(&self) -> u64 {
        self.state.epoch.elapsed().as_millis() as u64 + 1
    }

    fn admit(&self) -> Result<Pass, StoreError> {
        let until = self.state.open_until.load(Acquire);
        if until == 0 {
            return Ok(Pass::Closed);
        }
        if self.now_ms() < until {
            return Err(StoreError::BreakerOpen);
        }
        if self.state.probing.compare_exchange(false, true, AcqRel, Acquire).is_ok() {
            Ok(Pass::Probe)
        } else {
            Err(StoreError::BreakerOpen)
        }
    }

    fn record<T>(&self, pass: Pass, result: &Result<T, StoreError>) {
        match result {
            Err(e) if e.is_outage() => {
                let failures = self.state.failures.fetch_add(1, AcqRel) + 1;
                if matches!(pass, Pass::Probe) || failures >= self.config.threshold {
                    let was =
                        self.state.open_until.swap(self.now_ms() + self.config.cooldown.as_millis() as u64, AcqRel);
                    if was == 0 {
                        self.state.opened.fetch_add(1, Relaxed);
                        tracing::warn!(target: "syntra_cache", store = self.inner.name(), failures, cooldown_ms = self.config.cooldown.as_millis() as u64, error = %e, "Cache store circuit OPEN: skipping the store");
                    }
                }
            }
            _ => {
                self.state.failures.store(0, Release);
                if self.state.open_until.swap(0, AcqRel) != 0 {
                    tracing::info!(target: "syntra_cache", store = self.inner.name(), "Cache store circuit CLOSED: store is back");
                }
            }
        }
        if matches!(pass, Pass::Probe) {
            self.state.probing.store(false, Release);
        }
    }

    async fn guarded<'a, T>(&'a self, op: BoxFuture<'a, Result<T, StoreError>>) -> Result<T, StoreError> {
        let pass = self.admit()?;
        let result = op.await;
        self.record(pass, &result);
        result
    }
}

impl<S: Store> Store for Breaker<S> {
    fn name(&self) -> &'static str {
        self.inner.name()
    }
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<Vec<u8>>, StoreError>> {
        if let Err(e) = self.peek() {
            return Box::pin(std::future::ready(Err(e)));
        }
        Box::pin(self.guarded(self.inner.get(key)))
    }
    fn set<'a>(&'a self, key: &'a str, value: Vec<u8>, ttl: Duration) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(self.guarded(self.inner.set(key, value, ttl)))
    }
    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(self.guarded(self.inner.delete(key)))
    }
    fn delete_prefix<'a>(&'a self, prefix: &'a str) -> BoxFuture<'a, Result<u64, StoreError>> {
        Box::pin(self.guarded(self.inner.delete_prefix(prefix)))
    }
    fn set_nx<'a>(&'a self, key: &'a str, token: &'a str, ttl: Duration) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(self.guarded(self.inner.set_nx(key, token, ttl)))
    }
    fn delete_if_eq<'a>(&'a self, key: &'a str, token: &'a str) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(self.guarded(self.inner.delete_if_eq(key, token)))
    }
}

impl<S: Store> Breaker<S> {
    /// Fails fast, without allocating, while the circuit is open and no probe is due.
    pub fn peek(&self) -> Result<(), StoreError> {
        let until = self.state.open_until.load(Acquire);
        if until != 0 && self.now_ms() < until {
            Err(StoreError::BreakerOpen)
        } else {
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool;

    #[derive(Default)]
    struct Flaky {
        down: AtomicBool,
        calls: AtomicU32,
    }

    impl Store for Arc<Flaky> {
        fn name(&self) -> &'static str {
            "flaky"
        }
        fn get<'a>(&'a self, _: &'a str) -> BoxFuture<'a, Result<Option<Vec<u8>>, StoreError>> {
            self.calls.fetch_add(1, SeqCst);
            let down = self.down.load(SeqCst);
            Box::pin(async move {
                if down {
                    Err(StoreError::Backend("down".into()))
                } else {
                    Ok(None)
                }
            })
        }
        fn set<'a>(&'a self, _: &'a str, _: Vec<u8>, _: Duration) -> BoxFuture<'a, Result<(), StoreError>> {
            Box::pin(async { Ok(()) })
        }
        fn delete<'a>(&'a self, _: &'a str) -> BoxFuture<'a, Result<bool, StoreError>> {
            Box::pin(async { Ok(false) })
        }
        fn delete_prefix<'a>(&'a self, _: &'a str) -> BoxFuture<'a, Result<u64, StoreError>> {
            Box::pin(async { Ok(0) })
        }
        fn set_nx<'a>(&'a self, _: &'a str, _: &'a str, _: Duration) -> BoxFuture<'a, Result<bool, StoreError>> {
            Box::pin(async { Ok(true) })
        }
        fn delete_if_eq<'a>(&'a self, _: &'a str, _: &'a str) -> BoxFuture<'a, Result<bool, StoreError>> {
            Box::pin(async { Ok(true) })
        }
    }

    #[tokio::test]
    async fn opens_after_threshold_and_recovers_after_cooldown() {
        let flaky = Arc::new(Flaky::default());
        let b = Breaker::new(flaky.clone(), BreakerConfig { threshold: 3, cooldown: Duration::from_millis(50) });
        flaky.down.store(true, SeqCst);
        for _ in 0..3 {
            assert!(matches!(b.get("k").await, Err(StoreError::Backend(_))));
        }
        assert!(b.is_open());
        assert!(matches!(b.get("k").await, Err(StoreError::BreakerOpen)));
        assert_eq!(flaky.calls.load(SeqCst), 3, "open breaker must not touch the store");
        flaky.down.store(false, SeqCst);
        tokio::time::sleep(Duration::from_millis(60)).await;
        assert!(matches!(b.get("k").await, Ok(None)));
        assert!(!b.is_open());
        assert_eq!(b.times_opened(), 1);
    }

    #[tokio::test]
    async fn failed_probe_reopens() {
        let flaky = Arc::new(Flaky::default());
        let b = Breaker::new(flaky.clone(), BreakerConfig { threshold: 1, cooldown: Duration::from_millis(20) });
        flaky.down.store(true, SeqCst);
        assert!(b.get("k").await.is_err());
        tokio::time::sleep(Duration::from_millis(30)).await;
        assert!(matches!(b.get("k").await, Err(StoreError::Backend(_))));
        assert!(matches!(b.get("k").await, Err(StoreError::BreakerOpen)));
    }
}
