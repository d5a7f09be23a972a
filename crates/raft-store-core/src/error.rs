//! The error of the log store and the state machine.
//!
//! It carries the backend name and, where there is one, the keyspace and log index, so a log
//! line alone says what failed where; the engine's, the format record's and the codec's errors
//! stay typed as its cases or sources. It becomes [`std::io::Error`] only at the openraft trait
//! boundary (see `From<StoreError> for io::Error`), and [`StoreError::find`] gets it back.

use std::io;
use std::sync::Arc;

use raft_store_engine::EngineError;
use raft_store_engine::FormatError;
use raft_store_engine::Space;
use raft_store_engine::codec::CodecError;
use raft_store_engine::codec::RoundTripError;

/// An error of a raft-store log store or state machine ([`LogStore`](crate::LineLogStore),
/// its readers, the key-value state machine).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The engine failed.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The store's format record refused the store: damaged, newer than this build, or naming
    /// another backend, codec or openraft line.
    #[error(transparent)]
    Format(FormatError),
    /// A stored value failed its checksum or could not be decoded. Never served as data.
    #[error("{backend}: corrupt value in keyspace {space}{}: {what}{}", fmt_index(*.index), fmt_source(.source.as_ref()))]
    Corrupt {
        /// The backend name.
        backend: &'static str,
        /// The keyspace of the value.
        space: Space,
        /// The log index, for a log entry.
        index: Option<u64>,
        /// What was read, or what was wrong with it.
        what: String,
        /// The envelope's or the codec's error, when the value failed to decode.
        #[source]
        source: Option<CodecError>,
    },
    /// A log entry that must exist is missing: the log has a hole.
    #[error("{backend}: log entry {index} is missing (the stored log has a hole)")]
    Missing {
        /// The backend name.
        backend: &'static str,
        /// The missing index.
        index: u64,
    },
    /// An append that would leave a gap or overwrite the log without a truncate first.
    #[error("{backend}: refused append of log index {got}: the next index must be {expected}")]
    NotContiguous {
        /// The backend name.
        backend: &'static str,
        /// The index the append had to start at.
        expected: u64,
        /// The index it started at (or the first index out of sequence within it).
        got: u64,
    },
    /// A value could not be encoded.
    #[error("{backend}: could not encode {what}: {source}")]
    Encode {
        /// The backend name.
        backend: &'static str,
        /// What was being encoded.
        what: &'static str,
        /// The codec's error.
        #[source]
        source: CodecError,
    },
    /// `append` refused a log entry that would not come back as written; nothing of the append
    /// was written. Under openraft this stops the raft node (a storage error is fatal to it).
    #[error(
        "{backend}: refused log entry {log_id} (index {index}) under the store's check that {check}: {source}; nothing was written"
    )]
    EntryRefused {
        /// The backend name.
        backend: &'static str,
        /// The entry's index.
        index: u64,
        /// The entry's log id, as openraft prints it.
        log_id: String,
        /// The store's check (`EntryCheck`), as it describes itself.
        check: &'static str,
        /// What the round trip found (boxed: it is rare, and keeps every `Result` small).
        #[source]
        source: Box<RoundTripError>,
    },
    /// A codec that is not self-describing (bincode, postcard) was chosen without a value
    /// comparison or an explicit promise: such a codec can read a careless entry back as another
    /// value.
    #[error(
        "{backend}: codec {codec} does not name what it writes, so an entry whose type uses skip_serializing_if, flatten, untagged or similar serde attributes can be read back as a different value; open the store with LogStore::open_checked and EntryCheck::equal() (compares every entry with its decoding) or EntryCheck::trust_payload_encoding() (only for payload types known to be safe), or use the default codec MessagePack"
    )]
    UncheckedCodec {
        /// The backend name.
        backend: &'static str,
        /// The codec's name.
        codec: &'static str,
    },
    /// This write or its sync failed; the store now refuses every later write (fail-stop).
    #[error("{backend}: write or sync failed, the store now refuses writes: {source}")]
    WriteFailed {
        /// The backend name.
        backend: &'static str,
        /// The kind of the engine's error (`StorageFull` for a full disk, ...).
        kind: io::ErrorKind,
        /// The engine's error, shared by every write of the failed group.
        #[source]
        source: Arc<EngineError>,
    },
    /// A write or sync failed earlier; the store refuses every later write (fail-stop).
    #[error("{backend}: store refuses writes after an earlier failed write or sync: {source}")]
    Poisoned {
        /// The backend name.
        backend: &'static str,
        /// The kind of the first failure (`StorageFull` for a full disk, ...), so a caller that
        /// only learns of it now (a flush after a truncate) still knows what went wrong.
        kind: io::ErrorKind,
        /// The first failure: the engine's error.
        #[source]
        source: Arc<EngineError>,
    },
    /// Applying committed entries to the state machine failed: openraft stops on it, and the
    /// entries are applied again from the log after a restart.
    #[error("{backend}: applying committed entries failed: {source}")]
    ApplyFailed {
        /// The backend name.
        backend: &'static str,
        /// What failed: the state machine's write (an [`Engine`](StoreError::Engine) error) or
        /// the encoding of its state. Shared with the store's record of its fatal error.
        #[source]
        source: Arc<StoreError>,
    },
    /// A snapshot file is damaged, cut short or not a snapshot of this state machine.
    #[error("snapshot file {path} is unusable: {reason}{}", fmt_source(.source.as_ref()))]
    SnapshotFile {
        /// The file.
        path: std::path::PathBuf,
        /// What was wrong with it, or what failed to decode.
        reason: String,
        /// The envelope's or the codec's error, when a record of the file failed to decode.
        #[source]
        source: Option<CodecError>,
    },
    /// Reading or writing a snapshot file or its directory failed.
    #[error("{context} {path}: {source}")]
    SnapshotIo {
        /// The file or directory.
        path: std::path::PathBuf,
        /// What was being done.
        context: &'static str,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// A migration (`migrate::openraft_0_9_to_0_10`) was refused before it wrote anything
    /// wrong: the target is not empty, or a record does not fit it.
    #[error("{backend}: migration refused: {reason}")]
    MigrationRefused {
        /// The backend of the target store.
        backend: &'static str,
        /// Why.
        reason: String,
    },
    /// The store was opened with options no store can work with; nothing was read or written.
    #[cfg(any(feature = "openraft-0-10", feature = "openraft-0-9"))]
    #[error("{backend}: opening the store with the options given: {source}")]
    InvalidOptions {
        /// The backend name.
        backend: &'static str,
        /// Which option, and why.
        #[source]
        source: crate::OptionsError,
    },
    /// The store's flusher thread has stopped (the store is closing).
    #[error("{backend}: the store is closed")]
    Closed {
        /// The backend name.
        backend: &'static str,
    },
    /// A multi-group store has no group of that id (never created, or dropped).
    #[error("{backend}: the store has no raft group {group} (create it with GroupStore::create_group)")]
    NoSuchGroup {
        /// The backend name.
        backend: &'static str,
        /// The group id asked for.
        group: u64,
    },
    /// A group cannot be dropped while a log store, state machine or engine view of it is
    /// still open: its writes could land after the drop.
    #[error(
        "{backend}: raft group {group} is still open (drop its log store, state machine and views first)"
    )]
    GroupInUse {
        /// The backend name.
        backend: &'static str,
        /// The group id.
        group: u64,
    },
    /// A group is being dropped (or an earlier drop failed part way and is finished on the
    /// next open): it cannot be opened or created again until then.
    #[error("{backend}: raft group {group} is being dropped")]
    GroupDropping {
        /// The backend name.
        backend: &'static str,
        /// The group id.
        group: u64,
    },
}

fn fmt_index(index: Option<u64>) -> String {
    index.map(|i| format!(" at log index {i}")).unwrap_or_default()
}

fn fmt_source(source: Option<&CodecError>) -> String {
    source.map(|e| format!(": {e}")).unwrap_or_default()
}

/// A format error becomes the store's: an engine failure while reading or writing the record
/// stays an engine error (as from any other read), the rest is [`StoreError::Format`].
impl From<FormatError> for StoreError {
    fn from(e: FormatError) -> Self {
        match e {
            FormatError::Engine(e) => StoreError::Engine(e),
            e => StoreError::Format(e),
        }
    }
}

impl StoreError {
    /// The `std::io::ErrorKind` this error maps to at the openraft boundary.
    pub fn kind(&self) -> io::ErrorKind {
        match self {
            StoreError::Engine(e) => e.kind(),
            StoreError::ApplyFailed { source, .. } => source.kind(),
            StoreError::Format(e) => e.kind(),
            StoreError::Corrupt { .. } | StoreError::Missing { .. } | StoreError::SnapshotFile { .. } => {
                io::ErrorKind::InvalidData
            }
            StoreError::SnapshotIo { source, .. } => source.kind(),
            StoreError::NotContiguous { .. }
            | StoreError::Encode { .. }
            | StoreError::EntryRefused { .. }
            | StoreError::UncheckedCodec { .. }
            | StoreError::MigrationRefused { .. } => io::ErrorKind::InvalidInput,
            #[cfg(any(feature = "openraft-0-10", feature = "openraft-0-9"))]
            StoreError::InvalidOptions { .. } => io::ErrorKind::InvalidInput,
            StoreError::WriteFailed { kind, .. } | StoreError::Poisoned { kind, .. } => *kind,
            StoreError::Closed { .. } => io::ErrorKind::Other,
            StoreError::NoSuchGroup { .. } => io::ErrorKind::NotFound,
            StoreError::GroupInUse { .. } | StoreError::GroupDropping { .. } => io::ErrorKind::ResourceBusy,
        }
    }
}

impl StoreError {
    /// The store's error inside `err`, if there is one: `err` itself, or the error an
    /// [`io::Error`] from a store wraps, or one of their sources.
    ///
    /// openraft's storage traits of 0.10 return [`io::Error`], which a store's error becomes
    /// with `From<StoreError> for io::Error`; this gets it back, typed:
    ///
    /// ```
    /// use raft_store_core::StoreError;
    ///
    /// let io: std::io::Error = StoreError::Missing { backend: "redb", index: 7 }.into();
    /// let found = StoreError::find(&io);
    /// assert!(matches!(found, Some(StoreError::Missing { index: 7, .. })));
    /// ```
    ///
    /// openraft itself keeps only the message of a storage error once it stops raft on it
    /// (`Fatal::StorageError` holds an `AnyError`, a serializable copy of the message and of
    /// the chain of sources), so from `Raft`'s errors the message is what is left. The store
    /// keeps the error that stopped it, typed: `StoreStats::fatal_error` in `raft-store-core`
    /// (the stats of `LogStore::stats`, kept by the application before it hands the store to
    /// `openraft::Raft`).
    pub fn find<'a>(err: &'a (dyn std::error::Error + 'static)) -> Option<&'a StoreError> {
        let mut current: Option<&'a (dyn std::error::Error + 'static)> = Some(err);
        while let Some(e) = current {
            if let Some(found) = e.downcast_ref::<StoreError>() {
                return Some(found);
            }
            // `io::Error::source` skips the error it wraps (it returns that error's source), so
            // look inside an `io::Error` explicitly.
            if let Some(inner) = e
                .downcast_ref::<io::Error>()
                .and_then(io::Error::get_ref)
                .and_then(|inner| inner.downcast_ref::<StoreError>())
            {
                return Some(inner);
            }
            current = e.source();
        }
        None
    }
}

impl From<StoreError> for io::Error {
    fn from(e: StoreError) -> Self {
        io::Error::new(e.kind(), e)
    }
}

impl StoreError {
    /// A value that failed its envelope or codec: `what` names what was read.
    pub(crate) fn corrupt(
        backend: &'static str,
        space: Space,
        index: Option<u64>,
        what: impl Into<String>,
        source: CodecError,
    ) -> Self {
        StoreError::Corrupt {
            backend,
            space,
            index,
            what: what.into(),
            source: Some(source),
        }
    }

    /// A value that decoded but is not what the store wrote there: `what` says what is wrong.
    pub(crate) fn damaged(
        backend: &'static str,
        space: Space,
        index: Option<u64>,
        what: impl Into<String>,
    ) -> Self {
        StoreError::Corrupt {
            backend,
            space,
            index,
            what: what.into(),
            source: None,
        }
    }

    /// A value the codec could not encode.
    pub(crate) fn encode(backend: &'static str, what: &'static str, source: CodecError) -> Self {
        StoreError::Encode {
            backend,
            what,
            source,
        }
    }
}
