//! Value codecs and the envelope stored around every value.
//!
//! JSON (the default) stores one readable document, envelope fields beside the data:
//! `{"syntra":1,"ty":"9f2c…","at":1764170000000,"ttl":90000,"stale":0,"neg":false,"data":{…}}`,
//! so `redis-cli GET` and clients in other languages can read it. MessagePack stores the same
//! fields as a compact array (about 40% of the bytes, half the decode time).
//!
//! A value is only used when it decodes as an envelope of ours with the expected type
//! fingerprint; anything else (another type, an older schema, bytes someone else wrote) is a
//! miss that the fresh value overwrites.

pub use crate::compress::Compression;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The envelope layout version; bump when the envelope itself changes.
const ENVELOPE_VERSION: u8 = 1;

/// The value codec of a cached function (`format = "json" | "msgpack"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Format {
    /// Readable JSON (default).
    #[default]
    Json,
    /// Compact MessagePack (needs the `msgpack` feature; falls back to JSON without it).
    MessagePack,
}

impl Format {
    /// The name used in logs and configuration.
    pub fn name(self) -> &'static str {
        match self {
            Format::Json => "json",
            Format::MessagePack => "msgpack",
        }
    }
}

/// Metadata kept beside every cached value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Meta {
    /// When the value was written, in milliseconds since the Unix epoch.
    pub written_at_ms: u64,
    /// How long the value is fresh.
    pub ttl: Duration,
    /// How long after `ttl` the value may still be served as stale (0 = never).
    pub stale: Duration,
    /// A negative entry (a cached `None`).
    pub negative: bool,
}

impl Meta {
    /// Metadata for a value written now.
    pub fn now(ttl: Duration, stale: Duration, negative: bool) -> Self {
        Meta { written_at_ms: now_ms(), ttl, stale, negative }
    }

    /// Milliseconds of freshness left at `now_ms` (0 when expired).
    pub fn fresh_left(&self, now_ms: u64) -> Duration {
        let end = self.written_at_ms.saturating_add(self.ttl.as_millis() as u64);
        Duration::from_millis(end.saturating_sub(now_ms))
    }

    /// Whether the value is still fresh at `now_ms`.
    pub fn is_fresh(&self, now_ms: u64) -> bool {
        !self.fresh_left(now_ms).is_zero()
    }

    /// How long the entry must be kept at `now_ms`: freshness plus the stale window.
    pub fn keep_left(&self, now_ms: u64) -> Duration {
        let end = self.written_at_ms.saturating_add((self.ttl + self.stale).as_millis() as u64);
        Duration::from_millis(end.saturating_sub(now_ms))
    }
}

/// Milliseconds since the Unix epoch (wall clock: shared by every instance reading Redis).
pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// A fingerprint of the Rust type of cached values and the schema `version`: 16 hex digits.
pub fn fingerprint<T: ?Sized>(version: u32) -> String {
    let name = std::any::type_name::<T>();
    let mut h = blake3::Hasher::new();
    h.update(name.as_bytes());
    h.update(&version.to_le_bytes());
    let d = h.finalize();
    let mut s = String::with_capacity(16);
    for b in &d.as_bytes()[..8] {
        use std::fmt::Write as _;
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// Whether `found` is the fingerprint of `T` at a schema version near `version` (an entry written
/// before a `version` bump, or by a newer instance during a rolling deploy): an ordinary miss,
/// not two functions sharing a key.
pub fn is_other_version<T: ?Sized>(found: &str, version: u32) -> bool {
    (version.saturating_sub(16)..=version.saturating_add(16)).any(|v| v != version && fingerprint::<T>(v) == found)
}

/// Why stored bytes were not used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// Not an envelope of ours (foreign or corrupted bytes).
    #[error("not a syntra-cache envelope: {0}")]
    Foreign(String),
    /// An envelope written for another type or schema version.
    #[error("type fingerprint {found} does not match {expected}")]
    WrongType {
        /// The fingerprint in the stored envelope.
        found: String,
        /// The fingerprint of the reading type.
        expected: String,
    },
    /// An envelope of a layout version this build does not know.
    #[error("unsupported envelope version {0}")]
    Version(u8),
    /// A positive envelope without data.
    #[error("envelope has no data")]
    Empty,
    /// A compressed value that was refused (over the size bound, or corrupt).
    #[error(transparent)]
    Compressed(crate::compress::CompressError),
}

impl From<crate::compress::CompressError> for DecodeError {
    fn from(e: crate::compress::CompressError) -> Self {
        DecodeError::Compressed(e)
    }
}

/// An error while encoding a value.
#[derive(Debug, thiserror::Error)]
#[error("cannot encode value: {0}")]
pub struct EncodeError(pub String);

#[derive(Serialize)]
struct EnvelopeOut<'a, T> {
    syntra: u8,
    ty: &'a str,
    at: u64,
    ttl: u64,
    stale: u64,
    neg: bool,
    data: Option<&'a T>,
}

#[derive(Deserialize)]
struct EnvelopeIn<'a, T> {
    syntra: u8,
    #[serde(borrow)]
    ty: std::borrow::Cow<'a, str>,
    at: u64,
    ttl: u64,
    #[serde(default)]
    stale: u64,
    #[serde(default)]
    neg: bool,
    data: Option<T>,
}

/// Encodes `value` (or a negative entry when `None`) with its envelope.
pub fn encode<T: Serialize>(format: Format, ty: &str, meta: &Meta, value: Option<&T>) -> Result<Vec<u8>, EncodeError> {
    let env = EnvelopeOut {
        syntra: ENVELOPE_VERSION,
        ty,
        at: meta.written_at_ms,
        ttl: meta.ttl.as_millis() as u64,
        stale: meta.stale.as_millis() as u64,
        neg: meta.negative,
        data: value,
    };
    match format {
        #[cfg(feature = "msgpack")]
        Format::MessagePack => rmp_serde::to_vec(&env).map_err(|e| EncodeError(e.to_string())),
        _ => serde_json::to_vec(&env).map_err(|e| EncodeError(e.to_string())),
    }
}

/// The length `encode` would produce, without allocating it: the memory tier weighs its
/// (decoded) values by this estimate, and an over-large value is refused before it is stored.
pub fn encoded_len<T: Serialize>(
    format: Format,
    ty: &str,
    meta: &Meta,
    value: Option<&T>,
) -> Result<usize, EncodeError> {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let env = EnvelopeOut {
        syntra: ENVELOPE_VERSION,
        ty,
        at: meta.written_at_ms,
        ttl: meta.ttl.as_millis() as u64,
        stale: meta.stale.as_millis() as u64,
        neg: meta.negative,
        data: value,
    };
    let mut n = Count(0);
    match format {
        #[cfg(feature = "msgpack")]
        Format::MessagePack => rmp_serde::encode::write(&mut n, &env).map_err(|e| EncodeError(e.to_string()))?,
        _ => serde_json::to_writer(&mut n, &env).map_err(|e| EncodeError(e.to_string()))?,
    }
    Ok(n.0)
}

fn envelope<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> Result<EnvelopeIn<'a, T>, DecodeError> {
    match bytes.first() {
        Some(b'{') => serde_json::from_slice(bytes).map_err(|e| DecodeError::Foreign(e.to_string())),
        #[cfg(feature = "msgpack")]
        Some(0x90..=0x9f) => rmp_serde::from_slice(bytes).map_err(|e| DecodeError::Foreign(e.to_string())),
        _ => Err(DecodeError::Foreign("unknown leading byte".into())),
    }
}

/// Like [`encode`], compressed when the result reaches `compression`'s threshold.
pub fn encode_with<T: Serialize>(
    format: Format,
    ty: &str,
    meta: &Meta,
    value: Option<&T>,
    compression: &Compression,
) -> Result<Vec<u8>, EncodeError> {
    encode(format, ty, meta, value).map(|bytes| compression.apply(bytes))
}

/// Decodes stored bytes (JSON, MessagePack or a compressed form of either, told apart by the
/// first byte) as an envelope of `T` with fingerprint `ty`. `Ok((meta, None))` is a negative
/// entry. Compressed values are bounded by the default size
/// ([`DEFAULT_MAX_DECOMPRESSED`](crate::compress::DEFAULT_MAX_DECOMPRESSED)).
pub fn decode<T: DeserializeOwned>(bytes: &[u8], ty: &str) -> Result<(Meta, Option<T>), DecodeError> {
    decode_with(bytes, ty, &Compression::default())
}

/// Like [`decode`], with compressed values bounded by `compression.max_decompressed`.
pub fn decode_with<T: DeserializeOwned>(
    bytes: &[u8],
    ty: &str,
    compression: &Compression,
) -> Result<(Meta, Option<T>), DecodeError> {
    if crate::compress::is_compressed(bytes) {
        let plain = crate::compress::decompress(bytes, compression.max_decompressed)?;
        // One layer only: a compressed value inside a compressed value is foreign.
        if crate::compress::is_compressed(&plain) {
            return Err(DecodeError::Foreign("nested compression".into()));
        }
        return decode_plain(&plain, ty);
    }
    decode_plain(bytes, ty)
}

fn decode_plain<T: DeserializeOwned>(bytes: &[u8], ty: &str) -> Result<(Meta, Option<T>), DecodeError> {
    let env: EnvelopeIn<'_, T> = match envelope(bytes) {
        Ok(env) => env,
        // The data did not decode as `T`: if the envelope is another type's, say so.
        Err(e) => {
            return Err(match envelope::<serde::de::IgnoredAny>(bytes) {
                Ok(other) if other.ty != ty => {
                    DecodeError::WrongType { found: other.ty.into_owned(), expected: ty.to_owned() }
                }
                _ => e,
            })
        }
    };
    if env.syntra != ENVELOPE_VERSION {
        return Err(DecodeError::Version(env.syntra));
    }
    if env.ty != ty {
        return Err(DecodeError::WrongType { found: env.ty.into_owned(), expected: ty.to_owned() });
    }
    let meta = Meta {
        written_at_ms: env.at,
        ttl: Duration::from_millis(env.ttl),
        stale: Duration::from_millis(env.stale),
        negative: env.neg,
    };
    match (env.neg, env.data) {
        (true, _) => Ok((meta, None)),
        (false, Some(v)) => Ok((meta, Some(v))),
        (false, None) => Err(DecodeError::Empty),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize, Deserialize, Debug, PartialEq, Clone)]
    struct Price {
        usd: f64,
        id: String,
    }

    fn sample() -> (Meta, Price) {
        (
            Meta { written_at_ms: 1_000, ttl: Duration::from_secs(90), stale: Duration::ZERO, negative: false },
            Price { usd: 97_000.5, id: "bitcoin".into() },
        )
    }

    #[test]
    fn json_round_trip_is_one_readable_document() {
        let (meta, v) = sample();
        let ty = fingerprint::<Price>(0);
        let bytes = encode(Format::Json, &ty, &meta, Some(&v)).unwrap();
        let doc: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(doc["data"]["id"], "bitcoin");
        assert_eq!(doc["ttl"], 90_000);
        assert_eq!(decode::<Price>(&bytes, &ty).unwrap(), (meta, Some(v.clone())));
        assert_eq!(encoded_len(Format::Json, &ty, &meta, Some(&v)).unwrap(), bytes.len());
        #[cfg(feature = "msgpack")]
        {
            let mp = encode(Format::MessagePack, &ty, &meta, Some(&v)).unwrap();
            assert_eq!(encoded_len(Format::MessagePack, &ty, &meta, Some(&v)).unwrap(), mp.len());
        }
    }

    #[cfg(feature = "msgpack")]
    #[test]
    fn msgpack_round_trip_and_smaller() {
        let (meta, v) = sample();
        let ty = fingerprint::<Price>(0);
        let mp = encode(Format::MessagePack, &ty, &meta, Some(&v)).unwrap();
        let js = encode(Format::Json, &ty, &meta, Some(&v)).unwrap();
        assert!(mp.len() < js.len());
        assert_eq!(decode::<Price>(&mp, &ty).unwrap().1, Some(v));
    }

    #[test]
    fn foreign_wrong_type_and_negative() {
        let (meta, v) = sample();
        let ty = fingerprint::<Price>(0);
        assert!(matches!(decode::<Price>(b"hello", &ty), Err(DecodeError::Foreign(_))));
        assert!(matches!(decode::<Price>(b"{\"usd\":1}", &ty), Err(DecodeError::Foreign(_))));
        assert!(matches!(decode::<Price>(&[0x92, 0xff], &ty), Err(DecodeError::Foreign(_))));
        let other = fingerprint::<String>(0);
        let bytes = encode(Format::Json, &ty, &meta, Some(&v)).unwrap();
        assert!(matches!(decode::<Price>(&bytes, &other), Err(DecodeError::WrongType { .. })));
        assert_ne!(fingerprint::<Price>(0), fingerprint::<Price>(1));
        let neg = Meta { negative: true, ..meta };
        let bytes = encode::<Price>(Format::Json, &ty, &neg, None).unwrap();
        assert_eq!(decode::<Price>(&bytes, &ty).unwrap(), (neg, None));
    }

    #[cfg(feature = "compression")]
    #[test]
    fn large_values_round_trip_compressed_in_both_formats() {
        let meta = Meta { written_at_ms: 1_000, ttl: Duration::from_secs(90), stale: Duration::ZERO, negative: false };
        let chart: Vec<(u64, f64)> =
            (0..500).map(|i| (1_735_689_600_000 + i * 300_000, 97_000.0 + i as f64 * 0.37)).collect();
        let ty = fingerprint::<Vec<(u64, f64)>>(0);
        let formats = [Format::Json, Format::MessagePack];
        for format in formats.into_iter().filter(|f| cfg!(feature = "msgpack") || *f == Format::Json) {
            let plain = encode(format, &ty, &meta, Some(&chart)).unwrap();
            let packed = encode_with(format, &ty, &meta, Some(&chart), &Compression::default()).unwrap();
            assert!(crate::compress::is_compressed(&packed) && packed.len() < plain.len(), "{format:?}");
            assert_eq!(decode::<Vec<(u64, f64)>>(&packed, &ty).unwrap(), (meta, Some(chart.clone())));
            // A bound below the value's size refuses it.
            let tight = Compression { max_decompressed: plain.len() - 1, ..Compression::default() };
            let err = decode_with::<Vec<(u64, f64)>>(&packed, &ty, &tight).unwrap_err();
            assert!(matches!(err, DecodeError::Compressed(crate::compress::CompressError::TooLarge { .. })), "{err}");
        }
        // A small value stays plain (readable JSON).
        let small = encode_with(Format::Json, &ty, &meta, Some(&chart[..2].to_vec()), &Compression::default()).unwrap();
        assert_eq!(small[0], b'{');
    }

    #[test]
    fn freshness() {
        let (meta, _) = sample();
        assert!(meta.is_fresh(1_000 + 89_999));
        assert!(!meta.is_fresh(1_000 + 90_000));
        assert_eq!(meta.fresh_left(1_000 + 30_000), Duration::from_secs(60));
    }
}
