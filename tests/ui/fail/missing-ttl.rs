use syntra_cache::cached;

#[cached(key = "users:name:<id>")]
async fn name(id: u64) -> Result<String, String> {
    Ok(id.to_string())
}

fn main() {}
