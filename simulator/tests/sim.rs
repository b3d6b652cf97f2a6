//! Behaviour of the simulator over real HTTP (a tiny raw HTTP/1.1 client, no extra deps).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use serde_json::Value;
use syntra_sim::{Fault, Limits, SimConfig, Simulator};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

struct Resp {
    status: u16,
    headers: HashMap<String, String>,
    body: Value,
    raw: String,
}

async fn get_h(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> Resp {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    let mut req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.unwrap();
    let text = String::from_utf8(buf).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").expect("http response");
    let mut lines = head.lines();
    let status = lines.next().unwrap().split(' ').nth(1).unwrap().parse().unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Resp { status, headers, body: serde_json::from_str(body).unwrap_or(Value::Null), raw: body.to_string() }
}

async fn get(addr: SocketAddr, path: &str) -> Resp {
    get_h(addr, path, &[]).await
}

fn frozen(seed: u64, limits: Limits) -> SimConfig {
    SimConfig { seed, limits, clock_speed: 0.0, latency: Duration::ZERO, ..SimConfig::default() }
}

const CMC_KEY: (&str, &str) = ("X-CMC_PRO_API_KEY", "test-key");

/// One request per endpoint of every provider, with the headers it needs.
const PATHS: &[&str] = &[
    "/coingecko/api/v3/simple/price?ids=bitcoin,ethereum&vs_currencies=usd,eur&include_24hr_change=true",
    "/coingecko/api/v3/coins/bitcoin?localization=false&market_data=false",
    "/coingecko/api/v3/coins/solana?localization=false&tickers=false&community_data=false&developer_data=false",
    "/coingecko/api/v3/coins/ethereum/market_chart?vs_currency=usd&days=7",
    "/coingecko/api/v3/search/trending",
    "/coingecko/api/v3/global",
    "/coingecko/api/v3/search?query=bit",
    "/binance/api/v3/klines?symbol=BTCUSDT&interval=1h&limit=100",
    "/binance/api/v3/ticker/price?symbol=ETHUSDT",
    "/binance/fapi/v1/fundingRate?symbol=BTCUSDT&limit=3",
    "/binance/fapi/v1/premiumIndex?symbol=BTCUSDT",
    "/binance/fapi/v1/openInterest?symbol=BTCUSDT",
    "/dexscreener/latest/dex/search?q=bitcoin",
    "/dexscreener/token-pairs/v1/solana/JUPyiwrYJFskUPiHa7hkeR8VUtAeFoSYbKedZNsDvCN",
    "/dexscreener/tokens/v1/ethereum/0x2260fac5e5542a773aa44fbcfedf7c193bc2c599,0x6982508145454Ce325dDbF47a25d4ec3d2311933",
    "/dexscreener/token-profiles/latest/v1",
    "/coinmarketcap/v1/cryptocurrency/quotes/latest?symbol=BTC,ETH",
    "/cryptopanic/api/v1/posts/?auth_token=t0k&currencies=BTC&public=true",
    "/feargreed/fng/?limit=3",
    "/coingecko/api/v3/coins/markets?vs_currency=eur&price_change_percentage=1h,7d",
];

async fn snapshot(sim: &Simulator) -> Vec<String> {
    let mut out = Vec::new();
    for p in PATHS {
        let r = get_h(sim.addr(), p, &[CMC_KEY]).await;
        assert_eq!(r.status, 200, "{p}: {}", r.raw);
        out.push(r.raw);
    }
    out
}

#[tokio::test]
async fn same_seed_same_bytes_other_seed_other_prices() {
    let a = Simulator::start(frozen(7, Limits::unlimited())).await.unwrap();
    let b = Simulator::start(frozen(7, Limits::unlimited())).await.unwrap();
    let c = Simulator::start(frozen(8, Limits::unlimited())).await.unwrap();
    let (sa, sb, sc) = (snapshot(&a).await, snapshot(&b).await, snapshot(&c).await);
    assert_eq!(sa, sb);
    // Repeated calls on one simulator are identical while its clock stands still.
    assert_eq!(sa, snapshot(&a).await);
    assert_ne!(sa[0], sc[0], "another seed moves prices differently");

    // Moving the clock moves prices, deterministically.
    a.advance(Duration::from_secs(3_600));
    b.advance(Duration::from_secs(3_600));
    let (pa, pb) = (get(a.addr(), PATHS[0]).await, get(b.addr(), PATHS[0]).await);
    assert_eq!(pa.raw, pb.raw);
    assert_ne!(pa.raw, sa[0]);
}

#[tokio::test]
async fn responses_have_the_real_shapes() {
    let sim = Simulator::start(frozen(1, Limits::unlimited())).await.unwrap();
    let a = sim.addr();

    let p = get(a, PATHS[0]).await.body;
    assert!(p["bitcoin"]["usd"].as_f64().unwrap() > 1_000.0);
    assert!(p["ethereum"]["eur"].is_number());
    assert!(p["bitcoin"]["usd_24h_change"].is_number());

    let coin = get(a, PATHS[1]).await.body;
    assert_eq!(coin["id"], "bitcoin");
    assert_eq!(coin["symbol"], "btc");
    assert!(coin["description"]["en"].as_str().unwrap().contains("Bitcoin"));
    assert!(coin.get("market_data").is_none());
    assert!(coin.get("localization").is_none());
    let md = get(a, PATHS[2]).await.body;
    assert!(md["market_data"]["current_price"]["usd"].is_number());
    assert!(md["market_data"]["market_cap"]["usd"].is_number());
    assert!(md["market_data"]["price_change_percentage_24h"].is_number());

    let chart = get(a, PATHS[3]).await.body;
    let prices = chart["prices"].as_array().unwrap();
    assert!(prices.len() >= 7 * 24, "hourly for 7 days: {}", prices.len());
    assert!(prices[0][0].is_i64() && prices[0][1].is_f64());
    assert_eq!(chart["market_caps"].as_array().unwrap().len(), prices.len());

    assert_eq!(get(a, PATHS[4]).await.body["coins"].as_array().unwrap().len(), 7);
    assert!(get(a, PATHS[5]).await.body["data"]["total_market_cap"]["usd"].is_number());
    assert_eq!(get(a, PATHS[6]).await.body["coins"][0]["id"], "bitcoin");

    let k = get(a, PATHS[7]).await.body;
    let k = k.as_array().unwrap();
    assert_eq!(k.len(), 100);
    assert_eq!(k[0].as_array().unwrap().len(), 12);
    assert!(k[0][0].is_i64() && k[0][1].is_string() && k[0][6].is_i64());
    assert_eq!(k[1][0].as_i64().unwrap() - k[0][0].as_i64().unwrap(), 3_600_000);
    let t = get(a, PATHS[8]).await.body;
    assert_eq!(t["symbol"], "ETHUSDT");
    assert!(t["price"].as_str().unwrap().parse::<f64>().unwrap() > 100.0);
    let f = get(a, PATHS[9]).await.body;
    assert_eq!(f.as_array().unwrap().len(), 3);
    assert!(f[0]["fundingRate"].is_string() && f[0]["fundingTime"].is_i64());
    assert!(get(a, PATHS[10]).await.body["lastFundingRate"].is_string());
    assert!(get(a, PATHS[11]).await.body["openInterest"].is_string());

    let s = get(a, PATHS[12]).await.body;
    assert_eq!(s["schemaVersion"], "1.0.0");
    let pairs = s["pairs"].as_array().unwrap();
    assert!(!pairs.is_empty());
    assert!(pairs.iter().any(|p| p["baseToken"]["symbol"] == "WBTC"));
    assert!(pairs[0]["priceUsd"].is_string() && pairs[0]["liquidity"]["usd"].is_number());
    let tp = get(a, PATHS[13]).await.body;
    assert!(tp.as_array().unwrap().iter().all(|p| p["baseToken"]["symbol"] == "JUP"));
    let tk = get(a, PATHS[14]).await.body;
    assert!(tk.as_array().unwrap().len() >= 3);

    let q = get_h(a, PATHS[16], &[CMC_KEY]).await.body;
    assert_eq!(q["status"]["error_code"], 0);
    assert!(q["data"]["BTC"]["quote"]["USD"]["price"].is_number());

    let n = get(a, PATHS[17]).await.body;
    let results = n["results"].as_array().unwrap();
    assert_eq!(results.len(), 20);
    assert!(results.iter().all(|r| r["currencies"].as_array().unwrap().iter().any(|c| c["code"] == "BTC")));

    let fng = get(a, PATHS[18]).await.body;
    assert_eq!(fng["name"], "Fear and Greed Index");
    assert_eq!(fng["data"].as_array().unwrap().len(), 3);
    assert!(fng["data"][0]["time_until_update"].is_string());
    assert!(fng["data"][1].get("time_until_update").is_none());
}

#[tokio::test]
async fn errors_use_the_providers_shapes() {
    let sim = Simulator::start(frozen(1, Limits::unlimited())).await.unwrap();
    let a = sim.addr();
    let r = get(a, "/coingecko/api/v3/coins/not-a-coin").await;
    assert_eq!((r.status, r.body["error"].as_str()), (404, Some("coin not found")));
    let r = get(a, "/coingecko/api/v3/coins/not-a-coin/market_chart?vs_currency=usd&days=1").await;
    assert_eq!(r.status, 404);
    let r = get(a, "/binance/api/v3/klines?symbol=NOPEUSDT&interval=1h").await;
    assert_eq!((r.status, r.body["code"].as_i64()), (400, Some(-1121)));
    let r = get(a, "/binance/api/v3/klines?symbol=BTCUSDT&interval=7m").await;
    assert_eq!(r.body["code"], -1120);

    // CoinMarketCap and CryptoPanic need credentials.
    let r = get(a, "/coinmarketcap/v1/cryptocurrency/quotes/latest?symbol=BTC").await;
    assert_eq!((r.status, r.body["status"]["error_code"].as_i64()), (401, Some(1002)));
    let r = get(a, "/cryptopanic/api/v1/posts/?currencies=BTC").await;
    assert_eq!(r.status, 401);
    assert_eq!(sim.authenticated("coinmarketcap"), 0);
    get_h(a, "/coinmarketcap/v1/cryptocurrency/quotes/latest?symbol=BTC", &[CMC_KEY]).await;
    get_h(a, "/coingecko/api/v3/ping", &[("x-cg-demo-api-key", "k")]).await;
    assert_eq!(sim.authenticated("coinmarketcap"), 1);
    assert_eq!(sim.authenticated("coingecko"), 1);
}

#[tokio::test]
async fn coingecko_minute_limit_answers_429_with_retry_after() {
    let limits = Limits { coingecko_per_minute: Some(3), ..Limits::unlimited() };
    let sim = Simulator::start(frozen(1, limits)).await.unwrap();
    let a = sim.addr();
    let path = "/coingecko/api/v3/simple/price?ids=bitcoin&vs_currencies=usd";
    for _ in 0..3 {
        assert_eq!(get(a, path).await.status, 200);
    }
    let r = get(a, path).await;
    assert_eq!(r.status, 429);
    assert_eq!(r.body["status"]["error_code"], 429);
    let retry: u64 = r.headers["retry-after"].parse().unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    // Other providers are not affected.
    assert_eq!(get(a, "/feargreed/fng/").await.status, 200);
    // The next window admits calls again.
    sim.advance(Duration::from_secs(retry));
    assert_eq!(get(a, path).await.status, 200);
    assert_eq!(sim.count("coingecko", "/simple/price"), 5);
    assert_eq!(sim.rejected(), 1);
    assert_eq!(sim.rejected_for("coingecko"), 1);
}

#[tokio::test]
async fn coingecko_monthly_and_cmc_daily_limits() {
    let limits = Limits { coingecko_per_month: Some(2), coinmarketcap_per_day: Some(1), ..Limits::unlimited() };
    let sim = Simulator::start(frozen(1, limits)).await.unwrap();
    let a = sim.addr();
    assert_eq!(get(a, "/coingecko/api/v3/global").await.status, 200);
    assert_eq!(get(a, "/coingecko/api/v3/global").await.status, 200);
    let r = get(a, "/coingecko/api/v3/global").await;
    assert_eq!(r.status, 429);
    let retry: u64 = r.headers["retry-after"].parse().unwrap();
    assert!(retry > 60, "a monthly window: {retry}");

    let cmc = "/coinmarketcap/v1/cryptocurrency/quotes/latest?symbol=BTC";
    assert_eq!(get_h(a, cmc, &[CMC_KEY]).await.status, 200);
    let r = get_h(a, cmc, &[CMC_KEY]).await;
    assert_eq!((r.status, r.body["status"]["error_code"].as_i64()), (429, Some(1009)));
    assert!(r.headers["retry-after"].parse::<u64>().unwrap() <= 86_400);
    sim.advance(Duration::from_secs(86_400));
    assert_eq!(get_h(a, cmc, &[CMC_KEY]).await.status, 200);
}

#[tokio::test]
async fn binance_weight_limit_and_header() {
    let limits = Limits { binance_weight_per_minute: Some(12), ..Limits::unlimited() };
    let sim = Simulator::start(frozen(1, limits)).await.unwrap();
    let a = sim.addr();
    let k500 = "/binance/api/v3/klines?symbol=BTCUSDT&interval=1m&limit=500"; // weight 5
    let r = get(a, k500).await;
    assert_eq!((r.status, r.headers["x-mbx-used-weight-1m"].as_str()), (200, "5"));
    let r = get(a, k500).await;
    assert_eq!(r.headers["x-mbx-used-weight-1m"], "10");
    let r = get(a, "/binance/api/v3/ticker/price?symbol=BTCUSDT").await; // weight 2
    assert_eq!((r.status, r.headers["x-mbx-used-weight-1m"].as_str()), (200, "12"));
    let r = get(a, "/binance/api/v3/klines?symbol=BTCUSDT&interval=1m&limit=10").await; // weight 1
    assert_eq!(r.status, 429);
    assert_eq!(r.body["code"], -1003);
    assert!(r.headers.contains_key("retry-after"));
    assert_eq!(r.headers["x-mbx-used-weight-1m"], "12");
    assert_eq!(syntra_sim::klines_weight(99), 1);
    assert_eq!(syntra_sim::klines_weight(100), 2);
    assert_eq!(syntra_sim::klines_weight(1000), 5);
    assert_eq!(syntra_sim::klines_weight(1001), 10);
}

#[tokio::test]
async fn counts_are_exact() {
    let sim = Simulator::start(frozen(3, Limits::unlimited())).await.unwrap();
    let a = sim.addr();
    for _ in 0..4 {
        get(a, "/coingecko/api/v3/simple/price?ids=bitcoin&vs_currencies=usd").await;
    }
    get(a, "/coingecko/api/v3/coins/bitcoin").await;
    get(a, "/coingecko/api/v3/coins/ethereum?market_data=true").await;
    get(a, "/coingecko/api/v3/coins/nope").await;
    for i in 1..=3 {
        get(a, &format!("/binance/api/v3/klines?symbol=ETHUSDT&interval=1h&limit={i}")).await;
    }
    get(a, "/dexscreener/latest/dex/search?q=pepe").await;
    get(a, "/feargreed/fng/?limit=1").await;
    get(a, "/feargreed/fng?limit=1").await;

    let calls = sim.calls();
    assert_eq!(calls.get("coingecko", "/simple/price"), 4);
    assert_eq!(calls.get("coingecko", "/coins/{id}"), 3);
    assert_eq!(calls.endpoint("coingecko", "/coins/{id}").failed, 1);
    assert_eq!(calls.get("binance", "/api/v3/klines"), 3);
    assert_eq!(calls.get("dexscreener", "/latest/dex/search"), 1);
    assert_eq!(calls.get("feargreed", "/fng/"), 2);
    assert_eq!(calls.provider("coingecko"), 7);
    assert_eq!(calls.total(), 13);
    assert_eq!(calls.rejected(), 0);
    assert_eq!(sim.count("binance", "/api/v3/ticker/price"), 0);
    assert!(calls.to_string().contains("/simple/price"));

    sim.reset_counts();
    assert_eq!(sim.total(), 0);
    get(a, "/coingecko/api/v3/global").await;
    assert_eq!(sim.count("coingecko", "/global"), 1);
}

#[tokio::test]
async fn counts_are_exact_under_concurrency() {
    let sim = Simulator::start(frozen(3, Limits::unlimited())).await.unwrap();
    let a = sim.addr();
    let tasks: Vec<_> = (0..40)
        .map(|_| tokio::spawn(async move { get(a, "/binance/api/v3/ticker/price?symbol=BTCUSDT").await.status }))
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap(), 200);
    }
    assert_eq!(sim.count("binance", "/api/v3/ticker/price"), 40);
}

#[tokio::test]
async fn fault_injection() {
    let sim = Simulator::start(frozen(1, Limits::unlimited())).await.unwrap();
    let a = sim.addr();
    let path = "/binance/api/v3/ticker/price?symbol=BTCUSDT";
    sim.set_fail("binance", Some(503));
    let r = get(a, path).await;
    assert_eq!(r.status, 503);
    assert_eq!(r.headers["retry-after"], "1");
    // Only that provider fails.
    assert_eq!(get(a, "/feargreed/fng/").await.status, 200);
    sim.set_fail("binance", Some(429));
    let r = get(a, path).await;
    assert_eq!(r.status, 429);
    sim.set_fault("coingecko", Some(Fault { status: 429, retry_after: Some(17) }));
    let r = get(a, "/coingecko/api/v3/global").await;
    assert_eq!((r.status, r.headers["retry-after"].as_str()), (429, "17"));
    sim.set_fail("binance", None);
    sim.set_fail("coingecko", None);
    assert_eq!(get(a, path).await.status, 200);
    let c = sim.calls().endpoint("binance", "/api/v3/ticker/price");
    assert_eq!((c.total, c.rejected, c.failed), (3, 1, 1));
    assert_eq!(sim.rejected(), 2);
}

#[tokio::test]
async fn latency_and_shutdown() {
    let sim = Simulator::start(SimConfig { latency: Duration::from_millis(60), ..SimConfig::seeded(5) }).await.unwrap();
    let a = sim.addr();
    let t0 = std::time::Instant::now();
    assert_eq!(get(a, "/feargreed/fng/").await.status, 200);
    assert!(t0.elapsed() >= Duration::from_millis(60));
    sim.set_latency(Duration::ZERO);
    assert!(sim.base_url("coingecko").ends_with("/coingecko/api/v3"));
    sim.shutdown().await;
    // The listener is gone.
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(TcpStream::connect(a).await.is_err());
}

/// `n` CoinMarketCap ids (or symbols), cycling through the catalogue.
fn cmc_list(n: usize, f: impl Fn(&syntra_sim::market::Coin) -> String) -> String {
    let coins = syntra_sim::market::COINS;
    (0..n).map(|i| f(&coins[i % coins.len()])).collect::<Vec<_>>().join(",")
}

#[tokio::test]
async fn coingecko_batch_is_one_call_whatever_the_ids() {
    let limits = Limits { coingecko_per_minute: Some(2), ..Limits::unlimited() };
    let sim = Simulator::start(frozen(1, limits)).await.unwrap();
    let a = sim.addr();
    let ids: Vec<String> = (0..50).map(|i| format!("coin-{i}")).collect();
    let path = format!("/coingecko/api/v3/simple/price?ids=bitcoin,ethereum,{}&vs_currencies=usd", ids[2..].join(","));
    let r = get(a, &path).await;
    assert_eq!(r.status, 200, "{}", r.raw);
    assert!(r.body["bitcoin"]["usd"].is_number());
    let c = sim.calls().endpoint("coingecko", "/simple/price");
    assert_eq!((c.total, c.items, c.cost, c.rejected), (1, 50, 1, 0), "50 ids are one call");

    // The second 50-id request fits a minute limit of 2 calls; the third does not.
    assert_eq!(get(a, &path).await.status, 200);
    assert_eq!(get(a, &path).await.status, 429);
    let c = sim.calls().endpoint("coingecko", "/simple/price");
    assert_eq!((c.total, c.rejected, c.items, c.cost), (3, 1, 150, 2), "a 429 asks for items but costs nothing");

    sim.advance(Duration::from_secs(60));
    get(a, "/coingecko/api/v3/coins/bitcoin").await;
    get(a, "/coingecko/api/v3/global").await;
    let calls = sim.calls();
    let c = calls.endpoint("coingecko", "/coins/{id}");
    assert_eq!((c.total, c.items, c.cost), (1, 1, 1));
    let c = calls.endpoint("coingecko", "/global");
    assert_eq!((c.total, c.items, c.cost), (1, 0, 1));
    assert_eq!(calls.cost("coingecko"), 4);
    let table = calls.to_string();
    let header = table.lines().next().unwrap();
    assert!(header.contains("items") && header.contains("cost"), "{table}");
    let row = table.lines().find(|l| l.contains("/simple/price")).unwrap();
    assert_eq!(row.split_whitespace().collect::<Vec<_>>(), ["coingecko", "/simple/price", "3", "1", "0", "150", "2"]);
}

#[tokio::test]
async fn cmc_quotes_charge_credits_against_the_day_quota() {
    let limits = Limits { coinmarketcap_per_day: Some(5), ..Limits::unlimited() };
    let sim = Simulator::start(frozen(1, limits)).await.unwrap();
    let a = sim.addr();
    let quotes = "/coinmarketcap/v1/cryptocurrency/quotes/latest";
    let ids250 = format!("{quotes}?id={}", cmc_list(250, |c| c.cmc_id.to_string()));

    // 250 ids: ceil(250 / 100) = 3 credits.
    let r = get_h(a, &ids250, &[CMC_KEY]).await;
    assert_eq!(r.status, 200, "{}", r.raw);
    assert_eq!(r.body["status"]["credit_count"], 3);
    assert!(r.body["data"]["1"]["quote"]["USD"]["price"].is_number());
    // 3 + 3 > 5: the day quota refuses the second one.
    let r = get_h(a, &ids250, &[CMC_KEY]).await;
    assert_eq!((r.status, r.body["status"]["error_code"].as_i64()), (429, Some(1009)), "{}", r.raw);
    assert_eq!(r.body["status"]["credit_count"], 0);
    let c = sim.calls().endpoint("coinmarketcap", "/v1/cryptocurrency/quotes/latest");
    assert_eq!((c.total, c.rejected, c.items, c.cost), (2, 1, 500, 3));

    // Up to 100 items is 1 credit: 3 + 1 = 4.
    let r = get_h(a, &format!("{quotes}?symbol=BTC,ETH"), &[CMC_KEY]).await;
    assert_eq!((r.status, r.body["status"]["credit_count"].as_u64()), (200, Some(1)));
    // Each convert currency counts: 2 symbols in USD and EUR are 2 credits, 4 + 2 > 5.
    let r = get_h(a, &format!("{quotes}?symbol=BTC,ETH&convert=USD,EUR"), &[CMC_KEY]).await;
    assert_eq!(r.status, 429, "{}", r.raw);
    // An error answer charges no credit: 4 + 0, then 4 + 1 = 5 still fits.
    let r = get_h(a, &format!("{quotes}?symbol=NOPE"), &[CMC_KEY]).await;
    assert_eq!((r.status, r.body["status"]["credit_count"].as_u64()), (400, Some(0)));
    assert_eq!(get_h(a, &format!("{quotes}?slug=bitcoin"), &[CMC_KEY]).await.status, 200);
    assert_eq!(get_h(a, &format!("{quotes}?slug=bitcoin"), &[CMC_KEY]).await.status, 429);

    // Next day: 150 symbols in 2 currencies = ceil(150 / 100) * 2 = 4 credits, on v2 too.
    sim.advance(Duration::from_secs(86_400));
    let v2 = format!(
        "/coinmarketcap/v2/cryptocurrency/quotes/latest?symbol={}&convert=USD,EUR",
        cmc_list(150, |c| c.symbol.to_string())
    );
    let r = get_h(a, &v2, &[CMC_KEY]).await;
    assert_eq!((r.status, r.body["status"]["credit_count"].as_u64()), (200, Some(4)), "{}", r.raw);
    assert!(r.body["data"]["BTC"][0]["quote"]["EUR"]["price"].is_number());
    let calls = sim.calls();
    let c = calls.endpoint("coinmarketcap", "/v2/cryptocurrency/quotes/latest");
    assert_eq!((c.total, c.items, c.cost), (1, 150, 4));
    let c = calls.endpoint("coinmarketcap", "/v1/cryptocurrency/quotes/latest");
    assert_eq!((c.total, c.rejected, c.failed, c.items, c.cost), (7, 3, 1, 507, 5));
    assert_eq!(calls.cost("coinmarketcap"), 9);
}

#[tokio::test]
async fn cmc_month_quota_counts_credits_and_minute_limit_counts_requests() {
    let quotes = "/coinmarketcap/v1/cryptocurrency/quotes/latest";
    let ids250 = format!("{quotes}?id={}", cmc_list(250, |c| c.cmc_id.to_string()));

    let month = Limits { coinmarketcap_per_month: Some(4), ..Limits::unlimited() };
    let sim = Simulator::start(frozen(1, month)).await.unwrap();
    assert_eq!(get_h(sim.addr(), &ids250, &[CMC_KEY]).await.status, 200);
    let r = get_h(sim.addr(), &format!("{quotes}?symbol=BTC&convert=USD,EUR"), &[CMC_KEY]).await;
    assert_eq!((r.status, r.body["status"]["error_code"].as_i64()), (429, Some(1010)), "3 + 2 credits > 4");
    assert_eq!(get_h(sim.addr(), &format!("{quotes}?symbol=BTC"), &[CMC_KEY]).await.status, 200, "3 + 1 fits");

    // The minute limit counts requests: two 3-credit requests fit a limit of 2, a third does not.
    let minute = Limits { coinmarketcap_per_minute: Some(2), ..Limits::unlimited() };
    let sim = Simulator::start(frozen(1, minute)).await.unwrap();
    assert_eq!(get_h(sim.addr(), &ids250, &[CMC_KEY]).await.status, 200);
    assert_eq!(get_h(sim.addr(), &ids250, &[CMC_KEY]).await.status, 200);
    let r = get_h(sim.addr(), &format!("{quotes}?symbol=BTC"), &[CMC_KEY]).await;
    assert_eq!((r.status, r.body["status"]["error_code"].as_i64()), (429, Some(1008)));
}

#[tokio::test]
async fn binance_ticker_price_weighs_symbols_4_and_symbol_2() {
    let limits = Limits { binance_weight_per_minute: Some(10), ..Limits::unlimited() };
    let sim = Simulator::start(frozen(1, limits)).await.unwrap();
    let a = sim.addr();
    let symbols = "/binance/api/v3/ticker/price?symbols=%5B%22BTCUSDT%22,%22ETHUSDT%22%5D";
    let r = get(a, symbols).await;
    assert_eq!((r.status, r.headers["x-mbx-used-weight-1m"].as_str()), (200, "4"), "{}", r.raw);
    assert_eq!(r.body.as_array().unwrap().len(), 2);
    let r = get(a, "/binance/api/v3/ticker/price?symbol=BTCUSDT").await;
    assert_eq!((r.status, r.headers["x-mbx-used-weight-1m"].as_str()), (200, "6"));
    let r = get(a, "/binance/api/v3/ticker/price").await;
    assert_eq!((r.status, r.headers["x-mbx-used-weight-1m"].as_str()), (200, "10"), "every symbol weighs 4");
    assert!(r.body.as_array().unwrap().len() > 2);
    let r = get(a, "/binance/api/v3/ticker/price?symbol=ETHUSDT").await;
    assert_eq!((r.status, r.body["code"].as_i64()), (429, Some(-1003)));
    let c = sim.calls().endpoint("binance", "/api/v3/ticker/price");
    assert_eq!((c.total, c.rejected, c.items, c.cost), (4, 1, 4, 10));

    // With weight 4 the next window admits two `symbols` calls and refuses a `symbol` one
    // (8 + 2 = 10 fits, a third `symbols` would not).
    sim.advance(Duration::from_secs(60));
    assert_eq!(get(a, symbols).await.status, 200);
    assert_eq!(get(a, symbols).await.status, 200);
    assert_eq!(get(a, symbols).await.status, 429, "4 + 4 + 4 > 10");
    assert_eq!(get(a, "/binance/api/v3/ticker/price?symbol=BTCUSDT").await.status, 200, "4 + 4 + 2 = 10");

    // The raw-request limit counts 1 per request, whatever the weight.
    let limits = Limits { binance_requests_per_minute: Some(3), ..Limits::unlimited() };
    let sim = Simulator::start(frozen(1, limits)).await.unwrap();
    for _ in 0..3 {
        assert_eq!(get(sim.addr(), symbols).await.status, 200);
    }
    assert_eq!(get(sim.addr(), symbols).await.status, 429);
    assert_eq!(sim.calls().endpoint("binance", "/api/v3/ticker/price").cost, 12);
}

#[tokio::test]
async fn dexscreener_tokens_refuses_more_than_30_addresses() {
    let limits = Limits { dexscreener_per_minute: Some(2), ..Limits::unlimited() };
    let sim = Simulator::start(frozen(1, limits)).await.unwrap();
    let a = sim.addr();
    let addresses = |n: usize| {
        let mut v = vec!["0x2260fac5e5542a773aa44fbcfedf7c193bc2c599".to_string()];
        v.extend((1..n).map(|i| format!("0x{i:040x}")));
        v.join(",")
    };
    let r = get(a, &format!("/dexscreener/tokens/v1/ethereum/{}", addresses(30))).await;
    assert_eq!(r.status, 200, "{}", r.raw);
    assert!(!r.body.as_array().unwrap().is_empty());
    let r = get(a, &format!("/dexscreener/tokens/v1/ethereum/{}", addresses(31))).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.body["error"], "Too many token addresses: 31 (at most 30)");
    let c = sim.calls().endpoint("dexscreener", "/tokens/v1/{chainId}/{tokenAddresses}");
    assert_eq!((c.total, c.failed, c.rejected, c.items, c.cost), (2, 1, 0, 61, 2));
    // The refused call still counted against the minute's 2 requests.
    assert_eq!(get(a, &format!("/dexscreener/tokens/v1/ethereum/{}", addresses(1))).await.status, 429);
}

/// The fields of a real `/coins/markets` row (without `price_change_percentage_*_in_currency`).
const MARKET_ROW_FIELDS: &[&str] = &[
    "id",
    "symbol",
    "name",
    "image",
    "current_price",
    "market_cap",
    "market_cap_rank",
    "fully_diluted_valuation",
    "total_volume",
    "high_24h",
    "low_24h",
    "price_change_24h",
    "price_change_percentage_24h",
    "market_cap_change_24h",
    "market_cap_change_percentage_24h",
    "circulating_supply",
    "total_supply",
    "max_supply",
    "ath",
    "ath_change_percentage",
    "ath_date",
    "atl",
    "atl_change_percentage",
    "atl_date",
    "roi",
    "last_updated",
];

fn body_rows(r: &Resp) -> &Vec<Value> {
    r.body.as_array().unwrap_or_else(|| panic!("not an array: {}", r.raw))
}

fn ids_of(rows: &[Value]) -> Vec<&str> {
    rows.iter().map(|r| r["id"].as_str().unwrap()).collect()
}

fn f64s(rows: &[Value], field: &str) -> Vec<f64> {
    rows.iter().map(|r| r[field].as_f64().unwrap_or_else(|| panic!("{field} of {r}"))).collect()
}

fn non_increasing(xs: &[f64]) -> bool {
    xs.windows(2).all(|w| w[0] >= w[1])
}

#[tokio::test]
async fn coingecko_markets_is_one_call_with_the_real_row_shape() {
    let sim = Simulator::start(frozen(1, Limits::unlimited())).await.unwrap();
    let a = sim.addr();
    let r = get(a, "/coingecko/api/v3/coins/markets?vs_currency=usd&ids=bitcoin,ethereum,solana,nope").await;
    assert_eq!(r.status, 200, "{}", r.raw);
    let rows = body_rows(&r);
    // The unknown id is omitted; the rest come in market-cap order.
    assert_eq!(ids_of(rows), ["bitcoin", "ethereum", "solana"]);
    assert!(non_increasing(&f64s(rows, "market_cap")), "{}", r.raw);
    for row in rows {
        let mut keys: Vec<&str> = row.as_object().unwrap().keys().map(String::as_str).collect();
        let mut want = MARKET_ROW_FIELDS.to_vec();
        keys.sort_unstable();
        want.sort_unstable();
        assert_eq!(keys, want, "{row}");
        for f in ["current_price", "high_24h", "low_24h", "price_change_24h", "ath", "atl", "circulating_supply"] {
            assert!(row[f].is_number(), "{f} of {row}");
        }
        for f in ["market_cap", "fully_diluted_valuation", "total_volume"] {
            assert!(row[f].is_u64(), "{f} is a whole number: {row}");
        }
        assert!(row["high_24h"].as_f64() >= row["current_price"].as_f64());
        assert!(row["low_24h"].as_f64() <= row["current_price"].as_f64());
        assert!(row["roi"].is_null());
        assert!(row["ath_date"].as_str().unwrap().ends_with('Z') && row["last_updated"].is_string());
    }
    assert_eq!(rows[0]["symbol"], "btc");
    assert_eq!(rows[0]["name"], "Bitcoin");
    assert_eq!(rows[0]["market_cap_rank"], 1);
    assert_eq!(rows[0]["max_supply"], 21_000_000.0);
    assert!(rows[1]["max_supply"].is_null(), "Ethereum has no max supply");
    assert!(rows[2]["image"].as_str().unwrap().contains("/large/solana.png"));

    // One call against CoinGecko's limits, whatever the ids; not taken for `/coins/{id}`.
    let calls = sim.calls();
    let c = calls.endpoint("coingecko", "/coins/markets");
    assert_eq!((c.total, c.items, c.cost, c.failed), (1, 4, 1, 0));
    assert_eq!(calls.get("coingecko", "/coins/{id}"), 0);

    // Same simulated instant: the prices are `/simple/price`'s.
    let p = get(a, "/coingecko/api/v3/simple/price?ids=bitcoin,ethereum,solana&vs_currencies=usd").await.body;
    for row in rows {
        let id = row["id"].as_str().unwrap();
        assert_eq!(row["current_price"].as_f64(), p[id]["usd"].as_f64(), "{id}");
    }

    // `price_change_percentage` adds the windows asked for and ignores unknown ones.
    let r =
        get(a, "/coingecko/api/v3/coins/markets?vs_currency=usd&ids=bitcoin&price_change_percentage=1h,24h,7d,bogus")
            .await;
    let rows1 = rows_owned(&r);
    let row = &rows1[0];
    assert_eq!(row.as_object().unwrap().len(), MARKET_ROW_FIELDS.len() + 3, "{row}");
    for p in ["1h", "24h", "7d"] {
        assert!(row[format!("price_change_percentage_{p}_in_currency")].is_number(), "{p}: {row}");
    }
    assert_eq!(row["price_change_percentage_24h_in_currency"], row["price_change_percentage_24h"]);
    assert!(row.get("price_change_percentage_14d_in_currency").is_none());
    // `sparkline` is accepted.
    let r = get(a, "/coingecko/api/v3/coins/markets?vs_currency=usd&ids=bitcoin&sparkline=true").await;
    assert_eq!((r.status, body_rows(&r).len()), (200, 1));
}

fn rows_owned(r: &Resp) -> Vec<Value> {
    body_rows(r).clone()
}

#[tokio::test]
async fn coingecko_markets_agree_with_coin_market_data() {
    let sim = Simulator::start(frozen(9, Limits::unlimited())).await.unwrap();
    let a = sim.addr();
    for _ in 0..2 {
        let r = get(a, "/coingecko/api/v3/coins/markets?vs_currency=eur&ids=bitcoin,ethereum,pepe").await;
        assert_eq!(r.status, 200, "{}", r.raw);
        assert_eq!(body_rows(&r).len(), 3);
        for row in body_rows(&r) {
            let id = row["id"].as_str().unwrap();
            let coin = get(a, &format!("/coingecko/api/v3/coins/{id}?localization=false&tickers=false")).await.body;
            let md = &coin["market_data"];
            for f in [
                "current_price",
                "market_cap",
                "total_volume",
                "high_24h",
                "low_24h",
                "ath",
                "atl",
                "fully_diluted_valuation",
            ] {
                assert_eq!(row[f].as_f64(), md[f]["eur"].as_f64(), "{id} {f}");
                assert!(row[f].as_f64().is_some(), "{id} {f}");
            }
            let pairs = [
                ("price_change_24h", "price_change_24h_in_currency"),
                ("price_change_percentage_24h", "price_change_percentage_24h_in_currency"),
                ("market_cap_change_24h", "market_cap_change_24h_in_currency"),
                ("market_cap_change_percentage_24h", "market_cap_change_percentage_24h_in_currency"),
                ("ath_change_percentage", "ath_change_percentage"),
                ("atl_date", "atl_date"),
            ];
            for (f, g) in pairs {
                assert_eq!(row[f], md[g]["eur"], "{id} {f}");
            }
            for f in ["circulating_supply", "total_supply", "max_supply", "market_cap_rank", "last_updated"] {
                assert_eq!(row[f], md[f], "{id} {f}");
            }
            // EUR, not USD.
            assert_ne!(row["current_price"], md["current_price"]["usd"], "{id}");
        }
        sim.advance(Duration::from_secs(5 * 3_600 + 17));
    }
}

#[tokio::test]
async fn coingecko_markets_pages_orders_and_refuses_bad_parameters() {
    let sim = Simulator::start(frozen(2, Limits::unlimited())).await.unwrap();
    let a = sim.addr();
    let markets = "/coingecko/api/v3/coins/markets?vs_currency=usd";
    // No `ids`: every coin, 100 a page by default.
    let all = rows_owned(&get(a, markets).await);
    assert_eq!(all.len(), syntra_sim::market::COINS.len());
    assert!(non_increasing(&f64s(&all, "market_cap")));

    let p1 = rows_owned(&get(a, &format!("{markets}&per_page=2")).await);
    let p1b = rows_owned(&get(a, &format!("{markets}&per_page=2&page=1")).await);
    let p2 = rows_owned(&get(a, &format!("{markets}&per_page=2&page=2")).await);
    assert_eq!(p1, p1b);
    assert_eq!((p1.len(), p2.len()), (2, 2));
    assert_ne!(ids_of(&p1), ids_of(&p2));
    let both: Vec<&str> = ids_of(&p1).into_iter().chain(ids_of(&p2)).collect();
    assert_eq!(both, ids_of(&all[..4]), "pages follow the order");
    assert!(f64s(&p1, "market_cap")[1] >= f64s(&p2, "market_cap")[0]);
    let last = rows_owned(&get(a, &format!("{markets}&per_page=5&page=3")).await);
    assert_eq!(ids_of(&last), ids_of(&all[10..]));
    assert!(body_rows(&get(a, &format!("{markets}&per_page=5&page=4")).await).is_empty(), "past the end");
    assert_eq!(body_rows(&get(a, &format!("{markets}&per_page=250")).await).len(), all.len());

    // Orders.
    let asc = rows_owned(&get(a, &format!("{markets}&order=market_cap_asc")).await);
    assert_eq!(ids_of(&asc).into_iter().rev().collect::<Vec<_>>(), ids_of(&all));
    let vol = rows_owned(&get(a, &format!("{markets}&order=volume_desc")).await);
    assert!(non_increasing(&f64s(&vol, "total_volume")));
    let vol = rows_owned(&get(a, &format!("{markets}&order=volume_asc")).await);
    assert!(non_increasing(&f64s(&vol, "total_volume").into_iter().rev().collect::<Vec<_>>()));
    let by_id = rows_owned(&get(a, &format!("{markets}&order=id_asc&per_page=3")).await);
    assert_eq!(ids_of(&by_id), ["binancecoin", "bitcoin", "cardano"]);
    let by_id = rows_owned(&get(a, &format!("{markets}&order=id_desc&per_page=2")).await);
    assert_eq!(ids_of(&by_id), ["usd-coin", "tether"]);
    let calls_ok = sim.calls().endpoint("coingecko", "/coins/markets");
    assert_eq!((calls_ok.failed, calls_ok.items), (0, 0), "no ids: 0 items");

    // Bad parameters.
    for (path, error) in [
        ("/coingecko/api/v3/coins/markets?ids=bitcoin", "Missing parameter vs_currency"),
        ("/coingecko/api/v3/coins/markets?vs_currency=xyz", "invalid vs_currency"),
        ("/coingecko/api/v3/coins/markets?vs_currency=usd&order=price_desc", "invalid order"),
        ("/coingecko/api/v3/coins/markets?vs_currency=usd&per_page=251", "invalid per_page"),
        ("/coingecko/api/v3/coins/markets?vs_currency=usd&per_page=0", "invalid per_page"),
        ("/coingecko/api/v3/coins/markets?vs_currency=usd&per_page=ten", "invalid per_page"),
        ("/coingecko/api/v3/coins/markets?vs_currency=usd&page=0", "invalid page"),
    ] {
        let r = get(a, path).await;
        assert_eq!((r.status, r.body["error"].as_str()), (400, Some(error)), "{path}: {}", r.raw);
    }
    let c = sim.calls().endpoint("coingecko", "/coins/markets");
    assert_eq!((c.failed, c.items), (7, 1));
}

#[tokio::test]
async fn coingecko_markets_counts_against_the_30_per_minute_limit() {
    let sim = Simulator::start(frozen(1, Limits::free_tier())).await.unwrap();
    let a = sim.addr();
    let ids: Vec<&str> = syntra_sim::market::COINS.iter().map(|c| c.id).collect();
    let markets = format!("/coingecko/api/v3/coins/markets?vs_currency=usd&ids={}", ids.join(","));
    for i in 0..30 {
        // The minute's 30 calls, shared with the other CoinGecko endpoints.
        let path = if i % 3 == 0 { "/coingecko/api/v3/simple/price?ids=bitcoin&vs_currencies=usd" } else { &markets };
        let r = get(a, path).await;
        assert_eq!(r.status, 200, "call {i}: {}", r.raw);
    }
    let r = get(a, &markets).await;
    assert_eq!(r.status, 429, "{}", r.raw);
    assert_eq!(r.body["status"]["error_code"], 429);
    let retry: u64 = r.headers["retry-after"].parse().unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    let c = sim.calls().endpoint("coingecko", "/coins/markets");
    let n = ids.len() as u64;
    assert_eq!((c.total, c.rejected, c.items, c.cost), (21, 1, 21 * n, 20), "every coin is still one call");
    sim.advance(Duration::from_secs(retry));
    assert_eq!(get(a, &markets).await.status, 200);
}
