use syntra_cache::cached;

struct Query {
    text: String,
}

#[cached(ttl = 60, key = "search:run:<query>")]
async fn run(query: &Query) -> Result<u64, String> {
    Ok(query.text.len() as u64)
}

fn main() {}
