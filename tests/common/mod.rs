//! Test harness: a real `redis-server` on a free loopback port, owned by the test.
#![allow(dead_code)]

use std::time::Duration;

pub use syntra_sim::redis_server::RedisServer;

pub mod topology;

/// Synchronous Redis commands for set-up and assertions.
pub trait RedisExt {
    /// The server's URL.
    fn redis_url(&self) -> String;

    /// A synchronous connection for assertions.
    fn client(&self) -> redis::Client {
        redis::Client::open(self.redis_url()).unwrap()
    }

    /// Runs a command synchronously.
    fn cmd<T: redis::FromRedisValue>(&self, args: &[&str]) -> T {
        let mut c = self.client().get_connection().unwrap();
        let mut cmd = redis::cmd(args[0]);
        for a in &args[1..] {
            cmd.arg(*a);
        }
        cmd.query(&mut c).unwrap()
    }

    fn get_bytes(&self, key: &str) -> Option<Vec<u8>> {
        self.cmd(&["GET", key])
    }

    fn set_bytes(&self, key: &str, value: &[u8]) {
        let mut c = self.client().get_connection().unwrap();
        let _: () = redis::cmd("SET").arg(key).arg(value).query(&mut c).unwrap();
    }

    fn pttl(&self, key: &str) -> i64 {
        self.cmd(&["PTTL", key])
    }
}

impl RedisExt for RedisServer {
    fn redis_url(&self) -> String {
        self.url()
    }
}

/// A cache on `server` with a unique namespace, short timeouts and a fast breaker.
pub fn redis_cache(server: &RedisServer, ns: &str) -> syntra_cache::Cache {
    syntra_cache::Cache::builder()
        .namespace(ns)
        .redis(server.url())
        .op_timeout(Duration::from_millis(200))
        .connect_timeout(Duration::from_millis(200))
        .breaker(2, Duration::from_millis(300))
        .build()
        .unwrap()
}

/// A Redis-only cache (no memory tier), so every hit goes to Redis.
pub fn redis_only(server: &RedisServer, ns: &str) -> syntra_cache::Cache {
    syntra_cache::Cache::builder()
        .namespace(ns)
        .redis(server.url())
        .local_tier(false)
        .op_timeout(Duration::from_millis(200))
        .connect_timeout(Duration::from_millis(200))
        .breaker(2, Duration::from_millis(300))
        .build()
        .unwrap()
}

/// Polls `f` every 10 ms until it returns `Some`, for at most `within`; panics with `what`
/// otherwise. For effects that may land in the background (writes, shared holds).
pub fn poll<T>(within: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = std::time::Instant::now() + within;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(std::time::Instant::now() < deadline, "not within {within:?}: {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Milliseconds since the Unix epoch (the clock of the envelopes' `at`).
pub fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64
}

/// Every key matching `pattern`, by SCAN (what a client sees, not what a cache remembers).
pub fn scan_keys(client: &redis::Client, pattern: &str) -> Vec<String> {
    let mut c = client.get_connection().unwrap();
    let (mut cursor, mut keys) = (0u64, Vec::new());
    loop {
        let (next, batch): (u64, Vec<String>) =
            redis::cmd("SCAN").arg(cursor).arg("MATCH").arg(pattern).arg("COUNT").arg(1000).query(&mut c).unwrap();
        keys.extend(batch);
        if next == 0 {
            break;
        }
        cursor = next;
    }
    keys.sort();
    keys
}

/// The JSON envelope stored under `key`, if any.
pub fn envelope(client: &redis::Client, key: &str) -> Option<serde_json::Value> {
    let mut c = client.get_connection().unwrap();
    let raw: Option<Vec<u8>> = redis::cmd("GET").arg(key).query(&mut c).unwrap();
    raw.map(|r| serde_json::from_slice(&r).unwrap_or_else(|e| panic!("{key}: not a JSON envelope ({e})")))
}

/// Replaces the `data` of the JSON envelope under `key` directly in Redis (keeping its TTL): a
/// change made by someone else, which only a read from Redis can see.
pub fn rewrite_data(client: &redis::Client, key: &str, data: serde_json::Value) {
    let mut doc = envelope(client, key).unwrap_or_else(|| panic!("{key} is in Redis"));
    doc["data"] = data;
    let mut c = client.get_connection().unwrap();
    let _: () = redis::cmd("SET").arg(key).arg(serde_json::to_vec(&doc).unwrap()).arg("KEEPTTL").query(&mut c).unwrap();
}

/// A command line for re-running this test binary as a child process that runs only the
/// `#[ignore]`d test `entry`, without any SYNTRA_* variable of ours leaking into it.
pub fn child_process(entry: &str) -> std::process::Command {
    let mut cmd = std::process::Command::new(std::env::current_exe().unwrap());
    cmd.args(["--ignored", "--exact", entry, "--nocapture", "--test-threads=1"]);
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("SYNTRA_") {
            cmd.env_remove(k);
        }
    }
    cmd
}

/// Runs `cmd` to completion; its stdout and stderr, after checking it succeeded.
pub fn run_child(mut cmd: std::process::Command) -> String {
    let out = cmd.output().unwrap();
    let all = format!("{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "child process failed ({}):\n{all}", out.status);
    all
}

/// What one worker process reported: its stdout line from `marker` on, `KEY=value` fields.
pub struct Report {
    pub line: String,
}

impl Report {
    /// The value of field `key` (`UPSTREAM` in `UPSTREAM=1 CALLS=40`).
    pub fn get<T: std::str::FromStr>(&self, key: &str) -> T
    where
        T::Err: std::fmt::Debug,
    {
        let value = self
            .line
            .split_whitespace()
            .find_map(|f| f.strip_prefix(key).and_then(|f| f.strip_prefix('=')))
            .unwrap_or_else(|| panic!("no `{key}=` in {:?}", self.line));
        value.parse().unwrap_or_else(|e| panic!("`{key}={value}`: {e:?}"))
    }
}

/// Runs `n` copies of this test binary's `#[ignore]`d test `worker` at once, each with `env`, waits
/// for all of them, and returns each one's report (the line that contains `marker`). A worker that
/// fails fails the test with its output.
pub fn run_workers(worker: &str, n: usize, env: &[(&str, String)], marker: &str) -> Vec<Report> {
    use std::process::{Command, Stdio};
    let exe = std::env::current_exe().unwrap();
    let children: Vec<_> = (0..n)
        .map(|_| {
            Command::new(&exe)
                .args(["--ignored", "--exact", worker, "--nocapture", "--test-threads=1"])
                .envs(env.iter().map(|(k, v)| (k, v)))
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    children
        .into_iter()
        .map(|child| {
            let out = child.wait_with_output().unwrap();
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert!(out.status.success(), "worker failed: {stdout}\n{}", String::from_utf8_lossy(&out.stderr));
            // (With --nocapture the report may share a line with the harness' "test ... ".)
            let line = stdout.lines().find_map(|l| l.find(marker).map(|i| &l[i..])).expect("worker reports");
            Report { line: line.to_owned() }
        })
        .collect()
}

pub mod demo_process;

/// Every log line this test binary writes at `filter` (an `EnvFilter` directive), captured by one
/// global subscriber installed on first use (the first caller's filter wins).
pub fn captured_logs(filter: &'static str) -> &'static std::sync::Mutex<Vec<u8>> {
    #[derive(Clone)]
    struct Sink;
    impl std::io::Write for Sink {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            LOGS.get().expect("installed").lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    static LOGS: std::sync::OnceLock<std::sync::Mutex<Vec<u8>>> = std::sync::OnceLock::new();
    if let Some(logs) = LOGS.get() {
        return logs;
    }
    let logs = LOGS.get_or_init(|| std::sync::Mutex::new(Vec::new()));
    let subscriber = tracing_subscriber::fmt().with_env_filter(filter).with_ansi(false).with_writer(|| Sink).finish();
    let _ = tracing::subscriber::set_global_default(subscriber);
    logs
}
