//! Errors of engines and of the log store.
//!
//! Both enums carry the backend name and, where there is one, the keyspace and log index, so a
//! log line alone says what failed where. They become [`std::io::Error`] only at the openraft
//! trait boundary (see `From<StoreError> for io::Error`).

use std::io;
use std::path::PathBuf;
use std::sync::Arc;

use crate::engine::Space;

/// A boxed error from an engine's own crate, kept as the `source`.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// An error reported by an [`Engine`](crate::Engine).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    /// An I/O error from the operating system.
    #[error("{backend}: I/O error while {context}: {source}")]
    Io {
        /// The backend name.
        backend: &'static str,
        /// What the engine was doing.
        context: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// An error of the engine's own crate.
    #[error("{backend}: {context}: {source}")]
    Backend {
        /// The backend name.
        backend: &'static str,
        /// What the engine was doing.
        context: String,
        /// The engine's error.
        #[source]
        source: BoxError,
    },
    /// The path given as the store directory exists and is not a directory.
    #[error(
        "{backend}: {path} is not a directory (a store is a directory; pass the directory to create or open)"
    )]
    NotADirectory {
        /// The backend name.
        backend: &'static str,
        /// The path given.
        path: PathBuf,
    },
    /// The process may not read or write the store directory.
    #[error("{backend}: permission denied on {path}: {source}")]
    PermissionDenied {
        /// The backend name.
        backend: &'static str,
        /// The path that could not be used.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The store is open already, in this process or another one.
    #[error("{backend}: the store at {path} is already open (locked by this or another process): {detail}")]
    Locked {
        /// The backend name.
        backend: &'static str,
        /// The store directory.
        path: PathBuf,
        /// What the engine reported.
        detail: String,
    },
    /// The directory holds a store of another backend.
    #[error("{backend}: {path} holds a {found} store, not a {backend} store")]
    ForeignStore {
        /// The backend asked to open the store.
        backend: &'static str,
        /// The store directory.
        path: PathBuf,
        /// The backend that wrote the store.
        found: String,
    },
    /// A file in the store directory is not a database of this backend.
    #[error("{backend}: {path} is not a {backend} database: {detail}")]
    NotAStore {
        /// The backend name.
        backend: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// What was wrong.
        detail: String,
    },
}

/// Run an engine call, turning a panic inside the engine's crate into an error.
///
/// Some engines assert on damaged data (redb's debug builds, sled); the contract is that data
/// read from disk never takes the process down, so adapters wrap their calls in this.
pub fn catch_panic<T>(
    backend: &'static str,
    context: &str,
    f: impl FnOnce() -> Result<T, EngineError>,
) -> Result<T, EngineError> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(result) => result,
        Err(panic) => {
            let msg = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic without a message".into());
            Err(EngineError::backend(
                backend,
                context.to_string(),
                format!("{backend} panicked: {msg}"),
            ))
        }
    }
}

impl EngineError {
    /// Wrap an engine crate's error.
    pub fn backend(backend: &'static str, context: impl Into<String>, source: impl Into<BoxError>) -> Self {
        EngineError::Backend {
            backend,
            context: context.into(),
            source: source.into(),
        }
    }

    /// Wrap an OS error.
    pub fn io(backend: &'static str, context: impl Into<String>, source: io::Error) -> Self {
        EngineError::Io {
            backend,
            context: context.into(),
            source,
        }
    }

    /// The `std::io::ErrorKind` that best describes the error.
    pub fn kind(&self) -> io::ErrorKind {
        match self {
            EngineError::Io { source, .. } => source.kind(),
            EngineError::NotADirectory { .. } => io::ErrorKind::NotADirectory,
            EngineError::PermissionDenied { .. } => io::ErrorKind::PermissionDenied,
            EngineError::Locked { .. } => io::ErrorKind::WouldBlock,
            EngineError::ForeignStore { .. } | EngineError::NotAStore { .. } => io::ErrorKind::InvalidData,
            EngineError::Backend { .. } => io::ErrorKind::Other,
        }
    }
}

/// An error of a raft-store log store or state machine (`raft_store_core::LogStore`, its
/// readers, the key-value state machine) and of the format record.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The engine failed.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// A stored value failed its checksum or could not be decoded. Never served as data.
    #[error("{backend}: corrupt value in keyspace {space}{}: {reason}", fmt_index(*.index))]
    Corrupt {
        /// The backend name.
        backend: &'static str,
        /// The keyspace of the value.
        space: Space,
        /// The log index, for a log entry.
        index: Option<u64>,
        /// What was wrong.
        reason: String,
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
    #[error("{backend}: could not encode {what}: {reason}")]
    Encode {
        /// The backend name.
        backend: &'static str,
        /// What was being encoded.
        what: &'static str,
        /// The codec's message.
        reason: String,
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
        source: Box<crate::codec::RoundTripError>,
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
    /// The store was written by a newer format version than this build reads.
    #[error("{backend}: store format version {found} is newer than the supported version {supported}")]
    FormatTooNew {
        /// The backend name.
        backend: &'static str,
        /// The version on disk.
        found: u32,
        /// The newest version this build reads.
        supported: u32,
    },
    /// The format record names another backend.
    #[error("{backend}: the store's format record says it was written by {found}")]
    WrongBackend {
        /// The backend opening the store.
        backend: &'static str,
        /// The backend in the format record.
        found: String,
    },
    /// The format record names another codec.
    #[error(
        "{backend}: the store was written with codec {found}, but opened with codec {expected}; open it with the codec its format record names (a store written with bincode2 or postcard1 opens as LogStore<_, _, Bincode> or Postcard through LogStore::open_checked)"
    )]
    WrongCodec {
        /// The backend name.
        backend: &'static str,
        /// The codec in the format record.
        found: String,
        /// The codec the store was opened with.
        expected: &'static str,
    },
    /// The store was written by the glue of another openraft line than the one opening it.
    #[error(
        "{backend}: the store was written with openraft {found} types and is opened with {expected} types; a store is only opened by the line that wrote it (a 0.9 store moves to 0.10 with raft_store_core::migrate::openraft_0_9_to_0_10)"
    )]
    WrongOpenraftLine {
        /// The backend name.
        backend: &'static str,
        /// The line in the format record (`"0.9"`, `"0.10"`).
        found: String,
        /// The line of the glue opening the store.
        expected: crate::format::OpenraftLine,
    },
    /// The store holds log data but no format record.
    #[error("{backend}: the store holds data but no format record; it was not written by raft-store")]
    NoFormatRecord {
        /// The backend name.
        backend: &'static str,
    },
    /// The store directory says the store was initialized, but the engine holds no format
    /// record: its files were lost or damaged (a database file cut short, an engine that
    /// started over). Refused rather than started again empty.
    #[error(
        "{backend}: the store in {path} was initialized, but its engine holds no format record: its files are damaged or were replaced; refusing to start it empty"
    )]
    FormatRecordLost {
        /// The backend name.
        backend: &'static str,
        /// The store directory.
        path: std::path::PathBuf,
    },
    /// A snapshot file is damaged, cut short or not a snapshot of this state machine.
    #[error("snapshot file {path} is unusable: {reason}")]
    SnapshotFile {
        /// The file.
        path: std::path::PathBuf,
        /// What was wrong with it.
        reason: String,
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
    /// The store's flusher thread has stopped (the store is closing).
    #[error("{backend}: the store is closed")]
    Closed {
        /// The backend name.
        backend: &'static str,
    },
}

fn fmt_index(index: Option<u64>) -> String {
    index.map(|i| format!(" at log index {i}")).unwrap_or_default()
}

impl StoreError {
    /// The `std::io::ErrorKind` this error maps to at the openraft boundary.
    pub fn kind(&self) -> io::ErrorKind {
        match self {
            StoreError::Engine(e) => e.kind(),
            StoreError::ApplyFailed { source, .. } => source.kind(),
            StoreError::Corrupt { .. }
            | StoreError::Missing { .. }
            | StoreError::FormatTooNew { .. }
            | StoreError::WrongBackend { .. }
            | StoreError::WrongCodec { .. }
            | StoreError::WrongOpenraftLine { .. }
            | StoreError::NoFormatRecord { .. }
            | StoreError::FormatRecordLost { .. }
            | StoreError::SnapshotFile { .. } => io::ErrorKind::InvalidData,
            StoreError::SnapshotIo { source, .. } => source.kind(),
            StoreError::NotContiguous { .. }
            | StoreError::Encode { .. }
            | StoreError::EntryRefused { .. }
            | StoreError::UncheckedCodec { .. } => io::ErrorKind::InvalidInput,
            StoreError::WriteFailed { kind, .. } | StoreError::Poisoned { kind, .. } => *kind,
            StoreError::Closed { .. } => io::ErrorKind::Other,
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
    /// use raft_store_engine::StoreError;
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
