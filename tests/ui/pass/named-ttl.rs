#![deny(warnings)]

use std::sync::Arc;
use std::time::Duration;
use syntra_cache::cached;

/// One table of TTLs, e.g. loaded at start-up with overrides from a file.
struct Ttls {
    coingecko: CoinGecko,
}

struct CoinGecko {
    price: Duration,
    search: u64,
}

struct Service {
    ttls: Arc<Ttls>,
}

impl Service {
    #[cached(ttl = "coingecko.price", stale = "coingecko.search", ttls = self.ttls, key = "cg:price:<id>")]
    async fn price(&self, id: u32) -> u32 {
        id
    }
}

#[cached(ttl = "price", ttls = TTLS)]
async fn free(id: u32) -> u32 {
    id
}

struct Static {
    price: u64,
}

static TTLS: Static = Static { price: 30 };

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let ttls = Arc::new(Ttls { coingecko: CoinGecko { price: Duration::from_secs(90), search: 600 } });
    let service = Service { ttls };
    assert_eq!(service.price(1).await, 1);
    assert_eq!(free(2).await, 2);
}
