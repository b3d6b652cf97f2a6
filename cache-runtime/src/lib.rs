//! Runtime of [syntra-cache](https://docs.rs/syntra-cache): what the `#[cached]` attribute
//! expands into. Keys, codecs, the in-process and Redis tiers, graceful degradation, policies
//! and counters live here; the macro only builds the key parts and calls [`__private::cached`].
#![forbid(unsafe_code)]
#![warn(missing_docs, unreachable_pub)]

pub mod budget;
mod cache;
pub mod codec;
mod error;
pub mod key;
pub mod metrics;
pub mod policy;
mod scope;
pub mod store;

#[doc(hidden)]
pub mod __private;

pub use cache::{default_cache, set_default, Cache, CacheBuilder, DEFAULT_MEMORY_CAPACITY, DEFAULT_NAMESPACE};
pub use codec::Format;
pub use error::{BuildError, CacheError, StoreError, TtlError};
pub use metrics::{LatencySnapshot, MethodStats, Stats};
pub use scope::{invalidate, key_of, refresh, CallKey};
