//! RocksDB backend for raft-store: the raft-store engine on [RocksDB] (built from
//! source), with group commit, checksummed values and fail-stop on I/O errors.
//!
//! ```no_run
//! use raft_store_engine::Engine;
//! use raft_store_rocksdb::{RocksEngine, RocksOptions};
//!
//! # fn main() -> Result<(), raft_store_engine::EngineError> {
//! // Creates the directory on first use, checks and locks it, opens the database.
//! let engine = RocksEngine::open("/var/lib/my-node/raft", &RocksOptions::default())?;
//! assert_eq!(engine.backend(), raft_store_rocksdb::BACKEND);
//! // Hand it to the log store of your openraft line (crate raft-store-core):
//! // raft_store_core::LogStore::<TypeConfig, _>::open(engine)             openraft 0.10
//! // raft_store_core::openraft09::LogStore::<TypeConfig, _>::open(engine)  openraft 0.9
//! // or open both in one call with `raft_store::rocksdb::open` of the facade.
//! # Ok(())
//! # }
//! ```
//!
//! This crate depends on the engine layer (`raft-store-engine`) only, not on openraft: the same
//! engine serves the glue of every openraft line.
//!
//! See [`RocksEngine`] for the layout, durability (the WAL, always synced for a durable group)
//! and purging, and [`RocksOptions`] for the defaults and how to pass your own
//! `rocksdb::Options`. Building RocksDB from source needs libclang and a C++ compiler and takes
//! a while the first time (see the crate's README).
//!
//! [RocksDB]: https://docs.rs/rocksdb

#![forbid(unsafe_code)]

mod engine;
mod error;
mod options;

pub use engine::BACKEND;
pub use engine::ROCKS_DIR;
pub use engine::RocksEngine;
pub use options::Compression;
pub use options::RocksOptions;
pub use rocksdb;
