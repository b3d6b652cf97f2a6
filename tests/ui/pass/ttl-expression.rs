#![deny(warnings)]

use serde::Serialize;
use syntra_cache::cached;

#[derive(Clone, Copy, Serialize)]
enum Interval {
    Minute,
    Day,
}

impl Interval {
    fn ttl_secs(self) -> u64 {
        match self {
            Interval::Minute => 30,
            Interval::Day => 3600,
        }
    }
}

#[cached(ttl = interval.ttl_secs(), key = "market:candles:<symbol>_<interval>")]
async fn candles(symbol: String, interval: Interval) -> Result<Vec<u64>, String> {
    Ok(vec![symbol.len() as u64, interval.ttl_secs()])
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    assert_eq!(
        candles("BTC".into(), Interval::Minute).await,
        Ok(vec![3, 30])
    );
    assert_eq!(
        candles("BTC".into(), Interval::Day).await,
        Ok(vec![3, 3600])
    );
}
