//! Where a user key is stored in [`Space::Data`](crate::Space::Data), for keys of any length.
//!
//! ```text
//! short key: generation (8 bytes BE) ++ user key          value: envelope(value)
//! long key:  generation (8 bytes BE) ++ 0xFF ++ SHA-256    value: envelope(bucket)
//! bucket:    { key length (u32 BE), value length (u32 BE), key, value }+   ascending by key
//! ```
//!
//! A key is *long* when its short form would be over the engine's key limit
//! ([`EngineLimits::max_key`]: 511 bytes on LMDB, gigabytes elsewhere). Short keys keep the
//! layout of every earlier version, so existing stores read the same. A long key is stored
//! under a fixed 41-byte key (the marker byte and the SHA-256 of the user key), and its record
//! keeps the full key beside the value: a bucket of every key with that hash, so even a hash
//! collision loses nothing. The marker 0xFF never starts a short key (user keys are UTF-8, and
//! no UTF-8 text holds the byte 0xFF), so the two forms never meet, and within a generation
//! every long key sorts after every short one: the ordered reads merge the two runs.

use sha2::Digest;
use sha2::Sha256;

use super::state::gen_prefix;
use crate::CodecError;
use crate::EngineLimits;
use crate::Space;
use crate::StoreError;
use crate::codec::ENVELOPE_HEADER;
use crate::codec::open_envelope;
use crate::codec::seal_bytes;

/// The byte after the generation that marks a hashed key: never the first byte of UTF-8 text.
pub(crate) const HASHED_MARKER: u8 = 0xFF;
/// The length of a hashed key: generation, marker, SHA-256.
pub(crate) const HASHED_KEY_LEN: usize = 8 + 1 + 32;
/// Bytes a bucket spends per pair beside its key and value: the two lengths.
const PAIR_HEADER: usize = 8;

/// Whether `key` is stored under its hash on an engine with these limits.
pub(crate) fn is_long(key: &[u8], limits: &EngineLimits) -> bool {
    key.len()
        .checked_add(8)
        .is_none_or(|stored| stored > limits.max_key)
}

/// The short form: the generation, then the key.
pub(crate) fn short_key(generation: u64, key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(8 + key.len());
    k.extend_from_slice(&gen_prefix(generation));
    k.extend_from_slice(key);
    k
}

/// The hashed form: the generation, the marker, the SHA-256 of the key.
pub(crate) fn hashed_key(generation: u64, key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(HASHED_KEY_LEN);
    k.extend_from_slice(&gen_prefix(generation));
    k.push(HASHED_MARKER);
    k.extend_from_slice(&Sha256::digest(key));
    k
}

/// The key `key` is stored under in generation `generation`.
pub(crate) fn stored_key(generation: u64, key: &[u8], limits: &EngineLimits) -> Vec<u8> {
    if is_long(key, limits) {
        hashed_key(generation, key)
    } else {
        short_key(generation, key)
    }
}

/// The first hashed key of a generation: every short key of the generation is below it.
pub(crate) fn hashed_start(generation: u64) -> [u8; 9] {
    let mut k = [HASHED_MARKER; 9];
    k[..8].copy_from_slice(&gen_prefix(generation));
    k
}

/// Whether a stored key is in the hashed form.
pub(crate) fn is_hashed_form(stored: &[u8]) -> bool {
    stored.len() == HASHED_KEY_LEN && stored.get(8) == Some(&HASHED_MARKER)
}

/// The stored value of a bucket's pair: every key under one hash with its value, ascending by
/// key (one pair unless SHA-256 collides).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Bucket {
    pairs: Vec<(Vec<u8>, Vec<u8>)>,
}

/// Why a stored bucket is unusable.
#[derive(Debug)]
pub(crate) enum BucketError {
    /// Its envelope failed (checksum, version, length).
    Envelope(CodecError),
    /// Its envelope is sound and the pairs inside are not: what is wrong with them.
    Damaged(String),
}

impl std::fmt::Display for BucketError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BucketError::Envelope(e) => e.fmt(f),
            BucketError::Damaged(reason) => f.write_str(reason),
        }
    }
}

impl BucketError {
    /// The store's error for this bucket, stored under a key described by `key`.
    pub(crate) fn into_store_error(self, backend: &'static str, key: String) -> StoreError {
        match self {
            BucketError::Envelope(e) => StoreError::corrupt(backend, Space::Data, None, key, e),
            BucketError::Damaged(reason) => {
                StoreError::damaged(backend, Space::Data, None, format!("{key}: {reason}"))
            }
        }
    }
}

impl Bucket {
    /// Decode a stored bucket (its envelope checked) found under `stored`, checking that each
    /// key is UTF-8, hashes to `stored` and comes after the one before. The error says what
    /// was wrong.
    pub(crate) fn decode(stored: &[u8], value: &[u8]) -> Result<Self, BucketError> {
        let payload = open_envelope(value).map_err(BucketError::Envelope)?;
        Self::decode_pairs(stored, payload).map_err(BucketError::Damaged)
    }

    /// The pairs of a bucket's payload (its envelope already checked).
    fn decode_pairs(stored: &[u8], payload: &[u8]) -> Result<Self, String> {
        let mut rest = payload;
        let mut pairs: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        while !rest.is_empty() {
            let Some((lengths, tail)) = rest.split_first_chunk::<PAIR_HEADER>() else {
                return Err(format!(
                    "bucket pair {}: {} bytes left, shorter than the two lengths",
                    pairs.len(),
                    rest.len()
                ));
            };
            let [k0, k1, k2, k3, v0, v1, v2, v3] = *lengths;
            let key_len = u32::from_be_bytes([k0, k1, k2, k3]) as usize;
            let value_len = u32::from_be_bytes([v0, v1, v2, v3]) as usize;
            if key_len.saturating_add(value_len) > tail.len() {
                return Err(format!(
                    "bucket pair {} says it holds {} bytes, only {} are left",
                    pairs.len(),
                    key_len.saturating_add(value_len),
                    tail.len()
                ));
            }
            let (key, tail) = tail.split_at(key_len);
            let (value, tail) = tail.split_at(value_len);
            if std::str::from_utf8(key).is_err() {
                return Err(format!("bucket pair {}: its key is not UTF-8", pairs.len()));
            }
            if hashed_key(0, key)[8..] != stored[8..] {
                return Err(format!(
                    "bucket pair {}: its key of {} bytes does not hash to the key it is stored under",
                    pairs.len(),
                    key.len()
                ));
            }
            if pairs.last().is_some_and(|(last, _)| last.as_slice() >= key) {
                return Err(format!(
                    "bucket pair {}: keys are not in ascending order",
                    pairs.len()
                ));
            }
            pairs.push((key.to_vec(), value.to_vec()));
            rest = tail;
        }
        if pairs.is_empty() {
            return Err("empty bucket".into());
        }
        Ok(Self { pairs })
    }

    /// The value of `key`.
    pub(crate) fn get(&self, key: &[u8]) -> Option<&[u8]> {
        self.find(key).ok().map(|i| self.pairs[i].1.as_slice())
    }

    /// Set `key` to `value`; returns the value it replaced.
    pub(crate) fn set(&mut self, key: &[u8], value: &[u8]) -> Option<Vec<u8>> {
        match self.find(key) {
            Ok(i) => Some(std::mem::replace(&mut self.pairs[i].1, value.to_vec())),
            Err(i) => {
                self.pairs.insert(i, (key.to_vec(), value.to_vec()));
                None
            }
        }
    }

    /// Remove `key`; returns its value.
    pub(crate) fn remove(&mut self, key: &[u8]) -> Option<Vec<u8>> {
        self.find(key).ok().map(|i| self.pairs.remove(i).1)
    }

    /// Whether no key is left (the record is then deleted, not stored empty).
    pub(crate) fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    /// The pairs, ascending by key.
    pub(crate) fn into_pairs(self) -> Vec<(Vec<u8>, Vec<u8>)> {
        self.pairs
    }

    /// The stored value: the pairs in an envelope. `None` if a key or value is too long for
    /// the u32 lengths (the state machine refuses such requests before they get here).
    pub(crate) fn encode(&self) -> Option<Vec<u8>> {
        let mut payload = Vec::with_capacity(self.encoded_len() - ENVELOPE_HEADER);
        for (key, value) in &self.pairs {
            payload.extend_from_slice(&u32::try_from(key.len()).ok()?.to_be_bytes());
            payload.extend_from_slice(&u32::try_from(value.len()).ok()?.to_be_bytes());
            payload.extend_from_slice(key);
            payload.extend_from_slice(value);
        }
        Some(seal_bytes(&payload))
    }

    /// The length of [`encode`](Self::encode)'s result.
    pub(crate) fn encoded_len(&self) -> usize {
        self.pairs.iter().fold(ENVELOPE_HEADER, |n, (k, v)| {
            n.saturating_add(PAIR_HEADER + k.len() + v.len())
        })
    }

    fn find(&self, key: &[u8]) -> Result<usize, usize> {
        self.pairs.binary_search_by(|(k, _)| k.as_slice().cmp(key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LMDB: EngineLimits = EngineLimits {
        max_key: 511,
        max_value: u32::MAX as usize,
        max_pair: usize::MAX,
    };

    #[test]
    fn short_keys_keep_the_old_layout_up_to_the_limit() {
        let key = vec![b'a'; 503];
        assert_eq!(
            stored_key(7, &key, &LMDB),
            [&7u64.to_be_bytes()[..], &key].concat()
        );
        let long = vec![b'a'; 504];
        let stored = stored_key(7, &long, &LMDB);
        assert_eq!(stored.len(), HASHED_KEY_LEN);
        assert!(is_hashed_form(&stored));
        assert!(stored.as_slice() > &hashed_start(7)[..] && stored.as_slice() < &8u64.to_be_bytes()[..]);
        // Every short key of the generation, the empty one and the greatest UTF-8 included,
        // sorts below the hashed ones.
        for key in ["", "a", "\u{10FFFF}\u{10FFFF}"] {
            assert!(short_key(7, key.as_bytes()).as_slice() < &hashed_start(7)[..]);
        }
        assert!(!is_long(&key, &EngineLimits::NONE) && !is_long(&long, &EngineLimits::NONE));
    }

    #[test]
    fn bucket_round_trips_and_keeps_colliding_keys_apart() {
        let stored = hashed_key(0, b"k");
        let mut bucket = Bucket::default();
        assert_eq!(bucket.set(b"k", b"v1"), None);
        assert_eq!(bucket.set(b"k", b"v2").as_deref(), Some(&b"v1"[..]));
        let encoded = bucket.encode().expect("small pairs encode");
        assert_eq!(encoded.len(), bucket.encoded_len());
        let back = Bucket::decode(&stored, &encoded).expect("decode what was encoded");
        assert_eq!(back.get(b"k"), Some(&b"v2"[..]));
        // A second key in the same bucket (as a collision would put it) is kept apart, but on
        // decode it must hash to the bucket's key: here it does not, so it is reported.
        bucket.set(b"other", b"x");
        assert_eq!(bucket.get(b"other"), Some(&b"x"[..]));
        assert_eq!(bucket.get(b"k"), Some(&b"v2"[..]));
        let err = Bucket::decode(&stored, &bucket.encode().expect("encode")).expect_err("a stray key");
        assert!(err.to_string().contains("does not hash"), "{err}");
        assert_eq!(bucket.remove(b"other").as_deref(), Some(&b"x"[..]));
        assert_eq!(bucket.remove(b"k").as_deref(), Some(&b"v2"[..]));
        assert!(bucket.is_empty());
    }

    #[test]
    fn damaged_buckets_are_refused_with_the_reason() {
        let stored = hashed_key(0, b"k");
        let mut bucket = Bucket::default();
        bucket.set(b"k", b"value");
        let good = bucket.encode().expect("encode");
        // Cut short (envelope rebuilt so only the bucket's own check can catch it).
        let payload = open_envelope(&good).expect("open");
        let cut = seal_bytes(&payload[..payload.len() - 1]);
        let err = Bucket::decode(&stored, &cut).expect_err("cut short");
        assert!(err.to_string().contains("only"), "{err}");
        assert!(
            Bucket::decode(&stored, &seal_bytes(&[]))
                .expect_err("empty")
                .to_string()
                .contains("empty")
        );
        let mut flipped = good.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        assert!(
            Bucket::decode(&stored, &flipped)
                .expect_err("flipped")
                .to_string()
                .contains("checksum")
        );
    }
}
