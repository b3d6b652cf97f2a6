use syntra_cache::cached;

#[cached(ttl = 60, key = "coingecko:price:<id>", budget = "Coin Gecko")]
async fn price(id: u32) -> Result<u32, String> {
    Ok(id)
}

fn main() {}
