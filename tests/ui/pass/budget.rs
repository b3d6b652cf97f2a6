#![deny(warnings)]

use std::time::Duration;
use syntra_cache::budget::{Budget, Budgets, Denied, RateLimitError};
use syntra_cache::{cached, Cache};

#[derive(Debug, Clone)]
enum ApiError {
    RateLimited(Option<Duration>),
    Budget(Denied),
}

impl From<Denied> for ApiError {
    fn from(d: Denied) -> Self {
        ApiError::Budget(d)
    }
}

impl RateLimitError for ApiError {
    fn rate_limited(&self) -> Option<Option<Duration>> {
        match self {
            ApiError::RateLimited(r) => Some(*r),
            ApiError::Budget(_) => None,
        }
    }
}

struct Binance {
    cache: Cache,
}

impl Binance {
    #[cached(ttl = 60, key = "binance:klines:<symbol>_<limit>", budget = "binance", weight = if limit >= 100 { 2 } else { 1 }, cache = self.cache)]
    async fn klines(&self, symbol: &str, limit: u32) -> Result<Vec<u32>, ApiError> {
        Ok(vec![limit; symbol.len()])
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let budgets = Budgets::new(vec![Budget::new("binance").rate(30, Duration::from_secs(60)).max_wait(Duration::ZERO)]).unwrap();
    // 30/min: a burst of 3 weight, then one per 2.2 s.
    let svc = Binance { cache: Cache::builder().budgets(budgets).build().unwrap() };
    assert!(svc.klines("BTCUSDT", 100).await.is_ok());
    assert!(svc.klines("ETHUSDT", 10).await.is_ok());
    assert!(matches!(svc.klines("SOLUSDT", 10).await, Err(ApiError::Budget(_))));
    assert!(matches!(ApiError::RateLimited(None).rate_limited(), Some(None)));
}
