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

/// Default namespace: every key starts with it.
pub const DEFAULT_NAMESPACE: &str = "syntra";
/// Default capacity of the memory tier, in entries.
pub const DEFAULT_MEMORY_CAPACITY: u64 = 10_000;

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
    /// The namespace's key generation (see [`rotation`](crate::rotation)).
    pub(crate) generation: crate::rotation::Generation,
    /// Grace before sweeping after a rotation: the generation refresh interval.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) generation_refresh: Duration,
    /// The Redis store, when the remote tier is Redis (for rotation).
    #[cfg(feature = "redis")]
    pub(crate) redis: Option<crate::store::redis::RedisStore>,
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
        let redis = self.inner.redis.as_ref().ok_or(CacheError::Unsupported("rotation needs Redis"))?;
        let conn = redis.conn();
        let mut m = conn.manager()?;
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
        let redis = self.inner.redis.as_ref().ok_or(CacheError::Unsupported("rotation needs Redis"))?;
        let mut m = redis.conn().manager()?;
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
        Ok(self.inner.tiers.remove(&self.full_key(key)).await?)
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
    local_tier: bool,
    local_ttl_cap: Option<Duration>,
    redis_url: Option<String>,
    store: Option<Arc<dyn Store>>,
    op_timeout: Duration,
    connect_timeout: Duration,
    breaker: BreakerConfig,
    enabled: bool,
    lock: crate::policy::LockConfig,
    budgets: Option<Budgets>,
    budget_clock: Option<Arc<dyn crate::budget::Clock>>,
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
            .field("redis", &self.redis_url.as_ref().map(|_| "<configured>"))
            .finish_non_exhaustive()
    }
}

impl Default for CacheBuilder {
    fn default() -> Self {
        CacheBuilder {
            namespace: DEFAULT_NAMESPACE.into(),
            memory_capacity: DEFAULT_MEMORY_CAPACITY,
            local_tier: true,
            local_ttl_cap: None,
            redis_url: None,
            store: None,
            op_timeout: Duration::from_millis(250),
            connect_timeout: Duration::from_millis(500),
            breaker: BreakerConfig::default(),
            enabled: true,
            lock: crate::policy::LockConfig::default(),
            budgets: None,
            budget_clock: None,
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
        self.redis_url = Some(url.into());
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
    /// | `SYNTRA_CACHE_NAMESPACE` | key namespace | `syntra` |
    /// | `SYNTRA_CACHE_MEMORY_CAPACITY` | memory tier entries (0 = off) | 10000 |
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
        if let Some(url) = get("SYNTRA_CACHE_REDIS_URL") {
            b.redis_url = Some(url);
        }
        if let Some(ns) = get("SYNTRA_CACHE_NAMESPACE") {
            b.namespace = ns;
        }
        if let Some(v) = get("SYNTRA_CACHE_MEMORY_CAPACITY") {
            b.memory_capacity = parse("SYNTRA_CACHE_MEMORY_CAPACITY", &v)?;
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
        #[cfg(feature = "redis")]
        let mut redis = None;
        let store: Option<Arc<dyn Store>> = match (self.store, self.redis_url) {
            (Some(s), _) => Some(s),
            #[cfg(feature = "redis")]
            (None, Some(url)) => {
                let r = open_redis(&url, self.op_timeout, self.connect_timeout, &mut budgets)?;
                redis = Some(r.clone());
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
            .then(|| MemoryTier::new(self.memory_capacity));
        Ok(Cache {
            inner: Arc::new(Inner {
                id: NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
                tiers: Tiered {
                    local,
                    remote: store.map(|s| Guarded::new(s, self.breaker)),
                    local_ttl_cap: self.local_ttl_cap,
                    compression: self.compression,
                },
                metrics: Registry::default(),
                enabled: self.enabled,
                flights: Default::default(),
                lock: self.lock,
                budgets,
                generation: crate::rotation::Generation::new(&self.namespace, self.generation_refresh),
                namespace: self.namespace,
                generation_refresh: self.generation_refresh,
                #[cfg(feature = "redis")]
                redis,
            }),
        })
    }
}

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

/// Opens Redis; budgets, if any, share its connection.
#[cfg(feature = "redis")]
fn open_redis(
    url: &str,
    op_timeout: Duration,
    connect_timeout: Duration,
    budgets: &mut Option<crate::budget::EnforcerBuilder>,
) -> Result<crate::store::redis::RedisStore, BuildError> {
    use crate::connection::RedisConfig;
    use crate::store::redis::RedisStore;
    let store = RedisStore::open(url, RedisConfig { op_timeout, connect_timeout })?;
    if let Some(b) = budgets.take() {
        *budgets = Some(b.redis_store(&store));
    }
    Ok(store)
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
        assert_eq!(b.redis_url.as_deref(), Some("redis://127.0.0.1:1/4"), "trimmed");
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

    #[cfg(feature = "redis")]
    #[test]
    fn redis_url_errors_hide_passwords() {
        let err = Cache::builder().redis("redis://user:hunter2@[bad").build().unwrap_err();
        assert!(!err.to_string().contains("hunter2"), "{err}");
        let ok = Cache::builder().redis("redis://user:hunter2@127.0.0.1:1/0").build().unwrap();
        assert!(!format!("{ok:?}").contains("hunter2"));
    }
}
