//! The demo (`examples/syntra.rs`) with `--disk PATH`, killed with SIGKILL mid-run and started
//! again: its first simulated minute answers from the disk tier, against a cold start.
//!
//! The test builds the example first (`cargo build --example syntra`, a no-op when `cargo test`
//! already did), so `cargo test --test restart` alone runs the current code.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn demo_bin() -> PathBuf {
    // target/<profile>/deps/restart-<hash> → target/<profile>/examples/syntra
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap();
    let mut build = Command::new(env!("CARGO"));
    build.args(["build", "--quiet", "--example", "syntra"]).current_dir(env!("CARGO_MANIFEST_DIR"));
    if dir.file_name().is_some_and(|p| p == "release") {
        build.arg("--release");
    }
    assert!(build.status().unwrap().success(), "building the demo failed");
    dir.join("examples").join(format!("syntra{}", std::env::consts::EXE_SUFFIX))
}

/// 400 questions over 4 simulated minutes at 60x: one progress line per simulated minute.
fn start(disk: &PathBuf) -> Child {
    Command::new(demo_bin())
        .args(["--requests", "400", "--users", "50", "--minutes", "4", "--speed", "60", "--seed", "11"])
        .args(["--latency-ms", "1", "--concurrency", "16", "--disk"])
        .arg(disk)
        .env_remove("SYNTRA_CACHE_REDIS_URL")
        .env("RUST_LOG", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// A progress line's `(hit rate %, upstream calls)`.
fn progress(line: &str) -> Option<(f64, u64)> {
    let hit = line.split("hit rate").nth(1)?.trim_start().split('%').next()?.trim().parse().ok()?;
    let up = line.split("upstream").nth(1)?.split('|').next()?.trim().parse().ok()?;
    Some((hit, up))
}

/// Reads progress lines until `n` were seen; returns them.
fn lines(child: &mut Child, n: usize) -> Vec<(f64, u64)> {
    let stderr = child.stderr.take().unwrap();
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    for line in BufReader::new(stderr).lines() {
        let line = line.unwrap();
        if let Some(p) = progress(&line) {
            out.push(p);
            if out.len() == n {
                break;
            }
        }
        assert!(Instant::now() < deadline, "no progress");
    }
    assert_eq!(out.len(), n, "the demo stopped early: {out:?}");
    out
}

#[test]
fn a_killed_demo_restarts_warm_from_its_disk_file() {
    let dir = std::env::temp_dir().join(format!("syntra-restart-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (warm, cold) = (dir.join("warm.redb"), dir.join("cold.redb"));

    // Run 1: two simulated minutes, then SIGKILL (no shutdown, no flush).
    let mut run = start(&warm);
    let first = lines(&mut run, 2);
    run.kill().unwrap();
    run.wait().unwrap();

    // Run 2 on the same file, and a cold start on a fresh one: the first simulated minute.
    let mut run = start(&warm);
    let restarted = lines(&mut run, 1)[0];
    run.kill().unwrap();
    run.wait().unwrap();
    let mut run = start(&cold);
    let fresh = lines(&mut run, 1)[0];
    run.kill().unwrap();
    run.wait().unwrap();

    eprintln!(
        "first simulated minute: cold start hit rate {:.1}% ({} upstream), after kill -9 and restart {:.1}% ({} upstream); first run {first:?}",
        fresh.0, fresh.1, restarted.0, restarted.1
    );
    assert!(restarted.0 > fresh.0 + 10.0, "restart {restarted:?} vs cold {fresh:?}");
    assert!(restarted.1 < fresh.1, "fewer upstream calls: restart {restarted:?} vs cold {fresh:?}");
    let _ = std::fs::remove_dir_all(&dir);
}
