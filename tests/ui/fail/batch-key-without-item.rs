use std::collections::HashMap;
use syntra_cache::cached;

#[cached(ttl = 90, key = "cg:price:<vs>", batch = ids)]
async fn prices(ids: &[String], vs: &str) -> Result<HashMap<String, f64>, String> {
    Ok(ids.iter().map(|id| (id.clone(), vs.len() as f64)).collect())
}

fn main() {}
