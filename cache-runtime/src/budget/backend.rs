//! Who decides a permit: the [`Backend`] trait and its two implementations, the shared budget in
//! Redis ([`Shared`](super::shared::Shared), `shared.rs`) and the in-process limiter
//! ([`Local`](super::local::Local), `local.rs`).
//!
//! The enforcer asks the shared backend first when one is configured; when it cannot decide
//! (Redis unreachable or too slow, or skipped by the breaker) the local one decides, and a 429
//! hold is always set locally first, then shared.

use super::decision::{Denied, Permit};
use super::slot::Slot;
use crate::error::StoreError;
use crate::store::BoxFuture;
use std::fmt;
use std::time::Duration;

/// What a backend decided: a permit, or why not.
pub(crate) type Verdict = Result<Permit, Denied>;

/// One acquire: `weight` from the budget of `slot` at `now_us` (the budgets' clock, µs since the
/// Unix epoch).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Acquire<'a> {
    pub(crate) slot: &'a Slot,
    pub(crate) weight: u32,
    pub(crate) now_us: u64,
}

/// One 429 hold: the budget of `slot` refuses everything for `length` from `now_us`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Hold<'a> {
    pub(crate) slot: &'a Slot,
    pub(crate) now_us: u64,
    pub(crate) length: Duration,
}

/// Where a budget's decisions are made and its 429 holds kept.
///
/// Object-safe (the futures are [`BoxFuture`]s, as in [`Store`](crate::store::Store)), so the
/// enforcer holds its optional shared backend as a `Box<dyn Backend>` and its orchestration needs
/// no `redis` feature gate.
pub(crate) trait Backend: Send + Sync + fmt::Debug {
    /// Decides `req` and, when it is granted, consumes its weight from every limit. `Err` when
    /// this backend cannot decide now (unreachable, timed out, skipped by its breaker): the
    /// enforcer then asks the next one.
    fn acquire<'a>(&'a self, req: Acquire<'a>) -> BoxFuture<'a, Result<Verdict, StoreError>>;

    /// Holds the budget for `req.length` (the provider answered 429), unless it is already held
    /// longer.
    fn hold<'a>(&'a self, req: Hold<'a>) -> BoxFuture<'a, Result<(), StoreError>>;

    /// Forgets everything counted for the budget of `slot` (rates, quotas, hold).
    fn reset<'a>(&'a self, slot: &'a Slot) -> BoxFuture<'a, Result<(), StoreError>>;

    /// Whether this backend is being skipped now after repeated failures (an acquire would fail at
    /// once). Never, by default.
    fn is_skipped(&self) -> bool {
        false
    }
}
