use syntra_cache::cached;

struct Svc {
    cache: u32,
}

// A default that does not type-check is reported on the impl's tokens.
#[cached(ttl = 60, cache = self.cache)]
impl Svc {
    #[cached]
    async fn get(&self, id: u64) -> u64 {
        id
    }
}

fn main() {}
