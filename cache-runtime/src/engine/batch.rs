//! Batched loading with per-item caching: [`Cache::get_or_compute_many`].
//!
//! Every item is cached under its own key, the key a single-item function with the same template
//! uses, so batch and single-item functions share entries. A batch call:
//!
//! 1. **lookup** — the memory tier for every item, then one `MGET` for the rest;
//! 2. runs one engine call per item that is not a fresh hit ([`Call`], the single-key path:
//!    single-flight, the cross-instance lock, stale-if-error, early refresh), fed the bytes the
//!    `MGET` read, so no item reads Redis again before it must;
//! 3. **load** — the item calls that must compute register in a *round*; once every item call
//!    of the batch has registered, finished or parked (it waits on another caller: an
//!    overlapping batch leads that item, another instance holds its lock), one registered call
//!    runs the loader for all of them, in chunks of `max_batch`, one budget permit per chunk;
//! 4. **store** — each returned item is stored under its own key and handed to its followers.
//!
//! Two overlapping batches fetch a shared item once: the second one's call for it follows the
//! first one's flight (parked, so it does not hold the second batch's load back).
//!
//! **Cancellation.** The loader runs inside one of the batch's own item calls, so dropping the
//! batch call drops everything it holds: flights hand over to followers elsewhere, locks release.

use super::call::{Call, Parking, Site};
use super::decide::{decide, trust, Decision, Limits};
use super::{Hooks, Outcome, Policy, Verdict};
use crate::codec;
use crate::Cache;
use futures_util::future::join_all;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Mutex;
use tokio::sync::Notify;

/// What the engine makes of one item of a batch: the cached outcome of one key.
#[derive(Debug, Clone)]
enum Item<V> {
    /// The upstream returned it (or it was cached).
    Found(V),
    /// The upstream did not return it (cached only with a `none_ttl`).
    Absent,
    /// The load failed.
    Failed,
    /// The budget refused the load.
    Denied,
}

impl<V> Outcome for Item<V>
where
    V: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
{
    type Value = V;
    fn verdict(&self) -> Verdict<'_, V> {
        match self {
            Item::Found(v) => Verdict::Keep(v),
            Item::Absent => Verdict::Negative,
            Item::Failed | Item::Denied => Verdict::Skip,
        }
    }
    fn from_value(v: V) -> Self {
        Item::Found(v)
    }
    fn negative() -> Option<Self> {
        Some(Item::Absent)
    }
    fn is_denied(&self) -> bool {
        matches!(self, Item::Denied)
    }
}

/// How a batch call loads: at most `max_batch` items per upstream call.
///
/// ```
/// use syntra_cache_runtime::engine::Batch;
/// assert_eq!(Batch::new(250).max_batch(), 250);
/// assert_eq!(Batch::new(0).max_batch(), 1, "at least one item per call");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Batch {
    max_batch: usize,
}

impl Batch {
    /// At most `max_batch` items (at least 1) per upstream call.
    pub fn new(max_batch: usize) -> Self {
        Batch { max_batch: max_batch.max(1) }
    }
    /// Items per upstream call, at most.
    pub fn max_batch(&self) -> usize {
        self.max_batch
    }
}

impl Default for Batch {
    /// 100 items per call (CoinMarketCap's credit unit; CoinGecko takes 250 ids, DexScreener 30).
    fn default() -> Self {
        Batch::new(100)
    }
}

/// The item calls of one batch call and the items waiting for a load.
struct Round {
    state: Mutex<RoundState>,
    wake: Notify,
}

struct RoundState {
    /// Item calls running that have neither registered nor parked nor finished.
    active: usize,
    /// Items registered for the next load, by index.
    waiting: Vec<usize>,
    /// A loader is running.
    loading: bool,
}

impl Round {
    fn new(calls: usize) -> Self {
        Round {
            state: Mutex::new(RoundState { active: calls, waiting: Vec::new(), loading: false }),
            wake: Notify::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, RoundState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// One fewer active call: wakes the registered ones when the load can start.
    fn settle(&self, st: &mut RoundState) {
        st.active = st.active.saturating_sub(1);
        if st.active == 0 && !st.waiting.is_empty() && !st.loading {
            self.wake.notify_waiters();
        }
    }

    fn register(&self, index: usize) {
        let mut st = self.lock();
        st.waiting.push(index);
        self.settle(&mut st);
    }

    fn finished(&self) {
        let mut st = self.lock();
        self.settle(&mut st);
    }

    /// The items of the next load, when this caller may run it.
    fn claim(&self) -> Option<Vec<usize>> {
        let mut st = self.lock();
        (st.active == 0 && !st.loading && !st.waiting.is_empty()).then(|| {
            st.loading = true;
            std::mem::take(&mut st.waiting)
        })
    }
}

impl Parking for Round {
    fn park(&self) {
        let mut st = self.lock();
        self.settle(&mut st);
    }
    fn unpark(&self) {
        self.lock().active += 1;
    }
}

/// Marks an item call finished in its round, however it ends (a registered call already left
/// the active ones).
struct Finished<'a> {
    round: &'a Round,
    registered: &'a AtomicBool,
}

impl Drop for Finished<'_> {
    fn drop(&mut self) {
        if !self.registered.load(Relaxed) {
            self.round.finished();
        }
    }
}

impl Cache {
    /// Answers for many items at once, each cached under its own key: the engine of
    /// `#[cached(batch = ..)]`, for code without the macro.
    ///
    /// `key(item)` is an item's key without the namespace (`coingecko:price:bitcoin_usd`: the
    /// key a single-item function uses). Fresh items come from the memory tier, then from one
    /// `MGET`; the rest are loaded by `load(missing)` (at most [`Batch::max_batch`] per call,
    /// one budget permit per call), stored one by one, and merged into the answer. Items the
    /// load does not return are left out of the answer (and cached as absent with a
    /// [`Policy::none_ttl`]). When a load fails, its items are served stale where the policy
    /// allows; if any item is left without a value, the load's error is returned.
    ///
    /// `hooks` work on the load's result: a budget denial becomes `on_denied(denial)` for that
    /// chunk, a 429 in it backs the budget off.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use std::collections::HashMap;
    /// use std::time::Duration;
    /// use syntra_cache_runtime::engine::{Batch, Hooks, Policy};
    /// use syntra_cache_runtime::Cache;
    ///
    /// let cache = Cache::memory();
    /// let policy = Policy::new(Duration::from_secs(90));
    /// let key = |id: &String| format!("coingecko:price:{id}_usd");
    /// let load = |ids: Vec<String>| async move {
    ///     Ok::<_, String>(ids.into_iter().map(|id| (id, 97_000.5)).collect::<HashMap<_, _>>())
    /// };
    /// let ids = vec!["bitcoin".to_string(), "ethereum".to_string()];
    /// let prices = cache.get_or_compute_many(&ids, key, &policy, &Hooks::new(), Batch::default(), load).await;
    /// assert_eq!(prices.unwrap().len(), 2);
    /// // Cached per item: a single-item read of the same key is a hit.
    /// let one: Result<f64, String> = cache
    ///     .get_or_compute("coingecko:price:bitcoin_usd", &policy, &Hooks::new(), async { unreachable!() })
    ///     .await;
    /// assert_eq!(one, Ok(97_000.5));
    /// # }
    /// ```
    pub async fn get_or_compute_many<I, V, E, K, L, F>(
        &self,
        items: &[I],
        key: K,
        policy: &Policy,
        hooks: &Hooks<Result<HashMap<I, V>, E>>,
        batch: Batch,
        load: L,
    ) -> Result<HashMap<I, V>, E>
    where
        I: Eq + Hash + Clone,
        V: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
        K: Fn(&I) -> String,
        L: Fn(Vec<I>) -> F,
        F: Future<Output = Result<HashMap<I, V>, E>>,
    {
        let unique = dedup(items);
        if !self.inner.enabled {
            return load_unique(&unique, batch, &load).await;
        }
        let keys: Vec<String> = unique.iter().map(|i| key(i)).collect();
        let Some(first) = keys.first() else { return Ok(HashMap::new()) };
        let mut parts = first.split(':');
        let (service, method) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
        let counters = self.inner.metrics.counters(service, method);
        let fingerprint = match self.inner.tiers.remote {
            Some(_) => codec::fingerprint::<V>(policy.version),
            None => String::new(),
        };
        let conflict_reported = AtomicBool::new(false);
        // The generation may have moved since the last call (or be read for the first time).
        self.inner.generation.sync(self).await;
        let full: Vec<String> = keys.iter().map(|k| self.inner.generation.rebase(self.entry_key(k))).collect();
        let site = Site {
            service,
            method,
            counters: &counters,
            fingerprint: &fingerprint,
            conflict_reported: &conflict_reported,
        };
        self.run_many(site, unique, full, policy, hooks, batch, load).await
    }

    /// The batch call with its items deduplicated and their full keys (namespace included).
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn run_many<I, V, E, L, F>(
        &self,
        site: Site<'_>,
        unique: Vec<&I>,
        full: Vec<String>,
        policy: &Policy,
        hooks: &Hooks<Result<HashMap<I, V>, E>>,
        batch: Batch,
        load: L,
    ) -> Result<HashMap<I, V>, E>
    where
        I: Eq + Hash + Clone,
        V: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
        L: Fn(Vec<I>) -> F,
        F: Future<Output = Result<HashMap<I, V>, E>>,
    {
        let Site { service, method, counters, fingerprint, conflict_reported } = site;
        // lookup: memory, then one MGET for what memory did not answer fresh.
        let mut answer = HashMap::with_capacity(unique.len());
        let mut rest = Vec::new();
        let now = codec::now_ms();
        for (i, k) in full.iter().enumerate() {
            let found = self.inner.tiers.get_local::<V>(k).ok().flatten();
            match decide(found, now, policy, true) {
                Decision::Serve(v) => {
                    counters.hits.fetch_add(1, Relaxed);
                    tracing::debug!(target: "syntra_cache", key = %k, service, method, "Cache HIT: {k}");
                    answer.insert(unique[i].clone(), v);
                }
                Decision::ServeNegative => {
                    counters.hits.fetch_add(1, Relaxed);
                    tracing::debug!(target: "syntra_cache", key = %k, service, method, "Cache HIT (negative): {k}");
                }
                _ => rest.push(i),
            }
        }
        if rest.is_empty() {
            return Ok(answer);
        }
        let rest_keys: Vec<String> = rest.iter().map(|&i| full[i].clone()).collect();
        // Tickets before the read: a coherence eviction arriving meanwhile keeps its copy out of
        // memory.
        let tickets: Vec<_> = rest_keys.iter().map(|k| self.inner.tiers.ticket(k)).collect();
        let read: Vec<Result<Option<Vec<u8>>, ()>> = match &self.inner.tiers.remote {
            Some(remote) if remote.peek().is_ok() => match self.inner.tiers.get_remote_many(&rest_keys).await {
                Ok(values) if values.len() == rest_keys.len() => values.into_iter().map(Ok).collect(),
                Ok(_) => vec![Err(()); rest.len()],
                Err(e) => {
                    counters.cache_errors.fetch_add(1, Relaxed);
                    if !matches!(e, crate::StoreError::BreakerOpen) {
                        tracing::warn!(target: "syntra_cache", service, method, error = %e, "Cache ERROR: {service}:{method} batch read - {e}");
                    }
                    vec![Err(()); rest.len()]
                }
            },
            Some(_) => vec![Err(()); rest.len()],
            None => vec![Ok(None); rest.len()],
        };
        // Fresh entries the MGET found are answered here (decoded, brought within the policy,
        // copied to memory); anything else (stale, due for refresh, unusable) goes through an
        // engine call that judges, logs and heals it.
        let limits = Limits::of(
            policy,
            match (&hooks.budget, self.inner.budgets.as_ref()) {
                (Some(b), Some(enforcer)) => Some(enforcer.max_ttl_stretch(&b.name)),
                _ => None,
            },
        );
        let now = codec::now_ms();
        let mut pending = Vec::with_capacity(rest.len());
        for ((i, read), ticket) in rest.into_iter().zip(read).zip(tickets) {
            if let Ok(Some(bytes)) = &read {
                if let Ok(Some((Some(v), meta, size))) =
                    self.inner.tiers.decode_remote::<V>(&full[i], bytes, fingerprint)
                {
                    if let Ok(meta) = trust(meta, now, &limits) {
                        if meta.is_fresh(now) && (policy.refresh.is_zero() || meta.fresh_left(now) > policy.refresh) {
                            counters.hits.fetch_add(1, Relaxed);
                            tracing::debug!(target: "syntra_cache", key = %full[i], service, method, "Cache HIT: {}", full[i]);
                            self.inner.tiers.remember(&full[i], Some(&v), meta, size, ticket);
                            answer.insert(unique[i].clone(), v);
                            continue;
                        }
                    }
                }
            }
            pending.push((i, read, ticket));
        }
        if pending.is_empty() {
            return Ok(answer);
        }

        // One engine call per item; the registered ones share one load.
        let round = Round::new(pending.len());
        let item_hooks: Hooks<Item<V>> = match &hooks.budget {
            // Only the name travels: TTL stretch and the kept window follow the budget; the
            // loader admits.
            Some(b) => Hooks::new().budget(b.name.clone(), b.weight, |_| Item::Denied),
            None => Hooks::new(),
        };
        let outcomes: Mutex<HashMap<usize, Item<V>>> = Mutex::new(HashMap::new());
        let errors: Mutex<Vec<E>> = Mutex::new(Vec::new());
        let (round, outcomes, errors, unique, load) = (&round, &outcomes, &errors, &unique, &load);
        let (item_hooks, full) = (&item_hooks, &full);
        let calls = pending.into_iter().map(|(i, read, ticket)| async move {
            let registered = AtomicBool::new(false);
            let _finished = Finished { round, registered: &registered };
            let site = Site { service, method, counters, fingerprint, conflict_reported };
            let call = Call::new(self, site, full[i].clone(), policy, item_hooks).in_batch(round, read, ticket);
            let body = async {
                registered.store(true, Relaxed);
                round.register(i);
                loop {
                    if let Some(item) = outcomes.lock().unwrap_or_else(|p| p.into_inner()).remove(&i) {
                        return item;
                    }
                    let notified = round.wake.notified();
                    tokio::pin!(notified);
                    notified.as_mut().enable();
                    if let Some(indices) = round.claim() {
                        let loaded = self.load_round(&indices, unique, hooks, batch, load, counters).await;
                        outcomes.lock().unwrap_or_else(|p| p.into_inner()).extend(loaded.items);
                        errors.lock().unwrap_or_else(|p| p.into_inner()).extend(loaded.errors);
                        round.lock().loading = false;
                        round.wake.notify_waiters();
                        continue;
                    }
                    notified.await;
                }
            };
            (i, call.run(body).await)
        });
        let results = join_all(calls).await;
        let mut failed = false;
        for (i, item) in results {
            match item {
                Item::Found(v) => {
                    answer.insert(unique[i].clone(), v);
                }
                Item::Absent => {}
                Item::Failed | Item::Denied => failed = true,
            }
        }
        if failed {
            if let Some(e) = std::mem::take(&mut *errors.lock().unwrap_or_else(|p| p.into_inner())).into_iter().next() {
                return Err(e);
            }
        }
        Ok(answer)
    }

    /// Runs the loader for the registered items `indices`, in chunks, and sorts its answers out
    /// by item.
    async fn load_round<I, V, E, L, F>(
        &self,
        indices: &[usize],
        unique: &[&I],
        hooks: &Hooks<Result<HashMap<I, V>, E>>,
        batch: Batch,
        load: &L,
        counters: &crate::metrics::Counters,
    ) -> Loaded<V, E>
    where
        I: Eq + Hash + Clone,
        V: Clone,
        L: Fn(Vec<I>) -> F,
        F: Future<Output = Result<HashMap<I, V>, E>>,
    {
        let chunks = indices.chunks(batch.max_batch).map(|chunk| async move {
            let ids: Vec<I> = chunk.iter().map(|&i| unique[i].clone()).collect();
            let budget = match (&hooks.budget, self.inner.budgets.as_ref()) {
                (Some(b), Some(enforcer)) => Some((b, enforcer)),
                _ => None,
            };
            if let Some((b, enforcer)) = budget {
                if let Err(denied) = enforcer.acquire_or_wait(&b.name, b.weight).await {
                    counters.budget_denied.fetch_add(1, Relaxed);
                    tracing::warn!(target: "syntra_cache", budget = %b.name, items = ids.len(), "Cache BUDGET: {denied}; batch of {} not loaded", ids.len());
                    return (chunk, (b.on_denied)(denied), true);
                }
            }
            counters.upstream_calls.fetch_add(1, Relaxed);
            let out = crate::scope::unsteered(load(ids)).await;
            if let (Some((b, enforcer)), Some(hint)) = (budget, hooks.rate_limited) {
                if let Some(retry_after) = hint(&out) {
                    enforcer.backoff(&b.name, retry_after);
                }
            }
            (chunk, out, false)
        });
        let mut loaded = Loaded { items: Vec::with_capacity(indices.len()), errors: Vec::new() };
        for (chunk, out, denied) in join_all(chunks).await {
            match out {
                Ok(mut map) => loaded
                    .items
                    .extend(chunk.iter().map(|&i| (i, map.remove(unique[i]).map_or(Item::Absent, Item::Found)))),
                Err(e) => {
                    if !denied {
                        counters.upstream_errors.fetch_add(1, Relaxed);
                    }
                    let failed = if denied { Item::Denied } else { Item::Failed };
                    loaded.items.extend(chunk.iter().map(|&i| (i, failed.clone())));
                    loaded.errors.push(e);
                }
            }
        }
        loaded
    }
}

/// What one round's load produced.
struct Loaded<V, E> {
    items: Vec<(usize, Item<V>)>,
    errors: Vec<E>,
}

/// The distinct items, in order.
pub(crate) fn dedup<I: Eq + Hash>(items: &[I]) -> Vec<&I> {
    let mut seen = std::collections::HashSet::with_capacity(items.len());
    items.iter().filter(|i| seen.insert(*i)).collect()
}

/// Without a cache: the load, chunk by chunk, merged.
pub(crate) async fn load_unique<I, V, E, L, F>(items: &[&I], batch: Batch, load: &L) -> Result<HashMap<I, V>, E>
where
    I: Eq + Hash + Clone,
    L: Fn(Vec<I>) -> F,
    F: Future<Output = Result<HashMap<I, V>, E>>,
{
    let mut answer = HashMap::with_capacity(items.len());
    for chunk in items.chunks(batch.max_batch) {
        answer.extend(load(chunk.iter().map(|i| (*i).clone()).collect()).await?);
    }
    Ok(answer)
}
