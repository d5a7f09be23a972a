//! LMDB backend for raft-store: durable [openraft] log storage on an LMDB environment through
//! [heed], with group commit, checksummed values and fail-stop on I/O errors.
//!
//! ```no_run
//! use std::sync::Arc;
//!
//! use openraft::network::{NetSnapshot, RaftNetworkFactory};
//! use openraft::storage::RaftStateMachine;
//! use openraft::{Config, Raft};
//! use raft_store_lmdb::LmdbOptions;
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
//!     let log_store = raft_store_lmdb::open::<TypeConfig>("/var/lib/my-node/raft", LmdbOptions::default())?;
//!     let config = Arc::new(Config::default().validate()?);
//!     Ok(Raft::new(1, config, network, log_store, state_machine).await?)
//! }
//! ```
//!
//! See [`LmdbEngine`] for the layout and durability, and [`LmdbOptions`] for the map size and
//! its growth. The crate forbids `unsafe` code everywhere but the one function that opens the
//! environment (heed's `EnvOpenOptions::open` is `unsafe`); its `SAFETY` comment says how the
//! crate meets heed's conditions, chiefly one open per path per process, enforced by the store
//! directory lock.
//!
//! [openraft]: https://docs.rs/openraft
//! [heed]: https://docs.rs/heed

#![deny(unsafe_code)]

mod check;
mod engine;
mod env;
mod error;
mod options;

use std::path::Path;

pub use engine::BACKEND;
pub use engine::LmdbEngine;
use openraft::RaftTypeConfig;
pub use options::LmdbOptions;
use raft_store_core::LogStore;
use raft_store_core::StoreError;

/// The log store type of this backend.
pub type LmdbLogStore<C> = LogStore<C, LmdbEngine>;

/// Open (or create) the raft log store in directory `dir`, ready for `openraft::Raft::new`.
pub fn open<C>(dir: impl AsRef<Path>, options: LmdbOptions) -> Result<LmdbLogStore<C>, StoreError>
where
    C: RaftTypeConfig,
    C::Entry: Clone,
{
    LogStore::open(LmdbEngine::open(dir, &options)?)
}
