//! [`EnforcerBuilder`]: the settings of a [`BudgetEnforcer`] and where its Redis connection comes
//! from.

use super::backend::Backend;
use super::config::{BudgetError, Budgets};
use super::enforcer::{BudgetEnforcer, Inner};
use super::local::Local;
use super::slot::Slot;
use super::{Clock, SystemClock};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

#[cfg(feature = "redis")]
use {
    super::shared::{Conn, Shared, SharedConfig},
    crate::breaker::BreakerConfig,
    crate::connection::{RedisConfig, RedisConn},
};

impl BudgetEnforcer {
    /// A builder: namespace `syntra`, system clock, no Redis, op timeout 250 ms, connect timeout
    /// 500 ms, breaker 2 failures / 1 s.
    pub fn builder(budgets: Budgets) -> EnforcerBuilder {
        EnforcerBuilder {
            budgets,
            namespace: crate::DEFAULT_NAMESPACE.into(),
            clock: Arc::new(SystemClock),
            op_timeout: Duration::from_millis(250),
            connect_timeout: Duration::from_millis(500),
            threshold: 2,
            cooldown: Duration::from_secs(1),
            #[cfg(feature = "redis")]
            redis: None,
            persist: None,
        }
    }

    /// An in-process enforcer (no Redis): each instance enforces the budgets alone.
    pub fn local(budgets: Budgets) -> BudgetEnforcer {
        Self::builder(budgets).assemble(None)
    }
}

/// Builds a [`BudgetEnforcer`].
pub struct EnforcerBuilder {
    budgets: Budgets,
    namespace: String,
    clock: Arc<dyn Clock>,
    op_timeout: Duration,
    connect_timeout: Duration,
    threshold: u32,
    cooldown: Duration,
    #[cfg(feature = "redis")]
    redis: Option<RedisSource>,
    persist: Option<Arc<dyn super::local::Persist>>,
}

/// Where the shared budgets' Redis connection comes from.
#[cfg(feature = "redis")]
enum RedisSource {
    Url(String),
    Client(redis::Client),
    Manager(redis::aio::ConnectionManager),
    Store(crate::store::redis::RedisStore),
}

#[cfg(feature = "redis")]
impl RedisSource {
    /// The connection (lazy: nothing is connected yet).
    fn conn(self, config: RedisConfig) -> Result<Conn, BudgetError> {
        Ok(match self {
            RedisSource::Url(url) => Conn::Redis(Box::new(
                RedisConn::open(&url, config)
                    .map_err(|e| BudgetError::Invalid { setting: "redis url", reason: e.to_string() })?,
            )),
            RedisSource::Client(client) => Conn::Redis(Box::new(RedisConn::from_client(client, config))),
            RedisSource::Manager(m) => Conn::Manager(m),
            RedisSource::Store(s) => Conn::Redis(Box::new(s.conn().clone())),
        })
    }
}

impl std::fmt::Debug for EnforcerBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the Redis URL: it may hold a password.
        #[cfg(feature = "redis")]
        let redis = self.redis.is_some();
        #[cfg(not(feature = "redis"))]
        let redis = false;
        f.debug_struct("EnforcerBuilder")
            .field("budgets", &self.budgets.names())
            .field("namespace", &self.namespace)
            .field("redis", &redis)
            .field("op_timeout", &self.op_timeout)
            .finish_non_exhaustive()
    }
}

impl EnforcerBuilder {
    /// Keeps the local counters in `persist` (the disk tier) across restarts.
    #[cfg_attr(not(feature = "disk"), allow(dead_code))]
    pub(crate) fn persist(mut self, persist: Arc<dyn super::local::Persist>) -> Self {
        self.persist = Some(persist);
        self
    }

    /// The key namespace (default `syntra`: keys `syntra::budget:{name}:...`). Letters, digits,
    /// `_`, `-`, `.` and `:` only. Use the cache's namespace.
    pub fn namespace(mut self, ns: impl Into<String>) -> Self {
        self.namespace = ns.into();
        self
    }

    /// The clock of quota periods, the local limiter, 429 holds and pacing (default: the system
    /// clock). The shared rate limits use the Redis server's clock.
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Shares the budgets through Redis at `url` (`redis://[user:password@]host:port/db`,
    /// `rediss://` with the `tls` feature). Connects lazily, on the first acquire.
    #[cfg(feature = "redis")]
    pub fn redis_url(mut self, url: impl Into<String>) -> Self {
        self.redis = Some(RedisSource::Url(url.into()));
        self
    }

    /// Shares the budgets through Redis with `client` (a lazily connected manager is made from
    /// it on the first acquire, with [`connect_timeout`](Self::connect_timeout)).
    #[cfg(feature = "redis")]
    pub fn redis_client(mut self, client: redis::Client) -> Self {
        self.redis = Some(RedisSource::Client(client));
        self
    }

    /// Shares the budgets through an existing connection manager.
    #[cfg(feature = "redis")]
    pub fn redis_manager(mut self, manager: redis::aio::ConnectionManager) -> Self {
        self.redis = Some(RedisSource::Manager(manager));
        self
    }

    /// Shares the budgets through the connection of a cache's Redis tier.
    #[cfg(feature = "redis")]
    pub fn redis_store(mut self, store: &crate::store::redis::RedisStore) -> Self {
        self.redis = Some(RedisSource::Store(store.clone()));
        self
    }

    /// Bound on every Redis call of an acquire or a hold (default 250 ms). On timeout the
    /// in-process limiter decides.
    pub fn op_timeout(mut self, t: Duration) -> Self {
        self.op_timeout = t;
        self
    }

    /// Bound on one connection attempt (default 500 ms; for [`redis_url`](Self::redis_url) and
    /// [`redis_client`](Self::redis_client)).
    pub fn connect_timeout(mut self, t: Duration) -> Self {
        self.connect_timeout = t;
        self
    }

    /// After `threshold` consecutive Redis failures (default 2), skip Redis for `cooldown`
    /// (default 1 s) and decide in-process; then one probe goes through, and a success shares
    /// the budgets again.
    pub fn breaker(mut self, threshold: u32, cooldown: Duration) -> Self {
        self.threshold = threshold;
        self.cooldown = cooldown;
        self
    }

    /// Builds the enforcer. Does not connect to Redis.
    #[cfg_attr(not(feature = "redis"), allow(unused_mut))]
    pub fn build(mut self) -> Result<BudgetEnforcer, BudgetError> {
        let ns = &self.namespace;
        if ns.is_empty() || !ns.bytes().all(|c| c.is_ascii_alphanumeric() || b"_-.:".contains(&c)) {
            return Err(BudgetError::Invalid {
                setting: "namespace",
                reason: format!("{ns:?}: use letters, digits, `_`, `-`, `.` and `:`"),
            });
        }
        if self.op_timeout.is_zero() {
            return Err(BudgetError::Invalid { setting: "op_timeout", reason: "must be > 0".into() });
        }
        if self.threshold == 0 {
            return Err(BudgetError::Invalid { setting: "breaker threshold", reason: "must be >= 1".into() });
        }
        #[cfg(feature = "redis")]
        let shared = match self.redis.take() {
            None => None,
            Some(source) => {
                let config = SharedConfig {
                    op_timeout: self.op_timeout,
                    breaker: BreakerConfig { threshold: self.threshold, cooldown: self.cooldown },
                };
                let redis = RedisConfig { op_timeout: self.op_timeout, connect_timeout: self.connect_timeout };
                Some(Box::new(Shared::new(source.conn(redis)?, config)) as Box<dyn Backend>)
            }
        };
        #[cfg(not(feature = "redis"))]
        let shared = None;
        Ok(self.assemble(shared))
    }

    /// The enforcer of valid settings, sharing through `shared` if any.
    pub(crate) fn assemble(self, shared: Option<Box<dyn Backend>>) -> BudgetEnforcer {
        let ns = &self.namespace;
        let slots: HashMap<String, Slot> = self.budgets.iter().map(|b| (b.name.clone(), Slot::new(ns, b))).collect();
        let local = Local::new(shared.is_some());
        // Without a shared backend the local counters are the budget: restore them.
        let persist = self.persist.filter(|_| shared.is_none());
        if let Some(p) = &persist {
            for slot in slots.values() {
                if let Some(bytes) = p.load(&slot.state_key()) {
                    if !slot.restore(&bytes) {
                        tracing::warn!(target: "syntra_cache", budget = slot.name(), "Budget: saved counters do not fit the declaration; starting afresh");
                    }
                }
            }
        }
        BudgetEnforcer {
            inner: Arc::new(Inner {
                budgets: self.budgets,
                slots,
                namespace: self.namespace,
                clock: self.clock,
                shared,
                local,
                persist,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: Duration = Duration::from_secs(60);

    #[test]
    fn builder_errors() {
        let b = || BudgetEnforcer::builder(Budgets::seed_defaults());
        assert!(matches!(b().namespace("a b").build(), Err(BudgetError::Invalid { setting: "namespace", .. })));
        assert!(b().op_timeout(Duration::ZERO).build().is_err());
        assert!(b().breaker(0, MIN).build().is_err());
        #[cfg(feature = "redis")]
        {
            let err = b().redis_url("redis://user:hunter2@[bad").build().unwrap_err();
            assert!(!err.to_string().contains("hunter2"), "{err}");
            let ok = b().redis_url("redis://user:hunter2@127.0.0.1:1/0").build().unwrap();
            assert!(ok.is_shared() && !format!("{ok:?}").contains("hunter2"));
        }
    }
}
