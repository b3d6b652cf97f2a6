use syntra_cache::cached;

#[cached(ttl = 90, key = "cg:price:<id>", max_batch = 250)]
async fn price(id: &str) -> Result<f64, String> {
    Ok(id.len() as f64)
}

fn main() {}
