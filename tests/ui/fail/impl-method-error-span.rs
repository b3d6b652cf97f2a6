use syntra_cache::cached;

struct Svc;

// The method's own mistakes are reported on its tokens, as without the impl's defaults.
#[cached(ttl = 60, prefix = "svc")]
impl Svc {
    #[cached(key = "get:<idd>")]
    async fn get(&self, id: u64) -> u64 {
        id
    }
}

fn main() {}
