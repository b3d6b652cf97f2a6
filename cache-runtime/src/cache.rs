//! The [`Cache`] handle, its builder and configuration from the environment.

use crate::breaker::BreakerConfig;
use crate::budget::{BudgetEnforcer, BudgetStats, Budgets};
use crate::error::{BuildError, CacheError, StoreError};
use crate::metrics::{Registry, Stats};
use crate::store::breaker::Guarded;
use crate::store::memory::MemoryTier;
use crate::store::tiered::Tiered;
use crate::store::Store;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// Where Redis is: one server, a Redis Cluster, or a master watched by Sentinel.
#[derive(Clone, PartialEq, Eq)]
pub enum RedisTopology {
    /// One server: `redis://[user:password@]host:port/db` (`rediss://` for TLS).
    Single(String),
    /// A Redis Cluster, by seed nodes (`redis://127.0.0.1:7000`, …); the others are discovered.
    Cluster(Vec<String>),
    /// The master that Sentinel names `master`, asked of `sentinels` (`redis://127.0.0.1:26379`,
    /// …). The user, password and TLS of the first Sentinel URL are also used for the data nodes.
    Sentinel {
        /// Sentinel addresses.
        sentinels: Vec<String>,
        /// The monitored master's name (`sentinel monitor <name> …`).
        master: String,
    },
}

impl std::fmt::Debug for RedisTopology {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Addresses only: URLs may hold passwords.
        match self {
            RedisTopology::Single(_) => f.write_str("Single(<redis url>)"),
            RedisTopology::Cluster(seeds) => write!(f, "Cluster({} seed nodes)", seeds.len()),
            RedisTopology::Sentinel { sentinels, master } => {
                write!(f, "Sentinel({} sentinels, master {master:?})", sentinels.len())
            }
        }
    }
}

/// Default namespace: every key starts with it.
pub const DEFAULT_NAMESPACE: &str = "syntra";
/// Default capacity of the memory tier, in entries.
pub const DEFAULT_MEMORY_CAPACITY: u64 = 10_000;
/// Default bound on the memory tier's estimated size: 64 MiB. 10,000 `market_chart` responses
/// (about 24 KB each) would otherwise hold about 240 MB; 64 MiB keeps ~2,700 of them, or all
/// 10,000 entries of values up to ~6.7 KB (prices, tickers, pairs).
pub const DEFAULT_MEMORY_BYTES: u64 = 64 << 20;
/// Longest namespace accepted: keys are bounded as a whole (namespace included), and a long
/// namespace would leave no room for the rest.
pub(crate) const MAX_NAMESPACE: usize = 64;

/// A cache: namespace, tiers, policies and counters. Cheap to clone (an `Arc`).
///
/// ```
/// # fn main() -> Result<(), syntra_cache_runtime::BuildError> {
/// use syntra_cache_runtime::Cache;
/// let cache = Cache::builder().namespace("syntra").memory_capacity(50_000).build()?;
/// # let _ = cache; Ok(()) }
/// ```
#[derive(Clone)]
pub struct Cache {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    /// Unique per cache built in this process (sites remember the last cache they counted in).
    pub(crate) id: u64,
    pub(crate) namespace: String,
    pub(crate) tiers: Tiered,
    pub(crate) metrics: Registry,
    pub(crate) enabled: bool,
    pub(crate) flights: crate::engine::coalesce::Flights,
    pub(crate) lock: crate::policy::LockConfig,
    pub(crate) budgets: Option<BudgetEnforcer>,
    /// Rate limit of `Cache ERROR` lines.
    pub(crate) error_log: crate::throttle::ErrorLog,
    /// The Redis connection of the shared tier, when it is Redis (read by the exporter's
    /// `INFO` poller, never on the call path).
    #[cfg(feature = "redis")]
    pub(crate) redis: Option<crate::connection::RedisConn>,
    /// The namespace's key generation (see [`rotation`](crate::rotation)).
    pub(crate) generation: crate::rotation::Generation,
    /// Grace before sweeping after a rotation: the generation refresh interval.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) generation_refresh: Duration,
    /// The Redis store, when the remote tier is Redis (for rotation).
    #[cfg(feature = "redis")]
    pub(crate) redis_store: Option<crate::store::redis::RedisStore>,
}

impl std::fmt::Debug for Cache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cache")
            .field("namespace", &self.inner.namespace)
            .field("tiers", &self.inner.tiers)
            .field("enabled", &self.inner.enabled)
            .finish()
    }
}

impl Cache {
    /// A builder with the defaults: namespace `syntra`, memory tier of 10,000 entries, no Redis.
    pub fn builder() -> CacheBuilder {
        CacheBuilder::default()
    }

    /// An in-memory cache with the defaults.
    pub fn memory() -> Cache {
        CacheBuilder::default().build().expect("default settings are valid")
    }

    /// A cache configured from the environment (see [`CacheBuilder::from_env`]).
    pub fn from_env() -> Result<Cache, BuildError> {
        CacheBuilder::from_env()?.build()
    }

    /// The key namespace.
    pub fn namespace(&self) -> &str {
        &self.inner.namespace
    }

    /// Whether the cache is used at all (`SYNTRA_CACHE_DISABLED` turns it off).
    pub fn is_enabled(&self) -> bool {
        self.inner.enabled
    }

    /// Whether a remote (Redis) tier is configured.
    pub fn has_remote(&self) -> bool {
        self.inner.tiers.remote.is_some()
    }

    /// Whether the remote tier's circuit breaker is open (the store is being skipped).
    pub fn remote_circuit_open(&self) -> bool {
        self.inner.tiers.remote.as_ref().is_some_and(|r| r.is_open())
    }

    /// A snapshot of the counters of every cached method called through this cache.
    pub fn stats(&self) -> Stats {
        self.inner.metrics.snapshot()
    }

    /// The budget enforcer, when budgets were configured.
    pub fn budgets(&self) -> Option<&BudgetEnforcer> {
        self.inner.budgets.as_ref()
    }

    /// Counters of every budget (use, denials, stale answers, pacing, projected month use).
    pub fn budget_stats(&self) -> Vec<BudgetStats> {
        self.inner.budgets.as_ref().map(BudgetEnforcer::snapshot).unwrap_or_default()
    }

    /// The full key: the current generation's prefix + `key` (`syntra:` + `key`, or
    /// `syntra@3:` + `key` after three [rotations](Self::rotate)).
    pub fn full_key(&self, key: &str) -> String {
        format!("{}{key}", self.inner.generation.prefix())
    }

    /// The namespace's key generation as last read from the remote tier (0: never rotated).
    pub fn generation(&self) -> u64 {
        self.inner.generation.current()
    }

    /// Brings a key built under any generation to the current one (reading the generation first
    /// if this cache never has).
    pub(crate) async fn current_key(&self, key: String) -> String {
        self.inner.generation.sync(self).await;
        self.inner.generation.rebase(key)
    }

    /// Drops every entry of the namespace at once, without a blocking delete: increments the
    /// generation at `{ns}::gen` in Redis (so every instance moves to fresh keys within its
    /// generation refresh interval), then removes the old generations' keys in the background
    /// with a rate-limited SCAN + UNLINK ([`rotation::sweep`](crate::rotation::sweep)), starting
    /// after one refresh interval so that instances still on the old generation are not stripped
    /// mid-use. Budget counters are never touched. Returns the new generation.
    ///
    /// Needs Redis as the remote tier ([`CacheError::Unsupported`] otherwise: without Redis,
    /// [`remove_prefix("")`](Self::remove_prefix) empties the cache).
    #[cfg(feature = "redis")]
    pub async fn rotate(&self) -> Result<u64, CacheError> {
        let redis = self.inner.redis_store.as_ref().ok_or(CacheError::Unsupported("rotation needs Redis"))?;
        let conn = redis.conn();
        let mut m = conn.link().await?;
        let generation = conn.bounded(crate::rotation::bump(&mut m, &self.inner.namespace)).await?;
        self.inner.generation.set(generation);
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            let this = self.clone();
            let grace = self.inner.generation_refresh;
            rt.spawn(async move {
                tokio::time::sleep(grace).await;
                if let Err(e) = this.sweep_old_generations(Default::default()).await {
                    tracing::warn!(target: "syntra_cache", error = %e, "Sweep of old cache generations failed; `syntra-cache rotate --sweep-only` retries it");
                }
            });
        }
        Ok(generation)
    }

    /// Removes the keys of every generation but the current one (and their orphaned locks) now,
    /// at the rate of `opts` (see [`rotation::sweep`](crate::rotation::sweep)).
    #[cfg(feature = "redis")]
    pub async fn sweep_old_generations(
        &self,
        opts: crate::rotation::SweepOptions,
    ) -> Result<crate::rotation::SweepReport, CacheError> {
        let redis = self.inner.redis_store.as_ref().ok_or(CacheError::Unsupported("rotation needs Redis"))?;
        let mut m = redis.conn().link().await?;
        let keep = self.generation();
        // No overall timeout: the sweep is paced; each command has the connection's own.
        crate::rotation::sweep(&mut m, &self.inner.namespace, keep, opts)
            .await
            .map_err(|e| CacheError::Store(crate::rotation::redis_error(e)))
    }

    /// Removes one entry by its key without the namespace (`coingecko:price:bitcoin_usd`) from
    /// every tier; whether it existed. To remove the entry of a call, see
    /// [`invalidate`](crate::invalidate).
    pub async fn remove(&self, key: &str) -> Result<bool, CacheError> {
        self.inner.generation.sync(self).await;
        Ok(self.inner.tiers.remove(&self.entry_key(key)).await?)
    }

    /// Removes every entry whose key (without the namespace) starts with `prefix`, e.g.
    /// `"coingecko:price:"` (`""`: every entry); how many were removed (from Redis when it is
    /// configured, else from memory). The runtime's own keys (budget counters, locks) are never
    /// touched.
    pub async fn remove_prefix(&self, prefix: &str) -> Result<u64, CacheError> {
        if prefix.starts_with(':') {
            return Err(CacheError::InvalidPrefix(prefix.to_owned()));
        }
        self.inner.generation.sync(self).await;
        Ok(self.inner.tiers.remove_prefix(&self.full_key(prefix)).await?)
    }

    /// The full key of an entry (`namespace:` + `key`), bounded like the macro's keys: beyond
    /// [`MAX_KEY`](crate::key::MAX_KEY) bytes the rest is hashed.
    pub(crate) fn entry_key(&self, key: &str) -> String {
        let mut full = self.full_key(key);
        crate::key::bound_length(&mut full, self.inner.namespace.len() + 1);
        full
    }

    /// The coherence channel's counters, when [`coherent`](CacheBuilder::coherent) is on.
    #[cfg(feature = "redis")]
    pub fn coherence_stats(&self) -> Option<crate::store::coherence::CoherenceStats> {
        self.inner.tiers.coherence.as_ref().map(|c| c.stats())
    }

    pub(crate) async fn remove_full(&self, full_key: &str) -> Result<bool, StoreError> {
        let key = self.current_key(full_key.to_owned()).await;
        self.inner.tiers.remove(&key).await
    }
}

/// Builds a [`Cache`].
#[derive(Clone)]
pub struct CacheBuilder {
    namespace: String,
    memory_capacity: u64,
    memory_bytes: u64,
    max_value_bytes: usize,
    signing_key: Option<String>,
    signing_keys_old: Vec<String>,
    local_tier: bool,
    local_ttl_cap: Option<Duration>,
    redis: Option<RedisTopology>,
    coherent: bool,
    coherence_grace: Duration,
    store: Option<Arc<dyn Store>>,
    op_timeout: Duration,
    connect_timeout: Duration,
    breaker: BreakerConfig,
    enabled: bool,
    lock: crate::policy::LockConfig,
    budgets: Option<Budgets>,
    budget_clock: Option<Arc<dyn crate::budget::Clock>>,
    error_log_interval: Duration,
    compression: crate::compress::Compression,
    disk_path: Option<std::path::PathBuf>,
    disk_max_bytes: Option<u64>,
    generation_refresh: Duration,
}

impl std::fmt::Debug for CacheBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CacheBuilder")
            .field("namespace", &self.namespace)
            .field("memory_capacity", &self.memory_capacity)
            .field("memory_bytes", &self.memory_bytes)
            .field("max_value_bytes", &self.max_value_bytes)
            .field("redis", &self.redis)
            .field("coherent", &self.coherent)
            .field("signing_key", &self.signing_key.as_ref().map(|_| "<redacted>"))
            .field("signing_keys_old", &self.signing_keys_old.len())
            .finish_non_exhaustive()
    }
}

impl Default for CacheBuilder {
    fn default() -> Self {
        CacheBuilder {
            namespace: DEFAULT_NAMESPACE.into(),
            memory_capacity: DEFAULT_MEMORY_CAPACITY,
            memory_bytes: DEFAULT_MEMORY_BYTES,
            max_value_bytes: crate::store::tiered::DEFAULT_MAX_VALUE_BYTES,
            signing_key: None,
            signing_keys_old: Vec::new(),
            local_tier: true,
            local_ttl_cap: None,
            redis: None,
            coherent: false,
            coherence_grace: Duration::from_secs(1),
            store: None,
            op_timeout: Duration::from_millis(250),
            connect_timeout: Duration::from_millis(500),
            breaker: BreakerConfig::default(),
            enabled: true,
            lock: crate::policy::LockConfig::default(),
            budgets: None,
            budget_clock: None,
            error_log_interval: crate::throttle::DEFAULT_ERROR_LOG_INTERVAL,
            compression: Default::default(),
            disk_path: None,
            disk_max_bytes: None,
            generation_refresh: crate::rotation::DEFAULT_REFRESH,
        }
    }
}

impl CacheBuilder {
    /// The key namespace (`syntra` gives `syntra:coingecko:price:bitcoin_usd`).
    /// Letters, digits, `_`, `-`, `.` and `:` only.
    pub fn namespace(mut self, ns: impl Into<String>) -> Self {
        self.namespace = ns.into();
        self
    }

    /// Capacity of the in-process tier in entries; 0 turns the tier off.
    pub fn memory_capacity(mut self, entries: u64) -> Self {
        self.memory_capacity = entries;
        self
    }

    /// Bound on the memory tier's estimated size in bytes (default 64 MiB): values are weighed
    /// by their encoded length, so large responses cannot fill memory within the entry bound.
    pub fn memory_bytes(mut self, bytes: u64) -> Self {
        self.memory_bytes = bytes;
        self
    }

    /// Bound on one cached value's encoded size (default 1 MiB). A larger result is returned to
    /// the caller but not cached (counted as `oversized`, logged once per method); a larger value
    /// found in Redis is refused before it is decoded (and only `bytes + 1` of it is read).
    pub fn max_value_bytes(mut self, bytes: usize) -> Self {
        self.max_value_bytes = bytes;
        self
    }

    /// Sign every value written to Redis with a keyed blake3 MAC over its full key and bytes,
    /// and refuse (as a miss, counted as `tampered`) any value whose MAC does not verify:
    /// unsigned, edited, or copied from another key. At least 16 bytes; keep it out of code
    /// (`SYNTRA_CACHE_SIGNING_KEY`). Never shown by `Debug`.
    pub fn signing_key(mut self, secret: impl Into<String>) -> Self {
        self.signing_key = Some(secret.into());
        self
    }

    /// Previous signing keys: values signed with them still verify, nothing is signed with them
    /// (rolling a new key through instances without a cold cache).
    pub fn signing_keys_old<I: IntoIterator<Item = S>, S: Into<String>>(mut self, old: I) -> Self {
        self.signing_keys_old = old.into_iter().map(Into::into).collect();
        self
    }

    /// Whether the memory tier sits in front of Redis (default: yes). Without Redis the memory
    /// tier is the cache, whatever this says.
    pub fn local_tier(mut self, on: bool) -> Self {
        self.local_tier = on;
        self
    }

    /// Longest time a value read from Redis is kept in the memory tier (default: the rest of its
    /// Redis TTL). Bounds how long another instance's invalidation goes unseen.
    pub fn local_ttl_cap(mut self, cap: Duration) -> Self {
        self.local_ttl_cap = Some(cap);
        self
    }

    /// Use Redis at `url`: `redis://[user:password@]host:port/db`, `rediss://` for TLS.
    pub fn redis(mut self, url: impl Into<String>) -> Self {
        self.redis = Some(RedisTopology::Single(url.into()));
        self
    }

    /// Use a Redis Cluster, found through these seed nodes (`redis://127.0.0.1:7000`, …; the
    /// others are discovered, and followed through failovers and resharding).
    pub fn redis_cluster<S: Into<String>>(mut self, seeds: impl IntoIterator<Item = S>) -> Self {
        self.redis = Some(RedisTopology::Cluster(seeds.into_iter().map(Into::into).collect()));
        self
    }

    /// Use the Redis master that Sentinel calls `master`, asking these Sentinels
    /// (`redis://127.0.0.1:26379`, …); a failover is followed. The user, password and TLS of
    /// the first Sentinel URL are also used for the data nodes.
    pub fn redis_sentinel<S: Into<String>>(
        mut self,
        sentinels: impl IntoIterator<Item = S>,
        master: impl Into<String>,
    ) -> Self {
        self.redis = Some(RedisTopology::Sentinel {
            sentinels: sentinels.into_iter().map(Into::into).collect(),
            master: master.into(),
        });
        self
    }

    /// Keeps the memory tiers of every instance coherent (default: off): each write,
    /// invalidation, refresh and prefix removal is announced on the Redis channel
    /// `{namespace}::inval` and every other instance evicts that key. Needs Redis and the memory
    /// tier. With it on, memory copies can live as long as their Redis entry.
    pub fn coherent(mut self, on: bool) -> Self {
        self.coherent = on;
        self
    }

    /// With [`coherent`](Self::coherent): how long memory copies are still served while the
    /// invalidation channel is lost (default 1 s); then they are read from Redis again.
    pub fn coherence_grace(mut self, grace: Duration) -> Self {
        self.coherence_grace = grace;
        self
    }

    /// Use a custom remote [`Store`] instead of Redis.
    pub fn store(mut self, store: Arc<dyn Store>) -> Self {
        self.store = Some(store);
        self
    }

    /// Bound on every remote operation (default 250 ms). A slower answer counts as a failure.
    pub fn op_timeout(mut self, t: Duration) -> Self {
        self.op_timeout = t;
        self
    }

    /// Bound on one connection attempt to Redis (default 500 ms).
    pub fn connect_timeout(mut self, t: Duration) -> Self {
        self.connect_timeout = t;
        self
    }

    /// Circuit breaker: consecutive failures that open it (default 3) and its cool-down
    /// (default 2 s).
    pub fn breaker(mut self, threshold: u32, cooldown: Duration) -> Self {
        self.breaker = BreakerConfig { threshold, cooldown };
        self
    }

    /// Cross-instance stampede lock: how long the lock holder may take before others compute
    /// themselves (default 5 s), and how long waiters wait for its value (default 3 s).
    pub fn stampede_lock(mut self, lease: Duration, wait: Duration) -> Self {
        self.lock = crate::policy::LockConfig { lease, wait, ..self.lock };
        self
    }

    /// Upstream budgets enforced before every upstream call of a `#[cached(budget = "..")]`
    /// function; shared through Redis when Redis is configured.
    pub fn budgets(mut self, budgets: Budgets) -> Self {
        self.budgets = Some(budgets);
        self
    }

    /// The clock budgets read for quota periods, pacing and holds (default: the system clock).
    pub fn budget_clock(mut self, clock: Arc<dyn crate::budget::Clock>) -> Self {
        self.budget_clock = Some(clock);
        self
    }

    /// At most one `Cache ERROR` line (store failures, unusable values) per `interval` (default
    /// 10 s); the next line says how many were held back. Every error is still counted in
    /// [`stats`](Cache::stats). Zero logs every error.
    pub fn error_log_interval(mut self, interval: Duration) -> Self {
        self.error_log_interval = interval;
        self
    }

    /// How often the cache re-reads its namespace's generation from Redis (default 1 s): the
    /// longest an instance keeps using the old keys after another [rotated](Cache::rotate).
    pub fn generation_refresh(mut self, every: Duration) -> Self {
        self.generation_refresh = every;
        self
    }

    /// Keep entries in a disk file at `path` under the memory tier when no Redis is configured
    /// (`disk` feature), so a restart starts warm; budgets' local counters are kept there too. A
    /// file that is corrupt or in use by another process is logged and the cache runs in memory
    /// only. Ignored (with a warning) when Redis or a custom store is configured.
    pub fn disk(mut self, path: impl Into<std::path::PathBuf>) -> Self {
        self.disk_path = Some(path.into());
        self
    }

    /// Bound on the bytes of the disk tier's entries (default 256 MiB): beyond it the expired,
    /// then the oldest entries are removed.
    pub fn disk_max_bytes(mut self, bytes: u64) -> Self {
        self.disk_max_bytes = Some(bytes);
        self
    }

    /// Values whose encoded envelope reaches `threshold` bytes are stored LZ4-compressed in the
    /// remote (and disk) tier (default 1024; `usize::MAX`: never). Reading refuses compressed
    /// values claiming more than `max_decompressed` bytes (default 16 MiB).
    pub fn compression(mut self, threshold: usize, max_decompressed: usize) -> Self {
        self.compression = crate::compress::Compression { threshold, max_decompressed };
        self
    }

    /// Turns caching off entirely: every call runs its body (for debugging and comparisons).
    pub fn enabled(mut self, on: bool) -> Self {
        self.enabled = on;
        self
    }

    /// Reads the environment on top of the defaults:
    ///
    /// | variable | meaning | default |
    /// |---|---|---|
    /// | `SYNTRA_CACHE_REDIS_URL` | `redis://[user:pass@]host:port/db` or `rediss://…`; unset or empty: memory only | unset |
    /// | `SYNTRA_CACHE_REDIS_CLUSTER` | Redis Cluster seed nodes, comma-separated (instead of the URL) | unset |
    /// | `SYNTRA_CACHE_REDIS_SENTINEL` | Sentinel addresses, comma-separated (instead of the URL) | unset |
    /// | `SYNTRA_CACHE_REDIS_SENTINEL_MASTER` | the master's name in Sentinel (required with `SYNTRA_CACHE_REDIS_SENTINEL`) | unset |
    /// | `SYNTRA_CACHE_COHERENCE` | coherent memory tiers across instances (`true`/`false`) | `false` |
    /// | `SYNTRA_CACHE_COHERENCE_GRACE_MS` | trust in memory copies while the channel is lost | 1000 |
    /// | `SYNTRA_CACHE_NAMESPACE` | key namespace | `syntra` |
    /// | `SYNTRA_CACHE_MEMORY_CAPACITY` | memory tier entries (0 = off) | 10000 |
    /// | `SYNTRA_CACHE_MEMORY_BYTES` | memory tier bound in (estimated) bytes | 67108864 (64 MiB) |
    /// | `SYNTRA_CACHE_MAX_VALUE_BYTES` | bound on one encoded value | 1048576 (1 MiB) |
    /// | `SYNTRA_CACHE_SIGNING_KEY` | sign and verify values in Redis (≥ 16 bytes) | unset |
    /// | `SYNTRA_CACHE_SIGNING_KEYS_OLD` | comma-separated keys that verify but never sign | unset |
    /// | `SYNTRA_CACHE_LOCAL_TIER` | memory tier in front of Redis (`true`/`false`) | `true` |
    /// | `SYNTRA_CACHE_LOCAL_TTL_CAP_MS` | cap on memory copies of Redis values | none |
    /// | `SYNTRA_CACHE_TIMEOUT_MS` | bound on each Redis operation | 250 |
    /// | `SYNTRA_CACHE_CONNECT_TIMEOUT_MS` | bound on each connection attempt | 500 |
    /// | `SYNTRA_CACHE_BREAKER_THRESHOLD` | failures that open the breaker | 3 |
    /// | `SYNTRA_CACHE_BREAKER_COOLDOWN_MS` | breaker cool-down | 2000 |
    /// | `SYNTRA_CACHE_GENERATION_REFRESH_MS` | how often the key generation is re-read | 1000 |
    /// | `SYNTRA_CACHE_DISK_PATH` | disk tier file when no Redis is configured | unset |
    /// | `SYNTRA_CACHE_DISK_MAX_BYTES` | bound on the disk tier's entries | 268435456 |
    /// | `SYNTRA_CACHE_COMPRESS_THRESHOLD` | compress encoded values from this many bytes (`off`: never) | 1024 |
    /// | `SYNTRA_CACHE_MAX_DECOMPRESSED` | bound on a decompressed value, bytes | 16777216 |
    /// | `SYNTRA_CACHE_DISABLED` | `1`/`true`: bypass the cache | unset |
    /// | `SYNTRA_CACHE_BUDGETS` | `seed`: the seed's provider budgets ([`Budgets::seed_defaults`]), overridable by `SYNTRA_BUDGET_*` | unset (no budgets) |
    pub fn from_env() -> Result<Self, BuildError> {
        Self::from_vars(|k| std::env::var(k).ok())
    }

    /// Like [`from_env`](Self::from_env) with a custom variable source (for tests).
    pub fn from_vars(get: impl Fn(&str) -> Option<String>) -> Result<Self, BuildError> {
        let mut b = CacheBuilder::default();
        let get = |k: &str| get(k).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        let list = |v: String| v.split(',').map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()).collect();
        let topologies = [
            get("SYNTRA_CACHE_REDIS_URL").map(|u| ("SYNTRA_CACHE_REDIS_URL", u.clone(), RedisTopology::Single(u))),
            get("SYNTRA_CACHE_REDIS_CLUSTER")
                .map(|v| ("SYNTRA_CACHE_REDIS_CLUSTER", v.clone(), RedisTopology::Cluster(list(v)))),
            match get("SYNTRA_CACHE_REDIS_SENTINEL") {
                None => None,
                Some(v) => {
                    let Some(master) = get("SYNTRA_CACHE_REDIS_SENTINEL_MASTER") else {
                        return Err(BuildError::Env {
                            var: "SYNTRA_CACHE_REDIS_SENTINEL_MASTER",
                            value: String::new(),
                            reason: "required with SYNTRA_CACHE_REDIS_SENTINEL (the master's name in Sentinel)".into(),
                        });
                    };
                    Some((
                        "SYNTRA_CACHE_REDIS_SENTINEL",
                        v.clone(),
                        RedisTopology::Sentinel { sentinels: list(v), master },
                    ))
                }
            },
        ];
        let mut topologies = topologies.into_iter().flatten();
        if let Some((_, _, t)) = topologies.next() {
            b.redis = Some(t);
        }
        if let Some((var, value, _)) = topologies.next() {
            return Err(BuildError::Env {
                var,
                value: redact_urls(&value),
                reason:
                    "set only one of SYNTRA_CACHE_REDIS_URL, SYNTRA_CACHE_REDIS_CLUSTER and SYNTRA_CACHE_REDIS_SENTINEL"
                        .into(),
            });
        }
        if let Some(v) = get("SYNTRA_CACHE_COHERENCE") {
            b.coherent = parse_bool("SYNTRA_CACHE_COHERENCE", &v)?;
        }
        if let Some(v) = get("SYNTRA_CACHE_COHERENCE_GRACE_MS") {
            b.coherence_grace = Duration::from_millis(parse("SYNTRA_CACHE_COHERENCE_GRACE_MS", &v)?);
        }
        if let Some(ns) = get("SYNTRA_CACHE_NAMESPACE") {
            b.namespace = ns;
        }
        if let Some(v) = get("SYNTRA_CACHE_MEMORY_CAPACITY") {
            b.memory_capacity = parse("SYNTRA_CACHE_MEMORY_CAPACITY", &v)?;
        }
        if let Some(v) = get("SYNTRA_CACHE_MEMORY_BYTES") {
            b.memory_bytes = parse("SYNTRA_CACHE_MEMORY_BYTES", &v)?;
        }
        if let Some(v) = get("SYNTRA_CACHE_MAX_VALUE_BYTES") {
            b.max_value_bytes = parse("SYNTRA_CACHE_MAX_VALUE_BYTES", &v)?;
        }
        // Secrets: never echoed back in an error (`BuildError::Env` carries the value).
        b.signing_key = get("SYNTRA_CACHE_SIGNING_KEY");
        if let Some(v) = get("SYNTRA_CACHE_SIGNING_KEYS_OLD") {
            b.signing_keys_old = v.split(',').map(str::trim).filter(|k| !k.is_empty()).map(String::from).collect();
        }
        if let Some(v) = get("SYNTRA_CACHE_LOCAL_TIER") {
            b.local_tier = parse_bool("SYNTRA_CACHE_LOCAL_TIER", &v)?;
        }
        if let Some(v) = get("SYNTRA_CACHE_LOCAL_TTL_CAP_MS") {
            b.local_ttl_cap = Some(Duration::from_millis(parse("SYNTRA_CACHE_LOCAL_TTL_CAP_MS", &v)?));
        }
        if let Some(v) = get("SYNTRA_CACHE_TIMEOUT_MS") {
            b.op_timeout = Duration::from_millis(parse("SYNTRA_CACHE_TIMEOUT_MS", &v)?);
        }
        if let Some(v) = get("SYNTRA_CACHE_CONNECT_TIMEOUT_MS") {
            b.connect_timeout = Duration::from_millis(parse("SYNTRA_CACHE_CONNECT_TIMEOUT_MS", &v)?);
        }
        if let Some(v) = get("SYNTRA_CACHE_BREAKER_THRESHOLD") {
            b.breaker.threshold = parse("SYNTRA_CACHE_BREAKER_THRESHOLD", &v)?;
        }
        if let Some(v) = get("SYNTRA_CACHE_BREAKER_COOLDOWN_MS") {
            b.breaker.cooldown = Duration::from_millis(parse("SYNTRA_CACHE_BREAKER_COOLDOWN_MS", &v)?);
        }
        if let Some(v) = get("SYNTRA_CACHE_BUDGETS") {
            b.budgets = match v.as_str() {
                "seed" => Some(Budgets::seed_defaults()),
                "off" | "none" => None,
                _ => {
                    return Err(BuildError::Env {
                        var: "SYNTRA_CACHE_BUDGETS",
                        value: v,
                        reason: "expected `seed` or `off`".into(),
                    })
                }
            };
        }
        if let Some(b2) = b.budgets.take() {
            let vars = |k: &str| get(k);
            b.budgets = Some(
                b2.with_vars(vars).map_err(|e| BuildError::Invalid { setting: "budgets", reason: e.to_string() })?,
            );
        }
        if let Some(v) = get("SYNTRA_CACHE_GENERATION_REFRESH_MS") {
            b.generation_refresh = Duration::from_millis(parse("SYNTRA_CACHE_GENERATION_REFRESH_MS", &v)?);
        }
        if let Some(v) = get("SYNTRA_CACHE_DISK_PATH") {
            b.disk_path = Some(v.into());
        }
        if let Some(v) = get("SYNTRA_CACHE_DISK_MAX_BYTES") {
            b.disk_max_bytes = Some(parse("SYNTRA_CACHE_DISK_MAX_BYTES", &v)?);
        }
        if let Some(v) = get("SYNTRA_CACHE_COMPRESS_THRESHOLD") {
            b.compression.threshold = match v.as_str() {
                "off" | "never" => usize::MAX,
                _ => parse("SYNTRA_CACHE_COMPRESS_THRESHOLD", &v)?,
            };
        }
        if let Some(v) = get("SYNTRA_CACHE_MAX_DECOMPRESSED") {
            b.compression.max_decompressed = parse("SYNTRA_CACHE_MAX_DECOMPRESSED", &v)?;
        }
        if let Some(v) = get("SYNTRA_CACHE_DISABLED") {
            b.enabled = !parse_bool("SYNTRA_CACHE_DISABLED", &v)?;
        }
        Ok(b)
    }

    /// Builds the cache. Does not connect to Redis: the first call does, so the application
    /// starts while Redis is down.
    pub fn build(self) -> Result<Cache, BuildError> {
        // `{namespace}::` is the runtime's own key space (locks, budgets): a namespace must not
        // reach into it.
        if self.namespace.is_empty()
            || !self.namespace.bytes().all(|c| c.is_ascii_alphanumeric() || b"_-.:".contains(&c))
            || self.namespace.contains("::")
            || self.namespace.starts_with(':')
            || self.namespace.ends_with(':')
        {
            return Err(BuildError::Invalid {
                setting: "namespace",
                reason: format!(
                    "{:?}: use letters, digits, `_`, `-`, `.` and single `:` between segments",
                    self.namespace
                ),
            });
        }
        if self.namespace.len() > MAX_NAMESPACE {
            return Err(BuildError::Invalid {
                setting: "namespace",
                reason: format!("{} bytes; at most {MAX_NAMESPACE}", self.namespace.len()),
            });
        }
        if self.memory_bytes == 0 {
            return Err(BuildError::Invalid {
                setting: "memory_bytes",
                reason: "must be > 0 (turn the tier off with memory_capacity(0))".into(),
            });
        }
        if self.max_value_bytes == 0 {
            return Err(BuildError::Invalid { setting: "max_value_bytes", reason: "must be > 0".into() });
        }
        let seal = match &self.signing_key {
            Some(key) => Some(
                crate::seal::Sealer::new(key, &self.signing_keys_old)
                    .map_err(|e| BuildError::Invalid { setting: "signing key", reason: e.to_string() })?,
            ),
            None if !self.signing_keys_old.is_empty() => {
                return Err(BuildError::Invalid {
                    setting: "signing key",
                    reason: "old signing keys given without a current one".into(),
                })
            }
            None => None,
        };
        let max_stored = self.max_value_bytes + if seal.is_some() { crate::seal::OVERHEAD } else { 0 };
        if self.op_timeout.is_zero() {
            return Err(BuildError::Invalid { setting: "op_timeout", reason: "must be > 0".into() });
        }
        if self.breaker.threshold == 0 {
            return Err(BuildError::Invalid { setting: "breaker threshold", reason: "must be >= 1".into() });
        }
        let clock = self.budget_clock;
        let mut budgets = self.budgets.map(BudgetEnforcer::builder).map(|b| {
            let b =
                b.namespace(self.namespace.clone()).op_timeout(self.op_timeout).connect_timeout(self.connect_timeout);
            match clock {
                Some(c) => b.clock(c),
                None => b,
            }
        });
        let coherent_ok = self.store.is_none() && self.redis.is_some();
        if self.coherent && !coherent_ok {
            return Err(BuildError::Invalid {
                setting: "coherent",
                reason: "a coherent memory tier needs Redis (a URL, a cluster or Sentinel), not a custom store".into(),
            });
        }
        #[allow(unused_mut)]
        let mut conn: Option<Conn> = None;
        #[cfg(feature = "redis")]
        let mut redis_store = None;
        let store: Option<Arc<dyn Store>> = match (self.store, &self.redis) {
            (Some(s), _) => Some(s),
            #[cfg(feature = "redis")]
            (None, Some(t)) => {
                let r = open_redis(t, self.op_timeout, self.connect_timeout, max_stored, &mut budgets)?;
                conn = Some(r.conn().clone());
                redis_store = Some(r.clone());
                Some(Arc::new(r))
            }
            #[cfg(not(feature = "redis"))]
            (None, Some(_)) => return Err(BuildError::RedisDisabled),
            (None, None) => None,
        };
        let store = match (store, self.disk_path) {
            (Some(s), Some(path)) => {
                tracing::warn!(target: "syntra_cache", path = %path.display(), "Disk tier ignored: a remote store is configured");
                Some(s)
            }
            (Some(s), None) => Some(s),
            (None, Some(path)) => open_disk(path, self.disk_max_bytes, &mut budgets),
            (None, None) => None,
        };
        let budgets = budgets
            .map(|b| b.build())
            .transpose()
            .map_err(|e| BuildError::Invalid { setting: "budgets", reason: e.to_string() })?;
        let local = (self.memory_capacity > 0 && (self.local_tier || store.is_none()))
            .then(|| MemoryTier::new(self.memory_capacity, self.memory_bytes));
        // The INFO poller of the exporter reads Redis through the same connection.
        #[cfg(feature = "redis")]
        let redis = conn.clone();
        #[cfg(feature = "redis")]
        let coherence = match (&local, conn) {
            (Some(local), Some(conn)) if self.coherent => Some(crate::store::coherence::Coherence::new(
                conn,
                &self.namespace,
                local.clone(),
                self.coherence_grace,
            )),
            _ => None,
        };
        #[cfg(not(feature = "redis"))]
        let _ = conn;
        Ok(Cache {
            inner: Arc::new(Inner {
                id: NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
                tiers: Tiered {
                    local,
                    remote: store.map(|s| Guarded::new(s, self.breaker)),
                    local_ttl_cap: self.local_ttl_cap,
                    seal,
                    max_value_bytes: self.max_value_bytes,
                    #[cfg(feature = "redis")]
                    coherence,
                    compression: self.compression,
                },
                metrics: Registry::default(),
                enabled: self.enabled,
                flights: Default::default(),
                lock: self.lock,
                budgets,
                error_log: crate::throttle::ErrorLog::new(self.error_log_interval),
                generation: crate::rotation::Generation::new(&self.namespace, self.generation_refresh),
                namespace: self.namespace,
                generation_refresh: self.generation_refresh,
                #[cfg(feature = "redis")]
                redis_store,
                #[cfg(feature = "redis")]
                redis,
            }),
        })
    }
}

#[cfg(feature = "redis")]
type Conn = crate::connection::RedisConn;
#[cfg(not(feature = "redis"))]
type Conn = ();

/// Opens the disk tier; budgets, if any, keep their counters in it. A failure is logged and the
/// cache runs in memory only.
#[cfg(feature = "disk")]
fn open_disk(
    path: std::path::PathBuf,
    max_bytes: Option<u64>,
    budgets: &mut Option<crate::budget::EnforcerBuilder>,
) -> Option<Arc<dyn Store>> {
    use crate::store::disk::{DiskConfig, DiskStore};
    let mut config = DiskConfig::new(path);
    if let Some(max) = max_bytes {
        config.max_bytes = max;
    }
    match DiskStore::open(config) {
        Ok(disk) => {
            if let Some(b) = budgets.take() {
                *budgets = Some(b.persist(Arc::new(disk.clone())));
            }
            Some(Arc::new(disk))
        }
        Err(e) => {
            tracing::error!(target: "syntra_cache", error = %e, "Disk tier unavailable; caching in memory only");
            None
        }
    }
}

#[cfg(not(feature = "disk"))]
fn open_disk(
    path: std::path::PathBuf,
    _: Option<u64>,
    _: &mut Option<crate::budget::EnforcerBuilder>,
) -> Option<Arc<dyn Store>> {
    tracing::error!(target: "syntra_cache", path = %path.display(), "Disk tier requested but the `disk` feature is off; caching in memory only");
    None
}

/// Opens Redis; budgets, if any, share its connection (and so does the coherence channel).
#[cfg(feature = "redis")]
fn open_redis(
    topology: &RedisTopology,
    op_timeout: Duration,
    connect_timeout: Duration,
    read_cap: usize,
    budgets: &mut Option<crate::budget::EnforcerBuilder>,
) -> Result<crate::store::redis::RedisStore, BuildError> {
    use crate::connection::RedisConfig;
    use crate::store::redis::RedisStore;
    let store =
        RedisStore::open_topology(topology, RedisConfig { op_timeout, connect_timeout })?.with_read_cap(read_cap);
    if let Some(b) = budgets.take() {
        *budgets = Some(b.redis_store(&store));
    }
    Ok(store)
}

/// A comma-separated list of URLs with every password hidden.
fn redact_urls(urls: &str) -> String {
    urls.split(',')
        .map(|u| match (u.split_once("://"), u.rsplit_once('@')) {
            (Some((scheme, _)), Some((_, host))) => format!("{scheme}://<redacted>@{host}"),
            _ => u.to_owned(),
        })
        .collect::<Vec<_>>()
        .join(",")
}

fn parse<T: std::str::FromStr>(var: &'static str, v: &str) -> Result<T, BuildError>
where
    T::Err: std::fmt::Display,
{
    v.parse().map_err(|e: T::Err| BuildError::Env { var, value: v.into(), reason: e.to_string() })
}

fn parse_bool(var: &'static str, v: &str) -> Result<bool, BuildError> {
    match v.to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(BuildError::Env { var, value: v.into(), reason: "expected true or false".into() }),
    }
}

static DEFAULT: OnceLock<Cache> = OnceLock::new();
static NEXT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// The process-wide cache used by `#[cached]` functions without `cache = ...`: the one given to
/// [`set_default`], else one built from the environment on first use. A bad environment is
/// logged and falls back to the in-memory default, so a typo never takes the bot down.
pub fn default_cache() -> &'static Cache {
    DEFAULT.get_or_init(|| match Cache::from_env() {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(target: "syntra_cache", error = %e, "Cache configuration invalid; using the in-memory default");
            Cache::memory()
        }
    })
}

/// Installs the process-wide default cache; fails if it was already used or set.
pub fn set_default(cache: Cache) -> Result<(), CacheError> {
    DEFAULT.set(cache).map_err(|_| CacheError::DefaultAlreadySet)
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::collections::HashMap;

    fn vars(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |k: &str| map.get(k).cloned()
    }

    #[test]
    fn env_parsing_applies_every_variable() {
        // Every value differs from its default, so a variable that is read but not applied fails.
        let d = CacheBuilder::default();
        let b = CacheBuilder::from_vars(vars(&[
            ("SYNTRA_CACHE_REDIS_URL", " redis://127.0.0.1:1/4 "),
            ("SYNTRA_CACHE_NAMESPACE", "bot"),
            ("SYNTRA_CACHE_MEMORY_CAPACITY", "5"),
            ("SYNTRA_CACHE_LOCAL_TIER", "off"),
            ("SYNTRA_CACHE_LOCAL_TTL_CAP_MS", "1234"),
            ("SYNTRA_CACHE_TIMEOUT_MS", "777"),
            ("SYNTRA_CACHE_CONNECT_TIMEOUT_MS", "888"),
            ("SYNTRA_CACHE_BREAKER_THRESHOLD", "7"),
            ("SYNTRA_CACHE_BREAKER_COOLDOWN_MS", "4321"),
            ("SYNTRA_CACHE_BUDGETS", "seed"),
            ("SYNTRA_BUDGET_COINGECKO_RATE", "10/min"),
            ("SYNTRA_CACHE_DISABLED", "yes"),
        ]))
        .unwrap();
        assert_eq!(b.redis, Some(RedisTopology::Single("redis://127.0.0.1:1/4".into())), "trimmed");
        assert_eq!((b.namespace.as_str(), d.namespace.as_str()), ("bot", DEFAULT_NAMESPACE));
        assert_eq!((b.memory_capacity, d.memory_capacity), (5, DEFAULT_MEMORY_CAPACITY));
        assert!(!b.local_tier && d.local_tier);
        assert_eq!((b.local_ttl_cap, d.local_ttl_cap), (Some(Duration::from_millis(1234)), None));
        assert_eq!(b.op_timeout, Duration::from_millis(777));
        assert_eq!(b.connect_timeout, Duration::from_millis(888));
        assert_eq!(b.breaker.threshold, 7);
        assert_eq!(b.breaker.cooldown, Duration::from_millis(4321));
        assert!(b.op_timeout != d.op_timeout && b.connect_timeout != d.connect_timeout);
        assert!(b.breaker.threshold != d.breaker.threshold && b.breaker.cooldown != d.breaker.cooldown);
        assert!(!b.enabled && d.enabled && d.budgets.is_none());
        let budgets = b.budgets.as_ref().expect("SYNTRA_CACHE_BUDGETS=seed");
        let seed = Budgets::seed_defaults();
        assert_eq!(budgets.names(), seed.names());
        let cg = budgets.get("coingecko").unwrap();
        assert_eq!((cg.rates[0].limit, cg.rates[0].per), (10, Duration::from_secs(60)), "SYNTRA_BUDGET_* applied");
        assert_eq!(seed.get("coingecko").unwrap().rates[0].limit, 30);
        assert!(format!("{b:?}").contains("memory_capacity: 5"), "{b:?}");

        // What the built cache shows of them.
        let c = b.build().unwrap();
        assert_eq!(c.namespace(), "bot");
        assert_eq!(c.full_key("x"), "bot:x");
        assert!(!c.is_enabled(), "SYNTRA_CACHE_DISABLED=yes");
        assert!(c.has_remote(), "SYNTRA_CACHE_REDIS_URL");
        let names: Vec<String> = c.budget_stats().into_iter().map(|s| s.name).collect();
        assert!(names.iter().any(|n| n == "coingecko") && names.len() == seed.names().len(), "{names:?}");
        assert_eq!(c.budgets().unwrap().budgets().get("coingecko").unwrap().rates[0].limit, 10);

        // Nothing set (or only blanks): the defaults, memory only, enabled, no budgets.
        let c = CacheBuilder::from_vars(vars(&[("SYNTRA_CACHE_REDIS_URL", "  "), ("SYNTRA_CACHE_NAMESPACE", "")]))
            .unwrap()
            .build()
            .unwrap();
        assert_eq!(c.namespace(), DEFAULT_NAMESPACE);
        assert!(c.is_enabled() && !c.has_remote() && c.budgets().is_none());

        // Every spelling of a boolean, both ways.
        for (v, on) in [("1", true), ("TRUE", true), ("on", true), ("0", false), ("No", false), ("false", false)] {
            let b = CacheBuilder::from_vars(vars(&[("SYNTRA_CACHE_LOCAL_TIER", v), ("SYNTRA_CACHE_DISABLED", v)]));
            let b = b.unwrap();
            assert_eq!((b.local_tier, b.enabled), (on, !on), "{v}");
        }
        assert!(CacheBuilder::from_vars(vars(&[("SYNTRA_CACHE_BUDGETS", "off")])).unwrap().budgets.is_none());
    }

    #[test]
    fn env_parsing_rejects_bad_values_naming_the_variable() {
        for var in [
            "SYNTRA_CACHE_MEMORY_CAPACITY",
            "SYNTRA_CACHE_LOCAL_TIER",
            "SYNTRA_CACHE_LOCAL_TTL_CAP_MS",
            "SYNTRA_CACHE_TIMEOUT_MS",
            "SYNTRA_CACHE_CONNECT_TIMEOUT_MS",
            "SYNTRA_CACHE_BREAKER_THRESHOLD",
            "SYNTRA_CACHE_BREAKER_COOLDOWN_MS",
            "SYNTRA_CACHE_BUDGETS",
            "SYNTRA_CACHE_DISABLED",
        ] {
            match CacheBuilder::from_vars(vars(&[(var, "soon")])) {
                Err(BuildError::Env { var: v, value, .. }) => assert_eq!((v, value.as_str()), (var, "soon")),
                other => panic!("{var}=soon: {other:?}"),
            }
        }
        let bad_budget =
            CacheBuilder::from_vars(vars(&[("SYNTRA_CACHE_BUDGETS", "seed"), ("SYNTRA_BUDGET_COINGECKO_RATE", "x")]));
        assert!(matches!(bad_budget, Err(BuildError::Invalid { setting: "budgets", .. })), "{bad_budget:?}");
        // Values that parse but cannot be used are refused when building.
        let zero = |var| CacheBuilder::from_vars(vars(&[(var, "0")])).unwrap().build().unwrap_err();
        assert!(matches!(zero("SYNTRA_CACHE_TIMEOUT_MS"), BuildError::Invalid { setting: "op_timeout", .. }));
        assert!(matches!(zero("SYNTRA_CACHE_BREAKER_THRESHOLD"), BuildError::Invalid { .. }));
        assert!(CacheBuilder::from_vars(vars(&[("SYNTRA_CACHE_NAMESPACE", "a b")])).unwrap().build().is_err());
    }

    #[test]
    fn bounds_and_signing_keys_from_the_environment() {
        let secret = "an-example-signing-key-of-32-bytes";
        let b = CacheBuilder::from_vars(vars(&[
            ("SYNTRA_CACHE_MEMORY_BYTES", "1048576"),
            ("SYNTRA_CACHE_MAX_VALUE_BYTES", "4096"),
            ("SYNTRA_CACHE_SIGNING_KEY", secret),
            ("SYNTRA_CACHE_SIGNING_KEYS_OLD", " old-key-number-one-xx , old-key-number-two-xx ,"),
        ]))
        .unwrap();
        assert_eq!((b.memory_bytes, b.max_value_bytes), (1 << 20, 4096));
        assert_eq!(b.signing_keys_old, ["old-key-number-one-xx", "old-key-number-two-xx"]);
        assert!(!format!("{b:?}").contains(secret) && !format!("{b:?}").contains("old-key"), "{b:?}");
        let c = b.build().unwrap();
        assert!(c.inner.tiers.seal.is_some() && !format!("{c:?}").contains(secret));
        assert_eq!(c.inner.tiers.max_value_bytes, 4096);
        let d = CacheBuilder::default();
        assert_eq!((d.memory_bytes, d.max_value_bytes), (DEFAULT_MEMORY_BYTES, 1 << 20));
        // A weak key is refused without being echoed.
        let err =
            CacheBuilder::from_vars(vars(&[("SYNTRA_CACHE_SIGNING_KEY", "hunter2")])).unwrap().build().unwrap_err();
        assert!(
            matches!(err, BuildError::Invalid { setting: "signing key", .. }) && !err.to_string().contains("hunter2")
        );
        let err =
            CacheBuilder::from_vars(vars(&[("SYNTRA_CACHE_SIGNING_KEYS_OLD", secret)])).unwrap().build().unwrap_err();
        assert!(!err.to_string().contains(secret), "{err}");
        for var in ["SYNTRA_CACHE_MEMORY_BYTES", "SYNTRA_CACHE_MAX_VALUE_BYTES"] {
            assert!(CacheBuilder::from_vars(vars(&[(var, "soon")])).is_err(), "{var}");
            assert!(CacheBuilder::from_vars(vars(&[(var, "0")])).unwrap().build().is_err(), "{var}=0");
        }
        assert!(Cache::builder().namespace("n".repeat(65)).build().is_err(), "namespace length bounded");
    }

    #[cfg(feature = "redis")]
    #[test]
    fn redis_url_errors_hide_passwords() {
        let err = Cache::builder().redis("redis://user:hunter2@[bad").build().unwrap_err();
        assert!(!err.to_string().contains("hunter2"), "{err}");
        let ok = Cache::builder().redis("redis://user:hunter2@127.0.0.1:1/0").build().unwrap();
        assert!(!format!("{ok:?}").contains("hunter2"));
    }
}
