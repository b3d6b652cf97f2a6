#![deny(warnings)]

use syntra_cache::cached;

#[tracing::instrument]
#[cached(ttl = 60, key = "users:name:<id>")]
async fn name(id: u64) -> Result<String, String> {
    tracing::info!("loading");
    Ok(format!("user {id}"))
}

#[cached(ttl = 60, key = "users:email:<id>")]
#[tracing::instrument(err)]
async fn email(id: u64) -> Result<String, String> {
    Ok(format!("{id}@example.com"))
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    assert_eq!(name(1).await.as_deref(), Ok("user 1"));
    assert_eq!(email(1).await.as_deref(), Ok("1@example.com"));
}
