//! Real Redis topologies on loopback for the tests: a 3-master + 3-replica Redis Cluster, and
//! 1 master + 1 replica watched by 3 Sentinels. Every process is a child of the test, on a free
//! port, killed on drop.
#![allow(dead_code)]

use super::RedisServer;
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn redis_bin() -> String {
    std::env::var("REDIS_SERVER_BIN").unwrap_or_else(|_| "redis-server".into())
}

fn cmd<T: redis::FromRedisValue>(port: u16, args: &[&str]) -> redis::RedisResult<T> {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}/"))?;
    let mut c = client.get_connection_with_timeout(Duration::from_millis(500))?;
    c.set_read_timeout(Some(Duration::from_secs(2)))?;
    let mut cmd = redis::cmd(args[0]);
    for a in &args[1..] {
        cmd.arg(*a);
    }
    cmd.query(&mut c)
}

/// Polls until `f` is true, for at most `within`.
pub fn wait_until(within: Duration, what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !f() {
        assert!(Instant::now() < deadline, "timed out after {within:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A 3-master + 3-replica Redis Cluster.
pub struct RedisCluster {
    pub nodes: Vec<RedisServer>,
}

impl RedisCluster {
    /// Starts six nodes and joins them with `redis-cli --cluster create --cluster-replicas 1`.
    /// A node is declared failed after `node_timeout_ms` (its replica then takes over).
    pub fn start(node_timeout_ms: u64) -> Self {
        let timeout = node_timeout_ms.to_string();
        let nodes: Vec<RedisServer> = (0..6)
            .map(|_| {
                RedisServer::start_with(&[
                    "--cluster-enabled",
                    "yes",
                    "--cluster-node-timeout",
                    &timeout,
                    // A replica may take over however long it was cut off (the test kills its
                    // master at once).
                    "--cluster-replica-validity-factor",
                    "0",
                ])
            })
            .collect();
        let addrs: Vec<String> = nodes.iter().map(|n| format!("127.0.0.1:{}", n.port())).collect();
        let out = Command::new("redis-cli")
            .arg("--cluster")
            .arg("create")
            .args(&addrs)
            .args(["--cluster-replicas", "1", "--cluster-yes"])
            .output()
            .expect("redis-cli must be installed (Debian package redis-tools; scripts/test.sh installs it)");
        assert!(
            out.status.success(),
            "redis-cli --cluster create failed: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let cluster = RedisCluster { nodes };
        wait_until(Duration::from_secs(20), "cluster_state:ok on every node", || {
            cluster
                .nodes
                .iter()
                .all(|n| cmd::<String>(n.port(), &["CLUSTER", "INFO"]).is_ok_and(|i| i.contains("cluster_state:ok")))
        });
        // Every node must know the replicas too, or a failover waits for gossip.
        wait_until(Duration::from_secs(20), "every node sees 3 masters and 3 replicas", || {
            cluster.nodes.iter().all(|n| {
                cmd::<String>(n.port(), &["CLUSTER", "NODES"]).is_ok_and(|t| {
                    t.lines().filter(|l| l.contains("master") && !l.contains("fail")).count() == 3
                        && t.lines().filter(|l| l.contains("slave")).count() == 3
                })
            })
        });
        cluster
    }

    /// Seed URLs of every node.
    pub fn seeds(&self) -> Vec<String> {
        self.nodes.iter().map(|n| format!("redis://127.0.0.1:{}", n.port())).collect()
    }

    fn live(&self) -> impl Iterator<Item = &RedisServer> {
        self.nodes.iter().filter(|n| cmd::<String>(n.port(), &["PING"]).is_ok())
    }

    /// The port of the master serving `key` now, asked of a live node.
    pub fn master_port_of(&self, key: &str) -> u16 {
        let slot: i64 = self.live().find_map(|n| cmd(n.port(), &["CLUSTER", "KEYSLOT", key]).ok()).unwrap();
        let shards: redis::Value = self.live().find_map(|n| cmd(n.port(), &["CLUSTER", "SLOTS"]).ok()).unwrap();
        let redis::Value::Array(ranges) = shards else { panic!("CLUSTER SLOTS: {shards:?}") };
        for r in ranges {
            let redis::Value::Array(r) = r else { continue };
            let (redis::Value::Int(lo), redis::Value::Int(hi)) = (&r[0], &r[1]) else { continue };
            if (*lo..=*hi).contains(&slot) {
                let redis::Value::Array(m) = &r[2] else { continue };
                let redis::Value::Int(port) = m[1] else { continue };
                return port as u16;
            }
        }
        panic!("no master for slot {slot}");
    }

    /// Index of the node listening on `port`.
    pub fn index_of(&self, port: u16) -> usize {
        self.nodes.iter().position(|n| n.port() == port).unwrap()
    }

    /// Runs `args` on the node with this port.
    pub fn cmd_on<T: redis::FromRedisValue>(&self, port: u16, args: &[&str]) -> redis::RedisResult<T> {
        cmd(port, args)
    }

    /// Every key matching `pattern` on every node (masters and replicas alike, deduplicated).
    pub fn keys(&self, pattern: &str) -> Vec<String> {
        let mut all: Vec<String> =
            self.live().flat_map(|n| cmd::<Vec<String>>(n.port(), &["KEYS", pattern]).unwrap_or_default()).collect();
        all.sort();
        all.dedup();
        all
    }
}

/// A Sentinel process on a free port.
pub struct Sentinel {
    child: Child,
    pub port: u16,
    dir: std::path::PathBuf,
}

impl Drop for Sentinel {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// 1 master, 1 replica, 3 Sentinels (quorum 2) with short failure detection.
pub struct SentinelSetup {
    pub master: RedisServer,
    pub replica: RedisServer,
    pub sentinels: Vec<Sentinel>,
    pub name: String,
}

impl SentinelSetup {
    /// Starts everything and waits until every Sentinel knows the replica and the other two.
    pub fn start(down_after_ms: u64) -> Self {
        let master = RedisServer::start();
        let replica = RedisServer::start_with(&["--replicaof", "127.0.0.1", &master.port().to_string()]);
        let name = "syntra-main".to_owned();
        wait_until(Duration::from_secs(10), "the replica in sync", || {
            cmd::<String>(replica.port(), &["INFO", "replication"]).is_ok_and(|i| i.contains("master_link_status:up"))
        });
        let sentinels: Vec<Sentinel> = (0..3)
            .map(|i| {
                let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
                let dir = std::env::temp_dir().join(format!("syntra-sentinel-{}-{port}-{i}", std::process::id()));
                std::fs::create_dir_all(&dir).unwrap();
                let conf = dir.join("sentinel.conf");
                std::fs::write(
                    &conf,
                    format!(
                        "port {port}\nbind 127.0.0.1\ndir {dir}\n\
                         sentinel monitor {name} 127.0.0.1 {mport} 2\n\
                         sentinel down-after-milliseconds {name} {down_after_ms}\n\
                         sentinel failover-timeout {name} 3000\n\
                         sentinel parallel-syncs {name} 1\n",
                        dir = dir.display(),
                        mport = master.port()
                    ),
                )
                .unwrap();
                let log = std::fs::File::create(dir.join("sentinel.log")).unwrap();
                let child = Command::new(redis_bin())
                    .arg(&conf)
                    .arg("--sentinel")
                    .stdout(Stdio::from(log.try_clone().unwrap()))
                    .stderr(Stdio::from(log))
                    .spawn()
                    .expect("redis-server --sentinel (Debian: redis-sentinel) must be installed");
                let s = Sentinel { child, port, dir };
                wait_until(Duration::from_secs(10), "sentinel listening", || {
                    TcpStream::connect(("127.0.0.1", port)).is_ok()
                });
                s
            })
            .collect();
        let setup = SentinelSetup { master, replica, sentinels, name };
        wait_until(Duration::from_secs(20), "every Sentinel knows the replica and the two others", || {
            setup.sentinels.iter().all(|s| {
                let replicas: Vec<redis::Value> =
                    cmd(s.port, &["SENTINEL", "replicas", &setup.name]).unwrap_or_default();
                let others: Vec<redis::Value> =
                    cmd(s.port, &["SENTINEL", "sentinels", &setup.name]).unwrap_or_default();
                replicas.len() == 1 && others.len() == 2
            })
        });
        setup
    }

    /// Sentinel URLs.
    pub fn urls(&self) -> Vec<String> {
        self.sentinels.iter().map(|s| format!("redis://127.0.0.1:{}", s.port)).collect()
    }

    /// The master's port as the first answering Sentinel names it.
    pub fn master_port(&self) -> Option<u16> {
        self.sentinels.iter().find_map(|s| {
            cmd::<(String, u16)>(s.port, &["SENTINEL", "get-master-addr-by-name", &self.name]).ok().map(|(_, p)| p)
        })
    }
}
