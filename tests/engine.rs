//! The engine's promises, each pinned by a test that fails on the code before the engine
//! redesign: default keys that cannot collide, keys that tell every distinct argument apart,
//! conflicts reported, metadata never trusted blindly, and cancellation at any await point
//! (probe, leader, lock) never leaving the cache degraded. Against real redis-server processes.

mod common;

use common::{redis_cache, redis_only, run_workers, RedisExt, RedisServer};
use std::future::Future;
use std::pin::Pin;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use syntra_cache::{cached, Cache};

// ---- default keys ----------------------------------------------------------------------------

fn shared() -> &'static Cache {
    static CACHE: OnceLock<Cache> = OnceLock::new();
    CACHE.get_or_init(Cache::memory)
}

mod coingecko {
    use syntra_cache::{cached, Cache};
    pub struct Client {
        pub cache: Cache,
    }
    impl Client {
        #[cached(ttl = 60, cache = self.cache)]
        pub async fn get(&self, path: &str) -> Result<String, String> {
            Ok(format!("coingecko{path}"))
        }
    }
}

mod binance {
    use syntra_cache::{cached, Cache};
    pub struct Client {
        pub cache: Cache,
    }
    impl Client {
        #[cached(ttl = 60, cache = self.cache)]
        pub async fn get(&self, path: &str) -> Result<String, String> {
            Ok(format!("binance{path}"))
        }
    }
}

mod a {
    use syntra_cache::cached;
    #[cached(ttl = 60, cache = crate::shared())]
    pub async fn fetch(id: u32) -> String {
        format!("a::fetch {id}")
    }
}

mod b {
    pub mod a {
        use syntra_cache::cached;
        #[cached(ttl = 60, cache = crate::shared())]
        pub async fn fetch(id: u32) -> String {
            format!("b::a::fetch {id}")
        }
    }
}

mod makers {
    use syntra_cache::cached;
    pub struct Btc;
    pub struct Eth;
    impl Btc {
        #[cached(ttl = 60, cache = crate::shared())]
        pub async fn make(id: u32) -> String {
            format!("btc {id}")
        }
    }
    impl Eth {
        #[cached(ttl = 60, cache = crate::shared())]
        pub async fn make(id: u32) -> String {
            format!("eth {id}")
        }
    }
}

#[tokio::test]
async fn same_named_types_in_two_modules_never_share_entries() {
    let redis = RedisServer::start();
    for cache in [Cache::memory(), redis_only(&redis, "dk"), redis_cache(&redis, "dk2")] {
        let gecko = coingecko::Client { cache: cache.clone() };
        let binance = binance::Client { cache: cache.clone() };
        assert_eq!(gecko.get("/ping").await.unwrap(), "coingecko/ping");
        assert_eq!(binance.get("/ping").await.unwrap(), "binance/ping", "binance answered with coingecko's data");
        assert_eq!(gecko.get("/ping").await.unwrap(), "coingecko/ping");
        let key = syntra_cache::key_of(gecko.get("/ping")).unwrap().key;
        assert!(key.contains("engine.coingecko.Client.get:"), "the key names the full path: {key}");
    }
}

#[tokio::test]
async fn free_fns_in_nested_modules_and_associated_fns_never_share_entries() {
    assert_eq!(a::fetch(1).await, "a::fetch 1");
    assert_eq!(b::a::fetch(1).await, "b::a::fetch 1");
    assert_eq!(makers::Btc::make(7).await, "btc 7");
    assert_eq!(makers::Eth::make(7).await, "eth 7");
    // Second calls are hits, and still apart.
    assert_eq!(a::fetch(1).await, "a::fetch 1");
    assert_eq!(makers::Eth::make(7).await, "eth 7");
    let ka = syntra_cache::key_of(a::fetch(1)).unwrap().key;
    let kb = syntra_cache::key_of(b::a::fetch(1)).unwrap().key;
    assert!(ka.contains("engine.a.fetch:") && kb.contains("engine.b.a.fetch:"), "{ka} / {kb}");
}

// ---- key holes -------------------------------------------------------------------------------

/// An argument whose `Serialize` fails (a map with non-string keys in JSON, a custom impl...).
struct Unserializable;
impl serde::Serialize for Unserializable {
    fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
        Err(serde::ser::Error::custom("cannot serialize"))
    }
}

struct Keys {
    cache: Cache,
    calls: AtomicUsize,
}

impl Keys {
    #[cached(ttl = 60, cache = self.cache)]
    async fn hashed(&self, filter: &Unserializable, n: u32) -> u32 {
        let _ = filter;
        self.calls.fetch_add(1, SeqCst);
        n
    }

    #[cached(ttl = 60, key = "keys:templ:<filter>_<n>", cache = self.cache)]
    async fn templated(&self, filter: &Unserializable, n: u32) -> u32 {
        let _ = filter;
        self.calls.fetch_add(1, SeqCst);
        n * 10
    }

    #[cached(ttl = 60, cache = self.cache)]
    async fn by_json(&self, id: serde_json::Value) -> String {
        format!("{id}")
    }

    #[cached(ttl = 60, key = "keys:id:<id>", cache = self.cache)]
    async fn by_id(&self, id: Id) -> String {
        format!("{id:?}")
    }

    #[cached(ttl = 60, key = "keys:opt:<id>", cache = self.cache)]
    async fn by_option(&self, id: Option<Option<u8>>) -> String {
        format!("{id:?}")
    }
}

#[derive(Debug, serde::Serialize)]
#[serde(untagged)]
enum Id {
    Number(u64),
    Text(String),
}

#[tokio::test]
async fn an_argument_that_fails_to_serialize_runs_uncached_and_never_shares_a_key() {
    let redis = RedisServer::start();
    let keys = Keys { cache: redis_cache(&redis, "ser"), calls: AtomicUsize::new(0) };
    assert_eq!(keys.hashed(&Unserializable, 1).await, 1);
    assert_eq!(keys.hashed(&Unserializable, 2).await, 2, "another call must not get the first one's entry");
    assert_eq!(keys.templated(&Unserializable, 3).await, 30);
    assert_eq!(keys.templated(&Unserializable, 4).await, 40);
    assert_eq!(keys.calls.load(SeqCst), 4, "every call ran its body");
    let size: i64 = redis.cmd(&["DBSIZE"]);
    assert_eq!(size, 0, "nothing was cached under a shared key");
    let errors: u64 = keys.cache.stats().total().cache_errors;
    assert_eq!(errors, 4, "each uncached call is counted as a cache error");
    let err = syntra_cache::key_of(keys.hashed(&Unserializable, 1)).unwrap_err();
    assert!(matches!(err, syntra_cache::CacheError::Key(_)), "{err}");
}

#[tokio::test]
async fn distinct_scalars_inside_arguments_never_meet() {
    let keys = Keys { cache: Cache::memory(), calls: AtomicUsize::new(0) };
    assert_eq!(keys.by_json(serde_json::json!(1)).await, "1");
    assert_eq!(keys.by_json(serde_json::json!("1")).await, "\"1\"");
    assert_eq!(keys.by_json(serde_json::json!([1, 2])).await, "[1,2]");
    assert_eq!(keys.by_json(serde_json::json!(["1", "2"])).await, "[\"1\",\"2\"]");
    assert_eq!(keys.by_id(Id::Number(100)).await, "Number(100)");
    assert_eq!(keys.by_id(Id::Text("100".into())).await, "Text(\"100\")");
    assert_eq!(keys.by_option(None).await, "None");
    assert_eq!(keys.by_option(Some(None)).await, "Some(None)");
    let readable = syntra_cache::key_of(keys.by_id(Id::Text("bitcoin".into()))).unwrap().key;
    assert_eq!(readable, "syntra:keys:id:bitcoin", "ordinary ids stay readable");
}

// ---- conflicts -------------------------------------------------------------------------------

struct Clash {
    cache: Cache,
}

impl Clash {
    #[cached(ttl = 60, key = "clash:<id>", cache = self.cache)]
    async fn number(&self, id: &str) -> u64 {
        id.len() as u64
    }

    #[cached(ttl = 60, key = "clash:<id>", cache = self.cache)]
    async fn text(&self, id: &str) -> String {
        id.to_uppercase()
    }
}

/// Captures the log lines of the runtime for the current thread.
fn capture_logs() -> (Arc<Mutex<Vec<u8>>>, tracing::subscriber::DefaultGuard) {
    #[derive(Clone)]
    struct Buf(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let buf = Arc::new(Mutex::new(Vec::new()));
    let writer = Buf(buf.clone());
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter("syntra_cache=debug")
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    (buf, tracing::subscriber::set_default(subscriber))
}

fn text(buf: &Arc<Mutex<Vec<u8>>>) -> String {
    String::from_utf8_lossy(&buf.lock().unwrap()).into_owned()
}

#[tokio::test]
async fn two_value_types_under_one_template_are_a_reported_conflict_never_a_wrong_answer() {
    let redis = RedisServer::start();
    let (logs, _guard) = capture_logs();
    let clash = Clash { cache: redis_only(&redis, "cf") };
    for _ in 0..3 {
        assert_eq!(clash.number("btc").await, 3);
        assert_eq!(clash.text("btc").await, "BTC");
    }
    let stats = clash.cache.stats();
    assert!(stats.methods.iter().map(|m| m.conflicts).sum::<u64>() >= 5, "{stats:#?}");
    let logs = text(&logs);
    let reported = logs.matches("Cache CONFLICT").count();
    assert_eq!(reported, 2, "once per site, not once per call:\n{logs}");
}

// ---- stored metadata -------------------------------------------------------------------------

struct Prices {
    cache: Cache,
    calls: AtomicUsize,
}

impl Prices {
    #[cached(ttl = "1s", key = "px:<id>", cache = self.cache)]
    async fn price(&self, id: &str) -> u64 {
        self.calls.fetch_add(1, SeqCst);
        id.len() as u64 * 1000
    }
}

fn redis_cli(redis: &RedisServer, args: &[&str]) -> String {
    let out = Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p", &redis.port().to_string()])
        .args(args)
        .output()
        .expect("redis-cli comes with redis-server");
    assert!(out.status.success(), "redis-cli {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[tokio::test]
async fn planted_metadata_is_never_served_as_fresh_forever() {
    let redis = RedisServer::start();
    let prices = Prices { cache: redis_cache(&redis, "md"), calls: AtomicUsize::new(0) };
    let ty = syntra_cache::codec::fingerprint::<u64>(0);
    let now = syntra_cache::codec::now_ms();
    // A write "from next year" with a 30-year TTL and a forged price of 1.
    let future = format!(
        r#"{{"syntra":1,"ty":"{ty}","at":{},"ttl":999999999999,"stale":0,"neg":false,"data":1}}"#,
        now + 365 * 86_400_000
    );
    assert_eq!(redis_cli(&redis, &["SET", "md:px:btc", &future]), "OK");
    assert_eq!(prices.price("btc").await, 3000, "a far-future envelope is not believed");
    assert_eq!(prices.calls.load(SeqCst), 1);
    // A huge TTL written now is cut to the site's own TTL (1 s) on read, in every tier.
    let huge = format!(r#"{{"syntra":1,"ty":"{ty}","at":{now},"ttl":999999999999,"stale":0,"neg":false,"data":7}}"#);
    assert_eq!(redis_cli(&redis, &["SET", "md:px:eth", &huge]), "OK");
    assert_eq!(prices.price("eth").await, 7, "fresh by the site's policy: served");
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(prices.price("eth").await, 3000, "past the site's TTL it is recomputed");
    assert_eq!(prices.calls.load(SeqCst), 2);
}

// ---- remove_prefix ---------------------------------------------------------------------------

#[tokio::test]
async fn remove_prefix_of_everything_keeps_budgets_and_locks() {
    use syntra_cache::budget::{Budget, Budgets};
    let redis = RedisServer::start();
    let budgets = Budgets::new(vec![Budget::new("cg").quota_day(100)]).unwrap();
    let cache = Cache::builder().namespace("rp").redis(redis.url()).budgets(budgets).build().unwrap();
    let permit = cache.budgets().unwrap().acquire("cg", 1).await;
    assert!(permit.is_ok());
    let prices = Prices { cache: cache.clone(), calls: AtomicUsize::new(0) };
    prices.price("btc").await;
    let _: () = redis.cmd(&["SET", "rp::lock:px:eth", "someone", "PX", "5000"]);
    let removed = cache.remove_prefix("").await.unwrap();
    assert_eq!(removed, 1, "the one cache entry");
    let left: Vec<String> = redis.cmd(&["KEYS", "rp*"]);
    assert!(left.iter().any(|k| k.starts_with("rp::budget:{cg}:day:")), "quota counter kept: {left:?}");
    assert!(left.contains(&"rp::lock:px:eth".to_owned()), "lock kept: {left:?}");
    assert!(!left.contains(&"rp:px:btc".to_owned()));
    assert!(matches!(cache.remove_prefix(":lock").await, Err(syntra_cache::CacheError::InvalidPrefix(_))));
    // Budgets are reset by their own API.
    cache.budgets().unwrap().reset().await.unwrap();
    let left: Vec<String> = redis.cmd(&["KEYS", "rp::budget:*"]);
    assert!(left.is_empty(), "{left:?}");
    assert_eq!(cache.budget_stats()[0].day_used, Some(0), "the local count is reset too");
}

// ---- cancellation ----------------------------------------------------------------------------

struct Slow {
    cache: Cache,
    calls: AtomicUsize,
    delay: Duration,
}

impl Slow {
    fn new(cache: Cache, delay: Duration) -> Arc<Self> {
        Arc::new(Slow { cache, calls: AtomicUsize::new(0), delay })
    }

    #[cached(ttl = 60, key = "slow:<id>", cache = self.cache)]
    async fn get(&self, id: &str) -> Result<u64, String> {
        let n = self.calls.fetch_add(1, SeqCst) as u64;
        tokio::time::sleep(self.delay).await;
        Ok(id.len() as u64 * 1000 + n)
    }

    #[cached(ttl = "2s", refresh = "1900ms", key = "slow:hot:<id>", cache = self.cache)]
    async fn hot(&self, id: &str) -> Result<u64, String> {
        let n = self.calls.fetch_add(1, SeqCst) as u64;
        tokio::time::sleep(self.delay).await;
        Ok(id.len() as u64 * 1000 + n)
    }
}

/// Polls `fut` until it has been pending `limit` times, then drops it: a caller cancelled at its
/// `limit`-th await point. `Some` if it finished first.
struct CancelAfter<F: Future> {
    fut: Pin<Box<F>>,
    pending: usize,
    limit: usize,
}

impl<F: Future> Future for CancelAfter<F> {
    type Output = Option<F::Output>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.fut.as_mut().poll(cx) {
            Poll::Ready(v) => Poll::Ready(Some(v)),
            Poll::Pending => {
                self.pending += 1;
                if self.pending >= self.limit {
                    Poll::Ready(None)
                } else {
                    Poll::Pending
                }
            }
        }
    }
}

fn cancel_after<F: Future>(fut: F, limit: usize) -> CancelAfter<F> {
    CancelAfter { fut: Box::pin(fut), pending: 0, limit }
}

async fn no_lock_left(redis: &RedisServer, ns: &str) {
    let deadline = Instant::now() + Duration::from_secs(1);
    loop {
        let locks: Vec<String> = redis.cmd(&["KEYS", &format!("{ns}::lock:*")]);
        if locks.is_empty() {
            return;
        }
        assert!(Instant::now() < deadline, "a cancelled caller left its lock held: {locks:?}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn a_miss_cancelled_at_every_await_point_leaves_nothing_behind() {
    let redis = RedisServer::start();
    let ns = "cx";
    let slow = Slow::new(redis_cache(&redis, ns), Duration::from_millis(30));
    let mut points = 0;
    for limit in 1.. {
        let id = format!("k{limit}");
        let done = cancel_after(slow.get(&id), limit).await;
        no_lock_left(&redis, ns).await;
        // The next caller is served, through Redis, and nothing is stuck.
        let started = Instant::now();
        let v = tokio::time::timeout(Duration::from_secs(2), slow.get(&id)).await.expect("not stuck").unwrap();
        assert!(started.elapsed() < Duration::from_millis(1500), "waited for a dead lock: {:?}", started.elapsed());
        assert_eq!(v / 1000, id.len() as u64);
        // The Redis tier is still in use: the next key's value reaches it.
        let next = format!("{id}-next");
        slow.get(&next).await.unwrap();
        assert!(redis.get_bytes(&format!("{ns}:slow:{next}")).is_some(), "the value reached Redis");
        assert!(!slow.cache.remote_circuit_open());
        if done.is_some() {
            break;
        }
        points += 1;
    }
    println!("a miss was cancelled at each of its {points} await points");
    assert!(points >= 4, "GET, lock, re-read, body, SET, release: {points}");
}

#[tokio::test]
async fn a_refresh_cancelled_at_every_await_point_leaves_nothing_behind() {
    let redis = RedisServer::start();
    let ns = "cr";
    let slow = Slow::new(redis_cache(&redis, ns), Duration::from_millis(20));
    let mut points = 0;
    for limit in 1.. {
        let id = format!("h{limit}");
        let first = slow.hot(&id).await.unwrap();
        // Inside the refresh window from the start (refresh 1.9 s of a 2 s TTL).
        tokio::time::sleep(Duration::from_millis(150)).await;
        let done = cancel_after(slow.hot(&id), limit).await;
        no_lock_left(&redis, ns).await;
        let v = tokio::time::timeout(Duration::from_secs(2), slow.hot(&id)).await.expect("not stuck").unwrap();
        assert_eq!(v / 1000, id.len() as u64);
        if let Some(r) = done {
            // Uncancelled, the refreshing caller is answered with the recomputed value.
            assert_eq!(r.unwrap() / 1000, first / 1000);
            break;
        }
        points += 1;
        assert!(points < 50);
    }
    println!("an early refresh was cancelled at each of its {points} await points");
    assert!(points >= 2);
}

#[tokio::test]
async fn a_cancelled_leader_hands_over_to_one_follower_and_releases_its_lock() {
    let redis = RedisServer::start();
    let ns = "cl";
    let slow = Slow::new(redis_cache(&redis, ns), Duration::from_millis(300));
    let leader = {
        let slow = slow.clone();
        tokio::spawn(async move { slow.get("btc").await })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(slow.calls.load(SeqCst), 1, "the leader is in its body");
    let followers: Vec<_> = (0..20)
        .map(|_| {
            let slow = slow.clone();
            tokio::spawn(async move { slow.get("btc").await })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(50)).await;
    leader.abort();
    assert!(leader.await.unwrap_err().is_cancelled());
    let mut values = Vec::new();
    for f in followers {
        values.push(f.await.unwrap().unwrap());
    }
    assert!(values.windows(2).all(|w| w[0] == w[1]), "every follower got the same value: {values:?}");
    assert_eq!(slow.calls.load(SeqCst), 2, "the cancelled leader's call and one takeover, not one per follower");
    // Another instance is not kept waiting for a dead holder's lease.
    let other = Slow::new(redis_cache(&redis, ns), Duration::from_millis(1));
    let started = Instant::now();
    assert_eq!(other.get("btc").await.unwrap(), values[0]);
    assert!(started.elapsed() < Duration::from_millis(500), "{:?}", started.elapsed());
    no_lock_left(&redis, ns).await;
}

#[tokio::test]
async fn a_leader_cancelled_in_its_body_does_not_hold_the_cluster_lock_for_its_lease() {
    let redis = RedisServer::start();
    let ns = "cd";
    let slow = Slow::new(redis_cache(&redis, ns), Duration::from_secs(30));
    assert!(tokio::time::timeout(Duration::from_millis(200), slow.get("eth")).await.is_err());
    // The release is spawned on drop: it lands within milliseconds, not at the 5 s lease.
    let started = Instant::now();
    no_lock_left(&redis, ns).await;
    println!("lock gone {:?} after the leader was cancelled", started.elapsed());
    let other = Slow::new(redis_cache(&redis, ns), Duration::from_millis(1));
    let started = Instant::now();
    other.get("eth").await.unwrap();
    assert!(started.elapsed() < Duration::from_millis(500), "{:?}", started.elapsed());
}

#[tokio::test]
async fn a_cancelled_probe_against_a_stalled_redis_does_not_switch_the_tier_off() {
    let redis = RedisServer::start();
    let cooldown = Duration::from_millis(300);
    let cache = Cache::builder()
        .namespace("pb")
        .redis(redis.url())
        .op_timeout(Duration::from_millis(150))
        .connect_timeout(Duration::from_millis(150))
        .breaker(1, cooldown)
        .build()
        .unwrap();
    let prices = Prices { cache: cache.clone(), calls: AtomicUsize::new(0) };
    prices.price("warm").await;
    assert!(redis.get_bytes("pb:px:warm").is_some());
    redis.pause();
    prices.price("a").await; // times out: the breaker opens
    assert!(cache.remote_circuit_open());
    tokio::time::sleep(cooldown + Duration::from_millis(50)).await;
    // The probe hangs on the stalled server; its caller gives up first.
    assert!(tokio::time::timeout(Duration::from_millis(40), prices.price("b")).await.is_err());
    redis.resume();
    let resumed = Instant::now();
    let mut n = 0;
    let landed = loop {
        n += 1;
        let id = format!("after{n}");
        prices.price(&id).await;
        if redis.get_bytes(&format!("pb:px:{id}")).is_some() {
            break resumed.elapsed();
        }
        assert!(resumed.elapsed() < Duration::from_secs(5), "the Redis tier never came back");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    println!("writes landed again {landed:?} after Redis resumed (cool-down {cooldown:?})");
    assert!(landed <= cooldown + Duration::from_secs(1), "{landed:?}");
    assert!(!cache.remote_circuit_open());
}

// ---- stale answers shared with followers are counted as stale ---------------------------------

struct Flaky {
    cache: Cache,
    fail: std::sync::atomic::AtomicBool,
}

impl Flaky {
    #[cached(ttl = "300ms", stale = "10s", key = "fl:<id>", cache = self.cache)]
    async fn get(&self, id: &str) -> Result<u64, String> {
        tokio::time::sleep(Duration::from_millis(50)).await;
        if self.fail.load(SeqCst) {
            return Err("down".into());
        }
        Ok(id.len() as u64)
    }
}

#[tokio::test]
async fn followers_of_a_stale_answer_are_counted_as_stale_not_hits() {
    let flaky = Arc::new(Flaky { cache: Cache::memory(), fail: Default::default() });
    assert_eq!(flaky.get("btc").await, Ok(3));
    tokio::time::sleep(Duration::from_millis(350)).await;
    flaky.fail.store(true, SeqCst);
    let calls: Vec<_> = (0..10)
        .map(|_| {
            let f = flaky.clone();
            tokio::spawn(async move { f.get("btc").await })
        })
        .collect();
    for c in calls {
        assert_eq!(c.await.unwrap(), Ok(3));
    }
    let s = flaky.cache.stats();
    let m = s.get("fl", "get").unwrap();
    assert_eq!((m.hits, m.stale), (0, 10), "{m:#?}");
}

// ---- run-time policy expressions are checked --------------------------------------------------

struct Windows {
    cache: Cache,
    stale: i64,
}

impl Windows {
    #[cached(ttl = 60, stale = self.stale, key = "win:<id>", cache = self.cache)]
    async fn get(&self, id: &str) -> u64 {
        id.len() as u64
    }
}

#[tokio::test]
async fn an_invalid_stale_expression_is_logged_not_silently_zero() {
    let (logs, _guard) = capture_logs();
    let w = Windows { cache: Cache::memory(), stale: -5 };
    assert_eq!(w.get("btc").await, 3);
    let logs = text(&logs);
    assert!(logs.contains("invalid `stale`") && logs.contains("negative"), "{logs}");
    let w = Windows { cache: Cache::memory(), stale: 0 };
    let (logs, _guard) = capture_logs();
    assert_eq!(w.get("btc").await, 3);
    assert!(!text(&logs).contains("invalid"), "zero turns the window off quietly");
}

// ---- refresh across instances ------------------------------------------------------------------

struct Hot {
    cache: Cache,
    calls: AtomicUsize,
}

impl Hot {
    #[cached(ttl = "1s", refresh = "400ms", key = "hot:<id>", cache = self.cache)]
    async fn get(&self, id: &str) -> Result<u64, String> {
        let n = self.calls.fetch_add(1, SeqCst) as u64;
        tokio::time::sleep(Duration::from_millis(20)).await;
        Ok(id.len() as u64 * 1000 + n)
    }
}

const HOT_RUN: Duration = Duration::from_millis(3000);

#[tokio::test]
async fn early_refresh_is_once_per_window_across_four_processes() {
    const PROCESSES: usize = 4;
    let redis = RedisServer::start();
    let start_at = syntra_cache::codec::now_ms() + 1500;
    let env = [("REFRESH_REDIS_URL", redis.url()), ("REFRESH_START_AT_MS", start_at.to_string())];
    let reports = run_workers("refresh_worker", PROCESSES, &env, "UPSTREAM=");
    let upstream: usize = reports.iter().map(|r| r.get::<usize>("UPSTREAM")).sum();
    let calls: usize = reports.iter().map(|r| r.get::<usize>("CALLS")).sum();
    // One write every (TTL - refresh window) = 600 ms at most, plus the first miss.
    let windows = (HOT_RUN.as_millis() / 600) as usize + 1;
    println!("{PROCESSES} processes, {calls} calls over {HOT_RUN:?} on one hot key: {upstream} upstream calls ({windows} refresh windows)");
    assert!(upstream <= windows + 1, "one upstream call per refresh window across all processes: {upstream}");
    assert!(upstream >= 2, "the key was refreshed: {upstream}");
}

/// Worker of `early_refresh_is_once_per_window_across_four_processes`; does nothing unless started
/// by it.
#[test]
#[ignore = "worker process of early_refresh_is_once_per_window_across_four_processes"]
fn refresh_worker() {
    let Ok(url) = std::env::var("REFRESH_REDIS_URL") else { return };
    let start_at: u64 = std::env::var("REFRESH_START_AT_MS").unwrap().parse().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let cache = Cache::builder().namespace("hotx").redis(url).build().unwrap();
        let hot = Hot { cache, calls: AtomicUsize::new(0) };
        tokio::time::sleep(Duration::from_millis(start_at.saturating_sub(syntra_cache::codec::now_ms()))).await;
        let end = Instant::now() + HOT_RUN;
        let mut calls = 0;
        while Instant::now() < end {
            hot.get("btc").await.unwrap();
            calls += 1;
            tokio::time::sleep(Duration::from_millis(15)).await;
        }
        println!("UPSTREAM={} CALLS={calls}", hot.calls.load(SeqCst));
    });
}

#[tokio::test]
async fn a_cancelled_budget_probe_does_not_leave_budgets_local_for_good() {
    use syntra_cache::budget::{Budget, BudgetEnforcer, Budgets, Decider};
    let redis = RedisServer::start();
    let cooldown = Duration::from_millis(300);
    let budgets = Budgets::new(vec![Budget::new("cg").quota_day(1_000)]).unwrap();
    let enforcer = BudgetEnforcer::builder(budgets)
        .namespace("bp")
        .redis_url(redis.url())
        .op_timeout(Duration::from_millis(150))
        .breaker(1, cooldown)
        .build()
        .unwrap();
    assert_eq!(enforcer.acquire("cg", 1).await.unwrap().decided_by, Decider::Shared);
    redis.pause();
    assert_eq!(enforcer.acquire("cg", 1).await.unwrap().decided_by, Decider::Local, "Redis stalled: local");
    assert!(enforcer.shared_skipped());
    tokio::time::sleep(cooldown + Duration::from_millis(50)).await;
    // The probe hangs on the stalled server; its caller gives up first.
    assert!(tokio::time::timeout(Duration::from_millis(40), enforcer.acquire("cg", 1)).await.is_err());
    redis.resume();
    let resumed = Instant::now();
    loop {
        if enforcer.acquire("cg", 1).await.unwrap().decided_by == Decider::Shared {
            break;
        }
        assert!(resumed.elapsed() < cooldown + Duration::from_secs(1), "budgets never went back to Redis");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    println!("budgets shared again {:?} after Redis resumed", resumed.elapsed());
}

struct Schema {
    cache: Cache,
    calls: AtomicUsize,
}

impl Schema {
    #[cached(ttl = 60, key = "schema:<id>", version = 1, cache = self.cache)]
    async fn v1(&self, id: &str) -> u64 {
        self.calls.fetch_add(1, SeqCst);
        id.len() as u64
    }

    #[cached(ttl = 60, key = "schema:<id>", version = 2, cache = self.cache)]
    async fn v2(&self, id: &str) -> u64 {
        self.calls.fetch_add(1, SeqCst);
        id.len() as u64 * 10
    }
}

#[tokio::test]
async fn a_version_bump_is_an_ordinary_miss_not_a_conflict() {
    let redis = RedisServer::start();
    let (logs, _guard) = capture_logs();
    let schema = Schema { cache: redis_only(&redis, "sv"), calls: AtomicUsize::new(0) };
    assert_eq!(schema.v1("btc").await, 3);
    assert_eq!(schema.v2("btc").await, 30, "the old schema's entry is not served");
    assert_eq!(schema.v2("btc").await, 30);
    assert_eq!(schema.calls.load(SeqCst), 2);
    assert_eq!(schema.cache.stats().total().conflicts, 0);
    assert!(!text(&logs).contains("CONFLICT"), "{}", text(&logs));
}
