use syntra_cache::cached;

struct Svc;

#[cached(prefix = "svc", tll = 60)]
impl Svc {
    #[cached(ttl = 60)]
    async fn get(&self, id: u64) -> u64 {
        id
    }
}

fn main() {}
