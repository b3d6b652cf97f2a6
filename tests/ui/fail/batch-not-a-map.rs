use syntra_cache::cached;

#[cached(ttl = 90, key = "cg:price:<ids>", batch = ids)]
async fn prices(ids: &[String]) -> Result<Vec<f64>, String> {
    Ok(ids.iter().map(|_| 1.0).collect())
}

fn main() {}
