use syntra_cache::cached;

struct Svc;

#[cached(ttl = 60, prefix = "svc")]
impl Svc {
    async fn get(&self, id: u64) -> u64 {
        id
    }
}

fn main() {}
