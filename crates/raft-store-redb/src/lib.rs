//! redb backend for raft-store: the raft-store engine on a [redb] database, with group
//! commit, checksummed values and fail-stop on I/O errors.
//!
//! ```no_run
//! use raft_store_engine::Engine;
//! use raft_store_redb::{RedbEngine, RedbOptions};
//!
//! # fn main() -> Result<(), raft_store_engine::EngineError> {
//! // Creates the directory on first use, checks and locks it, opens the database.
//! let engine = RedbEngine::open("/var/lib/my-node/raft", &RedbOptions::default())?;
//! assert_eq!(engine.backend(), raft_store_redb::BACKEND);
//! // Hand it to the log store of your openraft line (crate raft-store-core):
//! // raft_store_core::LogStore::<TypeConfig, _>::open(engine)             openraft 0.10
//! // raft_store_core::openraft09::LogStore::<TypeConfig, _>::open(engine)  openraft 0.9
//! // or open both in one call with `raft_store::redb::open` of the facade.
//! # Ok(())
//! # }
//! ```
//!
//! This crate depends on the engine layer (`raft-store-engine`) only, not on openraft: the same
//! engine serves the glue of every openraft line.
//!
//! The store is a directory holding the raft-store marker and lock and one redb file with a
//! table per keyspace; see [`RedbEngine`] for how writes map to redb transactions and
//! [`RedbOptions`] for the knobs and their defaults.
//!
//! [redb]: https://docs.rs/redb

#![forbid(unsafe_code)]

mod engine;
mod error;
mod options;

pub use engine::BACKEND;
pub use engine::FILE_NAME;
pub use engine::RedbEngine;
pub use options::RedbOptions;
