#![deny(warnings)]

use std::sync::atomic::{AtomicUsize, Ordering};
use syntra_cache::cached;

static CALLS: AtomicUsize = AtomicUsize::new(0);

// `token` in this domain is a crypto token: `token_address` and `token` are fine as they are.
#[cached(ttl = 60, key = "dex:pairs:<chain>_<token_address>")]
async fn pairs(chain: &str, token_address: &str) -> Result<String, String> {
    CALLS.fetch_add(1, Ordering::SeqCst);
    Ok(format!("{chain}/{token_address}"))
}

#[cached(ttl = 60, key = "dex:token:<token>")]
async fn token(token: &str) -> Result<String, String> {
    Ok(token.to_owned())
}

// A secret in `skip(..)` never reaches the key.
#[cached(ttl = 60, key = "cmc:quote:<symbol>", skip(api_key))]
async fn quote(symbol: &str, api_key: &str) -> Result<String, String> {
    let _ = api_key;
    CALLS.fetch_add(1, Ordering::SeqCst);
    Ok(symbol.to_owned())
}

// A false positive, waved through explicitly: `session_id` here is a public game session number.
#[cached(ttl = 60, key = "game:score:<session_id>", allow_secret(session_id))]
async fn score(session_id: u64) -> Result<u64, String> {
    CALLS.fetch_add(1, Ordering::SeqCst);
    Ok(session_id * 2)
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    assert_eq!(pairs("eth", "0xabc").await.as_deref(), Ok("eth/0xabc"));
    assert_eq!(pairs("eth", "0xabc").await.as_deref(), Ok("eth/0xabc"));
    assert_eq!(token("0xdef").await.as_deref(), Ok("0xdef"));
    assert_eq!(quote("BTC", "key-1").await.as_deref(), Ok("BTC"));
    assert_eq!(quote("BTC", "key-2").await.as_deref(), Ok("BTC"));
    assert_eq!(score(21).await, Ok(42));
    assert_eq!(score(21).await, Ok(42));
    assert_eq!(CALLS.load(Ordering::SeqCst), 3);
}
