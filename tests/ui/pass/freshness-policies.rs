#![deny(warnings)]

use std::sync::atomic::{AtomicUsize, Ordering};
use syntra_cache::cached;

static CALLS: AtomicUsize = AtomicUsize::new(0);

#[derive(Debug, Clone, PartialEq)]
struct RateLimited;

#[cached(ttl = 90, stale = "10m", refresh = "15s", jitter = 0.1, key = "coingecko:price:<id>")]
async fn price(id: &str) -> Result<u64, RateLimited> {
    CALLS.fetch_add(1, Ordering::SeqCst);
    Ok(id.len() as u64)
}

#[cached(ttl = secs, stale = std::time::Duration::from_secs(60), jitter = fraction, key = "svc:m:<secs>", skip(fraction))]
async fn computed(secs: u64, fraction: f32) -> Result<u64, RateLimited> {
    let _ = fraction;
    Ok(secs)
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    assert_eq!(price("bitcoin").await, Ok(7));
    assert_eq!(price("bitcoin").await, Ok(7));
    assert_eq!(CALLS.load(Ordering::SeqCst), 1);
    assert_eq!(computed(30, 0.2).await, Ok(30));
}
