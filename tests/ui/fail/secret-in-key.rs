use syntra_cache::cached;

// An API key written into a readable key template.
#[cached(ttl = 60, key = "cmc:quote:<symbol>_<api_key>")]
async fn quote(symbol: &str, api_key: &str) -> Result<f64, String> {
    let _ = (symbol, api_key);
    Ok(1.0)
}

fn main() {}
