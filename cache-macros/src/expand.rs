use proc_macro2::{Group, Literal, Span, TokenStream, TokenTree};
use quote::{format_ident, quote, quote_spanned, ToTokens};
use syn::spanned::Spanned;
use syn::{Member, Result};

use crate::ast::{CachedFn, ReturnKind};
use crate::attr::{Args, Format, Ttl};
use crate::diag;
use crate::key::Next;
use crate::service;
use crate::valid::{self, BatchPlan, Binding, Budget, Key, Part, Plan, Policy, Service, Site};

pub(crate) fn cached(args: TokenStream, item: TokenStream) -> TokenStream {
    if service::is_impl(&item) {
        return service::expand(args, item);
    }
    match try_expand(args, item.clone()) {
        Ok(expanded) => expanded,
        Err(error) => diag::with_item(item, error),
    }
}

fn try_expand(args: TokenStream, item: TokenStream) -> Result<TokenStream> {
    let func = CachedFn::from_item(item)?;
    let config = syn::parse2::<Args>(args).map(Args::inherit).and_then(Args::build);
    let plan = valid::plan(func, config)?;
    Ok(generate(&plan))
}

// Input:
//     #[cached(ttl = 90, key = "svc:get:<id>")]
//     async fn get(&self, id: u64) -> Result<T, E> { BODY }
//
// Output:
//     async fn get(&self, id: u64) -> Result<T, E> {
//         assert_outcome::<Result<T, E>>();
//         fn __cache_path() -> &'static str { type_name_of_val(&__cache_path) }
//         static __CACHE_SITE: Site = Site::new(SiteInfo { service: Named("svc"), path: __cache_path, .. });
//         let __cache_handle: &Cache = default_cache();  // or: let __cache_owner = &(EXPR); as_cache(__cache_owner)
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
fn generate(plan: &Plan) -> TokenStream {
    let Plan { func, ret, kind, site, key, policy, cache, krate, batch, fallback } = plan;
    let CachedFn { attrs, vis, sig, brace_token, inner_attrs, body } = func;
    let private = quote!(#krate::__private);
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

    let plain = *kind == ReturnKind::Plain;
    let private_at_ret = private_at(krate, ret_span);
    let outcome = if plain { quote_spanned!(ret_span=> #private_at_ret::Plain<#ret>) } else { quote!(#ret) };
    // A batch function's map is not what is cached (its values are, checked by `cached_batch`).
    let assert_outcome = match batch {
        Some(_) => TokenStream::new(),
        None => quote_spanned!(ret_span=> #private_at_ret::assert_outcome::<#outcome>();),
    };
    let call = quote_spanned!(ret_span=> #private_at_ret::cached::<#outcome, _>);

    let site = self::site(site, &private);
    let handle = match cache {
        Some(expr) => {
            let private = private_at(krate, expr.span());
            // A `let` of its own extends the temporary's life: `cache = shared()` returning a
            // `&Cache` works.
            let owner = quote_spanned!(expr.span()=> let __cache_owner = &(#expr););
            quote_spanned!(expr.span()=> #owner let __cache_handle: &#krate::Cache = #private::as_cache(__cache_owner);)
        }
        None => quote!(let __cache_handle: &#krate::Cache = #private::default_cache();),
    };
    let type_name = match key {
        Key::Hashed { self_type: true, .. } => quote!(::core::option::Option::Some(::core::any::type_name::<Self>)),
        _ => quote!(::core::option::Option::None),
    };
    let key_parts = key_parts(key, &private, batch.as_ref().map(|b| &b.param));
    let policy = self::policy(policy, krate, &private, &outcome);

    let mut block = TokenStream::new();
    brace_token.surround(&mut block, |tokens| body.to_tokens(tokens));
    let (key_writer, call) = match batch {
        Some(batch) => {
            (TokenStream::new(), batch_call(batch, &private, &type_name, &key_parts, &fake_return, &block, ret_span))
        }
        None => {
            let body = quote!(async move { #fake_return #block });
            let (future, unwrap) = if plain {
                (quote!(async move { #private::Plain(#body.await) }), quote!(.0))
            } else {
                (body, quote!())
            };
            let call = quote_spanned! {ret_span=>
                #call(&__CACHE_SITE, __cache_handle, __cache_key.finish(), __cache_policy, #future).await #unwrap
            };
            // `fallback = EXPR`: a lazy future made before the body takes the parameters (it
            // borrows them), awaited only when the answer is an error.
            let call = match fallback {
                Some(expr) => {
                    let private = private_at(krate, expr.span());
                    // The annotated `let` reports a fallback of another type at the expression.
                    let fallback =
                        quote_spanned!(expr.span()=> async { let __cache_alt: #ret = (#expr).await; __cache_alt });
                    quote_spanned! {ret_span=>
                        let __cache_fallback = #fallback;
                        #private::fallback::<#ret, _>(&__CACHE_SITE, __cache_handle, #call, __cache_fallback).await
                    }
                }
                None => call,
            };
            let key_writer = quote! {
                let mut __cache_key = #private::KeyWriter::new(__cache_handle, &__CACHE_SITE, #type_name);
                #key_parts
            };
            (key_writer, call)
        }
    };

    let doc = doc_line(attrs, &plan.site, &plan.policy.ttl);
    let mut output = quote!(#(#attrs)* #doc #vis #sig);
    brace_token.surround(&mut output, |tokens| {
        tokens.extend(quote! {
            #(#inner_attrs)*
            #assert_outcome
            #site
            #handle
            #key_writer
            let __cache_policy = #policy;
            #call
        });
    });
    output
}

// Input:
//     #[cached(ttl = 90, key = "cg:price:<ids>_<vs>", batch = ids, max_batch = 250)]
//     async fn prices(&self, ids: &[String], vs: &str) -> Result<HashMap<String, P>, E> { BODY }
//
// Output (the call):
//     cached_batch(&__CACHE_SITE, __cache_handle, __cache_policy, AsRef::<[_]>::as_ref(&ids), 250,
//         |__cache_item| { let mut __cache_key = KeyWriter::new(..); __cache_key.lit("cg:price:");
//                          __cache_key.arg(&__cache_item, Next::Lit('_')); ..; __cache_key.finish() },
//         |__cache_missing| { let vs = Clone::clone(&vs);
//                             async move { let ids = &__cache_missing[..]; BODY } },
//     ).await
fn batch_call(
    batch: &BatchPlan,
    private: &TokenStream,
    type_name: &TokenStream,
    key_parts: &TokenStream,
    fake_return: &TokenStream,
    block: &TokenStream,
    ret_span: Span,
) -> TokenStream {
    let BatchPlan { param, binding, max_batch, others } = batch;
    let max_batch = match max_batch {
        Some(expr) => quote_spanned!(expr.span()=> ::core::convert::identity::<usize>(#expr)),
        None => quote!(100usize),
    };
    let rebind = match binding {
        Binding::Slice => quote_spanned!(param.span()=> let #param = &__cache_missing[..];),
        Binding::RefVec => quote_spanned!(param.span()=> let #param = &__cache_missing;),
        Binding::Owned => quote_spanned!(param.span()=> let #param = __cache_missing;),
    };
    let private_at_ret = respan(private.clone(), ret_span);
    quote_spanned! {ret_span=>
        #private_at_ret::cached_batch(
            &__CACHE_SITE,
            __cache_handle,
            __cache_policy,
            ::core::convert::AsRef::<[_]>::as_ref(&#param),
            #max_batch,
            |__cache_item| {
                let mut __cache_key = #private::KeyWriter::new(__cache_handle, &__CACHE_SITE, #type_name);
                #key_parts
                __cache_key.finish()
            },
            |__cache_missing| {
                #(
                    #[allow(unused_variables, clippy::clone_on_copy, clippy::redundant_clone)]
                    let #others = ::core::clone::Clone::clone(&#others);
                )*
                async move {
                    #rebind
                    #fake_return
                    #block
                }
            },
        )
        .await
    }
}

// Input:  key = "svc:get:<id>" on `async fn get(..)`
// Output: fn __cache_path() -> &'static str { type_name_of_val(&__cache_path) }
//         static __CACHE_SITE: Site = Site::new(SiteInfo { template: "svc:get:<id>",
//             service: Service::Named("svc"), method: "get", fn_name: "get", path: __cache_path, .. });
//
// `__cache_path` is named `krate::module::Type::get::{{closure}}::__cache_path` (`<Type as Trait>`
// in a trait impl), so the runtime can tell apart fns that share a module, a type or a name.
fn site(site: &Site, private: &TokenStream) -> TokenStream {
    let Site { template, service, method, fn_name, format, version } = site;
    let service = match service {
        Service::Named(name) => quote!(#private::Service::Named(#name)),
        Service::Module => quote!(#private::Service::Module(::core::module_path!())),
        Service::SelfType => quote!(#private::Service::SelfType),
    };
    let format = match format {
        Format::Json => quote!(#private::Format::Json),
        Format::MessagePack => quote!(#private::Format::MessagePack),
    };
    let version = Literal::u32_suffixed(*version);
    quote! {
        fn __cache_path() -> &'static str {
            ::core::any::type_name_of_val(&__cache_path)
        }
        static __CACHE_SITE: #private::Site = #private::Site::new(#private::SiteInfo {
            template: #template,
            service: #service,
            method: #method,
            fn_name: #fn_name,
            module: ::core::module_path!(),
            path: __cache_path,
            format: #format,
            version: #version,
        });
    }
}

// Input:  key = "svc:<id>_<user.name>"                 | no key, params `id`, `user`
// Output: __cache_key.lit("svc:");                      | __cache_key.args(&(&id, &user,));
//         __cache_key.arg(&id, Next::Lit('_'));
//         __cache_key.lit("_");
//         __cache_key.arg(&user.name, Next::End);
//
// In a batch function, the batch parameter's placeholder renders the item: `__cache_item`.
fn key_parts(key: &Key, private: &TokenStream, batch: Option<&syn::Ident>) -> TokenStream {
    let parts = match key {
        Key::Hashed { params, .. } => return quote!(__cache_key.args(&(#(&#params,)*));),
        Key::Template(parts) => parts,
    };
    let mut tokens = TokenStream::new();
    for part in parts {
        match part {
            Part::Lit(text) => tokens.extend(quote!(__cache_key.lit(#text);)),
            Part::Arg { param, fields, next } => {
                let span = param.span();
                let fields = fields.iter().map(|field| match field.parse() {
                    Ok(index) => Member::Unnamed(syn::Index { index, span }),
                    Err(_) => Member::Named(format_ident!("{}", field, span = span)),
                });
                let next = match next {
                    Next::Lit(c) => quote!(#private::Next::Lit(#c)),
                    Next::Arg => quote!(#private::Next::Arg),
                    Next::End => quote!(#private::Next::End),
                };
                let value = match batch {
                    Some(batch) if batch == param => quote_spanned!(span=> __cache_item),
                    _ => quote!(#param),
                };
                tokens.extend(quote_spanned!(span=> __cache_key.arg(&#value #(.#fields)*, #next);));
            }
        }
    }
    tokens
}

// Input:  ttl = 90, stale = "5m", budget = "cg", weight = 2
// Output: Policy::new(Ok(from_secs(90))).stale(Ok(from_secs(300)))
//             .budget("cg", identity::<u32>(2), |__cache_denied| Err(From::from(__cache_denied)))
//             .rate_limited(..).share(..)
fn policy(policy: &Policy, krate: &syn::Path, private: &TokenStream, outcome: &TokenStream) -> TokenStream {
    let Policy { ttl, none_ttl, stale, refresh, jitter, budget, max_ttl } = policy;
    let ttl = self::ttl(ttl, krate);
    let none_ttl = none_ttl.as_ref().map(|none_ttl| {
        let none_ttl = self::ttl(none_ttl, krate);
        quote!(.none_ttl(#none_ttl))
    });
    let stale = stale.as_ref().map(|stale| {
        let stale = self::ttl(stale, krate);
        quote!(.stale(#stale))
    });
    let refresh = refresh.as_ref().map(|refresh| {
        let refresh = self::ttl(refresh, krate);
        quote!(.refresh(#refresh))
    });
    let max_ttl = max_ttl.as_ref().map(|max_ttl| {
        let max_ttl = self::ttl(max_ttl, krate);
        quote!(.max_ttl(#max_ttl))
    });
    let jitter =
        jitter.as_ref().map(|expr| quote_spanned!(expr.span()=> .jitter(::core::convert::Into::<f64>::into(#expr))));
    let budget = budget.as_ref().map(|Budget { span, name, weight }| {
        let weight = match weight {
            Some(w) => quote_spanned!(w.span()=> ::core::convert::identity::<u32>(#w)),
            None => quote!(1u32),
        };
        let private_at_budget = private_at(krate, *span);
        let on_denied = quote_spanned! {*span=>
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
    quote!(#private::Policy::new(#ttl) #none_ttl #stale #refresh #max_ttl #jitter #budget #share)
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
        Ttl::Named { name, fields, table } => {
            let private = private_at(krate, name.span());
            quote_spanned!(name.span()=> #private::ttl((#table) #(.#fields)*))
        }
    }
}

// Input:  /// Price of a coin.                 (a documented fn with a key template)
// Output: /// Price of a coin.
//         ///
//         /// Cached under `syntra:coingecko:price:<id>_<vs>` for 90 s (in the default namespace `syntra`).
//
// Only a fn that has docs gets the line, so that `missing_docs` still reports the others.
fn doc_line(attrs: &[syn::Attribute], site: &Site, ttl: &Ttl) -> TokenStream {
    if site.template.is_empty() || !attrs.iter().any(|attr| attr.path().is_ident("doc")) {
        return TokenStream::new();
    }
    let line =
        format!(" Cached under `syntra:{}` for {} (in the default namespace `syntra`).", site.template, describe(ttl));
    quote!(#[doc = ""] #[doc = #line])
}

/// `90 s`, `5 min`, `1500 ms`, ``the TTL `price` of `self.ttls` ``, `` `EXPR` ``.
fn describe(ttl: &Ttl) -> String {
    match ttl {
        Ttl::Millis(millis) if !millis.is_multiple_of(1000) => format!("{millis} ms"),
        Ttl::Millis(millis) => match millis / 1000 {
            secs if secs >= 3600 && secs.is_multiple_of(3600) => format!("{} h", secs / 3600),
            secs if secs >= 60 && secs.is_multiple_of(60) => format!("{} min", secs / 60),
            secs => format!("{secs} s"),
        },
        Ttl::Expr(expr) => format!("`{}`", tidy(expr.to_token_stream())),
        Ttl::Named { name, table, .. } => {
            format!("the TTL `{}` of `{}`", name.value(), tidy(table.to_token_stream()))
        }
    }
}

/// Tokens as a person writes them: `self.ttl(interval)`, not `self . ttl (interval)`.
fn tidy(tokens: TokenStream) -> String {
    let mut text = tokens.to_string();
    for (from, to) in [(" . ", "."), (" (", "("), ("( ", "("), (" )", ")"), (" ,", ","), ("& ", "&"), (" :: ", "::")] {
        text = text.replace(from, to);
    }
    text
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
    fn names_the_fn_in_every_expansion() {
        let item = quote!(
            async fn get(&self, id: u8) -> u8 {
                id
            }
        );
        for args in [quote!(ttl = 1), quote!(ttl = 1, key = "svc:get:<id>")] {
            let out = expand(args, item.clone());
            let nested = "fn __cache_path () -> & 'static str { :: core :: any :: type_name_of_val (& __cache_path) }";
            assert!(out.contains(nested), "{out}");
            assert!(out.contains("path : __cache_path ,"), "{out}");
            assert!(out.find(nested) < out.find("async move"), "{out}");
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

    /// The method's `#[cached]` after the `impl`'s rewrite, as the compiler would expand it next.
    fn expand_service(defaults: TokenStream, item: TokenStream) -> Vec<String> {
        let block: syn::ItemImpl = syn::parse2(cached(defaults, item)).unwrap();
        block
            .items
            .into_iter()
            .filter_map(|item| match item {
                syn::ImplItem::Fn(mut method) => {
                    let at = method.attrs.iter().position(|attr| attr.path().is_ident("cached"));
                    let Some(at) = at else { return Some(method.to_token_stream().to_string()) };
                    let attr = method.attrs.remove(at);
                    let args = attr.meta.require_list().unwrap().tokens.clone();
                    Some(cached(args, method.to_token_stream()).to_string())
                }
                _ => None,
            })
            .collect()
    }

    #[test]
    fn defaults_expand_to_the_same_code_as_arguments_written_out() {
        let explicit = expand(
            quote!(
                ttl = self.ttls.price,
                key = "coingecko:price:<id>_<vs>",
                budget = "coingecko",
                jitter = 0.1,
                stale = self.ttls.price_stale,
                cache = self.cache
            ),
            quote!(
                pub async fn price(&self, id: &str, vs: &str) -> Result<Price, ApiError> {
                    self.get(id, vs).await
                }
            ),
        );
        let methods = expand_service(
            quote!(cache = self.cache, prefix = "coingecko", budget = "coingecko", ttls = self.ttls),
            quote!(
                impl CoinGecko {
                    #[cached(ttl = "price", jitter = 0.1, stale = "price_stale")]
                    pub async fn price(&self, id: &str, vs: &str) -> Result<Price, ApiError> {
                        self.get(id, vs).await
                    }

                    fn get(&self) {}
                }
            ),
        );
        // Token for token, except that a name is a field path in parentheses.
        let normalize = |s: &str| s.replace("(self . ttls) . ", "self . ttls . ");
        assert_eq!(normalize(&methods[0]), explicit);
        assert_eq!(methods[1], "fn get (& self) { }");
    }

    #[test]
    fn documents_the_key_and_the_ttl() {
        let item = quote!(
            /// Price.
            async fn price(&self, id: &str) -> u8 {
                1
            }
        );
        let out = expand(quote!(ttl = 90, key = "cg:price:<id>"), item.clone());
        assert!(
            out.contains(
                r#"# [doc = " Cached under `syntra:cg:price:<id>` for 90 s (in the default namespace `syntra`)."]"#
            ),
            "{out}"
        );
        let out = expand(quote!(ttl = "price", ttls = self.ttls, key = "cg:price:<id>"), item.clone());
        assert!(out.contains("for the TTL `price` of `self.ttls`"), "{out}");
        let out = expand(quote!(ttl = self.ttl(id), key = "cg:price:<id>"), item.clone());
        assert!(out.contains("for `self.ttl(id)`"), "{out}");
        let out = expand(quote!(ttl = "1h", key = "cg:price:<id>"), item);
        assert!(out.contains("for 1 h"), "{out}");
        let undocumented = quote!(
            async fn price(&self, id: &str) -> u8 {
                1
            }
        );
        assert!(!expand(quote!(ttl = 90, key = "cg:price:<id>"), undocumented).contains("Cached under"));
    }

    #[test]
    fn an_impl_without_cached_methods_or_with_bad_defaults_is_an_error() {
        let out = cached(quote!(prefix = "svc"), quote!(impl Svc { fn get(&self) {} }));
        assert!(out.to_string().contains("this `impl` has none"), "{out}");
        let out = cached(
            quote!(prefix = "svc", tll = 1),
            quote!(impl Svc { #[cached(ttl = 1)] async fn get(&self) -> u8 { 1 } }),
        )
        .to_string();
        assert!(out.contains("unknown default `tll`"), "{out}");
        assert!(!out.contains("# [cached"), "the methods expand uncached until the defaults are fixed: {out}");
    }
}
