use std::collections::HashMap;
use syntra_cache::cached;

#[cached(ttl = 90, key = "cg:price:<ids>", batch = ids, fallback = backup(ids))]
async fn prices(ids: &[String]) -> Result<HashMap<String, f64>, String> {
    Ok(ids.iter().map(|id| (id.clone(), 1.0)).collect())
}

async fn backup(ids: &[String]) -> Result<HashMap<String, f64>, String> {
    Ok(ids.iter().map(|id| (id.clone(), 2.0)).collect())
}

fn main() {}
