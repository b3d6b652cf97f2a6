//! Acting on one cached call from outside, by the same arguments: `key_of`, `invalidate`,
//! `refresh`. They work for every form `#[cached]` supports (free fns, inherent and trait
//! methods) because they steer the call itself through a task-local scope instead of needing
//! companion functions.

use crate::error::CacheError;
use crate::key::KeyError;
use crate::Cache;
use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::task::{Context, Waker};
use std::time::Duration;

#[derive(Clone)]
pub(crate) enum Mode {
    Normal,
    Refresh,
    Capture(Arc<Mutex<Option<Result<CallKey, KeyError>>>>),
}

tokio::task_local! {
    static MODE: Mode;
    /// What a running body tells the engine, and what the engine tells it.
    static UPSTREAM: Arc<Upstream>;
}

/// Shared between the engine and the body it runs.
#[derive(Debug, Default)]
pub(crate) struct Upstream {
    /// Set by a body whose upstream call was another caller's (a coalesced batch).
    rode_along: AtomicBool,
    /// How old the body's value already is, in ms (a value loaded earlier, with others).
    age_ms: AtomicU64,
    /// The TTL the value will be stored with, in ms (0: unknown).
    ttl_ms: u64,
}

/// What [`upstream`] learnt from the body.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct BodyReport {
    pub rode_along: bool,
    pub age: Duration,
}

/// Runs an upstream body whose value will be fresh for `ttl`, telling whether it rode along on
/// another caller's upstream call ([`rode_along`]: the engine then does not count an upstream
/// call of its own) and how old its value already is ([`aged`]).
pub(crate) async fn upstream<F: Future>(ttl: Duration, fut: F) -> (F::Output, BodyReport) {
    let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX);
    let shared = Arc::new(Upstream { ttl_ms, ..Upstream::default() });
    let out = UPSTREAM.scope(shared.clone(), fut).await;
    let age = Duration::from_millis(shared.age_ms.load(Relaxed));
    (out, BodyReport { rode_along: shared.rode_along.load(Relaxed), age })
}

/// Called inside a body whose value came from another caller's upstream call.
pub(crate) fn rode_along() {
    let _ = UPSTREAM.try_with(|u| u.rode_along.store(true, Relaxed));
}

/// Called inside a body whose value was loaded `age` ago: the engine stores it for its TTL
/// minus `age`, so no answer is older than the TTL says. Outside a cached body it does nothing.
pub(crate) fn aged(age: Duration) {
    let ms = u64::try_from(age.as_millis()).unwrap_or(u64::MAX);
    let _ = UPSTREAM.try_with(|u| u.age_ms.fetch_max(ms, Relaxed));
}

/// Inside a cached body: the TTL its value will be stored with (budget pacing included).
pub(crate) fn ttl_in_force() -> Option<Duration> {
    UPSTREAM.try_with(|u| u.ttl_ms).ok().filter(|&ms| ms > 0).map(Duration::from_millis)
}

pub(crate) fn mode() -> Mode {
    MODE.try_with(|m| m.clone()).unwrap_or(Mode::Normal)
}

/// Runs `fut` with no steering (the body of a steered call must not inherit it).
pub(crate) async fn unsteered<F: Future>(fut: F) -> F::Output {
    if MODE.try_with(|_| ()).is_ok() {
        MODE.scope(Mode::Normal, fut).await
    } else {
        fut.await
    }
}

/// The key of a cached call and the cache it goes to.
#[derive(Debug, Clone)]
pub struct CallKey {
    /// The full key, namespace included (`syntra:coingecko:price:bitcoin_usd`).
    pub key: String,
    /// The cache the call uses.
    pub cache: Cache,
}

/// The key a call would use, without running it: `key_of(svc.price("bitcoin", "usd"))`.
///
/// The future is polled once, inside a scope where the `#[cached]` wrapper records its key and
/// stops; the function body never runs. Fails with [`CacheError::NotCached`] if the future does
/// not reach a `#[cached]` function on its first poll.
pub fn key_of<F: Future>(call: F) -> Result<CallKey, CacheError> {
    let slot = Arc::new(Mutex::new(None));
    {
        let mut fut = pin!(MODE.scope(Mode::Capture(slot.clone()), call));
        let mut cx = Context::from_waker(Waker::noop());
        if fut.as_mut().poll(&mut cx).is_ready() {
            return Err(CacheError::NotCached);
        }
    }
    let captured = slot.lock().unwrap_or_else(|e| e.into_inner()).take();
    Ok(captured.ok_or(CacheError::NotCached)??)
}

/// Removes the cached entry of a call from every tier, without running it:
/// `invalidate(svc.price("bitcoin", "usd")).await?`. Returns whether an entry existed.
pub async fn invalidate<F: Future>(call: F) -> Result<bool, CacheError> {
    let CallKey { key, cache } = key_of(call)?;
    Ok(cache.remove_full(&key).await?)
}

/// Runs a call bypassing the cached value and stores the fresh result:
/// `refresh(svc.price("bitcoin", "usd")).await`. Cached calls made by its body are not forced.
pub async fn refresh<F: Future>(call: F) -> F::Output {
    MODE.scope(Mode::Refresh, call).await
}

pub(crate) fn capture(slot: &Mutex<Option<Result<CallKey, KeyError>>>, key: Result<String, KeyError>, cache: &Cache) {
    let mut s = slot.lock().unwrap_or_else(|e| e.into_inner());
    if s.is_none() {
        *s = Some(key.map(|key| CallKey { key, cache: cache.clone() }));
    }
}
