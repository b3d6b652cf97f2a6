//! Test harness: a real `redis-server` on a free loopback port, owned by the test.
#![allow(dead_code)]

use std::time::Duration;

pub use syntra_sim::redis_server::RedisServer;

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
