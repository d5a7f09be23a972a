//! redb backend for raft-store: durable [openraft] log storage on a [redb] database, with group
//! commit, checksummed values and fail-stop on I/O errors.
//!
//! ```no_run
//! use std::sync::Arc;
//!
//! use openraft::network::{NetSnapshot, RaftNetworkFactory};
//! use openraft::storage::RaftStateMachine;
//! use openraft::{Config, Raft};
//! use raft_store_redb::RedbOptions;
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
//!     let log_store = raft_store_redb::open::<TypeConfig>("/var/lib/my-node/raft", RedbOptions::default())?;
//!     let config = Arc::new(Config::default().validate()?);
//!     Ok(Raft::new(1, config, network, log_store, state_machine).await?)
//! }
//! ```
//!
//! The store is a directory holding the raft-store marker and lock and one redb file with a
//! table per keyspace; see [`RedbEngine`] for how writes map to redb transactions and
//! [`RedbOptions`] for the knobs and their defaults.
//!
//! [openraft]: https://docs.rs/openraft
//! [redb]: https://docs.rs/redb

#![forbid(unsafe_code)]

mod engine;
mod error;
mod options;

use std::path::Path;

pub use engine::BACKEND;
pub use engine::FILE_NAME;
pub use engine::RedbEngine;
use openraft::RaftTypeConfig;
pub use options::RedbOptions;
use raft_store_core::LogStore;
use raft_store_core::StoreError;

/// The log store type of this backend.
pub type RedbLogStore<C> = LogStore<C, RedbEngine>;

/// Open (or create) the raft log store in directory `dir`, ready for `openraft::Raft::new`.
pub fn open<C>(dir: impl AsRef<Path>, options: RedbOptions) -> Result<RedbLogStore<C>, StoreError>
where
    C: RaftTypeConfig,
    C::Entry: Clone,
{
    LogStore::open(RedbEngine::open(dir, &options)?)
}
