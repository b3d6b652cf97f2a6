use syntra_cache::cached;

struct Svc;

#[cached(ttl = 60, budget = "svc", prefix = "svc")]
impl Svc {
    #[cached]
    async fn count(&self) -> u64 {
        1
    }
}

fn main() {}
