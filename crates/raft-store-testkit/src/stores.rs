//! How the suite opens the store under test.

use std::io;
use std::path::Path;

use openraft::storage::RaftLogStorage;

use super::EngineHarness;
use super::FaultEngine;
use super::TestConfig;
use raft_store_core::LogStore;

/// Opens the raft log store under test at a directory; what the store-level cases need.
pub trait StoreOpener: Send + Sync + 'static {
    /// The store type.
    type Store: RaftLogStorage<TestConfig>;

    /// Open (or reopen) the store kept in `dir`. The previous instance has been dropped.
    fn open(&self, dir: &Path) -> Result<Self::Store, io::Error>;
}

/// [`LogStore`]s over an engine harness, each engine wrapped in a [`FaultEngine`].
pub struct EngineStores<H>(pub H);

impl<H: EngineHarness> EngineStores<H> {
    /// Open the store in `dir` (the typed form of [`StoreOpener::open`]).
    pub fn open_store(&self, dir: &Path) -> Result<LogStore<TestConfig, FaultEngine<H::Engine>>, io::Error> {
        let engine = self.0.open(dir).map_err(|e| io::Error::new(e.kind(), e))?;
        Ok(LogStore::open(FaultEngine::new(engine))?)
    }

    /// The harness.
    pub fn harness(&self) -> &H {
        &self.0
    }
}

impl<H: EngineHarness> StoreOpener for EngineStores<H> {
    type Store = LogStore<TestConfig, FaultEngine<H::Engine>>;

    fn open(&self, dir: &Path) -> Result<Self::Store, io::Error> {
        self.open_store(dir)
    }
}
