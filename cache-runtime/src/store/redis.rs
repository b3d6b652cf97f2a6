//! The Redis tier on redis-rs, on a single server, a Redis Cluster or a Sentinel-watched master
//! (the connection helper's `Link`): lazily connected (the application starts while Redis is
//! down, and reconnects by itself), every operation bounded by a timeout.
//!
//! redis-rs' own retries can hold one command for seconds while Redis is down; the timeout here
//! bounds each cache operation, and the [`Guarded`](super::breaker::Guarded) breaker around this store
//! stops trying for a cool-down after repeated failures.

use super::{BoxFuture, Store};
use crate::connection::{Link, RedisConn, Scan};
pub use crate::connection::{RedisConfig, RedisTopology};
use crate::error::{BuildError, StoreError};
use redis::{AsyncCommands, Script};
use std::sync::OnceLock;
use std::time::Duration;

/// A [`Store`] on Redis. Cheap to clone.
#[derive(Clone, Debug)]
pub struct RedisStore {
    conn: RedisConn,
    /// Reads return at most this many bytes plus one (`GETRANGE key 0 cap`), so a huge value
    /// planted in Redis is never read whole; the caller refuses anything longer than `cap`.
    read_cap: Option<usize>,
}

const RELEASE: &str =
    "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end";

impl RedisStore {
    /// A store for `url` (`redis://[user:password@]host:port/db`, `rediss://` for TLS with the
    /// `tls` feature). Does not connect: the first operation does.
    pub fn open(url: &str, config: RedisConfig) -> Result<Self, BuildError> {
        Ok(RedisStore { conn: RedisConn::open(url, config)?, read_cap: None })
    }

    /// Reads return at most `cap + 1` bytes (`GETRANGE key 0 cap` instead of `GET`): enough to
    /// tell that a value is over `cap` without transferring or allocating the rest.
    pub fn with_read_cap(mut self, cap: usize) -> Self {
        self.read_cap = Some(cap);
        self
    }

    /// A store on a single server, a Redis Cluster or a Sentinel-watched master. Does not
    /// connect: the first operation does.
    pub fn open_topology(topology: &RedisTopology, config: RedisConfig) -> Result<Self, BuildError> {
        Ok(RedisStore { conn: RedisConn::topology(topology, config)?, read_cap: None })
    }

    /// How many times a Sentinel master was followed to a new address (0 otherwise).
    pub fn master_switches(&self) -> u64 {
        self.conn.master_switches()
    }

    async fn manager(&self) -> Result<Link, StoreError> {
        self.conn.link().await
    }

    /// The connection helper (shared with the budgets' Redis backend).
    pub(crate) fn conn(&self) -> &RedisConn {
        &self.conn
    }

    async fn bounded<T, F>(&self, op: F) -> Result<T, StoreError>
    where
        F: std::future::Future<Output = redis::RedisResult<T>>,
    {
        self.conn.bounded(op).await
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
            match self.read_cap {
                None => self.conn.run(|mut c| async move { c.get::<_, Option<Vec<u8>>>(key).await }).await,
                // A missing key reads as an empty string: no value of ours is empty.
                Some(cap) => {
                    let bytes: Vec<u8> =
                        self.conn.run(|mut c| async move { c.getrange(key, 0, cap as isize).await }).await?;
                    Ok(Some(bytes).filter(|b| !b.is_empty()))
                }
            }
        })
    }

    fn get_many<'a>(&'a self, keys: &'a [String]) -> BoxFuture<'a, Result<Vec<Option<Vec<u8>>>, StoreError>> {
        Box::pin(async move {
            if keys.is_empty() {
                return Ok(Vec::new());
            }
            match self.read_cap {
                // `MGET` of one key replies with a bare value in redis-rs' typed API: always a list.
                None => {
                    self.conn
                        .run(|mut c| async move {
                            redis::cmd("MGET").arg(keys).query_async::<Vec<Option<Vec<u8>>>>(&mut c).await
                        })
                        .await
                }
                // Capped reads, pipelined: one round trip, and no planted value costs more than
                // the cap to read (an `MGET` would read it whole). A missing key reads as empty.
                Some(cap) => {
                    let read = self
                        .conn
                        .run(|mut c| async move {
                            let mut pipe = redis::pipe();
                            for key in keys {
                                pipe.cmd("GETRANGE").arg(key).arg(0).arg(cap);
                            }
                            pipe.query_async::<Vec<Vec<u8>>>(&mut c).await
                        })
                        .await?;
                    Ok(read.into_iter().map(|b| Some(b).filter(|b| !b.is_empty())).collect())
                }
            }
        })
    }

    fn set<'a>(&'a self, key: &'a str, value: Vec<u8>, ttl: Duration) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let opts = redis::SetOptions::default().with_expiration(redis::SetExpiry::PX(px(ttl)));
            let value = value.as_slice();
            self.conn
                .run(|mut c| {
                    let opts = opts.clone();
                    async move { c.set_options::<_, _, ()>(key, value, opts).await }
                })
                .await
        })
    }

    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(async move { self.conn.run(|mut c| async move { c.del::<_, u64>(key).await }).await.map(|n| n > 0) })
    }

    fn delete_prefix<'a>(&'a self, prefix: &'a str) -> BoxFuture<'a, Result<u64, StoreError>> {
        Box::pin(async move {
            let mut c = self.manager().await?;
            let pattern = format!("{}*", crate::key::glob_escape(prefix));
            // Every master of a cluster in turn; UNLINK of keys in several slots is split by
            // slot by redis-rs (never CROSSSLOT).
            let mut scan = self.bounded(Scan::start(&mut c, &pattern)).await?;
            let mut removed = 0;
            while let Some(keys) = self.bounded(scan.next(&mut c)).await? {
                // Keys with `::` are the runtime's own (locks, budgets): never cache entries.
                let keys: Vec<String> = keys.into_iter().filter(|k| !k.contains("::")).collect();
                if !keys.is_empty() {
                    removed += self.bounded(c.unlink::<_, u64>(&keys)).await?;
                }
            }
            Ok(removed)
        })
    }

    fn set_nx<'a>(&'a self, key: &'a str, token: &'a str, ttl: Duration) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(async move {
            let opts = redis::SetOptions::default()
                .conditional_set(redis::ExistenceCheck::NX)
                .with_expiration(redis::SetExpiry::PX(px(ttl)));
            let set: Option<String> = self
                .conn
                .run(|mut c| {
                    let opts = opts.clone();
                    async move { c.set_options(key, token, opts).await }
                })
                .await?;
            Ok(set.is_some())
        })
    }

    fn delete_if_eq<'a>(&'a self, key: &'a str, token: &'a str) -> BoxFuture<'a, Result<bool, StoreError>> {
        static SCRIPT: OnceLock<Script> = OnceLock::new();
        Box::pin(async move {
            let script = SCRIPT.get_or_init(|| Script::new(RELEASE));
            let n: u64 =
                self.conn.run(|mut c| async move { script.key(key).arg(token).invoke_async(&mut c).await }).await?;
            Ok(n > 0)
        })
    }
}
