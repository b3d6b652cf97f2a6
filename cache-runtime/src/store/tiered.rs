//! The memory tier in front of a remote store, typed.

use super::breaker::Breaker;
use super::memory::{MemEntry, MemoryTier};
use super::Store;
use crate::codec::{self, DecodeError, Format, Meta};
use crate::error::StoreError;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::any::Any;
use std::sync::Arc;
use std::time::Duration;

/// A shared remote store behind its circuit breaker.
pub type Remote = Breaker<Arc<dyn Store>>;

/// What a lookup found.
#[derive(Debug)]
pub enum Found<T> {
    /// A fresh value.
    Fresh(T, Meta),
    /// A fresh negative entry (a cached `None`).
    Negative(Meta),
    /// An expired value still inside its stale window.
    Stale(T, Meta),
    /// Nothing usable; `expired` when an expired entry was seen.
    Miss {
        /// An expired entry was found.
        expired: bool,
    },
}

/// An error met during a lookup; the lookup still answers (as a miss).
#[derive(Debug)]
pub enum LookupError {
    /// The remote store failed.
    Store(StoreError),
    /// The remote value was not usable.
    Decode(DecodeError),
}

/// The memory tier, the remote store, or both (memory first).
#[derive(Clone)]
pub struct Tiered {
    /// The in-process tier.
    pub local: Option<MemoryTier>,
    /// The shared tier.
    pub remote: Option<Remote>,
    /// Upper bound on how long a value read from the remote tier stays in memory.
    pub local_ttl_cap: Option<Duration>,
}

impl std::fmt::Debug for Tiered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tiered")
            .field("local", &self.local)
            .field("remote", &self.remote.as_ref().map(|r| r.name()))
            .finish()
    }
}

fn downcast<T: Clone + 'static>(v: &Arc<dyn Any + Send + Sync>) -> Option<T> {
    v.downcast_ref::<T>().cloned()
}

impl Tiered {
    /// The memory tier's answer, without touching the remote store.
    #[inline]
    pub fn get_local<T: Clone + 'static>(&self, key: &str) -> Option<Found<T>> {
        let entry = self.local.as_ref()?.get(key)?;
        // Entries without a stale window are dropped by moka when they expire; only stale
        // windows need the clock.
        let fresh = entry.meta.stale.is_zero() || entry.meta.is_fresh(codec::now_ms());
        match (&entry.value, fresh) {
            (None, true) => Some(Found::Negative(entry.meta)),
            (None, false) => None,
            (Some(v), true) => downcast(v).map(|v| Found::Fresh(v, entry.meta)),
            (Some(v), false) => downcast(v).map(|v| Found::Stale(v, entry.meta)),
        }
    }

    /// The remote store's answer; a usable value is copied into the memory tier.
    pub async fn get_remote<T>(&self, key: &str, ty: &str) -> Result<Found<T>, LookupError>
    where
        T: DeserializeOwned + Clone + Send + Sync + 'static,
    {
        let Some(remote) = &self.remote else { return Ok(Found::Miss { expired: false }) };
        let Some(bytes) = remote.get(key).await.map_err(LookupError::Store)? else {
            return Ok(Found::Miss { expired: false });
        };
        let (meta, value) = codec::decode::<T>(&bytes, ty).map_err(LookupError::Decode)?;
        let now = codec::now_ms();
        let keep = meta.keep_left(now);
        if keep.is_zero() {
            return Ok(Found::Miss { expired: true });
        }
        if let Some(local) = &self.local {
            let keep = self.local_ttl_cap.map_or(keep, |cap| keep.min(cap));
            let value = value.clone().map(|v| Arc::new(v) as Arc<dyn Any + Send + Sync>);
            local.insert(key.to_owned(), MemEntry { value, meta, keep });
        }
        Ok(match (value, meta.is_fresh(now)) {
            (None, true) => Found::Negative(meta),
            (None, false) => Found::Miss { expired: true },
            (Some(v), true) => Found::Fresh(v, meta),
            (Some(v), false) => Found::Stale(v, meta),
        })
    }

    /// Stores a value (`None`: a negative entry) in every tier (the remote one only if
    /// `use_remote`). The memory tier always takes it; a remote failure is returned for the
    /// caller to log.
    pub async fn put<T>(
        &self,
        key: &str,
        value: Option<&T>,
        meta: Meta,
        format: Format,
        ty: &str,
        use_remote: bool,
    ) -> Result<(), StoreError>
    where
        T: Serialize + Clone + Send + Sync + 'static,
    {
        let keep = meta.ttl + meta.stale;
        if let Some(local) = &self.local {
            let v = value.map(|v| Arc::new(v.clone()) as Arc<dyn Any + Send + Sync>);
            let local_keep = self.local_ttl_cap.filter(|_| self.remote.is_some()).map_or(keep, |c| keep.min(c));
            local.insert(key.to_owned(), MemEntry { value: v, meta, keep: local_keep });
        }
        if let Some(remote) = self.remote.as_ref().filter(|_| use_remote) {
            // No encoding work while the store is being skipped.
            remote.peek()?;
            let bytes = codec::encode(format, ty, &meta, value).map_err(|e| StoreError::Backend(e.to_string()))?;
            remote.set(key, bytes, keep).await?;
        }
        Ok(())
    }

    /// Removes `key` from every tier; whether any tier had it.
    pub async fn remove(&self, key: &str) -> Result<bool, StoreError> {
        let local = self.local.as_ref().is_some_and(|l| l.remove(key));
        match &self.remote {
            Some(r) => Ok(r.delete(key).await? || local),
            None => Ok(local),
        }
    }

    /// Removes every key starting with `prefix` from every tier; how many the largest tier had.
    pub async fn remove_prefix(&self, prefix: &str) -> Result<u64, StoreError> {
        let local = self.local.as_ref().map_or(0, |l| l.remove_prefix(prefix));
        match &self.remote {
            Some(r) => Ok(r.delete_prefix(prefix).await?.max(local)),
            None => Ok(local),
        }
    }
}
