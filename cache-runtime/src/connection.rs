//! The one Redis connection helper of the runtime, shared by the Redis tier, the budgets and the
//! coherence channel: one [`Link`] whatever the topology (a single server, a Redis Cluster, or a
//! master found through Sentinel), one timeout per operation, and URL redaction so that a
//! password never reaches a log line or an error.
//!
//! - Single server: a lazily connected, self-reconnecting [`ConnectionManager`].
//! - Cluster: redis-rs' `cluster-async` [`ClusterConnection`] (slot map, MOVED/ASK, topology
//!   refresh and reconnects are its own). Commands are routed by key; SCAN is sent to every
//!   master ([`Scan`]); multi-key commands are split by slot by redis-rs.
//! - Sentinel: a [`ConnectionManager`] on the master Sentinel names. redis-rs' Sentinel
//!   connections do not follow a failover (redis-rs issue 1438), so the master is resolved again
//!   after a connection error, a timeout or a `READONLY` reply, and at once when a Sentinel
//!   announces `+switch-master`.

pub use crate::cache::RedisTopology;
use crate::error::{BuildError, StoreError};
use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{RoutingInfo, SingleNodeRoutingInfo};
use redis::{Client, Cmd, ConnectionAddr, ConnectionInfo, IntoConnectionInfo, RedisError, RedisFuture, Value};
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::*};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

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

/// A connection to Redis, whatever the topology. Cheap to clone (clones share the connection).
#[derive(Clone)]
pub(crate) struct RedisConn {
    kind: Arc<Kind>,
    config: RedisConfig,
}

// One per connection, behind an `Arc`: the size difference costs nothing.
#[allow(clippy::large_enum_variant)]
enum Kind {
    /// The manager is replaced when its connection attempt failed in a way it never retries by
    /// itself (see [`RedisConn::run`]).
    Single {
        client: Client,
        manager: std::sync::RwLock<Option<ConnectionManager>>,
    },
    Cluster {
        client: ClusterClient,
        seeds: Vec<ConnectionInfo>,
        conn: tokio::sync::OnceCell<ClusterConnection>,
    },
    Sentinel(Arc<SentinelState>),
}

impl std::fmt::Debug for RedisConn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Addresses only: URLs may hold a password.
        let mut d = f.debug_struct("RedisConn");
        match &*self.kind {
            Kind::Single { client, .. } => d.field("addr", &client.get_connection_info().addr().to_string()),
            Kind::Cluster { seeds, .. } => {
                d.field("cluster", &seeds.iter().map(|s| s.addr().to_string()).collect::<Vec<_>>())
            }
            Kind::Sentinel(s) => d.field("sentinel_master", &s.master),
        };
        d.field("config", &self.config).finish()
    }
}

/// An open connection of any topology; implements redis-rs' [`ConnectionLike`], so commands,
/// scripts and pipelines run on it as on a [`ConnectionManager`].
#[derive(Clone)]
pub(crate) enum Link {
    /// One server (or a manager given by the application).
    Single(ConnectionManager),
    /// A Redis Cluster.
    Cluster(ClusterConnection),
    /// The current Sentinel master; errors mark it for re-resolution.
    Sentinel(ConnectionManager, Arc<SentinelState>),
}

impl ConnectionLike for Link {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Link::Single(c) => c.req_packed_command(cmd),
            Link::Cluster(c) => c.req_packed_command(cmd),
            Link::Sentinel(c, state) => {
                let state = state.clone();
                Box::pin(async move { state.observe(c.req_packed_command(cmd).await) })
            }
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Link::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Link::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
            Link::Sentinel(c, state) => {
                let state = state.clone();
                Box::pin(async move { state.observe(c.req_packed_commands(pipeline, offset, count).await) })
            }
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Link::Single(c) | Link::Sentinel(c, _) => c.get_db(),
            Link::Cluster(c) => c.get_db(),
        }
    }
}

fn manager_config(config: RedisConfig) -> ConnectionManagerConfig {
    ConnectionManagerConfig::new()
        .set_connection_timeout(Some(config.connect_timeout))
        .set_response_timeout(Some(config.op_timeout))
        .set_number_of_retries(2)
        .set_min_delay(Duration::from_millis(50))
        .set_max_delay(Duration::from_secs(2))
}

fn url_error(e: RedisError, url: &str) -> BuildError {
    BuildError::RedisUrl(redact(&e.to_string(), url))
}

fn parse_urls(urls: &[String], what: &str) -> Result<Vec<ConnectionInfo>, BuildError> {
    if urls.is_empty() {
        return Err(BuildError::RedisUrl(format!("no {what} address given")));
    }
    urls.iter().map(|u| u.as_str().into_connection_info().map_err(|e| url_error(e, u))).collect()
}

impl RedisConn {
    /// Parses `url`; does not connect (the first operation does).
    pub(crate) fn open(url: &str, config: RedisConfig) -> Result<Self, BuildError> {
        Self::topology(&RedisTopology::Single(url.to_owned()), config)
    }

    /// Parses the addresses of `topology`; does not connect (the first operation does).
    pub(crate) fn topology(topology: &RedisTopology, config: RedisConfig) -> Result<Self, BuildError> {
        let kind = match topology {
            RedisTopology::Single(url) => {
                let client = Client::open(url.as_str()).map_err(|e| url_error(e, url))?;
                Kind::Single { client, manager: std::sync::RwLock::new(None) }
            }
            RedisTopology::Cluster(urls) => {
                let seeds = parse_urls(urls, "cluster seed")?;
                let client = ClusterClient::builder(seeds.clone())
                    .connection_timeout(config.connect_timeout)
                    .response_timeout(config.op_timeout)
                    .retries(3)
                    .min_retry_wait(20)
                    .max_retry_wait(200)
                    .build()
                    .map_err(|e| BuildError::RedisUrl(redact(&e.to_string(), &urls.join(","))))?;
                Kind::Cluster { client, seeds, conn: tokio::sync::OnceCell::new() }
            }
            RedisTopology::Sentinel { sentinels, master } => {
                if master.is_empty() {
                    return Err(BuildError::RedisUrl("the Sentinel master name is empty".into()));
                }
                let infos = parse_urls(sentinels, "Sentinel")?;
                let node = infos[0].clone();
                let sentinels = infos
                    .into_iter()
                    .map(Client::open)
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| BuildError::RedisUrl(redact(&e.to_string(), &sentinels.join(","))))?;
                Kind::Sentinel(Arc::new(SentinelState {
                    sentinels,
                    master: master.clone(),
                    node,
                    config,
                    current: Mutex::new(None),
                    resolving: tokio::sync::Mutex::new(()),
                    stale: AtomicBool::new(true),
                    last_resolve_ms: AtomicU64::new(0),
                    origin: Instant::now(),
                    watching: OnceLock::new(),
                    switches: AtomicU64::new(0),
                }))
            }
        };
        Ok(RedisConn { kind: Arc::new(kind), config })
    }

    pub(crate) fn from_client(client: Client, config: RedisConfig) -> Self {
        RedisConn { kind: Arc::new(Kind::Single { client, manager: std::sync::RwLock::new(None) }), config }
    }

    /// The timeouts.
    pub(crate) fn config(&self) -> RedisConfig {
        self.config
    }

    /// A connection: created on first use (it needs a running Tokio runtime), then shared.
    pub(crate) async fn link(&self) -> Result<Link, StoreError> {
        match &*self.kind {
            Kind::Single { client, manager } => {
                if let Some(m) = manager.read().unwrap_or_else(|e| e.into_inner()).as_ref() {
                    return Ok(Link::Single(m.clone()));
                }
                let m = ConnectionManager::new_lazy_with_config(client.clone(), manager_config(self.config))
                    .map_err(backend)?;
                Ok(Link::Single(manager.write().unwrap_or_else(|e| e.into_inner()).get_or_insert(m).clone()))
            }
            Kind::Cluster { client, conn, .. } => {
                // A set-up cancelled half-way leaves the cell empty: the next caller tries again.
                let c = conn
                    .get_or_try_init(|| {
                        bounded(self.config.connect_timeout.max(self.config.op_timeout), client.get_async_connection())
                    })
                    .await?;
                Ok(Link::Cluster(c.clone()))
            }
            Kind::Sentinel(state) => state.link().await,
        }
    }

    /// Runs `op` bounded by the operation timeout, mapping redis-rs errors.
    pub(crate) async fn bounded<T, F>(&self, op: F) -> Result<T, StoreError>
    where
        F: Future<Output = redis::RedisResult<T>>,
    {
        bounded(self.config.op_timeout, op).await
    }

    /// Runs `op` on a link, bounded by the operation timeout; once more, within the same bound,
    /// when the connection answered with the refusal of its *last* reconnection attempt.
    ///
    /// A connection manager hands every command the outcome of its latest connection attempt,
    /// and only starts a new one when a command sees it fail. Without the second try, the
    /// breaker's probe after a restart gets the refusal recorded while Redis was down, and the
    /// breaker stays open for another whole cool-down (writes resumed ~3.5 s after a restart with
    /// the default 2 s cool-down; with it, right at the end of the cool-down). A refusal means
    /// nothing was sent, so the retry cannot run a command twice.
    pub(crate) async fn run<T, F, Fut>(&self, op: F) -> Result<T, StoreError>
    where
        F: Fn(Link) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        let attempt = async {
            let c = self.link().await?;
            let result = match op(c.clone()).await {
                Err(e) if e.is_connection_refusal() => op(c).await,
                other => other,
            };
            // redis-rs' manager reconnects after I/O errors only: a refused password (or any
            // other failed handshake) would stick to it forever, and the cache would never use
            // Redis again after the password is fixed. The next operation gets a new manager.
            if let (Err(e), Kind::Single { manager, .. }) = (&result, &*self.kind) {
                if e.kind() == redis::ErrorKind::AuthenticationFailed {
                    *manager.write().unwrap_or_else(|e| e.into_inner()) = None;
                }
            }
            result.map_err(classify)
        };
        match tokio::time::timeout(self.config.op_timeout, attempt).await {
            Ok(r) => r,
            Err(_) => Err(StoreError::Timeout(self.config.op_timeout)),
        }
    }

    /// A client for a pub/sub connection (`attempt` rotates through a cluster's seed nodes):
    /// the server itself, a cluster node (a `PUBLISH` reaches every node), or the current
    /// Sentinel master.
    pub(crate) async fn pubsub_client(&self, attempt: usize) -> Result<Client, StoreError> {
        match &*self.kind {
            Kind::Single { client, .. } => Ok(client.clone()),
            Kind::Cluster { seeds, .. } => Client::open(seeds[attempt % seeds.len()].clone()).map_err(backend),
            Kind::Sentinel(state) => {
                let addr = state.resolve().await?;
                Client::open(state.node_info(&addr)).map_err(backend)
            }
        }
    }

    /// How many times the Sentinel master changed address since start (0 for other topologies).
    pub(crate) fn master_switches(&self) -> u64 {
        match &*self.kind {
            Kind::Sentinel(s) => s.switches.load(Relaxed),
            _ => 0,
        }
    }
}

fn backend(e: RedisError) -> StoreError {
    StoreError::Backend(e.to_string())
}

/// Runs `op` bounded by `timeout`, mapping redis-rs errors.
pub(crate) async fn bounded<T, F>(timeout: Duration, op: F) -> Result<T, StoreError>
where
    F: Future<Output = redis::RedisResult<T>>,
{
    match tokio::time::timeout(timeout, op).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(classify(e)),
        Err(_) => Err(StoreError::Timeout(timeout)),
    }
}

/// A server's error reply is [`StoreError::Reply`] (the connection works); everything else, and
/// the replies that mean "not serving yet" (`LOADING`, `MASTERDOWN`, `TRYAGAIN`, `CLUSTERDOWN`),
/// is an outage.
pub(crate) fn classify(e: redis::RedisError) -> StoreError {
    use redis::{ErrorKind, ServerErrorKind as S};
    let transient =
        matches!(e.kind(), ErrorKind::Server(S::BusyLoading | S::MasterDown | S::TryAgain | S::ClusterDown));
    if e.is_io_error() || e.is_connection_refusal() || e.is_connection_dropped() {
        return StoreError::Connection(e.to_string());
    }
    if let Some(code) = e.code().filter(|_| !transient) {
        // The server's own words (`READONLY You can't write against a read only replica.`),
        // which operators grep for, rather than redis-rs' category names.
        StoreError::Reply(match e.detail() {
            Some(detail) => format!("{code} {detail}"),
            None => code.to_owned(),
        })
    } else {
        StoreError::Backend(e.to_string())
    }
}

/// One page of `SCAN cursor MATCH pattern COUNT 500`: replies `(next cursor, keys)`.
pub(crate) fn scan_page(cursor: u64, pattern: &str) -> redis::Cmd {
    let mut cmd = redis::cmd("SCAN");
    cmd.arg(cursor).arg("MATCH").arg(pattern).arg("COUNT").arg(500);
    cmd
}

/// A SCAN over every master: one server's keyspace, or each cluster master's in turn.
#[derive(Debug)]
pub(crate) struct Scan {
    pattern: String,
    /// Cluster masters still to scan (`None`: the link's one server).
    nodes: Vec<Option<(String, u16)>>,
    cursor: u64,
}

impl Scan {
    /// A scan of the keys matching `pattern` on every master of `link` (asks a cluster for its
    /// masters).
    pub(crate) async fn start(link: &mut Link, pattern: &str) -> redis::RedisResult<Scan> {
        let nodes = match link {
            Link::Cluster(c) => {
                let route = RoutingInfo::SingleNode(SingleNodeRoutingInfo::Random);
                let text: String =
                    redis::from_redis_value(c.route_command(redis::cmd("CLUSTER").arg("NODES").clone(), route).await?)?;
                cluster_masters(&text).into_iter().map(Some).collect()
            }
            _ => vec![None],
        };
        Ok(Scan { pattern: pattern.to_owned(), nodes, cursor: 0 })
    }

    /// The next page of keys; `None` when every master has been scanned.
    pub(crate) async fn next(&mut self, link: &mut Link) -> redis::RedisResult<Option<Vec<String>>> {
        let Some(node) = self.nodes.last().cloned() else { return Ok(None) };
        let cmd = scan_page(self.cursor, &self.pattern);
        let (next, keys): (u64, Vec<String>) = match (node, link) {
            (Some((host, port)), Link::Cluster(c)) => {
                let route = RoutingInfo::SingleNode(SingleNodeRoutingInfo::ByAddress { host, port });
                redis::from_redis_value(c.route_command(cmd, route).await?)?
            }
            (_, link) => cmd.query_async(link).await?,
        };
        self.cursor = next;
        if next == 0 {
            self.nodes.pop();
        }
        Ok(Some(keys))
    }
}

/// The reachable masters in a `CLUSTER NODES` reply, as `(host, port)`.
fn cluster_masters(nodes: &str) -> Vec<(String, u16)> {
    nodes
        .lines()
        .filter_map(|line| {
            let mut f = line.split_whitespace();
            let (_id, addr, flags) = (f.next()?, f.next()?, f.next()?);
            let flags: Vec<&str> = flags.split(',').collect();
            if !flags.contains(&"master") || flags.iter().any(|f| matches!(*f, "fail" | "noaddr" | "handshake")) {
                return None;
            }
            // `ip:port@cport[,hostname]`
            let hostport = addr.split(['@', ',']).next()?;
            let (host, port) = hostport.rsplit_once(':')?;
            Some((host.to_owned(), port.parse().ok()?))
        })
        .collect()
}

/// The Sentinel topology's state: the master's address and connection, replaced on failover.
pub(crate) struct SentinelState {
    sentinels: Vec<Client>,
    master: String,
    /// Template for the data nodes: credentials, database and TLS of the first Sentinel URL.
    node: ConnectionInfo,
    config: RedisConfig,
    current: Mutex<Option<(String, u16, ConnectionManager)>>,
    /// One resolution at a time.
    resolving: tokio::sync::Mutex<()>,
    /// The master may have moved: resolve before the next command.
    stale: AtomicBool,
    last_resolve_ms: AtomicU64,
    origin: Instant,
    watching: OnceLock<()>,
    switches: AtomicU64,
}

/// Least time between two resolutions triggered by errors (a dead master that Sentinel has not
/// replaced yet must not cost a Sentinel round trip per command).
const RESOLVE_EVERY: Duration = Duration::from_millis(100);

impl SentinelState {
    /// Marks the master for re-resolution after an error that a failover explains.
    fn observe<T>(&self, r: redis::RedisResult<T>) -> redis::RedisResult<T> {
        if let Err(e) = &r {
            if e.is_io_error()
                || e.is_connection_dropped()
                || e.is_connection_refusal()
                || e.is_timeout()
                || e.code() == Some("READONLY")
            {
                self.stale.store(true, Release);
            }
        }
        r
    }

    fn node_info(&self, (host, port): &(String, u16)) -> ConnectionInfo {
        let addr = match self.node.addr() {
            ConnectionAddr::TcpTls { insecure, tls_params, .. } => ConnectionAddr::TcpTls {
                host: host.clone(),
                port: *port,
                insecure: *insecure,
                tls_params: tls_params.clone(),
            },
            _ => ConnectionAddr::Tcp(host.clone(), *port),
        };
        self.node.clone().set_addr(addr)
    }

    fn current(&self) -> Option<(String, u16, ConnectionManager)> {
        self.current.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    async fn link(self: &Arc<Self>) -> Result<Link, StoreError> {
        self.watch();
        let now_ms = self.origin.elapsed().as_millis() as u64;
        let due = now_ms.saturating_sub(self.last_resolve_ms.load(Relaxed)) >= RESOLVE_EVERY.as_millis() as u64;
        match self.current() {
            Some((_, _, m)) if !self.stale.load(Acquire) || !due => Ok(Link::Sentinel(m, self.clone())),
            _ => {
                self.resolve().await?;
                let (_, _, m) = self.current().ok_or_else(|| StoreError::Backend("no Sentinel master".into()))?;
                Ok(Link::Sentinel(m, self.clone()))
            }
        }
    }

    /// Asks the Sentinels for the master's address (the first that answers) and, if it moved,
    /// connects to the new one.
    async fn resolve(&self) -> Result<(String, u16), StoreError> {
        let _one = self.resolving.lock().await;
        self.last_resolve_ms.store(self.origin.elapsed().as_millis() as u64, Relaxed);
        let mut last_err = StoreError::Backend("no Sentinel answered".into());
        for sentinel in &self.sentinels {
            match self.ask(sentinel).await {
                Ok(addr) => {
                    self.stale.store(false, Release);
                    let mut cur = self.current.lock().unwrap_or_else(|e| e.into_inner());
                    if cur.as_ref().is_some_and(|(h, p, _)| (h, *p) == (&addr.0, addr.1)) {
                        return Ok(addr);
                    }
                    let client = Client::open(self.node_info(&addr)).map_err(backend)?;
                    let m = ConnectionManager::new_lazy_with_config(client, manager_config(self.config))
                        .map_err(backend)?;
                    if cur.is_some() {
                        self.switches.fetch_add(1, Relaxed);
                        tracing::warn!(target: "syntra_cache", master = %self.master, addr = %format!("{}:{}", addr.0, addr.1), "Redis: Sentinel master moved; following it");
                    }
                    *cur = Some((addr.0.clone(), addr.1, m));
                    return Ok(addr);
                }
                Err(e) => last_err = e,
            }
        }
        Err(last_err)
    }

    async fn ask(&self, sentinel: &Client) -> Result<(String, u16), StoreError> {
        let t = self.config.connect_timeout;
        let mut c = bounded(t, sentinel.get_multiplexed_async_connection()).await?;
        let addr: Option<(String, u16)> =
            bounded(t, redis::cmd("SENTINEL").arg("get-master-addr-by-name").arg(&self.master).query_async(&mut c))
                .await?;
        addr.ok_or_else(|| StoreError::Backend(format!("Sentinel knows no master named {:?}", self.master)))
    }

    /// Subscribes to `+switch-master` on every Sentinel (once, in the background): a failover
    /// is followed at once instead of on the next error.
    fn watch(self: &Arc<Self>) {
        self.watching.get_or_init(|| {
            let Ok(rt) = tokio::runtime::Handle::try_current() else { return };
            for sentinel in &self.sentinels {
                rt.spawn(watch_sentinel(Arc::downgrade(self), sentinel.clone()));
            }
        });
    }
}

async fn watch_sentinel(state: Weak<SentinelState>, sentinel: Client) {
    use futures_util::StreamExt;
    let mut backoff = Duration::from_millis(100);
    loop {
        let Some(s) = state.upgrade() else { return };
        let t = s.config.connect_timeout;
        drop(s);
        if let Ok(Ok(mut pubsub)) = tokio::time::timeout(t, sentinel.get_async_pubsub()).await {
            if pubsub.subscribe("+switch-master").await.is_ok() {
                backoff = Duration::from_millis(100);
                let mut stream = pubsub.into_on_message();
                loop {
                    // Wakes up now and then to notice that the cache is gone.
                    match tokio::time::timeout(Duration::from_secs(1), stream.next()).await {
                        Ok(Some(_msg)) => {
                            let Some(s) = state.upgrade() else { return };
                            s.stale.store(true, Release);
                            let _ = s.resolve().await;
                        }
                        Ok(None) => break,
                        Err(_) if state.strong_count() == 0 => return,
                        Err(_) => {}
                    }
                }
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(2));
    }
}

/// `msg` with `url` (and the password inside it) replaced.
pub(crate) fn redact(msg: &str, url: &str) -> String {
    let mut out = msg.replace(url, "<redis url>");
    for one in url.split(',') {
        if let Some(password) = password_of(one) {
            out = out.replace(password, "<redacted>");
        }
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
        assert!(!redact("a s3cret b pw2", "redis://:s3cret@h:1,redis://:pw2@h:2").contains("pw2"));
        assert_eq!(password_of("redis://h:1/0"), None);
    }

    #[test]
    fn debug_shows_no_password() {
        let c = RedisConn::open("redis://bot:hunter2@127.0.0.1:1/0", RedisConfig::default()).unwrap();
        assert!(!format!("{c:?}").contains("hunter2"));
        let t = RedisTopology::Cluster(vec!["redis://:hunter2@127.0.0.1:7000".into()]);
        let c = RedisConn::topology(&t, RedisConfig::default()).unwrap();
        assert!(!format!("{c:?} {t:?}").contains("hunter2"), "{c:?} {t:?}");
    }

    #[test]
    fn topologies_refuse_empty_address_lists() {
        let cfg = RedisConfig::default();
        assert!(RedisConn::topology(&RedisTopology::Cluster(vec![]), cfg).is_err());
        let no_master = RedisTopology::Sentinel { sentinels: vec!["redis://127.0.0.1:1".into()], master: "".into() };
        assert!(RedisConn::topology(&no_master, cfg).is_err());
        assert!(RedisConn::topology(&RedisTopology::Cluster(vec!["redis://[bad".into()]), cfg).is_err());
    }

    #[test]
    fn cluster_nodes_parse_to_reachable_masters() {
        let text = "\
07c3 127.0.0.1:30004@40004 slave e7d1 0 1426238317239 4 connected
67ed 127.0.0.1:30002@40002,host-b master - 0 1426238316232 2 connected 5461-10922
292f 127.0.0.1:30003@40003 myself,master - 0 0 3 connected 10923-16383
6ec2 127.0.0.1:30001@40001 master,fail - 1426238316232 1426238315232 1 disconnected
";
        assert_eq!(cluster_masters(text), vec![("127.0.0.1".to_owned(), 30002), ("127.0.0.1".to_owned(), 30003)]);
    }
}
