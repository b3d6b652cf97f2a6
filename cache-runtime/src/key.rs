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
//!   both start with `~`, which no escaped value does. Hashes cover a *tagged* encoding of the
//!   serde data model (every value carries its kind and length), so `"1"` and `1`, `None` and
//!   `Some(None)`, `[1, 2]` and `["1", "2"]` never meet;
//! - a string that reads like a number or a bool (`"100"`, `"true"`, `"NaN"`) gets its first
//!   character escaped, so it never renders like the number itself (`%3100` vs `100`);
//! - a value whose `Serialize` fails gives no key at all ([`KeyError`]): the call runs uncached
//!   instead of sharing one entry with every other such call.
//!
//! Ordinary ids stay readable: `syntra:coingecko:price:bitcoin_usd`.

use serde::ser::{self, Impossible, Serialize};
use std::fmt::Write as _;

/// Longest escaped placeholder value kept readable; longer ones are hashed.
pub const MAX_PART: usize = 64;
/// Longest key; a longer one keeps its static prefix and hashes the rest.
pub const MAX_KEY: usize = 512;

const HASH_HEX: usize = 32;

/// An argument could not be turned into a key: its `Serialize` implementation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot build the cache key: an argument failed to serialize ({0})")]
pub struct KeyError(pub String);

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
    let mut out = String::with_capacity(HASH_HEX);
    push_digest(&mut out, &h.finalize());
    out
}

/// Appends the first 128 bits of `digest` as lowercase hex.
fn push_digest(out: &mut String, digest: &blake3::Hash) {
    // blake3's own hex, cut to 128 bits.
    out.push_str(&digest.to_hex()[..HASH_HEX]);
}

fn is_plain(c: u8, stop: Option<u8>) -> bool {
    (c.is_ascii_alphanumeric() || c == b'-' || c == b'.' || c == b'_') && Some(c) != stop
}

const HEX: &[u8; 16] = b"0123456789ABCDEF";

/// Whether a string could be mistaken for the rendering of a number or a bool.
fn reads_like_scalar(s: &str) -> bool {
    match s.as_bytes().first() {
        Some(b'0'..=b'9' | b'-' | b'+' | b'.' | b'i' | b'I' | b'n' | b'N' | b't' | b'f') => {
            s == "true" || s == "false" || s.parse::<f64>().is_ok()
        }
        _ => false,
    }
}

/// Appends the escaped form of `s` to `out`, or its hash when the escaped form is too long.
pub(crate) fn push_escaped(out: &mut String, s: &str, stop: Option<u8>) {
    push_text(out, s, stop, false)
}

/// Like [`push_escaped`] for a string value: one that reads like a number or a bool gets its
/// first character escaped, so `"100"` and `100` render apart.
fn push_str_value(out: &mut String, s: &str, stop: Option<u8>) {
    push_text(out, s, stop, reads_like_scalar(s))
}

fn push_text(out: &mut String, s: &str, stop: Option<u8>, escape_first: bool) {
    let bytes = s.as_bytes();
    let escaped_len: usize = bytes.iter().map(|&c| if is_plain(c, stop) { 1 } else { 3 }).sum::<usize>()
        + if escape_first && is_plain(bytes[0], stop) { 2 } else { 0 };
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
    for (i, &c) in bytes.iter().enumerate() {
        if is_plain(c, stop) && !(escape_first && i == 0) {
            out.push(c as char);
        } else {
            out.push('%');
            out.push(HEX[(c >> 4) as usize] as char);
            out.push(HEX[(c & 15) as usize] as char);
        }
    }
}

/// Renders one placeholder value into `out` (see the module docs for the rules). On error `out`
/// is left as it was.
pub fn render_part<T: Serialize + ?Sized>(out: &mut String, value: &T, next: Next) -> Result<(), KeyError> {
    let stop = match next {
        Next::Lit(c) if c.is_ascii() => Some(c as u8),
        _ => None,
    };
    let mark = out.len();
    if value.serialize(PartSerializer { out: &mut *out, stop }).is_err() {
        out.truncate(mark);
        // Structured (or failing) values: a hash of their tagged encoding. Maps with a random
        // iteration order (HashMap) can only cause misses, never a shared key.
        let digest = tagged_hash(b"part", value)?;
        out.push('~');
        push_digest(out, &digest);
    }
    if next == Next::Arg {
        out.push('~');
    }
    Ok(())
}

/// Appends `:` and the blake3 hash of all `args` (the key form used without a template);
/// nothing for a fn without parameters.
pub fn render_hashed_args<T: Serialize + ?Sized>(out: &mut String, args: &T) -> Result<(), KeyError> {
    // `args` is the macro's tuple of references: zero-sized only when it is `()`.
    if std::mem::size_of_val(args) == 0 {
        return Ok(());
    }
    let digest = tagged_hash(b"args", args)?;
    out.push(':');
    push_digest(out, &digest);
    Ok(())
}

/// blake3 over the tagged encoding of `value`, domain-separated by `tag`.
pub fn tagged_hash<T: Serialize + ?Sized>(tag: &[u8], value: &T) -> Result<blake3::Hash, KeyError> {
    let mut h = blake3::Hasher::new();
    h.update(tag);
    h.update(&[0]);
    value.serialize(&mut Tagged(&mut h)).map_err(|e| KeyError(e.0))?;
    Ok(h.finalize())
}

/// Appends the full path of a fn (`type_name` of an item nested in it) in key form:
/// `my_bot::coingecko::Client::get` becomes `my_bot.coingecko.Client.get`; anything outside
/// `[A-Za-z0-9._-]` (generics, `<T as Trait>`) is `%XX`-escaped, so distinct paths stay distinct.
pub fn push_path(out: &mut String, path: &str) {
    let mut rest = path;
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix("::") {
            out.push('.');
            rest = after;
            continue;
        }
        let c = rest.as_bytes()[0];
        if c.is_ascii_alphanumeric() || c == b'_' || c == b'-' {
            out.push(c as char);
        } else {
            out.push('%');
            out.push(HEX[(c >> 4) as usize] as char);
            out.push(HEX[(c & 15) as usize] as char);
        }
        rest = &rest[1..];
    }
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
        push_str_value(self.out, v.encode_utf8(&mut [0; 4]), self.stop);
        Ok(())
    }
    fn serialize_str(self, v: &str) -> Result<(), Composite> {
        push_str_value(self.out, v, self.stop);
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
        // `Some(x)` renders as `x`, except when `x` would render like `None` (`Some(None)`).
        let mark = self.out.len();
        v.serialize(PartSerializer { out: &mut *self.out, stop: self.stop })?;
        if self.out[mark..].starts_with("~none") {
            return Err(Composite);
        }
        Ok(())
    }
    fn serialize_unit(self) -> Result<(), Composite> {
        Err(Composite)
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<(), Composite> {
        Err(Composite)
    }
    fn serialize_unit_variant(self, _: &'static str, _: u32, v: &'static str) -> Result<(), Composite> {
        push_str_value(self.out, v, self.stop);
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

/// Why a value could not be hashed: its own `Serialize` failed.
#[derive(Debug)]
pub(crate) struct HashError(String);

impl std::fmt::Display for HashError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::error::Error for HashError {}
impl ser::Error for HashError {
    fn custom<T: std::fmt::Display>(msg: T) -> Self {
        HashError(msg.to_string())
    }
}

/// Feeds a prefix-free, tagged encoding of the serde data model to blake3: every value starts
/// with a byte naming its kind, strings and names carry their length, sequences and maps an end
/// mark. Distinct values therefore never hash alike, whatever their types.
struct Tagged<'h>(&'h mut blake3::Hasher);

mod tag {
    pub(super) const BOOL: u8 = 1;
    pub(super) const INT: u8 = 2;
    pub(super) const UINT: u8 = 3;
    pub(super) const FLOAT: u8 = 4;
    pub(super) const CHAR: u8 = 5;
    pub(super) const STR: u8 = 6;
    pub(super) const BYTES: u8 = 7;
    pub(super) const NONE: u8 = 8;
    pub(super) const SOME: u8 = 9;
    pub(super) const UNIT: u8 = 10;
    pub(super) const UNIT_STRUCT: u8 = 11;
    pub(super) const UNIT_VARIANT: u8 = 12;
    pub(super) const NEWTYPE_STRUCT: u8 = 13;
    pub(super) const NEWTYPE_VARIANT: u8 = 14;
    pub(super) const SEQ: u8 = 15;
    pub(super) const TUPLE: u8 = 16;
    pub(super) const TUPLE_STRUCT: u8 = 17;
    pub(super) const TUPLE_VARIANT: u8 = 18;
    pub(super) const MAP: u8 = 19;
    pub(super) const STRUCT: u8 = 20;
    pub(super) const STRUCT_VARIANT: u8 = 21;
    pub(super) const ITEM: u8 = 0xfe;
    pub(super) const END: u8 = 0xff;
}

impl Tagged<'_> {
    fn tag(&mut self, t: u8) {
        self.0.update(&[t]);
    }
    fn bytes(&mut self, b: &[u8]) {
        self.0.update(&(b.len() as u64).to_le_bytes());
        self.0.update(b);
    }
    fn variant(&mut self, t: u8, index: u32, name: &str) {
        self.tag(t);
        self.0.update(&index.to_le_bytes());
        self.bytes(name.as_bytes());
    }
    fn item<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), HashError> {
        self.tag(tag::ITEM);
        v.serialize(&mut *self)
    }
    fn end(&mut self) -> Result<(), HashError> {
        self.tag(tag::END);
        Ok(())
    }
}

impl<'a, 'h> ser::Serializer for &'a mut Tagged<'h> {
    type Ok = ();
    type Error = HashError;
    type SerializeSeq = Self;
    type SerializeTuple = Self;
    type SerializeTupleStruct = Self;
    type SerializeTupleVariant = Self;
    type SerializeMap = Self;
    type SerializeStruct = Self;
    type SerializeStructVariant = Self;

    fn serialize_bool(self, v: bool) -> Result<(), HashError> {
        self.tag(tag::BOOL);
        self.0.update(&[v as u8]);
        Ok(())
    }
    fn serialize_i8(self, v: i8) -> Result<(), HashError> {
        self.serialize_i128(v.into())
    }
    fn serialize_i16(self, v: i16) -> Result<(), HashError> {
        self.serialize_i128(v.into())
    }
    fn serialize_i32(self, v: i32) -> Result<(), HashError> {
        self.serialize_i128(v.into())
    }
    fn serialize_i64(self, v: i64) -> Result<(), HashError> {
        self.serialize_i128(v.into())
    }
    fn serialize_i128(self, v: i128) -> Result<(), HashError> {
        // One tag for every width: `1u8` and `1u64` are the same number.
        self.tag(tag::INT);
        self.0.update(&v.to_le_bytes());
        Ok(())
    }
    fn serialize_u8(self, v: u8) -> Result<(), HashError> {
        self.serialize_u128(v.into())
    }
    fn serialize_u16(self, v: u16) -> Result<(), HashError> {
        self.serialize_u128(v.into())
    }
    fn serialize_u32(self, v: u32) -> Result<(), HashError> {
        self.serialize_u128(v.into())
    }
    fn serialize_u64(self, v: u64) -> Result<(), HashError> {
        self.serialize_u128(v.into())
    }
    fn serialize_u128(self, v: u128) -> Result<(), HashError> {
        self.tag(tag::UINT);
        self.0.update(&v.to_le_bytes());
        Ok(())
    }
    fn serialize_f32(self, v: f32) -> Result<(), HashError> {
        self.serialize_f64(v.into())
    }
    fn serialize_f64(self, v: f64) -> Result<(), HashError> {
        self.tag(tag::FLOAT);
        self.0.update(&v.to_bits().to_le_bytes());
        Ok(())
    }
    fn serialize_char(self, v: char) -> Result<(), HashError> {
        self.tag(tag::CHAR);
        self.0.update(&u32::from(v).to_le_bytes());
        Ok(())
    }
    fn serialize_str(self, v: &str) -> Result<(), HashError> {
        self.tag(tag::STR);
        self.bytes(v.as_bytes());
        Ok(())
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<(), HashError> {
        self.tag(tag::BYTES);
        self.bytes(v);
        Ok(())
    }
    fn serialize_none(self) -> Result<(), HashError> {
        self.tag(tag::NONE);
        Ok(())
    }
    fn serialize_some<T: Serialize + ?Sized>(self, v: &T) -> Result<(), HashError> {
        self.tag(tag::SOME);
        v.serialize(self)
    }
    fn serialize_unit(self) -> Result<(), HashError> {
        self.tag(tag::UNIT);
        Ok(())
    }
    fn serialize_unit_struct(self, name: &'static str) -> Result<(), HashError> {
        self.tag(tag::UNIT_STRUCT);
        self.bytes(name.as_bytes());
        Ok(())
    }
    fn serialize_unit_variant(self, _: &'static str, index: u32, variant: &'static str) -> Result<(), HashError> {
        self.variant(tag::UNIT_VARIANT, index, variant);
        Ok(())
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(self, name: &'static str, v: &T) -> Result<(), HashError> {
        self.tag(tag::NEWTYPE_STRUCT);
        self.bytes(name.as_bytes());
        v.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        index: u32,
        variant: &'static str,
        v: &T,
    ) -> Result<(), HashError> {
        self.variant(tag::NEWTYPE_VARIANT, index, variant);
        v.serialize(self)
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Self, HashError> {
        self.tag(tag::SEQ);
        Ok(self)
    }
    fn serialize_tuple(self, _: usize) -> Result<Self, HashError> {
        self.tag(tag::TUPLE);
        Ok(self)
    }
    fn serialize_tuple_struct(self, name: &'static str, _: usize) -> Result<Self, HashError> {
        self.tag(tag::TUPLE_STRUCT);
        self.bytes(name.as_bytes());
        Ok(self)
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        index: u32,
        variant: &'static str,
        _: usize,
    ) -> Result<Self, HashError> {
        self.variant(tag::TUPLE_VARIANT, index, variant);
        Ok(self)
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Self, HashError> {
        self.tag(tag::MAP);
        Ok(self)
    }
    fn serialize_struct(self, name: &'static str, _: usize) -> Result<Self, HashError> {
        self.tag(tag::STRUCT);
        self.bytes(name.as_bytes());
        Ok(self)
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        index: u32,
        variant: &'static str,
        _: usize,
    ) -> Result<Self, HashError> {
        self.variant(tag::STRUCT_VARIANT, index, variant);
        Ok(self)
    }
}

macro_rules! tagged_compound {
    ($($tr:ident :: $f:ident),*) => {$(
        impl ser::$tr for &mut Tagged<'_> {
            type Ok = ();
            type Error = HashError;
            fn $f<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), HashError> {
                self.item(v)
            }
            fn end(self) -> Result<(), HashError> {
                Tagged::end(self)
            }
        }
    )*};
}
tagged_compound!(
    SerializeSeq::serialize_element,
    SerializeTuple::serialize_element,
    SerializeTupleStruct::serialize_field,
    SerializeTupleVariant::serialize_field
);

impl ser::SerializeMap for &mut Tagged<'_> {
    type Ok = ();
    type Error = HashError;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, k: &T) -> Result<(), HashError> {
        self.item(k)
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), HashError> {
        v.serialize(&mut **self)
    }
    fn end(self) -> Result<(), HashError> {
        Tagged::end(self)
    }
}

macro_rules! tagged_fields {
    ($($tr:ident),*) => {$(
        impl ser::$tr for &mut Tagged<'_> {
            type Ok = ();
            type Error = HashError;
            fn serialize_field<T: Serialize + ?Sized>(&mut self, name: &'static str, v: &T) -> Result<(), HashError> {
                self.tag(tag::ITEM);
                self.bytes(name.as_bytes());
                v.serialize(&mut **self)
            }
            fn skip_field(&mut self, name: &'static str) -> Result<(), HashError> {
                // A skipped field is not the same value as a present one.
                self.tag(tag::UNIT);
                self.bytes(name.as_bytes());
                Ok(())
            }
            fn end(self) -> Result<(), HashError> {
                Tagged::end(self)
            }
        }
    )*};
}
tagged_fields!(SerializeStruct, SerializeStructVariant);

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;

    fn part<T: Serialize + ?Sized>(v: &T, next: Next) -> String {
        let mut s = String::new();
        render_part(&mut s, v, next).unwrap();
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
            render_part(&mut out, v, next).unwrap();
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
        render_hashed_args(&mut k, &()).unwrap();
        assert_eq!(k, "ns:svc:m");
        render_hashed_args(&mut k, &(&"a", &1)).unwrap();
        assert_eq!(k.len(), "ns:svc:m:".len() + 32);
        let mut long = format!("ns:svc:m:{}", "y".repeat(600));
        bound_length(&mut long, 9);
        assert!(long.len() <= MAX_KEY && long.starts_with("ns:svc:m:~"));
        assert_eq!(glob_escape("a*b?[c]"), "a\\*b\\?\\[c\\]");
    }

    #[test]
    fn scalars_are_tagged_inside_structured_values() {
        #[derive(serde::Serialize)]
        #[serde(untagged)]
        enum Id {
            N(u64),
            S(String),
        }
        let h = |v: &dyn erased::Ser| v.hash();
        assert_ne!(h(&vec![Id::N(1)]), h(&vec![Id::S("1".into())]));
        assert_ne!(h(&(None::<Option<u8>>,)), h(&(Some(None::<u8>),)));
        assert_ne!(h(&vec![1, 2]), h(&vec!["1", "2"]));
        assert_ne!(h(&("ab", "c")), h(&("a", "bc")));
        assert_ne!(h(&vec![vec![1], vec![]]), h(&vec![vec![], vec![1]]));
        // Readable parts: a string that reads like a number never renders like the number.
        assert_ne!(part(&Id::N(100), Next::End), part(&Id::S("100".into()), Next::End));
        assert_eq!(part(&Id::N(100), Next::End), "100");
        assert_eq!(part("100", Next::End), "%3100");
        assert_ne!(part("true", Next::End), part(&true, Next::End));
        assert_ne!(part(&None::<Option<u8>>, Next::End), part(&Some(None::<u8>), Next::End));
        assert_eq!(part("0xdeadbeef", Next::End), "0xdeadbeef", "hex addresses stay readable");
    }

    #[test]
    fn failing_serialization_is_an_error_not_a_shared_key() {
        struct Bad;
        impl serde::Serialize for Bad {
            fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
                Err(serde::ser::Error::custom("no"))
            }
        }
        let mut k = String::from("ns:");
        assert!(render_part(&mut k, &Bad, Next::End).is_err());
        assert_eq!(k, "ns:", "nothing written");
        assert!(render_hashed_args(&mut k, &(&Bad,)).is_err());
        assert!(render_part(&mut k, &vec![Bad], Next::End).is_err());
    }

    #[test]
    fn fn_paths_render_readably_and_distinctly() {
        let p = |s: &str| {
            let mut o = String::new();
            push_path(&mut o, s);
            o
        };
        assert_eq!(p("bot::coingecko::Client::get"), "bot.coingecko.Client.get");
        assert_ne!(p("a::fetch"), p("b::a::fetch"));
        assert_eq!(p("<bot::a::C as bot::Api>::t"), "%3Cbot.a.C%20as%20bot.Api%3E.t");
    }

    mod erased {
        pub(super) trait Ser {
            fn hash(&self) -> blake3::Hash;
        }
        impl<T: serde::Serialize> Ser for T {
            fn hash(&self) -> blake3::Hash {
                super::super::tagged_hash(b"t", self).unwrap()
            }
        }
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
