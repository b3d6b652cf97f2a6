//! One call through the engine, in named steps: **lookup** (memory, then the shared tier,
//! judged by [`decide`]), **coalesce** (process single-flight, then the cluster lock, re-reading
//! the shared tier once it is held), **admit** (the upstream budget), **compute** and **store**.
//!
//! Every resource a step takes is a guard ([`Leader`], [`ClusterLock`], the breaker's trial in
//! the store), so the caller may be cancelled at any await point below without leaving the
//! cache degraded.

use super::coalesce::{self, ClusterLock, Flights, Join, Leader, Shared};
use super::decide::{self, decide, Decision, Found, Limits};
use super::{Hooks, Outcome, Policy, Verdict};
use crate::budget::BudgetEnforcer;
use crate::codec::{self, Meta};
use crate::metrics::Counters;
use crate::scope;
use crate::store::tiered::{LookupError, OtherType, PutError, ReadTicket, Remote, Tiered};
use crate::Cache;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The facts about the calling function that the engine logs and counts by.
pub(crate) struct Site<'a> {
    pub(crate) service: &'a str,
    pub(crate) method: &'a str,
    pub(crate) counters: &'a Counters,
    /// The value type's fingerprint (empty without a shared tier).
    pub(crate) fingerprint: &'a str,
    /// Set once a key conflict has been reported for this site.
    pub(crate) conflict_reported: &'a AtomicBool,
}

/// One call's context.
pub(crate) struct Call<'a, R: Outcome> {
    pub(crate) cache: &'a Cache,
    pub(crate) site: Site<'a>,
    pub(crate) key: String,
    pub(crate) policy: &'a Policy,
    pub(crate) hooks: &'a Hooks<R>,
    /// Set when the shared tier failed during this call: the rest of the call skips it, so a hung
    /// server costs one timeout per call, not three.
    remote_failed: AtomicBool,
    /// The shared tier's bytes for this key, already read (a batch's `MGET`): the first shared
    /// lookup uses them instead of a `GET`.
    prefetched: std::sync::Mutex<Option<(Option<Vec<u8>>, ReadTicket)>>,
    /// Set when this call is one item of a batch: the batch's loader admits and counts the
    /// upstream call, and is told when this call waits on another caller.
    batch: Option<&'a dyn Parking>,
    /// Set once an unusable shared value (undecodable, tampered, over-large) has been counted and
    /// logged: the leader re-reads the key under the lock and would otherwise report it twice.
    unusable_reported: AtomicBool,
    /// Set when the call is answered from a cache tier: its latency goes to the hit histogram.
    served_hit: AtomicBool,
}

/// A batch round that must know when one of its item calls waits on another caller (a
/// single-flight leader elsewhere, another instance's lock): it does not hold the batch's load.
pub(crate) trait Parking: Sync {
    /// The call starts waiting.
    fn park(&self);
    /// The call goes on.
    fn unpark(&self);
}

/// Unparks its call when the wait ends, however it ends.
struct Parked<'a>(Option<&'a dyn Parking>);

impl Drop for Parked<'_> {
    fn drop(&mut self) {
        if let Some(p) = self.0 {
            p.unpark();
        }
    }
}

/// Leadership of a computation: this process's flight and, maybe, the cluster lock.
struct Lead<'a> {
    flight: Option<Leader<'a>>,
    lock: Option<ClusterLock>,
}

impl Lead<'_> {
    /// Hands `make()` to this process's followers, then releases the cluster lock.
    async fn finish(self, make: impl FnOnce() -> Shared) {
        if let Some(flight) = self.flight {
            flight.publish(make);
        }
        if let Some(lock) = self.lock {
            lock.release().await;
        }
    }
}

#[inline]
fn bump(c: &AtomicU64) {
    c.fetch_add(1, Relaxed);
}

/// Records the call's latency when it ends, however it ends, on the hit or the miss path.
struct Timer<'a> {
    counters: &'a Counters,
    hit: &'a AtomicBool,
    start: Instant,
}

impl Drop for Timer<'_> {
    fn drop(&mut self) {
        self.counters.record_latency(self.start.elapsed(), self.hit.load(Relaxed));
    }
}

impl<'a, R: Outcome> Call<'a, R> {
    pub(crate) fn new(cache: &'a Cache, site: Site<'a>, key: String, policy: &'a Policy, hooks: &'a Hooks<R>) -> Self {
        Call {
            cache,
            site,
            key,
            policy,
            hooks,
            remote_failed: AtomicBool::new(false),
            prefetched: std::sync::Mutex::new(None),
            batch: None,
            unusable_reported: AtomicBool::new(false),
            served_hit: AtomicBool::new(false),
        }
    }

    /// This call as one item of a batch, with what the batch's `MGET` read for its key
    /// (`Err`: the shared tier failed; this call skips it too).
    pub(crate) fn in_batch(
        mut self,
        batch: &'a dyn Parking,
        read: Result<Option<Vec<u8>>, ()>,
        ticket: ReadTicket,
    ) -> Self {
        self.batch = Some(batch);
        match read {
            Ok(bytes) => self.prefetched = std::sync::Mutex::new(Some((bytes, ticket))),
            Err(()) => self.remote_failed = AtomicBool::new(true),
        }
        self
    }

    /// Marks a wait on another caller, for the batch this call belongs to.
    fn parked(&self) -> Parked<'a> {
        if let Some(b) = self.batch {
            b.park();
        }
        Parked(self.batch)
    }

    fn tiers(&self) -> &'a Tiered {
        &self.cache.inner.tiers
    }

    fn flights(&self) -> &'a Flights {
        &self.cache.inner.flights
    }

    fn budgets(&self) -> Option<&'a BudgetEnforcer> {
        self.cache.inner.budgets.as_ref()
    }

    /// The shared tier, unless it failed earlier in this call.
    fn remote(&self) -> Option<&'a Remote> {
        self.tiers().remote.as_ref().filter(|_| !self.remote_failed.load(Relaxed))
    }

    /// Runs the call: the whole get-or-compute.
    pub(crate) async fn run<F: Future<Output = R>>(&self, body: F) -> R {
        let _timer = Timer { counters: self.site.counters, hit: &self.served_hit, start: Instant::now() };
        let local = match self.tiers().get_local::<R::Value>(&self.key) {
            Ok(found) => found,
            Err(OtherType) => {
                self.conflict("memory", "the memory tier holds another type");
                None
            }
        };
        let decision = match &local {
            // Memory entries are our own writes or clamped reads, and moka drops an entry with
            // no stale window at its expiry: with no refresh window either, it is fresh without
            // reading the clock.
            Some((Some(_), meta)) if meta.stale.is_zero() && self.policy.refresh.is_zero() => {
                let Some((Some(v), _)) = local else { unreachable!() };
                Decision::Serve(v)
            }
            _ => decide(local, codec::now_ms(), self.policy, R::negative().is_some()),
        };
        match decision {
            Decision::Serve(v) => {
                self.hit("Cache HIT");
                R::from_value(v)
            }
            Decision::ServeNegative => match R::negative() {
                Some(r) => {
                    self.hit_negative("Cache HIT (negative)");
                    r
                }
                None => self.miss(None, body).await,
            },
            Decision::ServeAndRefresh(v, meta) => match self.flights().join(&self.key) {
                Join::Leader(flight) => self.refresh(flight, v, meta, body).await,
                Join::Follower(_) => {
                    self.hit("Cache HIT");
                    R::from_value(v)
                }
            },
            Decision::Compute { stale, expired: _ } => self.miss(stale, body).await,
        }
    }

    /// `refresh(call)`: recompute and store, whatever is cached.
    pub(crate) async fn run_forced<F: Future<Output = R>>(&self, body: F) -> R {
        let _timer = Timer { counters: self.site.counters, hit: &self.served_hit, start: Instant::now() };
        bump(&self.site.counters.refreshes);
        self.compute(Lead { flight: None, lock: None }, None, false, body).await
    }

    /// No fresh value in memory: follow a flight in progress, or lead one.
    async fn miss<F: Future<Output = R>>(&self, mut stale: Option<(R::Value, Meta)>, body: F) -> R {
        let mut counted = false;
        let flight = loop {
            match self.flights().join(&self.key) {
                Join::Leader(flight) => break Some(flight),
                Join::Follower(rx) => {
                    if !std::mem::replace(&mut counted, true) {
                        bump(&self.site.counters.coalesced);
                    }
                    let parked = self.parked();
                    let shared = coalesce::wait(rx).await;
                    drop(parked);
                    match shared {
                        Some(shared) => match self.answer_from(shared) {
                            Some(r) => return r,
                            None => break None,
                        },
                        // The leader was cancelled or panicked: join again; one of us takes over.
                        None => continue,
                    }
                }
            }
        };
        let mut lead = Lead { flight, lock: None };
        if self.remote().is_some() {
            match self.lookup_remote().await {
                Decision::Serve(v) => return self.serve_shared_hit(lead, v, "Cache HIT").await,
                Decision::ServeNegative => {
                    if let Some(r) = R::negative() {
                        return self.serve_negative(lead, r, "Cache HIT (negative)").await;
                    }
                }
                Decision::ServeAndRefresh(v, meta) => match lead.flight.take() {
                    Some(flight) => return self.refresh(flight, v, meta, body).await,
                    None => return self.serve_shared_hit(lead, v, "Cache HIT").await,
                },
                Decision::Compute { stale: remote_stale, expired } => {
                    if expired {
                        bump(&self.site.counters.expired);
                        tracing::debug!(target: "syntra_cache", key = %self.key, service = self.site.service, method = self.site.method, "Cache EXPIRED: {}", self.key);
                    }
                    stale = remote_stale.or(stale);
                }
            }
            match self.lock_or_wait().await {
                Locked::Held(lock) => {
                    lead.lock = Some(lock);
                    // Another instance may have written the value between our read and our lock.
                    match self.lookup_remote().await {
                        Decision::Serve(v) => {
                            bump(&self.site.counters.coalesced);
                            return self.serve_shared_hit(lead, v, "Cache HIT (written by another instance)").await;
                        }
                        Decision::ServeNegative => {
                            if let Some(r) = R::negative() {
                                return self.serve_negative(lead, r, "Cache HIT (negative)").await;
                            }
                        }
                        Decision::ServeAndRefresh(v, _) => {
                            return self.serve_shared_hit(lead, v, "Cache HIT (written by another instance)").await
                        }
                        Decision::Compute { stale: s, .. } => stale = s.or(stale),
                    }
                }
                Locked::Proceed => {}
                Locked::Found(v) => {
                    bump(&self.site.counters.coalesced);
                    return self.serve_shared_hit(lead, v, "Cache HIT (after waiting for another instance)").await;
                }
                Locked::FoundNegative(r) => {
                    bump(&self.site.counters.coalesced);
                    self.hit_negative("Cache HIT (negative, after waiting for another instance)");
                    lead.finish(|| Shared::Negative).await;
                    return r;
                }
            }
        }
        bump(&self.site.counters.misses);
        tracing::debug!(target: "syntra_cache", key = %self.key, service = self.site.service, method = self.site.method, "Cache MISS: {} - fetching from API", self.key);
        self.compute(lead, stale, false, body).await
    }

    /// A fresh value close to expiry: this caller (one per process, and one per cluster through
    /// the lock) recomputes it; everyone else keeps being served.
    async fn refresh<F: Future<Output = R>>(&self, flight: Leader<'_>, current: R::Value, meta: Meta, body: F) -> R {
        let mut lead = Lead { flight: Some(flight), lock: None };
        if let Some(remote) = self.remote() {
            match ClusterLock::acquire(remote, self.lock_key(), self.cache.inner.lock.lease).await {
                Ok(Some(lock)) => lead.lock = Some(lock),
                // Another instance is refreshing (or Redis is unwell): serve what we have.
                _ => return self.serve_shared_hit(lead, current, "Cache HIT").await,
            }
            // Refreshed meanwhile by another instance (our copy is older): serve theirs.
            if let Decision::Serve(v) = self.lookup_newer(meta.written_at_ms).await {
                return self.serve_shared_hit(lead, v, "Cache HIT (refreshed by another instance)").await;
            }
        }
        bump(&self.site.counters.refreshes);
        tracing::debug!(target: "syntra_cache", key = %self.key, service = self.site.service, method = self.site.method, "Cache REFRESH: {} - recomputing before expiry", self.key);
        self.compute(lead, Some((current, meta)), true, body).await
    }

    /// Runs the body within its budget, stores a cacheable result and hands it to followers.
    async fn compute<F: Future<Output = R>>(
        &self,
        lead: Lead<'_>,
        mut stale: Option<(R::Value, Meta)>,
        early: bool,
        body: F,
    ) -> R {
        let (service, method, key) = (self.site.service, self.site.method, self.key.as_str());
        let budget = match (&self.hooks.budget, self.budgets()) {
            (Some(b), Some(enforcer)) => Some((b, enforcer)),
            _ => None,
        };
        // A batch item's loader admits and counts the batch's upstream call itself.
        // Weight 0: the body's upstream call is charged elsewhere (a coalesced batch load).
        if let Some((b, enforcer)) = budget.filter(|(b, _)| self.batch.is_none() && b.weight > 0) {
            // With a last value to serve, a denial answers at once; without one, wait (bounded).
            let permit = if stale.is_some() {
                enforcer.acquire(&b.name, b.weight).await
            } else {
                enforcer.acquire_or_wait(&b.name, b.weight).await
            };
            if let Err(denied) = permit {
                bump(&self.site.counters.budget_denied);
                if let Some((v, _)) = stale.take() {
                    enforcer.record_stale(&b.name);
                    tracing::info!(target: "syntra_cache", key, service, method, budget = %b.name, "Cache STALE: {key} - {denied}; serving the last value");
                    return self.serve_stale(lead, v, early).await;
                }
                if denied.is_permanent() {
                    tracing::error!(target: "syntra_cache", key, service, method, budget = %b.name, "Cache BUDGET: {denied}");
                } else {
                    tracing::warn!(target: "syntra_cache", key, service, method, budget = %b.name, "Cache BUDGET: {denied}; no cached value to serve");
                }
                let out = (b.on_denied)(denied);
                lead.finish(|| self.share(&out)).await;
                return out;
            }
        }
        if self.batch.is_none() {
            bump(&self.site.counters.upstream_calls);
        }
        let stretch = budget.map(|(b, enforcer)| (enforcer.ttl_stretch(&b.name), &b.name));
        let ttl = stretch.map_or(self.policy.ttl, |(s, _)| self.policy.stretched_ttl(s));
        let (out, report) = scope::upstream(ttl, scope::unsteered(body)).await;
        let rode_along = report.rode_along;
        if rode_along && self.batch.is_none() {
            // Another caller's upstream call answered this body (a coalesced batch).
            self.site.counters.upstream_calls.fetch_sub(1, Relaxed);
        }
        // A value loaded earlier (with another caller's batch) is only fresh for what is left.
        let ttl = ttl.saturating_sub(report.age).max(Duration::from_millis(1));
        // A budgeted entry is kept one more TTL so that a denial has something to serve;
        // stale-if-error still only serves within `stale`.
        let keep_stale = if budget.is_some() { self.policy.stale.max(ttl) } else { self.policy.stale };
        match out.verdict() {
            Verdict::Keep(v) => {
                self.store(Some(v), Meta::now(self.policy.jittered(ttl), keep_stale, false)).await;
                lead.finish(|| Shared::Value(Arc::new(v.clone()))).await;
            }
            Verdict::Negative if self.policy.none_ttl.is_some() => {
                let none_ttl = self.policy.none_ttl.unwrap_or(self.policy.ttl);
                self.store(None, Meta::now(self.policy.jittered(none_ttl), Duration::ZERO, true)).await;
                lead.finish(|| Shared::Negative).await;
            }
            verdict => {
                // One error per upstream call: a body that rode along (or sent nothing) is not one.
                if self.batch.is_none() && !rode_along {
                    bump(&self.site.counters.upstream_errors);
                }
                if let (Some((b, enforcer)), Some(hint)) = (budget, self.hooks.rate_limited) {
                    if let Some(retry_after) = hint(&out) {
                        tracing::warn!(target: "syntra_cache", key, service, method, budget = %b.name, retry_after_ms = retry_after.map(|d| d.as_millis() as u64), "Cache BUDGET: upstream answered 429; backing off");
                        enforcer.backoff(&b.name, retry_after);
                    }
                }
                let now = codec::now_ms();
                // A budget denial serves whatever is kept; a failure only within the stale window.
                let usable = match out.is_denied() {
                    true => stale.take(),
                    false => stale.take().filter(|(_, meta)| decide::stale_usable(meta, now, self.policy, early)),
                };
                if let (Some((v, _)), Verdict::Skip) = (usable, verdict) {
                    if !early {
                        tracing::warn!(target: "syntra_cache", key, service, method, "Cache STALE: {key} - upstream failed, serving the last good value");
                    }
                    return self.serve_stale(lead, v, early).await;
                }
                lead.finish(|| self.share(&out)).await;
            }
        }
        out
    }

    /// Stores a value (`None`: a negative entry) in every tier; a failure is logged and dropped.
    async fn store(&self, value: Option<&R::Value>, meta: Meta) {
        let use_remote = !self.remote_failed.load(Relaxed);
        let tiers = self.tiers();
        match tiers.put(&self.key, value, meta, self.policy.format, self.site.fingerprint, use_remote).await {
            Ok(()) => {}
            Err(PutError::Store(e)) => self.store_error(&e),
            Err(PutError::TooLarge { size, max }) => {
                bump(&self.site.counters.oversized);
                self.cache.inner.metrics.errors.record("redis", "oversized");
                if !self.site.counters.oversized_logged.swap(true, Relaxed) {
                    tracing::warn!(target: "syntra_cache", key = %self.key, service = self.site.service, method = self.site.method, size, max, "Cache OVERSIZED: {} - a {size}-byte value exceeds the {max}-byte bound; answered but not cached (logged once per method)", self.key);
                }
            }
        }
    }

    /// The shared tier's entry, judged: a decode failure or distrusted metadata is a miss (the
    /// next write replaces it); a usable entry is copied into the memory tier.
    async fn lookup_remote(&self) -> Decision<R::Value> {
        let found = self.read_remote().await;
        decide(found, codec::now_ms(), self.policy, R::negative().is_some())
    }

    /// The shared tier's entry if it was written after `after_ms`.
    async fn lookup_newer(&self, after_ms: u64) -> Decision<R::Value> {
        let found = self.read_remote().await.filter(|(_, meta)| meta.written_at_ms > after_ms);
        decide(found, codec::now_ms(), self.policy, R::negative().is_some())
    }

    async fn read_remote(&self) -> Found<R::Value> {
        let prefetched = self.prefetched.lock().unwrap_or_else(|p| p.into_inner()).take();
        let (read, ticket) = match prefetched {
            Some((None, ticket)) => (Ok(None), ticket),
            Some((Some(bytes), ticket)) => {
                (self.tiers().decode_remote::<R::Value>(&self.key, &bytes, self.site.fingerprint), ticket)
            }
            None => {
                let ticket = self.tiers().ticket(&self.key);
                (self.tiers().get_remote::<R::Value>(&self.key, self.site.fingerprint).await, ticket)
            }
        };
        let found = match read {
            Ok(found) => found?,
            Err(LookupError::Store(e)) => {
                // An error reply (WRONGTYPE at this key, NOPERM, ...) comes from a working
                // server: the write that follows still goes, and replaces a foreign value.
                if e.is_outage() {
                    self.remote_failed.store(true, Relaxed);
                } else if self.unusable_reported.swap(true, Relaxed) {
                    // Reported at this call's first read already.
                    return None;
                }
                self.store_error(&e);
                return None;
            }
            Err(LookupError::Decode(codec::DecodeError::WrongType { found, .. }))
                if codec::is_other_version::<R::Value>(&found, self.policy.version) =>
            {
                tracing::debug!(target: "syntra_cache", key = %self.key, service = self.site.service, method = self.site.method, "Cache EXPIRED: {} - written by another schema version", self.key);
                return None;
            }
            Err(LookupError::Decode(codec::DecodeError::WrongType { found, expected })) => {
                self.conflict("redis", &format!("it holds type fingerprint {found}, this function's is {expected}"));
                return None;
            }
            Err(_) if self.unusable_reported.load(Relaxed) => return None,
            Err(LookupError::Decode(e)) => {
                self.unusable_reported.store(true, Relaxed);
                bump(&self.site.counters.cache_errors);
                self.cache.inner.metrics.errors.record("redis", "decode");
                if let Some(held) = self.cache.inner.error_log.admit() {
                    let more = self.held_back(held);
                    tracing::warn!(target: "syntra_cache", key = %self.key, service = self.site.service, method = self.site.method, error = %e, suppressed = held, "Cache ERROR: {} - unusable value ({e}); it will be overwritten{more}", self.key);
                }
                return None;
            }
            Err(LookupError::Tampered(why)) => {
                self.unusable_reported.store(true, Relaxed);
                bump(&self.site.counters.cache_errors);
                bump(&self.site.counters.tampered);
                self.cache.inner.metrics.errors.record("redis", "tampered");
                tracing::warn!(target: "syntra_cache", key = %self.key, service = self.site.service, method = self.site.method, "Cache TAMPERED: {} - {why}; treated as a miss, it will be overwritten", self.key);
                return None;
            }
            Err(LookupError::TooLarge(size)) => {
                self.unusable_reported.store(true, Relaxed);
                bump(&self.site.counters.cache_errors);
                bump(&self.site.counters.oversized);
                let max = self.tiers().max_stored_bytes();
                tracing::warn!(target: "syntra_cache", key = %self.key, service = self.site.service, method = self.site.method, size, max, "Cache OVERSIZED: {} - stored value of {size} bytes over the {max}-byte bound, refused undecoded; it will be overwritten", self.key);
                return None;
            }
        };
        let (value, meta, size) = found;
        let now = codec::now_ms();
        let meta = match decide::trust(meta, now, &self.limits()) {
            Ok(meta) => meta,
            Err(distrust) => {
                bump(&self.site.counters.cache_errors);
                self.cache.inner.metrics.errors.record("redis", "implausible");
                if let Some(held) = self.cache.inner.error_log.admit() {
                    let more = self.held_back(held);
                    tracing::warn!(target: "syntra_cache", key = %self.key, service = self.site.service, method = self.site.method, suppressed = held, "Cache ERROR: {} - implausible metadata ({distrust:?}); treated as a miss{more}", self.key);
                }
                return None;
            }
        };
        if !meta.keep_left(now).is_zero() {
            self.tiers().remember(&self.key, value.as_ref(), meta, size, ticket);
        }
        Some((value, meta))
    }

    fn limits(&self) -> Limits {
        let stretch = match (&self.hooks.budget, self.budgets()) {
            (Some(b), Some(enforcer)) => Some(enforcer.max_ttl_stretch(&b.name)),
            _ => None,
        };
        Limits::of(self.policy, stretch)
    }

    /// Takes the cluster lock, or waits (bounded) for the instance holding it.
    async fn lock_or_wait(&self) -> Locked<R> {
        let Some(remote) = self.remote() else { return Locked::Proceed };
        if remote.peek().is_err() {
            return Locked::Proceed;
        }
        let cfg = self.cache.inner.lock;
        let deadline = Instant::now() + cfg.wait;
        let mut poll = cfg.poll;
        loop {
            match ClusterLock::acquire(remote, self.lock_key(), cfg.lease).await {
                Ok(Some(lock)) => return Locked::Held(lock),
                Ok(None) => {}
                Err(_) => return Locked::Proceed,
            }
            if Instant::now() + poll > deadline {
                tracing::debug!(target: "syntra_cache", key = %self.key, "Cache LOCK wait ran out; computing without the lock");
                return Locked::Proceed;
            }
            let parked = self.parked();
            tokio::time::sleep(poll).await;
            drop(parked);
            poll = (poll * 3 / 2).min(Duration::from_millis(200));
            match self.lookup_remote().await {
                Decision::Serve(v) | Decision::ServeAndRefresh(v, _) => return Locked::Found(v),
                Decision::ServeNegative => {
                    if let Some(r) = R::negative() {
                        return Locked::FoundNegative(r);
                    }
                }
                Decision::Compute { .. } if self.remote_failed.load(Relaxed) => return Locked::Proceed,
                Decision::Compute { .. } => {}
            }
        }
    }

    /// The lock's key: under `{namespace}::lock:`, which no cache entry's key can be, followed
    /// by the entry's key without the namespace (`svc:…`, or `@3:svc:…` in generation 3).
    fn lock_key(&self) -> String {
        let ns = self.cache.namespace();
        let rest = self.key.strip_prefix(ns).map_or(self.key.as_str(), |k| k.strip_prefix(':').unwrap_or(k));
        format!("{ns}::lock:{rest}")
    }

    /// A follower's answer from its leader's result; `None` to compute itself.
    fn answer_from(&self, shared: Shared) -> Option<R> {
        match shared {
            Shared::Value(v) => {
                let v = v.downcast_ref::<R::Value>()?.clone();
                bump(&self.site.counters.hits);
                self.served_hit.store(true, Relaxed);
                Some(R::from_value(v))
            }
            Shared::Stale(v) => {
                let v = v.downcast_ref::<R::Value>()?.clone();
                bump(&self.site.counters.misses);
                bump(&self.site.counters.stale);
                Some(R::from_value(v))
            }
            Shared::Negative => {
                let r = R::negative()?;
                bump(&self.site.counters.hits);
                bump(&self.site.counters.negative);
                self.served_hit.store(true, Relaxed);
                Some(r)
            }
            Shared::Outcome(r) => {
                let r = self.hooks.share.and_then(|s| (s.unpack)(&*r))?;
                bump(&self.site.counters.misses);
                Some(r)
            }
            Shared::Nothing => None,
        }
    }

    async fn serve_shared_hit(&self, lead: Lead<'_>, v: R::Value, what: &'static str) -> R {
        self.hit(what);
        lead.finish(|| Shared::Value(Arc::new(v.clone()))).await;
        R::from_value(v)
    }

    async fn serve_negative(&self, lead: Lead<'_>, r: R, what: &'static str) -> R {
        self.hit_negative(what);
        lead.finish(|| Shared::Negative).await;
        r
    }

    /// Answers with the last value after a failure or a budget denial (an early refresh's value
    /// is still fresh: a hit).
    async fn serve_stale(&self, lead: Lead<'_>, v: R::Value, early: bool) -> R {
        if early {
            self.hit("Cache HIT (refresh failed)");
            lead.finish(|| Shared::Value(Arc::new(v.clone()))).await;
        } else {
            bump(&self.site.counters.stale);
            lead.finish(|| Shared::Stale(Arc::new(v.clone()))).await;
        }
        R::from_value(v)
    }

    fn share(&self, out: &R) -> Shared {
        match self.hooks.share {
            Some(s) => Shared::Outcome((s.pack)(out)),
            None => Shared::Nothing,
        }
    }

    fn hit(&self, what: &'static str) {
        bump(&self.site.counters.hits);
        self.served_hit.store(true, Relaxed);
        tracing::debug!(target: "syntra_cache", key = %self.key, service = self.site.service, method = self.site.method, "{what}: {}", self.key);
    }

    /// A hit that served a cached "absent" answer.
    fn hit_negative(&self, what: &'static str) {
        bump(&self.site.counters.negative);
        self.hit(what);
    }

    /// Counted every time; logged at most once per the cache's error-log interval, with the
    /// number of lines held back since the last one (an outage fails every call the same way).
    fn store_error(&self, e: &crate::StoreError) {
        bump(&self.site.counters.cache_errors);
        self.cache.inner.metrics.errors.record("redis", e.kind());
        let (key, service, method) = (self.key.as_str(), self.site.service, self.site.method);
        if matches!(e, crate::StoreError::BreakerOpen) {
            tracing::trace!(target: "syntra_cache", key, service, method, "Cache store skipped: circuit open");
        } else if let Some(held) = self.cache.inner.error_log.admit() {
            let more = self.held_back(held);
            tracing::warn!(target: "syntra_cache", key, service, method, error = %e, suppressed = held, "Cache ERROR: {key} - {e}{more}");
        }
    }

    /// The tail of a `Cache ERROR` line that follows `held` lines held back.
    fn held_back(&self, held: u64) -> String {
        if held == 0 {
            return String::new();
        }
        format!(" ({held} more cache errors not logged in the last {:?})", self.cache.inner.error_log.interval())
    }

    /// Two functions share this key with different value types: a miss every time. Counted
    /// every time, logged once per site.
    fn conflict(&self, tier: &str, what: &str) {
        bump(&self.site.counters.cache_errors);
        bump(&self.site.counters.conflicts);
        self.cache.inner.metrics.errors.record(tier, "conflict");
        if !self.site.conflict_reported.swap(true, Relaxed) {
            tracing::error!(target: "syntra_cache", key = %self.key, service = self.site.service, method = self.site.method, "Cache CONFLICT: {} - {what}: two cached functions with different value types share this key (give one of them another `key`); both miss until then", self.key);
        }
    }
}

/// What the cross-instance lock said.
enum Locked<R: Outcome> {
    /// This instance holds the lock.
    Held(ClusterLock),
    /// Another instance wrote a value meanwhile.
    Found(R::Value),
    /// Another instance wrote a negative entry meanwhile.
    FoundNegative(R),
    /// No lock (Redis trouble, or the wait ran out): compute anyway.
    Proceed,
}
