#![deny(warnings)]

use syntra_cache::cached;

struct Counter {
    calls: u32,
}

impl Counter {
    #[cached(ttl = 60, key = "counter:next:<step>")]
    async fn next(&mut self, step: u32) -> Result<u32, String> {
        self.calls += step;
        Ok(self.calls)
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let mut counter = Counter { calls: 0 };
    assert_eq!(counter.next(1).await, Ok(1));
    assert_eq!(counter.next(1).await, Ok(1));
    assert_eq!(counter.calls, 1);
}
