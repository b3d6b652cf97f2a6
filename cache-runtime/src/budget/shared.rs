//! The shared budget in Redis: one atomic Lua script per acquire, the 429 hold, and a small
//! breaker that skips Redis for a cool-down after repeated failures.

use crate::error::StoreError;
use crate::store::redis::RedisStore;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Client, Script};
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering::*};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

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
    /// A client; the lazily connected manager is created on first use (inside the runtime).
    Client(Client, OnceLock<ConnectionManager>),
    /// A manager given by the application.
    Manager(ConnectionManager),
    /// The connection of the cache's Redis tier.
    Store(RedisStore),
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the URL: it may hold a password.
        f.write_str(match self {
            Conn::Client(..) => "Conn::Client",
            Conn::Manager(_) => "Conn::Manager",
            Conn::Store(_) => "Conn::Store",
        })
    }
}

/// Breaker settings of the shared backend.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SharedConfig {
    pub(crate) op_timeout: Duration,
    pub(crate) connect_timeout: Duration,
    pub(crate) threshold: u32,
    pub(crate) cooldown: Duration,
}

/// The shared backend: connection, scripts, timeout and breaker.
#[derive(Debug)]
pub(crate) struct Shared {
    conn: Conn,
    config: SharedConfig,
    acquire: Script,
    hold: Script,
    failures: AtomicU32,
    /// Milliseconds since `epoch` until which Redis is skipped (0: not skipped).
    skip_until: AtomicU64,
    probing: AtomicBool,
    degraded: AtomicBool,
    epoch: Instant,
}

/// Whether the breaker lets a call through, and as what.
enum Pass {
    Closed,
    Probe,
}

impl Shared {
    pub(crate) fn new(conn: Conn, config: SharedConfig) -> Self {
        Shared {
            conn,
            config,
            acquire: Script::new(ACQUIRE_LUA),
            hold: Script::new(HOLD_LUA),
            failures: AtomicU32::new(0),
            skip_until: AtomicU64::new(0),
            probing: AtomicBool::new(false),
            degraded: AtomicBool::new(false),
            epoch: Instant::now(),
        }
    }

    /// Whether Redis is being skipped now (after repeated failures).
    pub(crate) fn is_skipped(&self) -> bool {
        let until = self.skip_until.load(Acquire);
        until != 0 && self.now_ms() < until
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64 + 1
    }

    fn manager(&self) -> Result<ConnectionManager, StoreError> {
        match &self.conn {
            Conn::Manager(m) => Ok(m.clone()),
            Conn::Store(s) => s.connection(),
            Conn::Client(client, cell) => {
                if let Some(m) = cell.get() {
                    return Ok(m.clone());
                }
                let cfg = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(self.config.connect_timeout))
                    .set_response_timeout(Some(self.config.op_timeout))
                    .set_number_of_retries(2)
                    .set_min_delay(Duration::from_millis(50))
                    .set_max_delay(Duration::from_secs(2));
                let m = ConnectionManager::new_lazy_with_config(client.clone(), cfg)
                    .map_err(|e| StoreError::Backend(e.to_string()))?;
                Ok(cell.get_or_init(|| m).clone())
            }
        }
    }

    fn admit(&self) -> Option<Pass> {
        let until = self.skip_until.load(Acquire);
        if until == 0 {
            return Some(Pass::Closed);
        }
        if self.now_ms() < until {
            return None;
        }
        self.probing.compare_exchange(false, true, AcqRel, Acquire).is_ok().then_some(Pass::Probe)
    }

    fn record<T>(&self, pass: Pass, result: &Result<T, StoreError>) {
        match result {
            Err(e) => {
                let failures = self.failures.fetch_add(1, AcqRel) + 1;
                if matches!(pass, Pass::Probe) || failures >= self.config.threshold {
                    self.skip_until.store(self.now_ms() + self.config.cooldown.as_millis() as u64, Release);
                }
                if !self.degraded.swap(true, AcqRel) {
                    tracing::warn!(target: "syntra_cache", error = %e, "Budget: Redis unavailable, budgets decided in-process (each instance may spend the full budget)");
                }
            }
            Ok(_) => {
                self.failures.store(0, Release);
                self.skip_until.store(0, Release);
                if self.degraded.swap(false, AcqRel) {
                    tracing::info!(target: "syntra_cache", "Budget: Redis is back, budgets shared again");
                }
            }
        }
        if matches!(pass, Pass::Probe) {
            self.probing.store(false, Release);
        }
    }

    /// Runs `op` on a connection if the breaker allows it, bounded by the timeout.
    async fn call<T, F, Fut>(&self, op: F) -> Result<T, StoreError>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        let pass = self.admit().ok_or(StoreError::BreakerOpen)?;
        let result = match self.manager() {
            Ok(c) => match tokio::time::timeout(self.config.op_timeout, op(c)).await {
                Ok(Ok(v)) => Ok(v),
                Ok(Err(e)) => Err(StoreError::Backend(e.to_string())),
                Err(_) => Err(StoreError::Timeout(self.config.op_timeout)),
            },
            Err(e) => Err(e),
        };
        self.record(pass, &result);
        result
    }

    /// Runs the acquire script.
    pub(crate) async fn acquire(&self, req: &Request<'_>) -> Result<Reply, StoreError> {
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
        let reply: Vec<i64> = self.call(|mut c| async move { inv.invoke_async(&mut c).await }).await?;
        Reply::parse(&reply)
    }

    /// Sets the 429 hold key for `ms` (unless it already lasts longer).
    pub(crate) async fn hold(&self, key: &str, ms: u64) -> Result<(), StoreError> {
        let mut inv = self.hold.prepare_invoke();
        inv.key(key).arg(ms.max(1));
        self.call(|mut c| async move { inv.invoke_async::<i64>(&mut c).await }).await.map(|_| ())
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
