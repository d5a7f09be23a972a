//! Value encoding: a [`Codec`] turns serde values into payload bytes, and the envelope wraps every
//! stored value with a format version byte and a CRC32C of the payload.
//!
//! ```text
//! value = [version: u8][crc32c(payload): u32 big-endian][payload]
//! ```

use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;

/// The envelope's format version; bumped on any change of the on-disk format.
pub const FORMAT_VERSION: u8 = 1;

/// Bytes the envelope adds in front of the payload.
pub const ENVELOPE_HEADER: usize = 5;

/// Serializes values stored in the log and meta keyspaces.
///
/// A store remembers the codec it was created with in its format record and refuses to open
/// with another one.
///
/// A codec either names what it writes ([`SELF_DESCRIBING`](Codec::SELF_DESCRIBING): struct
/// fields by name, every length and enum tag explicit, like [`MessagePack`], the default) or
/// relies on the reader knowing the shape of the value (like [`Bincode`] and [`Postcard`]).
/// With the second kind, a value whose serialization depends on the value itself
/// (`skip_serializing_if`, `skip_serializing` with `default`, `flatten`, `untagged` and
/// internally tagged enums, `serde_json::Value`) can decode without error to *another value*:
/// `struct { #[serde(skip_serializing_if = "Option::is_none")] note: Option<String>, n: u64,
/// data: Vec<u8> }` with `note: None, n: 0, data: [1, 9]` is written by bincode as `0, 2, 1, 9`
/// and read back as `note: None, n: 2, data: [9]`. No check of the bytes alone can see this
/// (the wrong value can encode to the very same bytes), so the log store takes such a codec only
/// with a comparison of values or an explicit promise (see `raft_store_core::EntryCheck`).
pub trait Codec: Send + Sync + 'static {
    /// The name stored in the format record.
    const NAME: &'static str;

    /// Whether the encoding names what it writes (struct fields by name, lengths and enum tags
    /// explicit), so a value that encodes decodes to a value of the same shape whatever serde
    /// attributes its type carries. `false` unless a codec says otherwise: the safe answer.
    const SELF_DESCRIBING: bool = false;

    /// Append the encoding of `value` to `out`.
    fn encode_into<T: Serialize>(value: &T, out: &mut Vec<u8>) -> Result<(), CodecError>;

    /// Decode a value from all of `bytes` (trailing bytes are an error).
    fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError>;
}

/// Why a value could not be encoded, or stored bytes could not be read back: the envelope's
/// checks, or the codec's own error kept as the source. The store wraps it with what it was
/// reading or writing (`StoreError::Corrupt`, `StoreError::Encode` in `raft-store-core`).
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum CodecError {
    /// The codec's serializer or deserializer failed.
    #[error("{source}")]
    Serde {
        /// The codec's name.
        codec: &'static str,
        /// The codec crate's error (shared, so that the error can be cloned).
        #[source]
        source: Arc<dyn std::error::Error + Send + Sync + 'static>,
    },
    /// The value was decoded, and bytes are left after it.
    #[error("{count} trailing bytes after the value")]
    TrailingBytes {
        /// The codec's name.
        codec: &'static str,
        /// How many bytes are left.
        count: usize,
    },
    /// A length inside the value claims more than the value can hold (a damaged length).
    #[error("a length inside the {len}-byte value claims more than {per_byte}x the value's size")]
    LengthOverLimit {
        /// The codec's name.
        codec: &'static str,
        /// The length of the value.
        len: usize,
        /// How many bytes one byte of input may claim.
        per_byte: usize,
    },
    /// The stored value is shorter than the envelope's header.
    #[error("value of {len} bytes is shorter than the envelope header")]
    ShortEnvelope {
        /// The length of the value.
        len: usize,
    },
    /// The envelope names a format version this build does not read.
    #[error("envelope format version {found}, expected {expected}")]
    EnvelopeVersion {
        /// The version byte stored.
        found: u8,
        /// The version this build writes and reads.
        expected: u8,
    },
    /// The payload does not match the checksum stored in front of it.
    #[error("checksum mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    Checksum {
        /// The checksum stored.
        stored: u32,
        /// The checksum of the payload read.
        computed: u32,
    },
}

impl CodecError {
    /// Wrap a codec crate's error (for a [`Codec`] of your own).
    pub fn serde(codec: &'static str, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        CodecError::Serde {
            codec,
            source: Arc::new(source),
        }
    }
}

/// Two codec errors are equal when they are the same kind of error and say the same (a codec
/// crate's error has no equality of its own).
impl PartialEq for CodecError {
    fn eq(&self, other: &Self) -> bool {
        std::mem::discriminant(self) == std::mem::discriminant(other) && self.to_string() == other.to_string()
    }
}

impl Eq for CodecError {}

/// MessagePack (rmp-serde) with struct fields written as maps by name and enum variants by
/// name: self-describing, so every serde attribute round-trips (`skip_serializing_if` anywhere,
/// `skip_serializing` with `default`, `flatten`, `untagged`, internally and adjacently tagged
/// enums, `serde_json::Value`, maps and sets, NaNs bit for bit). The default codec of new stores.
///
/// One shape is still lost by every self-describing serde format, this one included: a `Some`
/// around a value that serializes as nothing (`Some(None)` of an `Option<Option<T>>`,
/// `Some(())`) is written like `None` and read back as `None`. Entries carrying such values need
/// a value comparison (`EntryCheck::equal()` in `raft_store_core`), which refuses them.
#[derive(Debug, Clone, Copy, Default)]
pub struct MessagePack;

/// How deep MessagePack values may nest when read back: far beyond any log entry, and low
/// enough that a damaged value cannot overflow the stack of the thread that reads it.
const MESSAGE_PACK_MAX_DEPTH: usize = 256;

impl Codec for MessagePack {
    const NAME: &'static str = "msgpack-named1";
    const SELF_DESCRIBING: bool = true;

    fn encode_into<T: Serialize>(value: &T, out: &mut Vec<u8>) -> Result<(), CodecError> {
        let mut serializer = rmp_serde::Serializer::new(out).with_struct_map();
        value
            .serialize(&mut serializer)
            .map_err(|e| CodecError::serde(Self::NAME, e))
    }

    fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
        // A reader over the slice: it reads a string or byte string of a claimed length only as
        // far as the input goes (no allocation of a damaged length), and what it leaves unread
        // is the trailing bytes.
        let mut rest = bytes;
        let mut deserializer = rmp_serde::Deserializer::new(&mut rest);
        deserializer.set_max_depth(MESSAGE_PACK_MAX_DEPTH);
        let value = T::deserialize(&mut deserializer).map_err(|e| CodecError::serde(Self::NAME, e))?;
        if !rest.is_empty() {
            return Err(CodecError::TrailingBytes {
                codec: Self::NAME,
                count: rest.len(),
            });
        }
        Ok(value)
    }
}

/// bincode 2 in serde mode with the standard configuration (varint integers, little-endian
/// fixed-size fields inside the payload; keys never use it). Compact and fast, but not
/// self-describing: see [`Codec`] for what that costs and how the log store guards it.
#[derive(Debug, Clone, Copy, Default)]
pub struct Bincode;

impl Codec for Bincode {
    const NAME: &'static str = "bincode2";

    fn encode_into<T: Serialize>(value: &T, out: &mut Vec<u8>) -> Result<(), CodecError> {
        bincode::serde::encode_into_std_write(value, out, bincode::config::standard())
            .map(|_| ())
            .map_err(|e| CodecError::serde(Self::NAME, e))
    }

    fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
        // bincode allocates a string or byte vector of the length it reads before reading its
        // bytes: a damaged length would allocate that much, and a failed allocation aborts the
        // process. With a limit, bincode refuses such a length first. The limit does not count
        // input bytes: every integer claims its in-memory width whatever its varint encoding
        // took (a `u128` of one byte claims 16, a length or a `usize` 8, an enum tag 4), and a
        // string or byte vector claims its length, which the input must hold. No decoded item
        // claims more than 16 bytes per input byte it consumes, so `BINCODE_CLAIM_PER_BYTE`
        // times the input accepts every valid value (see `bincode_limit_accepts_the_worst_case`
        // and the property tests). The limit is a type parameter: take the smallest power of
        // two that covers it, so a damaged length allocates at most 32x the input.
        let need = bytes.len().saturating_mul(BINCODE_CLAIM_PER_BYTE).max(64);
        macro_rules! smallest_limit {
            ($($bits:literal),*) => {
                $(
                    if need <= 1usize << $bits {
                        return bincode_decode(bytes, bincode::config::standard().with_limit::<{ 1usize << $bits }>());
                    }
                )*
            };
        }
        smallest_limit!(
            6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30,
            31
        );
        #[cfg(target_pointer_width = "64")]
        smallest_limit!(32, 33, 34, 35, 36, 37, 38, 39, 40);
        // Beyond 64 GiB of input (on 64-bit; 128 MiB on 32-bit) no value is a log entry: decode
        // without a limit rather than refuse a value this codec wrote.
        bincode_decode(bytes, bincode::config::standard())
    }
}

/// How many bytes of bincode's decode limit one input byte may claim at most (a one-byte varint
/// decoded as a `u128` claims 16).
const BINCODE_CLAIM_PER_BYTE: usize = 16;

fn bincode_decode<T: DeserializeOwned, C: bincode::config::Config>(
    bytes: &[u8],
    config: C,
) -> Result<T, CodecError> {
    let (value, used) = bincode::serde::decode_from_slice(bytes, config).map_err(|e| match e {
        bincode::error::DecodeError::LimitExceeded => CodecError::LengthOverLimit {
            codec: Bincode::NAME,
            len: bytes.len(),
            per_byte: BINCODE_CLAIM_PER_BYTE,
        },
        e => CodecError::serde(Bincode::NAME, e),
    })?;
    if used != bytes.len() {
        return Err(CodecError::TrailingBytes {
            codec: Bincode::NAME,
            count: bytes.len() - used,
        });
    }
    Ok(value)
}

/// postcard 1: compact, stable wire format. Not self-describing: see [`Codec`].
#[derive(Debug, Clone, Copy, Default)]
pub struct Postcard;

impl Codec for Postcard {
    const NAME: &'static str = "postcard1";

    fn encode_into<T: Serialize>(value: &T, out: &mut Vec<u8>) -> Result<(), CodecError> {
        let taken = std::mem::take(out);
        let extended = postcard::to_extend(value, taken).map_err(|e| CodecError::serde(Self::NAME, e))?;
        *out = extended;
        Ok(())
    }

    fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
        let (value, rest) = postcard::take_from_bytes(bytes).map_err(|e| CodecError::serde(Self::NAME, e))?;
        if !rest.is_empty() {
            return Err(CodecError::TrailingBytes {
                codec: Self::NAME,
                count: rest.len(),
            });
        }
        Ok(value)
    }
}

/// Why a value does not come back as written under a codec (see [`check_round_trip`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RoundTripError {
    /// The codec cannot encode the value.
    #[error("{codec} cannot encode it: {source}")]
    Encode {
        /// The codec's name.
        codec: &'static str,
        /// The codec's error.
        #[source]
        source: CodecError,
    },
    /// The codec encodes the value to bytes it cannot decode again.
    #[error("{codec} encodes it to {len} bytes that it cannot decode again: {source}")]
    Decode {
        /// The codec's name.
        codec: &'static str,
        /// The length of the encoding.
        len: usize,
        /// The codec's error.
        #[source]
        source: CodecError,
    },
    /// The codec reads the value back as a different value.
    #[error(
        "{codec} reads it back as a different value (a serde attribute that makes the encoding depend on the value, such as skip_serializing_if, shifts what the decoder reads)"
    )]
    Different {
        /// The codec's name.
        codec: &'static str,
    },
}

/// Encode `value` with codec `K`, decode it again and compare the result with `value` by `eq`:
/// `Ok` with the encoding (the payload, without the envelope) if it comes back as written.
///
/// This is the check the log store runs on every entry when it was opened with a value
/// comparison, offered for an application to run on a payload before proposing it, so that a
/// request the store would refuse is refused to the client instead (a refusal inside the log
/// store's `append` stops the raft node, see `raft_store_core::EntryCheck`).
pub fn round_trip<K: Codec, T>(value: &T, eq: impl FnOnce(&T, &T) -> bool) -> Result<Vec<u8>, RoundTripError>
where
    T: Serialize + DeserializeOwned,
{
    let mut bytes = Vec::new();
    K::encode_into(value, &mut bytes).map_err(|source| RoundTripError::Encode {
        codec: K::NAME,
        source,
    })?;
    let back: T = K::decode(&bytes).map_err(|source| RoundTripError::Decode {
        codec: K::NAME,
        len: bytes.len(),
        source,
    })?;
    if !eq(&back, value) {
        return Err(RoundTripError::Different { codec: K::NAME });
    }
    Ok(bytes)
}

/// Whether `value` comes back as written under codec `K` ([`round_trip`] with `==`).
///
/// ```
/// use raft_store_engine::codec::{Bincode, MessagePack, RoundTripError, check_round_trip};
///
/// #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
/// struct Careless {
///     #[serde(skip_serializing_if = "Option::is_none")]
///     note: Option<String>,
///     n: u64,
///     data: Vec<u8>,
/// }
///
/// let value = Careless { note: None, n: 0, data: vec![1, 9] };
/// assert_eq!(check_round_trip::<MessagePack, _>(&value), Ok(()));
/// assert_eq!(
///     check_round_trip::<Bincode, _>(&value),
///     Err(RoundTripError::Different { codec: "bincode2" })
/// );
/// ```
pub fn check_round_trip<K: Codec, T>(value: &T) -> Result<(), RoundTripError>
where
    T: Serialize + DeserializeOwned + PartialEq,
{
    round_trip::<K, T>(value, |a, b| a == b).map(|_| ())
}

/// Encode `value` with codec `K` into a complete envelope.
pub fn seal<K: Codec, T: Serialize>(value: &T) -> Result<Vec<u8>, CodecError> {
    let mut out = Vec::with_capacity(64);
    out.extend_from_slice(&[FORMAT_VERSION, 0, 0, 0, 0]);
    K::encode_into(value, &mut out)?;
    let crc = crc32c::crc32c(&out[ENVELOPE_HEADER..]);
    out[1..ENVELOPE_HEADER].copy_from_slice(&crc.to_be_bytes());
    Ok(out)
}

/// Wrap raw payload bytes in an envelope.
pub fn seal_bytes(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(ENVELOPE_HEADER + payload.len());
    out.push(FORMAT_VERSION);
    out.extend_from_slice(&crc32c::crc32c(payload).to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// Check an envelope and return its payload. The error says what was wrong.
pub fn open_envelope(value: &[u8]) -> Result<&[u8], CodecError> {
    let Some((header, payload)) = value.split_first_chunk::<ENVELOPE_HEADER>() else {
        return Err(CodecError::ShortEnvelope { len: value.len() });
    };
    let [version, c0, c1, c2, c3] = *header;
    if version != FORMAT_VERSION {
        return Err(CodecError::EnvelopeVersion {
            found: version,
            expected: FORMAT_VERSION,
        });
    }
    let stored = u32::from_be_bytes([c0, c1, c2, c3]);
    let computed = crc32c::crc32c(payload);
    if stored != computed {
        return Err(CodecError::Checksum { stored, computed });
    }
    Ok(payload)
}

/// Check an envelope and decode its payload with codec `K`.
pub fn unseal<K: Codec, T: DeserializeOwned>(value: &[u8]) -> Result<T, CodecError> {
    K::decode(open_envelope(value)?)
}

/// The key of log entry `index`: 8 bytes big-endian, so byte order is log order.
pub fn log_key(index: u64) -> [u8; 8] {
    index.to_be_bytes()
}

/// The index of a log key, or `None` if the key is not 8 bytes long.
pub fn log_index(key: &[u8]) -> Option<u64> {
    let bytes: [u8; 8] = key.try_into().ok()?;
    Some(u64::from_be_bytes(bytes))
}

#[cfg(test)]
mod tests;
