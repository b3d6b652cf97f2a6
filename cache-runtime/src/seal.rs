//! Signed values: a keyed blake3 MAC over the full Redis key and the stored bytes.
//!
//! Without a signing key, anyone who can write to Redis decides what the bot answers (a price
//! edited to 1 is served as 1, one coin's genuine entry copied under another coin's key is served
//! for that coin). With one, every value written to the shared tier is framed as
//!
//! ```text
//! MAGIC (4 bytes: a5 53 47 01) | tag (32 bytes) | payload (the encoded envelope)
//! tag = blake3::keyed_hash(derived key, len(key) as u64 LE | key | payload)
//! ```
//!
//! and a read is used only if the tag verifies, with the current key or one of the old keys
//! (rotation). The algorithm and the framing are fixed by this code, never chosen by what is
//! stored, and the comparison is constant-time (`blake3::Hash`'s `PartialEq`). Binding the key
//! into the tag stops replays across keys; a replay of an older genuine value under the *same*
//! key is bounded by the envelope's own write time and the reader's TTL limits.

use std::fmt;

/// The leading bytes of a sealed value. `0xa5` is neither JSON's `{` nor a MessagePack array, so
/// a sealed value can never be mistaken for a bare envelope (and vice versa).
pub const MAGIC: [u8; 4] = [0xa5, b'S', b'G', 1];
/// Bytes a seal adds in front of the payload.
pub const OVERHEAD: usize = MAGIC.len() + blake3::OUT_LEN;
/// Shortest secret accepted: anything shorter is guessable offline from one stored value.
pub const MIN_SECRET_LEN: usize = 16;

/// The `blake3::derive_key` context: fixed, globally unique, and versioned with the framing.
const CONTEXT: &str = "syntra-cache 2026-12 value seal v1";

/// Why sealed bytes were refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Tampered {
    /// The value carries no seal (written without a key, or by someone else).
    #[error("value is not signed")]
    Unsigned,
    /// The seal does not verify with any configured key (edited, copied from another key, or
    /// signed with a key this instance does not know).
    #[error("signature does not verify")]
    BadTag,
}

/// A secret too short (or empty) to sign with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a signing key needs at least {MIN_SECRET_LEN} bytes (got {0})")]
pub struct WeakSecret(pub usize);

/// Signs with one key and verifies with it and any older ones. Cheap to clone. Its `Debug`
/// shows how many keys it holds, never a key.
#[derive(Clone)]
pub struct Sealer {
    current: [u8; 32],
    old: Vec<[u8; 32]>,
}

impl fmt::Debug for Sealer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sealer").field("keys", &"<redacted>").field("old_keys", &self.old.len()).finish()
    }
}

fn derive(secret: &str) -> Result<[u8; 32], WeakSecret> {
    if secret.len() < MIN_SECRET_LEN {
        return Err(WeakSecret(secret.len()));
    }
    Ok(blake3::derive_key(CONTEXT, secret.as_bytes()))
}

impl Sealer {
    /// A sealer signing with `secret` and also accepting values signed with any of `old`.
    pub fn new<S: AsRef<str>>(secret: &str, old: &[S]) -> Result<Self, WeakSecret> {
        let current = derive(secret)?;
        let old = old.iter().map(|s| derive(s.as_ref())).collect::<Result<_, _>>()?;
        Ok(Sealer { current, old })
    }

    fn tag(key: &[u8; 32], full_key: &str, payload: &[u8]) -> blake3::Hash {
        let mut h = blake3::Hasher::new_keyed(key);
        h.update(&(full_key.len() as u64).to_le_bytes());
        h.update(full_key.as_bytes());
        h.update(payload);
        h.finalize()
    }

    /// `payload` framed with its seal for `full_key`.
    pub fn seal(&self, full_key: &str, payload: &[u8]) -> Vec<u8> {
        let tag = Self::tag(&self.current, full_key, payload);
        let mut out = Vec::with_capacity(OVERHEAD + payload.len());
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(tag.as_bytes());
        out.extend_from_slice(payload);
        out
    }

    /// The payload of `sealed` if its seal verifies for `full_key` with the current or an old key.
    pub fn open<'a>(&self, full_key: &str, sealed: &'a [u8]) -> Result<&'a [u8], Tampered> {
        let rest = sealed.strip_prefix(&MAGIC[..]).ok_or(Tampered::Unsigned)?;
        if rest.len() < blake3::OUT_LEN {
            return Err(Tampered::BadTag);
        }
        let (tag, payload) = rest.split_at(blake3::OUT_LEN);
        let mut found = [0u8; blake3::OUT_LEN];
        found.copy_from_slice(tag);
        let found = blake3::Hash::from_bytes(found);
        // `blake3::Hash == Hash` is constant-time; every key is tried so timing does not tell
        // which one matched.
        let mut ok = false;
        for key in std::iter::once(&self.current).chain(&self.old) {
            ok |= Self::tag(key, full_key, payload) == found;
        }
        if ok {
            Ok(payload)
        } else {
            Err(Tampered::BadTag)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "0123456789abcdef-current";
    const B: &str = "0123456789abcdef-previous";

    #[test]
    fn round_trip_and_every_kind_of_tampering() {
        let s = Sealer::new::<&str>(A, &[]).unwrap();
        let sealed = s.seal("ns:k", b"{\"x\":1}");
        assert_eq!(sealed.len(), OVERHEAD + 7);
        assert_eq!(s.open("ns:k", &sealed), Ok(&b"{\"x\":1}"[..]));
        assert_eq!(s.open("ns:other", &sealed), Err(Tampered::BadTag), "replayed under another key");
        assert_eq!(s.open("ns:k", b"{\"x\":1}"), Err(Tampered::Unsigned));
        assert_eq!(s.open("ns:k", &sealed[..10]), Err(Tampered::BadTag), "truncated");
        for i in 0..sealed.len() {
            for bit in 0..8 {
                let mut t = sealed.clone();
                t[i] ^= 1 << bit;
                assert!(s.open("ns:k", &t).is_err(), "flipped bit {bit} of byte {i}");
            }
        }
        // Key and payload are length-framed: moving bytes between them changes the tag.
        assert_ne!(Sealer::tag(&s.current, "ns:ab", b"c"), Sealer::tag(&s.current, "ns:a", b"bc"));
    }

    #[test]
    fn rotation_verifies_with_old_keys_and_signs_with_the_new_one() {
        let old = Sealer::new::<&str>(B, &[]).unwrap();
        let rolled = Sealer::new(A, &[B]).unwrap();
        let by_old = old.seal("ns:k", b"v");
        assert_eq!(rolled.open("ns:k", &by_old), Ok(&b"v"[..]));
        let by_new = rolled.seal("ns:k", b"v");
        assert_eq!(old.open("ns:k", &by_new), Err(Tampered::BadTag), "the old key never signs");
        let stranger = Sealer::new::<&str>("a different secret of 32 bytes..", &[]).unwrap();
        assert_eq!(stranger.open("ns:k", &by_new), Err(Tampered::BadTag));
    }

    #[test]
    fn weak_secrets_are_refused_and_debug_shows_no_key() {
        assert_eq!(Sealer::new::<&str>("short", &[]).unwrap_err(), WeakSecret(5));
        assert!(Sealer::new(A, &[""]).is_err());
        let s = Sealer::new(A, &[B]).unwrap();
        let dbg = format!("{s:?}");
        assert!(!dbg.contains("0123") && dbg.contains("old_keys: 1"), "{dbg}");
    }
}
