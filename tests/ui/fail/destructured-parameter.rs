use syntra_cache::cached;

#[cached(ttl = 60, key = "math:add")]
async fn add((a, b): (u32, u32)) -> Result<u32, String> {
    Ok(a + b)
}

fn main() {}
