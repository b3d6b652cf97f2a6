//! The dashboard in a real browser: the demo runs against a real redis-server and serves its
//! dashboard (`--listen`); headless Chromium (Debian's `chromium`, driven through
//! `chromium-driver` with fantoccini) opens the page and the test checks that the figures
//! appear, change as the workload runs, agree with `/api/stats`, that the page is readable at
//! 1280x800 and at phone width, that it logs no JavaScript error, and that `/healthz` turns
//! 503 when Redis goes away.
//!
//! `scripts/test.sh` installs `chromium` and `chromium-driver`; without them this test fails
//! with a message saying so. Screenshots are written to the target directory;
//! `SYNTRA_UPDATE_SCREENSHOT=1` also writes the README's `docs/dashboard.png`.

mod common;

use common::demo_process::DemoProcess;
use common::{RedisExt, RedisServer};
use fantoccini::{Client, ClientBuilder};
use serde_json::{json, Value};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn which(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    for dir in std::env::split_paths(&path) {
        for n in names {
            let p = dir.join(n);
            if p.is_file() {
                return Some(p);
            }
        }
    }
    None
}

/// chromedriver on a free loopback port, killed on drop.
struct Driver {
    child: Child,
    port: u16,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_driver() -> (Driver, PathBuf) {
    let chromium = which(&["chromium", "chromium-browser", "google-chrome"]).unwrap_or_else(|| {
        panic!("this test needs Chromium: `apt-get install chromium chromium-driver` (scripts/test.sh installs them)")
    });
    let driver = which(&["chromedriver"]).unwrap_or_else(|| {
        panic!("this test needs chromedriver: `apt-get install chromium-driver` (scripts/test.sh installs it)")
    });
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let child = Command::new(driver)
        .arg(format!("--port={port}"))
        .arg("--allowed-ips=127.0.0.1")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting chromedriver");
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "chromedriver did not listen on {port}");
        std::thread::sleep(Duration::from_millis(50));
    }
    (Driver { child, port }, chromium)
}

async fn browser(driver: &Driver, chromium: &PathBuf, profile: &std::path::Path) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": chromium,
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-dev-shm-usage", "--hide-scrollbars", "--window-size=1280,800",
                format!("--user-data-dir={}", profile.display()),
            ]
        }),
    );
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{}", driver.port))
        .await
        .expect("a Chromium session through chromedriver")
}

async fn js(c: &Client, script: &str) -> Value {
    c.execute(script, vec![]).await.unwrap_or_else(|e| panic!("{script}: {e}"))
}

/// The figure shown in element `id` (its raw value, kept in `data-value`).
async fn shown(c: &Client, id: &str) -> f64 {
    let v = js(
        c,
        &format!(
            "var e = document.getElementById('{id}'); return e && e.dataset.value ? Number(e.dataset.value) : null;"
        ),
    )
    .await;
    v.as_f64().unwrap_or(f64::NAN)
}

async fn no_js_errors(c: &Client) {
    let errors = js(c, "return window.__errors;").await;
    assert_eq!(errors, json!([]), "the page logged JavaScript errors");
}

async fn until<F, Fut>(within: Duration, what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + within;
    while !f().await {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Sizes the window so that the page's viewport is `w` x `h` (the window has a frame even
/// headless).
async fn viewport(c: &Client, w: u32, h: u32) {
    c.set_window_size(w, h).await.unwrap();
    let inner = js(c, "return [window.innerWidth, window.innerHeight];").await;
    let (iw, ih) = (inner[0].as_u64().unwrap() as u32, inner[1].as_u64().unwrap() as u32);
    c.set_window_size(w + w.saturating_sub(iw), h + h.saturating_sub(ih)).await.unwrap();
}

fn png_size(png: &[u8]) -> (u32, u32) {
    assert_eq!(&png[1..4], b"PNG", "a PNG");
    let be = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    (be(&png[16..20]), be(&png[20..24]))
}

fn save(name: &str, png: &[u8]) -> PathBuf {
    let dir = std::env::current_exe().unwrap().parent().unwrap().parent().unwrap().join("screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, png).unwrap();
    p
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_in_real_chromium_shows_live_figures_that_agree_with_the_api() {
    let (driver, chromium) = start_driver();
    let mut redis = RedisServer::start();
    let _: () = redis.cmd(&["CONFIG", "SET", "maxmemory", "64mb"]);
    let url = redis.redis_url();
    // ~14 s of workload (7 simulated minutes at 30x), then the dashboard stays up.
    let mut demo = DemoProcess::start(&[
        "--requests",
        "700",
        "--users",
        "60",
        "--minutes",
        "7",
        "--speed",
        "30",
        "--latency-ms",
        "2",
        "--redis",
        &url,
        "--linger",
        "60",
        "--quiet",
    ]);
    let profile = std::env::temp_dir().join(format!("syntra-chromium-{}", std::process::id()));
    let c = browser(&driver, &chromium, &profile).await;
    c.goto(&demo.url).await.unwrap();
    viewport(&c, 1280, 800).await;
    assert_eq!(c.title().await.unwrap(), "syntra-cache");

    // The figures appear...
    until(Duration::from_secs(20), "figures on the page", || async { shown(&c, "calls").await > 0.0 }).await;
    let first = shown(&c, "calls").await;
    let health = js(&c, "return document.getElementById('health').textContent;").await;
    assert_eq!(health, json!("Redis up"), "the Redis poll reached the page");
    // ...and change as the workload runs.
    until(Duration::from_secs(10), "the call count to change", || async { shown(&c, "calls").await > first }).await;
    let rows = js(&c, "return document.querySelectorAll('#methods tbody tr').length;").await;
    assert!(rows.as_u64().unwrap() >= 5, "the per-method table fills: {rows}");
    no_js_errors(&c).await;

    // Once the workload is over the figures stop moving: the page shows what /api/stats says.
    demo.wait_for_line(Duration::from_secs(90), "serving the dashboard at");
    let api = demo.stats().await;
    tokio::time::sleep(Duration::from_millis(2500)).await; // the page polls every second
    let t = &api["total"];
    assert!(t["calls"].as_u64().unwrap() >= 700, "{t}");
    for (id, field) in [("calls", "calls"), ("saved", "calls_saved"), ("upstream", "upstream_calls")] {
        assert_eq!(shown(&c, id).await, t[field].as_f64().unwrap(), "#{id} vs /api/stats total.{field}");
    }
    assert!((shown(&c, "hit-rate").await - t["hit_rate"].as_f64().unwrap()).abs() < 1e-9);
    let page_stats = js(&c, "return window.__stats.total;").await;
    assert_eq!(&page_stats, t, "the page's last poll is the API's answer");
    let rows = js(&c, "return document.querySelectorAll('#methods tbody tr').length;").await;
    assert_eq!(rows.as_u64().unwrap() as usize, api["methods"].as_array().unwrap().len());
    let text = js(&c, "return document.body.innerText;").await;
    let text = text.as_str().unwrap();
    for provider in ["coingecko", "binance", "coinmarketcap", "dexscreener", "cryptopanic"] {
        assert!(text.contains(provider), "{provider} on the page");
    }
    assert!(text.contains("of 30") || text.contains("/min"), "calls per provider against a limit are shown");

    // The README's screenshot: 1280x800, from this real run.
    let png = c.screenshot().await.unwrap();
    assert_eq!(png_size(&png), (1280, 800), "viewport of the screenshot");
    let saved = save("dashboard-1280x800.png", &png);
    if std::env::var_os("SYNTRA_UPDATE_SCREENSHOT").is_some() {
        std::fs::write(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/dashboard.png"), &png).unwrap();
    }
    eprintln!("screenshot: {}", saved.display());
    // Nothing overflows the 1280 px page horizontally.
    let overflow = js(&c, "return document.documentElement.scrollWidth - window.innerWidth;").await;
    assert!(overflow.as_i64().unwrap() <= 0, "horizontal overflow at 1280: {overflow}");

    // Phone width: still one column without a horizontal scroll bar (the table scrolls inside
    // its own box).
    viewport(&c, 390, 844).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let width = js(&c, "return window.innerWidth;").await.as_i64().unwrap();
    assert!(width <= 420, "phone-width window: {width}");
    let overflow = js(&c, "return document.documentElement.scrollWidth - window.innerWidth;").await;
    assert!(overflow.as_i64().unwrap() <= 0, "horizontal overflow at phone width: {overflow}");
    let tiles =
        js(&c, "var r = document.getElementById('calls').getBoundingClientRect(); return [r.left, r.right];").await;
    assert!(tiles[1].as_f64().unwrap() <= width as f64, "tiles fit the phone's width: {tiles}");
    save("dashboard-390.png", &c.screenshot().await.unwrap());

    // Redis goes away: /healthz says 503 and the page says so.
    let (status, body) = demo.get("healthz").await;
    assert_eq!(status, 200, "{body}");
    redis.kill();
    let demo_ref = &demo;
    until(Duration::from_secs(10), "/healthz to turn 503", || async move { demo_ref.get("healthz").await.0 == 503 })
        .await;
    let (_, body) = demo.get("healthz").await;
    let h: Value = serde_json::from_str(&body).unwrap();
    assert_eq!((h["status"].as_str(), h["redis_up"].as_bool()), (Some("degraded"), Some(false)), "{h}");
    until(Duration::from_secs(5), "the page to show Redis down", || async {
        js(&c, "return document.getElementById('health').textContent;").await == json!("Redis DOWN")
    })
    .await;
    let (_, metrics) = demo.get("metrics").await;
    assert!(metrics.contains("syntra_redis_up 0"), "the scrape says Redis is down");

    no_js_errors(&c).await;
    c.close().await.unwrap();
    let _ = std::fs::remove_dir_all(&profile);
}
