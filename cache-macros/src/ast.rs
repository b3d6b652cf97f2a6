use proc_macro2::{Span, TokenStream};
use syn::parse::{Parse, ParseStream};
use syn::token::Brace;
use syn::{Attribute, Error, FnArg, Ident, Pat, Result, ReturnType, Signature, TraitItemFn, Type, Visibility};

/// An `async fn` whose body is kept as tokens, so that a body that does not parse still expands.
pub(crate) struct CachedFn {
    pub(crate) attrs: Vec<Attribute>,
    pub(crate) vis: Visibility,
    pub(crate) sig: Signature,
    pub(crate) brace_token: Brace,
    pub(crate) inner_attrs: Vec<Attribute>,
    pub(crate) body: TokenStream,
}

impl Parse for CachedFn {
    fn parse(input: ParseStream) -> Result<Self> {
        let attrs = input.call(Attribute::parse_outer)?;
        let vis = input.parse()?;
        let sig = input.parse()?;
        let content;
        let brace_token = syn::braced!(content in input);
        let inner_attrs = content.call(Attribute::parse_inner)?;
        let body = content.parse()?;
        Ok(CachedFn { attrs, vis, sig, brace_token, inner_attrs, body })
    }
}

impl CachedFn {
    /// Parses the item under `#[cached]`, explaining what it takes when the item is not a fn.
    pub(crate) fn from_item(item: TokenStream) -> Result<Self> {
        syn::parse2(item.clone()).map_err(|error| not_a_fn(error, item))
    }

    /// The parameters bound to a plain name, in order.
    pub(crate) fn params(&self) -> Vec<&Ident> {
        self.sig
            .inputs
            .iter()
            .filter_map(|input| match input {
                FnArg::Typed(typed) => match &*typed.pat {
                    Pat::Ident(pat) => Some(&pat.ident),
                    _ => None,
                },
                FnArg::Receiver(_) => None,
            })
            .collect()
    }

    pub(crate) fn has_receiver(&self) -> bool {
        self.sig.receiver().is_some()
    }

    pub(crate) fn return_type(&self) -> Option<&Type> {
        match &self.sig.output {
            ReturnType::Type(_, ty) => Some(ty),
            ReturnType::Default => None,
        }
    }

    pub(crate) fn return_kind(&self) -> Option<ReturnKind> {
        self.return_type().map(return_kind)
    }
}

fn not_a_fn(error: Error, item: TokenStream) -> Error {
    match syn::parse2::<TraitItemFn>(item) {
        Ok(decl) if decl.default.is_none() => Error::new_spanned(
            decl.sig,
            "#[cached] goes on the `async fn` in the `impl` block; a trait declaration has no body to cache",
        ),
        Ok(_) => error,
        Err(_) => Error::new(Span::call_site(), "#[cached] goes on an `async fn`"),
    }
}

#[derive(Clone, Copy, PartialEq)]
pub(crate) enum ReturnKind {
    Result,
    Option,
    Plain,
}

pub(crate) fn return_kind(ty: &Type) -> ReturnKind {
    match ty {
        Type::Group(group) => return_kind(&group.elem),
        Type::Paren(paren) => return_kind(&paren.elem),
        Type::Path(path) if path.qself.is_none() => match path.path.segments.last() {
            Some(last) if last.ident == "Result" => ReturnKind::Result,
            Some(last) if last.ident == "Option" => ReturnKind::Option,
            _ => ReturnKind::Plain,
        },
        _ => ReturnKind::Plain,
    }
}
