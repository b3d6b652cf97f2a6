use syntra_cache::cached;

#[cached(ttl = 60, refresh = "2m", key = "svc:price:<id>")]
async fn price(id: u64) -> Result<u64, String> {
    Ok(id)
}

fn main() {}
