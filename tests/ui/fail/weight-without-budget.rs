use syntra_cache::cached;

#[cached(ttl = 60, key = "binance:klines:<symbol>", weight = 5)]
async fn klines(symbol: String) -> Result<String, String> {
    Ok(symbol)
}

fn main() {}
