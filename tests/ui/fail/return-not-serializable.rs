use syntra_cache::cached;

#[derive(Clone)]
struct Connection;

#[cached(ttl = 60, key = "db:connect:<url>")]
async fn connect(url: &str) -> Result<Connection, String> {
    let _ = url;
    Ok(Connection)
}

fn main() {}
