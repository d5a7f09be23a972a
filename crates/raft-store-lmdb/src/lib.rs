//! LMDB backend for raft-store: the raft-store engine on an LMDB environment through
//! [heed], with group commit, checksummed values and fail-stop on I/O errors.
//!
//! ```no_run
//! use raft_store_engine::Engine;
//! use raft_store_lmdb::{LmdbEngine, LmdbOptions};
//!
//! # fn main() -> Result<(), raft_store_engine::EngineError> {
//! // Creates the directory on first use, checks and locks it, opens the database.
//! let engine = LmdbEngine::open("/var/lib/my-node/raft", &LmdbOptions::default())?;
//! assert_eq!(engine.backend(), raft_store_lmdb::BACKEND);
//! // Hand it to the log store of your openraft line (crate raft-store-core):
//! // raft_store_core::LogStore::<TypeConfig, _>::open(engine)             openraft 0.10
//! // raft_store_core::openraft09::LogStore::<TypeConfig, _>::open(engine)  openraft 0.9
//! // or open both in one call with `raft_store::lmdb::open` of the facade.
//! # Ok(())
//! # }
//! ```
//!
//! This crate depends on the engine layer (`raft-store-engine`) only, not on openraft: the same
//! engine serves the glue of every openraft line.
//!
//! See [`LmdbEngine`] for the layout and durability, and [`LmdbOptions`] for the map size and
//! its growth. The crate forbids `unsafe` code everywhere but the one function that opens the
//! environment (heed's `EnvOpenOptions::open` is `unsafe`); its `SAFETY` comment says how the
//! crate meets heed's conditions, chiefly one open per path per process, enforced by the store
//! directory lock.
//!
//! [heed]: https://docs.rs/heed

#![deny(unsafe_code)]

mod check;
mod engine;
mod env;
mod error;
mod options;

pub use engine::BACKEND;
pub use engine::LmdbEngine;
pub use options::LmdbOptions;
