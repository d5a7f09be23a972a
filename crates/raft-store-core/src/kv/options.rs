//! [`KvOptions`]: the key-value state machine's tunables.

use crate::OptionsError;
use crate::store::options::at_least_one;

/// The tunables of the key-value state machine ([`LineStateMachine`](super::LineStateMachine), on
/// either openraft line). [`Default`] gives the values a state machine opened with
/// [`open`](super::LineStateMachine::open) has.
///
/// Set them with the `with_*` methods (or the public fields) and open the state machine with
/// [`open_with`](super::LineStateMachine::open_with) or
/// [`open_with_options_and_stats`](super::LineStateMachine::open_with_options_and_stats), which
/// refuse values no state machine can work with (see [`validate`](Self::validate)) before they
/// touch the engine.
///
/// ```
/// use std::sync::Arc;
///
/// use raft_store_core::MemEngine;
/// use raft_store_core::kv::{KvOptions, KvRequest, KvResponse, KvStateMachine};
///
/// openraft::declare_raft_types!(pub Config: D = KvRequest, R = KvResponse);
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let snapshots = tempfile::tempdir()?;
/// let options = KvOptions::default().with_batch_bytes(1 << 20);
/// let sm: KvStateMachine<Config, _> =
///     KvStateMachine::open_with(Arc::new(MemEngine::new()), snapshots.path(), options)?;
/// assert_eq!(sm.options().batch_bytes, 1 << 20);
/// # Ok(())
/// # }
/// ```
///
/// With the feature `serde`, the options read from (and write to) any serde format; every
/// field may be left out (it keeps its default), an unknown field is refused. In TOML:
///
/// ```toml
/// batch_bytes = 4194304        # 4 MiB
/// sync_every_bytes = 67108864  # 64 MiB
/// delete_chunk = 10000
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(default, deny_unknown_fields))]
#[non_exhaustive]
pub struct KvOptions {
    /// Bytes of data changes gathered before they are written as one engine batch, while
    /// applying entries or installing a snapshot: bounds the memory an apply or an install
    /// holds (an apply also writes, and replies, once a batch is this full). At least 1.
    /// Default 4 MiB (`4194304`).
    pub batch_bytes: usize,
    /// While installing a snapshot, a durable write after this many bytes written without one,
    /// so engines that keep unsynced writes in memory (redb's non-durable commits) do not pile
    /// up a whole snapshot. At least 1. Default 64 MiB (`67108864`).
    pub sync_every_bytes: usize,
    /// Keys removed per batch when deleting an old generation of keys (after a snapshot is
    /// installed, or what an interrupted install left, at open), so a generation of any size
    /// goes in small steps. At least 1. Default `10000`.
    pub delete_chunk: usize,
}

impl Default for KvOptions {
    fn default() -> Self {
        Self {
            batch_bytes: 4 << 20,
            sync_every_bytes: 64 << 20,
            delete_chunk: 10_000,
        }
    }
}

impl KvOptions {
    /// These options with [`batch_bytes`](Self::batch_bytes) set to `bytes`.
    #[must_use]
    pub fn with_batch_bytes(mut self, bytes: usize) -> Self {
        self.batch_bytes = bytes;
        self
    }

    /// These options with [`sync_every_bytes`](Self::sync_every_bytes) set to `bytes`.
    #[must_use]
    pub fn with_sync_every_bytes(mut self, bytes: usize) -> Self {
        self.sync_every_bytes = bytes;
        self
    }

    /// These options with [`delete_chunk`](Self::delete_chunk) set to `keys`.
    #[must_use]
    pub fn with_delete_chunk(mut self, keys: usize) -> Self {
        self.delete_chunk = keys;
        self
    }

    /// Whether a state machine can work with these options: every bound is at least 1 (a
    /// bound of zero is a mistake, not a choice). The state machine's `open_with` checks this
    /// before it touches the engine; call it to refuse a configuration earlier, with the typed
    /// error.
    pub fn validate(&self) -> Result<(), OptionsError> {
        at_least_one("KvOptions", "batch_bytes", self.batch_bytes)?;
        at_least_one("KvOptions", "sync_every_bytes", self.sync_every_bytes)?;
        at_least_one("KvOptions", "delete_chunk", self.delete_chunk)?;
        Ok(())
    }
}
