use syntra_cache::cached;

// Without `key`, every parameter outside `skip` is hashed into the key: a hash of a
// low-entropy secret is no protection, and it splits the cache per credential.
#[cached(ttl = 60)]
async fn news(currency: &str, auth_token: &str, client_secret: String, password: &str) -> Result<u32, String> {
    let _ = (currency, auth_token, client_secret, password);
    Ok(1)
}

fn main() {}
