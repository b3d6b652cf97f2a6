#![deny(warnings)]

use std::sync::atomic::{AtomicUsize, Ordering};
use syntra_cache::cached;

struct Client {
    calls: AtomicUsize,
    base: u64,
}

impl Client {
    #[cached(ttl = 60)]
    async fn get(&self, id: u64) -> Result<u64, String> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        Ok(self.base + id)
    }

    #[cached(ttl = 60, key = "client:get_ref:<id>")]
    async fn get_ref<'a>(&'a self, id: &'a str) -> Result<String, String> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        Ok(format!("{}{id}", self.base))
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let client = Client {
        calls: AtomicUsize::new(0),
        base: 100,
    };
    assert_eq!(client.get(1).await, Ok(101));
    assert_eq!(client.get(1).await, Ok(101));
    assert_eq!(client.get_ref("x").await.as_deref(), Ok("100x"));
    assert_eq!(client.get_ref("x").await.as_deref(), Ok("100x"));
    assert_eq!(client.calls.load(Ordering::SeqCst), 2);
}
