use proc_macro2::Span;
use quote::ToTokens;
use syn::ext::IdentExt;
use syn::parse::{Parse, ParseStream};
use syn::spanned::Spanned;
use syn::{Error, Expr, ExprLit, ExprUnary, Ident, Lit, LitInt, LitStr, Path, Result, Token, UnOp};

use crate::diag::Errors;
use crate::key::Template;

/// Every argument of a method's `#[cached]`, in the order the "unknown argument" error lists them.
pub(crate) const ARGUMENTS: &[&str] = &[
    "ttl",
    "key",
    "skip",
    "cache",
    "ttls",
    "format",
    "none_ttl",
    "stale",
    "refresh",
    "jitter",
    "budget",
    "weight",
    "max_ttl",
    "batch",
    "max_batch",
    "fallback",
    "version",
    "crate",
    "allow_secret",
];

/// Every default an `impl`'s `#[cached]` sets, in the order the "unknown default" error lists them.
pub(crate) const DEFAULTS: &[&str] = &[
    "prefix", "ttl", "cache", "ttls", "format", "none_ttl", "stale", "refresh", "jitter", "budget", "weight",
    "max_ttl", "version", "crate",
];

/// Where the arguments are written: a method's `#[cached]` or an `impl`'s (the defaults).
#[derive(Clone, Copy, PartialEq)]
pub(crate) enum Level {
    Method,
    Impl,
}

/// The hidden argument through which an `impl`'s `#[cached]` hands its defaults to each method:
/// `#[cached(ttl = 90, __service(cache = self.cache, prefix = "svc"))]`.
pub(crate) const SERVICE: &str = "__service";

mod kw {
    syn::custom_keyword!(ttl);
    syn::custom_keyword!(key);
    syn::custom_keyword!(skip);
    syn::custom_keyword!(cache);
    syn::custom_keyword!(format);
    syn::custom_keyword!(none_ttl);
    syn::custom_keyword!(stale);
    syn::custom_keyword!(refresh);
    syn::custom_keyword!(jitter);
    syn::custom_keyword!(budget);
    syn::custom_keyword!(weight);
    syn::custom_keyword!(version);
    syn::custom_keyword!(prefix);
    syn::custom_keyword!(ttls);
    syn::custom_keyword!(max_ttl);
    syn::custom_keyword!(batch);
    syn::custom_keyword!(max_batch);
    syn::custom_keyword!(fallback);
    syn::custom_keyword!(__service);
    syn::custom_keyword!(allow_secret);
}

/// One argument as written: the span of its name and its value.
pub(crate) struct Arg<T> {
    pub(crate) span: Span,
    pub(crate) value: T,
    /// Set on the `impl`'s `#[cached]`, not on the method.
    pub(crate) inherited: bool,
}

impl<T> Arg<T> {
    fn map<U>(self, f: impl FnOnce(T) -> U) -> Arg<U> {
        Arg { span: self.span, value: f(self.value), inherited: self.inherited }
    }
}

/// The arguments as written, before their values are checked.
#[derive(Default)]
pub(crate) struct Args {
    ttl: Option<Arg<Expr>>,
    key: Option<Arg<LitStr>>,
    skip: Option<Arg<Vec<Ident>>>,
    cache: Option<Arg<Expr>>,
    format: Option<Arg<LitStr>>,
    none_ttl: Option<Arg<Expr>>,
    stale: Option<Arg<Expr>>,
    refresh: Option<Arg<Expr>>,
    jitter: Option<Arg<Expr>>,
    budget: Option<Arg<LitStr>>,
    weight: Option<Arg<Expr>>,
    version: Option<Arg<LitInt>>,
    krate: Option<Arg<LitStr>>,
    prefix: Option<Arg<LitStr>>,
    ttls: Option<Arg<Expr>>,
    max_ttl: Option<Arg<Expr>>,
    batch: Option<Arg<Ident>>,
    max_batch: Option<Arg<Expr>>,
    fallback: Option<Arg<Expr>>,
    allow_secret: Option<Arg<Vec<Ident>>>,
    /// The `impl`'s defaults (`__service(..)`), merged by [`Args::inherit`].
    service: Option<Box<Args>>,
}

impl Parse for Args {
    fn parse(input: ParseStream) -> Result<Self> {
        Args::parse_at(input, Level::Method)
    }
}

impl Args {
    /// Parses the arguments of a method's or an `impl`'s `#[cached]`.
    pub(crate) fn parse_at(input: ParseStream, level: Level) -> Result<Self> {
        let mut args = Args::default();
        let mut errors = Errors::default();
        while !input.is_empty() {
            let e = &mut errors;
            let lookahead = input.lookahead1();
            if lookahead.peek(kw::ttl) {
                set::<kw::ttl, _>(input, &mut args.ttl, e, eq)?;
            } else if lookahead.peek(kw::key) {
                set::<kw::key, _>(input, &mut args.key, e, eq)?;
            } else if lookahead.peek(kw::skip) {
                set::<kw::skip, _>(input, &mut args.skip, e, idents)?;
            } else if lookahead.peek(kw::cache) {
                set::<kw::cache, _>(input, &mut args.cache, e, eq)?;
            } else if lookahead.peek(kw::format) {
                set::<kw::format, _>(input, &mut args.format, e, eq)?;
            } else if lookahead.peek(kw::none_ttl) {
                set::<kw::none_ttl, _>(input, &mut args.none_ttl, e, eq)?;
            } else if lookahead.peek(kw::stale) {
                set::<kw::stale, _>(input, &mut args.stale, e, eq)?;
            } else if lookahead.peek(kw::refresh) {
                set::<kw::refresh, _>(input, &mut args.refresh, e, eq)?;
            } else if lookahead.peek(kw::jitter) {
                set::<kw::jitter, _>(input, &mut args.jitter, e, eq)?;
            } else if lookahead.peek(kw::budget) {
                set::<kw::budget, _>(input, &mut args.budget, e, eq)?;
            } else if lookahead.peek(kw::weight) {
                set::<kw::weight, _>(input, &mut args.weight, e, eq)?;
            } else if lookahead.peek(kw::version) {
                set::<kw::version, _>(input, &mut args.version, e, eq)?;
            } else if lookahead.peek(kw::allow_secret) {
                set::<kw::allow_secret, _>(input, &mut args.allow_secret, e, idents)?;
            } else if lookahead.peek(Token![crate]) {
                set::<Token![crate], _>(input, &mut args.krate, e, eq)?;
            } else if lookahead.peek(kw::ttls) {
                set::<kw::ttls, _>(input, &mut args.ttls, e, eq)?;
            } else if lookahead.peek(kw::max_ttl) {
                set::<kw::max_ttl, _>(input, &mut args.max_ttl, e, eq)?;
            } else if lookahead.peek(kw::batch) {
                set::<kw::batch, _>(input, &mut args.batch, e, eq)?;
            } else if lookahead.peek(kw::max_batch) {
                set::<kw::max_batch, _>(input, &mut args.max_batch, e, eq)?;
            } else if lookahead.peek(kw::fallback) {
                set::<kw::fallback, _>(input, &mut args.fallback, e, eq)?;
            } else if input.peek(kw::prefix) {
                set::<kw::prefix, _>(input, &mut args.prefix, e, eq)?;
            } else if input.peek(kw::__service) && level == Level::Method && args.service.is_none() {
                input.parse::<kw::__service>()?;
                let content;
                syn::parenthesized!(content in input);
                args.service = Some(Box::new(Args::parse_at(&content, Level::Impl)?));
            } else if input.peek(Ident::peek_any) {
                errors.push(unknown_argument(&input.call(Ident::parse_any)?, level));
                skip_value(input)?;
            } else {
                return Err(errors.with(lookahead.error()));
            }
            if !input.is_empty() {
                input.parse::<Token![,]>().map_err(|e| errors.with(e))?;
            }
        }
        match level {
            Level::Method => {
                if let Some(prefix) = &args.prefix {
                    errors.push(Error::new(
                        prefix.span,
                        "`prefix` is a default of the `impl`: put it on `#[cached(...)]` above the `impl` block, \
                         or write the whole key on the method with `key = \"...\"`",
                    ));
                }
            }
            Level::Impl => {
                for (name, span) in [
                    ("key", args.key.as_ref().map(|a| a.span)),
                    ("skip", args.skip.as_ref().map(|a| a.span)),
                    ("batch", args.batch.as_ref().map(|a| a.span)),
                    ("max_batch", args.max_batch.as_ref().map(|a| a.span)),
                    ("fallback", args.fallback.as_ref().map(|a| a.span)),
                    ("allow_secret", args.allow_secret.as_ref().map(|a| a.span)),
                ] {
                    if let Some(span) = span {
                        errors.push(Error::new(
                            span,
                            format!("`{name}` names the parameters of one method: put it on the method's `#[cached]`"),
                        ));
                    }
                }
            }
        }
        errors.finish()?;
        Ok(args)
    }

    /// The method's arguments over the `impl`'s defaults (`__service(..)`): an argument the
    /// method sets wins; the others are inherited.
    pub(crate) fn inherit(mut self) -> Args {
        let Some(defaults) = self.service.take() else {
            return self;
        };
        fn or<T>(own: &mut Option<Arg<T>>, default: Option<Arg<T>>) {
            if own.is_none() {
                *own = default.map(|arg| Arg { inherited: true, ..arg });
            }
        }
        let Args {
            ttl,
            key: _,
            skip: _,
            cache,
            format,
            none_ttl,
            stale,
            refresh,
            jitter,
            budget,
            weight,
            version,
            krate,
            prefix,
            ttls,
            max_ttl,
            batch: _,
            max_batch: _,
            fallback: _,
            allow_secret: _,
            service: _,
        } = *defaults;
        or(&mut self.ttl, ttl);
        or(&mut self.cache, cache);
        or(&mut self.format, format);
        or(&mut self.none_ttl, none_ttl);
        or(&mut self.stale, stale);
        or(&mut self.refresh, refresh);
        or(&mut self.jitter, jitter);
        or(&mut self.budget, budget);
        or(&mut self.weight, weight);
        or(&mut self.version, version);
        or(&mut self.krate, krate);
        or(&mut self.prefix, prefix);
        or(&mut self.ttls, ttls);
        or(&mut self.max_ttl, max_ttl);
        self
    }

    /// Checks the values of an `impl`'s defaults, as a method would (without requiring `ttl`).
    pub(crate) fn check_defaults(self) -> Result<()> {
        self.build_at(Level::Impl).map(drop)
    }
}

/// Parses `name <value>` into `slot`, reporting a second `name`.
fn set<K, T>(
    input: ParseStream,
    slot: &mut Option<Arg<T>>,
    errors: &mut Errors,
    value: fn(ParseStream) -> Result<T>,
) -> Result<()>
where
    K: Parse + ToTokens,
{
    let name: K = input.parse()?;
    let value = value(input)?;
    if slot.is_some() {
        let message = format!("`{}` set multiple times", name.to_token_stream());
        errors.push(Error::new_spanned(name, message));
    } else {
        *slot = Some(Arg { span: name.span(), value, inherited: false });
    }
    Ok(())
}

fn eq<T: Parse>(input: ParseStream) -> Result<T> {
    input.parse::<Token![=]>()?;
    input.parse()
}

fn idents(input: ParseStream) -> Result<Vec<Ident>> {
    let content;
    syn::parenthesized!(content in input);
    let list = content.parse_terminated(Ident::parse_any, Token![,])?;
    Ok(list.into_iter().collect())
}

fn unknown_argument(name: &Ident, level: Level) -> Error {
    let message = match level {
        Level::Method => format!("unknown argument `{name}`; expected one of `{}`", ARGUMENTS.join("`, `")),
        Level::Impl => format!(
            "unknown default `{name}`; an `impl`'s `#[cached]` sets `{}` for its `#[cached]` methods",
            DEFAULTS.join("`, `")
        ),
    };
    Error::new_spanned(name, message)
}

fn skip_value(input: ParseStream) -> Result<()> {
    input.step(|cursor| {
        let mut rest = *cursor;
        while let Some((tt, next)) = rest.token_tree() {
            if matches!(&tt, proc_macro2::TokenTree::Punct(p) if p.as_char() == ',') {
                break;
            }
            rest = next;
        }
        Ok(((), rest))
    })
}

/// The checked arguments.
pub(crate) struct Config {
    /// Always set for a method (checked); an `impl` may leave it to its methods.
    pub(crate) ttl: Option<Arg<Ttl>>,
    pub(crate) none_ttl: Option<Arg<Ttl>>,
    pub(crate) stale: Option<Arg<Ttl>>,
    pub(crate) refresh: Option<Arg<Ttl>>,
    pub(crate) jitter: Option<Expr>,
    pub(crate) budget: Option<Arg<LitStr>>,
    pub(crate) weight: Option<Expr>,
    /// The key template, with the `impl`'s `prefix` in front.
    pub(crate) key: Option<Arg<(LitStr, Template)>>,
    /// The `impl`'s `prefix`: a method without `key` is keyed `prefix:method:<param>_<param>`.
    pub(crate) prefix: Option<LitStr>,
    pub(crate) skip: Vec<Ident>,
    pub(crate) cache: Option<Expr>,
    pub(crate) format: Format,
    pub(crate) version: u32,
    pub(crate) krate: Path,
    /// `max_ttl`: the freshness floor under budget pacing.
    pub(crate) max_ttl: Option<Arg<Ttl>>,
    /// `batch = param`: the collection parameter whose items are cached one by one.
    pub(crate) batch: Option<Ident>,
    pub(crate) max_batch: Option<Expr>,
    /// `fallback = EXPR`: a future answering for the function when its own answer is an error.
    pub(crate) fallback: Option<Arg<Expr>>,
    /// Parameters whose secret-looking names are not secrets (see `secret.rs`).
    pub(crate) allow_secret: Vec<Ident>,
}

pub(crate) enum Ttl {
    Millis(u64),
    Expr(Expr),
    /// `ttl = "price"`: the field `price` of the `ttls` table, each ident spanned at the name.
    Named {
        name: LitStr,
        fields: Vec<Ident>,
        table: Expr,
    },
}

#[derive(Clone, Copy)]
pub(crate) enum Format {
    Json,
    MessagePack,
}

impl Args {
    /// Checks a method's arguments, after [`inherit`](Args::inherit).
    pub(crate) fn build(self) -> Result<Config> {
        self.build_at(Level::Method)
    }

    fn build_at(self, level: Level) -> Result<Config> {
        let mut errors = Errors::default();
        let missing_ttl = self.ttl.is_none();
        let table = self.ttls.as_ref().map(|arg| &arg.value);
        let mut duration = |name: &str, arg: Option<Arg<Expr>>| {
            arg.and_then(|arg| {
                let value = errors.check(parse_ttl(name, arg.value, table))?;
                Some(Arg { span: arg.span, value, inherited: arg.inherited })
            })
        };
        let ttl = duration("ttl", self.ttl);
        let none_ttl = duration("none_ttl", self.none_ttl);
        let stale = duration("stale", self.stale);
        let refresh = duration("refresh", self.refresh);
        let max_ttl = duration("max_ttl", self.max_ttl);
        if missing_ttl && level == Level::Method {
            errors.push(Error::new(
                Span::call_site(),
                "missing `ttl`: every cached entry needs a TTL, e.g. `ttl = 90` or `ttl = \"5m\"`",
            ));
        }
        let jitter = self.jitter.and_then(|arg| errors.check(jitter(arg.value)));
        if let (Some(Arg { value: Ttl::Millis(ttl), .. }), Some(Arg { span, value: Ttl::Millis(early), .. })) =
            (&ttl, &refresh)
        {
            if early >= ttl {
                errors.push(Error::new(
                    *span,
                    "`refresh` is the window before expiry in which a hit recomputes the value: it must be shorter than `ttl`",
                ));
            }
        }
        let budget = self.budget.and_then(|arg| {
            let name = arg.value.value();
            let valid = !name.is_empty()
                && name.bytes().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || b"_-.".contains(&c));
            if !valid {
                errors.push(Error::new_spanned(
                    &arg.value,
                    "a budget name is lower-case letters, digits, `_`, `-` or `.`, e.g. `budget = \"coingecko\"`",
                ));
                return None;
            }
            Some(arg)
        });
        let weight = match (self.weight, &budget) {
            (Some(arg), None) if level == Level::Method => {
                errors.push(Error::new(
                    arg.span,
                    "`weight` is what a call costs from its `budget`: add `budget = \"...\"`",
                ));
                None
            }
            (weight, _) => weight.map(|arg| arg.value),
        };
        if let (Some(arg), None) = (&self.max_batch, &self.batch) {
            errors.push(Error::new(
                arg.span,
                "`max_batch` is how many items one upstream call may take: add `batch = <the collection parameter>`",
            ));
        }
        let prefix = self.prefix.and_then(|arg| errors.check(prefix(arg.value)));
        let key = self.key.and_then(|arg| {
            let text = match &prefix {
                Some(prefix) => format!("{}:{}", prefix.value(), arg.value.value()),
                None => arg.value.value(),
            };
            let template = Template::parse(&text).map_err(|message| Error::new_spanned(&arg.value, message));
            let template = errors.check(template)?;
            Some(arg.map(|lit| (lit, template)))
        });
        let format = match self.format {
            Some(arg) => errors.check(format(&arg.value)),
            None => Some(Format::Json),
        };
        let version = match self.version {
            Some(arg) => errors.check(arg.value.base10_parse()),
            None => Some(0),
        };
        let krate =
            match self.krate {
                Some(arg) => errors.check(arg.value.parse::<Path>().map_err(|_| {
                    Error::new_spanned(&arg.value, "expected a path such as `crate = \"my_crate::cache\"`")
                })),
                None => Some(syn::parse_quote!(::syntra_cache)),
            };
        errors.finish()?;
        Ok(Config {
            ttl,
            none_ttl,
            stale,
            refresh,
            jitter,
            budget,
            weight,
            key,
            prefix,
            skip: self.skip.map(|arg| arg.value).unwrap_or_default(),
            cache: self.cache.map(|arg| arg.value),
            format: format.expect("checked"),
            version: version.expect("checked"),
            krate: krate.expect("checked"),
            max_ttl,
            batch: self.batch.map(|arg| arg.value),
            max_batch: self.max_batch.map(|arg| arg.value),
            fallback: self.fallback,
            allow_secret: self.allow_secret.map(|arg| arg.value).unwrap_or_default(),
        })
    }
}

/// `prefix = "coingecko"`: the first segments of every key of the `impl`, plain text.
fn prefix(lit: LitStr) -> Result<LitStr> {
    let text = lit.value();
    let valid = !text.is_empty()
        && !text.starts_with(':')
        && !text.ends_with(':')
        && !text.contains("::")
        && text.bytes().all(|c| c.is_ascii_alphanumeric() || b"_-.:".contains(&c));
    if !valid {
        return Err(Error::new_spanned(
            lit,
            "a key prefix is plain text (letters, digits, `_`, `-`, `.`) in `:`-separated segments, \
             e.g. `prefix = \"coingecko\"`; placeholders go in each method's `key`",
        ));
    }
    Ok(lit)
}

/// `90`, `"1h30m"`, a name in the `ttls` table (`"price"`), or an expression evaluated at each call.
fn parse_ttl(name: &str, expr: Expr, table: Option<&Expr>) -> Result<Ttl> {
    let zero = || format!("`{name}` must be greater than zero");
    let millis = match unwrap_group(&expr) {
        Expr::Lit(ExprLit { lit: Lit::Int(int), .. }) => {
            let secs: u64 = int.base10_parse()?;
            if secs == 0 {
                return Err(Error::new_spanned(int, zero()));
            }
            secs.checked_mul(1000).ok_or_else(|| Error::new_spanned(int, format!("`{name}` is too long")))?
        }
        Expr::Lit(ExprLit { lit: Lit::Str(text), .. })
            if text.value().starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') =>
        {
            return named_ttl(name, text, table);
        }
        Expr::Lit(ExprLit { lit: Lit::Str(text), .. }) => {
            let millis = parse_duration(&text.value()).map_err(|m| Error::new_spanned(text, m))?;
            if millis == 0 {
                return Err(Error::new_spanned(text, zero()));
            }
            millis
        }
        Expr::Lit(ExprLit { lit, .. }) => {
            return Err(Error::new_spanned(
                lit,
                format!(
                    "expected whole seconds (`{name} = 90`), a duration string (`{name} = \"1500ms\"`) or an expression"
                ),
            ))
        }
        Expr::Unary(ExprUnary { op: UnOp::Neg(_), expr: inner, .. }) if matches!(unwrap_group(inner), Expr::Lit(_)) => {
            return Err(Error::new_spanned(&expr, zero()));
        }
        _ => return Ok(Ttl::Expr(expr)),
    };
    Ok(Ttl::Millis(millis))
}

/// `ttl = "price"` or `"coingecko.price"`: fields of the `ttls` table. Each field ident carries
/// the name's span, so rustc reports a misspelled name on it ("no field `prce` on type ...").
fn named_ttl(name: &str, text: &LitStr, table: Option<&Expr>) -> Result<Ttl> {
    let Some(table) = table else {
        return Err(Error::new_spanned(
            text,
            format!(
                "`{name} = \"{}\"` names a TTL of a table, and no table is set: add `ttls = ...` (e.g. \
                 `ttls = self.ttls`) to this `#[cached]` or to the `impl`'s; a duration starts with a digit \
                 (`\"90s\"`)",
                text.value()
            ),
        ));
    };
    let value = text.value();
    let fields: Option<Vec<Ident>> = value
        .split('.')
        .map(|field| syn::parse_str::<Ident>(field).ok().filter(|_| !field.starts_with("r#")))
        .map(|ident| ident.map(|ident| Ident::new(&ident.to_string(), text.span())))
        .collect();
    match fields {
        Some(fields) => Ok(Ttl::Named { name: text.clone(), fields, table: table.clone() }),
        None => Err(Error::new_spanned(
            text,
            format!(
                "invalid TTL name `{value}`; expected field names of the `ttls` table separated by `.`, \
                 e.g. `\"price\"` or `\"coingecko.price\"`"
            ),
        )),
    }
}

/// `jitter = 0.1`: a literal fraction is checked here; any other expression at run time.
fn jitter(expr: Expr) -> Result<Expr> {
    if let Expr::Lit(ExprLit { lit, .. }) = unwrap_group(&expr) {
        let value = match lit {
            Lit::Float(f) => f.base10_parse::<f64>()?,
            Lit::Int(i) => i.base10_parse::<u32>()? as f64,
            _ => return Err(Error::new_spanned(lit, "expected a fraction such as `jitter = 0.1`")),
        };
        if !(0.0..=0.5).contains(&value) {
            return Err(Error::new_spanned(
                lit,
                "`jitter` is the fraction of the TTL to cut at random: between 0.0 and 0.5",
            ));
        }
    }
    Ok(expr)
}

fn unwrap_group(expr: &Expr) -> &Expr {
    match expr {
        Expr::Group(group) => unwrap_group(&group.expr),
        _ => expr,
    }
}

fn format(value: &LitStr) -> Result<Format> {
    match value.value().as_str() {
        "json" => Ok(Format::Json),
        "msgpack" | "messagepack" => Ok(Format::MessagePack),
        other => {
            Err(Error::new_spanned(value, format!("unknown format `{other}`; expected `\"json\"` or `\"msgpack\"`")))
        }
    }
}

/// Parses `"90s"`, `"5m"`, `"1h30m"`, `"500ms"`, `"1.5s"` into milliseconds.
pub(crate) fn parse_duration(text: &str) -> std::result::Result<u64, String> {
    const UNITS: &str = "`ms`, `s`, `m`, `h` or `d`";
    let invalid = || {
        format!(
            "invalid duration `{text}`; expected numbers with units ({UNITS}), e.g. `\"90s\"`, `\"5m\"` or `\"1h30m\"`"
        )
    };
    if text.is_empty() || !text.chars().all(|c| c.is_ascii_alphanumeric() || c == '.') {
        return Err(invalid());
    }
    let mut total: u128 = 0;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(rest.len());
        let (number, tail) = rest.split_at(digits);
        let letters = tail.find(|c: char| !c.is_ascii_alphabetic()).unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(letters);
        let (int, frac) = number.split_once('.').unwrap_or((number, ""));
        if int.is_empty() || frac.contains('.') || (number.contains('.') && frac.is_empty()) {
            return Err(invalid());
        }
        let per_unit: u128 = match unit {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            "" => return Err(format!("missing unit in duration `{text}`; use {UNITS}, e.g. `\"{number}s\"`")),
            other => return Err(format!("unknown unit `{other}` in duration `{text}`; use {UNITS}")),
        };
        let too_long = || format!("duration `{text}` is too long");
        if int.len() > 20 || frac.len() > 20 {
            return Err(too_long());
        }
        let scale = 10u128.pow(frac.len() as u32);
        let int: u128 = int.parse().map_err(|_| invalid())?;
        let frac: u128 = if frac.is_empty() { 0 } else { frac.parse().map_err(|_| invalid())? };
        if !(frac * per_unit).is_multiple_of(scale) {
            return Err(format!("duration `{text}` is not a whole number of milliseconds"));
        }
        total += int * per_unit + frac * per_unit / scale;
        if total > u128::from(u64::MAX) {
            return Err(too_long());
        }
        rest = tail;
    }
    Ok(total as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use syn::parse::Parser;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90s"), Ok(90_000));
        assert_eq!(parse_duration("5m"), Ok(300_000));
        assert_eq!(parse_duration("1h"), Ok(3_600_000));
        assert_eq!(parse_duration("1d"), Ok(86_400_000));
        assert_eq!(parse_duration("1h30m"), Ok(5_400_000));
        assert_eq!(parse_duration("500ms"), Ok(500));
        assert_eq!(parse_duration("1m30s250ms"), Ok(90_250));
        assert_eq!(parse_duration("1.5s"), Ok(1_500));
        assert_eq!(parse_duration("0.25m"), Ok(15_000));
        assert_eq!(parse_duration("0s"), Ok(0));
    }

    #[test]
    fn bad_durations() {
        let err = |s| parse_duration(s).unwrap_err();
        assert!(err("").contains("invalid duration"));
        assert!(err("90").contains("missing unit"));
        assert!(err("5x").contains("unknown unit `x`"));
        assert!(err("5 m").contains("invalid duration"));
        assert!(err("-5s").contains("invalid duration"));
        assert!(err("m").contains("invalid duration"));
        assert!(err("1.s").contains("invalid duration"));
        assert!(err(".5s").contains("invalid duration"));
        assert!(err("1.2.3s").contains("invalid duration"));
        assert!(err("1.0005s").contains("whole number of milliseconds"));
        assert!(err("0.5ms").contains("whole number of milliseconds"));
        assert!(err("99999999999999999999999d").contains("too long"));
        assert!(err("300000000000d").contains("too long"));
    }

    fn build(args: proc_macro2::TokenStream) -> Result<Config> {
        syn::parse2::<Args>(args)?.build()
    }

    fn message(args: proc_macro2::TokenStream) -> String {
        match build(args) {
            Ok(_) => panic!("expected an error"),
            Err(e) => e.into_iter().map(|e| e.to_string()).collect::<Vec<_>>().join("\n"),
        }
    }

    #[test]
    fn arguments() {
        let config = build(quote::quote!(
            ttl = "1h30m",
            key = "svc:m:<id>",
            skip(a, b),
            cache = self.cache,
            format = "msgpack",
            none_ttl = 5,
            version = 3,
            crate = "my::cache",
        ))
        .unwrap();
        assert!(matches!(config.ttl, Some(Arg { value: Ttl::Millis(5_400_000), .. })));
        assert!(matches!(config.none_ttl, Some(Arg { value: Ttl::Millis(5_000), .. })));
        assert_eq!(config.skip.len(), 2);
        assert!(config.cache.is_some());
        assert!(matches!(config.format, Format::MessagePack));
        assert_eq!(config.version, 3);
        assert_eq!(config.krate.to_token_stream().to_string(), "my :: cache");
        let config = build(quote::quote!(ttl = interval.ttl_secs())).unwrap();
        assert!(matches!(config.ttl, Some(Arg { value: Ttl::Expr(_), .. })));
        assert!(matches!(config.format, Format::Json));
    }

    #[test]
    fn argument_errors() {
        assert_eq!(message(quote::quote!(ttl = 1, ttl = 2)), "`ttl` set multiple times");
        assert_eq!(
            message(quote::quote!(ttl = 1, foo = 1 + 2, bar)),
            "unknown argument `foo`; expected one of `ttl`, `key`, `skip`, `cache`, `ttls`, `format`, `none_ttl`, \
             `stale`, `refresh`, `jitter`, `budget`, `weight`, `max_ttl`, `batch`, `max_batch`, `fallback`, `version`, `crate`, \
             `allow_secret`\n\
             unknown argument `bar`; expected one of `ttl`, `key`, `skip`, `cache`, `ttls`, `format`, `none_ttl`, \
             `stale`, `refresh`, `jitter`, `budget`, `weight`, `max_ttl`, `batch`, `max_batch`, `fallback`, `version`, `crate`, \
             `allow_secret`"
        );
        assert!(message(quote::quote!()).starts_with("missing `ttl`"));
        assert_eq!(message(quote::quote!(ttl = 0)), "`ttl` must be greater than zero");
        assert_eq!(message(quote::quote!(ttl = "0s")), "`ttl` must be greater than zero");
        assert_eq!(message(quote::quote!(ttl = -5)), "`ttl` must be greater than zero");
        assert!(message(quote::quote!(ttl = 1.5)).starts_with("expected whole seconds"));
        assert!(message(quote::quote!(ttl = 1, format = "xml")).starts_with("unknown format `xml`"));
        assert_eq!(
            message(quote::quote!(ttl = "5x", none_ttl = 0)),
            "unknown unit `x` in duration `5x`; use `ms`, `s`, `m`, `h` or `d`\n`none_ttl` must be greater than zero"
        );
    }

    fn defaults(args: proc_macro2::TokenStream) -> Result<()> {
        (|input: ParseStream| Args::parse_at(input, Level::Impl)).parse2(args)?.check_defaults()
    }

    #[test]
    fn named_ttls() {
        let config = build(quote::quote!(ttl = "coingecko.price", stale = "price_stale", ttls = self.ttls)).unwrap();
        let Some(Arg { value: Ttl::Named { name, fields, table }, .. }) = config.ttl else { panic!("expected a name") };
        assert_eq!(name.value(), "coingecko.price");
        assert_eq!(fields.iter().map(|f| f.to_string()).collect::<Vec<_>>(), ["coingecko", "price"]);
        assert_eq!(table.to_token_stream().to_string(), "self . ttls");
        assert!(matches!(config.stale, Some(Arg { value: Ttl::Named { .. }, .. })));
        assert!(message(quote::quote!(ttl = "price")).contains("names a TTL of a table, and no table is set"));
        assert!(message(quote::quote!(ttl = "a..b", ttls = t)).starts_with("invalid TTL name `a..b`"));
        assert!(message(quote::quote!(ttl = "a.fn", ttls = t)).starts_with("invalid TTL name"));
        // A duration starts with a digit; a name with a letter.
        assert!(matches!(build(quote::quote!(ttl = "1.5s")).unwrap().ttl, Some(Arg { value: Ttl::Millis(1_500), .. })));
    }

    #[test]
    fn the_method_wins_over_the_impl() {
        let args = quote::quote!(ttl = 5, jitter = 0.2, __service(ttl = 90, jitter = 0.1, cache = c, prefix = "svc"));
        let args = Args::parse.parse2(args).unwrap().inherit();
        assert!(!args.ttl.as_ref().unwrap().inherited && !args.jitter.as_ref().unwrap().inherited);
        assert!(args.cache.as_ref().unwrap().inherited && args.prefix.as_ref().unwrap().inherited);
        let config = args.build().unwrap();
        assert!(matches!(config.ttl, Some(Arg { value: Ttl::Millis(5_000), inherited: false, .. })));
        assert_eq!(config.jitter.to_token_stream().to_string(), "0.2");
        assert_eq!(config.prefix.unwrap().value(), "svc");
        // A relative key gets the prefix.
        let args = Args::parse.parse2(quote::quote!(ttl = 1, key = "get:<id>", __service(prefix = "a:b"))).unwrap();
        let config = args.inherit().build().unwrap();
        assert_eq!(config.key.unwrap().value.1.text, "a:b:get:<id>");
    }

    #[test]
    fn impl_defaults() {
        defaults(quote::quote!(cache = self.cache, prefix = "coingecko", budget = "coingecko", jitter = 0.1)).unwrap();
        defaults(quote::quote!(weight = 2, ttls = self.ttls, ttl = "price")).unwrap();
        let all = |args| match defaults(args) {
            Ok(()) => panic!("expected an error"),
            Err(e) => e.into_iter().map(|e| e.to_string()).collect::<Vec<_>>().join("\n"),
        };
        assert_eq!(
            all(quote::quote!(tll = 5)),
            "unknown default `tll`; an `impl`'s `#[cached]` sets `prefix`, `ttl`, `cache`, `ttls`, `format`, \
             `none_ttl`, `stale`, `refresh`, `jitter`, `budget`, `weight`, `max_ttl`, `version`, `crate` for its \
             `#[cached]` methods"
        );
        assert!(all(quote::quote!(key = "a:<id>")).starts_with("`key` names the parameters of one method"));
        assert!(all(quote::quote!(skip(a))).starts_with("`skip` names the parameters of one method"));
        assert!(all(quote::quote!(jitter = 0.9)).contains("between 0.0 and 0.5"));
        for bad in ["", ":a", "a:", "a::b", "a:<id>", "A b"] {
            assert!(all(quote::quote!(prefix = #bad)).starts_with("a key prefix is plain text"), "{bad}");
        }
        assert!(all(quote::quote!(__service(ttl = 1))).starts_with("unknown default `__service`"));
        // `prefix` belongs to the impl.
        assert!(message(quote::quote!(ttl = 1, prefix = "a")).starts_with("`prefix` is a default of the `impl`"));
    }
}
