#![deny(warnings)]

use std::sync::atomic::{AtomicUsize, Ordering};
use syntra_cache::cached;

static CALLS: AtomicUsize = AtomicUsize::new(0);

#[cached(ttl = "10m", none_ttl = 30, key = "users:email:<id>")]
async fn email(id: u64) -> Option<String> {
    CALLS.fetch_add(1, Ordering::SeqCst);
    (id == 1).then(|| "a@example.com".to_owned())
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    assert_eq!(email(1).await.as_deref(), Some("a@example.com"));
    assert_eq!(email(1).await.as_deref(), Some("a@example.com"));
    assert_eq!(email(2).await, None);
    assert_eq!(email(2).await, None);
    assert_eq!(CALLS.load(Ordering::SeqCst), 2);
}
