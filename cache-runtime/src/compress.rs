//! Compression of large encoded envelopes (LZ4 block format, pure Rust `lz4_flex`).
//!
//! An encoded envelope at least [`Compression::threshold`] bytes long is stored as
//!
//! ```text
//! 0xC1 | algorithm (1 = LZ4) | original length (u32, little endian) | LZ4 block
//! ```
//!
//! `0xC1` is the one byte MessagePack never uses and cannot start JSON, so the decoder still
//! tells every stored form apart by its first byte (`{` JSON, `0x90..=0x9f` MessagePack). The
//! original length is checked against [`Compression::max_decompressed`] *before* anything is
//! allocated, and the block must fill exactly that length: a decompression bomb or a lying header
//! is a [`CompressError`], never an allocation of the attacker's choosing.
//!
//! Why LZ4 (measured on the demo's stored `market_chart` and `klines` envelopes, BENCHMARKS.md
//! "Compression"): LZ4 keeps 46-55% of the JSON, zstd-1 23-30%; but LZ4 decompresses a 33 KB
//! chart in 11 µs against 37 µs, encodes in half the time, and is pure Rust with a safe decoder
//! (zstd links a C library). A Redis hit of a large value costs +16-18% CPU with LZ4 (+~60% with
//! zstd-1). The marker's algorithm byte leaves room for zstd as an option later.

/// The leading byte of a compressed value.
pub const MARKER: u8 = 0xC1;
/// The algorithm byte of LZ4 (block format).
const LZ4: u8 = 1;
const HEADER: usize = 6;

/// Default threshold: encoded envelopes from this many bytes on are compressed. Below ~1 KiB the
/// providers' JSON shrinks by less than 30% and the saved bytes are not worth a decode step.
pub const DEFAULT_THRESHOLD: usize = 1024;
/// Default bound on a decompressed value (16 MiB).
pub const DEFAULT_MAX_DECOMPRESSED: usize = 16 << 20;

/// When values are compressed and how large a decompressed value may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Compression {
    /// Encoded envelopes of at least this many bytes are compressed; `usize::MAX` turns
    /// compression off (compressed values written by others are still read).
    pub threshold: usize,
    /// Compressed values claiming more bytes than this are refused.
    pub max_decompressed: usize,
}

impl Default for Compression {
    fn default() -> Self {
        Compression { threshold: DEFAULT_THRESHOLD, max_decompressed: DEFAULT_MAX_DECOMPRESSED }
    }
}

impl Compression {
    /// No compression on write; reads still bounded by the default size.
    pub const OFF: Compression = Compression { threshold: usize::MAX, max_decompressed: DEFAULT_MAX_DECOMPRESSED };

    /// `encoded` compressed when it is large enough and compression pays (else unchanged).
    pub fn apply(&self, encoded: Vec<u8>) -> Vec<u8> {
        if encoded.len() < self.threshold || encoded.len() > u32::MAX as usize || !cfg!(feature = "compression") {
            return encoded;
        }
        match compress(&encoded) {
            Some(c) if c.len() < encoded.len() => c,
            _ => encoded,
        }
    }
}

/// Why a compressed value was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CompressError {
    /// The header is cut short or names an unknown algorithm.
    #[error("malformed compressed value header")]
    Header,
    /// The value claims to decompress to more than the bound.
    #[error("compressed value claims {claimed} bytes, above the bound of {max}")]
    TooLarge {
        /// The length in the header.
        claimed: usize,
        /// The configured bound.
        max: usize,
    },
    /// The block is corrupt or does not fill the claimed length.
    #[error("corrupt compressed value: {0}")]
    Corrupt(String),
    /// Compression support was not built in (`compression` feature).
    #[error("compressed value, but the `compression` feature is off")]
    Unsupported,
}

/// Whether `bytes` is a compressed value.
pub fn is_compressed(bytes: &[u8]) -> bool {
    bytes.first() == Some(&MARKER)
}

#[cfg(feature = "compression")]
fn compress(encoded: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(HEADER + lz4_flex::block::get_maximum_output_size(encoded.len()));
    out.extend_from_slice(&[MARKER, LZ4]);
    out.extend_from_slice(&u32::try_from(encoded.len()).ok()?.to_le_bytes());
    out.resize(HEADER + lz4_flex::block::get_maximum_output_size(encoded.len()), 0);
    let n = lz4_flex::block::compress_into(encoded, &mut out[HEADER..]).ok()?;
    out.truncate(HEADER + n);
    Some(out)
}

#[cfg(not(feature = "compression"))]
fn compress(_: &[u8]) -> Option<Vec<u8>> {
    None
}

/// The original bytes of a compressed value, refusing anything claiming more than `max`.
pub fn decompress(bytes: &[u8], max: usize) -> Result<Vec<u8>, CompressError> {
    if bytes.len() < HEADER || bytes[0] != MARKER || bytes[1] != LZ4 {
        return Err(CompressError::Header);
    }
    let claimed = u32::from_le_bytes([bytes[2], bytes[3], bytes[4], bytes[5]]) as usize;
    if claimed > max {
        return Err(CompressError::TooLarge { claimed, max });
    }
    decompress_block(&bytes[HEADER..], claimed)
}

#[cfg(feature = "compression")]
fn decompress_block(block: &[u8], len: usize) -> Result<Vec<u8>, CompressError> {
    // LZ4 expands at most ~255x: a block too short for the claim is refused before allocating.
    if len > block.len().saturating_mul(255).saturating_add(16) {
        return Err(CompressError::Corrupt("claimed length exceeds what the block can hold".into()));
    }
    let mut out = vec![0; len];
    let n = lz4_flex::block::decompress_into(block, &mut out).map_err(|e| CompressError::Corrupt(e.to_string()))?;
    if n != len {
        return Err(CompressError::Corrupt(format!("{n} bytes, header says {len}")));
    }
    Ok(out)
}

#[cfg(not(feature = "compression"))]
fn decompress_block(_: &[u8], _: usize) -> Result<Vec<u8>, CompressError> {
    Err(CompressError::Unsupported)
}

#[cfg(all(test, feature = "compression"))]
mod tests {
    use super::*;

    fn chart(points: usize) -> Vec<u8> {
        let rows: Vec<String> = (0..points)
            .map(|i| format!("[{},{:.8}]", 1_735_689_600_000u64 + i as u64 * 300_000, 97_000.0 + i as f64 * 1.37))
            .collect();
        format!("{{\"syntra\":1,\"data\":{{\"prices\":[{}]}}}}", rows.join(",")).into_bytes()
    }

    #[test]
    fn round_trip_above_threshold_untouched_below() {
        let c = Compression::default();
        let big = chart(300);
        let packed = c.apply(big.clone());
        assert!(is_compressed(&packed) && packed.len() < big.len() / 2, "{} of {}", packed.len(), big.len());
        assert_eq!(decompress(&packed, c.max_decompressed).unwrap(), big);
        let small = chart(2);
        assert!(small.len() < DEFAULT_THRESHOLD);
        assert_eq!(c.apply(small.clone()), small);
        assert_eq!(Compression::OFF.apply(big.clone()), big);
    }

    #[test]
    fn bombs_and_lies_are_refused() {
        // A real 64 MiB bomb: zeros compress ~250:1.
        let zeros = vec![0u8; 64 << 20];
        let bomb = Compression { threshold: 0, max_decompressed: usize::MAX }.apply(zeros);
        assert!(bomb.len() < 1 << 20);
        assert!(matches!(decompress(&bomb, DEFAULT_MAX_DECOMPRESSED), Err(CompressError::TooLarge { .. })));
        // A header claiming less than the block holds, or more.
        let packed = Compression::default().apply(chart(300));
        let mut lie = packed.clone();
        lie[2..6].copy_from_slice(&100u32.to_le_bytes());
        assert!(matches!(decompress(&lie, DEFAULT_MAX_DECOMPRESSED), Err(CompressError::Corrupt(_))));
        let mut lie = packed.clone();
        lie[2..6].copy_from_slice(&(15u32 << 20).to_le_bytes());
        assert!(matches!(decompress(&lie, DEFAULT_MAX_DECOMPRESSED), Err(CompressError::Corrupt(_))));
        // Truncated block, bad header, unknown algorithm.
        assert!(decompress(&packed[..packed.len() - 9], DEFAULT_MAX_DECOMPRESSED).is_err());
        assert_eq!(decompress(&[MARKER, 1, 0], 10), Err(CompressError::Header));
        assert_eq!(decompress(&[MARKER, 9, 0, 0, 0, 0, 1], 10), Err(CompressError::Header));
    }
}
