//! A real `redis-server` for tests and benchmarks: a child process on 127.0.0.1 and a free port,
//! with outages on demand (kill, SIGSTOP, restart); killed on drop. Never a mock.
//!
//! The server's output goes to a log file in its own temporary directory; when the server fails
//! to start, exits early or cannot be signalled, the panic message carries the log's tail.
//! Signals are sent with `rustix`, so no `kill` binary (procps) is needed.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// A `redis-server` child process on 127.0.0.1; killed on drop.
pub struct RedisServer {
    child: Mutex<Option<Child>>,
    port: u16,
    extra: Vec<String>,
    dir: PathBuf,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn binary() -> String {
    std::env::var("REDIS_SERVER_BIN").unwrap_or_else(|_| "redis-server".into())
}

/// The last `lines` lines of the file at `path` (at most 64 KiB read).
fn tail(path: &Path, lines: usize) -> String {
    let Ok(mut f) = File::open(path) else { return format!("(no log at {})", path.display()) };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = f.seek(SeekFrom::Start(len.saturating_sub(64 * 1024)));
    let mut buf = Vec::new();
    let _ = f.read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf);
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

impl RedisServer {
    /// Starts a server with no persistence.
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// Starts a server with extra config arguments (`["--requirepass", "pw"]`).
    pub fn start_with(extra: &[&str]) -> Self {
        static SEQ: AtomicUsize = AtomicUsize::new(0);
        let port = free_port();
        let dir = std::env::temp_dir().join(format!(
            "syntra-redis-{}-{}-{}",
            std::process::id(),
            port,
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
        let mut s =
            RedisServer { child: Mutex::new(None), port, extra: extra.iter().map(|s| s.to_string()).collect(), dir };
        s.spawn();
        s
    }

    /// The file the server's stdout and stderr go to.
    pub fn log_path(&self) -> PathBuf {
        self.dir.join("redis-server.log")
    }

    /// The last `lines` lines of the server's log.
    pub fn log_tail(&self, lines: usize) -> String {
        tail(&self.log_path(), lines)
    }

    fn child(&self) -> MutexGuard<'_, Option<Child>> {
        self.child.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn spawn(&mut self) {
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .unwrap_or_else(|e| panic!("cannot open {}: {e}", self.log_path().display()));
        let err = log.try_clone().expect("log file handle");
        let child = Command::new(binary())
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .args(["--dir", &self.dir.to_string_lossy()])
            .args(&self.extra)
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(err))
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot run `{}` ({e}): redis-server must be installed (scripts/test.sh installs it)", binary())
            });
        *self.child() = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            let exited = self.child().as_mut().and_then(|c| c.try_wait().ok().flatten());
            if let Some(status) = exited {
                *self.child() = None;
                panic!(
                    "redis-server exited at start ({status}) with arguments {:?}; its log ({}) ends with:\n{}",
                    self.extra,
                    self.log_path().display(),
                    self.log_tail(30)
                );
            }
            if Instant::now() >= deadline {
                panic!(
                    "redis-server did not listen on port {} within 10 s; its log ({}) ends with:\n{}",
                    self.port,
                    self.log_path().display(),
                    self.log_tail(30)
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis://127.0.0.1:{port}/0`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// Kills the server (SIGKILL): an abrupt outage.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child().take() {
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
        self.signal(rustix::process::Signal::STOP, "SIGSTOP");
    }

    /// Thaws a paused server (SIGCONT).
    pub fn resume(&self) {
        self.signal(rustix::process::Signal::CONT, "SIGCONT");
    }

    fn signal(&self, sig: rustix::process::Signal, name: &str) {
        let mut guard = self.child();
        let Some(c) = guard.as_mut() else { return };
        if let Ok(Some(status)) = c.try_wait() {
            *guard = None;
            drop(guard);
            panic!(
                "cannot send {name}: redis-server already exited ({status}); its log ({}) ends with:\n{}",
                self.log_path().display(),
                self.log_tail(30)
            );
        }
        let pid = rustix::process::Pid::from_raw(c.id() as i32).expect("a child's pid is positive");
        if let Err(e) = rustix::process::kill_process(pid, sig) {
            drop(guard);
            panic!("{name} to redis-server (pid {pid:?}) failed: {e}; its log ends with:\n{}", self.log_tail(30));
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        if let Some(c) = self.child().as_ref() {
            // Thaw a paused server so that it dies promptly; errors do not matter here.
            if let Some(pid) = rustix::process::Pid::from_raw(c.id() as i32) {
                let _ = rustix::process::kill_process(pid, rustix::process::Signal::CONT);
            }
        }
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// PING over a raw connection: whether `+PONG` came back within `wait`.
    fn pong(port: u16, wait: Duration) -> bool {
        let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(wait)).unwrap();
        s.write_all(b"PING\r\n").unwrap();
        let mut buf = [0u8; 7];
        s.read_exact(&mut buf).is_ok() && &buf == b"+PONG\r\n"
    }

    #[test]
    fn pause_and_resume_with_signals_and_no_kill_binary() {
        let mut r = RedisServer::start();
        assert!(pong(r.port(), Duration::from_secs(5)));
        r.pause();
        assert!(!pong(r.port(), Duration::from_millis(300)), "a SIGSTOPped server answers nothing");
        r.resume();
        assert!(pong(r.port(), Duration::from_secs(5)), "SIGCONT thaws it");
        assert!(r.log_tail(50).contains("Ready to accept connections"), "output goes to the log:\n{}", r.log_tail(50));
        r.restart();
        assert!(pong(r.port(), Duration::from_secs(5)));
        let dir = r.dir.clone();
        drop(r);
        assert!(!dir.exists(), "the temporary directory is removed");
    }

    #[test]
    fn a_server_that_cannot_start_explains_why() {
        let err = std::panic::catch_unwind(|| RedisServer::start_with(&["--no-such-directive", "1"]))
            .err()
            .expect("a bad directive must fail the start");
        let msg = err.downcast_ref::<String>().cloned().unwrap_or_default();
        assert!(msg.contains("exited at start"), "{msg}");
        assert!(msg.contains("no-such-directive"), "the log's tail is in the message: {msg}");
    }
}
