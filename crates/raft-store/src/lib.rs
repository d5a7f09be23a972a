//! Durable log storage for [openraft] on the embedded engine of your choice. This is the crate
//! most users add: pick the engine by cargo feature, or at run time by a config value.
//!
//! ```no_run
//! use raft_store::{Backend, StoreConfig};
//!
//! openraft::declare_raft_types!(pub TypeConfig: D = String, R = String);
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // At run time: the backend is a value (from a flag, an environment variable, a file...).
//! let backend: Backend = "redb".parse()?;
//! let config = StoreConfig::new(backend, "/var/lib/my-node/raft");
//! let store: raft_store::Store<TypeConfig> = raft_store::open(&config)?;
//! // `store` implements `RaftLogStorage` and `RaftLogReader`:
//! // openraft::Raft::new(node_id, raft_config, network, store, state_machine).await?
//! # drop(store);
//! # Ok(())
//! # }
//! ```
//!
//! | backend | feature | maturity | durability of a group of appends | build cost |
//! |---|---|---|---|---|
//! | redb 4 | `redb` (default) | stable | one redb write transaction committed with `Durability::Immediate` | pure Rust, seconds |
//! | LMDB (heed 0.23) | `lmdb` | stable | one LMDB write transaction, synced on commit (no `NO_SYNC`/`WRITE_MAP`) | small C library, seconds |
//! | RocksDB 0.25 | `rocksdb` | stable | one `WriteBatch` with a synced WAL write | C++ from source: needs libclang and clang; about 15 min on 2 cores the first time |
//! | sled 0.34.7 | `sled` | experimental (unmaintained line, memory and disk growth) | one sled transaction, `flush()` and an added `fsync` | pure Rust, seconds |
//! | in memory | `mem` | tests only | none | none |
//!
//! Every backend passes the same conformance suite; every one has group commit (appends that
//! arrive during a sync share the next one), checksummed values and fail-stop on I/O errors.
//!
//! Choosing by cargo feature only, with one engine compiled in and no run-time choice:
//!
//! ```no_run
//! # openraft::declare_raft_types!(pub TypeConfig: D = String, R = String);
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // raft-store = { version = "0.1", default-features = false, features = ["redb"] }
//! let store = raft_store::redb::open::<TypeConfig>("/var/lib/my-node/raft", raft_store::RedbOptions::default())?;
//! # drop(store);
//! # Ok(())
//! # }
//! ```
//!
//! With the key-value state machine in the same engine (snapshots in `snapshots/` of the store
//! directory):
//!
//! ```no_run
//! use raft_store::kv::{KvRequest, KvResponse};
//! use raft_store::{Backend, StoreConfig};
//!
//! openraft::declare_raft_types!(pub KvConfig: D = KvRequest, R = KvResponse);
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let config = StoreConfig::new(Backend::Redb, "/var/lib/my-node/raft");
//! let (log_store, state_machine) = raft_store::open_with_kv::<KvConfig>(&config)?;
//! let reader = state_machine.reader(); // serves reads while openraft owns the state machine
//! // openraft::Raft::new(node_id, raft_config, network, log_store, state_machine).await?
//! # drop((log_store, state_machine, reader));
//! # Ok(())
//! # }
//! ```
//!
//! Asking at run time for a backend whose feature is off is an error that names the feature:
//!
//! ```
//! # #[cfg(not(feature = "sled"))] {
//! let err = "sled".parse::<raft_store::Backend>().unwrap_err();
//! assert_eq!(err.to_string(), "backend `sled` is not compiled in: enable the cargo feature `sled` of raft-store");
//! # }
//! ```
//!
//! [openraft]: https://docs.rs/openraft

#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod backend;
mod config;
mod engine;

pub use backend::ALL_BACKENDS;
pub use backend::Backend;
pub use backend::BackendError;
pub use config::StoreConfig;
pub use engine::AnyEngine;
use openraft::RaftTypeConfig;
pub use raft_store_core::Bincode;
pub use raft_store_core::Codec;
pub use raft_store_core::Engine;
pub use raft_store_core::EngineError;
pub use raft_store_core::LogReader;
pub use raft_store_core::LogStore;
pub use raft_store_core::MemEngine;
pub use raft_store_core::Postcard;
pub use raft_store_core::StoreError;
pub use raft_store_core::StoreStats;
#[cfg(feature = "testing")]
pub use raft_store_core::bad_input_suite;
#[cfg(feature = "testing")]
pub use raft_store_core::codec_suite;
#[cfg(feature = "testing")]
pub use raft_store_core::conformance_suite;
pub use raft_store_core::kv;
#[cfg(feature = "testing")]
pub use raft_store_core::log_store_suite;
pub use raft_store_core::stats;
/// The conformance suite (feature `testing`), to run against stores of your own.
#[cfg(feature = "testing")]
pub use raft_store_core::testing;
#[cfg(feature = "lmdb")]
pub use raft_store_lmdb::{self as lmdb, LmdbOptions};
#[cfg(feature = "redb")]
pub use raft_store_redb::{self as redb, RedbOptions};
#[cfg(feature = "rocksdb")]
pub use raft_store_rocksdb::{self as rocksdb, RocksOptions};
#[cfg(feature = "sled")]
pub use raft_store_sled::{self as sled, SledOptions};

/// The one log store type for every compiled backend.
pub type Store<C> = LogStore<C, AnyEngine>;

/// Open (or create) the store `config` names.
pub fn open<C>(config: &StoreConfig) -> Result<Store<C>, StoreError>
where
    C: RaftTypeConfig,
    C::Entry: Clone,
{
    LogStore::open(config.open_engine()?)
}

/// The log store of [`open_with_kv`]: it shares its engine with the state machine.
pub type SharedStore<C> = LogStore<C, std::sync::Arc<AnyEngine>>;

/// The key-value state machine of [`open_with_kv`], in the same engine as the log.
pub type KvStore<C> = kv::KvStateMachine<C, std::sync::Arc<AnyEngine>>;

/// Open (or create) the store `config` names together with a key-value state machine in the
/// same engine; its snapshot files go to `snapshots/` inside the store directory.
pub fn open_with_kv<C>(config: &StoreConfig) -> Result<(SharedStore<C>, KvStore<C>), StoreError>
where
    C: kv::KvTypeConfig,
    C::Entry: Clone,
{
    let engine = std::sync::Arc::new(config.open_engine()?);
    // The log store first: it writes the format record and the store's marker.
    let log = LogStore::open(engine.clone())?;
    // One set of counters for both: a node's metrics show its syncs and applies together.
    let sm = kv::KvStateMachine::open_with_stats(engine, config.path.join("snapshots"), log.stats())?;
    Ok((log, sm))
}
