//! The engine: one get-or-compute path shared by `#[cached]` and code that calls it directly.
//!
//! A call goes through named steps (see [`call`](self) for the code):
//!
//! 1. **lookup** — the memory tier, then the shared (Redis) tier. What a tier returned is judged
//!    by [`decide`](decide::decide), a pure function of (entry, now, [`Policy`]): serve, serve and
//!    refresh early, or compute (keeping a stale value for stale-if-error). Metadata read from
//!    Redis is first brought within the site's own policy by [`trust`](decide::trust): a
//!    planted huge TTL or far-future write is never served as fresh.
//! 2. **coalesce** — one caller per process leads a key's computation (single-flight); the
//!    leader takes the cross-instance lock (`SET NX PX`) and **re-reads Redis once it holds
//!    it**, so an instance that lost the race serves the winner's value instead of calling
//!    upstream again. Waiters elsewhere poll Redis for a bounded time.
//! 3. **admit** — the upstream budget, when the call names one: a denial serves the last value
//!    or becomes the function's typed error.
//! 4. **compute** and **store** — the body runs; a cacheable result is written to every tier
//!    with its envelope and handed to the followers; the lock is released.
//!
//! **Cancellation.** Every resource taken on the way is a guard that undoes itself when the
//! caller's future is dropped at any await point (a timeout, `select!`, a dropped request) or
//! panics: the single-flight leadership hands over to a follower, the cluster lock is deleted
//! (spawned compare-and-delete), the circuit breaker's trial permit is handed back. A cancelled
//! caller never leaves the cache degraded for the next one.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! use std::time::Duration;
//! use syntra_cache_runtime::engine::{Hooks, Policy};
//! use syntra_cache_runtime::Cache;
//!
//! let cache = Cache::memory();
//! let policy = Policy::new(Duration::from_secs(90));
//! let price = || async { Ok::<f64, String>(97_000.5) };
//! let a: Result<f64, String> = cache.get_or_compute("coingecko:price:bitcoin_usd", &policy, &Hooks::new(), price()).await;
//! let b: Result<f64, String> = cache.get_or_compute("coingecko:price:bitcoin_usd", &policy, &Hooks::new(), async { unreachable!() }).await;
//! assert_eq!(a, b);
//! assert_eq!(cache.stats().get("coingecko", "price").unwrap().hits, 1);
//! # }
//! ```

pub(crate) mod batch;
pub(crate) mod call;
pub(crate) mod coalesce;
pub mod decide;
mod outcome;
mod policy;
mod window;

pub use batch::Batch;
pub use decide::{Decision, Distrust, Limits};
pub use outcome::{Outcome, Plain, Verdict};
pub use policy::{Hooks, Policy, RateHint, Sharer};
pub use window::{not_sent, Coalescer};

use crate::Cache;
use std::future::Future;
use std::sync::atomic::AtomicBool;

impl Cache {
    /// Answers from the cache, or runs `compute` (once per key across concurrent callers and,
    /// with Redis, across instances) and caches its result: the engine `#[cached]` expands to,
    /// for code without the macro.
    ///
    /// `key` is the key without the namespace (`coingecko:price:bitcoin_usd`); its first two
    /// `:`-segments name the service and method in [`stats`](Cache::stats). The return type
    /// decides what is cached (see [`Outcome`]).
    pub async fn get_or_compute<R, F>(&self, key: &str, policy: &Policy, hooks: &Hooks<R>, compute: F) -> R
    where
        R: Outcome,
        F: Future<Output = R>,
    {
        if !self.inner.enabled {
            return compute.await;
        }
        let full = self.current_key(self.entry_key(key)).await;
        let mut parts = key.split(':');
        let service = parts.next().unwrap_or("");
        let method = parts.next().unwrap_or("");
        let counters = self.inner.metrics.counters(service, method);
        let fingerprint = match self.inner.tiers.remote {
            Some(_) => crate::codec::fingerprint::<R::Value>(policy.version),
            None => String::new(),
        };
        let conflict_reported = AtomicBool::new(false);
        let site = call::Site {
            service,
            method,
            counters: &counters,
            fingerprint: &fingerprint,
            conflict_reported: &conflict_reported,
        };
        call::Call::new(self, site, full, policy, hooks).run(compute).await
    }
}
