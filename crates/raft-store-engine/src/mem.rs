//! [`MemEngine`]: the in-memory reference engine.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::Arc;
use std::sync::RwLock;

use crate::engine::Batch;
use crate::engine::Durability;
use crate::engine::Engine;
use crate::engine::KeyRange;
use crate::engine::Op;
use crate::engine::Space;
use crate::engine::Visitor;
use crate::error::EngineError;

type Tree = BTreeMap<Vec<u8>, Vec<u8>>;

#[derive(Debug, Default, Clone)]
struct Spaces([Tree; 4]);

impl Spaces {
    fn tree(&self, space: Space) -> &Tree {
        &self.0[space as usize]
    }

    fn apply(&mut self, batch: &Batch) {
        for op in batch.ops() {
            let tree = &mut self.0[op.space() as usize];
            match op {
                Op::Put { key, value, .. } => {
                    tree.insert(key.clone(), value.clone());
                }
                Op::Delete { key, .. } => {
                    tree.remove(key);
                }
                Op::DeleteRange { start, end, .. } => {
                    let doomed: Vec<Vec<u8>> = match end {
                        Some(end) if end <= start => Vec::new(),
                        Some(end) => tree
                            .range(start.clone()..end.clone())
                            .map(|(k, _)| k.clone())
                            .collect(),
                        None => tree.range(start.clone()..).map(|(k, _)| k.clone()).collect(),
                    };
                    for k in doomed {
                        tree.remove(&k);
                    }
                }
            }
        }
    }
}

#[derive(Debug, Default)]
struct State {
    /// What reads see.
    current: Spaces,
    /// What survives a simulated power loss; only kept in power-loss mode.
    durable: Option<Spaces>,
    /// Buffered batches not yet covered by a durable write (power-loss mode).
    unsynced: Vec<Batch>,
}

/// An in-memory [`Engine`]: ordered maps per keyspace behind one lock.
///
/// It is the reference the adapters are compared with, and the fast engine of unit tests. Clones
/// share the same data, so a test can "reopen" a store by building a new one over a clone.
///
/// With [`MemEngine::with_power_loss`] it also tracks what a real disk would have made durable:
/// [`MemEngine::power_loss`] drops every write made since the last durable write, as a power cut
/// would.
#[derive(Debug, Clone, Default)]
pub struct MemEngine {
    state: Arc<RwLock<State>>,
}

impl MemEngine {
    /// An empty engine without power-loss tracking.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty engine that tracks durability so [`MemEngine::power_loss`] can be simulated.
    pub fn with_power_loss() -> Self {
        let engine = Self::default();
        engine.write_state().durable = Some(Spaces::default());
        engine
    }

    /// Simulate a power cut: drop everything written since the last durable write.
    ///
    /// Without power-loss tracking this does nothing, since nothing is known to be unsynced.
    pub fn power_loss(&self) {
        let mut state = self.write_state();
        if let Some(durable) = state.durable.clone() {
            state.current = durable;
            state.unsynced.clear();
        }
    }

    /// Number of buffered writes a power loss would drop now.
    pub fn unsynced_writes(&self) -> usize {
        self.read_state().unsynced.len()
    }

    fn read_state(&self) -> std::sync::RwLockReadGuard<'_, State> {
        // A panic while holding the lock cannot leave the maps half-updated in a way that matters
        // to readers (each op is applied whole), so a poisoned lock is still usable.
        self.state
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn write_state(&self) -> std::sync::RwLockWriteGuard<'_, State> {
        self.state
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Engine for MemEngine {
    fn backend(&self) -> &'static str {
        "mem"
    }

    fn write(&self, batch: &Batch, durability: Durability) -> Result<(), EngineError> {
        let mut state = self.write_state();
        state.current.apply(batch);
        let state = &mut *state;
        if let Some(durable) = state.durable.as_mut() {
            match durability {
                Durability::Buffered => state.unsynced.push(batch.clone()),
                Durability::Durable => {
                    for pending in state.unsynced.drain(..) {
                        durable.apply(&pending);
                    }
                    durable.apply(batch);
                }
            }
        }
        Ok(())
    }

    fn get(&self, space: Space, key: &[u8]) -> Result<Option<Vec<u8>>, EngineError> {
        Ok(self.read_state().current.tree(space).get(key).cloned())
    }

    fn scan(&self, space: Space, range: KeyRange<'_>, visit: &mut Visitor<'_>) -> Result<(), EngineError> {
        let state = self.read_state();
        let tree = state.current.tree(space);
        let bounds: (Bound<&[u8]>, Bound<&[u8]>) = (range.start, range.end);
        if range.is_empty() {
            return Ok(());
        }
        for (k, v) in tree.range::<[u8], _>(bounds) {
            if visit(k, v).is_break() {
                break;
            }
        }
        Ok(())
    }

    fn last_key(&self, space: Space) -> Result<Option<Vec<u8>>, EngineError> {
        Ok(self
            .read_state()
            .current
            .tree(space)
            .last_key_value()
            .map(|(k, _)| k.clone()))
    }

    fn last_key_in(&self, space: Space, range: KeyRange<'_>) -> Result<Option<Vec<u8>>, EngineError> {
        if range.is_empty() {
            return Ok(None);
        }
        let state = self.read_state();
        let bounds: (Bound<&[u8]>, Bound<&[u8]>) = (range.start, range.end);
        Ok(state
            .current
            .tree(space)
            .range::<[u8], _>(bounds)
            .next_back()
            .map(|(k, _)| k.clone()))
    }
}

#[cfg(test)]
mod tests;
