#![deny(warnings, missing_docs)]
//! A documented crate.

use syntra_cache::cached;

/// Documented items keep their docs and attributes.
pub mod api {
    use super::cached;

    /// Looks a user's display name up.
    ///
    /// Cached for five minutes.
    #[cached(ttl = "5m", key = "users:display:<id>")]
    #[inline]
    #[allow(clippy::needless_return)]
    pub async fn display_name(id: u64) -> Result<String, String> {
        return Ok(format!("user {id}"));
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    assert_eq!(api::display_name(1).await.as_deref(), Ok("user 1"));
}
