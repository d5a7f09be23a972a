//! The conformance suite of raft-store: run it against your own engine, log store or codec.
//!
//! An adapter's `tests/conformance.rs`, for any `Fn(&Path) -> Result<impl Engine, EngineError>`
//! (here the in-memory engine, which [`MemHarness`] keeps across reopens):
//!
//! ```
//! raft_store_testkit::conformance_suite!(in_memory: raft_store_testkit::MemHarness::new());
//! # fn main() {}
//! ```
//!
//! Two layers:
//! - **engine cases** ([`engine_cases`]) for anything that implements [`Engine`](raft_store_core::Engine);
//! - **log cases** for openraft `RaftLogStorage` implementations: openraft's own
//!   `testing::log::Suite` case by case, plus its `test_all` once so that a case a newer
//!   openraft adds is not skipped ([`openraft_suite`]); our [`log_cases`] for any store that can
//!   be opened and reopened at a path (for a store on disk, also a byte flipped in its files
//!   under it); and [`engine_log_cases`], which run a
//!   [`LogStore`](raft_store_core::LogStore) over the [`FaultEngine`] wrapper to check syncs, faults,
//!   corruption and power loss; [`fs_faults`] fail fsyncs, writes and reads in the file system
//!   under the engine, so the engine itself meets the kernel's error.
//!
//! The [`conformance_suite!`](crate::conformance_suite) macro expands every case into its own
//! `#[test]`, so a failure names its case and `cargo test reopen` runs only the reopen cases. For
//! an adapter, `tests/conformance.rs` is:
//!
//! ```
//! use raft_store_testkit::FnHarness;
//!
//! // Any `Fn(&Path) -> Result<impl Engine, EngineError>`; here the in-memory engine.
//! raft_store_testkit::conformance_suite!(FnHarness(|_dir: &std::path::Path| {
//!     Ok::<_, raft_store_core::EngineError>(raft_store_core::MemEngine::new())
//! }));
//! # fn main() {}
//! ```
//!
//! (An engine that forgets everything on reopen, like this one, fails the reopen cases: use
//! [`MemHarness`] for the in-memory engine, as the crate's own tests do.)
//!
//! A store of your own (not built on `LogStore`) runs the store-level cases with
//! [`log_store_suite!`](crate::log_store_suite): in its on-disk form, `log_store_suite!(opener)`,
//! which cuts the power under the store; its `in_memory:` form cannot see a store that
//! acknowledges entries or a vote before they are durable.
//!
//! Both macros also run property cases ([`generated_cases`]): values of every shape and size
//! that [`generate`] makes, through the store and (for an engine) the key-value state machine,
//! and random sequences of log operations checked against a model. A codec of your own gets
//! the same values with [`codec_suite!`](crate::codec_suite).
//!
//! The same macro also runs the key-value state machine ([`kv_cases`]) on the engine: openraft's
//! suite with [`KvStateMachine`](raft_store_core::kv::KvStateMachine) beside the log store, and our cases
//! for apply, reopen, snapshots and faults.
//!
//! Cases return [`CaseResult`] instead of panicking, so the suite's own negative tests can assert
//! that a deliberately broken store fails them.

//! Everything here uses only the public items of `raft-store-engine` and `raft-store-core`, so
//! a store of your own gets exactly the checks raft-store's backends get.
//!
//! Each module of cases lists its cases beside their functions (a `cases!` list the macros
//! expand); `every_public_case_is_listed` in this crate's tests fails when a public case of a
//! module is in no list, so a new case cannot compile and never run.

#![forbid(unsafe_code)]

pub mod bad_input;
pub mod careless;
mod case;
pub mod decode;
pub mod engine_cases;
pub mod engine_log_cases;
mod engine_macros;
mod fault;
pub mod fs_faults;
pub mod generate;
pub mod generated_cases;
pub mod group_cases;
mod harness;
mod in_group;
pub mod kv_cases;
pub mod log_cases;
mod macros;
#[cfg(feature = "openraft-0-9")]
pub mod openraft09;
pub mod openraft_suite;
pub mod power_cut;
pub mod process;
pub mod rng;
mod sm;
mod stores;
pub mod util;

pub use case::CaseError;
pub use case::CaseResult;
pub use case::check;
pub use fault::Fault;
pub use fault::FaultEngine;
pub use fault::Faults;
pub use fault::InjectedFault;
pub use harness::EngineHarness;
pub use harness::FnHarness;
pub use harness::MemHarness;
pub use in_group::GroupHarness;
pub use in_group::InGroup;
pub use sm::MemStateMachine;
pub use stores::EngineStores;
pub use stores::StoreOpener;
pub use util::*;

openraft::declare_raft_types!(
    /// The type config every case runs with. Stores generic over the type config (like
    /// [`LogStore`](raft_store_core::LogStore)) are instantiated with it.
    pub TestConfig:
        D = String,
        R = String,
);
