#![deny(warnings)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use syntra_cache::{cached, Cache};

struct Service {
    cache: Cache,
    shared: Arc<Cache>,
    calls: AtomicUsize,
}

impl Service {
    #[cached(ttl = 60, key = "svc:owned:<id>", cache = self.cache)]
    async fn owned(&self, id: u64) -> Result<u64, String> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        Ok(id)
    }

    #[cached(ttl = 60, cache = self.shared)]
    async fn shared(&self, id: u64) -> Result<u64, String> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        Ok(id)
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let service = Service {
        cache: Cache::memory(),
        shared: Arc::new(Cache::memory()),
        calls: AtomicUsize::new(0),
    };
    assert_eq!(service.owned(1).await, Ok(1));
    assert_eq!(service.owned(1).await, Ok(1));
    assert_eq!(service.shared(1).await, Ok(1));
    assert_eq!(service.shared(1).await, Ok(1));
    assert_eq!(service.calls.load(Ordering::SeqCst), 2);
}
