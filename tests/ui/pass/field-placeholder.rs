#![deny(warnings)]

use serde::Serialize;
use std::sync::atomic::{AtomicUsize, Ordering};
use syntra_cache::cached;

static CALLS: AtomicUsize = AtomicUsize::new(0);

#[derive(Serialize)]
struct Tenant {
    id: u64,
}

struct User {
    tenant: Tenant,
    name: String,
}

struct Pair(u32, u32);

#[cached(ttl = 60, key = "users:greeting:<user.tenant.id>_<user.name>")]
async fn greeting(user: &User) -> Result<String, String> {
    CALLS.fetch_add(1, Ordering::SeqCst);
    Ok(format!("hello {} of {}", user.name, user.tenant.id))
}

#[cached(ttl = 60, key = "pairs:sum:<pair.0>_<pair.1>")]
async fn sum(pair: Pair) -> Result<u32, String> {
    Ok(pair.0 + pair.1)
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let user = User {
        tenant: Tenant { id: 7 },
        name: "ann".into(),
    };
    assert_eq!(greeting(&user).await.as_deref(), Ok("hello ann of 7"));
    assert_eq!(greeting(&user).await.as_deref(), Ok("hello ann of 7"));
    assert_eq!(CALLS.load(Ordering::SeqCst), 1);
    assert_eq!(sum(Pair(1, 2)).await, Ok(3));
}
