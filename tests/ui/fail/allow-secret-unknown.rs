use syntra_cache::cached;

#[cached(ttl = 60, key = "svc:get:<id>", allow_secret(api_key))]
async fn get(id: u64) -> Result<u64, String> {
    Ok(id)
}

fn main() {}
