#![deny(warnings)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use syntra_cache::{cached, Cache};

#[derive(Clone, Copy)]
struct Ttls {
    price: Duration,
    search: Duration,
}

struct Prices {
    cache: Cache,
    ttls: Ttls,
    calls: AtomicUsize,
}

/// Every `#[cached]` method below shares the cache, the key prefix, the TTL table and the jitter.
#[cached(cache = self.cache, prefix = "prices", ttls = self.ttls, jitter = 0.1, ttl = 60)]
impl Prices {
    fn new() -> Self {
        let ttls = Ttls { price: Duration::from_secs(90), search: Duration::from_secs(30) };
        Prices { cache: Cache::memory(), ttls, calls: AtomicUsize::new(0) }
    }

    /// Keyed `prices:price:<id>_<vs>`, for the TTL `price`.
    #[cached(ttl = "price")]
    async fn price(&self, id: &str, vs: &str) -> Result<String, String> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        Ok(format!("{id}/{vs}"))
    }

    /// Its own key (relative to the prefix) and jitter.
    #[cached(ttl = "search", key = "find:<query>", jitter = 0.0)]
    async fn search(&self, query: &str) -> Result<Vec<String>, String> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        Ok(vec![query.to_owned()])
    }

    /// The `impl`'s `ttl`.
    #[cached]
    async fn global(&self) -> u64 {
        self.calls.fetch_add(1, Ordering::SeqCst) as u64
    }

    /// Untouched: not `#[cached]`.
    async fn uncached(&self) -> usize {
        self.calls.fetch_add(1, Ordering::SeqCst)
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let prices = Prices::new();
    assert_eq!(prices.price("btc", "usd").await.as_deref(), Ok("btc/usd"));
    assert_eq!(prices.price("btc", "usd").await.as_deref(), Ok("btc/usd"));
    assert_eq!(prices.search("eth").await, Ok(vec!["eth".to_owned()]));
    assert_eq!(prices.search("eth").await, Ok(vec!["eth".to_owned()]));
    assert_eq!(prices.global().await, prices.global().await);
    assert_eq!(prices.calls.load(Ordering::SeqCst), 3);
    prices.uncached().await;
    prices.uncached().await;
    assert_eq!(prices.calls.load(Ordering::SeqCst), 5);
    let keys = ["prices:price:btc_usd", "prices:find:eth", "prices:global"];
    for key in keys {
        assert!(prices.cache.remove(key).await.unwrap(), "{key} was cached");
    }
}
