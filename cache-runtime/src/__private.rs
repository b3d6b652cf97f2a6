//! Items the `#[cached]` expansion calls: thin glue over the [`engine`](crate::engine). Not
//! public API: no semver guarantees.
#![allow(missing_docs)]

use crate::engine::batch::{dedup, load_unique};
use crate::engine::call::{Call, Site as EngineSite};
use crate::engine::{self, Hooks, Outcome};
use crate::error::TtlError;
use crate::key::{self, KeyError};
use crate::metrics::Counters;
use crate::scope::{self, Mode};
use crate::Cache;
use serde::Serialize;
use std::borrow::Cow;
use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

pub use crate::budget::Denied;
pub use crate::cache::default_cache;
pub use crate::codec::Format;
pub use crate::engine::{Plain, RateHint, Sharer, Verdict};
pub use crate::key::Next;
pub use crate::policy::ttl::{ttl, IntoTtl};

/// Where a site's service name (its label in stats and logs) comes from.
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

/// One `#[cached]` function: static facts plus names and counters resolved once.
#[derive(Debug)]
pub struct Site {
    info: SiteInfo,
    service: OnceLock<&'static str>,
    /// The default key's prefix (the fn's full path in key form), for non-generic impls.
    path: OnceLock<Option<Box<str>>>,
    /// The counters of the first cache this site was called with: the common case of one
    /// cache per function then costs no lock and no hash per call.
    first: OnceLock<(u64, Arc<Counters>)>,
    /// The value type's fingerprint, computed once (keyed by type name: a site in a generic
    /// impl can see several types).
    fingerprint: OnceLock<(&'static str, String)>,
    conflict_reported: AtomicBool,
}

impl Site {
    pub const fn new(info: SiteInfo) -> Self {
        Site {
            info,
            service: OnceLock::new(),
            path: OnceLock::new(),
            first: OnceLock::new(),
            fingerprint: OnceLock::new(),
            conflict_reported: AtomicBool::new(false),
        }
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

    /// The fn's full path (`my_bot::coingecko::Client::get`), without the nested item's name and
    /// the `{{closure}}` of its `async` body.
    pub fn fn_path(&self) -> String {
        let raw = (self.info.path)();
        let raw = raw.rsplit_once("::").map_or(raw, |(head, _)| head);
        raw.replace("::{{closure}}", "")
    }

    /// Appends the default key's prefix: the fn's full path in key form, plus the full self type
    /// in a generic impl (whose path reads `Svc<_>`).
    fn push_default_prefix(&self, out: &mut String, self_type: Option<fn() -> &'static str>) {
        let path = self.path.get_or_init(|| {
            let path = self.fn_path();
            (!path.contains("<_>")).then(|| {
                let mut s = String::with_capacity(path.len());
                key::push_path(&mut s, &path);
                s.into_boxed_str()
            })
        });
        match (path, self_type) {
            (Some(path), _) => out.push_str(path),
            (None, self_type) => {
                key::push_path(out, &self.fn_path());
                if let Some(ty) = self_type {
                    out.push('@');
                    key::push_path(out, ty());
                }
            }
        }
    }

    fn fingerprint<V: ?Sized>(&'static self) -> Cow<'static, str> {
        let name = std::any::type_name::<V>();
        let (seen, fp) = self.fingerprint.get_or_init(|| (name, crate::codec::fingerprint::<V>(self.info.version)));
        if *seen == name {
            Cow::Borrowed(fp.as_str())
        } else {
            Cow::Owned(crate::codec::fingerprint::<V>(self.info.version))
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

/// Builds the key of one call. An argument whose `Serialize` fails spoils the key: the call
/// then runs uncached (never under a key shared with other such calls).
pub struct KeyWriter {
    buf: String,
    keep: usize,
    error: Option<KeyError>,
}

impl KeyWriter {
    pub fn new(cache: &Cache, site: &'static Site, self_type: Option<fn() -> &'static str>) -> Self {
        // Resolves the service label (the impl's type) once, before the call counts anything.
        site.service(self_type);
        let prefix = cache.inner.generation.prefix();
        let mut buf = String::with_capacity(prefix.len() + site.info.template.len() + 48);
        buf.push_str(&prefix);
        if site.info.template.is_empty() {
            site.push_default_prefix(&mut buf, self_type);
        }
        let keep = buf.len();
        KeyWriter { buf, keep, error: None }
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
        if let Err(e) = key::render_part(&mut self.buf, value, next) {
            self.error.get_or_insert(e);
        }
    }

    pub fn args<T: Serialize + ?Sized>(&mut self, args: &T) {
        if let Err(e) = key::render_hashed_args(&mut self.buf, args) {
            self.error.get_or_insert(e);
        }
    }

    pub fn finish(mut self) -> Result<String, KeyError> {
        if let Some(e) = self.error {
            return Err(e);
        }
        key::bound_length(&mut self.buf, self.keep);
        Ok(self.buf)
    }
}

/// The per-call policy as the expansion builds it: expression-valued arguments arrive as
/// `Result`s, and a bad one is reported (with the call's key) when the call runs.
pub struct Policy<R> {
    ttl: Result<Duration, TtlError>,
    engine: engine::Policy,
    hooks: Hooks<R>,
    problem: Option<(&'static str, TtlError)>,
}

impl<R> Policy<R> {
    pub fn new(ttl: Result<Duration, TtlError>) -> Self {
        let ttl = ttl.and_then(IntoTtl::into_ttl);
        let engine = engine::Policy::new(*ttl.as_ref().unwrap_or(&Duration::from_secs(1)));
        Policy { ttl, engine, hooks: Hooks::new(), problem: None }
    }
    /// A window argument: zero turns it off; any other error is reported at call time.
    fn window(&mut self, name: &'static str, window: Result<Duration, TtlError>) -> Option<Duration> {
        match window {
            Ok(d) => Some(d),
            Err(TtlError::Zero) => None,
            Err(e) => {
                self.problem.get_or_insert((name, e));
                None
            }
        }
    }
    pub fn none_ttl(mut self, ttl: Result<Duration, TtlError>) -> Self {
        if let Some(d) = self.window("none_ttl", ttl) {
            self.engine = self.engine.none_ttl(d);
        }
        self
    }
    pub fn max_ttl(mut self, max: Result<Duration, TtlError>) -> Self {
        if let Some(d) = self.window("max_ttl", max) {
            self.engine = self.engine.max_ttl(d);
        }
        self
    }
    pub fn stale(mut self, window: Result<Duration, TtlError>) -> Self {
        if let Some(d) = self.window("stale", window) {
            self.engine = self.engine.stale(d);
        }
        self
    }
    pub fn refresh(mut self, window: Result<Duration, TtlError>) -> Self {
        match self.window("refresh", window) {
            Some(d) if self.ttl.as_ref().is_ok_and(|ttl| d >= *ttl) => {
                self.problem.get_or_insert(("refresh", TtlError::TooLong(d)));
            }
            Some(d) => self.engine = self.engine.refresh(d),
            None => {}
        }
        self
    }
    pub fn jitter(mut self, fraction: f64) -> Self {
        self.engine = self.engine.jitter(fraction);
        self
    }
    pub fn budget(mut self, name: &'static str, weight: u32, on_denied: fn(Denied) -> R) -> Self {
        self.hooks = self.hooks.budget(name, weight, on_denied);
        self
    }
    pub fn rate_limited(mut self, hint: Option<RateHint<R>>) -> Self {
        self.hooks = self.hooks.rate_limited(hint);
        self
    }
    pub fn share(mut self, share: Option<Sharer<R>>) -> Self {
        self.hooks = self.hooks.share(share);
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
pub trait ShareClone<R> {
    fn sharer(&self) -> Option<Sharer<R>>;
}
impl<R: Clone + Send + Sync + 'static> ShareClone<R> for &Share<R> {
    fn sharer(&self) -> Option<Sharer<R>> {
        Some(Sharer::cloning())
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

pub fn assert_outcome<R: Outcome>() {}

/// The cache-checked call the expansion awaits.
pub async fn cached<R, F>(
    site: &'static Site,
    cache: &Cache,
    key: Result<String, KeyError>,
    policy: Policy<R>,
    body: F,
) -> R
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
    let service = site.service(None);
    let method = site.info.method;
    let (key, ttl) = match (key, policy.ttl) {
        (Ok(key), Ok(ttl)) if cache.inner.enabled => (key, ttl),
        (Ok(_), Ok(_)) => {
            counters.upstream_calls.fetch_add(1, Relaxed);
            return body.await;
        }
        (Err(e), _) => {
            tracing::error!(target: "syntra_cache", service, method, error = %e, "Cache ERROR: {service}::{method} - {e}; calling upstream uncached");
            return uncached(&counters, body).await;
        }
        (Ok(key), Err(e)) => {
            tracing::error!(target: "syntra_cache", key = %key, service, method, error = %e, "Cache ERROR: {key} - invalid TTL ({e}); calling upstream uncached");
            return uncached(&counters, body).await;
        }
    };
    if let Some((argument, e)) = &policy.problem {
        counters.cache_errors.fetch_add(1, Relaxed);
        tracing::error!(target: "syntra_cache", key = %key, service, method, argument, error = %e, "Cache ERROR: {key} - invalid `{argument}` ({e}); ignoring it for this call");
    }
    let _ = ttl;
    let engine_policy = policy.engine.format(site.info.format).version(site.info.version);
    let fingerprint = match cache.inner.tiers.remote {
        Some(_) => site.fingerprint::<R::Value>(),
        None => Cow::Borrowed(""),
    };
    let engine_site = EngineSite {
        service,
        method,
        counters: &counters,
        fingerprint: &fingerprint,
        conflict_reported: &site.conflict_reported,
    };
    // The generation may have moved since the key was built (or be read for the first time).
    let key = cache.current_key(key).await;
    let call = Call::new(cache, engine_site, key, &engine_policy, &policy.hooks);
    match mode {
        Mode::Refresh => call.run_forced(body).await,
        _ => call.run(body).await,
    }
}

/// The expansion of `#[cached(fallback = ..)]`: `out` is the cached call's answer; when it is
/// an error (upstream failed or a budget said no, and nothing cached was served), the answer of
/// `fallback` instead if that one is not an error too. The fallback's answer is not cached
/// under this function's key (it has its own source and, usually, its own cache).
pub async fn fallback<R, G>(site: &'static Site, cache: &Cache, out: R, fallback: G) -> R
where
    R: Outcome,
    G: Future<Output = R>,
{
    if !matches!(out.verdict(), Verdict::Skip) || !cache.inner.enabled {
        return out;
    }
    let counters = site.counters(cache);
    let (service, method) = (site.service(None), site.info.method);
    let alt = fallback.await;
    if matches!(alt.verdict(), Verdict::Skip) {
        counters.fallback_errors.fetch_add(1, Relaxed);
        tracing::debug!(target: "syntra_cache", service, method, "Cache FALLBACK: {service}::{method} failed and its fallback failed too");
        return out;
    }
    counters.fallbacks.fetch_add(1, Relaxed);
    tracing::debug!(target: "syntra_cache", service, method, "Cache FALLBACK: {service}::{method} failed; answered by its fallback source");
    alt
}

/// The expansion of `#[cached(batch = ..)]`: `items` cached one by one under `key(item)`, the
/// missing ones loaded by `load` in chunks of `max_batch` (see
/// [`Cache::get_or_compute_many`]).
#[allow(clippy::too_many_arguments)]
pub async fn cached_batch<I, V, E, K, L, F>(
    site: &'static Site,
    cache: &Cache,
    policy: Policy<Result<HashMap<I, V>, E>>,
    items: &[I],
    max_batch: usize,
    key: K,
    load: L,
) -> Result<HashMap<I, V>, E>
where
    I: Eq + Hash + Clone,
    V: Serialize + serde::de::DeserializeOwned + Clone + Send + Sync + 'static,
    K: Fn(&I) -> Result<String, KeyError>,
    L: Fn(Vec<I>) -> F,
    F: Future<Output = Result<HashMap<I, V>, E>>,
{
    let batch = engine::Batch::new(max_batch);
    let unique = dedup(items);
    let mode = scope::mode();
    if let Mode::Capture(slot) = &mode {
        // `key_of` / `invalidate` on a batch function name its first item's entry.
        let first = unique
            .first()
            .map(|i| key(i))
            .unwrap_or_else(|| Err(KeyError("a batch call with no items names no entry".into())));
        scope::capture(slot, first, cache);
        return std::future::pending().await;
    }
    let counters = site.counters(cache);
    let service = site.service(None);
    let method = site.info.method;
    if !cache.inner.enabled {
        counters.upstream_calls.fetch_add(1, Relaxed);
        return load_unique(&unique, batch, &load).await;
    }
    let keys: Result<Vec<String>, KeyError> = unique.iter().map(|i| key(i)).collect();
    let (keys, _) = match (keys, policy.ttl) {
        (Ok(keys), Ok(ttl)) => (keys, ttl),
        (Err(e), _) => {
            tracing::error!(target: "syntra_cache", service, method, error = %e, "Cache ERROR: {service}::{method} - {e}; calling upstream uncached");
            counters.cache_errors.fetch_add(1, Relaxed);
            return load_unique(&unique, batch, &load).await;
        }
        (Ok(_), Err(e)) => {
            tracing::error!(target: "syntra_cache", service, method, error = %e, "Cache ERROR: {service}::{method} - invalid TTL ({e}); calling upstream uncached");
            counters.cache_errors.fetch_add(1, Relaxed);
            return load_unique(&unique, batch, &load).await;
        }
    };
    if keys.is_empty() {
        return Ok(HashMap::new());
    }
    // The generation may have moved since the keys were built (or be read for the first time).
    cache.inner.generation.sync(cache).await;
    let keys: Vec<String> = keys.into_iter().map(|k| cache.inner.generation.rebase(k)).collect();
    if let Some((argument, e)) = &policy.problem {
        counters.cache_errors.fetch_add(1, Relaxed);
        tracing::error!(target: "syntra_cache", service, method, argument, error = %e, "Cache ERROR: {service}::{method} - invalid `{argument}` ({e}); ignoring it for this call");
    }
    let engine_policy = policy.engine.format(site.info.format).version(site.info.version);
    let fingerprint = match cache.inner.tiers.remote {
        Some(_) => site.fingerprint::<V>(),
        None => Cow::Borrowed(""),
    };
    let engine_site = EngineSite {
        service,
        method,
        counters: &counters,
        fingerprint: &fingerprint,
        conflict_reported: &site.conflict_reported,
    };
    cache.run_many(engine_site, unique, keys, &engine_policy, &policy.hooks, batch, load).await
}

async fn uncached<R, F: Future<Output = R>>(counters: &Counters, body: F) -> R {
    counters.cache_errors.fetch_add(1, Relaxed);
    counters.upstream_calls.fetch_add(1, Relaxed);
    body.await
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

    #[test]
    fn default_keys_name_the_whole_path() {
        fn site(path: fn() -> &'static str) -> &'static Site {
            Box::leak(Box::new(Site::new(SiteInfo {
                template: "",
                service: Service::SelfType,
                method: "get",
                fn_name: "get",
                module: "bot::coingecko",
                format: Format::Json,
                version: 0,
                path,
            })))
        }
        let cache = Cache::memory();
        let labelled = site(|| "bot::coingecko::CoinGecko::get::{{closure}}::__cache_path");
        let _ = KeyWriter::new(&cache, labelled, Some(|| "bot::coingecko::CoinGecko"));
        assert_eq!(labelled.service(None), "coin_gecko", "stats label from the impl's type");
        let key = |s: &'static Site, ty: Option<fn() -> &'static str>| {
            let mut k = KeyWriter::new(&cache, s, ty);
            k.args(&(&"/simple/price",));
            k.finish().unwrap()
        };
        let gecko = site(|| "bot::coingecko::Client::get::{{closure}}::__cache_path");
        let binance = site(|| "bot::binance::Client::get::{{closure}}::__cache_path");
        assert_eq!(gecko.fn_path(), "bot::coingecko::Client::get");
        let k = key(gecko, None);
        assert!(k.starts_with("syntra:bot.coingecko.Client.get:"), "{k}");
        assert_ne!(k, key(binance, None));
        // A generic impl's path erases the parameters: the self type tells them apart.
        let generic = site(|| "bot::Client<_>::get::{{closure}}::__cache_path");
        assert_ne!(key(generic, Some(|| "bot::Client<bot::Eth>")), key(generic, Some(|| "bot::Client<bot::Sol>")));
    }
}
