//! alternative.me Crypto Fear & Greed Index under `/feargreed`.

use serde_json::{json, Value};

use crate::market::key;
use crate::util::{date, Query, Reply};
use crate::{Ctx, Route};

pub(crate) fn route(rest: &str) -> Route {
    match rest.trim_end_matches('/') {
        "/fng" => Route::new("/fng/"),
        _ => Route::unknown(rest),
    }
}

/// The index's classification bands.
pub fn classify(value: u32) -> &'static str {
    match value {
        0..=24 => "Extreme Fear",
        25..=46 => "Fear",
        47..=54 => "Neutral",
        55..=75 => "Greed",
        _ => "Extreme Greed",
    }
}

/// Index value of the UTC day starting at `day_start` (unix seconds).
pub(crate) fn value_on(ctx: &Ctx, day_start: i64) -> u32 {
    // Sentiment follows bitcoin's weekly trend plus daily noise.
    let trend = ctx.market.walk(key("bitcoin"), day_start) * 4.0;
    let noise = ctx.market.wobble("fng", day_start, 86_400.0 * 2.5, 1.0) - 1.0;
    (50.0 + 120.0 * trend + 18.0 * noise).round().clamp(3.0, 97.0) as u32
}

pub(crate) fn handle(ctx: &Ctx, rest: &str, q: &Query) -> Reply {
    if rest.trim_end_matches('/') != "/fng" {
        return Reply::json(404, &json!({"metadata": {"error": "Not found"}}));
    }
    let limit = match q.get("limit").map(str::parse::<usize>) {
        None => 1,
        Some(Ok(0)) => 2_000,
        Some(Ok(n)) => n.min(2_000),
        Some(Err(_)) => 1,
    };
    let us_date = q.get("date_format") == Some("us");
    let now = ctx.now_s();
    let today = now.div_euclid(86_400) * 86_400;
    let data: Vec<Value> = (0..limit as i64)
        .map(|i| {
            let day = today - i * 86_400;
            let v = value_on(ctx, day);
            let ts = if q.get("date_format").is_some() {
                let d = date(day);
                if us_date {
                    format!("{}-{}-{}", &d[5..7], &d[8..10], &d[0..4])
                } else {
                    d
                }
            } else {
                day.to_string()
            };
            let mut item = json!({
                "value": v.to_string(),
                "value_classification": classify(v),
                "timestamp": ts,
            });
            if i == 0 {
                item["time_until_update"] = Value::from((today + 86_400 - now).to_string());
            }
            item
        })
        .collect();
    Reply::ok(&json!({
        "name": "Fear and Greed Index",
        "data": data,
        "metadata": {"error": null},
    }))
}
