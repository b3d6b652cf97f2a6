//! The hot path with the Prometheus exporter on: a memory-tier hit of a `#[cached]` function
//! while an [`Exporter`] is registered and a thread scrapes it every 100 ms (far more often than
//! Prometheus would), against the same hit without an exporter and against a bare moka
//! `get` + clone. Target: within 1.5x of moka.
//!
//! `cargo bench -p syntra-bench --bench exporter` (about 30 s): criterion rows, then paired ratios
//! (alternating blocks, as in `anchors`) with their spread, the scrape size and the time one
//! scrape takes. Under `cargo test --all-targets` each row runs once, with assertions.

use criterion::Criterion;
use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};
use syntra_bench::stats::{paired, Verdict};
use syntra_bench::{make_coin, test_mode, ApiError, Coin};
use syntra_cache::export::Exporter;
use syntra_cache::{cached, Cache};
use tokio::runtime::Runtime;

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
}

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let bare = Svc { cache: Cache::memory(), calls: AtomicUsize::new(0) };
    let exported = Svc { cache: Cache::memory(), calls: AtomicUsize::new(0) };
    let exporter = Exporter::new(&exported.cache);
    let moka: moka::sync::Cache<String, Coin> = moka::sync::Cache::new(10_000);
    let key = "syntra:coingecko:coin:bitcoin".to_string();
    moka.insert(key.clone(), make_coin("bitcoin"));
    rt.block_on(async {
        bare.coin("bitcoin").await.unwrap();
        exported.coin("bitcoin").await.unwrap();
    });

    // A scraper on its own thread for the whole run.
    let stop = Arc::new(AtomicBool::new(false));
    let scrapes = Arc::new(AtomicU64::new(0));
    let scrape_ns = Arc::new(AtomicU64::new(0));
    let scraper = {
        let (exporter, stop, scrapes, scrape_ns) = (exporter.clone(), stop.clone(), scrapes.clone(), scrape_ns.clone());
        std::thread::spawn(move || {
            let mut size = 0;
            while !stop.load(Relaxed) {
                let t = Instant::now();
                size = black_box(exporter.render()).len();
                scrape_ns.fetch_add(t.elapsed().as_nanos() as u64, Relaxed);
                scrapes.fetch_add(1, Relaxed);
                std::thread::sleep(Duration::from_millis(100));
            }
            size
        })
    };

    let ours_bare = || async { bare.coin("bitcoin").await.unwrap() };
    let ours_exported = || async { exported.coin("bitcoin").await.unwrap() };
    let moka_get = || std::future::ready(moka.get(key.as_str()).unwrap());

    if test_mode() {
        rt.block_on(async {
            black_box(ours_bare().await);
            black_box(ours_exported().await);
            black_box(moka_get().await);
        });
    } else {
        let mut c = Criterion::default().configure_from_args().measurement_time(Duration::from_secs(3));
        let mut g = c.benchmark_group("exporter_memory_hit");
        run(&mut g, &rt, "ours_exported_scraping", &ours_exported);
        run(&mut g, &rt, "ours_bare", &ours_bare);
        run(&mut g, &rt, "moka_get_clone", &moka_get);
        g.finish();
        let rounds = 40;
        let block = Duration::from_millis(20);
        println!("\npaired ratios (median [p25–p75] over {rounds} alternating blocks of {block:?}):");
        for (name, p) in [
            ("ours, exporter on + scraping / moka get + clone", paired(&rt, rounds, block, &ours_exported, &moka_get)),
            ("ours, no exporter / moka get + clone", paired(&rt, rounds, block, &ours_bare, &moka_get)),
            (
                "ours, exporter on + scraping / ours, no exporter",
                paired(&rt, rounds, block, &ours_exported, &ours_bare),
            ),
        ] {
            let r = p.ratio();
            println!(
                "  {name}: {:.0} ns vs {:.0} ns = {}  (target <= 1.5x vs moka: {})",
                p.ours_ns(),
                p.anchor_ns(),
                r.fmt_ratio(),
                Verdict::at_most(&r, 1.5).as_str()
            );
        }
    }
    stop.store(true, Relaxed);
    let size = scraper.join().unwrap();
    let n = scrapes.load(Relaxed).max(1);
    println!(
        "scrape: {size} bytes, {:.0} µs per scrape ({n} scrapes)",
        scrape_ns.load(Relaxed) as f64 / n as f64 / 1e3
    );
    assert_eq!((bare.calls.load(Relaxed), exported.calls.load(Relaxed)), (1, 1), "every measured call was a hit");
    let text = exporter.render();
    assert!(text.contains(r#"syntra_cache_gets_total{service="coingecko",method="coin",result="hit"}"#), "{text}");
}

fn run<F, Fut, T>(
    g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    rt: &Runtime,
    name: &str,
    f: &F,
) where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = T>,
{
    g.bench_function(name, |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let t = Instant::now();
                for _ in 0..iters {
                    black_box(f().await);
                }
                t.elapsed()
            })
        })
    });
}
