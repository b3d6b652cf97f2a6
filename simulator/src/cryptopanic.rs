//! CryptoPanic developer API under `/cryptopanic`.

use serde_json::{json, Value};

use crate::market::{hash, key, unit, Coin, Market, COINS};
use crate::util::{iso_s, Query, Reply};
use crate::{Ctx, Route};

const SLOT: i64 = 1_800;
const PAGE: usize = 20;

pub(crate) fn route(rest: &str) -> Route {
    match rest.trim_end_matches('/') {
        "/api/v1/posts" => Route::new("/api/v1/posts/"),
        "/api/developer/v2/posts" => Route::new("/api/developer/v2/posts/"),
        _ => Route::unknown(rest),
    }
}

/// The token travels in the `auth_token` query parameter.
pub(crate) fn authorize(q: &Query) -> Result<(), Reply> {
    if q.get("auth_token").is_some() {
        Ok(())
    } else {
        Err(Reply::json(401, &json!({"status": "Incomplete", "info": "Auth token is required."})))
    }
}

const SOURCES: &[(&str, &str)] = &[
    ("CoinDesk", "coindesk.com"),
    ("Cointelegraph", "cointelegraph.com"),
    ("The Block", "theblock.co"),
    ("Decrypt", "decrypt.co"),
    ("Bitcoinist", "bitcoinist.com"),
    ("NewsBTC", "newsbtc.com"),
];

const TEMPLATES: &[&str] = &[
    "{name} price climbs as traders eye ${level}",
    "{name} slips below ${level} amid market-wide sell-off",
    "Analysts say {name} ({code}) could retest ${level} this week",
    "{name} open interest hits a monthly high",
    "Whales move millions in {code} to exchanges",
    "{name} ecosystem update: what changed this week",
    "ETF flows and {code}: a look at the numbers",
    "{name} funding rates turn {mood} on major exchanges",
];

pub(crate) fn handle(ctx: &Ctx, rest: &str, q: &Query) -> Reply {
    if !matches!(rest.trim_end_matches('/'), "/api/v1/posts" | "/api/developer/v2/posts") {
        return Reply::json(404, &json!({"status": "Incomplete", "info": "Not found"}));
    }
    let wanted: Vec<String> = q.list("currencies").iter().map(|c| c.to_uppercase()).collect();
    let page: usize = q.get("page").and_then(|p| p.parse().ok()).filter(|&p| p >= 1).unwrap_or(1);
    let m = &ctx.market;
    let now = ctx.now_s();
    let mut slot = now.div_euclid(SLOT);
    let mut results: Vec<Value> = Vec::new();
    let mut skipped = 0;
    let mut count = 0u64;
    let news = key("news");
    // Walk back through half-hour slots; each has a post with probability 0.7. Only the posts
    // of the page are built: matching and counting need just each post's coins.
    for _ in 0..5_000 {
        if unit(&[m.seed, news, slot as u64]) < 0.7 {
            let (h, coins) = post_coins(m, slot);
            if wanted.is_empty() || wanted.iter().any(|w| coins.iter().any(|c| c.symbol == w.as_str())) {
                count += 1;
                if skipped < (page - 1) * PAGE {
                    skipped += 1;
                } else if results.len() < PAGE {
                    results.push(post(ctx, slot, h, &coins));
                }
            }
        }
        slot -= 1;
    }
    let mut next = Value::Null;
    if count as usize > page * PAGE {
        next = Value::from(format!(
            "https://cryptopanic.com/api/v1/posts/?currencies={}&page={}",
            wanted.join(","),
            page + 1
        ));
    }
    Reply::ok(&json!({"count": count, "next": next, "previous": null, "results": results}))
}

/// The hash of a slot's post and the coins it is about (the first is its lead).
fn post_coins(m: &Market, slot: i64) -> (u64, Vec<&'static Coin>) {
    let h = hash(&[m.seed, key("post"), slot as u64]);
    let n_coins = 1 + (h >> 8) % 2;
    let mut coins: Vec<&'static Coin> = Vec::with_capacity(2);
    for i in 0..n_coins {
        // Bitcoin and ether dominate the news flow.
        let r = unit(&[h, i]);
        let c = if r < 0.4 {
            &COINS[0]
        } else if r < 0.6 {
            &COINS[1]
        } else {
            &COINS[(hash(&[h, i, 1]) % COINS.len() as u64) as usize]
        };
        if !coins.iter().any(|x| x.id == c.id) {
            coins.push(c);
        }
    }
    (h, coins)
}

/// The post of a slot, of hash `h` about `coins` (from [`post_coins`]).
fn post(ctx: &Ctx, slot: i64, h: u64, coins: &[&'static Coin]) -> Value {
    let m = &ctx.market;
    // Published a few minutes into the slot.
    let published = slot * SLOT + (h % 1_500) as i64;
    let published = published.min(ctx.now_s());
    let lead = coins[0];
    let (source, domain) = SOURCES[(h >> 16) as usize % SOURCES.len()];
    let tpl = TEMPLATES[(h >> 24) as usize % TEMPLATES.len()];
    let price = m.coin_usd(lead, published);
    let mag = 10f64.powi(price.log10().floor() as i32 - 1).max(0.0001);
    let level = (price / mag).round() * mag;
    let level = if level >= 1.0 { format!("{}", level as u64) } else { format!("{level}") };
    let mood = if (h >> 32).is_multiple_of(2) { "positive" } else { "negative" };
    let title = tpl
        .replace("{name}", lead.name)
        .replace("{code}", lead.symbol)
        .replace("{level}", &level)
        .replace("{mood}", mood);
    let slug: String = title
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect::<String>()
        .split('-')
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join("-");
    let id = 20_000_000 + slot.rem_euclid(10_000_000);
    let vote = |salt: u64, max: u64| hash(&[h, salt]) % max;
    json!({
        "kind": "news",
        "domain": domain,
        "source": {"title": source, "region": "en", "domain": domain, "path": null},
        "title": title,
        "published_at": iso_s(published),
        "slug": slug,
        "id": id,
        "url": format!("https://cryptopanic.com/news/{id}/{slug}"),
        "created_at": iso_s(published),
        "currencies": coins.iter().map(|c| json!({
            "code": c.symbol,
            "title": c.name,
            "slug": c.id,
            "url": format!("https://cryptopanic.com/news/{}/", c.id),
        })).collect::<Vec<_>>(),
        "votes": {
            "negative": vote(1, 6), "positive": vote(2, 20), "important": vote(3, 8),
            "liked": vote(4, 10), "disliked": vote(5, 4), "lol": vote(6, 3),
            "toxic": vote(7, 2), "saved": vote(8, 5), "comments": vote(9, 4),
        },
    })
}
