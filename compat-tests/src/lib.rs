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

pub mod decode;
pub mod kv;
pub mod model;
pub mod process;

use std::path::Path;

pub use model::LogOp;
pub use model::Model;
pub use model::Workload;
use raft_store::AnyEngine;
use raft_store::Backend;
use raft_store::StoreConfig;
use raft_store_core::LogStore;
use raft_store_core::StoreError;
use raft_store_core::testing::TestConfig;

/// The store every compatibility test drives: the facade's engine, chosen by name.
pub type TestStore = LogStore<TestConfig, AnyEngine>;

/// The backends on disk, in test order.
pub const DISK_BACKENDS: [Backend; 4] = [Backend::Redb, Backend::Lmdb, Backend::Rocksdb, Backend::Sled];

/// Open (creating) the store of `backend` in `dir`.
pub fn open_store(backend: Backend, dir: &Path) -> Result<TestStore, StoreError> {
    LogStore::open(StoreConfig::new(backend, dir).open_engine()?)
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

/// A small deterministic pseudo-random generator (`SplitMix64`): the same seed gives the same
/// workload on every machine, so a failing seed can be replayed.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n` > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// A number in `lo..=hi`.
    pub fn between(&mut self, lo: u64, hi: u64) -> u64 {
        if hi <= lo {
            lo
        } else {
            lo + self.below(hi - lo + 1)
        }
    }

    /// Random bytes.
    pub fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next_u64().to_le_bytes()[0]).collect()
    }
}

/// The seed of a test run: `RAFT_STORE_SEED` if set (to replay a failure), else the time.
pub fn seed() -> u64 {
    std::env::var("RAFT_STORE_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64)
        })
}

/// A count from the environment variable `var`, else `default` (more kills or cases on demand).
pub fn count_from_env(var: &str, default: usize) -> usize {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}
