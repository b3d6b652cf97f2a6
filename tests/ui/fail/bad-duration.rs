use syntra_cache::cached;

#[cached(ttl = "5 minutes", key = "users:name:<id>")]
async fn name(id: u64) -> Result<String, String> {
    Ok(id.to_string())
}

#[cached(ttl = "5min", key = "users:email:<id>")]
async fn email(id: u64) -> Result<String, String> {
    Ok(id.to_string())
}

fn main() {}
