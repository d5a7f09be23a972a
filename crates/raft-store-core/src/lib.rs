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
//! - [`LogStore`]: openraft's `RaftLogStorage` + `RaftLogReader` with group commit (0.10).
//! - [`kv`]: a durable key-value state machine (`RaftStateMachine`) in the same engine, with
//!   streamed snapshots (0.10).
//! - `openraft09` (feature `openraft-0-9`): the same log store and state machine for openraft
//!   0.9, the stable line, with the same guarantees and the same layout on disk.
//! - [`Engine`], [`MemEngine`], the codecs ([`MessagePack`], the default) and the errors: the
//!   engine layer, re-exported from `raft-store-engine` (which has no openraft dependency).
//!
//! The conformance suite to run against any engine or store is the crate `raft-store-testkit`.
//!
//! Features: `openraft-0-10` (default) and `openraft-0-9` select the glue; both can be on at
//! once.
//!
//! [openraft]: https://docs.rs/openraft

#![forbid(unsafe_code)]

// The engine layer's items a user of the store names, at this crate's root (one path each);
// its `codec` and `format` modules stay in `raft-store-engine`, imported here for the store's
// own use.
pub use raft_store_engine::Batch;
pub use raft_store_engine::Durability;
pub use raft_store_engine::Engine;
pub use raft_store_engine::EngineError;
pub use raft_store_engine::EngineLimits;
pub use raft_store_engine::FormatError;
pub use raft_store_engine::KeyRange;
pub use raft_store_engine::MemEngine;
pub use raft_store_engine::Op;
pub use raft_store_engine::Space;
pub use raft_store_engine::StoreDir;
pub use raft_store_engine::Visitor;
// The store and the state machine use them (neither exists without an openraft line).
#[cfg(any(feature = "openraft-0-10", feature = "openraft-0-9"))]
use raft_store_engine::codec;
pub use raft_store_engine::codec::Bincode;
pub use raft_store_engine::codec::Codec;
pub use raft_store_engine::codec::CodecError;
pub use raft_store_engine::codec::MessagePack;
pub use raft_store_engine::codec::Postcard;
pub use raft_store_engine::codec::RoundTripError;
pub use raft_store_engine::codec::check_round_trip;
#[cfg(any(feature = "openraft-0-10", feature = "openraft-0-9"))]
use raft_store_engine::format;
pub use raft_store_engine::format::OpenraftLine;
mod error;
pub use error::StoreError;
#[cfg(any(feature = "openraft-0-10", feature = "openraft-0-9"))]
mod groups;
#[cfg(any(feature = "openraft-0-10", feature = "openraft-0-9"))]
pub use groups::Group;
#[cfg(any(feature = "openraft-0-10", feature = "openraft-0-9"))]
pub use groups::GroupStore;
#[cfg(any(feature = "openraft-0-10", feature = "openraft-0-9"))]
pub mod kv;
#[cfg(any(feature = "openraft-0-10", feature = "openraft-0-9"))]
pub mod line;
#[cfg(feature = "migrate")]
pub mod migrate;
#[cfg(feature = "openraft-0-9")]
pub mod openraft09;
#[cfg(feature = "openraft-0-10")]
mod openraft10;
mod release;
#[cfg(any(feature = "openraft-0-10", feature = "openraft-0-9"))]
mod stats;
#[cfg(any(feature = "openraft-0-10", feature = "openraft-0-9"))]
mod store;

#[cfg(feature = "openraft-0-10")]
pub use openraft10::LogReader;
#[cfg(feature = "openraft-0-10")]
pub use openraft10::LogStore;
pub use release::wait_released;
#[cfg(any(feature = "openraft-0-10", feature = "openraft-0-9"))]
pub use stats::GROUP_BUCKETS;
#[cfg(any(feature = "openraft-0-10", feature = "openraft-0-9"))]
pub use stats::HistogramSnapshot;
#[cfg(any(feature = "openraft-0-10", feature = "openraft-0-9"))]
pub use stats::SLOW_SYNC;
#[cfg(any(feature = "openraft-0-10", feature = "openraft-0-9"))]
pub use stats::SYNC_BUCKETS;
#[cfg(any(feature = "openraft-0-10", feature = "openraft-0-9"))]
pub use stats::StatsSnapshot;
#[cfg(any(feature = "openraft-0-10", feature = "openraft-0-9"))]
pub use stats::StoreStats;
#[cfg(any(feature = "openraft-0-10", feature = "openraft-0-9"))]
pub use store::EntryCheck;
#[cfg(any(feature = "openraft-0-10", feature = "openraft-0-9"))]
pub use store::LineLogReader;
#[cfg(any(feature = "openraft-0-10", feature = "openraft-0-9"))]
pub use store::LineLogStore;
#[cfg(any(feature = "openraft-0-10", feature = "openraft-0-9"))]
pub use store::LogStoreOptions;
#[cfg(any(feature = "openraft-0-10", feature = "openraft-0-9"))]
pub use store::OptionsError;
