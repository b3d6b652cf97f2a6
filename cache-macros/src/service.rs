use proc_macro2::{Span, TokenStream, TokenTree};
use quote::quote;
use syn::parse::Parser;
use syn::{Attribute, Error, ImplItem, ItemImpl, Meta, MetaList};

use crate::attr::{Args, Level, SERVICE};
use crate::diag;

/// Whether `#[cached]` was put on an `impl` block: after its attributes, `unsafe` and `default`,
/// the item starts with `impl`.
pub(crate) fn is_impl(item: &TokenStream) -> bool {
    let mut tokens = item.clone().into_iter().peekable();
    while let Some(token) = tokens.next() {
        match token {
            TokenTree::Punct(p) if p.as_char() == '#' => {
                tokens.next();
            }
            TokenTree::Ident(ident) if ident == "unsafe" || ident == "default" => {}
            TokenTree::Ident(ident) => return ident == "impl",
            _ => return false,
        }
    }
    false
}

// Input:
//     #[cached(cache = self.cache, prefix = "svc")]
//     impl Svc {
//         #[cached(ttl = 90)]
//         async fn get(&self, id: u64) -> T { .. }
//         fn other(&self) {}
//     }
//
// Output:
//     impl Svc {
//         #[cached(ttl = 90, __service(cache = self.cache, prefix = "svc"))]
//         async fn get(&self, id: u64) -> T { .. }
//         fn other(&self) {}
//     }
//
// Each method's own `#[cached]` then expands as usual, its arguments over the defaults: the
// defaults keep the spans of the `impl`'s tokens and the method's arguments their own.
pub(crate) fn expand(args: TokenStream, item: TokenStream) -> TokenStream {
    let mut block: ItemImpl = match syn::parse2(item.clone()) {
        Ok(block) => block,
        Err(error) => return diag::with_item(item, error),
    };
    let checked = (|input: syn::parse::ParseStream| Args::parse_at(input, Level::Impl))
        .parse2(args.clone())
        .and_then(Args::check_defaults);
    let methods = cached_methods(&mut block);
    let error = match checked {
        Ok(()) if methods.is_empty() => Some(Error::new(
            Span::call_site(),
            "#[cached] on an `impl` sets defaults for the `#[cached]` methods inside it, and this `impl` has none; \
             put `#[cached(ttl = ...)]` on the `async fn`s to cache",
        )),
        Ok(()) => {
            for attr in methods {
                with_defaults(attr, &args);
            }
            None
        }
        // The methods would repeat the error once each: they expand without their `#[cached]`
        // until the defaults are fixed.
        Err(error) => {
            strip_cached(&mut block);
            Some(error)
        }
    };
    let error = error.map(Error::into_compile_error);
    quote!(#block #error)
}

/// The `#[cached]` attribute of every method that has one.
fn cached_methods(block: &mut ItemImpl) -> Vec<&mut Attribute> {
    let mut found = Vec::new();
    for item in &mut block.items {
        if let ImplItem::Fn(method) = item {
            found.extend(method.attrs.iter_mut().filter(|attr| is_cached(attr)));
        }
    }
    found
}

fn strip_cached(block: &mut ItemImpl) {
    for item in &mut block.items {
        if let ImplItem::Fn(method) = item {
            method.attrs.retain(|attr| !is_cached(attr));
        }
    }
}

/// `#[cached]`, `#[cached(..)]` or `#[path::to::cached(..)]`.
fn is_cached(attr: &Attribute) -> bool {
    attr.path().segments.last().is_some_and(|segment| segment.ident == "cached")
}

/// `#[cached(ARGS)]` → `#[cached(ARGS, __service(DEFAULTS))]`.
fn with_defaults(attr: &mut Attribute, defaults: &TokenStream) {
    let service = proc_macro2::Ident::new(SERVICE, Span::call_site());
    let hidden = quote!(#service(#defaults));
    match &mut attr.meta {
        Meta::Path(path) => {
            attr.meta = Meta::List(MetaList {
                path: path.clone(),
                delimiter: syn::MacroDelimiter::Paren(Default::default()),
                tokens: hidden,
            });
        }
        Meta::List(list) => {
            let trailing_comma =
                matches!(list.tokens.clone().into_iter().last(), Some(TokenTree::Punct(p)) if p.as_char() == ',');
            let own = &list.tokens;
            list.tokens = match (own.is_empty(), trailing_comma) {
                (true, _) => hidden,
                (false, true) => quote!(#own #hidden),
                (false, false) => quote!(#own, #hidden),
            };
        }
        // `#[cached = ..]`: left as written, for the method's own error.
        Meta::NameValue(_) => {}
    }
}
