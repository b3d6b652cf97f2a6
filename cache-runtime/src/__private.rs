//! Items the `#[cached]` expansion calls. Not public API: no semver guarantees.
#![allow(missing_docs)]

use crate::codec::{self, Meta};
use crate::error::TtlError;
use crate::key;
use crate::metrics::Counters;
use crate::policy::flight::{self, Join, Shared};
use crate::scope::{self, Mode};
use crate::store::tiered::{Found, LookupError};
use crate::store::Store as _;
use crate::Cache;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::any::Any;
use std::borrow::Cow;
use std::future::Future;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

pub use crate::budget::Denied;
pub use crate::cache::default_cache;
pub use crate::codec::Format;
pub use crate::key::Next;
pub use crate::policy::ttl::{ttl, IntoTtl};

/// Where a site's service name comes from.
#[derive(Debug, Clone, Copy)]
pub enum Service {
    Named(&'static str),
    Module(&'static str),
    SelfType,
}

/// What the macro knows about a cached function.
#[derive(Debug, Clone, Copy)]
pub struct SiteInfo {
    pub template: &'static str,
    pub service: Service,
    pub method: &'static str,
    pub fn_name: &'static str,
    pub module: &'static str,
    /// `type_name` of an item nested in the cached fn: its full path, impl type included.
    pub path: fn() -> &'static str,
    pub format: Format,
    pub version: u32,
}

/// One `#[cached]` function: static facts plus lazily resolved names.
#[derive(Debug)]
pub struct Site {
    info: SiteInfo,
    service: OnceLock<&'static str>,
    /// The counters of the first cache this site was called with: the common case of one
    /// cache per function then costs no lock and no hash per call.
    first: OnceLock<(u64, Arc<Counters>)>,
    /// The value type's fingerprint, computed once (keyed by type name: a site in a generic
    /// impl can see several types).
    fingerprint: OnceLock<(&'static str, String)>,
}

impl Site {
    pub const fn new(info: SiteInfo) -> Self {
        Site { info, service: OnceLock::new(), first: OnceLock::new(), fingerprint: OnceLock::new() }
    }

    pub fn info(&self) -> &SiteInfo {
        &self.info
    }

    /// The service name (`coingecko`), resolved once.
    pub fn service(&self, self_type: Option<fn() -> &'static str>) -> &'static str {
        self.service.get_or_init(|| match self.info.service {
            Service::Named(s) => s,
            Service::Module(m) => last_segment(m),
            Service::SelfType => match self_type {
                Some(f) => Box::leak(snake_case(last_segment(strip_generics(f()))).into_boxed_str()),
                None => last_segment(self.info.module),
            },
        })
    }

    fn fingerprint<V: ?Sized>(&'static self) -> Cow<'static, str> {
        let name = std::any::type_name::<V>();
        let (seen, fp) = self.fingerprint.get_or_init(|| (name, codec::fingerprint::<V>(self.info.version)));
        if *seen == name {
            Cow::Borrowed(fp.as_str())
        } else {
            Cow::Owned(codec::fingerprint::<V>(self.info.version))
        }
    }

    fn counters(&self, cache: &Cache) -> CountersRef<'_> {
        if let Some((id, c)) = self.first.get() {
            if *id == cache.inner.id {
                return CountersRef::Site(c);
            }
        }
        let service = self.service.get().copied().unwrap_or_else(|| self.service(None));
        let c = cache.inner.metrics.counters(service, self.info.method);
        let _ = self.first.set((cache.inner.id, c.clone()));
        CountersRef::Shared(c)
    }
}

enum CountersRef<'a> {
    Site(&'a Counters),
    Shared(Arc<Counters>),
}

impl std::ops::Deref for CountersRef<'_> {
    type Target = Counters;
    fn deref(&self) -> &Counters {
        match self {
            CountersRef::Site(c) => c,
            CountersRef::Shared(c) => c,
        }
    }
}

fn strip_generics(s: &str) -> &str {
    s.split('<').next().unwrap_or(s)
}

fn last_segment(s: &str) -> &str {
    s.rsplit("::").next().unwrap_or(s)
}

fn snake_case(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 4);
    let chars: Vec<char> = s.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        if c.is_uppercase() {
            let prev_lower = i > 0 && (chars[i - 1].is_lowercase() || chars[i - 1].is_ascii_digit());
            let next_lower = chars.get(i + 1).is_some_and(|n| n.is_lowercase());
            if i > 0 && (prev_lower || (next_lower && chars[i - 1].is_uppercase())) {
                out.push('_');
            }
            out.extend(c.to_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// Anything that can name a [`Cache`] in `cache = EXPR`.
pub trait AsCache {
    fn as_cache(&self) -> &Cache;
}
impl AsCache for Cache {
    fn as_cache(&self) -> &Cache {
        self
    }
}
impl<C: AsCache + ?Sized> AsCache for &C {
    fn as_cache(&self) -> &Cache {
        (**self).as_cache()
    }
}
impl<C: AsCache + ?Sized> AsCache for Arc<C> {
    fn as_cache(&self) -> &Cache {
        (**self).as_cache()
    }
}
pub fn as_cache<C: AsCache + ?Sized>(c: &C) -> &Cache {
    c.as_cache()
}

/// Builds the key of one call.
pub struct KeyWriter {
    buf: String,
    keep: usize,
}

impl KeyWriter {
    pub fn new(cache: &Cache, site: &'static Site, self_type: Option<fn() -> &'static str>) -> Self {
        let service = site.service(self_type);
        let ns = cache.namespace();
        let mut buf = String::with_capacity(ns.len() + site.info.template.len() + 24);
        buf.push_str(ns);
        buf.push(':');
        if site.info.template.is_empty() {
            buf.push_str(service);
            buf.push(':');
            buf.push_str(site.info.method);
        }
        let keep = buf.len();
        KeyWriter { buf, keep }
    }

    #[inline]
    pub fn lit(&mut self, s: &'static str) {
        self.buf.push_str(s);
        if self.keep == self.buf.len() - s.len() {
            self.keep = self.buf.len();
        }
    }

    #[inline]
    pub fn arg<T: Serialize + ?Sized>(&mut self, value: &T, next: Next) {
        key::render_part(&mut self.buf, value, next);
    }

    pub fn args<T: Serialize + ?Sized>(&mut self, args: &T) {
        key::render_hashed_args(&mut self.buf, args);
    }

    pub fn finish(mut self) -> String {
        key::bound_length(&mut self.buf, self.keep);
        self.buf
    }
}

/// The per-call policy: TTLs and the rest of the expression-valued arguments.
pub struct Policy<R = ()> {
    ttl: Result<Duration, TtlError>,
    none_ttl: Option<Result<Duration, TtlError>>,
    stale: Duration,
    refresh: Duration,
    jitter: f64,
    share: Option<Sharer<R>>,
    budget: Option<(&'static str, u32)>,
    on_denied: Option<fn(crate::budget::Denied) -> R>,
    rate_limited: Option<RateHint<R>>,
}

impl<R> Policy<R> {
    pub fn new(ttl: Result<Duration, TtlError>) -> Self {
        let ttl = ttl.and_then(IntoTtl::into_ttl);
        Policy {
            ttl,
            none_ttl: None,
            stale: Duration::ZERO,
            refresh: Duration::ZERO,
            jitter: 0.0,
            share: None,
            budget: None,
            on_denied: None,
            rate_limited: None,
        }
    }
    pub fn none_ttl(mut self, ttl: Result<Duration, TtlError>) -> Self {
        self.none_ttl = Some(ttl);
        self
    }
    /// Stale-if-error window: serve an expired value this long after its TTL when the body fails.
    pub fn stale(mut self, window: Result<Duration, TtlError>) -> Self {
        self.stale = window.unwrap_or(Duration::ZERO);
        self
    }
    /// Early refresh: a hit this close to expiry recomputes the value (one caller per cluster).
    pub fn refresh(mut self, window: Result<Duration, TtlError>) -> Self {
        self.refresh = window.unwrap_or(Duration::ZERO);
        self
    }
    /// TTL jitter: each write shortens the TTL by a random fraction up to `fraction` (0..=0.5).
    pub fn jitter(mut self, fraction: f64) -> Self {
        self.jitter = if fraction.is_finite() { fraction.clamp(0.0, 0.5) } else { 0.0 };
        self
    }
    fn jittered(&self, ttl: Duration) -> Duration {
        if self.jitter == 0.0 {
            return ttl;
        }
        let cut = ttl.mul_f64(self.jitter * rand::random::<f64>());
        (ttl - cut).max(Duration::from_millis(1))
    }
    /// Upstream budget to draw `weight` from before each upstream call, and how a denial becomes
    /// the function's error.
    pub fn budget(mut self, name: &'static str, weight: u32, on_denied: fn(crate::budget::Denied) -> R) -> Self {
        self.budget = Some((name, weight));
        self.on_denied = Some(on_denied);
        self
    }
    /// How to tell a rate-limit answer (429) in an outcome (see `RateLimitError`).
    pub fn rate_limited(mut self, hint: Option<RateHint<R>>) -> Self {
        self.rate_limited = hint;
        self
    }
    /// How single-flight followers get a copy of an uncached outcome (an error).
    pub fn share(mut self, share: Option<Sharer<R>>) -> Self {
        self.share = share;
        self
    }
}

/// Autoref specialisation: `(&&Share::<R>::new()).sharer()` is `Some(clone)` when `R: Clone`.
pub struct Share<R>(std::marker::PhantomData<fn() -> R>);
impl<R> Share<R> {
    #[allow(clippy::new_without_default)]
    pub const fn new() -> Self {
        Share(std::marker::PhantomData)
    }
}
/// Copies an uncached outcome (an error) from a single-flight leader to its followers.
pub struct Sharer<R> {
    pack: fn(&R) -> Arc<dyn Any + Send + Sync>,
    unpack: fn(&(dyn Any + Send + Sync)) -> Option<R>,
}
impl<R> Clone for Sharer<R> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<R> Copy for Sharer<R> {}
pub trait ShareClone<R> {
    fn sharer(&self) -> Option<Sharer<R>>;
}
impl<R: Clone + Send + Sync + 'static> ShareClone<R> for &Share<R> {
    fn sharer(&self) -> Option<Sharer<R>> {
        Some(Sharer { pack: |r| Arc::new(r.clone()), unpack: |a| a.downcast_ref::<R>().cloned() })
    }
}
pub trait ShareNone<R> {
    fn sharer(&self) -> Option<Sharer<R>>;
}
impl<R> ShareNone<R> for Share<R> {
    fn sharer(&self) -> Option<Sharer<R>> {
        None
    }
}

/// Reads a rate-limit answer (429, with its retry-after) out of an outcome.
pub type RateHint<R> = fn(&R) -> Option<Option<Duration>>;

/// Autoref specialisation: `(&&Hint::<R>::new()).hint()` reads 429s when the error type
/// implements `RateLimitError`.
pub struct Hint<R>(std::marker::PhantomData<fn() -> R>);
impl<R> Hint<R> {
    #[allow(clippy::new_without_default)]
    pub const fn new() -> Self {
        Hint(std::marker::PhantomData)
    }
}
pub trait HintSome<R> {
    fn hint(&self) -> Option<RateHint<R>>;
}
impl<T, E: crate::budget::RateLimitError> HintSome<Result<T, E>> for &Hint<Result<T, E>> {
    fn hint(&self) -> Option<RateHint<Result<T, E>>> {
        Some(|r| r.as_ref().err().and_then(crate::budget::RateLimitError::rate_limited))
    }
}
pub trait HintNone<R> {
    fn hint(&self) -> Option<RateHint<R>>;
}
impl<R> HintNone<R> for Hint<R> {
    fn hint(&self) -> Option<RateHint<R>> {
        None
    }
}

/// How a cached function's result is cached.
pub enum Verdict<'a, V> {
    Keep(&'a V),
    Negative,
    Skip,
}

/// A return type `#[cached]` understands: `Result<T, E>`, `Option<T>` or `Plain<T>`.
pub trait Outcome: Sized {
    type Value: Serialize + DeserializeOwned + Clone + Send + Sync + 'static;
    fn verdict(&self) -> Verdict<'_, Self::Value>;
    fn from_value(v: Self::Value) -> Self;
    fn negative() -> Option<Self> {
        None
    }
}

impl<T, E> Outcome for Result<T, E>
where
    T: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
{
    type Value = T;
    fn verdict(&self) -> Verdict<'_, T> {
        match self {
            Ok(v) => Verdict::Keep(v),
            Err(_) => Verdict::Skip,
        }
    }
    fn from_value(v: T) -> Self {
        Ok(v)
    }
}

impl<T> Outcome for Option<T>
where
    T: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
{
    type Value = T;
    fn verdict(&self) -> Verdict<'_, T> {
        match self {
            Some(v) => Verdict::Keep(v),
            None => Verdict::Negative,
        }
    }
    fn from_value(v: T) -> Self {
        Some(v)
    }
    fn negative() -> Option<Self> {
        Some(None)
    }
}

/// A return type cached as is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plain<T>(pub T);

impl<T> Outcome for Plain<T>
where
    T: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
{
    type Value = T;
    fn verdict(&self) -> Verdict<'_, T> {
        Verdict::Keep(&self.0)
    }
    fn from_value(v: T) -> Self {
        Plain(v)
    }
}

pub fn assert_outcome<R: Outcome>() {}

struct Timer<'a> {
    counters: &'a Counters,
    start: Instant,
}

impl Drop for Timer<'_> {
    fn drop(&mut self) {
        self.counters.record_latency(self.start.elapsed());
    }
}

/// The cache-checked call: memory tier, then (single-flight) remote tier, stampede lock, body.
pub async fn cached<R, F>(site: &'static Site, cache: &Cache, key: String, policy: Policy<R>, body: F) -> R
where
    R: Outcome,
    F: Future<Output = R>,
{
    let mode = scope::mode();
    if let Mode::Capture(slot) = &mode {
        scope::capture(slot, key, cache);
        return std::future::pending().await;
    }
    let counters = site.counters(cache);
    let _timer = Timer { counters: &counters, start: Instant::now() };
    let ttl = match policy.ttl {
        Ok(ttl) if cache.inner.enabled => ttl,
        Ok(_) => {
            bump(&counters.upstream_calls);
            return body.await;
        }
        Err(e) => {
            tracing::error!(target: "syntra_cache", key = %key, service = site.service(None), method = site.info.method, error = %e, "Cache ERROR: {key} - invalid TTL; calling upstream uncached");
            bump(&counters.cache_errors);
            bump(&counters.upstream_calls);
            return body.await;
        }
    };
    let call = Call { site, cache, counters: &counters, key, ttl, policy: &policy, remote_failed: Default::default() };
    if matches!(mode, Mode::Refresh) {
        return call.compute(None, None, None, false, body).await;
    }
    let mut stale = None;
    match cache.inner.tiers.get_local::<R::Value>(&call.key) {
        Some(Found::Fresh(v, meta)) => {
            if call.refresh_due(&meta) {
                if let Join::Leader(l) = cache.inner.flights.join(&call.key) {
                    return call.early_refresh(l, (v, meta), body).await;
                }
            }
            call.hit("Cache HIT");
            return R::from_value(v);
        }
        Some(Found::Negative(_)) => {
            if let Some(r) = R::negative() {
                call.hit("Cache HIT (negative)");
                return r;
            }
        }
        Some(Found::Stale(v, meta)) => stale = Some((v, meta)),
        _ => {}
    }
    call.miss(stale, body).await
}

/// One call's context.
struct Call<'a, R: Outcome> {
    site: &'static Site,
    cache: &'a Cache,
    counters: &'a Counters,
    key: String,
    ttl: Duration,
    policy: &'a Policy<R>,
    /// Set when the remote tier failed during this call: the rest of the call skips it, so a
    /// hung server costs one timeout per call, not three.
    remote_failed: std::sync::atomic::AtomicBool,
}

/// What the cross-instance stampede lock said.
enum Locked<V> {
    /// This instance holds the lock (with its token).
    Held(String),
    /// Another instance computed the value meanwhile.
    Value(V),
    /// Another instance cached a negative entry meanwhile.
    Negative,
    /// No lock (no remote tier, Redis trouble, or the wait ran out): compute anyway.
    Proceed,
}

impl<'a, R: Outcome> Call<'a, R> {
    fn service(&self) -> &'static str {
        self.site.service(None)
    }

    fn hit(&self, what: &'static str) {
        bump(&self.counters.hits);
        tracing::debug!(target: "syntra_cache", key = %self.key, service = self.service(), method = self.site.info.method, "{what}: {}", self.key);
    }

    fn refresh_due(&self, meta: &Meta) -> bool {
        !self.policy.refresh.is_zero() && meta.fresh_left(codec::now_ms()) <= self.policy.refresh
    }

    fn fingerprint(&self) -> Option<Cow<'static, str>> {
        self.cache.inner.tiers.remote.as_ref().map(|_| self.site.fingerprint::<R::Value>())
    }

    fn lock_key(&self) -> String {
        format!("{}#lock", self.key)
    }

    async fn miss<F: Future<Output = R>>(self, mut stale: Option<(R::Value, Meta)>, body: F) -> R {
        let (service, method) = (self.service(), self.site.info.method);
        let tiers = &self.cache.inner.tiers;
        let leader = match self.cache.inner.flights.join(&self.key) {
            Join::Leader(l) => Some(l),
            Join::Follower(rx) => {
                bump(&self.counters.coalesced);
                match flight::wait(rx).await {
                    Some(Shared::Value(v)) => {
                        if let Some(v) = v.downcast_ref::<R::Value>() {
                            bump(&self.counters.hits);
                            return R::from_value(v.clone());
                        }
                    }
                    Some(Shared::Negative) => {
                        if let Some(r) = R::negative() {
                            bump(&self.counters.hits);
                            return r;
                        }
                    }
                    Some(Shared::Outcome(r)) => {
                        if let Some(r) = self.policy.share.and_then(|s| (s.unpack)(&*r)) {
                            bump(&self.counters.misses);
                            return r;
                        }
                    }
                    Some(Shared::Nothing) | None => {}
                }
                None
            }
        };
        let ty = self.fingerprint();
        if let Some(ty) = &ty {
            match tiers.get_remote::<R::Value>(&self.key, ty).await {
                Ok(Found::Fresh(v, meta)) => {
                    if self.refresh_due(&meta) {
                        if let Some(l) = leader {
                            return self.early_refresh(l, (v, meta), body).await;
                        }
                    }
                    self.hit("Cache HIT");
                    if let Some(l) = leader {
                        l.publish(|| Shared::Value(Arc::new(v.clone())));
                    }
                    return R::from_value(v);
                }
                Ok(Found::Negative(_)) => {
                    if let Some(r) = R::negative() {
                        self.hit("Cache HIT (negative)");
                        if let Some(l) = leader {
                            l.publish(|| Shared::Negative);
                        }
                        return r;
                    }
                }
                Ok(Found::Stale(v, meta)) => {
                    bump(&self.counters.expired);
                    tracing::debug!(target: "syntra_cache", key = %self.key, service, method, ttl_s = meta.ttl.as_secs(), "Cache EXPIRED: {} - TTL was {}s", self.key, meta.ttl.as_secs());
                    stale = Some((v, meta));
                }
                Ok(Found::Miss { expired: true }) => {
                    bump(&self.counters.expired);
                    tracing::debug!(target: "syntra_cache", key = %self.key, service, method, "Cache EXPIRED: {}", self.key);
                }
                Ok(Found::Miss { expired: false }) => {}
                Err(LookupError::Store(e)) => {
                    self.remote_failed.store(true, std::sync::atomic::Ordering::Relaxed);
                    store_error(self.counters, &self.key, service, method, &e)
                }
                Err(LookupError::Decode(e)) => {
                    bump(&self.counters.cache_errors);
                    tracing::warn!(target: "syntra_cache", key = %self.key, service, method, error = %e, "Cache ERROR: {} - unusable value ({e}); it will be overwritten", self.key);
                }
            }
        }
        let token = match self.lock_or_wait(ty.as_deref()).await {
            Locked::Held(token) => Some(token),
            Locked::Proceed => None,
            Locked::Value(v) => {
                bump(&self.counters.coalesced);
                self.hit("Cache HIT (after waiting for another instance)");
                if let Some(l) = leader {
                    l.publish(|| Shared::Value(Arc::new(v.clone())));
                }
                return R::from_value(v);
            }
            Locked::Negative => {
                if let Some(r) = R::negative() {
                    bump(&self.counters.coalesced);
                    self.hit("Cache HIT (negative, after waiting for another instance)");
                    if let Some(l) = leader {
                        l.publish(|| Shared::Negative);
                    }
                    return r;
                }
                None
            }
        };
        bump(&self.counters.misses);
        tracing::debug!(target: "syntra_cache", key = %self.key, service, method, "Cache MISS: {} - fetching from API", self.key);
        self.compute(leader, token, stale, false, body).await
    }

    /// Takes the cross-instance lock, or waits (bounded) for the instance holding it.
    async fn lock_or_wait(&self, ty: Option<&str>) -> Locked<R::Value> {
        let (Some(remote), Some(ty)) = (&self.cache.inner.tiers.remote, ty) else { return Locked::Proceed };
        if self.remote_failed.load(std::sync::atomic::Ordering::Relaxed) || remote.peek().is_err() {
            return Locked::Proceed;
        }
        let cfg = self.cache.inner.lock;
        let lock_key = self.lock_key();
        let token = random_token();
        let deadline = Instant::now() + cfg.wait;
        let mut poll = cfg.poll;
        loop {
            match remote.set_nx(&lock_key, &token, cfg.lease).await {
                Ok(true) => return Locked::Held(token),
                Ok(false) => {}
                Err(_) => return Locked::Proceed,
            }
            if Instant::now() + poll > deadline {
                tracing::debug!(target: "syntra_cache", key = %self.key, "Cache LOCK wait ran out; computing without the lock");
                return Locked::Proceed;
            }
            tokio::time::sleep(poll).await;
            poll = (poll * 3 / 2).min(Duration::from_millis(200));
            match self.cache.inner.tiers.get_remote::<R::Value>(&self.key, ty).await {
                Ok(Found::Fresh(v, _)) => return Locked::Value(v),
                Ok(Found::Negative(_)) => return Locked::Negative,
                Err(LookupError::Store(_)) => return Locked::Proceed,
                _ => {}
            }
        }
    }

    /// A fresh value is close to expiry: this caller (one per process, and one per cluster
    /// through the lock) recomputes it; everyone else keeps being served the cached value.
    async fn early_refresh<F: Future<Output = R>>(
        self,
        leader: flight::Leader<'_>,
        (current, meta): (R::Value, Meta),
        body: F,
    ) -> R {
        let token = match &self.cache.inner.tiers.remote {
            Some(remote) => {
                let token = random_token();
                match remote.set_nx(&self.lock_key(), &token, self.cache.inner.lock.lease).await {
                    Ok(true) => Some(token),
                    _ => {
                        // Another instance is refreshing (or Redis is unwell): serve what we have.
                        self.hit("Cache HIT");
                        leader.publish(|| Shared::Value(Arc::new(current.clone())));
                        return R::from_value(current);
                    }
                }
            }
            None => None,
        };
        bump(&self.counters.refreshes);
        tracing::debug!(target: "syntra_cache", key = %self.key, service = self.service(), method = self.site.info.method, "Cache REFRESH: {} - recomputing before expiry", self.key);
        self.compute(Some(leader), token, Some((current, meta)), true, body).await
    }

    /// Runs the body (within its budget), stores a cacheable result, releases the lock and
    /// hands the result to single-flight followers.
    async fn compute<F: Future<Output = R>>(
        self,
        leader: Option<flight::Leader<'_>>,
        token: Option<String>,
        mut stale: Option<(R::Value, Meta)>,
        early: bool,
        body: F,
    ) -> R {
        let (service, method) = (self.service(), self.site.info.method);
        let budget = match (self.policy.budget, &self.cache.inner.budgets) {
            (Some((name, weight)), Some(enforcer)) => Some((name, weight, enforcer)),
            _ => None,
        };
        if let Some((name, weight, enforcer)) = budget {
            // With a last value to serve, a denial answers at once; without one, wait (bounded).
            let permit = if stale.is_some() {
                enforcer.acquire(name, weight).await
            } else {
                enforcer.acquire_or_wait(name, weight).await
            };
            if let Err(denied) = permit {
                bump(&self.counters.budget_denied);
                if let Some((v, _)) = stale.take() {
                    if !early {
                        bump(&self.counters.stale);
                    }
                    enforcer.record_stale(name);
                    tracing::info!(target: "syntra_cache", key = %self.key, service, method, budget = name, "Cache STALE: {} - {denied}; serving the last value", self.key);
                    return self.finish(leader, token, R::from_value(v), false).await;
                }
                if denied.is_permanent() {
                    tracing::error!(target: "syntra_cache", key = %self.key, service, method, budget = name, "Cache BUDGET: {denied}");
                } else {
                    tracing::warn!(target: "syntra_cache", key = %self.key, service, method, budget = name, "Cache BUDGET: {denied}; no cached value to serve");
                }
                let out = (self.policy.on_denied.expect("set with the budget"))(denied);
                return self.finish(leader, token, out, false).await;
            }
        }
        let ty = self.fingerprint().unwrap_or_default();
        let ty: &str = &ty;
        bump(&self.counters.upstream_calls);
        let out = scope::unsteered(body).await;
        let ttl = match budget {
            Some((name, _, enforcer)) => enforcer.stretch_ttl(name, self.ttl),
            None => self.ttl,
        };
        // A budgeted entry is kept for at least another TTL so that a denial has something to
        // serve; stale-if-error still only serves within `stale`.
        let keep_stale = if budget.is_some() { self.policy.stale.max(ttl) } else { self.policy.stale };
        let negative_cached = match out.verdict() {
            Verdict::Keep(v) => {
                self.write(Some(v), Meta::now(self.policy.jittered(ttl), keep_stale, false), ty).await;
                false
            }
            Verdict::Negative if matches!(self.policy.none_ttl, Some(Ok(_))) => {
                let none_ttl = self.policy.none_ttl.clone().and_then(Result::ok).unwrap_or(self.ttl);
                self.write(None, Meta::now(self.policy.jittered(none_ttl), Duration::ZERO, true), ty).await;
                true
            }
            Verdict::Negative | Verdict::Skip => {
                bump(&self.counters.upstream_errors);
                if let (Some((name, _, enforcer)), Some(hint)) = (budget, self.policy.rate_limited) {
                    if let Some(retry_after) = hint(&out) {
                        tracing::warn!(target: "syntra_cache", key = %self.key, service, method, budget = name, retry_after_ms = retry_after.map(|d| d.as_millis() as u64), "Cache BUDGET: upstream answered 429; backing off");
                        enforcer.backoff(name, retry_after);
                    }
                }
                // An early refresh that fails keeps serving the still-fresh value; otherwise a
                // stale value is served only inside its stale-if-error window.
                let window = self.policy.stale;
                let now = codec::now_ms();
                let usable = stale.take().filter(|(_, meta)| {
                    early || (!window.is_zero() && now < meta.written_at_ms + (meta.ttl + window).as_millis() as u64)
                });
                if let (Some((v, _)), Verdict::Skip) = (usable, out.verdict()) {
                    if !early {
                        bump(&self.counters.stale);
                        tracing::warn!(target: "syntra_cache", key = %self.key, service, method, "Cache STALE: {} - upstream failed, serving the last good value", self.key);
                    }
                    return self.finish(leader, token, R::from_value(v), false).await;
                }
                false
            }
        };
        self.finish(leader, token, out, negative_cached).await
    }

    /// Stores a value (`None`: a negative entry) in every tier; a failure is logged and dropped.
    async fn write(&self, value: Option<&R::Value>, meta: Meta, ty: &str) {
        let use_remote = !self.remote_failed.load(std::sync::atomic::Ordering::Relaxed);
        let tiers = &self.cache.inner.tiers;
        if let Err(e) = tiers.put(&self.key, value, meta, self.site.info.format, ty, use_remote).await {
            store_error(self.counters, &self.key, self.service(), self.site.info.method, &e);
        }
    }

    async fn finish(
        &self,
        leader: Option<flight::Leader<'_>>,
        token: Option<String>,
        out: R,
        negative_cached: bool,
    ) -> R {
        self.release(token).await;
        if let Some(l) = leader {
            l.publish(|| match out.verdict() {
                Verdict::Keep(v) => Shared::Value(Arc::new(v.clone())),
                Verdict::Negative if negative_cached => Shared::Negative,
                _ => share(self.policy, &out),
            });
        }
        out
    }

    async fn release(&self, token: Option<String>) {
        if let (Some(token), Some(remote)) = (token, &self.cache.inner.tiers.remote) {
            let _ = remote.delete_if_eq(&self.lock_key(), &token).await;
        }
    }
}

fn random_token() -> String {
    format!("{:032x}", rand::random::<u128>())
}

fn share<R>(policy: &Policy<R>, out: &R) -> Shared {
    match policy.share {
        Some(s) => Shared::Outcome((s.pack)(out)),
        None => Shared::Nothing,
    }
}

fn store_error(counters: &Counters, key: &str, service: &str, method: &str, e: &crate::StoreError) {
    bump(&counters.cache_errors);
    if matches!(e, crate::StoreError::BreakerOpen) {
        tracing::trace!(target: "syntra_cache", key, service, method, "Cache store skipped: circuit open");
    } else {
        tracing::warn!(target: "syntra_cache", key, service, method, error = %e, "Cache ERROR: {key} - {e}");
    }
}

#[inline]
fn bump(c: &std::sync::atomic::AtomicU64) {
    c.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(snake_case("CoinGecko"), "coin_gecko");
        assert_eq!(snake_case("FearGreedService"), "fear_greed_service");
        assert_eq!(snake_case("HTTPClient"), "http_client");
        assert_eq!(last_segment(strip_generics("a::b::Svc<c::D>")), "Svc");
    }
}
