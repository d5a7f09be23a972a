//! The engine layer of raft-store: everything a storage engine needs to hold a raft log and a
//! state machine, and nothing of openraft.
//!
//! ```
//! use raft_store_engine::{Batch, Durability, Engine, MemEngine, Space};
//!
//! # fn main() -> Result<(), raft_store_engine::EngineError> {
//! // Any `Engine` works here; the adapter crates provide redb, LMDB, RocksDB and sled.
//! let engine = MemEngine::new();
//! let mut batch = Batch::new();
//! batch.put(Space::Log, 7u64.to_be_bytes().to_vec(), b"entry".to_vec());
//! engine.write(&batch, Durability::Durable)?;
//! assert_eq!(engine.get(Space::Log, &7u64.to_be_bytes())?.as_deref(), Some(&b"entry"[..]));
//! # Ok(())
//! # }
//! ```
//!
//! - [`Engine`]: what an adapter implements: keyspaces, atomic batches, a durability point.
//! - [`codec`]: the value envelope (version, CRC32C, payload) and the codecs.
//! - [`StoreDir`]: the store directory (its lock, its "initialized" mark).
//! - [`format`]: the format record every store carries, naming backend, codec and openraft line.
//! - [`MemEngine`]: the in-memory reference engine, with simulated power loss.
//! - [`EngineError`], [`FormatError`], [`CodecError`]: what an engine, the format record and a
//!   codec report.
//!
//! The openraft glue (log store, state machine, both openraft lines) is `raft-store-core`; the
//! adapter crates depend on this crate only, so one engine serves every openraft line.

#![forbid(unsafe_code)]

// One public path per item: the modules an adapter implements against are private and their
// items are at the root; `codec` and `format` are modules of their own (a codec, the envelope,
// the format record), used by the store crate above and by tools that read a store's bytes.
pub mod codec;
mod dir;
mod engine;
mod error;
pub mod format;
mod mem;

pub use dir::StoreDir;
pub use engine::Batch;
pub use engine::Durability;
pub use engine::Engine;
pub use engine::EngineLimits;
pub use engine::KeyRange;
pub use engine::Op;
pub use engine::Space;
pub use engine::Visitor;
pub use error::BoxError;
pub use error::EngineError;
pub use error::FormatError;
pub use error::catch_panic;
pub use mem::MemEngine;
