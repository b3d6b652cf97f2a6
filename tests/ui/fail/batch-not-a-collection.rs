use std::collections::HashMap;
use syntra_cache::cached;

#[cached(ttl = 90, key = "cg:price:<id>", batch = id)]
async fn prices(id: &str) -> Result<HashMap<String, f64>, String> {
    Ok(HashMap::from([(id.to_owned(), 1.0)]))
}

fn main() {}
