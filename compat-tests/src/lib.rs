//! Shared pieces of the compatibility tests: a deterministic random workload of log operations
//! and the model that says which states a store may be in after a crash, the helpers the child
//! processes (`crash-writer`, `corrupt-reader`) and the tests use to open stores by backend name,
//! and the decoder exercised by the fuzz target.
//!
//! ```
//! use compat_tests::{Model, Rng, Workload};
//!
//! let mut rng = Rng::new(7);
//! let mut workload = Workload::resume(&Model::default());
//! let op = workload.next_op(&mut rng);
//! let mut model = Model::default();
//! model.apply(&op);
//! assert!(model.entries.len() <= 64);
//! ```

#![forbid(unsafe_code)]

pub mod crash_site;
pub mod decode;
pub mod kv;
pub mod kv_crash;
pub mod log_crash;
/// The workload of log operations and the model of what a crash may leave (in the core's
/// suite, which runs the same checks under its power cuts).
pub use raft_store_testkit::power_cut::model;
/// Child processes with a deadline on their output (in the core's suite, which kills its own).
pub use raft_store_testkit::process;

use std::path::Path;

pub use model::LogOp;
pub use model::Model;
pub use model::Workload;
use raft_store::AnyEngine;
use raft_store::Backend;
use raft_store::StoreConfig;
use raft_store_core::LogStore;
use raft_store_core::StoreError;
use raft_store_testkit::TestConfig;

/// The store every compatibility test drives: the facade's engine, chosen by name.
pub type TestStore = LogStore<TestConfig, AnyEngine>;

/// One group's log store in a multi-group store of the facade.
pub type GroupTestStore = LogStore<TestConfig, raft_store::Group<AnyEngine>>;

/// The groups of the multi-group fixture set: both ends of the id space and one between.
pub const FIXTURE_GROUPS: [u64; 3] = [0, 42, u64::MAX];

/// The backends on disk, in test order.
pub const DISK_BACKENDS: [Backend; 4] = [Backend::Redb, Backend::Lmdb, Backend::Rocksdb, Backend::Sled];

/// Open (creating) the store of `backend` in `dir`.
pub fn open_store(backend: Backend, dir: &Path) -> Result<TestStore, StoreError> {
    LogStore::open(StoreConfig::new(backend, dir).open_engine()?)
}

/// Open the store of `backend` in `dir` with bincode, the default codec of the releases before
/// MessagePack, comparing every appended entry with its decoding.
pub fn open_bincode_store(
    backend: Backend,
    dir: &Path,
) -> Result<LogStore<TestConfig, AnyEngine, raft_store_core::Bincode>, StoreError> {
    LogStore::open_checked(
        StoreConfig::new(backend, dir).open_engine()?,
        raft_store_core::EntryCheck::equal(),
    )
}

/// The tokio runtime of a child process (`crash-writer`, `kv-writer`): two worker threads, the
/// same as the conformance cases.
pub fn child_runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
}

/// Copy the directory tree `from` to `to` (stores are damaged or opened from copies).
pub fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for item in std::fs::read_dir(from)? {
        let item = item?;
        let target = to.join(item.file_name());
        if item.path().is_dir() {
            copy_dir(&item.path(), &target)?;
        } else {
            std::fs::copy(item.path(), &target)?;
        }
    }
    Ok(())
}

pub use raft_store_testkit::rng::Rng;
pub use raft_store_testkit::rng::count_from_env;
pub use raft_store_testkit::rng::seed;

/// One `#[test]` per disk backend, each calling `$run(backend)`:
/// `backend_tests!(crash_test: crash_redb, crash_lmdb, crash_rocksdb, crash_sled);`
#[macro_export]
macro_rules! backend_tests {
    ($run:ident: $redb:ident, $lmdb:ident, $rocksdb:ident, $sled:ident) => {
        #[test]
        fn $redb() {
            $run(raft_store::Backend::Redb);
        }
        #[test]
        fn $lmdb() {
            $run(raft_store::Backend::Lmdb);
        }
        #[test]
        fn $rocksdb() {
            $run(raft_store::Backend::Rocksdb);
        }
        #[test]
        fn $sled() {
            $run(raft_store::Backend::Sled);
        }
    };
}
