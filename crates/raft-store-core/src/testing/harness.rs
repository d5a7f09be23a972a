//! How the suite opens the store under test.

use std::collections::HashMap;
use std::io;
use std::path::Path;
use std::path::PathBuf;
use std::sync::Mutex;

use openraft::storage::RaftLogStorage;

use super::FaultEngine;
use super::TestConfig;
use crate::engine::Engine;
use crate::error::EngineError;
use crate::mem::MemEngine;
use crate::store::LogStore;

/// Opens the engine under test at a directory; what an adapter gives the engine cases.
pub trait EngineHarness: Send + Sync + 'static {
    /// The engine type.
    type Engine: Engine;

    /// Open (or reopen) the engine kept in `dir`. The previous instance for `dir` has been
    /// dropped before a reopen.
    fn open(&self, dir: &Path) -> Result<Self::Engine, EngineError>;

    /// Called after the store in `dir` was dropped at a simulated power cut, before the reopen,
    /// by the in-process power-loss cases of `log_under` and `kv_state_machine`. An engine that
    /// can simulate losing its unsynced writes (like [`MemEngine`]) does it here. For an engine
    /// on disk the default does nothing, so those cases check only what stays in one process;
    /// the real power cuts are module `power_cut` of the suite, which runs the engine in a child
    /// process on the fault file system and needs nothing from this hook.
    fn power_loss(&self, dir: &Path) {
        let _ = dir;
    }
}

/// An [`EngineHarness`] from a closure `|dir: &Path| -> Result<E, EngineError>`.
pub struct FnHarness<F>(pub F);

impl<E, F> EngineHarness for FnHarness<F>
where
    E: Engine,
    F: Fn(&Path) -> Result<E, EngineError> + Send + Sync + 'static,
{
    type Engine = E;

    fn open(&self, dir: &Path) -> Result<E, EngineError> {
        (self.0)(dir)
    }
}

/// [`MemEngine`]s in power-loss mode, one per directory, so "reopen" finds the same data and
/// a power cut drops what was never synced.
#[derive(Default)]
pub struct MemHarness {
    engines: Mutex<HashMap<PathBuf, MemEngine>>,
}

impl MemHarness {
    /// A harness with no engines yet.
    pub fn new() -> Self {
        Self::default()
    }
}

impl EngineHarness for MemHarness {
    type Engine = MemEngine;

    fn open(&self, dir: &Path) -> Result<MemEngine, EngineError> {
        let mut engines = self
            .engines
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        Ok(engines
            .entry(dir.to_path_buf())
            .or_insert_with(MemEngine::with_power_loss)
            .clone())
    }

    fn power_loss(&self, dir: &Path) {
        let engines = self
            .engines
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(engine) = engines.get(dir) {
            engine.power_loss();
        }
    }
}

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
