//! The core of raft-store: durable log storage for [openraft] over any ordered key-value engine.
//!
//! ```
//! use raft_store_core::{LogStore, MemEngine};
//! use openraft::storage::RaftLogStorage;
//!
//! openraft::declare_raft_types!(pub Config: D = String, R = String);
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // Any `Engine` works here; the adapter crates provide redb, LMDB, RocksDB and sled.
//! let mut store: LogStore<Config, MemEngine> = LogStore::open(MemEngine::new())?;
//! let state = store.get_log_state().await?;
//! assert!(state.last_log_id.is_none());
//! // Hand `store` to `openraft::Raft::new(id, config, network, store, state_machine)`.
//! # Ok(())
//! # }
//! ```
//!
//! Handing a store to openraft, for any network and state machine of yours:
//!
//! ```no_run
//! use std::sync::Arc;
//!
//! use openraft::network::{NetSnapshot, RaftNetworkFactory};
//! use openraft::storage::RaftStateMachine;
//! use openraft::{Config, Raft};
//! use raft_store_core::{LogStore, MemEngine};
//!
//! openraft::declare_raft_types!(pub TypeConfig: D = String, R = String);
//!
//! async fn start<N, SM>(network: N, state_machine: SM) -> Result<Raft<TypeConfig, SM>, Box<dyn std::error::Error>>
//! where
//!     N: RaftNetworkFactory<TypeConfig>,
//!     N::Network: NetSnapshot<TypeConfig, SnapshotData = SM::SnapshotData>,
//!     SM: RaftStateMachine<TypeConfig>,
//! {
//!     let log_store: LogStore<TypeConfig, MemEngine> = LogStore::open(MemEngine::new())?;
//!     let config = Arc::new(Config::default().validate()?);
//!     Ok(Raft::new(1, config, network, log_store, state_machine).await?)
//! }
//! ```
//!
//! - [`Engine`]: what an adapter implements: keyspaces, atomic batches, a durability point.
//! - [`LogStore`]: openraft's `RaftLogStorage` + `RaftLogReader` with group commit.
//! - [`codec`]: the value envelope (version, CRC32C, payload) and the [`Codec`]s.
//! - [`kv`]: a durable key-value state machine (`RaftStateMachine`) in the same engine, with
//!   streamed snapshots.
//! - [`MemEngine`]: the in-memory reference engine, with simulated power loss.
//! - `testing` (feature `testing`): the conformance suite to run against any engine or store.
//!
//! [openraft]: https://docs.rs/openraft

#![forbid(unsafe_code)]

pub mod codec;
pub mod dir;
pub mod engine;
pub mod error;
pub mod format;
pub mod kv;
mod mem;
pub mod stats;
mod store;
#[cfg(feature = "testing")]
pub mod testing;

pub use codec::Bincode;
pub use codec::Codec;
pub use codec::Postcard;
pub use dir::StoreDir;
pub use engine::Batch;
pub use engine::Durability;
pub use engine::Engine;
pub use engine::KeyRange;
pub use engine::Op;
pub use engine::Space;
pub use error::EngineError;
pub use error::StoreError;
pub use mem::MemEngine;
pub use stats::StoreStats;
pub use store::LogReader;
pub use store::LogStore;
