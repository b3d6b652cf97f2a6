use proc_macro2::{Group, Literal, Span, TokenStream, TokenTree};
use quote::{format_ident, quote, quote_spanned, ToTokens};
use syn::ext::IdentExt;
use syn::parse::{Parse, ParseStream};
use syn::spanned::Spanned;
use syn::token::Brace;
use syn::{Attribute, Error, FnArg, Ident, Member, Pat, Result, ReturnType, Signature, TraitItemFn, Type, Visibility};

use crate::attr::{Args, Config, Format, Ttl};
use crate::key::{Next, Segment};
use crate::valid::{self, return_kind, Errors, ReturnKind};

/// An `async fn` whose body is kept as tokens, so that a body that does not parse still expands.
pub(crate) struct CachedFn {
    pub(crate) attrs: Vec<Attribute>,
    pub(crate) vis: Visibility,
    pub(crate) sig: Signature,
    brace_token: Brace,
    inner_attrs: Vec<Attribute>,
    body: TokenStream,
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

    fn has_receiver(&self) -> bool {
        self.sig.receiver().is_some()
    }

    fn return_type(&self) -> Option<&Type> {
        match &self.sig.output {
            ReturnType::Type(_, ty) => Some(ty),
            ReturnType::Default => None,
        }
    }

    pub(crate) fn return_kind(&self) -> Option<ReturnKind> {
        self.return_type().map(return_kind)
    }
}

pub(crate) fn cached(args: TokenStream, item: TokenStream) -> TokenStream {
    let func = match syn::parse2::<CachedFn>(item.clone()) {
        Ok(func) => func,
        Err(error) => return with_error(item.clone(), not_a_fn(error, item)),
    };
    match try_expand(args, &func) {
        Ok(expanded) => expanded,
        Err(error) => with_error(item, error),
    }
}

/// The item unchanged, so that IDEs keep resolving it, plus the errors.
fn with_error(item: TokenStream, error: Error) -> TokenStream {
    let error = error.into_compile_error();
    quote!(#item #error)
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

fn try_expand(args: TokenStream, func: &CachedFn) -> Result<TokenStream> {
    let mut errors = Errors::default();
    errors.check(valid::signature(func));
    let config = errors.check(syn::parse2::<Args>(args).and_then(Args::build));
    if let Some(config) = &config {
        errors.check(valid::arguments(config, func));
    }
    errors.finish()?;
    Ok(generate(&config.expect("no errors"), func))
}

// Input:
//     #[cached(ttl = 90, key = "svc:get:<id>")]
//     async fn get(&self, id: u64) -> Result<T, E> { BODY }
//
// Output:
//     async fn get(&self, id: u64) -> Result<T, E> {
//         assert_outcome::<Result<T, E>>();
//         static __CACHE_SITE: Site = Site::new(SiteInfo { service: Named("svc"), method: "get", .. });
//         let __cache_handle: &Cache = default_cache();
//         let mut __cache_key = KeyWriter::new(__cache_handle, &__CACHE_SITE, None);
//         __cache_key.lit("svc:get:");
//         __cache_key.arg(&id, Next::End);
//         let __cache_policy = Policy::new(Ok(Duration::from_secs(90)));
//         cached::<Result<T, E>, _>(&__CACHE_SITE, __cache_handle, __cache_key.finish(), __cache_policy,
//             async move {
//                 if false { let __cache_ret: Result<T, E> = loop {}; return __cache_ret; }
//                 BODY
//             },
//         ).await
//     }
//
// A plain `-> T` caches `Plain<T>`: `cached::<Plain<T>, _>(.., async move { Plain(async move {..}.await) }).await.0`.
fn generate(config: &Config, func: &CachedFn) -> TokenStream {
    let CachedFn { attrs, vis, sig, brace_token, inner_attrs, body } = func;
    let krate = &config.krate;
    let private = quote!(#krate::__private);
    let ret = func.return_type().expect("validated");
    let ret_span = ret.span();

    let fake_return = quote_spanned! {ret_span=>
        #[allow(
            unknown_lints,
            unreachable_code,
            clippy::diverging_sub_expression,
            clippy::empty_loop,
            clippy::let_unit_value,
            clippy::let_with_type_underscore,
            clippy::needless_return,
            clippy::unreachable
        )]
        if false {
            let __cache_ret: #ret = loop {};
            return __cache_ret;
        }
    };

    let plain = return_kind(ret) == ReturnKind::Plain;
    let private_at_ret = private_at(krate, ret_span);
    let outcome = if plain { quote_spanned!(ret_span=> #private_at_ret::Plain<#ret>) } else { quote!(#ret) };
    let assert_outcome = quote_spanned!(ret_span=> #private_at_ret::assert_outcome::<#outcome>(););
    let call = quote_spanned!(ret_span=> #private_at_ret::cached::<#outcome, _>);

    let site = site(config, func, &private);
    let handle = match &config.cache {
        Some(expr) => {
            let private = private_at(krate, expr.span());
            // A `let` of its own extends the temporary's life: `cache = shared()` returning a
            // `&Cache` works.
            let owner = quote_spanned!(expr.span()=> let __cache_owner = &(#expr););
            quote_spanned!(expr.span()=> #owner let __cache_handle: &#krate::Cache = #private::as_cache(__cache_owner);)
        }
        None => quote!(let __cache_handle: &#krate::Cache = #private::default_cache();),
    };
    let type_name = if config.key.is_none() && func.has_receiver() {
        quote!(::core::option::Option::Some(::core::any::type_name::<Self>))
    } else {
        quote!(::core::option::Option::None)
    };
    let key_parts = key_parts(config, func, &private);

    let ttl = ttl(&config.ttl, krate);
    let none_ttl = config.none_ttl.as_ref().map(|arg| {
        let none_ttl = self::ttl(&arg.value, krate);
        quote!(.none_ttl(#none_ttl))
    });
    let stale = config.stale.as_ref().map(|arg| {
        let stale = self::ttl(&arg.value, krate);
        quote!(.stale(#stale))
    });
    let refresh = config.refresh.as_ref().map(|arg| {
        let refresh = self::ttl(&arg.value, krate);
        quote!(.refresh(#refresh))
    });
    let jitter = config
        .jitter
        .as_ref()
        .map(|expr| quote_spanned!(expr.span()=> .jitter(::core::convert::Into::<f64>::into(#expr))));
    let budget = config.budget.as_ref().map(|arg| {
        let name = &arg.value;
        let weight = match &config.weight {
            Some(w) => quote_spanned!(w.span()=> ::core::convert::identity::<u32>(#w)),
            None => quote!(1u32),
        };
        let private_at_budget = private_at(krate, arg.span);
        let on_denied = quote_spanned! {arg.span=>
            |__cache_denied: #private_at_budget::Denied| ::core::result::Result::Err(::core::convert::From::from(__cache_denied))
        };
        quote! {
            .budget(#name, #weight, #on_denied)
            .rate_limited({
                #[allow(unused_imports)]
                use #private::{HintSome as _, HintNone as _};
                (&&#private::Hint::<#outcome>::new()).hint()
            })
        }
    });
    // Autoref specialisation: single-flight followers get a copy of an uncached outcome (an
    // error) when it is `Clone + Send + Sync`, and compute themselves otherwise.
    let share = quote! {
        .share({
            #[allow(unused_imports)]
            use #private::{ShareClone as _, ShareNone as _};
            (&&#private::Share::<#outcome>::new()).sharer()
        })
    };

    let mut block = TokenStream::new();
    brace_token.surround(&mut block, |tokens| body.to_tokens(tokens));
    let body = quote!(async move { #fake_return #block });
    let (future, unwrap) =
        if plain { (quote!(async move { #private::Plain(#body.await) }), quote!(.0)) } else { (body, quote!()) };
    let call = quote_spanned! {ret_span=>
        #call(&__CACHE_SITE, __cache_handle, __cache_key.finish(), __cache_policy, #future).await #unwrap
    };

    let mut output = quote!(#(#attrs)* #vis #sig);
    brace_token.surround(&mut output, |tokens| {
        tokens.extend(quote! {
            #(#inner_attrs)*
            #assert_outcome
            #site
            #handle
            let mut __cache_key = #private::KeyWriter::new(__cache_handle, &__CACHE_SITE, #type_name);
            #key_parts
            let __cache_policy = #private::Policy::new(#ttl) #none_ttl #stale #refresh #jitter #budget #share;
            #call
        });
    });
    output
}

// Input:  key = "svc:get:<id>" on `async fn get(..)`
// Output: static __CACHE_SITE: Site = Site::new(SiteInfo { template: "svc:get:<id>",
//             service: Service::Named("svc"), method: "get", fn_name: "get", .. });
fn site(config: &Config, func: &CachedFn, private: &TokenStream) -> TokenStream {
    let fn_name = func.sig.ident.unraw().to_string();
    let template = config.key.as_ref().map(|key| &key.value.1);
    let module = quote!(#private::Service::Module(::core::module_path!()));
    let (service, method) = match template {
        Some(template) => (
            template.service().map_or(module, |name| quote!(#private::Service::Named(#name))),
            template.method().unwrap_or(&fn_name),
        ),
        None if func.has_receiver() => (quote!(#private::Service::SelfType), fn_name.as_str()),
        None => (module, fn_name.as_str()),
    };
    let text = template.map_or("", |template| &template.text);
    let format = match config.format {
        Format::Json => quote!(#private::Format::Json),
        Format::MessagePack => quote!(#private::Format::MessagePack),
    };
    let version = Literal::u32_suffixed(config.version);
    quote! {
        fn __cache_path() -> &'static str {
            ::core::any::type_name_of_val(&__cache_path)
        }
        static __CACHE_SITE: #private::Site = #private::Site::new(#private::SiteInfo {
            template: #text,
            service: #service,
            method: #method,
            fn_name: #fn_name,
            module: ::core::module_path!(),
            format: #format,
            version: #version,
            path: __cache_path,
        });
    }
}

// Input:  key = "svc:<id>_<user.name>"                 | no key, params `id`, `user`
// Output: __cache_key.lit("svc:");                      | __cache_key.args(&(&id, &user,));
//         __cache_key.arg(&id, Next::Lit('_'));
//         __cache_key.lit("_");
//         __cache_key.arg(&user.name, Next::End);
fn key_parts(config: &Config, func: &CachedFn, private: &TokenStream) -> TokenStream {
    let params = func.params();
    let Some(key) = &config.key else {
        let hashed = params.iter().filter(|param| !config.skip.iter().any(|skip| skip == **param));
        return quote!(__cache_key.args(&(#(&#hashed,)*)););
    };
    let template = &key.value.1;
    let mut parts = TokenStream::new();
    for (index, segment) in template.segments.iter().enumerate() {
        let placeholder = match segment {
            Segment::Lit(text) => {
                parts.extend(quote!(__cache_key.lit(#text);));
                continue;
            }
            Segment::Arg(placeholder) => placeholder,
        };
        let param = *params.iter().find(|param| **param == placeholder.param.as_str()).expect("validated");
        let span = param.span();
        let fields = placeholder.fields.iter().map(|field| match field.parse() {
            Ok(index) => Member::Unnamed(syn::Index { index, span }),
            Err(_) => Member::Named(format_ident!("{}", field, span = span)),
        });
        let next = match template.next_after(index) {
            Next::Lit(c) => quote!(#private::Next::Lit(#c)),
            Next::Arg => quote!(#private::Next::Arg),
            Next::End => quote!(#private::Next::End),
        };
        parts.extend(quote_spanned!(span=> __cache_key.arg(&#param #(.#fields)*, #next);));
    }
    parts
}

// Input:  ttl = 90            | ttl = "500ms"                     | ttl = EXPR
// Output: Ok(from_secs(90))   | Ok(from_millis(500))              | ttl(EXPR)
fn ttl(ttl: &Ttl, krate: &syn::Path) -> TokenStream {
    match ttl {
        Ttl::Millis(millis) if millis.is_multiple_of(1000) => {
            let secs = Literal::u64_suffixed(millis / 1000);
            quote!(::core::result::Result::Ok(::core::time::Duration::from_secs(#secs)))
        }
        Ttl::Millis(millis) => {
            let millis = Literal::u64_suffixed(*millis);
            quote!(::core::result::Result::Ok(::core::time::Duration::from_millis(#millis)))
        }
        Ttl::Expr(expr) => {
            let private = private_at(krate, expr.span());
            quote_spanned!(expr.span()=> #private::ttl(#expr))
        }
    }
}

/// `#krate::__private` with every token at `span`, for code whose errors should point at the
/// user's tokens.
fn private_at(krate: &syn::Path, span: Span) -> TokenStream {
    respan(quote!(#krate::__private), span)
}

fn respan(tokens: TokenStream, span: Span) -> TokenStream {
    tokens
        .into_iter()
        .map(|mut tree| {
            if let TokenTree::Group(group) = &tree {
                let mut inner = Group::new(group.delimiter(), respan(group.stream(), span));
                inner.set_span(span);
                tree = TokenTree::Group(inner);
            } else {
                tree.set_span(span);
            }
            tree
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expand(args: TokenStream, item: TokenStream) -> String {
        cached(args, item).to_string()
    }

    #[test]
    fn prints_expansions() {
        let cases = [
            (
                quote!(ttl = 90, key = "coingecko:price:<id>_<vs>"),
                quote!(
                    async fn price(&self, id: &str, vs: &str) -> Result<Price, ApiError> {
                        self.get(id, vs).await
                    }
                ),
            ),
            (
                quote!(ttl = "500ms", none_ttl = "1m", cache = self.cache, format = "msgpack"),
                quote!(
                    pub async fn find(&self, id: u64, _trace: u8) -> Option<User> {
                        None
                    }
                ),
            ),
            (
                quote!(ttl = interval.ttl_secs(), skip(interval), crate = "my::cache", version = 2),
                quote!(
                    async fn candles(interval: Interval) -> Vec<Candle> {
                        vec![]
                    }
                ),
            ),
        ];
        for (args, item) in cases {
            let out = expand(args, item);
            assert!(!out.contains("compile_error"), "{out}");
            println!("{out}\n");
        }
    }

    #[test]
    fn reports_errors_with_the_original_item() {
        let out = expand(
            quote!(ttl = 0, key = "a:<idd>"),
            quote!(
                fn f(self, id: u8, (a, b): (u8, u8)) {}
            ),
        );
        for message in [
            "fn f (self , id : u8 , (a , b) : (u8 , u8)) { }",
            "requires an `async fn`",
            "by-value `self`",
            "bind it to a name",
            "returns nothing",
            "`ttl` must be greater than zero",
        ] {
            assert!(out.contains(message), "{message}: {out}");
        }
    }

    #[test]
    fn key_checks() {
        let out = expand(
            quote!(ttl = 1, key = "a:<idd>:<vs.x>", skip(vs, nope), none_ttl = 1),
            quote!(
                async fn f(id: u8, vs: u8, extra: u8) -> u8 {
                    1
                }
            ),
        );
        for message in [
            "unknown placeholder `<idd>` in key; parameters are: `id`, `vs`, `extra`",
            "unknown parameter `nope` in `skip`",
            "`vs` is both in the key and in `skip`",
            "parameter `id` is not part of the cache key",
            "parameter `extra` is not part of the cache key",
            "`none_ttl` applies only to fns returning `Option<_>`",
        ] {
            assert!(out.contains(message), "{message}: {out}");
        }
    }
}
