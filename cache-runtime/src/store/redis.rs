//! The Redis tier on redis-rs: a lazily connected [`ConnectionManager`] (the application starts
//! while Redis is down, and reconnects by itself), every operation bounded by a timeout.
//!
//! redis-rs' own retries can hold one command for seconds while Redis is down; the timeout here
//! bounds each cache operation, and the [`Breaker`](super::breaker::Breaker) around this store
//! stops trying for a cool-down after repeated failures.

use super::{BoxFuture, Store};
use crate::error::{BuildError, StoreError};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{AsyncCommands, Client, Script};
use std::future::Future;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// Timeouts of the Redis tier.
#[derive(Debug, Clone, Copy)]
pub struct RedisConfig {
    /// Bound on every cache operation, connection set-up included.
    pub op_timeout: Duration,
    /// Bound on one connection attempt.
    pub connect_timeout: Duration,
}

impl Default for RedisConfig {
    fn default() -> Self {
        RedisConfig { op_timeout: Duration::from_millis(250), connect_timeout: Duration::from_millis(500) }
    }
}

/// A [`Store`] on Redis. Cheap to clone.
#[derive(Clone)]
pub struct RedisStore {
    client: Client,
    manager: Arc<OnceLock<ConnectionManager>>,
    config: RedisConfig,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the URL: it may hold a password.
        let info = self.client.get_connection_info();
        f.debug_struct("RedisStore").field("addr", &info.addr().to_string()).field("config", &self.config).finish()
    }
}

const RELEASE: &str =
    "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end";

impl RedisStore {
    /// A store for `url` (`redis://[user:password@]host:port/db`, `rediss://` for TLS with the
    /// `tls` feature). Does not connect: the first operation does.
    pub fn open(url: &str, config: RedisConfig) -> Result<Self, BuildError> {
        let client = Client::open(url).map_err(|e| BuildError::RedisUrl(redact(&e.to_string(), url)))?;
        Ok(RedisStore { client, manager: Arc::new(OnceLock::new()), config })
    }

    fn manager(&self) -> Result<ConnectionManager, StoreError> {
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

    /// The lazily connected connection manager (shared with the budgets' Redis backend).
    pub(crate) fn connection(&self) -> Result<ConnectionManager, StoreError> {
        self.manager()
    }

    async fn bounded<T, F>(&self, op: F) -> Result<T, StoreError>
    where
        F: Future<Output = redis::RedisResult<T>>,
    {
        match tokio::time::timeout(self.config.op_timeout, op).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(StoreError::Backend(e.to_string())),
            Err(_) => Err(StoreError::Timeout(self.config.op_timeout)),
        }
    }
}

fn redact(msg: &str, url: &str) -> String {
    match url.find('@') {
        Some(_) => msg.replace(url, "<redis url>"),
        None => msg.to_owned(),
    }
}

fn px(ttl: Duration) -> u64 {
    (ttl.as_millis() as u64).max(1)
}

impl Store for RedisStore {
    fn name(&self) -> &'static str {
        "redis"
    }

    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<Vec<u8>>, StoreError>> {
        Box::pin(async move {
            let mut c = self.manager()?;
            self.bounded(c.get::<_, Option<Vec<u8>>>(key)).await
        })
    }

    fn set<'a>(&'a self, key: &'a str, value: Vec<u8>, ttl: Duration) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let mut c = self.manager()?;
            let opts = redis::SetOptions::default().with_expiration(redis::SetExpiry::PX(px(ttl)));
            self.bounded(c.set_options::<_, _, ()>(key, value, opts)).await
        })
    }

    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(async move {
            let mut c = self.manager()?;
            self.bounded(c.del::<_, u64>(key)).await.map(|n| n > 0)
        })
    }

    fn delete_prefix<'a>(&'a self, prefix: &'a str) -> BoxFuture<'a, Result<u64, StoreError>> {
        Box::pin(async move {
            let mut c = self.manager()?;
            let pattern = format!("{}*", crate::key::glob_escape(prefix));
            let mut cursor: u64 = 0;
            let mut removed = 0;
            loop {
                let (next, keys): (u64, Vec<String>) = self
                    .bounded(
                        redis::cmd("SCAN")
                            .arg(cursor)
                            .arg("MATCH")
                            .arg(&pattern)
                            .arg("COUNT")
                            .arg(500)
                            .query_async(&mut c),
                    )
                    .await?;
                if !keys.is_empty() {
                    removed += self.bounded(c.unlink::<_, u64>(&keys)).await?;
                }
                if next == 0 {
                    return Ok(removed);
                }
                cursor = next;
            }
        })
    }

    fn set_nx<'a>(&'a self, key: &'a str, token: &'a str, ttl: Duration) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(async move {
            let mut c = self.manager()?;
            let opts = redis::SetOptions::default()
                .conditional_set(redis::ExistenceCheck::NX)
                .with_expiration(redis::SetExpiry::PX(px(ttl)));
            let set: Option<String> = self.bounded(c.set_options(key, token, opts)).await?;
            Ok(set.is_some())
        })
    }

    fn delete_if_eq<'a>(&'a self, key: &'a str, token: &'a str) -> BoxFuture<'a, Result<bool, StoreError>> {
        static SCRIPT: OnceLock<Script> = OnceLock::new();
        Box::pin(async move {
            let mut c = self.manager()?;
            let script = SCRIPT.get_or_init(|| Script::new(RELEASE));
            let n: u64 = self.bounded(script.key(key).arg(token).invoke_async(&mut c)).await?;
            Ok(n > 0)
        })
    }
}
