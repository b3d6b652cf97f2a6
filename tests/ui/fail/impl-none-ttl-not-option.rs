use syntra_cache::cached;

struct Svc;

#[cached(ttl = 60, none_ttl = 5, prefix = "svc")]
impl Svc {
    #[cached]
    async fn find(&self, id: u64) -> Option<u64> {
        Some(id)
    }

    #[cached]
    async fn count(&self) -> Result<u64, String> {
        Ok(1)
    }
}

fn main() {}
