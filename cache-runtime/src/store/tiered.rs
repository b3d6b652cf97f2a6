//! The memory tier in front of a remote store, typed.
//!
//! Bytes read from the remote tier go through, in order: the size bound (before anything else
//! looks at them), the seal (when a signing key is configured), then the envelope decoder.
//! Writes are encoded once, refused when over the size bound, sealed and stored.

use super::breaker::Guarded;
use super::memory::{MemEntry, MemoryTier};
use super::Store;
use crate::codec::{self, Compression, DecodeError, Format, Meta};
use crate::error::StoreError;
use crate::seal::{Sealer, Tampered};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::any::Any;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A shared remote store behind its circuit breaker.
pub type Remote = Guarded<Arc<dyn Store>>;

/// What a lookup found: a decoded entry (`None` value: a negative entry), or nothing.
pub type Found<T> = Option<(Option<T>, Meta)>;

/// Default bound on one stored value (the encoded envelope): 1 MiB. A CoinGecko `market_chart`
/// response is about 24 KB in Redis and the largest seed response under 100 KB, so this leaves a
/// 10x margin while keeping one planted value from costing more than a megabyte to read.
pub const DEFAULT_MAX_VALUE_BYTES: usize = 1 << 20;

/// The memory tier holds a value of another type under this key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OtherType;

/// An error met during a remote lookup; the engine answers it as a miss.
#[derive(Debug)]
#[non_exhaustive]
pub enum LookupError {
    /// The remote store failed.
    Store(StoreError),
    /// The remote value was not usable.
    Decode(DecodeError),
    /// The remote value's seal did not verify (a signing key is configured).
    Tampered(Tampered),
    /// The remote value is larger than the bound; it was not decoded.
    TooLarge(usize),
}

/// Why a value was not stored (the memory tier took it unless it is [`PutError::TooLarge`]).
#[derive(Debug)]
#[non_exhaustive]
pub enum PutError {
    /// The encoded value exceeds the size bound: stored nowhere.
    TooLarge {
        /// Its encoded size.
        size: usize,
        /// The bound.
        max: usize,
    },
    /// The remote store failed (or is being skipped).
    Store(StoreError),
}

impl From<StoreError> for PutError {
    fn from(e: StoreError) -> Self {
        PutError::Store(e)
    }
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
    /// Signs values written to, and verifies values read from, the shared tier.
    pub seal: Option<Sealer>,
    /// Bound on one encoded value (before sealing).
    pub max_value_bytes: usize,
    /// The channel that keeps memory tiers of several instances coherent, when enabled.
    #[cfg(feature = "redis")]
    pub coherence: Option<Arc<super::coherence::Coherence>>,
    /// Compression of values written to the remote tier, and the bound on reading them.
    pub compression: Compression,
}

/// Taken before a remote read, handed to [`Tiered::remember`]: with coherence on, the copy is
/// not remembered if an eviction of its key arrived during the read.
#[derive(Debug, Clone, Copy)]
pub struct ReadTicket(#[cfg_attr(not(feature = "redis"), allow(dead_code))] Option<u64>);

impl std::fmt::Debug for Tiered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tiered")
            .field("local", &self.local)
            .field("remote", &self.remote.as_ref().map(|r| r.name()))
            .field("signed", &self.seal.is_some())
            .field("max_value_bytes", &self.max_value_bytes)
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
        #[cfg(feature = "redis")]
        if let Some(c) = &self.coherence {
            if !c.trusts(entry.at, self.remote.as_ref().is_some_and(|r| r.is_open())) {
                return Ok(None);
            }
        }
        match &entry.value {
            None => Ok(Some((None, entry.meta))),
            Some(v) => downcast(v).map(|v| Some((Some(v), entry.meta))).ok_or(OtherType),
        }
    }

    /// The most bytes a stored value may have, seal included.
    pub fn max_stored_bytes(&self) -> usize {
        self.max_value_bytes + if self.seal.is_some() { crate::seal::OVERHEAD } else { 0 }
    }

    /// The remote store's entry, decoded, with the encoded size (freshness is for the caller to
    /// judge).
    pub async fn get_remote<T>(&self, key: &str, ty: &str) -> Result<Option<(Option<T>, Meta, usize)>, LookupError>
    where
        T: DeserializeOwned,
    {
        let Some(remote) = &self.remote else { return Ok(None) };
        let Some(bytes) = remote.get(key).await.map_err(LookupError::Store)? else { return Ok(None) };
        self.decode_remote(key, &bytes, ty)
    }

    /// The remote store's raw bytes for each of `keys`, in order, in one round trip (an `MGET`,
    /// or pipelined capped reads on Redis).
    pub async fn get_remote_many(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        match &self.remote {
            Some(remote) => remote.get_many(keys).await,
            None => Ok(vec![None; keys.len()]),
        }
    }

    /// Bytes read from the remote store under `key`: the size bound (before anything else looks
    /// at them), the seal, then the envelope decoder; with the encoded size.
    pub fn decode_remote<T: DeserializeOwned>(
        &self,
        key: &str,
        bytes: &[u8],
        ty: &str,
    ) -> Result<Option<(Option<T>, Meta, usize)>, LookupError> {
        if bytes.len() > self.max_stored_bytes() {
            return Err(LookupError::TooLarge(bytes.len()));
        }
        let payload = match &self.seal {
            Some(seal) => seal.open(key, bytes).map_err(LookupError::Tampered)?,
            None => bytes,
        };
        // A compressed value may not unpack beyond what could have been stored uncompressed.
        let bound = Compression {
            max_decompressed: self.compression.max_decompressed.min(self.max_value_bytes),
            ..self.compression
        };
        let (meta, value) = codec::decode_with::<T>(payload, ty, &bound).map_err(LookupError::Decode)?;
        Ok(Some((value, meta, payload.len())))
    }

    /// To be taken before a remote read of `key` (see [`ReadTicket`]).
    pub fn ticket(&self, key: &str) -> ReadTicket {
        #[cfg(feature = "redis")]
        if let Some(c) = &self.coherence {
            return ReadTicket(Some(c.epoch(key)));
        }
        let _ = key;
        ReadTicket(None)
    }

    /// Copies an entry read from the remote tier into the memory tier, for what is left of its
    /// life (capped by `local_ttl_cap`), unless an eviction of the key arrived since `ticket`;
    /// `size` is its encoded length.
    pub fn remember<T: Clone + Send + Sync + 'static>(
        &self,
        key: &str,
        value: Option<&T>,
        meta: Meta,
        size: usize,
        ticket: ReadTicket,
    ) {
        let Some(local) = &self.local else { return };
        #[cfg(feature = "redis")]
        if let (Some(c), ReadTicket(Some(epoch))) = (&self.coherence, ticket) {
            if !c.unmoved(key, epoch) {
                return;
            }
        }
        let _ = ticket;
        let keep = meta.keep_left(codec::now_ms());
        let keep = self.local_ttl_cap.map_or(keep, |cap| keep.min(cap));
        let value = value.map(|v| Arc::new(v.clone()) as Arc<dyn Any + Send + Sync>);
        local.insert(key.to_owned(), MemEntry { value, meta, keep, size, at: Instant::now() });
    }

    /// Stores a value (`None`: a negative entry) in every tier (the remote one only if
    /// `use_remote`). A value over the size bound is stored nowhere; otherwise the memory tier
    /// always takes it and a remote failure is returned for the caller to log.
    pub async fn put<T>(
        &self,
        key: &str,
        value: Option<&T>,
        meta: Meta,
        format: Format,
        ty: &str,
        use_remote: bool,
    ) -> Result<(), PutError>
    where
        T: Serialize + Clone + Send + Sync + 'static,
    {
        let keep = meta.ttl + meta.stale;
        let encode_err = |e: codec::EncodeError| PutError::Store(StoreError::Backend(e.to_string()));
        let remote = self.remote.as_ref().filter(|_| use_remote);
        // Encode once: the shared tier stores the bytes and the memory tier weighs by their
        // length. No encoding work while the store is being skipped.
        let encoded = match remote {
            Some(r) if r.peek().is_ok() => Some(codec::encode(format, ty, &meta, value).map_err(encode_err)?),
            _ => None,
        };
        let size = match &encoded {
            Some(bytes) => bytes.len(),
            None if self.local.is_some() => codec::encoded_len(format, ty, &meta, value).map_err(encode_err)?,
            None => 0,
        };
        if size > self.max_value_bytes {
            return Err(PutError::TooLarge { size, max: self.max_value_bytes });
        }
        if let Some(local) = &self.local {
            let v = value.map(|v| Arc::new(v.clone()) as Arc<dyn Any + Send + Sync>);
            let local_keep = self.local_ttl_cap.filter(|_| self.remote.is_some()).map_or(keep, |c| keep.min(c));
            local.insert(key.to_owned(), MemEntry { value: v, meta, keep: local_keep, size, at: Instant::now() });
        }
        if let Some(remote) = remote {
            let bytes = self.compression.apply(encoded.ok_or(StoreError::BreakerOpen)?);
            let bytes = match &self.seal {
                Some(seal) => seal.seal(key, &bytes),
                None => bytes,
            };
            remote.set(key, bytes, keep).await?;
            // Others drop their copies and read this one (not awaited: the write is done).
            self.announce(key, false);
        }
        Ok(())
    }

    /// Tells the other instances that `key` (or every key under it, `prefix`) changed;
    /// waits until it was published (or queued) when `wait`.
    fn announce(&self, key: &str, prefix: bool) -> Option<tokio::task::JoinHandle<()>> {
        #[cfg(feature = "redis")]
        if let Some(c) = &self.coherence {
            return if prefix { c.announce_prefix(key) } else { c.announce_key(key) };
        }
        let _ = (key, prefix);
        None
    }

    /// Removes `key` from every tier; whether any tier had it.
    pub async fn remove(&self, key: &str) -> Result<bool, StoreError> {
        let local = self.local.as_ref().is_some_and(|l| l.remove(key));
        match &self.remote {
            Some(r) => {
                let deleted = r.delete(key).await;
                // Announced even when the delete failed: the others' copies are wrong either way.
                if let Some(sent) = self.announce(key, false) {
                    let _ = sent.await;
                }
                Ok(deleted? || local)
            }
            None => Ok(local),
        }
    }

    /// Removes every cache entry whose key starts with `prefix` from every tier (never the
    /// runtime's own keys: locks and budgets contain `::`); how many the shared tier had (the
    /// memory tier's count without one).
    pub async fn remove_prefix(&self, prefix: &str) -> Result<u64, StoreError> {
        let local = self.local.as_ref().map_or(0, |l| l.remove_prefix(prefix));
        match &self.remote {
            Some(r) => {
                let deleted = r.delete_prefix(prefix).await;
                if let Some(sent) = self.announce(prefix, true) {
                    let _ = sent.await;
                }
                deleted
            }
            None => Ok(local),
        }
    }
}
