use syntra_cache::cached;

pub struct Svc;

#[cached(ttl = 90, fallback = backup())]
impl Svc {
    #[cached]
    async fn price(&self) -> Result<f64, String> {
        Ok(1.0)
    }
}

async fn backup() -> Result<f64, String> {
    Ok(2.0)
}

fn main() {}
