use syntra_cache::cached;

#[cached(ttl = 60, key = "users:touch:<id>")]
async fn touch(id: u64) {
    let _ = id;
}

fn main() {}
