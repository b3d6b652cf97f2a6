//! The cost of signed values (`Cache::builder().signing_key(..)`): a Redis-tier hit and a
//! memory-tier hit with signing on, each paired (ABBA blocks, `syntra_bench::stats::paired`)
//! against the same hit with signing off, for the CoinGecko coin value and a ~24 KB
//! `market_chart`.
//!
//! `cargo bench -p syntra-bench --bench signing` (about a minute); under `cargo test
//! --all-targets` it runs each pair once, tiny, with its assertions.

use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::time::Duration;
use syntra_bench::stats::paired;
use syntra_bench::{
    bench_flag, chart_points_for, fmt_ns, make_coin, make_market_chart, ApiError, Coin, MarketChart, RedisServer,
};
use syntra_cache::{cached, Cache};

struct Svc {
    cache: Cache,
    calls: AtomicUsize,
}

impl Svc {
    #[cached(ttl = 3600, key = "coingecko:coin:<id>", cache = self.cache)]
    async fn coin(&self, id: &str) -> Result<Coin, ApiError> {
        self.calls.fetch_add(1, Relaxed);
        Ok(make_coin(id))
    }

    #[cached(ttl = 3600, key = "coingecko:market_chart:<points>", cache = self.cache)]
    async fn chart(&self, points: usize) -> Result<MarketChart, ApiError> {
        self.calls.fetch_add(1, Relaxed);
        Ok(make_market_chart(points))
    }
}

const KEY: &str = "bench-signing-key-0123456789abcdef";

fn main() {
    let full = bench_flag() && !std::env::args().any(|a| a == "--test");
    let (rounds, block) = if full { (41, Duration::from_millis(25)) } else { (1, Duration::from_micros(200)) };
    let redis = RedisServer::start();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let build = |ns: &str, local: bool, signed: bool| {
        let b = Cache::builder().namespace(ns).redis(redis.url()).local_tier(local);
        let b = if signed { b.signing_key(KEY) } else { b };
        Svc { cache: b.build().unwrap(), calls: AtomicUsize::new(0) }
    };
    let points = chart_points_for(24_000);
    let (r_plain, r_signed) = (build("plain", false, false), build("signed", false, true));
    let (m_plain, m_signed) = (build("mplain", true, false), build("msigned", true, true));
    rt.block_on(async {
        for s in [&r_plain, &r_signed, &m_plain, &m_signed] {
            s.coin("bitcoin").await.unwrap();
            s.chart(points).await.unwrap();
        }
    });
    println!("== signing: ours with signing on (A) against signing off (B), paired ABBA blocks ==");
    let row = |name: &str, a: &Svc, b: &Svc, chart: bool| {
        let p = if chart {
            paired(&rt, rounds, block, &|| async { a.chart(points).await.unwrap() }, &|| async {
                b.chart(points).await.unwrap()
            })
        } else {
            paired(&rt, rounds, block, &|| async { a.coin("bitcoin").await.unwrap() }, &|| async {
                b.coin("bitcoin").await.unwrap()
            })
        };
        let r = p.ratio();
        let d = p.diff();
        println!(
            "{name:<34} signed {:>10}  unsigned {:>10}  ratio {:.3} [{:.3}, {:.3}]  diff {} [{}, {}]",
            fmt_ns(p.ours_ns()),
            fmt_ns(p.anchor_ns()),
            r.median,
            r.p25,
            r.p75,
            fmt_ns(d.median),
            fmt_ns(d.p25),
            fmt_ns(d.p75)
        );
    };
    row("redis hit, coin (1.4 KB envelope)", &r_signed, &r_plain, false);
    row("redis hit, market_chart (24 KB)", &r_signed, &r_plain, true);
    row("memory hit, coin", &m_signed, &m_plain, false);
    row("memory hit, market_chart (24 KB)", &m_signed, &m_plain, true);
    for s in [&r_plain, &r_signed, &m_plain, &m_signed] {
        assert_eq!(s.calls.load(Relaxed), 2, "every measured call was a hit");
        assert_eq!(s.cache.stats().total().tampered, 0);
    }
}
