//! The memory tier in front of a remote store, typed.

use super::breaker::Guarded;
use super::memory::{MemEntry, MemoryTier};
use super::Store;
use crate::codec::{self, Compression, DecodeError, Format, Meta};
use crate::error::StoreError;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::any::Any;
use std::sync::Arc;
use std::time::Duration;

/// A shared remote store behind its circuit breaker.
pub type Remote = Guarded<Arc<dyn Store>>;

/// What a lookup found: a decoded entry (`None` value: a negative entry), or nothing.
pub type Found<T> = Option<(Option<T>, Meta)>;

/// The memory tier holds a value of another type under this key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OtherType;

/// An error met during a remote lookup; the engine answers it as a miss.
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
    /// Compression of values written to the remote tier, and the bound on reading them.
    pub compression: Compression,
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
    /// The memory tier's entry, without touching the remote store; [`OtherType`] when the entry
    /// holds another type (two functions share a key).
    #[inline]
    pub fn get_local<T: Clone + 'static>(&self, key: &str) -> Result<Found<T>, OtherType> {
        let Some(entry) = self.local.as_ref().and_then(|l| l.get(key)) else { return Ok(None) };
        match &entry.value {
            None => Ok(Some((None, entry.meta))),
            Some(v) => downcast(v).map(|v| Some((Some(v), entry.meta))).ok_or(OtherType),
        }
    }

    /// The remote store's entry, decoded (freshness is for the caller to judge).
    pub async fn get_remote<T>(&self, key: &str, ty: &str) -> Result<Found<T>, LookupError>
    where
        T: DeserializeOwned,
    {
        let Some(remote) = &self.remote else { return Ok(None) };
        let Some(bytes) = remote.get(key).await.map_err(LookupError::Store)? else { return Ok(None) };
        let (meta, value) = codec::decode_with::<T>(&bytes, ty, &self.compression).map_err(LookupError::Decode)?;
        Ok(Some((value, meta)))
    }

    /// Copies an entry read from the remote tier into the memory tier, for what is left of its
    /// life (capped by `local_ttl_cap`).
    pub fn remember<T: Clone + Send + Sync + 'static>(&self, key: &str, value: Option<&T>, meta: Meta) {
        let Some(local) = &self.local else { return };
        let keep = meta.keep_left(codec::now_ms());
        let keep = self.local_ttl_cap.map_or(keep, |cap| keep.min(cap));
        let value = value.map(|v| Arc::new(v.clone()) as Arc<dyn Any + Send + Sync>);
        local.insert(key.to_owned(), MemEntry { value, meta, keep });
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
            let bytes = codec::encode_with(format, ty, &meta, value, &self.compression)
                .map_err(|e| StoreError::Backend(e.to_string()))?;
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

    /// Removes every cache entry whose key starts with `prefix` from every tier (never the
    /// runtime's own keys: locks and budgets contain `::`); how many the shared tier had (the
    /// memory tier's count without one).
    pub async fn remove_prefix(&self, prefix: &str) -> Result<u64, StoreError> {
        let local = self.local.as_ref().map_or(0, |l| l.remove_prefix(prefix));
        match &self.remote {
            Some(r) => r.delete_prefix(prefix).await,
            None => Ok(local),
        }
    }
}
