//! The JSON view of every figure (`/api/stats`).

use super::{RedisInfo, State};
use crate::metrics::{LatencySnapshot, MethodStats};
use serde::Serialize;

/// Every figure of a cache at one instant, for dashboards and scripts.
#[derive(Debug, Clone, Serialize)]
pub struct StatsView {
    /// Seconds since the exporter started.
    pub uptime_seconds: f64,
    /// The key namespace.
    pub namespace: String,
    /// Sums over every method.
    pub total: MethodView,
    /// Sums per service.
    pub services: Vec<MethodView>,
    /// One row per (service, method).
    pub methods: Vec<MethodView>,
    /// Every budget.
    pub budgets: Vec<BudgetView>,
    /// The in-process tier.
    pub memory: MemoryView,
    /// The Redis tier: last poll and breaker.
    pub redis: RedisView,
    /// Cache errors by tier and kind (non-zero only).
    pub errors: Vec<ErrorView>,
}

/// Counters of one method (or a sum), with latencies in milliseconds.
#[derive(Debug, Clone, Serialize)]
#[allow(missing_docs)]
pub struct MethodView {
    pub service: String,
    pub method: String,
    pub calls: u64,
    pub hits: u64,
    pub negative: u64,
    pub misses: u64,
    pub stale: u64,
    pub coalesced: u64,
    pub expired: u64,
    pub refreshes: u64,
    pub upstream_calls: u64,
    pub upstream_errors: u64,
    pub budget_denied: u64,
    pub fallbacks: u64,
    pub fallback_errors: u64,
    pub cache_errors: u64,
    pub calls_saved: u64,
    /// (hits + stale) / calls.
    pub hit_rate: f64,
    pub hit_p50_ms: f64,
    pub hit_p99_ms: f64,
    pub miss_p50_ms: f64,
    pub miss_p99_ms: f64,
}

/// One budget's counters and pacing.
#[derive(Debug, Clone, Serialize)]
#[allow(missing_docs)]
pub struct BudgetView {
    pub name: String,
    pub granted: u64,
    pub denied: u64,
    pub waits: u64,
    pub backoffs: u64,
    pub stale_served: u64,
    pub ttl_stretch: f64,
    pub day_quota: Option<u64>,
    pub day_used: Option<u64>,
    pub projected_day: Option<u64>,
    pub month_quota: Option<u64>,
    pub month_used: Option<u64>,
    pub projected_month: Option<u64>,
    /// Rate limits as `(limit, window in seconds)`.
    pub rates: Vec<(u32, f64)>,
}

/// The in-process tier.
#[derive(Debug, Clone, Serialize)]
#[allow(missing_docs)]
pub struct MemoryView {
    pub enabled: bool,
    pub entries: u64,
    pub evicted_size: u64,
    pub evicted_expired: u64,
}

/// The Redis tier.
#[derive(Debug, Clone, Serialize)]
#[allow(missing_docs)]
pub struct RedisView {
    #[serde(flatten)]
    pub info: RedisInfo,
    pub breaker_open: bool,
    pub breaker_opened: u64,
}

/// Errors of one tier and kind.
#[derive(Debug, Clone, Serialize)]
#[allow(missing_docs)]
pub struct ErrorView {
    pub tier: &'static str,
    pub kind: &'static str,
    pub count: u64,
}

fn ms(l: &LatencySnapshot, p99: bool) -> f64 {
    (if p99 { l.p99 } else { l.p50 }).as_secs_f64() * 1000.0
}

fn method(m: &MethodStats) -> MethodView {
    MethodView {
        service: m.service.clone(),
        method: m.method.clone(),
        calls: m.hits + m.misses,
        hits: m.hits,
        negative: m.negative,
        misses: m.misses,
        stale: m.stale,
        coalesced: m.coalesced,
        expired: m.expired,
        refreshes: m.refreshes,
        upstream_calls: m.upstream_calls,
        upstream_errors: m.upstream_errors,
        budget_denied: m.budget_denied,
        fallbacks: m.fallbacks,
        fallback_errors: m.fallback_errors,
        cache_errors: m.cache_errors,
        calls_saved: m.calls_saved(),
        hit_rate: m.hit_rate(),
        hit_p50_ms: ms(&m.hit_latency, false),
        hit_p99_ms: ms(&m.hit_latency, true),
        miss_p50_ms: ms(&m.miss_latency, false),
        miss_p99_ms: ms(&m.miss_latency, true),
    }
}

pub(crate) fn view(state: &State) -> StatsView {
    let cache = &state.cache;
    let stats = cache.stats();
    let budgets = match cache.budgets() {
        Some(enforcer) => enforcer
            .snapshot()
            .into_iter()
            .map(|b| {
                let rates = enforcer
                    .budgets()
                    .get(&b.name)
                    .map(|c| c.rates.iter().map(|r| (r.limit, r.per.as_secs_f64())).collect())
                    .unwrap_or_default();
                BudgetView {
                    name: b.name,
                    granted: b.granted,
                    denied: b.denied,
                    waits: b.waits,
                    backoffs: b.backoffs,
                    stale_served: b.stale_served,
                    ttl_stretch: b.stretch,
                    day_quota: b.day_quota,
                    day_used: b.day_used,
                    projected_day: b.projected_day,
                    month_quota: b.month_quota,
                    month_used: b.month_used,
                    projected_month: b.projected_month,
                    rates,
                }
            })
            .collect(),
        None => vec![],
    };
    let local = cache.inner.tiers.local.as_ref();
    let (evicted_size, evicted_expired) = local.map_or((0, 0), |l| l.evictions());
    let remote = cache.inner.tiers.remote.as_ref();
    StatsView {
        uptime_seconds: state.started.elapsed().as_secs_f64(),
        namespace: cache.namespace().to_owned(),
        total: method(&stats.total()),
        services: stats.by_service().iter().map(method).collect(),
        methods: stats.methods.iter().map(method).collect(),
        budgets,
        memory: MemoryView {
            enabled: local.is_some(),
            entries: local.map_or(0, |l| l.len()),
            evicted_size,
            evicted_expired,
        },
        redis: RedisView {
            info: state.redis.read().unwrap_or_else(|e| e.into_inner()).clone(),
            breaker_open: remote.is_some_and(|r| r.is_open()),
            breaker_opened: remote.map_or(0, |r| r.times_opened()),
        },
        errors: cache
            .inner
            .metrics
            .errors
            .snapshot()
            .into_iter()
            .filter(|(_, _, n)| *n > 0)
            .map(|(tier, kind, count)| ErrorView { tier, kind, count })
            .collect(),
    }
}
