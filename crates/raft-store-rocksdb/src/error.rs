//! Mapping RocksDB's errors to [`EngineError`].

use raft_store_engine::EngineError;

use crate::engine::BACKEND;

/// Wrap a RocksDB error; its I/O errors become `io::Error`s (a full disk stays `StorageFull`).
pub(crate) fn from_rocks(context: &str, e: rocksdb::Error) -> EngineError {
    match e.kind() {
        rocksdb::ErrorKind::IOError => {
            let msg = e.into_string();
            let kind = if msg.contains("No space left") {
                std::io::ErrorKind::StorageFull
            } else if msg.contains("Permission denied") {
                std::io::ErrorKind::PermissionDenied
            } else {
                std::io::ErrorKind::Other
            };
            EngineError::io(BACKEND, context, std::io::Error::new(kind, msg))
        }
        _ => EngineError::backend(BACKEND, context, e),
    }
}

/// `map_err` helper: `.map_err(ctx("writing"))`.
pub(crate) fn ctx(context: &'static str) -> impl FnOnce(rocksdb::Error) -> EngineError {
    move |e| from_rocks(context, e)
}
