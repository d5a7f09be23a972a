//! Mapping redb's errors to [`EngineError`], keeping redb's error as the source.

use raft_store_engine::EngineError;

use crate::engine::BACKEND;

/// Wrap any redb error; I/O errors keep their kind (a full disk stays `StorageFull`).
pub(crate) fn from_redb(context: &str, e: impl Into<redb::Error>) -> EngineError {
    match e.into() {
        redb::Error::Io(io) => EngineError::io(BACKEND, context, io),
        other => EngineError::backend(BACKEND, context, other),
    }
}

/// `map_err` helper: `.map_err(ctx("committing"))`.
pub(crate) fn ctx<E: Into<redb::Error>>(context: &'static str) -> impl FnOnce(E) -> EngineError {
    move |e| from_redb(context, e)
}
