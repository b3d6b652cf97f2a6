use std::collections::BTreeSet;

use syn::visit::Visit;
use syn::{Error, FnArg, GenericParam, Pat, Receiver, Result, ReturnType, Type, TypeImplTrait};

use crate::attr::Config;
use crate::expand::CachedFn;

/// Collects errors so that one expansion reports all of them.
#[derive(Default)]
pub(crate) struct Errors(Option<Error>);

impl Errors {
    pub(crate) fn push(&mut self, error: Error) {
        match &mut self.0 {
            Some(all) => all.combine(error),
            None => self.0 = Some(error),
        }
    }

    pub(crate) fn check<T>(&mut self, result: Result<T>) -> Option<T> {
        result.map_err(|error| self.push(error)).ok()
    }

    /// Adds `error` and returns everything collected so far.
    pub(crate) fn with(&mut self, error: Error) -> Error {
        self.push(error);
        self.0.take().expect("just pushed")
    }

    pub(crate) fn finish(self) -> Result<()> {
        self.0.map_or(Ok(()), Err)
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

/// The checks that need only the fn.
pub(crate) fn signature(func: &CachedFn) -> Result<()> {
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
    match &sig.output {
        ReturnType::Default => errors.push(Error::new_spanned(
            sig,
            format!(
                "#[cached] fn `{}` returns nothing, so there is nothing worth caching; add a return type",
                sig.ident
            ),
        )),
        ReturnType::Type(_, ty) => match &**ty {
            Type::Tuple(tuple) if tuple.elems.is_empty() => {
                errors.push(Error::new_spanned(ty, "#[cached] fn returns `()`, so there is nothing worth caching"))
            }
            Type::ImplTrait(_) => errors.push(Error::new_spanned(
                ty,
                "#[cached] cannot store an `impl Trait` return value; name the concrete type",
            )),
            _ => {}
        },
    }
    errors.finish()
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

/// The checks that relate the arguments to the fn.
pub(crate) fn arguments(config: &Config, func: &CachedFn) -> Result<()> {
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

    if let Some(key) = &config.key {
        let (lit, template) = &key.value;
        let mut in_key = BTreeSet::new();
        for placeholder in template.placeholders() {
            if !is_param(&placeholder.param) {
                errors
                    .push(Error::new_spanned(lit, format!("unknown placeholder `{placeholder}` in key; {}", names())));
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
            if !in_key.contains(name.as_str()) && !skipped.contains(&name) {
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
    }

    if let Some(budget) = &config.budget {
        if func.return_kind() != Some(ReturnKind::Result) {
            errors.push(Error::new(
                budget.span,
                "`budget` needs a `Result<_, E>` return type: a denied call returns `Err(E::from(syntra_cache::budget::Denied))`",
            ));
        }
    }
    if let Some(none_ttl) = &config.none_ttl {
        if func.return_kind() != Some(ReturnKind::Option) {
            errors.push(Error::new(none_ttl.span, "`none_ttl` applies only to fns returning `Option<_>`"));
        }
    }
    errors.finish()
}
