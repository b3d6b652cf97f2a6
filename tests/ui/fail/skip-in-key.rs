use syntra_cache::cached;

#[cached(ttl = 60, key = "users:name:<id>", skip(id))]
async fn name(id: u64) -> Result<String, String> {
    Ok(id.to_string())
}

fn main() {}
