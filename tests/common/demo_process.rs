//! The demo (`examples/syntra.rs`) as a child process serving its dashboard, for the monitoring
//! tests: it is built once per test binary, started with `--listen 127.0.0.1:0` and its URL read
//! from the line it prints.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The demo binary, built (if stale) with the profile of this test binary.
pub fn demo_binary() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let exe = std::env::current_exe().expect("test binary path");
            let profile_dir = exe.parent().and_then(|d| d.parent()).expect("target/<profile>/deps/<test>");
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            let mut cmd = Command::new(cargo);
            cmd.args(["build", "--quiet", "--example", "syntra"]).current_dir(env!("CARGO_MANIFEST_DIR"));
            if profile_dir.file_name().is_some_and(|n| n == "release") {
                cmd.arg("--release");
            }
            let status = cmd.status().expect("running cargo to build the demo");
            assert!(status.success(), "building the demo (cargo build --example syntra) failed");
            let bin = profile_dir.join("examples").join("syntra");
            assert!(bin.exists(), "demo binary missing at {}", bin.display());
            bin
        })
        .clone()
}

/// A running demo with its dashboard.
pub struct DemoProcess {
    child: Child,
    /// `http://127.0.0.1:PORT/`.
    pub url: String,
    stderr: Arc<Mutex<Vec<String>>>,
    stdout: Arc<Mutex<Vec<String>>>,
}

impl DemoProcess {
    /// Starts the demo with `args` plus `--listen 127.0.0.1:0`; waits for its URL.
    pub fn start(args: &[&str]) -> DemoProcess {
        let mut child = Command::new(demo_binary())
            .args(args)
            .args(["--listen", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting the demo");
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let stdout = Arc::new(Mutex::new(Vec::new()));
        for (pipe, sink) in [
            (Box::new(child.stderr.take().unwrap()) as Box<dyn std::io::Read + Send>, stderr.clone()),
            (Box::new(child.stdout.take().unwrap()), stdout.clone()),
        ] {
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                    sink.lock().unwrap().push(line);
                }
            });
        }
        let mut demo = DemoProcess { child, url: String::new(), stderr, stdout };
        let line = demo.wait_for_line(Duration::from_secs(60), "dashboard at http://");
        let start = line.find("http://").unwrap();
        let url = line[start..].split_whitespace().next().unwrap().to_string();
        assert!(url.starts_with("http://127.0.0.1:") && url.ends_with('/'), "{line}");
        demo.url = url;
        demo
    }

    /// The first stderr line containing `needle`, waiting up to `within`.
    pub fn wait_for_line(&mut self, within: Duration, needle: &str) -> String {
        let deadline = Instant::now() + within;
        loop {
            if let Some(l) = self.stderr.lock().unwrap().iter().find(|l| l.contains(needle)) {
                return l.clone();
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("the demo exited ({status}) before printing {needle:?}:\n{}", self.stderr_text());
            }
            assert!(
                Instant::now() < deadline,
                "no {needle:?} from the demo within {within:?}:\n{}",
                self.stderr_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Everything the demo wrote to stderr so far.
    pub fn stderr_text(&self) -> String {
        self.stderr.lock().unwrap().join("\n")
    }

    /// Everything the demo wrote to stdout so far (the report).
    pub fn stdout_text(&self) -> String {
        self.stdout.lock().unwrap().join("\n")
    }

    /// GET `path` (relative to the dashboard URL): status and body.
    pub async fn get(&self, path: &str) -> (u16, String) {
        let r = reqwest::get(format!("{}{path}", self.url)).await.unwrap_or_else(|e| panic!("GET {path}: {e}"));
        let status = r.status().as_u16();
        (status, r.text().await.unwrap())
    }

    /// `/api/stats`, parsed.
    pub async fn stats(&self) -> serde_json::Value {
        let (status, body) = self.get("api/stats").await;
        assert_eq!(status, 200, "{body}");
        serde_json::from_str(&body).unwrap()
    }
}

impl Drop for DemoProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
