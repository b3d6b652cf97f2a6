//! Distinct arguments never share a key, checked through the code the macro expands to
//! (`#[cached]` + `key_of`, i.e. `KeyWriter`), not a helper of the test's own: short and long
//! strings (past the 64-byte readable limit, where values are hashed), separators, glob
//! characters, numbers written as strings, options and lists.

use proptest::prelude::*;
use std::sync::OnceLock;
use syntra_cache::{cached, key_of, Cache};

fn cache() -> &'static Cache {
    static C: OnceLock<Cache> = OnceLock::new();
    C.get_or_init(Cache::memory)
}

#[cached(ttl = 60, key = "p:sep:<a>_<b>", cache = crate::cache())]
async fn separated(a: String, b: String) -> u8 {
    let _ = (a, b);
    0
}

#[cached(ttl = 60, key = "p:adj:<a><b>", cache = crate::cache())]
async fn adjacent(a: String, b: String) -> u8 {
    let _ = (a, b);
    0
}

#[cached(ttl = 60, key = "p:mixed:<a>:<b>_<c>", cache = crate::cache())]
async fn mixed(a: Option<String>, b: Vec<String>, c: u64) -> u8 {
    let _ = (a, b, c);
    0
}

#[cached(ttl = 60, cache = crate::cache())]
async fn hashed(a: String, b: Option<Vec<String>>) -> u8 {
    let _ = (a, b);
    0
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[ab_:~%*?0-9-]{0,4}",
        ".{0,8}",
        "[a-z_]{60,70}",
        "[0-9]{1,3}",
        Just("~none".to_owned()),
        Just("true".to_owned()),
    ]
}

fn key<F: std::future::Future>(f: F) -> String {
    key_of(f).expect("a #[cached] call").key
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1500))]

    #[test]
    fn separated_keys(a in (text(), text()), b in (text(), text())) {
        let (ka, kb) = (key(separated(a.0.clone(), a.1.clone())), key(separated(b.0.clone(), b.1.clone())));
        prop_assert_eq!(a == b, ka == kb, "{:?} {:?} -> {} {}", a, b, ka, kb);
        prop_assert!(ka.len() <= 512 && !ka.contains(['*', '?', '[', ']', ' ']));
    }

    #[test]
    fn adjacent_keys(a in (text(), text()), b in (text(), text())) {
        let (ka, kb) = (key(adjacent(a.0.clone(), a.1.clone())), key(adjacent(b.0.clone(), b.1.clone())));
        prop_assert_eq!(a == b, ka == kb, "{:?} {:?} -> {} {}", a, b, ka, kb);
    }

    #[test]
    fn mixed_keys(
        a in (proptest::option::of(text()), proptest::collection::vec(text(), 0..3), 0u64..200),
        b in (proptest::option::of(text()), proptest::collection::vec(text(), 0..3), 0u64..200),
    ) {
        let ka = key(mixed(a.0.clone(), a.1.clone(), a.2));
        let kb = key(mixed(b.0.clone(), b.1.clone(), b.2));
        prop_assert_eq!(a == b, ka == kb, "{:?} {:?} -> {} {}", a, b, ka, kb);
    }

    #[test]
    fn hashed_keys(
        a in (text(), proptest::option::of(proptest::collection::vec(text(), 0..3))),
        b in (text(), proptest::option::of(proptest::collection::vec(text(), 0..3))),
    ) {
        let (ka, kb) = (key(hashed(a.0.clone(), a.1.clone())), key(hashed(b.0.clone(), b.1.clone())));
        prop_assert_eq!(a == b, ka == kb, "{:?} {:?} -> {} {}", a, b, ka, kb);
    }
}

#[test]
fn readable_when_it_can_be() {
    assert_eq!(key(separated("bitcoin".into(), "usd".into())), "syntra:p:sep:bitcoin_usd");
    assert_eq!(key(separated("wrapped_btc".into(), "usd".into())), "syntra:p:sep:wrapped%5Fbtc_usd");
    let k = key(mixed(None, vec![], 100));
    assert!(k.starts_with("syntra:p:mixed:~none:~") && k.ends_with("_100"), "{k}");
}
