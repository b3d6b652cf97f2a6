//! Property tests at scale, on the two places where outside input meets our code: key rendering
//! (through the macro's own code path) and the bytes read back from Redis (envelope decoding,
//! JSON and MessagePack, and the seal).
//!
//! The normal run uses a few thousand cases per property; the `#[ignore]`d `*_at_scale` tests run
//! `SYNTRA_FUZZ_CASES` (default 200,000) each and print how many ran:
//! `cargo test --release --test fuzz -- --ignored --nocapture`.

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, TestRunner};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::OnceLock;
use std::time::Duration;
use syntra_cache::codec::{self, Format, Meta};
use syntra_cache::seal::Sealer;
use syntra_cache::{cached, key_of, Cache};

fn cache() -> &'static Cache {
    static C: OnceLock<Cache> = OnceLock::new();
    C.get_or_init(Cache::memory)
}

#[cached(ttl = 60, key = "z:sep:<a>_<b>", cache = crate::cache())]
async fn separated(a: String, b: String) -> u8 {
    let _ = (a, b);
    0
}

#[cached(ttl = 60, key = "z:mixed:<a><b>:<c>", cache = crate::cache())]
async fn mixed(a: Option<String>, b: Vec<String>, c: i64) -> u8 {
    let _ = (a, b, c);
    0
}

#[cached(ttl = 60, cache = crate::cache())]
async fn hashed(a: String, b: Option<Vec<u8>>, c: (u8, String)) -> u8 {
    let _ = (a, b, c);
    0
}

/// Few characters, many separators and escapes, lengths around the hashing threshold: inputs
/// that sit close to each other, where collisions would be.
fn text() -> BoxedStrategy<String> {
    prop_oneof![
        "[ab_:~%0-]{0,5}",
        "[0-9]{1,3}",
        ".{0,6}",
        "[ab]{62,66}",
        Just("~none".to_owned()),
        Just("true".to_owned()),
        Just(String::new()),
    ]
    .boxed()
}

type Tuple = (Option<String>, Vec<String>, i64);

fn tuple() -> impl Strategy<Value = Tuple> {
    (proptest::option::of(text()), proptest::collection::vec(text(), 0..3), -3i64..300)
}

fn key<F: std::future::Future>(f: F) -> String {
    key_of(f).expect("a #[cached] call").key
}

/// Renders `cases` random argument tuples per function and checks that every key was produced
/// by one tuple only (a map from key to tuple: any two of all the tuples, not just pairs).
fn keys_never_collide(cases: u32) -> u64 {
    let mut runner = TestRunner::new(Config { cases, ..Config::default() });
    let mut seen_sep: HashMap<String, (String, String)> = HashMap::new();
    let mut seen_mixed: HashMap<String, Tuple> = HashMap::new();
    let mut seen_hashed: HashMap<String, (String, Option<Vec<u8>>, (u8, String))> = HashMap::new();
    let hashed_args = (text(), proptest::option::of(proptest::collection::vec(any::<u8>(), 0..4)), (0u8..3, text()));
    let mut rendered = 0u64;
    for _ in 0..cases {
        let (a, b) = (text(), text()).new_tree(&mut runner).unwrap().current();
        let k = key(separated(a.clone(), b.clone()));
        assert!(k.len() <= 512 && !k.contains(['*', '?', '[', ']', ' ']), "{k}");
        if let Some(prev) = seen_sep.insert(k.clone(), (a.clone(), b.clone())) {
            assert_eq!(prev, (a, b), "two tuples share {k}");
        }
        let t = tuple().new_tree(&mut runner).unwrap().current();
        let k = key(mixed(t.0.clone(), t.1.clone(), t.2));
        if let Some(prev) = seen_mixed.insert(k.clone(), t.clone()) {
            assert_eq!(prev, t, "two tuples share {k}");
        }
        let h = hashed_args.new_tree(&mut runner).unwrap().current();
        let k = key(hashed(h.0.clone(), h.1.clone(), h.2.clone()));
        if let Some(prev) = seen_hashed.insert(k.clone(), h.clone()) {
            assert_eq!(prev, h, "two tuples share {k}");
        }
        rendered += 3;
    }
    rendered
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Price {
    id: String,
    usd: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Chart {
    prices: Vec<(u64, f64)>,
}

fn meta() -> Meta {
    Meta { written_at_ms: 1_764_000_000_000, ttl: Duration::from_secs(90), stale: Duration::ZERO, negative: false }
}

/// Genuine envelopes (both formats, both types), mutated: bit flips, truncation, splices,
/// random bytes. Decoding never panics, and never yields a value under a fingerprint the bytes
/// do not carry.
fn envelopes_never_decode_as_the_wrong_type(cases: u32) -> u64 {
    let price_ty = codec::fingerprint::<Price>(0);
    let chart_ty = codec::fingerprint::<Chart>(0);
    let mut rng = Rng(0x5eed_0001);
    let mut decoded = 0u64;
    for i in 0..cases {
        let format = if i % 2 == 0 { Format::Json } else { Format::MessagePack };
        let usd: f64 = rng.random_range(-1e9..1e9);
        let price = Price { id: format!("coin{}", rng.random_range(0..1000u32)), usd };
        let chart = Chart { prices: (0..rng.random_range(0..6)).map(|t| (t, usd)).collect() };
        let mut bytes = if i % 3 == 0 {
            codec::encode(format, &chart_ty, &meta(), Some(&chart)).unwrap()
        } else {
            codec::encode(format, &price_ty, &meta(), Some(&price)).unwrap()
        };
        match rng.random_range(0..5u32) {
            0 => {}
            1 => {
                let n = rng.random_range(1..4u32);
                for _ in 0..n {
                    let at = rng.random_range(0..bytes.len());
                    bytes[at] ^= 1 << rng.random_range(0..8u32);
                }
            }
            2 => bytes.truncate(rng.random_range(0..bytes.len())),
            3 => {
                let at = rng.random_range(0..bytes.len());
                let mut junk = vec![0u8; rng.random_range(1..16)];
                rng.fill_bytes(&mut junk);
                bytes.splice(at..at, junk);
            }
            _ => {
                bytes = vec![0u8; rng.random_range(0..64)];
                rng.fill_bytes(&mut bytes);
                if let Some(b) = bytes.first_mut() {
                    *b = *[b'{', 0x97, 0x92, *b].get(rng.random_range(0..4usize)).unwrap();
                }
            }
        }
        for (ty, carried) in
            [(&price_ty, contains(&bytes, price_ty.as_bytes())), (&chart_ty, contains(&bytes, chart_ty.as_bytes()))]
        {
            let ok = if ty == &price_ty {
                codec::decode::<Price>(&bytes, ty).is_ok()
            } else {
                codec::decode::<Chart>(&bytes, ty).is_ok()
            };
            assert!(!ok || carried, "decoded under fingerprint {ty} that the bytes do not carry: {bytes:?}");
            decoded += 1;
        }
        // The wrong reading type for the fingerprint written: never Ok.
        if contains(&bytes, price_ty.as_bytes()) {
            assert!(codec::decode::<Chart>(&bytes, &chart_ty).is_err());
        }
    }
    decoded
}

/// splitmix64: deterministic, dependency-free randomness for the mutation loops.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn random_range<T: FromRange>(&mut self, r: std::ops::Range<T>) -> T {
        T::pick(self, r)
    }
    fn fill_bytes(&mut self, buf: &mut [u8]) {
        for b in buf {
            *b = self.next() as u8;
        }
    }
}

trait FromRange: Sized {
    fn pick(rng: &mut Rng, r: std::ops::Range<Self>) -> Self;
}

impl FromRange for usize {
    fn pick(rng: &mut Rng, r: std::ops::Range<Self>) -> Self {
        r.start + (rng.next() % (r.end - r.start) as u64) as usize
    }
}

impl FromRange for u64 {
    fn pick(rng: &mut Rng, r: std::ops::Range<Self>) -> Self {
        r.start + rng.next() % (r.end - r.start)
    }
}

impl FromRange for u32 {
    fn pick(rng: &mut Rng, r: std::ops::Range<Self>) -> Self {
        r.start + (rng.next() % (r.end - r.start) as u64) as u32
    }
}

impl FromRange for f64 {
    fn pick(rng: &mut Rng, r: std::ops::Range<Self>) -> Self {
        r.start + (rng.next() >> 11) as f64 / (1u64 << 53) as f64 * (r.end - r.start)
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// Sealed values with one flipped bit, or moved under another key, never verify.
fn seals_never_verify_when_changed(cases: u32) -> u64 {
    let sealer = Sealer::new::<&str>("fuzz-suite-signing-key-000001", &[]).unwrap();
    let mut rng = Rng(0x5eed_0001);
    let mut checked = 0u64;
    for _ in 0..cases {
        let mut payload = vec![0u8; rng.random_range(0..200)];
        rng.fill_bytes(&mut payload);
        let key = format!("ns:k:{}", rng.random_range(0..1_000_000u64));
        let sealed = sealer.seal(&key, &payload);
        assert_eq!(sealer.open(&key, &sealed), Ok(&payload[..]));
        let mut flipped = sealed.clone();
        let at = rng.random_range(0..flipped.len());
        flipped[at] ^= 1 << rng.random_range(0..8u32);
        assert!(sealer.open(&key, &flipped).is_err(), "a flipped bit at {at} verified");
        assert!(sealer.open(&format!("{key}0"), &sealed).is_err(), "verified under another key");
        checked += 2;
    }
    checked
}

fn scale() -> u32 {
    std::env::var("SYNTRA_FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(200_000)
}

#[test]
fn keys() {
    keys_never_collide(3_000);
}

#[test]
fn envelopes() {
    envelopes_never_decode_as_the_wrong_type(5_000);
}

#[test]
fn seals() {
    seals_never_verify_when_changed(5_000);
}

#[test]
#[ignore = "at scale: cargo test --release --test fuzz -- --ignored --nocapture"]
fn keys_at_scale() {
    let t = std::time::Instant::now();
    let n = keys_never_collide(scale());
    println!("FUZZ keys: {n} keys rendered and compared, 0 collisions, 0 panics, {:?}", t.elapsed());
}

#[test]
#[ignore = "at scale: cargo test --release --test fuzz -- --ignored --nocapture"]
fn envelopes_at_scale() {
    let t = std::time::Instant::now();
    let n = envelopes_never_decode_as_the_wrong_type(scale());
    println!(
        "FUZZ envelopes: {n} decodes of mutated JSON/MessagePack envelopes, 0 wrong-type values, 0 panics, {:?}",
        t.elapsed()
    );
}

#[test]
#[ignore = "at scale: cargo test --release --test fuzz -- --ignored --nocapture"]
fn seals_at_scale() {
    let t = std::time::Instant::now();
    let n = seals_never_verify_when_changed(scale());
    println!("FUZZ seals: {n} changed seals checked, 0 verified, {:?}", t.elapsed());
}
