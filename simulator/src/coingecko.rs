//! CoinGecko API v3 (Demo plan) under `/coingecko/api/v3`.

use serde_json::{json, Map, Value};

use crate::market::{coin_by_id, round_dp, round_sig, unit, Coin, COINS, VS_CURRENCIES};
use crate::util::{iso_ms, num, Query, Reply};
use crate::{Ctx, Route};

/// One call per request whatever its size (CoinGecko counts calls, not items: a
/// `/simple/price` for 50 `ids` is one call against the minute and month limits).
pub(crate) fn route(rest: &str, q: &Query) -> Route {
    let seg: Vec<&str> = rest.trim_matches('/').split('/').collect();
    let (endpoint, items) = match seg.as_slice() {
        ["ping"] => ("/ping", 0),
        ["simple", "price"] => ("/simple/price", q.list("ids").len()),
        ["coins", "list"] => ("/coins/list", 0),
        // Before `["coins", _]`, which would take "markets" for a coin id.
        ["coins", "markets"] => ("/coins/markets", q.list("ids").len()),
        ["coins", _] => ("/coins/{id}", 1),
        ["coins", _, "market_chart"] => ("/coins/{id}/market_chart", 1),
        ["search", "trending"] => ("/search/trending", 0),
        ["search"] => ("/search", 0),
        ["global"] => ("/global", 0),
        _ => return Route::unknown(rest),
    };
    Route::new(endpoint).items(items)
}

pub(crate) fn not_found() -> Reply {
    Reply::json(404, &json!({"error": "coin not found"}))
}

fn bad_request(msg: &str) -> Reply {
    Reply::json(400, &json!({"error": msg}))
}

pub(crate) fn handle(ctx: &Ctx, rest: &str, q: &Query) -> Reply {
    let seg: Vec<&str> = rest.trim_matches('/').split('/').collect();
    match seg.as_slice() {
        ["ping"] => Reply::ok(&json!({"gecko_says": "(V3) To the Moon!"})),
        ["simple", "price"] => simple_price(ctx, q),
        ["coins", "list"] => Reply::ok(&Value::Array(
            COINS.iter().map(|c| json!({"id": c.id, "symbol": c.symbol.to_lowercase(), "name": c.name})).collect(),
        )),
        ["coins", "markets"] => coins_markets(ctx, q),
        ["coins", id] => match coin_by_id(id) {
            Some(c) => Reply::ok(&coin(ctx, c, q)),
            None => not_found(),
        },
        ["coins", id, "market_chart"] => match coin_by_id(id) {
            Some(c) => market_chart(ctx, c, q),
            None => not_found(),
        },
        ["search", "trending"] => Reply::ok(&trending(ctx)),
        ["search"] => Reply::ok(&search(q.get("query").unwrap_or(""))),
        ["global"] => Reply::ok(&global(ctx)),
        _ => Reply::json(
            404,
            &json!({"error": "Incorrect path. Please check https://www.coingecko.com/api/documentation"}),
        ),
    }
}

fn simple_price(ctx: &Ctx, q: &Query) -> Reply {
    let ids = q.list("ids");
    let vs = q.list("vs_currencies");
    if ids.is_empty() {
        return bad_request("Missing parameter ids");
    }
    if vs.is_empty() {
        return bad_request("Missing parameter vs_currencies");
    }
    let t = ctx.now_s();
    let mut out = Map::new();
    for id in &ids {
        // Real CoinGecko silently omits unknown ids.
        let Some(c) = coin_by_id(id) else { continue };
        let mut m = Map::new();
        for v in &vs {
            let v = v.to_lowercase();
            let Some(p) = ctx.market.coin_in(c, &v, t) else {
                continue;
            };
            m.insert(v.clone(), num(p));
            let rate = p / ctx.market.coin_usd(c, t);
            if q.flag("include_market_cap", false) {
                let mc = ctx.market.coin_usd(c, t) * c.circulating * rate;
                m.insert(format!("{v}_market_cap"), Value::from(round_dp(mc, 2)));
            }
            if q.flag("include_24hr_vol", false) {
                let vol = ctx.market.volume_usd(c, t) * rate;
                m.insert(format!("{v}_24h_vol"), Value::from(round_dp(vol, 2)));
            }
            if q.flag("include_24hr_change", false) {
                let prev = ctx.market.coin_in(c, &v, t - 86_400).unwrap_or(p);
                m.insert(format!("{v}_24h_change"), num((p / prev - 1.0) * 100.0));
            }
        }
        if q.flag("include_last_updated_at", false) {
            m.insert("last_updated_at".into(), Value::from(t - t % 60));
        }
        out.insert(c.id.to_string(), Value::Object(m));
    }
    Reply::ok(&Value::Object(out))
}

fn per_currency(f: impl Fn(&str) -> Option<f64>, round: impl Fn(f64) -> Value) -> Value {
    let mut m = Map::new();
    for v in VS_CURRENCIES {
        if let Some(x) = f(v) {
            m.insert(v.to_string(), round(x));
        }
    }
    Value::Object(m)
}

fn image(c: &Coin, size: &str) -> String {
    format!("https://coin-images.coingecko.com/coins/images/{}/{size}/{}.png?1696501400", c.image_id, c.id)
}

fn coin(ctx: &Ctx, c: &Coin, q: &Query) -> Value {
    let t = ctx.now_s();
    let mut v = json!({
        "id": c.id,
        "symbol": c.symbol.to_lowercase(),
        "name": c.name,
        "web_slug": c.id,
        "asset_platform_id": null,
        "platforms": {"": ""},
        "detail_platforms": {"": {"decimal_place": null, "contract_address": ""}},
        "block_time_in_minutes": if c.hashing.is_some() { 10 } else { 0 },
        "hashing_algorithm": c.hashing,
        "categories": c.categories,
        "preview_listing": false,
        "public_notice": null,
        "additional_notices": [],
        "description": {"en": c.description},
        "links": {
            "homepage": [c.homepage, "", ""],
            "whitepaper": "",
            "blockchain_site": [format!("https://blockchair.com/{}/", c.id), ""],
            "official_forum_url": [],
            "chat_url": [],
            "announcement_url": [],
            "snapshot_url": null,
            "twitter_screen_name": c.twitter,
            "facebook_username": "",
            "bitcointalk_thread_identifier": null,
            "telegram_channel_identifier": "",
            "subreddit_url": c.subreddit,
            "repos_url": {"github": if c.github.is_empty() { vec![] } else { vec![c.github] }, "bitbucket": []}
        },
        "image": {"thumb": image(c, "thumb"), "small": image(c, "small"), "large": image(c, "large")},
        "country_origin": "",
        "genesis_date": c.genesis,
        "sentiment_votes_up_percentage": round_dp(50.0 + 40.0 * unit(&[ctx.market.seed, t as u64 / 3600, c.cmc_id as u64]), 2),
        "watchlist_portfolio_users": 1_000 + (c.circulating.log10() * 90_000.0) as u64,
        "market_cap_rank": c.rank,
        "status_updates": [],
        "last_updated": iso_ms(ctx.now_ms - ctx.now_ms % 60_000),
    });
    let up = v["sentiment_votes_up_percentage"].as_f64().unwrap_or(50.0);
    v["sentiment_votes_down_percentage"] = Value::from(round_dp(100.0 - up, 2));
    if q.flag("localization", true) {
        v["localization"] = json!({"en": c.name, "de": c.name, "es": c.name, "fr": c.name, "ru": c.name, "ja": c.name});
    }
    if q.flag("market_data", true) {
        v["market_data"] = market_data(ctx, c);
    }
    if q.flag("tickers", true) {
        v["tickers"] = json!([]);
    }
    v
}

fn change(ctx: &Ctx, c: &Coin, vs: &str, secs: i64) -> Option<f64> {
    let t = ctx.now_s();
    let now = ctx.market.coin_in(c, vs, t)?;
    let then = ctx.market.coin_in(c, vs, t - secs)?;
    Some(round_sig((now / then - 1.0) * 100.0, 7))
}

/// A coin's figures at the simulated instant, in USD. `/coins/{id}` (`market_data`) and
/// `/coins/markets` both derive their numbers from it, so they agree for the same coin,
/// currency and instant.
struct Figures {
    t: i64,
    usd: f64,
    prev_usd: f64,
    /// Daily extremes from a 24-point sampling of the last day.
    hi: f64,
    lo: f64,
    ath: f64,
    atl: f64,
    mc: f64,
    prev_mc: f64,
    fdv: f64,
    volume: f64,
    ath_date: String,
    atl_date: String,
}

impl Figures {
    fn new(ctx: &Ctx, c: &Coin) -> Self {
        let m = &ctx.market;
        let t = ctx.now_s();
        let usd = m.coin_usd(c, t);
        let samples: Vec<f64> = (0..=24).map(|h| m.coin_usd(c, t - h * 3600)).collect();
        let prev_usd = m.coin_usd(c, t - 86_400);
        Figures {
            t,
            usd,
            prev_usd,
            hi: samples.iter().cloned().fold(f64::MIN, f64::max),
            lo: samples.iter().cloned().fold(f64::MAX, f64::min),
            ath: usd.max(c.base_usd * 1.45),
            atl: c.base_usd * 0.004,
            mc: usd * c.circulating,
            prev_mc: prev_usd * c.circulating,
            fdv: usd * c.max_supply.unwrap_or(c.circulating),
            volume: m.volume_usd(c, t),
            ath_date: iso_ms(1_710_460_800_000 + (c.cmc_id as i64 % 97) * 86_400_000),
            atl_date: iso_ms(1_400_000_000_000 + (c.cmc_id as i64 % 89) * 86_400_000),
        }
    }

    fn ath_change_percentage(&self) -> f64 {
        round_sig((self.usd / self.ath - 1.0) * 100.0, 7)
    }

    fn atl_change_percentage(&self) -> f64 {
        round_sig((self.usd / self.atl - 1.0) * 100.0, 7)
    }

    fn market_cap_change_percentage_24h(&self) -> f64 {
        round_sig((self.mc / self.prev_mc - 1.0) * 100.0, 7)
    }

    /// The figures in `vs`, rounded as CoinGecko prints them; `None` for an unknown currency.
    fn convert(&self, ctx: &Ctx, c: &Coin, vs: &str) -> Option<InCurrency> {
        let m = &ctx.market;
        let rate = m.usd_in(vs, self.t)?;
        Some(InCurrency {
            current_price: num(self.usd * rate),
            ath: num(self.ath * rate),
            atl: num(self.atl * rate),
            market_cap: (self.mc * rate).round(),
            fully_diluted_valuation: (self.fdv * rate).round(),
            total_volume: (self.volume * rate).round(),
            high_24h: num(self.hi * rate),
            low_24h: num(self.lo * rate),
            price_change_24h: num(m.coin_in(c, vs, self.t)? - m.coin_in(c, vs, self.t - 86_400)?),
            market_cap_change_24h: round_dp((self.mc - self.prev_mc) * rate, 2),
        })
    }
}

/// [`Figures`] in one currency.
struct InCurrency {
    current_price: Value,
    ath: Value,
    atl: Value,
    market_cap: f64,
    fully_diluted_valuation: f64,
    total_volume: f64,
    high_24h: Value,
    low_24h: Value,
    price_change_24h: Value,
    market_cap_change_24h: f64,
}

fn market_data(ctx: &Ctx, c: &Coin) -> Value {
    let f = Figures::new(ctx, c);
    let by = |g: &dyn Fn(InCurrency) -> Value| {
        let mut m = Map::new();
        for v in VS_CURRENCIES {
            if let Some(x) = f.convert(ctx, c, v) {
                m.insert(v.to_string(), g(x));
            }
        }
        Value::Object(m)
    };
    json!({
        "current_price": by(&|x| x.current_price),
        "total_value_locked": null,
        "mcap_to_tvl_ratio": null,
        "fdv_to_tvl_ratio": null,
        "roi": null,
        "ath": by(&|x| x.ath),
        "ath_change_percentage": per_currency(|_| Some(f.ath_change_percentage()), Value::from),
        "ath_date": per_currency(|_| Some(0.0), |_| Value::from(f.ath_date.clone())),
        "atl": by(&|x| x.atl),
        "atl_change_percentage": per_currency(|_| Some(f.atl_change_percentage()), Value::from),
        "atl_date": per_currency(|_| Some(0.0), |_| Value::from(f.atl_date.clone())),
        "market_cap": by(&|x| Value::from(x.market_cap)),
        "market_cap_rank": c.rank,
        "fully_diluted_valuation": by(&|x| Value::from(x.fully_diluted_valuation)),
        "market_cap_fdv_ratio": round_dp(f.mc / f.fdv, 2),
        "total_volume": by(&|x| Value::from(x.total_volume)),
        "high_24h": by(&|x| x.high_24h),
        "low_24h": by(&|x| x.low_24h),
        "price_change_24h": round_sig(f.usd - f.prev_usd, 8),
        "price_change_percentage_24h": change(ctx, c, "usd", 86_400),
        "price_change_percentage_7d": change(ctx, c, "usd", 7 * 86_400),
        "price_change_percentage_14d": change(ctx, c, "usd", 14 * 86_400),
        "price_change_percentage_30d": change(ctx, c, "usd", 30 * 86_400),
        "price_change_percentage_60d": change(ctx, c, "usd", 60 * 86_400),
        "price_change_percentage_200d": change(ctx, c, "usd", 200 * 86_400),
        "price_change_percentage_1y": change(ctx, c, "usd", 365 * 86_400),
        "market_cap_change_24h": round_dp(f.mc - f.prev_mc, 2),
        "market_cap_change_percentage_24h": f.market_cap_change_percentage_24h(),
        "price_change_24h_in_currency": by(&|x| x.price_change_24h),
        "price_change_percentage_1h_in_currency": per_currency(|v| change(ctx, c, v, 3_600), Value::from),
        "price_change_percentage_24h_in_currency": per_currency(|v| change(ctx, c, v, 86_400), Value::from),
        "price_change_percentage_7d_in_currency": per_currency(|v| change(ctx, c, v, 7 * 86_400), Value::from),
        "price_change_percentage_30d_in_currency": per_currency(|v| change(ctx, c, v, 30 * 86_400), Value::from),
        "market_cap_change_24h_in_currency": by(&|x| Value::from(x.market_cap_change_24h)),
        "market_cap_change_percentage_24h_in_currency": per_currency(|_| Some(f.market_cap_change_percentage_24h()), Value::from),
        "total_supply": c.max_supply.unwrap_or(c.circulating),
        "max_supply": c.max_supply,
        "max_supply_infinite": c.max_supply.is_none(),
        "circulating_supply": c.circulating,
        "last_updated": iso_ms(ctx.now_ms),
    })
}

/// `price_change_percentage` windows `/coins/markets` accepts, with their length.
const CHANGE_WINDOWS: &[(&str, i64)] = &[
    ("1h", 3_600),
    ("24h", 86_400),
    ("7d", 7 * 86_400),
    ("14d", 14 * 86_400),
    ("30d", 30 * 86_400),
    ("200d", 200 * 86_400),
    ("1y", 365 * 86_400),
];

/// `/coins/markets`: one row per coin, all money in `vs_currency`, sorted by `order` and paged.
fn coins_markets(ctx: &Ctx, q: &Query) -> Reply {
    let Some(vs) = q.get("vs_currency").map(str::to_lowercase) else {
        return bad_request("Missing parameter vs_currency");
    };
    if ctx.market.usd_in(&vs, 0).is_none() {
        return bad_request("invalid vs_currency");
    }
    let order = q.get("order").unwrap_or("market_cap_desc");
    if !["market_cap_desc", "market_cap_asc", "volume_desc", "volume_asc", "id_asc", "id_desc"].contains(&order) {
        return bad_request("invalid order");
    }
    let per_page = match q.get("per_page").map(str::parse::<usize>) {
        None => 100,
        Some(Ok(n)) if (1..=250).contains(&n) => n,
        Some(_) => return bad_request("invalid per_page"),
    };
    let page = match q.get("page").map(str::parse::<usize>) {
        None => 1,
        Some(Ok(n)) if n >= 1 => n,
        Some(_) => return bad_request("invalid page"),
    };
    // `sparkline` is accepted and ignored (no `sparkline_in_7d`).
    let windows: Vec<(&str, i64)> = {
        let asked = q.list("price_change_percentage");
        CHANGE_WINDOWS.iter().copied().filter(|(p, _)| asked.iter().any(|a| a.eq_ignore_ascii_case(p))).collect()
    };
    let ids = q.list("ids");
    // Real CoinGecko silently omits unknown ids; no `ids` means every coin.
    let coins: Vec<&Coin> = if ids.is_empty() {
        COINS.iter().collect()
    } else {
        COINS.iter().filter(|c| ids.iter().any(|id| id == c.id)).collect()
    };
    let mut rows: Vec<(&Coin, Figures)> = coins.into_iter().map(|c| (c, Figures::new(ctx, c))).collect();
    rows.sort_by(|(a, fa), (b, fb)| {
        let by = match order {
            "market_cap_asc" => fa.mc.total_cmp(&fb.mc),
            "market_cap_desc" => fb.mc.total_cmp(&fa.mc),
            "volume_asc" => fa.volume.total_cmp(&fb.volume),
            "volume_desc" => fb.volume.total_cmp(&fa.volume),
            "id_desc" => b.id.cmp(a.id),
            _ => a.id.cmp(b.id),
        };
        by.then(a.rank.cmp(&b.rank))
    });
    let out: Vec<Value> = rows
        .iter()
        .skip(per_page.saturating_mul(page - 1))
        .take(per_page)
        .filter_map(|(c, f)| market_row(ctx, c, f, &vs, &windows))
        .collect();
    Reply::ok(&Value::Array(out))
}

fn market_row(ctx: &Ctx, c: &Coin, f: &Figures, vs: &str, windows: &[(&str, i64)]) -> Option<Value> {
    let x = f.convert(ctx, c, vs)?;
    let mut row = json!({
        "id": c.id,
        "symbol": c.symbol.to_lowercase(),
        "name": c.name,
        "image": image(c, "large"),
        "current_price": x.current_price,
        // Whole numbers, as the real API prints them (same values as `market_data`'s).
        "market_cap": x.market_cap as i64,
        "market_cap_rank": c.rank,
        "fully_diluted_valuation": x.fully_diluted_valuation as i64,
        "total_volume": x.total_volume as i64,
        "high_24h": x.high_24h,
        "low_24h": x.low_24h,
        "price_change_24h": x.price_change_24h,
        "price_change_percentage_24h": change(ctx, c, vs, 86_400),
        "market_cap_change_24h": x.market_cap_change_24h,
        "market_cap_change_percentage_24h": f.market_cap_change_percentage_24h(),
        "circulating_supply": c.circulating,
        "total_supply": c.max_supply.unwrap_or(c.circulating),
        "max_supply": c.max_supply,
        "ath": x.ath,
        "ath_change_percentage": f.ath_change_percentage(),
        "ath_date": f.ath_date,
        "atl": x.atl,
        "atl_change_percentage": f.atl_change_percentage(),
        "atl_date": f.atl_date,
        "roi": null,
        "last_updated": iso_ms(ctx.now_ms),
    });
    for (p, secs) in windows {
        row[format!("price_change_percentage_{p}_in_currency")] = Value::from(change(ctx, c, vs, *secs));
    }
    Some(row)
}

fn market_chart(ctx: &Ctx, c: &Coin, q: &Query) -> Reply {
    let Some(vs) = q.get("vs_currency").map(str::to_lowercase) else {
        return bad_request("Missing parameter vs_currency");
    };
    if ctx.market.usd_in(&vs, 0).is_none() {
        return bad_request("invalid vs_currency");
    }
    let days: f64 = match q.get("days") {
        None => return bad_request("Missing parameter days"),
        Some("max") => 365.0 * 5.0,
        Some(d) => match d.parse::<f64>() {
            Ok(d) if d > 0.0 => d.min(365.0 * 5.0),
            _ => return bad_request("invalid days"),
        },
    };
    // Automatic granularity as documented: 1 day -> 5-minutely, 2-90 days -> hourly,
    // above 90 days -> daily (at 00:00 UTC); `interval=daily` forces daily.
    let step: i64 = if q.get("interval") == Some("daily") || days > 90.0 {
        86_400
    } else if days > 1.0 {
        3_600
    } else {
        300
    };
    let now = ctx.now_s();
    let start = now - (days * 86_400.0) as i64;
    let mut times: Vec<i64> = Vec::new();
    let mut t = start - start.rem_euclid(step) + step;
    while t < now {
        times.push(t);
        t += step;
    }
    times.push(now);
    let m = &ctx.market;
    let series =
        |f: &dyn Fn(i64) -> f64| -> Value { Value::Array(times.iter().map(|&t| json!([t * 1000, f(t)])).collect()) };
    let price = |t: i64| round_sig(m.coin_in(c, &vs, t).unwrap_or(0.0), 12);
    let body = json!({
        "prices": series(&price),
        "market_caps": series(&|t| round_dp(m.coin_in(c, &vs, t).unwrap_or(0.0) * c.circulating, 2)),
        "total_volumes": series(&|t| round_dp(m.volume_usd(c, t) * m.usd_in(&vs, t).unwrap_or(0.0), 2)),
    });
    Reply::ok(&body)
}

fn trending(ctx: &Ctx) -> Value {
    let t = ctx.now_s();
    let m = &ctx.market;
    let hour = (t / 3600) as u64;
    let mut coins: Vec<&Coin> = COINS.iter().filter(|c| c.vol > 0.1).collect();
    coins.sort_by(|a, b| {
        let ka = unit(&[m.seed, hour, a.cmc_id as u64]);
        let kb = unit(&[m.seed, hour, b.cmc_id as u64]);
        ka.total_cmp(&kb)
    });
    coins.truncate(7);
    let btc = m.coin_usd(coin_by_id("bitcoin").expect("catalogue"), t);
    let items: Vec<Value> = coins
        .iter()
        .enumerate()
        .map(|(score, c)| {
            let p = m.coin_usd(c, t);
            let prev = m.coin_usd(c, t - 86_400);
            json!({"item": {
                "id": c.id,
                "coin_id": c.image_id,
                "name": c.name,
                "symbol": c.symbol,
                "market_cap_rank": c.rank,
                "thumb": image(c, "thumb"),
                "small": image(c, "small"),
                "large": image(c, "large"),
                "slug": c.id,
                "price_btc": p / btc,
                "score": score,
                "data": {
                    "price": num(p),
                    "price_btc": format!("{}", round_sig(p / btc, 10)),
                    "price_change_percentage_24h": {"usd": round_sig((p / prev - 1.0) * 100.0, 7)},
                    "market_cap": format!("${}", group_thousands((p * c.circulating).round() as u64)),
                    "market_cap_btc": format!("{}", (p * c.circulating / btc).round()),
                    "total_volume": format!("${}", group_thousands(m.volume_usd(c, t).round() as u64)),
                    "total_volume_btc": format!("{}", (m.volume_usd(c, t) / btc).round()),
                    "sparkline": format!("https://www.coingecko.com/coins/{}/sparkline.svg", c.image_id),
                    "content": null
                }
            }})
        })
        .collect();
    json!({"coins": items, "nfts": [], "categories": []})
}

fn group_thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

fn search(query: &str) -> Value {
    let ql = query.to_lowercase();
    let coins: Vec<Value> = if ql.is_empty() {
        Vec::new()
    } else {
        COINS
            .iter()
            .filter(|c| {
                c.id.contains(&ql) || c.name.to_lowercase().contains(&ql) || c.symbol.to_lowercase().contains(&ql)
            })
            .map(|c| {
                json!({
                    "id": c.id,
                    "name": c.name,
                    "api_symbol": c.id,
                    "symbol": c.symbol,
                    "market_cap_rank": c.rank,
                    "thumb": image(c, "thumb"),
                    "large": image(c, "large"),
                })
            })
            .collect()
    };
    json!({"coins": coins, "exchanges": [], "icos": [], "categories": [], "nfts": []})
}

fn global(ctx: &Ctx) -> Value {
    let t = ctx.now_s();
    let m = &ctx.market;
    // The catalogue is a sample of the market: scale it up to a plausible total.
    let sample: f64 = COINS.iter().map(|c| m.coin_usd(c, t) * c.circulating).sum();
    let prev: f64 = COINS.iter().map(|c| m.coin_usd(c, t - 86_400) * c.circulating).sum();
    let total = sample * 1.12;
    let volume: f64 = COINS.iter().map(|c| m.volume_usd(c, t)).sum::<f64>() * 1.3;
    let mut pct = Map::new();
    for c in COINS.iter().take(10) {
        pct.insert(
            c.symbol.to_lowercase(),
            Value::from(round_sig(m.coin_usd(c, t) * c.circulating / total * 100.0, 10)),
        );
    }
    json!({"data": {
        "active_cryptocurrencies": 15_000 + (t / 86_400) % 400,
        "upcoming_icos": 0,
        "ongoing_icos": 49,
        "ended_icos": 3376,
        "markets": 1_150 + (t / 86_400) % 60,
        "total_market_cap": per_currency(|v| Some((total * m.usd_in(v, t)?).round()), Value::from),
        "total_volume": per_currency(|v| Some((volume * m.usd_in(v, t)?).round()), Value::from),
        "market_cap_percentage": pct,
        "market_cap_change_percentage_24h_usd": round_sig((sample / prev - 1.0) * 100.0, 10),
        "updated_at": t - t % 60,
    }})
}
