//! Ratio and time of LZ4 (lz4_flex, what the runtime uses) and zstd (levels 1 and 3) on real
//! stored envelopes, and the CPU cost of a hit (decompress + decode) with and without
//! compression. Input: a directory of envelopes as the demo stored them in Redis uncompressed
//! (`SYNTRA_CACHE_COMPRESS_THRESHOLD=off`), file names like `syntra-demo_coingecko_market_chart_…`.

use serde::Deserialize;
use std::hint::black_box;
use std::time::Instant;
use syntra_cache_runtime::codec::{self, Compression};

#[derive(Deserialize)]
#[allow(dead_code)]
struct MarketChart {
    prices: Vec<(i64, f64)>,
    market_caps: Vec<(i64, f64)>,
    total_volumes: Vec<(i64, f64)>,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct Kline {
    open_time: i64,
    open: f64,
    high: f64,
    low: f64,
    close: f64,
    volume: f64,
    close_time: i64,
    quote_volume: f64,
    trades: u64,
    taker_buy_base_volume: f64,
    taker_buy_quote_volume: f64,
}

/// Median µs of `f` over `n` runs.
fn time(n: usize, mut f: impl FnMut()) -> f64 {
    let mut t: Vec<f64> = (0..n)
        .map(|_| {
            let s = Instant::now();
            f();
            s.elapsed().as_secs_f64() * 1e6
        })
        .collect();
    t.sort_by(|a, b| a.partial_cmp(b).unwrap());
    t[n / 2]
}

#[derive(Default)]
struct Row {
    n: usize,
    plain: usize,
    lz4: usize,
    z1: usize,
    z3: usize,
    t: [f64; 6],
    hit_plain: f64,
    hit_lz4: f64,
}

fn main() {
    let dir = std::env::args().nth(1).expect("usage: DIR");
    let mut rows: std::collections::BTreeMap<&str, Row> = Default::default();
    for e in std::fs::read_dir(&dir).unwrap() {
        let path = e.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let plain = std::fs::read(&path).unwrap();
        if plain.first() != Some(&b'{') {
            continue;
        }
        let ty: serde_json::Value = serde_json::from_slice::<serde_json::Value>(&plain).unwrap()["ty"].clone();
        let ty = ty.as_str().unwrap().to_owned();
        let shape = if name.contains("market_chart") { "coingecko market_chart" } else { "binance klines" };
        let r = rows.entry(shape).or_default();
        let lz4 = lz4_flex::block::compress(&plain);
        let z1 = zstd::bulk::compress(&plain, 1).unwrap();
        let z3 = zstd::bulk::compress(&plain, 3).unwrap();
        let n = 200;
        r.n += 1;
        r.plain += plain.len();
        r.lz4 += lz4.len() + 6;
        r.z1 += z1.len();
        r.z3 += z3.len();
        r.t[0] += time(n, || drop(black_box(lz4_flex::block::compress(black_box(&plain)))));
        r.t[1] += time(n, || drop(black_box(zstd::bulk::compress(black_box(&plain), 1).unwrap())));
        r.t[2] += time(n, || drop(black_box(zstd::bulk::compress(black_box(&plain), 3).unwrap())));
        r.t[3] += time(n, || drop(black_box(lz4_flex::block::decompress(black_box(&lz4), plain.len()).unwrap())));
        r.t[4] += time(n, || drop(black_box(zstd::bulk::decompress(black_box(&z1), plain.len()).unwrap())));
        r.t[5] += time(n, || drop(black_box(zstd::bulk::decompress(black_box(&z3), plain.len()).unwrap())));
        // A hit's CPU work in the runtime: (decompress +) decode into the provider's type.
        let stored = Compression::default().apply(plain.clone());
        assert!(syntra_cache_runtime::compress::is_compressed(&stored));
        let (hp, hl) = if shape.contains("klines") {
            (
                time(n, || drop(black_box(codec::decode::<Vec<Kline>>(black_box(&plain), &ty).unwrap()))),
                time(n, || drop(black_box(codec::decode::<Vec<Kline>>(black_box(&stored), &ty).unwrap()))),
            )
        } else {
            (
                time(n, || drop(black_box(codec::decode::<MarketChart>(black_box(&plain), &ty).unwrap()))),
                time(n, || drop(black_box(codec::decode::<MarketChart>(black_box(&stored), &ty).unwrap()))),
            )
        };
        r.hit_plain += hp;
        r.hit_lz4 += hl;
    }
    println!("| shape | entries | JSON bytes/entry | LZ4 | zstd-1 | zstd-3 | encode µs LZ4 / z1 / z3 | decompress µs LZ4 / z1 / z3 | hit decode µs plain / LZ4 |");
    println!("|---|---|---|---|---|---|---|---|---|");
    for (shape, r) in rows {
        let n = r.n as f64;
        let pct = |b: usize| format!("{} ({:.0}%)", b / r.n, b as f64 * 100.0 / r.plain as f64);
        println!(
            "| {shape} | {} | {} | {} | {} | {} | {:.1} / {:.1} / {:.1} | {:.1} / {:.1} / {:.1} | {:.1} / {:.1} |",
            r.n,
            r.plain / r.n,
            pct(r.lz4),
            pct(r.z1),
            pct(r.z3),
            r.t[0] / n,
            r.t[1] / n,
            r.t[2] / n,
            r.t[3] / n,
            r.t[4] / n,
            r.t[5] / n,
            r.hit_plain / n,
            r.hit_lz4 / n
        );
    }
}
