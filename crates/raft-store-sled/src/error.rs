//! Mapping sled's errors to [`EngineError`], keeping sled's error as the source.

use raft_store_engine::EngineError;

use crate::engine::BACKEND;

/// Wrap any sled error; I/O errors keep their kind (a full disk stays `StorageFull`).
pub(crate) fn from_sled(context: &str, e: sled::Error) -> EngineError {
    match e {
        sled::Error::Io(io) => EngineError::io(BACKEND, context, io),
        other => EngineError::backend(BACKEND, context, other),
    }
}

/// `map_err` helper: `.map_err(ctx("reading"))`.
pub(crate) fn ctx(context: &'static str) -> impl FnOnce(sled::Error) -> EngineError {
    move |e| from_sled(context, e)
}

/// Run a sled call, turning a panic (sled asserts on some damaged data) into an error.
pub(crate) fn guard<T>(context: &str, f: impl FnOnce() -> Result<T, EngineError>) -> Result<T, EngineError> {
    raft_store_engine::catch_panic(BACKEND, context, f)
}
