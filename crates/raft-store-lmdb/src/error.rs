//! Mapping heed's errors to [`EngineError`], keeping heed's error as the source.

#![forbid(unsafe_code)]

use raft_store_engine::EngineError;

use crate::engine::BACKEND;

/// Wrap any heed error; I/O errors keep their kind (a full disk stays `StorageFull`).
pub(crate) fn from_heed(context: &str, e: heed::Error) -> EngineError {
    match e {
        heed::Error::Io(io) => EngineError::io(BACKEND, context, io),
        other => EngineError::backend(BACKEND, context, other),
    }
}

/// `map_err` helper: `.map_err(ctx("committing"))`.
pub(crate) fn ctx(context: &'static str) -> impl FnOnce(heed::Error) -> EngineError {
    move |e| from_heed(context, e)
}
