use syntra_cache::cached;

#[cached(ttl = 60, stale = 0, key = "svc:price:<id>")]
async fn price(id: u64) -> Result<u64, String> {
    Ok(id)
}

fn main() {}
