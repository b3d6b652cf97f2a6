#![deny(warnings)]

use std::sync::atomic::{AtomicUsize, Ordering};
use syntra_cache::cached;

static CALLS: AtomicUsize = AtomicUsize::new(0);

#[cached(ttl = 60)]
async fn add(a: u32, b: u32) -> Option<u32> {
    CALLS.fetch_add(1, Ordering::SeqCst);
    a.checked_add(b)
}

#[cached(ttl = 60)]
async fn config() -> Option<String> {
    CALLS.fetch_add(1, Ordering::SeqCst);
    Some("on".to_owned())
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    assert_eq!(add(1, 2).await, Some(3));
    assert_eq!(add(1, 2).await, Some(3));
    assert_eq!(add(2, 1).await, Some(3));
    assert_eq!(config().await.as_deref(), Some("on"));
    assert_eq!(config().await.as_deref(), Some("on"));
    assert_eq!(CALLS.load(Ordering::SeqCst), 3);
}
