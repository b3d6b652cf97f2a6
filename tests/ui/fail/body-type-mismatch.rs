use syntra_cache::cached;

#[cached(ttl = 60, key = "users:age:<id>")]
async fn age(id: u64) -> Result<u32, String> {
    if id == 0 {
        return Ok("unknown");
    }
    Ok(30)
}

fn main() {}
