#![deny(warnings)]

use syntra_cache::cached;

#[cached(ttl = "5m", key = "rates:eur")]
async fn eur_rate() -> Result<u64, String> {
    Ok(1)
}

#[cached(ttl = "1h30m", key = "rates:gbp")]
async fn gbp_rate() -> Result<u64, String> {
    Ok(2)
}

#[cached(ttl = "1500ms", key = "rates:chf")]
async fn chf_rate() -> Result<u64, String> {
    Ok(3)
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    assert_eq!(eur_rate().await, Ok(1));
    assert_eq!(gbp_rate().await, Ok(2));
    assert_eq!(chf_rate().await, Ok(3));
}
