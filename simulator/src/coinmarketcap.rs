//! CoinMarketCap Pro API (Basic plan) under `/coinmarketcap`.

use serde_json::{json, Map, Value};

use crate::market::{coin_by_id, coin_by_symbol, round_sig, Coin};
use crate::util::{iso_ms, Query, Reply};
use crate::{Ctx, Route};

pub(crate) fn route(rest: &str, q: &Query) -> Route {
    let endpoint = match rest.trim_end_matches('/') {
        "/v1/cryptocurrency/quotes/latest" => "/v1/cryptocurrency/quotes/latest",
        "/v2/cryptocurrency/quotes/latest" => "/v2/cryptocurrency/quotes/latest",
        _ => return Route::unknown(rest),
    };
    Route::new(endpoint).items(requested(q).len()).cost(credits(q))
}

/// The coins a quotes request names: the `symbol` list, else `slug`, else `id` (the order the
/// handler reads them in).
fn requested(q: &Query) -> Vec<String> {
    ["symbol", "slug", "id"].iter().map(|k| q.list(k)).find(|l| !l.is_empty()).unwrap_or_default()
}

/// Call credits of a quotes request, per CoinMarketCap's docs ("API Key Usage Credits"; the
/// quotes endpoints' "Plan credit use"): 1 credit per 100 cryptocurrencies, rounded up (at least
/// 1), and each `convert` currency beyond the first charged like another call. Modelled as
/// `ceil(items / 100) * max(1, converts)`, which for up to 100 items equals the docs' "+1 credit
/// per convert option beyond the first" and is above it when both are larger.
pub(crate) fn credits(q: &Query) -> u32 {
    let items = requested(q).len() as u32;
    let converts = q.list("convert").len() as u32;
    items.div_ceil(100).max(1).saturating_mul(converts.max(1))
}

/// The `status` object every CoinMarketCap response carries.
pub(crate) fn status(ctx: &Ctx, code: i64, message: Option<&str>, credits: u32) -> Value {
    json!({
        "timestamp": iso_ms(ctx.now_ms),
        "error_code": code,
        "error_message": message,
        "elapsed": 8 + ctx.now_ms % 23,
        "credit_count": credits,
        "notice": null,
    })
}

pub(crate) fn error(ctx: &Ctx, http: u16, code: i64, message: &str) -> Reply {
    Reply::json(http, &json!({"status": status(ctx, code, Some(message), 0)}))
}

/// The API key must come in the `X-CMC_PRO_API_KEY` header (or the `CMC_PRO_API_KEY` query
/// parameter, which CoinMarketCap also accepts).
pub(crate) fn authorize(ctx: &Ctx, headers: &hyper::HeaderMap, q: &Query) -> Result<(), Reply> {
    let header = headers.get("x-cmc_pro_api_key").and_then(|v| v.to_str().ok()).filter(|v| !v.trim().is_empty());
    if header.is_some() || q.get("CMC_PRO_API_KEY").is_some() {
        Ok(())
    } else {
        Err(error(ctx, 401, 1002, "API key missing."))
    }
}

pub(crate) fn handle(ctx: &Ctx, rest: &str, q: &Query) -> Reply {
    let v2 = match rest.trim_end_matches('/') {
        "/v1/cryptocurrency/quotes/latest" => false,
        "/v2/cryptocurrency/quotes/latest" => true,
        _ => return error(ctx, 404, 404, "Not found"),
    };
    let convert = q.list("convert");
    let convert = if convert.is_empty() { vec!["USD".to_string()] } else { convert };
    for c in &convert {
        if ctx.market.usd_in(&c.to_lowercase(), 0).is_none() {
            return error(ctx, 400, 400, &format!("Invalid value for \"convert\": \"{c}\""));
        }
    }
    let mut coins: Vec<(String, &Coin)> = Vec::new();
    if !q.list("symbol").is_empty() {
        for s in q.list("symbol") {
            match coin_by_symbol(&s) {
                Some(c) => coins.push((s.to_uppercase(), c)),
                None => return error(ctx, 400, 400, &format!("Invalid value for \"symbol\": \"{s}\"")),
            }
        }
    } else if !q.list("slug").is_empty() {
        for s in q.list("slug") {
            match coin_by_id(&s) {
                Some(c) => coins.push((c.cmc_id.to_string(), c)),
                None => return error(ctx, 400, 400, &format!("Invalid value for \"slug\": \"{s}\"")),
            }
        }
    } else if !q.list("id").is_empty() {
        for s in q.list("id") {
            match crate::market::COINS.iter().find(|c| c.cmc_id.to_string() == s) {
                Some(c) => coins.push((s.clone(), c)),
                None => return error(ctx, 400, 400, &format!("Invalid value for \"id\": \"{s}\"")),
            }
        }
    } else {
        return error(ctx, 400, 400, "\"value\" must contain at least one of [id, symbol, slug]");
    }
    let mut data = Map::new();
    for (k, c) in &coins {
        let v = quote(ctx, c, &convert);
        data.insert(k.clone(), if v2 { json!([v]) } else { v });
    }
    Reply::ok(&json!({"status": status(ctx, 0, None, credits(q)), "data": data}))
}

fn quote(ctx: &Ctx, c: &Coin, convert: &[String]) -> Value {
    let m = &ctx.market;
    let t = ctx.now_s();
    let usd = m.coin_usd(c, t);
    let total_mc: f64 = crate::market::COINS.iter().map(|c| m.coin_usd(c, t) * c.circulating).sum::<f64>() * 1.12;
    let pct = |secs: i64| round_sig((usd / m.coin_usd(c, t - secs) - 1.0) * 100.0, 9);
    let mut q = Map::new();
    for cur in convert {
        let rate = m.usd_in(&cur.to_lowercase(), t).unwrap_or(1.0);
        q.insert(
            cur.to_uppercase(),
            json!({
                "price": round_sig(usd * rate, 12),
                "volume_24h": round_sig(m.volume_usd(c, t) * rate, 12),
                "volume_change_24h": round_sig((m.volume_usd(c, t) / m.volume_usd(c, t - 86_400) - 1.0) * 100.0, 7),
                "percent_change_1h": pct(3_600),
                "percent_change_24h": pct(86_400),
                "percent_change_7d": pct(7 * 86_400),
                "percent_change_30d": pct(30 * 86_400),
                "percent_change_60d": pct(60 * 86_400),
                "percent_change_90d": pct(90 * 86_400),
                "market_cap": round_sig(usd * c.circulating * rate, 12),
                "market_cap_dominance": round_sig(usd * c.circulating / total_mc * 100.0, 6),
                "fully_diluted_market_cap": round_sig(usd * c.max_supply.unwrap_or(c.circulating) * rate, 12),
                "tvl": null,
                "last_updated": iso_ms(ctx.now_ms - ctx.now_ms % 60_000),
            }),
        );
    }
    json!({
        "id": c.cmc_id,
        "name": c.name,
        "symbol": c.symbol,
        "slug": c.id,
        "num_market_pairs": 500 + c.cmc_id % 11_000,
        "date_added": format!("{}T00:00:00.000Z", c.genesis.unwrap_or("2019-01-01")),
        "tags": c.categories.iter().map(|s| s.to_lowercase().replace(' ', "-")).collect::<Vec<_>>(),
        "max_supply": c.max_supply,
        "circulating_supply": c.circulating,
        "total_supply": c.max_supply.unwrap_or(c.circulating),
        "infinite_supply": c.max_supply.is_none(),
        "platform": null,
        "cmc_rank": c.rank,
        "self_reported_circulating_supply": null,
        "self_reported_market_cap": null,
        "tvl_ratio": null,
        "is_active": 1,
        "is_fiat": 0,
        "last_updated": iso_ms(ctx.now_ms - ctx.now_ms % 60_000),
        "quote": q,
    })
}
