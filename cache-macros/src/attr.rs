use proc_macro2::Span;
use quote::ToTokens;
use syn::ext::IdentExt;
use syn::parse::{Parse, ParseStream};
use syn::spanned::Spanned;
use syn::{Error, Expr, ExprLit, ExprUnary, Ident, Lit, LitInt, LitStr, Path, Result, Token, UnOp};

use crate::diag::Errors;
use crate::key::Template;

/// Every argument, in the order the "unknown argument" error lists them.
pub(crate) const ARGUMENTS: &[&str] = &[
    "ttl",
    "key",
    "skip",
    "cache",
    "format",
    "none_ttl",
    "stale",
    "refresh",
    "jitter",
    "budget",
    "weight",
    "version",
    "crate",
    "allow_secret",
];

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
    syn::custom_keyword!(allow_secret);
}

/// One argument as written: the span of its name and its value.
pub(crate) struct Arg<T> {
    pub(crate) span: Span,
    pub(crate) value: T,
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
    allow_secret: Option<Arg<Vec<Ident>>>,
}

impl Parse for Args {
    fn parse(input: ParseStream) -> Result<Self> {
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
            } else if input.peek(Ident::peek_any) {
                errors.push(unknown_argument(&input.call(Ident::parse_any)?));
                skip_value(input)?;
            } else {
                return Err(errors.with(lookahead.error()));
            }
            if !input.is_empty() {
                input.parse::<Token![,]>().map_err(|e| errors.with(e))?;
            }
        }
        errors.finish()?;
        Ok(args)
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
        *slot = Some(Arg { span: name.span(), value });
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

fn unknown_argument(name: &Ident) -> Error {
    let expected = ARGUMENTS.join("`, `");
    Error::new_spanned(name, format!("unknown argument `{name}`; expected one of `{expected}`"))
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
    pub(crate) ttl: Ttl,
    pub(crate) none_ttl: Option<Arg<Ttl>>,
    pub(crate) stale: Option<Arg<Ttl>>,
    pub(crate) refresh: Option<Arg<Ttl>>,
    pub(crate) jitter: Option<Expr>,
    pub(crate) budget: Option<Arg<LitStr>>,
    pub(crate) weight: Option<Expr>,
    pub(crate) key: Option<Arg<(LitStr, Template)>>,
    pub(crate) skip: Vec<Ident>,
    pub(crate) cache: Option<Expr>,
    pub(crate) format: Format,
    pub(crate) version: u32,
    pub(crate) krate: Path,
    /// Parameters whose secret-looking names are not secrets (see `secret.rs`).
    pub(crate) allow_secret: Vec<Ident>,
}

pub(crate) enum Ttl {
    Millis(u64),
    Expr(Expr),
}

#[derive(Clone, Copy)]
pub(crate) enum Format {
    Json,
    MessagePack,
}

impl Args {
    pub(crate) fn build(self) -> Result<Config> {
        let mut errors = Errors::default();
        let ttl = match self.ttl {
            Some(arg) => errors.check(parse_ttl("ttl", arg.value)),
            None => {
                errors.push(Error::new(
                    Span::call_site(),
                    "missing `ttl`: every cached entry needs a TTL, e.g. `ttl = 90` or `ttl = \"5m\"`",
                ));
                None
            }
        };
        let none_ttl = self.none_ttl.and_then(|arg| {
            let value = errors.check(parse_ttl("none_ttl", arg.value))?;
            Some(Arg { span: arg.span, value })
        });
        let mut window = |name: &str, arg: Option<Arg<Expr>>| {
            arg.and_then(|arg| {
                let value = errors.check(parse_ttl(name, arg.value))?;
                Some(Arg { span: arg.span, value })
            })
        };
        let stale = window("stale", self.stale);
        let refresh = window("refresh", self.refresh);
        let jitter = self.jitter.and_then(|arg| errors.check(jitter(arg.value)));
        if let (Some(Ttl::Millis(ttl)), Some(Arg { span, value: Ttl::Millis(early) })) = (&ttl, &refresh) {
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
            (Some(arg), None) => {
                errors.push(Error::new(
                    arg.span,
                    "`weight` is what a call costs from its `budget`: add `budget = \"...\"`",
                ));
                None
            }
            (weight, _) => weight.map(|arg| arg.value),
        };
        let key = self.key.and_then(|arg| {
            let template =
                Template::parse(&arg.value.value()).map_err(|message| Error::new_spanned(&arg.value, message));
            Some(Arg { span: arg.span, value: (arg.value, errors.check(template)?) })
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
            ttl: ttl.expect("checked"),
            none_ttl,
            stale,
            refresh,
            jitter,
            budget,
            weight,
            key,
            skip: self.skip.map(|arg| arg.value).unwrap_or_default(),
            cache: self.cache.map(|arg| arg.value),
            format: format.expect("checked"),
            version: version.expect("checked"),
            krate: krate.expect("checked"),
            allow_secret: self.allow_secret.map(|arg| arg.value).unwrap_or_default(),
        })
    }
}

/// `90`, `"1h30m"`, or an expression evaluated at each call.
fn parse_ttl(name: &str, expr: Expr) -> Result<Ttl> {
    let zero = || format!("`{name}` must be greater than zero");
    let millis = match unwrap_group(&expr) {
        Expr::Lit(ExprLit { lit: Lit::Int(int), .. }) => {
            let secs: u64 = int.base10_parse()?;
            if secs == 0 {
                return Err(Error::new_spanned(int, zero()));
            }
            secs.checked_mul(1000).ok_or_else(|| Error::new_spanned(int, format!("`{name}` is too long")))?
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
        assert!(matches!(config.ttl, Ttl::Millis(5_400_000)));
        assert!(matches!(config.none_ttl, Some(Arg { value: Ttl::Millis(5_000), .. })));
        assert_eq!(config.skip.len(), 2);
        assert!(config.cache.is_some());
        assert!(matches!(config.format, Format::MessagePack));
        assert_eq!(config.version, 3);
        assert_eq!(config.krate.to_token_stream().to_string(), "my :: cache");
        let config = build(quote::quote!(ttl = interval.ttl_secs())).unwrap();
        assert!(matches!(config.ttl, Ttl::Expr(_)));
        assert!(matches!(config.format, Format::Json));
    }

    #[test]
    fn argument_errors() {
        assert_eq!(message(quote::quote!(ttl = 1, ttl = 2)), "`ttl` set multiple times");
        assert_eq!(
            message(quote::quote!(ttl = 1, foo = 1 + 2, bar)),
            "unknown argument `foo`; expected one of `ttl`, `key`, `skip`, `cache`, `format`, `none_ttl`, `stale`, \
             `refresh`, `jitter`, `budget`, `weight`, `version`, `crate`, `allow_secret`\n\
             unknown argument `bar`; expected one of `ttl`, `key`, `skip`, `cache`, `format`, `none_ttl`, `stale`, \
             `refresh`, `jitter`, `budget`, `weight`, `version`, `crate`, `allow_secret`"
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
}
