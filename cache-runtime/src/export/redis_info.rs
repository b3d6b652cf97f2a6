//! The Redis poller: `INFO` and a `SCAN` count of the namespace, in a background task.

use super::State;
use serde::Serialize;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

/// Most keys one poll scans before it stops counting (the count is then a lower bound).
const SCAN_LIMIT: u64 = 1_000_000;

/// What the last Redis poll found.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RedisInfo {
    /// The cache has a Redis tier.
    pub configured: bool,
    /// The last poll got an answer.
    pub up: bool,
    /// At least one poll ran.
    pub polled: bool,
    /// `used_memory`, bytes.
    pub used_memory: u64,
    /// `maxmemory`, bytes (0: no limit).
    pub maxmemory: u64,
    /// `evicted_keys` since Redis started.
    pub evicted_keys: u64,
    /// `connected_clients`.
    pub connected_clients: u64,
    /// Cache entries under the namespace (runtime keys such as locks and budgets excluded).
    pub namespace_keys: u64,
    /// The last poll's error, if it failed.
    pub error: Option<String>,
    /// Milliseconds after the exporter started at which the last successful poll ended.
    #[serde(skip)]
    pub(crate) ok_at_ms: Option<u64>,
}

impl RedisInfo {
    /// Seconds since the last successful poll (since the exporter started if none succeeded).
    pub(crate) fn age_seconds(&self, started: Instant) -> f64 {
        let now = started.elapsed().as_millis() as u64;
        now.saturating_sub(self.ok_at_ms.unwrap_or(0)) as f64 / 1000.0
    }
}

/// Polls every `every` while the exporter lives.
pub(crate) fn spawn_poller(state: Weak<State>, every: Duration) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let Some(state) = state.upgrade() else { return };
            poll_once(&state).await;
        }
    });
}

/// One poll; the result replaces the last one (on failure only `up`, `polled` and `error`).
pub(crate) async fn poll_once(state: &Arc<State>) {
    #[cfg(feature = "redis")]
    {
        let Some(conn) = state.cache.inner.redis.clone() else { return };
        let ns = state.cache.namespace().to_owned();
        let result = async {
            let mut m = conn.link().await?;
            let text: String = conn.bounded(redis::cmd("INFO").query_async(&mut m)).await?;
            let keys = count_keys(&conn, &mut m, &ns).await?;
            Ok::<_, crate::StoreError>((text, keys))
        }
        .await;
        let mut info = state.redis.write().unwrap_or_else(|e| e.into_inner());
        info.polled = true;
        match result {
            Ok((text, keys)) => {
                let field = |name: &str| {
                    text.lines()
                        .find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(':')))
                        .and_then(|v| v.trim().parse::<u64>().ok())
                        .unwrap_or(0)
                };
                info.up = true;
                info.error = None;
                info.used_memory = field("used_memory");
                info.maxmemory = field("maxmemory");
                info.evicted_keys = field("evicted_keys");
                info.connected_clients = field("connected_clients");
                info.namespace_keys = keys;
                info.ok_at_ms = Some(state.started.elapsed().as_millis() as u64);
            }
            Err(e) => {
                info.up = false;
                info.error = Some(e.to_string());
            }
        }
    }
    #[cfg(not(feature = "redis"))]
    let _ = state;
}

/// Keys matching `{ns}:*` that are cache entries (`{ns}::…` are the runtime's own), by `SCAN`
/// (on every master of a cluster).
#[cfg(feature = "redis")]
async fn count_keys(
    conn: &crate::connection::RedisConn,
    m: &mut crate::connection::Link,
    ns: &str,
) -> Result<u64, crate::StoreError> {
    let pattern = format!("{}:*", crate::key::glob_escape(ns));
    let own = format!("{ns}::");
    let (mut count, mut seen) = (0u64, 0u64);
    let mut scan = conn.bounded(crate::connection::Scan::start(m, &pattern)).await?;
    while let Some(keys) = conn.bounded(scan.next(m)).await? {
        seen += keys.len() as u64;
        count += keys.iter().filter(|k| !k.starts_with(&own)).count() as u64;
        if seen >= SCAN_LIMIT {
            break;
        }
    }
    Ok(count)
}
