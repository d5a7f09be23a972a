//! Moving a store from openraft 0.9 to openraft 0.10 (feature `migrate`).
//!
//! A store is opened only by the glue of the line that wrote it: its entries, vote and log ids
//! are encoded with that line's types, and whether those bytes decode as the other line's
//! depends on the application's type config (the codecs are not self-describing). So a store
//! moves by decoding every value with 0.9's types and encoding it with 0.10's:
//! [`openraft_0_9_to_0_10`] copies a 0.9 store into a new, empty one, converting the log
//! entries, the vote, the committed and purged ids, the key-value state machine's state record
//! and its snapshot files; the keys and values of the state machine are the same on both lines
//! and are copied as they are, except keys over the target engine's key limit, which are laid
//! out again for it (stored under their hash, see [`crate::kv`]).
//!
//! The conversion goes through serde's data model: each 0.9 value is serialized to a
//! self-describing form and deserialized as the 0.10 type, so it works whenever the two types
//! have the same shape, which openraft's own types (log ids, votes, entries, memberships,
//! `BasicNode`) and any application data that is the same type on both sides do; a value that
//! does not fit is an error naming it, and the target is left without a format record, so it
//! cannot be opened by mistake.
//!
//! The source is only read. The target is written with its format record last, durably: a
//! migration cut short leaves a target that no store opens (no format record); delete it and
//! run again. The target may be another backend than the source.

use std::collections::HashMap;
use std::fs;
use std::ops::ControlFlow;
use std::path::Path;

use openraft_09 as openraft09;
use serde::Deserialize;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::Batch;
use crate::CodecError;
use crate::Durability;
use crate::Engine;
use crate::FormatError;
use crate::KeyRange;
use crate::OpenraftLine;
use crate::Space;
use crate::codec::Codec;
use crate::codec::open_envelope;
use crate::codec::seal;
use crate::codec::seal_bytes;
use crate::codec::unseal;
use crate::error::StoreError;
use crate::format::FormatRecord;
use crate::format::SINGLE_GROUP_FORMAT_VERSION;
use crate::format::layout;
use crate::format::meta_key;
use crate::kv::keys;
use crate::kv::keys::Bucket;
use crate::kv::snapshot_files::rewrite_meta;
use crate::kv::state::STATE_KEY;

/// Records copied per engine batch.
const CHUNK: usize = 4096;

/// What a migration copied.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Migrated {
    /// Log entries converted.
    pub entries: u64,
    /// Key-value records of the state machine copied.
    pub records: u64,
    /// Snapshot files converted.
    pub snapshots: u64,
}

/// The state machine's state record, laid out as `kv`'s own (generation, last applied log id,
/// last membership), over either line's types.
#[derive(Serialize, Deserialize)]
#[serde(bound = "")]
struct StateRecord<L: Serialize + DeserializeOwned, M: Serialize + DeserializeOwned> {
    generation: u64,
    last_applied: Option<L>,
    last_membership: M,
}

type LogId09<C> = openraft09::LogId<<C as openraft09::RaftTypeConfig>::NodeId>;
type Membership09<C> = openraft09::StoredMembership<
    <C as openraft09::RaftTypeConfig>::NodeId,
    <C as openraft09::RaftTypeConfig>::Node,
>;
type Meta09<C> = openraft09::SnapshotMeta<
    <C as openraft09::RaftTypeConfig>::NodeId,
    <C as openraft09::RaftTypeConfig>::Node,
>;
type LogId10<C> = openraft::type_config::alias::LogIdOf<C>;
type Membership10<C> = openraft::type_config::alias::StoredMembershipOf<C>;
type Meta10<C> = openraft::type_config::alias::SnapshotMetaOf<C>;

/// What converts a value of the 0.9 types into the 0.10 type of the same shape, as errors name it.
const BRIDGE: &str = "openraft 0.9 to 0.10 (serde_json)";

/// One value of the 0.9 types as the 0.10 type of the same shape.
fn bridge<A: Serialize, B: DeserializeOwned>(
    backend: &'static str,
    what: &'static str,
    value: &A,
) -> Result<B, StoreError> {
    // The bridge is a serde_json value: its error says which field did not convert.
    let encode = |e: serde_json::Error| StoreError::encode(backend, what, CodecError::serde(BRIDGE, e));
    let json = serde_json::to_value(value).map_err(encode)?;
    serde_json::from_value(json).map_err(encode)
}

/// Decode a sealed 0.9 value and seal it again as its 0.10 type.
fn convert<K: Codec, A: Serialize + DeserializeOwned, B: Serialize + DeserializeOwned>(
    backend: &'static str,
    what: &'static str,
    space: Space,
    index: Option<u64>,
    bytes: &[u8],
) -> Result<Vec<u8>, StoreError> {
    let old: A = unseal::<K, A>(bytes).map_err(|e| StoreError::corrupt(backend, space, index, what, e))?;
    let new: B = bridge(backend, what, &old)?;
    seal::<K, B>(&new).map_err(|e| StoreError::encode(backend, what, e))
}

/// Copy the openraft 0.9 store in `from` (with its snapshot files in `from_snapshots`) into
/// the empty engine `to` as an openraft 0.10 store (snapshot files into `to_snapshots`).
///
/// `C09` and `C10` are the application's type configs on the two lines; `K` is the store's
/// codec. Refused: a source that is not a 0.9 store of codec `K`, and a target that holds
/// anything. See the [module docs](self) for what is converted and what a failure leaves.
pub fn openraft_0_9_to_0_10<C09, C10, K, E1, E2>(
    from: &E1,
    from_snapshots: &Path,
    to: &E2,
    to_snapshots: &Path,
) -> Result<Migrated, StoreError>
where
    C09: openraft09::RaftTypeConfig,
    C09::Entry: Serialize + DeserializeOwned,
    C10: openraft::RaftTypeConfig,
    K: Codec,
    E1: Engine,
    E2: Engine,
{
    let backend = from.backend();
    let record = match from.get(Space::Meta, meta_key::FORMAT)? {
        Some(bytes) => FormatRecord::decode(backend, &bytes)?,
        None => return Err(FormatError::NoFormatRecord { backend }.into()),
    };
    if record.openraft != OpenraftLine::V0_9.name() {
        return Err(FormatError::WrongOpenraftLine {
            backend,
            found: record.openraft,
            expected: OpenraftLine::V0_9,
        }
        .into());
    }
    if record.codec != K::NAME {
        return Err(FormatError::WrongCodec {
            backend,
            found: record.codec,
            expected: K::NAME,
        }
        .into());
    }
    refuse_non_empty(to)?;
    let target = to.backend();
    let mut done = Migrated::default();

    copy_space(from, to, Space::Log, |key, value| {
        let index = crate::codec::log_index(key);
        done.entries += 1;
        convert::<K, C09::Entry, C10::Entry>(target, "log entry", Space::Log, index, value)
    })?;
    done.records = copy_data(from, to)?;

    let mut batch = Batch::new();
    if let Some(vote) = from.get(Space::Meta, meta_key::VOTE)? {
        let vote = convert::<K, openraft09::Vote<C09::NodeId>, openraft::type_config::alias::VoteOf<C10>>(
            target,
            "vote",
            Space::Meta,
            None,
            &vote,
        )?;
        batch.put(Space::Meta, meta_key::VOTE, vote);
    }
    if let Some(committed) = from.get(Space::Meta, meta_key::COMMITTED)? {
        let committed = convert::<K, Option<LogId09<C09>>, Option<LogId10<C10>>>(
            target,
            "committed log id",
            Space::Meta,
            None,
            &committed,
        )?;
        batch.put(Space::Meta, meta_key::COMMITTED, committed);
    }
    if let Some(purged) = from.get(Space::Meta, meta_key::PURGED)? {
        let purged = convert::<K, LogId09<C09>, LogId10<C10>>(
            target,
            "last purged log id",
            Space::Meta,
            None,
            &purged,
        )?;
        batch.put(Space::Meta, meta_key::PURGED, purged);
    }
    if let Some(state) = from.get(Space::DataMeta, STATE_KEY)? {
        let state = convert::<
            K,
            StateRecord<LogId09<C09>, Membership09<C09>>,
            StateRecord<LogId10<C10>, Membership10<C10>>,
        >(
            target,
            "state machine state record",
            Space::DataMeta,
            None,
            &state,
        )?;
        batch.put(Space::DataMeta, STATE_KEY, state);
    }
    to.write(&batch, Durability::Buffered)?;

    done.snapshots = convert_snapshots::<C09, C10, K>(target, from_snapshots, to_snapshots)?;

    // Last and durable: until this record is written no store opens the target.
    let mut batch = Batch::new();
    let record = FormatRecord {
        version: SINGLE_GROUP_FORMAT_VERSION,
        backend: target.to_string(),
        codec: K::NAME.to_string(),
        openraft: OpenraftLine::V0_10.name().to_string(),
        layout: layout::SINGLE.to_string(),
    };
    batch.put(Space::Meta, meta_key::FORMAT, record.encode());
    to.write(&batch, Durability::Durable)?;
    Ok(done)
}

fn refuse_non_empty<E: Engine>(to: &E) -> Result<(), StoreError> {
    for space in [Space::Log, Space::Meta, Space::Data, Space::DataMeta] {
        let mut any = false;
        to.scan(space, KeyRange::ALL, &mut |_, _| {
            any = true;
            ControlFlow::Break(())
        })?;
        if any {
            return Err(StoreError::MigrationRefused {
                backend: to.backend(),
                reason: format!(
                    "the target store is not empty (keyspace {space} holds data): migrate into a new, empty store"
                ),
            });
        }
    }
    Ok(())
}

/// Copy every record of `space` from `from` to `to`, each value through `map`, a bounded number
/// per batch.
fn copy_space<E1: Engine, E2: Engine>(
    from: &E1,
    to: &E2,
    space: Space,
    mut map: impl FnMut(&[u8], &[u8]) -> Result<Vec<u8>, StoreError>,
) -> Result<(), StoreError> {
    let mut start: Vec<u8> = Vec::new();
    loop {
        let mut chunk: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        from.scan(space, KeyRange::from(&start), &mut |k, v| {
            chunk.push((k.to_vec(), v.to_vec()));
            if chunk.len() >= CHUNK {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        })?;
        let Some((last, _)) = chunk.last() else {
            return Ok(());
        };
        let mut next = last.clone();
        next.push(0);
        let full = chunk.len() >= CHUNK;
        let mut batch = Batch::new();
        for (k, v) in &chunk {
            let value = map(k, v)?;
            batch.put(space, k.clone(), value);
        }
        to.write(&batch, Durability::Buffered)?;
        if !full {
            return Ok(());
        }
        start = next;
    }
}

/// Copy the state machine's records to `to`, laid out for `to`'s key limit: a long key may be
/// stored whole on the source and must be hashed on the target (redb to LMDB), or the other way
/// round (see [`crate::kv`]'s docs); a record the target would store the same way is copied
/// byte for byte. Returns the number of user keys copied.
fn copy_data<E1: Engine, E2: Engine>(from: &E1, to: &E2) -> Result<u64, StoreError> {
    let limits = to.limits();
    let what = |key: &[u8]| format!("state machine record under a key of {} bytes", key.len());
    let corrupt = |key: &[u8], reason: String| {
        StoreError::damaged(
            from.backend(),
            Space::Data,
            None,
            format!("{}: {reason}", what(key)),
        )
    };
    let bucket_err = |key: &[u8], e: keys::BucketError| e.into_store_error(from.backend(), what(key));
    let mut copied = 0u64;
    let mut start: Vec<u8> = Vec::new();
    loop {
        let mut chunk: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        from.scan(Space::Data, KeyRange::from(&start), &mut |k, v| {
            chunk.push((k.to_vec(), v.to_vec()));
            if chunk.len() >= CHUNK {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        })?;
        let Some((last, _)) = chunk.last() else {
            return Ok(copied);
        };
        let mut next = last.clone();
        next.push(0);
        let full = chunk.len() >= CHUNK;
        let mut batch = Batch::new();
        // Buckets put in `batch`, not written yet: a bucket may take several keys.
        let mut pending: HashMap<Vec<u8>, Bucket> = HashMap::new();
        for (k, v) in chunk {
            let Some((generation, rest)) = k.split_first_chunk::<8>() else {
                return Err(corrupt(&k, "shorter than its generation prefix".into()));
            };
            let generation = u64::from_be_bytes(*generation);
            let pairs = if keys::is_hashed_form(&k) {
                Bucket::decode(&k, &v)
                    .map_err(|e| bucket_err(&k, e))?
                    .into_pairs()
            } else if keys::is_long(rest, &limits) {
                let value = open_envelope(&v)
                    .map_err(|e| StoreError::corrupt(from.backend(), Space::Data, None, what(&k), e))?;
                vec![(rest.to_vec(), value.to_vec())]
            } else {
                // Stored the same way on both: as it is.
                copied += 1;
                batch.put(Space::Data, k, v);
                continue;
            };
            for (key, value) in pairs {
                copied += 1;
                let stored = keys::stored_key(generation, &key, &limits);
                let record = if keys::is_hashed_form(&stored) {
                    let mut bucket = match pending.remove(&stored) {
                        Some(bucket) => bucket,
                        None => match to.get(Space::Data, &stored)? {
                            Some(bytes) => {
                                Bucket::decode(&stored, &bytes).map_err(|e| bucket_err(&stored, e))?
                            }
                            None => Bucket::default(),
                        },
                    };
                    bucket.set(&key, &value);
                    let record = bucket.encode();
                    pending.insert(stored.clone(), bucket);
                    record
                } else {
                    Some(seal_bytes(&value))
                };
                let Some(record) = record.filter(|r| limits.fits(stored.len(), r.len())) else {
                    return Err(StoreError::MigrationRefused {
                        backend: to.backend(),
                        reason: format!(
                            "a state machine record with a key of {} bytes and a value of {} bytes does not fit the target ({limits:?})",
                            key.len(),
                            value.len()
                        ),
                    });
                };
                batch.put(Space::Data, stored, record);
            }
        }
        to.write(&batch, Durability::Buffered)?;
        if !full {
            return Ok(copied);
        }
        start = next;
    }
}

/// Convert every snapshot file (`*.snap`) of `from` into `to`, under the same name.
fn convert_snapshots<C09, C10, K>(backend: &'static str, from: &Path, to: &Path) -> Result<u64, StoreError>
where
    C09: openraft09::RaftTypeConfig,
    C10: openraft::RaftTypeConfig,
    K: Codec,
{
    let io = |path: &Path, context: &'static str, source: std::io::Error| StoreError::SnapshotIo {
        path: path.to_path_buf(),
        context,
        source,
    };
    if !from.exists() {
        return Ok(0);
    }
    fs::create_dir_all(to).map_err(|e| io(to, "creating the snapshot directory", e))?;
    let mut converted = 0;
    for entry in fs::read_dir(from).map_err(|e| io(from, "listing snapshots", e))? {
        let path = entry.map_err(|e| io(from, "listing snapshots", e))?.path();
        if path.extension().and_then(|e| e.to_str()) != Some("snap") {
            continue;
        }
        let Some(name) = path.file_name() else { continue };
        rewrite_meta(&path, &to.join(name), |meta| {
            convert::<K, Meta09<C09>, Meta10<C10>>(backend, "snapshot meta", Space::DataMeta, None, meta)
        })?;
        converted += 1;
    }
    Ok(converted)
}
