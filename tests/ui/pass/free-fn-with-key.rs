#![deny(warnings)]

use serde::{Deserialize, Serialize};
use syntra_cache::cached;

#[derive(Clone, Serialize, Deserialize)]
pub struct Price {
    pub usd: f64,
}

#[derive(Debug)]
pub struct ApiError;

#[cached(ttl = 90, key = "coingecko:price:<id>_<vs>")]
async fn price(id: &str, vs: &str) -> Result<Price, ApiError> {
    let _ = (id, vs);
    Ok(Price { usd: 1.0 })
}

fn main() {
    let _ = price("bitcoin", "usd");
}
