//! Runtime of [syntra-cache](https://docs.rs/syntra-cache): what the `#[cached]` attribute
//! expands into. The [`engine`] is the get-or-compute path (lookup, coalescing, admission,
//! compute, store) that the macro and [`Cache::get_or_compute`] share; keys, codecs, the
//! in-process and Redis tiers, the circuit [`breaker`], budgets and counters live beside it. The
//! macro only builds the key parts and calls the engine through `__private`.
#![forbid(unsafe_code)]
#![warn(missing_docs, unreachable_pub)]

pub mod breaker;
pub mod budget;
mod cache;
pub mod codec;
pub mod compress;
#[cfg(feature = "redis")]
mod connection;
pub mod engine;
mod error;
#[cfg(feature = "prometheus")]
pub mod export;
pub mod key;
pub mod metrics;
pub mod policy;
pub mod rotation;
mod scope;
pub mod seal;
pub mod store;
mod throttle;

#[doc(hidden)]
pub mod __private;

pub use cache::{
    default_cache, set_default, Cache, CacheBuilder, RedisTopology, DEFAULT_MEMORY_BYTES, DEFAULT_MEMORY_CAPACITY,
    DEFAULT_NAMESPACE,
};
pub use codec::Format;
pub use engine::{Outcome, Plain, Policy};
pub use error::{BuildError, CacheError, StoreError, TtlError};
pub use key::KeyError;
pub use metrics::{LatencySnapshot, MethodStats, Stats};
pub use scope::{invalidate, key_of, refresh, CallKey};
