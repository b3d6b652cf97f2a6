//! A [`Store`] behind the runtime's [`Breaker`]: while the circuit is open every operation
//! fails at once with [`StoreError::BreakerOpen`], so an outage costs callers nanoseconds
//! instead of a timeout per call.

use super::{BoxFuture, Store};
use crate::breaker::{Breaker, BreakerConfig};
use crate::error::StoreError;
use std::time::Duration;

/// A [`Store`] wrapper that skips the inner store while it is failing. Cheap to clone when the
/// inner store is.
#[derive(Debug, Clone)]
pub struct Guarded<S> {
    inner: S,
    breaker: Breaker,
}

impl<S: Store> Guarded<S> {
    /// Wraps `inner` in a new breaker.
    pub fn new(inner: S, config: BreakerConfig) -> Self {
        let breaker = Breaker::new(inner.name(), config);
        Guarded { inner, breaker }
    }

    /// The breaker.
    pub fn breaker(&self) -> &Breaker {
        &self.breaker
    }

    /// Whether the circuit is open now (the store is being skipped).
    pub fn is_open(&self) -> bool {
        self.breaker.is_open()
    }

    /// How many times the circuit has opened.
    pub fn times_opened(&self) -> u64 {
        self.breaker.times_opened()
    }

    /// Fails fast, without allocating, while the circuit is open and no probe is due.
    #[inline]
    pub fn peek(&self) -> Result<(), StoreError> {
        self.breaker.peek().map_err(|_| StoreError::BreakerOpen)
    }

    async fn guarded<T>(&self, op: BoxFuture<'_, Result<T, StoreError>>) -> Result<T, StoreError> {
        let trial = self.breaker.admit().map_err(|_| StoreError::BreakerOpen)?;
        // If this future is dropped here, `trial` is dropped unreported: a probe is handed back.
        let result = op.await;
        match &result {
            Err(e) if e.is_outage() => trial.failure(e),
            _ => trial.success(),
        }
        result
    }
}

impl<S: Store> Store for Guarded<S> {
    fn name(&self) -> &'static str {
        self.inner.name()
    }
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<Vec<u8>>, StoreError>> {
        if let Err(e) = self.peek() {
            return Box::pin(std::future::ready(Err(e)));
        }
        Box::pin(self.guarded(self.inner.get(key)))
    }
    fn get_many<'a>(&'a self, keys: &'a [String]) -> BoxFuture<'a, Result<Vec<Option<Vec<u8>>>, StoreError>> {
        if let Err(e) = self.peek() {
            return Box::pin(std::future::ready(Err(e)));
        }
        Box::pin(self.guarded(self.inner.get_many(keys)))
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, AtomicU32, Ordering::SeqCst};
    use std::sync::Arc;

    /// A store that is down, or hangs forever, on demand.
    #[derive(Default)]
    struct Flaky {
        down: AtomicBool,
        hang: AtomicBool,
        calls: AtomicU32,
    }

    impl Store for Arc<Flaky> {
        fn name(&self) -> &'static str {
            "flaky"
        }
        fn get<'a>(&'a self, _: &'a str) -> BoxFuture<'a, Result<Option<Vec<u8>>, StoreError>> {
            self.calls.fetch_add(1, SeqCst);
            let (down, hang) = (self.down.load(SeqCst), self.hang.load(SeqCst));
            Box::pin(async move {
                if hang {
                    std::future::pending::<()>().await;
                }
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
    async fn open_store_is_not_touched_and_recovers() {
        let flaky = Arc::new(Flaky::default());
        let b = Guarded::new(flaky.clone(), BreakerConfig { threshold: 3, cooldown: Duration::from_millis(50) });
        flaky.down.store(true, SeqCst);
        for _ in 0..3 {
            assert!(matches!(b.get("k").await, Err(StoreError::Backend(_))));
        }
        assert!(matches!(b.get("k").await, Err(StoreError::BreakerOpen)));
        assert_eq!(flaky.calls.load(SeqCst), 3, "an open breaker must not touch the store");
        flaky.down.store(false, SeqCst);
        tokio::time::sleep(Duration::from_millis(60)).await;
        assert!(matches!(b.get("k").await, Ok(None)));
        assert!(!b.is_open());
    }

    #[tokio::test]
    async fn a_cancelled_probe_does_not_switch_the_store_off() {
        let flaky = Arc::new(Flaky::default());
        let b = Guarded::new(flaky.clone(), BreakerConfig { threshold: 1, cooldown: Duration::from_millis(20) });
        flaky.down.store(true, SeqCst);
        assert!(b.get("k").await.is_err());
        tokio::time::sleep(Duration::from_millis(30)).await;
        flaky.hang.store(true, SeqCst);
        // The probe hangs; the caller gives up.
        assert!(tokio::time::timeout(Duration::from_millis(20), b.get("k")).await.is_err());
        flaky.hang.store(false, SeqCst);
        flaky.down.store(false, SeqCst);
        assert!(matches!(b.get("k").await, Ok(None)), "the next caller probes and closes the circuit");
        assert!(!b.is_open());
    }
}
