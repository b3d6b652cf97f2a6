#![deny(warnings)]

use std::sync::atomic::{AtomicUsize, Ordering};
use syntra_cache::cached;

trait Repo {
    async fn find(&self, id: u64) -> Option<String>;
    async fn count(&self) -> Result<u64, String>;
    fn name(&self) -> &'static str;
}

struct Db {
    calls: AtomicUsize,
}

#[cached(prefix = "db", ttl = "1m")]
impl Repo for Db {
    #[cached(none_ttl = 5)]
    async fn find(&self, id: u64) -> Option<String> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        Some(format!("row {id}"))
    }

    #[cached(ttl = 30)]
    async fn count(&self) -> Result<u64, String> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        Ok(7)
    }

    fn name(&self) -> &'static str {
        "db"
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let db = Db { calls: AtomicUsize::new(0) };
    assert_eq!(db.find(1).await.as_deref(), Some("row 1"));
    assert_eq!(db.find(1).await.as_deref(), Some("row 1"));
    assert_eq!(db.count().await, Ok(7));
    assert_eq!(db.count().await, Ok(7));
    assert_eq!(db.name(), "db");
    assert_eq!(db.calls.load(Ordering::SeqCst), 2);
}
