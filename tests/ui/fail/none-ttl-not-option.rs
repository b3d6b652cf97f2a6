use syntra_cache::cached;

#[cached(ttl = 60, none_ttl = 10, key = "users:name:<id>")]
async fn name(id: u64) -> Result<String, String> {
    Ok(id.to_string())
}

fn main() {}
