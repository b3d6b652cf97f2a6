//! Binance spot (`/api/v3`) and USDⓈ-M futures (`/fapi/v1`) market data under `/binance`.

use serde_json::{json, Value};

use crate::market::{binance_symbol, coin_by_id, round_dp, round_sig, Symbol, BINANCE_SYMBOLS};
use crate::util::{dec8, Query, Reply};
use crate::{Ctx, Route};

/// Request weight of `/api/v3/klines` for a `limit`, per Binance's table.
pub fn klines_weight(limit: u32) -> u32 {
    match limit {
        0..=99 => 1,
        100..=499 => 2,
        500..=1000 => 5,
        _ => 10,
    }
}

/// Request weight (Binance's `weight` of each endpoint) and items asked for. The weight limit
/// counts weight; the raw-request limit counts 1 per request whatever the weight.
pub(crate) fn route(rest: &str, q: &Query) -> Route {
    let one = usize::from(q.get("symbol").is_some());
    let (endpoint, weight, items) = match rest.trim_end_matches('/') {
        "/api/v3/ping" => ("/api/v3/ping", 1, 0),
        "/api/v3/time" => ("/api/v3/time", 1, 0),
        "/api/v3/klines" => {
            let limit = q.get("limit").and_then(|l| l.parse::<u32>().ok()).unwrap_or(500);
            ("/api/v3/klines", klines_weight(limit), 1)
        }
        // Weight 2 for one `symbol`, 4 for `symbols=[...]` (any length) or for every symbol.
        "/api/v3/ticker/price" => match (q.get("symbol"), q.get("symbols")) {
            (Some(_), _) => ("/api/v3/ticker/price", 2, 1),
            (None, Some(list)) => {
                let n = serde_json::from_str::<Vec<String>>(list).map_or(0, |v| v.len());
                ("/api/v3/ticker/price", 4, n)
            }
            (None, None) => ("/api/v3/ticker/price", 4, 0),
        },
        "/fapi/v1/fundingRate" => ("/fapi/v1/fundingRate", 1, 1),
        "/fapi/v1/premiumIndex" => ("/fapi/v1/premiumIndex", 1, one),
        "/fapi/v1/openInterest" => ("/fapi/v1/openInterest", 1, 1),
        _ => return Route::unknown(rest).cost(1),
    };
    Route::new(endpoint).cost(weight).items(items)
}

fn err(code: i32, msg: &str) -> Reply {
    Reply::json(400, &json!({"code": code, "msg": msg}))
}

fn mandatory(name: &str) -> Reply {
    err(-1102, &format!("Mandatory parameter '{name}' was not sent, was empty/null, or malformed."))
}

fn symbol_param(q: &Query, futures: bool) -> Result<&'static Symbol, Reply> {
    let s = q.get("symbol").ok_or_else(|| mandatory("symbol"))?;
    match binance_symbol(s) {
        Some(sym) if !futures || sym.futures => Ok(sym),
        _ => Err(err(-1121, "Invalid symbol.")),
    }
}

pub(crate) fn handle(ctx: &Ctx, rest: &str, q: &Query) -> Reply {
    let r = match rest.trim_end_matches('/') {
        "/api/v3/ping" => Ok(Reply::ok(&json!({}))),
        "/api/v3/time" => Ok(Reply::ok(&json!({"serverTime": ctx.now_ms}))),
        "/api/v3/klines" => klines(ctx, q),
        "/api/v3/ticker/price" => ticker_price(ctx, q),
        "/fapi/v1/fundingRate" => funding_rate(ctx, q),
        "/fapi/v1/premiumIndex" => premium_index(ctx, q),
        "/fapi/v1/openInterest" => open_interest(ctx, q),
        _ => Ok(Reply::json(404, &json!({"code": -1, "msg": "Not Found"}))),
    };
    r.unwrap_or_else(|e| e)
}

/// Interval length in seconds, for the intervals Binance accepts (except `1M`).
pub fn interval_secs(interval: &str) -> Option<i64> {
    Some(match interval {
        "1s" => 1,
        "1m" => 60,
        "3m" => 180,
        "5m" => 300,
        "15m" => 900,
        "30m" => 1_800,
        "1h" => 3_600,
        "2h" => 7_200,
        "4h" => 14_400,
        "6h" => 21_600,
        "8h" => 28_800,
        "12h" => 43_200,
        "1d" => 86_400,
        "3d" => 259_200,
        "1w" => 604_800,
        _ => return None,
    })
}

fn price_str(p: f64) -> String {
    dec8(round_sig(p, 7))
}

fn align(t: i64, step: i64) -> i64 {
    // Weekly candles open on Monday 00:00 UTC; the unix epoch was a Thursday.
    let offset = if step == 604_800 { 4 * 86_400 } else { 0 };
    (t - offset).div_euclid(step) * step + offset
}

fn klines(ctx: &Ctx, q: &Query) -> Result<Reply, Reply> {
    let sym = symbol_param(q, false)?;
    let interval = q.get("interval").ok_or_else(|| mandatory("interval"))?;
    let step = interval_secs(interval).ok_or_else(|| err(-1120, "Invalid interval."))?;
    let limit = match q.get("limit") {
        None => 500,
        Some(l) => match l.parse::<i64>() {
            Ok(l) if (1..=1500).contains(&l) => l,
            _ => return Err(err(-1130, "Data sent for parameter 'limit' is not valid.")),
        },
    };
    let now = ctx.now_s();
    let ms = |name: &str| q.get(name).and_then(|v| v.parse::<i64>().ok());
    let last_open = align(now, step);
    let (first, last) = match (ms("startTime"), ms("endTime")) {
        (Some(s), _) => {
            // The first candle opening at or after startTime.
            let s = (s + 999).div_euclid(1000);
            let first = align(s, step);
            let first = if first < s { first + step } else { first };
            let mut last = (first + (limit - 1) * step).min(last_open);
            if let Some(e) = ms("endTime") {
                last = last.min(align(e.div_euclid(1000), step));
            }
            (first, last)
        }
        (None, Some(e)) => {
            let last = align(e.div_euclid(1000), step).min(last_open);
            (last - (limit - 1) * step, last)
        }
        (None, None) => (last_open - (limit - 1) * step, last_open),
    };
    let m = &ctx.market;
    let base = coin_by_id(sym.base).expect("catalogue");
    let mut rows = Vec::new();
    let mut open = first;
    while open <= last {
        let end = (open + step).min(now);
        let po = m.binance_price(sym, open);
        let pc = m.binance_price(sym, end);
        let (mut hi, mut lo) = (po.max(pc), po.min(pc));
        let n = 12;
        for i in 1..n {
            let t = open + (end - open) * i / n;
            let p = m.binance_price(sym, t);
            hi = hi.max(p);
            lo = lo.min(p);
        }
        let wick = 0.0004 * m.wobble(sym.symbol, open, 1.0, 1.0);
        hi *= 1.0 + wick;
        lo *= 1.0 - wick;
        let usd = m.coin_usd(base, open);
        let vol_base = m.volume_usd(base, open) * 0.3 / usd * (end - open).max(1) as f64 / 86_400.0
            * m.wobble(sym.symbol, open, step as f64 / 2.0, 0.5);
        let avg = (po + pc + hi + lo) / 4.0;
        let taker = 0.5 + 0.08 * (m.wobble(sym.symbol, open + 7, 1.0, 1.0) - 1.0);
        let trades = (vol_base * usd / 2_500.0).round().max(1.0) as u64;
        rows.push(json!([
            open * 1000,
            price_str(po),
            price_str(hi),
            price_str(lo),
            price_str(pc),
            dec8(round_dp(vol_base, 5)),
            (open + step) * 1000 - 1,
            dec8(round_dp(vol_base * avg, 4)),
            trades,
            dec8(round_dp(vol_base * taker, 5)),
            dec8(round_dp(vol_base * taker * avg, 4)),
            "0"
        ]));
        open += step;
    }
    Ok(Reply::ok(&Value::Array(rows)))
}

fn ticker_price(ctx: &Ctx, q: &Query) -> Result<Reply, Reply> {
    let t = ctx.now_s();
    let one = |s: &Symbol| json!({"symbol": s.symbol, "price": price_str(ctx.market.binance_price(s, t))});
    if q.get("symbol").is_some() {
        let sym = symbol_param(q, false)?;
        return Ok(Reply::ok(&one(sym)));
    }
    if let Some(list) = q.get("symbols") {
        let names: Vec<String> = serde_json::from_str(list).map_err(|_| mandatory("symbols"))?;
        let mut out = Vec::new();
        for n in names {
            out.push(one(binance_symbol(&n).ok_or_else(|| err(-1121, "Invalid symbol."))?));
        }
        return Ok(Reply::ok(&Value::Array(out)));
    }
    Ok(Reply::ok(&Value::Array(BINANCE_SYMBOLS.iter().map(one).collect())))
}

const FUNDING_PERIOD: i64 = 8 * 3_600;

fn funding_at(ctx: &Ctx, sym: &Symbol, t: i64) -> f64 {
    let w = ctx.market.wobble(sym.symbol, t, 3.0 * FUNDING_PERIOD as f64, 1.0) - 1.0;
    round_dp(0.0001 + 0.00025 * w, 8)
}

fn funding_rate(ctx: &Ctx, q: &Query) -> Result<Reply, Reply> {
    let syms: Vec<&Symbol> = if q.get("symbol").is_some() {
        vec![symbol_param(q, true)?]
    } else {
        BINANCE_SYMBOLS.iter().filter(|s| s.futures).collect()
    };
    let limit = q.get("limit").and_then(|l| l.parse::<i64>().ok()).unwrap_or(100).clamp(1, 1000);
    let now = ctx.now_s();
    let end = q.get("endTime").and_then(|e| e.parse::<i64>().ok()).map_or(now, |e| (e / 1000).min(now));
    let mut rows: Vec<(i64, Value)> = Vec::new();
    for sym in syms {
        let last = end.div_euclid(FUNDING_PERIOD) * FUNDING_PERIOD;
        let start = q
            .get("startTime")
            .and_then(|s| s.parse::<i64>().ok())
            .map(|s| (s / 1000).div_euclid(FUNDING_PERIOD) * FUNDING_PERIOD);
        let mut t = start.unwrap_or(last - (limit - 1) * FUNDING_PERIOD);
        while t <= last {
            let mark = ctx.market.binance_price(sym, t);
            rows.push((
                t,
                json!({
                    "symbol": sym.symbol,
                    "fundingTime": t * 1000,
                    "fundingRate": dec8(funding_at(ctx, sym, t)),
                    "markPrice": dec8(round_sig(mark, 12)),
                }),
            ));
            t += FUNDING_PERIOD;
        }
    }
    rows.sort_by_key(|(t, _)| *t);
    let skip = rows.len().saturating_sub(limit as usize);
    Ok(Reply::ok(&Value::Array(rows.into_iter().skip(skip).map(|(_, v)| v).collect())))
}

fn premium_index(ctx: &Ctx, q: &Query) -> Result<Reply, Reply> {
    let now = ctx.now_s();
    let one = |sym: &Symbol| {
        let mark = ctx.market.binance_price(sym, now);
        let index = mark * (1.0 - 0.0002 * (ctx.market.wobble(sym.symbol, now, 60.0, 1.0) - 1.0));
        let next = (now.div_euclid(FUNDING_PERIOD) + 1) * FUNDING_PERIOD;
        json!({
            "symbol": sym.symbol,
            "markPrice": dec8(round_sig(mark, 12)),
            "indexPrice": dec8(round_sig(index, 12)),
            "estimatedSettlePrice": dec8(round_sig(index, 12)),
            "lastFundingRate": dec8(funding_at(ctx, sym, next)),
            "interestRate": "0.00010000",
            "nextFundingTime": next * 1000,
            "time": ctx.now_ms,
        })
    };
    if q.get("symbol").is_some() {
        return Ok(Reply::ok(&one(symbol_param(q, true)?)));
    }
    Ok(Reply::ok(&Value::Array(BINANCE_SYMBOLS.iter().filter(|s| s.futures).map(one).collect())))
}

fn open_interest(ctx: &Ctx, q: &Query) -> Result<Reply, Reply> {
    let sym = symbol_param(q, true)?;
    let base = coin_by_id(sym.base).expect("catalogue");
    let t = ctx.now_s();
    let oi = base.open_interest * ctx.market.wobble(sym.symbol, t, 1_800.0, 0.12);
    Ok(Reply::ok(&json!({
        "openInterest": format!("{:.3}", oi),
        "symbol": sym.symbol,
        "time": ctx.now_ms,
    })))
}
