//! Test harness: a real `redis-server` on a free loopback port, owned by the test.
#![allow(dead_code)]

use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A `redis-server` child process on 127.0.0.1; killed on drop.
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
    extra: Vec<String>,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn binary() -> String {
    std::env::var("REDIS_SERVER_BIN").unwrap_or_else(|_| "redis-server".into())
}

impl RedisServer {
    /// Starts a server with no persistence.
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// Starts a server with extra config arguments (`["--requirepass", "pw"]`).
    pub fn start_with(extra: &[&str]) -> Self {
        let mut s =
            RedisServer { child: None, port: free_port(), extra: extra.iter().map(|s| s.to_string()).collect() };
        s.spawn();
        s
    }

    fn spawn(&mut self) {
        let child = Command::new(binary())
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .args(&self.extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server must be installed (scripts/test.sh installs it)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                panic!("redis-server exited at start ({status}): check its arguments {:?}", self.extra);
            }
            assert!(Instant::now() < deadline, "redis-server did not start on port {}", self.port);
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    fn pid(&self) -> u32 {
        self.child.as_ref().expect("server running").id()
    }

    /// Kills the server (SIGKILL): an abrupt outage.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts the server again on the same port (empty: no persistence).
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// Freezes the server (SIGSTOP): connections stay open, nothing answers.
    pub fn pause(&self) {
        signal(self.pid(), "STOP");
    }

    /// Thaws a paused server (SIGCONT).
    pub fn resume(&self) {
        signal(self.pid(), "CONT");
    }

    /// A synchronous connection for assertions.
    pub fn client(&self) -> redis::Client {
        redis::Client::open(self.url()).unwrap()
    }

    /// Runs a command synchronously.
    pub fn cmd<T: redis::FromRedisValue>(&self, args: &[&str]) -> T {
        let mut c = self.client().get_connection().unwrap();
        let mut cmd = redis::cmd(args[0]);
        for a in &args[1..] {
            cmd.arg(*a);
        }
        cmd.query(&mut c).unwrap()
    }

    pub fn get_bytes(&self, key: &str) -> Option<Vec<u8>> {
        self.cmd(&["GET", key])
    }

    pub fn set_bytes(&self, key: &str, value: &[u8]) {
        let mut c = self.client().get_connection().unwrap();
        let _: () = redis::cmd("SET").arg(key).arg(value).query(&mut c).unwrap();
    }

    pub fn pttl(&self, key: &str) -> i64 {
        self.cmd(&["PTTL", key])
    }
}

fn signal(pid: u32, sig: &str) {
    let ok = Command::new("kill").args([&format!("-{sig}"), &pid.to_string()]).status().map(|s| s.success());
    assert!(matches!(ok, Ok(true)), "kill -{sig} {pid} failed");
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        if let Some(c) = &self.child {
            signal(c.id(), "CONT");
        }
        self.kill();
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
