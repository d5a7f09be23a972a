//! The decoder the fuzz target drives (`compat-tests/fuzz`): everything the store decodes from
//! what it reads on disk, run on arbitrary bytes.
//!
//! Whatever the bytes, decoding returns a value or an error: no panic, no abort, no huge
//! allocation. A value that decodes also encodes back to an envelope that decodes to the same
//! value.

use crate::TestConfig;
use openraft::type_config::alias::EntryOf;
use openraft::type_config::alias::LogIdOf;
use openraft::type_config::alias::VoteOf;
use raft_store_core::Bincode;
use raft_store_core::Codec;
use raft_store_core::MessagePack;
use raft_store_core::Postcard;
use raft_store_engine::codec;
use raft_store_engine::format::FormatRecord;

/// Decode `data` every way the store decodes what it reads from disk: as an envelope, as an
/// entry, a vote, a log id and a committed id in every codec (both sealed as they are, and with
/// a valid envelope put around them so the codec itself sees arbitrary bytes), and as a format
/// record.
///
/// # Panics
///
/// Only if a decoded value does not survive encoding and decoding again: a codec bug.
pub fn decode(data: &[u8]) {
    let _ = codec::open_envelope(data);
    let _ = FormatRecord::decode("fuzz", data);
    let sealed = codec::seal_bytes(data);
    for bytes in [data, &sealed[..]] {
        each_codec::<Bincode>(bytes);
        each_codec::<Postcard>(bytes);
        each_codec::<MessagePack>(bytes);
    }
}

fn each_codec<K: Codec>(bytes: &[u8]) {
    round_trip::<K, EntryOf<TestConfig>>(bytes);
    round_trip::<K, VoteOf<TestConfig>>(bytes);
    round_trip::<K, LogIdOf<TestConfig>>(bytes);
    round_trip::<K, Option<LogIdOf<TestConfig>>>(bytes);
}

fn round_trip<K, T>(bytes: &[u8])
where
    K: Codec,
    T: serde::Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
{
    if let Ok(value) = codec::unseal::<K, T>(bytes) {
        let again = codec::seal::<K, T>(&value).expect("a decoded value encodes");
        let back: T = codec::unseal::<K, T>(&again).expect("an encoded value decodes");
        assert_eq!(back, value, "{} round trip", K::NAME);
    }
}

/// Valid envelopes of every kind the store writes: the seed corpus of the fuzz target and the
/// starting points of mutated inputs.
pub fn seeds() -> Vec<Vec<u8>> {
    use crate::util;
    let mut out = Vec::new();
    for e in [util::entry(1, 1), util::entry_with(7, 1 << 40, "x".repeat(300))] {
        out.push(codec::seal::<Bincode, _>(&e).unwrap_or_default());
        out.push(codec::seal::<Postcard, _>(&e).unwrap_or_default());
        out.push(codec::seal::<MessagePack, _>(&e).unwrap_or_default());
    }
    out.push(codec::seal::<Bincode, _>(&util::vote(3, 2)).unwrap_or_default());
    out.push(codec::seal::<Postcard, _>(&util::vote(3, 2)).unwrap_or_default());
    out.push(codec::seal::<Bincode, _>(&Some(util::log_id(2, 9))).unwrap_or_default());
    out.push(
        FormatRecord {
            version: raft_store_engine::format::STORE_FORMAT_VERSION,
            backend: "redb".into(),
            codec: Bincode::NAME.into(),
            openraft: "0.10".into(),
            layout: "single".into(),
        }
        .encode(),
    );
    out
}
