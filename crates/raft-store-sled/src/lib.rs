//! sled backend for raft-store (**experimental**): the raft-store engine on
//! [sled] 0.34.7, with group commit, checksummed values and fail-stop on I/O errors.
//!
//! ```no_run
//! use raft_store_engine::Engine;
//! use raft_store_sled::{SledEngine, SledOptions};
//!
//! # fn main() -> Result<(), raft_store_engine::EngineError> {
//! // Creates the directory on first use, checks and locks it, opens the database.
//! let engine = SledEngine::open("/var/lib/my-node/raft", &SledOptions::default())?;
//! assert_eq!(engine.backend(), raft_store_sled::BACKEND);
//! // Hand it to the log store of your openraft line (crate raft-store-core):
//! // raft_store_core::LogStore::<TypeConfig, _>::open(engine)             openraft 0.10
//! // raft_store_core::openraft09::LogStore::<TypeConfig, _>::open(engine)  openraft 0.9
//! // or open both in one call with `raft_store::sled::open` of the facade.
//! # Ok(())
//! # }
//! ```
//!
//! This crate depends on the engine layer (`raft-store-engine`) only, not on openraft: the same
//! engine serves the glue of every openraft line.
//!
//! **Experimental**, for these reasons (each detailed in [`SledEngine`]'s docs with what the
//! adapter does about it): the sled 0.34 line is unmaintained; it is known for memory use
//! above its cache setting and for disk growth; the dependency audit flags crates it pulls in as
//! unmaintained; and its `flush()` is not a full `fsync` on Linux, so the adapter adds one.
//! Prefer redb or LMDB for production.
//!
//! [sled]: https://docs.rs/sled/0.34.7

#![forbid(unsafe_code)]

mod engine;
mod error;
mod options;

pub use engine::BACKEND;
pub use engine::SLED_DIR;
pub use engine::SledEngine;
pub use options::SledMode;
pub use options::SledOptions;
