use syntra_cache::cached;

#[cached(ttl = 60, jitter = 0.9, key = "svc:price:<id>")]
async fn price(id: u64) -> Result<u64, String> {
    Ok(id)
}

#[cached(ttl = 60, jitter = "10%", key = "svc:volume:<id>")]
async fn volume(id: u64) -> Result<u64, String> {
    Ok(id)
}

fn main() {}
