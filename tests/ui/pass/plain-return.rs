#![deny(warnings)]

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use syntra_cache::cached;

static CALLS: AtomicUsize = AtomicUsize::new(0);

#[cached(ttl = 60, key = "words:count:<text>")]
async fn word_count(text: &str) -> BTreeMap<String, u32> {
    CALLS.fetch_add(1, Ordering::SeqCst);
    let mut counts = BTreeMap::new();
    for word in text.split_whitespace() {
        *counts.entry(word.to_owned()).or_default() += 1;
    }
    if counts.is_empty() {
        return counts;
    }
    counts
}

#[cached(ttl = 60)]
async fn answer() -> u64 {
    42
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    assert_eq!(word_count("a b a").await["a"], 2);
    assert_eq!(word_count("a b a").await["b"], 1);
    assert_eq!(CALLS.load(Ordering::SeqCst), 1);
    assert_eq!(answer().await, 42);
}
