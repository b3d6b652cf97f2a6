//! The `#[cached]` attribute of `syntra-cache`. Use it through the `syntra-cache` crate, which
//! documents the arguments; the expansion calls into `::syntra_cache::__private`.

#![forbid(unsafe_code)]

mod ast;
mod attr;
mod diag;
mod expand;
mod key;
mod secret;
mod service;
mod valid;

use proc_macro::TokenStream;

/// Caches the result of an `async fn`; on an `impl` block, sets defaults for the `#[cached]`
/// methods inside it. See the `syntra-cache` crate for the arguments.
#[proc_macro_attribute]
pub fn cached(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::cached(args.into(), item.into()).into()
}
