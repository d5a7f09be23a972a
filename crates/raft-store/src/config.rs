//! [`StoreConfig`]: which backend, where, and each backend's options.

use std::path::PathBuf;

use crate::backend::Backend;
use crate::engine::AnyEngine;
use raft_store_core::EngineError;

/// Everything needed to open a store: the backend, the directory, and options per backend
/// (only the chosen backend's are used).
///
/// With feature `serde` it reads from a config file: `backend` and `path`, and a table per
/// backend whose fields are that backend's options (each optional, with its default):
///
/// ```toml
/// backend = "redb"
/// path = "/var/lib/app/raft"
///
/// [redb]
/// cache_size = 268435456
/// ```
#[derive(Debug, Clone)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(deny_unknown_fields)
)]
#[non_exhaustive]
pub struct StoreConfig {
    /// Which engine.
    pub backend: Backend,
    /// The store directory (created on first open).
    pub path: PathBuf,
    /// Options of the redb backend.
    #[cfg(feature = "redb")]
    #[cfg_attr(feature = "serde", serde(default))]
    pub redb: raft_store_redb::RedbOptions,
    /// Options of the LMDB backend.
    #[cfg(feature = "lmdb")]
    #[cfg_attr(feature = "serde", serde(default))]
    pub lmdb: raft_store_lmdb::LmdbOptions,
    /// Options of the RocksDB backend.
    #[cfg(feature = "rocksdb")]
    #[cfg_attr(feature = "serde", serde(default))]
    pub rocksdb: raft_store_rocksdb::RocksOptions,
    /// Options of the sled backend.
    #[cfg(feature = "sled")]
    #[cfg_attr(feature = "serde", serde(default))]
    pub sled: raft_store_sled::SledOptions,
}

impl StoreConfig {
    /// A config for `backend` at `path` with every backend's default options.
    pub fn new(backend: Backend, path: impl Into<PathBuf>) -> Self {
        Self {
            backend,
            path: path.into(),
            #[cfg(feature = "redb")]
            redb: raft_store_redb::RedbOptions::default(),
            #[cfg(feature = "lmdb")]
            lmdb: raft_store_lmdb::LmdbOptions::default(),
            #[cfg(feature = "rocksdb")]
            rocksdb: raft_store_rocksdb::RocksOptions::default(),
            #[cfg(feature = "sled")]
            sled: raft_store_sled::SledOptions::default(),
        }
    }

    /// Open the engine this config names.
    pub fn open_engine(&self) -> Result<AnyEngine, EngineError> {
        let path = &self.path;
        Ok(match self.backend {
            #[cfg(feature = "redb")]
            Backend::Redb => AnyEngine::Redb(raft_store_redb::RedbEngine::open(path, &self.redb)?),
            #[cfg(feature = "lmdb")]
            Backend::Lmdb => AnyEngine::Lmdb(raft_store_lmdb::LmdbEngine::open(path, &self.lmdb)?),
            #[cfg(feature = "rocksdb")]
            Backend::Rocksdb => {
                AnyEngine::Rocksdb(raft_store_rocksdb::RocksEngine::open(path, &self.rocksdb)?)
            }
            #[cfg(feature = "sled")]
            Backend::Sled => AnyEngine::Sled(raft_store_sled::SledEngine::open(path, &self.sled)?),
            #[cfg(feature = "mem")]
            Backend::Mem => {
                let _ = path;
                AnyEngine::Mem(raft_store_core::MemEngine::new())
            }
            #[cfg(not(any(
                feature = "redb",
                feature = "lmdb",
                feature = "rocksdb",
                feature = "sled",
                feature = "mem"
            )))]
            Backend::NoBackend(never) => match never {},
        })
    }
}
