use syntra_cache::cached;

#[cached(ttl = 60, key = "items:get:<id>")]
async fn get<T: serde::Serialize>(id: T) -> Result<u64, String> {
    let _ = id;
    Ok(1)
}

#[cached(ttl = 60, key = "items:show:<id>")]
async fn show(id: impl serde::Serialize) -> Result<u64, String> {
    let _ = id;
    Ok(1)
}

fn main() {}
