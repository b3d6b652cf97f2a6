use std::time::Duration;
use syntra_cache::cached;

struct Ttls {
    price: Duration,
}

struct Svc {
    ttls: Ttls,
}

#[cached(prefix = "svc", ttls = self.ttls)]
impl Svc {
    #[cached(ttl = "prce")]
    async fn price(&self, id: u64) -> u64 {
        id
    }
}

fn main() {}
