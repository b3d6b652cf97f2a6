#![deny(dead_code)]

use syntra_cache::cached;

struct Svc;

#[cached(ttl = 60, prefix = "svc")]
impl Svc {
    #[cached]
    async fn unused(&self, id: u64) -> u64 {
        id
    }
}

fn main() {
    let _ = Svc;
}
