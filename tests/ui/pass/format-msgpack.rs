#![deny(warnings)]

use serde::{Deserialize, Serialize};
use syntra_cache::cached;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Candle {
    open: u64,
    close: u64,
}

#[cached(
    ttl = 60,
    key = "market:candle:<symbol>",
    format = "msgpack",
    version = 2
)]
async fn candle(symbol: &str) -> Result<Candle, String> {
    Ok(Candle {
        open: symbol.len() as u64,
        close: 2,
    })
}

#[cached(ttl = 60, format = "messagepack")]
async fn candle_long_name(symbol: String) -> Result<Candle, String> {
    Ok(Candle {
        open: symbol.len() as u64,
        close: 3,
    })
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    assert_eq!(candle("BTC").await, Ok(Candle { open: 3, close: 2 }));
    assert_eq!(candle("BTC").await, Ok(Candle { open: 3, close: 2 }));
    assert_eq!(
        candle_long_name("ETH".into()).await,
        Ok(Candle { open: 3, close: 3 })
    );
}
