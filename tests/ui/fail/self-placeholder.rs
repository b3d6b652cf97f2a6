use syntra_cache::cached;

struct Client {
    tenant: u64,
}

impl Client {
    #[cached(ttl = 60, key = "client:get:<self.tenant>_<id>")]
    async fn get(&self, id: u64) -> Result<u64, String> {
        Ok(self.tenant + id)
    }
}

fn main() {}
