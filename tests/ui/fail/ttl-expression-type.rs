use syntra_cache::cached;

#[cached(ttl = ttl, key = "users:name:<id>", skip(ttl))]
async fn name(id: u64, ttl: &str) -> Result<String, String> {
    Ok(id.to_string())
}

fn main() {}
