#![deny(warnings)]

use std::sync::atomic::{AtomicUsize, Ordering};
use syntra_cache::cached;

static CALLS: AtomicUsize = AtomicUsize::new(0);

struct TraceId(#[allow(dead_code)] u64);

#[cached(ttl = 60, key = "users:name:<id>", skip(trace))]
async fn name(id: u64, trace: TraceId) -> Result<String, String> {
    let _ = trace;
    CALLS.fetch_add(1, Ordering::SeqCst);
    Ok(format!("user {id}"))
}

#[cached(ttl = 60, skip(trace))]
async fn hashed(id: u64, trace: TraceId) -> Result<String, String> {
    let _ = trace;
    CALLS.fetch_add(1, Ordering::SeqCst);
    Ok(format!("user {id}"))
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    assert_eq!(name(1, TraceId(1)).await.as_deref(), Ok("user 1"));
    assert_eq!(name(1, TraceId(2)).await.as_deref(), Ok("user 1"));
    assert_eq!(hashed(1, TraceId(1)).await.as_deref(), Ok("user 1"));
    assert_eq!(hashed(1, TraceId(2)).await.as_deref(), Ok("user 1"));
    assert_eq!(CALLS.load(Ordering::SeqCst), 2);
}
