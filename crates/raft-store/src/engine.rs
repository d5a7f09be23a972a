//! [`AnyEngine`]: one engine type over every compiled backend, dispatched by a `match`.
//!
//! The dispatch sits at the engine, under the core's `LogStore`: one `match` per engine call,
//! and the log store makes one engine write per group of appends, so its cost does not show
//! (the facade's append bench measures it against the adapter used directly).

use raft_store_core::Batch;
use raft_store_core::Durability;
use raft_store_core::Engine;
use raft_store_core::EngineError;
use raft_store_core::KeyRange;
use raft_store_core::Space;
use raft_store_core::Visitor;

/// An engine of any backend compiled into this build.
#[non_exhaustive]
pub enum AnyEngine {
    /// redb.
    #[cfg(feature = "redb")]
    Redb(raft_store_redb::RedbEngine),
    /// LMDB.
    #[cfg(feature = "lmdb")]
    Lmdb(raft_store_lmdb::LmdbEngine),
    /// RocksDB.
    #[cfg(feature = "rocksdb")]
    Rocksdb(raft_store_rocksdb::RocksEngine),
    /// sled (experimental).
    #[cfg(feature = "sled")]
    Sled(raft_store_sled::SledEngine),
    /// In memory.
    #[cfg(feature = "mem")]
    Mem(raft_store_core::MemEngine),
    /// No backend is compiled in: the crate's `compile_error!` says which features to turn on,
    /// and this keeps that the only error.
    #[doc(hidden)]
    #[cfg(not(any(
        feature = "redb",
        feature = "lmdb",
        feature = "rocksdb",
        feature = "sled",
        feature = "mem"
    )))]
    NoBackend(std::convert::Infallible),
}

macro_rules! dispatch {
    ($self:ident, $e:ident => $call:expr) => {
        match $self {
            #[cfg(feature = "redb")]
            AnyEngine::Redb($e) => $call,
            #[cfg(feature = "lmdb")]
            AnyEngine::Lmdb($e) => $call,
            #[cfg(feature = "rocksdb")]
            AnyEngine::Rocksdb($e) => $call,
            #[cfg(feature = "sled")]
            AnyEngine::Sled($e) => $call,
            #[cfg(feature = "mem")]
            AnyEngine::Mem($e) => $call,
            #[cfg(not(any(
                feature = "redb",
                feature = "lmdb",
                feature = "rocksdb",
                feature = "sled",
                feature = "mem"
            )))]
            AnyEngine::NoBackend(never) => match *never {},
        }
    };
}

impl Engine for AnyEngine {
    fn backend(&self) -> &'static str {
        dispatch!(self, e => e.backend())
    }

    fn write(&self, batch: &Batch, durability: Durability) -> Result<(), EngineError> {
        dispatch!(self, e => e.write(batch, durability))
    }

    fn get(&self, space: Space, key: &[u8]) -> Result<Option<Vec<u8>>, EngineError> {
        dispatch!(self, e => e.get(space, key))
    }

    fn scan(&self, space: Space, range: KeyRange<'_>, visit: &mut Visitor<'_>) -> Result<(), EngineError> {
        dispatch!(self, e => e.scan(space, range, visit))
    }

    fn last_key(&self, space: Space) -> Result<Option<Vec<u8>>, EngineError> {
        dispatch!(self, e => e.last_key(space))
    }

    fn last_key_in(&self, space: Space, range: KeyRange<'_>) -> Result<Option<Vec<u8>>, EngineError> {
        dispatch!(self, e => e.last_key_in(space, range))
    }

    fn store_dir(&self) -> Option<&raft_store_core::StoreDir> {
        dispatch!(self, e => e.store_dir())
    }

    fn limits(&self) -> raft_store_core::EngineLimits {
        dispatch!(self, e => e.limits())
    }

    fn compact(&self) -> Result<(), EngineError> {
        dispatch!(self, e => e.compact())
    }
}
