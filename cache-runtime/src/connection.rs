//! The one Redis connection helper of the runtime, shared by the Redis tier and the budgets:
//! a lazily connected, self-reconnecting [`ConnectionManager`], one timeout per operation, and
//! URL redaction so that a password never reaches a log line or an error.

use crate::error::{BuildError, StoreError};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::Client;
use std::future::Future;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// Timeouts of a Redis connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RedisConfig {
    /// Bound on every operation, connection set-up included.
    pub op_timeout: Duration,
    /// Bound on one connection attempt.
    pub connect_timeout: Duration,
}

impl Default for RedisConfig {
    fn default() -> Self {
        RedisConfig { op_timeout: Duration::from_millis(250), connect_timeout: Duration::from_millis(500) }
    }
}

/// A Redis client with its lazily created connection manager. Cheap to clone (clones share the
/// manager).
#[derive(Clone)]
pub(crate) struct RedisConn {
    client: Client,
    manager: Arc<OnceLock<ConnectionManager>>,
    config: RedisConfig,
}

impl std::fmt::Debug for RedisConn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The address only: the URL may hold a password.
        let info = self.client.get_connection_info();
        f.debug_struct("RedisConn").field("addr", &info.addr().to_string()).field("config", &self.config).finish()
    }
}

impl RedisConn {
    /// Parses `url`; does not connect (the first operation does).
    pub(crate) fn open(url: &str, config: RedisConfig) -> Result<Self, BuildError> {
        let client = Client::open(url).map_err(|e| BuildError::RedisUrl(redact(&e.to_string(), url)))?;
        Ok(Self::from_client(client, config))
    }

    pub(crate) fn from_client(client: Client, config: RedisConfig) -> Self {
        RedisConn { client, manager: Arc::new(OnceLock::new()), config }
    }

    /// The connection manager, created on first use (it needs a running Tokio runtime).
    pub(crate) fn manager(&self) -> Result<ConnectionManager, StoreError> {
        if let Some(m) = self.manager.get() {
            return Ok(m.clone());
        }
        let cfg = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(self.config.connect_timeout))
            .set_response_timeout(Some(self.config.op_timeout))
            .set_number_of_retries(2)
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(Duration::from_secs(2));
        let m = ConnectionManager::new_lazy_with_config(self.client.clone(), cfg)
            .map_err(|e| StoreError::Backend(e.to_string()))?;
        Ok(self.manager.get_or_init(|| m).clone())
    }

    /// Runs `op` bounded by the operation timeout, mapping redis-rs errors.
    pub(crate) async fn bounded<T, F>(&self, op: F) -> Result<T, StoreError>
    where
        F: Future<Output = redis::RedisResult<T>>,
    {
        bounded(self.config.op_timeout, op).await
    }
}

/// Runs `op` bounded by `timeout`, mapping redis-rs errors.
pub(crate) async fn bounded<T, F>(timeout: Duration, op: F) -> Result<T, StoreError>
where
    F: Future<Output = redis::RedisResult<T>>,
{
    match tokio::time::timeout(timeout, op).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) if e.is_io_error() || e.is_connection_refusal() || e.is_connection_dropped() => {
            Err(StoreError::Connection(e.to_string()))
        }
        Ok(Err(e)) => Err(StoreError::Backend(e.to_string())),
        Err(_) => Err(StoreError::Timeout(timeout)),
    }
}

/// One page of `SCAN cursor MATCH pattern COUNT 500`: replies `(next cursor, keys)`.
pub(crate) fn scan_page(cursor: u64, pattern: &str) -> redis::Cmd {
    let mut cmd = redis::cmd("SCAN");
    cmd.arg(cursor).arg("MATCH").arg(pattern).arg("COUNT").arg(500);
    cmd
}

/// `msg` with `url` (and the password inside it) replaced.
pub(crate) fn redact(msg: &str, url: &str) -> String {
    let mut out = msg.replace(url, "<redis url>");
    if let Some(password) = password_of(url) {
        out = out.replace(password, "<redacted>");
    }
    out
}

fn password_of(url: &str) -> Option<&str> {
    let rest = url.split_once("://")?.1;
    let userinfo = rest.split_once('@')?.0;
    let password = userinfo.split_once(':').map_or(userinfo, |(_, p)| p);
    (!password.is_empty()).then_some(password)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redaction_hides_passwords_even_when_the_url_is_reformatted() {
        let url = "redis://bot:hunter2@[bad";
        assert_eq!(redact("cannot parse redis://bot:hunter2@[bad", url), "cannot parse <redis url>");
        assert!(!redact("auth failed for hunter2", url).contains("hunter2"));
        assert!(!redact("x", "redis://:s3cret@h:1").contains("s3cret"));
        assert_eq!(password_of("redis://h:1/0"), None);
    }

    #[test]
    fn debug_shows_no_password() {
        let c = RedisConn::open("redis://bot:hunter2@127.0.0.1:1/0", RedisConfig::default()).unwrap();
        assert!(!format!("{c:?}").contains("hunter2"));
    }
}
