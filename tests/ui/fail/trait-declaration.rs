use syntra_cache::cached;

trait Repo {
    #[cached(ttl = 60, key = "repo:find:<id>")]
    async fn find(&self, id: u64) -> Option<String>;
}

fn main() {}
