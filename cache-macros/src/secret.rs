//! Secrets never reach a key: a parameter (or placeholder field) whose name says it holds a
//! secret is refused when it would be written into the key template or hashed into the default
//! key. Keys are readable in Redis, in logs and in metrics; a hash of a low-entropy secret is no
//! protection either.
//!
//! Names are split into `_`-separated words and matched word by word, so `token_address`,
//! `token_id` and `key` stay usable (in this domain `token` is usually a crypto token) while
//! `api_key`, `bot_token` and `client_secret` are caught. A false positive is waved through with
//! `allow_secret(name)`, which is easy to grep for in review.

use std::collections::BTreeSet;

use syn::{Error, Ident};

use crate::diag::Errors;
use crate::valid::{Key, Part};

/// Words that are a secret on their own, wherever they appear in a name.
const ALONE: &[&str] = &[
    "apikey",
    "secret",
    "secrets",
    "password",
    "passwd",
    "passphrase",
    "pwd",
    "privkey",
    "bearer",
    "authorization",
    "credential",
    "credentials",
    "creds",
    "cookie",
    "cookies",
    "jwt",
    "mnemonic",
    "sessionid",
];

/// Words that make the following `key` a secret (`api_key`, `private_key`, ...).
const BEFORE_KEY: &[&str] = &["api", "private", "secret", "signing", "access", "auth", "encryption", "hmac", "master"];

/// Words that make the following `token` a secret (`access_token`, `bot_token`, ...); `token`
/// alone, `token_address` and `token_id` are crypto tokens.
const BEFORE_TOKEN: &[&str] =
    &["access", "auth", "api", "bearer", "session", "refresh", "bot", "id", "csrf", "oauth", "client", "personal"];

/// Word pairs that are secrets (`seed_phrase`, `session_id`).
const PAIRS: &[(&str, &str)] = &[("seed", "phrase"), ("session", "id"), ("private", "token")];

/// Whether `name` reads like a secret; the word that says so.
pub(crate) fn looks_secret(name: &str) -> Option<String> {
    let lower = name.trim_start_matches('_').to_ascii_lowercase();
    let words: Vec<&str> = lower.split('_').filter(|w| !w.is_empty()).collect();
    for (i, w) in words.iter().enumerate() {
        if ALONE.contains(w) {
            return Some((*w).to_owned());
        }
        let Some(next) = words.get(i + 1) else { continue };
        let pair = match *next {
            "key" | "keys" if BEFORE_KEY.contains(w) => true,
            "token" | "tokens" if BEFORE_TOKEN.contains(w) => true,
            _ => PAIRS.contains(&(w, next)),
        };
        if pair {
            return Some(format!("{w}_{next}"));
        }
    }
    None
}

/// Reports every parameter or placeholder field that reads like a secret and would go into the
/// key, unless it is listed in `allow_secret(..)`; reports unknown names in `allow_secret`.
pub(crate) fn check(key: &Key, params: &[&Ident], allowed: &[Ident], errors: &mut Errors) {
    for name in allowed {
        if !params.contains(&name) {
            errors.push(Error::new_spanned(name, format!("unknown parameter `{name}` in `allow_secret`")));
        }
    }
    let allowed: BTreeSet<String> = allowed.iter().map(Ident::to_string).collect();
    let mut reported = BTreeSet::new();
    let mut refuse = |param: &Ident, shown: String, how: &str| {
        let name = param.to_string();
        if allowed.contains(&name) || !reported.insert(shown.clone()) {
            return;
        }
        let Some(word) = looks_secret(shown.rsplit('.').next().unwrap_or(&shown)) else { return };
        errors.push(Error::new_spanned(
            param,
            format!(
                "`{shown}` looks like a secret (`{word}`) and would be {how}: keys are readable in Redis, \
                 logs and metrics. Keep it in the service struct, or list it in `skip({name})`; if it is \
                 not a secret, say so with `allow_secret({name})`"
            ),
        ));
    };
    match key {
        Key::Template(parts) => {
            for part in parts {
                if let Part::Arg { param, fields, .. } = part {
                    refuse(param, param.to_string(), "written into the cache key");
                    let mut path = param.to_string();
                    for field in fields {
                        path = format!("{path}.{field}");
                        refuse(param, path.clone(), "written into the cache key");
                    }
                }
            }
        }
        Key::Hashed { params, .. } => {
            for param in params {
                refuse(param, param.to_string(), "hashed into the default cache key");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::looks_secret;

    #[test]
    fn secret_names() {
        for name in [
            "api_key",
            "apikey",
            "x_api_key",
            "_api_key",
            "API_KEY",
            "secret",
            "client_secret",
            "secret_key",
            "password",
            "db_passwd",
            "private_key",
            "access_token",
            "auth_token",
            "bot_token",
            "bearer",
            "authorization",
            "credential",
            "credentials",
            "cookie",
            "session_token",
            "session_id",
            "seed_phrase",
            "jwt",
        ] {
            assert!(looks_secret(name).is_some(), "{name} is a secret");
        }
        for name in [
            "token",
            "token_address",
            "token_id",
            "tokens",
            "key",
            "cache_key",
            "public_key",
            "id",
            "vs",
            "interval",
            "secretary",
            "passing",
            "keyword",
            "author",
            "session",
        ] {
            assert_eq!(looks_secret(name), None, "{name} is not a secret");
        }
    }
}
