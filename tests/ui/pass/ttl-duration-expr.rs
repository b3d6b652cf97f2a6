#![deny(warnings)]

use std::time::Duration;
use syntra_cache::cached;

const TTL: Duration = Duration::from_secs(30);

#[cached(ttl = Duration::from_secs(90), key = "rates:jpy")]
async fn jpy_rate() -> Result<u64, String> {
    Ok(1)
}

#[cached(ttl = TTL, key = "rates:cad")]
async fn cad_rate() -> Result<u64, String> {
    Ok(2)
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    assert_eq!(jpy_rate().await, Ok(1));
    assert_eq!(cad_rate().await, Ok(2));
}
