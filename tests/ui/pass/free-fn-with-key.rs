#![deny(warnings)]

use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicUsize, Ordering};
use syntra_cache::cached;

static CALLS: AtomicUsize = AtomicUsize::new(0);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Price {
    usd: u64,
}

#[derive(Debug)]
struct ApiError;

#[cached(ttl = 90, key = "coingecko:price:<id>_<vs>")]
async fn price(id: &str, vs: &str) -> Result<Price, ApiError> {
    CALLS.fetch_add(1, Ordering::SeqCst);
    Ok(Price {
        usd: (id.len() + vs.len()) as u64,
    })
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    assert_eq!(price("bitcoin", "usd").await.unwrap(), Price { usd: 10 });
    assert_eq!(price("bitcoin", "usd").await.unwrap(), Price { usd: 10 });
    assert_eq!(price("bitcoin", "eur").await.unwrap(), Price { usd: 10 });
    assert_eq!(CALLS.load(Ordering::SeqCst), 2);
}
