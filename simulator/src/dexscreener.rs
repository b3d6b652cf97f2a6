//! DexScreener public API under `/dexscreener`.

use serde_json::{json, Value};

use crate::market::{
    coin_by_id, dex_token, hash, key, round_dp, round_sig, same_address, DexToken, DEX_QUOTES, DEX_TOKENS,
};
use crate::util::{Query, Reply};
use crate::{Ctx, Route};

pub(crate) fn route(rest: &str) -> Route {
    let seg: Vec<&str> = rest.trim_matches('/').split('/').collect();
    match seg.as_slice() {
        ["latest", "dex", "search"] => Route::new("/latest/dex/search"),
        ["latest", "dex", "pairs", _, _] => Route::new("/latest/dex/pairs/{chainId}/{pairId}").items(1),
        ["token-pairs", "v1", _, _] => Route::new("/token-pairs/v1/{chainId}/{tokenAddress}").items(1),
        ["tokens", "v1", _, addresses] => {
            Route::new("/tokens/v1/{chainId}/{tokenAddresses}").items(token_addresses(addresses).len())
        }
        ["token-profiles", "latest", "v1"] => Route::new("/token-profiles/latest/v1").profiles(),
        _ => Route::unknown(rest),
    }
}

/// Most addresses one `/tokens/v1/{chainId}/{tokenAddresses}` call accepts (DexScreener API
/// reference: "One or multiple, comma-separated token addresses (up to 30 addresses)").
pub(crate) const MAX_TOKEN_ADDRESSES: usize = 30;

/// The comma-separated addresses of a `/tokens/v1` path segment.
fn token_addresses(segment: &str) -> Vec<&str> {
    segment.split(',').map(str::trim).filter(|a| !a.is_empty()).collect()
}

pub(crate) fn handle(ctx: &Ctx, rest: &str, q: &Query) -> Reply {
    let seg: Vec<&str> = rest.trim_matches('/').split('/').collect();
    match seg.as_slice() {
        ["latest", "dex", "search"] => {
            let query = q.get("q").unwrap_or("").to_lowercase();
            let pairs: Vec<Value> = if query.is_empty() {
                Vec::new()
            } else {
                all_pairs().into_iter().filter(|p| p.matches(&query)).take(30).map(|p| p.json(ctx)).collect()
            };
            Reply::ok(&json!({"schemaVersion": "1.0.0", "pairs": pairs}))
        }
        ["latest", "dex", "pairs", chain, pair] => {
            let found: Vec<Value> = all_pairs()
                .into_iter()
                .filter(|p| p.base.chain == *chain && same_address(&p.address, pair))
                .map(|p| p.json(ctx))
                .collect();
            let first = found.first().cloned().unwrap_or(Value::Null);
            let pairs = if found.is_empty() { Value::Null } else { Value::Array(found) };
            Reply::ok(&json!({"schemaVersion": "1.0.0", "pairs": pairs, "pair": first}))
        }
        ["token-pairs", "v1", chain, address] => {
            Reply::ok(&Value::Array(pairs_of(chain, &[address]).iter().map(|p| p.json(ctx)).collect()))
        }
        ["tokens", "v1", chain, addresses] => {
            let list = token_addresses(addresses);
            if list.len() > MAX_TOKEN_ADDRESSES {
                // The real API refuses the call rather than answering for the first 30.
                let msg = format!("Too many token addresses: {} (at most {MAX_TOKEN_ADDRESSES})", list.len());
                return Reply::json(400, &json!({"error": msg}));
            }
            Reply::ok(&Value::Array(pairs_of(chain, &list).iter().map(|p| p.json(ctx)).collect()))
        }
        ["token-profiles", "latest", "v1"] => {
            Reply::ok(&Value::Array(DEX_TOKENS.iter().filter(|t| t.tracks.is_none()).map(profile).collect()))
        }
        _ => Reply::json(404, &json!({"error": "Not Found"})),
    }
}

/// A token-side view of an address in a pool: either a known token or a quote-only token.
#[derive(Debug, Clone)]
struct Side {
    chain: &'static str,
    address: &'static str,
    name: &'static str,
    symbol: &'static str,
}

fn side(chain: &'static str, address: &'static str) -> Side {
    if let Some(t) = dex_token(chain, address) {
        return Side { chain, address: t.address, name: t.name, symbol: t.symbol };
    }
    let q = DEX_QUOTES
        .iter()
        .find(|q| q.0 == chain && same_address(q.1, address))
        .expect("pool quote tokens are catalogued");
    Side { chain, address: q.1, name: q.2, symbol: q.3 }
}

#[derive(Debug, Clone)]
struct Pair {
    token: &'static DexToken,
    base: Side,
    quote: Side,
    dex: &'static str,
    liquidity: f64,
    address: String,
}

fn pair_address(chain: &str, base: &str, quote: &str, dex: &str) -> String {
    // Stable across seeds: the catalogue's pools always have the same addresses.
    let mut h = hash(&[key(chain), key(base), key(quote), key(dex)]);
    if chain == "solana" {
        const B58: &[u8] = b"123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
        (0..44)
            .map(|i| {
                if i % 10 == 0 {
                    h = hash(&[h, i]);
                }
                let c = B58[(h % 58) as usize] as char;
                h /= 58;
                c
            })
            .collect()
    } else {
        let mut s = String::from("0x");
        for i in 0..5 {
            s.push_str(&format!("{:08x}", hash(&[h, i]) as u32));
        }
        s
    }
}

fn all_pairs() -> Vec<Pair> {
    let mut v: Vec<Pair> = DEX_TOKENS
        .iter()
        .flat_map(|t| {
            t.pools.iter().map(move |&(dex, quote, liq)| Pair {
                token: t,
                base: side(t.chain, t.address),
                quote: side(t.chain, quote),
                dex,
                liquidity: liq,
                address: pair_address(t.chain, t.address, quote, dex),
            })
        })
        .collect();
    v.sort_by(|a, b| b.liquidity.total_cmp(&a.liquidity));
    v
}

fn pairs_of(chain: &str, addresses: &[&str]) -> Vec<Pair> {
    all_pairs()
        .into_iter()
        .filter(|p| {
            p.base.chain == chain
                && addresses.iter().any(|a| same_address(p.base.address, a) || same_address(p.quote.address, a))
        })
        .collect()
}

fn supply(t: &DexToken) -> (f64, f64) {
    if let Some(c) = t.tracks.and_then(coin_by_id) {
        return (c.circulating, c.max_supply.unwrap_or(c.circulating));
    }
    match t.symbol {
        "Bonk" => (77.0e12, 88.8e12),
        "$WIF" => (998.8e6, 998.8e6),
        "JUP" => (1.35e9, 10.0e9),
        _ => (1.0e9, 1.0e9),
    }
}

impl Pair {
    fn matches(&self, q: &str) -> bool {
        let t = self.token;
        let has = |s: &str| s.to_lowercase().contains(q);
        has(self.base.name)
            || has(self.base.symbol)
            || has(self.quote.symbol)
            || self.base.address.eq_ignore_ascii_case(q)
            || self.address.eq_ignore_ascii_case(q)
            || t.keywords.iter().any(|k| k.contains(q))
    }

    fn json(&self, ctx: &Ctx) -> Value {
        let m = &ctx.market;
        let t = ctx.now_s();
        let usd = m.dex_usd(self.token, t);
        let quote_usd = m.dex_address_usd(self.base.chain, self.quote.address, t).unwrap_or(1.0);
        let ch = |secs: i64| {
            let then = m.dex_usd(self.token, t - secs);
            round_dp((usd / then - 1.0) * 100.0, 2)
        };
        let name = self.address.as_str();
        let vol24 = self.liquidity * 0.9 * m.wobble(name, t, 7_200.0, 0.4);
        let frac = |f: f64, salt: i64| round_dp(vol24 * f * m.wobble(name, t + salt, 600.0, 0.3), 2);
        let tx = |f: f64, salt: i64| {
            let n = (vol24 * f / 1_800.0 * m.wobble(name, t + salt, 300.0, 0.3)).round() as u64;
            let buys = (n as f64 * (0.5 + 0.1 * (m.wobble(name, t + salt + 1, 300.0, 1.0) - 1.0))).round() as u64;
            json!({"buys": buys, "sells": n.saturating_sub(buys)})
        };
        let (circ, total) = supply(self.token);
        let created = 1_600_000_000_000 + (hash(&[key(name)]) % 120_000_000_000) as i64;
        let labels: Vec<&str> = match self.dex {
            "uniswap" => vec!["v3"],
            "pancakeswap" => vec!["v2"],
            "orca" | "meteora" => vec!["DLMM"],
            _ => vec![],
        };
        json!({
            "chainId": self.base.chain,
            "dexId": self.dex,
            "url": format!("https://dexscreener.com/{}/{}", self.base.chain, self.address.to_lowercase()),
            "pairAddress": self.address,
            "labels": labels,
            "baseToken": {"address": self.base.address, "name": self.base.name, "symbol": self.base.symbol},
            "quoteToken": {"address": self.quote.address, "name": self.quote.name, "symbol": self.quote.symbol},
            "priceNative": format!("{}", round_sig(usd / quote_usd, 8)),
            "priceUsd": format!("{}", round_sig(usd, 8)),
            "txns": {"m5": tx(5.0 / 1440.0, 1), "h1": tx(1.0 / 24.0, 2), "h6": tx(0.25, 3), "h24": tx(1.0, 4)},
            "volume": {"h24": round_dp(vol24, 2), "h6": frac(0.25, 5), "h1": frac(1.0 / 24.0, 6), "m5": frac(5.0 / 1440.0, 7)},
            "priceChange": {"m5": ch(300), "h1": ch(3_600), "h6": ch(21_600), "h24": ch(86_400)},
            "liquidity": {
                "usd": round_dp(self.liquidity * m.wobble(name, t, 3_600.0, 0.05), 2),
                "base": round_dp(self.liquidity / 2.0 / usd, 4),
                "quote": round_dp(self.liquidity / 2.0 / quote_usd, 4),
            },
            "fdv": (usd * total).round(),
            "marketCap": (usd * circ).round(),
            "pairCreatedAt": created,
            "info": {
                "imageUrl": format!("https://dd.dexscreener.com/ds-data/tokens/{}/{}.png", self.base.chain, self.base.address.to_lowercase()),
                "websites": [{"label": "Website", "url": format!("https://{}.example", self.base.symbol.trim_start_matches('$').to_lowercase())}],
                "socials": [{"type": "twitter", "url": format!("https://x.com/{}", self.base.symbol.trim_start_matches('$').to_lowercase())}],
            },
        })
    }
}

fn profile(t: &DexToken) -> Value {
    let slug = t.symbol.trim_start_matches('$').to_lowercase();
    json!({
        "url": format!("https://dexscreener.com/{}/{}", t.chain, t.address.to_lowercase()),
        "chainId": t.chain,
        "tokenAddress": t.address,
        "icon": format!("https://dd.dexscreener.com/ds-data/tokens/{}/{}.png", t.chain, t.address.to_lowercase()),
        "header": format!("https://dd.dexscreener.com/ds-data/tokens/{}/{}/header.png", t.chain, t.address.to_lowercase()),
        "description": format!("{} ({}) on {}", t.name, t.symbol, t.chain),
        "links": [
            {"label": "Website", "url": format!("https://{slug}.example")},
            {"type": "twitter", "url": format!("https://x.com/{slug}")},
        ],
    })
}
