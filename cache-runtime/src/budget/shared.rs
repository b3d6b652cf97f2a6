//! The shared budget in Redis, the [`Backend`] asked first when Redis is configured: one atomic
//! Lua script per acquire, the 429 hold, and the runtime's [`Breaker`] that skips Redis for a
//! cool-down after repeated failures.

use super::backend::{Acquire, Backend, Hold, Verdict};
use super::config::Budget;
use super::decision::{Decider, Denied, Limit, Permit, QuotaPeriod};
use super::period::Period;
use super::slot::Slot;
use crate::breaker::{Breaker, BreakerConfig};
use crate::connection::{bounded, Link, RedisConn, Scan};
use crate::error::StoreError;
use crate::store::BoxFuture;
use redis::aio::ConnectionManager;
use redis::Script;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering::*};
use std::time::Duration;

/// The acquire script. See the module documentation of `budget` for its semantics.
///
/// KEYS: hold, one key per rate limit, the day counter, the month counter.
/// ARGV: weight, number of rate limits, then `interval_us window_us` per rate limit, then
/// `day_limit day_end_ms day_pending month_limit month_end_ms month_pending` (limit -1: none).
/// Reply: `{allowed, retry_after_ms, which, index, day_used, month_used}` with `which` 0 (none),
/// 1 (hold), 2 (rate limit `index`), 3 (day quota), 4 (month quota); use -1 without a quota.
pub(crate) const ACQUIRE_LUA: &str = r#"
if redis.replicate_commands then pcall(redis.replicate_commands) end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local now_ms = math.floor(now / 1000)
local w = tonumber(ARGV[1])
local n = tonumber(ARGV[2])
local q = 3 + 2 * n
local day_key, month_key = KEYS[n + 2], KEYS[n + 3]
local day_limit, day_end = tonumber(ARGV[q]), tonumber(ARGV[q + 1])
local month_limit, month_end = tonumber(ARGV[q + 3]), tonumber(ARGV[q + 4])

local function ttl(end_ms)
  local left = end_ms - now_ms
  if left < 1000 then left = 1000 end
  return left
end

local function used(key, limit, end_ms, pending)
  if limit < 0 then return -1 end
  if pending > 0 then
    redis.call('INCRBY', key, pending)
    redis.call('PEXPIRE', key, ttl(end_ms))
  end
  return tonumber(redis.call('GET', key) or '0')
end

local day_used = used(day_key, day_limit, day_end, tonumber(ARGV[q + 2]))
local month_used = used(month_key, month_limit, month_end, tonumber(ARGV[q + 5]))

local hold = redis.call('PTTL', KEYS[1])
if hold > 0 then return {0, hold, 1, 0, day_used, month_used} end

local retry_us, which, index = 0, 0, 0
local tats = {}
for i = 1, n do
  local interval, window = tonumber(ARGV[1 + 2 * i]), tonumber(ARGV[2 + 2 * i])
  local tat = tonumber(redis.call('GET', KEYS[1 + i]) or '0')
  if tat < now then tat = now end
  local new_tat = tat + w * interval
  local allow_at = new_tat - window
  if allow_at > now and allow_at - now > retry_us then
    retry_us, which, index = allow_at - now, 2, i - 1
  end
  tats[i] = new_tat
end
local retry_ms = math.ceil(retry_us / 1000)
if day_limit >= 0 and day_used + w > day_limit then
  local r = math.max(day_end - now_ms, 1)
  if which == 0 or r > retry_ms then retry_ms, which, index = r, 3, 0 end
end
if month_limit >= 0 and month_used + w > month_limit then
  local r = math.max(month_end - now_ms, 1)
  if which == 0 or r > retry_ms then retry_ms, which, index = r, 4, 0 end
end
if which ~= 0 then return {0, retry_ms, which, index, day_used, month_used} end

for i = 1, n do
  local px = math.ceil((tats[i] - now) / 1000)
  if px > 0 then redis.call('SET', KEYS[1 + i], string.format('%.0f', tats[i]), 'PX', px) end
end
if w > 0 and day_limit >= 0 then
  day_used = redis.call('INCRBY', day_key, w)
  redis.call('PEXPIRE', day_key, ttl(day_end))
end
if w > 0 and month_limit >= 0 then
  month_used = redis.call('INCRBY', month_key, w)
  redis.call('PEXPIRE', month_key, ttl(month_end))
end
return {1, 0, 0, 0, day_used, month_used}
"#;

/// Sets the hold key for ARGV[1] ms unless it already lasts longer.
const HOLD_LUA: &str = r#"
local ms = tonumber(ARGV[1])
if redis.call('PTTL', KEYS[1]) < ms then redis.call('SET', KEYS[1], '1', 'PX', ms) end
return 1
"#;

/// What the acquire script decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Reply {
    pub(crate) allowed: bool,
    pub(crate) retry_after_ms: u64,
    pub(crate) which: Which,
    pub(crate) day_used: Option<u64>,
    pub(crate) month_used: Option<u64>,
}

/// The limit that refused, as the script reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Which {
    None,
    Hold,
    Rate(usize),
    Day,
    Month,
}

impl Reply {
    fn parse(v: &[i64]) -> Result<Reply, StoreError> {
        let [allowed, retry, which, index, day, month] = v else {
            return Err(StoreError::Backend(format!("unexpected budget script reply {v:?}")));
        };
        let which = match which {
            0 => Which::None,
            1 => Which::Hold,
            2 => Which::Rate(usize::try_from(*index).unwrap_or(0)),
            3 => Which::Day,
            4 => Which::Month,
            other => return Err(StoreError::Backend(format!("unexpected budget script verdict {other}"))),
        };
        let opt = |n: i64| u64::try_from(n).ok();
        Ok(Reply {
            allowed: *allowed == 1,
            retry_after_ms: u64::try_from(*retry).unwrap_or(0),
            which,
            day_used: opt(*day),
            month_used: opt(*month),
        })
    }

    /// The limit that refused, in the terms of `budget` ([`Limit::Backoff`] for a hold).
    fn limit(&self, budget: &Budget) -> Limit {
        let quota = |period: QuotaPeriod, used: Option<u64>| Limit::Quota {
            period,
            limit: budget.quota(period).unwrap_or(0),
            used: used.unwrap_or(0),
        };
        match self.which {
            Which::Rate(i) => match budget.rates.get(i) {
                Some(r) => Limit::Rate { limit: r.limit, per: r.per },
                None => Limit::Backoff,
            },
            Which::Day => quota(QuotaPeriod::Day, self.day_used),
            Which::Month => quota(QuotaPeriod::Month, self.month_used),
            Which::Hold | Which::None => Limit::Backoff,
        }
    }
}

/// One acquire's inputs.
#[derive(Debug)]
pub(crate) struct Request<'a> {
    pub(crate) hold_key: &'a str,
    pub(crate) rate_keys: &'a [String],
    /// `(interval_us, window_us)` per rate key.
    pub(crate) gcras: Vec<(u64, u64)>,
    pub(crate) weight: u32,
    /// `(key, limit, end_ms, pending)`, limit -1 without a quota.
    pub(crate) day: (String, i64, u64, u64),
    pub(crate) month: (String, i64, u64, u64),
}

/// How the Redis connection is obtained.
pub(crate) enum Conn {
    /// The runtime's connection helper: from a URL or client, or the Redis tier's own (boxed: it
    /// is far larger than a manager).
    Redis(Box<RedisConn>),
    /// A manager given by the application.
    Manager(ConnectionManager),
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Conn::Redis(c) => c.fmt(f),
            Conn::Manager(_) => f.write_str("Conn::Manager"),
        }
    }
}

/// Settings of the shared backend.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SharedConfig {
    pub(crate) op_timeout: Duration,
    pub(crate) breaker: BreakerConfig,
}

/// The shared backend: connection, scripts, timeout and the runtime's breaker.
#[derive(Debug)]
pub(crate) struct Shared {
    conn: Conn,
    config: SharedConfig,
    acquire: Script,
    hold: Script,
    breaker: Breaker,
    degraded: AtomicBool,
}

impl Shared {
    pub(crate) fn new(conn: Conn, config: SharedConfig) -> Self {
        Shared {
            conn,
            config,
            acquire: Script::new(ACQUIRE_LUA),
            hold: Script::new(HOLD_LUA),
            breaker: Breaker::new("budgets", config.breaker),
            degraded: AtomicBool::new(false),
        }
    }

    async fn link(&self) -> Result<Link, StoreError> {
        match &self.conn {
            Conn::Manager(m) => Ok(Link::Single(m.clone())),
            Conn::Redis(c) => c.link().await,
        }
    }

    /// Runs `op` on a connection if the breaker allows it, bounded by the timeout. Like
    /// `RedisConn::run`, a probe that only meets the refusal recorded while Redis was down tries
    /// once more on the reconnection that refusal started.
    async fn call<T, F, Fut>(&self, op: F) -> Result<T, StoreError>
    where
        F: Fn(Link) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        self.call_once(|c| {
            let op = &op;
            async move {
                match op(c.clone()).await {
                    Err(e) if e.is_connection_refusal() => op(c).await,
                    other => other,
                }
            }
        })
        .await
    }

    /// [`call`](Self::call) for an `op` that can run only once (it holds a `&mut`): no retry. A
    /// caller cancelled mid-call drops its breaker trial, which hands a probe back.
    async fn call_once<T, F, Fut>(&self, op: F) -> Result<T, StoreError>
    where
        F: FnOnce(Link) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        let trial = self.breaker.admit().map_err(|_| StoreError::BreakerOpen)?;
        let result = match self.link().await {
            Ok(c) => bounded(self.config.op_timeout, op(c)).await,
            Err(e) => Err(e),
        };
        match &result {
            Err(e) => {
                // An error reply (NOPERM, OOM, NOSCRIPT after a flush redis-rs could not fix) is
                // not an outage of the connection: it must not open the breaker.
                if e.is_outage() {
                    trial.failure(e);
                } else {
                    trial.success();
                }
                if !self.degraded.swap(true, AcqRel) {
                    tracing::warn!(target: "syntra_cache", error = %e, "Budget: Redis unavailable, budgets decided in-process (each instance may spend the full budget)");
                }
            }
            Ok(_) => {
                trial.success();
                if self.degraded.swap(false, AcqRel) {
                    tracing::info!(target: "syntra_cache", "Budget: Redis is back, budgets shared again");
                }
            }
        }
        result
    }

    /// Runs the acquire script.
    async fn invoke_acquire(&self, req: &Request<'_>) -> Result<Reply, StoreError> {
        let mut inv = self.acquire.prepare_invoke();
        inv.key(req.hold_key);
        for k in req.rate_keys {
            inv.key(k);
        }
        inv.key(&req.day.0).key(&req.month.0);
        inv.arg(req.weight).arg(req.rate_keys.len());
        for (interval, window) in &req.gcras {
            inv.arg(interval).arg(window);
        }
        for (_, limit, end_ms, pending) in [&req.day, &req.month] {
            inv.arg(limit).arg(end_ms).arg(pending);
        }
        let reply: Vec<i64> = self
            .call(|mut c| {
                let inv = &inv;
                async move { inv.invoke_async(&mut c).await }
            })
            .await?;
        Reply::parse(&reply)
    }

    /// Sets the 429 hold key for `ms` (unless it already lasts longer).
    async fn invoke_hold(&self, key: &str, ms: u64) -> Result<(), StoreError> {
        let mut inv = self.hold.prepare_invoke();
        inv.key(key).arg(ms.max(1));
        self.call(|mut c| {
            let inv = &inv;
            async move { inv.invoke_async::<i64>(&mut c).await }
        })
        .await
        .map(|_| ())
    }
}

impl Backend for Shared {
    /// The shared decision. Weight granted locally during an outage goes to the shared quota
    /// counters with this call (and back to the local pending count if the call fails); the quota
    /// use Redis reports feeds the local counters (for pacing and the next fallback).
    fn acquire<'a>(&'a self, req: Acquire<'a>) -> BoxFuture<'a, Result<Verdict, StoreError>> {
        Box::pin(async move {
            if self.is_skipped() {
                return Err(StoreError::BreakerOpen);
            }
            let Acquire { slot, weight, now_us } = req;
            let name = slot.name();
            let periods = [QuotaPeriod::Day, QuotaPeriod::Month].map(|k| (k, Period::of(k, now_us)));
            let pending = {
                let mut st = slot.lock();
                periods.map(|(k, p)| std::mem::take(&mut st.count(k).roll(p.id).pending))
            };
            let quota_arg = |i: usize| {
                let (kind, p) = periods[i];
                let key = format!("{}:{kind}:{}", slot.prefix, p.key_id(kind));
                match slot.c.budget.quota(kind) {
                    Some(limit) => (key, i64::try_from(limit).unwrap_or(i64::MAX), p.end_ms(), pending[i]),
                    None => (key, -1, 0, 0),
                }
            };
            let script = Request {
                hold_key: &slot.hold_key,
                rate_keys: &slot.rate_keys,
                gcras: slot.c.gcras.iter().map(|g| (g.interval_us, g.window_us)).collect(),
                weight,
                day: quota_arg(0),
                month: quota_arg(1),
            };
            let reply = self.invoke_acquire(&script).await;
            let mut st = slot.lock();
            let reply = match reply {
                Ok(r) => r,
                Err(e) => {
                    tracing::debug!(target: "syntra_cache", budget = name, error = %e, "Budget: shared decision failed, deciding in-process");
                    for (i, (kind, p)) in periods.into_iter().enumerate() {
                        let count = st.count(kind);
                        if count.period == p.id {
                            count.pending += pending[i];
                        }
                    }
                    return Err(e);
                }
            };
            for ((kind, p), used) in periods.into_iter().zip([reply.day_used, reply.month_used]) {
                if let Some(used) = used {
                    let pending = st.count(kind).roll(p.id).pending;
                    st.set_used(kind, &p, used + pending, now_us);
                }
            }
            if reply.allowed {
                st.consume_rates(&slot.c, now_us, weight);
                return Ok(Ok(Permit { weight, decided_by: Decider::Shared, waited: Duration::ZERO }));
            }
            let retry = Duration::from_millis(reply.retry_after_ms);
            if let Which::Hold | Which::None = reply.which {
                // Another instance saw a 429: skip Redis for this budget until the hold ends.
                st.hold_until(now_us.saturating_add(u64::try_from(retry.as_micros()).unwrap_or(u64::MAX)));
            }
            Ok(Err(Denied::new(name, reply.limit(&slot.c.budget), retry)))
        })
    }

    /// Sets the shared hold key `{ns}::budget:{name}:hold` with `PX` = the hold's length in ms.
    fn hold<'a>(&'a self, req: Hold<'a>) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(self.invoke_hold(&req.slot.hold_key, req.length.as_millis() as u64))
    }

    fn reset<'a>(&'a self, slot: &'a Slot) -> BoxFuture<'a, Result<(), StoreError>> {
        // Every key of the budget (rates, hold, day and month counters) is under `{prefix}:`;
        // on a cluster they share the budget's hash tag, but SCAN asks every master anyway.
        Box::pin(async move {
            let pattern = format!("{}:*", crate::key::glob_escape(&slot.prefix));
            let mut scan = self
                .call(|mut c| {
                    let pattern = &pattern;
                    async move { Scan::start(&mut c, pattern).await }
                })
                .await?;
            loop {
                let page = self
                    .call_once(|mut c| {
                        let scan = &mut scan;
                        async move { scan.next(&mut c).await }
                    })
                    .await?;
                let Some(keys) = page else { return Ok(()) };
                if !keys.is_empty() {
                    self.call(|mut c| {
                        let keys = &keys;
                        async move { redis::cmd("UNLINK").arg(keys).query_async::<u64>(&mut c).await }
                    })
                    .await?;
                }
            }
        })
    }

    fn is_skipped(&self) -> bool {
        self.breaker.peek().is_err()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_parse() {
        let r = Reply::parse(&[0, 1200, 2, 1, -1, 42]).unwrap();
        assert_eq!(
            r,
            Reply { allowed: false, retry_after_ms: 1200, which: Which::Rate(1), day_used: None, month_used: Some(42) }
        );
        assert!(Reply::parse(&[1, 0]).is_err());
        assert!(Reply::parse(&[0, 0, 9, 0, 0, 0]).is_err());
    }
}
