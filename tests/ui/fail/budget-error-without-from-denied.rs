use syntra_cache::cached;

#[derive(Debug)]
struct ApiError;

#[cached(ttl = 60, key = "coingecko:price:<id>", budget = "coingecko")]
async fn price(id: u32) -> Result<u32, ApiError> {
    Ok(id)
}

fn main() {}
