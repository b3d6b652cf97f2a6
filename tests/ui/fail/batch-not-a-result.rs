use std::collections::HashMap;
use syntra_cache::cached;

#[cached(ttl = 90, key = "cg:price:<ids>", batch = ids)]
async fn prices(ids: &[String]) -> HashMap<String, f64> {
    ids.iter().map(|id| (id.clone(), 1.0)).collect()
}

fn main() {}
