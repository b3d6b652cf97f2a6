//! The simulated market: a fixed catalogue of assets and seeded, deterministic price paths.
//!
//! A price is a pure function of `(seed, asset, unix second)`: the log-price is a sum of
//! value-noise octaves (periods from 20 s to 30 days), which behaves like a bounded random
//! walk and can be evaluated at any instant in O(1), past or future. Same seed, same second,
//! same price: repeated calls are reproducible.

/// A coin known to the simulated CoinGecko / CoinMarketCap / Binance.
#[derive(Debug, Clone, Copy)]
pub struct Coin {
    /// CoinGecko id (`bitcoin`).
    pub id: &'static str,
    /// Ticker (`BTC`).
    pub symbol: &'static str,
    pub name: &'static str,
    /// Price in USD around which the path moves.
    pub base_usd: f64,
    /// Volatility multiplier (1.0 = bitcoin-like, ~0 = stablecoin).
    pub vol: f64,
    pub circulating: f64,
    pub max_supply: Option<f64>,
    pub rank: u32,
    /// CoinMarketCap id.
    pub cmc_id: u32,
    /// Typical 24 h volume in USD.
    pub volume_usd: f64,
    /// Typical futures open interest, in base units (0 = no perpetual on Binance).
    pub open_interest: f64,
    pub genesis: Option<&'static str>,
    pub hashing: Option<&'static str>,
    pub categories: &'static [&'static str],
    pub homepage: &'static str,
    pub twitter: &'static str,
    pub subreddit: &'static str,
    pub github: &'static str,
    pub description: &'static str,
    /// Image id on CoinGecko's CDN.
    pub image_id: u32,
}

macro_rules! coin {
    ($id:expr, $sym:expr, $name:expr, $base:expr, $vol:expr, $circ:expr, $max:expr, $rank:expr,
     $cmc:expr, $volume:expr, $oi:expr, $gen:expr, $hash:expr, $cats:expr, $home:expr,
     $tw:expr, $sub:expr, $gh:expr, $img:expr, $desc:expr) => {
        Coin {
            id: $id,
            symbol: $sym,
            name: $name,
            base_usd: $base,
            vol: $vol,
            circulating: $circ,
            max_supply: $max,
            rank: $rank,
            cmc_id: $cmc,
            volume_usd: $volume,
            open_interest: $oi,
            genesis: $gen,
            hashing: $hash,
            categories: $cats,
            homepage: $home,
            twitter: $tw,
            subreddit: $sub,
            github: $gh,
            image_id: $img,
            description: $desc,
        }
    };
}

/// The coins every simulated provider knows, by market-cap rank.
#[rustfmt::skip]
pub const COINS: &[Coin] = &[
    coin!("bitcoin", "BTC", "Bitcoin", 67_000.0, 1.0, 19_790_000.0, Some(21_000_000.0), 1, 1,
        28.0e9, 82_000.0, Some("2009-01-03"), Some("SHA-256"),
        &["Cryptocurrency", "Layer 1 (L1)", "Proof of Work (PoW)"],
        "http://www.bitcoin.org", "bitcoin", "https://www.reddit.com/r/Bitcoin/",
        "https://github.com/bitcoin/bitcoin", 1,
        "Bitcoin is the first successful internet money based on peer-to-peer technology; whereby no central bank or authority is involved in the transaction and production of the Bitcoin currency."),
    coin!("ethereum", "ETH", "Ethereum", 3_500.0, 1.2, 120_300_000.0, None, 2, 1027,
        15.0e9, 2_100_000.0, Some("2015-07-30"), Some("Ethash"),
        &["Smart Contract Platform", "Layer 1 (L1)", "Ethereum Ecosystem"],
        "https://www.ethereum.org/", "ethereum", "https://www.reddit.com/r/ethereum",
        "https://github.com/ethereum/go-ethereum", 279,
        "Ethereum is a global, open-source platform for decentralized applications. On Ethereum, you can write code that controls digital value, runs exactly as programmed, and is accessible anywhere in the world."),
    coin!("tether", "USDT", "Tether", 1.0, 0.003, 112_000_000_000.0, None, 3, 825,
        45.0e9, 0.0, None, None, &["Stablecoins", "USD Stablecoin"],
        "https://tether.to/", "Tether_to", "", "", 325,
        "Tether (USDT) is a cryptocurrency with a value meant to mirror the value of the U.S. dollar."),
    coin!("binancecoin", "BNB", "BNB", 600.0, 0.9, 145_900_000.0, Some(200_000_000.0), 4, 1839,
        1.6e9, 620_000.0, Some("2017-07-08"), None,
        &["Smart Contract Platform", "Exchange-based Tokens", "BNB Chain Ecosystem"],
        "https://www.bnbchain.org/", "bnbchain", "https://www.reddit.com/r/bnbchainofficial",
        "https://github.com/bnb-chain/bsc", 825,
        "BNB is the native token of BNB Chain and powers the Binance ecosystem."),
    coin!("solana", "SOL", "Solana", 150.0, 1.8, 465_000_000.0, None, 5, 5426,
        2.9e9, 9_400_000.0, Some("2020-03-16"), None,
        &["Smart Contract Platform", "Layer 1 (L1)", "Solana Ecosystem"],
        "https://solana.com/", "solana", "https://www.reddit.com/r/solana",
        "https://github.com/solana-labs/solana", 4128,
        "Solana is a Layer 1 blockchain that offers users fast speeds and affordable costs."),
    coin!("usd-coin", "USDC", "USDC", 1.0, 0.002, 34_000_000_000.0, None, 6, 3408,
        6.0e9, 0.0, None, None, &["Stablecoins", "USD Stablecoin"],
        "https://www.circle.com/en/usdc", "circle", "", "", 6319,
        "USDC is a fully collateralized US dollar stablecoin issued by Circle."),
    coin!("ripple", "XRP", "XRP", 0.55, 1.4, 55_600_000_000.0, Some(100_000_000_000.0), 7, 52,
        1.3e9, 510_000_000.0, Some("2012-06-02"), None, &["Payment Solutions", "Layer 1 (L1)"],
        "https://xrpl.org/", "Ripple", "https://www.reddit.com/r/Ripple",
        "https://github.com/ripple/rippled", 44,
        "XRP is the native currency of the XRP Ledger, an open-source blockchain built for payments."),
    coin!("dogecoin", "DOGE", "Dogecoin", 0.15, 2.0, 145_000_000_000.0, None, 8, 74,
        1.1e9, 3_900_000_000.0, Some("2013-12-08"), Some("Scrypt"), &["Meme", "Proof of Work (PoW)"],
        "http://dogecoin.com/", "dogecoin", "https://www.reddit.com/r/dogecoin/",
        "https://github.com/dogecoin/dogecoin", 5,
        "Dogecoin is a cryptocurrency based on the popular \"Doge\" Internet meme and features a Shiba Inu on its logo."),
    coin!("cardano", "ADA", "Cardano", 0.45, 1.5, 35_300_000_000.0, Some(45_000_000_000.0), 9, 2010,
        0.45e9, 510_000_000.0, Some("2017-09-29"), Some("Ouroboros"),
        &["Smart Contract Platform", "Layer 1 (L1)"],
        "https://cardano.org/", "Cardano", "https://www.reddit.com/r/cardano",
        "https://github.com/input-output-hk/cardano-node", 975,
        "Cardano is a proof-of-stake blockchain platform that says its goal is to allow changemakers, innovators and visionaries to bring about positive global change."),
    coin!("chainlink", "LINK", "Chainlink", 15.0, 1.6, 587_000_000.0, Some(1_000_000_000.0), 15, 1975,
        0.4e9, 21_000_000.0, Some("2017-09-19"), None, &["Oracle", "Ethereum Ecosystem"],
        "https://chain.link/", "chainlink", "https://www.reddit.com/r/Chainlink/",
        "https://github.com/smartcontractkit/chainlink", 877,
        "Chainlink is a decentralized oracle network that connects smart contracts with real-world data."),
    coin!("pepe", "PEPE", "Pepe", 0.000_009_5, 2.8, 420_690_000_000_000.0, Some(420_690_000_000_000.0), 25, 24478,
        0.9e9, 3.1e12, Some("2023-04-14"), None, &["Meme", "Ethereum Ecosystem"],
        "https://www.pepe.vip/", "pepecoineth", "", "", 29850,
        "PEPE is a deflationary memecoin launched on Ethereum."),
];

/// Looks a coin up by CoinGecko id.
pub fn coin_by_id(id: &str) -> Option<&'static Coin> {
    COINS.iter().find(|c| c.id == id)
}

/// Looks a coin up by ticker, case-insensitively.
pub fn coin_by_symbol(symbol: &str) -> Option<&'static Coin> {
    COINS.iter().find(|c| c.symbol.eq_ignore_ascii_case(symbol))
}

/// A Binance trading pair: `base` priced in `quote`.
#[derive(Debug, Clone, Copy)]
pub struct Symbol {
    pub symbol: &'static str,
    pub base: &'static str,
    pub quote: &'static str,
    /// Also listed on USDⓈ-M futures.
    pub futures: bool,
}

/// The symbols the simulated Binance lists.
#[rustfmt::skip]
pub const BINANCE_SYMBOLS: &[Symbol] = &[
    Symbol { symbol: "BTCUSDT", base: "bitcoin", quote: "tether", futures: true },
    Symbol { symbol: "ETHUSDT", base: "ethereum", quote: "tether", futures: true },
    Symbol { symbol: "BNBUSDT", base: "binancecoin", quote: "tether", futures: true },
    Symbol { symbol: "SOLUSDT", base: "solana", quote: "tether", futures: true },
    Symbol { symbol: "XRPUSDT", base: "ripple", quote: "tether", futures: true },
    Symbol { symbol: "DOGEUSDT", base: "dogecoin", quote: "tether", futures: true },
    Symbol { symbol: "ADAUSDT", base: "cardano", quote: "tether", futures: true },
    Symbol { symbol: "LINKUSDT", base: "chainlink", quote: "tether", futures: true },
    Symbol { symbol: "PEPEUSDT", base: "pepe", quote: "tether", futures: false },
    Symbol { symbol: "USDCUSDT", base: "usd-coin", quote: "tether", futures: true },
    Symbol { symbol: "ETHBTC", base: "ethereum", quote: "bitcoin", futures: false },
];

/// Looks a Binance symbol up (exact, upper case as Binance requires).
pub fn binance_symbol(symbol: &str) -> Option<&'static Symbol> {
    BINANCE_SYMBOLS.iter().find(|s| s.symbol == symbol)
}

/// A token traded on DEXes, as DexScreener sees it.
#[derive(Debug, Clone, Copy)]
pub struct DexToken {
    pub chain: &'static str,
    pub address: &'static str,
    pub name: &'static str,
    pub symbol: &'static str,
    /// CoinGecko id whose price this token tracks, if any.
    pub tracks: Option<&'static str>,
    /// Own price path when `tracks` is `None`.
    pub base_usd: f64,
    pub vol: f64,
    /// Extra search words.
    pub keywords: &'static [&'static str],
    /// `(dex_id, quote token address, liquidity in USD)` for each pool of this token.
    pub pools: &'static [(&'static str, &'static str, f64)],
}

const WSOL: &str = "So11111111111111111111111111111111111111112";
const USDC_SOL: &str = "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v";
const WETH: &str = "0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2";
const USDC_ETH: &str = "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48";
const WBNB: &str = "0xbb4CdB9CBd36B01bD1cBaEBF2De08d9173bc095c";
const USDT_BSC: &str = "0x55d398326f99059fF775485246999027B3197955";

/// The tokens the simulated DexScreener knows.
#[rustfmt::skip]
pub const DEX_TOKENS: &[DexToken] = &[
    DexToken { chain: "solana", address: WSOL, name: "Wrapped SOL", symbol: "SOL", tracks: Some("solana"),
        base_usd: 0.0, vol: 0.0, keywords: &["solana"],
        pools: &[("raydium", USDC_SOL, 18.0e6), ("orca", USDC_SOL, 32.0e6), ("meteora", USDC_SOL, 6.5e6)] },
    DexToken { chain: "solana", address: USDC_SOL, name: "USD Coin", symbol: "USDC", tracks: Some("usd-coin"),
        base_usd: 0.0, vol: 0.0, keywords: &["usdc"], pools: &[("raydium", WSOL, 9.0e6)] },
    DexToken { chain: "solana", address: "DezXAZ8z7PnrnRJjz3wXBoRgixCa6xjnB7YaB1pPB263", name: "Bonk", symbol: "Bonk",
        tracks: None, base_usd: 0.000_025, vol: 3.0, keywords: &["bonk", "meme"],
        pools: &[("raydium", WSOL, 4.2e6), ("orca", WSOL, 1.3e6)] },
    DexToken { chain: "solana", address: "EKpQGSJtjMFqKZ9KQanSqYXRcF8fBopzLHYxdM65zcjm", name: "dogwifhat", symbol: "$WIF",
        tracks: None, base_usd: 2.5, vol: 3.0, keywords: &["wif", "meme"],
        pools: &[("raydium", WSOL, 7.9e6), ("orca", USDC_SOL, 1.1e6)] },
    DexToken { chain: "solana", address: "JUPyiwrYJFskUPiHa7hkeR8VUtAeFoSYbKedZNsDvCN", name: "Jupiter", symbol: "JUP",
        tracks: None, base_usd: 0.9, vol: 2.2, keywords: &["jupiter"],
        pools: &[("meteora", USDC_SOL, 2.4e6), ("raydium", WSOL, 3.3e6)] },
    DexToken { chain: "ethereum", address: WETH, name: "Wrapped Ether", symbol: "WETH", tracks: Some("ethereum"),
        base_usd: 0.0, vol: 0.0, keywords: &["ethereum", "eth"],
        pools: &[("uniswap", USDC_ETH, 95.0e6), ("curve", USDC_ETH, 12.0e6)] },
    DexToken { chain: "ethereum", address: "0x2260FAC5E5542a773Aa44fBCfeDf7C193bc2C599", name: "Wrapped BTC", symbol: "WBTC",
        tracks: Some("bitcoin"), base_usd: 0.0, vol: 0.0, keywords: &["bitcoin", "btc"],
        pools: &[("uniswap", WETH, 160.0e6), ("uniswap", USDC_ETH, 24.0e6)] },
    DexToken { chain: "ethereum", address: "0x6982508145454Ce325dDbF47a25d4ec3d2311933", name: "Pepe", symbol: "PEPE",
        tracks: Some("pepe"), base_usd: 0.0, vol: 0.0, keywords: &["meme"],
        pools: &[("uniswap", WETH, 38.0e6)] },
    DexToken { chain: "ethereum", address: "0x514910771AF9Ca656af840dff83E8264EcF986CA", name: "ChainLink Token", symbol: "LINK",
        tracks: Some("chainlink"), base_usd: 0.0, vol: 0.0, keywords: &["chainlink"],
        pools: &[("uniswap", WETH, 21.0e6)] },
    DexToken { chain: "bsc", address: WBNB, name: "Wrapped BNB", symbol: "WBNB", tracks: Some("binancecoin"),
        base_usd: 0.0, vol: 0.0, keywords: &["bnb", "binance"],
        pools: &[("pancakeswap", USDT_BSC, 41.0e6)] },
    DexToken { chain: "bsc", address: "0x7130d2A12B9BCbFAe4f2634d864A1Ee1Ce3Ead9c", name: "BTCB Token", symbol: "BTCB",
        tracks: Some("bitcoin"), base_usd: 0.0, vol: 0.0, keywords: &["bitcoin", "btc"],
        pools: &[("pancakeswap", WBNB, 35.0e6), ("pancakeswap", USDT_BSC, 19.0e6)] },
];

/// Quote-side tokens that appear in pools but have no pools of their own here.
pub const DEX_QUOTES: &[(&str, &str, &str, &str, &str)] = &[
    // (chain, address, name, symbol, coingecko id)
    ("ethereum", USDC_ETH, "USD Coin", "USDC", "usd-coin"),
    ("bsc", USDT_BSC, "Tether USD", "USDT", "tether"),
];

/// Looks a DEX token up (EVM addresses compare case-insensitively, Solana ones exactly).
pub fn dex_token(chain: &str, address: &str) -> Option<&'static DexToken> {
    DEX_TOKENS.iter().find(|t| t.chain == chain && same_address(t.address, address))
}

pub(crate) fn same_address(a: &str, b: &str) -> bool {
    if a.starts_with("0x") {
        a.eq_ignore_ascii_case(b)
    } else {
        a == b
    }
}

/// Fiat / crypto units CoinGecko accepts as `vs_currency`.
pub const VS_CURRENCIES: &[&str] = &["usd", "eur", "gbp", "jpy", "btc", "eth"];

// ---------------------------------------------------------------------------------------------
// Deterministic noise
// ---------------------------------------------------------------------------------------------

pub(crate) fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// FNV-1a of a string, for use as a noise key.
pub(crate) fn key(s: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

pub(crate) fn hash(parts: &[u64]) -> u64 {
    parts.iter().fold(0x51_7cc1_b727_220a, |acc, &p| splitmix(acc ^ p))
}

/// Uniform in `[0, 1)`.
pub(crate) fn unit(parts: &[u64]) -> f64 {
    (hash(parts) >> 11) as f64 / (1u64 << 53) as f64
}

/// Value noise in `[-1, 1]`, smooth in `x`.
fn value_noise(seed: u64, k: u64, octave: u64, x: f64) -> f64 {
    let i = x.floor();
    let f = x - i;
    let s = f * f * (3.0 - 2.0 * f);
    let a = unit(&[seed, k, octave, i as i64 as u64]) * 2.0 - 1.0;
    let b = unit(&[seed, k, octave, (i as i64 + 1) as u64]) * 2.0 - 1.0;
    a + (b - a) * s
}

/// (period in seconds, amplitude of the log-price) for each octave.
const OCTAVES: [(f64, f64); 8] = [
    (20.0, 0.0002),
    (120.0, 0.0005),
    (900.0, 0.0012),
    (3_600.0, 0.0025),
    (14_400.0, 0.005),
    (86_400.0, 0.014),
    (604_800.0, 0.040),
    (2_592_000.0, 0.090),
];

/// The market: seeded price paths.
#[derive(Debug, Clone, Copy)]
pub struct Market {
    pub seed: u64,
}

impl Market {
    /// Sum of octaves for `k` at unix second `t`: within `[-0.153, 0.153]`.
    pub fn walk(&self, k: u64, t: i64) -> f64 {
        let t = t as f64;
        OCTAVES.iter().enumerate().map(|(o, (period, amp))| amp * value_noise(self.seed, k, o as u64, t / period)).sum()
    }

    /// A smooth factor in `[1 - spread, 1 + spread]` for miscellaneous series (volumes, OI).
    pub fn wobble(&self, name: &str, t: i64, period: f64, spread: f64) -> f64 {
        1.0 + spread * value_noise(self.seed, key(name), 99, t as f64 / period)
    }

    /// Coin price in USD at unix second `t`.
    pub fn coin_usd(&self, coin: &Coin, t: i64) -> f64 {
        // Stablecoins hug the peg and are independent of the path scale.
        coin.base_usd * (coin.vol * 2.5 * self.walk(key(coin.id), t)).exp()
    }

    /// Units of `vs` per 1 USD.
    pub fn usd_in(&self, vs: &str, t: i64) -> Option<f64> {
        let v = match vs {
            "usd" => 1.0,
            "eur" => 0.92 * (0.5 * self.walk(key("fx:eur"), t)).exp(),
            "gbp" => 0.79 * (0.5 * self.walk(key("fx:gbp"), t)).exp(),
            "jpy" => 150.0 * (0.5 * self.walk(key("fx:jpy"), t)).exp(),
            "btc" => 1.0 / self.coin_usd(coin_by_id("bitcoin")?, t),
            "eth" => 1.0 / self.coin_usd(coin_by_id("ethereum")?, t),
            _ => return None,
        };
        Some(v)
    }

    /// Coin price in `vs` at unix second `t`.
    pub fn coin_in(&self, coin: &Coin, vs: &str, t: i64) -> Option<f64> {
        Some(self.coin_usd(coin, t) * self.usd_in(vs, t)?)
    }

    /// 24 h volume in USD.
    pub fn volume_usd(&self, coin: &Coin, t: i64) -> f64 {
        coin.volume_usd * self.wobble(coin.id, t, 7_200.0, 0.35)
    }

    /// Binance last price of `sym` (quote units) at `t`.
    pub fn binance_price(&self, sym: &Symbol, t: i64) -> f64 {
        let base = coin_by_id(sym.base).expect("catalogue");
        let quote = coin_by_id(sym.quote).expect("catalogue");
        // A tiny exchange-specific basis so Binance is not bit-identical to CoinGecko.
        let basis = 1.0 + 0.0004 * value_noise(self.seed, key(sym.symbol), 7, t as f64 / 45.0);
        self.coin_usd(base, t) / self.coin_usd(quote, t) * basis
    }

    /// USD price of a DEX token at `t`.
    pub fn dex_usd(&self, token: &DexToken, t: i64) -> f64 {
        if let Some(coin) = token.tracks.and_then(coin_by_id) {
            let basis = 1.0 + 0.001 * value_noise(self.seed, key(token.address), 7, t as f64 / 30.0);
            self.coin_usd(coin, t) * basis
        } else {
            token.base_usd * (token.vol * 2.5 * self.walk(key(token.address), t)).exp()
        }
    }

    /// USD price of any address that appears on a DEX (token or quote token).
    pub fn dex_address_usd(&self, chain: &str, address: &str, t: i64) -> Option<f64> {
        if let Some(tok) = dex_token(chain, address) {
            return Some(self.dex_usd(tok, t));
        }
        DEX_QUOTES
            .iter()
            .find(|q| q.0 == chain && same_address(q.1, address))
            .and_then(|q| coin_by_id(q.4))
            .map(|c| self.coin_usd(c, t))
    }
}

/// Rounds to `sig` significant digits.
pub fn round_sig(x: f64, sig: i32) -> f64 {
    if x == 0.0 || !x.is_finite() {
        return x;
    }
    let d = sig - 1 - x.abs().log10().floor() as i32;
    if d >= 0 {
        let m = 10f64.powi(d);
        (x * m).round() / m
    } else {
        let m = 10f64.powi(-d);
        (x / m).round() * m
    }
}

/// Rounds to `dp` decimal places.
pub fn round_dp(x: f64, dp: i32) -> f64 {
    let m = 10f64.powi(dp);
    (x * m).round() / m
}
