use syntra_cache::cached;

struct Client;

impl Client {
    #[cached(ttl = 60, key = "client:get:<id>")]
    async fn get(&self, id: u64) -> Result<u64, String> {
        let _: () = self;
        Ok(id)
    }
}

fn main() {}
