use syntra_cache::cached;

struct Svc;

#[cached(ttl = 60, key = "svc:<id>")]
impl Svc {
    #[cached]
    async fn get(&self, id: u64) -> u64 {
        id
    }
}

fn main() {}
