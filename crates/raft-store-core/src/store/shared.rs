//! State shared by the log store, its readers and its flusher thread.

use std::collections::VecDeque;
use std::marker::PhantomData;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::MutexGuard;
use std::sync::OnceLock;
use std::sync::RwLock;

use crate::line::Line;

use super::options::LogStoreOptions;
use crate::Engine;
use crate::EngineError;
use crate::Space;
use crate::StoreStats;
use crate::codec::Codec;
use crate::codec::log_index;
use crate::codec::unseal;
use crate::error::StoreError;

/// An appended entry not yet written to the engine, served to readers from memory.
pub(crate) struct PendingEntry<C: Line> {
    pub index: u64,
    /// Increases with every appended entry; the flusher drops pending entries up to the highest
    /// sequence number it has written.
    pub seq: u64,
    pub entry: C::Entry,
}

/// The logical state of the log: what reads and `get_log_state` see, ahead of the engine.
pub(crate) struct LogView<C: Line> {
    /// Index of the first entry the log holds (or will hold, while it is empty): reads below it
    /// find nothing by design, reads at or above it must find every entry up to the last.
    pub log_start: u64,
    pub last_purged: Option<C::LogId>,
    pub last_log_id: Option<C::LogId>,
    /// A contiguous suffix of the log that is not written yet, in index (and sequence) order.
    pub pending: VecDeque<PendingEntry<C>>,
    pub next_seq: u64,
    pub vote: Option<C::Vote>,
    pub committed: Option<C::LogId>,
}

impl<C: Line> LogView<C> {
    /// The index of the first entry still to come from the engine (everything at or above it is
    /// pending or does not exist).
    pub fn pending_start(&self) -> u64 {
        match self.pending.front() {
            Some(p) => p.index,
            None => self
                .last_log_id
                .as_ref()
                .map_or(0, |l| C::index(l).saturating_add(1)),
        }
    }

    /// Index right after the last purged entry: where an emptied log starts again.
    pub fn after_purged(&self) -> u64 {
        self.last_purged
            .as_ref()
            .map_or(0, |p| C::index(p).saturating_add(1))
    }
}

pub(crate) struct Shared<C: Line, E, K> {
    pub engine: E,
    pub backend: &'static str,
    pub view: Mutex<LogView<C>>,
    /// Held shared by readers while they scan the engine, and exclusively by the flusher while it
    /// writes a group that deletes log entries, so a scan never sees half of a truncate or purge
    /// combined with a view taken before it.
    pub deleting: Arc<RwLock<()>>,
    /// The first write or sync failure; once set, every write is refused (fail-stop). Shared
    /// with the flusher, and in a multi-group store with every group of its engine.
    pub poison: Arc<OnceLock<Arc<EngineError>>>,
    /// What the store did, for metrics.
    pub stats: Arc<StoreStats>,
    /// The tunables the store was opened with, checked.
    pub options: LogStoreOptions,
    pub _codec: PhantomData<fn() -> K>,
}

impl<C: Line, E: Engine, K> Shared<C, E, K> {
    pub fn view(&self) -> MutexGuard<'_, LogView<C>> {
        // The view is only mutated by short, non-panicking sections; a poisoned lock still holds
        // a consistent view.
        self.view
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn check_poison(&self) -> Result<(), StoreError> {
        match self.poison.get() {
            Some(first) => {
                self.stats.record_error("refused", "Poisoned");
                Err(self.poisoned(first))
            }
            None => Ok(()),
        }
    }

    /// The refusal of a write because an earlier one failed with `first`.
    pub fn poisoned(&self, first: &Arc<EngineError>) -> StoreError {
        super::flusher::poisoned(self.backend, first)
    }
}

/// A log key's index, or why the key cannot be one (it is not 8 bytes long).
pub(crate) fn key_index(backend: &'static str, key: &[u8]) -> Result<u64, StoreError> {
    log_index(key).ok_or_else(|| bad_log_key(backend, key.len()))
}

/// The error of a log key of `len` bytes, which is not a log key (those are 8 bytes long).
pub(crate) fn bad_log_key(backend: &'static str, len: usize) -> StoreError {
    StoreError::damaged(
        backend,
        Space::Log,
        None,
        format!("log key of {len} bytes, expected 8"),
    )
}

/// The entry stored under log index `index` as `bytes`: its envelope checked, decoded with `K`,
/// and checked to say it is the entry of that index. Opening the store and reading entries
/// both decode through here, so a damaged entry is refused alike whoever reads it.
pub(crate) fn decode_entry<C: Line, K: Codec>(
    backend: &'static str,
    index: u64,
    bytes: &[u8],
) -> Result<C::Entry, StoreError> {
    let entry: C::Entry = unseal::<K, _>(bytes)
        .map_err(|e| StoreError::corrupt(backend, Space::Log, Some(index), "log entry", e))?;
    let says = C::entry_index(&entry);
    if says != index {
        return Err(StoreError::damaged(
            backend,
            Space::Log,
            Some(index),
            format!("entry stored under index {index} says it is index {says}"),
        ));
    }
    Ok(entry)
}
