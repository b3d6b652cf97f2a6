//! `syntra-cache`: the operator's view of a syntra-cache namespace in Redis.
//!
//! ```sh
//! syntra-cache --url redis://127.0.0.1:6379/0 keys 'coingecko:*'
//! syntra-cache get coingecko:price:bitcoin_usd
//! syntra-cache purge coingecko:price:          # dry run: shows the count
//! syntra-cache purge coingecko:price: --yes
//! syntra-cache stats --metrics http://127.0.0.1:9100/metrics
//! syntra-cache budgets
//! syntra-cache rotate
//! ```
//!
//! Every command takes `--json`. It only ever SCANs (never `KEYS`) and removes with `UNLINK`
//! (freed by the server in the background). Keys are namespace-aware: patterns and prefixes are
//! relative to the namespace's current generation (`{ns}:` or `{ns}@{n}:`).

use clap::{Parser, Subcommand};
use redis::aio::MultiplexedConnection;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::Duration;
use syntra_cache_runtime::compress::{self, DEFAULT_MAX_DECOMPRESSED};
use syntra_cache_runtime::key::glob_escape;
use syntra_cache_runtime::rotation::{self, SweepOptions};

const EXIT_CODES: &str = "\
Exit codes:
  0  success (a purge dry run included)
  1  Redis failed during the command
  2  usage error (bad arguments, bad namespace or prefix)
  3  invalid Redis URL
  4  Redis unreachable (refused, timed out, unknown host)
  5  authentication failed (wrong or missing password)
  6  key not found (get)";

#[derive(Parser)]
#[command(name = "syntra-cache", version, about = "Inspect and maintain a syntra-cache namespace in Redis", after_help = EXIT_CODES)]
struct Cli {
    /// Redis URL (`redis://[user:password@]host:port/db`).
    #[arg(long, env = "SYNTRA_CACHE_REDIS_URL", default_value = "redis://127.0.0.1:6379/0", hide_env_values = true)]
    url: String,
    /// Key namespace.
    #[arg(long, short = 'n', env = "SYNTRA_CACHE_NAMESPACE", default_value = "syntra")]
    namespace: String,
    /// Machine-readable output (one JSON document on stdout).
    #[arg(long, global = true)]
    json: bool,
    /// Bound on connecting and on each command, in milliseconds.
    #[arg(long, default_value_t = 2_000)]
    timeout_ms: u64,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// List entry keys matching a glob relative to the namespace (SCAN).
    Keys {
        /// Glob after the namespace, e.g. `coingecko:price:*`.
        #[arg(default_value = "*")]
        pattern: String,
        /// Stop after this many keys.
        #[arg(long, default_value_t = 1_000)]
        limit: usize,
    },
    /// Show one entry's envelope: age, TTL left, stale window, format, size, signature.
    Get {
        /// The key, with or without the namespace.
        key: String,
        /// Include the cached value itself.
        #[arg(long)]
        data: bool,
        /// Refuse compressed values larger than this once decompressed.
        #[arg(long, default_value_t = DEFAULT_MAX_DECOMPRESSED)]
        max_decompressed: usize,
    },
    /// Remove entries whose key starts with PREFIX (SCAN + UNLINK); a dry run without --yes.
    Purge {
        /// Prefix after the namespace, e.g. `coingecko:price:` (`""`: every entry).
        prefix: String,
        /// Remove them (without it: only count).
        #[arg(long)]
        yes: bool,
    },
    /// Redis memory, entries per service and method (from a SCAN sample), hit figures.
    Stats {
        /// Keys to sample at most.
        #[arg(long, default_value_t = 10_000)]
        sample: usize,
        /// A Prometheus metrics endpoint (`http://host:port/metrics`) to read hit figures from.
        #[arg(long)]
        metrics: Option<String>,
    },
    /// Budgets' shared counters: day and month quota used and projected, 429 holds.
    Budgets,
    /// Drop every entry at once: bump the generation, then sweep the old one (rate-limited
    /// SCAN + UNLINK, orphaned locks included, budget counters never).
    Rotate {
        /// Count what a rotation would drop (with --sweep-only: what a sweep would remove now);
        /// change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Only sweep old generations (e.g. after an interrupted rotation).
        #[arg(long)]
        sweep_only: bool,
        /// Keys removed per second, at most.
        #[arg(long, default_value_t = 5_000)]
        rate: u32,
        /// Wait this long after the bump before sweeping, so instances still on the old
        /// generation (refreshed every second by default) are not stripped mid-use.
        #[arg(long, default_value_t = 1_000)]
        grace_ms: u64,
    },
}

/// A failure, with its exit code.
#[derive(Debug)]
enum Fail {
    Redis(String),
    Usage(String),
    Url(String),
    Unreachable(String),
    Auth(String),
    NotFound(String),
}

impl Fail {
    fn code(&self) -> u8 {
        match self {
            Fail::Redis(_) => 1,
            Fail::Usage(_) => 2,
            Fail::Url(_) => 3,
            Fail::Unreachable(_) => 4,
            Fail::Auth(_) => 5,
            Fail::NotFound(_) => 6,
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            Fail::Redis(_) => "redis",
            Fail::Usage(_) => "usage",
            Fail::Url(_) => "url",
            Fail::Unreachable(_) => "unreachable",
            Fail::Auth(_) => "auth",
            Fail::NotFound(_) => "not_found",
        }
    }

    fn message(&self) -> &str {
        match self {
            Fail::Redis(m)
            | Fail::Usage(m)
            | Fail::Url(m)
            | Fail::Unreachable(m)
            | Fail::Auth(m)
            | Fail::NotFound(m) => m,
        }
    }
}

/// `msg` with the password of `url` (and the URL itself) hidden.
fn redact(msg: &str, url: &str) -> String {
    let mut out = msg.replace(url, "<redis url>");
    let password = url
        .split_once("://")
        .and_then(|(_, r)| r.split_once('@'))
        .map(|(u, _)| u.split_once(':').map_or(u, |(_, p)| p));
    if let Some(p) = password.filter(|p| !p.is_empty()) {
        out = out.replace(p, "<redacted>");
    }
    out
}

/// Sorts a redis-rs error into an exit code.
fn classify(e: &redis::RedisError, url: &str) -> Fail {
    let msg = redact(&e.to_string(), url);
    let auth = e.kind() == redis::ErrorKind::AuthenticationFailed
        || matches!(e.code(), Some("WRONGPASS" | "NOAUTH"))
        || msg.contains("WRONGPASS")
        || msg.contains("NOAUTH");
    if auth {
        Fail::Auth(format!("authentication failed: {msg}"))
    } else if e.is_connection_refusal() || e.is_timeout() || e.is_io_error() || e.is_connection_dropped() {
        Fail::Unreachable(format!("cannot reach Redis: {msg}"))
    } else {
        Fail::Redis(msg)
    }
}

struct Ctx {
    conn: MultiplexedConnection,
    url: String,
    ns: String,
    timeout: Duration,
}

impl Ctx {
    async fn connect(cli: &Cli) -> Result<Ctx, Fail> {
        let ns = &cli.namespace;
        let ns_ok = !ns.is_empty()
            && ns.bytes().all(|c| c.is_ascii_alphanumeric() || b"_-.:".contains(&c))
            && !ns.contains("::")
            && !ns.starts_with(':')
            && !ns.ends_with(':');
        if !ns_ok {
            return Err(Fail::Usage(format!(
                "invalid namespace {ns:?}: letters, digits, `_`, `-`, `.` and single `:`"
            )));
        }
        let client = redis::Client::open(cli.url.as_str())
            .map_err(|e| Fail::Url(format!("invalid Redis URL: {}", redact(&e.to_string(), &cli.url))))?;
        let timeout = Duration::from_millis(cli.timeout_ms.max(1));
        let config = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout));
        let conn = match tokio::time::timeout(timeout * 2, client.get_multiplexed_async_connection_with_config(&config))
            .await
        {
            Ok(Ok(c)) => c,
            Ok(Err(e)) => return Err(classify(&e, &cli.url)),
            Err(_) => return Err(Fail::Unreachable(format!("cannot reach Redis: no answer within {timeout:?}"))),
        };
        let mut ctx = Ctx { conn, url: cli.url.clone(), ns: ns.clone(), timeout };
        // A server that wants a password we were not given answers NOAUTH here.
        let _: String = ctx.query(&mut redis::cmd("PING")).await?;
        Ok(ctx)
    }

    async fn query<T: redis::FromRedisValue>(&mut self, cmd: &mut redis::Cmd) -> Result<T, Fail> {
        match tokio::time::timeout(self.timeout, cmd.query_async(&mut self.conn)).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(classify(&e, &self.url)),
            Err(_) => Err(Fail::Unreachable(format!("Redis did not answer within {:?}", self.timeout))),
        }
    }

    async fn generation(&mut self) -> Result<u64, Fail> {
        let v: Option<String> = self.query(redis::cmd("GET").arg(rotation::generation_key(&self.ns))).await?;
        Ok(v.and_then(|v| v.parse().ok()).unwrap_or(0))
    }

    /// SCANs `pattern`, calling `each` with every page, until it returns `false`.
    async fn scan(&mut self, pattern: &str, mut each: impl FnMut(Vec<String>) -> bool) -> Result<(), Fail> {
        let mut cursor: u64 = 0;
        loop {
            let (next, keys): (u64, Vec<String>) =
                self.query(redis::cmd("SCAN").arg(cursor).arg("MATCH").arg(pattern).arg("COUNT").arg(500)).await?;
            if !each(keys) || next == 0 {
                return Ok(());
            }
            cursor = next;
        }
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

async fn keys(ctx: &mut Ctx, pattern: &str, limit: usize) -> Result<Value, Fail> {
    let generation = ctx.generation().await?;
    let prefix = rotation::entry_prefix(&ctx.ns, generation);
    let mut found = Vec::new();
    let mut truncated = false;
    ctx.scan(&format!("{}{pattern}", glob_escape(&prefix)), |page| {
        for k in page.into_iter().filter(|k| !k.contains("::")) {
            if found.len() == limit {
                truncated = true;
                return false;
            }
            found.push(k);
        }
        true
    })
    .await?;
    found.sort();
    Ok(
        json!({"namespace": ctx.ns, "generation": generation, "pattern": pattern, "count": found.len(), "truncated": truncated, "keys": found}),
    )
}

/// The full key of `key`: as given when it already starts with the namespace, else under the
/// current generation.
async fn full_key(ctx: &mut Ctx, key: &str) -> Result<String, Fail> {
    let ours = key.strip_prefix(ctx.ns.as_str()).is_some_and(|r| r.starts_with(':') || r.starts_with('@'));
    if ours {
        return Ok(key.to_owned());
    }
    let generation = ctx.generation().await?;
    Ok(format!("{}{key}", rotation::entry_prefix(&ctx.ns, generation)))
}

/// Reads an envelope's fields, JSON or MessagePack (an array in field order).
fn envelope(plain: &[u8]) -> Option<(&'static str, Map<String, Value>)> {
    const FIELDS: [&str; 7] = ["syntra", "ty", "at", "ttl", "stale", "neg", "data"];
    match plain.first()? {
        b'{' => match serde_json::from_slice(plain).ok()? {
            Value::Object(m) if m.contains_key("syntra") => Some(("json", m)),
            _ => None,
        },
        0x90..=0x9f => match rmp_serde::from_slice::<Value>(plain).ok()? {
            Value::Array(a) => Some(("msgpack", FIELDS.iter().map(|f| f.to_string()).zip(a).collect())),
            _ => None,
        },
        _ => None,
    }
}

async fn get(ctx: &mut Ctx, key: &str, with_data: bool, max: usize) -> Result<Value, Fail> {
    let key = full_key(ctx, key).await?;
    let bytes: Option<Vec<u8>> = ctx.query(redis::cmd("GET").arg(&key)).await?;
    let Some(bytes) = bytes else { return Err(Fail::NotFound(format!("no entry at {key}"))) };
    let pttl: i64 = ctx.query(redis::cmd("PTTL").arg(&key)).await?;
    let compressed = compress::is_compressed(&bytes);
    let plain = if compressed {
        compress::decompress(&bytes, max).map_err(|e| Fail::Redis(format!("{key}: {e}")))?
    } else {
        bytes.clone()
    };
    let mut out = json!({"key": key, "stored_bytes": bytes.len(), "compressed": compressed, "redis_pttl_ms": pttl});
    let Some((format, env)) = envelope(&plain) else {
        out["format"] = json!("unknown");
        out["signature"] = json!("unknown: not an envelope this version reads (signed by a newer version, or foreign)");
        return Ok(out);
    };
    let num = |f: &str| env.get(f).and_then(Value::as_u64).unwrap_or(0);
    let (at, ttl, stale) = (num("at"), num("ttl"), num("stale"));
    let now = now_ms();
    let fresh_left = (at + ttl).saturating_sub(now);
    let stale_left = (at + ttl + stale).saturating_sub(now).min(stale);
    out["format"] = json!(format);
    out["decoded_bytes"] = json!(plain.len());
    out["envelope_version"] = env.get("syntra").cloned().unwrap_or(Value::Null);
    out["type"] = env.get("ty").cloned().unwrap_or(Value::Null);
    out["written_at_ms"] = json!(at);
    out["age_ms"] = json!(now.saturating_sub(at));
    out["ttl_ms"] = json!(ttl);
    out["fresh_left_ms"] = json!(fresh_left);
    out["stale_window_ms"] = json!(stale);
    out["stale_left_ms"] = json!(stale_left);
    out["state"] = json!(if fresh_left > 0 {
        "fresh"
    } else if stale_left > 0 {
        "stale"
    } else {
        "expired"
    });
    out["negative"] = env.get("neg").cloned().unwrap_or(json!(false));
    out["signature"] = json!("none (unsigned envelope)");
    if with_data {
        out["data"] = env.get("data").cloned().unwrap_or(Value::Null);
    }
    Ok(out)
}

async fn purge(ctx: &mut Ctx, prefix: &str, yes: bool) -> Result<Value, Fail> {
    if prefix.starts_with(':') {
        return Err(Fail::Usage(format!("invalid prefix {prefix:?}: it must not start with `:` (runtime keys)")));
    }
    let generation = ctx.generation().await?;
    let full = format!("{}{prefix}", rotation::entry_prefix(&ctx.ns, generation));
    let pattern = format!("{}*", glob_escape(&full));
    let mut pages = Vec::new();
    ctx.scan(&pattern, |page| {
        let page: Vec<String> = page.into_iter().filter(|k| !k.contains("::")).collect();
        if !page.is_empty() {
            pages.push(page);
        }
        true
    })
    .await?;
    let matched: usize = pages.iter().map(Vec::len).sum();
    let sample: Vec<&String> = pages.iter().flatten().take(10).collect();
    let mut removed = 0u64;
    if yes {
        for page in &pages {
            removed += ctx.query::<u64>(redis::cmd("UNLINK").arg(page)).await?;
        }
    }
    Ok(
        json!({"namespace": ctx.ns, "generation": generation, "prefix": prefix, "dry_run": !yes, "matched": matched, "removed": removed, "sample": sample}),
    )
}

fn info_field<'a>(info: &'a str, field: &str) -> Option<&'a str> {
    info.lines().find_map(|l| l.strip_prefix(field)?.strip_prefix(':')).map(str::trim)
}

/// Sums the Prometheus samples of `body` whose name mentions hits or misses, by name.
fn hit_figures(body: &str) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    for line in body.lines().filter(|l| !l.starts_with('#')) {
        let Some((name_labels, value)) = line.rsplit_once(' ') else { continue };
        let name = name_labels.split('{').next().unwrap_or(name_labels);
        if !(name.contains("hit") || name.contains("miss")) {
            continue;
        }
        if let Ok(v) = value.trim().parse::<f64>() {
            *out.entry(name.to_owned()).or_insert(0.0) += v;
        }
    }
    out
}

/// A plain HTTP/1.1 GET of `url` (`http://` only): the body.
async fn http_get(url: &str, timeout: Duration) -> Result<String, String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rest = url.strip_prefix("http://").ok_or("only http:// metrics URLs are supported")?;
    let (host, path) = rest.split_once('/').map_or((rest, "/".to_owned()), |(h, p)| (h, format!("/{p}")));
    let io = async {
        let mut s = tokio::net::TcpStream::connect(host).await.map_err(|e| e.to_string())?;
        let req = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nAccept: text/plain\r\n\r\n");
        s.write_all(req.as_bytes()).await.map_err(|e| e.to_string())?;
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).await.map_err(|e| e.to_string())?;
        Ok::<_, String>(buf)
    };
    let buf = tokio::time::timeout(timeout, io).await.map_err(|_| "timed out".to_string())??;
    let text = String::from_utf8_lossy(&buf);
    let (head, body) = text.split_once("\r\n\r\n").ok_or("malformed HTTP answer")?;
    if !head.starts_with("HTTP/1.1 200") && !head.starts_with("HTTP/1.0 200") {
        return Err(head.lines().next().unwrap_or("").to_owned());
    }
    Ok(body.to_owned())
}

async fn stats(ctx: &mut Ctx, sample: usize, metrics: Option<&str>) -> Result<Value, Fail> {
    let info: String = ctx.query(redis::cmd("INFO").arg("memory")).await?;
    let dbsize: u64 = ctx.query(&mut redis::cmd("DBSIZE")).await?;
    let generation = ctx.generation().await?;
    let prefix = rotation::entry_prefix(&ctx.ns, generation);
    let mut per: BTreeMap<String, u64> = BTreeMap::new();
    let mut seen = 0usize;
    ctx.scan(&format!("{}*", glob_escape(&prefix)), |page| {
        for k in page.into_iter().filter(|k| !k.contains("::")) {
            if seen == sample {
                return false;
            }
            seen += 1;
            let mut parts = k[prefix.len()..].splitn(3, ':');
            let label = format!("{}:{}", parts.next().unwrap_or(""), parts.next().unwrap_or(""));
            *per.entry(label).or_insert(0) += 1;
        }
        true
    })
    .await?;
    let memory = json!({
        "used_memory": info_field(&info, "used_memory").and_then(|v| v.parse::<u64>().ok()),
        "used_memory_human": info_field(&info, "used_memory_human"),
        "used_memory_peak_human": info_field(&info, "used_memory_peak_human"),
        "maxmemory": info_field(&info, "maxmemory").and_then(|v| v.parse::<u64>().ok()),
        "maxmemory_policy": info_field(&info, "maxmemory_policy"),
    });
    let mut out = json!({"namespace": ctx.ns, "generation": generation, "dbsize": dbsize, "memory": memory,
        "sampled_keys": seen, "sample_complete": seen < sample, "keys_per_method": per});
    if let Some(url) = metrics {
        out["hits"] = match http_get(url, ctx.timeout).await {
            Ok(body) => json!(hit_figures(&body)),
            Err(e) => json!({"error": format!("{url}: {e}")}),
        };
    }
    Ok(out)
}

/// Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (i64::from(m) + 9) % 12;
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468
}

/// `(start_ms, end_ms)` of a quota period id (`yyyymmdd` or `yyyymm`).
fn period_ms(kind: &str, id: &str) -> Option<(u64, u64)> {
    let n: u32 = id.parse().ok()?;
    let day_ms = 86_400_000i64;
    let (start, end) = match kind {
        "day" => {
            let d = days_from_civil(i64::from(n / 10_000), n / 100 % 100, n % 100);
            (d, d + 1)
        }
        "month" => {
            let (y, m) = (i64::from(n / 100), n % 100);
            let (ny, nm) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
            (days_from_civil(y, m, 1), days_from_civil(ny, nm, 1))
        }
        _ => return None,
    };
    Some(((start * day_ms).max(0) as u64, (end * day_ms).max(0) as u64))
}

async fn budgets(ctx: &mut Ctx) -> Result<Value, Fail> {
    let base = format!("{}::budget:", ctx.ns);
    let mut found = Vec::new();
    ctx.scan(&format!("{}*", glob_escape(&base)), |page| {
        found.extend(page);
        true
    })
    .await?;
    found.sort();
    let mut out: BTreeMap<String, Map<String, Value>> = BTreeMap::new();
    let now = now_ms();
    for key in found {
        let rest = &key[base.len()..];
        let Some((name, what)) = rest.split_once(':') else { continue };
        // The name is a hash tag (`{coingecko}`), so that one budget's keys share a cluster slot.
        let name = name.strip_prefix('{').and_then(|n| n.strip_suffix('}')).unwrap_or(name);
        let entry = out.entry(name.to_owned()).or_default();
        let parts: Vec<&str> = what.split(':').collect();
        match parts.as_slice() {
            ["hold"] => {
                let pttl: i64 = ctx.query(redis::cmd("PTTL").arg(&key)).await?;
                entry.insert("hold_left_ms".into(), json!(pttl.max(0)));
            }
            [kind @ ("day" | "month"), id] => {
                let used: Option<u64> = ctx.query(redis::cmd("GET").arg(&key)).await?;
                let used = used.unwrap_or(0);
                // Projection: use so far over the elapsed part of the period (none in its first
                // 1/96, as the runtime does, or for a period not begun on this clock).
                let projected = period_ms(kind, id).and_then(|(start, end)| {
                    let (elapsed, len) = (now.checked_sub(start)? as f64, (end - start) as f64);
                    (elapsed >= len / 96.0).then(|| (used as f64 * len / elapsed.min(len)).round() as u64)
                });
                entry.insert((*kind).to_owned(), json!({"period": id, "used": used, "projected": projected}));
            }
            ["rate", _] => {
                let n = entry.get("rate_limits").and_then(Value::as_u64).unwrap_or(0);
                entry.insert("rate_limits".into(), json!(n + 1));
            }
            _ => {}
        }
    }
    let list: Vec<Value> = out
        .into_iter()
        .map(|(name, mut m)| {
            m.insert("name".into(), json!(name));
            m.entry("hold_left_ms").or_insert(json!(0));
            Value::Object(m)
        })
        .collect();
    Ok(json!({"namespace": ctx.ns, "budgets": list}))
}

async fn rotate(ctx: &mut Ctx, dry_run: bool, sweep_only: bool, rate: u32, grace: Duration) -> Result<Value, Fail> {
    let before = ctx.generation().await?;
    let generation = if sweep_only {
        before
    } else if dry_run {
        // As if bumped: every entry of the current generation would be old.
        before + 1
    } else {
        let g: u64 = ctx.query(redis::cmd("INCR").arg(rotation::generation_key(&ctx.ns))).await?;
        tokio::time::sleep(grace).await;
        g
    };
    let opts = SweepOptions { max_keys_per_sec: rate.max(1), dry_run, ..SweepOptions::default() };
    let report = rotation::sweep(&mut ctx.conn, &ctx.ns, generation, opts).await.map_err(|e| classify(&e, &ctx.url))?;
    Ok(json!({"namespace": ctx.ns, "previous_generation": before, "generation": generation, "dry_run": dry_run,
        "scanned": report.scanned, "old_entries": report.entries, "orphaned_locks": report.locks,
        "removed": if dry_run { 0 } else { report.entries + report.locks }}))
}

/// The human form of a command's result.
fn text(command: &Command, v: &Value) -> String {
    let s = |k: &str| v[k].to_string();
    match command {
        Command::Keys { .. } => {
            let mut out: Vec<String> =
                v["keys"].as_array().into_iter().flatten().filter_map(|k| k.as_str().map(str::to_owned)).collect();
            if v["truncated"] == json!(true) {
                out.push(format!("… (stopped at {} keys; --limit raises it)", s("count")));
            }
            out.join("\n")
        }
        Command::Purge { .. } if v["dry_run"] == json!(true) => format!(
            "dry run: {} entries match {}{}; re-run with --yes to remove them",
            s("matched"),
            v["prefix"].as_str().unwrap_or(""),
            if v["matched"] == json!(0) { "" } else { "*" }
        ),
        Command::Purge { .. } => format!("removed {} of {} matching entries", s("removed"), s("matched")),
        Command::Rotate { dry_run: true, .. } => format!(
            "dry run (generation {}): would remove {} entries and {} orphaned locks",
            s("previous_generation"),
            s("old_entries"),
            s("orphaned_locks")
        ),
        Command::Rotate { .. } => format!(
            "generation {} -> {}: removed {} old entries and {} orphaned locks",
            s("previous_generation"),
            s("generation"),
            s("old_entries"),
            s("orphaned_locks")
        ),
        _ => flat(v, ""),
    }
}

/// `a.b: value` lines.
fn flat(v: &Value, path: &str) -> String {
    match v {
        Value::Object(m) => m
            .iter()
            .map(|(k, v)| flat(v, &if path.is_empty() { k.clone() } else { format!("{path}.{k}") }))
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join("\n"),
        Value::Array(a) if a.iter().all(|x| x.is_object()) && !a.is_empty() => {
            a.iter().enumerate().map(|(i, x)| flat(x, &format!("{path}[{i}]"))).collect::<Vec<_>>().join("\n")
        }
        Value::String(s) => format!("{path}: {s}"),
        other => format!("{path}: {other}"),
    }
}

async fn run(cli: &Cli) -> Result<Value, Fail> {
    let mut ctx = Ctx::connect(cli).await?;
    match &cli.command {
        Command::Keys { pattern, limit } => keys(&mut ctx, pattern, *limit).await,
        Command::Get { key, data, max_decompressed } => get(&mut ctx, key, *data, *max_decompressed).await,
        Command::Purge { prefix, yes } => purge(&mut ctx, prefix, *yes).await,
        Command::Stats { sample, metrics } => stats(&mut ctx, *sample, metrics.as_deref()).await,
        Command::Budgets => budgets(&mut ctx).await,
        Command::Rotate { dry_run, sweep_only, rate, grace_ms } => {
            rotate(&mut ctx, *dry_run, *sweep_only, *rate, Duration::from_millis(*grace_ms)).await
        }
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli).await {
        Ok(v) => {
            if cli.json {
                println!("{v}");
            } else {
                println!("{}", text(&cli.command, &v));
            }
            ExitCode::SUCCESS
        }
        Err(f) => {
            if cli.json {
                println!("{}", json!({"error": f.kind(), "message": f.message(), "exit_code": f.code()}));
            }
            eprintln!("syntra-cache: {}", f.message());
            ExitCode::from(f.code())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_and_redaction() {
        assert_eq!(period_ms("day", "20250115"), Some((1_736_899_200_000, 1_736_985_600_000)));
        assert_eq!(period_ms("month", "202512"), Some((1_764_547_200_000, 1_767_225_600_000)));
        assert_eq!(period_ms("week", "1"), None);
        assert_eq!(redact("bad redis://u:hunter2@h", "redis://u:hunter2@h"), "bad <redis url>");
        assert!(!redact("WRONGPASS hunter2", "redis://:hunter2@h:1").contains("hunter2"));
        let m = hit_figures(
            "# HELP x\nsyntra_cache_hits_total{method=\"a\"} 3\nsyntra_cache_hits_total{method=\"b\"} 4\nother 1\n",
        );
        assert_eq!(m.get("syntra_cache_hits_total"), Some(&7.0));
        assert_eq!(m.len(), 1);
    }
}
