//! A durable key-value state machine over any [`Engine`](crate::Engine), in the same engine as
//! the raft log.
//!
//! ```
//! use raft_store_core::kv::{KvRequest, KvResponse, KvStateMachine}; // openraft 0.10
//! use raft_store_core::{LogStore, MemEngine};
//! use std::sync::Arc;
//!
//! openraft::declare_raft_types!(pub Config: D = KvRequest, R = KvResponse);
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let snapshots = tempfile::tempdir()?;
//! // One engine holds the log and the state machine: share it through an `Arc`.
//! let engine = Arc::new(MemEngine::new());
//! let log: LogStore<Config, _> = LogStore::open(engine.clone())?;
//! let sm: KvStateMachine<Config, _> = KvStateMachine::open(engine, snapshots.path())?;
//! let reader = sm.reader();
//! assert_eq!(reader.get("missing")?, None);
//! // Hand `log` and `sm` to `openraft::Raft::new`; read through `reader`.
//! # drop(log);
//! # Ok(())
//! # }
//! ```
//!
//! - Keys live in keyspace [`Space::Data`](crate::Space::Data), prefixed by a *generation*
//!   number; the last applied log id, the last membership and the current generation live in
//!   [`Space::DataMeta`](crate::Space::DataMeta).
//! - **Keys of any length** are stored, on every engine (tested from 0 bytes to 64 KiB, with
//!   values up to 16 MiB). A key is stored as it is (after its generation) when that fits the
//!   engine's key limit ([`Engine::limits`](crate::Engine::limits)): 511 bytes on LMDB, so
//!   keys of up to 503 bytes; 3 GiB on redb; 4 GiB less 8 bytes on RocksDB; no limit on sled
//!   and the in-memory engine. A longer key is stored under a fixed 41-byte key (generation,
//!   the byte 0xFF, which no UTF-8 key starts with, and the key's SHA-256), and its record
//!   keeps the full key beside the value, as a list of every key with that hash, so even a
//!   hash collision loses nothing. Stores written before keep the same layout: no key of
//!   theirs was over the limit.
//! - Reads, [`LineStateReader::scan`] and snapshots see keys in key order, long keys included:
//!   those are gathered first (their keys in memory, their values in a temporary file in the
//!   snapshot directory, applies waiting meanwhile) and merged in. A snapshot file does not
//!   depend on the engine that built it, so one built on redb installs on LMDB.
//! - **Every committed request applies**: apply never fails on a request, only on the engine
//!   (I/O, a full disk, damaged data). A request whose value the engine cannot store (over its
//!   value limit: 3 GiB on redb, 4 GiB on LMDB and RocksDB, or over the 4 GiB a snapshot
//!   record holds) changes nothing and is answered [`KvResponse::Refused`]; failing the apply
//!   would stop the node, and again on every start, since a committed entry is applied again.
//!   The log entry that carried it had to fit the same engine, so in practice this does not
//!   happen; note that it depends on the engine, so a cluster mixing engines could refuse on
//!   one node what another applies.
//! - **Apply** writes the data changes of the entries and the new applied id in one engine batch,
//!   so a crash never leaves an entry half applied. Batches are not synced one by one: the log
//!   store's next sync of the same engine makes them durable, and after a power cut the state
//!   machine resumes from whatever applied id it kept; openraft applies the rest again from the
//!   log (or installs the last snapshot, whose file is synced before it is used).
//! - **Snapshots** stream through a file ([`SnapshotFile`]). Building one scans one consistent
//!   view of the data into the file. Installing one writes its records into a new generation in
//!   small batches, then switches the current generation and the applied id in one small batch,
//!   then deletes the old generation in small batches; a crash at any point leaves either the old
//!   state or the new one, and leftovers are removed on the next open. Memory stays bounded by
//!   the batch size whatever the data size.
//!
//! The state machine is written once over [`KvLine`]; [`KvStateMachine`] (here) is it for
//! openraft 0.10, `openraft09::kv::KvStateMachine` for openraft 0.9. Both keep the same records
//! under the same keys.

pub(crate) mod apply;
mod generations;
pub(crate) mod keys;
mod machine;
mod options;
mod ordered;
mod reader;
mod snapshot;
pub(crate) mod snapshot_files;
pub(crate) mod state;

use std::fmt;

use serde::Deserialize;
use serde::Serialize;

pub use machine::LineSnapshotBuilder;
pub use machine::LineStateMachine;
pub use machine::LineStateReader;
pub use options::KvOptions;
pub use snapshot::SnapshotFile;

use crate::line::Line;
#[cfg(feature = "openraft-0-10")]
pub use crate::openraft10::kv::KvEntry;
#[cfg(feature = "openraft-0-10")]
pub use crate::openraft10::kv::KvReader;
#[cfg(feature = "openraft-0-10")]
pub use crate::openraft10::kv::KvSnapshotBuilder;
#[cfg(feature = "openraft-0-10")]
pub use crate::openraft10::kv::KvStateMachine;
#[cfg(feature = "openraft-0-10")]
pub use crate::openraft10::kv::KvTypeConfig;

/// What the state machine needs of one openraft line beyond the log's types: memberships,
/// snapshot metas and the request inside an entry. Implemented by the line markers
/// ([`V0_10`](crate::line::V0_10), [`V0_9`](crate::line::V0_9)) for the type configs the key-value
/// state machine works with.
pub trait KvLine: Line {
    /// The stored membership (the last membership config and the log id it came from).
    type Membership: Serialize + serde::de::DeserializeOwned + Clone + Default + Send + Sync + 'static;
    /// The meta of a snapshot.
    type SnapshotMeta: Serialize
        + serde::de::DeserializeOwned
        + Clone
        + PartialEq
        + fmt::Display
        + Send
        + Sync
        + 'static;

    /// The request of a normal entry; `None` for blank and membership entries.
    fn request(entry: &Self::Entry) -> Option<&KvRequest>;
    /// The membership a membership entry sets, stored with the entry's log id.
    fn membership(entry: &Self::Entry) -> Option<Self::Membership>;
    /// The meta of a snapshot of everything up to `last_applied`.
    fn snapshot_meta(
        last_applied: Option<Self::LogId>,
        membership: Self::Membership,
        snapshot_id: String,
    ) -> Self::SnapshotMeta;
    /// The last log id a snapshot covers.
    fn meta_last_applied(meta: &Self::SnapshotMeta) -> Option<&Self::LogId>;
    /// The membership a snapshot holds.
    fn meta_membership(meta: &Self::SnapshotMeta) -> &Self::Membership;
}

/// A client request to the key-value state machine: the `D` of the raft type config. Keys
/// are strings, values any bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum KvRequest {
    /// Set `key` to `value`, whether or not it exists.
    Set {
        /// The key.
        key: String,
        /// The new value.
        value: Vec<u8>,
    },
    /// Set every pair, in order, as one atomic step (a key named twice ends with its last value).
    SetMany {
        /// The pairs to set.
        pairs: Vec<(String, Vec<u8>)>,
    },
    /// Remove `key` if it exists.
    Delete {
        /// The key.
        key: String,
    },
    /// Set `key` to `value` only if the key exists.
    UpdateIfExists {
        /// The key.
        key: String,
        /// The new value.
        value: Vec<u8>,
    },
}

impl fmt::Display for KvRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KvRequest::Set { key, .. } => write!(f, "set {key}"),
            KvRequest::SetMany { pairs } => write!(f, "set {} keys", pairs.len()),
            KvRequest::Delete { key } => write!(f, "delete {key}"),
            KvRequest::UpdateIfExists { key, .. } => write!(f, "update {key} if it exists"),
        }
    }
}

/// What applying a request did: the `R` of the raft type config.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum KvResponse {
    /// The entry held no request (a blank or membership entry).
    #[default]
    Empty,
    /// `Set` stored the value; `previous` is the value it replaced, `None` if the key was new.
    Set {
        /// The value before, if the key existed.
        previous: Option<Vec<u8>>,
    },
    /// `SetMany` stored every pair; one previous value per pair, in the request's order.
    SetMany {
        /// The value before each pair was set, if its key existed.
        previous: Vec<Option<Vec<u8>>>,
    },
    /// `Delete` ran; `previous` is the removed value, `None` if the key did not exist.
    Delete {
        /// The removed value, if the key existed.
        previous: Option<Vec<u8>>,
    },
    /// `UpdateIfExists` ran; the key was updated if and only if `previous` is `Some`.
    UpdateIfExists {
        /// The replaced value, if the key existed (and so was updated).
        previous: Option<Vec<u8>>,
    },
    /// The request was committed but can never be stored on this engine, so it was applied
    /// as a no-op: nothing changed (for `SetMany`: no pair was set). Today the one cause is a
    /// value too large for the engine's value limit (see the [module docs](self)); failing
    /// the apply instead would stop the node on every start, since a committed entry is
    /// applied again at startup.
    Refused {
        /// What was too large, and the engine's limit.
        reason: String,
    },
}

impl KvResponse {
    /// Whether the request's key existed before it applied (for `SetMany`: any of its keys).
    pub fn existed(&self) -> bool {
        match self {
            KvResponse::Empty | KvResponse::Refused { .. } => false,
            KvResponse::Set { previous }
            | KvResponse::Delete { previous }
            | KvResponse::UpdateIfExists { previous } => previous.is_some(),
            KvResponse::SetMany { previous } => previous.iter().any(Option::is_some),
        }
    }
}
