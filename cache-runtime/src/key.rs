//! Cache keys: `{namespace}:{rendered template}`.
//!
//! Placeholder values are rendered so that distinct argument tuples never share a key:
//! - characters outside `[A-Za-z0-9._-]` become `%XX` (per UTF-8 byte), so no argument can
//!   forge a `:` separator or inject a glob (`*`, `?`, `[`, `]`) into `SCAN`/`KEYS` patterns;
//! - the first character of the literal that follows a placeholder is escaped too (`_` in
//!   `<id>_<vs>`), so a value can never produce the text that separates placeholders;
//! - adjacent placeholders (`<a><b>`) get a `~` terminator, which plain values never contain;
//! - long values (over [`MAX_PART`] bytes once escaped) and structured values (sequences, maps,
//!   structs, enum payloads) become `~` + 32 hex digits of blake3, and `None` becomes `~none`:
//!   both start with `~`, which no escaped value does.
//!
//! Ordinary ids stay readable: `syntra:coingecko:price:bitcoin_usd`.

use serde::ser::{self, Impossible, Serialize};
use std::fmt::Write as _;

/// Longest escaped placeholder value kept readable; longer ones are hashed.
pub const MAX_PART: usize = 64;
/// Longest key; a longer one keeps its static prefix and hashes the rest.
pub const MAX_KEY: usize = 512;

const HASH_HEX: usize = 32;

/// What follows a placeholder in the template: decides which character must be escaped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// The template ends after this placeholder.
    End,
    /// Literal text starting with this character follows.
    Lit(char),
    /// Another placeholder follows immediately.
    Arg,
}

/// Hex of the first 128 bits of a blake3 hash over `parts`, domain-separated by `tag`.
pub fn hash_hex(tag: &[u8], data: &[u8]) -> String {
    let mut h = blake3::Hasher::new();
    h.update(tag);
    h.update(&[0]);
    h.update(data);
    let digest = h.finalize();
    let mut out = String::with_capacity(HASH_HEX);
    for &b in &digest.as_bytes()[..HASH_HEX / 2] {
        out.push(LOWER_HEX[(b >> 4) as usize] as char);
        out.push(LOWER_HEX[(b & 15) as usize] as char);
    }
    out
}

fn is_plain(c: u8, stop: Option<u8>) -> bool {
    (c.is_ascii_alphanumeric() || c == b'-' || c == b'.' || c == b'_') && Some(c) != stop
}

const HEX: &[u8; 16] = b"0123456789ABCDEF";
const LOWER_HEX: &[u8; 16] = b"0123456789abcdef";

/// Appends the escaped form of `s` to `out`, or its hash when the escaped form is too long.
pub(crate) fn push_escaped(out: &mut String, s: &str, stop: Option<u8>) {
    let bytes = s.as_bytes();
    let escaped_len: usize = bytes.iter().map(|&c| if is_plain(c, stop) { 1 } else { 3 }).sum();
    if escaped_len > MAX_PART {
        out.push('~');
        out.push_str(&hash_hex(b"str", bytes));
        return;
    }
    if escaped_len == bytes.len() {
        out.push_str(s);
        return;
    }
    out.reserve(escaped_len);
    for &c in bytes {
        if is_plain(c, stop) {
            out.push(c as char);
        } else {
            out.push('%');
            out.push(HEX[(c >> 4) as usize] as char);
            out.push(HEX[(c & 15) as usize] as char);
        }
    }
}

/// Renders one placeholder value into `out` (see the module docs for the rules).
pub fn render_part<T: Serialize + ?Sized>(out: &mut String, value: &T, next: Next) {
    let stop = match next {
        Next::Lit(c) if c.is_ascii() => Some(c as u8),
        _ => None,
    };
    let mark = out.len();
    let rendered = value.serialize(PartSerializer { out: &mut *out, stop });
    if rendered.is_err() {
        out.truncate(mark);
        out.push('~');
        // JSON is an injective rendering of serde data for all types whose Serialize is
        // deterministic; maps with random iteration order (HashMap) can only cause misses.
        let json = serde_json::to_vec(value).unwrap_or_default();
        out.push_str(&hash_hex(b"json", &json));
    }
    if next == Next::Arg {
        out.push('~');
    }
}

/// Appends `:` and the blake3 hash of all `args` (the key form used without a template).
pub fn render_hashed_args<T: Serialize + ?Sized>(out: &mut String, args: &T) {
    let json = serde_json::to_vec(args).unwrap_or_default();
    if json == b"null" || json == b"[]" {
        return;
    }
    out.push(':');
    out.push_str(&hash_hex(b"args", &json));
}

/// Bounds a finished key: beyond [`MAX_KEY`] bytes, the text after `keep` bytes is replaced by
/// `~` and a hash of the whole key.
pub(crate) fn bound_length(key: &mut String, keep: usize) {
    if key.len() <= MAX_KEY {
        return;
    }
    let mut keep = keep.min(MAX_KEY - HASH_HEX - 1);
    while !key.is_char_boundary(keep) {
        keep -= 1;
    }
    let digest = hash_hex(b"key", key.as_bytes());
    key.truncate(keep);
    key.push('~');
    key.push_str(&digest);
}

/// Escapes a key prefix for use in a Redis `SCAN MATCH` pattern.
pub fn glob_escape(prefix: &str) -> String {
    let mut out = String::with_capacity(prefix.len() + 1);
    for c in prefix.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\' | '^') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[derive(Debug)]
pub(crate) struct Composite;

impl std::fmt::Display for Composite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("composite value")
    }
}
impl std::error::Error for Composite {}
impl ser::Error for Composite {
    fn custom<T: std::fmt::Display>(_: T) -> Self {
        Composite
    }
}

/// Renders scalars readably; anything structured errors out and is hashed by the caller.
struct PartSerializer<'a> {
    out: &'a mut String,
    stop: Option<u8>,
}

macro_rules! display_scalar {
    ($($f:ident: $t:ty),*) => {$(
        fn $f(self, v: $t) -> Result<(), Composite> {
            let _ = write!(self.out, "{v}");
            Ok(())
        }
    )*};
}

impl<'a> ser::Serializer for PartSerializer<'a> {
    type Ok = ();
    type Error = Composite;
    type SerializeSeq = Impossible<(), Composite>;
    type SerializeTuple = Impossible<(), Composite>;
    type SerializeTupleStruct = Impossible<(), Composite>;
    type SerializeTupleVariant = Impossible<(), Composite>;
    type SerializeMap = Impossible<(), Composite>;
    type SerializeStruct = Impossible<(), Composite>;
    type SerializeStructVariant = Impossible<(), Composite>;

    display_scalar!(serialize_i8: i8, serialize_i16: i16, serialize_i32: i32, serialize_i64: i64,
        serialize_i128: i128, serialize_u8: u8, serialize_u16: u16, serialize_u32: u32,
        serialize_u64: u64, serialize_u128: u128, serialize_bool: bool);

    fn serialize_f32(self, v: f32) -> Result<(), Composite> {
        self.serialize_f64(v as f64)
    }
    fn serialize_f64(self, v: f64) -> Result<(), Composite> {
        // `{:?}` keeps `1.0` distinct from `1` and round-trips; escape `+`/`-` of exponents.
        push_escaped(self.out, &format!("{v:?}"), self.stop);
        Ok(())
    }
    fn serialize_char(self, v: char) -> Result<(), Composite> {
        push_escaped(self.out, v.encode_utf8(&mut [0; 4]), self.stop);
        Ok(())
    }
    fn serialize_str(self, v: &str) -> Result<(), Composite> {
        push_escaped(self.out, v, self.stop);
        Ok(())
    }
    fn serialize_bytes(self, _: &[u8]) -> Result<(), Composite> {
        Err(Composite)
    }
    fn serialize_none(self) -> Result<(), Composite> {
        self.out.push_str("~none");
        Ok(())
    }
    fn serialize_some<T: Serialize + ?Sized>(self, v: &T) -> Result<(), Composite> {
        v.serialize(self)
    }
    fn serialize_unit(self) -> Result<(), Composite> {
        self.serialize_none()
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<(), Composite> {
        self.serialize_none()
    }
    fn serialize_unit_variant(self, _: &'static str, _: u32, v: &'static str) -> Result<(), Composite> {
        push_escaped(self.out, v, self.stop);
        Ok(())
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(self, _: &'static str, v: &T) -> Result<(), Composite> {
        v.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<(), Composite> {
        Err(Composite)
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq, Composite> {
        Err(Composite)
    }
    fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, Composite> {
        Err(Composite)
    }
    fn serialize_tuple_struct(self, _: &'static str, _: usize) -> Result<Self::SerializeTupleStruct, Composite> {
        Err(Composite)
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant, Composite> {
        Err(Composite)
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, Composite> {
        Err(Composite)
    }
    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Self::SerializeStruct, Composite> {
        Err(Composite)
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant, Composite> {
        Err(Composite)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;

    fn part<T: Serialize + ?Sized>(v: &T, next: Next) -> String {
        let mut s = String::new();
        render_part(&mut s, v, next);
        s
    }

    /// Renders a template of `n` placeholders separated by `sep` ("" means adjacent).
    fn render(values: &[String], sep: &str) -> String {
        let mut out = String::from("ns:svc:m:");
        for (i, v) in values.iter().enumerate() {
            let next = if i + 1 == values.len() {
                Next::End
            } else if sep.is_empty() {
                Next::Arg
            } else {
                Next::Lit(sep.chars().next().unwrap())
            };
            render_part(&mut out, v, next);
            if i + 1 < values.len() {
                out.push_str(sep);
            }
        }
        out
    }

    #[test]
    fn readable_ids() {
        assert_eq!(render(&["bitcoin".into(), "usd".into()], "_"), "ns:svc:m:bitcoin_usd");
        assert_eq!(part("BTCUSDT", Next::Lit('_')), "BTCUSDT");
        assert_eq!(part(&100u32, Next::End), "100");
        assert_eq!(part("usd-coin", Next::End), "usd-coin");
    }

    #[test]
    fn escapes_separators_and_globs() {
        assert_eq!(part("wrapped_btc", Next::Lit('_')), "wrapped%5Fbtc");
        assert_eq!(part("wrapped_btc", Next::Lit(':')), "wrapped_btc");
        assert_eq!(part("a:b", Next::End), "a%3Ab");
        assert_eq!(part("*", Next::End), "%2A");
        assert_eq!(part("a?[x]", Next::End), "a%3F%5Bx%5D");
        assert_eq!(part("two words\n", Next::End), "two%20words%0A");
        assert_eq!(part("%41", Next::End), "%2541");
        assert_eq!(part("~none", Next::End), "%7Enone");
    }

    #[test]
    fn none_structured_and_long_values() {
        assert_eq!(part(&None::<String>, Next::End), "~none");
        assert_eq!(part(&Some("x"), Next::End), "x");
        let v = part(&vec![1, 2], Next::End);
        assert!(v.starts_with('~') && v.len() == 33, "{v}");
        let mut m = HashMap::new();
        m.insert("k", 1);
        assert!(part(&m, Next::End).starts_with('~'));
        let long = "x".repeat(MAX_PART + 1);
        let h = part(long.as_str(), Next::End);
        assert_eq!(h.len(), 33);
        assert_ne!(h, part(&vec![long.clone()], Next::End));
        assert_eq!(part("x".repeat(MAX_PART).as_str(), Next::End).len(), MAX_PART);
    }

    #[test]
    fn enums_render_variant_names() {
        #[derive(serde::Serialize)]
        enum Interval {
            #[serde(rename = "1h")]
            H1,
        }
        assert_eq!(part(&Interval::H1, Next::Lit('_')), "1h");
        assert_eq!(part(&1.0f64, Next::End), "1.0");
        assert_ne!(part(&1.0f64, Next::End), part(&1u8, Next::End));
    }

    #[test]
    fn hashed_args_and_bounds() {
        let mut k = String::from("ns:svc:m");
        render_hashed_args(&mut k, &());
        assert_eq!(k, "ns:svc:m");
        render_hashed_args(&mut k, &(&"a", &1));
        assert_eq!(k.len(), "ns:svc:m:".len() + 32);
        let mut long = format!("ns:svc:m:{}", "y".repeat(600));
        bound_length(&mut long, 9);
        assert!(long.len() <= MAX_KEY && long.starts_with("ns:svc:m:~"));
        assert_eq!(glob_escape("a*b?[c]"), "a\\*b\\?\\[c\\]");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        #[test]
        fn distinct_tuples_never_share_a_key(
            (a, b) in (1..4usize).prop_flat_map(|n| {
                let s = "[ab_:~%]{0,4}|.{0,6}";
                (proptest::collection::vec(s, n), proptest::collection::vec(s, n))
            }),
            sep in prop_oneof![Just(""), Just("_"), Just(":"), Just("__"), Just("-")],
        ) {
            prop_assert_eq!(a == b, render(&a, sep) == render(&b, sep));
        }

        #[test]
        fn never_emits_globs_or_whitespace(s in ".*") {
            let r = part(s.as_str(), Next::End);
            prop_assert!(!r.chars().any(|c| matches!(c, '*' | '?' | '[' | ']' | ':' ) || c.is_whitespace() || c.is_control()));
        }
    }
}
