use syntra_cache::cached;

#[cached(ttl = 90, fallback = backup(id))]
async fn price(id: u32) -> Result<f64, String> {
    Ok(f64::from(id))
}

async fn backup(id: u32) -> Result<u32, String> {
    Ok(id)
}

fn main() {}
