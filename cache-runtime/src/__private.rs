//! Items the `#[cached]` expansion calls. Not public API: no semver guarantees.
#![allow(missing_docs)]

use crate::codec::{self, Meta};
use crate::error::TtlError;
use crate::key;
use crate::metrics::Counters;
use crate::policy::flight::{self, Join, Shared};
use crate::scope::{self, Mode};
use crate::store::tiered::{Found, LookupError};
use crate::Cache;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::any::Any;
use std::future::Future;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

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
    pub format: Format,
    pub version: u32,
}

/// One `#[cached]` function: static facts plus lazily resolved names.
#[derive(Debug)]
pub struct Site {
    info: SiteInfo,
    service: OnceLock<&'static str>,
}

impl Site {
    pub const fn new(info: SiteInfo) -> Self {
        Site { info, service: OnceLock::new() }
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

    fn counters(&self, cache: &Cache) -> Arc<Counters> {
        let service = self.service.get().copied().unwrap_or_else(|| self.service(None));
        cache.inner.metrics.counters(service, self.info.method)
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
    share: Option<Sharer<R>>,
}

impl<R> Policy<R> {
    pub fn new(ttl: Result<Duration, TtlError>) -> Self {
        Policy { ttl, none_ttl: None, stale: Duration::ZERO, share: None }
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

/// The cache-checked call: memory tier, then (single-flight) remote tier, lock, body.
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
    let refresh = matches!(mode, Mode::Refresh);
    let mut stale: Option<R::Value> = None;
    if !refresh {
        match cache.inner.tiers.get_local::<R::Value>(&key) {
            Some(Found::Fresh(v, _)) => {
                bump(&counters.hits);
                tracing::debug!(target: "syntra_cache", key = %key, service = site.service(None), method = site.info.method, "Cache HIT: {key}");
                return R::from_value(v);
            }
            Some(Found::Negative(_)) => {
                if let Some(r) = R::negative() {
                    bump(&counters.hits);
                    tracing::debug!(target: "syntra_cache", key = %key, service = site.service(None), method = site.info.method, "Cache HIT (negative): {key}");
                    return r;
                }
            }
            Some(Found::Stale(v, _)) => stale = Some(v),
            _ => {}
        }
    }
    miss(site, cache, &counters, key, ttl, &policy, refresh, stale, body).await
}

#[allow(clippy::too_many_arguments)]
async fn miss<R, F>(
    site: &'static Site,
    cache: &Cache,
    counters: &Counters,
    key: String,
    ttl: Duration,
    policy: &Policy<R>,
    refresh: bool,
    mut stale: Option<R::Value>,
    body: F,
) -> R
where
    R: Outcome,
    F: Future<Output = R>,
{
    let service = site.service(None);
    let method = site.info.method;
    let tiers = &cache.inner.tiers;
    let leader = if refresh {
        None
    } else {
        match cache.inner.flights.join(&key) {
            Join::Leader(l) => Some(l),
            Join::Follower(rx) => {
                bump(&counters.coalesced);
                match flight::wait(rx).await {
                    Some(Shared::Value(v)) => {
                        if let Some(v) = v.downcast_ref::<R::Value>() {
                            bump(&counters.hits);
                            return R::from_value(v.clone());
                        }
                    }
                    Some(Shared::Negative) => {
                        if let Some(r) = R::negative() {
                            bump(&counters.hits);
                            return r;
                        }
                    }
                    Some(Shared::Outcome(r)) => {
                        if let Some(r) = policy.share.and_then(|s| (s.unpack)(&*r)) {
                            bump(&counters.misses);
                            return r;
                        }
                    }
                    Some(Shared::Nothing) | None => {}
                }
                None
            }
        }
    };
    let ty = tiers.remote.as_ref().map(|_| codec::fingerprint::<R::Value>(site.info.version));
    if let (Some(ty), false) = (&ty, refresh) {
        match tiers.get_remote::<R::Value>(&key, ty).await {
            Ok(Found::Fresh(v, _)) => {
                bump(&counters.hits);
                tracing::debug!(target: "syntra_cache", key = %key, service, method, "Cache HIT: {key}");
                if let Some(l) = leader {
                    l.publish(Shared::Value(Arc::new(v.clone())));
                }
                return R::from_value(v);
            }
            Ok(Found::Negative(_)) => {
                if let Some(r) = R::negative() {
                    bump(&counters.hits);
                    if let Some(l) = leader {
                        l.publish(Shared::Negative);
                    }
                    return r;
                }
            }
            Ok(Found::Stale(v, meta)) => {
                bump(&counters.expired);
                tracing::debug!(target: "syntra_cache", key = %key, service, method, ttl_s = meta.ttl.as_secs(), "Cache EXPIRED: {key} - TTL was {}s", meta.ttl.as_secs());
                stale = Some(v);
            }
            Ok(Found::Miss { expired: true }) => {
                bump(&counters.expired);
                tracing::debug!(target: "syntra_cache", key = %key, service, method, "Cache EXPIRED: {key}");
            }
            Ok(Found::Miss { expired: false }) => {}
            Err(LookupError::Store(e)) => store_error(counters, &key, service, method, &e),
            Err(LookupError::Decode(e)) => {
                bump(&counters.cache_errors);
                tracing::warn!(target: "syntra_cache", key = %key, service, method, error = %e, "Cache ERROR: {key} - unusable value ({e}); it will be overwritten");
            }
        }
    }
    bump(&counters.misses);
    tracing::debug!(target: "syntra_cache", key = %key, service, method, "Cache MISS: {key} - fetching from API");
    bump(&counters.upstream_calls);
    let out = scope::unsteered(body).await;
    let meta = |negative: bool, ttl: Duration| Meta::now(ttl, policy.stale, negative);
    let shared = match out.verdict() {
        Verdict::Keep(v) => {
            if let Err(e) = tiers.put(&key, Some(v), meta(false, ttl), site.info.format, ty.as_deref().unwrap_or("")).await {
                store_error(counters, &key, service, method, &e);
            }
            Shared::Value(Arc::new(v.clone()))
        }
        Verdict::Negative => match policy.none_ttl {
            Some(Ok(none_ttl)) => {
                let r = tiers.put::<R::Value>(&key, None, meta(true, none_ttl), site.info.format, ty.as_deref().unwrap_or(""));
                if let Err(e) = r.await {
                    store_error(counters, &key, service, method, &e);
                }
                Shared::Negative
            }
            _ => {
                bump(&counters.upstream_errors);
                share(policy, &out)
            }
        },
        Verdict::Skip => {
            bump(&counters.upstream_errors);
            if let (Some(v), false) = (stale.take(), policy.stale.is_zero()) {
                bump(&counters.stale);
                tracing::warn!(target: "syntra_cache", key = %key, service, method, "Cache STALE: {key} - upstream failed, serving the last good value");
                if let Some(l) = leader {
                    l.publish(Shared::Value(Arc::new(v.clone())));
                }
                return R::from_value(v);
            }
            share(policy, &out)
        }
    };
    if let Some(l) = leader {
        l.publish(shared);
    }
    out
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
