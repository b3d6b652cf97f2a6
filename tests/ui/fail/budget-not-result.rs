use syntra_cache::cached;

#[cached(ttl = 60, key = "feargreed:current", budget = "feargreed")]
async fn current() -> Option<u32> {
    Some(50)
}

fn main() {}
