//! The [`Engine`] trait: the only thing a storage adapter implements.

use std::ops::Bound;
use std::ops::ControlFlow;

use crate::error::EngineError;

/// A named keyspace of an engine.
///
/// Every engine creates all of them on open (a redb table, an LMDB named database, a `RocksDB`
/// column family, a sled tree per space), so the on-disk layout is the same on every backend and
/// the state machine's spaces exist before it is first used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Space {
    /// Raft log entries, keyed by the log index as 8 bytes big-endian.
    Log,
    /// Raft metadata: vote, committed log id, last purged log id and the format record.
    Meta,
    /// The state machine's key-value data.
    Data,
    /// The state machine's metadata: last applied log id, last membership, snapshot meta.
    DataMeta,
}

impl Space {
    /// Every keyspace, in a fixed order; engines create them all on open.
    pub const ALL: [Space; 4] = [Space::Log, Space::Meta, Space::Data, Space::DataMeta];

    /// The stable name of the keyspace, used as the table / database / column family name.
    pub const fn name(self) -> &'static str {
        match self {
            Space::Log => "log",
            Space::Meta => "meta",
            Space::Data => "sm_data",
            Space::DataMeta => "sm_meta",
        }
    }
}

impl std::fmt::Display for Space {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// How durable a [`Engine::write`] must be when it returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// Visible to reads at once; may be lost on power loss until a later durable write.
    Buffered,
    /// This batch and every batch written before it survive power loss when `write` returns.
    Durable,
}

/// One operation of a [`Batch`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// Insert or overwrite `key` with `value`.
    Put {
        /// The keyspace.
        space: Space,
        /// The key.
        key: Vec<u8>,
        /// The value.
        value: Vec<u8>,
    },
    /// Remove `key` if present.
    Delete {
        /// The keyspace.
        space: Space,
        /// The key.
        key: Vec<u8>,
    },
    /// Remove every key `k` with `start <= k < end` (`end == None`: no upper bound).
    DeleteRange {
        /// The keyspace.
        space: Space,
        /// The first key removed.
        start: Vec<u8>,
        /// The first key kept, or `None` to remove everything from `start` on.
        end: Option<Vec<u8>>,
    },
}

impl Op {
    /// The keyspace the operation touches.
    pub fn space(&self) -> Space {
        match self {
            Op::Put { space, .. } | Op::Delete { space, .. } | Op::DeleteRange { space, .. } => *space,
        }
    }
}

/// An ordered list of operations that an engine applies atomically: after a crash either all of
/// them or none of them are visible.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Batch {
    ops: Vec<Op>,
    bytes: usize,
}

impl Batch {
    /// An empty batch.
    pub fn new() -> Self {
        Self::default()
    }

    /// Queue a put.
    pub fn put(&mut self, space: Space, key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) {
        let (key, value) = (key.into(), value.into());
        self.bytes += key.len() + value.len();
        self.ops.push(Op::Put { space, key, value });
    }

    /// Queue a delete of one key.
    pub fn delete(&mut self, space: Space, key: impl Into<Vec<u8>>) {
        let key = key.into();
        self.bytes += key.len();
        self.ops.push(Op::Delete { space, key });
    }

    /// Queue a delete of every key in `start..end` (`end == None`: no upper bound).
    pub fn delete_range(&mut self, space: Space, start: impl Into<Vec<u8>>, end: Option<Vec<u8>>) {
        let start = start.into();
        self.bytes += start.len() + end.as_ref().map_or(0, Vec::len);
        self.ops.push(Op::DeleteRange { space, start, end });
    }

    /// Append every operation of `other` after this batch's own.
    pub fn extend(&mut self, other: Batch) {
        self.bytes += other.bytes;
        if self.ops.is_empty() {
            self.ops = other.ops;
        } else {
            self.ops.extend(other.ops);
        }
    }

    /// The operations, in the order they must be applied.
    pub fn ops(&self) -> &[Op] {
        &self.ops
    }

    /// The operations, in the order they must be applied, taken out of the batch.
    pub fn into_ops(self) -> Vec<Op> {
        self.ops
    }

    /// Number of operations.
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// Whether the batch holds no operation.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// Total size of keys and values, a measure of how much the batch writes.
    pub fn size_bytes(&self) -> usize {
        self.bytes
    }
}

/// The largest keys and values an engine stores, in bytes ([`Engine::limits`]).
///
/// A write with a longer key or value fails (LMDB: `MDB_BAD_VALSIZE`), so whoever chooses the
/// keys of a keyspace checks them first: the key-value state machine stores a key whose stored
/// form is over [`max_key`](Self::max_key) under a fixed-size hash of it instead, and refuses a
/// request whose value would not fit. `usize::MAX` in a field means no limit of its own (the
/// machine's memory and the disk still bound it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EngineLimits {
    /// Longest key, in bytes, in every keyspace.
    pub max_key: usize,
    /// Longest value, in bytes.
    pub max_value: usize,
    /// Longest key and value together, in bytes, for an engine that bounds the pair below the
    /// sum of the other two (redb); else `usize::MAX`.
    pub max_pair: usize,
}

impl EngineLimits {
    /// No limit on keys or values (the default of [`Engine::limits`]).
    pub const NONE: EngineLimits = EngineLimits {
        max_key: usize::MAX,
        max_value: usize::MAX,
        max_pair: usize::MAX,
    };

    /// Whether a put of `key_len` bytes of key and `value_len` bytes of value fits.
    pub fn fits(&self, key_len: usize, value_len: usize) -> bool {
        key_len <= self.max_key
            && value_len <= self.max_value
            && key_len
                .checked_add(value_len)
                .is_some_and(|pair| pair <= self.max_pair)
    }
}

impl Default for EngineLimits {
    fn default() -> Self {
        Self::NONE
    }
}

/// The visitor of [`Engine::scan`]: called with each key and value; `Break` stops the scan.
pub type Visitor<'a> = dyn FnMut(&[u8], &[u8]) -> ControlFlow<()> + 'a;

/// A range of keys for [`Engine::scan`].
#[derive(Debug, Clone, Copy)]
pub struct KeyRange<'a> {
    /// Lower bound.
    pub start: Bound<&'a [u8]>,
    /// Upper bound.
    pub end: Bound<&'a [u8]>,
}

impl<'a> KeyRange<'a> {
    /// Every key.
    pub const ALL: KeyRange<'static> = KeyRange {
        start: Bound::Unbounded,
        end: Bound::Unbounded,
    };

    /// Keys `k` with `start <= k < end`.
    pub fn half_open(start: &'a [u8], end: &'a [u8]) -> Self {
        Self {
            start: Bound::Included(start),
            end: Bound::Excluded(end),
        }
    }

    /// Keys `k` with `start <= k`.
    pub fn from(start: &'a [u8]) -> Self {
        Self {
            start: Bound::Included(start),
            end: Bound::Unbounded,
        }
    }

    /// Whether the bounds admit no key at all (start above end, or equal with one side
    /// excluded). `BTreeMap::range` panics on such bounds, so engines check this first.
    pub fn is_empty(&self) -> bool {
        match (self.start, self.end) {
            (Bound::Included(s), Bound::Included(e)) => s > e,
            (Bound::Included(s) | Bound::Excluded(s), Bound::Included(e) | Bound::Excluded(e)) => s >= e,
            _ => false,
        }
    }

    /// Whether `key` lies in the range.
    pub fn contains(&self, key: &[u8]) -> bool {
        let above = match self.start {
            Bound::Included(s) => key >= s,
            Bound::Excluded(s) => key > s,
            Bound::Unbounded => true,
        };
        let below = match self.end {
            Bound::Included(e) => key <= e,
            Bound::Excluded(e) => key < e,
            Bound::Unbounded => true,
        };
        above && below
    }
}

/// An ordered key-value store with named keyspaces, atomic batches and an explicit durability
/// point. This is everything an adapter implements; the log store, group commit, codec and
/// checksums live in the core above it.
///
/// Contract (checked by [`crate::testing`]'s engine cases):
/// - `write` applies every op of the batch atomically, in order; a later op sees earlier ones.
/// - With [`Durability::Durable`] the batch and all batches before it survive power loss when
///   `write` returns. An engine must never be left corrupt by a crash at any instant.
/// - Reads see every write that returned, durable or not.
/// - `scan` visits keys in ascending byte order and stops when the visitor breaks; it sees one
///   consistent state of the keyspace.
pub trait Engine: Send + Sync + 'static {
    /// The backend's stable name (`"redb"`, `"lmdb"`, ...), stored in the format record.
    fn backend(&self) -> &'static str;

    /// Apply every operation of the batch atomically.
    fn write(&self, batch: &Batch, durability: Durability) -> Result<(), EngineError>;

    /// The value stored under `key`.
    fn get(&self, space: Space, key: &[u8]) -> Result<Option<Vec<u8>>, EngineError>;

    /// Visit keys of `range` in ascending order until the visitor returns `Break`.
    fn scan(&self, space: Space, range: KeyRange<'_>, visit: &mut Visitor<'_>) -> Result<(), EngineError>;

    /// The greatest key of the keyspace.
    fn last_key(&self, space: Space) -> Result<Option<Vec<u8>>, EngineError>;

    /// The greatest key of `range` in the keyspace.
    ///
    /// A multi-group store asks it for the last log key of one group (the range of that
    /// group's key prefix) when the group opens. The default scans the range forward, which
    /// reads every key of it: an adapter overrides it with a seek from the end of the range
    /// (redb, LMDB, RocksDB and the in-memory engine do; sled keeps the scan, since its reverse
    /// iteration over a range panics on some trees).
    fn last_key_in(&self, space: Space, range: KeyRange<'_>) -> Result<Option<Vec<u8>>, EngineError> {
        let mut last = None;
        self.scan(space, range, &mut |key, _| {
            last = Some(key.to_vec());
            ControlFlow::Continue(())
        })?;
        Ok(last)
    }

    /// The longest key and value the engine stores (see [`EngineLimits`]). The default says
    /// "no limit"; an adapter whose backend refuses long keys or values must override it, or a
    /// state machine may write what the engine refuses, and a committed entry whose apply
    /// fails stops the node on every start.
    fn limits(&self) -> EngineLimits {
        EngineLimits::NONE
    }

    /// The engine's locked store directory, if it keeps its files in one. Through it the store
    /// records that it was initialized, and refuses to start empty over lost files.
    fn store_dir(&self) -> Option<&crate::StoreDir> {
        None
    }

    /// Reshape the engine's files now: write buffered data out to its files and run (or wait
    /// for) the compaction an engine does in the background, keeping every key and value. The
    /// suite calls it between the steps of its property cases so that they meet every file
    /// layout, not only the one a short test leaves. The default does nothing (right for an
    /// engine without background work).
    fn compact(&self) -> Result<(), EngineError> {
        Ok(())
    }

    /// The shared write path of the multi-group store this engine is one group of, for the
    /// log store opened on it to write through (one flusher and one sync for every group).
    /// Only `raft_store_core::Group` returns one; an adapter, or a wrapper that must see every
    /// write itself, keeps the default `None`, and a log store opened on it writes through
    /// [`Engine::write`] with a flusher of its own.
    #[doc(hidden)]
    fn group_writer(&self) -> Option<std::sync::Arc<dyn std::any::Any + Send + Sync>> {
        None
    }
}

impl<E: Engine> Engine for std::sync::Arc<E> {
    fn backend(&self) -> &'static str {
        (**self).backend()
    }
    fn write(&self, batch: &Batch, durability: Durability) -> Result<(), EngineError> {
        (**self).write(batch, durability)
    }
    fn get(&self, space: Space, key: &[u8]) -> Result<Option<Vec<u8>>, EngineError> {
        (**self).get(space, key)
    }
    fn scan(&self, space: Space, range: KeyRange<'_>, visit: &mut Visitor<'_>) -> Result<(), EngineError> {
        (**self).scan(space, range, visit)
    }
    fn last_key(&self, space: Space) -> Result<Option<Vec<u8>>, EngineError> {
        (**self).last_key(space)
    }
    fn last_key_in(&self, space: Space, range: KeyRange<'_>) -> Result<Option<Vec<u8>>, EngineError> {
        (**self).last_key_in(space, range)
    }
    fn limits(&self) -> EngineLimits {
        (**self).limits()
    }
    fn store_dir(&self) -> Option<&crate::StoreDir> {
        (**self).store_dir()
    }
    fn compact(&self) -> Result<(), EngineError> {
        (**self).compact()
    }
    fn group_writer(&self) -> Option<std::sync::Arc<dyn std::any::Any + Send + Sync>> {
        (**self).group_writer()
    }
}
