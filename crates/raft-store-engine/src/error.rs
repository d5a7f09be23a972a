//! Errors of engines ([`EngineError`]) and of the format record ([`FormatError`]).
//!
//! Both carry the backend name and, where there is one, the keyspace, so a log line alone says
//! what failed where. The log store's own error (`StoreError`) is `raft-store-core`'s; it keeps
//! these as its `Engine` and `Format` cases.

use std::io;
use std::path::PathBuf;

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

/// An error of the format record every store carries (see [`format`](crate::format)): the record
/// is damaged, names another backend, codec or openraft line, is newer than this build, or is
/// missing from a store that holds data.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FormatError {
    /// Reading or writing the record failed in the engine.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The record, or a key beside it, is damaged.
    #[error("{backend}: corrupt value in keyspace {space}: {reason}")]
    Corrupt {
        /// The backend name.
        backend: &'static str,
        /// The keyspace of the record.
        space: Space,
        /// What was wrong.
        reason: String,
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
    /// The store is laid out for one raft group and is opened as a store of many, or the other
    /// way round.
    #[error(
        "{backend}: the store holds {} and is opened as a store of {}; open it with {}",
        layout_words(found),
        layout_words(expected),
        layout_opener(found)
    )]
    WrongLayout {
        /// The backend name.
        backend: &'static str,
        /// The layout in the format record ([`crate::format::layout`]).
        found: String,
        /// The layout of what opens the store.
        expected: &'static str,
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
}

impl FormatError {
    /// The `std::io::ErrorKind` that best describes the error.
    pub fn kind(&self) -> io::ErrorKind {
        match self {
            FormatError::Engine(e) => e.kind(),
            FormatError::Corrupt { .. }
            | FormatError::FormatTooNew { .. }
            | FormatError::WrongBackend { .. }
            | FormatError::WrongCodec { .. }
            | FormatError::WrongOpenraftLine { .. }
            | FormatError::WrongLayout { .. }
            | FormatError::NoFormatRecord { .. }
            | FormatError::FormatRecordLost { .. } => io::ErrorKind::InvalidData,
        }
    }
}

/// How an error message names a store layout.
fn layout_words(layout: &str) -> String {
    match layout {
        crate::format::layout::SINGLE => "one raft group".to_string(),
        crate::format::layout::GROUPS => "many raft groups".to_string(),
        other => format!("an unknown layout ({other:?})"),
    }
}

/// What opens a store of `layout`.
fn layout_opener(layout: &str) -> &'static str {
    match layout {
        crate::format::layout::GROUPS => "GroupStore::open and open each group's log store from it",
        _ => "LogStore::open (or the state machine's open) on the engine itself",
    }
}
