//! Prometheus metrics (feature `prometheus`) and the live dashboard (feature `dashboard`).
//!
//! The [`Exporter`] reads the counters the runtime keeps anyway ([`Cache::stats`], the budgets'
//! counters, the breaker, the memory tier) **at scrape time**, through a `prometheus-client`
//! collector: a cached call pays nothing for being exported. Redis' own figures (`INFO`, the keys
//! under the namespace) come from a background task at a configurable interval, never from the
//! call path.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! use syntra_cache_runtime::{export::Exporter, Cache};
//! let cache = Cache::memory();
//! let exporter = Exporter::new(&cache);
//! let text = exporter.render();
//! assert!(text.contains("# TYPE syntra_cache_memory_entries gauge"));
//! # }
//! ```
//!
//! Every metric is prefixed `syntra_`; labels are `service`, `method`, `result`, `outcome`,
//! `path`, `tier`, `kind`, `budget`, `period`, never a key or an argument. The list, with the
//! PromQL for hit rate and response-time improvement, is in the README's Monitoring section.

#[cfg(feature = "dashboard")]
pub mod dashboard;
mod json;
mod redis_info;

pub use json::StatsView;
pub use redis_info::RedisInfo;

use crate::Cache;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// Bounds of the latency histograms, in seconds: 5 µs (a memory hit) to 10 s (a slow upstream).
pub const LATENCY_BUCKETS: [f64; 20] = [
    0.000_005, 0.000_01, 0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05,
    0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Default interval of the Redis `INFO` poller.
pub const DEFAULT_REDIS_POLL: Duration = Duration::from_secs(15);

/// What the collector reads: the cache and the last Redis poll.
#[derive(Debug)]
pub(crate) struct State {
    pub(crate) cache: Cache,
    pub(crate) redis: RwLock<RedisInfo>,
    pub(crate) started: std::time::Instant,
}

/// Exports a [`Cache`]'s figures in the Prometheus text format. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Exporter {
    state: Arc<State>,
    registry: Arc<Registry>,
}

/// Builds an [`Exporter`].
#[derive(Debug, Clone)]
pub struct ExporterBuilder {
    cache: Cache,
    redis_poll: Duration,
}

impl ExporterBuilder {
    /// How often the background task reads Redis `INFO` and counts the keys under the namespace
    /// (default 15 s; zero turns the poller off).
    pub fn redis_poll_interval(mut self, every: Duration) -> Self {
        self.redis_poll = every;
        self
    }

    /// The exporter. With a Redis tier and a poll interval, starts the `INFO` poller on the
    /// current Tokio runtime (it stops when the last clone of the exporter is dropped); outside
    /// a runtime the Redis figures stay at "not polled".
    pub fn build(self) -> Exporter {
        let configured = self.cache.has_remote();
        let state = Arc::new(State {
            cache: self.cache,
            redis: RwLock::new(RedisInfo { configured, ..RedisInfo::default() }),
            started: std::time::Instant::now(),
        });
        let mut registry = Registry::with_prefix("syntra");
        registry.register_collector(Box::new(CacheCollector(state.clone())));
        if !self.redis_poll.is_zero() && tokio::runtime::Handle::try_current().is_ok() {
            redis_info::spawn_poller(Arc::downgrade(&state), self.redis_poll);
        }
        Exporter { state, registry: Arc::new(registry) }
    }
}

impl Exporter {
    /// An exporter with the default settings (see [`ExporterBuilder`]).
    pub fn new(cache: &Cache) -> Exporter {
        Self::builder(cache).build()
    }

    /// A builder for `cache`.
    pub fn builder(cache: &Cache) -> ExporterBuilder {
        ExporterBuilder { cache: cache.clone(), redis_poll: DEFAULT_REDIS_POLL }
    }

    /// The cache it exports.
    pub fn cache(&self) -> &Cache {
        &self.state.cache
    }

    /// Every metric, in the Prometheus text format (version 0.0.4).
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(16 * 1024);
        prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }

    /// The `Content-Type` of [`render`](Self::render)'s output.
    pub const CONTENT_TYPE: &'static str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

    /// A collector to register in an application's own `prometheus-client` registry (with the
    /// prefix `syntra` to get the documented names) instead of using [`render`](Self::render).
    pub fn collector(&self) -> Box<dyn Collector> {
        Box::new(CacheCollector(self.state.clone()))
    }

    /// What the last Redis poll found.
    pub fn redis_info(&self) -> RedisInfo {
        self.state.redis.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Polls Redis now (what the background task does every interval).
    pub async fn poll_redis(&self) {
        redis_info::poll_once(&self.state).await;
    }

    /// Every figure as one JSON-serializable value (the dashboard's `/api/stats`).
    pub fn stats_view(&self) -> StatsView {
        json::view(&self.state)
    }
}

type Labels = Vec<(&'static str, String)>;

/// Reads the cache's counters on each scrape.
#[derive(Debug)]
struct CacheCollector(Arc<State>);

fn lbl(pairs: &[(&'static str, &str)]) -> Labels {
    pairs.iter().map(|(k, v)| (*k, (*v).to_owned())).collect()
}

/// One metric family: a descriptor, then one sample per label set.
fn family<V>(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    ty: MetricType,
    rows: &[(Labels, V)],
    sample: impl Fn(&mut MetricEncoder, &V) -> std::fmt::Result,
) -> std::fmt::Result {
    if rows.is_empty() {
        return Ok(());
    }
    let mut m = enc.encode_descriptor(name, help, None, ty)?;
    for (labels, v) in rows {
        if labels.is_empty() {
            sample(&mut m, v)?;
        } else {
            sample(&mut m.encode_family(labels)?, v)?;
        }
    }
    Ok(())
}

fn counters(enc: &mut DescriptorEncoder, name: &str, help: &str, rows: &[(Labels, u64)]) -> std::fmt::Result {
    family(enc, name, help, MetricType::Counter, rows, |m, v| m.encode_counter::<NoLabelSet, u64, f64>(v, None))
}

fn gauges(enc: &mut DescriptorEncoder, name: &str, help: &str, rows: &[(Labels, f64)]) -> std::fmt::Result {
    family(enc, name, help, MetricType::Gauge, rows, |m, v| m.encode_gauge(v))
}

impl Collector for CacheCollector {
    fn encode(&self, mut enc: DescriptorEncoder) -> std::fmt::Result {
        let state = &self.0;
        let cache = &state.cache;
        let stats = cache.stats();
        let e = &mut enc;

        // Per method.
        let (mut gets, mut upstream, mut saved, mut coalesced, mut refreshes, mut expired) =
            (vec![], vec![], vec![], vec![], vec![], vec![]);
        let mut fallbacks = vec![];
        let mut latency = vec![];
        for m in &stats.methods {
            let (s, me) = (m.service.as_str(), m.method.as_str());
            let with = |k: &'static str, v: &str| lbl(&[("service", s), ("method", me), (k, v)]);
            gets.push((with("result", "hit"), m.hits.saturating_sub(m.negative)));
            gets.push((with("result", "negative"), m.negative));
            gets.push((with("result", "miss"), m.misses.saturating_sub(m.stale)));
            gets.push((with("result", "stale"), m.stale));
            let ok = m.upstream_calls.saturating_sub(m.upstream_errors);
            upstream.push((with("outcome", "ok"), ok));
            upstream.push((with("outcome", "error"), m.upstream_errors));
            upstream.push((with("outcome", "denied"), m.budget_denied));
            let sm = lbl(&[("service", s), ("method", me)]);
            saved.push((sm.clone(), m.calls_saved()));
            coalesced.push((sm.clone(), m.coalesced));
            refreshes.push((sm.clone(), m.refreshes));
            fallbacks.push((with("outcome", "ok"), m.fallbacks));
            fallbacks.push((with("outcome", "error"), m.fallback_errors));
            expired.push((sm, m.expired));
            for (path, hit) in [("hit", true), ("miss", false)] {
                latency.push((with("path", path), m.latency_histogram(hit, &LATENCY_BUCKETS)));
            }
        }
        counters(e, "cache_gets", "Calls through cached functions by result: hit (fresh), negative (a cached absent answer), miss (ran or waited for the body), stale (answered with the last value after a failure or a budget denial). They add up to all calls.", &gets)?;
        counters(e, "cache_coalesced", "Of the gets, those that waited for a concurrent caller's computation (this process or another instance) instead of calling upstream.", &coalesced)?;
        counters(e, "cache_upstream_calls", "Upstream calls by outcome: ok (cacheable result), error (not cacheable), denied (refused by the budget, never sent).", &upstream)?;
        counters(e, "cache_calls_saved", "Calls answered without calling upstream.", &saved)?;
        counters(e, "cache_refreshes", "Early and forced refreshes.", &refreshes)?;
        counters(e, "cache_fallbacks", "Failed calls (nothing cached to serve) handed to the function's fallback source, by its outcome: ok (it answered), error (the caller got the function's own error).", &fallbacks)?;
        counters(e, "cache_expired", "Misses that found an expired value.", &expired)?;
        family(
            e,
            "cache_call_duration_seconds",
            "Latency of calls through cached functions, on the hit path (answered from a cache tier) and the miss path.",
            MetricType::Histogram,
            &latency,
            |m, (cum, sum, count)| {
                // The encoder wants per-bucket counts; ours are cumulative.
                let mut prev = 0;
                let buckets: Vec<(f64, u64)> = cum
                    .iter()
                    .map(|(b, n)| {
                        let d = n - prev;
                        prev = *n;
                        (*b, d)
                    })
                    .collect();
                m.encode_histogram::<NoLabelSet>(*sum, *count, &buckets, None)
            },
        )?;

        // Per cache.
        let errors: Vec<(Labels, u64)> = cache
            .inner
            .metrics
            .errors
            .snapshot()
            .into_iter()
            .map(|(tier, kind, n)| (lbl(&[("tier", tier), ("kind", kind)]), n))
            .collect();
        counters(e, "cache_errors", "Cache errors by tier and kind (timeout, connection, server reply, breaker_open skips, decode, implausible metadata, tampered values, key conflicts); the call went on without the tier.", &errors)?;
        let mut open = vec![];
        // The budgets' shared Redis backend has its own breaker (decisions go in-process while open).
        if let Some(b) = cache.budgets().filter(|b| b.is_shared()) {
            open.push((lbl(&[("tier", "budgets")]), f64::from(u8::from(b.shared_skipped()))));
        }
        if let Some(remote) = &cache.inner.tiers.remote {
            let tier = lbl(&[("tier", "redis")]);
            open.push((tier.clone(), f64::from(u8::from(remote.is_open()))));
            counters(
                e,
                "cache_breaker_opened",
                "Times the tier's circuit breaker opened.",
                &[(tier, remote.times_opened())],
            )?;
        }
        gauges(
            e,
            "cache_breaker_open",
            "1 while the circuit breaker of the tier (redis: the cache tier; budgets: the budgets' Redis backend) is open and it is skipped.",
            &open,
        )?;
        let (entries, (size, expired)) = match &cache.inner.tiers.local {
            Some(l) => (l.len(), l.evictions()),
            None => (0, (0, 0)),
        };
        gauges(e, "cache_memory_entries", "Entries in the in-process tier.", &[(vec![], entries as f64)])?;
        counters(
            e,
            "cache_evictions",
            "Entries the in-process tier dropped: size (evicted to stay within capacity), expired.",
            &[
                (lbl(&[("tier", "memory"), ("cause", "size")]), size),
                (lbl(&[("tier", "memory"), ("cause", "expired")]), expired),
            ],
        )?;

        // Budgets.
        if let Some(enforcer) = cache.budgets() {
            let snap = enforcer.snapshot();
            let by = |f: &dyn Fn(&crate::budget::BudgetStats) -> u64| -> Vec<(Labels, u64)> {
                snap.iter().map(|b| (lbl(&[("budget", &b.name)]), f(b))).collect()
            };
            counters(e, "budget_granted", "Upstream calls the budget allowed.", &by(&|b| b.granted))?;
            counters(e, "budget_denied", "Upstream calls the budget refused.", &by(&|b| b.denied))?;
            counters(e, "budget_waits", "Acquires that waited for a permit.", &by(&|b| b.waits))?;
            counters(e, "budget_backoffs", "429 answers that made the budget back off.", &by(&|b| b.backoffs))?;
            counters(
                e,
                "budget_fallback",
                "Decisions made in-process because the budgets' Redis was unavailable.",
                &by(&|b| b.fallback),
            )?;
            counters(
                e,
                "budget_stale_served",
                "Stale values served because the budget said no.",
                &by(&|b| b.stale_served),
            )?;
            counters(e, "budget_weight_used", "Weight consumed by the granted calls.", &by(&|b| b.weight_used))?;
            let stretch: Vec<(Labels, f64)> = snap.iter().map(|b| (lbl(&[("budget", &b.name)]), b.stretch)).collect();
            gauges(
                e,
                "budget_ttl_stretch",
                "Current TTL stretch of the budget's cached functions (1 = none).",
                &stretch,
            )?;
            let (mut quota, mut used, mut projected) = (vec![], vec![], vec![]);
            for b in &snap {
                for (period, q, u, p) in [
                    ("day", b.day_quota, b.day_used, b.projected_day),
                    ("month", b.month_quota, b.month_used, b.projected_month),
                ] {
                    let Some(q) = q else { continue };
                    let l = lbl(&[("budget", &b.name), ("period", period)]);
                    quota.push((l.clone(), q as f64));
                    used.push((l.clone(), u.unwrap_or(0) as f64));
                    projected.push((l, p.unwrap_or(0) as f64));
                }
            }
            gauges(e, "budget_quota", "The budget's quota for the period (UTC day or month).", &quota)?;
            gauges(e, "budget_quota_used", "Weight used in the current period, by every instance.", &used)?;
            gauges(
                e,
                "budget_quota_projected",
                "Use projected to the end of the period at the burn rate so far.",
                &projected,
            )?;
            let mut rates = vec![];
            for b in enforcer.budgets().iter() {
                for r in &b.rates {
                    let window = format!("{}", r.per.as_secs_f64());
                    rates.push((vec![("budget", b.name.clone()), ("window_seconds", window)], f64::from(r.limit)));
                }
            }
            gauges(
                e,
                "budget_rate_limit",
                "Calls (weight) the budget allows per window (the provider's free-tier limit).",
                &rates,
            )?;
        }

        // Redis, from the last poll (nothing before the first one: no invented `up 0`).
        let info = state.redis.read().unwrap_or_else(|e| e.into_inner()).clone();
        if info.configured && info.polled {
            let one = |v: u64| [(vec![], v as f64)];
            gauges(e, "redis_up", "1 if the last INFO poll of Redis succeeded.", &one(u64::from(info.up)))?;
            gauges(e, "redis_used_memory_bytes", "Redis used_memory at the last poll.", &one(info.used_memory))?;
            gauges(
                e,
                "redis_maxmemory_bytes",
                "Redis maxmemory at the last poll (0: no limit).",
                &one(info.maxmemory),
            )?;
            counters(
                e,
                "redis_evicted_keys",
                "Keys Redis evicted under maxmemory since it started.",
                &[(vec![], info.evicted_keys)],
            )?;
            gauges(e, "redis_connected_clients", "Clients connected to Redis.", &one(info.connected_clients))?;
            gauges(
                e,
                "redis_namespace_keys",
                "Cache entries under the namespace (SCAN count at the last poll).",
                &one(info.namespace_keys),
            )?;
            gauges(
                e,
                "redis_last_poll_age_seconds",
                "Seconds since the last successful INFO poll.",
                &[(vec![], info.age_seconds(state.started))],
            )?;
        }
        Ok(())
    }
}
