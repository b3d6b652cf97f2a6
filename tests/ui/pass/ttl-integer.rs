#![deny(warnings)]

use syntra_cache::cached;

#[cached(ttl = 3600, key = "rates:usd")]
async fn usd_rate() -> Result<u64, String> {
    Ok(1)
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    assert_eq!(usd_rate().await, Ok(1));
}
