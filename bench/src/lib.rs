//! Support for the `anchors` benchmark: a redis-server owned by the bench, the shared value, the
//! quick-mode switch and a side channel that keeps criterion's samples for the summary table.

pub mod curves;
pub mod probe;
pub mod stats;

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

// ---------------------------------------------------------------------------------------------
// redis-server
// ---------------------------------------------------------------------------------------------

pub use syntra_sim::redis_server::RedisServer;

/// Synchronous Redis commands for set-up and checks.
pub trait RedisExt {
    /// A synchronous client.
    fn client(&self) -> redis::Client;

    /// `SET key value` synchronously.
    fn set_bytes(&self, key: &str, value: &[u8]) {
        let mut c = self.client().get_connection().unwrap();
        let _: () = redis::cmd("SET").arg(key).arg(value).query(&mut c).unwrap();
    }

    /// `EXISTS key` synchronously.
    fn exists(&self, key: &str) -> bool {
        let mut c = self.client().get_connection().unwrap();
        redis::cmd("EXISTS").arg(key).query::<u64>(&mut c).unwrap() > 0
    }
}

impl RedisExt for RedisServer {
    fn client(&self) -> redis::Client {
        redis::Client::open(self.url()).unwrap()
    }
}

// ---------------------------------------------------------------------------------------------
// The value: shaped like a CoinGecko /coins/{id} response (market data part)
// ---------------------------------------------------------------------------------------------

/// Prices and amounts per quote currency (`usd`, `eur`, …).
pub type PerCurrency = BTreeMap<String, f64>;

/// `market_data` of a CoinGecko /coins/{id} response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MarketData {
    pub current_price: PerCurrency,
    pub market_cap: PerCurrency,
    pub total_volume: PerCurrency,
    pub high_24h: PerCurrency,
    pub low_24h: PerCurrency,
    pub price_change_24h: f64,
    pub price_change_percentage_24h: f64,
    pub price_change_percentage_7d: f64,
    pub price_change_percentage_30d: f64,
    pub price_change_percentage_1y: f64,
    pub market_cap_change_24h: f64,
    pub market_cap_change_percentage_24h: f64,
    pub circulating_supply: f64,
    pub total_supply: Option<f64>,
    pub max_supply: Option<f64>,
    pub last_updated: String,
}

/// A CoinGecko /coins/{id} response reduced to what a bot reads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Coin {
    pub id: String,
    pub symbol: String,
    pub name: String,
    pub hashing_algorithm: Option<String>,
    pub market_cap_rank: Option<u32>,
    pub market_data: MarketData,
    pub last_updated: String,
}

fn per_currency(base: f64) -> PerCurrency {
    // Quotes of one asset in a few currencies, with realistic magnitudes.
    [("usd", 1.0), ("eur", 0.9213), ("gbp", 0.7871), ("jpy", 151.37), ("btc", 1.0 / 97_123.0), ("eth", 1.0 / 3_512.4)]
        .into_iter()
        .map(|(c, r)| (c.to_owned(), base * r))
        .collect()
}

/// The value every row uses. A fixed, sleep-free computation (it is also the "body" of the
/// miss-overhead row).
pub fn make_coin(id: &str) -> Coin {
    Coin {
        id: id.to_owned(),
        symbol: "btc".to_owned(),
        name: "Bitcoin".to_owned(),
        hashing_algorithm: Some("SHA-256".to_owned()),
        market_cap_rank: Some(1),
        market_data: MarketData {
            current_price: per_currency(97_123.45),
            market_cap: per_currency(1_923_456_789_012.0),
            total_volume: per_currency(38_765_432_109.0),
            high_24h: per_currency(98_011.02),
            low_24h: per_currency(95_870.33),
            price_change_24h: 1_021.77,
            price_change_percentage_24h: 1.06318,
            price_change_percentage_7d: -2.41877,
            price_change_percentage_30d: 8.90121,
            price_change_percentage_1y: 121.55032,
            market_cap_change_24h: 20_345_678_901.0,
            market_cap_change_percentage_24h: 1.0693,
            circulating_supply: 19_801_234.0,
            total_supply: Some(21_000_000.0),
            max_supply: Some(21_000_000.0),
            last_updated: "2025-11-26T12:34:56.789Z".to_owned(),
        },
        last_updated: "2025-11-26T12:34:56.789Z".to_owned(),
    }
}

// ---------------------------------------------------------------------------------------------
// The curves' value: shaped like a CoinGecko /coins/{id}/market_chart response
// ---------------------------------------------------------------------------------------------

/// A CoinGecko `/coins/{id}/market_chart` response: three arrays of `[timestamp_ms, value]`
/// pairs (JSON `{"prices":[[1764000000000,97123.45…],…],"market_caps":[…],"total_volumes":[…]}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MarketChart {
    pub prices: Vec<(u64, f64)>,
    pub market_caps: Vec<(u64, f64)>,
    pub total_volumes: Vec<(u64, f64)>,
}

/// A market chart of `points` 5-minute points per array, with non-round values (as the API
/// sends them: full-precision floats). Deterministic.
pub fn make_market_chart(points: usize) -> MarketChart {
    let series = |base: f64, swing: f64, phase: f64| -> Vec<(u64, f64)> {
        (0..points)
            .map(|i| {
                let t = i as f64;
                let ts = 1_764_000_000_000 + i as u64 * 300_000;
                (ts, base + swing * (t * 0.071 + phase).sin() + (t * 0.013).cos() * swing * 0.137 + t * 0.001_234_567)
            })
            .collect()
    };
    MarketChart {
        prices: series(97_123.456_789_012_3, 1_234.567_890_1, 0.0),
        market_caps: series(1_923_456_789_012.345, 24_567_890_123.456, 1.3),
        total_volumes: series(38_765_432_109.876_5, 5_678_901_234.567, 2.1),
    }
}

/// The number of points per array whose market chart is closest to `json_bytes` of JSON.
pub fn chart_points_for(json_bytes: usize) -> usize {
    let size = |n: usize| serde_json::to_vec(&make_market_chart(n)).unwrap().len();
    let (empty, hundred) = (size(0), size(100));
    let per = (hundred - empty) as f64 / 100.0;
    let mut n = (json_bytes.saturating_sub(empty) as f64 / per).round().max(1.0) as usize;
    // The estimate is within a point or two; settle on the closest.
    for _ in 0..8 {
        let (here, up, down) = (size(n), size(n + 1), if n > 1 { size(n - 1) } else { usize::MAX });
        let d = |s: usize| s.abs_diff(json_bytes);
        if d(up) < d(here) {
            n += 1;
        } else if n > 1 && d(down) < d(here) {
            n -= 1;
        } else {
            break;
        }
    }
    n
}

/// The error type of the cached functions.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError(pub String);

// ---------------------------------------------------------------------------------------------
// Quick mode
// ---------------------------------------------------------------------------------------------

/// Whether `cargo bench` started the binary (it passes `--bench`; `cargo test` does not).
pub fn bench_flag() -> bool {
    std::env::args().any(|a| a == "--bench")
}

/// Quick mode: `SYNTRA_BENCH_QUICK=1`, or the binary not run by `cargo bench` (under
/// `cargo test --all-targets`: no `--bench` flag), or `cargo bench -- --test`.
pub fn quick_mode() -> bool {
    let env = std::env::var("SYNTRA_BENCH_QUICK").is_ok_and(|v| v == "1" || v.eq_ignore_ascii_case("true"));
    let test = std::env::args().any(|a| a == "--test");
    env || !bench_flag() || test
}

/// Test mode: each row once with tiny counts, assertions only (`cargo test --all-targets`
/// starts the binary without `--bench`; `cargo bench -- --test` too).
pub fn test_mode() -> bool {
    !bench_flag() || std::env::args().any(|a| a == "--test")
}

/// The curves (hit cost against live keys and value size, throughput against tasks, memory per
/// entry) run with `SYNTRA_BENCH_CURVES=1`, and always, tiny, in test mode.
pub fn curves_enabled() -> bool {
    std::env::var("SYNTRA_BENCH_CURVES").is_ok_and(|v| v == "1" || v.eq_ignore_ascii_case("true")) || test_mode()
}

/// `--list` (cargo bench -- --list): print nothing but the names.
pub fn list_mode() -> bool {
    std::env::args().any(|a| a == "--list")
}

// ---------------------------------------------------------------------------------------------
// Samples side channel
// ---------------------------------------------------------------------------------------------

/// Keeps every `(iterations, elapsed)` sample criterion asks for, per benchmark id, so the
/// summary can compute ratios from the same run. Criterion's warm-up calls come first; the
/// last `sample_size` records are the measured samples.
#[derive(Default)]
pub struct Samples {
    map: Mutex<HashMap<String, Vec<(u64, Duration)>>>,
    expected: Mutex<HashMap<String, usize>>,
}

impl Samples {
    /// Declares how many samples criterion takes for `id` (its group's `sample_size`).
    pub fn expect(&self, id: &str, n: usize) {
        self.expected.lock().unwrap().insert(id.to_owned(), n);
    }

    pub fn record(&self, id: &str, iters: u64, elapsed: Duration) {
        self.map.lock().unwrap().entry(id.to_owned()).or_default().push((iters, elapsed));
    }

    /// Time per iteration (ns) of `id` over its measured samples: the least-squares slope
    /// through the origin, which is criterion's own "slope" point estimate for linear sampling
    /// (and the mean for flat sampling).
    pub fn per_iter_ns(&self, id: &str) -> Option<f64> {
        let n = self.expected.lock().unwrap().get(id).copied().unwrap_or(1);
        let map = self.map.lock().unwrap();
        let v = map.get(id)?;
        let tail = &v[v.len().saturating_sub(n.max(1))..];
        let (mut xy, mut xx) = (0.0, 0.0);
        for &(iters, d) in tail {
            let x = iters as f64;
            xy += x * d.as_nanos() as f64;
            xx += x * x;
        }
        (xx > 0.0).then(|| xy / xx)
    }
}

/// Formats a byte count (`1.3 KB`, `24.0 KB`, `1.00 MB`; 1 KB = 1,000 B).
pub fn fmt_bytes(b: f64) -> String {
    if b >= 1e6 {
        format!("{:.2} MB", b / 1e6)
    } else if b >= 1e3 {
        format!("{:.1} KB", b / 1e3)
    } else {
        format!("{b:.0} B")
    }
}

/// Formats nanoseconds with a unit.
pub fn fmt_ns(ns: f64) -> String {
    if ns >= 1e9 {
        format!("{:.3} s", ns / 1e9)
    } else if ns >= 1e6 {
        format!("{:.3} ms", ns / 1e6)
    } else if ns >= 1e3 {
        format!("{:.3} µs", ns / 1e3)
    } else {
        format!("{ns:.1} ns")
    }
}
