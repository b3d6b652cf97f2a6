use serde::Serialize;
use syntra_cache::cached;

#[derive(Serialize)]
struct Creds {
    user: String,
    bearer: String,
}

#[cached(ttl = 60, key = "svc:me:<creds.user>_<creds.bearer>", skip())]
async fn me(creds: &Creds) -> Result<String, String> {
    Ok(creds.user.clone())
}

fn main() {}
