//! The Syntra bot demo: the main job of syntra-cache.
//!
//! ```sh
//! cargo run --release --example syntra                 # cached (in-memory), local simulator
//! cargo run --release --example syntra -- --no-budgets # the same workload, the seed's plain TTLs
//! cargo run --release --example syntra -- --no-cache   # the same workload, uncached
//! cargo run --release --example syntra -- --redis redis://127.0.0.1:6379/0
//! cargo run --release --example syntra -- --listen 127.0.0.1:9898 --linger 600  # + dashboard
//! cargo run --release --example syntra -- --disk /tmp/syntra.redb  # survives restarts
//! ```
//!
//! Starts the local provider simulator (free-tier limits enforced), then many simulated users
//! ask the bot a realistic mix of questions (prices, charts, coin info, market overview, news,
//! DEX tokens, CoinMarketCap quotes, futures), popular coins far more often than rare ones.
//! Each answer takes 1-3 provider calls through the `#[cached]` services of
//! `examples/providers`. A progress line is printed every second; the report at the end shows
//! the answers, errors users saw, upstream calls per provider against its free-tier limit,
//! 429s, hit rate, API calls saved, answer latency and a per-method table, and cross-checks
//! its upstream figures against the simulator's own counts.
//!
//! The providers' budgets (`examples/providers/config.rs`: rate limits, day and month quotas,
//! pacing) are enforced by default; the BUDGETS section shows what they did and whether every
//! provider stayed inside its per-minute limit and on pace for its month. `--no-budgets` runs the
//! same workload the seed's way, for comparison.
//!
//! Time is compressed (60x by default): see `examples/syntra/workload.rs`.

mod providers;
#[path = "syntra/workload.rs"]
mod workload;

use std::process::ExitCode;
use std::sync::OnceLock;
use std::time::Duration;

use syntra_cache::export::{dashboard, Exporter};
use syntra_cache::Cache;
use workload::{CacheMode, Config};

/// The dashboard settings.
#[derive(Debug, Default)]
struct Serve {
    listen: Option<String>,
    linger: Duration,
    json_logs: bool,
}

/// Hands the run's cache to the dashboard task.
static CACHE_FOR_DASHBOARD: OnceLock<tokio::sync::mpsc::UnboundedSender<Cache>> = OnceLock::new();

fn publish(cache: &Cache) {
    if let Some(tx) = CACHE_FOR_DASHBOARD.get() {
        let _ = tx.send(cache.clone());
    }
}

const USAGE: &str = "\
Usage: cargo run --release --example syntra -- [OPTIONS]

The Syntra bot workload against the local provider simulator, through syntra-cache.

Options:
  --requests N      questions to answer (default 6000; 200 with --live)
  --users N         distinct simulated users (default 200)
  --seed N          seed of the question plan and the simulator (default 42)
  --concurrency N   questions answered at once, at most (default 32)
  --minutes M       simulated minutes the questions are spread over (default 20; 5 with --live)
  --speed X         simulated seconds per real second; TTLs are scaled by 1/X (default 60)
  --latency-ms N    latency the simulator adds to each response (default 3)
  --no-budgets      the same workload without the providers' budgets: the seed's plain TTLs,
                    no rate limits, quotas, pacing or stale windows
  --no-cache        the same workload uncached (Cache::builder().enabled(false))
  --no-batch        one upstream call per coin: concurrent CoinGecko price and market-row and
                    CoinMarketCap quote misses are not merged into batch calls
  --cold            no warm-up: the first questions find the cache empty (by default the bot
                    loads CoinGecko's coin list, global market and trending coins first: 3 calls)
  --redis URL       Redis behind the in-memory tier (default: SYNTRA_CACHE_REDIS_URL if set,
                    else the embedded in-memory cache)
  --disk PATH       keep the embedded cache in a disk file too, so a restart starts warm
                    (default: SYNTRA_CACHE_DISK_PATH if set; ignored with --redis)
  --live            the real APIs instead of the simulator (keys from COINGECKO_API_KEY,
                    CMC_API_KEY, CRYPTOPANIC_TOKEN; real time, real TTLs)
  --quiet           no progress lines
  --listen ADDR     serve the live dashboard, /metrics (Prometheus), /api/stats and /healthz
                    at ADDR (e.g. 127.0.0.1:9898; port 0 picks a free one); the URL is printed
  --linger SECS     with --listen: keep serving for SECS after the report (default 0)
  --log-format F    `text` (default) or `json` (one JSON object per line, for log shippers)
  -h, --help        this help

Logs go to stderr at `warn` (syntra_cache at `error`: the budgets' refusals, counted in the report,
are not logged one by one); RUST_LOG overrides (e.g. RUST_LOG=warn, RUST_LOG=syntra_cache=debug).
TTLs can be overridden with SYNTRA_TTL_FILE / SYNTRA_TTL_<PROVIDER>_<ENDPOINT>, budgets with
`budget.<name>.<setting>` lines in the same file / SYNTRA_BUDGET_<NAME>_<SETTING> (see
examples/providers/config.rs).";

/// Parses the command line (by hand: no argument-parser dependency).
fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Option<(Config, Serve)>, String> {
    let mut c = Config::default();
    let mut serve = Serve::default();
    let mut requests = None;
    let mut minutes = None;
    let mut no_cache = false;
    let mut redis = None;
    let mut disk = None;
    let mut args = args.into_iter();
    fn value(args: &mut impl Iterator<Item = String>, flag: &str) -> Result<String, String> {
        args.next().filter(|v| !v.starts_with("--")).ok_or_else(|| format!("{flag} needs a value"))
    }
    fn num<T: std::str::FromStr>(v: &str, flag: &str) -> Result<T, String> {
        v.replace('_', "").parse().map_err(|_| format!("{flag}: {v:?} is not a valid number"))
    }
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        let mut val = |flag: &str| match &inline {
            Some(v) => Ok(v.clone()),
            None => value(&mut args, flag),
        };
        let switch = matches!(
            flag.as_str(),
            "--no-cache" | "--no-budgets" | "--no-batch" | "--cold" | "--live" | "--quiet" | "-q" | "-h" | "--help"
        );
        if switch && inline.is_some() {
            return Err(format!("{flag} takes no value"));
        }
        match flag.as_str() {
            "-h" | "--help" => return Ok(None),
            "--" => {}
            "--requests" => requests = Some(num(&val(&flag)?, &flag)?),
            "--users" => c.users = num(&val(&flag)?, &flag)?,
            "--seed" => c.seed = num(&val(&flag)?, &flag)?,
            "--concurrency" => c.concurrency = num(&val(&flag)?, &flag)?,
            "--minutes" => minutes = Some(num(&val(&flag)?, &flag)?),
            "--speed" => c.speed = num(&val(&flag)?, &flag)?,
            "--latency-ms" => {
                c.sim_latency = Duration::from_millis(num(&val(&flag)?, &flag)?);
            }
            "--no-cache" => no_cache = true,
            "--no-budgets" => c.budgets = false,
            "--no-batch" => c.batch = false,
            "--cold" => c.warm_up = false,
            "--redis" => redis = Some(val(&flag)?),
            "--disk" => disk = Some(val(&flag)?),
            "--live" => c.live = true,
            "--quiet" | "-q" => c.progress = false,
            "--listen" => serve.listen = Some(val(&flag)?),
            "--linger" => serve.linger = Duration::from_secs_f64(num::<f64>(&val(&flag)?, &flag)?.clamp(0.0, 1e7)),
            "--log-format" => {
                serve.json_logs = match val(&flag)?.as_str() {
                    "json" => true,
                    "text" => false,
                    other => return Err(format!("--log-format: {other:?} is not `text` or `json`")),
                }
            }
            other => return Err(format!("unknown argument {other:?} (see --help)")),
        }
    }
    if c.live {
        // Be gentle with the real free tiers.
        c.requests = requests.unwrap_or(200);
        c.minutes = minutes.unwrap_or(5.0);
    } else {
        c.requests = requests.unwrap_or(c.requests);
        c.minutes = minutes.unwrap_or(c.minutes);
    }
    let redis = redis.or_else(|| {
        std::env::var("SYNTRA_CACHE_REDIS_URL").ok().map(|v| v.trim().to_string()).filter(|v| !v.is_empty())
    });
    let disk = disk.or_else(|| {
        std::env::var("SYNTRA_CACHE_DISK_PATH").ok().map(|v| v.trim().to_string()).filter(|v| !v.is_empty())
    });
    c.cache = match (no_cache, redis, disk) {
        (true, _, _) => CacheMode::Disabled,
        (false, Some(url), _) => CacheMode::Redis(url),
        (false, None, Some(path)) => CacheMode::Disk(path.into()),
        (false, None, None) => CacheMode::Memory,
    };
    if !serve.linger.is_zero() && serve.listen.is_none() {
        return Err("--linger needs --listen".into());
    }
    Ok(Some((c, serve)))
}

#[tokio::main]
async fn main() -> ExitCode {
    let parsed = parse_args(std::env::args().skip(1));
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        // The budgets refuse calls by design in this workload: their one-line warnings (one per
        // refusal) are counted in the report instead; RUST_LOG=warn shows them.
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,syntra_cache=error"));
    let logs = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if matches!(&parsed, Ok(Some((_, s))) if s.json_logs) {
        logs.json().flatten_event(true).with_current_span(false).init();
    } else {
        logs.init();
    }

    let (mut config, serve) = match parsed {
        Ok(Some(c)) => c,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("error: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    if let Err(e) = workload::validate(&config) {
        eprintln!("error: {e}");
        return ExitCode::from(2);
    }
    let url = match &serve.listen {
        Some(addr) => match start_dashboard(addr).await {
            Ok(url) => {
                config.on_cache = Some(publish);
                eprintln!("syntra demo: dashboard at {url} (also {url}metrics, {url}api/stats, {url}healthz)");
                Some(url)
            }
            Err(e) => {
                eprintln!("error: --listen {addr}: {e}");
                return ExitCode::from(2);
            }
        },
        None => None,
    };
    if config.progress {
        let span = if config.live {
            format!("{} min of real time against the real APIs", config.minutes)
        } else {
            format!(
                "{} simulated min ({} real at {}x)",
                config.minutes,
                workload::dur(config.real_span()),
                config.speed
            )
        };
        eprintln!(
            "syntra demo: {} questions from {} users over {span}{}{}",
            config.requests,
            config.users,
            match &config.cache {
                CacheMode::Disabled => ", cache DISABLED",
                CacheMode::Redis(_) => ", Redis cache",
                CacheMode::Memory => ", in-memory cache",
                CacheMode::Disk(_) => ", in-memory cache over a disk file",
            },
            match (&config.cache, config.budgets) {
                (CacheMode::Disabled, _) => "",
                (_, true) => ", budgets on",
                (_, false) => ", NO budgets",
            }
        );
    }
    let outcome = workload::run(config).await;
    if let (Some(url), false) = (&url, serve.linger.is_zero()) {
        if let Ok(report) = &outcome {
            println!("{report}");
        }
        eprintln!("syntra demo: serving the dashboard at {url} for {} more", workload::dur(serve.linger));
        tokio::time::sleep(serve.linger).await;
        return match outcome {
            Ok(report) if report.agrees() => ExitCode::SUCCESS,
            Ok(_) => ExitCode::FAILURE,
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        };
    }
    match outcome {
        Ok(report) => {
            println!("{report}");
            if report.agrees() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Binds `addr` and serves the dashboard of the run's cache once it is built; the URL.
async fn start_dashboard(addr: &str) -> std::io::Result<String> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let url = format!("http://{}/", listener.local_addr()?);
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let _ = CACHE_FOR_DASHBOARD.set(tx);
    tokio::spawn(async move {
        let Some(cache) = rx.recv().await else { return };
        // The demo's namespace is small: poll Redis every second for a lively page.
        let exporter = Exporter::builder(&cache).redis_poll_interval(Duration::from_secs(1)).build();
        if let Err(e) = dashboard::serve(listener, exporter).await {
            eprintln!("dashboard: {e}");
        }
    });
    Ok(url)
}
