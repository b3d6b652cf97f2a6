#![deny(warnings)]

mod reexport {
    pub use syntra_cache as cache;
}

use syntra_cache::cached;

#[cached(ttl = 60, key = "misc:double:<n>", crate = "crate::reexport::cache")]
async fn double(n: u64) -> Result<u64, String> {
    Ok(n * 2)
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    assert_eq!(double(2).await, Ok(4));
}
