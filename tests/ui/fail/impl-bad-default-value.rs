use syntra_cache::cached;

struct Svc;

// Reported once, at the impl, not once per method.
#[cached(ttl = 60, jitter = 0.9)]
impl Svc {
    #[cached]
    async fn get(&self, id: u64) -> u64 {
        id
    }

    #[cached]
    async fn put(&self, id: u64) -> u64 {
        id
    }
}

fn main() {}
