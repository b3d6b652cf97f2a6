#![deny(dead_code)]

use syntra_cache::cached;

#[cached(ttl = 60, key = "users:name:<id>")]
async fn unused(id: u64) -> Result<String, String> {
    Ok(id.to_string())
}

fn main() {}
