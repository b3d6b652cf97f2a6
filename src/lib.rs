#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

pub use syntra_cache_macros::cached;
pub use syntra_cache_runtime::*;
