use syntra_cache::cached;

#[cached(ttl = "price", key = "svc:price:<id>")]
async fn price(id: u64) -> u64 {
    id
}

fn main() {}
