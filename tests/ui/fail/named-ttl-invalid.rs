use syntra_cache::cached;

struct Ttls {
    price: u64,
}

static TTLS: Ttls = Ttls { price: 60 };

#[cached(ttl = "coingecko..price", ttls = TTLS, key = "svc:price:<id>")]
async fn price(id: u64) -> u64 {
    id
}

fn main() {}
