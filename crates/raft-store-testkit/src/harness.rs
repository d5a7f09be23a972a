//! How the suite opens the engine under test.

use std::collections::HashMap;
use std::path::Path;
use std::path::PathBuf;
use std::sync::Mutex;

use raft_store_engine::Engine;
use raft_store_engine::EngineError;
use raft_store_engine::MemEngine;

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
