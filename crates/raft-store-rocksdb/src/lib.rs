//! RocksDB backend for raft-store: durable [openraft] log storage on [RocksDB] (built from
//! source), with group commit, checksummed values and fail-stop on I/O errors.
//!
//! ```no_run
//! use std::sync::Arc;
//!
//! use openraft::network::{NetSnapshot, RaftNetworkFactory};
//! use openraft::storage::RaftStateMachine;
//! use openraft::{Config, Raft};
//! use raft_store_rocksdb::RocksOptions;
//!
//! openraft::declare_raft_types!(pub TypeConfig: D = String, R = String);
//!
//! async fn start<N, SM>(network: N, state_machine: SM) -> Result<Raft<TypeConfig, SM>, Box<dyn std::error::Error>>
//! where
//!     N: RaftNetworkFactory<TypeConfig>,
//!     N::Network: NetSnapshot<TypeConfig, SnapshotData = SM::SnapshotData>,
//!     SM: RaftStateMachine<TypeConfig>,
//! {
//!     // One call: creates the directory on first use, checks and locks it, opens the log.
//!     let log_store = raft_store_rocksdb::open::<TypeConfig>("/var/lib/my-node/raft", &RocksOptions::default())?;
//!     let config = Arc::new(Config::default().validate()?);
//!     Ok(Raft::new(1, config, network, log_store, state_machine).await?)
//! }
//! ```
//!
//! See [`RocksEngine`] for the layout, durability (the WAL, always synced for a durable group)
//! and purging, and [`RocksOptions`] for the defaults and how to pass your own
//! `rocksdb::Options`. Building RocksDB from source needs libclang and a C++ compiler and takes
//! a while the first time (see the crate's README).
//!
//! [openraft]: https://docs.rs/openraft
//! [RocksDB]: https://docs.rs/rocksdb

#![forbid(unsafe_code)]

mod engine;
mod error;
mod options;

use std::path::Path;

pub use engine::BACKEND;
pub use engine::ROCKS_DIR;
pub use engine::RocksEngine;
use openraft::RaftTypeConfig;
pub use options::Compression;
pub use options::RocksOptions;
use raft_store_core::LogStore;
use raft_store_core::StoreError;
pub use rocksdb;

/// The log store type of this backend.
pub type RocksLogStore<C> = LogStore<C, RocksEngine>;

/// Open (or create) the raft log store in directory `dir`, ready for `openraft::Raft::new`.
pub fn open<C>(dir: impl AsRef<Path>, options: &RocksOptions) -> Result<RocksLogStore<C>, StoreError>
where
    C: RaftTypeConfig,
    C::Entry: Clone,
{
    LogStore::open(RocksEngine::open(dir, options)?)
}
