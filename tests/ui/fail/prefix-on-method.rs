use syntra_cache::cached;

#[cached(ttl = 60, prefix = "svc")]
async fn get(id: u64) -> u64 {
    id
}

fn main() {}
