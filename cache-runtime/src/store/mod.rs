//! Stores: where cached values live.
//!
//! - [`Store`]: the byte-level trait of a shared, remote tier ([`RedisStore`](redis::RedisStore)
//!   or your own), wrapped by [`Guarded`](breaker::Guarded) (the runtime's one
//!   [`Breaker`](crate::breaker::Breaker)) so an outage is skipped quickly.
//! - [`MemoryTier`](memory::MemoryTier): the in-process tier. It keeps *decoded* values, so a
//!   hit costs a clone, not a decode; it is the embedded default when no Redis is configured.
//! - `DiskStore` (`disk` feature): a [`Store`] in one redb file under the memory tier when no
//!   Redis is configured, so the embedded default survives restarts.
//! - [`Tiered`](tiered::Tiered): the memory tier in front of a remote store; memory entries
//!   never outlive the remote entry they were read from.

use crate::error::StoreError;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

pub mod breaker;
#[cfg(feature = "redis")]
pub mod coherence;
#[cfg(feature = "disk")]
pub mod disk;
pub mod memory;
#[cfg(feature = "redis")]
pub mod redis;
pub mod tiered;

/// A boxed, `Send` future (keeps [`Store`] object-safe).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A shared store of encoded values with per-entry expiry.
///
/// Implementations bound their own latency (a slow store is a failed store) and report
/// failures as [`StoreError`]; the cache turns every error into a miss.
pub trait Store: Send + Sync + 'static {
    /// A short name for logs (`"redis"`).
    fn name(&self) -> &'static str;
    /// The stored bytes of `key`, if any.
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<Vec<u8>>, StoreError>>;
    /// The stored bytes of each of `keys`, in order: one round trip where the store can (Redis
    /// `MGET`). The default asks [`get`](Store::get) key by key.
    fn get_many<'a>(&'a self, keys: &'a [String]) -> BoxFuture<'a, Result<Vec<Option<Vec<u8>>>, StoreError>> {
        Box::pin(async move {
            let mut out = Vec::with_capacity(keys.len());
            for key in keys {
                out.push(self.get(key).await?);
            }
            Ok(out)
        })
    }
    /// Stores `value` under `key` for `ttl`.
    fn set<'a>(&'a self, key: &'a str, value: Vec<u8>, ttl: Duration) -> BoxFuture<'a, Result<(), StoreError>>;
    /// Removes `key`; whether it existed.
    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<bool, StoreError>>;
    /// Removes every key starting with `prefix`; how many were removed. Keys containing `::` are
    /// the runtime's own (locks under `{namespace}::lock:`, budgets under `{namespace}::budget:`)
    /// and must be left alone: no cache entry's key contains `::`.
    fn delete_prefix<'a>(&'a self, prefix: &'a str) -> BoxFuture<'a, Result<u64, StoreError>>;
    /// Sets `key` to `token` for `ttl` only if it does not exist (a lock); whether it was set.
    fn set_nx<'a>(&'a self, key: &'a str, token: &'a str, ttl: Duration) -> BoxFuture<'a, Result<bool, StoreError>>;
    /// Deletes `key` only if it still holds `token` (releases a lock); whether it did.
    fn delete_if_eq<'a>(&'a self, key: &'a str, token: &'a str) -> BoxFuture<'a, Result<bool, StoreError>>;
}

impl<S: Store + ?Sized> Store for std::sync::Arc<S> {
    fn name(&self) -> &'static str {
        (**self).name()
    }
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<Vec<u8>>, StoreError>> {
        (**self).get(key)
    }
    fn get_many<'a>(&'a self, keys: &'a [String]) -> BoxFuture<'a, Result<Vec<Option<Vec<u8>>>, StoreError>> {
        (**self).get_many(keys)
    }
    fn set<'a>(&'a self, key: &'a str, value: Vec<u8>, ttl: Duration) -> BoxFuture<'a, Result<(), StoreError>> {
        (**self).set(key, value, ttl)
    }
    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<bool, StoreError>> {
        (**self).delete(key)
    }
    fn delete_prefix<'a>(&'a self, prefix: &'a str) -> BoxFuture<'a, Result<u64, StoreError>> {
        (**self).delete_prefix(prefix)
    }
    fn set_nx<'a>(&'a self, key: &'a str, token: &'a str, ttl: Duration) -> BoxFuture<'a, Result<bool, StoreError>> {
        (**self).set_nx(key, token, ttl)
    }
    fn delete_if_eq<'a>(&'a self, key: &'a str, token: &'a str) -> BoxFuture<'a, Result<bool, StoreError>> {
        (**self).delete_if_eq(key, token)
    }
}
