use std::collections::BTreeSet;

use proc_macro2::Span;
use syn::ext::IdentExt;
use syn::spanned::Spanned;
use syn::visit::Visit;
use syn::{
    Error, Expr, FnArg, GenericParam, Ident, LitStr, Pat, Path, Receiver, Result, ReturnType, Type, TypeImplTrait,
};

use crate::ast::{return_kind, CachedFn, ReturnKind};
use crate::attr::{Arg, Config, Format, Ttl};
use crate::diag::{self, Errors};
use crate::key::{Next, Segment, Template};

/// A checked `#[cached]` fn: everything the expansion needs, every name resolved.
pub(crate) struct Plan {
    pub(crate) func: CachedFn,
    pub(crate) ret: Type,
    pub(crate) kind: ReturnKind,
    pub(crate) site: Site,
    pub(crate) key: Key,
    pub(crate) policy: Policy,
    /// `cache = EXPR`; `None` for the default cache.
    pub(crate) cache: Option<Expr>,
    pub(crate) krate: Path,
    /// `batch = param`: a batch function.
    pub(crate) batch: Option<BatchPlan>,
    /// `fallback = EXPR`: the future that answers when the function's answer is an error.
    pub(crate) fallback: Option<Expr>,
}

/// A batch function: `param` is the collection whose items are cached one by one.
pub(crate) struct BatchPlan {
    pub(crate) param: Ident,
    /// How the load rebinds `param` to the missing items (a `Vec` of them).
    pub(crate) binding: Binding,
    pub(crate) max_batch: Option<Expr>,
    /// The other parameters, cloned into each load.
    pub(crate) others: Vec<Ident>,
}

/// The batch parameter's form.
#[derive(Clone, Copy)]
pub(crate) enum Binding {
    /// `&[T]`.
    Slice,
    /// `&Vec<T>`.
    RefVec,
    /// `Vec<T>`: the missing items themselves.
    Owned,
}

/// The static facts of the `SiteInfo` literal.
pub(crate) struct Site {
    /// The `key` template as written, empty without one.
    pub(crate) template: String,
    pub(crate) service: Service,
    pub(crate) method: String,
    pub(crate) fn_name: String,
    pub(crate) format: Format,
    pub(crate) version: u32,
}

pub(crate) enum Service {
    /// The template's first segment.
    Named(String),
    /// The last segment of the module path.
    Module,
    /// The self type's name, resolved at run time.
    SelfType,
}

pub(crate) enum Key {
    /// `key = ".."`: its text and placeholders, each placeholder resolved to its parameter.
    Template(Vec<Part>),
    /// No `key`: the parameters outside `skip` are hashed; `self_type` when the fn has a receiver.
    Hashed { params: Vec<Ident>, self_type: bool },
}

pub(crate) enum Part {
    Lit(String),
    /// `<param.field.0>`, followed by `next`.
    Arg {
        param: Ident,
        fields: Vec<String>,
        next: Next,
    },
}

pub(crate) struct Policy {
    pub(crate) ttl: Ttl,
    pub(crate) none_ttl: Option<Ttl>,
    pub(crate) stale: Option<Ttl>,
    pub(crate) refresh: Option<Ttl>,
    pub(crate) jitter: Option<Expr>,
    pub(crate) budget: Option<Budget>,
    pub(crate) max_ttl: Option<Ttl>,
}

pub(crate) struct Budget {
    /// The `budget` keyword, where a missing `From<Denied>` is reported.
    pub(crate) span: Span,
    pub(crate) name: LitStr,
    pub(crate) weight: Option<Expr>,
}

/// Checks the fn and its arguments together, so that one expansion reports every error.
pub(crate) fn plan(func: CachedFn, config: Result<Config>) -> Result<Plan> {
    let config = config.and_then(|config| relative_key(config, &func));
    let checked = config.and_then(|config| Ok((arguments(&config, &func)?, config)));
    let (ret, (key, config)) = diag::both(signature(&func), checked)?;
    let batch = match &config.batch {
        Some(param) => Some(batch(param, config.max_batch.clone(), &func, &ret, &key)?),
        None => None,
    };
    let fallback = match &config.fallback {
        Some(arg) => Some(fallback(arg, &ret, batch.is_some())?),
        None => None,
    };
    let Config {
        ttl,
        none_ttl,
        stale,
        refresh,
        jitter,
        budget,
        weight,
        key: template,
        prefix: _,
        skip: _,
        cache,
        format,
        version,
        krate,
        max_ttl,
        batch: _,
        max_batch: _,
        fallback: _,
        allow_secret: _,
    } = config;
    let site = site(&func, template.as_ref().map(|arg| &arg.value.1), format, version);
    let budget = budget.map(|arg| Budget { span: arg.span, name: arg.value, weight });
    let policy = Policy {
        ttl: ttl.expect("a method's `ttl` is checked").value,
        none_ttl: none_ttl.map(|arg| arg.value),
        stale: stale.map(|arg| arg.value),
        refresh: refresh.map(|arg| arg.value),
        jitter,
        budget,
        max_ttl: max_ttl.map(|arg| arg.value),
    };
    Ok(Plan { kind: return_kind(&ret), ret, site, key, policy, cache, krate, func, batch, fallback })
}

/// `fallback = EXPR` answers for a function whose answer can be an error: one returning
/// `Result`, not a batch (whose items fail one by one).
fn fallback(arg: &Arg<Expr>, ret: &Type, batch: bool) -> Result<Expr> {
    if batch {
        return Err(Error::new(
            arg.span,
            "`fallback` is not supported with `batch`: a batch's items fail one by one; give the single-item function the fallback",
        ));
    }
    if return_kind(ret) != ReturnKind::Result {
        return Err(Error::new(
            arg.span,
            "`fallback` answers when the function returns an error: it needs a function returning `Result<T, E>`",
        ));
    }
    Ok(arg.value.clone())
}

/// Under an `impl`'s `prefix`, a method without `key` is keyed by its name and parameters:
/// `prefix:method:<a>_<b>` (the parameters in `skip` left out).
fn relative_key(mut config: Config, func: &CachedFn) -> Result<Config> {
    let (Some(prefix), None) = (&config.prefix, &config.key) else {
        return Ok(config);
    };
    let params: Vec<String> = func
        .params()
        .into_iter()
        .filter(|param| !config.skip.iter().any(|skip| skip == *param))
        .map(|param| format!("<{param}>"))
        .collect();
    let mut relative = func.sig.ident.unraw().to_string();
    if !params.is_empty() {
        relative = format!("{relative}:{}", params.join("_"));
    }
    let template = Template::parse(&format!("{}:{relative}", prefix.value()))
        .map_err(|message| Error::new_spanned(prefix, message))?;
    let lit = LitStr::new(&relative, prefix.span());
    config.key = Some(Arg { span: prefix.span(), value: (lit, template), inherited: true });
    Ok(config)
}

fn site(func: &CachedFn, template: Option<&Template>, format: Format, version: u32) -> Site {
    let fn_name = func.sig.ident.unraw().to_string();
    let (service, method) = match template {
        Some(template) => (
            template.service().map_or(Service::Module, |name| Service::Named(name.to_owned())),
            template.method().unwrap_or(&fn_name).to_owned(),
        ),
        None if func.has_receiver() => (Service::SelfType, fn_name.clone()),
        None => (Service::Module, fn_name.clone()),
    };
    let template = template.map_or_else(String::new, |template| template.text.clone());
    Site { template, service, method, fn_name, format, version }
}

/// The checks of a batch function: the parameter exists and is a slice or a `Vec`, the key
/// places one of its items, and the fn returns `Result<HashMap<Item, Value>, E>`.
fn batch(param: &Ident, max_batch: Option<Expr>, func: &CachedFn, ret: &Type, key: &Key) -> Result<BatchPlan> {
    let mut errors = Errors::default();
    let typed = func.sig.inputs.iter().find_map(|input| match input {
        FnArg::Typed(typed) => match &*typed.pat {
            Pat::Ident(pat) if pat.ident == *param => Some(&*typed.ty),
            _ => None,
        },
        FnArg::Receiver(_) => None,
    });
    let Some(ty) = typed else {
        let list: Vec<String> = func.params().iter().map(|p| format!("`{p}`")).collect();
        return Err(Error::new_spanned(
            param,
            format!("unknown parameter `{param}` in `batch`; parameters are: {}", list.join(", ")),
        ));
    };
    let binding = match batch_binding(ty) {
        Some(binding) => Some(binding),
        None => {
            errors.push(Error::new_spanned(
                ty,
                format!("`batch = {param}` caches each item of `{param}`: it must be a slice `&[T]`, a `Vec<T>` or a `&Vec<T>`"),
            ));
            None
        }
    };
    if !returns_result_of_map(ret) {
        errors.push(Error::new_spanned(
            ret,
            "a batch function returns the items it found: `Result<HashMap<Item, Value>, E>`, keyed by the \
             batch parameter's item type",
        ));
    }
    match key {
        Key::Template(parts) => {
            let places = parts.iter().any(|part| matches!(part, Part::Arg { param: p, .. } if p == param));
            if !places {
                errors.push(Error::new_spanned(
                    param,
                    format!("the key must place one item of `{param}`: add `<{param}>` to `key` (each item is cached under its own key)"),
                ));
            }
        }
        Key::Hashed { .. } => errors.push(Error::new_spanned(
            param,
            format!("a batch function caches each item under its own key: give it a `key` that places one item, e.g. `key = \"svc:price:<{param}>\"`"),
        )),
    }
    errors.finish()?;
    let others = func.params().into_iter().filter(|p| *p != param).cloned().collect();
    Ok(BatchPlan { param: param.clone(), binding: binding.expect("checked"), max_batch, others })
}

fn batch_binding(ty: &Type) -> Option<Binding> {
    match ty {
        Type::Group(group) => batch_binding(&group.elem),
        Type::Paren(paren) => batch_binding(&paren.elem),
        Type::Reference(r) if r.mutability.is_none() => match &*r.elem {
            Type::Slice(_) => Some(Binding::Slice),
            elem if last_segment_is(elem, "Vec", 1) => Some(Binding::RefVec),
            _ => None,
        },
        ty if last_segment_is(ty, "Vec", 1) => Some(Binding::Owned),
        _ => None,
    }
}

/// `Result<..>` (the map inside is checked by the compiler, at the return type: an alias of a
/// `HashMap` is fine).
fn returns_result_of_map(ret: &Type) -> bool {
    return_kind(ret) == ReturnKind::Result
}

/// Whether `ty` is a path ending in `name` with `generics` type arguments.
fn last_segment_is(ty: &Type, name: &str, generics: usize) -> bool {
    let Type::Path(path) = ty else { return false };
    path.qself.is_none()
        && path.path.segments.last().is_some_and(|last| {
            last.ident == name
                && matches!(&last.arguments, syn::PathArguments::AngleBracketed(args)
                    if args.args.iter().filter(|a| matches!(a, syn::GenericArgument::Type(_))).count() == generics)
        })
}

/// The checks that need only the fn; returns its return type.
fn signature(func: &CachedFn) -> Result<Type> {
    let mut errors = Errors::default();
    let sig = &func.sig;
    if sig.asyncness.is_none() {
        errors.push(Error::new_spanned(sig.fn_token, "#[cached] requires an `async fn`"));
    }
    if let Some(constness) = sig.constness {
        errors.push(Error::new_spanned(constness, "#[cached] fns cannot be `const`"));
    }
    if let Some(variadic) = &sig.variadic {
        errors.push(Error::new_spanned(variadic, "#[cached] does not support variadic parameters"));
    }
    for attr in &func.attrs {
        if attr.path().segments.last().is_some_and(|s| s.ident == "cached") {
            errors.push(Error::new_spanned(attr, "#[cached] applied twice"));
        }
    }
    for param in &sig.generics.params {
        let (kind, name) = match param {
            GenericParam::Lifetime(_) => continue,
            GenericParam::Type(param) => ("type", &param.ident),
            GenericParam::Const(param) => ("const", &param.ident),
        };
        errors.push(Error::new_spanned(
            name,
            format!(
                "#[cached] does not support generic {kind} parameters: one cache site would serve every \
                 `{name}`, and the key cannot tell them apart; use a concrete type (lifetimes are fine)"
            ),
        ));
    }
    for input in &sig.inputs {
        match input {
            FnArg::Receiver(receiver) => {
                errors.check(self_by_reference(receiver));
            }
            FnArg::Typed(typed) => {
                if !matches!(&*typed.pat, Pat::Ident(pat) if pat.subpat.is_none()) {
                    errors.push(Error::new_spanned(
                        &typed.pat,
                        "#[cached] names every parameter in the cache key: bind it to a name \
                         (e.g. `pair: (u32, u32)`) and destructure it in the body",
                    ));
                }
                let mut visitor = ImplTrait(Vec::new());
                visitor.visit_type(&typed.ty);
                for impl_trait in visitor.0 {
                    errors.push(Error::new_spanned(
                        impl_trait,
                        "#[cached] does not support `impl Trait` parameters: they are generic, and the \
                         key cannot tell instantiations apart; use a concrete type",
                    ));
                }
            }
        }
    }
    let ret = match &sig.output {
        ReturnType::Default => {
            return Err(errors.with(Error::new_spanned(
                sig,
                format!(
                    "#[cached] fn `{}` returns nothing, so there is nothing worth caching; add a return type",
                    sig.ident
                ),
            )))
        }
        ReturnType::Type(_, ty) => &**ty,
    };
    match ret {
        Type::Tuple(tuple) if tuple.elems.is_empty() => {
            errors.push(Error::new_spanned(ret, "#[cached] fn returns `()`, so there is nothing worth caching"))
        }
        Type::ImplTrait(_) => errors.push(Error::new_spanned(
            ret,
            "#[cached] cannot store an `impl Trait` return value; name the concrete type",
        )),
        _ => {}
    }
    errors.finish()?;
    Ok(ret.clone())
}

fn self_by_reference(receiver: &Receiver) -> Result<()> {
    let by_value = receiver.reference.is_none()
        && match &receiver.colon_token {
            None => true,
            Some(_) => {
                matches!(&*receiver.ty, Type::Path(p) if p.qself.is_none() && p.path.is_ident("Self"))
            }
        };
    if by_value {
        return Err(Error::new_spanned(
            receiver.self_token,
            "#[cached] methods take `&self`: by-value `self` would be consumed by every call, \
             even when the cached value is returned without running the body",
        ));
    }
    Ok(())
}

struct ImplTrait<'ast>(Vec<&'ast TypeImplTrait>);

impl<'ast> Visit<'ast> for ImplTrait<'ast> {
    fn visit_type_impl_trait(&mut self, node: &'ast TypeImplTrait) {
        self.0.push(node);
    }
}

/// The checks that relate the arguments to the fn; returns the key with its parameters resolved.
fn arguments(config: &Config, func: &CachedFn) -> Result<Key> {
    let mut errors = Errors::default();
    let params = func.params();
    let names = || match params.len() {
        0 => "the fn has no parameters".to_owned(),
        _ => {
            let list: Vec<String> = params.iter().map(|p| format!("`{p}`")).collect();
            format!("parameters are: {}", list.join(", "))
        }
    };
    let is_param = |name: &str| params.iter().any(|p| *p == name);

    let mut skipped = BTreeSet::new();
    for name in &config.skip {
        if name == "self" {
            errors.push(Error::new_spanned(name, "`self` is never part of the cache key; remove it from `skip`"));
        } else if !is_param(&name.to_string()) {
            errors.push(Error::new_spanned(name, format!("unknown parameter `{name}` in `skip`; {}", names())));
        } else if !skipped.insert(name.to_string()) {
            errors.push(Error::new_spanned(name, format!("`{name}` is listed twice in `skip`")));
        }
    }

    let key = match &config.key {
        None => {
            let hashed = params.iter().filter(|param| !config.skip.iter().any(|skip| skip == **param));
            Key::Hashed { params: hashed.map(|param| (*param).clone()).collect(), self_type: func.has_receiver() }
        }
        Some(key) => {
            let (lit, template) = &key.value;
            let mut in_key = BTreeSet::new();
            let mut parts = Vec::new();
            for (index, segment) in template.segments.iter().enumerate() {
                let placeholder = match segment {
                    Segment::Lit(text) => {
                        parts.push(Part::Lit(text.clone()));
                        continue;
                    }
                    Segment::Arg(placeholder) => placeholder,
                };
                match params.iter().find(|param| **param == placeholder.param.as_str()) {
                    Some(param) => parts.push(Part::Arg {
                        param: (*param).clone(),
                        fields: placeholder.fields.clone(),
                        next: template.next_after(index),
                    }),
                    None => errors.push(Error::new_spanned(
                        lit,
                        format!("unknown placeholder `{placeholder}` in key; {}", names()),
                    )),
                }
                in_key.insert(placeholder.param.as_str());
            }
            for name in &config.skip {
                if in_key.contains(name.to_string().as_str()) {
                    errors.push(Error::new_spanned(
                        name,
                        format!("`{name}` is both in the key and in `skip`; remove it from one of them"),
                    ));
                }
            }
            for param in &params {
                let name = param.to_string();
                // A batch parameter missing from the key is reported by the batch checks.
                let batch = config.batch.as_ref().is_some_and(|b| b == *param);
                if !in_key.contains(name.as_str()) && !skipped.contains(&name) && !batch {
                    errors.push(Error::new_spanned(
                        param,
                        format!(
                            "parameter `{name}` is not part of the cache key: calls that differ only in \
                             `{name}` would share one cached value; add `<{name}>` to `key = \"...\"` or \
                             list it in `skip({name})`"
                        ),
                    ));
                }
            }
            Key::Template(parts)
        }
    };

    crate::secret::check(&key, &params, &config.allow_secret, &mut errors);
    // An inherited default that does not fit is reported on the method, which is what differs.
    let method_span = || func.return_type().map_or_else(|| func.sig.ident.span(), |ty| ty.span());
    if let Some(budget) = &config.budget {
        if func.return_kind() != Some(ReturnKind::Result) {
            let (span, from) = inherited(budget, method_span);
            errors.push(Error::new(
                span,
                format!(
                    "`budget` needs a `Result<_, E>` return type: a denied call returns \
                     `Err(E::from(syntra_cache::budget::Denied))`{from}"
                ),
            ));
        }
    }
    if let Some(none_ttl) = &config.none_ttl {
        if func.return_kind() != Some(ReturnKind::Option) {
            let (span, from) = inherited(none_ttl, method_span);
            let message = format!("`none_ttl` applies only to fns returning `Option<_>`{from}");
            errors.push(Error::new(span, message));
        }
    }
    errors.finish()?;
    Ok(key)
}

/// Where to report an argument that does not fit the fn: at the argument, or at the fn when the
/// `impl` set it; and the words that say so.
fn inherited<T>(arg: &Arg<T>, method_span: impl Fn() -> Span) -> (Span, &'static str) {
    match arg.inherited {
        true => (method_span(), "; it is a default of the `impl`'s `#[cached]`: set it on the methods it applies to"),
        false => (arg.span, ""),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attr::Args;
    use proc_macro2::TokenStream;
    use quote::quote;

    fn plan_of(args: TokenStream, item: TokenStream) -> Result<Plan> {
        let config = syn::parse2::<Args>(args).map(Args::inherit).and_then(Args::build);
        plan(CachedFn::from_item(item)?, config)
    }

    fn messages(args: TokenStream, item: TokenStream) -> String {
        match plan_of(args, item) {
            Ok(_) => panic!("expected errors"),
            Err(error) => error.into_iter().map(|e| e.to_string()).collect::<Vec<_>>().join("\n"),
        }
    }

    #[test]
    fn key_checks() {
        let out = messages(
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

    #[test]
    fn resolves_the_key() {
        let plan = plan_of(
            quote!(ttl = 1, key = "svc:get:<id>_<user.name.0>"),
            quote!(
                async fn get(&self, id: u8, user: &User) -> Option<u8> {
                    None
                }
            ),
        )
        .unwrap();
        assert!(plan.kind == ReturnKind::Option);
        assert!(matches!(&plan.site.service, Service::Named(name) if name == "svc"));
        assert_eq!((plan.site.method.as_str(), plan.site.template.as_str()), ("get", "svc:get:<id>_<user.name.0>"));
        let Key::Template(parts) = &plan.key else { panic!("expected a template") };
        let parts: Vec<String> = parts
            .iter()
            .map(|part| match part {
                Part::Lit(text) => text.clone(),
                Part::Arg { param, fields, next } => format!("<{param}{fields:?}> {next:?}"),
            })
            .collect();
        assert_eq!(parts, ["svc:get:", "<id[]> Lit('_')", "_", "<user[\"name\", \"0\"]> End"]);
    }

    #[test]
    fn hashes_the_parameters_without_a_key() {
        let plan = plan_of(
            quote!(ttl = 1, skip(trace)),
            quote!(
                async fn r#find(&self, id: u8, trace: u8) -> u8 {
                    id
                }
            ),
        )
        .unwrap();
        assert!(plan.kind == ReturnKind::Plain);
        assert!(matches!(plan.site.service, Service::SelfType));
        assert_eq!((plan.site.method.as_str(), plan.site.fn_name.as_str()), ("find", "find"));
        let Key::Hashed { params, self_type: true } = &plan.key else { panic!("expected hashed params and Self") };
        assert_eq!(params.len(), 1);
        assert_eq!(params[0], "id");

        let plan = plan_of(
            quote!(ttl = 1),
            quote!(
                async fn free(id: u8) -> u8 {
                    id
                }
            ),
        )
        .unwrap();
        assert!(matches!(plan.site.service, Service::Module));
        assert!(matches!(&plan.key, Key::Hashed { self_type: false, .. }));
    }

    #[test]
    fn a_prefix_keys_a_method_by_its_name_and_parameters() {
        let item = quote!(
            async fn market_chart(&self, id: &str, vs: &str, r#days: u32, trace: u8) -> u8 {
                1
            }
        );
        let plan = plan_of(quote!(ttl = 1, skip(trace), __service(prefix = "coingecko")), item).unwrap();
        assert_eq!(plan.site.template, "coingecko:market_chart:<id>_<vs>_<r#days>");
        assert!(matches!(&plan.site.service, Service::Named(name) if name == "coingecko"));
        assert_eq!(plan.site.method, "market_chart");
        let plan = plan_of(
            quote!(ttl = 1, __service(prefix = "coingecko")),
            quote!(
                async fn trending(&self) -> u8 {
                    1
                }
            ),
        )
        .unwrap();
        assert_eq!(plan.site.template, "coingecko:trending");
    }

    #[test]
    fn an_inherited_default_that_does_not_fit_is_reported_on_the_method() {
        let out = messages(
            quote!(ttl = 1, __service(none_ttl = 5, budget = "svc")),
            quote!(
                async fn f(&self) -> u8 {
                    1
                }
            ),
        );
        for message in [
            "`none_ttl` applies only to fns returning `Option<_>`; it is a default of the `impl`'s `#[cached]`",
            "`budget` needs a `Result<_, E>` return type",
        ] {
            assert!(out.contains(message), "{message}: {out}");
        }
    }
}
