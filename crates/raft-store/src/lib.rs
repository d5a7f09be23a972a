//! Durable log storage for [openraft] on the embedded engine of your choice. This is the crate
//! most users add: pick the engine by cargo feature, or at run time by a config value. The
//! items at the crate root are for openraft 0.10; for openraft 0.9 (feature `openraft-0-9`)
//! the same items are in [`openraft09`].
//!
//! ```no_run
//! use raft_store::{Backend, StoreConfig};
//!
//! openraft::declare_raft_types!(pub TypeConfig: D = String, R = String);
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // At run time: the backend is a value (from a flag, an environment variable, a file...).
//! let backend: Backend = "redb".parse()?;
//! let config = StoreConfig::new(backend, "/var/lib/my-node/raft");
//! let store: raft_store::Store<TypeConfig> = raft_store::open(&config)?;
//! // `store` implements `RaftLogStorage` and `RaftLogReader`:
//! // openraft::Raft::new(node_id, raft_config, network, store, state_machine).await?
//! # drop(store);
//! # Ok(())
//! # }
//! ```
//!
//! | backend | feature | maturity | durability of a group of appends | build cost |
//! |---|---|---|---|---|
//! | redb 4 | `redb` (default) | stable | one redb write transaction committed with `Durability::Immediate` | pure Rust, seconds |
//! | LMDB (heed 0.23) | `lmdb` | stable | one LMDB write transaction, synced on commit (no `NO_SYNC`/`WRITE_MAP`) | small C library, seconds |
//! | RocksDB 0.25 | `rocksdb` | stable | one `WriteBatch` with a synced WAL write | C++ from source: needs libclang and clang; about 15 min on 2 cores the first time |
//! | sled 0.34.7 | `sled` | experimental (unmaintained line, memory and disk growth) | one sled transaction, `flush()` and an added `fsync` | pure Rust, seconds |
//! | in memory | `mem` | tests only | none | none |
//!
//! Every backend passes the same conformance suite; every one has group commit (appends that
//! arrive during a sync share the next one), checksummed values and fail-stop on I/O errors.
//!
//! Both openraft lines are served, by feature: `openraft-0-10` (the default) gives the items at
//! the crate root, `openraft-0-9` gives the same items in [`openraft09`] for openraft 0.9, the
//! stable line. Both can be on at once; a store remembers its line and the other refuses it.
//!
//! Choosing by cargo feature only, with one engine compiled in and no run-time choice:
//!
//! ```no_run
//! # openraft::declare_raft_types!(pub TypeConfig: D = String, R = String);
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // raft-store = { version = "0.1", default-features = false, features = ["redb", "openraft-0-10"] }
//! let store = raft_store::redb::open::<TypeConfig>("/var/lib/my-node/raft", raft_store::RedbOptions::default())?;
//! # drop(store);
//! # Ok(())
//! # }
//! ```
//!
//! With the key-value state machine in the same engine (snapshots in `snapshots/` of the store
//! directory):
//!
//! ```no_run
//! use raft_store::kv::{KvRequest, KvResponse};
//! use raft_store::{Backend, StoreConfig};
//!
//! openraft::declare_raft_types!(pub KvConfig: D = KvRequest, R = KvResponse);
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let config = StoreConfig::new(Backend::Redb, "/var/lib/my-node/raft");
//! let (log_store, state_machine) = raft_store::open_with_kv::<KvConfig>(&config)?;
//! let reader = state_machine.reader(); // serves reads while openraft owns the state machine
//! // openraft::Raft::new(node_id, raft_config, network, log_store, state_machine).await?
//! # drop((log_store, state_machine, reader));
//! # Ok(())
//! # }
//! ```
//!
//! A store's directory stays locked while any handle to its engine is alive. After
//! `Raft::shutdown` returns, openraft has dropped the log store, but its state machine task
//! (which owns the state machine, and through it the engine of [`open_with_kv`]) ends a moment
//! later. To open the same directory again in the same process, drop your own handles (the
//! `Raft`, state machine readers) and await [`wait_released`] first:
//!
//! ```no_run
//! # use raft_store::kv::{KvRequest, KvResponse};
//! # openraft::declare_raft_types!(pub KvConfig: D = KvRequest, R = KvResponse);
//! # async fn restart(raft: openraft::Raft<KvConfig, raft_store::KvStore<KvConfig>>, config: raft_store::StoreConfig) -> Result<(), Box<dyn std::error::Error>> {
//! raft.shutdown().await?;
//! drop(raft);
//! raft_store::wait_released(&config.path, std::time::Duration::from_secs(10)).await?;
//! let (log_store, state_machine) = raft_store::open_with_kv::<KvConfig>(&config)?;
//! # drop((log_store, state_machine));
//! # Ok(())
//! # }
//! ```
//!
//! Asking at run time for a backend whose feature is off is an error that names the feature:
//!
//! ```
//! # #[cfg(not(feature = "sled"))] {
//! let err = "sled".parse::<raft_store::Backend>().unwrap_err();
//! assert_eq!(err.to_string(), "backend `sled` is not compiled in: enable the cargo feature `sled` of raft-store");
//! # }
//! ```
//!
//! [openraft]: https://docs.rs/openraft

#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]
// With no backend the `compile_error!` below is the one thing to read; what it leaves unused
// is not worth a warning.
#![cfg_attr(
    not(any(
        feature = "redb",
        feature = "lmdb",
        feature = "rocksdb",
        feature = "sled",
        feature = "mem"
    )),
    allow(unused, unreachable_code)
)]

#[cfg(not(any(
    feature = "redb",
    feature = "lmdb",
    feature = "rocksdb",
    feature = "sled",
    feature = "mem"
)))]
compile_error!(
    "raft-store needs a backend: enable at least one of its cargo features `redb` (the default), `lmdb`, `rocksdb`, `sled` or `mem`"
);

#[cfg(not(any(feature = "openraft-0-10", feature = "openraft-0-9")))]
compile_error!(
    "raft-store needs an openraft line: enable its cargo feature `openraft-0-10` (the default) or `openraft-0-9`, or both"
);

mod backend;
mod config;
mod engine;
// Before the modules that use it: `macro_rules!` macros are in scope from their definition on.
#[cfg(any(feature = "openraft-0-10", feature = "openraft-0-9"))]
#[macro_use]
mod macros;
#[cfg(feature = "openraft-0-9")]
pub mod openraft09;
#[cfg(feature = "openraft-0-10")]
mod openraft10;

pub use backend::ALL_BACKENDS;
pub use backend::Backend;
pub use backend::BackendError;
pub use config::StoreConfig;
pub use engine::AnyEngine;
#[cfg(feature = "openraft-0-10")]
pub use openraft10::*;
pub use raft_store_core::Bincode;
pub use raft_store_core::Codec;
pub use raft_store_core::CodecError;
pub use raft_store_core::Engine;
pub use raft_store_core::EngineError;
#[cfg(any(feature = "openraft-0-10", feature = "openraft-0-9"))]
pub use raft_store_core::EntryCheck;
pub use raft_store_core::FormatError;
#[cfg(any(feature = "openraft-0-10", feature = "openraft-0-9"))]
pub use raft_store_core::Group;
#[cfg(any(feature = "openraft-0-10", feature = "openraft-0-9"))]
pub use raft_store_core::GroupStore;
#[cfg(any(feature = "openraft-0-10", feature = "openraft-0-9"))]
pub use raft_store_core::HistogramSnapshot;
#[cfg(any(feature = "openraft-0-10", feature = "openraft-0-9"))]
pub use raft_store_core::LogStoreOptions;
pub use raft_store_core::MemEngine;
pub use raft_store_core::MessagePack;
pub use raft_store_core::OpenraftLine;
#[cfg(any(feature = "openraft-0-10", feature = "openraft-0-9"))]
pub use raft_store_core::OptionsError;
pub use raft_store_core::Postcard;
#[cfg(any(feature = "openraft-0-10", feature = "openraft-0-9"))]
pub use raft_store_core::StatsSnapshot;
pub use raft_store_core::StoreError;
#[cfg(any(feature = "openraft-0-10", feature = "openraft-0-9"))]
pub use raft_store_core::StoreStats;
#[cfg(any(feature = "openraft-0-10", feature = "openraft-0-9"))]
pub use raft_store_core::kv;
pub use raft_store_core::wait_released;
pub use raft_store_engine::codec::RoundTripError;
pub use raft_store_engine::codec::check_round_trip;
#[cfg(feature = "lmdb")]
pub use raft_store_lmdb::LmdbOptions;
#[cfg(feature = "redb")]
pub use raft_store_redb::RedbOptions;
#[cfg(feature = "rocksdb")]
pub use raft_store_rocksdb::RocksOptions;
#[cfg(feature = "sled")]
pub use raft_store_sled::SledOptions;
/// The conformance suite (feature `testing`): the crate `raft-store-testkit`, to run against
/// stores of your own.
#[cfg(feature = "testing")]
pub use raft_store_testkit as testing;
#[cfg(feature = "testing")]
pub use raft_store_testkit::bad_input_suite;
#[cfg(feature = "testing")]
pub use raft_store_testkit::codec_suite;
#[cfg(feature = "testing")]
pub use raft_store_testkit::conformance_suite;
#[cfg(feature = "testing")]
pub use raft_store_testkit::log_store_suite;
#[cfg(all(feature = "testing", feature = "openraft-0-9"))]
pub use raft_store_testkit::openraft09_suite;

/// The README's Rust snippets, compiled as doc tests with the facade's names: they are what a
/// user of this crate copies. They use redb and both openraft lines, so they are checked in a
/// build with those features on.
#[cfg(all(
    doctest,
    feature = "redb",
    feature = "openraft-0-10",
    feature = "openraft-0-9"
))]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeSnippets;

/// Open (or create) the multi-group store `config` names: many raft groups in its one engine,
/// one flusher and one sync for all of them (see `docs/groups.md`). Open each group's log
/// store and state machine on [`GroupStore::group`].
#[cfg(any(feature = "openraft-0-10", feature = "openraft-0-9"))]
pub fn open_groups(config: &StoreConfig) -> Result<GroupStore<AnyEngine>, StoreError> {
    GroupStore::open(config.open_engine()?)
}

/// The Rust snippets of the pages in `docs/`, compiled as doc tests like the README's: one item
/// per page with a compiled snippet (`tests/readme.rs` fails if a page is missing here).
#[cfg(all(
    doctest,
    feature = "redb",
    feature = "openraft-0-10",
    feature = "openraft-0-9"
))]
pub mod docs_snippets {
    /// `docs/guarantees.md`.
    #[doc = include_str!("../../../docs/guarantees.md")]
    pub struct Guarantees;

    /// `docs/kv-state-machine.md`.
    #[doc = include_str!("../../../docs/kv-state-machine.md")]
    pub struct KvStateMachine;

    /// `docs/groups.md`.
    #[doc = include_str!("../../../docs/groups.md")]
    pub struct Groups;
}
