//! Counters per service and method, and their snapshot ([`Cache::stats`](crate::Cache::stats)).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, RwLock};
use std::time::Duration;

const SUB: usize = 4; // buckets per power of two: ±19% resolution
const BUCKETS: usize = 64 * SUB;

/// Lock-free counters of one cached method.
#[derive(Debug)]
pub(crate) struct Counters {
    pub(crate) hits: AtomicU64,
    pub(crate) misses: AtomicU64,
    pub(crate) expired: AtomicU64,
    pub(crate) stale: AtomicU64,
    pub(crate) upstream_calls: AtomicU64,
    pub(crate) upstream_errors: AtomicU64,
    pub(crate) cache_errors: AtomicU64,
    pub(crate) coalesced: AtomicU64,
    pub(crate) refreshes: AtomicU64,
    pub(crate) budget_denied: AtomicU64,
    /// Failed calls answered by the function's `fallback`, and fallbacks that failed too.
    pub(crate) fallbacks: AtomicU64,
    pub(crate) fallback_errors: AtomicU64,
    pub(crate) conflicts: AtomicU64,
    pub(crate) tampered: AtomicU64,
    pub(crate) oversized: AtomicU64,
    /// Set once an over-large value of this method has been logged.
    pub(crate) oversized_logged: std::sync::atomic::AtomicBool,
    /// Hits that served a cached "absent" answer (counted in `hits` too).
    pub(crate) negative: AtomicU64,
    /// Calls answered from a cache tier (fresh, negative or early-refresh hits).
    hit_latency: Histogram,
    /// Every other call (misses, stale answers, forced refreshes).
    miss_latency: Histogram,
}

impl Counters {
    fn new() -> Self {
        Counters {
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            expired: AtomicU64::new(0),
            stale: AtomicU64::new(0),
            upstream_calls: AtomicU64::new(0),
            upstream_errors: AtomicU64::new(0),
            cache_errors: AtomicU64::new(0),
            coalesced: AtomicU64::new(0),
            refreshes: AtomicU64::new(0),
            budget_denied: AtomicU64::new(0),
            fallbacks: AtomicU64::new(0),
            fallback_errors: AtomicU64::new(0),
            conflicts: AtomicU64::new(0),
            tampered: AtomicU64::new(0),
            oversized: AtomicU64::new(0),
            oversized_logged: std::sync::atomic::AtomicBool::new(false),
            negative: AtomicU64::new(0),
            hit_latency: Histogram::new(),
            miss_latency: Histogram::new(),
        }
    }

    /// Records one call's latency on the hit path or the miss path (one histogram each, so
    /// that the response-time improvement is `miss / hit`, and a call costs one record).
    pub(crate) fn record_latency(&self, d: Duration, hit: bool) {
        if hit {
            self.hit_latency.record(d)
        } else {
            self.miss_latency.record(d)
        }
    }
}

/// Cache tiers, as the `tier` label of [`ErrorCounts`].
pub(crate) const TIERS: [&str; 2] = ["memory", "redis"];
/// Kinds of cache errors, as the `kind` label: store failures ([`StoreError::kind`](crate::StoreError::kind)),
/// values that do not decode, metadata that cannot be true, values whose signature does not
/// verify, values over the size bound, and keys shared by two value types.
pub(crate) const KINDS: [&str; 10] = [
    "timeout",
    "connection",
    "server",
    "backend",
    "breaker_open",
    "decode",
    "implausible",
    "tampered",
    "oversized",
    "conflict",
];

/// Cache errors of one [`Cache`](crate::Cache) by tier and kind.
#[derive(Debug, Default)]
pub(crate) struct ErrorCounts {
    counts: [[AtomicU64; KINDS.len()]; TIERS.len()],
}

impl ErrorCounts {
    /// Counts one error; an unknown tier or kind is a bug of the caller and is counted nowhere.
    pub(crate) fn record(&self, tier: &str, kind: &str) {
        let (Some(t), Some(k)) = (TIERS.iter().position(|x| *x == tier), KINDS.iter().position(|x| *x == kind)) else {
            debug_assert!(false, "unknown error label {tier}/{kind}");
            return;
        };
        self.counts[t][k].fetch_add(1, Relaxed);
    }

    /// Every (tier, kind, count), zeros included (so that a rate over them starts at 0).
    pub(crate) fn snapshot(&self) -> Vec<(&'static str, &'static str, u64)> {
        let mut out = Vec::with_capacity(TIERS.len() * KINDS.len());
        for (t, tier) in TIERS.iter().enumerate() {
            for (k, kind) in KINDS.iter().enumerate() {
                out.push((*tier, *kind, self.counts[t][k].load(Relaxed)));
            }
        }
        out
    }
}

#[derive(Debug)]
pub(crate) struct Histogram {
    buckets: Box<[AtomicU64]>,
    sum_ns: AtomicU64,
}

impl Histogram {
    pub(crate) fn new() -> Self {
        Histogram { buckets: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(), sum_ns: AtomicU64::new(0) }
    }

    fn index(ns: u64) -> usize {
        if ns < SUB as u64 {
            return ns as usize;
        }
        let log = 63 - ns.leading_zeros() as usize;
        let frac = ((ns >> (log - 2)) & (SUB as u64 - 1)) as usize;
        (log * SUB + frac).min(BUCKETS - 1)
    }

    fn lower_bound(i: usize) -> u64 {
        if i < SUB {
            return i as u64;
        }
        let (log, frac) = (i / SUB, (i % SUB) as u64);
        (1u64 << log) + (frac << (log - 2))
    }

    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) fn snapshot(&self) -> LatencySnapshot {
        self.counts().snapshot()
    }

    pub(crate) fn record(&self, d: Duration) {
        let ns = d.as_nanos().min(u64::MAX as u128) as u64;
        self.buckets[Self::index(ns)].fetch_add(1, Relaxed);
        self.sum_ns.fetch_add(ns, Relaxed);
    }

    fn counts(&self) -> Buckets {
        Buckets { counts: self.buckets.iter().map(|b| b.load(Relaxed)).collect(), sum_ns: self.sum_ns.load(Relaxed) }
    }
}

/// A histogram's bucket counts, kept in a snapshot so that sums over methods can be taken
/// exactly (quantiles do not add up; bucket counts do).
#[derive(Clone, Default, PartialEq)]
struct Buckets {
    counts: Vec<u64>,
    sum_ns: u64,
}

impl std::fmt::Debug for Buckets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("..")
    }
}

impl Buckets {
    fn add(&mut self, other: &Buckets) {
        if self.counts.len() < other.counts.len() {
            self.counts.resize(other.counts.len(), 0);
        }
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        self.sum_ns += other.sum_ns;
    }

    /// Cumulative counts at each bound of `bounds` (seconds, ascending), the sum in seconds and
    /// the count: a Prometheus histogram. A log-linear bucket is counted under the first bound
    /// at or above its upper edge, so no value is ever reported below a bound it may exceed.
    pub(crate) fn cumulative(&self, bounds: &[f64]) -> (Vec<(f64, u64)>, f64, u64) {
        let mut out: Vec<(f64, u64)> = bounds.iter().map(|b| (*b, 0)).collect();
        let mut total = 0;
        for (i, c) in self.counts.iter().enumerate().filter(|(_, c)| **c > 0) {
            total += c;
            let upper = Histogram::lower_bound(i + 1) as f64 / 1e9;
            for (bound, n) in out.iter_mut() {
                if *bound >= upper {
                    *n += c;
                }
            }
        }
        (out, self.sum_ns as f64 / 1e9, total)
    }

    fn snapshot(&self) -> LatencySnapshot {
        let counts = &self.counts;
        let total: u64 = counts.iter().sum();
        let quantile = |q: f64| {
            if total == 0 {
                return Duration::ZERO;
            }
            let target = ((total as f64) * q).ceil().max(1.0) as u64;
            let mut seen = 0;
            for (i, c) in counts.iter().enumerate() {
                seen += c;
                if seen >= target {
                    // midpoint of the bucket
                    let lo = Histogram::lower_bound(i);
                    let hi = Histogram::lower_bound(i + 1).max(lo + 1);
                    return Duration::from_nanos((lo + hi) / 2);
                }
            }
            Duration::ZERO
        };
        LatencySnapshot {
            count: total,
            mean: Duration::from_nanos(self.sum_ns.checked_div(total).unwrap_or(0)),
            p50: quantile(0.50),
            p99: quantile(0.99),
        }
    }
}

/// Latency of calls through a cached method (hits and misses alike), from a log-linear histogram.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct LatencySnapshot {
    /// Calls measured.
    pub count: u64,
    /// Mean latency.
    pub mean: Duration,
    /// Median (±19%).
    pub p50: Duration,
    /// 99th percentile (±19%).
    pub p99: Duration,
}

/// Counters of one cached method, as read by [`Cache::stats`](crate::Cache::stats).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MethodStats {
    /// The service (`coingecko`), from the key template, the impl's type or the module.
    pub service: String,
    /// The method (`price`).
    pub method: String,
    /// Calls answered from the cache (fresh values).
    pub hits: u64,
    /// Calls that found no usable value and ran the function body (or waited for another caller).
    pub misses: u64,
    /// Misses where an expired value was found.
    pub expired: u64,
    /// Misses answered with a stale value (the body failed or the budget said no); counted in
    /// `misses` too.
    pub stale: u64,
    /// Times the function body ran: the upstream calls the cache did not save.
    pub upstream_calls: u64,
    /// Body runs whose result was not cacheable (`Err`, or `None` without `none_ttl`).
    pub upstream_errors: u64,
    /// Upstream calls the budget refused (never sent; served stale or returned as an error).
    pub budget_denied: u64,
    /// Calls whose own answer was an error (nothing cached to serve) and that the function's
    /// `fallback` source answered instead.
    pub fallbacks: u64,
    /// Calls whose `fallback` failed too (the caller got the function's own error).
    pub fallback_errors: u64,
    /// Store failures (Redis down, timeouts, undecodable values); the body ran instead.
    pub cache_errors: u64,
    /// Misses that waited for a concurrent caller's result instead of calling upstream.
    pub coalesced: u64,
    /// Early refreshes (and forced ones, through [`refresh`](crate::refresh)).
    pub refreshes: u64,
    /// Reads that found another function's value type under this key (also in `cache_errors`).
    pub conflicts: u64,
    /// Values in Redis whose signature did not verify (unsigned, edited, copied from another
    /// key), with a signing key configured (also in `cache_errors`).
    pub tampered: u64,
    /// Values over the size bound: computed ones not cached, or stored ones refused unread
    /// (stored ones are also in `cache_errors`).
    pub oversized: u64,
    /// Hits that served a cached "absent" answer (`none_ttl`); counted in `hits` too.
    pub negative: u64,
    /// Latency of all calls.
    pub latency: LatencySnapshot,
    /// Latency of calls answered from a cache tier.
    pub hit_latency: LatencySnapshot,
    /// Latency of the other calls (misses, stale answers, refreshes).
    pub miss_latency: LatencySnapshot,
    buckets: Buckets,
    hit_buckets: Buckets,
    miss_buckets: Buckets,
}

impl MethodStats {
    /// Calls answered from the cache (fresh hits and stale answers) over all calls (0 when
    /// there were none).
    pub fn hit_rate(&self) -> f64 {
        let calls = self.hits + self.misses;
        if calls == 0 {
            0.0
        } else {
            (self.hits + self.stale) as f64 / calls as f64
        }
    }

    /// Calls that did not reach upstream.
    pub fn calls_saved(&self) -> u64 {
        (self.hits + self.misses).saturating_sub(self.upstream_calls)
    }

    /// The hit path's (`true`) or miss path's latency as a Prometheus histogram over `bounds`.
    #[cfg(feature = "prometheus")]
    pub(crate) fn latency_histogram(&self, hit: bool, bounds: &[f64]) -> (Vec<(f64, u64)>, f64, u64) {
        if hit { &self.hit_buckets } else { &self.miss_buckets }.cumulative(bounds)
    }
}

/// A snapshot of every cached method's counters.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Stats {
    /// One row per (service, method), sorted.
    pub methods: Vec<MethodStats>,
}

impl Stats {
    /// The row of one method, if it was called.
    pub fn get(&self, service: &str, method: &str) -> Option<&MethodStats> {
        self.methods.iter().find(|m| m.service == service && m.method == method)
    }

    /// Sums of every counter, per service (`method` = `"*"`), sorted by service.
    pub fn by_service(&self) -> Vec<MethodStats> {
        let mut out: Vec<MethodStats> = Vec::new();
        for m in &self.methods {
            match out.iter_mut().find(|s| s.service == m.service) {
                Some(s) => add(s, m),
                None => {
                    let mut s = MethodStats { service: m.service.clone(), method: "*".into(), ..Default::default() };
                    add(&mut s, m);
                    out.push(s);
                }
            }
        }
        out
    }

    /// Sums of every counter over all methods.
    pub fn total(&self) -> MethodStats {
        let mut t = MethodStats { service: "*".into(), method: "*".into(), ..Default::default() };
        for m in &self.methods {
            add(&mut t, m);
        }
        t
    }
}

fn add(into: &mut MethodStats, m: &MethodStats) {
    into.hits += m.hits;
    into.misses += m.misses;
    into.expired += m.expired;
    into.stale += m.stale;
    into.upstream_calls += m.upstream_calls;
    into.upstream_errors += m.upstream_errors;
    into.cache_errors += m.cache_errors;
    into.coalesced += m.coalesced;
    into.refreshes += m.refreshes;
    into.budget_denied += m.budget_denied;
    into.fallbacks += m.fallbacks;
    into.fallback_errors += m.fallback_errors;
    into.conflicts += m.conflicts;
    into.tampered += m.tampered;
    into.oversized += m.oversized;
    into.negative += m.negative;
    into.buckets.add(&m.buckets);
    into.hit_buckets.add(&m.hit_buckets);
    into.miss_buckets.add(&m.miss_buckets);
    into.latency = into.buckets.snapshot();
    into.hit_latency = into.hit_buckets.snapshot();
    into.miss_latency = into.miss_buckets.snapshot();
}

/// The counters of one [`Cache`](crate::Cache), keyed by (service, method).
#[derive(Debug, Default)]
pub(crate) struct Registry {
    map: RwLock<HashMap<String, HashMap<String, Arc<Counters>>>>,
    /// Cache errors by tier and kind.
    pub(crate) errors: ErrorCounts,
}

impl Registry {
    /// The counters of (service, method), created on first use.
    pub(crate) fn counters(&self, service: &str, method: &str) -> Arc<Counters> {
        if let Some(c) = self.map.read().unwrap_or_else(|e| e.into_inner()).get(service).and_then(|m| m.get(method)) {
            return c.clone();
        }
        let mut map = self.map.write().unwrap_or_else(|e| e.into_inner());
        map.entry(service.to_owned())
            .or_default()
            .entry(method.to_owned())
            .or_insert_with(|| Arc::new(Counters::new()))
            .clone()
    }

    pub(crate) fn snapshot(&self) -> Stats {
        let map = self.map.read().unwrap_or_else(|e| e.into_inner());
        let mut methods: Vec<MethodStats> = map
            .iter()
            .flat_map(|(s, methods)| methods.iter().map(move |(m, c)| (s, m, c)))
            .map(|(s, m, c)| {
                let (hit_buckets, miss_buckets) = (c.hit_latency.counts(), c.miss_latency.counts());
                let mut buckets = hit_buckets.clone();
                buckets.add(&miss_buckets);
                MethodStats {
                    service: s.clone(),
                    method: m.clone(),
                    hits: c.hits.load(Relaxed),
                    misses: c.misses.load(Relaxed),
                    expired: c.expired.load(Relaxed),
                    stale: c.stale.load(Relaxed),
                    upstream_calls: c.upstream_calls.load(Relaxed),
                    upstream_errors: c.upstream_errors.load(Relaxed),
                    cache_errors: c.cache_errors.load(Relaxed),
                    coalesced: c.coalesced.load(Relaxed),
                    refreshes: c.refreshes.load(Relaxed),
                    budget_denied: c.budget_denied.load(Relaxed),
                    fallbacks: c.fallbacks.load(Relaxed),
                    fallback_errors: c.fallback_errors.load(Relaxed),
                    conflicts: c.conflicts.load(Relaxed),
                    tampered: c.tampered.load(Relaxed),
                    oversized: c.oversized.load(Relaxed),
                    negative: c.negative.load(Relaxed),
                    latency: buckets.snapshot(),
                    hit_latency: hit_buckets.snapshot(),
                    miss_latency: miss_buckets.snapshot(),
                    buckets,
                    hit_buckets,
                    miss_buckets,
                }
            })
            .collect();
        methods.sort_by(|a, b| (&a.service, &a.method).cmp(&(&b.service, &b.method)));
        Stats { methods }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_quantiles_are_close() {
        let h = Histogram::new();
        for i in 1..=1000u64 {
            h.record(Duration::from_micros(i));
        }
        let s = h.counts().snapshot();
        assert_eq!(s.count, 1000);
        let p50 = s.p50.as_micros() as f64;
        assert!((400.0..600.0).contains(&p50), "{p50}");
        let p99 = s.p99.as_micros() as f64;
        assert!((800.0..1200.0).contains(&p99), "{p99}");
    }

    #[test]
    fn registry_sums() {
        let r = Registry::default();
        r.counters("a", "x").hits.fetch_add(3, Relaxed);
        r.counters("a", "y").misses.fetch_add(1, Relaxed);
        r.counters("a", "y").upstream_calls.fetch_add(1, Relaxed);
        let s = r.snapshot();
        assert_eq!(s.get("a", "x").unwrap().hits, 3);
        let t = s.total();
        assert_eq!((t.hits, t.misses, t.calls_saved()), (3, 1, 3));
        assert_eq!(s.by_service().len(), 1);
    }

    #[test]
    fn totals_merge_latencies_exactly() {
        let r = Registry::default();
        // 99 fast calls on one method, one slow call on another.
        for _ in 0..99 {
            r.counters("a", "fast").record_latency(Duration::from_micros(10), true);
        }
        r.counters("a", "slow").record_latency(Duration::from_millis(100), false);
        let t = r.snapshot().total();
        assert_eq!(t.latency.count, 100);
        let mean = t.latency.mean.as_secs_f64();
        assert!((0.00099..0.00102).contains(&mean), "mean of 99 x 10 µs + 100 ms is ~1.01 ms: {mean}");
        assert!(t.latency.p99 < Duration::from_micros(20), "99% of calls took 10 µs: {:?}", t.latency.p99);
        assert_eq!(r.snapshot().by_service()[0].latency, t.latency);
        assert_eq!((t.hit_latency.count, t.miss_latency.count), (99, 1));
        assert!(t.miss_latency.p50 > Duration::from_millis(80), "{:?}", t.miss_latency);
    }

    #[test]
    fn cumulative_buckets_never_undercount_a_bound() {
        let h = Histogram::new();
        for us in [5u64, 10, 10, 900, 40_000] {
            h.record(Duration::from_micros(us));
        }
        let bounds = [0.00001, 0.001, 0.05, 1.0];
        let (cum, sum, count) = h.counts().cumulative(&bounds);
        assert_eq!(count, 5);
        assert!((sum - 0.040925).abs() < 1e-9, "{sum}");
        // 5 µs is below 10 µs; the 10 µs values sit in a bucket reaching past it.
        assert_eq!(cum.iter().map(|(_, n)| *n).collect::<Vec<_>>(), vec![1, 4, 5, 5]);
    }

    #[test]
    fn error_counts_by_tier_and_kind() {
        let e = ErrorCounts::default();
        e.record("redis", "timeout");
        e.record("redis", "timeout");
        e.record("memory", "conflict");
        let snap = e.snapshot();
        assert_eq!(snap.len(), TIERS.len() * KINDS.len(), "zeros are reported too");
        let get = |t: &str, k: &str| snap.iter().find(|(a, b, _)| *a == t && *b == k).unwrap().2;
        assert_eq!((get("redis", "timeout"), get("memory", "conflict"), get("redis", "tampered")), (2, 1, 0));
    }
}
