//! sled backend for raft-store (**experimental**): durable [openraft] log storage on
//! [sled] 0.34.7, with group commit, checksummed values and fail-stop on I/O errors.
//!
//! ```no_run
//! use std::sync::Arc;
//!
//! use openraft::network::{NetSnapshot, RaftNetworkFactory};
//! use openraft::storage::RaftStateMachine;
//! use openraft::{Config, Raft};
//! use raft_store_sled::SledOptions;
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
//!     let log_store = raft_store_sled::open::<TypeConfig>("/var/lib/my-node/raft", SledOptions::default())?;
//!     let config = Arc::new(Config::default().validate()?);
//!     Ok(Raft::new(1, config, network, log_store, state_machine).await?)
//! }
//! ```
//!
//! **Experimental**, for these reasons (each detailed in [`SledEngine`]'s docs with what the
//! adapter does about it): the sled 0.34 line is unmaintained; it is known for memory use
//! above its cache setting and for disk growth; the dependency audit flags crates it pulls in as
//! unmaintained; and its `flush()` is not a full `fsync` on Linux, so the adapter adds one.
//! Prefer redb or LMDB for production.
//!
//! [openraft]: https://docs.rs/openraft
//! [sled]: https://docs.rs/sled/0.34.7

#![forbid(unsafe_code)]

mod engine;
mod error;
mod options;

use std::path::Path;

pub use engine::BACKEND;
pub use engine::SLED_DIR;
pub use engine::SledEngine;
use openraft::RaftTypeConfig;
pub use options::SledMode;
pub use options::SledOptions;
use raft_store_core::LogStore;
use raft_store_core::StoreError;

/// The log store type of this backend.
pub type SledLogStore<C> = LogStore<C, SledEngine>;

/// Open (or create) the raft log store in directory `dir`, ready for `openraft::Raft::new`.
pub fn open<C>(dir: impl AsRef<Path>, options: SledOptions) -> Result<SledLogStore<C>, StoreError>
where
    C: RaftTypeConfig,
    C::Entry: Clone,
{
    LogStore::open(SledEngine::open(dir, &options)?)
}
