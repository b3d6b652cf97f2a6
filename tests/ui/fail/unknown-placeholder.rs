use syntra_cache::cached;

#[cached(ttl = 60, key = "coingecko:price:<idd>_<vs>")]
async fn price(id: &str, vs: &str) -> Result<u64, String> {
    Ok((id.len() + vs.len()) as u64)
}

fn main() {}
