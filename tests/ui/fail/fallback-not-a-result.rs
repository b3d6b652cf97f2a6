use syntra_cache::cached;

#[cached(ttl = 90, fallback = backup(id))]
async fn price(id: u32) -> Option<f64> {
    Some(f64::from(id))
}

async fn backup(id: u32) -> Option<f64> {
    Some(f64::from(id))
}

fn main() {}
